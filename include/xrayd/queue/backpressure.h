// Backpressure: what gives way when the memory limit (-m) is reached.
#pragma once

#include <optional>
#include <string_view>

namespace xrayd {

enum class Backpressure {
    drop_newest,  // new segments are refused at ingest (dropped_buffer_full); the default
    drop_oldest,  // the oldest batch not in flight is given up (dropped_oldest) to make room
};

// "drop-newest" / "drop-oldest" (the flag and config spelling); nullopt for anything else.
[[nodiscard]] constexpr std::optional<Backpressure> parse_backpressure(
    std::string_view text) noexcept {
    if (text == "drop-newest") {
        return Backpressure::drop_newest;
    }
    if (text == "drop-oldest") {
        return Backpressure::drop_oldest;
    }
    return std::nullopt;
}

[[nodiscard]] constexpr std::string_view to_string(Backpressure policy) noexcept {
    return policy == Backpressure::drop_oldest ? "drop-oldest" : "drop-newest";
}

}  // namespace xrayd
