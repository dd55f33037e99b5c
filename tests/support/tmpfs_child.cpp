// run_on_tmpfs: a child process with a tmpfs of its own.
#include "tmpfs_child.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <doctest/doctest.h>

namespace xrayd::test {

std::string run_on_tmpfs(const std::string& path, unsigned long flags, const char* options,
                         const std::function<std::string()>& body) {
    int out[2];
    REQUIRE(::pipe(out) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        std::string message;
        if (::unshare(CLONE_NEWNS) != 0 ||
            ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            ::mount("tmpfs", path.c_str(), "tmpfs", flags, options) != 0) {
            message = std::string("mount: ") + std::strerror(errno);
        } else {
            message = body();
        }
        (void)::write(out[1], message.data(), message.size());
        ::_exit(0);
    }
    ::close(out[1]);
    std::string message;
    char buffer[512];
    ssize_t n = 0;
    while ((n = ::read(out[0], buffer, sizeof buffer)) > 0) {
        message.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(out[0]);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    return message;
}

}  // namespace xrayd::test
