// AWS Signature Version 4 signing: canonical request, string to sign, key derivation.
#include <xrayd/aws/sigv4.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <utility>

// SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, but EVP_DigestInit
// allocates a provider context on every call (measured: one malloc per init on 3.0) and
// HMAC()/EVP_MAC several; the low-level functions run the same assembly on a stack context.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "hash.h"

namespace xrayd {

namespace {

constexpr std::string_view algorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view scope_terminator = "aws4_request";
constexpr std::string_view amz_date_header = "x-amz-date";
constexpr std::string_view security_token_header = "x-amz-security-token";

[[nodiscard]] constexpr bool is_unreserved(unsigned char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

// Appends `text` percent-encoded per SigV4 (uppercase hex); '/' is kept when keep_slash.
void append_encoded(std::string_view text, bool keep_slash, std::string& out) {
    static constexpr char digits[] = "0123456789ABCDEF";
    for (char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            out.push_back(ch);
        } else {
            out.push_back('%');
            out.push_back(digits[c >> 4]);
            out.push_back(digits[c & 0x0f]);
        }
    }
}

[[nodiscard]] int hex_value(char ch) noexcept {
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

// Appends `text` (a raw query component) decoded then SigV4-encoded. A '%' not followed by two
// hex digits stays a literal '%'; '+' is a space, as servers parse form-style queries.
void append_requoted(std::string_view text, std::string& out) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        char ch = text[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%' && i + 2 < text.size()) {
            const int hi = hex_value(text[i + 1]);
            const int lo = hex_value(text[i + 2]);
            if (hi >= 0 && lo >= 0) {
                ch = static_cast<char>(hi * 16 + lo);
                i += 2;
            }
        }
        append_encoded(std::string_view(&ch, 1), false, out);
    }
}

// Appends the canonical URI of `path`.
void append_canonical_uri(std::string_view path, bool normalize, std::string& out) {
    if (path.empty()) {
        out.push_back('/');
        return;
    }
    if (!normalize) {
        if (path.front() != '/') {
            out.push_back('/');
        }
        append_encoded(path, true, out);
        return;
    }
    // RFC 3986 dot-segment removal plus empty-segment collapse. Segments are appended to `out`
    // as they come, each followed by '/'; ".." truncates `out` back to the previous '/'.
    const std::size_t base = out.size();  // the canonical path starts here, with a '/'
    out.push_back('/');
    bool trailing_slash = false;
    std::size_t pos = 0;
    while (pos <= path.size()) {
        std::size_t end = path.find('/', pos);
        if (end == std::string_view::npos) {
            end = path.size();
        }
        const std::string_view segment = path.substr(pos, end - pos);
        const bool last = end == path.size();
        if (segment.empty() || segment == ".") {
            trailing_slash = true;
        } else if (segment == "..") {
            // Drop the last segment written (if any): back to the '/' before it.
            if (out.size() > base + 1) {
                out.resize(out.size() - 1);  // the '/' after the segment
                const std::size_t slash = out.rfind('/');
                out.resize(slash + 1);
            }
            trailing_slash = true;
        } else {
            append_encoded(segment, false, out);
            out.push_back('/');
            trailing_slash = false;
        }
        if (last) {
            break;
        }
        pos = end + 1;
    }
    // `out` ends with '/' after every segment; keep it only when the path ends as a directory.
    if (!trailing_slash && out.size() > base + 1) {
        out.pop_back();
    }
}

// Appends `value` trimmed with each inner run of whitespace turned into one space.
void assign_trimmed(std::string_view value, std::string& out) {
    out.clear();
    bool pending_space = false;
    for (char ch : value) {
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            pending_space = !out.empty();
            continue;
        }
        if (pending_space) {
            out.push_back(' ');
            pending_space = false;
        }
        out.push_back(ch);
    }
}

void assign_lower(std::string_view name, std::string& out) {
    out.assign(name);
    for (char& ch : out) {
        if (ch >= 'A' && ch <= 'Z') {
            ch = static_cast<char>(ch - 'A' + 'a');
        }
    }
}

[[nodiscard]] bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i];
        if (x >= 'A' && x <= 'Z') {
            x = static_cast<char>(x - 'A' + 'a');
        }
        if (x != b[i]) {
            return false;
        }
    }
    return true;
}

