// Spool: appending, reading back, settling and deleting spool files within the quota.
#include <xrayd/spool/spool.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <xrayd/common/fd_io.h>
#include <xrayd/common/startup_error.h>
#include <xrayd/spool/record_format.h>

namespace xrayd::spool {

namespace {

// A record's payload is one segment entry: u8 id length, u8 trace id length, the id, the trace
// id, then the document as received. The ids ride along so that a segment read back can be
// batched (and named when X-Ray refuses it) without parsing its document again.
constexpr std::size_t entry_prefix = 2;
// Bytes read per pread() when reading back: many records, and always one whole largest record.
constexpr std::size_t read_chunk = 2u << 20;
constexpr std::size_t largest_record = record_header_size + max_record_payload;
// append() writes the gathered records out once this many bytes wait.
constexpr std::size_t pending_limit = 1u << 20;

// A spool file's name, without allocating (the data plane names files when it logs).
struct FileName {
    char text[16]{};
    [[nodiscard]] const char* c_str() const noexcept { return text; }
};

FileName file_name(std::uint32_t number) noexcept {
    FileName name;
    (void)std::snprintf(name.text, sizeof name.text, "%08x.xrs", number);
    return name;
}

// The number of a spool file's name, or 0 for any other name.
std::uint32_t file_number(std::string_view name) noexcept {
    if (name.size() != 8 + file_suffix.size() || name.substr(8) != file_suffix) {
        return 0;
    }
    std::uint32_t n = 0;
    for (const char c : name.substr(0, 8)) {
        int digit = 0;
        if (c >= '0' && c <= '9') {
            digit = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            digit = c - 'a' + 10;
        } else {
            return 0;
        }
        n = (n << 4) | static_cast<std::uint32_t>(digit);
    }
    return n;
}

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

// Reads `length` bytes at `offset` into `out`; the errno on failure, EIO for a short file.
int read_at(int fd, std::uint64_t offset, std::size_t length, std::string& out) noexcept {
    try {
        out.resize(length);
    } catch (...) {
        return ENOMEM;
    }
    return pread_all(fd, offset, out.data(), length);
}

}  // namespace

struct Spool::File {
    std::uint32_t number = 0;
    UniqueFd fd;
    std::uint64_t size = 0;  // bytes in the file (what flush() wrote; not the pending ones)
    std::uint64_t read_offset = file_header_size;
    std::uint64_t records = 0;       // records it holds: found at start, or appended
    std::uint64_t records_read = 0;  // read back, or dropped unread (expired, damaged)
    std::uint64_t outstanding = 0;   // read back and not yet settled
    std::uint64_t returned = 0;      // read back, then let go unsettled: they stay on disk
    bool writing = false;
    bool foreign = false;  // another format version: never read, written or deleted
};

template <typename... Args>
void Spool::log_write_failure(int err, fmt::format_string<Args...> what, Args&&... args) noexcept {
    std::uint64_t suppressed = 0;
    if (!failure_log_.allow(Clock::now(), &suppressed)) {
        return;
    }
    try {
        const std::string text = fmt::format(what, std::forward<Args>(args)...);
        if (suppressed > 0) {
            logger_.error("Spool {}: {}: {} ({} similar failures not logged)", path(), text,
                          std::strerror(err), suppressed);
        } else {
            logger_.error("Spool {}: {}: {}", path(), text, std::strerror(err));
        }
    } catch (...) {
        // Out of memory: the failure is still counted where it happened.
    }
}

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

void Spool::scan() {
    const std::string& path = dir_.path();
    std::vector<std::uint32_t> numbers;
    {
        const int fd = ::dup(dir_.fd());
        DIR* listing = fd < 0 ? nullptr : ::fdopendir(fd);
        if (listing == nullptr) {
            const int err = errno;
            if (fd >= 0) {
                (void)::close(fd);
            }
            throw StartupError(
                fmt::format("spool directory {}: cannot list it: {}", path, std::strerror(err)));
        }
        while (const dirent* entry = ::readdir(listing)) {
            if (const std::uint32_t n = file_number(entry->d_name); n != 0) {
                numbers.push_back(n);
            }
        }
        (void)::closedir(listing);
    }
    std::sort(numbers.begin(), numbers.end());

    std::uint64_t found = 0;
    std::string bytes;
    for (const std::uint32_t number : numbers) {
        const std::string name = file_name(number).c_str();
        next_number_ = std::max(next_number_, number + 1);
        File file;
        file.number = number;
        file.fd = UniqueFd(::openat(dir_.fd(), name.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
        struct stat st {};
        if (!file.fd || ::fstat(file.fd.get(), &st) != 0) {
            throw StartupError(fmt::format("spool file {}/{}: cannot open it: {}", path, name,
                                           std::strerror(errno)));
        }
        if (const int err = read_at(file.fd.get(), 0, static_cast<std::size_t>(st.st_size), bytes);
            err != 0) {
            throw StartupError(fmt::format("spool file {}/{}: cannot read it: {}", path, name,
                                           std::strerror(err)));
        }
        file.size = static_cast<std::uint64_t>(st.st_size);
        if (auto header = check_file_header(bytes); !header) {
            logger_.warn("Spool file {}/{} skipped and left in place: {}", path, name,
                         header.error());
            file.foreign = true;
            bytes_ += file.size;
            files_.push_back(std::move(file));
            continue;
        }
        RecordReader reader(std::string_view(bytes).substr(file_header_size));
        SpoolRecord record;
        ReadStatus status = ReadStatus::end;
        while ((status = reader.next(record)) == ReadStatus::record) {
            ++file.records;
        }
        if (reader.corrupt_regions() > 0) {
            counters_.add(Counter::spool_corrupt_regions, reader.corrupt_regions());
            logger_.warn("Spool file {}/{}: skipped {} damaged stretches ({} bytes); the records "
                         "around them are kept",
                         path, name, reader.corrupt_regions(), reader.corrupt_bytes());
        }
        if (status == ReadStatus::torn_tail) {
            const std::uint64_t keep = file_header_size + reader.valid_end();
            if (::ftruncate(file.fd.get(), static_cast<off_t>(keep)) != 0) {
                throw StartupError(fmt::format("spool file {}/{}: cannot cut its torn tail: {}",
                                               path, name, std::strerror(errno)));
            }
            logger_.warn("Spool file {}/{}: cut a torn last record of {} bytes (a write cut "
                         "short by a crash)",
                         path, name, file.size - keep);
            file.size = keep;
        }
        if (file.records == 0) {
            (void)::unlinkat(dir_.fd(), name.c_str(), 0);
            continue;
        }
        found += file.records;
        bytes_ += file.size;
        files_.push_back(std::move(file));
    }
    unread_ = found;
    counters_.add(Counter::spool_recovered, found);
    if (found > 0) {
        logger_.info("Spool {}: found {} segments in {} files ({} bytes) from an earlier run; "
                     "they are sent before what was spooled after them",
                     path, found, files_.size(), bytes_);
    } else {
        logger_.info("Spool {}: empty (quota {} bytes, {} sync)", path, options_.max_bytes,
                     to_string(options_.sync));
    }
    publish();
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

void Spool::publish() noexcept {
    gauges_.segments.store(unread_ + returned_, std::memory_order_relaxed);
    gauges_.bytes.store(bytes_, std::memory_order_relaxed);
    gauges_.files.store(files_.size(), std::memory_order_relaxed);
}

}  // namespace xrayd::spool
