// Spool: appending and writing out, the quota, rotation, fsync and deleting files. Recovery at
// open is in spool_recovery.cpp, reading back in spool_replay.cpp.
#include <xrayd/spool/spool.h>

#include "spool_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include <xrayd/common/fd_io.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/spool/record_format.h>

namespace xrayd::spool {

namespace {

// append() writes the gathered records out once this many bytes wait.
constexpr std::size_t pending_limit = 1u << 20;

}  // namespace

Spool::Spool(SpoolOptions options, SpoolDirectory dir, Counters& counters, Logger& logger) noexcept
    : options_(std::move(options)), dir_(std::move(dir)), counters_(counters), logger_(logger) {
    if (options_.file_bytes == 0) {
        options_.file_bytes =
            std::clamp<std::uint64_t>(options_.max_bytes / 8, 64u << 10, 8u << 20);
    }
}

Spool::~Spool() {
    finish_writing();
}

std::unique_ptr<Spool> Spool::open(SpoolOptions options, Counters& counters, Logger& logger) {
    SpoolDirectory dir = SpoolDirectory::open(options.dir);
    std::unique_ptr<Spool> spool(new Spool(std::move(options), std::move(dir), counters, logger));
    spool->scan();
    return spool;
}

bool Spool::append(std::string_view document, std::string_view id, std::string_view trace_id,
                   std::uint64_t arrival_unix_ns) noexcept {
    if (write_failed_) {
        counters_.add(*write_failed_);
        return false;
    }
    id = id.substr(0, 255);
    trace_id = trace_id.substr(0, 255);
    const std::size_t payload = entry_prefix + id.size() + trace_id.size() + document.size();
    if (payload > max_record_payload) {
        counters_.add(Counter::dropped_spool_error);
        return false;
    }
    const std::size_t record = record_header_size + payload;
    if (files_.empty() || !files_.back().writing ||
        files_.back().size + pending_.size() + record > options_.file_bytes) {
        if (!pending_.empty()) {
            flush(Clock::now());
            if (write_failed_) {
                counters_.add(*write_failed_);
                return false;
            }
        }
        finish_writing();
        if (!make_room(file_header_size + record) || !start_file()) {
            counters_.add(write_failed_.value_or(Counter::dropped_spool_full));
            publish();
            return false;
        }
    } else if (!make_room(record)) {
        counters_.add(Counter::dropped_spool_full);
        ++full_since_log_;
        std::uint64_t suppressed = 0;
        if (full_log_.allow(Clock::now(), &suppressed)) {
            logger_.warn("Spool {} is full ({} of {} bytes): {} segments dropped (raise "
                         "--spool-max-bytes, or --backpressure drop-oldest to drop the oldest)",
                         path(), bytes_, options_.max_bytes, std::exchange(full_since_log_, 0));
        }
        return false;
    }
    try {
        std::string entry;
        entry.reserve(payload);
        entry.push_back(static_cast<char>(id.size()));
        entry.push_back(static_cast<char>(trace_id.size()));
        entry.append(id);
        entry.append(trace_id);
        entry.append(document);
        if (!append_record(pending_, arrival_unix_ns, entry)) {
            counters_.add(Counter::dropped_spool_error);
            return false;
        }
    } catch (...) {
        counters_.add(Counter::dropped_spool_error);
        return false;
    }
    ++pending_records_;
    ++files_.back().records;
    ++unread_;
    bytes_ += record;
    if (pending_.size() >= pending_limit) {
        flush(Clock::now());
    }
    publish();
    return true;
}

void Spool::flush(TimePoint now) noexcept {
    write_failed_.reset();
    if (!pending_.empty() && !files_.empty() && files_.back().writing) {
        File& file = files_.back();
        if (const int err = write_all(file.fd.get(), pending_); err != 0) {
            // Cut the file back to its last whole record: a partial write must not look like a
            // torn tail (or worse, a damaged record) to the reader.
            (void)::ftruncate(file.fd.get(), static_cast<off_t>(file.size));
            const Counter lost_as = (err == ENOSPC || err == EDQUOT) ? Counter::dropped_spool_full
                                                                     : Counter::dropped_spool_error;
            counters_.add(lost_as, pending_records_);
            file.records -= pending_records_;
            unread_ -= pending_records_;
            bytes_ -= pending_.size();
            log_write_failure(err, "{} segments dropped", pending_records_);
            write_failed_ = lost_as;
        } else {
            counters_.add(Counter::spool_written, pending_records_);
            if (!needs_sync_) {
                next_sync_ = now + options_.sync_interval;
            }
            file.size += pending_.size();
            needs_sync_ = true;
        }
        pending_.clear();
        pending_records_ = 0;
    }
    if (needs_sync_ && !files_.empty() && files_.back().writing &&
        (options_.sync == SpoolSync::always ||
         (options_.sync == SpoolSync::interval && now >= next_sync_))) {
        if (::fdatasync(files_.back().fd.get()) != 0) {
            log_write_failure(errno,
                              "fdatasync failed; what was written may not survive a power loss");
        }
        needs_sync_ = false;
    }
    publish();
}

std::optional<TimePoint> Spool::deadline() const noexcept {
    if (!pending_.empty()) {
        return TimePoint{};  // due now
    }
    if (needs_sync_ && options_.sync == SpoolSync::interval) {
        return next_sync_;
    }
    return std::nullopt;
}

bool Spool::make_room(std::uint64_t bytes) noexcept {
    while (bytes_ + bytes > options_.max_bytes) {
        if (options_.at_quota != Backpressure::drop_oldest) {
            return false;
        }
        const auto oldest = std::find_if(files_.begin(), files_.end(),
                                         [](const File& f) { return !f.writing && !f.foreign; });
        if (oldest == files_.end()) {
            return false;
        }
        const std::uint64_t dropped = oldest->records - oldest->records_read;
        delete_file(static_cast<std::size_t>(oldest - files_.begin()), true);
        std::uint64_t suppressed = 0;
        full_since_log_ += dropped;
        if (full_log_.allow(Clock::now(), &suppressed)) {
            logger_.warn("Spool {} is full ({} bytes): deleted its oldest files, {} segments "
                         "dropped (drop-oldest; consider raising --spool-max-bytes)",
                         path(), options_.max_bytes, std::exchange(full_since_log_, 0));
        }
    }
    return true;
}

bool Spool::start_file() noexcept {
    const std::uint32_t number = next_number_++;
    const FileName name = file_name(number);
    UniqueFd fd(::openat(dir_.fd(), name.c_str(),
                         O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600));
    int err = fd ? write_all(fd.get(), file_header()) : errno;
    if (err == 0 && options_.sync != SpoolSync::none && ::fsync(dir_.fd()) != 0) {
        err = errno;  // the new name must survive a crash, or its records are lost with it
    }
    if (err != 0) {
        if (fd) {
            (void)::unlinkat(dir_.fd(), name.c_str(), 0);
        }
        log_write_failure(err, "cannot start spool file {}", name.c_str());
        write_failed_ = (err == ENOSPC || err == EDQUOT) ? Counter::dropped_spool_full
                                                         : Counter::dropped_spool_error;
        return false;
    }
    File file;
    file.number = number;
    file.fd = std::move(fd);
    file.size = file_header_size;
    file.writing = true;
    try {
        files_.push_back(std::move(file));
    } catch (...) {
        (void)::unlinkat(dir_.fd(), name.c_str(), 0);
        write_failed_ = Counter::dropped_spool_error;
        return false;
    }
    bytes_ += file_header_size;
    return true;
}

void Spool::finish_writing() noexcept {
    if (files_.empty() || !files_.back().writing) {
        return;
    }
    if (!pending_.empty()) {
        flush(Clock::now());
    }
    File& file = files_.back();
    if (needs_sync_ && options_.sync != SpoolSync::none && ::fdatasync(file.fd.get()) != 0) {
        log_write_failure(errno, "fdatasync failed; what was written may not survive a power loss");
    }
    needs_sync_ = false;
    file.writing = false;
    maybe_delete(files_.size() - 1);
}

void Spool::delete_file(std::size_t index, bool count_unread_as_full) noexcept {
    File& file = files_[index];
    const std::uint64_t unread = file.records - file.records_read;
    if (count_unread_as_full && unread > 0) {
        counters_.add(Counter::dropped_spool_full, unread);
    }
    unread_ -= std::min(unread_, unread);
    returned_ -= std::min(returned_, file.returned);
    bytes_ -= std::min(bytes_, file.size);
    if (::unlinkat(dir_.fd(), file_name(file.number).c_str(), 0) != 0) {
        log_write_failure(errno, "cannot delete {}", file_name(file.number).c_str());
    }
    files_.erase(files_.begin() + static_cast<std::ptrdiff_t>(index));
    publish();
}

void Spool::maybe_delete(std::size_t index) noexcept {
    File& file = files_[index];
    if (file.foreign || file.read_offset < file.size || file.outstanding != 0 ||
        file.returned != 0) {
        return;
    }
    if (!file.writing) {
        delete_file(index, false);
        return;
    }
    if (!pending_.empty() || file.size == file_header_size) {
        return;
    }
    // The file being written is delivered up to its end: empty it, so that a restart does not
    // send it again, and keep writing into it (no new file, no directory fsync).
    if (::ftruncate(file.fd.get(), static_cast<off_t>(file_header_size)) != 0) {
        log_write_failure(errno, "cannot empty the delivered spool file {}",
                          file_name(file.number).c_str());
        return;
    }
    bytes_ -= std::min(bytes_, file.size - file_header_size);
    file.size = file_header_size;
    file.read_offset = file_header_size;
    file.records = 0;
    file.records_read = 0;
    needs_sync_ = options_.sync != SpoolSync::none;
    publish();
}

Spool::File* Spool::find(std::uint32_t number) noexcept {
    const auto it = std::find_if(files_.begin(), files_.end(),
                                 [&](const File& f) { return f.number == number; });
    return it == files_.end() ? nullptr : &*it;
}

void Spool::publish() noexcept {
    gauges_.segments.store(unread_ + returned_, std::memory_order_relaxed);
    gauges_.bytes.store(bytes_, std::memory_order_relaxed);
    gauges_.files.store(files_.size(), std::memory_order_relaxed);
}

}  // namespace xrayd::spool
