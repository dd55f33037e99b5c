// The disk spool's settings (issue #15): --spool-dir, --spool-max-bytes, --spool-mode and
// --spool-sync, with the names the flags and cfg.yaml spell them by.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace xrayd::spool {

enum class SpoolMode {
    // Segments stay in memory while X-Ray accepts them; what memory cannot hold (a long outage,
    // throttling, a batch past its retry budget) and what is held at shutdown goes to disk and
    // is replayed when uploads succeed again. The default.
    overflow,
    // Every accepted segment is appended to the spool before it counts as held, so a crash or
    // kill -9 loses at most what was between the socket and the append.
    write_ahead,
};

enum class SpoolSync {
    none,      // never fsync: the page cache decides (a dying process loses nothing written)
    interval,  // fsync the file being written once a second; the default
    always,    // fsync after every append (one per pipeline turn, not per segment)
};

[[nodiscard]] constexpr std::optional<SpoolMode> parse_spool_mode(std::string_view text) noexcept {
    if (text == "overflow") {
        return SpoolMode::overflow;
    }
    if (text == "write-ahead") {
        return SpoolMode::write_ahead;
    }
    return std::nullopt;
}

[[nodiscard]] constexpr std::string_view to_string(SpoolMode mode) noexcept {
    return mode == SpoolMode::write_ahead ? "write-ahead" : "overflow";
}

[[nodiscard]] constexpr std::optional<SpoolSync> parse_spool_sync(std::string_view text) noexcept {
    if (text == "none") {
        return SpoolSync::none;
    }
    if (text == "interval") {
        return SpoolSync::interval;
    }
    if (text == "always") {
        return SpoolSync::always;
    }
    return std::nullopt;
}

[[nodiscard]] constexpr std::string_view to_string(SpoolSync sync) noexcept {
    switch (sync) {
    case SpoolSync::none: return "none";
    case SpoolSync::always: return "always";
    case SpoolSync::interval: break;
    }
    return "interval";
}

// The spool's part of the configuration (Config::spool).
struct SpoolConfig {
    std::string dir;  // --spool-dir / Xrayd.SpoolDir: "" = no spool
    std::uint64_t max_bytes = std::uint64_t{1} << 30;  // --spool-max-bytes: the disk quota
    SpoolMode mode = SpoolMode::overflow;              // --spool-mode
    SpoolSync sync = SpoolSync::interval;              // --spool-sync

    [[nodiscard]] bool enabled() const noexcept { return !dir.empty(); }
};

}  // namespace xrayd::spool
