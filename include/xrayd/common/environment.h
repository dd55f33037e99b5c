// Environment: read-only view of environment variables, injectable for tests.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace xrayd {

// An immutable copy of the variables taken at start-up. Modules read settings through it
// instead of getenv(), so tests can hand them any environment without touching the process's.
class Environment {
public:
    Environment() = default;
    explicit Environment(std::map<std::string, std::string, std::less<>> vars)
        : vars_(std::move(vars)) {}

    // Copies the process environment (call once, at start-up).
    [[nodiscard]] static Environment from_process();

    // The value, or nullopt when unset. An empty value counts as set.
    [[nodiscard]] std::optional<std::string> get(std::string_view name) const {
        auto it = vars_.find(name);
        if (it == vars_.end()) {
            return std::nullopt;
        }
        return it->second;
    }
    // The value when set and non-empty, else nullopt (how AWS tools treat most variables).
    [[nodiscard]] std::optional<std::string> get_non_empty(std::string_view name) const {
        auto v = get(name);
        if (v && v->empty()) {
            return std::nullopt;
        }
        return v;
    }

private:
    std::map<std::string, std::string, std::less<>> vars_;
};

}  // namespace xrayd
