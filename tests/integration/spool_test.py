#!/usr/bin/env python3
"""The disk spool (issue #15) with the real binary, real files and real processes.

Usage: spool_test.py [path/to/xrayd] [unittest options]; or XRAYD_BIN in the environment.

- A 60 s outage of the test endpoint at 3000 segments/s with -m 3: memory cannot hold the
  backlog, the uploader spills it to the spool, and once X-Ray is back the spool is replayed:
  every segment arrives, nothing is dropped, the spool ends empty.
- SIGTERM during an outage: what is held goes to the spool (exit summary spooled=N, held=0);
  a new daemon on the same directory finds it (spool_recovered=N) and delivers all of it.
- kill -9 under load in write-ahead mode, three times in a row, then a clean run: everything
  sent more than a moment before each kill arrives (the bound is what was between the socket
  and the append: the receive buffer, the hand-off queue, one pipeline turn).
- OTLP requests (--otlp-address) held at SIGTERM during an outage go to <spool>/otlp; the next
  daemon finds them and delivers every span once.
- Two daemons on one directory, a missing directory, a read-only one: clear errors, exit 1,
  before the port is bound.
The record format's recovery (torn tail, flipped byte, newer version) and a full disk (a small
tmpfs) are tested on real files by the unit test tests/unit/spool_test.cpp.
"""

import http.client
import os
import re
import signal
import socket
import subprocess
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
from e2e_test import SMALL_SAMPLES, datagram, make_documents  # noqa: E402
from fault_injection_test import SteadySender, unique_documents  # noqa: E402

OTLP_LISTEN_RE = re.compile(r"\[Info\] Listening for OTLP/HTTP on 127\.0\.0\.1:(\d+)")
OUTAGE_SECONDS = 60
OUTAGE_RATE = 3000


def spool_dir(parent):
    path = Path(parent) / "spool"
    path.mkdir(mode=0o700)
    return path


class TimedSender:
    """Sends `docs` at `rate` per second until stopped, remembering when each was sent."""

    def __init__(self, port, docs, rate):
        self.port = port
        self.docs = docs
        self.rate = rate
        self.sent_at = []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        start = time.monotonic()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i, doc in enumerate(self.docs):
                if self.stop_flag.is_set():
                    return
                delay = start + i / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                try:
                    sock.sendto(datagram(doc), ("127.0.0.1", self.port))
                except ConnectionRefusedError:
                    pass  # the daemon is gone: an ICMP from the previous datagram
                self.sent_at.append(time.monotonic())

    def stop(self):
        self.stop_flag.set()
        self.thread.join(10)
        return len(self.sent_at)


