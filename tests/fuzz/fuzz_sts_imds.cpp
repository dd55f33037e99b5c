// libFuzzer target: the STS XML replies and the JSON credential documents of IMDS and the
// container credentials endpoint (ECS, EKS Pod Identity), as the credential chain parses them.
//
// Input: the first byte picks the parser (so one corpus feeds all of them), the rest is the
// response body.
//
// The JSON path uses the aws module's private reader (src/aws/json_reader.h) directly: the
// function that turns a document into Credentials (credentials_from_json in
// credential_chain.cpp) is in an anonymous namespace and not reachable from here.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <xrayd/aws/sts.h>

#include "src/aws/iso8601.h"
#include "src/aws/json_reader.h"
#include "src/aws/string_util.h"
#include "src/aws/xml_element.h"

namespace {

void fuzz_credentials_json(std::string_view body) {
    // The steps of credentials_from_json: object, string members, ISO-8601 Expiration.
    auto doc = xrayd::aws_detail::parse_json_object(body);
    if (!doc) {
        return;
    }
    for (const char* name : {"AccessKeyId", "SecretAccessKey", "Token", "SessionToken", "Code",
                             "code", "message", "Expiration"}) {
        (void)doc.value().find(name);
        if (auto s = doc.value().string(name)) {
            (void)xrayd::aws_detail::parse_iso8601(*s);
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
    case 1:
        (void)xrayd::parse_sts_error(body, 403);
        break;
    case 2:
        fuzz_credentials_json(body);
        break;
    default:
        (void)xrayd::aws_detail::parse_iso8601(body);
        (void)xrayd::aws_detail::xml_element(body, "Expiration");
        (void)xrayd::aws_detail::trim(body);
        break;
    }
    return 0;
}
