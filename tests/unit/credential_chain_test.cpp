// The credential sources against real servers on loopback (container endpoint, IMDS, STS), the
// chain's order, and refresh/expiry driven by a manual clock.
#include <xrayd/aws/credential_chain.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <xrayd/common/startup_error.h>
#include <xrayd/http/curl.h>

#include "http_test_server.h"
#include "src/aws/iso8601.h"  // private parser, tested directly for the fuzz regression

namespace xrayd {
namespace {

using test::HttpTestServer;
using test::scripted;
using test::ScriptedResponse;

constexpr const char* secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

std::string container_body(const char* token = "IQoJb3JpZ2luX2VjEXAMPLEecsTaskRoleToken==",
                           const char* expiration = "2024-05-01T16:20:00Z") {
    return std::string(R"({"RoleArn":"arn:aws:iam::123456789012:role/xray","AccessKeyId":)"
                       R"("ASIAIOSFODNN7EXAMPLE","SecretAccessKey":")") +
           secret + R"(","Token":")" + token + R"(","Expiration":")" + expiration + "\"}";
}

constexpr const char* assume_role_xml =
    R"(<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:xray-daemon</AssumedRoleId>
      <Arn>arn:aws:sts::123456789012:assumed-role/xray-cross-account/xray-daemon</Arn>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAROLEEXAMPLE</AccessKeyId>
      <SecretAccessKey>roleSecret/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>
      <SessionToken>IQoJb3JpZ2luX2VjEXAMPLEassumedRoleSessionToken+/=</SessionToken>
      <Expiration>2024-05-01T10:15:00Z</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe</RequestId></ResponseMetadata>
</AssumeRoleResponse>)";

constexpr const char* web_identity_xml =
    R"(<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIAWEBIDEXAMPLE</AccessKeyId>
      <SecretAccessKey>webSecretEXAMPLE</SecretAccessKey>
      <SessionToken>webToken</SessionToken>
      <Expiration>2024-05-01T11:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>)";

constexpr const char* access_denied_xml =
    R"(<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>AccessDenied</Code>
    <Message>User: arn:aws:iam::123456789012:user/daemon is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/xray-cross-account</Message>
  </Error>
  <RequestId>4f2b6a0e</RequestId>
</ErrorResponse>)";

constexpr const char* region_disabled_xml =
    R"(<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>RegionDisabledException</Code>
    <Message>STS is not activated in this region for account:123456789012.</Message>
  </Error>
  <RequestId>5a3c7b1f</RequestId>
</ErrorResponse>)";

WallClock::time_point t0() {
    return WallClock::from_time_t(1714557600);
}  // 2024-05-01T10:00Z

Environment env_of(std::map<std::string, std::string, std::less<>> vars) {
    vars.emplace("HOME", "/nonexistent");  // never read the real ~/.aws
    return Environment(std::move(vars));
}

class Lines final : public LogSink {
public:
    explicit Lines(std::vector<std::string>& out) : out_(out) {}
    void write(std::string_view line) noexcept override { out_.emplace_back(line); }

private:
    std::vector<std::string>& out_;
};

std::size_t count_lines(const std::vector<std::string>& lines, std::string_view needle) {
    std::size_t n = 0;
    for (const auto& l : lines) {
        n += l.find(needle) != std::string::npos ? 1 : 0;
    }
    return n;
}

std::string temp_file(const std::string& name, const std::string& content) {
    std::string path = "/tmp/xrayd-chain-test-" + std::to_string(::getpid()) + "-" + name;
    std::ofstream(path, std::ios::trunc) << content;
    return path;
}

CredentialOptions options_with(std::string region = "us-west-2") {
    CredentialOptions o;
    o.region = std::move(region);
    o.imds.disabled = true;
    o.http_timeout = std::chrono::milliseconds(3000);
    return o;
}

struct Fixture {
    CurlGlobal curl = CurlGlobal::init();
    std::vector<std::string> lines;
    Logger logger{LogLevel::debug, std::make_unique<Lines>(lines)};
    ManualCredentialsClock clock{t0()};