// Writes "YYYYMMDDTHHMMSSZ" for `now` in UTC. The pre-1970 and post-9999 cases do not occur.
void format_amz_date(WallClock::time_point now, std::array<char, 16>& out) noexcept {
    using namespace std::chrono;
    const auto secs = floor<seconds>(now);
    const auto day = floor<days>(secs);
    const year_month_day ymd{day};
    const hh_mm_ss hms{secs - day};
    auto put = [&out](std::size_t at, unsigned value, std::size_t digits) {
        for (std::size_t i = digits; i-- > 0; value /= 10) {
            out[at + i] = static_cast<char>('0' + value % 10);
        }
    };
    put(0, static_cast<unsigned>(static_cast<int>(ymd.year())), 4);
    put(4, static_cast<unsigned>(ymd.month()), 2);
    put(6, static_cast<unsigned>(ymd.day()), 2);
    out[8] = 'T';
    put(9, static_cast<unsigned>(hms.hours().count()), 2);
    put(11, static_cast<unsigned>(hms.minutes().count()), 2);
    put(13, static_cast<unsigned>(hms.seconds().count()), 2);
    out[15] = 'Z';
}

[[nodiscard]] bool sha256_into(std::string_view data, aws_detail::Digest& out) noexcept {
    SHA256_CTX ctx;
    return SHA256_Init(&ctx) == 1 && SHA256_Update(&ctx, data.data(), data.size()) == 1 &&
           SHA256_Final(out.data(), &ctx) == 1;
}

// HMAC-SHA256 (RFC 2104) keyed by a 32-byte key, on stack contexts.
[[nodiscard]] bool hmac_sha256_into(std::span<const unsigned char, 32> key, std::string_view data,
                                    aws_detail::Digest& out) noexcept {
    std::array<unsigned char, SHA256_CBLOCK> pad{};
    aws_detail::Digest inner{};
    SHA256_CTX ctx;
    auto fill_pad = [&](unsigned char with) {
        for (std::size_t i = 0; i < pad.size(); ++i) {
            pad[i] = static_cast<unsigned char>((i < key.size() ? key[i] : 0) ^ with);
        }
    };
    fill_pad(0x36);
    bool ok = SHA256_Init(&ctx) == 1 && SHA256_Update(&ctx, pad.data(), pad.size()) == 1 &&
              SHA256_Update(&ctx, data.data(), data.size()) == 1 &&
              SHA256_Final(inner.data(), &ctx) == 1;
    fill_pad(0x5c);
    ok = ok && SHA256_Init(&ctx) == 1 && SHA256_Update(&ctx, pad.data(), pad.size()) == 1 &&
         SHA256_Update(&ctx, inner.data(), inner.size()) == 1 &&
         SHA256_Final(out.data(), &ctx) == 1;
    // Key-derived material.
    OPENSSL_cleanse(pad.data(), pad.size());
    OPENSSL_cleanse(inner.data(), inner.size());
    OPENSSL_cleanse(&ctx, sizeof ctx);
    return ok;
}

[[nodiscard]] std::span<const unsigned char> as_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const unsigned char*>(s.data()), s.size()};
}

}  // namespace

SigV4Signer::SigV4Signer(std::string region, std::string service, bool normalize_path)
    : region_(std::move(region)), service_(std::move(service)), normalize_path_(normalize_path) {}

SigV4Signer::~SigV4Signer() {
    wipe_cache();
}

SigV4Signer::SigV4Signer(SigV4Signer&& other) noexcept
    : region_(std::move(other.region_)),
      service_(std::move(other.service_)),
      normalize_path_(other.normalize_path_),
      key_date_(std::move(other.key_date_)),
      key_secret_(std::move(other.key_secret_)),
      key_(other.key_),
      headers_(std::move(other.headers_)),
      order_(std::move(other.order_)),
      params_(std::move(other.params_)),
      canonical_request_(std::move(other.canonical_request_)),
      string_to_sign_(std::move(other.string_to_sign_)),
      authorization_(std::move(other.authorization_)),
      amz_date_(other.amz_date_),
      header_views_(std::move(other.header_views_)) {
    other.wipe_cache();
}

