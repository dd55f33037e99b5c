// health_check(): one GET of the admin /healthz, answered with an exit status.
#include <xrayd/daemon/health_check.h>

#include <fmt/format.h>

#include <xrayd/http/http_client.h>

namespace xrayd {

std::string healthz_url(const Config& config) {
    if (!config.admin.enabled()) {
        return {};
    }
    std::string address = config.admin.address;
    const std::size_t colon = address.rfind(':');
    std::string host = address.substr(0, colon);
    const std::string port = address.substr(colon + 1);
    if (host.empty() || host == "0.0.0.0") {
        host = "127.0.0.1";
    } else if (host == "[::]") {
        host = "[::1]";
    }
    return fmt::format("http://{}:{}/healthz", host, port);
}

int health_check(const Config& config, std::string* why) {
    const std::string url = healthz_url(config);
    if (url.empty()) {
        *why = "the admin listener is off (--admin-address off): nothing to ask";
        return 1;
    }
    HttpRequest request;
    request.url = url;
    request.transport.connect_timeout = std::chrono::milliseconds(1000);
    request.transport.total_timeout = std::chrono::milliseconds(2000);
    HttpClient client;
    auto response = client.perform(request);
    if (!response) {
        *why = fmt::format("{}: {}", url, response.error().message);
        return 1;
    }
    *why = fmt::format("{}: HTTP {}", url, response.value().status);
    return response.value().status == 200 ? 0 : 1;
}

}  // namespace xrayd
