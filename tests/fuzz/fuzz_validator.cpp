// libFuzzer target: the datagram validator (header line + segment or OTLP document) on any bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include <xrayd/ingest/validator.h>

namespace {

constexpr std::size_t max_datagram = 65536;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // One validator for the whole run, as a receiver thread has: state left behind by one input
    // must not break the next.
    static xrayd::Validator validator{max_datagram};
    // A receive slot holds at most max_datagram + 1 bytes (the +1 detects truncation); the
    // validator is given that length so too_large is exercised too.
    const std::size_t len = size < max_datagram + 1 ? size : max_datagram + 1;
    // IMPORTANT (validator contract): SIMDJSON_PADDING readable bytes after the datagram, and
    // not one more: an exact-size heap block lets ASan catch a read past the padding. The padding
    // holds garbage in a real slot; non-JSON bytes here so nothing relies on zeros.
    const std::unique_ptr<char[]> slot(new char[len + xrayd::datagram_padding]);
    if (len > 0) {
        std::memcpy(slot.get(), data, len);
    }
    std::memset(slot.get() + len, 0x5a, xrayd::datagram_padding);

    const xrayd::Validation v = validator.validate(slot.get(), len);

    // Invariants the ingest path relies on (validator.h); a violation aborts and libFuzzer
    // saves the input.
    if (v.verdict == xrayd::Verdict::accepted) {
        if (!v.problem.empty() || v.body.empty() || v.id.size() != xrayd::segment_id_max ||
            v.trace_id.size() != xrayd::segment_trace_id_max) {
            __builtin_trap();
        }
    } else if (v.verdict == xrayd::Verdict::accepted_otlp_udp) {
        if (!v.problem.empty() || !v.id.empty() || !v.trace_id.empty() ||
            !(v.body.starts_with("T1S") || v.body.starts_with("T1U")) || v.body.size() < 7) {
            __builtin_trap();
        }
    } else if (v.problem.empty()) {
        __builtin_trap();  // every rejection says why
    }
    if (!v.body.empty() &&
        (v.body.data() < slot.get() || v.body.data() + v.body.size() > slot.get() + len)) {
        __builtin_trap();  // body must point into the input
    }
    if (v.id.size() > xrayd::segment_id_max || v.trace_id.size() > xrayd::segment_trace_id_max) {
        __builtin_trap();
    }
    (void)xrayd::to_string(v.verdict);
    return 0;
}
