// SigV4Signer against the aws-c-auth v4 suite and requests captured from the Go X-Ray daemon.
#include <xrayd/aws/sigv4.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include <xrayd/aws/credentials.h>
#include <xrayd/common/time.h>

namespace xrayd {
namespace {

namespace fs = std::filesystem;

const fs::path sigv4_data = fs::path(XRAYD_TEST_DATA_DIR) / "sigv4";

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), "cannot open ", path.string());
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<fs::path> case_dirs(const fs::path& root) {
    std::vector<fs::path> dirs;
    for (const auto& entry : fs::directory_iterator(root)) {
        if (entry.is_directory()) {
            dirs.push_back(entry.path());
        }
    }
    std::sort(dirs.begin(), dirs.end());
    return dirs;
}

// The value of `"key": ...` in a small JSON object whose keys are unique at every depth (the
// suite's context.json): a string (only \" and \\ escapes occur) or a bare literal.
std::optional<std::string> json_value(std::string_view json, std::string_view key) {
    const std::string quoted = "\"" + std::string(key) + "\"";
    std::size_t pos = json.find(quoted);
    if (pos == std::string_view::npos) {
        return std::nullopt;
    }
    pos = json.find(':', pos + quoted.size());
    if (pos == std::string_view::npos) {
        return std::nullopt;
    }
    pos = json.find_first_not_of(" \t\r\n", pos + 1);
    if (pos == std::string_view::npos) {
        return std::nullopt;
    }
    std::string value;
    if (json[pos] == '"') {
        for (++pos; pos < json.size() && json[pos] != '"'; ++pos) {
            if (json[pos] == '\\' && pos + 1 < json.size()) {
                ++pos;
            }
            value.push_back(json[pos]);
        }
        return value;
    }
    const std::size_t end = json.find_first_of(",}\r\n", pos);
    value = std::string(json.substr(pos, end - pos));
    while (!value.empty() && value.back() == ' ') {
        value.pop_back();
    }
    return value;
}

bool json_bool(std::string_view json, std::string_view key, bool fallback) {
    const auto v = json_value(json, key);
    return v ? *v == "true" : fallback;
}

// "2015-08-30T12:36:00Z"
WallClock::time_point parse_timestamp(std::string_view ts) {
    REQUIRE(ts.size() == 20);
    auto num = [&](std::size_t pos, std::size_t len) {
        return std::stoi(std::string(ts.substr(pos, len)));
    };
    using namespace std::chrono;
    const sys_days day = year{num(0, 4)} / month{static_cast<unsigned>(num(5, 2))} /
                         std::chrono::day{static_cast<unsigned>(num(8, 2))};
    return WallClock::time_point(day + hours{num(11, 2)} + minutes{num(14, 2)} +
                                 seconds{num(17, 2)});
}

struct Context {
    std::string access_key_id;
    std::string secret;
    std::string token;
    std::string region;
    std::string service;
    WallClock::time_point timestamp;
    bool normalize = true;
    bool sign_body = false;
    bool omit_session_token = false;
};

Context load_context(const fs::path& dir) {
    const std::string json = read_file(dir / "context.json");
    Context c;
    c.access_key_id = json_value(json, "access_key_id").value_or("");
    c.secret = json_value(json, "secret_access_key").value_or("");
    c.token = json_value(json, "token").value_or("");
    c.region = json_value(json, "region").value_or("");
    c.service = json_value(json, "service").value_or("");
    c.timestamp = parse_timestamp(json_value(json, "timestamp").value_or(""));
    c.normalize = json_bool(json, "normalize", true);
    c.sign_body = json_bool(json, "sign_body", false);
    c.omit_session_token = json_bool(json, "omit_session_token", false);
    return c;
}

// An HTTP/1.1 request as text: request line, header lines (a line starting with whitespace
// continues the previous header, joined with a space), an empty line, the body.
struct ParsedRequest {
    std::string method;
    std::string path;
    std::string query;
    std::vector<HttpHeader> headers;
    std::string body;
};

