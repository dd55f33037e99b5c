// IMDS client (v2 tokens; v1 only when the token request is refused) and host identity.
#include <xrayd/aws/imds.h>

#include <algorithm>

#include <fmt/format.h>

#include <xrayd/aws/credentials.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/http/url_parts.h>
#include <xrayd/log/remote_text.h>

#include "hash.h"
#include "string_util.h"

namespace xrayd {

namespace {

constexpr std::string_view token_path = "/latest/api/token";
constexpr std::string_view ttl_header = "X-aws-ec2-metadata-token-ttl-seconds";
constexpr std::string_view token_header = "X-aws-ec2-metadata-token";
constexpr auto token_refresh_margin = std::chrono::seconds(60);

bool is_true(const Environment& env, std::string_view name) {
    const auto v = env.get_non_empty(name);
    return v && aws_detail::to_lower(aws_detail::trim(*v)) == "true";
}

bool retryable(const Result<HttpResponse, HttpError>& r) {
    if (!r.ok()) {
        return r.error().code != HttpErrc::cancelled && r.error().code != HttpErrc::too_large;
    }
    return r.value().status >= 500;
}

std::chrono::seconds clamp_ttl(std::chrono::seconds ttl) {
    return std::clamp(ttl, std::chrono::seconds(1), ImdsOptions::max_token_ttl);
}

// The endpoint as scheme://host[:port], or StartupError naming the variable.
std::string checked_endpoint(std::string endpoint) {
    while (!endpoint.empty() && endpoint.back() == '/') {
        endpoint.pop_back();
    }
    const auto parts = parse_url(endpoint);
    if (!parts || (parts.value().scheme != "http" && parts.value().scheme != "https") ||
        parts.value().has_user || parts.value().has_query || parts.value().has_fragment ||
        parts.value().path != "/" || parts.value().host.empty()) {
        throw StartupError(fmt::format(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT {} is not a plain http(s)://host[:port] URL "
            "(no user info, path, query or fragment), e.g. http://169.254.169.254",
            RemoteText{endpoint}));
    }
    return endpoint;
}

}  // namespace

ImdsOptions ImdsOptions::from_environment(const Environment& env) {
    ImdsOptions o;
    o.disabled = is_true(env, "AWS_EC2_METADATA_DISABLED");
    o.v1_disabled = is_true(env, "AWS_EC2_METADATA_V1_DISABLED");
    if (auto e = env.get_non_empty("AWS_EC2_METADATA_SERVICE_ENDPOINT")) {
        o.endpoint = checked_endpoint(*e);
    } else if (auto mode = env.get_non_empty("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
               mode && aws_detail::to_lower(*mode) == "ipv6") {
        o.endpoint = "http://[fd00:ec2::254]";
    }
    return o;
}

ImdsClient::ImdsClient(ImdsOptions options, const CredentialsClock& clock,
                       std::shared_ptr<const Cancellation> cancel)
    : options_(std::move(options)), clock_(clock), http_(std::move(cancel)) {
    options_.token_ttl = clamp_ttl(options_.token_ttl);
}

Result<HttpResponse, HttpError> ImdsClient::send(const HttpRequest& request) {
    Result<HttpResponse, HttpError> r = http_.perform(request);
    for (int attempt = 1; attempt < options_.attempts && retryable(r); ++attempt) {
        r = http_.perform(request);
    }
    return r;
}

Result<std::string, std::string> ImdsClient::token() {
    if (mode_ == TokenMode::v1) {
        return std::string();
    }
    const auto now = clock_.now();
    if (mode_ == TokenMode::v2 && !token_.empty() && now < token_refresh_at_) {
        return token_;
    }
    HttpRequest put;
    put.method = "PUT";
    put.url = options_.endpoint + std::string(token_path);
    put.headers = {{std::string(ttl_header), std::to_string(options_.token_ttl.count())}};
    put.transport.connect_timeout = options_.connect_timeout;
    put.transport.total_timeout = options_.total_timeout;
    auto r = send(put);
    const auto fall_back = [&](std::string why) -> Result<std::string, std::string> {
        if (options_.v1_disabled) {
            return fail(
                fmt::format("EC2 IMDS token request failed ({}) and IMDSv1 is disabled", why));
        }
        mode_ = TokenMode::v1;
        return std::string();
    };
    if (!r) {
        // No answer is not a refusal: falling back to v1 here would silently downgrade an
        // instance that requires v2. (In a container behind hop limit 1 the token reply never
        // arrives: raise the hop limit or set AWS_REGION and credentials another way.)
        return fail(fmt::format("EC2 IMDS token request failed: {}", r.error().message));
    }
    HttpResponse& response = r.value();
    if (response.status == 403 || response.status == 404 || response.status == 405) {
        return fall_back(fmt::format("status {}", response.status));
    }
    if (response.status != 200 || response.body.empty()) {
        return fail(fmt::format("EC2 IMDS token request failed with status {}", response.status));
    }
    std::chrono::seconds ttl = options_.token_ttl;
    if (const auto echoed = response.header(ttl_header); !echoed.empty()) {
        try {
            // Clamped: a huge echo would overflow the refresh time into the past or far future.
            ttl = clamp_ttl(std::chrono::seconds(std::stoll(std::string(echoed))));
        } catch (...) {
            // keep the requested TTL
        }
    }
    aws_detail::wipe(token_);
    token_ = aws_detail::trim(response.body);
    aws_detail::wipe(response.body);
    if (token_.empty() || has_control_byte(token_)) {
        // It goes back as a header on every GET: a CR/LF in it would add headers of its own.
        aws_detail::wipe(token_);
        return fail(std::string("EC2 IMDS token reply is empty or contains a control character "
                                "(CR, LF or another byte below 0x20, or DEL)"));
    }
    const auto margin = ttl > 2 * token_refresh_margin ? token_refresh_margin : ttl / 2;
    token_refresh_at_ = now + (ttl - margin);
    mode_ = TokenMode::v2;
    return token_;
}

Result<std::string, std::string> ImdsClient::get(std::string_view path) noexcept {
    if (options_.disabled) {
        return fail(std::string("EC2 IMDS is disabled (AWS_EC2_METADATA_DISABLED)"));
    }
    try {
        std::lock_guard lock(mutex_);
        for (int round = 0; round < 2; ++round) {
            auto tok = token();
            if (!tok) {
                return fail(tok.error());
            }
            HttpRequest request;
            request.url = options_.endpoint + std::string(path);
            request.transport.connect_timeout = options_.connect_timeout;
            request.transport.total_timeout = options_.total_timeout;
            if (!tok.value().empty()) {
                request.headers = {{std::string(token_header), tok.value()}};
                aws_detail::wipe(tok.value());
            }
            auto r = send(request);
            for (auto& [name, value] : request.headers) {
                aws_detail::wipe(value);
            }
            if (!r) {
                return fail(fmt::format("EC2 IMDS GET {}: {}", path, r.error().message));
            }
            if (r.value().status == 401 && mode_ == TokenMode::v2 && round == 0) {
                aws_detail::wipe(token_);  // expired or revoked: get a new one, once
                continue;
            }
            if (r.value().status != 200) {
                return fail(fmt::format("EC2 IMDS GET {}: status {}", path, r.value().status));
            }
            return std::move(r.value().body);
        }
        return fail(fmt::format("EC2 IMDS GET {}: status 401", path));
    } catch (...) {
        return fail(std::string("EC2 IMDS request failed: out of memory"));
    }
}

HostIdentity resolve_host_identity(const Environment& env, bool local_mode, ImdsClient* imds,
                                   Logger& logger) {
    HostIdentity id;
    const bool use_imds = !local_mode && imds != nullptr && !imds->disabled();
    if (auto h = env.get_non_empty("AWS_HOSTNAME")) {
        id.hostname = *h;
        logger.debug("Fetch hostname {} from environment variables", id.hostname);
    } else if (use_imds) {
        auto r = imds->get("/latest/meta-data/hostname");
        if (r) {
            id.hostname = std::string(aws_detail::trim(r.value()));
            logger.debug("Using {} hostname for telemetry records", id.hostname);
        } else {
            logger.debug("Get hostname metadata failed: {}", r.error());
        }
    }
    if (id.hostname.empty()) {
        logger.debug("No hostname set for telemetry records");
    }
    if (auto i = env.get_non_empty("AWS_INSTANCE_ID")) {
        id.instance_id = *i;
        logger.debug("Fetch instance ID {} from environment variables", id.instance_id);
    } else if (use_imds) {
        auto r = imds->get("/latest/meta-data/instance-id");
        if (r) {
            id.instance_id = std::string(aws_detail::trim(r.value()));
            logger.debug("Using {} Instance Id for Telemetry records", id.instance_id);
        } else {
            logger.debug("Get instance id metadata failed: {}", r.error());
        }
    }
    if (id.instance_id.empty()) {
        logger.debug("No Instance Id set for telemetry records");
    }
    return id;
}

}  // namespace xrayd
