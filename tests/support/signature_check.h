// Independent checks of the SigV4 signature on a request that reached a test X-Ray endpoint: the
// signature recomputed from what the server received, as X-Ray does.
#pragma once

#include <string>
#include <string_view>

#include <xrayd/aws/credentials.h>
#include <xrayd/common/time.h>

#include "http_test_server.h"

namespace xrayd::test {

// The value of `name` (e.g. "SignedHeaders=") in an Authorization header, up to the next ',' or
// ' ' (REQUIREs that it is there).
[[nodiscard]] std::string authorization_field(const std::string& authorization,
                                              std::string_view name);

// An X-Amz-Date value ("20240501T100000Z") as a time (REQUIREs that it parses).
[[nodiscard]] WallClock::time_point parse_amz_date(const std::string& text);

// CHECKs that `r` carries the Authorization that `creds` give for service "xray" in `region`,
// signing exactly the headers Authorization names, with the values the server received.
void verify_xray_signature(const RecordedRequest& r, const Credentials& creds,
                           std::string_view region, std::string_view query = "");

}  // namespace xrayd::test
