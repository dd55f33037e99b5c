// The default credential chain (environment, shared files, web identity, container, IMDS) with
// assume role on top, and the factories of its individual sources. The refresh machinery they
// share is in refreshing_provider.h.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <xrayd/aws/credentials.h>
#include <xrayd/aws/credentials_clock.h>
#include <xrayd/aws/endpoint.h>
#include <xrayd/aws/imds.h>
#include <xrayd/aws/refreshing_provider.h>
#include <xrayd/common/environment.h>
#include <xrayd/http/cancellation.h>
#include <xrayd/log/logger.h>

namespace xrayd {

// Everything the chain needs besides the environment.
struct CredentialOptions {
    std::string region;    // the daemon's resolved region: STS calls go to its endpoint
    std::string role_arn;  // -r / RoleARN: assume it with the chain's credentials ("" = no)
    std::string role_session_name = "xray-daemon";
    EndpointSettings endpoints;  // for STS (AWS_ENDPOINT_URL_STS, FIPS, dual-stack)
    ImdsOptions imds;            // usually ImdsOptions::from_environment(env)
    // The IMDS client to share with region and host-identity lookups (it remembers the token
    // and whether IMDSv1 is in use); nullptr: the chain makes its own from `imds`.
    std::shared_ptr<ImdsClient> imds_client;
    // Base URL for AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (tests point it at a loopback server).
    std::string container_relative_base = "http://169.254.170.2";
    std::chrono::milliseconds http_timeout{5000};      // container and STS requests
    std::chrono::milliseconds process_timeout{60000};  // credential_process
    RefreshPolicy refresh;
    // Fired at shutdown: every fetch in progress (container, STS, web identity, a chain-made
    // IMDS client, credential_process) ends at once and later ones fail. nullptr: never.
    std::shared_ptr<const Cancellation> cancel;
};

// Builds the provider the daemon signs with, choosing the first configured source in the
// SDK's order (the choice is made once, at start-up, like aws-sdk-go-v2 LoadDefaultConfig):
//  1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
//  2. the shared files' profile (AWS_PROFILE or default): static keys, role_arn with
//     source_profile / credential_source / web_identity_token_file, credential_process;
//  3. AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (AWS_ROLE_SESSION_NAME) -> STS
//     AssumeRoleWithWebIdentity (EKS IRSA);
//  4. AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, else _FULL_URI with
//     AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (re-read at every refresh) or _TOKEN;
//  5. EC2 instance profile through IMDS (unless AWS_EC2_METADATA_DISABLED).
// With options.role_arn the result assumes that role (session "xray-daemon") on the regional
// STS endpoint, falling back to the partition's primary region on RegionDisabledException.
// Never returns nullptr: with no source at all the provider's current() is always nullptr
// (logged once at Warn). Throws StartupError for configuration that can never work (an
// AWS_PROFILE that does not exist, a FULL_URI on a host that is not allowed, a profile
// role_arn without a source). Lifetime: clock and logger outlive the provider; the provider
// owns its refresh threads.
[[nodiscard]] std::unique_ptr<CredentialsProvider> make_default_credentials_chain(
    const CredentialOptions& options, const Environment& env, CredentialsClock& clock,
    Logger& logger);

// --- The individual sources (the chain builds these; exposed for tests) ---------------------

// src/aws/container_credentials.cpp:
// AWS_CONTAINER_CREDENTIALS_* as described above; nullptr when neither URI variable is set.
// Throws StartupError when RELATIVE_URI is not a path ("/..."; it is joined to
// container_relative_base by libcurl, never concatenated), when FULL_URI is not http(s), holds
// user info, or is plain http to a host that is not loopback, 169.254.170.2, 169.254.170.23 or
// fd00:ec2::23 (every address the name resolves to must be).
[[nodiscard]] std::unique_ptr<CredentialsSource> make_container_credentials_source(
    const CredentialOptions& options, const Environment& env);

// True when `host` (a name or literal) resolves only to addresses the container provider may
// call over plain http.
[[nodiscard]] bool container_host_allowed(const std::string& host);

// src/aws/imds_credentials.cpp:
// The EC2 instance profile: GET .../iam/security-credentials/ for the role name, then the role.
[[nodiscard]] std::unique_ptr<CredentialsSource> make_imds_credentials_source(
    std::shared_ptr<ImdsClient> imds);

// src/aws/sts_credentials.cpp:
// STS AssumeRoleWithWebIdentity with the token read from `token_file` at every fetch; an empty
// `session_name` is replaced by default_role_session_name().
[[nodiscard]] std::unique_ptr<CredentialsSource> make_web_identity_credentials_source(
    const CredentialOptions& options, const Environment& env, std::string role_arn,
    std::string token_file, std::string session_name);

// STS AssumeRole with the credentials of `base` (owned), in options.region.
[[nodiscard]] std::unique_ptr<CredentialsSource> make_assume_role_credentials_source(
    const CredentialOptions& options, const Environment& env,
    std::unique_ptr<CredentialsProvider> base, std::string role_arn, std::string session_name,
    Logger& logger, std::optional<int> duration_seconds = std::nullopt,
    std::string external_id = {});

// "xray-daemon-<nanoseconds since the epoch>": the session name of a web identity role or of a
// profile's role_arn when none is configured.
[[nodiscard]] std::string default_role_session_name();

// src/aws/process_credentials.cpp:
// `sh -c command`, whose stdout is {"Version":1,"AccessKeyId",...,"Expiration"?}. The command
// runs in a process group of its own with an empty signal mask and default signal dispositions;
// when it has not exited `timeout` after the start (or `cancel` fires), the whole group is
// killed (SIGKILL) and reaped, whatever it did with its stdout.
[[nodiscard]] std::unique_ptr<CredentialsSource> make_process_credentials_source(
    std::string command, std::chrono::milliseconds timeout,
    std::shared_ptr<const Cancellation> cancel = nullptr);

}  // namespace xrayd
