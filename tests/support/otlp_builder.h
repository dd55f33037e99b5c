// Builds OTLP protobuf messages for tests with protobuf's CodedOutputStream (independent of the
// writers in src/otlp), from the field numbers of opentelemetry-proto, and gzip bodies with
// zlib. Header-only: the otlp tests include it as "tests/support/otlp_builder.h", and so does
// the OTLP bench's generator (bench/otlp/request_template.cpp) for its bodies.
#pragma once

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>

namespace xrayd::test {

// One protobuf message, appended field by field.
class Pb {
public:
    using Wfl = google::protobuf::internal::WireFormatLite;
    using Out = google::protobuf::io::CodedOutputStream;

    Pb& bytes(int number, std::string_view value) {
        write([&](Out& out) {
            out.WriteTag(Wfl::MakeTag(number, Wfl::WIRETYPE_LENGTH_DELIMITED));
            out.WriteVarint32(static_cast<std::uint32_t>(value.size()));
            out.WriteRaw(value.data(), static_cast<int>(value.size()));
        });
        return *this;
    }
    Pb& msg(int number, const Pb& inner) { return bytes(number, inner.str()); }
    Pb& varint(int number, std::uint64_t value) {
        write([&](Out& out) {
            out.WriteTag(Wfl::MakeTag(number, Wfl::WIRETYPE_VARINT));
            out.WriteVarint64(value);
        });
        return *this;
    }
    Pb& fixed64(int number, std::uint64_t value) {
        write([&](Out& out) {
            out.WriteTag(Wfl::MakeTag(number, Wfl::WIRETYPE_FIXED64));
            out.WriteLittleEndian64(value);
        });
        return *this;
    }
    Pb& fixed32(int number, std::uint32_t value) {
        write([&](Out& out) {
            out.WriteTag(Wfl::MakeTag(number, Wfl::WIRETYPE_FIXED32));
            out.WriteLittleEndian32(value);
        });
        return *this;
    }
    Pb& dbl(int number, double value) {
        std::uint64_t bits = 0;
        std::memcpy(&bits, &value, sizeof bits);
        return fixed64(number, bits);
    }
    // Raw bytes (a broken field, a group).
    Pb& raw(std::string_view value) {
        bytes_ += value;
        return *this;
    }

    [[nodiscard]] const std::string& str() const { return bytes_; }

private:
    template <typename F>
    void write(F&& f) {
        google::protobuf::io::StringOutputStream stream(&bytes_);
        Out out(&stream);
        f(out);
    }

