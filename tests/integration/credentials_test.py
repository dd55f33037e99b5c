"""Credentials from EC2 instance metadata, end to end: the daemon finds them through IMDSv2 on a
test IMDS (no keys in its environment), they expire while segments flow, the daemon refreshes
them in the background, and every upload before and after verifies at the test X-Ray endpoint
(which accepts each set of keys the IMDS handed out)."""

import datetime
import http.server
import json
import re
import os
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ROLE = "xray-daemon-role"
LIFETIME_S = 12  # under 10 minutes: the daemon refreshes at half-life, ~6 s in


class FakeImds(http.server.ThreadingHTTPServer):
    """IMDSv2 on loopback: a token PUT, then the role name and a fresh key set per fetch."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), ImdsHandler)
        self.lock = threading.Lock()
        self.fetches = 0          # credential documents handed out
        self.token = "imds-session-token"
        self.unauthorised = 0     # GETs without the session token

    def key_set(self, n):
        return f"ASIAFAKEIMDS{n:08d}", f"secret/{n}/wJalrXUtnFEMI/K7MDENG", f"token-{n}"

    def start(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server_address[1]}"


class ImdsHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):
        imds = self.server
        if self.path == "/latest/api/token":
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "21600")
            self.reply(200, imds.token, [("X-aws-ec2-metadata-token-ttl-seconds", ttl)])
        else:
            self.reply(404, "not found")

    def do_GET(self):
        imds = self.server
        if self.headers.get("X-aws-ec2-metadata-token") != imds.token:
            with imds.lock:
                imds.unauthorised += 1
            self.reply(401, "")
            return
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path == base:
            self.reply(200, ROLE)
        elif self.path == base + ROLE:
            with imds.lock:
                imds.fetches += 1
                key, secret, token = imds.key_set(imds.fetches)
            now = datetime.datetime.now(datetime.timezone.utc)
            expires = now + datetime.timedelta(seconds=LIFETIME_S)
            self.reply(200, json.dumps({
                "Code": "Success", "LastUpdated": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "Type": "AWS-HMAC", "AccessKeyId": key, "SecretAccessKey": secret,
                "Token": token, "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}))
        else:
            self.reply(404, "not found")


class InstanceProfileCredentialsTest(unittest.TestCase):
    def test_credentials_from_imds_expire_mid_run_and_every_upload_still_verifies(self):
        imds = FakeImds()
        imds_url = imds.start()
        # The test endpoint accepts every key set the IMDS can hand out during the run.
        keys = [f"--credential={k}:{s}" for k, s, _ in (imds.key_set(n) for n in range(1, 9))]
        home = tempfile.TemporaryDirectory(prefix="xrayd-home-")
        env = harness.daemon_env(home.name, extra={"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds_url},
                                 drop=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
        try:
            with harness.FakeXray(*keys) as fake, \
                    harness.Xrayd(fake.endpoint, env=env, linger="20ms") as daemon:
                daemon.wait_for_line(re.compile(r"Using AWS credentials from"))
                sent = 0
                deadline = time.monotonic() + LIFETIME_S + 4  # well past the first expiry
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    while time.monotonic() < deadline:
                        s.sendto(b'{"format":"json","version":1}\n{"name":"svc","id":"%016x",'
                                 b'"trace_id":"1-5f84c7a1-%024x","start_time":1,"end_time":2}'
                                 % (sent, sent), daemon.send_to())
                        sent += 1
                        time.sleep(0.02)
                fake.wait_for_documents(sent, timeout=30)
                rc, summary = daemon.terminate()
                state = fake.state(documents=False)
            self.assertEqual(rc, 0, daemon.output)
            self.assertEqual(state["invalid_signatures"], 0, state["invalid_reasons"][:3])
            self.assertEqual((summary["received"], summary["sent"]), (sent, sent), summary)
            used = set(state["access_keys"])
            self.assertGreaterEqual(imds.fetches, 2, "the credentials were never refreshed")
            self.assertGreaterEqual(len(used), 2, f"uploads used only {used}")
            self.assertTrue(used <= {imds.key_set(n)[0] for n in range(1, imds.fetches + 1)}, used)
            self.assertGreaterEqual(len(state["security_tokens"]), 2, state["security_tokens"])
            self.assertEqual(imds.unauthorised, 0)
            # The secret keys never reach the log.
            self.assertNotIn("secret/", daemon.output)
        finally:
            imds.shutdown()
            imds.server_close()
            home.cleanup()


if __name__ == "__main__":
    harness.main()
