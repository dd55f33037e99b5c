// The OTLP/JSON reader of export requests: simdjson's validation, exact span counts, each
// resourceSpans element kept minified for merging, refused spans left out.
#include <simdjson.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <new>
#include <optional>
#include <span>

#include <xrayd/common/json_text.h>

#include "request_readers.h"

namespace xrayd::otlp {

namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// The value of `key` in `object` as an array: absent or null is an empty array (proto3 JSON),
// anything else but an array is an error, and so is the key twice.
Result<std::optional<array>, OtlpErrc> array_field(object obj, std::string_view key) {
    std::optional<array> found;
    bool seen = false;
    for (const auto field : obj) {
        if (field.key != key) {
            continue;
        }
        if (seen) {
            return fail(OtlpErrc::json_duplicate_key);
        }
        seen = true;
        if (field.value.is_null()) {
            continue;
        }
        array items;
        if (field.value.get(items) != simdjson::SUCCESS) {
            return fail(OtlpErrc::json_wrong_type);
        }
        found = items;
    }
    return found;
}

// Walks an OTLP/JSON request and minifies each resourceSpans element into `rebuilt`, leaving
// out the spans over the limit (measured minified, the form they are sent in).
class JsonWalker {
public:
    JsonWalker(const OtlpLimits& limits, OtlpExportRequest& out) noexcept
        : limits_(limits), out_(out) {}

    std::optional<OtlpErrc> walk(element root) {
        object request;
        if (root.get(request) != simdjson::SUCCESS) {
            return OtlpErrc::json_not_object;
        }
        auto list = array_field(request, "resourceSpans");
        if (!list.ok()) {
            return list.error();
        }
        if (!list.value()) {
            return std::nullopt;
        }
        for (const element item : *list.value()) {
            if (auto error = resource_spans(item)) {
                return error;
            }
        }
        return std::nullopt;
    }

private:
    std::optional<OtlpErrc> resource_spans(element item) {
        ++out_.resource_spans;
        object resource;
        if (item.get(resource) != simdjson::SUCCESS) {
            return OtlpErrc::json_wrong_type;
        }
        auto scopes = array_field(resource, "scopeSpans");
        if (!scopes.ok()) {
            return scopes.error();
        }
        // Count and check first, so that an error leaves `rebuilt` alone.
        std::size_t spans = 0;
        if (scopes.value()) {
            for (const element scope : *scopes.value()) {
                object scope_object;
                if (scope.get(scope_object) != simdjson::SUCCESS) {
                    return OtlpErrc::json_wrong_type;
                }
                auto list = array_field(scope_object, "spans");
                if (!list.ok()) {
                    return list.error();
                }
                if (list.value()) {
                    for (const element span : *list.value()) {
                        if (!span.is_object()) {
                            return OtlpErrc::json_wrong_type;
                        }
                        ++spans;
                    }
                }
            }
        }
        out_.spans += spans;
        if (spans == 0) {
            return std::nullopt;
        }
        OtlpPart part;
        part.rebuilt = true;
        part.offset = out_.rebuilt.size();
        const std::size_t refused_before = out_.refused_spans;
        append_object(item, "scopeSpans", [&](element scopes_value) {
            append_array(scopes_value, [&](element scope) {
                append_object(scope, "spans", [&](element spans_value) {
                    append_array(spans_value, [&](element span) {
                        const std::string text = simdjson::minify(span);
                        if (text.size() > limits_.max_span_bytes) {
                            ++out_.refused_spans;
                            return false;
                        }
                        out_.rebuilt += text;
                        return true;
                    });
                });
                return true;
            });
        });
        part.spans = spans - (out_.refused_spans - refused_before);
        part.length = out_.rebuilt.size() - part.offset;
        if (part.spans == 0) {
            out_.rebuilt.resize(part.offset);  // nothing to deliver
        } else {
            out_.parts.push_back(part);
        }
        return std::nullopt;
    }

    // Appends `value` minified, but the member `key` of an object, which `inner` writes.
    template <typename Inner>
    void append_object(element value, std::string_view key, Inner&& inner) {
        object obj;
        if (value.get(obj) != simdjson::SUCCESS) {
            out_.rebuilt += simdjson::minify(value);
            return;
        }
        out_.rebuilt += '{';
        bool first = true;
        for (const auto field : obj) {
            if (!first) {
                out_.rebuilt += ',';
            }
            first = false;
            append_json_string(out_.rebuilt, field.key);
            out_.rebuilt += ':';
            if (field.key == key && field.value.is_array()) {
                inner(field.value);
            } else {
                out_.rebuilt += simdjson::minify(field.value);
            }
        }
        out_.rebuilt += '}';
    }

    // Appends an array whose elements `each` writes; `each` returns false when it wrote nothing.
    template <typename Each>
    void append_array(element value, Each&& each) {
        array items;
        if (value.get(items) != simdjson::SUCCESS) {
            out_.rebuilt += simdjson::minify(value);
            return;
        }
        out_.rebuilt += '[';
        bool first = true;
        for (const element item : items) {
            const std::size_t mark = out_.rebuilt.size();
            if (!first) {
                out_.rebuilt += ',';
            }
            if (each(item)) {
                first = false;
            } else {
                out_.rebuilt.resize(mark);
            }
        }
        out_.rebuilt += ']';
    }

    const OtlpLimits& limits_;
    OtlpExportRequest& out_;
};

}  // namespace

Result<OtlpExportRequest, OtlpErrc> read_json(std::string_view body, const OtlpLimits& limits) {
    // One parser per thread, reused: its buffers grow to the largest body and stay.
    thread_local simdjson::dom::parser parser;
    const simdjson::padded_string padded(body);
    element root;
    const auto error = parser.parse(padded).get(root);
    if (error == simdjson::MEMALLOC) {
        return fail(OtlpErrc::out_of_memory);
    }
    if (error != simdjson::SUCCESS) {
        return fail(OtlpErrc::json_invalid);
    }
    OtlpExportRequest out;
    out.encoding = OtlpEncoding::json;
    JsonWalker walker(limits, out);
    if (auto walk_error = walker.walk(root)) {
        return fail(*walk_error);
    }
    return out;
}

}  // namespace xrayd::otlp