SigV4Signer& SigV4Signer::operator=(SigV4Signer&& other) noexcept {
    if (this != &other) {
        wipe_cache();
        region_ = std::move(other.region_);
        service_ = std::move(other.service_);
        normalize_path_ = other.normalize_path_;
        key_date_ = std::move(other.key_date_);
        key_secret_ = std::move(other.key_secret_);
        key_ = other.key_;
        headers_ = std::move(other.headers_);
        order_ = std::move(other.order_);
        params_ = std::move(other.params_);
        canonical_request_ = std::move(other.canonical_request_);
        string_to_sign_ = std::move(other.string_to_sign_);
        authorization_ = std::move(other.authorization_);
        amz_date_ = other.amz_date_;
        header_views_ = std::move(other.header_views_);
        other.wipe_cache();
    }
    return *this;
}

void SigV4Signer::wipe_cache() noexcept {
    key_date_.clear();
    aws_detail::wipe(key_secret_);
    OPENSSL_cleanse(key_.data(), key_.size());
}

const std::string& SigV4Signer::last_canonical_request() const noexcept {
    return canonical_request_;
}

const std::string& SigV4Signer::last_string_to_sign() const noexcept {
    return string_to_sign_;
}

bool SigV4Signer::derive_key(std::string_view date, std::string_view secret) noexcept {
    if (!key_date_.empty() && key_date_ == date && key_secret_ == secret) {
        return true;
    }
    wipe_cache();
    // kSecret = "AWS4" + secret; kDate = HMAC(kSecret, date); kRegion = HMAC(kDate, region);
    // kService = HMAC(kRegion, service); kSigning = HMAC(kService, "aws4_request").
    std::string k_secret;
    k_secret.reserve(4 + secret.size());
    k_secret.append("AWS4").append(secret);
    aws_detail::Digest k_date{};
    aws_detail::Digest k_region{};
    aws_detail::Digest k_service{};
    const bool ok = aws_detail::hmac_sha256(as_bytes(k_secret), date, k_date) &&
                    aws_detail::hmac_sha256(k_date, region_, k_region) &&
                    aws_detail::hmac_sha256(k_region, service_, k_service) &&
                    aws_detail::hmac_sha256(k_service, scope_terminator, key_);
    aws_detail::wipe(k_secret);
    OPENSSL_cleanse(k_date.data(), k_date.size());
    OPENSSL_cleanse(k_region.data(), k_region.size());
    OPENSSL_cleanse(k_service.data(), k_service.size());
    if (!ok) {
        wipe_cache();
        return false;
    }
    key_date_.assign(date);
    key_secret_.assign(secret);
    return true;
}

SignedHeaders SigV4Signer::sign(const SigningRequest& request, const Credentials& credentials,
                                WallClock::time_point now) noexcept {
    SignedHeaders result;
    try {
        header_views_.clear();
        for (const HttpHeader& h : request.headers) {
            header_views_.push_back(HttpHeaderView{h.name, h.value});
        }
        const SigningRequestView view{request.method, request.path, request.query, header_views_,
                                      request.payload};
        SignedHeaderViews signed_headers;
        if (!sign(view, credentials, now, signed_headers)) {
            return {};
        }
        result.authorization.assign(signed_headers.authorization);
        result.amz_date.assign(signed_headers.amz_date);
        result.security_token.assign(signed_headers.security_token);
    } catch (...) {
        return {};  // out of memory: every field empty, as documented
    }
    return result;
}

