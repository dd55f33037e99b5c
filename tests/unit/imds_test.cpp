// ImdsClient against a real HTTP server on loopback: IMDSv2 tokens and TTL, the v1 fallback
// rules, timeouts; host identity; the region chain (ECS metadata file, IMDS).
#include <xrayd/aws/imds.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <xrayd/aws/region.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/http/curl.h>

#include "http_test_server.h"

namespace xrayd {
namespace {

Environment env_of(std::map<std::string, std::string, std::less<>> vars) {
    return Environment(std::move(vars));
}

using test::HttpTestServer;
using test::scripted;
using test::ScriptedResponse;

constexpr const char* token = "AQAEAFQ1cmV4YW1wbGV0b2tlbl9vcGFxdWVfYmFzZTY0X3N0cmluZw==";
constexpr const char* identity_document = R"({
  "accountId" : "123456789012",
  "availabilityZone" : "us-east-1a",
  "billingProducts" : null,
  "instanceId" : "i-1234567890abcdef0",
  "region" : "us-east-1",
  "version" : "2017-09-30"
})";

WallClock::time_point t0() {
    return WallClock::from_time_t(1714557600);
}  // 2024-05-01T10:00Z

ScriptedResponse token_reply(const char* ttl = "21600") {
    return scripted(200, token, {{"X-aws-ec2-metadata-token-ttl-seconds", ttl}});
}

ImdsOptions options_for(const HttpTestServer& server) {
    ImdsOptions o = ImdsOptions::from_environment(
        env_of({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url() + "/"}}));
    o.connect_timeout = std::chrono::milliseconds(2000);
    o.total_timeout = std::chrono::milliseconds(2000);
    return o;
}

class Lines final : public LogSink {
public:
    explicit Lines(std::vector<std::string>& out) : out_(out) {}
    void write(std::string_view line) noexcept override { out_.emplace_back(line); }

private:
    std::vector<std::string>& out_;
};

bool has_line(const std::vector<std::string>& lines, std::string_view needle) {
    for (const auto& l : lines) {
        if (l.find(needle) != std::string::npos) {
            return true;
        }
    }
    return false;
}

std::string temp_file(const std::string& name, const std::string& content) {
    std::string path = "/tmp/xrayd-imds-test-" + std::to_string(::getpid()) + "-" + name;
    std::ofstream(path) << content;
    return path;
}

}  // namespace

TEST_CASE("IMDSv2: a token PUT with the TTL header, then a GET carrying the token") {
    auto curl = CurlGlobal::init();
    HttpTestServer server;
    server.push_response(token_reply());
    server.push_response(scripted(200, "i-1234567890abcdef0"));
    ManualCredentialsClock clock(t0());
    ImdsClient imds(options_for(server), clock);
    auto r = imds.get("/latest/meta-data/instance-id");
    REQUIRE(r.ok());
    CHECK(r.value() == "i-1234567890abcdef0");
    const auto requests = server.requests();
    REQUIRE(requests.size() == 2);
    CHECK(requests[0].method == "PUT");
    CHECK(requests[0].path == "/latest/api/token");
    CHECK(requests[0].header("X-aws-ec2-metadata-token-ttl-seconds") == "21600");
    CHECK_FALSE(requests[0].header("X-Forwarded-For").has_value());
    CHECK(requests[1].method == "GET");
    CHECK(requests[1].path == "/latest/meta-data/instance-id");
    CHECK(requests[1].header("X-aws-ec2-metadata-token") == token);
}

TEST_CASE("IMDSv2: the token is reused until shortly before the TTL the reply echoes") {
    auto curl = CurlGlobal::init();
    HttpTestServer server;
    server.set_default_response(scripted(200, "value"));
    server.push_response(token_reply("300"));
    ManualCredentialsClock clock(t0());
    ImdsClient imds(options_for(server), clock);
    REQUIRE(imds.get("/a").ok());
    clock.advance(std::chrono::seconds(200));
    REQUIRE(imds.get("/b").ok());
    CHECK(server.request_count() == 3);       // PUT, GET, GET
    clock.advance(std::chrono::seconds(50));  // 250 s: inside the last minute of 300 s
    server.push_response(token_reply("300"));
    REQUIRE(imds.get("/c").ok());
    const auto requests = server.requests();
    REQUIRE(requests.size() == 5);
    CHECK(requests[3].method == "PUT");
    CHECK(requests[4].path == "/c");
}

