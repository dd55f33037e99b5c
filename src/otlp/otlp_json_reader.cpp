// The OTLP/JSON reader of export requests: simdjson's validation, exact span counts, each
// resourceSpans element kept for merging as it is in the body, refused spans left out.
//
// Two simdjson passes: the DOM validates the whole document and counts, but keeps no positions;
// On-Demand then finds where each resourceSpans element and its spans lie in the body. The
// second pass is what lets a part point into the body instead of minifying every span into a
// new string (that copy was a quarter of the JSON receiver's CPU: bench/README.md, issue #16).
#include <simdjson.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <new>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include <xrayd/common/json_text.h>

#include "request_readers.h"

namespace xrayd::otlp {

namespace {

namespace ondemand = simdjson::ondemand;
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

// A resourceSpans element found by the DOM walk, with its span count.
struct CountedElement {
    element item;
    std::size_t spans = 0;
};

// Walks an OTLP/JSON request: checks the lists and counts the spans of each resourceSpans element
// (walk), and minifies an element into `rebuilt` without its spans over the limit (rebuild), the
// rare case of an element holding a span too long to be sent.
class JsonWalker {
public:
    JsonWalker(const OtlpLimits& limits, OtlpExportRequest& out) noexcept
        : limits_(limits), out_(out) {}

    std::optional<OtlpErrc> walk(element root, std::vector<CountedElement>& found) {
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
            ++out_.resource_spans;
            auto spans = count_spans(item);
            if (!spans.ok()) {
                return spans.error();
            }
            out_.spans += spans.value();
            found.push_back({item, spans.value()});
        }
        return std::nullopt;
    }

    // Appends `item` minified to `rebuilt` without its spans over the limit (measured minified,
    // the form they are sent in), and its part when a span is left.
    void rebuild(element item, std::size_t spans) {
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
    }

private:
    static Result<std::size_t, OtlpErrc> count_spans(element item) {
        object resource;
        if (item.get(resource) != simdjson::SUCCESS) {
            return fail(OtlpErrc::json_wrong_type);
        }
        auto scopes = array_field(resource, "scopeSpans");
        if (!scopes.ok()) {
            return fail(scopes.error());
        }
        std::size_t spans = 0;
        if (!scopes.value()) {
            return spans;
        }
        for (const element scope : *scopes.value()) {
            object scope_object;
            if (scope.get(scope_object) != simdjson::SUCCESS) {
                return fail(OtlpErrc::json_wrong_type);
            }
            auto list = array_field(scope_object, "spans");
            if (!list.ok()) {
                return fail(list.error());
            }
            if (!list.value()) {
                continue;
            }
            for (const element span : *list.value()) {
                if (!span.is_object()) {
                    return fail(OtlpErrc::json_wrong_type);
                }
                ++spans;
            }
        }
        return spans;
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

// Where a resourceSpans element lies in the body, and the length of its longest span there:
// text as written, so a length is never less than the minified one.
struct ElementExtent {
    std::size_t offset = 0;
    std::size_t length = 0;
    std::size_t longest_span = 0;
};

// The On-Demand pass runs on bytes the DOM has accepted: any error in it is unexpected, and is
// reported as an invalid document rather than trusted.
constexpr OtlpErrc unexpected = OtlpErrc::json_invalid;

std::string_view trim_trailing_space(std::string_view text) noexcept {
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\n' ||
                             text.back() == '\r')) {
        text.remove_suffix(1);
    }
    return text;
}

// Calls each(value) for every element of the array member `key` of `obj` (absent or null: none).
// Reads `obj` to its end, so that the iterator stands after it.
template <typename Each>
std::optional<OtlpErrc> for_each_element(ondemand::object obj, std::string_view key, Each&& each) {
    for (auto member : obj) {
        ondemand::field field;
        std::string_view name;
        if (std::move(member).get(field) != simdjson::SUCCESS ||
            field.unescaped_key().get(name) != simdjson::SUCCESS) {
            return unexpected;
        }
        if (name != key) {
            continue;  // On-Demand skips the value on the next turn
        }
        ondemand::value& value = field.value();
        bool null = false;
        if (value.is_null().get(null) != simdjson::SUCCESS) {
            return unexpected;
        }
        if (null) {
            continue;
        }
        ondemand::array items;
        if (value.get_array().get(items) != simdjson::SUCCESS) {
            return unexpected;
        }
        for (auto item : items) {
            ondemand::value element_value;
            if (item.get(element_value) != simdjson::SUCCESS) {
                return unexpected;
            }
            if (auto error = each(element_value)) {
                return error;
            }
        }
    }
    return std::nullopt;
}

// The extent of every resourceSpans element of `body`, in order (`body` has simdjson's padding
// after it).
std::optional<OtlpErrc> locate_elements(ondemand::parser& parser, simdjson::padded_string_view body,
                                        std::vector<ElementExtent>& out) {
    ondemand::document doc;
    ondemand::object request;
    const auto iterated = parser.iterate(body).get(doc);
    if (iterated == simdjson::MEMALLOC) {
        return OtlpErrc::out_of_memory;
    }
    if (iterated != simdjson::SUCCESS || doc.get_object().get(request) != simdjson::SUCCESS) {
        return unexpected;
    }
    const auto longest_span = [](std::size_t& longest) {
        return [&longest](ondemand::value& span) -> std::optional<OtlpErrc> {
            ondemand::object span_object;
            std::string_view text;
            if (span.get_object().get(span_object) != simdjson::SUCCESS ||
                span_object.raw_json().get(text) != simdjson::SUCCESS) {
                return unexpected;
            }
            longest = std::max(longest, trim_trailing_space(text).size());
            return std::nullopt;
        };
    };
    return for_each_element(
        request, "resourceSpans", [&](ondemand::value& item) -> std::optional<OtlpErrc> {
            ElementExtent extent;
            const char* start = item.raw_json_token().data();  // the element's '{'
            ondemand::object resource;
            if (item.get_object().get(resource) != simdjson::SUCCESS) {
                return unexpected;
            }
            auto error = for_each_element(
                resource, "scopeSpans", [&](ondemand::value& scope) -> std::optional<OtlpErrc> {
                    ondemand::object scope_object;
                    if (scope.get_object().get(scope_object) != simdjson::SUCCESS) {
                        return unexpected;
                    }
                    return for_each_element(scope_object, "spans",
                                            longest_span(extent.longest_span));
                });
            if (error) {
                return error;
            }
            // Past the element's '}': the ',' or ']' that follows it.
            const char* end = nullptr;
            if (doc.current_location().get(end) != simdjson::SUCCESS || end < start) {
                return unexpected;
            }
            const std::string_view text =
                trim_trailing_space({start, static_cast<std::size_t>(end - start)});
            extent.offset = static_cast<std::size_t>(start - body.data());
            extent.length = text.size();
            out.push_back(extent);
            return std::nullopt;
        });
}

// Up to this body size the parsers keep their buffers for the next request; after a larger one
// they give the memory back. Both together keep about three times the body resident (DOM 2.3x,
// On-Demand 0.55x, measured on a 17 MB request), per receiver thread.
constexpr std::size_t kept_capacity = std::size_t{1} << 20;

// Gives a parser's buffers back down to kept_capacity. On failure the parser is left empty, and
// allocates again when next used.
template <typename Parser>
void shrink(Parser& parser) noexcept {
    if (parser.capacity() > kept_capacity) {
        [[maybe_unused]] const simdjson::error_code error = parser.allocate(kept_capacity);
    }
}

// Shrinks the parsers when it goes out of scope.
class CapacityGuard {
public:
    CapacityGuard(simdjson::dom::parser& dom, ondemand::parser& on_demand,
                  std::string& padded) noexcept
        : dom_(dom), on_demand_(on_demand), padded_(padded) {}
    ~CapacityGuard() {
        shrink(dom_);
        shrink(on_demand_);
        if (padded_.capacity() > kept_capacity) {
            std::string().swap(padded_);
        }
    }
    CapacityGuard(const CapacityGuard&) = delete;
    CapacityGuard& operator=(const CapacityGuard&) = delete;

private:
    simdjson::dom::parser& dom_;
    ondemand::parser& on_demand_;
    std::string& padded_;
};

}  // namespace

