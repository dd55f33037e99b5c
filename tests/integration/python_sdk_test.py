"""The official AWS X-Ray SDK for Python (aws_xray_sdk) drives the real daemon: segments with
subsegments and an exception, streamed subsegments, an in-progress segment and its completion.
Every document the SDK sends arrives unchanged at fake_xray, and fake_xray's SigV4 verifier
accepts every request. The cases run alike on Debian 12's python3-aws-xray-sdk (0.95) and on
2.x.

The SDK is used through its public API; the only addition is an emitter subclass that records
each payload before the SDK's own UDP send (the SDK takes any emitter via configure(emitter=)),
so the test knows the exact bytes to expect. Centralized sampling through the TCP proxy is
node_sdk_test.py's: Debian 12's 0.95 predates the Python SDK's centralized sampler (2.0), and the
official Node.js SDK has one on every machine (npm).
"""

import collections
import json
import os
import sys
import unittest
from unittest import mock

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

try:
    import aws_xray_sdk
    from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter
    from aws_xray_sdk.core.recorder import AWSXRayRecorder
except ImportError as err:  # reported as a failure in setUp
    aws_xray_sdk = None
    IMPORT_ERROR = err

STREAMING_THRESHOLD = 30  # the SDK's default (0.95: _max_subsegments, 2.x: streaming_threshold)


if aws_xray_sdk:
    class RecordingEmitter(UDPEmitter):
        """The SDK's UDP emitter, keeping a copy of every payload it sends."""

        def __init__(self):
            super().__init__()  # the address comes from AWS_XRAY_DAEMON_ADDRESS
            self.sent = []

        def _send_data(self, data):
            self.sent.append(data.encode("utf-8"))
            super()._send_data(data)

        def close(self):
            self._socket.close()


class PythonSdkTest(unittest.TestCase):
    def setUp(self):
        if aws_xray_sdk is None:
            self.fail(f"aws_xray_sdk is not installed ({IMPORT_ERROR}); run tools/install-deps.sh "
                      f"(python3-aws-xray-sdk) or use the python3 that has it ({sys.executable})")
        self.fake = harness.FakeXray()
        self.addCleanup(self.fake.stop)
        self.daemon = harness.Xrayd(self.fake.endpoint, linger="20ms")
        self.addCleanup(self.daemon.close)
        # How an application points the SDK at the daemon (0.95 knows only the one-address form).
        environment = mock.patch.dict(os.environ, {
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{self.daemon.udp_port}"})
        environment.start()
        self.addCleanup(environment.stop)

    def recorder(self):
        recorder = AWSXRayRecorder()
        emitter = RecordingEmitter()
        recorder.configure(sampling=False, emitter=emitter, context_missing="LOG_ERROR",
                           service="xrayd-sdk-test")
        self.addCleanup(emitter.close)
        return recorder, emitter

    def assert_all_arrived_unchanged(self, emitter):
        """Each payload's document (the bytes after the header line) arrived exactly once."""
        want = collections.Counter(p.partition(b"\n")[2] for p in emitter.sent)
        self.fake.wait_for_documents(len(emitter.sent), timeout=30)
        state = self.fake.state()
        got = collections.Counter(d.encode("utf-8") for d in state["documents"])
        self.assertEqual(got, want)
        self.assertEqual(state["invalid_signatures"], 0, state["invalid_reasons"][:3])
        self.assertEqual(state["bad_requests"], 0)
        return state

    def stop_daemon(self):
        rc, summary = self.daemon.terminate()
        self.assertEqual(rc, 0, self.daemon.output_unlocked())
        self.assertEqual(summary["rejected"], 0, summary)
        self.assertEqual(summary["dropped"], 0, summary)
        return summary

    def test_sdk_segments_subsegments_exception_streaming_and_in_progress_arrive_unchanged(self):
        recorder, emitter = self.recorder()

        # A request with two subsegments, one of them failing with an exception.
        segment = recorder.begin_segment("orders-api")
        segment.put_http_meta("method", "GET")
        segment.put_http_meta("url", "https://example.com/orders/42")
        db = recorder.begin_subsegment("orders-db")
        db.put_annotation("table", "orders")
        db.put_metadata("rows", {"count": 3, "unicode": "caf\u00e9 \u2603"})
        recorder.end_subsegment()

        @recorder.capture("payment")
        def charge():
            raise ValueError("card declined")

        with self.assertRaises(ValueError):
            charge()
        segment.put_http_meta("status", 500)
        recorder.end_segment()
        self.assertEqual(len(emitter.sent), 1)
        request = json.loads(emitter.sent[0].partition(b"\n")[2])
        self.assertEqual([s["name"] for s in request["subsegments"]], ["orders-db", "payment"])
        payment = request["subsegments"][1]
        self.assertIs(payment["fault"], True)
        self.assertEqual(payment["cause"]["exceptions"][0]["message"], "card declined")

        # More closed subsegments than the streaming threshold: the SDK streams them as
        # documents of their own while the segment is still open.
        recorder.begin_segment("batch-job")
        for n in range(STREAMING_THRESHOLD + 5):
            recorder.begin_subsegment(f"step-{n}")
            recorder.end_subsegment()
        streamed = len(emitter.sent) - 1
        self.assertGreater(streamed, 0, "the SDK streamed nothing")
        for payload in emitter.sent[1:]:
            self.assertEqual(json.loads(payload.partition(b"\n")[2])["type"], "subsegment")
        recorder.end_segment()

        # An in-progress segment (the emitter's public send_entity, as a long task reports
        # itself), then the same segment completed.
        job = recorder.begin_segment("long-task")
        recorder.emitter.send_entity(job)
        in_progress = json.loads(emitter.sent[-1].partition(b"\n")[2])
        self.assertIs(in_progress["in_progress"], True)
        self.assertNotIn("end_time", in_progress)
        recorder.end_segment()
        completed = json.loads(emitter.sent[-1].partition(b"\n")[2])
        self.assertEqual(completed["id"], in_progress["id"])
        self.assertIn("end_time", completed)

        state = self.assert_all_arrived_unchanged(emitter)
        self.assertEqual(sum(state["batches"]), len(emitter.sent))
        summary = self.stop_daemon()
        self.assertEqual(summary["segments_sent"], len(emitter.sent), summary)


if __name__ == "__main__":
    harness.main()
