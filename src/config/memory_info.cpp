// Host RAM and cgroup memory limit, and the Go daemon's buffer-memory default built on them.
#include <xrayd/config/config_loader.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string_view>

#include <fmt/format.h>

namespace xrayd {
namespace {

std::optional<std::string> read_text(const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) {
        return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
        s.remove_suffix(1);
    }
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
        return std::nullopt;
    }
    return v;
}

// The lowest limit in `file` found in `base + cgroup_path` and each ancestor up to `base`.
// "max" (v2) means none; v1's "unlimited" is a huge number and loses the min() anyway.
std::optional<std::uint64_t> lowest_limit(const std::filesystem::path& base,
                                          std::string cgroup_path, std::string_view file) {
    std::optional<std::uint64_t> lowest;
    for (;;) {
        while (!cgroup_path.empty() && cgroup_path.back() == '/') {
            cgroup_path.pop_back();
        }
        const std::filesystem::path dir =
            cgroup_path.empty() ? base : std::filesystem::path(base.string() + cgroup_path);
        if (auto text = read_text(dir / file)) {
            if (auto v = to_u64(*text); v && (!lowest || *v < *lowest)) {
                lowest = v;
            }
        }
        if (cgroup_path.empty()) {
            return lowest;
        }
        cgroup_path.erase(cgroup_path.rfind('/') == std::string::npos ? 0 : cgroup_path.rfind('/'));
    }
}

}  // namespace

Result<MemoryInfo, std::string> read_memory_info(const std::filesystem::path& root) {
    MemoryInfo info;
    const std::filesystem::path meminfo = root / "proc/meminfo";
    auto text = read_text(meminfo);
    if (!text) {
        return fail(fmt::format("open {}: cannot read host memory size", meminfo.string()));
    }
    std::istringstream lines(*text);
    std::string line;
    bool found = false;
    while (std::getline(lines, line)) {
        if (line.rfind("MemTotal:", 0) != 0) {
            continue;
        }
        std::istringstream fields(line.substr(9));
        std::uint64_t kib = 0;
        if (fields >> kib) {
            info.host_total_bytes = kib * 1024;
            found = true;
        }
        break;
    }
    if (!found) {
        return fail(fmt::format("no MemTotal in {}", meminfo.string()));
    }

    const std::filesystem::path cgroup_root = root / "sys/fs/cgroup";
    if (auto cgroups = read_text(root / "proc/self/cgroup")) {
        std::istringstream entries(*cgroups);
        while (std::getline(entries, line)) {
            // "<id>:<controllers>:<path>"; v2 is "0::<path>".
            const auto first = line.find(':');
            const auto second = first == std::string::npos ? first : line.find(':', first + 1);
            if (second == std::string::npos) {
                continue;
            }
            const std::string controllers = line.substr(first + 1, second - first - 1);
            const std::string path = line.substr(second + 1);
            std::optional<std::uint64_t> limit;
            if (line.compare(0, first, "0") == 0 && controllers.empty()) {
                limit = lowest_limit(cgroup_root, path, "memory.max");
            } else if (("," + controllers + ",").find(",memory,") != std::string::npos) {
                limit = lowest_limit(cgroup_root / "memory", path, "memory.limit_in_bytes");
            }
            if (limit && (!info.cgroup_limit_bytes || *limit < *info.cgroup_limit_bytes)) {
                info.cgroup_limit_bytes = limit;
            }
        }
    }
    return info;
}

Result<std::int64_t, std::string> resolve_buffer_memory_mb(std::int64_t configured_mb,
                                                           const MemoryInfo& memory) {
    std::int64_t mb = configured_mb;
    if (mb <= 0) {
        std::uint64_t total = memory.host_total_bytes;
        if (memory.cgroup_limit_bytes && *memory.cgroup_limit_bytes < total) {
            total = *memory.cgroup_limit_bytes;
        }
        mb = static_cast<std::int64_t>(total / (100ull * 1024 * 1024));  // 1%, floored to MB
    }
    if (mb < 3) {
        return fail(
            std::string("Not enough Buffers Memory Allocated. Min Buffers Memory required: 3 MB."));
    }
    return mb;
}

}  // namespace xrayd