Result<OtlpExportRequest, OtlpErrc> read_json(std::string_view body, const OtlpLimits& limits) {
    // One parser of each kind per thread, reused (the receiver's threads live as long as it
    // does): their buffers grow to the body and stay, up to kept_capacity.
    thread_local simdjson::dom::parser parser;
    thread_local ondemand::parser locator;
    // The body followed by simdjson's padding, in a buffer kept per thread like the parsers.
    thread_local std::string padded;
    const CapacityGuard shrink_after(parser, locator, padded);
    padded.assign(body);
    padded.append(simdjson::SIMDJSON_PADDING, '\0');
    const simdjson::padded_string_view padded_body(padded.data(), body.size(), padded.size());
    element root;
    const auto error = parser.parse(padded.data(), body.size(), false).get(root);
    if (error == simdjson::MEMALLOC) {
        return fail(OtlpErrc::out_of_memory);
    }
    if (error != simdjson::SUCCESS) {
        return fail(OtlpErrc::json_invalid);
    }
    OtlpExportRequest out;
    out.encoding = OtlpEncoding::json;
    JsonWalker walker(limits, out);
    std::vector<CountedElement> found;
    if (auto walk_error = walker.walk(root, found)) {
        return fail(*walk_error);
    }
    if (out.spans == 0) {
        return out;
    }
    std::vector<ElementExtent> extents;
    extents.reserve(found.size());
    if (auto locate_error = locate_elements(locator, padded_body, extents)) {
        return fail(*locate_error);
    }
    if (extents.size() != found.size()) {
        return fail(unexpected);
    }
    for (std::size_t i = 0; i < found.size(); ++i) {
        if (found[i].spans == 0) {
            continue;  // delivers nothing
        }
        const ElementExtent& extent = extents[i];
        if (extent.longest_span <= limits.max_span_bytes) {
            out.parts.push_back({extent.offset, extent.length, false, found[i].spans});
        } else {
            walker.rebuild(found[i].item, found[i].spans);
        }
    }
    return out;
}

}  // namespace xrayd::otlp
