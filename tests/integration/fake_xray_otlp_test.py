#!/usr/bin/env python3
"""Self-test of fake_xray's OTLP reader and its /v1/traces endpoint.

otel_sdk_test.py trusts fake_xray to read every span xrayd forwards, so the reader is proved here
on its own: a protobuf request built field by field with an encoder of this file (every field
of the trace schema, each AnyValue type, defaults), the same request as OTLP/JSON, wire bytes
written out in hex from the protobuf encoding guide, and the bodies it must refuse. Then the
endpoint over real HTTP: both encodings with and without gzip, 415/400/403, --otlp-rejected and
fault injection on /v1/traces. No xrayd is involved. Fake: XRAYD_FAKE_XRAY (defaults to the
source tree).
"""

import base64
import gzip
import http.client
import json
import struct
import sys
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean when run by hand
sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

fake = harness.load_fake()

# --------------------------------------------------------------------------------------------
# A protobuf encoder of this test's own (varint, the four wire types), to build requests by hand.


def varint(value):
    value &= (1 << 64) - 1  # a negative int64 is its two's complement: ten bytes
    out = b""
    while value > 0x7F:
        out += bytes([value & 0x7F | 0x80])
        value >>= 7
    return out + bytes([value])


def vint(field, value):
    return varint(field << 3 | 0) + varint(value)


def fixed64(field, value):
    return varint(field << 3 | 1) + struct.pack("<Q", value)


def double(field, value):
    return varint(field << 3 | 1) + struct.pack("<d", value)


def fixed32(field, value):
    return varint(field << 3 | 5) + struct.pack("<I", value)


def ld(field, *parts):
    """A length-delimited field: strings (UTF-8), bytes and nested messages, concatenated."""
    payload = b"".join(p.encode("utf-8") if isinstance(p, str) else p for p in parts)
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def kv(key, any_value):
    """The fields of a KeyValue whose AnyValue has the fields `any_value`."""
    return ld(1, key) + ld(2, any_value)


TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN = bytes.fromhex("eee19b7ec3c1b174")
PARENT = bytes.fromhex("00f067aa0ba902b7")
OTHER_TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
OTHER_SPAN = bytes.fromhex("b7ad6b7169203331")
MINIMAL = bytes.fromhex("53995c3f42cd8ad8")

FULL_SPAN = b"".join([
    ld(1, TRACE), ld(2, SPAN), ld(3, "vendor=value"), ld(4, PARENT), ld(5, "GET /grüße"),
    vint(6, 2), fixed64(7, 1700000000000000001), fixed64(8, 1700000000500000002),
    ld(9, kv("s", ld(1, "grüße ☃"))),
    ld(9, kv("b", vint(2, 1))),
    ld(9, kv("i", vint(3, -42))),
    ld(9, kv("big", vint(3, 2 ** 62))),
    ld(9, kv("d", double(4, -2.5))),
    ld(9, kv("a", ld(5, ld(1, ld(1, "x")), ld(1, vint(3, 7)), ld(1, vint(2, 0)),
                     ld(1, double(4, 0.25)), ld(1)))),
    ld(9, kv("m", ld(6, ld(1, kv("inner", ld(1, "v")))))),
    ld(9, kv("y", ld(7, b"\x00\xff"))),
    ld(9, kv("unset", b"")),
    vint(10, 1),
    ld(11, fixed64(1, 1700000000250000000), ld(2, "exception"),
       ld(3, kv("exception.message", ld(1, "boom"))), vint(4, 2)),
    ld(11, fixed64(1, 1700000000260000000), ld(2, "plain")),
    vint(12, 3),
    ld(13, ld(1, OTHER_TRACE), ld(2, OTHER_SPAN), ld(3, "a=b"), ld(4, kv("n", vint(3, 1))),
       vint(5, 4), fixed32(6, 0x301)),
    vint(14, 5),
    ld(15, ld(2, "card declined"), vint(3, 2)),
    fixed32(16, 0x101),
])
# Only what a span cannot do without; everything else is left to its proto3 default.
MINIMAL_SPAN = ld(1, TRACE) + ld(2, MINIMAL) + ld(5, "minimal")

