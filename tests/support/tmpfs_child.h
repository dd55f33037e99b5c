// run_on_tmpfs: runs test code in a child process that has `path` mounted as a small tmpfs of
// its own (a private mount namespace), for what only a real file system can show: a read-only
// mount (root writes past mode bits, not past that), a full disk (ENOSPC).
#pragma once

#include <functional>
#include <string>

namespace xrayd::test {

// Forks; the child unshares its mount namespace, mounts a tmpfs with `flags` (e.g. MS_RDONLY)
// and `options` (e.g. "size=64k") on `path`, runs `body` and sends back what it returns. Returns
// that text, or "mount: <error>" when the mount failed. Needs root. Call from a test case.
[[nodiscard]] std::string run_on_tmpfs(const std::string& path, unsigned long flags,
                                       const char* options,
                                       const std::function<std::string()>& body);

}  // namespace xrayd::test
