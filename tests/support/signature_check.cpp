// The signature checks on SigV4Signer, fed only what the server recorded.
#include "signature_check.h"

#include <doctest/doctest.h>

#include <ctime>

#include <xrayd/aws/sigv4.h>

namespace xrayd::test {

std::string authorization_field(const std::string& authorization, std::string_view name) {
    const std::size_t at = authorization.find(name);
    REQUIRE(at != std::string::npos);
    const std::size_t start = at + name.size();
    const std::size_t end = authorization.find_first_of(", ", start);
    return authorization.substr(start, end - start);
}

WallClock::time_point parse_amz_date(const std::string& text) {
    std::tm tm{};
    REQUIRE(strptime(text.c_str(), "%Y%m%dT%H%M%SZ", &tm) != nullptr);
    return WallClock::from_time_t(timegm(&tm));
}

void verify_xray_signature(const RecordedRequest& r, const Credentials& creds,
                           std::string_view region, std::string_view query) {
    const auto authorization = r.header("Authorization");
    REQUIRE(authorization.has_value());
    const auto amz_date = r.header("X-Amz-Date");
    REQUIRE(amz_date.has_value());
    const std::string signed_names = authorization_field(*authorization, "SignedHeaders=");
    SigningRequest request;
    request.method = r.method;
    request.path = r.path;
    request.query = query;
    request.payload = r.body;
    std::size_t start = 0;
    while (start <= signed_names.size()) {
        const std::size_t end = signed_names.find(';', start);
        const std::string name = signed_names.substr(start, end - start);
        // sign() adds these two itself.
        if (name != "x-amz-date" && name != "x-amz-security-token") {
            const auto value = r.header(name);
            REQUIRE_MESSAGE(value.has_value(), "signed header missing: " << name);
            request.headers.push_back(HttpHeader{name, *value});
        }
        if (end == std::string::npos) {
            break;
        }
        start = end + 1;
    }
    SigV4Signer signer(std::string(region), "xray");
    const SignedHeaders expected = signer.sign(request, creds, parse_amz_date(*amz_date));
    CHECK(expected.authorization == *authorization);
}

}  // namespace xrayd::test
