// libFuzzer target: cfg.yaml loading (load_config with -c) and the Go flag parser.
//
// Input: bytes starting with 0x00 are a command line (argv split on 0x00, leading 0x00
// dropped) for parse_cli_flags and the Go number/bool/duration parsers; any other input is a
// cfg.yaml, written to a temporary file and loaded with `-c <file> -f <log>`.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <xrayd/config/cli_flags.h>
#include <xrayd/config/config_loader.h>

namespace {

namespace fs = std::filesystem;

// A private directory for the run: the cfg.yaml, the error log and a fake /proc/meminfo (so
// the buffer-memory default never depends on the host).
struct Sandbox {
    fs::path dir;
    fs::path cfg;
    fs::path log;
    xrayd::ConfigSources sources;

    Sandbox() {
        std::string tmpl = (fs::temp_directory_path() / "xrayd-fuzz-config-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) {
            std::abort();
        }
        dir = tmpl;
        cfg = dir / "cfg.yaml";
        log = dir / "xrayd.log";
        fs::create_directories(dir / "proc");
        std::ofstream(dir / "proc" / "meminfo") << "MemTotal:        8000000 kB\n";
        sources.default_paths = {};
        sources.system_root = dir;
    }
    ~Sandbox() {
        std::error_code ignored;
        fs::remove_all(dir, ignored);
    }
};

void fuzz_flags(std::string_view text) {
    std::vector<std::string> args;
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t end = text.find('\0', start);
        if (end == std::string_view::npos) {
            end = text.size();
        }
        args.emplace_back(text.substr(start, end - start));
        start = end + 1;
    }
    (void)xrayd::parse_cli_flags(args);
    for (const std::string& a : args) {
        (void)xrayd::parse_go_int(a);
        (void)xrayd::parse_go_bool(a);
        (void)xrayd::parse_go_duration(a);
    }
}

void fuzz_yaml(const std::uint8_t* data, std::size_t size) {
    static Sandbox box;
    {
        std::ofstream out(box.cfg, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    // -f keeps the loader's error lines inside the sandbox: without it, a fuzzed
    // Logging.LogPath would name the file errors are appended to.
    const std::vector<std::string> args = {"-c", box.cfg.string(), "-f", box.log.string()};
    const xrayd::CliOutcome outcome = xrayd::load_config(args, xrayd::Environment{}, box.sources);
    if (outcome.config.has_value() == (outcome.exit_code != 0)) {
        __builtin_trap();  // exactly one of: a Config, or an exit code (config_loader.h)
    }
    std::error_code ignored;
    fs::remove(box.log, ignored);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 0 && data[0] == 0) {
        fuzz_flags(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
    } else {
        fuzz_yaml(data, size);
    }
    return 0;
}
