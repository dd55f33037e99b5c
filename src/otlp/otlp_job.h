// OtlpItem and OtlpJob: a client's accepted export request, and one request to X-Ray made of
// one or more of them, with its retry bookkeeping and what it charges to the memory budget.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <xrayd/common/time.h>
#include <xrayd/otlp/otlp_request.h>

namespace xrayd::otlp {

// One request as the receiver accepted it: its inflated body and what the reader found in it
// (the parts to merge, refused spans already left out).
struct OtlpItem {
    OtlpEncoding encoding = OtlpEncoding::protobuf;
    std::string body;
    OtlpExportRequest request;
    std::size_t spans = 0;    // accepted spans: what this item must account for
    std::size_t charged = 0;  // bytes reserved in the memory budget for it
    TimePoint received{};
    std::uint64_t arrival_unix_ns = 0;  // wall time, for the spool's age limit
};

// Plain data, moved between the exporter's queues and a transfer slot; never copied.
struct OtlpJob {
    OtlpEncoding encoding = OtlpEncoding::protobuf;
    std::vector<OtlpItem> items;  // the client requests merged into it, in arrival order
    std::size_t spans = 0;        // the sum of the items' spans
    // The merged request: uncompressed until the exporter compresses it just before the first
    // attempt (`compressed`), then as posted. Empty for a client request split out of a
    // refused merge, until then.
    std::string body;
    bool compressed = false;
    std::size_t body_charged = 0;  // bytes of `body` reserved (force_reserve) in the budget
    unsigned failures = 0;         // failed attempts so far
    TimePoint first_failure{};     // set at the first failure: the retry budget runs from it
    TimePoint due{};               // when a waiting retry may be sent
    // The OtlpSpool file it was read back from (0: received in this run): settled with the
    // spool at its outcome, left on disk if it is let go.
    std::uint64_t origin = 0;
};

}  // namespace xrayd::otlp
