// check_proxy_url: libcurl's URL parser decides, we name the problem.
#include <xrayd/http/proxy_url.h>

#include <curl/curl.h>
#include <fmt/format.h>

#include <array>
#include <memory>

#include <xrayd/http/curl.h>

namespace xrayd {

namespace {

struct PartDeleter {
    void operator()(char* p) const noexcept { curl_free(p); }
};

constexpr std::array<std::string_view, 6> proxy_schemes = {"http",    "https",  "socks4",
                                                           "socks4a", "socks5", "socks5h"};

}  // namespace

Result<void, std::string> check_proxy_url(std::string_view url) {
    const auto bad = [&](std::string_view why) {
        return fail(
            fmt::format("Bad proxy URL: \"{}\": {}; write it as http://host:port", url, why));
    };
    CurlUrl handle = CurlUrl::create();
    if (!handle) {
        return fail(std::string("Bad proxy URL: out of memory"));
    }
    const std::string text(url);
    // No default scheme: a bare host:port is the classic mistake (the Go daemon accepts it and
    // then cannot use it), so it is an error here.
    // NON_SUPPORT_SCHEME: socks schemes are proxy-only, unknown to the URL parser as transfers.
    const CURLUcode rc = handle.set(CURLUPART_URL, text.c_str(), CURLU_NON_SUPPORT_SCHEME);
    if (rc != CURLUE_OK) {
        return bad(curl_url_strerror(rc));
    }
    char* raw = nullptr;
    if (curl_url_get(handle.get(), CURLUPART_SCHEME, &raw, 0) != CURLUE_OK || raw == nullptr) {
        return bad("no scheme");
    }
    const std::unique_ptr<char, PartDeleter> scheme(raw);
    bool known = false;
    for (std::string_view s : proxy_schemes) {
        known = known || s == scheme.get();
    }
    if (!known) {
        return bad(fmt::format("scheme \"{}\" is not a proxy scheme (http, https, socks4, "
                               "socks4a, socks5, socks5h)",
                               scheme.get()));
    }
    raw = nullptr;
    if (curl_url_get(handle.get(), CURLUPART_HOST, &raw, 0) != CURLUE_OK || raw == nullptr ||
        *raw == '\0') {
        curl_free(raw);
        return bad("no host");
    }
    curl_free(raw);
    return {};
}

}  // namespace xrayd
