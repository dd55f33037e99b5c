#!/usr/bin/env python3
"""fake_xray: a test stand-in for the AWS X-Ray API on 127.0.0.1 that checks every SigV4 signature.

Written from the SigV4 specification with hmac/hashlib only (no code shared with xrayd), so a
signing bug in the daemon cannot hide behind the same bug in the checker. Its OTLP reader is
written from the opentelemetry-proto schema the same way (no protobuf library).

Usage: fake_xray.py [--port 0] [--tls-cert C --tls-key K] [--max-lifetime 300] ...
When ready it prints one JSON line to stdout: {"port": N, "scheme": "http"|"https"}.

API (signed; a bad signature gets 403 InvalidSignatureException and is counted):
  POST /TraceSegments       records each document, answers {"UnprocessedTraceSegments": [...]}
  POST /TelemetryRecords    {}
  POST /GetSamplingRules    the Default rule every account has (1 req/s, then 5 %)
  POST /SamplingTargets     records the statistics documents, answers one target per rule
                            named in them (FixedRate 1.0, ReservoirQuota 1, 10 s interval)
  POST /v1/traces           X-Ray's OTLP/HTTP endpoint: Content-Type application/x-protobuf or
                            application/json, Content-Encoding gzip or none (else 415, and 400
                            for a body it cannot read). Reads every span and records it in one
                            normalized form for both encodings (otlp_spans()); answers an empty
                            ExportTraceServiceResponse in the request's encoding (protobuf: no
                            bytes; JSON: {})
Control (unsigned, GET):
  /_fake/state[?documents=0]   counters, batch sizes, documents, hosts, user agents; for OTLP
      each request's content type, encoding, span count (and span ids) and the spans
      (documents=0 leaves out documents, spans and span ids)
  /_fake/shutdown              stops the server (the process then exits 0)

Fault injection (API requests on --fail-path only, /v1/traces included when named there;
signatures are checked first):
  --fail-first N / --fail-rate P --seed S   which requests fail
  --fail-mode status|reset|close|slow        how: an error answer (--fail-status, with
      --retry-after S for a Retry-After header; 429 carries a ThrottlingException body), a TCP
      reset (SO_LINGER 0, no answer), a close without an answer, or a normal answer after
      --slow-ms (meant to outlast the client's request timeout; the documents are recorded,
      as X-Ray would, so a client that retries sends them twice)
  --outage-after S --outage-seconds S [--outage-mode M]   every API request in that window,
      counted from start-up, fails with mode M (default reset)
  --unprocessed-rate P [--unprocessed-code C]   each document is answered as unprocessed with
      ErrorCode C (default InternalFailure) with probability P, and not recorded
  --otlp-rejected N   each /v1/traces answer reports partial_success with rejected_spans =
      N (at most the request's span count); those spans (the request's first) are not recorded
Hostile answers (to test what a client logs):
  --fail-message TEXT   the message of injected status failures (control bytes allowed)
  --unprocessed-extra N   each TraceSegments answer also lists N unprocessed items that name
      no document of the request, with ESC and CR/LF in their ErrorCode and Message
"""

import argparse
import base64
import datetime
import gzip
import hashlib
import hmac
import http.server
import json
import random
import re
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
import zlib

DEFAULT_ACCESS_KEY = "AKIDEXAMPLE"
DEFAULT_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ALGORITHM = "AWS4-HMAC-SHA256"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
UNRESERVED = "-_.~"  # plus ALPHA / DIGIT, which quote() never encodes

# --------------------------------------------------------------------------------------------
# SigV4 verification
#
# Strings that come off the wire are handled as latin-1 (one char per byte, as http.server
# does), so the canonical request is hashed over exactly the bytes that were received.


class SigV4Error(Exception):
    """A request whose signature does not verify; the message says why."""


def _wire_bytes(text):
    return text.encode("latin-1") if isinstance(text, str) else bytes(text)


def _uri_encode(raw):
    """Percent-encodes every byte outside the unreserved set (upper-case hex)."""
    return urllib.parse.quote(_wire_bytes(raw), safe=UNRESERVED)


def canonical_uri(raw_path, normalize=True):
    """The canonical URI of a request path as received on the wire.

    Non-S3 services encode each path segment once more on top of what was sent (so a "%" on the
    wire becomes "%25"), which is why the wire path is encoded as is, not decoded first.
    normalize=True removes "." and ".." segments and empty segments (RFC 3986 style), keeping a
    trailing slash.
    """
    path = raw_path if raw_path else "/"
    if normalize:
        segments = []
        for seg in path.split("/"):
            if seg in ("", "."):
                continue
            if seg == "..":
                if segments:
                    segments.pop()
                continue
            segments.append(seg)
        trailing = path.endswith("/") or path.endswith("/.") or path.endswith("/..")
        path = "/" + "/".join(segments)
        if trailing and segments:
            path += "/"
    return "/".join(_uri_encode(seg) for seg in path.split("/"))


def canonical_query(raw_query):
    """Decodes each name and value, encodes them canonically and sorts by name, then value."""
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        if part == "":
            continue
        name, _, value = part.partition("=")
        pairs.append((
            _uri_encode(urllib.parse.unquote_to_bytes(_wire_bytes(name))),
            _uri_encode(urllib.parse.unquote_to_bytes(_wire_bytes(value))),
        ))
    pairs.sort()
    return "&".join(f"{n}={v}" for n, v in pairs)


