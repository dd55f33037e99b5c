// AWS Signature Version 4 request signing (header form), for the X-Ray API calls.
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <xrayd/aws/credentials.h>
#include <xrayd/common/time.h>

namespace xrayd {

struct HttpHeader {
    std::string name;
    std::string value;
};

// What sign() needs to know about one request. Borrows everything: the viewed data must stay
// alive for the duration of the sign() call only.
struct SigningRequest {
    std::string_view method;          // "POST"
    std::string_view path;            // raw path as sent, e.g. "/TraceSegments"
    std::string_view query;           // without '?', may be empty
    std::vector<HttpHeader> headers;  // the headers to sign, as they will be sent (Host
                                      // included). Not x-amz-date / x-amz-security-token:
                                      // sign() adds those (and ignores them if present here).
    std::string_view payload;         // the body
};

// A header to sign, borrowed.
struct HttpHeaderView {
    std::string_view name;
    std::string_view value;
};

// SigningRequest with the headers borrowed too, so building one allocates nothing. The viewed
// data must stay alive for the duration of the sign() call only.
struct SigningRequestView {
    std::string_view method;
    std::string_view path;
    std::string_view query;
    std::span<const HttpHeaderView> headers;  // as in SigningRequest::headers
    std::string_view payload;
};

// The result of the allocation-free sign(): views of the signer's own buffers (and of the
// credentials' session token). Valid until the next sign() call on the same signer, or until
// the credentials go away.
struct SignedHeaderViews {
    std::string_view authorization;
    std::string_view amz_date;
    std::string_view security_token;  // empty when the credentials have none
};

// The headers the caller adds to the request, next to the ones it signed.
struct SignedHeaders {
    std::string authorization;   // value for the Authorization header
    std::string amz_date;        // value for X-Amz-Date, e.g. 20261122T004828Z
    std::string security_token;  // value for X-Amz-Security-Token; empty when the credentials
                                 // have none
};

// Signs requests for one (region, service) with SigV4 (AWS4-HMAC-SHA256).
//
// Canonical form, as AWS (and the reference aws-c-auth and aws-sdk-go signers) define it:
// - path: with normalize_path, "." and ".." segments are removed and "//" collapsed (RFC 3986
//   dot-segment removal); then every byte other than A-Z a-z 0-9 - _ . ~ and '/' is
//   percent-encoded. A '%' in the path is therefore encoded again, as aws-sdk-go does for every
//   service but S3; normalize_path = false is what S3 needs.
// - query: split on '&' and the first '=', percent-decoded ('+' decodes to a space, like Go's
//   url.ParseQuery), re-encoded, sorted by key then value.
// - headers: names lower-cased and sorted, values trimmed with inner runs of whitespace
//   collapsed to one space, repeated names joined with ',' in the order given.
// - payload: always hashed (SHA-256 hex); no x-amz-content-sha256 header is added (the caller
//   puts one in `headers` if the service wants it).
//
// Thread-safety: not thread-safe; it caches the derived signing key per (date, secret) and
// reuses scratch buffers. Use one signer per thread. Movable, not copyable.
// IMPORTANT: the cached signing key and a copy of the secret live in the signer; they are wiped
// (OPENSSL_cleanse) when replaced, moved from or destroyed.
class SigV4Signer {
public:
    SigV4Signer(std::string region, std::string service, bool normalize_path = true);
    ~SigV4Signer();
    SigV4Signer(const SigV4Signer&) = delete;
    SigV4Signer& operator=(const SigV4Signer&) = delete;
    SigV4Signer(SigV4Signer&& other) noexcept;
    SigV4Signer& operator=(SigV4Signer&& other) noexcept;

    // Signs `request` with `credentials` at time `now` (only whole seconds are used).
    // When the credentials carry a session token, x-amz-security-token is signed and returned.
    // IMPORTANT: if OpenSSL fails (not expected outside memory exhaustion) every field of the
    // result is empty: the caller must check `authorization.empty()` and fail the request as
    // retryable instead of sending it unsigned.
    [[nodiscard]] SignedHeaders sign(const SigningRequest& request, const Credentials& credentials,
                                     WallClock::time_point now) noexcept;

    // The same signature, written into `out` as views of the signer's buffers: allocates
    // nothing once the signer has signed a request at least as large (its scratch buffers keep
    // their capacity) and the signing key is cached (same day, same secret). Hashing uses
    // OpenSSL's context-free SHA-256 (EVP contexts allocate on every init in OpenSSL 3).
    // False when OpenSSL fails or memory runs out; `out` is then all empty and the request must
    // fail as retryable, never go out unsigned.
    [[nodiscard]] bool sign(const SigningRequestView& request, const Credentials& credentials,
                            WallClock::time_point now, SignedHeaderViews& out) noexcept;

    // The intermediate texts of the last sign() call, for tests and debug logs. Valid until
    // the next sign() call.
    [[nodiscard]] const std::string& last_canonical_request() const noexcept;
    [[nodiscard]] const std::string& last_string_to_sign() const noexcept;

private:
    static constexpr std::size_t key_size = 32;  // SHA-256 output

    // Recomputes key_ unless it was derived for this date and secret. False on OpenSSL error.
    [[nodiscard]] bool derive_key(std::string_view date, std::string_view secret) noexcept;
    void wipe_cache() noexcept;

    std::string region_;
    std::string service_;
    bool normalize_path_;

    // Signing-key cache.
    std::string key_date_;    // YYYYMMDD the key was derived for; empty when none
    std::string key_secret_;  // the secret it was derived from
    std::array<unsigned char, key_size> key_{};

    // Scratch reused across calls so the steady state does not allocate for them.
    struct CanonicalHeader {
        std::string name;   // lower-cased
        std::string value;  // trimmed, whitespace collapsed
    };
    std::vector<CanonicalHeader> headers_;
    std::vector<std::size_t> order_;
    struct QueryParam {
        std::string key;    // encoded
        std::string value;  // encoded
    };
    std::vector<QueryParam> params_;
    std::string canonical_request_;
    std::string string_to_sign_;
    std::string authorization_;
    std::array<char, 16> amz_date_{};           // YYYYMMDDTHHMMSSZ
    std::vector<HttpHeaderView> header_views_;  // the allocating sign()'s headers, as views
};

// Lower-case hex SHA-256 of `data`; empty only if OpenSSL fails. Thread-safe.
[[nodiscard]] std::string sha256_hex(std::string_view data) noexcept;

}  // namespace xrayd
