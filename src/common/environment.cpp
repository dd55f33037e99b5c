// Environment::from_process.
#include <xrayd/common/environment.h>

extern char** environ;  // NOLINT: POSIX

namespace xrayd {

Environment Environment::from_process() {
    std::map<std::string, std::string, std::less<>> vars;
    for (char** p = environ; p != nullptr && *p != nullptr; ++p) {
        std::string_view entry(*p);
        auto eq = entry.find('=');
        if (eq == std::string_view::npos) {
            continue;
        }
        vars.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
    }
    return Environment(std::move(vars));
}

}  // namespace xrayd
