#!/usr/bin/env python3
"""Self-test of fake_xray's SigV4 verifier against published and captured signed requests.

It proves the verifier right independently of xrayd: it must accept every request the Go X-Ray
daemon 3.5.0 signed and every case of the AWS SigV4 test suite (header signing), and reject
tampered copies of them. Data dir: XRAYD_TEST_DATA_DIR; fake: XRAYD_FAKE_XRAY (defaults to the
source tree).
"""

import datetime
import glob
import http.client
import json
import os
import shutil
import subprocess
import sys
import time
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean when run by hand
sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

SOURCE_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("XRAYD_TEST_DATA_DIR", SOURCE_ROOT / "tests" / "data"))


fake = harness.load_fake()


class SignedRequest:
    """One header-signed-request.txt: request line, headers (obs-fold kept), body bytes."""

    def __init__(self, raw):
        head, sep, body = raw.partition(b"\n\n")
        self.body = body if sep else b""
        lines = head.decode("latin-1").split("\n")
        request_line = lines[0]
        self.method, _, rest = request_line.partition(" ")
        self.target, _, self.version = rest.rpartition(" ")
        self.headers = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:
                name, value = self.headers[-1]
                self.headers[-1] = (name, value + "\n" + line)  # obsolete line folding
            else:
                name, _, value = line.partition(":")
                self.headers.append((name, value))

    def header_index(self, name):
        for i, (n, _) in enumerate(self.headers):
            if n.lower() == name:
                return i
        raise KeyError(name)

    def signed_headers(self):
        auth = self.headers[self.header_index("authorization")][1]
        return fake.parse_authorization(auth)["SignedHeaders"].split(";")


