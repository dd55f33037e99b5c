// SHA-256, HMAC-SHA256 and hex helpers over OpenSSL, private to the aws module.
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace xrayd::aws_detail {

inline constexpr std::size_t digest_size = 32;  // SHA-256 and HMAC-SHA256 output
using Digest = std::array<unsigned char, digest_size>;

// SHA-256 of `data` into `out`. False when OpenSSL fails. Thread-safe.
[[nodiscard]] bool sha256(std::string_view data, Digest& out) noexcept;

// HMAC-SHA256 of `data` keyed by `key` into `out`. False when OpenSSL fails. Thread-safe.
[[nodiscard]] bool hmac_sha256(std::span<const unsigned char> key, std::string_view data,
                               Digest& out) noexcept;

// Appends the lower-case hex of `bytes` to `out`.
void append_hex(std::span<const unsigned char> bytes, std::string& out);

// Overwrites the whole buffer of `s` (up to its capacity, so bytes left behind by a shorter
// reassignment go too) with OPENSSL_cleanse, then empties it.
void wipe(std::string& s) noexcept;

}  // namespace xrayd::aws_detail