ParsedRequest parse_request(const std::string& text) {
    ParsedRequest r;
    std::size_t pos = text.find('\n');
    REQUIRE(pos != std::string::npos);
    const std::string_view line(text.data(), pos);
    // The target may contain spaces ("/example space/"): method up to the first space,
    // version after the last one.
    const std::size_t first = line.find(' ');
    const std::size_t last = line.rfind(' ');
    REQUIRE(first < last);
    const std::string_view target = line.substr(first + 1, last - first - 1);
    r.method = std::string(line.substr(0, first));
    const std::size_t q = target.find('?');
    r.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) {
        r.query = std::string(target.substr(q + 1));
    }
    ++pos;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string::npos) {
            end = text.size();
        }
        const std::string_view header(text.data() + pos, end - pos);
        pos = end + 1;
        if (header.empty()) {
            r.body = pos < text.size() ? text.substr(pos) : std::string{};
            break;
        }
        if (header.front() == ' ' || header.front() == '\t') {
            REQUIRE(!r.headers.empty());
            r.headers.back().value.append(" ").append(header);
            continue;
        }
        const std::size_t colon = header.find(':');
        REQUIRE(colon != std::string_view::npos);
        r.headers.push_back(
            {std::string(header.substr(0, colon)), std::string(header.substr(colon + 1))});
    }
    return r;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

// The value of the first header called `name` (case-insensitive) in a parsed request.
std::optional<std::string> header_value(const ParsedRequest& r, std::string_view name) {
    for (const auto& h : r.headers) {
        if (lower(h.name) == lower(name)) {
            return h.value;
        }
    }
    return std::nullopt;
}

std::string signature_of(std::string_view authorization) {
    const std::size_t pos = authorization.find("Signature=");
    return pos == std::string_view::npos ? std::string{}
                                         : std::string(authorization.substr(pos + 10));
}

// Signs `request` as the case in `dir` describes and checks every expected text byte for byte.
void check_case(const fs::path& dir, const Context& ctx, const SigningRequest& request,
                const ParsedRequest& expected_signed_request, bool token_signed) {
    const std::string name = dir.parent_path().filename().string() + "/" + dir.filename().string();
    INFO("case ", name);
    const Credentials credentials(ctx.access_key_id, ctx.secret, token_signed ? ctx.token : "");
    SigV4Signer signer(ctx.region, ctx.service, ctx.normalize);
    const SignedHeaders signed_headers = signer.sign(request, credentials, ctx.timestamp);

    CHECK(signer.last_canonical_request() == read_file(dir / "header-canonical-request.txt"));
    CHECK(signer.last_string_to_sign() == read_file(dir / "header-string-to-sign.txt"));
    CHECK(signature_of(signed_headers.authorization) == read_file(dir / "header-signature.txt"));
    CHECK(signed_headers.authorization ==
          header_value(expected_signed_request, "Authorization").value_or("<missing>"));
    CHECK(signed_headers.amz_date ==
          header_value(expected_signed_request, "X-Amz-Date").value_or("<missing>"));
    if (token_signed && !ctx.token.empty()) {
        CHECK(signed_headers.security_token ==
              header_value(expected_signed_request, "X-Amz-Security-Token").value_or(""));
    } else {
        CHECK(signed_headers.security_token.empty());
    }
}

// The signed-headers line of an expected canonical request (the last line but one).
std::vector<std::string> signed_header_names(const std::string& canonical_request) {
    const std::size_t last = canonical_request.rfind('\n');
    REQUIRE(last != std::string::npos);
    const std::size_t prev = canonical_request.rfind('\n', last - 1);
    REQUIRE(prev != std::string::npos);
    std::vector<std::string> names;
    std::stringstream list(canonical_request.substr(prev + 1, last - prev - 1));
    for (std::string n; std::getline(list, n, ';');) {
        names.push_back(n);
    }
    return names;
}

