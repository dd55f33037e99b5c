// libFuzzer target: the sampling proxy's request handling, with requests built from structured
// pieces and sent over real TCP.
//
// One SamplingProxy (--proxy-forward-all, the mode the SSRF needed) listens on 127.0.0.1:0 for
// the whole run, with a loopback HTTP server as X-Ray and a second one, "elsewhere", that the
// hostile targets point at. Each input is decoded (FuzzedDataProvider) into a method, a request
// target in one of the forms that once changed the upstream host (@host:port/x, .evil/x,
// :port/x, //host/x, absolute, authority, asterisk) or origin form, a version, header lines
// whose names carry odd bytes (space or tab before the colon, NUL, CR, non-ASCII, a leading
// fold) and Content-Length / Transfer-Encoding combinations, and a body, plain or chunked.
// The invariants, checked after every exchange (abort on a breach):
// - "elsewhere" never receives a request;
// - every request X-Ray receives carries Host = the configured endpoint, an absolute path and
//   only header names that are RFC 9110 tokens;
// - nothing is forwarded for a head check_request_head() refuses.
// The header lines also go through forwardable_headers() directly.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <xrayd/aws/credentials.h>
#include <xrayd/common/unique_fd.h>
#include <xrayd/http/curl.h>
#include <xrayd/http/request_head.h>
#include <xrayd/log/logger.h>
#include <xrayd/log/remote_text.h>
#include <xrayd/proxy/sampling_proxy.h>
#include <xrayd/stats/counters.h>

#include "http_test_server.h"

namespace {

class NullSink final : public xrayd::LogSink {
public:
    void write(std::string_view) noexcept override {}
};

struct Harness {
    xrayd::CurlGlobal curl = xrayd::CurlGlobal::init();
    xrayd::test::HttpTestServer upstream;   // X-Ray; take_requests() after each input
    xrayd::test::HttpTestServer elsewhere;  // where hostile targets point: must stay unvisited
    xrayd::StaticCredentialsProvider credentials{xrayd::Credentials{
        "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token"}};
    xrayd::Counters counters;
    xrayd::Logger logger{xrayd::LogLevel::critical, std::make_unique<NullSink>()};
    std::unique_ptr<xrayd::SamplingProxy> proxy;
    std::string upstream_host;

    Harness() {
        upstream.set_default_response(xrayd::test::ScriptedResponse{
            200, {{"Content-Type", "application/json"}}, R"({"SamplingRuleRecords":[]})"});
        upstream_host = fmt::format("127.0.0.1:{}", upstream.port());
        xrayd::SamplingProxyOptions options;
        options.address = "127.0.0.1:0";
        options.upstream = upstream.url();
        options.region = "us-east-1";
        options.forward_all = true;
        options.max_body_bytes = 64 * 1024;
        options.idle_timeout = std::chrono::seconds(2);
        options.head_timeout = std::chrono::milliseconds(2000);
        options.body_timeout = std::chrono::milliseconds(2000);
        options.upstream_timeout = std::chrono::milliseconds(2000);
        proxy = xrayd::SamplingProxy::create(std::move(options), credentials, counters, logger);
        if (!proxy->start()) {
            std::abort();
        }
    }
};

[[noreturn]] void breach(const std::string& what, std::string_view request) {
    std::fprintf(stderr, "fuzz_proxy: invariant broken: %s\nrequest: %.*s\n", what.c_str(),
                 static_cast<int>(request.size()), request.data());
    std::abort();
}

// Sends `bytes`, half-closes, and drains the answer until the proxy closes.
void exchange(std::uint16_t port, std::string_view bytes) {
    xrayd::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
        std::abort();
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // Abortive close (RST) at the end: this side half-closes first, so a normal close would
    // leave every connection in TIME_WAIT and exhaust the ephemeral ports at ~2000 inputs/s.
    const linger abortive{1, 0};
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive));
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
        int error = errno;
        if (error == EINTR) {
            // Interrupted by a signal (libFuzzer's timers): the connection goes on in the
            // background; wait for it and take its result.
            pollfd p{fd.get(), POLLOUT, 0};
            while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
            }
            socklen_t length = sizeof(error);
            if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) {
                error = errno;
            }
        }
        if (error != 0) {
            // The proxy stopped accepting (a leak of its connection slots): that is a finding.
            std::fprintf(stderr, "fuzz_proxy: connect: %s\n", std::strerror(error));
            std::abort();
        }
    }
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n <= 0) {
            break;  // the proxy may close early (413, bad request): fine
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    (void)::shutdown(fd.get(), SHUT_WR);
    char buf[16384];
    for (;;) {
        pollfd p{fd.get(), POLLIN, 0};
        // No deadline of its own: a hang is reported by libFuzzer's -timeout, with the input.
        if (::poll(&p, 1, -1) <= 0) {
            break;
        }
        if (::recv(fd.get(), buf, sizeof(buf), 0) <= 0) {
            break;
        }
    }
}