def _canonical_header_value(value):
    # Trim, and fold every run of whitespace (including obsolete line folding) to one space.
    return " ".join(value.split())


def parse_authorization(value):
    """Splits 'AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...'."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SigV4Error(f"unsupported algorithm {algorithm!r}")
    fields = {}
    for item in re.split(r"\s*,\s*", rest.strip()):
        key, sep, val = item.partition("=")
        if not sep:
            raise SigV4Error(f"malformed Authorization component {item!r}")
        if key in fields:
            raise SigV4Error(f"duplicate Authorization component {key!r}")
        fields[key] = val
    for key in ("Credential", "SignedHeaders", "Signature"):
        if key not in fields:
            raise SigV4Error(f"Authorization lacks {key}")
    return fields


def _hmac(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret_key, date, region, service):
    k_date = _hmac(("AWS4" + secret_key).encode("utf-8"), date)
    k_region = _hmac(k_date, region)
    k_service = _hmac(k_region, service)
    return _hmac(k_service, "aws4_request")


def verify_sigv4(method, target, headers, body, *, access_key, secret_key, region, service,
                 now, max_skew_seconds=300, normalize=True):
    """Checks one request's SigV4 header signature. Raises SigV4Error with the reason if bad.

    method: "POST"; target: the request target as received ("/path?query"); headers: a list of
    (name, value) pairs in received order (duplicates allowed); body: the body bytes; now: a
    POSIX timestamp (float) for the freshness check. Returns a dict describing the request
    (access_key, scope, signed_headers, canonical_request) when the signature is good.
    """
    by_name = {}
    for name, value in headers:
        by_name.setdefault(name.strip().lower(), []).append(value)

    auth_values = by_name.get("authorization", [])
    if len(auth_values) != 1:
        raise SigV4Error(f"expected one Authorization header, got {len(auth_values)}")
    auth = parse_authorization(auth_values[0])

    scope = auth["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise SigV4Error(f"malformed credential scope {auth['Credential']!r}")
    key_id, scope_date, scope_region, scope_service, _ = scope
    if key_id != access_key:
        raise SigV4Error(f"unknown access key {key_id!r}")
    if scope_region != region:
        raise SigV4Error(f"scope region {scope_region!r}, expected {region!r}")
    if scope_service != service:
        raise SigV4Error(f"scope service {scope_service!r}, expected {service!r}")

    dates = by_name.get("x-amz-date", [])
    if len(dates) != 1:
        raise SigV4Error(f"expected one X-Amz-Date header, got {len(dates)}")
    amz_date = dates[0].strip()
    try:
        signed_at = datetime.datetime.strptime(amz_date, AMZ_DATE_FORMAT).replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        raise SigV4Error(f"malformed X-Amz-Date {amz_date!r}") from None
    if amz_date[:8] != scope_date:
        raise SigV4Error(f"scope date {scope_date!r} differs from X-Amz-Date {amz_date!r}")
    skew = abs(signed_at.timestamp() - now)
    if skew > max_skew_seconds:
        raise SigV4Error(f"X-Amz-Date {amz_date} is {skew:.0f} s away from now")

    signed = auth["SignedHeaders"].split(";")
    if signed != sorted(set(signed)) or any(h != h.lower() or not h for h in signed):
        raise SigV4Error(f"SignedHeaders not lower-case, sorted and unique: {signed}")
    if "host" not in signed:
        raise SigV4Error("host is not a signed header")
    hosts = by_name.get("host", [])
    if len(hosts) != 1:
        raise SigV4Error(f"expected one Host header, got {len(hosts)}")
    if "x-amz-date" not in signed:
        raise SigV4Error("x-amz-date is not a signed header")
    for name in signed:
        if name not in by_name:
            raise SigV4Error(f"signed header {name!r} is missing from the request")

    body_hash = hashlib.sha256(body).hexdigest()
    for claimed in by_name.get("x-amz-content-sha256", []):
        if claimed.strip() != body_hash:
            raise SigV4Error("X-Amz-Content-Sha256 does not match the body")
    for length in by_name.get("content-length", []):
        if length.strip() != str(len(body)):
            raise SigV4Error(f"Content-Length {length.strip()} but the body has {len(body)} bytes")

    raw_path, _, raw_query = target.partition("?")
    canonical_headers = "".join(
        f"{name}:{','.join(_canonical_header_value(v) for v in by_name[name])}\n"
        for name in signed)
    canonical_request = "\n".join([
        method,
        canonical_uri(raw_path, normalize),
        canonical_query(raw_query),
        canonical_headers,
        ";".join(signed),
        body_hash,
    ])
    credential_scope = "/".join(scope[1:])
    string_to_sign = "\n".join([
        ALGORITHM,
        amz_date,
        credential_scope,
        hashlib.sha256(canonical_request.encode("latin-1")).hexdigest(),
    ])
    key = signing_key(secret_key, scope_date, scope_region, scope_service)
    expected = hmac.new(key, string_to_sign.encode("latin-1"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, auth["Signature"].strip().lower()):
        raise SigV4Error("signature mismatch")
    return {
        "access_key": key_id,
        "scope": credential_scope,
        "signed_headers": signed,
        "canonical_request": canonical_request,
    }


# --------------------------------------------------------------------------------------------
# OTLP trace requests
#
# Read from the opentelemetry-proto schema (collector/trace/v1/trace_service.proto,
# trace/v1/trace.proto, common/v1/common.proto, resource/v1/resource.proto) with no protobuf
# library and no code shared with xrayd, so a span that xrayd loses or changes cannot hide
# behind the same mistake in the checker. One schema drives both encodings: the protobuf wire
# format and OTLP/JSON are read into the same message dicts (snake_case keys, defaults left
# out), and otlp_spans() turns those into one normalized record per span.

class OtlpError(Exception):
    """A body that is not a valid ExportTraceServiceRequest; the message says where."""


WIRE_VARINT, WIRE_I64, WIRE_LEN, WIRE_I32 = 0, 1, 2, 5

# The wire type of each scalar kind. "id" is bytes that OTLP/JSON writes in hex (trace and span
# ids), "bytes" is bytes that it writes in base64 (as proto3's JSON mapping does).
SCALAR_WIRE = {
    "string": WIRE_LEN, "bytes": WIRE_LEN, "id": WIRE_LEN,
    "bool": WIRE_VARINT, "int64": WIRE_VARINT, "uint32": WIRE_VARINT, "enum": WIRE_VARINT,
    "fixed64": WIRE_I64, "double": WIRE_I64, "fixed32": WIRE_I32,
}

# message -> {field number: (name, kind: a SCALAR_WIRE key or a message, repeated)}
OTLP_SCHEMA = {
    "ExportTraceServiceRequest": {1: ("resource_spans", "ResourceSpans", True)},
    "ResourceSpans": {1: ("resource", "Resource", False),
                      2: ("scope_spans", "ScopeSpans", True),
                      3: ("schema_url", "string", False)},
    "Resource": {1: ("attributes", "KeyValue", True),
                 2: ("dropped_attributes_count", "uint32", False)},
    "ScopeSpans": {1: ("scope", "InstrumentationScope", False),
                   2: ("spans", "Span", True),
                   3: ("schema_url", "string", False)},
    "InstrumentationScope": {1: ("name", "string", False), 2: ("version", "string", False),
                             3: ("attributes", "KeyValue", True),
                             4: ("dropped_attributes_count", "uint32", False)},
    "Span": {1: ("trace_id", "id", False), 2: ("span_id", "id", False),
             3: ("trace_state", "string", False), 4: ("parent_span_id", "id", False),
             5: ("name", "string", False), 6: ("kind", "enum", False),
             7: ("start_time_unix_nano", "fixed64", False),
             8: ("end_time_unix_nano", "fixed64", False),
             9: ("attributes", "KeyValue", True),
             10: ("dropped_attributes_count", "uint32", False),
             11: ("events", "Event", True), 12: ("dropped_events_count", "uint32", False),
             13: ("links", "Link", True), 14: ("dropped_links_count", "uint32", False),
             15: ("status", "Status", False), 16: ("flags", "fixed32", False)},
    "Event": {1: ("time_unix_nano", "fixed64", False), 2: ("name", "string", False),
              3: ("attributes", "KeyValue", True),
              4: ("dropped_attributes_count", "uint32", False)},
    "Link": {1: ("trace_id", "id", False), 2: ("span_id", "id", False),
             3: ("trace_state", "string", False), 4: ("attributes", "KeyValue", True),
             5: ("dropped_attributes_count", "uint32", False), 6: ("flags", "fixed32", False)},
    "Status": {2: ("message", "string", False), 3: ("code", "enum", False)},
    "KeyValue": {1: ("key", "string", False), 2: ("value", "AnyValue", False)},
    # A oneof: setting one member clears the others (the last one on the wire wins).
    "AnyValue": {1: ("string_value", "string", False), 2: ("bool_value", "bool", False),
                 3: ("int_value", "int64", False), 4: ("double_value", "double", False),
                 5: ("array_value", "ArrayValue", False),
                 6: ("kvlist_value", "KeyValueList", False), 7: ("bytes_value", "bytes", False)},
    "ArrayValue": {1: ("values", "AnyValue", True)},
    "KeyValueList": {1: ("values", "KeyValue", True)},
}
ONEOF_MESSAGES = ("AnyValue",)

# Enum names OTLP/JSON may carry instead of numbers (proto3 JSON parsers take both).
ENUM_NAMES = {
    ("Span", "kind"): ("SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
                       "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"),
    ("Status", "code"): ("STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"),
}


def _read_varint(data, pos):
    value = shift = 0
    while True:
        if pos >= len(data):
            raise OtlpError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
        if shift >= 70:
            raise OtlpError("varint longer than 10 bytes")


def proto_fields(data):
    """Yields (field number, wire type, raw value) of one protobuf message: an unsigned int for
    VARINT, I64 and I32 (little-endian), the bytes for LEN. Groups are refused (proto3 has
    none)."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise OtlpError("field number 0")
        if wire == WIRE_VARINT:
            value, pos = _read_varint(data, pos)
        elif wire in (WIRE_I64, WIRE_I32):
            size = 8 if wire == WIRE_I64 else 4
            if pos + size > len(data):
                raise OtlpError(f"truncated fixed{size * 8} in field {field}")
            value = int.from_bytes(data[pos:pos + size], "little")
            pos += size
        elif wire == WIRE_LEN:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise OtlpError(f"field {field} claims {length} bytes, {len(data) - pos} left")
            value = bytes(data[pos:pos + length])
            pos += length
        else:
            raise OtlpError(f"wire type {wire} in field {field}")
        yield field, wire, value