TEST_CASE("IMDSv2: a 401 on a GET fetches a new token and retries once") {
    auto curl = CurlGlobal::init();
    HttpTestServer server;
    server.push_response(token_reply());
    server.push_response(scripted(401, ""));
    server.push_response(token_reply());
    server.push_response(scripted(200, "ok"));
    ManualCredentialsClock clock(t0());
    ImdsClient imds(options_for(server), clock);
    auto r = imds.get("/latest/meta-data/hostname");
    REQUIRE(r.ok());
    CHECK(r.value() == "ok");
    CHECK(server.request_count() == 4);
}

TEST_CASE("IMDS falls back to v1 (no token header) when the token PUT is refused with 403, 404 "
          "or 405, and remembers it") {
    for (const int status : {403, 404, 405}) {
        INFO("PUT status ", status);
        auto curl = CurlGlobal::init();
        HttpTestServer server;
        server.push_response(scripted(status, ""));
        server.set_default_response(scripted(200, "v1-answer"));
        ManualCredentialsClock clock(t0());
        ImdsClient imds(options_for(server), clock);
        auto r = imds.get("/x");
        REQUIRE(r.ok());
        CHECK(r.value() == "v1-answer");
        REQUIRE(imds.get("/y").ok());
        const auto requests = server.requests();
        REQUIRE(requests.size() == 3);
        CHECK(requests[1].method == "GET");
        CHECK_FALSE(requests[1].header("X-aws-ec2-metadata-token").has_value());
        CHECK(requests[2].path == "/y");
    }
}

TEST_CASE("IMDS does not fall back to v1 when the token PUT answers 400 or v1 is disabled") {
    auto curl = CurlGlobal::init();
    {
        HttpTestServer server;
        server.push_response(scripted(400, ""));
        ManualCredentialsClock clock(t0());
        ImdsClient imds(options_for(server), clock);
        auto r = imds.get("/x");
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().find("400") != std::string::npos);
        CHECK(server.request_count() == 1);
    }
    {
        HttpTestServer server;
        server.push_response(scripted(403, ""));
        ManualCredentialsClock clock(t0());
        ImdsOptions o = options_for(server);
        o.v1_disabled = true;
        ImdsClient imds(o, clock);
        auto r = imds.get("/x");
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().find("IMDSv1 is disabled") != std::string::npos);
    }
}

TEST_CASE("IMDS: a token PUT that never answers (hop limit) times out quickly and is an error, "
          "not a silent downgrade to v1") {
    auto curl = CurlGlobal::init();
    HttpTestServer server;
    ScriptedResponse slow = token_reply();
    slow.delay = std::chrono::milliseconds(3000);
    server.push_response(slow);
    server.push_response(slow);
    server.set_default_response(scripted(200, "v1-answer"));
    ManualCredentialsClock clock(t0());
    ImdsOptions o = options_for(server);
    o.total_timeout = std::chrono::milliseconds(300);
    ImdsClient imds(o, clock);
    const auto started = std::chrono::steady_clock::now();
    auto r = imds.get("/x");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().find("token request failed") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(3));
    const auto requests = server.requests();
    REQUIRE(requests.size() == 2);  // two PUT attempts, no v1 GET
    CHECK(requests[0].method == "PUT");
    CHECK(requests[1].method == "PUT");
}

TEST_CASE("IMDS options: disabled, custom endpoint and the IPv6 endpoint mode") {
    ManualCredentialsClock clock(t0());
    ImdsClient disabled(
        ImdsOptions::from_environment(env_of({{"AWS_EC2_METADATA_DISABLED", "True"}})), clock);
    CHECK(disabled.disabled());
    auto r = disabled.get("/x");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().find("disabled") != std::string::npos);
    CHECK(ImdsOptions::from_environment({}).endpoint == "http://169.254.169.254");
    CHECK(
        ImdsOptions::from_environment(env_of({{"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6"}}))
            .endpoint == "http://[fd00:ec2::254]");
}

