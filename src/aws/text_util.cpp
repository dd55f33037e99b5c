// Flat JSON, ISO-8601, XML element and form-encoding helpers.
#include "text_util.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "hash.h"

namespace xrayd::aws_detail {

namespace {

class JsonParser {
public:
    explicit JsonParser(std::string_view text) : s_(text) {}

    Result<JsonFields, std::string> parse_root() {
        JsonFields fields;
        skip_ws();
        if (!eat('{')) {
            return fail(error("expected '{' at the start of the document"));
        }
        skip_ws();
        if (eat('}')) {
            return finish(std::move(fields));
        }
        while (true) {
            skip_ws();
            std::string key;
            if (!parse_string(key)) {
                return fail(error("expected a member name"));
            }
            skip_ws();
            if (!eat(':')) {
                return fail(error("expected ':'"));
            }
            skip_ws();
            JsonValue value;
            if (!parse_value(value, 0)) {
                return fail(error("invalid value"));
            }
            fields.members.insert_or_assign(std::move(key), std::move(value));
            skip_ws();
            if (eat(',')) {
                continue;
            }
            if (eat('}')) {
                return finish(std::move(fields));
            }
            return fail(error("expected ',' or '}'"));
        }
    }

private:
    static constexpr int max_depth = 64;

    Result<JsonFields, std::string> finish(JsonFields fields) {
        skip_ws();
        if (pos_ != s_.size()) {
            return fail(error("trailing characters after the object"));
        }
        return fields;
    }

    std::string error(std::string_view what) const {
        return fmt::format("invalid JSON at offset {}: {}", pos_, what);
    }
    bool eat(char c) {
        if (pos_ < s_.size() && s_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    void skip_ws() {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
            ++pos_;
        }
    }
    static void append_utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }
    bool parse_hex4(std::uint32_t& out) {
        if (pos_ + 4 > s_.size()) {
            return false;
        }
        out = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = s_[pos_++];
            out <<= 4;
            if (c >= '0' && c <= '9') {
                out |= static_cast<std::uint32_t>(c - '0');
            } else if (c >= 'a' && c <= 'f') {
                out |= static_cast<std::uint32_t>(c - 'a' + 10);
            } else if (c >= 'A' && c <= 'F') {
                out |= static_cast<std::uint32_t>(c - 'A' + 10);
            } else {
                return false;
            }
        }
        return true;
    }
    bool parse_string(std::string& out) {
        if (!eat('"')) {
            return false;
        }
        while (pos_ < s_.size()) {
            const char c = s_[pos_++];
            if (c == '"') {
                return true;
            }
            if (static_cast<unsigned char>(c) < 0x20) {
                return false;
            }
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= s_.size()) {
                return false;
            }
            const char e = s_[pos_++];
            switch (e) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
                std::uint32_t cp = 0;
                if (!parse_hex4(cp)) {
                    return false;
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    std::uint32_t low = 0;
                    if (!eat('\\') || !eat('u') || !parse_hex4(low) || low < 0xDC00 ||
                        low > 0xDFFF) {
                        return false;
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                }
                append_utf8(out, cp);
                break;
            }
            default: return false;
            }
        }
        return false;
    }
    bool parse_literal(std::string_view word) {
        if (s_.substr(pos_, word.size()) == word) {
            pos_ += word.size();
            return true;
        }
        return false;
    }
    bool parse_number(std::string& out) {
        const std::size_t start = pos_;
        eat('-');
        std::size_t digits = 0;
        const auto take_digits = [&] {
            std::size_t n = 0;
            while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
                ++pos_;
                ++n;
            }
            return n;
        };
        digits = take_digits();
        if (digits == 0) {
            return false;
        }
        if (eat('.') && take_digits() == 0) {
            return false;
        }
        if (eat('e') || eat('E')) {
            if (!eat('+')) {
                eat('-');
            }
            if (take_digits() == 0) {
                return false;
            }
        }
        out.assign(s_.substr(start, pos_ - start));
        return true;
    }
    bool parse_value(JsonValue& value, int depth) {
        if (depth > max_depth || pos_ >= s_.size()) {
            return false;
        }
        const char c = s_[pos_];
        if (c == '"') {
            value.kind = JsonValue::Kind::string;
            return parse_string(value.text);
        }
        if (c == '{' || c == '[') {
            value.kind = JsonValue::Kind::nested;
            return skip_container(depth);
        }
        if (parse_literal("true")) {
            value = {JsonValue::Kind::boolean, "true"};
            return true;
        }
        if (parse_literal("false")) {
            value = {JsonValue::Kind::boolean, "false"};
            return true;
        }
        if (parse_literal("null")) {
            value = {JsonValue::Kind::null, ""};
            return true;
        }
        value.kind = JsonValue::Kind::number;
        return parse_number(value.text);
    }
    bool skip_container(int depth) {
        const char open = s_[pos_++];
        const char close = open == '{' ? '}' : ']';
        skip_ws();
        if (eat(close)) {
            return true;
        }
        while (true) {
            skip_ws();
            if (open == '{') {
                std::string key;
                if (!parse_string(key)) {
                    return false;
                }
                skip_ws();
                if (!eat(':')) {
                    return false;
                }
                skip_ws();
            }
            JsonValue ignored;
            if (!parse_value(ignored, depth + 1)) {
                wipe(ignored.text);
                return false;
            }
            wipe(ignored.text);
            skip_ws();
            if (eat(',')) {
                continue;
            }
            return eat(close);
        }
    }

    std::string_view s_;
    std::size_t pos_ = 0;
};

