"""Drop-in behaviour of the xrayd binary that only shows when it runs: version and usage,
config and flag errors with their exit codes, the log file with SIGHUP reopen and rotation,
and the sampling proxy's port. Each test starts its own daemon and stops it."""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402



def wait_for_file_text(path, text, timeout=15):
    def found():
        try:
            return text in Path(path).read_text(errors="replace")
        except FileNotFoundError:
            return False
    harness.wait_until(found, timeout, f"{text!r} in {path}")


def listening_port(log_path):
    wait_for_file_text(log_path, "Listening on UDP 127.0.0.1:")
    m = harness.LISTEN_RE.search(Path(log_path).read_text())
    return int(m.group(1))


class CompatTestCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="xrayd-compat-")
        self.env = harness.daemon_env(self.dir.name)
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
            if p.stdout is not None:
                p.stdout.close()
        self.dir.cleanup()

    def start_local(self, *args, level="debug", cwd=None):
        """A daemon on the local sink (no AWS needed), logging to files under the temp dir."""
        p = subprocess.Popen([harness.xrayd_binary(), "--local-sink", os.devnull,
                              "-b", "127.0.0.1:0", "--admin-address", "127.0.0.1:0",
                              "--linger", "1ms"] + (["-l", level] if level else []) +
                             [str(a) for a in args],
                             env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             cwd=cwd)
        self.procs.append(p)
        return p

    def send(self, port, first, count):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for n in range(first, first + count):
                s.sendto(harness.DATAGRAM % (n, n), ("127.0.0.1", port))


class VersionAndUsageTest(CompatTestCase):
    def test_version_prints_the_go_daemon_line_naming_xrayd_and_exits_0(self):
        rc, out = harness.run_xrayd_to_exit(["-v"], self.env)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"^AWS X-Ray daemon version: xrayd \d+\.\d+\.\d+\n$")

    def test_help_prints_the_go_usage_then_xrayds_options_and_exits_0(self):
        for flag in ("-h", "--help", "-help"):
            rc, out = harness.run_xrayd_to_exit([flag], self.env)
            self.assertEqual(rc, 0, out)
            self.assertTrue(out.startswith("Usage: X-Ray [options]\n\t-a\t--resource-arn\t"), out)
            self.assertIn("\t-h\t--help\t\tShow this screen\n", out)
            self.assertIn("--local-sink", out)

    def test_a_bad_flag_value_exits_2_with_gos_message(self):
        rc, out = harness.run_xrayd_to_exit(["-m", "lots"], self.env)
        self.assertEqual(rc, 2, out)
        self.assertIn('invalid value "lots" for flag -m', out)


class ConfigErrorTest(CompatTestCase):
    def test_a_config_without_version_and_a_non_version_2_key_exits_1_with_the_go_message(self):
        cfg = Path(self.dir.name) / "cfg.yaml"
        cfg.write_text("Region: us-west-2\nProcessor:\n  Region: us-west-2\n")
        rc, out = harness.run_xrayd_to_exit(["-c", cfg], self.env)
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r"\[Error\] Config Version is missing\. Use X-Ray Daemon Config "
                              r"Migration Script to update the config file\.")

    def test_a_bad_proxy_url_exits_1_before_binding(self):
        with harness.free_udp_socket() as probe:
            port = probe.getsockname()[1]
        rc, out = harness.run_xrayd_to_exit(
            ["-n", "us-east-1", "-o", "-b", f"127.0.0.1:{port}", "-t", "127.0.0.1:0",
             "-p", "proxy.example.com:3128", "--endpoint", "http://127.0.0.1:9"], self.env)
        self.assertEqual(rc, 1, out)
        self.assertIn('Bad proxy URL: "proxy.example.com:3128"', out)
        self.assertNotIn("Listening on UDP", out)

    def test_a_malformed_tcp_address_exits_1_even_with_the_local_sink(self):
        rc, out = harness.run_xrayd_to_exit(
            ["--local-sink", os.devnull, "-b", "127.0.0.1:0", "-t", "127.0.0.1"], self.env)
        self.assertEqual(rc, 1, out)
        self.assertIn('Bad TCP address (-t) "127.0.0.1": address 127.0.0.1: missing port', out)
        self.assertNotIn("Listening on UDP", out)

    def test_the_tcp_proxy_port_in_use_exits_1_unless_proxy_optional(self):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            args = ["-n", "us-east-1", "-o", "-b", "127.0.0.1:0", "-t", f"127.0.0.1:{port}",
                    "--admin-address", "127.0.0.1:0", "--endpoint", "http://127.0.0.1:9"]
            rc, out = harness.run_xrayd_to_exit(args, self.env)
            self.assertEqual(rc, 1, out)
            self.assertIn(f"127.0.0.1:{port}", out)
            self.assertIn("address already in use", out)

            p = subprocess.Popen([harness.xrayd_binary()] + args + ["--proxy-optional"],
                                 env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.procs.append(p)
            out = b""
            deadline = time.monotonic() + 15
            while b"proxy http server failed to listen" not in out:
                self.assertLess(time.monotonic(), deadline, out)
                out += p.stdout.readline()
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(15), 0)


