// Credentials from the JSON documents of the container endpoint, IMDS and credential_process.
#include "credentials_json.h"

#include <optional>

#include <fmt/format.h>

#include "iso8601.h"
#include "json_reader.h"

namespace xrayd::aws_detail {

Result<std::shared_ptr<const Credentials>, std::string> credentials_from_json(
    std::string_view what, std::string_view text, std::string_view token_key,
    bool expiration_required) {
    auto doc = aws_detail::parse_json_object(text);
    if (!doc) {
        return fail(fmt::format("{}: {}", what, doc.error()));
    }
    const auto key = doc.value().string("AccessKeyId");
    const auto secret = doc.value().string("SecretAccessKey");
    const auto token = doc.value().string(token_key);
    const auto expiration = doc.value().string("Expiration");
    if (!key || !secret || key->empty() || secret->empty()) {
        return fail(fmt::format("{}: the reply has no AccessKeyId or SecretAccessKey", what));
    }
    std::optional<WallClock::time_point> expires;
    if (expiration && !expiration->empty()) {
        expires = aws_detail::parse_iso8601(*expiration);
        if (!expires) {
            return fail(
                fmt::format("{}: Expiration \"{}\" is not an ISO-8601 time", what, *expiration));
        }
    } else if (expiration_required) {
        return fail(fmt::format("{}: the reply has no Expiration", what));
    }
    auto credentials =
        std::make_shared<Credentials>(std::string(*key), std::string(*secret),
                                      token ? std::string(*token) : std::string(), expires);
    if (auto valid = credentials->validate(what, {"AccessKeyId", "SecretAccessKey", token_key});
        !valid) {
        return fail(valid.error());
    }
    return std::shared_ptr<const Credentials>(std::move(credentials));
}

}  // namespace xrayd::aws_detail
