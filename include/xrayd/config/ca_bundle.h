// find_ca_bundle(): the CA certificates file of the host, for the static release build.
#pragma once

#include <optional>
#include <string>

namespace xrayd {

// The static build's libcurl has no compiled-in CA path (it would be the build machine's), so
// start-up picks one: SSL_CERT_FILE when set and not empty, else the first
// readable file of Debian/Ubuntu, Amazon Linux/RHEL/Fedora and Alpine's usual places, each
// looked up under root ("" for the real root; tests pass a directory). nullopt when none is
// readable. --ca-bundle, when given, is used as is and this is not called. Any thread.
[[nodiscard]] std::optional<std::string> find_ca_bundle(
    const std::optional<std::string>& ssl_cert_file, const std::string& root = "");

}  // namespace xrayd
