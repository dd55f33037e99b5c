// StartupError: the only exception xrayd throws, and only before the data plane runs.
#pragma once

#include <stdexcept>
#include <string>

namespace xrayd {

// Thrown during start-up (configuration, binding, credentials); main() logs what() at Error (at
// Info for exit code 0: a shutdown asked for during start-up) and exits with exit_code(). Never
// thrown once receivers and the uploader are running.
class StartupError : public std::runtime_error {
public:
    explicit StartupError(const std::string& message, int exit_code = 1)
        : std::runtime_error(message), exit_code_(exit_code) {}
    [[nodiscard]] int exit_code() const noexcept { return exit_code_; }

private:
    int exit_code_;
};

}  // namespace xrayd
