// RequestTemplate: the body built once with the tests' OTLP builder (protobuf) or by appending
// OTLP/JSON, the offsets of every id and time recorded on the way.
#include "bench/otlp/request_template.h"

#include <charconv>
#include <cstring>
#include <string_view>
#include <variant>

#include "tests/support/otlp_builder.h"

namespace xrayd::bench {

namespace {

constexpr std::size_t npos = std::string::npos;
constexpr std::size_t trace_id_bytes = 16;
constexpr std::size_t span_id_bytes = 8;
constexpr std::size_t time_digits = 19;  // Unix ns in decimal, until the year 2286
constexpr std::string_view schema_url = "https://opentelemetry.io/schemas/1.21.0";

using AttributeValue = std::variant<std::string_view, std::int64_t, double, bool>;

struct Attribute {
    std::string_view key;
    AttributeValue value;
};

// One span of a trace: what an instrumented Java service with the usual libraries reports
// (semantic-convention attribute names), sized like real spans (~300-500 bytes each).
struct SpanHead {
    std::string_view name;
    int kind;    // SpanKind: 1 internal, 2 server, 3 client, 4 producer
    int parent;  // index in the trace of the parent span, -1 for the root
    std::uint64_t start_offset_ns;
    std::uint64_t duration_ns;
    bool exception_event;  // with status ERROR
};

struct SpanShape {
    SpanHead head;
    std::vector<Attribute> attributes;
};

const std::vector<SpanShape>& trace_shape() {
    using std::int64_t;
    static const std::vector<SpanShape> shapes = {
        {{"GET /api/orders/{orderId}", 2, -1, 0, 48'000'000, false},
         {{"http.request.method", "GET"},
          {"http.route", "/api/orders/{orderId}"},
          {"url.path", "/api/orders/8f14e45f-ceea-467f-a0e6-a7d2b5c3e1f0"},
          {"http.response.status_code", int64_t{200}},
          {"server.port", int64_t{8080}},
          {"user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/121.0"}}},
        {{"OrderService.loadOrder", 1, 0, 1'000'000, 40'000'000, false},
         {{"code.namespace", "com.example.orders.service.OrderService"},
          {"code.function", "loadOrder"},
          {"app.order.items", int64_t{3}},
          {"app.order.total", 129.95},
          {"app.customer.tier", "gold"},
          {"thread.id", int64_t{57}}}},
        {{"SELECT orders.orders", 3, 1, 2'000'000, 6'500'000, false},
         {{"db.system", "postgresql"},
          {"db.name", "orders"},
          {"db.statement", "SELECT id, status, total, created_at FROM orders WHERE id = ?"},
          {"db.operation", "SELECT"},
          {"server.address", "orders-db.internal"},
          {"server.port", int64_t{5432}}}},
        {{"GET", 3, 1, 9'000'000, 900'000, false},
         {{"db.system", "redis"},
          {"db.statement", "GET cart:8f14e45f-ceea-467f-a0e6"},
          {"db.redis.database_index", int64_t{0}},
          {"server.address", "cache.internal"},
          {"server.port", int64_t{6379}},
          {"app.cache_hit", false}}},
        {{"POST", 3, 1, 11'000'000, 21'000'000, true},
         {{"http.request.method", "POST"},
          {"url.full", "http://inventory.internal:8080/v1/reservations"},
          {"http.response.status_code", int64_t{504}},
          {"server.address", "inventory.internal"},
          {"server.port", int64_t{8080}},
          {"http.request.resend_count", int64_t{1}}}},
        {{"orders publish", 4, 1, 33'000'000, 2'400'000, false},
         {{"messaging.system", "kafka"},
          {"messaging.destination.name", "orders"},
          {"messaging.operation", "publish"},
          {"messaging.kafka.message.key", "8f14e45f"},
          {"messaging.message.body.size", int64_t{734}},
          {"messaging.kafka.destination.partition", int64_t{5}}}},
        {{"S3.GetObject", 3, 0, 36'000'000, 4'200'000, false},
         {{"rpc.system", "aws-api"},
          {"rpc.service", "S3"},
          {"rpc.method", "GetObject"},
          {"aws.s3.bucket", "orders-invoices-prod"},
          {"aws.request_id", "7CE3A2B1C9D84F10"},
          {"http.response.status_code", int64_t{200}}}},
        {{"InvoiceRenderer.render", 1, 0, 41'000'000, 5'800'000, false},
         {{"code.namespace", "com.example.orders.web.InvoiceRenderer"},
          {"code.function", "render"},
          {"app.template", "invoice.html"},
          {"app.render.pages", int64_t{2}},
          {"app.render.cpu_ms", 3.75},
          {"app.render.cached", true}}},
    };
    return shapes;
}

const std::vector<Attribute>& resource_attributes() {
    static const std::vector<Attribute> attributes = {
        {"service.name", "orders-api"},
        {"service.version", "2.14.1"},
        {"deployment.environment", "production"},
        {"host.name", "ip-10-0-3-17.us-east-2.compute.internal"},
        {"cloud.provider", "aws"},
        {"cloud.region", "us-east-2"},
        {"telemetry.sdk.name", "opentelemetry"},
        {"telemetry.sdk.language", "java"},
        {"telemetry.sdk.version", "1.32.0"},
    };
    return attributes;
}

constexpr std::string_view scope_name = "io.opentelemetry.tomcat-10.0";
constexpr std::string_view scope_version = "1.32.0-alpha";
constexpr std::string_view exception_type = "java.net.SocketTimeoutException";
constexpr std::string_view exception_message = "Read timed out after 20000 ms";

// ---- writing ids and times in place

constexpr char hex_digits[] = "0123456789abcdef";

void put_big_endian(char* out, std::uint64_t value) noexcept {
    for (int i = 7; i >= 0; --i) {
        out[i] = static_cast<char>(value & 0xff);
        value >>= 8;
    }
}

void put_little_endian(char* out, std::uint64_t value) noexcept {
    for (int i = 0; i < 8; ++i) {
        out[i] = static_cast<char>(value & 0xff);
        value >>= 8;
    }
}

void put_hex64(char* out, std::uint64_t value) noexcept {
    for (int i = 15; i >= 0; --i) {
        out[i] = hex_digits[value & 0xf];
        value >>= 4;
    }
}

void put_decimal19(char* out, std::uint64_t value) noexcept {
    for (int i = static_cast<int>(time_digits) - 1; i >= 0; --i) {
        out[i] = static_cast<char>('0' + value % 10);
        value /= 10;
    }
}

}  // namespace

// Fills a RequestTemplate's text_ and slots_; one function per encoding.
class TemplateWriter {
public:
    using Slot = RequestTemplate::Slot;