SETUP_GUIDE_CFG = Path(__file__).resolve().parent / "data" / "ec2-setup-guide-cfg.yaml"
VERSION_2_WARNING = re.compile(r"\[Warn\] Config file (\S+) has no Version key; reading it as "
                               r"Version 2, .*Add `Version: 2` to it to silence this warning$",
                               re.M)


class SetupGuideConfigTest(CompatTestCase):
    """The EC2 setup guide's cfg.yaml (no Version key) starts the daemon, with one warning.
    Flags override its addresses and log path, so the test binds port 0 and logs under /tmp."""

    def run_guide_config(self, args, cwd=None):
        log = Path(self.dir.name) / "xray.log"
        p = self.start_local("-f", log, "-t", "127.0.0.1:0", *args, cwd=cwd)
        port = listening_port(log)
        self.send(port, 0, 2)
        wait_for_file_text(log, "Wrote batch of")
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(15), 0)
        text = log.read_text()
        warnings = VERSION_2_WARNING.findall(text)
        self.assertEqual(len(warnings), 1, text)
        self.assertIn("Exit summary: received=2 sent=2 ", text)
        return warnings[0]

    def test_the_setup_guides_file_named_by_dash_c_starts_as_version_2_with_one_warning(self):
        self.assertEqual(self.run_guide_config(["-c", SETUP_GUIDE_CFG]), str(SETUP_GUIDE_CFG))

    def test_the_setup_guides_file_at_a_default_location_starts_as_version_2(self):
        # cfg.yaml in the working directory is the Go daemon's second default location; the
        # first two (/etc/xrayd, /etc/amazon/xray) must not exist for it to be the one read.
        taken = [p for p in ("/etc/xrayd/cfg.yaml", "/etc/amazon/xray/cfg.yaml")
                 if os.path.exists(p)]
        if taken:
            self.skipTest(f"SKIP(environment: {taken[0]} exists on this machine and would be "
                          "read first)")
        cwd = Path(self.dir.name) / "cwd"
        cwd.mkdir()
        (cwd / "cfg.yaml").write_bytes(SETUP_GUIDE_CFG.read_bytes())
        self.assertEqual(self.run_guide_config([], cwd=cwd), "cfg.yaml")


