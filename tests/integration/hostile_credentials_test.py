"""Hostile and hung credential sources, against the real binary: SIGTERM while a background
refresh is stuck (IMDS, the container endpoint, credential_process) exits within
--shutdown-timeout + 1 s with the exit summary, and a credential_process left hanging is killed
with its children; a CR/LF in a credential or a relative container URI that names a host stops
start-up with a clear error, before anything is bound or sent."""

import datetime
import http.server
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

LIFETIME_S = 4       # the daemon refreshes at half-life: ~2 s after start
SHUTDOWN_S = 1       # --shutdown-timeout
HANG_S = 60          # how long a stalled endpoint holds a request


def expiring_document(token_key):
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=LIFETIME_S)
    return json.dumps({"Code": "Success", "AccessKeyId": harness.ACCESS_KEY,
                       "SecretAccessKey": harness.SECRET_KEY, token_key: "session-token",
                       "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ")})


class StallingServer(http.server.ThreadingHTTPServer):
    """Answers `good` requests (IMDS: token, role, credentials), then stalls every request."""

    daemon_threads = True

    def __init__(self, good):
        super().__init__(("127.0.0.1", 0), StallingHandler)
        self.good = good
        self.lock = threading.Lock()
        self.count = 0
        self.stalled = threading.Event()
        self.release = threading.Event()

    def start(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self):
        self.release.set()
        self.shutdown()
        self.server_close()


class StallingHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self):
        server = self.server
        with server.lock:
            server.count += 1
            n = server.count
        if n > server.good:
            server.stalled.set()
            server.release.wait(HANG_S)
            return
        if self.command == "PUT":
            body = "imds-session-token"
        elif self.path.endswith("/security-credentials/"):
            body = "role"
        else:
            body = expiring_document("Token")
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-aws-ec2-metadata-token-ttl-seconds", "21600")
        self.end_headers()
        self.wfile.write(data)

    do_GET = answer
    do_PUT = answer


def process_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def credential_process_env(work, script):
    """The daemon's environment with `script` (made executable) as the only credential source:
    a shared config file naming it, no keys, no shared credentials file, no IMDS."""
    os.chmod(script, 0o755)
    config = os.path.join(work, "config")
    with open(config, "w") as f:
        f.write(f"[default]\ncredential_process = {script}\n")
    return harness.daemon_env(work, extra={"AWS_CONFIG_FILE": config,
                                           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                                           "AWS_EC2_METADATA_DISABLED": "true"},
                              drop=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))


