// ScopedEnvironment: sets environment variables for one test and restores what they were (or
// unsets them) when it goes. setenv is not thread-safe: use it before the test starts threads
// that read the environment, or in binaries whose other threads do not.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace xrayd::test {

class ScopedEnvironment {
public:
    explicit ScopedEnvironment(std::initializer_list<std::pair<const char*, const char*>> values);
    ~ScopedEnvironment();
    ScopedEnvironment(const ScopedEnvironment&) = delete;
    ScopedEnvironment& operator=(const ScopedEnvironment&) = delete;

private:
    std::vector<std::pair<std::string, std::optional<std::string>>> saved_;  // name, old value
};

}  // namespace xrayd::test
