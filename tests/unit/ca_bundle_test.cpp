// Tests of find_ca_bundle(): SSL_CERT_FILE first, then each distribution's usual path, in order.
#include <xrayd/config/ca_bundle.h>

#include <doctest/doctest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace xrayd {
namespace {

namespace fs = std::filesystem;

// A temporary directory standing in for a distribution's root file system.
class FakeRoot {
public:
    FakeRoot() {
        std::string templ = (fs::temp_directory_path() / "xrayd-ca-XXXXXX").string();
        REQUIRE(::mkdtemp(templ.data()) != nullptr);
        dir_ = templ;
    }
    ~FakeRoot() {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    FakeRoot(const FakeRoot&) = delete;
    FakeRoot& operator=(const FakeRoot&) = delete;

    void add(const std::string& path) {
        const fs::path file = dir_ + path;
        fs::create_directories(file.parent_path());
        std::ofstream(file) << "-----BEGIN CERTIFICATE-----\n";
    }
    [[nodiscard]] const std::string& dir() const { return dir_; }

private:
    std::string dir_;
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