TEST_CASE("regression: AWS_EC2_METADATA_SERVICE_ENDPOINT with user info, a path or a query "
          "stops start-up") {
    for (const char* endpoint : {"http://169.254.169.254@evil.example", "http://127.0.0.1/x",
                                 "http://127.0.0.1?x=1", "ftp://127.0.0.1", "not a url"}) {
        CAPTURE(endpoint);
        CHECK_THROWS_AS((void)ImdsOptions::from_environment(
                            env_of({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint}})),
                        StartupError);
    }
    CHECK(ImdsOptions::from_environment(
              env_of({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://[::1]:8080/"}}))
              .endpoint == "http://[::1]:8080");
}

TEST_CASE("regression: an IMDS token with a CR/LF is refused, never sent back as a header") {
    auto curl = CurlGlobal::init();
    ManualCredentialsClock clock(t0());
    for (const char* bad : {"tok\r\nX-Injected: yes", "tok\x1b[2J", "tok\nX: y"}) {
        CAPTURE(bad);
        HttpTestServer server;
        server.push_response(scripted(200, bad));
        const auto r = ImdsClient(options_for(server), clock).get("/latest/meta-data/instance-id");
        CHECK((!r.ok() && r.error().find("control character") != std::string::npos));
        CHECK(server.request_count() == 1);  // the PUT only: no GET carried it
    }
}

TEST_CASE("regression: the IMDS token TTL is clamped: a huge echo neither overflows nor keeps "
          "the token past six hours, a huge request asks for six hours") {
    auto curl = CurlGlobal::init();
    HttpTestServer server;
    server.set_default_response(scripted(200, "value"));
    server.push_response(token_reply("9223372036854775807"));
    ManualCredentialsClock clock(t0());
    ImdsOptions o = options_for(server);
    o.token_ttl = std::chrono::seconds(1'000'000'000);
    ImdsClient imds(o, clock);
    REQUIRE(imds.get("/a").ok());
    clock.advance(std::chrono::hours(1));
    REQUIRE(imds.get("/b").ok());  // the token is still good an hour later (no overflow)
    CHECK(server.request_count() == 3);
    clock.advance(std::chrono::hours(5));  // 6 h: past the clamped TTL's refresh point
    server.push_response(token_reply());
    REQUIRE(imds.get("/c").ok());
    const auto requests = server.requests();
    REQUIRE(requests.size() == 5);
    CHECK(requests[0].header("X-aws-ec2-metadata-token-ttl-seconds") == "21600");
    CHECK(requests[3].method == "PUT");
}

TEST_CASE("host identity comes from AWS_HOSTNAME / AWS_INSTANCE_ID, else IMDS, never IMDS in "
          "local mode, and failures log at Debug") {
    auto curl = CurlGlobal::init();
    std::vector<std::string> lines;
    Logger logger(LogLevel::debug, std::make_unique<Lines>(lines));
    ManualCredentialsClock clock(t0());
    HttpTestServer server;
    server.push_response(token_reply());
    server.push_response(scripted(200, "ip-10-0-1-23.ec2.internal\n"));
    server.push_response(scripted(200, "i-1234567890abcdef0"));
    ImdsClient imds(options_for(server), clock);
    const HostIdentity from_imds = resolve_host_identity({}, false, &imds, logger);
    CHECK(from_imds.hostname == "ip-10-0-1-23.ec2.internal");
    CHECK(from_imds.instance_id == "i-1234567890abcdef0");

    const HostIdentity from_env = resolve_host_identity(
        env_of({{"AWS_HOSTNAME", "h"}, {"AWS_INSTANCE_ID", "i-env"}}), false, &imds, logger);
    CHECK(from_env.hostname == "h");
    CHECK(from_env.instance_id == "i-env");
    CHECK(has_line(lines, "Fetch hostname h from environment variables"));

    const std::size_t before = server.request_count();
    const HostIdentity local = resolve_host_identity({}, true, &imds, logger);
    CHECK(local.hostname.empty());
    CHECK(server.request_count() == before);

    server.set_default_response(scripted(404, ""));
    lines.clear();
    const HostIdentity failed = resolve_host_identity({}, false, &imds, logger);
    CHECK(failed.instance_id.empty());
    CHECK(has_line(lines, "[Debug] Get instance id metadata failed:"));
    CHECK_FALSE(has_line(lines, "[Error]"));
}

TEST_CASE("region: flag/config first, then AWS_REGION, with the Go daemon's log lines") {
    std::vector<std::string> lines;
    Logger logger(LogLevel::debug, std::make_unique<Lines>(lines));
    const Environment env = env_of({{"AWS_REGION", "eu-west-1"}});
    auto r = resolve_region(RegionOptions{"us-west-2", false}, env, nullptr, logger);
    REQUIRE(r.has_value());
    CHECK(r->region == "us-west-2");
    CHECK(has_line(lines, "[Debug] Fetch region us-west-2 from commandline/config file"));
    CHECK(has_line(lines, "[Info] Using region: us-west-2"));
    r = resolve_region(RegionOptions{"", false}, env, nullptr, logger);
    REQUIRE(r.has_value());
    CHECK(r->region == "eu-west-1");
    CHECK(has_line(lines, "Fetch region eu-west-1 from environment variables"));
}

TEST_CASE("region: the ECS metadata file's TaskARN, and a malformed file is an error line, not "
          "a crash") {
    std::vector<std::string> lines;
    Logger logger(LogLevel::debug, std::make_unique<Lines>(lines));
    const std::string good = temp_file(
        "good.json",
        R"({"Cluster":"default","TaskARN":"arn:aws:ecs:us-west-2:123456789012:task/default/2b8",)"
        R"("PortMappings":[{"ContainerPort":2000}],"MetadataFileStatus":"READY"})");
    auto r = resolve_region(
        RegionOptions{},
        env_of({{"ECS_ENABLE_CONTAINER_METADATA", "TRUE"}, {"ECS_CONTAINER_METADATA_FILE", good}}),
        nullptr, logger);
    REQUIRE(r.has_value());
    CHECK(r->region == "us-west-2");
    CHECK(has_line(lines, "Fetch region us-west-2 from ECS metadata file"));

    const std::pair<std::string, std::string> bad_files[] = {
        {"bad-json.json", "{\"TaskARN\": "},
        {"no-arn.json", "{\"Cluster\":\"default\"}"},
        {"short-arn.json", "{\"TaskARN\":\"arn:aws\"}"},
        {"number-arn.json", "{\"TaskARN\":12}"},
    };
    for (const auto& entry : bad_files) {
        const std::string& name = entry.first;
        const std::string& content = entry.second;
        INFO(name);
        lines.clear();
        const std::string path = temp_file(name, content);
        r = resolve_region(RegionOptions{},
                           env_of({{"ECS_ENABLE_CONTAINER_METADATA", "true"},
                                   {"ECS_CONTAINER_METADATA_FILE", path}}),
                           nullptr, logger);
        CHECK_FALSE(r.has_value());
        CHECK(has_line(lines, "[Error] Unable to read ECS metadata file contents:"));
        std::remove(path.c_str());
    }
    lines.clear();
    r = resolve_region(RegionOptions{},
                       env_of({{"ECS_ENABLE_CONTAINER_METADATA", "true"},
                               {"ECS_CONTAINER_METADATA_FILE", "/nonexistent/ecs.json"}}),
                       nullptr, logger);
    CHECK_FALSE(r.has_value());
    CHECK(has_line(lines, "[Error] Unable to open ECS metadata file:"));
    std::remove(good.c_str());
}

TEST_CASE("region: the IMDS instance identity document when not in local mode") {
    auto curl = CurlGlobal::init();
    std::vector<std::string> lines;
    Logger logger(LogLevel::debug, std::make_unique<Lines>(lines));
    HttpTestServer server;
    server.push_response(token_reply());
    server.push_response(scripted(200, identity_document));
    ManualCredentialsClock clock(t0());
    ImdsClient imds(options_for(server), clock);
    auto r = resolve_region(RegionOptions{}, Environment{}, &imds, logger);
    REQUIRE(r.has_value());
    CHECK(r->region == "us-east-1");
    CHECK(server.requests().back().path == "/latest/dynamic/instance-identity/document");
    CHECK(has_line(lines, "Fetch region us-east-1 from ec2 metadata"));

    server.set_default_response(scripted(404, ""));
    lines.clear();
    ImdsClient failing(options_for(server), clock);
    r = resolve_region(RegionOptions{}, Environment{}, &failing, logger);
    CHECK_FALSE(r.has_value());
    CHECK(has_line(lines, "[Error] Unable to fetch region from EC2 metadata:"));
}

TEST_CASE("region in local mode: AWS_DEFAULT_REGION or the profile's region, never IMDS") {
    std::vector<std::string> lines;
    Logger logger(LogLevel::debug, std::make_unique<Lines>(lines));
    auto r = resolve_region(RegionOptions{"", true}, env_of({{"AWS_DEFAULT_REGION", "ap-south-1"}}),
                            nullptr, logger);
    REQUIRE(r.has_value());
    CHECK(r->region == "ap-south-1");
    CHECK(has_line(lines, "Fetched region ap-south-1 from config"));

    const std::string config = temp_file("config", "[default]\nregion = eu-north-1\n"
                                                   "[profile other]\nregion=sa-east-1\n");
    r = resolve_region(
        RegionOptions{"", true},
        env_of({{"AWS_CONFIG_FILE", config}, {"AWS_PROFILE", "other"}, {"HOME", "/nonexistent"}}),
        nullptr, logger);
    REQUIRE(r.has_value());
    CHECK(r->region == "sa-east-1");
    r = resolve_region(RegionOptions{"", true},
                       env_of({{"AWS_CONFIG_FILE", "/nonexistent"}, {"HOME", "/nonexistent"}}),
                       nullptr, logger);
    CHECK_FALSE(r.has_value());
    std::remove(config.c_str());
}

}  // namespace xrayd
