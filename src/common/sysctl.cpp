// read_sysctl over /proc/sys.
#include <xrayd/common/sysctl.h>

#include <algorithm>
#include <cstddef>
#include <fstream>
#include <string>

namespace xrayd {

std::optional<long> read_sysctl(std::string_view name) {
    constexpr std::string_view root = "/proc/sys/";
    std::string path = std::string(root) + std::string(name);
    std::replace(path.begin() + static_cast<std::ptrdiff_t>(root.size()), path.end(), '.', '/');
    std::ifstream in(path);
    long value = 0;
    if (!(in >> value)) {
        return std::nullopt;
    }
    return value;
}

}  // namespace xrayd
