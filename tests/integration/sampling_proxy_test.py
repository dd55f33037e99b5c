"""The sampling proxy and telemetry through the real daemon: SDK-shaped raw HTTP requests on
the TCP port are forwarded to the test X-Ray endpoint, whose own SigV4 verifier (independent of
xrayd's signer) must accept every one; PutTelemetryRecords is signed the same way."""

import json
import os
import re
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TCP_RE = re.compile(r"\[Debug\] Listening on TCP 127\.0\.0\.1:(\d+)")


def http_exchange(port, request: bytes) -> tuple[int, bytes]:
    """Sends raw request bytes on a fresh connection; returns (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, body


def sdk_request(path, body, extra_headers=()):
    """A POST as the X-Ray SDKs send it to the daemon (unsigned)."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1:2000", "User-Agent: aws-xray-sdk/3",
             "Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += list(extra_headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class SamplingProxyTest(unittest.TestCase):
    def test_sdk_sampling_calls_are_forwarded_signed_even_through_a_sidecar(self):
        with harness.FakeXray() as fake, harness.Xrayd(fake.endpoint) as daemon:
            port = int(daemon.wait_for_line(TCP_RE).group(1))
            rules = b'{"NextToken":null}'
            targets = b'{"SamplingStatisticsDocuments":[]}'

            status, body = http_exchange(port, sdk_request("/GetSamplingRules", rules))
            self.assertEqual(status, 200, body)
            self.assertIn("SamplingRuleRecords", json.loads(body))

            # As an Envoy/Istio sidecar forwards it: X-Forwarded-For and hop-by-hop headers.
            status, body = http_exchange(port, sdk_request(
                "/GetSamplingRules", rules,
                ["X-Forwarded-For: 10.1.2.3", "Connection: keep-alive, X-Hop",
                 "X-Hop: dropped", "Keep-Alive: timeout=5", "X-Envoy-Attempt-Count: 1"]))
            self.assertEqual(status, 200, body)

            status, body = http_exchange(port, sdk_request("/SamplingTargets", targets))
            self.assertEqual(status, 200, body)

            # Not a sampling operation: refused locally, never forwarded.
            status, body = http_exchange(port, sdk_request("/TraceSegments", b"{}"))
            self.assertEqual(status, 404, body)

            state = fake.state(documents=False)
            self.assertEqual(state["invalid_signatures"], 0, state)
            self.assertEqual(state["paths"].get("/GetSamplingRules"), 2, state)
            self.assertEqual(state["paths"].get("/SamplingTargets"), 1, state)
            self.assertNotIn("/TraceSegments", state["paths"], state)
            self.assertTrue(all(h == f"127.0.0.1:{fake.port}" for h in state["hosts"]), state)

    def test_the_final_telemetry_record_is_sent_signed_at_shutdown(self):
        with harness.FakeXray() as fake, harness.Xrayd(fake.endpoint) as daemon:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b'{"format":"json","version":1}\nnot json', daemon.send_to())
            daemon.wait_for_line(re.compile(r"Segment not accepted"))
            rc, summary = daemon.terminate()
            self.assertEqual(rc, 0, daemon.output)
            self.assertEqual(summary["rejected_bad_json"], 1, summary)
            state = fake.state(documents=False)
            self.assertGreaterEqual(state["paths"].get("/TelemetryRecords", 0), 1, state)
            self.assertEqual(state["invalid_signatures"], 0, state)


class ReadinessTest(unittest.TestCase):
    def test_readyz_fails_while_uploads_fail_past_the_threshold_and_recovers(self):
        import time
        import urllib.error
        import urllib.request
        # The first 5 uploads fail with 500s: with back-off from 200 ms they span more than the
        # 500 ms threshold (at least 0.2+0.2+0.2+0.2 s), then X-Ray recovers.
        with harness.FakeXray("--fail-first", "5", "--fail-status", "500") as fake, \
                harness.Xrayd(fake.endpoint, "--ready-failure-threshold", "500ms",
                              "--retry-budget", "1m") as daemon:
            admin = int(daemon.wait_for_line(
                re.compile(r"Admin http server on 127\.0\.0\.1:(\d+)")).group(1))

            def readyz():
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz",
                                                timeout=5) as r:
                        return r.status
                except urllib.error.HTTPError as e:
                    return e.code
            # Ready once the receivers run (a moment after "Listening on UDP" is logged).
            harness.wait_until(lambda: readyz() == 200, 10, "/readyz to report ready")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b'{"format":"json","version":1}\n{"name":"svc","id":"00000000000000aa",'
                         b'"trace_id":"1-5f84c7a1-0000000000000000000000aa","start_time":1,'
                         b'"end_time":2}', daemon.send_to())
            harness.wait_until(lambda: readyz() == 503, 20, "/readyz to fail")
            fake.wait_for_documents(1, timeout=30)  # delivered once the failures end
            harness.wait_until(lambda: readyz() == 200, 20, "/readyz to recover")
            rc, summary = daemon.terminate()
            self.assertEqual(rc, 0, daemon.output)
            self.assertEqual(summary["sent"], 1, summary)


if __name__ == "__main__":
    harness.main()