// One xray-go-daemon-3.5.0* set: header-signed-request.txt is the request as the Go daemon sent
// it; the headers it signed are the ones listed in the expected canonical request.
std::size_t check_xray_set(const fs::path& root) {
    std::size_t cases = 0;
    for (const fs::path& dir : case_dirs(root)) {
        const Context ctx = load_context(dir);
        const ParsedRequest sent = parse_request(read_file(dir / "header-signed-request.txt"));
        const auto names = signed_header_names(read_file(dir / "header-canonical-request.txt"));
        SigningRequest request{sent.method, sent.path, sent.query, {}, sent.body};
        for (const auto& h : sent.headers) {
            const std::string n = lower(h.name);
            if (n != "x-amz-date" && n != "x-amz-security-token" &&
                std::find(names.begin(), names.end(), n) != names.end()) {
                request.headers.push_back(h);
            }
        }
        check_case(dir, ctx, request, sent, true);
        ++cases;
    }
    return cases;
}

SigningRequest simple_request(std::string_view path, std::string_view query = {}) {
    return SigningRequest{"POST", path, query, {{"Host", "xray.us-east-1.amazonaws.com"}}, "{}"};
}

// The canonical URI and query lines (2nd and 3rd) of the last canonical request.
std::pair<std::string, std::string> uri_and_query(const SigV4Signer& signer) {
    std::stringstream cr(signer.last_canonical_request());
    std::string method;
    std::string uri;
    std::string query;
    std::getline(cr, method);
    std::getline(cr, uri);
    std::getline(cr, query);
    return {uri, query};
}

// 2026-11-22T00:48:28Z
const WallClock::time_point day1{
    std::chrono::sys_days{std::chrono::year{2026} / std::chrono::November / 22} +
    std::chrono::minutes{48} + std::chrono::seconds{28}};
const Credentials key1("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
const Credentials key2("AKIDEXAMPLE2", "secret-two-XXXXXXXXXXXXXXXXXXXXXXXXXXXXX");

}  // namespace

