// ScopedEnvironment over setenv/unsetenv.
#include "scoped_environment.h"

#include <cstdlib>

#include <doctest/doctest.h>

namespace xrayd::test {

ScopedEnvironment::ScopedEnvironment(
    std::initializer_list<std::pair<const char*, const char*>> values) {
    for (const auto& [name, value] : values) {
        const char* old = std::getenv(name);
        saved_.emplace_back(name, old != nullptr ? std::optional<std::string>(old) : std::nullopt);
        REQUIRE(::setenv(name, value, 1) == 0);
    }
}

ScopedEnvironment::~ScopedEnvironment() {
    for (const auto& [name, old] : saved_) {
        if (old) {
            (void)::setenv(name.c_str(), old->c_str(), 1);
        } else {
            (void)::unsetenv(name.c_str());
        }
    }
}

}  // namespace xrayd::test