def _signed(value, bits):
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def _proto_scalar(kind, raw, where):
    if kind == "string":
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise OtlpError(f"{where}: string is not UTF-8") from None
    if kind in ("bytes", "id"):
        return raw
    if kind == "bool":
        return raw != 0
    if kind == "int64":
        return _signed(raw, 64)
    if kind in ("uint32", "fixed32"):
        return raw & 0xFFFFFFFF
    if kind == "enum":
        return _signed(raw & 0xFFFFFFFF, 32)
    if kind == "double":
        return struct.unpack("<d", raw.to_bytes(8, "little"))[0]
    return raw  # fixed64


def decode_protobuf(message, data, unknown, where=None):
    """Reads one protobuf `message` (an OTLP_SCHEMA name) into a dict; fields it does not know
    are skipped, as proto3 requires, and named in the set `unknown`."""
    schema = OTLP_SCHEMA[message]
    out = {}
    for number, wire, raw in proto_fields(data):
        if number not in schema:
            unknown.add(f"{message}.{number}")
            continue
        name, kind, repeated = schema[number]
        here = f"{where or message}.{name}"
        expected = SCALAR_WIRE.get(kind, WIRE_LEN)
        if wire != expected:
            raise OtlpError(f"{here}: wire type {wire}, expected {expected}")
        if kind in OTLP_SCHEMA:
            value = decode_protobuf(kind, raw, unknown, here)
        else:
            value = _proto_scalar(kind, raw, here)
        if message in ONEOF_MESSAGES:
            out.clear()
        if repeated:
            out.setdefault(name, []).append(value)
        elif kind in OTLP_SCHEMA and name in out:
            out[name] = _merge_messages(out[name], value)
        else:
            out[name] = value
    return out


