// SpoolDirectory on real directories and real processes: one daemon per spool (flock), the
// holder's PID in the refusal, the modes, and a clear start-up error for a missing, non-directory
// or read-only path.
#include <xrayd/spool/spool_directory.h>

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <xrayd/common/startup_error.h>

#include "temp_dir.h"
#include "tmpfs_child.h"

namespace xrayd::spool {
namespace {

using test::read_file;
using test::TempDir;

// The StartupError text of opening `path`, or "" when it opened.
std::string open_error(const std::string& path) {
    try {
        (void)SpoolDirectory::open(path);
    } catch (const StartupError& e) {
        return e.what();
    }
    return {};
}

mode_t mode_of(const std::filesystem::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("an opened spool directory is 0700 with a 0600 LOCK file holding this PID") {
    const TempDir dir;
    REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
    const SpoolDirectory spool = SpoolDirectory::open(dir.path().string());
    CHECK(spool.path() == dir.path().string());
    CHECK(spool.fd() >= 0);
    CHECK(mode_of(dir.path()) == 0700);
    CHECK(mode_of(dir.path() / lock_file_name) == 0600);
    CHECK(read_file(dir.path() / lock_file_name) == fmt::format("{}\n", ::getpid()));
}

TEST_CASE("a second open of a held spool is refused with the holder's PID, and works once freed") {
    const TempDir dir;
    const std::string path = dir.path().string();
    {
        const SpoolDirectory first = SpoolDirectory::open(path);
        CHECK(open_error(path) ==
              fmt::format("spool directory {}: it is in use by another xrayd (PID {}): give each "
                          "daemon its own --spool-dir",
                          path, ::getpid()));
    }
    CHECK(open_error(path).empty());  // the lock went with the first holder
}

TEST_CASE("a spool held by another process is refused naming that process") {
    const TempDir dir;
    const std::string path = dir.path().string();
    int ready[2];
    int release[2];
    REQUIRE(::pipe(ready) == 0);
    REQUIRE(::pipe(release) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // The child holds the spool until the parent closes `release` (so it must not keep that
        // pipe's write end open itself, or it would wait for its own end).
        ::close(ready[0]);
        ::close(release[1]);
        char byte = 0;
        try {
            const SpoolDirectory held = SpoolDirectory::open(path);
            byte = 1;
            (void)::write(ready[1], &byte, 1);
            (void)::read(release[0], &byte, 1);
        } catch (...) {
            (void)::write(ready[1], &byte, 1);
        }
        ::_exit(0);
    }
    ::close(ready[1]);
    ::close(release[0]);
    char byte = 0;
    REQUIRE(::read(ready[0], &byte, 1) == 1);
    REQUIRE(byte == 1);
    CHECK(open_error(path) ==
          fmt::format("spool directory {}: it is in use by another xrayd (PID {}): give each "
                      "daemon its own --spool-dir",
                      path, child));
    ::close(release[1]);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(open_error(path).empty());  // the child's exit released it
    ::close(ready[0]);
}

TEST_CASE("a missing path or a file is a start-up error that says what to do") {
    const TempDir dir;
    const std::string missing = (dir.path() / "absent").string();
    CHECK(open_error(missing) ==
          fmt::format("spool directory {}: it does not exist: create it (mode 0700, owned by the "
                      "daemon's user), or point --spool-dir elsewhere",
                      missing));
    const std::string file = dir.write("plain-file", "x").string();
    CHECK(open_error(file) == fmt::format("spool directory {}: it is not a directory", file));
}

TEST_CASE("a read-only spool directory is a start-up error") {
    // A read-only tmpfs in a private mount namespace, in a child process: root could write past
    // mode bits, but not past a read-only mount.
    if (::geteuid() != 0) {
        MESSAGE("SKIP(environment: mounting a read-only tmpfs needs root)");
        return;
    }
    const TempDir dir;
    const std::string path = dir.path().string();
    const std::string message =
        test::run_on_tmpfs(path, MS_RDONLY, "size=64k", [&] { return open_error(path); });
    CHECK(message ==
          fmt::format("spool directory {}: cannot write in it (Read-only file system): the spool "
                      "needs a writable directory",
                      path));
}

}  // namespace xrayd::spool
