// Spool::read and its bookkeeping: segments read back oldest first, file by file, expired and
// damaged ones counted; settle() and unread() as their batches reach an outcome or are let go.
#include <ctime>

#include <algorithm>

#include "spool_file.h"

namespace xrayd::spool {

namespace {

// Bytes read per pread() when reading back: many records, and always one whole largest record.
constexpr std::size_t read_chunk = 2u << 20;
constexpr std::size_t largest_record = record_header_size + max_record_payload;

std::uint64_t unix_now_ns() noexcept {
    timespec ts{};
    (void)::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

bool decode_entry(std::string_view payload, SpooledSegment& out) noexcept {
    if (payload.size() < entry_prefix) {
        return false;
    }
    const auto id_len = static_cast<unsigned char>(payload[0]);
    const auto trace_len = static_cast<unsigned char>(payload[1]);
    if (payload.size() < entry_prefix + id_len + trace_len) {
        return false;
    }
    out.id = payload.substr(entry_prefix, id_len);
    out.trace_id = payload.substr(entry_prefix + id_len, trace_len);
    out.document = payload.substr(entry_prefix + id_len + trace_len);
    return !out.document.empty();
}

}  // namespace

std::uint32_t Spool::read_impl(std::size_t max, void* consumer, Offer offer) noexcept {
    const std::uint64_t now_ns = unix_now_ns();
    const auto max_age = static_cast<std::uint64_t>(options_.max_age.count());
    for (std::size_t index = 0; index < files_.size();) {
        File& file = files_[index];
        if (file.foreign || file.read_offset >= file.size) {
            ++index;
            continue;
        }
        const std::size_t length = static_cast<std::size_t>(
            std::min<std::uint64_t>(file.size - file.read_offset, read_chunk));
        if (const int err = read_at(file.fd.get(), file.read_offset, length, read_buffer_);
            err != 0) {
            log_write_failure(err, "cannot read back {}", file_name(file.number).c_str());
            return 0;  // tried again on the next call
        }
        const std::string_view chunk(read_buffer_.data(), length);
        RecordReader reader(chunk);
        SpoolRecord record;
        std::size_t consumed = 0;
        std::size_t taken = 0;
        bool stopped = false;
        for (;;) {
            const ReadStatus status = reader.next(record);
            if (status == ReadStatus::end) {
                consumed = chunk.size();
                break;
            }
            if (status == ReadStatus::torn_tail) {
                consumed = reader.valid_end();
                const bool at_end = file.read_offset + chunk.size() >= file.size;
                if (at_end) {
                    // Only whole records are ever written: damage at the end of what is there.
                    counters_.add(Counter::spool_corrupt_regions);
                    consumed = chunk.size();
                } else if (consumed == 0 && chunk.size() == read_chunk) {
                    // A whole chunk without one intact record: skip past it (keeping room for a
                    // record that starts near its end).
                    counters_.add(Counter::spool_corrupt_regions);
                    consumed = chunk.size() - largest_record;
                }
                break;
            }
            const std::size_t record_end =
                record.offset + record_header_size + record.payload.size();
            SpooledSegment segment;
            segment.arrival_unix_ns = record.arrival_unix_ns;
            if (!decode_entry(record.payload, segment)) {
                counters_.add(Counter::dropped_spool_corrupt);
                ++file.records_read;
                --unread_;
                consumed = record_end;
                continue;
            }
            if (max_age > 0 && now_ns > record.arrival_unix_ns &&
                now_ns - record.arrival_unix_ns > max_age) {
                counters_.add(Counter::dropped_spool_expired);
                ++file.records_read;
                --unread_;
                consumed = record_end;
                continue;
            }
            if (taken == max || offer(consumer, segment) == Take::stop) {
                consumed = record.offset;
                stopped = true;
                break;
            }
            ++taken;
            ++file.records_read;
            ++file.outstanding;
            --unread_;
            consumed = record_end;
        }
        // Regions skipped before where reading stopped; later ones are counted when reached.
        counters_.add(Counter::spool_corrupt_regions, reader.corrupt_regions());
        file.read_offset += consumed;
        if (file.read_offset >= file.size && !file.writing && file.records_read < file.records) {
            // Records the file was known to hold that could not be read back: damaged on disk.
            const std::uint64_t lost = file.records - file.records_read;
            counters_.add(Counter::dropped_spool_corrupt, lost);
            unread_ -= std::min(unread_, lost);
            file.records_read = file.records;
        }
        counters_.add(Counter::spool_replayed, taken);
        const std::uint32_t number = file.number;
        maybe_delete(index);
        publish();
        if (taken > 0) {
            return number;
        }
        if (stopped || consumed == 0) {
            return 0;
        }
        // Only expired or damaged records so far: go on (the same file, or the next one once
        // this one was deleted or fully read).
        index = 0;
    }
    return 0;
}

void Spool::settle(std::uint32_t origin, std::size_t segments) noexcept {
    for (std::size_t i = 0; i < files_.size(); ++i) {
        if (files_[i].number == origin) {
            files_[i].outstanding -= std::min<std::uint64_t>(files_[i].outstanding, segments);
            maybe_delete(i);
            return;
        }
    }
}

void Spool::unread(std::uint32_t origin, std::size_t segments) noexcept {
    if (File* file = find(origin)) {
        const std::uint64_t n = std::min<std::uint64_t>(file->outstanding, segments);
        file->outstanding -= n;
        file->returned += n;
        returned_ += n;
        publish();
    }
}

}  // namespace xrayd::spool
