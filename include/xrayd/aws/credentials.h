// Credentials and the CredentialsProvider interface every signer asks for them.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <xrayd/common/environment.h>
#include <xrayd/common/result.h>
#include <xrayd/common/time.h>

namespace xrayd {

// One immutable set of AWS credentials. The secret key and session token are wiped from memory
// on destruction. Not assignable: a snapshot is replaced by swapping the shared_ptr that holds
// it, never by overwriting it (which would free the old secret unwiped).
struct Credentials {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;  // empty for long-term keys
    std::optional<WallClock::time_point> expiration;

    Credentials() = default;
    Credentials(std::string key_id, std::string secret, std::string token = {},
                std::optional<WallClock::time_point> expires = std::nullopt)
        : access_key_id(std::move(key_id)),
          secret_access_key(std::move(secret)),
          session_token(std::move(token)),
          expiration(expires) {}
    Credentials(const Credentials&) = default;
    Credentials& operator=(const Credentials&) = delete;
    ~Credentials();

    // How the three fields are called where they came from, for validate()'s error.
    using FieldNames = std::array<std::string_view, 3>;
    static constexpr FieldNames json_field_names{"AccessKeyId", "SecretAccessKey", "SessionToken"};

    // Refuses credentials that cannot go into a header unchanged: a control byte (see
    // has_control_byte) in any field -- a session token "tok\r\nX-Injected: yes" would otherwise
    // become a header of its own on every signed request -- or an empty key id or secret.
    // Error: "<source>: <field> contains a control character (CR, LF, ...); refusing these
    // credentials"; never quotes a value. IMPORTANT: every source calls it on what it got,
    // before handing the credentials out.
    [[nodiscard]] Result<void, std::string> validate(
        std::string_view source, const FieldNames& names = json_field_names) const;
};

// True when `value` holds a byte below 0x20 or 0x7f (CR and LF end a header line, NUL cuts it,
// TAB and ESC have no place in a key or token). For every value that becomes a header.
[[nodiscard]] bool has_control_byte(std::string_view value) noexcept;

// Source of the current credentials. Thread-safe. The returned snapshot stays valid for as
// long as the caller holds it, even if the provider refreshes meanwhile.
class CredentialsProvider {
public:
    virtual ~CredentialsProvider() = default;
    // The current credentials, or nullptr when none are available (the caller fails the
    // request as retryable and counts it).
    [[nodiscard]] virtual std::shared_ptr<const Credentials> current() noexcept = 0;
    // Where the credentials come from, for logs: "environment", "static", ...
    [[nodiscard]] virtual std::string_view source() const noexcept = 0;
};

// Always returns the same credentials.
class StaticCredentialsProvider final : public CredentialsProvider {
public:
    // Credentials has no move constructor (its destructor wipes the secret): a copy either way.
    explicit StaticCredentialsProvider(const Credentials& credentials,
                                       std::string_view source = "static")
        : credentials_(std::make_shared<const Credentials>(credentials)), source_(source) {}
    [[nodiscard]] std::shared_ptr<const Credentials> current() noexcept override {
        return credentials_;
    }
    [[nodiscard]] std::string_view source() const noexcept override { return source_; }

private:
    std::shared_ptr<const Credentials> credentials_;
    std::string source_;
};

// AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN). nullptr when either of the
// first two is unset or empty. Throws StartupError when one holds a control byte.
[[nodiscard]] std::unique_ptr<CredentialsProvider> make_environment_credentials_provider(
    const Environment& env);

}  // namespace xrayd
