// run_on_tmpfs: a child process with a tmpfs of its own.
#include "tmpfs_child.h"

#include <sched.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>

#include "child_process.h"

namespace xrayd::test {

std::string run_on_tmpfs(const std::string& path, unsigned long flags, const char* options,
                         const std::function<std::string()>& body) {
    return run_in_child([&] {
        if (::unshare(CLONE_NEWNS) != 0 ||
            ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            ::mount("tmpfs", path.c_str(), "tmpfs", flags, options) != 0) {
            return std::string("mount: ") + std::strerror(errno);
        }
        return body();
    });
}

}  // namespace xrayd::test