class SpoolTest(unittest.TestCase):
    maxDiff = 2000

    def stop_daemon(self, daemon, timeout=60):
        rc, summary = daemon.terminate(timeout=timeout)
        self.assertEqual(rc, 0, f"xrayd exit code {rc}; output:\n{daemon.output_unlocked()}")
        self.assertIsNotNone(summary, f"no single Exit summary line:\n{daemon.output_unlocked()}")
        self.assertIn("spooled", summary, summary)
        self.assertEqual(summary["received"],
                         summary["sent"] + summary["rejected"] + summary["dropped"]
                         + summary["held"] + summary["spooled"], summary)
        self.assertNotIn("Accounting does not balance", daemon.output)
        return summary

    def wait_delivered(self, fake, docs, timeout):
        """Waits until every document of `docs` reached the fake at least once. Polls the
        fake's count first (its full state is tens of MB at the outage test's volume)."""
        deadline = time.monotonic() + timeout
        fake.wait_for_documents(len(docs), timeout)
        want = set(docs)
        while True:
            got, _ = unique_documents(fake)
            missing = len(want - got.keys())
            if missing == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{missing} of {len(docs)} documents never reached fake_xray")
            time.sleep(2)

    def test_a_60s_outage_at_3000_per_s_with_3_MB_loses_nothing(self):
        count = OUTAGE_RATE * (OUTAGE_SECONDS + 8)
        docs = make_documents(count, 0x5901, SMALL_SAMPLES)
        with tempfile.TemporaryDirectory(prefix="xrayd-spool-") as tmp, \
                FakeXray("--outage-after", "3", "--outage-seconds", str(OUTAGE_SECONDS),
                         "--outage-mode", "status", "--fail-status", "503",
                         lifetime=OUTAGE_SECONDS + 240) as fake, \
                Xrayd(fake.endpoint, "-m", "3", "--spool-dir", spool_dir(tmp),
                      "--retry-budget", "20s", "--summary-interval", "10s") as daemon:
            sender = SteadySender(daemon, docs, OUTAGE_RATE)
            sender.join(OUTAGE_SECONDS + 60)
            self.wait_delivered(fake, docs, 180)

            def spool_empty():
                m = daemon.metrics()
                return m["xrayd_spool_segments"] == 0 and m["xrayd_held_segments"] == 0
            harness.wait_until(spool_empty, 60, "the spool to drain", interval=0.5)
            metrics = daemon.metrics()
            summary = self.stop_daemon(daemon)
            got, state = unique_documents(fake)
            self.assertEqual(set(got), set(docs), "documents altered or unexpected")
            self.assertEqual(state["invalid_signatures"], 0)
            self.assertGreater(state["outage_failures"], 0)
            self.assertEqual(summary["kernel_drops"], 0, summary)
            self.assertEqual((summary["received"], summary["rejected"], summary["dropped"],
                              summary["held"], summary["spooled"]),
                             (count, 0, 0, 0, 0), summary)
            # Memory could not hold it: some of it went through the spool.
            self.assertGreater(summary["spool_written"], count // 10, summary)
            self.assertEqual(summary["spool_replayed"], summary["spool_written"], summary)
            self.assertGreater(metrics["xrayd_spool_replayed_total"], 0)
            self.assertIn("xrayd_spool_bytes", metrics)

    def test_sigterm_during_an_outage_spools_what_is_held_and_a_restart_delivers_it(self):
        count = 3000
        docs = make_documents(count, 0x5902, SMALL_SAMPLES)
        with tempfile.TemporaryDirectory(prefix="xrayd-spool-") as tmp:
            spool = spool_dir(tmp)
            with FakeXray("--outage-after", "0", "--outage-seconds", "1000",
                          "--outage-mode", "status", "--fail-status", "503") as down, \
                    Xrayd(down.endpoint, "--spool-dir", spool, "--shutdown-timeout", "1s") as a:
                SteadySender(a, docs, 1000).join(60)
                harness.wait_until(lambda: a.metrics()['xrayd_segments_total{outcome="received"}']
                                   == count, 30, "every segment received")
                first = self.stop_daemon(a)
            self.assertEqual((first["received"], first["sent"], first["dropped"], first["held"],
                              first["spooled"]), (count, 0, 0, 0, count), first)
            self.assertTrue(list(spool.glob("*.xrs")), "no spool file left")
            for f in spool.glob("*.xrs"):
                self.assertEqual(f.stat().st_mode & 0o777, 0o600, f)
            self.assertEqual(spool.stat().st_mode & 0o777, 0o700)

            with FakeXray() as up, Xrayd(up.endpoint, "--spool-dir", spool) as b:
                b.wait_for_line(re.compile(rf"found {count} segments in \d+ files"))
                self.wait_delivered(up, docs, 60)
                harness.wait_until(lambda: b.metrics()["xrayd_spool_files"] == 0, 30,
                                   "the delivered spool files to be deleted", interval=0.2)
                second = self.stop_daemon(b)
                got, _ = unique_documents(up)
            self.assertEqual(set(got), set(docs))
            self.assertEqual(sum(got.values()), count, "sent twice")
            self.assertEqual((second["received"], second["spool_recovered"], second["sent"],
                              second["dropped"], second["spooled"]),
                             (count, count, count, 0, 0), second)
            self.assertEqual(list(spool.glob("*.xrs")), [])

    def test_otlp_requests_held_at_sigterm_are_spooled_and_a_restart_delivers_them(self):
        requests, spans_each = 10, 5
        span_ids = [f"{0x5a00 + n:016x}" for n in range(requests * spans_each)]

        def body(n):
            spans = ",".join(f'{{"traceId":"{0x77 + n:032x}","spanId":"{span_id}","name":"s"}}'
                             for span_id in span_ids[n * spans_each:(n + 1) * spans_each])
            return f'{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{spans}]}}]}}]}}'.encode()

        with tempfile.TemporaryDirectory(prefix="xrayd-spool-") as tmp:
            spool = spool_dir(tmp)
            with FakeXray("--outage-after", "0", "--outage-seconds", "1000",
                          "--outage-mode", "status", "--fail-status", "503",
                          "--fail-path", "/v1/traces") as down, \
                    Xrayd(down.endpoint, "--spool-dir", spool, "--shutdown-timeout", "1s",
                          "--otlp-address", "127.0.0.1:0") as a:
                port = int(a.wait_for_line(OTLP_LISTEN_RE).group(1))
                for n in range(requests):
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    conn.request("POST", "/v1/traces", body(n),
                                 {"Content-Type": "application/json"})
                    self.assertEqual(conn.getresponse().status, 200)
                    conn.close()
                self.assertEqual(a.terminate()[0], 0, a.output_unlocked())
                first = a.otlp_summary()
            self.assertEqual(first, {"received": 50, "sent": 0, "rejected": 0, "dropped": 0,
                                     "held": 0, "spooled": 50}, a.output)
            self.assertTrue(list((spool / "otlp").glob("*.otlp")), "no OTLP spool file left")

            with FakeXray() as up, Xrayd(up.endpoint, "--spool-dir", spool,
                                         "--otlp-address", "127.0.0.1:0") as b:
                b.wait_for_line(re.compile(r"OTLP spool .*: found 50 spans in \d+ requests"))
                up.wait_for_otlp_spans(len(span_ids))
                harness.wait_until(lambda: b.metrics()["xrayd_otlp_spool_files"] == 0, 30,
                                   "the delivered OTLP spool files to be deleted", interval=0.2)
                self.assertEqual(b.terminate()[0], 0, b.output_unlocked())
                second = b.otlp_summary()
                got = [span["span_id"] for span in up.state()["otlp_spans"]]
            self.assertEqual(sorted(got), span_ids, "lost, changed or sent twice")
            self.assertEqual(second, {"received": 50, "sent": 50, "rejected": 0, "dropped": 0,
                                      "held": 0, "spooled": 0}, b.output)
            self.assertEqual(list((spool / "otlp").glob("*.otlp")), [])

    def test_kill_9_under_load_in_write_ahead_mode_loses_only_what_was_in_flight(self):
        rate = 2000
        kills = 3
        # What a kill may lose: datagrams in the receive buffer and the hand-off queue, and one
        # pipeline turn of appends (the receiver holds at most half a linger, 25 ms here; the
        # pipeline appends every turn). Everything sent earlier than this before the kill must
        # arrive; the margin covers a loaded CI machine's scheduling.
        margin = 0.5
        docs = make_documents(rate * 4 * (kills + 1), 0x5903, SMALL_SAMPLES)
        must_arrive = []
        offset = 0
        with tempfile.TemporaryDirectory(prefix="xrayd-spool-") as tmp, FakeXray() as fake:
            spool = spool_dir(tmp)
            for round_ in range(kills):
                with Xrayd(fake.endpoint, "--spool-dir", spool, "--spool-mode", "write-ahead",
                           "--spool-sync", "none") as daemon:
                    chunk = docs[offset:offset + rate * 4]
                    sender = TimedSender(daemon.udp_port, chunk, rate)
                    time.sleep(1.5 + 0.5 * round_)
                    killed_at = time.monotonic()
                    daemon.proc.send_signal(signal.SIGKILL)
                    daemon.wait_exit(10)
                    sent = sender.stop()
                    must_arrive += [d for d, t in zip(chunk[:sent], sender.sent_at)
                                    if t < killed_at - margin]
                    offset += rate * 4
                    self.assertGreater(len(must_arrive), 0)
            # A clean run: finds what the kills left, sends it, with new segments beside it.
            with Xrayd(fake.endpoint, "--spool-dir", spool, "--spool-mode", "write-ahead") as last:
                chunk = docs[offset:offset + rate]
                SteadySender(last, chunk, rate).join(30)
                self.wait_delivered(fake, must_arrive + chunk, 60)
                summary = self.stop_daemon(last)
            self.assertGreater(summary["spool_recovered"], 0, summary)
            self.assertEqual(summary["dropped"], 0, summary)
            self.assertGreaterEqual(summary["spool_corrupt_regions"], 0)
            got, state = unique_documents(fake)
            self.assertEqual(state["invalid_signatures"], 0)
            # At least once: a segment sent just before a kill may arrive twice; none altered.
            self.assertTrue(set(got) <= set(docs), "documents altered or unexpected")

    def test_two_daemons_on_one_spool_directory(self):
        with tempfile.TemporaryDirectory(prefix="xrayd-spool-") as tmp, FakeXray() as fake:
            spool = spool_dir(tmp)
            with Xrayd(fake.endpoint, "--spool-dir", spool) as first:
                rc, out = harness.run_xrayd_to_exit(
                    ["-o", "-n", "us-east-2", "-b", "127.0.0.1:0", "-t", "127.0.0.1:0",
                     "--admin-address", "off", "--endpoint", fake.endpoint, "--spool-dir", spool],
                    harness.daemon_env(tmp))
                self.assertEqual(rc, 1, out)
                self.assertIn(f"spool directory {spool}: it is in use by another xrayd "
                              f"(PID {first.proc.pid})", out)
                self.assertNotIn("Listening on UDP", out)
                self.stop_daemon(first)

    def test_a_missing_or_read_only_spool_directory_is_a_start_up_error(self):
        with tempfile.TemporaryDirectory(prefix="xrayd-spool-") as tmp:
            args = ["-o", "-n", "us-east-2", "-b", "127.0.0.1:0", "-t", "127.0.0.1:0",
                    "--admin-address", "off", "--endpoint", "http://127.0.0.1:9"]
            missing = Path(tmp) / "nope"
            rc, out = harness.run_xrayd_to_exit(args + ["--spool-dir", missing],
                                                harness.daemon_env(tmp))
            self.assertEqual(rc, 1, out)
            self.assertIn(f"spool directory {missing}: it does not exist", out)
            ro = spool_dir(tmp)
            if os.geteuid() == 0:
                # root writes through permissions: make it read-only with a bind mount in a
                # mount namespace of the daemon's own (util-linux's unshare).
                env = harness.daemon_env(tmp)
                proc = subprocess.run(
                    ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                     'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && '
                     'exec "$@"', "sh", str(ro), harness.xrayd_binary(), *map(str, args),
                     "--spool-dir", str(ro)],
                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    timeout=15)
                rc, out = proc.returncode, proc.stdout.decode(errors="replace")
            else:
                ro.chmod(0o500)
                rc, out = harness.run_xrayd_to_exit(args + ["--spool-dir", ro],
                                                    harness.daemon_env(tmp))
            self.assertEqual(rc, 1, out)
            self.assertIn(f"spool directory {ro}: cannot write in it", out)
            self.assertNotIn("Listening on UDP", out)

if __name__ == "__main__":
    harness.main()