def load_case(case_dir):
    context = json.loads((case_dir / "context.json").read_text())
    request = SignedRequest((case_dir / "header-signed-request.txt").read_bytes())
    now = datetime.datetime.strptime(context["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    return context, request, now


def verify(context, request, now, *, secret=None, body=None, headers=None, target=None,
           now_offset=0.0):
    creds = context["credentials"]
    return fake.verify_sigv4(
        request.method,
        request.target if target is None else target,
        request.headers if headers is None else headers,
        request.body if body is None else body,
        access_key=creds["access_key_id"],
        secret_key=creds["secret_access_key"] if secret is None else secret,
        region=context["region"],
        service=context["service"],
        now=now + now_offset,
        normalize=context.get("normalize", True))


def xray_cases():
    pattern = str(DATA_DIR / "sigv4" / "xray-go-daemon-3.5.0*" / "*")
    return sorted(Path(p) for p in glob.glob(pattern)
                  if (Path(p) / "header-signed-request.txt").is_file())


def suite_cases(normalize):
    out = []
    for p in sorted(glob.glob(str(DATA_DIR / "sigv4" / "v4" / "*"))):
        case_dir = Path(p)
        if not (case_dir / "header-signed-request.txt").is_file():
            continue
        if json.loads((case_dir / "context.json").read_text()).get("normalize", True) == normalize:
            out.append(case_dir)
    return out


class VerifierAcceptsGoodSignatures(unittest.TestCase):
    def test_case_lists_are_not_empty(self):
        self.assertGreaterEqual(len(xray_cases()), 8)
        self.assertGreaterEqual(len(suite_cases(True)), 25)

    def test_accepts_every_request_signed_by_the_go_xray_daemon(self):
        for case_dir in xray_cases():
            with self.subTest(case=f"{case_dir.parent.name}/{case_dir.name}"):
                context, request, now = load_case(case_dir)
                info = verify(context, request, now)
                expected = (case_dir / "header-canonical-request.txt").read_text()
                self.assertEqual(info["canonical_request"], expected)

    def test_accepts_every_normalized_sigv4_suite_request(self):
        for case_dir in suite_cases(True):
            with self.subTest(case=case_dir.name):
                context, request, now = load_case(case_dir)
                info = verify(context, request, now)
                expected = (case_dir / "header-canonical-request.txt").read_text()
                self.assertEqual(info["canonical_request"], expected)

    def test_accepts_every_unnormalized_sigv4_suite_request(self):
        for case_dir in suite_cases(False):
            with self.subTest(case=case_dir.name):
                context, request, now = load_case(case_dir)
                verify(context, request, now)

    def test_accepts_a_clock_skew_just_under_five_minutes(self):
        context, request, now = load_case(xray_cases()[0])
        verify(context, request, now, now_offset=299)
        verify(context, request, now, now_offset=-299)


class VerifierRejectsTamperedRequests(unittest.TestCase):
    def assert_rejected(self, pattern, **kwargs):
        for case_dir in xray_cases() + suite_cases(True):
            context, request, now = load_case(case_dir)
            with self.subTest(case=f"{case_dir.parent.name}/{case_dir.name}"):
                with self.assertRaisesRegex(fake.SigV4Error, pattern):
                    verify(context, request, now, **{k: f(request) for k, f in kwargs.items()})

    def test_rejects_a_changed_body(self):
        def changed_body(request):
            if not request.body:
                return b"x"
            return request.body[:-1] + bytes([request.body[-1] ^ 0x01])
        # Content-Length is unchanged, so the signature itself must catch it.
        self.assert_rejected("signature mismatch|X-Amz-Content-Sha256", body=changed_body)

    def test_rejects_a_changed_signed_header(self):
        def changed_header(request):
            # Prefer a header no other check looks at, so only the signature can catch it.
            others = [h for h in request.signed_headers() if h not in (
                "host", "x-amz-date", "content-length", "x-amz-content-sha256")]
            victim = others[0] if others else "host"
            i = request.header_index(victim)
            headers = list(request.headers)
            name, value = headers[i]
            headers[i] = (name, value + "0")
            return headers
        self.assert_rejected("signature mismatch", headers=changed_header)

    def test_rejects_a_changed_host(self):
        def changed_host(request):
            i = request.header_index("host")
            headers = list(request.headers)
            headers[i] = (headers[i][0], "evil.example.com")
            return headers
        self.assert_rejected("signature mismatch", headers=changed_host)

    def test_rejects_the_wrong_secret(self):
        self.assert_rejected("signature mismatch",
                             secret=lambda r: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ")

    def test_rejects_a_changed_path(self):
        self.assert_rejected("signature mismatch",
                             target=lambda r: "/TraceSegmentz" if r.target != "/TraceSegmentz"
                             else "/")

    def test_rejects_an_added_unsigned_header_only_if_signed(self):
        # Adding an unsigned header is allowed by SigV4 (proxies add them): must still verify.
        context, request, now = load_case(xray_cases()[0])
        verify(context, request, now, headers=request.headers + [("X-Extra", "1")])
        # A second value for a signed header changes the canonical value: rejected.
        with self.assertRaisesRegex(fake.SigV4Error, "signature mismatch"):
            verify(context, request, now,
                   headers=request.headers + [("Content-Type", "text/plain")])

    def test_rejects_a_stale_or_future_date(self):
        context, request, now = load_case(xray_cases()[0])
        for offset in (301, -301, 3600):
            with self.subTest(offset=offset):
                with self.assertRaisesRegex(fake.SigV4Error, "away from now"):
                    verify(context, request, now, now_offset=offset)

    def test_rejects_the_wrong_access_key_region_or_service(self):
        context, request, now = load_case(xray_cases()[0])
        creds = context["credentials"]
        base = dict(access_key=creds["access_key_id"], secret_key=creds["secret_access_key"],
                    region="us-east-1", service="xray", now=now)
        for change, pattern in ((dict(access_key="AKIDOTHER"), "unknown access key"),
                                (dict(region="eu-west-1"), "scope region"),
                                (dict(service="s3"), "scope service")):
            with self.subTest(change=change):
                with self.assertRaisesRegex(fake.SigV4Error, pattern):
                    fake.verify_sigv4(request.method, request.target, request.headers,
                                      request.body, **{**base, **change})

    def test_rejects_requests_whose_host_is_not_signed(self):
        context, request, now = load_case(xray_cases()[0])
        i = request.header_index("authorization")
        headers = list(request.headers)
        name, value = headers[i]
        headers[i] = (name, value.replace("host;", ""))
        with self.assertRaisesRegex(fake.SigV4Error, "host is not a signed header"):
            verify(context, request, now, headers=headers)

    def test_rejects_a_missing_authorization_header(self):
        context, request, now = load_case(xray_cases()[0])
        headers = [h for h in request.headers if h[0].lower() != "authorization"]
        with self.assertRaisesRegex(fake.SigV4Error, "Authorization"):
            verify(context, request, now, headers=headers)


class FakeServerServesTheApi(unittest.TestCase):
    """The HTTP side of fake_xray, exercised with a real client on loopback."""

    def post(self, fake, path, payload, conn=None, **sign_args):
        body = json.dumps(payload).encode()
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
        conn.request("POST", path, body=body, headers=harness.sign_post(fake.port, path, body,
                                                                        **sign_args))
        resp = conn.getresponse()
        result = resp.status, json.loads(resp.read())
        if own:
            conn.close()
        return result

    def test_records_documents_and_batches_of_signed_requests_over_one_connection(self):
        with harness.FakeXray() as fake:
            conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
            docs = ['{"id":"0000000000000001","x":"gr\u00fc\u00dfe \u2603"}', '{"id":"2"}']
            self.assertEqual(self.post(fake, "/TraceSegments", {"TraceSegmentDocuments": docs},
                                       conn),
                             (200, {"UnprocessedTraceSegments": []}))
            self.assertEqual(self.post(fake, "/TraceSegments",
                                       {"TraceSegmentDocuments": docs[:1]}, conn)[0], 200)
            conn.close()
            state = fake.state()
            self.assertEqual(state["documents"], docs + docs[:1])
            self.assertEqual(state["batches"], [2, 1])
            self.assertEqual(state["max_batch"], 2)
            self.assertEqual(state["requests"], 2)
            self.assertEqual(state["invalid_signatures"], 0)
            self.assertEqual(state["hosts"], [f"127.0.0.1:{fake.port}"] * 2)
            self.assertEqual(fake.stop(), 0)

    def test_answers_403_and_records_nothing_for_a_bad_signature(self):
        with harness.FakeXray() as fake:
            status, body = self.post(fake, "/TraceSegments", {"TraceSegmentDocuments": ["{}"]},
                                     secret="not-the-secret")
            self.assertEqual(status, 403)
            self.assertEqual(body["__type"], "InvalidSignatureException")
            status, _ = self.post(fake, "/TraceSegments", {"TraceSegmentDocuments": ["{}"]},
                                  when=time.time() - 600)
            self.assertEqual(status, 403)
            state = fake.state()
            self.assertEqual((state["invalid_signatures"], state["document_count"]), (2, 0))

    def test_returns_configured_ids_as_unprocessed(self):
        with harness.FakeXray("--unprocessed-id", "00000000000000aa") as fake:
            docs = ['{"id":"00000000000000aa"}', '{"id":"00000000000000bb"}']
            status, body = self.post(fake, "/TraceSegments", {"TraceSegmentDocuments": docs})
            self.assertEqual(status, 200)
            self.assertEqual([(u["Id"], u["ErrorCode"]) for u in body["UnprocessedTraceSegments"]],
                             [("00000000000000aa", "InvalidSegment")])

    def test_fails_the_first_n_requests_with_the_configured_status(self):
        with harness.FakeXray("--fail-first", "2", "--fail-status", "503") as fake:
            statuses = [self.post(fake, "/TraceSegments",
                                  {"TraceSegmentDocuments": [f'{{"n":{i}}}']})[0]
                        for i in range(3)]
            self.assertEqual(statuses, [503, 503, 200])
            state = fake.state()
            self.assertEqual(state["documents"], ['{"n":2}'])
            self.assertEqual(state["injected_failures"], 2)

    def test_serves_https_with_a_certificate_made_at_test_time(self):
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = harness.make_certificate(tmp)
            with harness.FakeXray(tls=(cert, key)) as fake:
                self.assertEqual(fake.scheme, "https")
                self.assertEqual(fake.state()["requests"], 0)

    def test_accepts_a_request_signed_by_curl_aws_sigv4(self):
        # curl is the independent signer (tools/install-deps.sh installs it): no quiet skip.
        self.assertIsNotNone(shutil.which("curl"), "no curl binary: apt-get install curl")
        with harness.FakeXray() as fake:
            body = json.dumps({"TraceSegmentDocuments": ['{"by":"curl"}']})
            out = subprocess.run(
                ["curl", "-sS", "--aws-sigv4", "aws:amz:us-east-1:xray",
                 "--user", f"{harness.ACCESS_KEY}:{harness.SECRET_KEY}",
                 "-H", "Content-Type: application/x-amz-json-1.1", "--data-binary", body,
                 "-w", "\n%{http_code}", f"http://127.0.0.1:{fake.port}/TraceSegments"],
                stdout=subprocess.PIPE, timeout=30, check=True).stdout.decode()
            self.assertTrue(out.endswith("\n200"), out)
            self.assertEqual(fake.state()["documents"], ['{"by":"curl"}'])


if __name__ == "__main__":
    harness.main(needs_binary=False)
