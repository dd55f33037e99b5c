// SpoolDirectory: the spool's directory (--spool-dir, issue #15), held by one daemon at a time.
#pragma once

#include <string>
#include <utility>

#include <xrayd/common/unique_fd.h>

namespace xrayd::spool {

// The name of the lock file inside the spool directory; it holds the owner's PID.
inline constexpr const char* lock_file_name = "LOCK";

// Opens an existing directory for spooling and locks it (flock on its LOCK file) for as long as
// the object lives, so that two daemons never share one spool. The directory is set to mode
// 0700 and the lock file is 0600, written with this process's PID.
// Thread-safety: create at start-up; path() from any thread. Move-only (owns two fds).
class SpoolDirectory {
public:
    // Throws StartupError naming the path and the fix: missing, not a directory, not writable
    // (read-only file system, permissions), or locked by another process (its PID, as its LOCK
    // file says).
    [[nodiscard]] static SpoolDirectory open(const std::string& path);

    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    // The directory's fd, for openat() of the spool files.
    [[nodiscard]] int fd() const noexcept { return dir_.get(); }

private:
    SpoolDirectory(std::string path, UniqueFd dir, UniqueFd lock) noexcept
        : path_(std::move(path)), dir_(std::move(dir)), lock_(std::move(lock)) {}

    std::string path_;
    UniqueFd dir_;
    UniqueFd lock_;  // holds the flock; closing it releases the lock
};

}  // namespace xrayd::spool
