// credentials_from_json: the JSON credential documents of the container endpoint, IMDS and
// credential_process, private to the aws module.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <xrayd/aws/credentials.h>
#include <xrayd/common/result.h>

namespace xrayd::aws_detail {

// Credentials from a JSON document with AccessKeyId, SecretAccessKey, `token_key`, Expiration.
// Errors start with `what` and never quote the document (it holds secrets). Thread-safe.
[[nodiscard]] Result<std::shared_ptr<const Credentials>, std::string> credentials_from_json(
    std::string_view what, std::string_view text, std::string_view token_key,
    bool expiration_required);

}  // namespace xrayd::aws_detail
