// The credential sources against hostile and hung endpoints on loopback: CR/LF (any control
// byte) in credentials is refused by every source, a relative container URI cannot move the
// request to another host, and shutdown cancels a fetch that hangs.
#include <xrayd/aws/credential_chain.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include <xrayd/common/startup_error.h>
#include <xrayd/http/curl.h>

#include "http_test_server.h"

namespace xrayd {
namespace {

using namespace std::chrono_literals;
using test::HttpTestServer;
using test::scripted;
using test::ScriptedResponse;

// The injection the review used; in JSON it arrives escaped, in XML as character references.
constexpr const char* json_injected = R"(tok\r\nX-Injected: yes)";
constexpr const char* xml_injected = "tok&#13;&#10;X-Injected: yes";

constexpr std::string_view refused =
    "contains a control character (CR, LF or another byte below 0x20, or DEL); refusing these "
    "credentials";

std::string credential_json(std::string_view token_key, std::string_view token) {
    return std::string(R"({"Code":"Success","AccessKeyId":"ASIAHOSTILE","SecretAccessKey":"s",")") +
           std::string(token_key) + R"(":")" + std::string(token) +
           R"(","Expiration":"2024-05-01T16:20:00Z"})";
}

std::string sts_xml(std::string_view action, std::string_view token) {
    return fmt::format("<{0}Response><{0}Result><Credentials><AccessKeyId>ASIASTS</AccessKeyId>"
                       "<SecretAccessKey>s</SecretAccessKey><SessionToken>{1}</SessionToken>"
                       "<Expiration>2024-05-01T11:00:00Z</Expiration></Credentials></{0}Result>"
                       "</{0}Response>",
                       action, token);
}

Environment hermetic(std::map<std::string, std::string, std::less<>> vars) {
    vars.emplace("HOME", "/nonexistent");
    return Environment(std::move(vars));
}

std::string write_temp(const std::string& name, const std::string& content) {
    std::string path = "/tmp/xrayd-hostile-test-" + std::to_string(::getpid()) + "-" + name;
    std::ofstream(path, std::ios::trunc) << content;
    return path;
}

class NoLines final : public LogSink {
public:
    void write(std::string_view) noexcept override {}
};

struct World {
    CurlGlobal curl = CurlGlobal::init();
    Logger logger{LogLevel::error, std::make_unique<NoLines>()};
    ManualCredentialsClock clock{WallClock::from_time_t(1714557600)};  // 2024-05-01T10:00Z
    std::shared_ptr<Cancellation> cancel = Cancellation::create();

    CredentialOptions options(std::chrono::milliseconds http_timeout = 3000ms) const {
        CredentialOptions o;
        o.region = "us-west-2";
        o.imds.disabled = true;
        o.http_timeout = http_timeout;
        o.cancel = cancel;
        return o;
    }
};

// Runs `fetch` while another thread cancels once `server` has the request; the fetch's error.
template <typename Fetch>
std::string cancelled_while_hanging(World& w, const HttpTestServer& server, Fetch fetch) {
    std::thread stopper([&] {
        while (server.request_count() == 0) {
            std::this_thread::sleep_for(5ms);
        }
        w.cancel->cancel();
    });
    const auto start = std::chrono::steady_clock::now();
    auto r = fetch();
    const auto took = std::chrono::steady_clock::now() - start;
    stopper.join();
    CHECK(took < 20s);  // the server answers after 60 s and the timeout is 30 s
    return r.ok() ? std::string("fetched") : r.error();
}

}  // namespace

