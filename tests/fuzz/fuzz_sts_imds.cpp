// libFuzzer target: the STS XML replies and the JSON credential documents of IMDS and the
// container credentials endpoint (ECS, EKS Pod Identity), as the credential chain parses them.
//
// Input: the first byte picks the parser (so one corpus feeds all of them), the rest is the
// response body.
//
// The JSON path runs the aws module's private credentials_from_json (src/aws/credentials_json.h),
// the very function the container, IMDS and credential_process sources call, with each of the
// token keys and both Expiration rules they use.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <xrayd/aws/sts.h>

#include "src/aws/credentials_json.h"
#include "src/aws/iso8601.h"
#include "src/aws/string_util.h"
#include "src/aws/xml_element.h"

namespace {

void fuzz_credentials_json(std::string_view body) {
    // IMDS and the container endpoint name the session token "Token", credential_process
    // "SessionToken"; only some sources require an Expiration.
    for (const char* token_key : {"Token", "SessionToken"}) {
        for (const bool expiration_required : {false, true}) {
            (void)xrayd::aws_detail::credentials_from_json("fuzz", body, token_key,
                                                           expiration_required);
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 4) {
    case 0: {
        auto credentials = xrayd::parse_sts_credentials(body);
        (void)credentials;
        break;
    }
    case 1: (void)xrayd::parse_sts_error(body, 403); break;
    case 2: fuzz_credentials_json(body); break;
    default:
        (void)xrayd::aws_detail::parse_iso8601(body);
        (void)xrayd::aws_detail::xml_element(body, "Expiration");
        (void)xrayd::aws_detail::trim(body);
        break;
    }
    return 0;
}