def _merge_messages(first, second):
    """A singular message field that occurs twice is merged, as protobuf parsers do: scalars
    of the second win, repeated fields are concatenated."""
    merged = dict(first)
    for name, value in second.items():
        if isinstance(value, list):
            merged[name] = merged.get(name, []) + value
        elif isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = _merge_messages(merged[name], value)
        else:
            merged[name] = value
    return merged


def _json_name(name):
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# The values each integer kind holds, [low, high).
INT_RANGES = {"int64": (-1 << 63, 1 << 63), "uint32": (0, 1 << 32), "enum": (-1 << 31, 1 << 31),
              "fixed64": (0, 1 << 64), "fixed32": (0, 1 << 32)}


def _json_int(kind, value, where):
    """An integer of OTLP/JSON: a number with no fraction or a decimal string, in its range."""
    if isinstance(value, bool):
        raise OtlpError(f"{where}: boolean where an integer belongs")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
        value = int(value)
    if not isinstance(value, int):
        raise OtlpError(f"{where}: {value!r} is not an integer")
    low, high = INT_RANGES[kind]
    if not low <= value < high:
        raise OtlpError(f"{where}: {value} is out of the range of {kind}")
    return value


def _json_scalar(message, name, kind, value, where):
    if kind == "string":
        if not isinstance(value, str):
            raise OtlpError(f"{where}: {value!r} is not a string")
        return value
    if kind == "id":
        if not isinstance(value, str) or not re.fullmatch(r"(?:[0-9a-fA-F]{2})*", value):
            raise OtlpError(f"{where}: {value!r} is not a hex id")
        return bytes.fromhex(value)
    if kind == "bytes":
        try:  # proto3 JSON parsers take the standard and the URL-safe alphabet, padded or not
            text = value.replace("-", "+").replace("_", "/")
            return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (AttributeError, ValueError):
            raise OtlpError(f"{where}: {value!r} is not base64") from None
    if kind == "bool":
        if not isinstance(value, bool):
            raise OtlpError(f"{where}: {value!r} is not a boolean")
        return value
    if kind == "double":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        try:  # also "NaN", "Infinity", "-Infinity" and numbers in strings
            return float(value) if isinstance(value, str) else float("")
        except ValueError:
            raise OtlpError(f"{where}: {value!r} is not a number") from None
    if kind == "enum" and isinstance(value, str) and not re.fullmatch(r"-?[0-9]+", value):
        names = ENUM_NAMES.get((message, name), ())
        if value not in names:
            raise OtlpError(f"{where}: unknown enum name {value!r}")
        return names.index(value)
    return _json_int(kind, value, where)


def decode_json(message, obj, unknown, where=None):
    """Reads one OTLP/JSON `message` into the dict decode_protobuf() makes of the same message.
    Keys are the lowerCamelCase names OTLP/JSON prescribes; other keys are ignored, as the OTLP
    specification requires of receivers, and named in the set `unknown`; null is a default."""
    if not isinstance(obj, dict):
        raise OtlpError(f"{where or message}: not a JSON object")
    by_json_name = {_json_name(name): (name, kind, repeated)
                    for name, kind, repeated in OTLP_SCHEMA[message].values()}
    out = {}
    for key, value in obj.items():
        if key not in by_json_name:
            unknown.add(f"{message}.{key}")
            continue
        if value is None:
            continue
        name, kind, repeated = by_json_name[key]
        here = f"{where or message}.{name}"
        items = value if repeated else [value]
        if repeated and not isinstance(value, list):
            raise OtlpError(f"{here}: not a JSON array")
        decoded = [decode_json(kind, item, unknown, here) if kind in OTLP_SCHEMA
                   else _json_scalar(message, name, kind, item, here) for item in items]
        out[name] = decoded if repeated else decoded[0]
    if message in ONEOF_MESSAGES and len(out) > 1:
        raise OtlpError(f"{where or message}: more than one value of a oneof: {sorted(out)}")
    return out