    static void protobuf(RequestTemplate& t, std::size_t spans);
    static void json(RequestTemplate& t, std::size_t spans);

private:
    static test::Pb any_value(const AttributeValue& value);
    static test::Pb protobuf_span(const SpanShape& shape, Slot& slot);
    static void json_value(std::string& out, const AttributeValue& value);
    static void json_attributes(std::string& out, const std::vector<Attribute>& attributes);
    static void json_span(std::string& out, const SpanShape& shape, Slot& slot);
    static Slot slot_for(std::size_t span_number);
};

RequestTemplate::Slot TemplateWriter::slot_for(std::size_t span_number) {
    const auto& shapes = trace_shape();
    const std::size_t role = span_number % shapes.size();
    const std::size_t trace_start = span_number - role;
    Slot slot;
    slot.span_number = static_cast<std::uint32_t>(span_number);
    slot.trace_number = static_cast<std::uint32_t>(span_number / shapes.size());
    slot.parent_id = npos;
    slot.event_time = npos;
    if (shapes[role].head.parent >= 0) {
        slot.parent_number = static_cast<std::uint32_t>(
            trace_start + static_cast<std::size_t>(shapes[role].head.parent));
    }
    slot.start_offset_ns = shapes[role].head.start_offset_ns;
    slot.duration_ns = shapes[role].head.duration_ns;
    return slot;
}

// ---- protobuf (field numbers of opentelemetry-proto's trace.proto, common.proto)

test::Pb TemplateWriter::any_value(const AttributeValue& value) {
    if (const auto* s = std::get_if<std::string_view>(&value)) {
        return test::any_string(*s);
    }
    if (const auto* i = std::get_if<std::int64_t>(&value)) {
        return test::any_int(*i);
    }
    if (const auto* d = std::get_if<double>(&value)) {
        return test::any_double(*d);
    }
    return test::any_bool(std::get<bool>(value));
}

// A Span; the slot's offsets are relative to the span's first byte.
test::Pb TemplateWriter::protobuf_span(const SpanShape& shape, Slot& slot) {
    test::Pb span;
    const auto at_end = [&span](std::size_t size) { return span.str().size() - size; };
    span.bytes(1, std::string(trace_id_bytes, '\0'));  // trace_id
    slot.trace_id = at_end(trace_id_bytes);
    span.bytes(2, std::string(span_id_bytes, '\0'));  // span_id
    slot.span_id = at_end(span_id_bytes);
    if (shape.head.parent >= 0) {
        span.bytes(4, std::string(span_id_bytes, '\0'));  // parent_span_id
        slot.parent_id = at_end(span_id_bytes);
    }
    span.bytes(5, shape.head.name).varint(6, static_cast<std::uint64_t>(shape.head.kind));
    span.fixed64(7, 0);  // start_time_unix_nano
    slot.start = at_end(8);
    span.fixed64(8, 0);  // end_time_unix_nano
    slot.end = at_end(8);
    for (const Attribute& a : shape.attributes) {
        span.msg(9, test::key_value(a.key, any_value(a.value)));  // attributes
    }
    if (shape.head.exception_event) {
        test::Pb event;
        event.fixed64(1, 0);  // time_unix_nano
        const std::size_t time_in_event = event.str().size() - 8;
        event.bytes(2, "exception")
            .msg(3, test::key_value("exception.type", test::any_string(exception_type)))
            .msg(3, test::key_value("exception.message", test::any_string(exception_message)));
        span.msg(11, event);  // events
        slot.event_time = at_end(event.str().size()) + time_in_event;
        span.msg(15, test::Pb().bytes(2, exception_message).varint(3, 2));  // status: ERROR
    }
    return span;
}

void TemplateWriter::protobuf(RequestTemplate& t, std::size_t spans) {
    const auto& shapes = trace_shape();
    test::Pb scope;
    scope.msg(1, test::Pb().bytes(1, scope_name).bytes(2, scope_version));  // scope
    for (std::size_t n = 0; n < spans; ++n) {
        Slot slot = slot_for(n);
        const test::Pb span = protobuf_span(shapes[n % shapes.size()], slot);
        scope.msg(2, span);  // spans
        const std::size_t base = scope.str().size() - span.str().size();
        for (std::size_t* at : {&slot.trace_id, &slot.span_id, &slot.parent_id, &slot.start,
                                &slot.end, &slot.event_time}) {
            if (*at != npos) {
                *at += base;
            }
        }
        t.slots_.push_back(slot);
    }
    test::Pb resource;
    for (const Attribute& a : resource_attributes()) {
        resource.msg(1, test::key_value(a.key, any_value(a.value)));
    }
    test::Pb resource_spans;
    resource_spans.msg(1, resource);
    resource_spans.msg(2, scope);  // scope_spans
    const std::size_t scope_base = resource_spans.str().size() - scope.str().size();
    resource_spans.bytes(3, schema_url);
    test::Pb request;
    request.msg(1, resource_spans);  // ExportTraceServiceRequest.resource_spans
    const std::size_t base = scope_base + (request.str().size() - resource_spans.str().size());
    for (Slot& slot : t.slots_) {
        for (std::size_t* at : {&slot.trace_id, &slot.span_id, &slot.parent_id, &slot.start,
                                &slot.end, &slot.event_time}) {
            if (*at != npos) {
                *at += base;
            }
        }
    }
    t.text_ = request.str();
}

// ---- OTLP/JSON (hex ids, int64 and fixed64 as decimal strings, enums as numbers). No string
// here needs escaping: they are the constants above.

void TemplateWriter::json_value(std::string& out, const AttributeValue& value) {
    if (const auto* s = std::get_if<std::string_view>(&value)) {
        out.append("{\"stringValue\":\"").append(*s).append("\"}");
    } else if (const auto* i = std::get_if<std::int64_t>(&value)) {
        out.append("{\"intValue\":\"").append(std::to_string(*i)).append("\"}");
    } else if (const auto* d = std::get_if<double>(&value)) {
        char text[32];
        const auto done = std::to_chars(text, text + sizeof text, *d);
        out.append("{\"doubleValue\":").append(text, done.ptr).append("}");
    } else {
        out.append(std::get<bool>(value) ? "{\"boolValue\":true}" : "{\"boolValue\":false}");
    }
}

void TemplateWriter::json_attributes(std::string& out, const std::vector<Attribute>& attributes) {
    out += "\"attributes\":[";
    for (std::size_t i = 0; i < attributes.size(); ++i) {
        out.append(i == 0 ? "{\"key\":\"" : ",{\"key\":\"").append(attributes[i].key);
        out += "\",\"value\":";
        json_value(out, attributes[i].value);
        out += '}';
    }
    out += ']';
}

// Appends a span; the slot's offsets are absolute (in `out`).
void TemplateWriter::json_span(std::string& out, const SpanShape& shape, Slot& slot) {
    const auto field = [&out](std::string_view head, std::size_t width) {
        out.append(head);
        const std::size_t at = out.size();
        out.append(width, '0');
        out += '"';
        return at;
    };
    slot.trace_id = field("{\"traceId\":\"", 2 * trace_id_bytes);
    slot.span_id = field(",\"spanId\":\"", 2 * span_id_bytes);
    if (shape.head.parent >= 0) {
        slot.parent_id = field(",\"parentSpanId\":\"", 2 * span_id_bytes);
    }
    out.append(",\"name\":\"").append(shape.head.name).append("\",\"kind\":");
    out.append(std::to_string(shape.head.kind));
    slot.start = field(",\"startTimeUnixNano\":\"", time_digits);
    slot.end = field(",\"endTimeUnixNano\":\"", time_digits);
    out += ',';
    json_attributes(out, shape.attributes);
    if (shape.head.exception_event) {
        slot.event_time = field(",\"events\":[{\"timeUnixNano\":\"", time_digits);
        out.append(",\"name\":\"exception\",");
        json_attributes(
            out, {{"exception.type", exception_type}, {"exception.message", exception_message}});
        out.append("}],\"status\":{\"message\":\"").append(exception_message);
        out.append("\",\"code\":2}");
    }
    out += '}';
}

void TemplateWriter::json(RequestTemplate& t, std::size_t spans) {
    const auto& shapes = trace_shape();
    std::string& out = t.text_;
    out = "{\"resourceSpans\":[{\"resource\":{";
    json_attributes(out, resource_attributes());
    out.append("},\"scopeSpans\":[{\"scope\":{\"name\":\"").append(scope_name);
    out.append("\",\"version\":\"").append(scope_version).append("\"},\"spans\":[");
    for (std::size_t n = 0; n < spans; ++n) {
        if (n > 0) {
            out += ',';
        }
        Slot slot = slot_for(n);
        json_span(out, shapes[n % shapes.size()], slot);
        t.slots_.push_back(slot);
    }
    out.append("]}],\"schemaUrl\":\"").append(schema_url).append("\"}]}");
}

// ---- RequestTemplate

RequestTemplate RequestTemplate::build(BodyEncoding encoding, std::size_t spans,
                                       std::uint64_t run_id) {
    RequestTemplate t;
    t.encoding_ = encoding;
    t.run_id_ = run_id;
    t.slots_.reserve(spans);
    if (encoding == BodyEncoding::protobuf) {
        TemplateWriter::protobuf(t, spans);
    } else {
        TemplateWriter::json(t, spans);
    }
    return t;
}

void RequestTemplate::refresh(std::string& body, std::uint64_t request,
                              std::uint64_t now_unix_ns) const noexcept {
    // Every trace's spans end by about 50 ms after its start (trace_shape()).
    const std::uint64_t base_ns = now_unix_ns - 60'000'000;
    // Span ids: never 0 (request + 1 >= 1), unique within the run for 2^44 requests.
    const auto span_id = [request](std::uint32_t number) { return ((request + 1) << 20) | number; };
    char* text = body.data();
    for (const Slot& s : slots_) {
        const std::uint64_t trace_low = (request << 24) | s.trace_number;
        const std::uint64_t start = base_ns + s.start_offset_ns;
        const std::uint64_t times[] = {start, start + s.duration_ns, start + s.duration_ns / 2};
        const std::size_t time_at[] = {s.start, s.end, s.event_time};
        if (encoding_ == BodyEncoding::protobuf) {
            put_big_endian(text + s.trace_id, run_id_);
            put_big_endian(text + s.trace_id + 8, trace_low);
            put_big_endian(text + s.span_id, span_id(s.span_number));
            if (s.parent_id != npos) {
                put_big_endian(text + s.parent_id, span_id(s.parent_number));
            }
            for (std::size_t i = 0; i < 3; ++i) {
                if (time_at[i] != npos) {
                    put_little_endian(text + time_at[i], times[i]);
                }
            }
        } else {
            put_hex64(text + s.trace_id, run_id_);
            put_hex64(text + s.trace_id + 16, trace_low);
            put_hex64(text + s.span_id, span_id(s.span_number));
            if (s.parent_id != npos) {
                put_hex64(text + s.parent_id, span_id(s.parent_number));
            }
            for (std::size_t i = 0; i < 3; ++i) {
                if (time_at[i] != npos) {
                    put_decimal19(text + time_at[i], times[i]);
                }
            }
        }
    }
}

}  // namespace xrayd::bench
