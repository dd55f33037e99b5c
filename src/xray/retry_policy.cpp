// Retry policy of the uploader.
#include <xrayd/xray/retry_policy.h>

#include <algorithm>
#include <cerrno>

namespace xrayd {

Counter failure_counter(FailureClass failure) noexcept {
    switch (failure) {
    case FailureClass::timeout: return Counter::backend_timeout;
    case FailureClass::connection_refused: return Counter::backend_connection_refused;
    case FailureClass::unknown_host: return Counter::backend_unknown_host;
    case FailureClass::http_4xx: return Counter::backend_http_4xx;
    case FailureClass::http_5xx: return Counter::backend_http_5xx;
    case FailureClass::other: return Counter::backend_other;
    }
    return Counter::backend_other;
}

FailureClass classify_transport_failure(CURLcode code, long os_errno) noexcept {
    switch (code) {
    case CURLE_OPERATION_TIMEDOUT: return FailureClass::timeout;
    case CURLE_COULDNT_RESOLVE_HOST: return FailureClass::unknown_host;
    case CURLE_COULDNT_CONNECT:
        return os_errno == ECONNREFUSED ? FailureClass::connection_refused : FailureClass::other;
    default: return FailureClass::other;
    }
}

FailureClass classify_http_status(long status) noexcept {
    if (status >= 400 && status <= 499) {
        return FailureClass::http_4xx;
    }
    if (status >= 500 && status <= 599) {
        return FailureClass::http_5xx;
    }
    return FailureClass::other;
}

bool is_throttling_error(std::string_view error_type) noexcept {
    // "ns#Name" and "Name:uri" both reduce to "Name".
    if (const auto hash = error_type.rfind('#'); hash != std::string_view::npos) {
        error_type.remove_prefix(hash + 1);
    }
    if (const auto colon = error_type.find(':'); colon != std::string_view::npos) {
        error_type = error_type.substr(0, colon);
    }
    return error_type == "ThrottlingException" || error_type == "Throttling" ||
           error_type == "ThrottledException" || error_type == "TooManyRequestsException" ||
           error_type == "RequestLimitExceeded";
}

Counter final_rejection_counter(long status, std::string_view error_type) noexcept {
    // "ns#Name" and "Name:uri" both reduce to "Name", as for throttling.
    if (const auto hash = error_type.rfind('#'); hash != std::string_view::npos) {
        error_type.remove_prefix(hash + 1);
    }
    if (const auto colon = error_type.find(':'); colon != std::string_view::npos) {
        error_type = error_type.substr(0, colon);
    }
    const bool auth_error =
        error_type.starts_with("AccessDenied") || error_type == "InvalidSignatureException" ||
        error_type == "UnrecognizedClientException" || error_type == "InvalidClientTokenId" ||
        error_type == "ExpiredTokenException" || error_type == "ExpiredToken" ||
        error_type == "MissingAuthenticationTokenException" ||
        error_type == "IncompleteSignatureException";
    if (status == 401 || status == 403 || auth_error) {
        return Counter::rejected_request_denied;
    }
    if (status == 413) {
        return Counter::rejected_request_too_large;
    }
    if (status == 400) {
        return Counter::rejected_request_invalid;
    }
    return Counter::rejected_request_other;
}

bool http_failure_is_retryable(long status, std::string_view error_type) noexcept {
    if (status >= 500 && status <= 599) {
        return true;
    }
    if (status == 429) {
        return true;
    }
    if (status >= 400 && status <= 499) {
        return is_throttling_error(error_type);
    }
    // 1xx/3xx: nothing X-Ray sends; not a verdict on the batch, so try again.
    return true;
}

bool unprocessed_is_throttled(std::string_view error_code) noexcept {
    return error_code == "429" || is_throttling_error(error_code);
}

bool unprocessed_is_retryable(std::string_view error_code) noexcept {
    if (unprocessed_is_throttled(error_code)) {
        return true;
    }
    if (error_code.size() == 3 && error_code[0] == '5' &&
        std::all_of(error_code.begin(), error_code.end(),
                    [](char c) { return c >= '0' && c <= '9'; })) {
        return true;
    }
    if (const auto hash = error_code.rfind('#'); hash != std::string_view::npos) {
        error_code.remove_prefix(hash + 1);
    }
    return error_code == "InternalFailure" || error_code == "InternalError" ||
           error_code == "InternalServerError" || error_code == "InternalServiceError" ||
           error_code == "ServiceUnavailable" || error_code == "ServiceUnavailableException";
}

Duration backoff_delay(unsigned retry, Duration base, Duration cap, double unit_random,
                       Duration retry_after) noexcept {
    base = std::max(base, Duration::zero());
    cap = std::max(cap, base);
    // base * 2^retry without overflow: stop doubling once the cap is reached.
    Duration ceiling = base;
    for (unsigned i = 0; i < retry && ceiling < cap; ++i) {
        ceiling = ceiling > cap / 2 ? cap : ceiling * 2;
    }
    ceiling = std::min(ceiling, cap);
    unit_random = std::clamp(unit_random, 0.0, 1.0);
    const auto span = static_cast<double>((ceiling - base).count());
    Duration delay = base + Duration(static_cast<Duration::rep>(span * unit_random));
    delay = std::min(delay, ceiling);
    if (retry_after > Duration::zero()) {
        delay = std::max(delay, std::min(retry_after, cap));
    }
    return delay;
}

Duration retry_after_delay(std::int64_t seconds) noexcept {
    constexpr std::int64_t max_seconds = 24 * 60 * 60;
    return std::chrono::seconds(std::clamp<std::int64_t>(seconds, 0, max_seconds));
}

RetryDecision decide_retry(TimePoint first_failure, TimePoint now, Duration budget) noexcept {
    return now - first_failure >= budget ? RetryDecision::give_up : RetryDecision::retry;
}

double JitterSource::next_unit() noexcept {
    state_ += 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;
}

}  // namespace xrayd