def typed_value(any_value):
    """An AnyValue as one normalized form: {"string": s}, {"bool": b}, {"int": n},
    {"double": x}, {"array": [...]}, {"kvlist": {key: ...}}, {"bytes": hex}, or {} (unset)."""
    if "string_value" in any_value:
        return {"string": any_value["string_value"]}
    if "bool_value" in any_value:
        return {"bool": any_value["bool_value"]}
    if "int_value" in any_value:
        return {"int": any_value["int_value"]}
    if "double_value" in any_value:
        return {"double": any_value["double_value"]}
    if "array_value" in any_value:
        return {"array": [typed_value(v) for v in any_value["array_value"].get("values", [])]}
    if "kvlist_value" in any_value:
        return {"kvlist": attribute_dict(any_value["kvlist_value"].get("values", []))}
    if "bytes_value" in any_value:
        return {"bytes": any_value["bytes_value"].hex()}
    return {}


def attribute_dict(key_values):
    return {kv.get("key", ""): typed_value(kv.get("value", {})) for kv in key_values}


def _attributed(message_type, message, *fields):
    """The fields of a message with attributes, normalized: attributes as a dict of typed
    values, dropped_attributes_count and each of `fields` (ids in hex), with the proto3
    default where absent."""
    kinds = {name: kind for name, kind, _ in OTLP_SCHEMA[message_type].values()}
    out = {"attributes": attribute_dict(message.get("attributes", [])),
           "dropped_attributes_count": message.get("dropped_attributes_count", 0)}
    for name in fields:
        value = message.get(name, "" if SCALAR_WIRE[kinds[name]] == WIRE_LEN else 0)
        out[name] = value.hex() if isinstance(value, bytes) else value
    return out


def otlp_spans(request):
    """Every span of a decoded ExportTraceServiceRequest, in request order, as one plain dict
    each (ids in hex, times and counts as ints, attributes as dicts of typed values) with the
    resource and instrumentation scope it came with: the form in which a span sent as protobuf
    and the same span sent as JSON compare equal."""
    spans = []
    for resource_spans in request.get("resource_spans", []):
        resource = _attributed("Resource", resource_spans.get("resource", {}))
        resource["schema_url"] = resource_spans.get("schema_url", "")
        for scope_spans in resource_spans.get("scope_spans", []):
            scope = _attributed("InstrumentationScope", scope_spans.get("scope", {}),
                                "name", "version")
            scope["schema_url"] = scope_spans.get("schema_url", "")
            for span in scope_spans.get("spans", []):
                record = _attributed(
                    "Span", span, "trace_id", "span_id", "trace_state", "parent_span_id", "name",
                    "kind", "start_time_unix_nano", "end_time_unix_nano",
                    "dropped_events_count", "dropped_links_count", "flags")
                record["events"] = [_attributed("Event", e, "time_unix_nano", "name")
                                    for e in span.get("events", [])]
                record["links"] = [_attributed("Link", link, "trace_id", "span_id",
                                               "trace_state", "flags")
                                   for link in span.get("links", [])]
                status = span.get("status", {})
                record["status"] = {"code": status.get("code", 0),
                                    "message": status.get("message", "")}
                record["resource"] = resource
                record["scope"] = scope
                spans.append(record)
    return spans


def read_otlp_request(body, content_type, unknown):
    """The spans of one /v1/traces body (already gunzipped) as otlp_spans() lists them."""
    if content_type == "application/x-protobuf":
        return otlp_spans(decode_protobuf("ExportTraceServiceRequest", body, unknown))
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise OtlpError(f"not JSON: {err}") from None
    return otlp_spans(decode_json("ExportTraceServiceRequest", document, unknown))


def otlp_response(content_type, rejected, message):
    """An ExportTraceServiceResponse in the request's encoding: empty when all spans were
    accepted, else partial_success {rejected_spans, error_message} (proto3 JSON writes an
    int64 as a string)."""
    if content_type == "application/x-protobuf":
        if not rejected:
            return b""
        text = message.encode("utf-8")
        inner = (bytes([0x08]) + _varint_bytes(rejected) + bytes([0x12])
                 + _varint_bytes(len(text)) + text)
        return bytes([0x0A]) + _varint_bytes(len(inner)) + inner
    if not rejected:
        return b"{}"
    return json.dumps({"partialSuccess": {"rejectedSpans": str(rejected),
                                          "errorMessage": message}}).encode("utf-8")


