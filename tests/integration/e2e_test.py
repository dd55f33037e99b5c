#!/usr/bin/env python3
"""End-to-end tests of the xrayd binary: real UDP in, real signed HTTP(S) out to fake_xray.

Usage: e2e_test.py [path/to/xrayd] [unittest options]; or XRAYD_BIN in the environment.
Each test starts its own fake_xray and its own xrayd, and stops both. Synchronisation is by
polling the fake's state (or the daemon's log) against deadlines, never by fixed sleeps.
"""

import collections
import json
import socket
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

sys.dont_write_bytecode = True  # keep the source tree clean when run by hand
sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from harness import FakeXray, Xrayd  # noqa: E402

NODE_SDK_DIR = harness.DATA_DIR / "segment-docs" / "node-sdk"
MAX_BATCH = 50


# --- the segment corpus ------------------------------------------------------------------------


def load_samples():
    """(header line, [(name, document bytes)]) from the Node SDK captures, as the SDK wrote them."""
    samples = []
    header = None
    for path in sorted(NODE_SDK_DIR.glob("*.json")):
        doc = path.read_bytes()
        udp = path.with_suffix(".udp").read_bytes()
        head, _, body = udp.partition(b"\n")
        assert body == doc, f"{path.name}: .udp body differs from .json"
        assert header in (None, head), "samples use different headers"
        header = head
        samples.append((path.stem, doc))
    assert len(samples) >= 10, "segment samples missing"
    return header, samples


HEADER, SAMPLES = load_samples()
SMALL_SAMPLES = [s for s in SAMPLES if len(s[1]) < 1024]
BIG_SAMPLE = next(s for s in SAMPLES if s[0] == "big-60KB")
REGULAR_SAMPLES = [s for s in SAMPLES if s is not BIG_SAMPLE]


def rewrite_ids(doc, new_id, new_trace_id):
    """Replaces the top-level "id" and "trace_id" values by string replacement, so every other
    byte stays exactly as the SDK wrote it; checks that nothing else changed."""
    original = json.loads(doc)
    out = doc.replace(f'"id":"{original["id"]}"'.encode(), f'"id":"{new_id}"'.encode(), 1)
    out = out.replace(f'"trace_id":"{original["trace_id"]}"'.encode(),
                      f'"trace_id":"{new_trace_id}"'.encode(), 1)
    parsed = json.loads(out)
    assert (parsed["id"], parsed["trace_id"]) == (new_id, new_trace_id), "rewrite missed"
    parsed["id"], parsed["trace_id"] = original["id"], original["trace_id"]
    assert parsed == original, "rewrite changed more than id/trace_id"
    assert len(out) == len(doc)
    return out


def make_documents(count, tag, samples=None, big_every=0):
    """`count` unique documents: samples in rotation (the 60 KB one every `big_every`-th, if
    set), each with an id and trace id unique to (tag, index)."""
    samples = samples or REGULAR_SAMPLES
    docs = []
    for i in range(count):
        if big_every and i % big_every == big_every - 1:
            _, doc = BIG_SAMPLE
        else:
            _, doc = samples[i % len(samples)]
        epoch = json.loads(doc)["trace_id"].split("-")[1]
        docs.append(rewrite_ids(doc, f"{tag:04x}{i:012x}", f"1-{epoch}-{tag:08x}{i:016x}"))
    return docs


def datagram(doc):
    return HEADER + b"\n" + doc


def segment_id(doc):
    return json.loads(doc)["id"]


# --- sending -----------------------------------------------------------------------------------


class DeliveryWindow:
    """Flow control for senders: at most `max_docs` documents, costing at most `max_cost`, sent
    but not yet seen by fake_xray. A datagram's cost is its size plus DATAGRAM_OVERHEAD, a
    generous bound of what the kernel charges a socket for one queued datagram beyond its
    payload. The window keeps what can wait in the daemon's socket receive queue under the
    smallest buffer a stock Debian gives (rmem_default 208 KiB), so a test never loses datagrams
    in the kernel on a busy 2-core machine: any loss it sees is the daemon's."""

    DATAGRAM_OVERHEAD = 2048

    def __init__(self, fake, max_docs=64, max_cost=160 * 1024, timeout=30):
        self.fake = fake
        self.max_docs = max_docs
        self.max_cost = max_cost
        self.timeout = timeout
        self.sent_docs = 0
        self.sent_cost = 0
        self.seen_docs = 0
        self.seen_bytes = 0
        self.cond = threading.Condition()
        self.stopped = False
        self.poller = threading.Thread(target=self._poll, daemon=True)
        self.poller.start()

    def _poll(self):
        while not self.stopped:
            state = self.fake.state(documents=False)
            with self.cond:
                self.seen_docs = state["document_count"]
                self.seen_bytes = state["document_bytes"]
                self.cond.notify_all()
            time.sleep(0.005)

    def acquire(self, nbytes):
        """Blocks until one more document of `nbytes` bytes fits in the window."""
        def fits():
            outstanding = self.sent_docs - self.seen_docs
            seen_cost = self.seen_bytes + self.seen_docs * self.DATAGRAM_OVERHEAD
            cost = nbytes + self.DATAGRAM_OVERHEAD
            return outstanding <= 0 or (outstanding < self.max_docs and
                                        self.sent_cost - seen_cost + cost <= self.max_cost)
        with self.cond:
            if not self.cond.wait_for(fits, timeout=self.timeout):
                raise AssertionError(
                    f"fake_xray stopped receiving: {self.sent_docs} sent, {self.seen_docs} seen")
            self.sent_docs += 1
            self.sent_cost += nbytes + self.DATAGRAM_OVERHEAD

    def close(self):
        self.stopped = True
        self.poller.join(timeout=10)


