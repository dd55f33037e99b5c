"""Hostile answers, values that overflow and a hung dependency, against the real binary:
X-Ray answers carrying control bytes and thousands of unprocessed items are logged escaped and
in a bounded number of lines; -m 17592186044416 exits 1 with a message before binding; SIGTERM
with a hung telemetry endpoint exits within --shutdown-timeout + 1 s."""

import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

# ESC sequences and a CR/LF followed by what would pass for a log line of its own.
FORGED = "bad\x1b[31m\r\n2026-01-01T00:00:00Z [Error] forged line\x1b[0m"
SENT_OR_REJECTED_RE = re.compile(r"Sent batch of 3 segments but had 3 Unprocessed")


def send_segments(daemon, first, count):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for n in range(first, first + count):
            s.sendto(harness.DATAGRAM % (n, n), daemon.send_to())


class HostileDataTest(unittest.TestCase):
    def test_hostile_xray_answers_are_logged_escaped_and_in_bounded_lines(self):
        # The first request gets a 400 whose message forges a line; every answer after it
        # names 9000 unprocessed items with control bytes for a batch of 3.
        with harness.FakeXray("--fail-first", "1", "--fail-status", "400",
                              "--fail-message", FORGED, "--unprocessed-extra", "9000") as fake, \
                harness.Xrayd(fake.endpoint, linger="300ms") as daemon:
            send_segments(daemon, 1, 3)
            daemon.wait_for_line(re.compile(r"not retryable; 3 segments rejected"), timeout=15)
            send_segments(daemon, 4, 3)
            daemon.wait_for_line(SENT_OR_REJECTED_RE, timeout=15)
            rc, summary = daemon.terminate()
            self.assertEqual(rc, 0, daemon.output)
            self.assertEqual(summary["received"], 6, summary)
            lines = daemon.lines
            for line in lines:
                self.assertFalse(any(ord(c) < 0x20 or ord(c) == 0x7f for c in line),
                                 f"raw control byte in log line {line!r}")
                self.assertFalse(line.startswith("2026-01-01T00:00:00Z [Error] forged"), line)
            self.assertTrue(any("bad\\x1b[31m\\x0d\\x0a2026-01-01T00:00:00Z [Error] forged" in l
                                for l in lines), daemon.output)
            unprocessed = [l for l in lines if "Unprocessed segment:" in l]
            self.assertEqual(len(unprocessed), 3, "\n".join(unprocessed[:10]))
            self.assertTrue(any("8997 more unprocessed segments than the batch holds" in l
                                for l in lines), daemon.output)
            self.assertLess(len(lines), 200, f"{len(lines)} log lines")

    def test_buffer_memory_that_overflows_exits_1_naming_flag_value_and_fix_before_binding(self):
        home = harness.tempfile.TemporaryDirectory(prefix="xrayd-home-")
        with home, harness.free_udp_socket() as busy:
            port = busy.getsockname()[1]  # a bind would fail with "address already in use"
            rc, output = harness.run_xrayd_to_exit(
                ["-o", "-n", harness.REGION, "-m", "17592186044416", "-b", f"127.0.0.1:{port}",
                 "-t", "127.0.0.1:0", "--admin-address", "off"],
                harness.daemon_env(home.name))
        self.assertEqual(rc, 1, output)
        self.assertIn("-m/--buffer-memory 17592186044416 is too large: the buffer memory is "
                      "given in MB and must be at most 1099511627776 (e.g. -m 64).", output)
        self.assertNotIn("address already in use", output)

    def test_sigterm_with_a_hung_telemetry_endpoint_exits_within_shutdown_timeout_plus_1s(self):
        with harness.FakeXray("--fail-path", "/TelemetryRecords", "--fail-first", "1000",
                              "--fail-mode", "slow", "--slow-ms", "60000") as fake, \
                harness.Xrayd(fake.endpoint, "--shutdown-timeout", "2s",
                              "--request-timeout", "20s") as daemon:
            send_segments(daemon, 1, 1)  # telemetry records start with the first datagram
            fake.wait_for_documents(1, timeout=15)
            started = time.monotonic()
            rc, summary = daemon.terminate(timeout=30)
            took = time.monotonic() - started
            self.assertEqual(rc, 0, daemon.output)
            self.assertEqual(summary["sent"], 1, summary)
            self.assertLess(took, 3.0, f"exit took {took:.2f} s:\n{daemon.output}")


if __name__ == "__main__":
    harness.main()
