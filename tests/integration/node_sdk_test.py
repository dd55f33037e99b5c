"""The official AWS X-Ray SDK for Node.js (aws-xray-sdk-core) drives the real daemon: centralized
sampling through xrayd's TCP proxy (GetSamplingRules and SamplingTargets, signed by xrayd and
verified by fake_xray), sampling decisions that follow what fake_xray served, and the segments of
the sampled requests arriving unchanged.

node_sdk/ holds the driver and its package-lock.json (exact versions); `npm ci` installs them into
a temporary directory (npm's cache makes later runs offline). Missing node or npm is a failure:
tools/install-deps.sh installs them. The SDK's target poller runs every 10 s and the driver waits
for two of its reports, so the suite takes about 25 s.
"""

import base64
import collections
import json
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TCP_RE = re.compile(r"\[Debug\] Listening on TCP 127\.0\.0\.1:(\d+)")
DRIVER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node_sdk")
DEFAULT_RATE = 0.05  # fake_xray's Default rule: reservoir 1/s, then 5 %
TARGET_RATE = 1.0    # the FixedRate of every target fake_xray answers


class NodeSdkTest(harness.NodeDriverTestCase):
    driver_dir = DRIVER_DIR

    def setUp(self):
        self.fake = harness.FakeXray()
        self.addCleanup(self.fake.stop)
        self.daemon = harness.Xrayd(self.fake.endpoint, linger="20ms")
        self.addCleanup(self.daemon.close)
        self.tcp_port = int(self.daemon.wait_for_line(TCP_RE).group(1))

    def run_driver(self):
        env = dict(os.environ)
        env["AWS_XRAY_DAEMON_ADDRESS"] = (f"tcp:127.0.0.1:{self.tcp_port} "
                                          f"udp:127.0.0.1:{self.daemon.udp_port}")
        for name in ("AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_TRACING_NAME", "AWS_XRAY_SDK_DISABLED"):
            env.pop(name, None)
        done = subprocess.run([self.node, "driver.js"], cwd=self.work.name, env=env,
                              capture_output=True, text=True, timeout=90)
        self.assertEqual(done.returncode, 0, f"driver failed:\n{done.stderr[-4000:]}")
        phases = {}
        for line in done.stdout.splitlines():
            record = json.loads(line)
            phases[record["phase"]] = record
        self.assertEqual(list(phases), ["warm-up", "rules", "targets", "done"], done.stdout)
        self.assertEqual(phases["done"]["problems"], [], done.stderr[-4000:])
        return phases

    def test_node_sdk_centralized_sampling_through_the_proxy_and_segments_arrive_unchanged(self):
        phases = self.run_driver()

        # xrayd forwarded both sampling APIs, signed; fake_xray verified every request.
        state = self.fake.state()
        self.assertGreaterEqual(state["paths"].get("/GetSamplingRules", 0), 1, state["paths"])
        self.assertGreaterEqual(state["paths"].get("/SamplingTargets", 0), 2, state["paths"])
        self.assertEqual(state["invalid_signatures"], 0, state["invalid_reasons"][:3])
        self.assertEqual(state["bad_requests"], 0)
        self.assertIn("/GetSamplingRules", state["signed_headers"])
        self.assertIn("/SamplingTargets", state["signed_headers"])

        # The SDK holds the rule fake_xray served, then the target's rate.
        self.assertEqual(phases["rules"]["rules"], [{"name": "Default", "rate": DEFAULT_RATE}])
        self.assertEqual(phases["targets"]["rules"], [{"name": "Default", "rate": TARGET_RATE}])

        # Decisions under the Default rule: one borrowed from the reservoir per second, then
        # 5 % (100 requests in a second or two: expected about 6, and 40 is far out of reach).
        rules = phases["rules"]
        self.assertGreaterEqual(rules["sampled"], 1)
        self.assertLessEqual(rules["sampled"], 40, rules)
        # Under the target's FixedRate 1.0 every request is sampled (by 5 % it would be ~1e-26).
        self.assertEqual(phases["targets"]["sampled"], phases["targets"]["requests"])

        # The statistics the SDK reported are its decisions: the first report counts the rules
        # phase, the second the targets phase; the warm-up was decided by local rules.
        stats = state["sampling_statistics"]
        self.assertEqual(len(stats), 2, stats)
        for doc, name in zip(stats, ("rules", "targets")):
            self.assertEqual(doc["RuleName"], "Default")
            self.assertRegex(doc["ClientID"], r"^[0-9a-f]{24}$")
            self.assertEqual(doc["RequestCount"], phases[name]["requests"], doc)
            self.assertEqual(doc["SampledCount"] + doc["BorrowCount"], phases[name]["sampled"],
                             doc)
        self.assertEqual(stats[0]["ClientID"], stats[1]["ClientID"])

        # One segment per sampled request (the warm-up's included), none for the others, each
        # document exactly as the SDK sent it.
        payloads = [base64.b64decode(p) for p in phases["done"]["sent"]]
        sampled = sum(phases[name]["sampled"] for name in ("warm-up", "rules", "targets"))
        self.assertEqual(len(payloads), sampled)
        want = collections.Counter()
        for payload in payloads:
            header, _, document = payload.partition(b"\n")
            self.assertEqual(json.loads(header), {"format": "json", "version": 1})
            segment = json.loads(document)
            self.assertEqual(segment["name"], "node-sdk-service")
            self.assertEqual(segment["aws"]["xray"]["sdk"], "X-Ray for Node.js")
            want[document] += 1
        self.fake.wait_for_documents(len(payloads), timeout=30)
        state = self.fake.state()
        self.assertEqual(collections.Counter(d.encode("utf-8") for d in state["documents"]), want)
        self.assertEqual(state["invalid_signatures"], 0, state["invalid_reasons"][:3])

        rc, summary = self.daemon.terminate()
        self.assertEqual(rc, 0, self.daemon.output_unlocked())
        self.assertEqual(summary["rejected"], 0, summary)
        self.assertEqual(summary["dropped"], 0, summary)
        self.assertEqual(summary["segments_sent"], len(payloads), summary)


if __name__ == "__main__":
    harness.main()