PROTOBUF_REQUEST = ld(1,
                      ld(1, ld(1, kv("service.name", ld(1, "svc"))), vint(2, 6)),
                      ld(2, ld(1, ld(1, "scope"), ld(2, "1.0"), ld(3, kv("sa", vint(2, 1))),
                               vint(4, 7)),
                         ld(2, FULL_SPAN), ld(3, "https://scope")),
                      ld(2, ld(2, MINIMAL_SPAN)),
                      ld(3, "https://resource"))

# The same request in OTLP/JSON: lowerCamelCase keys, hex ids, base64 bytes, int64 and fixed64
# as strings or numbers, enums as numbers or names, defaults left out.
JSON_REQUEST = {"resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}],
                 "droppedAttributesCount": 6},
    "scopeSpans": [
        {"scope": {"name": "scope", "version": "1.0",
                   "attributes": [{"key": "sa", "value": {"boolValue": True}}],
                   "droppedAttributesCount": 7},
         "spans": [{
             "traceId": TRACE.hex(), "spanId": SPAN.hex().upper(), "traceState": "vendor=value",
             "parentSpanId": PARENT.hex(), "name": "GET /grüße", "kind": "SPAN_KIND_SERVER",
             "startTimeUnixNano": "1700000000000000001", "endTimeUnixNano": 1700000000500000002,
             "attributes": [
                 {"key": "s", "value": {"stringValue": "grüße ☃"}},
                 {"key": "b", "value": {"boolValue": True}},
                 {"key": "i", "value": {"intValue": "-42"}},
                 {"key": "big", "value": {"intValue": 2 ** 62}},
                 {"key": "d", "value": {"doubleValue": -2.5}},
                 {"key": "a", "value": {"arrayValue": {"values": [
                     {"stringValue": "x"}, {"intValue": 7}, {"boolValue": False},
                     {"doubleValue": "0.25"}, {}]}}},
                 {"key": "m", "value": {"kvlistValue": {"values": [
                     {"key": "inner", "value": {"stringValue": "v"}}]}}},
                 {"key": "y", "value": {"bytesValue": base64.b64encode(b"\x00\xff").decode()}},
                 {"key": "unset", "value": {}}],
             "droppedAttributesCount": 1,
             "events": [
                 {"timeUnixNano": "1700000000250000000", "name": "exception",
                  "attributes": [{"key": "exception.message", "value": {"stringValue": "boom"}}],
                  "droppedAttributesCount": 2},
                 {"timeUnixNano": "1700000000260000000", "name": "plain"}],
             "droppedEventsCount": 3,
             "links": [{"traceId": OTHER_TRACE.hex(), "spanId": OTHER_SPAN.hex(),
                        "traceState": "a=b", "attributes": [{"key": "n", "value": {"intValue": 1}}],
                        "droppedAttributesCount": 4, "flags": 0x301}],
             "droppedLinksCount": 5,
             "status": {"message": "card declined", "code": 2},
             "flags": 0x101}],
         "schemaUrl": "https://scope"},
        {"spans": [{"traceId": TRACE.hex(), "spanId": MINIMAL.hex(), "name": "minimal",
                    "parentSpanId": "", "status": None}]}],
    "schemaUrl": "https://resource"}]}

RESOURCE = {"attributes": {"service.name": {"string": "svc"}}, "dropped_attributes_count": 6,
            "schema_url": "https://resource"}
