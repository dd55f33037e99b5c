// cfg.yaml: the Go daemon's key validation and its yaml.v2 decoding rules, on yaml-cpp.
#include "config_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>
#include <variant>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <xrayd/common/unique_fd.h>
#include <xrayd/config/cli_flags.h>
#include <xrayd/config/settings.h>

namespace xrayd::config_file {
namespace {

constexpr std::string_view flag_error_prefix = "Error occur when using config flag: ";
constexpr std::string_view doc_hint =
    "Please refer to AWS X-Ray Documentation for more information.";
constexpr std::string_view migration_hint =
    "Use X-Ray Daemon Config Migration Script to update the config file.";

// "group.key": the path of a key inside a group, as the settings table and errors spell it.
std::string dotted(std::string_view group, std::string_view key) {
    std::string path;
    path.reserve(group.size() + 1 + key.size());
    return path.append(group).append(".").append(key);
}

// Valid key paths besides the settings table's: Version, and the Go daemon's proxyserver keys
// (decoded for their type errors only: Go forces them to defaults). Case-sensitive, as Go.
constexpr std::array<std::string_view, 4> other_valid_paths{
    "Version", "proxyserver.idleconntimeout", "proxyserver.maxidleconnsperhost",
    "proxyserver.maxidleconns"};

bool is_valid_path(std::string_view path) {
    return find_setting_by_key(path) != nullptr ||
           std::find(other_valid_paths.begin(), other_valid_paths.end(), path) !=
               other_valid_paths.end();
}

// Whether `key` is a mapping of settings in cfg.yaml (Socket, Logging, Xrayd).
bool is_setting_group(std::string_view key) {
    for (const Setting& row : settings()) {
        if (row.key.size() > key.size() && row.key.starts_with(key) && row.key[key.size()] == '.') {
            return true;
        }
    }
    return false;
}

constexpr std::array<std::string_view, 5> removed_paths{"Profile.CPU", "Profile.Memory",
                                                        "Socket.BufferSizeKB", "Logging.LogFormat",
                                                        "Processor.BatchProcessorQueueSize"};
constexpr std::array<std::string_view, 5> migrated_paths{
    "LogRotation", "Processor.Region", "Processor.Endpoint", "Processor.Routine", "MemoryLimit"};

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& set, std::string_view key) {
    return std::find(set.begin(), set.end(), key) != set.end();
}

// Go's os.ReadFile error texts: "open <path>: no such file or directory".
std::string errno_text(int err) {
    std::string text = std::strerror(err);
    if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z') {
        text[0] = static_cast<char>(text[0] - 'A' + 'a');
    }
    return text;
}

Result<std::string, std::string> read_file(const std::filesystem::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return fail(fmt::format("open {}: {}", path.string(), errno_text(errno)));
    }
    std::string text;
    std::array<char, 8192> buf{};
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail(fmt::format("read {}: {}", path.string(), errno_text(errno)));
        }
        if (n == 0) {
            break;
        }
        text.append(buf.data(), static_cast<std::size_t>(n));
    }
    return text;
}

Result<YAML::Node, std::string> parse_yaml(const std::string& text) {
    try {
        return YAML::Load(text);
    } catch (const YAML::ParserException& e) {
        return fail(fmt::format("yaml: line {}: {}", e.mark.line + 1, e.msg));
    } catch (const YAML::Exception& e) {
        return fail(fmt::format("yaml: {}", e.msg));
    }
}

// ---- yaml.v2's view of a node ---------------------------------------------------------------

struct Null {};
// A resolved scalar, as yaml.v2's resolve() would type it.
using Resolved = std::variant<Null, std::string, std::int64_t, std::uint64_t, double, bool>;

struct Scalar {
    std::string tag;  // "!!str", "!!int", ... (for the error text)
    Resolved value;
};

