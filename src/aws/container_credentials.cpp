// The container credentials source (ECS / EKS Pod Identity): AWS_CONTAINER_CREDENTIALS_*.
#include <xrayd/aws/credential_chain.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include <xrayd/common/host_lookup.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/http/http_client.h>
#include <xrayd/http/url_parts.h>
#include <xrayd/log/remote_text.h>

#include "credentials_json.h"
#include "file_read.h"
#include "hash.h"
#include "json_reader.h"
#include "string_util.h"

namespace xrayd {

namespace {

using aws_detail::credentials_from_json;
using aws_detail::wipe;

class ContainerSource final : public CredentialsSource {
public:
    ContainerSource(std::string url, std::string token_file, std::optional<std::string> token,
                    std::chrono::milliseconds timeout, std::shared_ptr<const Cancellation> cancel)
        : url_(std::move(url)),
          token_file_(std::move(token_file)),
          token_(std::move(token)),
          timeout_(timeout),
          http_(std::move(cancel)) {}
    ~ContainerSource() override {
        if (token_) {
            wipe(*token_);
        }
    }

    Result<std::shared_ptr<const Credentials>, std::string> fetch() override {
        HttpRequest request;
        request.url = url_;
        request.transport.connect_timeout =
            std::min<std::chrono::milliseconds>(timeout_, std::chrono::seconds(2));
        request.transport.total_timeout = timeout_;
        std::string auth;
        if (!token_file_.empty()) {
            // Re-read every time: EKS rotates the file.
            auto content = aws_detail::read_whole_file(token_file_);
            if (!content) {
                return fail(fmt::format("container credentials: cannot read the authorization "
                                        "token file: {}",
                                        content.error()));
            }
            auth = std::string(aws_detail::trim(content.value()));
            wipe(content.value());
        } else if (token_) {
            auth = *token_;
        }
        if (has_control_byte(auth)) {
            wipe(auth);
            return fail(std::string("container credentials: the authorization token contains a "
                                    "control character (CR, LF or another byte below 0x20, or "
                                    "DEL)"));
        }
        if (!auth.empty()) {
            request.headers.emplace_back("Authorization", auth);
            wipe(auth);
        }
        request.headers.emplace_back("Accept", "application/json");
        auto response = http_.perform(request);
        for (auto& [name, value] : request.headers) {
            wipe(value);
        }
        if (!response) {
            return fail(fmt::format("container credentials: GET {} failed: {}", url_,
                                    response.error().message));
        }
        HttpResponse& r = response.value();
        if (r.status != 200) {
            std::string detail;
            if (auto doc = aws_detail::parse_json_object(r.body)) {
                // The endpoint's words go to a log line: escaped.
                detail = fmt::format(": {}: {}",
                                     RemoteText{doc.value().string("code").value_or("error")},
                                     RemoteText{doc.value().string("message").value_or("")});
            }
            wipe(r.body);
            return fail(fmt::format("container credentials: GET {} returned status {}{}", url_,
                                    r.status, detail));
        }
        auto credentials = credentials_from_json("container credentials", r.body, "Token", false);
        wipe(r.body);
        return credentials;
    }
    std::string_view name() const noexcept override { return "container"; }

private:
    std::string url_;
    std::string token_file_;
    std::optional<std::string> token_;
    std::chrono::milliseconds timeout_;
    HttpClient http_;
};

bool address_allowed(const sockaddr* addr) {
    if (addr->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(addr);
        const std::uint32_t a = ntohl(in->sin_addr.s_addr);
        return (a >> 24) == 127 || a == 0xA9FEAA02 /* 169.254.170.2 */ ||
               a == 0xA9FEAA17 /* 169.254.170.23 */;
    }
    if (addr->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
        static constexpr unsigned char eks[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0,
                                                  0,    0,    0,    0,    0, 0, 0, 0x23};
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
               std::memcmp(&in6->sin6_addr, eks, sizeof eks) == 0;
    }
    return false;
}

}  // namespace

bool container_host_allowed(const std::string& host) {
    if (host.empty()) {
        return false;
    }
    if (aws_detail::to_lower(host) == "localhost") {
        return true;
    }
    auto found = lookup_host_addresses(host, SOCK_STREAM);
    if (!found || found.value().empty()) {
        return false;
    }
    for (const sockaddr_storage& a : found.value()) {
        if (!address_allowed(reinterpret_cast<const sockaddr*>(&a))) {
            return false;
        }
    }
    return true;
}

std::unique_ptr<CredentialsSource> make_container_credentials_source(
    const CredentialOptions& options, const Environment& env) {
    std::string url;
    if (auto relative = env.get_non_empty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
        // Joined by libcurl from parts: "@host:port/x" or ".evil/x" would otherwise move the
        // request, and the authorization token with it, to another host.
        auto joined = url_with_path(options.container_relative_base, *relative);
        if (!joined) {
            throw StartupError(fmt::format(
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI {} is not a path below {}: {}",
                RemoteText{*relative}, options.container_relative_base, joined.error()));
        }
        url = std::move(joined).value();
    } else if (auto full = env.get_non_empty("AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
        // The host checked is the one libcurl will connect to: same parser.
        const auto parts = parse_url(*full);
        if (!parts || (parts.value().scheme != "https" && parts.value().scheme != "http")) {
            throw StartupError(fmt::format(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI {} is not an http(s) URL", RemoteText{*full}));
        }
        if (parts.value().has_user || parts.value().has_fragment) {
            throw StartupError(fmt::format(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI {} must not hold user info or a fragment",
                RemoteText{*full}));
        }
        if (parts.value().scheme == "http" && !container_host_allowed(parts.value().host)) {
            throw StartupError(fmt::format(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI {}: plain http is only allowed to loopback, "
                "169.254.170.2, 169.254.170.23 or fd00:ec2::23",
                RemoteText{*full}));
        }
        url = *full;
    } else {
        return nullptr;
    }
    return std::make_unique<ContainerSource>(
        std::move(url), env.get_non_empty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").value_or(""),
        env.get_non_empty("AWS_CONTAINER_AUTHORIZATION_TOKEN"), options.http_timeout,
        options.cancel);
}

}  // namespace xrayd