EXPECTED = [{
    "trace_id": TRACE.hex(), "span_id": SPAN.hex(), "trace_state": "vendor=value",
    "parent_span_id": PARENT.hex(), "name": "GET /grüße", "kind": 2,
    "start_time_unix_nano": 1700000000000000001, "end_time_unix_nano": 1700000000500000002,
    "attributes": {
        "s": {"string": "grüße ☃"}, "b": {"bool": True}, "i": {"int": -42},
        "big": {"int": 2 ** 62}, "d": {"double": -2.5},
        "a": {"array": [{"string": "x"}, {"int": 7}, {"bool": False}, {"double": 0.25}, {}]},
        "m": {"kvlist": {"inner": {"string": "v"}}}, "y": {"bytes": "00ff"}, "unset": {}},
    "dropped_attributes_count": 1,
    "events": [{"time_unix_nano": 1700000000250000000, "name": "exception",
                "attributes": {"exception.message": {"string": "boom"}},
                "dropped_attributes_count": 2},
               {"time_unix_nano": 1700000000260000000, "name": "plain", "attributes": {},
                "dropped_attributes_count": 0}],
    "dropped_events_count": 3,
    "links": [{"trace_id": OTHER_TRACE.hex(), "span_id": OTHER_SPAN.hex(), "trace_state": "a=b",
               "attributes": {"n": {"int": 1}}, "dropped_attributes_count": 4, "flags": 0x301}],
    "dropped_links_count": 5,
    "status": {"code": 2, "message": "card declined"},
    "flags": 0x101,
    "resource": RESOURCE,
    "scope": {"name": "scope", "version": "1.0", "attributes": {"sa": {"bool": True}},
              "dropped_attributes_count": 7, "schema_url": "https://scope"},
}, {
    "trace_id": TRACE.hex(), "span_id": MINIMAL.hex(), "trace_state": "", "parent_span_id": "",
    "name": "minimal", "kind": 0, "start_time_unix_nano": 0, "end_time_unix_nano": 0,
    "attributes": {}, "dropped_attributes_count": 0, "events": [], "dropped_events_count": 0,
    "links": [], "dropped_links_count": 0, "status": {"code": 0, "message": ""}, "flags": 0,
    "resource": RESOURCE,
    "scope": {"name": "", "version": "", "attributes": {}, "dropped_attributes_count": 0,
              "schema_url": ""},
}]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def read(body, content_type=PROTOBUF):
    unknown = set()
    return fake.read_otlp_request(body, content_type, unknown), unknown


def any_value(fields):
    """The normalized form of one AnyValue, read through a one-attribute span."""
    spans, _ = read(ld(1, ld(2, ld(2, ld(9, kv("k", fields))))))
    return spans[0]["attributes"]["k"]