    [[nodiscard]] bool logged_secret() const {
        for (const auto& l : lines) {
            if (l.find(secret) != std::string::npos || l.find("roleSecret") != std::string::npos ||
                l.find("webSecret") != std::string::npos ||
                l.find("pod-identity-token") != std::string::npos) {
                return true;
            }
        }
        return false;
    }
};

}  // namespace

TEST_CASE("container provider: FULL_URI with the token file re-read at every fetch") {
    Fixture f;
    HttpTestServer server;
    server.set_default_response(scripted(200, container_body()));
    const std::string token_file = temp_file("token", "pod-identity-token-1\n");
    const Environment env =
        env_of({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", server.url() + "/v1/creds"},
                {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file},
                {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "ignored-env-token"}});
    auto source = make_container_credentials_source(options_with(), env);
    REQUIRE(source != nullptr);
    auto first = source->fetch();
    REQUIRE(first.ok());
    CHECK(first.value()->access_key_id == "ASIAIOSFODNN7EXAMPLE");
    CHECK(first.value()->secret_access_key == secret);
    CHECK(first.value()->session_token == "IQoJb3JpZ2luX2VjEXAMPLEecsTaskRoleToken==");
    CHECK(first.value()->expiration == WallClock::from_time_t(1714580400));
    temp_file("token", "pod-identity-token-2");
    REQUIRE(source->fetch().ok());
    const auto requests = server.requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[0].path == "/v1/creds");
    CHECK(requests[0].header("Authorization") == "pod-identity-token-1");
    CHECK(requests[1].header("Authorization") == "pod-identity-token-2");
    std::remove(token_file.c_str());
}

TEST_CASE("container provider: RELATIVE_URI wins over FULL_URI and sends no Authorization "
          "without a token") {
    Fixture f;
    HttpTestServer server;
    server.set_default_response(scripted(200, container_body()));
    CredentialOptions o = options_with();
    o.container_relative_base = server.url();
    auto source = make_container_credentials_source(
        o, env_of({{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/uuid"},
                   {"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/never"}}));
    REQUIRE(source->fetch().ok());
    const auto requests = server.requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].path == "/v2/credentials/uuid");
    CHECK_FALSE(requests[0].header("Authorization").has_value());
}

