// read_sysctl over /proc/sys.
#include <xrayd/common/sysctl.h>

#include <algorithm>
#include <fstream>
#include <string>

namespace xrayd {

std::optional<long> read_sysctl(std::string_view name) {
    std::string path = "/proc/sys/" + std::string(name);
    std::replace(path.begin() + 10, path.end(), '.', '/');
    std::ifstream in(path);
    long value = 0;
    if (!(in >> value)) {
        return std::nullopt;
    }
    return value;
}

}  // namespace xrayd