    std::string bytes_;
};

// AnyValue constructors (common.proto: 1 string, 2 bool, 3 int, 4 double, 5 array, 6 kvlist,
// 7 bytes) and KeyValue (1 key, 2 value).
inline Pb any_string(std::string_view v) {
    return Pb().bytes(1, v);
}
inline Pb any_bool(bool v) {
    return Pb().varint(2, v ? 1 : 0);
}
inline Pb any_int(std::int64_t v) {
    return Pb().varint(3, static_cast<std::uint64_t>(v));
}
inline Pb any_double(double v) {
    return Pb().dbl(4, v);
}
inline Pb any_bytes(std::string_view v) {
    return Pb().bytes(7, v);
}
inline Pb key_value(std::string_view key, const Pb& value) {
    return Pb().bytes(1, key).msg(2, value);
}
inline Pb any_array(std::initializer_list<Pb> values) {
    Pb array;
    for (const Pb& v : values) {
        array.msg(1, v);
    }
    return Pb().msg(5, array);
}
inline Pb any_kvlist(std::initializer_list<Pb> key_values) {
    Pb list;
    for (const Pb& kv : key_values) {
        list.msg(1, kv);
    }
    return Pb().msg(6, list);
}

// A span with every kind of field of trace.proto: ids, trace_state, parent, name, kind, times,
// attributes of every AnyValue type, an event, a link, an error status, flags. `pad` bytes
// of one more string attribute make it as large as a test needs.
inline Pb full_span(int n, std::size_t pad = 0) {
    const std::string trace_id(16, static_cast<char>(0x10 + n));
    const std::string span_id(8, static_cast<char>(0x20 + n));
    Pb span;
    span.bytes(1, trace_id).bytes(2, span_id).bytes(3, "k=v").bytes(4, std::string(8, '\x01'));
    span.bytes(5, "span-" + std::to_string(n)).varint(6, 2);
    span.fixed64(7, 1752000000123456789ULL).fixed64(8, 1752000000223456789ULL);
    span.msg(9, key_value("s", any_string("text")));
    span.msg(9, key_value("b", any_bool(true)));
    span.msg(9, key_value("i", any_int(-42)));
    span.msg(9, key_value("d", any_double(3.5)));
    span.msg(
        9, key_value("a", any_array({any_string("x"), any_int(7), any_array({any_bool(false)})})));
    span.msg(9, key_value("m", any_kvlist({key_value("inner", any_string("y"))})));
    span.msg(9, key_value("y", any_bytes(std::string("\x00\xff", 2))));
    if (pad > 0) {
        span.msg(9, key_value("pad", any_string(std::string(pad, 'p'))));
    }
    span.varint(10, 1);
    span.msg(11, Pb().fixed64(1, 1752000000150000000ULL)
                     .bytes(2, "exception")
                     .msg(3, key_value("exception.type", any_string("Boom")))
                     .varint(4, 0));
    span.varint(12, 0);
    span.msg(13, Pb().bytes(1, std::string(16, '\x33'))
                     .bytes(2, std::string(8, '\x44'))
                     .bytes(3, "")
                     .msg(4, key_value("link", any_int(1)))
                     .varint(5, 0)
                     .fixed32(6, 0x100));
    span.varint(14, 0);
    span.msg(15, Pb().bytes(2, "failed").varint(3, 2));  // STATUS_CODE_ERROR
    span.fixed32(16, 0x101);
    return span;
}

// ScopeSpans (1 scope, 2 spans) with `spans` spans numbered from `first`.
inline Pb scope_spans(int first, int spans, std::size_t pad_of_first = 0) {
    Pb scope;
    scope.msg(1, Pb().bytes(1, "lib").bytes(2, "1.0").msg(3, key_value("k", any_int(1))));
    for (int i = 0; i < spans; ++i) {
        scope.msg(2, full_span(first + i, i == 0 ? pad_of_first : 0));
    }
    scope.bytes(3, "https://opentelemetry.io/schemas/1.21.0");
    return scope;
}

// ResourceSpans (1 resource, 2 scope_spans, 3 schema_url).
inline Pb resource_spans(std::initializer_list<Pb> scopes) {
    Pb rs;
    rs.msg(1, Pb().msg(1, key_value("service.name", any_string("orders"))).varint(2, 0));
    for (const Pb& s : scopes) {
        rs.msg(2, s);
    }
    rs.bytes(3, "https://opentelemetry.io/schemas/1.21.0");
    return rs;
}

// ExportTraceServiceRequest (1 resource_spans).
inline Pb export_request(std::initializer_list<Pb> resource_spans_list) {
    Pb request;
    for (const Pb& rs : resource_spans_list) {
        request.msg(1, rs);
    }
    return request;
}

// `data` as one gzip member (zlib's deflate, windowBits 15 + 16).
inline std::string gzip(std::string_view data) {
    z_stream zs{};
    if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
        throw std::runtime_error("deflateInit2");
    }
    std::string out(deflateBound(&zs, data.size()), '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs.avail_in = static_cast<uInt>(data.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        throw std::runtime_error("deflate");
    }
    return out;
}

// `zeros` zero bytes as one gzip member, deflated in steps so that the test never holds them:
// a gzip bomb (about 1000:1).
inline std::string gzip_zeros(std::size_t zeros) {
    z_stream zs{};
    if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
        throw std::runtime_error("deflateInit2");
    }
    const std::string chunk(1 << 20, '\0');
    std::string out;
    char buffer[1 << 16];
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        const std::size_t step = std::min(zeros, chunk.size());
        zeros -= step;
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(chunk.data()));
        zs.avail_in = static_cast<uInt>(step);
        do {
            zs.next_out = reinterpret_cast<Bytef*>(buffer);
            zs.avail_out = sizeof buffer;
            rc = deflate(&zs, zeros == 0 ? Z_FINISH : Z_NO_FLUSH);
            out.append(buffer, sizeof buffer - zs.avail_out);
        } while (zs.avail_out == 0);
    }
    deflateEnd(&zs);
    return out;
}

}  // namespace xrayd::test