TEST_CASE("container provider: an error reply gives the code and message, never the body's "
          "secrets") {
    Fixture f;
    HttpTestServer server;
    server.push_response(scripted(
        403,
        R"({"code":"AccessDenied","message":"Unable to retrieve credentials for the task role"})"));
    auto source = make_container_credentials_source(
        options_with(), env_of({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", server.url() + "/c"},
                                {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok"}}));
    auto r = source->fetch();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().find("403") != std::string::npos);
    CHECK(r.error().find("AccessDenied: Unable to retrieve credentials for the task role") !=
          std::string::npos);
    CHECK(server.requests()[0].header("Authorization") == "tok");
}

TEST_CASE("container provider: plain http FULL_URI only to loopback or the ECS/EKS addresses") {
    CHECK(container_host_allowed("127.0.0.1"));
    CHECK(container_host_allowed("127.1.2.3"));
    CHECK(container_host_allowed("::1"));
    CHECK(container_host_allowed("169.254.170.2"));
    CHECK(container_host_allowed("169.254.170.23"));
    CHECK(container_host_allowed("fd00:ec2::23"));
    CHECK(container_host_allowed("localhost"));
    CHECK_FALSE(container_host_allowed("169.254.169.254"));
    CHECK_FALSE(container_host_allowed("10.0.0.1"));
    CHECK_FALSE(container_host_allowed("fd00:ec2::254"));
    const CredentialOptions o = options_with();
    CHECK_THROWS_AS((void)make_container_credentials_source(
                        o, env_of({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.0.0.1/c"}})),
                    StartupError);
    CHECK(make_container_credentials_source(o, env_of({{"AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                                        "https://creds.example/c"}})) != nullptr);
    CHECK(make_container_credentials_source(o, env_of({{"AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                                        "http://[fd00:ec2::23]/c"}})) != nullptr);
}

TEST_CASE("IMDS provider: token, role name, then the role's credentials") {
    Fixture f;
    HttpTestServer server;
    server.push_response(scripted(200, "tok", {{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}}));
    server.push_response(scripted(200, "xray-daemon-role"));
    server.push_response(scripted(
        200,
        std::string(
            R"({"Code":"Success","LastUpdated":"2024-05-01T10:00:00Z","Type":"AWS-HMAC","AccessKeyId":"ASIAIMDS","SecretAccessKey":")") +
            secret + R"(","Token":"imdsToken","Expiration":"2024-05-01T16:20:00Z"})"));
    ImdsOptions io;
    io.endpoint = server.url();
    auto imds = std::make_shared<ImdsClient>(io, f.clock);
    auto source = make_imds_credentials_source(imds);
    auto r = source->fetch();
    REQUIRE(r.ok());
    CHECK(r.value()->access_key_id == "ASIAIMDS");
    CHECK(r.value()->session_token == "imdsToken");
    const auto requests = server.requests();
    REQUIRE(requests.size() == 3);
    CHECK(requests[1].path == "/latest/meta-data/iam/security-credentials/");
    CHECK(requests[2].path == "/latest/meta-data/iam/security-credentials/xray-daemon-role");
    CHECK(requests[2].header("X-aws-ec2-metadata-token") == "tok");
}

TEST_CASE("assume role: a signed AssumeRole for session xray-daemon on the STS endpoint") {
    Fixture f;
    HttpTestServer sts;
    sts.push_response(scripted(200, assume_role_xml));
    const Environment env = env_of({{"AWS_ENDPOINT_URL_STS", sts.url()}});
    CredentialOptions o = options_with("us-west-2");
    o.endpoints = EndpointSettings::from_environment("", env);
    auto base = std::make_unique<StaticCredentialsProvider>(Credentials("AKIDBASE", secret));
    RefreshingCredentialsProvider provider(
        make_assume_role_credentials_source(o, env, std::move(base),
                                            "arn:aws:iam::123456789012:role/xray-cross-account",
                                            "xray-daemon", f.logger),
        f.clock, f.logger);
    const auto creds = provider.current();
    REQUIRE(creds != nullptr);
    CHECK(creds->access_key_id == "ASIAROLEEXAMPLE");
    CHECK(creds->session_token == "IQoJb3JpZ2luX2VjEXAMPLEassumedRoleSessionToken+/=");
    CHECK(creds->expiration == WallClock::from_time_t(1714558500));
    const auto requests = sts.requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].method == "POST");
    CHECK(requests[0].body ==
          "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fxray-cross-account"
          "&RoleSessionName=xray-daemon&Version=2011-06-15");
    CHECK(requests[0].header("Content-Type") == "application/x-www-form-urlencoded; charset=utf-8");
    const std::string auth = requests[0].header("Authorization").value_or("");
    CHECK(auth.find("Credential=AKIDBASE/") != std::string::npos);
    CHECK(auth.find("/us-west-2/sts/aws4_request") != std::string::npos);
    CHECK(auth.find("SignedHeaders=content-type;host;x-amz-date") != std::string::npos);
    CHECK_FALSE(f.logged_secret());
}

TEST_CASE("assume role: RegionDisabledException retries in the partition's primary region") {
    Fixture f;
    HttpTestServer sts;
    sts.push_response(scripted(403, region_disabled_xml));
    sts.push_response(scripted(200, assume_role_xml));
    const Environment env = env_of({{"AWS_ENDPOINT_URL_STS", sts.url()}});
    CredentialOptions o = options_with("eu-south-2");
    o.endpoints = EndpointSettings::from_environment("", env);
    RefreshingCredentialsProvider provider(
        make_assume_role_credentials_source(
            o, env, std::make_unique<StaticCredentialsProvider>(Credentials("AKIDBASE", secret)),
            "arn:aws:iam::1:role/r", "xray-daemon", f.logger),
        f.clock, f.logger);
    REQUIRE(provider.current() != nullptr);
    const auto requests = sts.requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[0].header("Authorization").value_or("").find("/eu-south-2/sts/") !=
          std::string::npos);
    CHECK(requests[1].header("Authorization").value_or("").find("/us-east-1/sts/") !=
          std::string::npos);
}

TEST_CASE("assume role: AccessDenied is logged once per interval with the role and STS's "
          "message, and retried with backoff") {
    Fixture f;
    HttpTestServer sts;
    sts.set_default_response(scripted(403, access_denied_xml));
    const Environment env = env_of({{"AWS_ENDPOINT_URL_STS", sts.url()}});
    CredentialOptions o = options_with();
    o.endpoints = EndpointSettings::from_environment("", env);
    RefreshPolicy policy;
    policy.error_log_interval = std::chrono::hours(1);
    RefreshingCredentialsProvider provider(
        make_assume_role_credentials_source(
            o, env, std::make_unique<StaticCredentialsProvider>(Credentials("AKIDBASE", secret)),
            "arn:aws:iam::123456789012:role/xray-cross-account", "xray-daemon", f.logger),
        f.clock, f.logger, policy);
    CHECK(provider.current() == nullptr);
    // Backoff: 1 s, then 2 s, then 4 s.
    REQUIRE(f.clock.wait_for_sleeper_after(t0(), std::chrono::seconds(10)));
    CHECK(f.clock.sleeper_deadline() == t0() + std::chrono::seconds(1));
    f.clock.advance(std::chrono::seconds(1));
    REQUIRE(
        f.clock.wait_for_sleeper_after(t0() + std::chrono::seconds(1), std::chrono::seconds(10)));
    CHECK(f.clock.sleeper_deadline() == t0() + std::chrono::seconds(3));
    f.clock.advance(std::chrono::seconds(2));
    REQUIRE(
        f.clock.wait_for_sleeper_after(t0() + std::chrono::seconds(3), std::chrono::seconds(10)));
    CHECK(f.clock.sleeper_deadline() == t0() + std::chrono::seconds(7));
    CHECK(provider.fetch_count() == 3);
    CHECK(count_lines(f.lines, "[Error]") == 1);
    CHECK(count_lines(f.lines, "Unable to assume role arn:aws:iam::123456789012:role/"
                               "xray-cross-account: AccessDenied: User: arn:aws:iam::"
                               "123456789012:user/daemon is not authorized") == 1);
    CHECK_FALSE(f.logged_secret());
}

TEST_CASE("web identity: AssumeRoleWithWebIdentity, unsigned, with the token file's content") {
    Fixture f;
    HttpTestServer sts;
    sts.push_response(scripted(200, web_identity_xml));
    const std::string token_file = temp_file("webtoken", "eyJhbGciOiJSUzI1NiJ9.payload.sig\n");
    const Environment env = env_of({{"AWS_ENDPOINT_URL_STS", sts.url()},
                                    {"AWS_WEB_IDENTITY_TOKEN_FILE", token_file},
                                    {"AWS_ROLE_ARN", "arn:aws:iam::1:role/irsa"},
                                    {"AWS_ROLE_SESSION_NAME", "my-pod"}});
    CredentialOptions o = options_with();
    o.endpoints = EndpointSettings::from_environment("", env);
    auto provider = make_default_credentials_chain(o, env, f.clock, f.logger);
    const auto creds = provider->current();
    REQUIRE(creds != nullptr);
    CHECK(creds->access_key_id == "ASIAWEBIDEXAMPLE");
    CHECK(provider->source() == "web identity arn:aws:iam::1:role/irsa");
    const auto requests = sts.requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].body ==
          "Action=AssumeRoleWithWebIdentity&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Firsa"
          "&RoleSessionName=my-pod&Version=2011-06-15"
          "&WebIdentityToken=eyJhbGciOiJSUzI1NiJ9.payload.sig");
    CHECK_FALSE(requests[0].header("Authorization").has_value());
    std::remove(token_file.c_str());
}

TEST_CASE("credential_process: the command's JSON output, Version 1 required") {
    auto good = make_process_credentials_source(
        R"(printf '{"Version": 1, "AccessKeyId": "AKIDPROC", "SecretAccessKey": "s", "SessionToken": "t", "Expiration": "2024-05-01T12:00:00Z"}')",
        std::chrono::seconds(10));
    auto r = good->fetch();
    REQUIRE(r.ok());
    CHECK(r.value()->access_key_id == "AKIDPROC");
    CHECK(r.value()->session_token == "t");
    auto bad_version = make_process_credentials_source(
        R"(echo '{"Version": 2, "AccessKeyId": "a", "SecretAccessKey": "s"}')",
        std::chrono::seconds(10));
    CHECK_FALSE(bad_version->fetch().ok());
    auto failing = make_process_credentials_source("exit 3", std::chrono::seconds(10));
    auto e = failing->fetch();
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().find("status 3") != std::string::npos);
}

TEST_CASE("shared files: role_arn + source_profile assumes the role with the source's keys") {
    Fixture f;
    HttpTestServer sts;
    sts.push_response(scripted(200, assume_role_xml));
    const std::string config =
        temp_file("config", "[profile deploy]\nrole_arn = arn:aws:iam::1:role/deploy\n"
                            "source_profile = base\nrole_session_name = sess\n");
    const std::string credentials =
        temp_file("credentials", "[base]\naws_access_key_id = AKIDSOURCE\n"
                                 "aws_secret_access_key = " +
                                     std::string(secret) + "\n");
    const Environment env = env_of({{"AWS_ENDPOINT_URL_STS", sts.url()},
                                    {"AWS_CONFIG_FILE", config},
                                    {"AWS_SHARED_CREDENTIALS_FILE", credentials},
                                    {"AWS_PROFILE", "deploy"}});
    CredentialOptions o = options_with();
    o.endpoints = EndpointSettings::from_environment("", env);
    auto provider = make_default_credentials_chain(o, env, f.clock, f.logger);
    REQUIRE(provider->current() != nullptr);
    CHECK(provider->current()->access_key_id == "ASIAROLEEXAMPLE");
    const auto requests = sts.requests();
    REQUIRE(requests.size() == 1);
    CHECK(requests[0].body.find("RoleSessionName=sess") != std::string::npos);
    CHECK(requests[0].header("Authorization").value_or("").find("Credential=AKIDSOURCE/") !=
          std::string::npos);
    CHECK_THROWS_AS((void)make_default_credentials_chain(
                        o, env_of({{"AWS_CONFIG_FILE", config}, {"AWS_PROFILE", "missing"}}),
                        f.clock, f.logger),
                    StartupError);
    std::remove(config.c_str());
    std::remove(credentials.c_str());
}

TEST_CASE("the chain takes the first configured source: env, profile, web identity, container, "
          "IMDS") {
    Fixture f;
    HttpTestServer container;
    container.set_default_response(scripted(200, container_body()));
    HttpTestServer imds;
    imds.push_response(scripted(200, "tok"));
    imds.push_response(scripted(200, "role"));
    imds.push_response(scripted(200, container_body()));
    const std::string credentials =
        temp_file("chain-credentials", "[default]\naws_access_key_id = AKIDPROFILE\n"
                                       "aws_secret_access_key = s\n");
    const std::string token_file = temp_file("chain-token", "jwt");
    std::map<std::string, std::string, std::less<>> vars = {
        {"AWS_ACCESS_KEY_ID", "AKIDENV"},
        {"AWS_SECRET_ACCESS_KEY", "s"},
        {"AWS_SHARED_CREDENTIALS_FILE", credentials},
        {"AWS_CONFIG_FILE", "/nonexistent"},
        {"AWS_WEB_IDENTITY_TOKEN_FILE", token_file},
        {"AWS_ROLE_ARN", "arn:aws:iam::1:role/irsa"},
        {"AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1"},
        {"AWS_CONTAINER_CREDENTIALS_FULL_URI", container.url() + "/c"},
    };
    CredentialOptions o = options_with();
    o.endpoints.env_sts = "http://127.0.0.1:1";
    o.http_timeout = std::chrono::milliseconds(500);
    o.imds.disabled = false;
    o.imds.endpoint = imds.url();

    CHECK(make_default_credentials_chain(o, env_of(vars), f.clock, f.logger)->source() ==
          "environment");
    vars.erase("AWS_ACCESS_KEY_ID");
    CHECK(make_default_credentials_chain(o, env_of(vars), f.clock, f.logger)->source() ==
          "shared credentials file");
    vars.erase("AWS_SHARED_CREDENTIALS_FILE");
    CHECK(make_default_credentials_chain(o, env_of(vars), f.clock, f.logger)->source() ==
          "web identity arn:aws:iam::1:role/irsa");
    vars.erase("AWS_ROLE_ARN");
    CHECK(make_default_credentials_chain(o, env_of(vars), f.clock, f.logger)->source() ==
          "container");
    vars.erase("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    auto last = make_default_credentials_chain(o, env_of(vars), f.clock, f.logger);
    CHECK(last->source() == "ec2 instance profile");
    CHECK(last->current() != nullptr);
    o.imds.disabled = true;
    auto none = make_default_credentials_chain(o, env_of(vars), f.clock, f.logger);
    CHECK(none->source() == "none");
    CHECK(none->current() == nullptr);
    std::remove(credentials.c_str());
    std::remove(token_file.c_str());
}

TEST_CASE("refresh: new credentials 5 minutes before expiry; a failed refresh keeps the old ones "
          "until they expire") {
    Fixture f;
    HttpTestServer server;
    server.push_response(scripted(200, container_body("token-1", "2024-05-01T11:00:00Z")));
    const Environment env = env_of({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", server.url() + "/c"}});
    RefreshingCredentialsProvider provider(make_container_credentials_source(options_with(), env),
                                           f.clock, f.logger);
    REQUIRE(provider.current() != nullptr);
    CHECK(provider.current()->session_token == "token-1");
    const auto refresh_at = WallClock::from_time_t(1714561200) - std::chrono::minutes(5);
    REQUIRE(f.clock.wait_for_sleeper_after(t0(), std::chrono::seconds(10)));
    CHECK(f.clock.sleeper_deadline() == refresh_at);

    // The refresh succeeds: the new snapshot replaces the old one; a holder keeps the old one.
    const auto held = provider.current();
    server.push_response(scripted(200, container_body("token-2", "2024-05-01T12:00:00Z")));
    f.clock.set(refresh_at);
    REQUIRE(f.clock.wait_for_sleeper_after(refresh_at, std::chrono::seconds(10)));
    CHECK(provider.current()->session_token == "token-2");
    CHECK(held->session_token == "token-1");

    // The next refresh fails: the old credentials stay until 12:00, then none.
    server.set_default_response(scripted(500, "{}"));
    const auto second_refresh = f.clock.sleeper_deadline();
    CHECK(second_refresh == WallClock::from_time_t(1714564800) - std::chrono::minutes(5));
    f.clock.set(second_refresh);
    REQUIRE(f.clock.wait_for_sleeper_after(second_refresh, std::chrono::seconds(10)));
    CHECK(provider.current() != nullptr);
    CHECK(provider.current()->session_token == "token-2");
    CHECK(count_lines(f.lines, "keeping the current ones until they expire") == 1);
    f.clock.set(WallClock::from_time_t(1714564800));
    CHECK(provider.current() == nullptr);
    CHECK_FALSE(f.logged_secret());
}

}  // namespace xrayd

TEST_CASE("regression: an Expiration outside 1970-2261 is refused, not overflowed (found by "
          "fuzzing)") {
    using xrayd::aws_detail::parse_iso8601;
    // system_clock's 64-bit nanoseconds end in 2262; UBSan caught the overflow.
    CHECK_FALSE(parse_iso8601("4048-05-01T16:20:00Z").has_value());
    CHECK_FALSE(parse_iso8601("2262-04-12T00:00:00Z").has_value());
    CHECK_FALSE(parse_iso8601("1012-05-01T16:20:00Z").has_value());  // the second finding
    CHECK_FALSE(parse_iso8601("1969-12-31T23:59:59Z").has_value());
    CHECK(parse_iso8601("1970-01-01T00:00:00Z").has_value());
    const auto last = parse_iso8601("2261-12-31T23:59:59Z");
    REQUIRE(last.has_value());
    CHECK(xrayd::WallClock::to_time_t(*last) == 9214646399);  // 2261-12-31T23:59:59Z
}
