// ImdsClient: the EC2 Instance Metadata Service (IMDSv2 session tokens, IMDSv1 fallback) and
// the host identity telemetry reports.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <xrayd/aws/credentials_clock.h>
#include <xrayd/common/environment.h>
#include <xrayd/common/result.h>
#include <xrayd/http/http_client.h>
#include <xrayd/log/logger.h>

namespace xrayd {

struct ImdsOptions {
    bool disabled = false;                            // AWS_EC2_METADATA_DISABLED=true
    std::string endpoint = "http://169.254.169.254";  // AWS_EC2_METADATA_SERVICE_ENDPOINT
    bool v1_disabled = false;                         // AWS_EC2_METADATA_V1_DISABLED=true
    // Short: off EC2 the link-local address does not answer, and a container behind a bridge
    // with hop limit 1 never gets the token reply.
    std::chrono::milliseconds connect_timeout{1000};
    std::chrono::milliseconds total_timeout{1000};
    int attempts = 2;  // per request, for timeouts, connection errors and 5xx
    // Requested session token TTL; the client clamps it (and the TTL IMDS echoes) to
    // 1 s..max_token_ttl.
    std::chrono::seconds token_ttl{21600};
    static constexpr std::chrono::seconds max_token_ttl{21600};  // what IMDS allows

    // The variables above, plus AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6
    // (http://[fd00:ec2::254]) when no endpoint is given. Throws StartupError when
    // AWS_EC2_METADATA_SERVICE_ENDPOINT is not a plain http(s)://host[:port] URL (user info,
    // a path, a query or a fragment would change where the requests and the token go).
    [[nodiscard]] static ImdsOptions from_environment(const Environment& env);
};

// Thread-safe (one request at a time, under a mutex). Lifetime: `clock` outlives it; `cancel`
// (may be null) is shared: once it fires, a request in progress ends and every later get()
// fails at once.
//
// Token rules (as aws-sdk-go-v2's imds client): PUT /latest/api/token with the TTL header; the
// token is reused until one minute before the TTL the reply echoes; a 401 on a GET drops it,
// gets a new one and retries once. When the PUT is refused with 403, 404 or 405, or gets no
// answer (timeout or connection failure: the hop-limit case), later calls go without a token
// (IMDSv1), unless v1 is disabled. A 400 on the PUT is an error. The PUT never carries
// X-Forwarded-For, and no IMDS request goes through a proxy.
class ImdsClient {
public:
    ImdsClient(ImdsOptions options, const CredentialsClock& clock,
               std::shared_ptr<const Cancellation> cancel = nullptr);

    [[nodiscard]] bool disabled() const noexcept { return options_.disabled; }
    [[nodiscard]] const ImdsOptions& options() const noexcept { return options_; }

    // GET <endpoint><path>, e.g. "/latest/meta-data/instance-id". The body on 200, else an
    // error text ("EC2 IMDS is disabled", "... status 404", the curl error).
    // IMPORTANT: the body of a credentials path holds secrets: wipe it after use.
    [[nodiscard]] Result<std::string, std::string> get(std::string_view path) noexcept;

private:
    enum class TokenMode { unknown, v2, v1 };
    [[nodiscard]] Result<HttpResponse, HttpError> send(const HttpRequest& request);
    // A token, "" for v1, or an error.
    [[nodiscard]] Result<std::string, std::string> token();

    ImdsOptions options_;
    const CredentialsClock& clock_;
    std::mutex mutex_;
    HttpClient http_;
    TokenMode mode_ = TokenMode::unknown;
    std::string token_;
    WallClock::time_point token_refresh_at_{};
};

// Host identity for telemetry records.
struct HostIdentity {
    std::string hostname;     // "" when unknown
    std::string instance_id;  // "" when unknown
};

// AWS_HOSTNAME, else (not local mode, `imds` non-null) IMDS meta-data/hostname; the same for
// AWS_INSTANCE_ID / instance-id. Logs the Go daemon's lines; IMDS failures at Debug.
[[nodiscard]] HostIdentity resolve_host_identity(const Environment& env, bool local_mode,
                                                 ImdsClient* imds, Logger& logger);

}  // namespace xrayd
