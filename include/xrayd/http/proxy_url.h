// Checking an outbound proxy URL (-p, ProxyAddress, HTTPS_PROXY) before anything starts.
#pragma once

#include <string>
#include <string_view>

#include <xrayd/common/result.h>

namespace xrayd {

// Accepts what libcurl can use as a proxy: an http, https, socks4, socks4a, socks5 or socks5h
// URL with a host (and optionally a port). The error says what is wrong and how to write it.
// Uses libcurl's URL parser; start-up only.
[[nodiscard]] Result<void, std::string> check_proxy_url(std::string_view url);

}  // namespace xrayd