// --- building a request from structured pieces -------------------------------------------------
// Every choice reads one byte from the end of the input (FuzzedDataProvider), and choice 0 is
// always what an SDK sends: an empty input is a valid POST /GetSamplingRules, and each seed in
// corpus/fuzz_proxy/ is that request with the choices that make one defect (SOURCES.md).

std::string pick(FuzzedDataProvider& in, std::initializer_list<std::string_view> choices) {
    const std::size_t i = in.ConsumeIntegralInRange<std::size_t>(0, choices.size() - 1);
    return std::string(*(choices.begin() + i));
}

std::string method(FuzzedDataProvider& in) {
    const std::string m =
        pick(in, {"POST", "GET", "PUT", "DELETE", "HEAD", "OPTIONS", "CONNECT", "P\tOST", ""});
    return m.empty() ? in.ConsumeRandomLengthString(8) : m;
}

std::string target(FuzzedDataProvider& in, std::uint16_t elsewhere) {
    const std::string hostport = fmt::format("127.0.0.1:{}", elsewhere);
    std::string t;
    switch (in.ConsumeIntegralInRange(0, 11)) {
    case 0: t = "/GetSamplingRules"; break;
    case 1: t = "/SamplingTargets"; break;
    case 2: t = "/TraceGraph?NextToken=a%2Fb"; break;
    case 3: t = "/x@" + hostport + "/y?a=@" + hostport; break;  // origin form, '@' inside
    case 4: t = "@" + hostport + "/GetSamplingRules"; break;
    case 5: t = ".evil/x"; break;
    case 6: t = fmt::format(":{}/x", elsewhere); break;
    case 7: t = "//" + hostport + "/x"; break;
    case 8: t = "http://" + hostport + "/GetSamplingRules"; break;
    case 9: t = hostport; break;
    case 10: t = "*"; break;
    default: t = in.ConsumeRandomLengthString(24); break;
    }
    if (in.ConsumeIntegralInRange(0, 3) == 3) {
        t += in.ConsumeRandomLengthString(8);  // trailing odd bytes
    }
    return t;
}

std::string header_name(FuzzedDataProvider& in) {
    std::string name =
        pick(in, {"Content-Type", "Content-Length", "Transfer-Encoding", "Host", "Authorization",
                  "X-Amz-Date", "X-Amz-Security-Token", "Connection", "Expect", "X-Custom", ""});
    if (name.empty()) {
        name = in.ConsumeRandomLengthString(12);
    }
    switch (in.ConsumeIntegralInRange(0, 23)) {  // one name in four gets an odd byte
    case 1: name += ' '; break;                  // "Host : x"
    case 2: name += '\t'; break;                 // "Authorization\t: x"
    case 3: name = " " + name; break;            // obsolete fold
    case 4: name += '\0'; break;
    case 5: name += '\r'; break;
    case 6: name += "\xc3\xa9"; break;  // non-ASCII
    default: break;
    }
    return name;
}

std::string header_value(FuzzedDataProvider& in, std::string_view name) {
    std::string value;
    if (name.starts_with("Content-Length")) {
        value = pick(in, {"2", "0", "-1", "2, 2", "0x2", "+2", " 2 ", "99999999999999999999", ""});
    } else if (name.starts_with("Transfer-Encoding")) {
        value =
            pick(in, {"chunked", "Chunked", "gzip, chunked", "identity", "chunked, chunked", ""});
    } else if (name.starts_with("Host")) {
        value = pick(in, {"127.0.0.1:2000", "evil.example", ""});
    } else {
        value = pick(in, {"application/json", "close", "100-continue", "a\r\nX-Injected: yes", ""});
    }
    return value.empty() ? in.ConsumeRandomLengthString(16) : value;  // may hold CR, LF, NUL
}