def _varint_bytes(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


OTLP_CONTENT_TYPES = ("application/x-protobuf", "application/json")


# --------------------------------------------------------------------------------------------
# The server


class FakeState:
    """Everything the fake has seen; guarded by its own lock (handler threads share it)."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.args = args
        self.rng = random.Random(args.seed)
        self.unprocessed_ids = set(args.unprocessed_id)
        self.requests = 0
        self.invalid_signatures = 0
        self.invalid_reasons = []
        self.injected_failures = 0
        self.injected = {}  # mode -> count, outage failures included
        self.outage_failures = 0
        self.started = time.monotonic()
        self.unprocessed_injected = 0
        self.bad_requests = 0
        self.paths = {}
        self.batches = []
        self.documents = []
        self.document_bytes = 0
        self.unprocessed_returned = []
        self.sampling_statistics = []   # SamplingStatisticsDocuments of every /SamplingTargets
        self.signed_headers = {}        # path -> the SignedHeaders lists seen on valid requests
        self.hosts = []
        self.user_agents = []
        self.access_keys = []           # the key id of every signed request, in order
        self.security_tokens = set()    # distinct X-Amz-Security-Token values seen
        self.bad_reasons = []           # why each bad request (400, 415) was refused
        self.otlp_requests = []         # one dict per /v1/traces request read (see snapshot)
        self.otlp_spans = []            # the accepted spans, as otlp_spans() normalizes them
        self.otlp_rejected = 0          # spans answered as rejected (--otlp-rejected)
        self.otlp_unknown_fields = set()  # fields the OTLP reader skipped, "Message.field"
        # Valid key pairs: --access-key/--secret-key plus every --credential KEY:SECRET.
        self.secrets = {args.access_key: args.secret_key}
        for pair in args.credential:
            key, _, secret = pair.partition(":")
            self.secrets[key] = secret

    def snapshot(self, with_documents):
        with self.lock:
            out = {
                "requests": self.requests,
                "invalid_signatures": self.invalid_signatures,
                "invalid_reasons": list(self.invalid_reasons),
                "injected_failures": self.injected_failures,
                "injected": dict(self.injected),
                "outage_failures": self.outage_failures,
                "unprocessed_injected": self.unprocessed_injected,
                "bad_requests": self.bad_requests,
                "paths": dict(self.paths),
                "max_batch": max(self.batches, default=0),
                "batches": list(self.batches),
                "document_count": len(self.documents),
                "document_bytes": self.document_bytes,
                "unprocessed_returned": list(self.unprocessed_returned),
                "sampling_statistics": list(self.sampling_statistics),
                "signed_headers": {p: sorted(s) for p, s in self.signed_headers.items()},
                "hosts": list(self.hosts),
                "user_agents": list(self.user_agents),
                "access_keys": list(self.access_keys),
                "security_tokens": sorted(self.security_tokens),
                "bad_reasons": list(self.bad_reasons),
                "otlp_request_count": len(self.otlp_requests),
                "otlp_requests": [
                    {k: v for k, v in r.items() if with_documents or k != "span_ids"}
                    for r in self.otlp_requests],
                "otlp_span_count": len(self.otlp_spans),
                "otlp_spans_read": sum(r["spans"] for r in self.otlp_requests),
                "otlp_rejected_spans": self.otlp_rejected,
                "otlp_unknown_fields": sorted(self.otlp_unknown_fields),
            }
            if with_documents:
                out["documents"] = list(self.documents)
                out["otlp_spans"] = list(self.otlp_spans)
            return out

    def in_outage(self):
        if self.args.outage_seconds <= 0:
            return False
        elapsed = time.monotonic() - self.started
        return self.args.outage_after <= elapsed < self.args.outage_after + self.args.outage_seconds

    def failure_mode(self, path):
        """Decides (and counts) whether this API request gets an injected failure: the mode
        ("status", "reset", "close" or "slow") or None."""
        if path not in self.args.fail_path:
            return None
        with self.lock:
            if self.in_outage():
                self.outage_failures += 1
                mode = self.args.outage_mode
            else:
                fail = self.injected_failures < self.args.fail_first
                if not fail and self.args.fail_rate > 0:
                    fail = self.rng.random() < self.args.fail_rate
                if not fail:
                    return None
                self.injected_failures += 1
                mode = self.args.fail_mode
            self.injected[mode] = self.injected.get(mode, 0) + 1
            return mode

    def unprocessed_draw(self):
        if self.args.unprocessed_rate <= 0:
            return False
        with self.lock:
            hit = self.rng.random() < self.args.unprocessed_rate
            if hit:
                self.unprocessed_injected += 1
            return hit


FAIL_TYPES = {
    400: "InvalidRequestException",
    403: "AccessDeniedException",
    429: "ThrottlingException",
    500: "InternalFailure",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


FAIL_MODES = ("status", "reset", "close", "slow")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-xray/1"

    def setup(self):
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.settimeout(10)
            self.connection.do_handshake()
            self.connection.settimeout(None)

    def log_message(self, fmt, *args):
        if self.server.state.args.verbose:
            sys.stderr.write("fake_xray: %s\n" % (fmt % args))

    def _reply(self, status, payload, content_type="application/x-amz-json-1.1",
               extra_headers=None):
        self._reply_bytes(status, json.dumps(payload).encode("utf-8"), content_type,
                          extra_headers)

    def _reply_bytes(self, status, data, content_type, extra_headers=None):
        self.send_response(status)
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length", "0") or "0")
        return self.rfile.read(length) if length > 0 else b""

    def do_GET(self):
        path, _, query = self.path.partition("?")
        state = self.server.state
        if path == "/_fake/state":
            params = urllib.parse.parse_qs(query)
            with_docs = params.get("documents", ["1"])[0] not in ("0", "false")
            self._reply(200, state.snapshot(with_docs), "application/json")
        elif path == "/_fake/shutdown":
            self._reply(200, {"stopping": True}, "application/json")
            self.close_connection = True
            threading.Thread(target=self.server.shutdown, daemon=True).start()
        else:
            self._reply(404, {"__type": "UnknownOperationException",
                              "message": f"GET {path}"})

    def do_POST(self):
        state = self.server.state
        args = state.args
        body = self._read_body()
        path = self.path.partition("?")[0]
        with state.lock:
            state.requests += 1
            state.paths[path] = state.paths.get(path, 0) + 1
            state.hosts.append(self.headers.get("Host", ""))
            state.user_agents.append(self.headers.get("User-Agent", ""))
        # Several key pairs may be valid (credentials rotating mid-run): the Authorization
        # header names the key id, which picks the secret to verify with.
        key_id = re.search(r"Credential=([^/,\s]+)/", self.headers.get("Authorization", ""))
        key_id = key_id.group(1) if key_id else ""
        secret = state.secrets.get(key_id, args.secret_key)
        with state.lock:
            state.access_keys.append(key_id)
            token = self.headers.get("X-Amz-Security-Token")
            if token:
                state.security_tokens.add(token)
        try:
            checked = verify_sigv4(
                "POST", self.path, list(self.headers.items()), body,
                access_key=key_id if key_id in state.secrets else args.access_key,
                secret_key=secret, region=args.region, service="xray", now=time.time())
            with state.lock:
                state.signed_headers.setdefault(path, set()).add(
                    ";".join(checked["signed_headers"]))
        except SigV4Error as err:
            with state.lock:
                state.invalid_signatures += 1
                state.invalid_reasons.append(f"{path}: {err}")
            sys.stderr.write(f"fake_xray: invalid signature on {path}: {err}\n")
            self._reply(403, {"__type": "InvalidSignatureException", "message": str(err)})
            return
        if args.delay_ms > 0:
            time.sleep(args.delay_ms / 1000.0)
        mode = state.failure_mode(path)
        if mode == "status":
            status = args.fail_status
            headers = {"Retry-After": str(args.retry_after)} if args.retry_after else {}
            if status == 429:
                headers["x-amzn-ErrorType"] = "ThrottlingException"
            self._reply(status, {"__type": FAIL_TYPES.get(status, "InjectedFailure"),
                                 "message": "Rate exceeded" if status == 429
                                 else args.fail_message}, extra_headers=headers)
            return
        if mode == "reset":
            # SO_LINGER with a zero timeout: close() sends an RST instead of a FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if mode == "close":
            self.close_connection = True
            return
        if mode == "slow":
            time.sleep(args.slow_ms / 1000.0)
        if path == "/TraceSegments":
            self._trace_segments(body)
        elif path == "/TelemetryRecords":
            self._reply(200, {})
        elif path == "/GetSamplingRules":
            self._reply(200, {"SamplingRuleRecords": [DEFAULT_SAMPLING_RULE]})
        elif path == "/SamplingTargets":
            self._sampling_targets(body)
        elif path == "/v1/traces":
            self._otlp_traces(body)
        else:
            self._reply(404, {"__type": "UnknownOperationException", "message": f"POST {path}"})

    def _bad_request(self, status, error_type, message):
        """Counts and answers a request the API refuses for its content (400, 415)."""
        state = self.server.state
        with state.lock:
            state.bad_requests += 1
            state.bad_reasons.append(f"{self.path.partition('?')[0]}: {status} {message}")
        self._reply(status, {"__type": error_type, "message": message})

    def _sampling_targets(self, body):
        state = self.server.state
        try:
            documents = json.loads(body).get("SamplingStatisticsDocuments", [])
            names = sorted({d["RuleName"] for d in documents})
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            self._bad_request(400, "SerializationException", str(err))
            return
        with state.lock:
            state.sampling_statistics.extend(documents)
        now = time.time()
        self._reply(200, {
            "SamplingTargetDocuments": [
                {"RuleName": name, "FixedRate": 1.0, "ReservoirQuota": 1,
                 "ReservoirQuotaTTL": now + 60, "Interval": 10} for name in names],
            "LastRuleModification": 0, "UnprocessedStatistics": []})

    def _trace_segments(self, body):
        state = self.server.state
        try:
            request = json.loads(body)
            documents = request["TraceSegmentDocuments"]
            if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
                raise ValueError("TraceSegmentDocuments is not a list of strings")
        except (ValueError, KeyError, TypeError) as err:
            self._bad_request(400, "SerializationException", str(err))
            return
        unprocessed = []
        accepted = []
        for doc in documents:
            try:
                seg_id = json.loads(doc).get("id")
            except (ValueError, AttributeError):
                accepted.append(doc)
                continue
            if seg_id in state.unprocessed_ids:
                unprocessed.append({"Id": seg_id, "ErrorCode": "InvalidSegment",
                                    "Message": "rejected by fake_xray --unprocessed-id"})
            elif state.unprocessed_draw():
                unprocessed.append({"Id": seg_id, "ErrorCode": state.args.unprocessed_code,
                                    "Message": "injected by fake_xray --unprocessed-rate"})
                continue
            accepted.append(doc)
        unprocessed += [{"Id": f"x{i}\x1b[2J", "ErrorCode": "Bad\x1b[31m",
                         "Message": "m\r\n2026-01-01T00:00:00Z [Error] forged"}
                        for i in range(state.args.unprocessed_extra)]
        with state.lock:
            state.batches.append(len(documents))
            state.documents.extend(accepted)
            state.document_bytes += sum(len(d.encode("utf-8", "surrogatepass"))
                                        for d in accepted)
            state.unprocessed_returned.extend(u["Id"] for u in unprocessed)
        self._reply(200, {"UnprocessedTraceSegments": unprocessed})

    def _otlp_traces(self, body):
        """POST /v1/traces: X-Ray's OTLP endpoint. Reads every span (protobuf or JSON, gzip or
        not), answers as rejected the first --otlp-rejected of them and records the others."""
        state = self.server.state
        content_type = self.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in ("", "identity", "gzip"):
            self._bad_request(415, "UnsupportedMediaTypeException",
                              f"Content-Encoding {encoding!r}")
            return
        if content_type not in OTLP_CONTENT_TYPES:
            self._bad_request(415, "UnsupportedMediaTypeException",
                              f"Content-Type {content_type!r}")
            return
        unknown = set()
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            spans = read_otlp_request(body, content_type, unknown)
        except (OSError, EOFError, zlib.error, OtlpError) as err:
            self._bad_request(400, "InvalidRequestException", f"{content_type}: {err}")
            return
        rejected = min(state.args.otlp_rejected, len(spans))
        with state.lock:
            state.otlp_requests.append({
                "content_type": self.headers.get("Content-Type", ""),
                "content_encoding": self.headers.get("Content-Encoding", ""),
                "spans": len(spans), "rejected": rejected,
                "span_ids": [s["span_id"] for s in spans]})
            state.otlp_spans.extend(spans[rejected:])
            state.otlp_rejected += rejected
            state.otlp_unknown_fields |= unknown
        self._reply_bytes(200, otlp_response(content_type, rejected,
                                             "rejected by fake_xray --otlp-rejected"),
                          content_type)


# As GetSamplingRules returns it for an account with no rules of its own.
DEFAULT_SAMPLING_RULE = {
    "SamplingRule": {
        "RuleName": "Default",
        "RuleARN": "arn:aws:xray:us-east-1:123456789012:sampling-rule/Default",
        "ResourceARN": "*", "Priority": 10000, "FixedRate": 0.05, "ReservoirSize": 1,
        "ServiceName": "*", "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*",
        "Version": 1, "Attributes": {}},
    "CreatedAt": 0.0, "ModifiedAt": 1530558121.0,
}


class FakeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, state, ssl_context):
        self.state = state
        self.ssl_context = ssl_context
        super().__init__(address, Handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ssl_context is not None:
            # The handshake runs in the handler thread (Handler.setup), not in the accept loop.
            sock = self.ssl_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        err = sys.exc_info()[1]
        if isinstance(err, (OSError, ssl.SSLError, socket.timeout, BrokenPipeError, ValueError)):
            return  # clients hanging up or failing TLS are not the fake's problem
        super().handle_error(request, client_address)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Test stand-in for the X-Ray API (SigV4-checking).")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--max-lifetime", type=float, default=300.0,
                   help="seconds after which the server stops by itself")
    p.add_argument("--access-key", default=DEFAULT_ACCESS_KEY)
    p.add_argument("--secret-key", default=DEFAULT_SECRET_KEY)
    p.add_argument("--credential", action="append", default=[], metavar="KEY:SECRET",
                   help="a further valid key pair (repeatable), e.g. rotated credentials")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--unprocessed-id", action="append", default=[],
                   help="segment id answered as unprocessed (InvalidSegment); repeatable")
    p.add_argument("--fail-first", type=int, default=0,
                   help="answer the first N API requests with --fail-status")
    p.add_argument("--fail-rate", type=float, default=0.0,
                   help="afterwards, fail each API request with this probability")
    p.add_argument("--fail-status", type=int, default=500)
    p.add_argument("--fail-path", action="append", default=None,
                   help="API paths fault injection applies to (default /TraceSegments)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--delay-ms", type=float, default=0.0,
                   help="delay before answering each signed API request")
    p.add_argument("--fail-mode", choices=FAIL_MODES, default="status",
                   help="what an injected failure does (see the module doc)")
    p.add_argument("--retry-after", type=int, default=0,
                   help="Retry-After seconds on injected status failures (0: none)")
    p.add_argument("--slow-ms", type=float, default=10000.0,
                   help="delay of --fail-mode slow answers")
    p.add_argument("--outage-after", type=float, default=0.0,
                   help="seconds after start-up when the outage begins")
    p.add_argument("--outage-seconds", type=float, default=0.0,
                   help="length of the outage (0: none)")
    p.add_argument("--outage-mode", choices=FAIL_MODES, default="reset")
    p.add_argument("--unprocessed-rate", type=float, default=0.0,
                   help="probability that each document is answered as unprocessed")
    p.add_argument("--unprocessed-code", default="InternalFailure",
                   help="ErrorCode of --unprocessed-rate items")
    p.add_argument("--fail-message", default="injected failure",
                   help="message of injected status failures")
    p.add_argument("--unprocessed-extra", type=int, default=0,
                   help="unprocessed items naming no document, added to each TraceSegments answer")
    p.add_argument("--otlp-rejected", type=int, default=0, metavar="N",
                   help="each /v1/traces answer reports the first N spans of the request "
                   "(at most all) as rejected (partial_success), and they are not recorded")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = p.parse_args(argv)
    if args.fail_path is None:
        args.fail_path = ["/TraceSegments"]
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    ssl_context = None
    if args.tls_cert:
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_context.load_cert_chain(args.tls_cert, args.tls_key)
    server = FakeServer(("127.0.0.1", args.port), FakeState(args), ssl_context)
    timer = threading.Timer(args.max_lifetime, server.shutdown)
    timer.daemon = True
    timer.start()
    ready = {"port": server.server_address[1], "scheme": "https" if ssl_context else "http"}
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        timer.cancel()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
