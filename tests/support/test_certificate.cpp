// In-process generation of a self-signed test certificate with OpenSSL 3.
#include "test_certificate.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <utility>

namespace xrayd::test {
namespace {

struct PkeyFree {
    void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct X509Free {
    void operator()(X509* p) const noexcept { X509_free(p); }
};
struct ExtFree {
    void operator()(X509_EXTENSION* p) const noexcept { X509_EXTENSION_free(p); }
};
struct FileClose {
    void operator()(std::FILE* f) const noexcept { (void)std::fclose(f); }
};
struct BioFree {
    void operator()(BIO* p) const noexcept { BIO_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, ExtFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

void require(bool ok, const char* what) {
    if (!ok) {
        throw std::runtime_error(std::string("test certificate: ") + what + " failed");
    }
}

void add_extension(X509* cert, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    ExtPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
    require(ext != nullptr, "X509V3_EXT_nconf_nid");
    require(X509_add_ext(cert, ext.get(), -1) == 1, "X509_add_ext");
}

std::string bio_contents(BIO* bio) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    require(size > 0 && data != nullptr, "BIO_get_mem_data");
    return std::string(data, static_cast<std::size_t>(size));
}

}  // namespace

TestCertificate TestCertificate::generate() {
    PkeyPtr key(EVP_EC_gen("P-256"));
    require(key != nullptr, "EVP_EC_gen");

    X509Ptr cert(X509_new());
    require(cert != nullptr, "X509_new");
    require(X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_set_version");
    require(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1) == 1, "ASN1_INTEGER_set");
    require(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr, "notBefore");
    require(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400) != nullptr, "notAfter");
    require(X509_set_pubkey(cert.get(), key.get()) == 1, "X509_set_pubkey");
    X509_NAME* name = X509_get_subject_name(cert.get());
    require(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1,
                                       0) == 1,
            "X509_NAME_add_entry_by_txt");
    require(X509_set_issuer_name(cert.get(), name) == 1, "X509_set_issuer_name");
    add_extension(cert.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert.get(), NID_key_usage, "critical,digitalSignature,keyCertSign");
    add_extension(cert.get(), NID_ext_key_usage, "serverAuth");
    add_extension(cert.get(), NID_subject_key_identifier, "hash");
    add_extension(cert.get(), NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    require(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0, "X509_sign");

    TestCertificate result;
    {
        BioPtr bio(BIO_new(BIO_s_mem()));
        require(bio != nullptr, "BIO_new");
        require(PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr,
                                         nullptr) == 1,
                "PEM_write_bio_PrivateKey");
        result.key_pem_ = bio_contents(bio.get());
    }
    {
        BioPtr bio(BIO_new(BIO_s_mem()));
        require(bio != nullptr, "BIO_new");
        require(PEM_write_bio_X509(bio.get(), cert.get()) == 1, "PEM_write_bio_X509");
        result.cert_pem_ = bio_contents(bio.get());
    }

    std::string path = "/tmp/xrayd-test-ca-XXXXXX.pem";
    const int fd = ::mkstemps(path.data(), 4);
    require(fd >= 0, "mkstemps");
    result.cert_path_ = path;  // from here the destructor removes the file
    std::unique_ptr<std::FILE, FileClose> file(::fdopen(fd, "w"));
    if (file == nullptr) {
        (void)::close(fd);  // fdopen failed: the descriptor is still ours alone
        throw std::runtime_error("test certificate: fdopen failed");
    }
    require(std::fwrite(result.cert_pem_.data(), 1, result.cert_pem_.size(), file.get()) ==
                result.cert_pem_.size(),
            "writing the PEM file");
    require(std::fclose(file.release()) == 0, "closing the PEM file");
    return result;
}

TestCertificate::~TestCertificate() {
    if (!cert_path_.empty()) {
        (void)std::remove(cert_path_.c_str());
    }
}

TestCertificate::TestCertificate(TestCertificate&& other) noexcept
    : key_pem_(std::move(other.key_pem_)),
      cert_pem_(std::move(other.cert_pem_)),
      cert_path_(std::exchange(other.cert_path_, {})) {}

TestCertificate& TestCertificate::operator=(TestCertificate&& other) noexcept {
    if (this != &other) {
        if (!cert_path_.empty()) {
            (void)std::remove(cert_path_.c_str());
        }
        key_pem_ = std::move(other.key_pem_);
        cert_pem_ = std::move(other.cert_pem_);
        cert_path_ = std::exchange(other.cert_path_, {});
    }
    return *this;
}

}  // namespace xrayd::test
