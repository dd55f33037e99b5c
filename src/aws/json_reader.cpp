// The flat JSON object reader of the aws module (credential documents, config files).
#include "json_reader.h"

#include <cstddef>
#include <cstdint>
#include <utility>

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

}  // namespace xrayd::aws_detail
