// run_in_child: test code that needs a process of its own (fewer privileges, its own mount
// namespace), run in a forked child that reports back as text.
#pragma once

#include <functional>
#include <string>

namespace xrayd::test {

// Forks; the child runs `body` and sends back what it returns, then exits. Returns that text;
// CHECKs that the child exited normally. Call from a test case, with no other test threads
// running (the child of a multi-threaded process may only call what fork leaves usable).
[[nodiscard]] std::string run_in_child(const std::function<std::string()>& body);

}  // namespace xrayd::test
