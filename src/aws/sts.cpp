// STS AssumeRole / AssumeRoleWithWebIdentity over the AWS query protocol.
#include <xrayd/aws/sts.h>

#include <fmt/format.h>

#include <xrayd/aws/sigv4.h>
#include <xrayd/log/remote_text.h>

#include "form_encoding.h"
#include "hash.h"
#include "iso8601.h"
#include "xml_element.h"

namespace xrayd {

namespace {

struct UrlParts {
    std::string host;  // with :port when given
    std::string path;  // "/" at least
};

UrlParts split_url(std::string_view url) {
    const std::size_t scheme_end = url.find("://");
    std::string_view rest = scheme_end == std::string_view::npos ? url : url.substr(scheme_end + 3);
    const std::size_t slash = rest.find('/');
    UrlParts parts;
    parts.host = std::string(rest.substr(0, slash));
    parts.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    return parts;
}

}  // namespace

std::string to_string(const StsError& error) {
    // STS's code and message (and curl's text) end up in a log line: escaped.
    return fmt::format("{}: {}", RemoteText{error.code}, RemoteText{error.message});
}

Result<std::unique_ptr<Credentials>, StsError> parse_sts_credentials(std::string_view xml) {
    const auto block = aws_detail::xml_element(xml, "Credentials");
    if (!block) {
        return fail(StsError{"MalformedResponse", "no Credentials element in the STS reply", 200});
    }
    auto key = aws_detail::xml_element(*block, "AccessKeyId");
    auto secret = aws_detail::xml_element(*block, "SecretAccessKey");
    auto token = aws_detail::xml_element(*block, "SessionToken");
    const auto expiration = aws_detail::xml_element(*block, "Expiration");
    std::string block_copy = *block;
    aws_detail::wipe(block_copy);
    std::optional<WallClock::time_point> expires;
    if (expiration) {
        expires = aws_detail::parse_iso8601(*expiration);
    }
    if (!key || !secret || key->empty() || secret->empty() || !expires) {
        if (secret) {
            aws_detail::wipe(*secret);
        }
        if (token) {
            aws_detail::wipe(*token);
        }
        return fail(StsError{"MalformedResponse",
                             "the STS reply lacks AccessKeyId, SecretAccessKey or Expiration",
                             200});
    }
    auto credentials = std::make_unique<Credentials>(std::move(*key), *secret,
                                                     token ? *token : std::string(), expires);
    aws_detail::wipe(*secret);
    if (token) {
        aws_detail::wipe(*token);
    }
    if (auto valid = credentials->validate("the STS reply"); !valid) {
        return fail(StsError{"MalformedResponse", valid.error(), 200});
    }
    return credentials;
}

StsError parse_sts_error(std::string_view xml, long status) {
    StsError e;
    e.status = status;
    e.code = aws_detail::xml_element(xml, "Code").value_or(fmt::format("HTTP {}", status));
    e.message = aws_detail::xml_element(xml, "Message").value_or("no error message from STS");
    return e;
}

StsClient::StsClient(const EndpointResolver& endpoints, const Environment& env,
                     std::chrono::milliseconds timeout, std::shared_ptr<const Cancellation> cancel)
    : endpoints_(endpoints), timeout_(timeout), http_(std::move(cancel)) {
    proxy_https_ = proxy_for_url("https://sts", env, &no_proxy_);
    proxy_http_ = proxy_for_url("http://sts", env, nullptr);
}

Result<std::unique_ptr<Credentials>, StsError> StsClient::call(std::string_view action,
                                                               std::string& body,
                                                               const Credentials* base,
                                                               std::string_view region,
                                                               WallClock::time_point now) {
    auto endpoint = endpoints_.sts(region);
    if (!endpoint) {
        aws_detail::wipe(body);
        return fail(StsError{"Endpoint", endpoint.error(), 0});
    }
    const UrlParts url = split_url(endpoint.value().url);
    HttpRequest request;
    request.method = "POST";
    request.url = endpoint.value().url + (url.path == "/" ? "/" : "");
    request.transport.connect_timeout =
        std::min<std::chrono::milliseconds>(timeout_, std::chrono::seconds(2));
    request.transport.total_timeout = timeout_;
    request.transport.proxy =
        endpoint.value().url.substr(0, 8) == "https://" ? proxy_https_ : proxy_http_;
    request.transport.no_proxy = no_proxy_;
    constexpr std::string_view content_type = "application/x-www-form-urlencoded; charset=utf-8";
    request.headers.emplace_back("Content-Type", std::string(content_type));
    if (base != nullptr) {
        SigV4Signer signer(endpoint.value().signing_region, "sts");
        SigningRequest to_sign;
        to_sign.method = "POST";
        to_sign.path = url.path;
        to_sign.headers = {{"content-type", std::string(content_type)}, {"host", url.host}};
        to_sign.payload = body;
        SignedHeaders signed_headers = signer.sign(to_sign, *base, now);
        if (signed_headers.authorization.empty()) {
            aws_detail::wipe(body);
            return fail(StsError{"Signing", "SigV4 signing of the STS request failed", 0});
        }
        request.headers.emplace_back("X-Amz-Date", signed_headers.amz_date);
        if (!signed_headers.security_token.empty()) {
            request.headers.emplace_back("X-Amz-Security-Token", signed_headers.security_token);
            aws_detail::wipe(signed_headers.security_token);
        }
        request.headers.emplace_back("Authorization", signed_headers.authorization);
    }
    request.body = std::move(body);
    aws_detail::wipe(body);
    auto response = http_.perform(request);
    aws_detail::wipe(request.body);
    for (auto& [name, value] : request.headers) {
        aws_detail::wipe(value);
    }
    if (!response) {
        return fail(StsError{"Transport",
                             fmt::format("{} request to {} failed: {}", action,
                                         endpoint.value().url, response.error().message),
                             0});
    }
    HttpResponse& r = response.value();
    if (r.status != 200) {
        StsError e = parse_sts_error(r.body, r.status);
        return fail(std::move(e));
    }
    auto credentials = parse_sts_credentials(r.body);
    aws_detail::wipe(r.body);
    return credentials;
}

Result<std::unique_ptr<Credentials>, StsError> StsClient::assume_role(
    const AssumeRoleParams& params, const Credentials& base, std::string_view region,
    WallClock::time_point now) {
    // Parameters in the order botocore serialises them (the order does not matter to STS).
    std::string body = "Action=AssumeRole";
    if (params.duration_seconds) {
        body += fmt::format("&DurationSeconds={}", *params.duration_seconds);
    }
    if (!params.external_id.empty()) {
        body += "&ExternalId=" + aws_detail::form_encode(params.external_id);
    }
    body += "&RoleArn=" + aws_detail::form_encode(params.role_arn);
    body += "&RoleSessionName=" + aws_detail::form_encode(params.session_name);
    body += "&Version=2011-06-15";
    return call("AssumeRole", body, &base, region, now);
}

Result<std::unique_ptr<Credentials>, StsError> StsClient::assume_role_with_web_identity(
    const AssumeRoleParams& params, std::string_view web_identity_token, std::string_view region) {
    std::string body = "Action=AssumeRoleWithWebIdentity";
    if (params.duration_seconds) {
        body += fmt::format("&DurationSeconds={}", *params.duration_seconds);
    }
    body += "&RoleArn=" + aws_detail::form_encode(params.role_arn);
    body += "&RoleSessionName=" + aws_detail::form_encode(params.session_name);
    body += "&Version=2011-06-15";
    std::string encoded_token = aws_detail::form_encode(web_identity_token);
    body.reserve(body.size() + 18 + encoded_token.size());  // no reallocation leaves a copy
    body.append("&WebIdentityToken=");
    body.append(encoded_token);
    aws_detail::wipe(encoded_token);
    return call("AssumeRoleWithWebIdentity", body, nullptr, region, WallClock::now());
}

}  // namespace xrayd
