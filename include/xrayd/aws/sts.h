// StsClient: STS AssumeRole (SigV4-signed) and AssumeRoleWithWebIdentity (unsigned), AWS query
// protocol with XML replies.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <xrayd/aws/credentials.h>
#include <xrayd/aws/endpoint.h>
#include <xrayd/common/environment.h>
#include <xrayd/common/result.h>
#include <xrayd/http/http_client.h>

namespace xrayd {

struct StsError {
    std::string code;     // STS error code ("AccessDenied", "RegionDisabledException"), or
                          // "Transport" / "HTTP <status>" / "MalformedResponse"
    std::string message;  // STS's message or the transport error; never a secret
    long status = 0;      // HTTP status, 0 on transport errors
};

[[nodiscard]] std::string to_string(const StsError& error);

struct AssumeRoleParams {
    std::string role_arn;
    std::string session_name = "xray-daemon";
    std::optional<int> duration_seconds;  // unset: STS default (1 h)
    std::string external_id;              // "" = none
};

// One client per thread that uses it (it owns an HttpClient). Requests use HTTPS_PROXY /
// NO_PROXY from the environment, as the SDK's default client does; `cancel` (may be null) ends
// a request in progress ("Transport" error). Lifetime: `endpoints` outlives it.
class StsClient {
public:
    StsClient(const EndpointResolver& endpoints, const Environment& env,
              std::chrono::milliseconds timeout = std::chrono::seconds(5),
              std::shared_ptr<const Cancellation> cancel = nullptr);

    // POST Action=AssumeRole to the STS endpoint of `region`, signed with `base`.
    [[nodiscard]] Result<std::unique_ptr<Credentials>, StsError> assume_role(
        const AssumeRoleParams& params, const Credentials& base, std::string_view region,
        WallClock::time_point now);

    // POST Action=AssumeRoleWithWebIdentity (no signature; the token authenticates).
    [[nodiscard]] Result<std::unique_ptr<Credentials>, StsError> assume_role_with_web_identity(
        const AssumeRoleParams& params, std::string_view web_identity_token,
        std::string_view region);

private:
    [[nodiscard]] Result<std::unique_ptr<Credentials>, StsError> call(std::string_view action,
                                                                      std::string& body,
                                                                      const Credentials* base,
                                                                      std::string_view region,
                                                                      WallClock::time_point now);

    const EndpointResolver& endpoints_;
    std::string proxy_https_;
    std::string proxy_http_;
    std::string no_proxy_;
    std::chrono::milliseconds timeout_;
    HttpClient http_;
};

// Parses an STS <...Result><Credentials> reply body. Exposed for tests.
[[nodiscard]] Result<std::unique_ptr<Credentials>, StsError> parse_sts_credentials(
    std::string_view xml);
// Parses an STS <ErrorResponse> body (code and message; "HTTP <status>" when not XML).
[[nodiscard]] StsError parse_sts_error(std::string_view xml, long status);

}  // namespace xrayd
