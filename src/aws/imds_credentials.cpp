// The EC2 instance profile credentials source, through IMDS.
#include <xrayd/aws/credential_chain.h>

#include <algorithm>

#include <fmt/format.h>

#include <xrayd/log/remote_text.h>

#include "credentials_json.h"
#include "hash.h"
#include "json_reader.h"
#include "string_util.h"

namespace xrayd {

namespace {

using aws_detail::credentials_from_json;
using aws_detail::wipe;

// IAM role names are [\w+=,.@-]{1,64}.
bool iam_name(std::string_view name) {
    if (name.empty() || name.size() > 64) {
        return false;
    }
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               std::string_view("_+=,.@-").find(c) != std::string_view::npos;
    });
}

class ImdsSource final : public CredentialsSource {
public:
    explicit ImdsSource(std::shared_ptr<ImdsClient> imds) : imds_(std::move(imds)) {}

    Result<std::shared_ptr<const Credentials>, std::string> fetch() override {
        constexpr std::string_view base = "/latest/meta-data/iam/security-credentials/";
        auto roles = imds_->get(base);
        if (!roles) {
            return fail(fmt::format("EC2 instance profile: {}", roles.error()));
        }
        std::string_view list = aws_detail::trim(roles.value());
        const std::string role(aws_detail::trim(list.substr(0, list.find('\n'))));
        if (role.empty()) {
            return fail(std::string("EC2 instance profile: no IAM role is attached"));
        }
        if (!iam_name(role)) {
            // It becomes part of the next request's path.
            return fail(fmt::format("EC2 instance profile: the role name {} is not an IAM name",
                                    RemoteText{role}));
        }
        auto body = imds_->get(std::string(base) + role);
        if (!body) {
            return fail(fmt::format("EC2 instance profile: {}", body.error()));
        }
        auto doc = aws_detail::parse_json_object(body.value());
        if (doc) {
            if (auto code = doc.value().string("Code"); code && *code != "Success") {
                wipe(body.value());
                return fail(fmt::format("EC2 instance profile: role {} credentials Code {}", role,
                                        RemoteText{*code}));
            }
        }
        auto credentials =
            credentials_from_json("EC2 instance profile", body.value(), "Token", false);
        wipe(body.value());
        return credentials;
    }
    std::string_view name() const noexcept override { return "ec2 instance profile"; }

private:
    std::shared_ptr<ImdsClient> imds_;
};

}  // namespace

std::unique_ptr<CredentialsSource> make_imds_credentials_source(std::shared_ptr<ImdsClient> imds) {
    return std::make_unique<ImdsSource>(std::move(imds));
}

}  // namespace xrayd