class ReaderReadsBothEncodings(unittest.TestCase):
    maxDiff = None

    def test_reads_every_field_of_a_protobuf_request_built_by_hand(self):
        spans, unknown = read(PROTOBUF_REQUEST)
        self.assertEqual(spans, EXPECTED)
        self.assertEqual(unknown, set())

    def test_reads_the_same_request_in_otlp_json_to_the_same_spans(self):
        spans, unknown = read(json.dumps(JSON_REQUEST).encode(), JSON)
        self.assertEqual(spans, EXPECTED)
        self.assertEqual(unknown, set())

    def test_reads_wire_bytes_as_the_protobuf_encoding_guide_writes_them(self):
        # The guide's own example: field 1, varint 150.
        self.assertEqual(list(fake.proto_fields(bytes.fromhex("089601"))), [(1, 0, 150)])
        # int64 -1 is ten bytes; double 1.5 is 0x3FF8000000000000 little-endian; a string.
        self.assertEqual(any_value(bytes.fromhex("18ffffffffffffffffff01")), {"int": -1})
        self.assertEqual(any_value(bytes.fromhex("21000000000000f83f")), {"double": 1.5})
        self.assertEqual(any_value(bytes.fromhex("0a03616263")), {"string": "abc"})
        # A span's start time, fixed64 little-endian: 0x0102030405060708.
        spans, _ = read(bytes.fromhex("0a0d120b1209" "39" "0807060504030201"))
        self.assertEqual(spans[0]["start_time_unix_nano"], 0x0102030405060708)

    def test_the_last_value_of_a_oneof_wins_in_protobuf_as_parsers_do(self):
        self.assertEqual(any_value(ld(1, "first") + vint(3, 5)), {"int": 5})

    def test_skips_unknown_fields_and_names_them(self):
        span = MINIMAL_SPAN + vint(99, 1) + ld(17, "future")
        spans, unknown = read(ld(1, ld(2, ld(2, span)), vint(9, 1)))
        self.assertEqual(spans[0]["name"], "minimal")
        self.assertEqual(unknown, {"Span.99", "Span.17", "ResourceSpans.9"})
        body = {"resourceSpans": [{"scopeSpans": [{"spans": [
            {"spanId": MINIMAL.hex(), "span_id": "ignored", "future": 1}]}]}]}
        spans, unknown = read(json.dumps(body).encode(), JSON)
        self.assertEqual(spans[0]["span_id"], MINIMAL.hex())
        self.assertEqual(unknown, {"Span.span_id", "Span.future"})

    def test_refuses_bodies_that_are_not_a_request(self):
        refused = {
            "truncated varint": ld(1, ld(2))[:-1] + b"\x80",
            "length past the end": bytes.fromhex("0a05"),
            "wrong wire type of a known field": ld(1, ld(2, ld(2, vint(1, 5)))),
            "string not UTF-8": ld(1, ld(2, ld(2, ld(5, b"\xff\xfe")))),
            "group wire type": bytes.fromhex("0b"),
            "field number 0": bytes.fromhex("0001"),
        }
        for what, body in refused.items():
            with self.subTest(what):
                with self.assertRaises(fake.OtlpError):
                    read(body)
        refused_json = {
            "not JSON": "{",
            "not an object": "[]",
            "id not hex": {"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "xyz"}]}]}]},
            "int64 out of range": {"resourceSpans": [{"resource": {"attributes": [
                {"key": "k", "value": {"intValue": 2 ** 63}}]}}]},
            "two values of a oneof": {"resourceSpans": [{"resource": {"attributes": [
                {"key": "k", "value": {"intValue": 1, "stringValue": "1"}}]}}]},
            "object where an array belongs": {"resourceSpans": {}},
            "unknown enum name": {"resourceSpans": [{"scopeSpans": [{"spans": [
                {"kind": "SPAN_KIND_SIDEWAYS"}]}]}]},
        }
        for what, body in refused_json.items():
            with self.subTest(what):
                with self.assertRaises(fake.OtlpError):
                    read((body if isinstance(body, str) else json.dumps(body)).encode(), JSON)

    def test_answers_partial_success_in_the_request_encoding(self):
        self.assertEqual(fake.otlp_response(PROTOBUF, 0, "m"), b"")
        self.assertEqual(fake.otlp_response(JSON, 0, "m"), b"{}")
        answer = fake.otlp_response(PROTOBUF, 300, "why")
        (field, wire, inner), = fake.proto_fields(answer)
        self.assertEqual((field, wire), (1, 2))
        self.assertEqual(list(fake.proto_fields(inner)), [(1, 0, 300), (2, 2, b"why")])
        self.assertEqual(json.loads(fake.otlp_response(JSON, 300, "why")),
                         {"partialSuccess": {"rejectedSpans": "300", "errorMessage": "why"}})


def post_traces(fake_xray, body, content_type, encoding=None, **sign_args):
    """One signed POST /v1/traces on a connection of its own: (status, content type, body)."""
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    conn = http.client.HTTPConnection("127.0.0.1", fake_xray.port, timeout=10)
    try:
        conn.request("POST", "/v1/traces", body=body,
                     headers=harness.sign_post(fake_xray.port, "/v1/traces", body, headers,
                                               **sign_args))
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read()
    finally:
        conn.close()


JSON_BODY = json.dumps(JSON_REQUEST).encode()


class FakeServerServesOtlp(unittest.TestCase):
    """/v1/traces exercised with a real client on loopback."""
    maxDiff = None

    def test_records_every_span_of_both_encodings_and_answers_in_kind(self):
        with harness.FakeXray() as fake_xray:
            self.assertEqual(post_traces(fake_xray, gzip.compress(PROTOBUF_REQUEST), PROTOBUF,
                                         "gzip"), (200, PROTOBUF, b""))
            self.assertEqual(post_traces(fake_xray, JSON_BODY, JSON + "; charset=utf-8"),
                             (200, JSON, b"{}"))
            self.assertEqual(post_traces(fake_xray, gzip.compress(JSON_BODY), JSON, "gzip"),
                             (200, JSON, b"{}"))
            state = fake_xray.state()
            self.assertEqual(state["otlp_spans"], EXPECTED * 3)
            self.assertEqual(
                [(r["content_type"], r["content_encoding"], r["spans"], r["rejected"])
                 for r in state["otlp_requests"]],
                [(PROTOBUF, "gzip", 2, 0), (JSON + "; charset=utf-8", "", 2, 0),
                 (JSON, "gzip", 2, 0)])
            self.assertEqual(state["otlp_requests"][0]["span_ids"], [SPAN.hex(), MINIMAL.hex()])
            self.assertEqual((state["otlp_request_count"], state["otlp_span_count"],
                              state["otlp_spans_read"]), (3, 6, 6))
            self.assertEqual(state["signed_headers"]["/v1/traces"],
                             ["content-encoding;content-type;host;x-amz-date",
                              "content-type;host;x-amz-date"])
            light = fake_xray.state(documents=False)
            self.assertNotIn("otlp_spans", light)
            self.assertNotIn("span_ids", light["otlp_requests"][0])

    def test_refuses_other_media_types_bad_bodies_and_bad_signatures(self):
        with harness.FakeXray() as fake_xray:
            cases = [
                ((JSON_BODY, "text/plain"), 415),
                ((JSON_BODY, "application/x-protobuf+json"), 415),
                ((gzip.compress(JSON_BODY), JSON, "br"), 415),
                ((JSON_BODY, JSON, "gzip"), 400),                 # not gzip at all
                ((PROTOBUF_REQUEST[:-3], PROTOBUF), 400),        # truncated
                ((JSON_BODY[:-1], JSON), 400),
            ]
            for args, status in cases:
                with self.subTest(args=args[1:]):
                    self.assertEqual(post_traces(fake_xray, *args)[0], status)
            self.assertEqual(post_traces(fake_xray, JSON_BODY, JSON, secret="wrong")[0], 403)
            state = fake_xray.state()
            self.assertEqual((state["bad_requests"], state["invalid_signatures"],
                              state["otlp_request_count"], state["otlp_spans"]),
                             (len(cases), 1, 0, []))
            self.assertIn("/v1/traces: 415 Content-Type 'text/plain'", state["bad_reasons"])

    def test_answers_the_first_n_spans_as_rejected_and_records_the_others(self):
        with harness.FakeXray("--otlp-rejected", "1") as fake_xray:
            status, _, answer = post_traces(fake_xray, PROTOBUF_REQUEST, PROTOBUF)
            self.assertEqual(status, 200)
            (_, _, partial), = fake.proto_fields(answer)
            self.assertEqual(list(fake.proto_fields(partial))[0], (1, 0, 1))
            status, _, answer = post_traces(fake_xray, JSON_BODY, JSON)
            self.assertEqual(json.loads(answer)["partialSuccess"]["rejectedSpans"], "1")
            state = fake_xray.state()
            self.assertEqual(state["otlp_spans"], EXPECTED[1:] * 2)
            self.assertEqual((state["otlp_rejected_spans"], state["otlp_spans_read"]), (2, 4))

    def test_fault_injection_applies_to_v1_traces_when_it_is_a_fail_path(self):
        with harness.FakeXray("--fail-path", "/v1/traces", "--fail-first", "1",
                              "--fail-status", "503") as fake_xray:
            statuses = [post_traces(fake_xray, PROTOBUF_REQUEST, PROTOBUF)[0] for _ in range(2)]
            self.assertEqual(statuses, [503, 200])
            state = fake_xray.state()
            self.assertEqual((state["injected_failures"], state["otlp_span_count"]), (1, 2))


if __name__ == "__main__":
    harness.main(needs_binary=False)
