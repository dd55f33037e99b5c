// Spool::scan: what open() finds in the directory an earlier run left — torn tails cut, damage
// counted, other format versions left alone, empty files deleted.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include <xrayd/common/startup_error.h>

#include "spool_file.h"

namespace xrayd::spool {

namespace {

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

}  // namespace

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

}  // namespace xrayd::spool
