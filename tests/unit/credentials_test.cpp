// Credentials wiping, StaticCredentialsProvider and the environment credentials provider.
#include <xrayd/aws/credentials.h>

#include <algorithm>
#include <cstddef>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <string_view>

#include <doctest/doctest.h>

#include <xrayd/common/environment.h>
#include <xrayd/common/startup_error.h>

namespace xrayd {
namespace {

Environment env_of(std::map<std::string, std::string, std::less<>> vars) {
    return Environment(std::move(vars));
}

bool contains(const unsigned char* begin, std::size_t size, std::string_view needle) {
    const auto* end = begin + size;
    const auto same = [](unsigned char a, char b) { return a == static_cast<unsigned char>(b); };
    return std::search(begin, end, needle.begin(), needle.end(), same) != end;
}

}  // namespace

TEST_CASE("the environment provider returns the access key, secret and session token") {
    auto provider = make_environment_credentials_provider(env_of({
        {"AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"},
        {"AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
        {"AWS_SESSION_TOKEN", "IQoJb3JpZ2luX2VjEXAMPLE"},
    }));
    REQUIRE(provider != nullptr);
    CHECK(provider->source() == "environment");
    const auto credentials = provider->current();
    REQUIRE(credentials != nullptr);
    CHECK(credentials->access_key_id == "AKIDEXAMPLE");
    CHECK(credentials->secret_access_key == "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    CHECK(credentials->session_token == "IQoJb3JpZ2luX2VjEXAMPLE");
    CHECK_FALSE(credentials->expiration.has_value());
}

TEST_CASE("the environment provider has no session token when AWS_SESSION_TOKEN is unset or "
          "empty") {
    for (const bool set_empty : {false, true}) {
        INFO("AWS_SESSION_TOKEN set to empty: ", set_empty);
        std::map<std::string, std::string, std::less<>> vars = {
            {"AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"},
            {"AWS_SECRET_ACCESS_KEY", "secret"},
        };
        if (set_empty) {
            vars.emplace("AWS_SESSION_TOKEN", "");
        }
        auto provider = make_environment_credentials_provider(env_of(std::move(vars)));
        REQUIRE(provider != nullptr);
        const auto credentials = provider->current();
        REQUIRE(credentials != nullptr);
        CHECK(credentials->secret_access_key == "secret");
        CHECK(credentials->session_token.empty());
    }
}

TEST_CASE("the environment provider is absent when the key id or the secret is unset or empty") {
    CHECK(make_environment_credentials_provider(Environment()) == nullptr);
    CHECK(make_environment_credentials_provider(env_of({{"AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"}})) ==
          nullptr);
    CHECK(make_environment_credentials_provider(env_of({{"AWS_SECRET_ACCESS_KEY", "secret"}})) ==
          nullptr);
    CHECK(make_environment_credentials_provider(env_of({
              {"AWS_ACCESS_KEY_ID", ""},
              {"AWS_SECRET_ACCESS_KEY", "secret"},
          })) == nullptr);
    CHECK(make_environment_credentials_provider(env_of({
              {"AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"},
              {"AWS_SECRET_ACCESS_KEY", ""},
              {"AWS_SESSION_TOKEN", "token"},
          })) == nullptr);
}

TEST_CASE("regression: a CR/LF (any control byte) in an environment credential stops start-up "
          "naming the variable") {
    for (const char* name : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}) {
        std::map<std::string, std::string, std::less<>> vars = {
            {"AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"},
            {"AWS_SECRET_ACCESS_KEY", "secret"},
            {"AWS_SESSION_TOKEN", "token"},
        };
        vars[name] = "tok\r\nX-Injected: yes";
        CAPTURE(name);
        CHECK_THROWS_WITH_AS(
            (void)make_environment_credentials_provider(env_of(vars)),
            (std::string("environment: ") + name +
             " contains a control character (CR, LF or another byte below 0x20, or DEL); "
             "refusing these credentials")
                .c_str(),
            StartupError);
    }
}

TEST_CASE("Credentials::validate refuses every control byte and an empty key, and accepts "
          "real keys") {
    CHECK(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                      "IQoJb3JpZ2luX2VjEXAMPLE+/=")
              .validate("test")
              .ok());
    for (const char bad : {'\r', '\n', '\0', '\t', '\x1b', '\x7f'}) {
        CHECK_FALSE(Credentials("AKID", "s", std::string("a") + bad + "b").validate("t").ok());
        CHECK_FALSE(Credentials(std::string("A") + bad, "s").validate("t").ok());
    }
    const auto empty = Credentials("", "s").validate("src");
    REQUIRE_FALSE(empty.ok());
    CHECK(empty.error() == "src: AccessKeyId or SecretAccessKey is empty");
}

TEST_CASE("the static provider always returns the same snapshot") {
    StaticCredentialsProvider provider(Credentials("AKID", "secret", "token"));
    CHECK(provider.source() == "static");
    const auto first = provider.current();
    const auto second = provider.current();
    REQUIRE(first != nullptr);
    CHECK(first == second);
    CHECK(first->access_key_id == "AKID");
    CHECK(first->secret_access_key == "secret");
    CHECK(first->session_token == "token");

    StaticCredentialsProvider named(Credentials("AKID", "secret"), "config");
    CHECK(named.source() == "config");
}

TEST_CASE("a snapshot outlives its provider") {
    std::shared_ptr<const Credentials> snapshot;
    {
        StaticCredentialsProvider provider(Credentials("AKID", "secret"));
        snapshot = provider.current();
    }
    REQUIRE(snapshot != nullptr);
    CHECK(snapshot->secret_access_key == "secret");
}

TEST_CASE("destroying credentials wipes the secret from the string's buffer") {
    // Short enough for std::string's inline buffer, so the bytes live inside the object and
    // can be inspected after the destructor ran without touching freed memory.
    constexpr std::string_view secret = "s3cr3tK3y";
    constexpr std::string_view token = "t0k3n";
    alignas(Credentials) unsigned char storage[sizeof(Credentials)];
    auto* credentials = new (storage) Credentials("AKID", std::string(secret), std::string(token));
    REQUIRE(credentials->secret_access_key.capacity() < 16);  // inline, not on the heap
    REQUIRE(contains(storage, sizeof storage, secret));
    REQUIRE(contains(storage, sizeof storage, token));

    credentials->~Credentials();
    // Reading the bytes of the dead object through the unsigned char buffer is what the
    // wipe is for; the compiler cannot elide OPENSSL_cleanse.
    CHECK_FALSE(contains(storage, sizeof storage, secret));
    CHECK_FALSE(contains(storage, sizeof storage, token));
    CHECK(contains(storage, sizeof storage, "AKID"));  // the key id is not a secret
}

}  // namespace xrayd