class HangingRefreshTest(unittest.TestCase):
    def terminate_while_stalled(self, env, stalled):
        """Starts xrayd with `env`, waits for `stalled` (the refresh hangs), sends SIGTERM and
        returns the seconds to exit; asserts the exit is clean and summarised."""
        with harness.FakeXray() as fake, \
                harness.Xrayd(fake.endpoint, "--shutdown-timeout", f"{SHUTDOWN_S}s",
                              env=env) as daemon:
            daemon.wait_for_line(re.compile(r"Using AWS credentials from"))
            self.assertTrue(stalled(), "the credential refresh never started\n" + daemon.output)
            time.sleep(0.3)  # well inside the hung fetch
            start = time.monotonic()
            daemon.proc.send_signal(signal.SIGTERM)
            rc = daemon.wait_exit(timeout=HANG_S)
            took = time.monotonic() - start
            self.assertEqual(rc, 0, daemon.output)
            self.assertIsNotNone(daemon.summary(), daemon.output)
            self.assertLess(took, SHUTDOWN_S + 1, daemon.output)
            return daemon.output

    def test_sigterm_while_an_imds_refresh_hangs_exits_within_the_shutdown_timeout(self):
        imds = StallingServer(good=3)
        url = imds.start()
        home = tempfile.TemporaryDirectory(prefix="xrayd-home-")
        try:
            env = harness.daemon_env(home.name, extra={"AWS_EC2_METADATA_SERVICE_ENDPOINT": url},
                                     drop=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
            self.terminate_while_stalled(env, lambda: imds.stalled.wait(LIFETIME_S + 10))
        finally:
            imds.close()
            home.cleanup()

    def test_sigterm_while_a_container_refresh_hangs_exits_within_the_shutdown_timeout(self):
        ecs = StallingServer(good=1)
        url = ecs.start()
        home = tempfile.TemporaryDirectory(prefix="xrayd-home-")
        try:
            env = harness.daemon_env(
                home.name, extra={"AWS_CONTAINER_CREDENTIALS_FULL_URI": url + "/creds",
                                  "AWS_EC2_METADATA_DISABLED": "true"},
                drop=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
            self.terminate_while_stalled(env, lambda: ecs.stalled.wait(LIFETIME_S + 10))
        finally:
            ecs.close()
            home.cleanup()

    def test_sigterm_while_a_credential_process_hangs_exits_and_kills_its_children(self):
        home = tempfile.TemporaryDirectory(prefix="xrayd-home-")
        try:
            work = home.name
            script = os.path.join(work, "creds.sh")
            with open(script, "w") as f:
                f.write(f"""#!/bin/sh
if [ -e {work}/once ]; then
    sleep {HANG_S} &
    echo $! > {work}/child.pid
    wait
fi
touch {work}/once
cat <<'DOC'
{json.dumps(dict(json.loads(expiring_document("SessionToken")), Version=1))}
DOC
""")
            env = credential_process_env(work, script)
            pid_file = os.path.join(work, "child.pid")

            def written_pid():
                try:
                    with open(pid_file) as f:
                        text = f.read()
                except FileNotFoundError:
                    return None
                return int(text) if text.endswith("\n") else None

            def stalled():
                harness.wait_until(written_pid, LIFETIME_S + 10, "the hanging credential_process")
                return True
            self.terminate_while_stalled(env, stalled)
            child = written_pid()
            harness.wait_until(lambda: not process_alive(child), 5,
                               "the credential_process child to die")
        finally:
            home.cleanup()


    def test_sigterm_while_the_start_up_credential_process_hangs_exits_at_once(self):
        # The first fetch runs in the constructor, before the signal loop; credential_process may
        # take up to its 60 s timeout there. SIGTERM must end it at once, with exit 0.
        home = tempfile.TemporaryDirectory(prefix="xrayd-home-")
        try:
            work = home.name
            script = os.path.join(work, "creds.sh")
            with open(script, "w") as f:
                f.write(f"#!/bin/sh\necho $$ > {work}/started\nexec sleep {HANG_S}\n")
            env = credential_process_env(work, script)
            started = os.path.join(work, "started")
            with harness.FakeXray() as fake, \
                    harness.Xrayd(fake.endpoint, "--shutdown-timeout", f"{SHUTDOWN_S}s",
                                  env=env, wait_listening=False) as daemon:
                harness.wait_until(lambda: os.path.exists(started), 15,
                                   "the start-up credential_process")
                time.sleep(0.3)  # inside the hung fetch
                begin = time.monotonic()
                daemon.proc.send_signal(signal.SIGTERM)
                rc = daemon.wait_exit(timeout=HANG_S)
                took = time.monotonic() - begin
                # The cancelled fetch leaves no credentials; start-up either goes on (the chain
                # tolerates a failed first fetch) and run() reads the pending SIGTERM, or it
                # fails and exits 0 with "Got shutdown signal during start-up". Either way the
                # exit is prompt and clean, not 60 s later.
                self.assertEqual(rc, 0, daemon.output)
                self.assertLess(took, SHUTDOWN_S + 1, daemon.output)
                self.assertRegex(daemon.output, r"Exit summary:|Got shutdown signal during start-up")
            with open(started) as f:
                shell = int(f.read())
            harness.wait_until(lambda: not process_alive(shell), 5,
                               "the credential_process to be killed")
        finally:
            home.cleanup()


START_ARGS = ["-o", "-n", harness.REGION, "-b", "127.0.0.1:0", "-t", "127.0.0.1:0",
              "--admin-address", "127.0.0.1:0", "-l", "debug"]


class HostileStartupTest(unittest.TestCase):
    def test_a_crlf_in_aws_session_token_stops_start_up_before_binding(self):
        with tempfile.TemporaryDirectory(prefix="xrayd-home-") as home:
            env = harness.daemon_env(home, extra={"AWS_SESSION_TOKEN": "tok\r\nX-Injected: yes"})
            rc, out = harness.run_xrayd_to_exit(START_ARGS, env)
        self.assertEqual(rc, 1, out)
        self.assertIn("environment: AWS_SESSION_TOKEN contains a control character", out)
        self.assertNotIn("X-Injected", out)
        self.assertNotIn("Listening on UDP", out)

    def test_a_relative_container_uri_naming_a_host_stops_start_up_and_sends_nothing(self):
        target = StallingServer(good=100)
        url = target.start()
        try:
            with tempfile.TemporaryDirectory(prefix="xrayd-home-") as home:
                env = harness.daemon_env(
                    home, drop=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
                    extra={"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI":
                           "@" + url[len("http://"):] + "/creds",
                           "AWS_CONTAINER_AUTHORIZATION_TOKEN": "container-secret"})
                rc, out = harness.run_xrayd_to_exit(START_ARGS, env)
            self.assertEqual(rc, 1, out)
            self.assertIn("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", out)
            self.assertNotIn("Listening on UDP", out)
            self.assertEqual(target.count, 0)
        finally:
            target.close()


if __name__ == "__main__":
    harness.main()
