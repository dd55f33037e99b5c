#!/usr/bin/env python3
"""Builds the OTLP-over-UDP sample datagrams the way ADOT's OtlpUdpSpanExporter sends them.

The datagram is the header line, "T1S" (sampled) or "T1U" (unsampled), then the standard padded
base64 of a serialized opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest
(aws-otel-python-instrumentation otlp_udp_exporter: base64.b64encode(encode_spans(...))). No
protobuf library with the OTLP protos is packaged for Debian 12, so the request is encoded here
from the field numbers of opentelemetry-proto (trace/v1/trace.proto, common/v1/common.proto,
resource/v1/resource.proto, collector/trace/v1/trace_service.proto):

  ExportTraceServiceRequest   1 resource_spans (ResourceSpans, repeated)
  ResourceSpans               1 resource (Resource), 2 scope_spans (repeated), 3 schema_url
  Resource                    1 attributes (KeyValue, repeated)
  ScopeSpans                  1 scope (InstrumentationScope: 1 name, 2 version), 2 spans
  KeyValue                    1 key, 2 value (AnyValue: 1 string_value, 3 int_value)
  Span                        1 trace_id (16 bytes), 2 span_id (8 bytes), 4 parent_span_id,
                              5 name, 6 kind (2 = SERVER, 3 = CLIENT), 7 start_time_unix_nano
                              (fixed64), 8 end_time_unix_nano (fixed64), 9 attributes,
                              15 status (Status: 2 message, 3 code; 1 = OK), 16 flags (fixed32)

Run it to regenerate `adot-t1s.udp` (the unit tests, the end-to-end test and the fuzz corpus use
that file); importable for `datagram()` and `request_bytes()`.
"""

import base64
import pathlib
import struct

HEADER = b'{"format":"json","version":1}\n'


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_len(number: int, payload: bytes) -> bytes:
    """Wire type 2 (length-delimited): messages, strings, bytes."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def field_varint(number: int, value: int) -> bytes:
    return varint(number << 3 | 0) + varint(value)


def field_fixed64(number: int, value: int) -> bytes:
    return varint(number << 3 | 1) + struct.pack("<Q", value)


def field_fixed32(number: int, value: int) -> bytes:
    return varint(number << 3 | 5) + struct.pack("<I", value)


def key_value(key: str, value) -> bytes:
    if isinstance(value, int):
        any_value = field_varint(3, value)
    else:
        any_value = field_len(1, value.encode())
    return field_len(1, key.encode()) + field_len(2, any_value)


def span(trace_id: bytes, span_id: bytes, parent: bytes, name: str, kind: int, start_ns: int,
         end_ns: int, attributes: dict) -> bytes:
    out = field_len(1, trace_id) + field_len(2, span_id)
    if parent:
        out += field_len(4, parent)
    out += field_len(5, name.encode()) + field_varint(6, kind)
    out += field_fixed64(7, start_ns) + field_fixed64(8, end_ns)
    for key, value in attributes.items():
        out += field_len(9, key_value(key, value))
    out += field_len(15, field_varint(3, 1))  # status code OK
    out += field_fixed32(16, 0x101)  # sampled, parent-is-remote known
    return out


def request_bytes() -> bytes:
    """One ResourceSpans with a server span and its client child, as a Flask app would send."""
    trace_id = bytes.fromhex("6b023bdceee6cc3995b47ec3be47ef17")
    server_id = bytes.fromhex("fb4cab8a50de175f")
    client_id = bytes.fromhex("0e9a4c1f7b2d3e5a")
    start = 1752000000_123456789
    resource = b"".join(field_len(1, key_value(k, v)) for k, v in {
        "service.name": "orders",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": "1.33.1",
        "telemetry.auto.version": "0.9.0-aws",
        "cloud.provider": "aws",
    }.items())
    scope = field_len(1, b"opentelemetry.instrumentation.flask") + field_len(2, b"0.54b1")
    spans = span(trace_id, server_id, b"", "GET /orders/<id>", 2, start, start + 42_000_000, {
        "http.method": "GET",
        "http.route": "/orders/<id>",
        "http.status_code": 200,
        "aws.local.service": "orders",
    })
    spans_child = span(trace_id, client_id, server_id, "SELECT orders", 3, start + 5_000_000,
                       start + 30_000_000, {"db.system": "postgresql", "db.name": "orders"})
    scope_spans = field_len(1, scope) + field_len(2, spans) + field_len(2, spans_child)
    resource_spans = (field_len(1, resource) + field_len(2, scope_spans) +
                      field_len(3, b"https://opentelemetry.io/schemas/1.11.0"))
    return field_len(1, resource_spans)


def datagram(prefix: bytes = b"T1S") -> bytes:
    return HEADER + prefix + base64.b64encode(request_bytes())


if __name__ == "__main__":
    here = pathlib.Path(__file__).resolve().parent
    (here / "adot-t1s.udp").write_bytes(datagram())