bool is_float_text(std::string_view s) {
    // ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
    std::size_t i = 0;
    const auto digits = [&] {
        const std::size_t start = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            ++i;
        }
        return i - start;
    };
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
        ++i;
    }
    if (i < s.size() && s[i] == '.') {
        ++i;
        if (digits() == 0) {
            return false;
        }
    } else {
        if (digits() == 0) {
            return false;
        }
        if (i < s.size() && s[i] == '.') {
            ++i;
            digits();
        }
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
            ++i;
        }
        if (digits() == 0) {
            return false;
        }
    }
    return i == s.size();
}

// YAML 1.1 resolution of a plain scalar, as yaml.v2 does it.
Scalar resolve_plain(const std::string& text) {
    static constexpr std::array<std::string_view, 11> yes{"y",  "Y",  "yes",  "Yes",  "YES", "on",
                                                          "On", "ON", "true", "True", "TRUE"};
    static constexpr std::array<std::string_view, 11> no{
        "n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE"};
    if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
        return {"!!null", Null{}};
    }
    if (contains(yes, text)) {
        return {"!!bool", true};
    }
    if (contains(no, text)) {
        return {"!!bool", false};
    }
    const char first = text[0];
    if ((first >= '0' && first <= '9') || first == '-' || first == '+' || first == '.') {
        std::string plain;
        std::copy_if(text.begin(), text.end(), std::back_inserter(plain),
                     [](char c) { return c != '_'; });
        if (auto i = parse_go_int(plain)) {
            return {"!!int", i.value()};
        }
        if (auto i = parse_go_int(plain);
            !i && i.error() == "value out of range" && plain[0] != '-') {
            return {"!!int", std::uint64_t{0}};  // a uint64 to yaml.v2: no int field takes it
        }
        if (is_float_text(plain)) {
            return {"!!float", std::strtod(plain.c_str(), nullptr)};
        }
        for (std::string_view inf : {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"}) {
            if (text == inf) {
                return {"!!float", std::numeric_limits<double>::infinity()};
            }
        }
        for (std::string_view inf : {"-.inf", "-.Inf", "-.INF"}) {
            if (text == inf) {
                return {"!!float", -std::numeric_limits<double>::infinity()};
            }
        }
        for (std::string_view nan : {".nan", ".NaN", ".NAN"}) {
            if (text == nan) {
                return {"!!float", std::numeric_limits<double>::quiet_NaN()};
            }
        }
    }
    return {"!!str", text};
}

Scalar classify(const YAML::Node& node) {
    if (node.IsNull()) {
        return {"!!null", Null{}};
    }
    const std::string& tag = node.Tag();
    if (tag == "!" || tag == "tag:yaml.org,2002:str") {
        return {"!!str", node.Scalar()};
    }
    return resolve_plain(node.Scalar());
}

// Decodes mappings into the Go struct's fields, collecting yaml.v2-style type errors.
class Decoder {
public:
    explicit Decoder(Loaded& out) : out_(out) {}

    void decode_root(const YAML::Node& root) {
        if (root.IsNull()) {
            return;
        }
        if (!root.IsMap()) {
            type_error(root, "cfg.Config");
            return;
        }
        for (const auto& entry : root) {
            const std::string key = entry.first.Scalar();
            const YAML::Node& value = entry.second;
            if (key == "proxyserver") {
                // Decoded for its type errors only: the Go daemon forces these to defaults.
                decode_struct(key, value, [&](const std::string& sub, const YAML::Node& n) {
                    std::optional<std::int64_t> ignored;
                    if (is_valid_path(dotted(key, sub))) {
                        set(n, ignored);
                        return true;
                    }
                    return false;
                });
            } else if (key == "Version") {
                std::optional<std::int64_t> version;
                set(value, version);
                out_.values.version = version.value_or(0);
            } else if (is_setting_group(key)) {
                decode_struct(key, value, [&](const std::string& sub, const YAML::Node& n) {
                    return decode_setting(dotted(key, sub), n);
                });
            } else if (key.find('.') != std::string::npos || !decode_setting(key, value)) {
                out_.unknown_keys.push_back(key);
            }
        }
    }

