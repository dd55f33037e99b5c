// error_text: the message of an errno value, for logs and start-up errors.
#pragma once

#include <string.h>  // strerrordesc_np (GNU)

namespace xrayd {

// strerror without allocating or touching shared state (strerrordesc_np, not strerror's
// per-thread buffer or locale), so it is safe in noexcept data-plane code; "unknown error" for
// a number the C library does not know.
[[nodiscard]] inline const char* error_text(int error) noexcept {
    const char* text = ::strerrordesc_np(error);
    return text != nullptr ? text : "unknown error";
}

}  // namespace xrayd