TEST_CASE("regression: a CR/LF in the container endpoint's Token is refused") {
    World w;
    HttpTestServer server;
    server.set_default_response(scripted(200, credential_json("Token", json_injected)));
    auto source = make_container_credentials_source(
        w.options(), hermetic({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", server.url() + "/c"}}));
    auto r = source->fetch();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == "container credentials: Token " + std::string(refused));
}

TEST_CASE("regression: a CR/LF in the IMDS role credentials' Token is refused") {
    World w;
    HttpTestServer server;
    server.push_response(scripted(200, "imds-token"));
    server.push_response(scripted(200, "role"));
    server.push_response(scripted(200, credential_json("Token", json_injected)));
    ImdsOptions io;
    io.endpoint = server.url();
    auto source = make_imds_credentials_source(std::make_shared<ImdsClient>(io, w.clock));
    auto r = source->fetch();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == "EC2 instance profile: Token " + std::string(refused));
}

TEST_CASE("regression: a CR/LF in an STS SessionToken is refused (AssumeRole and web identity)") {
    World w;
    HttpTestServer sts;
    const Environment env = hermetic({{"AWS_ENDPOINT_URL_STS", sts.url()}});
    CredentialOptions o = w.options();
    o.endpoints = EndpointSettings::from_environment("", env);

    sts.push_response(scripted(200, sts_xml("AssumeRole", xml_injected)));
    auto assume = make_assume_role_credentials_source(
        o, env, std::make_unique<StaticCredentialsProvider>(Credentials("AKIDBASE", "s")),
        "arn:aws:iam::1:role/r", "xray-daemon", w.logger);
    auto a = assume->fetch();
    REQUIRE_FALSE(a.ok());
    CHECK(a.error().find("the STS reply: SessionToken " + std::string(refused)) !=
          std::string::npos);

    sts.push_response(scripted(200, sts_xml("AssumeRoleWithWebIdentity", xml_injected)));
    const std::string token_file = write_temp("jwt", "jwt");
    auto web =
        make_web_identity_credentials_source(o, env, "arn:aws:iam::1:role/r", token_file, "s");
    auto b = web->fetch();
    REQUIRE_FALSE(b.ok());
    CHECK(b.error().find("the STS reply: SessionToken " + std::string(refused)) !=
          std::string::npos);
    std::remove(token_file.c_str());
}

TEST_CASE("regression: a control byte in the shared credentials file's keys stops start-up") {
    World w;
    const std::string credentials =
        write_temp("credentials", "[default]\naws_access_key_id = AKID\naws_secret_access_key = "
                                  "s\naws_session_token = tok\rX-Injected: yes\n");
    const Environment env = hermetic(
        {{"AWS_SHARED_CREDENTIALS_FILE", credentials}, {"AWS_CONFIG_FILE", "/nonexistent"}});
    CHECK_THROWS_WITH_AS((void)make_default_credentials_chain(w.options(), env, w.clock, w.logger),
                         ("profile default: aws_session_token " + std::string(refused)).c_str(),
                         StartupError);
    std::remove(credentials.c_str());
}

TEST_CASE("regression: CR/LF in the error messages of the container endpoint and STS cannot "
          "forge a log line") {
    World w;
    HttpTestServer server;
    ScriptedResponse denied =
        scripted(403, R"({"code":"Denied\r\n","message":"no\r\n2024 [Info] forged"})");
    server.set_default_response(denied);
    auto container = make_container_credentials_source(
        w.options(), hermetic({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", server.url() + "/c"}}));
    auto c = container->fetch();
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().find_first_of("\r\n") == std::string::npos);
    CHECK(c.error().find("no\\x0d\\x0a2024 [Info] forged") != std::string::npos);

    denied.body = "<ErrorResponse><Error><Code>AccessDenied</Code><Message>no&#13;&#10;2024 "
                  "[Info] forged</Message></Error></ErrorResponse>";
    server.set_default_response(denied);
    const Environment env = hermetic({{"AWS_ENDPOINT_URL_STS", server.url()}});
    CredentialOptions o = w.options();
    o.endpoints = EndpointSettings::from_environment("", env);
    auto assume = make_assume_role_credentials_source(
        o, env, std::make_unique<StaticCredentialsProvider>(Credentials("AKIDBASE", "s")),
        "arn:aws:iam::1:role/r", "xray-daemon", w.logger);
    auto a = assume->fetch();
    REQUIRE_FALSE(a.ok());
    CHECK(a.error().find_first_of("\r\n") == std::string::npos);
}

TEST_CASE("regression: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI that is not a path is refused and "
          "its host receives nothing") {
    World w;
    HttpTestServer elsewhere;
    CredentialOptions o = w.options();
    o.container_relative_base = "http://127.0.0.1:1";  // nothing listens there
    const std::string port = std::to_string(elsewhere.port());
    for (const std::string& relative :
         {"@127.0.0.1:" + port + "/creds", ".localhost:" + port + "/x", ":" + port + "/x",
          "127.0.0.1:" + port + "/x"}) {
        CAPTURE(relative);
        CHECK_THROWS_AS((void)make_container_credentials_source(
                            o, hermetic({{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", relative},
                                         {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "secret-token"}})),
                        StartupError);
    }
    CHECK(elsewhere.request_count() == 0);
}

TEST_CASE("regression: AWS_CONTAINER_CREDENTIALS_FULL_URI is checked on the host libcurl uses") {
    World w;
    HttpTestServer elsewhere;
    // A hand-written parser took the part after the last '@'; user info is refused outright.
    CHECK_THROWS_AS((void)make_container_credentials_source(
                        w.options(), hermetic({{"AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                                "http://user@" + elsewhere.url().substr(7)}})),
                    StartupError);
    CHECK_THROWS_AS((void)make_container_credentials_source(
                        w.options(), hermetic({{"AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                                "http://127.0.0.1@example.com/creds"}})),
                    StartupError);
    CHECK(elsewhere.request_count() == 0);
}

TEST_CASE("regression: shutdown cancels a container fetch that hangs") {
    World w;
    HttpTestServer server;
    server.set_default_response(scripted(200, credential_json("Token", "t"), {}, 60s));
    auto source = make_container_credentials_source(
        w.options(30000ms),
        hermetic({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", server.url() + "/c"}}));
    const std::string error = cancelled_while_hanging(w, server, [&] { return source->fetch(); });
    CHECK(error.find("cancelled by shutdown") != std::string::npos);
}

TEST_CASE("regression: shutdown cancels an IMDS fetch that hangs") {
    World w;
    HttpTestServer server;
    server.set_default_response(scripted(200, "never", {}, 60s));
    ImdsOptions io;
    io.endpoint = server.url();
    io.connect_timeout = 30000ms;
    io.total_timeout = 30000ms;
    auto source = make_imds_credentials_source(std::make_shared<ImdsClient>(io, w.clock, w.cancel));
    const std::string error = cancelled_while_hanging(w, server, [&] { return source->fetch(); });
    CHECK(error.find("cancelled by shutdown") != std::string::npos);
    CHECK(server.request_count() == 1);  // not retried after the cancel
}

TEST_CASE("regression: shutdown cancels an STS AssumeRole that hangs") {
    World w;
    HttpTestServer sts;
    sts.set_default_response(scripted(200, sts_xml("AssumeRole", "t"), {}, 60s));
    const Environment env = hermetic({{"AWS_ENDPOINT_URL_STS", sts.url()}});
    CredentialOptions o = w.options(30000ms);
    o.endpoints = EndpointSettings::from_environment("", env);
    auto source = make_assume_role_credentials_source(
        o, env, std::make_unique<StaticCredentialsProvider>(Credentials("AKIDBASE", "s")),
        "arn:aws:iam::1:role/r", "xray-daemon", w.logger);
    const std::string error = cancelled_while_hanging(w, sts, [&] { return source->fetch(); });
    CHECK(error.find("cancelled by shutdown") != std::string::npos);
}

TEST_CASE("regression: a provider whose background refresh hangs is destroyed promptly once "
          "shutdown cancels") {
    World w;
    HttpTestServer server;
    server.push_response(scripted(200,
                                  R"({"AccessKeyId":"ASIA1","SecretAccessKey":"s","Token":"t1",)"
                                  R"("Expiration":"2024-05-01T10:10:00Z"})"));
    server.set_default_response(scripted(200, credential_json("Token", "t2"), {}, 60s));
    auto provider = std::make_unique<RefreshingCredentialsProvider>(
        make_container_credentials_source(
            w.options(30000ms),
            hermetic({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", server.url() + "/c"}})),
        w.clock, w.logger, RefreshPolicy{}, w.cancel);
    REQUIRE(provider->current() != nullptr);
    REQUIRE(w.clock.wait_for_sleeper_after(w.clock.now(), 10s));
    w.clock.set(w.clock.sleeper_deadline());  // the refresh starts and hangs
    while (server.request_count() < 2) {
        std::this_thread::sleep_for(5ms);
    }
    const auto start = std::chrono::steady_clock::now();
    w.cancel->cancel();
    provider.reset();  // joins the refresh thread
    CHECK(std::chrono::steady_clock::now() - start < 20s);
}

}  // namespace xrayd
