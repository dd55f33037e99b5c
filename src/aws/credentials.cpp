// Credentials wiping and the environment-variable credentials provider.
#include <xrayd/aws/credentials.h>

#include <utility>

#include <fmt/format.h>

#include <xrayd/common/startup_error.h>

#include "hash.h"

namespace xrayd {

Credentials::~Credentials() {
    // The session token is as sensitive as the secret while it is valid: wipe both.
    aws_detail::wipe(secret_access_key);
    aws_detail::wipe(session_token);
}

bool has_control_byte(std::string_view value) noexcept {
    for (const char c : value) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) {
            return true;
        }
    }
    return false;
}

Result<void, std::string> Credentials::validate(std::string_view source,
                                                const FieldNames& names) const {
    if (access_key_id.empty() || secret_access_key.empty()) {
        return fail(fmt::format("{}: {} or {} is empty", source, names[0], names[1]));
    }
    const std::string_view fields[] = {access_key_id, secret_access_key, session_token};
    for (std::size_t i = 0; i < 3; ++i) {
        if (has_control_byte(fields[i])) {
            return fail(fmt::format("{}: {} contains a control character (CR, LF or another byte "
                                    "below 0x20, or DEL); refusing these credentials",
                                    source, names[i]));
        }
    }
    return {};
}

std::unique_ptr<CredentialsProvider> make_environment_credentials_provider(const Environment& env) {
    auto key_id = env.get_non_empty("AWS_ACCESS_KEY_ID");
    auto secret = env.get_non_empty("AWS_SECRET_ACCESS_KEY");
    if (!key_id || !secret) {
        if (secret) {
            aws_detail::wipe(*secret);
        }
        return nullptr;
    }
    auto token = env.get_non_empty("AWS_SESSION_TOKEN");
    // Moving a short (inline) string copies its bytes: wipe what the moves leave behind.
    Credentials credentials(std::move(*key_id), std::move(*secret),
                            token ? std::move(*token) : std::string{});
    aws_detail::wipe(*secret);
    if (token) {
        aws_detail::wipe(*token);
    }
    if (auto valid = credentials.validate(
            "environment", {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"});
        !valid) {
        throw StartupError(valid.error());
    }
    return std::make_unique<StaticCredentialsProvider>(std::move(credentials), "environment");
}

}  // namespace xrayd
