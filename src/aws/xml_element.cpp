// The text of one XML element (STS replies).
#include "xml_element.h"

#include <cstddef>

#include <fmt/format.h>

namespace xrayd::aws_detail {

std::optional<std::string> xml_element(std::string_view xml, std::string_view tag) {
    const std::string open = fmt::format("<{}>", tag);
    const std::string close = fmt::format("</{}>", tag);
    const std::size_t start = xml.find(open);
    if (start == std::string_view::npos) {
        return std::nullopt;
    }
    const std::size_t begin = start + open.size();
    const std::size_t end = xml.find(close, begin);
    if (end == std::string_view::npos) {
        return std::nullopt;
    }
    const std::string_view raw = xml.substr(begin, end - begin);
    std::string out;
    out.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] != '&') {
            out += raw[i];
            continue;
        }
        const std::size_t semi = raw.find(';', i);
        if (semi == std::string_view::npos) {
            out += raw[i];
            continue;
        }
        const std::string_view entity = raw.substr(i + 1, semi - i - 1);
        if (entity == "amp") {
            out += '&';
        } else if (entity == "lt") {
            out += '<';
        } else if (entity == "gt") {
            out += '>';
        } else if (entity == "quot") {
            out += '"';
        } else if (entity == "apos") {
            out += '\'';
        } else if (entity.size() > 1 && entity[0] == '#') {
            unsigned long cp = 0;
            try {
                cp = entity[1] == 'x' ? std::stoul(std::string(entity.substr(2)), nullptr, 16)
                                      : std::stoul(std::string(entity.substr(1)), nullptr, 10);
            } catch (...) {
                out += raw.substr(i, semi - i + 1);
                i = semi;
                continue;
            }
            if (cp < 0x80) {
                out += static_cast<char>(cp);
            } else {
                out += raw.substr(i, semi - i + 1);  // non-ASCII references do not occur here
            }
        } else {
            out += raw.substr(i, semi - i + 1);
        }
        i = semi;
    }
    return out;
}

}  // namespace xrayd::aws_detail