class OperationsTest(CompatTestCase):
    def test_health_check_exits_0_for_a_healthy_daemon_and_1_when_none_answers(self):
        log = Path(self.dir.name) / "xray.log"
        self.start_local("-f", log)
        wait_for_file_text(log, "Admin http server on 127.0.0.1:")
        admin = int(re.search(r"Admin http server on 127\.0\.0\.1:(\d+)",
                              log.read_text()).group(1))
        rc, out = harness.run_xrayd_to_exit(
            ["--health-check", "--admin-address", f"0.0.0.0:{admin}"], self.env)
        self.assertEqual(rc, 0, out)
        self.assertIn(f"http://127.0.0.1:{admin}/healthz: HTTP 200", out)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
            closed.bind(("127.0.0.1", 0))
            unused = closed.getsockname()[1]  # bound, never listening: connection refused
            rc, out = harness.run_xrayd_to_exit(
                ["--health-check", "--admin-address", f"127.0.0.1:{unused}"], self.env)
        self.assertEqual(rc, 1, out)
        self.assertIn(f"http://127.0.0.1:{unused}/healthz", out)
        rc, out = harness.run_xrayd_to_exit(["--health-check", "--admin-address", "off"],
                                            self.env)
        self.assertEqual(rc, 1, out)
        self.assertIn("admin listener is off", out)

    def test_admin_endpoints_report_health_readiness_and_every_counter(self):
        import urllib.error
        import urllib.request
        log = Path(self.dir.name) / "xray.log"
        p = self.start_local("-f", log)
        port = listening_port(log)
        wait_for_file_text(log, "Admin http server on 127.0.0.1:")
        admin = int(re.search(r"Admin http server on 127\.0\.0\.1:(\d+)",
                              log.read_text()).group(1))
        base = f"http://127.0.0.1:{admin}"
        with urllib.request.urlopen(base + "/healthz", timeout=10) as r:
            self.assertEqual(r.status, 200)
        def ready():
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=10) as r:
                    return r.status == 200
            except urllib.error.HTTPError:
                return False
        # Ready once the receivers run, a moment after the admin listener is up.
        harness.wait_until(ready, 10, "/readyz to report ready")
        self.send(port, 0, 3)
        wait_for_file_text(log, "Wrote batch of")

        def metrics():
            with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
                return r.read().decode()
        harness.wait_until(lambda: "xrayd_segments_sent_total 3" in metrics(), 10,
                           "3 sent segments in /metrics")
        text = metrics()
        self.assertIn("xrayd_datagrams_received_total 3", text)
        self.assertIn("# HELP xrayd_rejected_bad_header_total", text)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(15), 0)

    def test_start_up_names_the_receive_backend_and_its_slots_once(self):
        log = Path(self.dir.name) / "xray.log"
        p = self.start_local("-f", log, "--receivers", "1")
        wait_for_file_text(log, "Receiving segments on UDP")
        text = log.read_text()
        backend = re.search(r"\[Info\] (Receive backend: .*)", text).group(1)
        self.assertNotIn("Receive backend: Receive backend", text)
        self.assertRegex(backend, r"^Receive backend: (io_uring|epoll)")
        slots = int(re.search(r"\((\d+) receive slots of 64 KiB per thread, 1 threads\)",
                              text).group(1))
        # io_uring receivers own a 128-slot buffer ring; epoll reads 16 per recvmmsg call.
        self.assertEqual(slots, 128 if backend == "Receive backend: io_uring" else 16)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(15), 0)

    def test_sighup_applies_a_new_log_level_and_refuses_a_restart_only_change(self):
        log = Path(self.dir.name) / "xray.log"
        cfg = Path(self.dir.name) / "cfg.yaml"
        cfg.write_text("Version: 2\nLogging:\n  LogLevel: debug\n")
        p = self.start_local("-f", log, "-c", cfg, level=None)  # -l would beat the file
        listening_port(log)
        cfg.write_text("Version: 2\nLogging:\n  LogLevel: warn\n")
        p.send_signal(signal.SIGHUP)
        wait_for_file_text(log, "Reload: Logging.LogLevel")
        cfg.write_text("Version: 2\nLogging:\n  LogLevel: warn\nTotalBufferSizeMB: 64\n")
        p.send_signal(signal.SIGHUP)
        wait_for_file_text(log, "Keeping the running configuration")
        self.assertIn("needs a restart", log.read_text())
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(15), 0)
        # At warn, the Info exit summary is no longer written.
        self.assertNotIn("Exit summary", log.read_text())


    def test_sighup_applies_a_shorter_linger_to_the_batch_already_waiting(self):
        log = Path(self.dir.name) / "xray.log"
        cfg = Path(self.dir.name) / "cfg.yaml"
        cfg.write_text("Version: 2\nLogging:\n  LogLevel: debug\nXrayd:\n  Linger: 30s\n")
        p = subprocess.Popen([harness.xrayd_binary(), "--local-sink", os.devnull,
                              "-b", "127.0.0.1:0", "--admin-address", "off", "-f", log,
                              "-c", cfg], env=self.env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        self.procs.append(p)
        port = listening_port(log)
        self.send(port, 0, 1)  # waits for company for up to 30 s
        cfg.write_text("Version: 2\nLogging:\n  LogLevel: debug\nXrayd:\n  Linger: 1ms\n")
        p.send_signal(signal.SIGHUP)
        wait_for_file_text(log, "Reload: Xrayd.Linger")
        wait_for_file_text(log, "Wrote batch of 1 segments", timeout=10)  # not after 30 s
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(15), 0)


class LogFileTest(CompatTestCase):
    def test_sighup_reopens_the_log_file_after_it_was_moved(self):
        log = Path(self.dir.name) / "logs" / "xray.log"  # parent directory created
        p = self.start_local("-f", log)
        port = listening_port(log)
        moved = log.with_name("xray.log.moved")
        log.rename(moved)
        p.send_signal(signal.SIGHUP)
        wait_for_file_text(log, "log file reopened")
        self.send(port, 0, 5)
        wait_for_file_text(log, "Wrote batch of")
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(15), 0)
        self.assertIn("Exit summary: received=5 sent=5 ", log.read_text())
        self.assertNotIn("Exit summary", moved.read_text())
        self.assertIn("Initializing AWS X-Ray daemon", moved.read_text())

    def test_the_log_file_rotates_at_the_size_limit_keeping_one_old_file(self):
        log = Path(self.dir.name) / "xray.log"
        p = self.start_local("-f", log, "--log-rotation-bytes", "2048")
        port = listening_port(log)
        for n in range(0, 400, 10):  # one batch line per 10 segments, at least
            self.send(port, n, 10)
            time.sleep(0.005)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(15), 0)
        rolls = sorted(f.name for f in log.parent.iterdir() if f.name.startswith("xray.log."))
        self.assertEqual(len(rolls), 1, rolls)
        self.assertRegex(rolls[0], r"^xray\.log\.\d+$")
        # Past the limit by at most one line (the exit summary, with every counter, is the
        # longest).
        text = log.read_text()
        longest = max(len(line) + 1 for line in text.splitlines())
        self.assertLessEqual(log.stat().st_size, 2048 + longest)
        self.assertIn("Exit summary: received=400 sent=400 ", text)


if __name__ == "__main__":
    harness.main()
