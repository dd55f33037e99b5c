// The STS credentials sources: AssumeRoleWithWebIdentity (EKS IRSA) and AssumeRole.
#include <xrayd/aws/credential_chain.h>

#include <chrono>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include <xrayd/aws/endpoint.h>
#include <xrayd/aws/sts.h>

#include "file_read.h"
#include "hash.h"
#include "string_util.h"

namespace xrayd {

namespace {

using aws_detail::wipe;

// What both STS sources share: an STS client for the daemon's region and the role to assume.
class StsSource : public CredentialsSource {
public:
    std::string_view name() const noexcept override { return name_; }

protected:
    StsSource(const CredentialOptions& options, const Environment& env, AssumeRoleParams params,
              std::string_view kind)
        : resolver_(options.region, options.endpoints),
          sts_(resolver_, env, options.http_timeout, options.cancel),
          params_(std::move(params)),
          region_(options.region),
          name_(fmt::format("{} {}", kind, params_.role_arn)) {}

    // The STS answer as a snapshot, or the error as "<failure>: <STS error>".
    static Result<std::shared_ptr<const Credentials>, std::string> snapshot(
        Result<std::unique_ptr<Credentials>, StsError> answer, std::string_view failure) {
        if (!answer) {
            return fail(fmt::format("{}: {}", failure, to_string(answer.error())));
        }
        return std::shared_ptr<const Credentials>(std::move(answer).value());
    }

    EndpointResolver resolver_;
    StsClient sts_;  // uses resolver_: declared after it
    AssumeRoleParams params_;
    std::string region_;
    std::string name_;
};

class WebIdentitySource final : public StsSource {
public:
    WebIdentitySource(const CredentialOptions& options, const Environment& env,
                      AssumeRoleParams params, std::string token_file)
        : StsSource(options, env, std::move(params), "web identity"),
          token_file_(std::move(token_file)) {}

    Result<std::shared_ptr<const Credentials>, std::string> fetch() override {
        auto token = aws_detail::read_whole_file(token_file_);
        if (!token) {
            return fail(fmt::format("web identity: cannot read the token file: {}", token.error()));
        }
        std::string trimmed(aws_detail::trim(token.value()));
        wipe(token.value());
        auto r = sts_.assume_role_with_web_identity(params_, trimmed, region_);
        wipe(trimmed);
        return snapshot(std::move(r),
                        fmt::format("AssumeRoleWithWebIdentity {} failed", params_.role_arn));
    }

private:
    std::string token_file_;
};

class AssumeRoleSource final : public StsSource {
public:
    AssumeRoleSource(const CredentialOptions& options, const Environment& env,
                     std::unique_ptr<CredentialsProvider> base, AssumeRoleParams params,
                     Logger& logger)
        : StsSource(options, env, std::move(params), "assume role"),
          base_(std::move(base)),
          logger_(logger) {}

    Result<std::shared_ptr<const Credentials>, std::string> fetch() override {
        const auto base = base_->current();
        if (base == nullptr) {
            return fail(fmt::format("Unable to assume role {}: no base credentials from {}",
                                    params_.role_arn, base_->source()));
        }
        auto r = sts_.assume_role(params_, *base, region_, WallClock::now());
        if (!r && r.error().code == "RegionDisabledException") {
            const std::string_view primary = partition_of(region_).primary_region;
            if (primary != region_) {
                logger_.warn("STS is not activated in {}; assuming role {} through {}", region_,
                             params_.role_arn, primary);
                region_ = std::string(primary);  // remembered for later refreshes
                r = sts_.assume_role(params_, *base, region_, WallClock::now());
            }
        }
        return snapshot(std::move(r), fmt::format("Unable to assume role {}", params_.role_arn));
    }

private:
    std::unique_ptr<CredentialsProvider> base_;
    Logger& logger_;
};

}  // namespace

std::string default_role_session_name() {
    return fmt::format("xray-daemon-{}", std::chrono::duration_cast<std::chrono::nanoseconds>(
                                             WallClock::now().time_since_epoch())
                                             .count());
}

std::unique_ptr<CredentialsSource> make_web_identity_credentials_source(
    const CredentialOptions& options, const Environment& env, std::string role_arn,
    std::string token_file, std::string session_name) {
    AssumeRoleParams params;
    params.role_arn = std::move(role_arn);
    params.session_name =
        session_name.empty() ? default_role_session_name() : std::move(session_name);
    return std::make_unique<WebIdentitySource>(options, env, std::move(params),
                                               std::move(token_file));
}

std::unique_ptr<CredentialsSource> make_assume_role_credentials_source(
    const CredentialOptions& options, const Environment& env,
    std::unique_ptr<CredentialsProvider> base, std::string role_arn, std::string session_name,
    Logger& logger, std::optional<int> duration_seconds, std::string external_id) {
    AssumeRoleParams params;
    params.role_arn = std::move(role_arn);
    params.session_name = std::move(session_name);
    params.duration_seconds = duration_seconds;
    params.external_id = std::move(external_id);
    return std::make_unique<AssumeRoleSource>(options, env, std::move(base), std::move(params),
                                              logger);
}

}  // namespace xrayd
