// Escaping of remote strings for log lines (see remote_text.h).
#include <xrayd/log/remote_text.h>

#include <fmt/format.h>

namespace xrayd {

std::string escape_remote_text(std::string_view text, std::size_t limit) {
    const std::size_t shown = text.size() < limit ? text.size() : limit;
    std::string out;
    out.reserve(shown + 16);
    for (std::size_t i = 0; i < shown; ++i) {
        const auto byte = static_cast<unsigned char>(text[i]);
        if (byte == '\\') {
            out += "\\\\";
        } else if (byte < 0x20 || byte == 0x7f) {
            out += fmt::format("\\x{:02x}", byte);
        } else {
            out += static_cast<char>(byte);
        }
    }
    if (shown < text.size()) {
        out += fmt::format("...({} more bytes)", text.size() - shown);
    }
    return out;
}

}  // namespace xrayd
