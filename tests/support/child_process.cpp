// run_in_child: fork, run, report back through a pipe.
#include "child_process.h"

#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

namespace xrayd::test {

std::string run_in_child(const std::function<std::string()>& body) {
    int out[2];
    REQUIRE(::pipe(out) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(out[0]);
        const std::string message = body();
        (void)!::write(out[1], message.data(), message.size());
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
