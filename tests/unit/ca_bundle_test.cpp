// Tests of find_ca_bundle(): SSL_CERT_FILE first, then each distribution's usual path, in order.
#include <xrayd/config/ca_bundle.h>

#include <doctest/doctest.h>

#include <string>

#include "temp_dir.h"

namespace xrayd {
namespace {

// A temporary directory standing in for a distribution's root file system.
class FakeRoot {
public:
    // `path` is absolute, as on the distribution.
    void add(const std::string& path) {
        (void)dir_.write(path.substr(1), "-----BEGIN CERTIFICATE-----\n");
    }
    [[nodiscard]] std::string dir() const { return dir_.path().string(); }

private:
    test::TempDir dir_{"xrayd-ca"};
};

TEST_CASE("SSL_CERT_FILE wins over every usual path") {
    FakeRoot root;
    root.add("/etc/ssl/certs/ca-certificates.crt");
    CHECK(find_ca_bundle(std::string("/opt/ca.pem"), root.dir()) == "/opt/ca.pem");
}

TEST_CASE("an empty SSL_CERT_FILE is as if unset") {
    FakeRoot root;
    root.add("/etc/ssl/cert.pem");
    CHECK(find_ca_bundle(std::string(), root.dir()) == root.dir() + "/etc/ssl/cert.pem");
}

TEST_CASE("Debian's bundle is found on a Debian root") {
    FakeRoot root;
    root.add("/etc/ssl/certs/ca-certificates.crt");
    root.add("/etc/ssl/cert.pem");
    CHECK(find_ca_bundle(std::nullopt, root.dir()) ==
          root.dir() + "/etc/ssl/certs/ca-certificates.crt");
}

TEST_CASE("Amazon Linux and RHEL's bundle is found on their root") {
    FakeRoot root;
    root.add("/etc/pki/tls/certs/ca-bundle.crt");
    CHECK(find_ca_bundle(std::nullopt, root.dir()) ==
          root.dir() + "/etc/pki/tls/certs/ca-bundle.crt");
}

TEST_CASE("RHEL's extracted trust store is found when the compatibility link is missing") {
    FakeRoot root;
    root.add("/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem");
    CHECK(find_ca_bundle(std::nullopt, root.dir()) ==
          root.dir() + "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem");
}

TEST_CASE("Alpine's bundle is found on an Alpine root") {
    FakeRoot root;
    root.add("/etc/ssl/cert.pem");
    CHECK(find_ca_bundle(std::nullopt, root.dir()) == root.dir() + "/etc/ssl/cert.pem");
}

TEST_CASE("a root with no bundle gives none") {
    FakeRoot root;
    CHECK_FALSE(find_ca_bundle(std::nullopt, root.dir()).has_value());
}

}  // namespace
}  // namespace xrayd