def send_paced(daemon, fake, docs, threads=4):
    """Sends each document once, spread over `threads` sockets, through a DeliveryWindow."""
    window = DeliveryWindow(fake)
    errors = []

    def sender(part):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for doc in part:
                    window.acquire(len(doc))
                    sock.sendto(datagram(doc), daemon.send_to())
        except BaseException as err:  # reported by the main thread
            errors.append(err)

    workers = [threading.Thread(target=sender, args=(docs[i::threads],))
               for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    window.close()
    if errors:
        raise errors[0]


def send_burst(daemon, datagrams):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for d in datagrams:
            sock.sendto(d, daemon.send_to())


# --- checks ------------------------------------------------------------------------------------


class E2ETestCase(unittest.TestCase):
    maxDiff = 2000

    def assert_delivered_exactly_once(self, fake, docs, daemon):
        """Every document arrived byte-identical exactly once, and nothing else arrived."""
        state = fake.state()
        got = collections.Counter(d.encode("utf-8") for d in state["documents"])
        want = collections.Counter(docs)
        missing = want - got
        extra = got - want
        duplicated = sum(n - 1 for n in got.values() if n > 1)
        if missing or extra:
            summary = daemon.summary() if daemon.proc.poll() is not None else None
            self.fail(f"{sum(missing.values())} of {len(docs)} documents missing, "
                      f"{sum(extra.values())} unexpected/altered, {duplicated} duplicated; "
                      f"first missing id: "
                      f"{segment_id(next(iter(missing))) if missing else None}; "
                      f"daemon summary: {summary}")
        self.assertEqual(duplicated, 0)
        return state

    def assert_requests_clean(self, fake, state):
        self.assertEqual(state["invalid_signatures"], 0, state["invalid_reasons"][:5])
        self.assertEqual(state["bad_requests"], 0)
        self.assertLessEqual(state["max_batch"], MAX_BATCH)
        self.assertEqual(sum(state["batches"]), len(state["documents"]))
        self.assertEqual(set(state["hosts"]), {f"127.0.0.1:{fake.port}"})

    def stop_daemon(self, daemon, *, held=0):
        """SIGTERM; checks exit 0 and the accounting identity; returns the summary."""
        rc, summary = daemon.terminate(timeout=30)
        self.assertEqual(rc, 0, f"xrayd exit code {rc}; output:\n{daemon.output_unlocked()}")
        self.assertIsNotNone(summary, f"no single Exit summary line:\n{daemon.output_unlocked()}")
        for key in ("received", "sent", "rejected", "dropped", "held"):
            self.assertIn(key, summary)
        self.assertEqual(summary["received"],
                         summary["sent"] + summary["rejected"] + summary["dropped"]
                         + summary["held"], summary)
        self.assertEqual(summary["held"], held, summary)
        return summary

    def run_delivery(self, docs, fake_args=(), tls=None, ca_bundle=None):
        """Sends `docs` through a fresh daemon to a fresh fake; checks everything arrived."""
        with FakeXray(*fake_args, tls=tls) as fake, \
                Xrayd(fake.endpoint, ca_bundle=ca_bundle) as daemon:
            send_paced(daemon, fake, docs)
            fake.wait_for_documents(len(docs), timeout=30)
            state = self.assert_delivered_exactly_once(fake, docs, daemon)
            self.assert_requests_clean(fake, state)
            summary = self.stop_daemon(daemon)
            self.assertEqual(fake.state(documents=False)["document_count"], len(docs),
                             "documents arrived after the count was reached")
            self.assertEqual((summary["received"], summary["sent"], summary["rejected"],
                              summary["dropped"]), (len(docs), len(docs), 0, 0), summary)
            return fake, daemon, state, summary


# --- the tests ---------------------------------------------------------------------------------


class DeliveryTest(E2ETestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="xrayd-e2e-")
        cls.cert, cls.key = harness.make_certificate(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_2000_segments_from_4_sockets_arrive_once_byte_identical_and_signed_over_http(self):
        docs = make_documents(2000, tag=1, big_every=100)
        _, daemon, state, summary = self.run_delivery(docs)
        self.assertEqual(summary["segments_sent"], 2000)
        self.assertEqual(summary["batches_sent"], len(state["batches"]))
        self.assertEqual(summary["upload_requests"], state["paths"]["/TraceSegments"])
        # The Go daemon's signed set, content-length included (checked by fake_xray's verifier).
        self.assertEqual(state["signed_headers"]["/TraceSegments"],
                         ["content-length;content-type;host;x-amz-date;x-amzn-xray-timestamp"])
        self.assertEqual(sum(daemon.sent_batch_sizes()), 2000,
                         "'Successfully sent batch of N segments' lines do not add up")

    def test_2000_segments_arrive_over_https_verified_with_a_ca_bundle(self):
        docs = make_documents(2000, tag=2, big_every=100)
        _, daemon, state, _ = self.run_delivery(
            docs, tls=(self.cert, self.key), ca_bundle=self.cert)
        self.assertEqual(sum(daemon.sent_batch_sizes()), 2000)

    def test_a_backlog_is_sent_in_full_batches_of_exactly_50(self):
        # With a 10 s linger only size flushes happen while the window keeps >= 50 waiting.
        docs = make_documents(300, tag=7, samples=SMALL_SAMPLES)
        with FakeXray() as fake, Xrayd(fake.endpoint, linger="10s") as daemon:
            send_paced(daemon, fake, docs)
            fake.wait_for_documents(len(docs))
            state = self.assert_delivered_exactly_once(fake, docs, daemon)
            self.assert_requests_clean(fake, state)
            self.assertEqual(state["batches"], [MAX_BATCH] * 6)
            self.stop_daemon(daemon)

    def test_sigterm_right_after_a_burst_delivers_everything_and_exits_0(self):
        # A long linger: the 30 segments after the first full batch are only sent because
        # shutdown drains them. The burst is small documents only (about 100 KiB queued at most).
        docs = make_documents(80, tag=3, samples=SMALL_SAMPLES)
        with FakeXray() as fake, Xrayd(fake.endpoint, linger="10s") as daemon:
            send_burst(daemon, [datagram(d) for d in docs])
            summary = self.stop_daemon(daemon)
            state = self.assert_delivered_exactly_once(fake, docs, daemon)
            self.assert_requests_clean(fake, state)
            self.assertEqual((summary["received"], summary["sent"], summary["dropped"]),
                             (80, 80, 0), summary)

    def test_endpoint_failing_the_first_requests_with_500_still_gets_everything(self):
        docs = make_documents(120, tag=6)
        fake, _, state, summary = self.run_delivery(docs, fake_args=("--fail-first", "3"))
        self.assertEqual(state["injected_failures"], 3)
        self.assertEqual(summary["backend_http_5xx"], 3, summary)
        self.assertEqual(summary["upload_retries"], 3, summary)
        self.assertEqual(summary["dropped_gave_up"], 0, summary)
        self.assertEqual(summary["upload_requests"], state["paths"]["/TraceSegments"], summary)


class BadInputTest(E2ETestCase):
    def test_malformed_datagrams_are_counted_by_reason_and_the_daemon_keeps_running(self):
        good = make_documents(20, tag=4)
        no_trace_id = json.loads(good[0])
        del no_trace_id["trace_id"]
        bad = {
            # kind: (datagram, how many to send) — distinct counts so a mix-up shows
            "rejected_missing_header": (HEADER + good[1], 1),
            "rejected_bad_header": (b'{"format":"xml","version":1}\n' + good[2], 2),
            "rejected_missing_body": (HEADER + b"\n", 3),
            "rejected_bad_json": (HEADER + b'\n{"trace_id":"1-5759e988-bd862e3fe1be46a994272793"',
                                  4),
            "rejected_invalid_segment": (HEADER + b"\n" + json.dumps(no_trace_id).encode(), 5),
        }
        n_bad = sum(n for _, n in bad.values())
        with FakeXray() as fake, Xrayd(fake.endpoint) as daemon:
            send_burst(daemon, [d for d, n in bad.values() for _ in range(n)])
            send_burst(daemon, [datagram(d) for d in good])
            fake.wait_for_documents(len(good))
            self.assertIsNone(daemon.proc.poll(), "xrayd died on malformed input")
            summary = self.stop_daemon(daemon)
            self.assert_delivered_exactly_once(fake, good, daemon)
            for kind, (_, n) in bad.items():
                self.assertEqual(summary.get(kind), n, f"{kind}: {summary}")
            self.assertEqual((summary["received"], summary["sent"], summary["rejected"],
                              summary["dropped"]), (n_bad + len(good), len(good), n_bad, 0),
                             summary)

    def test_an_adot_t1s_document_and_a_json_segment_arrive_verbatim_in_one_batch(self):
        # ADOT's OtlpUdpSpanExporter datagram (header, "T1S", base64 of an
        # ExportTraceServiceRequest; tests/data/otlp-udp/make_sample.py builds it).
        otlp = (harness.DATA_DIR / "otlp-udp" / "adot-t1s.udp").read_bytes()
        otlp_doc = otlp.partition(b"\n")[2]
        self.assertTrue(otlp_doc.startswith(b"T1S"))
        segment = make_documents(1, tag=8)[0]
        malformed = HEADER + b"\nT1S" + otlp_doc[3:-1]  # one base64 character short
        with FakeXray() as fake, Xrayd(fake.endpoint, linger="2s") as daemon:
            send_burst(daemon, [otlp, malformed, datagram(segment)])
            fake.wait_for_documents(2)
            state = self.assert_delivered_exactly_once(fake, [otlp_doc, segment], daemon)
            self.assert_requests_clean(fake, state)
            self.assertEqual(state["batches"], [2], "not batched together")
            summary = self.stop_daemon(daemon)
            self.assertEqual((summary["received"], summary["sent"], summary["received_otlp_udp"],
                              summary["rejected_bad_otlp_udp"], summary["rejected_bad_json"]),
                             (3, 2, 1, 1, 0), summary)

    def test_segments_xray_returns_unprocessed_are_counted_as_rejected_by_xray(self):
        docs = make_documents(30, tag=5)
        refused = [segment_id(docs[3]), segment_id(docs[17])]
        with FakeXray("--unprocessed-id", refused[0], "--unprocessed-id", refused[1]) as fake, \
                Xrayd(fake.endpoint) as daemon:
            send_paced(daemon, fake, docs)
            fake.wait_for_documents(len(docs))
            state = self.assert_delivered_exactly_once(fake, docs, daemon)
            self.assert_requests_clean(fake, state)
            summary = self.stop_daemon(daemon)
            self.assertEqual(sorted(state["unprocessed_returned"]), sorted(refused))
            self.assertEqual(summary["rejected_by_xray"], 2, summary)
            self.assertEqual((summary["received"], summary["sent"], summary["rejected"]),
                             (30, 28, 2), summary)


class CommandLineErrorTest(E2ETestCase):
    def setUp(self):
        self.home = tempfile.TemporaryDirectory(prefix="xrayd-home-")
        self.env = harness.daemon_env(self.home.name)

    def tearDown(self):
        self.home.cleanup()

    def test_an_unknown_flag_exits_2(self):
        rc, out = harness.run_xrayd_to_exit(["--no-such-flag"], self.env)
        self.assertEqual(rc, 2, out)
        self.assertIn("no-such-flag", out)

    def test_a_udp_port_in_use_exits_1_naming_the_address(self):
        with harness.free_udp_socket() as busy:
            port = busy.getsockname()[1]
            rc, out = harness.run_xrayd_to_exit(
                ["-o", "-n", "us-east-1", "-b", f"127.0.0.1:{port}", "-t", "127.0.0.1:0",
                 "--endpoint", "http://127.0.0.1:9"], self.env)
        self.assertEqual(rc, 1, out)
        self.assertIn(f"listen udp 127.0.0.1:{port}: bind: address already in use", out)

    def test_no_region_in_local_mode_exits_1(self):
        rc, out = harness.run_xrayd_to_exit(
            ["-o", "-b", "127.0.0.1:0", "-t", "127.0.0.1:0", "--endpoint", "http://127.0.0.1:9"],
            self.env)
        self.assertEqual(rc, 1, out)
        self.assertIn("Cannot fetch region variable from config file, environment variables, "
                      "ecs metadata, or ec2 metadata. Use local-mode to use the local config "
                      "region.", out)

    def test_buffer_memory_below_3_mb_exits_1(self):
        rc, out = harness.run_xrayd_to_exit(
            ["-o", "-n", "us-east-1", "-m", "2", "-b", "127.0.0.1:0", "-t", "127.0.0.1:0",
             "--endpoint", "http://127.0.0.1:9"], self.env)
        self.assertEqual(rc, 1, out)
        self.assertIn("Not enough Buffers Memory Allocated. Min Buffers Memory required: 3 MB.",
                      out)


if __name__ == "__main__":
    harness.main()
