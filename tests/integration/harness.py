"""Harness for the integration tests: runs fake_xray and xrayd as real processes on loopback.

Paths come from the environment meson sets (XRAYD_BIN, XRAYD_TEST_DATA_DIR, XRAYD_FAKE_XRAY),
with source-tree defaults so a test file can also be run by hand.
"""

import hashlib
import hmac
import http.client
import importlib.util
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("XRAYD_TEST_DATA_DIR", SOURCE_ROOT / "tests" / "data"))
FAKE_PATH = Path(os.environ.get("XRAYD_FAKE_XRAY", SOURCE_ROOT / "tools" / "fake_xray.py"))

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"

# One small valid segment, "% (segment_number, trace_number)" makes its id and trace id.
DATAGRAM = (b'{"format":"json","version":1}\n'
            b'{"name":"svc","id":"%016x","trace_id":"1-5f84c7a1-%024x",'
            b'"start_time":1.0,"end_time":2.0}')


def load_fake():
    """fake_xray.py (FAKE_PATH) as a module, for tests of its parts."""
    spec = importlib.util.spec_from_file_location("fake_xray", FAKE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wait_until(predicate, timeout, what, interval=0.01):
    """Polls predicate() until it returns a truthy value (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def _read_line(stream, deadline, proc, what):
    """Reads one line from a subprocess pipe without blocking past `deadline`."""
    buf = b""
    fd = stream.fileno()
    while not buf.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for {what}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 1)
            if not chunk:
                raise AssertionError(f"{what}: process exited early (rc={proc.poll()})")
            buf += chunk
    return buf.decode()


class FakeXray:
    """One fake_xray process. Use as a context manager; stop() shuts it down cleanly."""

    def __init__(self, *args, tls=None, lifetime=120):
        cmd = [sys.executable, str(FAKE_PATH), "--port", "0", "--max-lifetime", str(lifetime)]
        self.cafile = None
        if tls is not None:
            cert, key = tls
            cmd += ["--tls-cert", str(cert), "--tls-key", str(key)]
            self.cafile = str(cert)
        cmd += [str(a) for a in args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._stderr = []
        self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_thread.start()
        try:
            ready = json.loads(_read_line(self.proc.stdout, time.monotonic() + 15, self.proc,
                                          "fake_xray's ready line"))
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise
        self.port = ready["port"]
        self.scheme = ready["scheme"]
        self.endpoint = f"{self.scheme}://127.0.0.1:{self.port}"
        self._conn = None
        self._conn_lock = threading.Lock()

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self._stderr.append(line.decode(errors="replace"))

    @property
    def stderr(self):
        return "".join(self._stderr)

    def _connection(self):
        if self._conn is None:
            if self.scheme == "https":
                ctx = ssl.create_default_context(cafile=self.cafile)
                self._conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx,
                                                         timeout=10)
            else:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        return self._conn

    def get(self, path):
        """GET on a control endpoint over one kept-alive connection (reconnects once)."""
        with self._conn_lock:
            return self._get_locked(path)

    def _get_locked(self, path):
        for attempt in (0, 1):
            try:
                conn = self._connection()
                conn.request("GET", path)
                resp = conn.getresponse()
                return resp.status, json.loads(resp.read())
            except (OSError, http.client.HTTPException):
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def state(self, documents=True):
        status, body = self.get("/_fake/state" + ("" if documents else "?documents=0"))
        assert status == 200, status
        return body

    def wait_for_documents(self, count, timeout=30):
        """Waits until at least `count` documents were accepted; returns the light state."""
        return self._wait_for_count("document_count", count, "documents", timeout)

    def wait_for_otlp_spans(self, count, timeout=30):
        """Waits until /v1/traces requests brought at least `count` spans, accepted or answered
        as rejected; returns the light state."""
        return self._wait_for_count("otlp_spans_read", count, "OTLP spans", timeout)

    def _wait_for_count(self, key, count, what, timeout):
        last = {}

        def enough():
            last.update(self.state(documents=False))
            return dict(last) if last[key] >= count else None
        try:
            return wait_until(enough, timeout, f"{count} {what} at fake_xray")
        except AssertionError as err:
            raise AssertionError(f"{err}; it has {last.get(key)} "
                                 f"(batches {last.get('batches', [])[-10:]}, "
                                 f"invalid signatures {last.get('invalid_signatures')}, "
                                 f"bad requests {last.get('bad_reasons', [])[-3:]})") from None

    def stop(self):
        if self.proc.stdout.closed:
            return self.proc.returncode
        if self.proc.poll() is None:
            try:
                self.get("/_fake/shutdown")
            except (OSError, http.client.HTTPException):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.proc.stdout.close()
        self._stderr_thread.join(timeout=5)
        self.proc.stderr.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def daemon_env(home, extra=None, drop=()):
    """A minimal, hermetic environment for xrayd: credentials, HOME, no proxies, no region."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
           "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    for name, value in os.environ.items():  # keep sanitizer settings of sanitized builds
        if name.split("_")[0] in ("ASAN", "UBSAN", "LSAN", "TSAN", "MSAN"):
            env[name] = value
    env.update(extra or {})
    for name in drop:
        env.pop(name, None)
    return env


def xrayd_binary():
    path = os.environ.get("XRAYD_BIN") or str(SOURCE_ROOT / "build" / "src" / "xrayd")
    return path


SUMMARY_RE = re.compile(r"\[Info\] Exit summary: (.*)$")
OTLP_SUMMARY_RE = re.compile(r"otlp spans: ((?:\w+=\d+[ ,]*)+)")
LISTEN_RE = re.compile(r"\[Debug\] Listening on UDP 127\.0\.0\.1:(\d+)")
SENT_RE = re.compile(r"Successfully sent batch of (\d+) segments \(\d+\.\d{3} seconds\)")
ADMIN_RE = re.compile(r"Admin http server on 127\.0\.0\.1:(\d+)")
METRIC_RE = re.compile(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$")


class Xrayd:
    """One xrayd process with its stdout collected line by line."""

    def __init__(self, endpoint, *extra_args, ca_bundle=None, linger="50ms", env=None,
                 wait_listening=True):
        self.home = tempfile.TemporaryDirectory(prefix="xrayd-home-")
        cmd = [xrayd_binary(), "-o", "-n", REGION, "-b", "127.0.0.1:0", "-t", "127.0.0.1:0",
               "--admin-address", "127.0.0.1:0", "--endpoint", endpoint, "--linger", linger, "--shutdown-timeout", "5s",
               "-l", "debug"]
        if ca_bundle is not None:
            cmd += ["--ca-bundle", str(ca_bundle)]
        cmd += [str(a) for a in extra_args]
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env if env is not None else daemon_env(self.home.name))
        self._lines = []
        self._stderr = []
        self._cond = threading.Condition()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._lines), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._stderr), daemon=True),
        ]
        for t in self._threads:
            t.start()
        self.udp_port = None
        if wait_listening:
            try:
                match = self.wait_for_line(LISTEN_RE, timeout=15)
            except BaseException:
                self.kill()
                raise
            self.udp_port = int(match.group(1))

    def _pump(self, stream, sink):
        for raw in stream:
            with self._cond:
                sink.append(raw.decode(errors="replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def lines(self):
        with self._cond:
            return list(self._lines)

    @property
    def output(self):
        with self._cond:
            return "\n".join(self._lines + ["--- stderr ---"] + self._stderr)

    def wait_for_line(self, pattern, timeout=15):
        """Returns the first re match of `pattern` in stdout, waiting up to timeout seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = 0
            while True:
                for line in self._lines[seen:]:
                    match = pattern.search(line)
                    if match:
                        return match
                seen = len(self._lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and
                                      not any(t.is_alive() for t in self._threads)):
                    raise AssertionError(
                        f"xrayd never logged /{pattern.pattern}/ (rc={self.proc.poll()}); "
                        f"output:\n{self.output_unlocked()}")
                self._cond.wait(min(remaining, 0.2))

    def output_unlocked(self):
        return "\n".join(self._lines[-60:] + ["--- stderr ---"] + self._stderr[-30:])

    def send_to(self):
        return ("127.0.0.1", self.udp_port)

    def wait_exit(self, timeout):
        rc = self.proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=10)
        return rc

    def terminate(self, timeout=30):
        """SIGTERM, wait for exit; returns (returncode, summary dict or None)."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.wait_exit(timeout)
        return rc, self.summary()

    def summary(self):
        """The counters of the '[Info] Exit summary:' line, as a dict of ints (None if absent).
        With OTLP on, a second 'Exit summary: otlp spans: ...' line follows: otlp_summary()."""
        found = [SUMMARY_RE.search(line) for line in self.lines]
        found = [m for m in found if m and not m.group(1).startswith("otlp spans:")]
        if len(found) != 1:
            return None
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", found[0].group(1))}

    def otlp_summary(self):
        """The counters of the exit summary's 'otlp spans: received=N sent=N rejected=N
        dropped=N held=N', as a dict of ints (None unless it was logged once)."""
        found = [m for m in (OTLP_SUMMARY_RE.search(line) for line in self.lines) if m]
        if len(found) != 1:
            return None
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", found[0].group(1))}

    def metrics(self):
        """The daemon's /metrics now, as {name or name{labels}: float} (the admin listener is on
        for every Xrayd here: --admin-address 127.0.0.1:0)."""
        port = int(self.wait_for_line(ADMIN_RE).group(1))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        found = (METRIC_RE.match(line) for line in text.splitlines() if not line.startswith("#"))
        return {m.group(1): float(m.group(2)) for m in found if m}

    def sent_batch_sizes(self):
        return [int(m.group(1)) for m in (SENT_RE.search(line) for line in self.lines) if m]

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait_exit(10)

    def close(self):
        if self.proc.poll() is None:
            self.kill()
        self.proc.stdout.close()
        self.proc.stderr.close()
        self.home.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_xrayd_to_exit(args, env, timeout=15):
    """Runs xrayd with `args` until it exits; returns (returncode, stdout + stderr)."""
    proc = subprocess.run([xrayd_binary()] + [str(a) for a in args], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return proc.returncode, proc.stdout.decode(errors="replace") + proc.stderr.decode(
        errors="replace")


def make_certificate(directory, host=None):
    """A self-signed EC certificate for 127.0.0.1 (CN and IP SAN), or for `host` (CN and DNS SAN)
    and 127.0.0.1 (IP SAN); returns (cert, key) paths."""
    cert = Path(directory) / "cert.pem"
    key = Path(directory) / "key.pem"
    cn, san = ("127.0.0.1", "IP:127.0.0.1") if host is None else (
        host, f"DNS:{host},IP:127.0.0.1")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={cn}",
                    "-addext", f"subjectAltName={san}"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    return cert, key


def sign_post(port, path, body, headers=None, *, secret=SECRET_KEY, when=None):
    """The headers of a POST of `body` to 127.0.0.1:`port``path`: `headers` (default
    Content-Type application/x-amz-json-1.1) and X-Amz-Date, signed with Host by a deliberately
    plain SigV4 signer, written out step by step so server tests do not lean on the fake's
    verifier. http.client sends the Host header it signs."""
    when = time.time() if when is None else when
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))
    headers = dict(headers or {"Content-Type": "application/x-amz-json-1.1"})
    headers["X-Amz-Date"] = amz_date
    canonical_headers = {name.lower(): value.strip() for name, value in headers.items()}
    canonical_headers["host"] = f"127.0.0.1:{port}"
    names = sorted(canonical_headers)
    canonical = "\n".join(["POST", path, "",
                           "".join(f"{n}:{canonical_headers[n]}\n" for n in names),
                           ";".join(names), hashlib.sha256(body).hexdigest()])
    scope = f"{amz_date[:8]}/{REGION}/xray/aws4_request"
    to_sign = "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" + hashlib.sha256(
        canonical.encode()).hexdigest()
    key = ("AWS4" + secret).encode()
    for part in (amz_date[:8], REGION, "xray", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return headers


def require_tool(name):
    """The path of a program a test runs; its absence fails the test, never skips it."""
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"{name} is not on PATH; run tools/install-deps.sh "
                             "(Debian packages nodejs and npm)")
    return path


def npm_ci(source_dir, files, prefix):
    """A temporary directory (returned; the caller cleans it up) holding `files` of
    `source_dir`, a package.json and its package-lock.json among them, with `npm ci` run in it:
    exactly the lock file's versions, from npm's cache when it has them."""
    npm = require_tool("npm")
    work = tempfile.TemporaryDirectory(prefix=prefix)
    for name in files:
        shutil.copy(os.path.join(source_dir, name), work.name)
    installed = subprocess.run(
        [npm, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=work.name, capture_output=True, text=True, timeout=300)
    if installed.returncode != 0:
        work.cleanup()
        raise AssertionError(f"npm ci failed ({installed.returncode}):\n"
                             f"{installed.stdout}\n{installed.stderr}")
    return work


class NodeDriverTestCase(unittest.TestCase):
    """Tests that run a node driver: the class's driver_files of driver_dir (a package.json, its
    package-lock.json and the driver) are installed once with npm_ci() into cls.work; cls.node
    is node."""
    driver_dir = None
    driver_files = ("package.json", "package-lock.json", "driver.js")

    @classmethod
    def setUpClass(cls):
        cls.node = require_tool("node")
        cls.work = npm_ci(cls.driver_dir, cls.driver_files, f"xrayd-{cls.__name__}-")

    @classmethod
    def tearDownClass(cls):
        cls.work.cleanup()


def free_udp_socket():
    """A UDP socket bound to 127.0.0.1 on an ephemeral port (keeps the port busy while open)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def main(needs_binary=True):
    """A test script's entry point: unittest with verbose output. An optional first argument
    naming a file is the xrayd binary to test (in place of XRAYD_BIN); with `needs_binary`, a
    missing or non-executable binary stops the run with a message before any test starts."""
    argv = list(sys.argv)
    if len(argv) > 1 and not argv[1].startswith("-") and os.path.isfile(argv[1]):
        os.environ["XRAYD_BIN"] = os.path.abspath(argv.pop(1))
    if needs_binary:
        binary = xrayd_binary()
        if not os.access(binary, os.X_OK):
            sys.exit(f"xrayd binary not found or not executable: {binary} (set XRAYD_BIN)")
    unittest.main(module="__main__", argv=argv, verbosity=2)