    // The complete error, or "" when the document decoded cleanly.
    [[nodiscard]] std::string error() const {
        if (errors_.empty()) {
            return {};
        }
        std::string text = "yaml: unmarshal errors:";
        for (const std::string& e : errors_) {
            text += "\n  ";
            text += e;
        }
        return text;
    }

private:
    // Decodes `node` into the field of the setting with key path `path`; false when none has it.
    bool decode_setting(std::string_view path, const YAML::Node& node);

    template <typename Field>
    void decode_struct(const std::string& key, const YAML::Node& value, Field field) {
        if (value.IsNull()) {
            return;
        }
        if (!value.IsMap()) {
            type_error(value, "struct");
            return;
        }
        for (const auto& entry : value) {
            const std::string sub = entry.first.Scalar();
            if (!field(sub, entry.second)) {
                out_.unknown_keys.push_back(dotted(key, sub));
            }
        }
    }

    void type_error(const YAML::Node& node, std::string_view into) {
        std::string tag;
        std::string value;
        if (node.IsSequence()) {
            tag = "!!seq";
        } else if (node.IsMap()) {
            tag = "!!map";
        } else {
            Scalar s = classify(node);
            tag = s.tag;
            const std::string& text = node.Scalar();
            value = text.size() > 10 ? fmt::format(" `{}...`", text.substr(0, 7))
                                     : fmt::format(" `{}`", text);
        }
        errors_.push_back(fmt::format("line {}: cannot unmarshal {}{} into {}",
                                      node.Mark().line + 1, tag, value, into));
    }

public:
    // The decoders of the settings' fields (FieldDecoders) call these.
    // Go int: ints, and floats truncated when they fit; "" / 0 / null count as absent.
    void set(const YAML::Node& node, std::optional<std::int64_t>& field) {
        if (!node.IsScalar() && !node.IsNull()) {
            type_error(node, "int");
            return;
        }
        Scalar s = classify(node);
        std::optional<std::int64_t> result;
        if (std::holds_alternative<Null>(s.value)) {
            return;
        }
        if (const auto* i = std::get_if<std::int64_t>(&s.value)) {
            result = *i;
        } else if (const auto* d = std::get_if<double>(&s.value)) {
            if (std::isfinite(*d) && *d < 9.2233720368547758e18 && *d >= -9.2233720368547758e18) {
                result = static_cast<std::int64_t>(*d);
            }
        }
        if (!result) {
            type_error(node, "int");
            return;
        }
        if (*result != 0) {
            field = *result;
        }
    }

    // Go string: any scalar's text; "" and null count as absent.
    void set(const YAML::Node& node, std::optional<std::string>& field) {
        if (node.IsNull()) {
            return;
        }
        if (!node.IsScalar()) {
            type_error(node, "string");
            return;
        }
        if (!node.Scalar().empty()) {
            field = node.Scalar();
        }
    }

    // Go *bool: YAML 1.1 booleans only; null keeps the default.
    void set(const YAML::Node& node, std::optional<bool>& field) {
        if (node.IsNull()) {
            return;
        }
        if (!node.IsScalar()) {
            type_error(node, "bool");
            return;
        }
        Scalar s = classify(node);
        if (const auto* b = std::get_if<bool>(&s.value)) {
            field = *b;
            return;
        }
        if (std::holds_alternative<Null>(s.value)) {
            return;
        }
        type_error(node, "bool");
    }

private:
    Loaded& out_;
    std::vector<std::string> errors_;
};

// Index-aligned with settings(): decoder i stores row i's value.
struct FieldDecoders {
    using Decode = void (*)(Decoder&, const YAML::Node&, FileValues&);
#define XRAYD_FILE_DECODER(id, ...) \
    [](Decoder& d, const YAML::Node& n, FileValues& v) { d.set(n, v.id); },
    static constexpr std::array<Decode, setting_count> all{{XRAYD_SETTINGS(XRAYD_FILE_DECODER)}};
#undef XRAYD_FILE_DECODER
};

bool Decoder::decode_setting(std::string_view path, const YAML::Node& node) {
    const Setting* row = find_setting_by_key(path);
    if (row == nullptr) {
        return false;
    }
    FieldDecoders::all[static_cast<std::size_t>(row - settings().data())](*this, node, out_.values);
    return true;
}

