// TestCertificate: a key and self-signed certificate for 127.0.0.1, generated in-process.
#pragma once

#include <string>

namespace xrayd::test {

// An EC P-256 key and a self-signed certificate (CN and subjectAltName 127.0.0.1 and
// localhost, CA:TRUE so it can serve as its own trust anchor), valid from an hour ago for a
// day. The certificate PEM is also written to a temporary file (for CURLOPT_CAINFO), removed
// on destruction. Move-only; immutable after construction, so any thread may read it.
class TestCertificate {
public:
    // Throws std::runtime_error when OpenSSL or the temporary file fails.
    [[nodiscard]] static TestCertificate generate();

    ~TestCertificate();
    TestCertificate(TestCertificate&& other) noexcept;
    TestCertificate& operator=(TestCertificate&& other) noexcept;
    TestCertificate(const TestCertificate&) = delete;
    TestCertificate& operator=(const TestCertificate&) = delete;

    [[nodiscard]] const std::string& key_pem() const noexcept { return key_pem_; }
    [[nodiscard]] const std::string& cert_pem() const noexcept { return cert_pem_; }
    [[nodiscard]] const std::string& cert_path() const noexcept { return cert_path_; }

private:
    TestCertificate() = default;
    std::string key_pem_;
    std::string cert_pem_;
    std::string cert_path_;
};

}  // namespace xrayd::test
