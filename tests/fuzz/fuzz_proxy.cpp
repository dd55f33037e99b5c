// libFuzzer target: the sampling proxy's request handling, fed raw bytes over real TCP.
//
// One SamplingProxy (default allow-list) listens on 127.0.0.1:0 for the whole run, with a
// loopback HTTP server as X-Ray. Each input is sent as-is on a new connection, the write side
// is shut, and the answer is read until the proxy closes. The header lines of the input also go
// through forwardable_headers() directly, so the header rules are fuzzed whatever the path.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstddef>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <xrayd/aws/credentials.h>
#include <xrayd/common/unique_fd.h>
#include <xrayd/http/curl.h>
#include <xrayd/log/logger.h>
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
    // Not recording: millions of inputs would otherwise pile up in the stand-in's request log.
    xrayd::test::HttpTestServer upstream{
        xrayd::test::HttpTestServerOptions{.record_requests = false}};
    xrayd::StaticCredentialsProvider credentials{
        xrayd::Credentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}};
    xrayd::Counters counters;
    xrayd::Logger logger{xrayd::LogLevel::critical, std::make_unique<NullSink>()};
    std::unique_ptr<xrayd::SamplingProxy> proxy;

    Harness() {
        upstream.set_default_response(xrayd::test::ScriptedResponse{
            200, {{"Content-Type", "application/json"}}, R"({"SamplingRuleRecords":[]})"});
        xrayd::SamplingProxyOptions options;
        options.address = "127.0.0.1:0";
        options.upstream = upstream.url();
        options.region = "us-east-1";
        options.max_body_bytes = 64 * 1024;
        options.idle_timeout = std::chrono::seconds(2);
        options.body_timeout = std::chrono::milliseconds(2000);
        proxy = xrayd::SamplingProxy::create(std::move(options), credentials, counters, logger);
        if (!proxy->start()) {
            std::abort();
        }
    }
};

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

void header_rules(std::string_view text) {
    std::vector<xrayd::ForwardHeader> headers;
    std::size_t start = text.find('\n');  // skip the request line
    while (start != std::string_view::npos && start + 1 < text.size()) {
        ++start;
        std::size_t end = text.find('\n', start);
        std::string_view line = text.substr(start, end == std::string_view::npos ? end : end - start);
        if (const std::size_t colon = line.find(':'); colon != std::string_view::npos) {
            headers.push_back({std::string(line.substr(0, colon)), std::string(line.substr(colon + 1))});
            (void)xrayd::is_signed_proxy_header(headers.back().name);
        }
        start = end;
    }
    (void)xrayd::forwardable_headers(headers);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Harness h;
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    header_rules(bytes);
    exchange(h.proxy->port(), bytes);
    return 0;
}