bool read_digits(std::string_view s, std::size_t pos, std::size_t count, int& out) {
    if (pos + count > s.size()) {
        return false;
    }
    out = 0;
    for (std::size_t i = 0; i < count; ++i) {
        const char c = s[pos + i];
        if (c < '0' || c > '9') {
            return false;
        }
        out = out * 10 + (c - '0');
    }
    return true;
}

}  // namespace

JsonFields::~JsonFields() {
    for (auto& [name, value] : members) {
        wipe(value.text);
    }
}

std::optional<std::string_view> JsonFields::string(std::string_view name) const {
    const JsonValue* v = find(name);
    if (v == nullptr || v->kind != JsonValue::Kind::string) {
        return std::nullopt;
    }
    return std::string_view(v->text);
}

const JsonValue* JsonFields::find(std::string_view name) const {
    auto it = members.find(name);
    return it == members.end() ? nullptr : &it->second;
}

Result<JsonFields, std::string> parse_json_object(std::string_view text) {
    JsonParser parser(text);
    return parser.parse_root();
}

std::optional<WallClock::time_point> parse_iso8601(std::string_view s) {
    s = trim(s);
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
    if (!read_digits(s, 0, 4, year) || s.size() < 19 || s[4] != '-' ||
        !read_digits(s, 5, 2, month) || s[7] != '-' || !read_digits(s, 8, 2, day) ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !read_digits(s, 11, 2, hour) ||
        s[13] != ':' || !read_digits(s, 14, 2, minute) || s[16] != ':' ||
        !read_digits(s, 17, 2, second)) {
        return std::nullopt;
    }
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 ||
        second > 60) {
        return std::nullopt;
    }
    std::size_t pos = 19;
    std::chrono::nanoseconds fraction{0};
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        long long scale = 100000000;
        std::size_t digits = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            fraction += std::chrono::nanoseconds((s[pos] - '0') * scale);
            scale /= 10;
            ++pos;
            ++digits;
        }
        if (digits == 0) {
            return std::nullopt;
        }
    }
    int offset_seconds = 0;
    if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
        ++pos;
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        int oh = 0, om = 0;
        if (!read_digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
            !read_digits(s, pos + 4, 2, om)) {
            return std::nullopt;
        }
        offset_seconds = (oh * 3600 + om * 60) * (s[pos] == '-' ? -1 : 1);
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != s.size()) {
        return std::nullopt;
    }
    // system_clock counts nanoseconds in 64 bits: about 1678 to 2262. Times outside (found by
    // fuzzing, both ends) cannot be represented, so the document is refused, not overflowed;
    // a credential expiry before 1970 means nothing anyway.
    if (year < 1970 || year > 2261) {
        return std::nullopt;
    }
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    const std::time_t t = timegm(&tm);
    if (t == static_cast<std::time_t>(-1)) {
        return std::nullopt;
    }
    return WallClock::from_time_t(t - offset_seconds) +
           std::chrono::duration_cast<WallClock::duration>(fraction);
}

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

std::string form_encode(std::string_view value) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(value.size() * 3);
    for (const char c : value) {
        const auto u = static_cast<unsigned char>(c);
        if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') ||
            u == '-' || u == '_' || u == '.' || u == '~') {
            out += c;
        } else {
            out += '%';
            out += hex[u >> 4];
            out += hex[u & 0xF];
        }
    }
    return out;
}

Result<std::string, std::string> read_whole_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return fail(fmt::format("open {}: {}", path, std::strerror(errno)));
    }
    std::ostringstream content;
    content << in.rdbuf();
    if (in.bad()) {
        return fail(fmt::format("read {}: {}", path, std::strerror(errno)));
    }
    return content.str();
}

std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' ||
                          s.front() == '\n')) {
        s.remove_prefix(1);
    }
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
        s.remove_suffix(1);
    }
    return s;
}

}  // namespace xrayd::aws_detail
