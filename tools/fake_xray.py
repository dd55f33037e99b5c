#!/usr/bin/env python3
"""fake_xray: a test stand-in for the AWS X-Ray API on 127.0.0.1 that checks every SigV4 signature.

Written from the SigV4 specification with hmac/hashlib only (no code shared with xrayd), so a
signing bug in the daemon cannot hide behind the same bug in the checker.

Usage: fake_xray.py [--port 0] [--tls-cert C --tls-key K] [--max-lifetime 300] ...
When ready it prints one JSON line to stdout: {"port": N, "scheme": "http"|"https"}.

API (signed; a bad signature gets 403 InvalidSignatureException and is counted):
  POST /TraceSegments       records each document, answers {"UnprocessedTraceSegments": [...]}
  POST /TelemetryRecords    {}
  POST /GetSamplingRules    the Default rule every account has (1 req/s, then 5 %)
  POST /SamplingTargets     records the statistics documents, answers one target per rule
                            named in them (FixedRate 1.0, ReservoirQuota 1, 10 s interval)
Control (unsigned, GET):
  /_fake/state[?documents=0]   counters, batch sizes, documents, hosts, user agents
  /_fake/shutdown              stops the server (the process then exits 0)

Fault injection (API requests on --fail-path only; signatures are checked first):
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
Hostile answers (to test what a client logs):
  --fail-message TEXT   the message of injected status failures (control bytes allowed)
  --unprocessed-extra N   each TraceSegments answer also lists N unprocessed items that name
      no document of the request, with ESC and CR/LF in their ErrorCode and Message
"""

import argparse
import datetime
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
            }
            if with_documents:
                out["documents"] = list(self.documents)
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
        data = json.dumps(payload).encode("utf-8")
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
        else:
            self._reply(404, {"__type": "UnknownOperationException", "message": f"POST {path}"})

    def _sampling_targets(self, body):
        state = self.server.state
        try:
            documents = json.loads(body).get("SamplingStatisticsDocuments", [])
            names = sorted({d["RuleName"] for d in documents})
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            with state.lock:
                state.bad_requests += 1
            self._reply(400, {"__type": "SerializationException", "message": str(err)})
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
            with state.lock:
                state.bad_requests += 1
            self._reply(400, {"__type": "SerializationException", "message": str(err)})
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