bool SigV4Signer::sign(const SigningRequestView& request, const Credentials& credentials,
                       WallClock::time_point now, SignedHeaderViews& out) noexcept {
    out = SignedHeaderViews{};
    try {
        format_amz_date(now, amz_date_);
        const std::string_view amz_date(amz_date_.data(), amz_date_.size());
        const std::string_view date = amz_date.substr(0, 8);
        const bool has_token = !credentials.session_token.empty();

        // Canonical headers: fill the reused scratch entries, then sort indices by name (ties
        // keep the given order, so repeated names join in the order they are sent).
        std::size_t count = 0;
        auto add_header = [&](std::string_view name, std::string_view value) {
            if (headers_.size() <= count) {
                headers_.emplace_back();
            }
            assign_lower(name, headers_[count].name);
            assign_trimmed(value, headers_[count].value);
            ++count;
        };
        for (const HttpHeaderView& h : request.headers) {
            if (iequals(h.name, amz_date_header) || iequals(h.name, security_token_header)) {
                continue;  // sign() owns these two
            }
            add_header(h.name, h.value);
        }
        add_header(amz_date_header, amz_date);
        if (has_token) {
            add_header(security_token_header, credentials.session_token);
        }
        order_.resize(count);
        for (std::size_t i = 0; i < count; ++i) {
            order_[i] = i;
        }
        std::sort(order_.begin(), order_.end(), [this](std::size_t a, std::size_t b) {
            const int c = headers_[a].name.compare(headers_[b].name);
            return c < 0 || (c == 0 && a < b);
        });

        std::string& cr = canonical_request_;
        cr.clear();
        cr.append(request.method).push_back('\n');
        append_canonical_uri(request.path, normalize_path_, cr);
        cr.push_back('\n');

        // Canonical query.
        std::size_t nparams = 0;
        for (std::size_t pos = 0; pos <= request.query.size();) {
            std::size_t end = request.query.find('&', pos);
            if (end == std::string_view::npos) {
                end = request.query.size();
            }
            const std::string_view pair = request.query.substr(pos, end - pos);
            if (!pair.empty()) {
                const std::size_t eq = pair.find('=');
                if (params_.size() <= nparams) {
                    params_.emplace_back();
                }
                QueryParam& p = params_[nparams++];
                p.key.clear();
                p.value.clear();
                append_requoted(pair.substr(0, eq), p.key);
                if (eq != std::string_view::npos) {
                    append_requoted(pair.substr(eq + 1), p.value);
                }
            }
            pos = end + 1;
        }
        std::sort(params_.begin(), params_.begin() + static_cast<std::ptrdiff_t>(nparams),
                  [](const QueryParam& a, const QueryParam& b) {
                      const int c = a.key.compare(b.key);
                      return c < 0 || (c == 0 && a.value < b.value);
                  });
        for (std::size_t i = 0; i < nparams; ++i) {
            if (i > 0) {
                cr.push_back('&');
            }
            cr.append(params_[i].key).append("=").append(params_[i].value);
        }
        cr.push_back('\n');

        for (std::size_t i = 0; i < count; ++i) {
            const CanonicalHeader& h = headers_[order_[i]];
            if (i > 0 && h.name == headers_[order_[i - 1]].name) {
                cr.append(",").append(h.value);
                continue;
            }
            if (i > 0) {
                cr.push_back('\n');
            }
            cr.append(h.name).append(":").append(h.value);
        }
        cr.append("\n\n");
        const std::size_t signed_headers_start = cr.size();
        for (std::size_t i = 0; i < count; ++i) {
            const std::string& name = headers_[order_[i]].name;
            if (i > 0 && name == headers_[order_[i - 1]].name) {
                continue;
            }
            if (i > 0) {
                cr.push_back(';');
            }
            cr.append(name);
        }
        const std::size_t signed_headers_end = cr.size();
        cr.push_back('\n');

        aws_detail::Digest digest{};
        if (!sha256_into(request.payload, digest)) {
            return false;
        }
        aws_detail::append_hex(digest, cr);

        // String to sign.
        std::string& sts = string_to_sign_;
        sts.clear();
        sts.append(algorithm).append("\n").append(amz_date).append("\n");
        const std::size_t scope_start = sts.size();
        sts.append(date).append("/").append(region_).append("/").append(service_).append("/");
        sts.append(scope_terminator);
        const std::size_t scope_end = sts.size();
        sts.push_back('\n');
        if (!sha256_into(cr, digest)) {
            return false;
        }
        aws_detail::append_hex(digest, sts);

        if (!derive_key(date, credentials.secret_access_key)) {
            return false;
        }
        if (!hmac_sha256_into(key_, sts, digest)) {
            return false;
        }

        std::string& auth = authorization_;
        auth.clear();
        auth.append(algorithm).append(" Credential=").append(credentials.access_key_id);
        auth.append("/").append(std::string_view(sts).substr(scope_start, scope_end - scope_start));
        auth.append(", SignedHeaders=");
        auth.append(std::string_view(cr).substr(signed_headers_start,
                                                signed_headers_end - signed_headers_start));
        auth.append(", Signature=");
        aws_detail::append_hex(digest, auth);
        out.authorization = auth;
        out.amz_date = amz_date;
        if (has_token) {
            out.security_token = credentials.session_token;
        }
        return true;
    } catch (...) {
        // Only std::bad_alloc (a scratch buffer could not grow): fail as documented.
        return false;
    }
}

std::string sha256_hex(std::string_view data) noexcept {
    aws_detail::Digest digest{};
    if (!aws_detail::sha256(data, digest)) {
        return {};
    }
    std::string out;
    aws_detail::append_hex(digest, out);
    return out;
}

}  // namespace xrayd
