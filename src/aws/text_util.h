// Small parsers private to the aws module: flat JSON objects, ISO-8601 times, XML elements,
// form encoding and whole-file reads.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <xrayd/common/result.h>
#include <xrayd/common/time.h>

namespace xrayd::aws_detail {

// The top-level members of a JSON object. Nested objects and arrays are validated and skipped
// (recorded with kind `nested`). Every value is wiped on destruction (credential documents).
struct JsonValue {
    enum class Kind { string, number, boolean, null, nested };
    Kind kind = Kind::null;
    std::string text;  // decoded string, or the literal text of a number/boolean
};

class JsonFields {
public:
    JsonFields() = default;
    JsonFields(JsonFields&&) = default;
    JsonFields& operator=(JsonFields&&) = default;
    ~JsonFields();

    // The string member `name`, or nullopt when absent or not a string.
    [[nodiscard]] std::optional<std::string_view> string(std::string_view name) const;
    [[nodiscard]] const JsonValue* find(std::string_view name) const;

    std::map<std::string, JsonValue, std::less<>> members;
};

// Parses a JSON document whose root is an object. The error says where and why, without
// quoting the document (it may hold secrets).
[[nodiscard]] Result<JsonFields, std::string> parse_json_object(std::string_view text);

// "2024-05-01T16:20:00Z", with optional fractional seconds and a Z or ±hh:mm offset.
[[nodiscard]] std::optional<WallClock::time_point> parse_iso8601(std::string_view text);

// The text of the first <tag>...</tag> inside `xml`, entities decoded; nullopt when absent.
[[nodiscard]] std::optional<std::string> xml_element(std::string_view xml, std::string_view tag);

// application/x-www-form-urlencoded value encoding (unreserved bytes kept, the rest %XX).
[[nodiscard]] std::string form_encode(std::string_view value);

// The whole file, or an error text "open <path>: <strerror>".
[[nodiscard]] Result<std::string, std::string> read_whole_file(const std::string& path);

// Lower-cased copy.
[[nodiscard]] std::string to_lower(std::string_view s);

// Leading and trailing whitespace removed.
[[nodiscard]] std::string_view trim(std::string_view s) noexcept;

}  // namespace xrayd::aws_detail
