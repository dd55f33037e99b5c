// find_ca_bundle(): SSL_CERT_FILE, else the distributions' usual CA bundle paths.
#include <xrayd/config/ca_bundle.h>

#include <unistd.h>

#include <array>
#include <string_view>

namespace xrayd {

std::optional<std::string> find_ca_bundle(const std::optional<std::string>& ssl_cert_file,
                                          const std::string& root) {
    if (ssl_cert_file && !ssl_cert_file->empty()) {
        return *ssl_cert_file;
    }
    static constexpr std::array<std::string_view, 4> paths = {
        "/etc/ssl/certs/ca-certificates.crt",                 // Debian, Ubuntu
        "/etc/pki/tls/certs/ca-bundle.crt",                   // Amazon Linux, RHEL, Fedora
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  // RHEL's extracted trust store
        "/etc/ssl/cert.pem",                                  // Alpine
    };
    for (const std::string_view path : paths) {
        std::string candidate = root + std::string(path);
        if (::access(candidate.c_str(), R_OK) == 0) {
            return candidate;
        }
    }
    return std::nullopt;
}

}  // namespace xrayd