// A whole request: request line, header lines, the empty line, the body.
std::string build_request(FuzzedDataProvider& in, std::uint16_t elsewhere) {
    const std::string eol = in.ConsumeIntegralInRange(0, 15) == 15 ? "\n" : "\r\n";
    std::string request = method(in) + " " + target(in, elsewhere) + " " +
                          pick(in, {"HTTP/1.1", "HTTP/1.0", "HTTP/1.2", "http/1.1"}) + eol;
    if (in.ConsumeIntegralInRange(0, 7) != 7) {
        request += "Host: 127.0.0.1:2000" + eol;
    }
    const int headers = in.ConsumeIntegralInRange(0, 8);
    bool chunked = false;
    for (int i = 0; i < headers && in.remaining_bytes() > 0; ++i) {
        const std::string name = header_name(in);
        const std::string value = header_value(in, name);
        chunked = chunked || (name == "Transfer-Encoding" && value == "chunked");
        request += name + ":" + (in.ConsumeIntegralInRange(0, 1) == 0 ? " " : "") + value + eol;
    }
    request += eol;
    const std::string body = in.ConsumeRemainingBytesAsString();
    if (chunked) {
        request += fmt::format("{:x}\r\n{}\r\n0\r\n\r\n", body.size(), body);
    } else {
        request += body;
    }
    return request;
}

// Splits the header lines of a request at '\n' for the direct forwardable_headers() run.
void header_rules(std::string_view text) {
    std::vector<xrayd::ForwardHeader> headers;
    std::size_t start = text.find('\n');  // skip the request line
    while (start != std::string_view::npos && start + 1 < text.size()) {
        ++start;
        std::size_t end = text.find('\n', start);
        std::string_view line =
            text.substr(start, end == std::string_view::npos ? end : end - start);
        if (const std::size_t colon = line.find(':'); colon != std::string_view::npos) {
            headers.push_back(
                {std::string(line.substr(0, colon)), std::string(line.substr(colon + 1))});
            (void)xrayd::is_signed_proxy_header(headers.back().name);
        }
        start = end;
    }
    (void)xrayd::forwardable_headers(headers);
}

// RFC 9110 5.6.2 token, written apart from xrayd's is_http_token(): the oracle must not share
// the code it checks.
bool is_token(std::string_view name) {
    constexpr std::string_view tchar_symbols = "!#$%&'*+-.^_`|~";
    return !name.empty() && std::all_of(name.begin(), name.end(), [&](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
               tchar_symbols.find(c) != std::string_view::npos;
    });
}

void check_forwarded(Harness& h, std::string_view request) {
    if (h.elsewhere.request_count() != 0) {
        breach("a request reached a host other than the X-Ray endpoint", request);
    }
    const std::vector<xrayd::test::RecordedRequest> forwarded = h.upstream.take_requests();
    const std::size_t end = xrayd::find_head_end(request);
    const bool head_ok =
        end != std::string_view::npos &&
        xrayd::check_request_head(request.substr(0, end), xrayd::RequestHeadRules{}).ok();
    if (!head_ok && !forwarded.empty()) {
        breach("a request with a refused head was forwarded", request);
    }
    for (const auto& r : forwarded) {
        if (r.header("Host") != h.upstream_host) {
            breach("forwarded with Host " + r.header("Host").value_or("(none)"), request);
        }
        // The stand-in decodes %XX in the path it records, so only its start is checked.
        if (r.path.empty() || r.path[0] != '/') {
            breach("forwarded path not absolute: " + r.path, request);
        }
        for (const auto& [name, value] : r.headers) {
            if (!is_token(name)) {
                breach("forwarded header name not a token: '" + name + "'", request);
            }
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Harness h;
    FuzzedDataProvider in(data, size);
    const std::string request = build_request(in, h.elsewhere.port());
    static const bool print = std::getenv("XRAYD_FUZZ_PRINT") != nullptr;  // to see the seeds
    if (print) {
        std::fprintf(stderr, "request: %s\n", xrayd::escape_remote_text(request, 4096).c_str());
    }
    header_rules(request);
    exchange(h.proxy->port(), request);
    check_forwarded(h, request);
    return 0;
}
