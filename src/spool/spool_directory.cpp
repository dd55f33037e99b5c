// SpoolDirectory: open, check and lock the spool directory.
#include <xrayd/spool/spool_directory.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include <fmt/format.h>

#include <xrayd/common/startup_error.h>

namespace xrayd::spool {

namespace {

[[noreturn]] void refuse(const std::string& path, const std::string& what) {
    throw StartupError(fmt::format("spool directory {}: {}", path, what));
}

// The PID a lock holder wrote into its LOCK file, or "" when it cannot be read.
std::string holder_pid(int lock_fd) {
    char text[32] = {};
    const ssize_t n = ::pread(lock_fd, text, sizeof text - 1, 0);
    if (n <= 0) {
        return {};
    }
    std::string pid(text, static_cast<std::size_t>(n));
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) {
        pid.pop_back();
    }
    return pid.find_first_not_of("0123456789") == std::string::npos ? pid : std::string();
}

}  // namespace

SpoolDirectory SpoolDirectory::open(const std::string& path) {
    if (path.empty()) {
        refuse(path, "no path given");
    }
    UniqueFd dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) {
        const int err = errno;
        if (err == ENOENT) {
            refuse(path, "it does not exist: create it (mode 0700, owned by the daemon's user), or "
                         "point --spool-dir elsewhere");
        }
        if (err == ENOTDIR) {
            refuse(path, "it is not a directory");
        }
        refuse(path, std::strerror(err));
    }
    UniqueFd lock(
        ::openat(dir.get(), lock_file_name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!lock) {
        const int err = errno;
        if (err == EROFS || err == EACCES || err == EPERM) {
            refuse(path, fmt::format("cannot write in it ({}): the spool needs a writable "
                                     "directory",
                                     std::strerror(err)));
        }
        refuse(path,
               fmt::format("cannot open its {} file: {}", lock_file_name, std::strerror(err)));
    }
    if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        if (err == EWOULDBLOCK) {
            const std::string pid = holder_pid(lock.get());
            refuse(path, fmt::format("it is in use by another xrayd{}: give each daemon its own "
                                     "--spool-dir",
                                     pid.empty() ? "" : fmt::format(" (PID {})", pid)));
        }
        refuse(path, fmt::format("cannot lock it: {}", std::strerror(err)));
    }
    // Ours now: say so to the next one that tries, and keep others out of what we spool.
    const std::string pid = fmt::format("{}\n", ::getpid());
    if (::ftruncate(lock.get(), 0) != 0 ||
        ::pwrite(lock.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        refuse(path,
               fmt::format("cannot write its {} file: {}", lock_file_name, std::strerror(errno)));
    }
    if (::fchmod(lock.get(), 0600) != 0 || ::fchmod(dir.get(), 0700) != 0) {
        refuse(path,
               fmt::format("cannot set its modes (0700, files 0600): {}", std::strerror(errno)));
    }
    return SpoolDirectory(path, std::move(dir), std::move(lock));
}

}  // namespace xrayd::spool
