// cfg.yaml reading, private to the config module: the Go daemon's key validation (spec §2.2) and
// its yaml.v2 decoding rules (spec §2.3), on top of yaml-cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <xrayd/common/result.h>
#include <xrayd/config/settings.h>

namespace xrayd::config_file {

// The type a file value of each kind is decoded into (durations stay text: the loader parses
// them, naming the key in its message).
template <SettingKind kind>
struct FileValue {
    using type = std::int64_t;  // megabytes, bytes, count
};
template <>
struct FileValue<SettingKind::text> {
    using type = std::string;
};
template <>
struct FileValue<SettingKind::toggle> {
    using type = bool;
};
template <>
struct FileValue<SettingKind::duration> {
    using type = std::string;
};

// The values a file sets, one field per row of the settings table (settings.h) named by its id;
// rows without a cfg.yaml key stay empty. After the Go daemon's default filling: a string that
// is "" and an int that is 0 count as absent (so `Concurrency: 0` means 8), a null bool counts
// as absent. Xrayd.* values are kept as written (their checks are the loader's).
struct FileValues {
#define XRAYD_FILE_FIELD(id, group, member, kind, ...) \
    std::optional<FileValue<SettingKind::kind>::type> id;
    XRAYD_SETTINGS(XRAYD_FILE_FIELD)
#undef XRAYD_FILE_FIELD
    std::int64_t version = 0;
};

// The outcome of loading one file. `error` is the complete message the Go daemon logs (e.g.
// `Error occur when using config flag: open x: no such file or directory`).
struct Loaded {
    FileValues values;
    std::vector<std::string> unknown_keys;  // key paths that no setting uses, in file order
    // The file has no Version key and every key in it is a valid Version 2 key, so it is read as
    // Version 2 (the Go daemon refuses it: "Config Version is missing." with -c, "Config
    // Version Setting is not correct." from a default location); the loader warns.
    bool version_assumed = false;
};

// Reads, (when `validate_keys`) key-validates, decodes and version-checks `path`. A file
// without Version is accepted as Version 2 when every key is a valid one (version_assumed).
[[nodiscard]] Result<Loaded, std::string> load(const std::filesystem::path& path,
                                               bool validate_keys);

}  // namespace xrayd::config_file