TEST_CASE("sha256_hex matches the FIPS 180-2 test vectors") {
    CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("every aws-c-auth v4 header-signing vector is reproduced byte for byte") {
    std::size_t cases = 0;
    for (const fs::path& dir : case_dirs(sigv4_data / "v4")) {
        const Context ctx = load_context(dir);
        const ParsedRequest parsed = parse_request(read_file(dir / "request.txt"));
        SigningRequest request{parsed.method, parsed.path, parsed.query, parsed.headers,
                               parsed.body};
        if (ctx.sign_body) {
            // aws-c-auth's "sign_body" adds the payload hash as a signed header.
            request.headers.push_back({"x-amz-content-sha256", sha256_hex(parsed.body)});
        }
        const ParsedRequest expected = parse_request(read_file(dir / "header-signed-request.txt"));
        // omit_session_token: the token is sent but not signed, which signs exactly like
        // credentials without a token (the caller adds the header after signing).
        check_case(dir, ctx, request, expected, !ctx.omit_session_token);
        ++cases;
    }
    CHECK(cases == 38);
}

TEST_CASE("requests captured from the Go X-Ray daemon 3.5.0 are signed identically") {
    CHECK(check_xray_set(sigv4_data / "xray-go-daemon-3.5.0") == 5);
}

TEST_CASE("requests captured from the Go X-Ray daemon 3.5.0 with a session token are signed "
          "identically, token included") {
    CHECK(check_xray_set(sigv4_data / "xray-go-daemon-3.5.0-session-token") == 3);
}

TEST_CASE("the cached signing key is derived again when the secret changes") {
    SigV4Signer cached("us-east-1", "xray");
    const SignedHeaders first = cached.sign(simple_request("/TraceSegments"), key1, day1);
    const SignedHeaders second = cached.sign(simple_request("/TraceSegments"), key2, day1);
    SigV4Signer fresh("us-east-1", "xray");
    const SignedHeaders expected = fresh.sign(simple_request("/TraceSegments"), key2, day1);
    CHECK(second.authorization == expected.authorization);
    CHECK(signature_of(first.authorization) != signature_of(second.authorization));
}

TEST_CASE("the cached signing key is derived again when the date changes") {
    const auto day2 = day1 + std::chrono::hours(24);
    SigV4Signer cached("us-east-1", "xray");
    (void)cached.sign(simple_request("/TraceSegments"), key1, day1);
    const SignedHeaders second = cached.sign(simple_request("/TraceSegments"), key1, day2);
    SigV4Signer fresh("us-east-1", "xray");
    const SignedHeaders expected = fresh.sign(simple_request("/TraceSegments"), key1, day2);
    CHECK(second.authorization == expected.authorization);
    CHECK(second.authorization.find("/20261123/us-east-1/xray/aws4_request") != std::string::npos);
}

TEST_CASE("a moved signer signs like the original, and the moved-from one still works") {
    SigV4Signer original("us-east-1", "xray");
    const SignedHeaders before = original.sign(simple_request("/TraceSegments"), key1, day1);
    SigV4Signer moved(std::move(original));
    CHECK(moved.sign(simple_request("/TraceSegments"), key1, day1).authorization ==
          before.authorization);
    SigV4Signer assigned("eu-west-1", "s3");
    assigned = std::move(moved);
    CHECK(assigned.sign(simple_request("/TraceSegments"), key1, day1).authorization ==
          before.authorization);
}

TEST_CASE("x-amz-date and x-amz-security-token given by the caller are replaced by sign()'s") {
    SigV4Signer signer("us-east-1", "xray");
    const Credentials with_token("AKID", "secret", "token-value");
    const SignedHeaders expected = signer.sign(simple_request("/TraceSegments"), with_token, day1);
    SigningRequest request = simple_request("/TraceSegments");
    request.headers.push_back({"X-Amz-Date", "19990101T000000Z"});
    request.headers.push_back({"X-Amz-Security-Token", "stale"});
    const SignedHeaders got = signer.sign(request, with_token, day1);
    CHECK(got.authorization == expected.authorization);
    CHECK(got.security_token == "token-value");
    CHECK(got.amz_date == "20261122T004828Z");
    CHECK(signer.last_canonical_request().find("stale") == std::string::npos);
}

TEST_CASE("the date is UTC and truncated to whole seconds") {
    SigV4Signer signer("us-east-1", "xray");
    const auto now = day1 + std::chrono::milliseconds(999);
    CHECK(signer.sign(simple_request("/"), key1, now).amz_date == "20261122T004828Z");
}

TEST_CASE("canonical URI: dot segments and empty segments are removed when normalising") {
    SigV4Signer signer("us-east-1", "xray");
    const std::pair<std::string_view, std::string_view> cases[] = {
        {"/a/b/../c/./d", "/a/c/d"},
        {"/a/b/..", "/a/"},
        {"/a/./", "/a/"},
        {"/../..", "/"},
        {"a/b", "/a/b"},
        {"", "/"},
        {"/a b/%2F", "/a%20b/%252F"},  // encoded like aws-sdk-go: a '%' is encoded again
    };
    for (const auto& entry : cases) {
        const std::string_view path = entry.first;
        const std::string_view expected = entry.second;
        INFO("path ", path);
        (void)signer.sign(simple_request(path), key1, day1);
        CHECK(uri_and_query(signer).first == expected);
    }
}

TEST_CASE("canonical URI: without normalisation the path is only encoded") {
    SigV4Signer signer("us-east-1", "s3", false);
    (void)signer.sign(simple_request("/a//./b/../c d"), key1, day1);
    CHECK(uri_and_query(signer).first == "/a//./b/../c%20d");
}

TEST_CASE("canonical query: decoded, re-encoded and sorted by key then value") {
    SigV4Signer signer("us-east-1", "xray");
    (void)signer.sign(simple_request("/", "b=2&a=z&a=y&flag&c=%7e+x&&d=100%"), key1, day1);
    CHECK(uri_and_query(signer).second == "a=y&a=z&b=2&c=~%20x&d=100%25&flag=");
}

TEST_CASE("canonical headers: repeated names are joined in the order given, values trimmed") {
    SigV4Signer signer("us-east-1", "xray");
    SigningRequest request = simple_request("/");
    request.headers.push_back({"X-B", "  two \t  words  "});
    request.headers.push_back({"x-a", "1"});
    request.headers.push_back({"X-A", "0"});
    (void)signer.sign(request, key1, day1);
    const std::string& cr = signer.last_canonical_request();
    CHECK(cr.find("x-a:1,0\nx-amz-date:20261122T004828Z\nx-b:two words\n\n"
                  "host;x-a;x-amz-date;x-b\n") != std::string::npos);
}

}  // namespace xrayd
