// SHA-256, HMAC-SHA256 and hex helpers over OpenSSL.
#include "hash.h"

#include <climits>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace xrayd::aws_detail {

bool sha256(std::string_view data, Digest& out) noexcept {
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1) {
        return false;
    }
    return len == out.size();
}

bool hmac_sha256(std::span<const unsigned char> key, std::string_view data, Digest& out) noexcept {
    if (key.size() > static_cast<std::size_t>(INT_MAX)) {
        return false;
    }
    unsigned int len = 0;
    const unsigned char* result =
        HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
    return result != nullptr && len == out.size();
}

void append_hex(std::span<const unsigned char> bytes, std::string& out) {
    static constexpr char digits[] = "0123456789abcdef";
    const std::size_t start = out.size();
    out.resize(start + 2 * bytes.size());
    char* p = out.data() + start;
    for (unsigned char b : bytes) {
        *p++ = digits[b >> 4];
        *p++ = digits[b & 0x0f];
    }
}

void wipe(std::string& s) noexcept {
    OPENSSL_cleanse(s.data(), s.capacity());
    s.clear();
}

}  // namespace xrayd::aws_detail
