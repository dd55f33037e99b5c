// Parsing of X-Ray's PutTraceSegments responses.
#include <xrayd/xray/xray_response.h>

#include <new>

namespace xrayd {
namespace {

// The string at `key` of `object`, or empty when missing, null or not a string.
std::string_view string_field(simdjson::dom::object object, std::string_view key) noexcept {
    std::string_view value;
    if (object[key].get_string().get(value) != simdjson::SUCCESS) {
        return {};
    }
    return value;
}

// "ns#Name" and "Name:uri" reduce to "Name".
std::string_view bare_error_type(std::string_view type) noexcept {
    if (const auto hash = type.rfind('#'); hash != std::string_view::npos) {
        type.remove_prefix(hash + 1);
    }
    if (const auto colon = type.find(':'); colon != std::string_view::npos) {
        type = type.substr(0, colon);
    }
    return type;
}

}  // namespace

std::string_view to_string(ResponseErrc errc) noexcept {
    switch (errc) {
    case ResponseErrc::not_json: return "response is not JSON";
    case ResponseErrc::not_object: return "response is not a JSON object";
    case ResponseErrc::bad_unprocessed: return "UnprocessedTraceSegments is not an array";
    case ResponseErrc::out_of_memory: return "out of memory";
    }
    return "unknown";
}

Result<void, ResponseErrc> parse_unprocessed_segments(simdjson::dom::parser& parser,
                                                      std::string_view body,
                                                      std::vector<UnprocessedSegment>& out,
                                                      std::size_t max_items,
                                                      std::size_t* ignored) noexcept {
    out.clear();
    if (ignored != nullptr) {
        *ignored = 0;
    }
    simdjson::dom::element document;
    if (parser.parse(body.data(), body.size(), true).get(document) != simdjson::SUCCESS) {
        return fail(ResponseErrc::not_json);
    }
    simdjson::dom::object root;
    if (document.get_object().get(root) != simdjson::SUCCESS) {
        return fail(ResponseErrc::not_object);
    }
    simdjson::dom::element unprocessed;
    if (root["UnprocessedTraceSegments"].get(unprocessed) != simdjson::SUCCESS ||
        unprocessed.is_null()) {
        return {};
    }
    simdjson::dom::array items;
    if (unprocessed.get_array().get(items) != simdjson::SUCCESS) {
        return fail(ResponseErrc::bad_unprocessed);
    }
    try {
        for (simdjson::dom::element item : items) {
            if (out.size() >= max_items) {
                if (ignored != nullptr) {
                    ++*ignored;
                }
                continue;
            }
            simdjson::dom::object fields;
            if (item.get_object().get(fields) != simdjson::SUCCESS) {
                continue;
            }
            UnprocessedSegment segment;
            std::string_view id;
            segment.has_id = fields["Id"].get_string().get(id) == simdjson::SUCCESS;
            segment.id = id;
            segment.error_code = string_field(fields, "ErrorCode");
            segment.message = string_field(fields, "Message");
            out.push_back(std::move(segment));
        }
    } catch (const std::bad_alloc&) {
        out.clear();
        return fail(ResponseErrc::out_of_memory);
    }
    return {};
}

XRayError parse_error_response(simdjson::dom::parser& parser, std::string_view body,
                               std::string_view header_type) noexcept {
    XRayError error;
    try {
        error.type = bare_error_type(header_type);
        simdjson::dom::element document;
        simdjson::dom::object root;
        if (parser.parse(body.data(), body.size(), true).get(document) != simdjson::SUCCESS ||
            document.get_object().get(root) != simdjson::SUCCESS) {
            return error;
        }
        std::string_view type = string_field(root, "__type");
        if (type.empty()) {
            type = string_field(root, "code");
        }
        if (type.empty()) {
            type = string_field(root, "Code");
        }
        if (!type.empty()) {
            error.type = bare_error_type(type);
        }
        std::string_view message = string_field(root, "message");
        if (message.empty()) {
            message = string_field(root, "Message");
        }
        error.message = message;
    } catch (const std::bad_alloc&) {
        // Keep what was gathered: the error is only used for logs and the retry decision.
    }
    return error;
}

}  // namespace xrayd
