// FileSink: appending log file with the Go daemon's size rotation; config-error line appender.
#include <xrayd/log/log_file.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include <xrayd/common/fd_io.h>
#include <xrayd/common/startup_error.h>

namespace xrayd {
namespace {

struct Opened {
    UniqueFd fd;
    std::uint64_t size = 0;
    int err = 0;  // errno when fd is invalid
};

// Opens for appending, creating parent directories first (0777 & ~umask, like Go's MkdirAll
// callers) and the file with 0640 & ~umask: a log can quote what peers sent and where
// credentials came from, so only its owner writes it and its group (adm) reads it. A symbolic
// link is refused (O_NOFOLLOW, ELOOP): whoever can write the log's directory must not be able
// to point xrayd's writes at another file.
Opened open_append(const std::filesystem::path& path) noexcept {
    Opened out;
    try {
        const std::filesystem::path parent = path.parent_path();
        if (!parent.empty()) {
            std::error_code ec;
            std::filesystem::create_directories(parent, ec);
            // An error here shows up as the open() failure below, with a clearer errno.
        }
    } catch (...) {
        out.err = ENOMEM;
        return out;
    }
    out.fd.reset(
        ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640));
    if (!out.fd) {
        out.err = errno;
        return out;
    }
    struct stat st {};
    if (::fstat(out.fd.get(), &st) == 0 && st.st_size > 0) {
        out.size = static_cast<std::uint64_t>(st.st_size);
    }
    return out;
}

// The reason an open failed, in words: ELOOP from O_NOFOLLOW says what to do about it.
std::string open_error_text(int err) {
    if (err == ELOOP) {
        return "it is a symbolic link, which xrayd does not follow (give the path of the file "
               "itself)";
    }
    return std::strerror(err);
}

// The k of `<name>.<k>`, when `file` is such a roll of `name`.
std::optional<std::uint64_t> roll_suffix(std::string_view file, std::string_view name) noexcept {
    if (file.size() <= name.size() + 1 || file.substr(0, name.size()) != name ||
        file[name.size()] != '.') {
        return std::nullopt;
    }
    const std::string_view digits = file.substr(name.size() + 1);
    std::uint64_t k = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), k);
    if (ec != std::errc() || end != digits.data() + digits.size()) {
        return std::nullopt;  // not all digits (a sign, letters) or too large
    }
    return k;
}

}  // namespace

std::unique_ptr<FileSink> FileSink::open(std::filesystem::path path, LogFileOptions options) {
    Opened opened = open_append(path);
    if (!opened.fd) {
        throw StartupError(
            fmt::format("cannot open log file {}: {}", path.string(), open_error_text(opened.err)));
    }
    return std::unique_ptr<FileSink>(
        new FileSink(std::move(path), options, std::move(opened.fd), opened.size));
}

FileSink::FileSink(std::filesystem::path path, LogFileOptions options, UniqueFd fd,
                   std::uint64_t size) noexcept
    : path_(std::move(path)),
      options_(options),
      fd_(std::move(fd)),
      size_(size),
      rotate_at_(options.rotation_bytes) {}

void FileSink::write(std::string_view line) noexcept {
    if (options_.rotation && size_ >= rotate_at_) {
        rotate();
    }
    if (const int err = write_all(fd_.get(), line, &size_); err != 0) {
        report_failure("write", err);
        return;
    }
    failing_ = false;
}

void FileSink::rotate() noexcept {
    // Retry a failed rotation only after another full file, not on every line.
    rotate_at_ = size_ + options_.rotation_bytes;
    try {
        std::filesystem::path dir = path_.parent_path();
        if (dir.empty()) {
            dir = ".";
        }
        const std::string name = path_.filename().string();
        std::vector<std::uint64_t> existing;
        std::uint64_t largest = 0;
        std::error_code ec;
        for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end;
             it.increment(ec)) {
            if (auto k = roll_suffix(it->path().filename().string(), name)) {
                existing.push_back(*k);
                largest = std::max(largest, *k);
            }
        }
        const std::uint64_t next = largest + 1;
        const std::filesystem::path rolled = dir / fmt::format("{}.{}", name, next);
        if (::rename(path_.c_str(), rolled.c_str()) != 0) {
            report_failure("rotate", errno);
            return;
        }
        Opened fresh = open_append(path_);
        if (!fresh.fd) {
            // Keep writing to the renamed file rather than losing lines.
            report_failure("open after rotation", fresh.err);
            return;
        }
        fd_ = std::move(fresh.fd);
        size_ = fresh.size;
        rotate_at_ = options_.rotation_bytes;
        for (const std::uint64_t k : existing) {
            const std::filesystem::path old = dir / fmt::format("{}.{}", name, k);
            (void)::unlink(old.c_str());  // a roll that cannot be deleted only costs disk
        }
    } catch (...) {
        report_failure("rotate", ENOMEM);
    }
}

void FileSink::reopen() noexcept {
    Opened fresh = open_append(path_);
    if (!fresh.fd) {
        report_failure("reopen", fresh.err);
        return;
    }
    fd_ = std::move(fresh.fd);
    size_ = fresh.size;
    rotate_at_ = options_.rotation_bytes;
    failing_ = false;
}

void FileSink::report_failure(std::string_view what, int err) noexcept {
    if (failing_) {
        return;  // one report per run of failures, not one per line
    }
    failing_ = true;
    try {
        const std::string message = fmt::format("xrayd: log file {}: {} failed: {}\n",
                                                path_.string(), what, open_error_text(err));
        (void)write_all(STDERR_FILENO, message);
    } catch (...) {
        // Nothing left to report with.
    }
}

bool append_line_to_file(const std::filesystem::path& path, std::string_view line) noexcept {
    Opened opened = open_append(path);
    if (!opened.fd) {
        return false;
    }
    std::uint64_t written = 0;
    return write_all(opened.fd.get(), line, &written) == 0;
}

}  // namespace xrayd