// The key paths Go's validation builds (spec §2.2): `Top.Sub` for each sub-key of a mapping,
// `Top` for any other value. Empty for a file that is not a mapping.
std::vector<std::string> key_paths(const YAML::Node& root) {
    std::vector<std::string> paths;
    if (!root.IsMap()) {
        return paths;
    }
    for (const auto& entry : root) {
        const std::string key = entry.first.Scalar();
        if (entry.second.IsMap()) {
            for (const auto& sub : entry.second) {
                paths.push_back(key + "." + sub.first.Scalar());
            }
        } else {
            paths.push_back(key);
        }
    }
    return paths;
}

bool has_version_key(const std::vector<std::string>& paths) {
    return std::find(paths.begin(), paths.end(), "Version") != paths.end();
}

// xrayd, deliberately unlike Go: a file without a Version key whose every key is a valid
// Version 2 key (the widely copied EC2 setup guide's file) is read as Version 2. A file with
// any other key (a Version 1 file's removed keys, a typo) keeps Go's error; so does an empty
// file, which says nothing about its version.
bool reads_as_version_2(const std::vector<std::string>& paths) {
    return !paths.empty() && !has_version_key(paths) &&
           std::all_of(paths.begin(), paths.end(),
                       [](const std::string& path) { return is_valid_path(path); });
}

// Go's ConfigValidation (spec §2.2). "" when every key is acceptable.
std::string validate_keys(const YAML::Node& root) {
    if (root.IsNull()) {
        return {};
    }
    if (!root.IsMap()) {
        Scalar s = classify(root);
        const std::string tag = root.IsSequence() ? "!!seq" : s.tag;
        std::string value;
        if (root.IsScalar()) {
            const std::string& text = root.Scalar();
            value = text.size() > 10 ? fmt::format(" `{}...`", text.substr(0, 7))
                                     : fmt::format(" `{}`", text);
        }
        return fmt::format("{}yaml: unmarshal errors:\n  line {}: cannot unmarshal {}{} into "
                           "yaml.MapSlice",
                           flag_error_prefix, root.Mark().line + 1, tag, value);
    }
    const std::vector<std::string> paths = key_paths(root);
    if (reads_as_version_2(paths)) {
        return {};
    }
    const bool has_version = has_version_key(paths);
    for (const std::string& path : paths) {
        if (!has_version) {
            return fmt::format("Config Version is missing. {} {}", migration_hint, doc_hint);
        }
        if (contains(removed_paths, path)) {
            return fmt::format("{} flag is not supported any more. {}", path, doc_hint);
        }
        if (contains(migrated_paths, path)) {
            return fmt::format("{} flag is not supported. {} {}", path, migration_hint, doc_hint);
        }
        if (!is_valid_path(path)) {
            return fmt::format("{} flag is invalid. {}", path, doc_hint);
        }
    }
    return {};
}

}  // namespace

Result<Loaded, std::string> load(const std::filesystem::path& path, bool validate) {
    auto text = read_file(path);
    if (!text) {
        return fail(std::string(flag_error_prefix) + text.error());
    }
    auto root = parse_yaml(text.value());
    if (!root) {
        return fail(std::string(flag_error_prefix) + root.error());
    }
    if (validate) {
        if (std::string message = validate_keys(root.value()); !message.empty()) {
            return fail(std::move(message));
        }
    }
    Loaded loaded;
    Decoder decoder(loaded);
    decoder.decode_root(root.value());
    if (std::string message = decoder.error(); !message.empty()) {
        return fail(std::string(flag_error_prefix) + message);
    }
    if (reads_as_version_2(key_paths(root.value()))) {
        loaded.values.version = 2;
        loaded.version_assumed = true;
    }
    if (loaded.values.version != 1 && loaded.values.version != 2) {
        return fail(
            fmt::format("Config Version Setting is not correct. {} {}", migration_hint, doc_hint));
    }
    return loaded;
}

}  // namespace xrayd::config_file
