// libFuzzer target: the spool's record reader on any bytes, as a spool file damaged on disk or
// cut by a crash would hand it over. Besides "no crash, no read out of bounds", it checks the
// reader's promises: records come in order, inside the bytes, each one intact (it re-encodes to
// the very bytes it was read from), and torn_tail or end is final.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <xrayd/spool/record_format.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace xrayd::spool;
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    (void)check_file_header(body);
    RecordReader reader(body);
    SpoolRecord record;
    std::size_t after_last = 0;
    ReadStatus status;
    while ((status = reader.next(record)) == ReadStatus::record) {
        const std::size_t end = record.offset + record_header_size + record.payload.size();
        if (record.offset < after_last || end > size || reader.valid_end() != end) {
            std::abort();
        }
        std::string again;
        if (!append_record(again, record.arrival_unix_ns, record.payload) ||
            body.substr(record.offset, again.size()) != again) {
            std::abort();
        }
        after_last = end;
    }
    if (reader.next(record) != status || reader.valid_end() != after_last ||
        reader.corrupt_bytes() > size) {
        std::abort();
    }
    return 0;
}
