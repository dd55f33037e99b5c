// The flat JSON object reader private to the aws module (credential documents, config files).
//
// Why a reader of its own: the documents it reads hold secret keys and session tokens (IMDS,
// container endpoint, credential_process), so every value it decodes is wiped when the
// JsonFields that owns it is destroyed; a general-purpose parser would leave copies in buffers
// this module cannot clear.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <xrayd/common/result.h>

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

}  // namespace xrayd::aws_detail
