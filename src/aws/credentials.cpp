// Credentials wiping and the environment-variable credentials provider.
#include <xrayd/aws/credentials.h>

#include <utility>

#include "hash.h"

namespace xrayd {

Credentials::~Credentials() {
    // The session token is as sensitive as the secret while it is valid: wipe both.
    aws_detail::wipe(secret_access_key);
    aws_detail::wipe(session_token);
}

std::unique_ptr<CredentialsProvider> make_environment_credentials_provider(
    const Environment& env) {
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
    return std::make_unique<StaticCredentialsProvider>(std::move(credentials), "environment");
}

}  // namespace xrayd
