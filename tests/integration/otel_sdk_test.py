"""The OpenTelemetry JS SDK's own OTLP/HTTP exporters drive the daemon's OTLP receiver (issue
#16): spans sent as protobuf (gzip) and as JSON reach fake_xray's /v1/traces exactly once and
unchanged, in requests that xrayd merged, gzipped, typed by their encoding and signed; the exit
summary's otlp counters balance; spans that X-Ray answers as rejected are counted as rejected.

fake_xray reads every span itself, with protobuf and OTLP/JSON readers of its own (no code shared
with xrayd or the SDK), into one form for both encodings; the test compares that with what the
SDK says it ended, mapped to OTLP here (expected_span), so a span that xrayd loses, duplicates or
changes on the way shows as a difference. otel_sdk/ holds the driver and its package-lock.json
(exact versions); `npm ci` installs them into a temporary directory (npm's cache makes later runs
offline). Missing node or npm is a failure: tools/install-deps.sh installs them. About 10 s.
"""

import collections
import json
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

OTLP_LISTEN_RE = re.compile(r"\[Info\] Listening for OTLP/HTTP on 127\.0\.0\.1:(\d+)")
DRIVER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "otel_sdk")

# trace.proto's enums by the names of the JS API's enums, which the driver prints; the API's
# SpanKind starts at INTERNAL = 0, OTLP's at SPAN_KIND_UNSPECIFIED = 0.
SPAN_KINDS = {"INTERNAL": 1, "SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}
STATUS_CODES = {"UNSET": 0, "OK": 1, "ERROR": 2}
HAS_IS_REMOTE, IS_REMOTE = 0x100, 0x200  # trace.proto's SpanFlags above the W3C trace flags
CONTENT_TYPES = {"proto": "application/x-protobuf", "json": "application/json"}
SIGNED = {"content-encoding", "content-type", "host", "x-amz-date"}
REJECTED_PER_REQUEST = 2


def typed(value):
    """A JS attribute value, as the driver printed it, in fake_xray's form of an AnyValue. OTLP
    maps a JS number to int_value when it is an integer and to double_value otherwise, which is
    what JSON.stringify's output and Python's json module make of it (42 an int, 0.25 a
    float); a null in an array is an AnyValue with no value."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return {"int": value}
    if isinstance(value, float):
        return {"double": value}
    if isinstance(value, str):
        return {"string": value}
    if isinstance(value, list):
        return {"array": [typed(v) for v in value]}
    raise AssertionError(f"the driver printed an attribute value of no OTLP type: {value!r}")


def attributes(values):
    return {key: typed(value) for key, value in values.items()}


def span_flags(trace_flags, remote):
    return trace_flags | HAS_IS_REMOTE | (IS_REMOTE if remote else 0)


def expected_span(ended):
    """The span the driver says the SDK ended, as fake_xray's otlp_spans() records it."""
    return {
        "trace_id": ended["trace_id"],
        "span_id": ended["span_id"],
        "trace_state": ended["trace_state"],
        "parent_span_id": ended["parent_span_id"],
        "name": ended["name"],
        "kind": SPAN_KINDS[ended["kind"]],
        "start_time_unix_nano": int(ended["start_time_unix_nano"]),
        "end_time_unix_nano": int(ended["end_time_unix_nano"]),
        "attributes": attributes(ended["attributes"]),
        "dropped_attributes_count": ended["dropped_attributes_count"],
        "events": [{"time_unix_nano": int(e["time_unix_nano"]), "name": e["name"],
                    "attributes": attributes(e["attributes"]),
                    "dropped_attributes_count": e["dropped_attributes_count"]}
                   for e in ended["events"]],
        "dropped_events_count": ended["dropped_events_count"],
        "links": [{"trace_id": link["trace_id"], "span_id": link["span_id"],
                   "trace_state": link["trace_state"],
                   "flags": span_flags(link["trace_flags"], link["is_remote"]),
                   "attributes": attributes(link["attributes"]),
                   "dropped_attributes_count": link["dropped_attributes_count"]}
                  for link in ended["links"]],
        "dropped_links_count": ended["dropped_links_count"],
        "status": {"code": STATUS_CODES[ended["status"]["code"]],
                   "message": ended["status"]["message"]},
        "flags": span_flags(ended["trace_flags"], ended["parent_is_remote"]),
        "resource": {"attributes": attributes(ended["resource"]["attributes"]),
                     "dropped_attributes_count": 0,
                     "schema_url": ended["resource"]["schema_url"]},
        "scope": {"name": ended["scope"]["name"], "version": ended["scope"]["version"],
                  "attributes": {}, "dropped_attributes_count": 0,
                  "schema_url": ended["scope"]["schema_url"]},
    }


def media_type(content_type):
    return content_type.partition(";")[0].strip().lower()


class OtelSdkTest(harness.NodeDriverTestCase):
    driver_dir = DRIVER_DIR
    maxDiff = None

    def start(self, *fake_args):
        self.fake = harness.FakeXray(*fake_args)
        self.addCleanup(self.fake.stop)
        self.daemon = harness.Xrayd(self.fake.endpoint, "--otlp-address", "127.0.0.1:0")
        self.addCleanup(self.daemon.close)
        self.otlp_port = int(self.daemon.wait_for_line(OTLP_LISTEN_RE).group(1))

    def run_driver(self):
        """Runs the driver against xrayd; returns its report after checking that the SDK saw
        every export succeed and logged no problem."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        done = subprocess.run(
            [self.node, "driver.js", f"http://127.0.0.1:{self.otlp_port}/v1/traces"],
            cwd=self.work.name, env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, f"driver failed:\n{done.stderr[-4000:]}")
        report = json.loads(done.stdout)
        self.assertEqual(report["problems"], [], self.daemon.output_unlocked())
        self.assertEqual([e for e in report["exports"] if e["code"] != 0], [])
        self.assertEqual(sum(e["spans"] for e in report["exports"]), len(report["spans"]))
        self.assertEqual({e["exporter"] for e in report["exports"]}, set(CONTENT_TYPES))
        return report

    def assert_requests_signed_gzipped_and_typed(self, state):
        """Every request xrayd made verified, none was refused, each was gzip with a content
        type of OTLP, and both encodings were used."""
        self.assertEqual(state["invalid_signatures"], 0, state["invalid_reasons"][:3])
        self.assertEqual(state["bad_requests"], 0, state["bad_reasons"][:3])
        self.assertEqual(state["paths"].get("/v1/traces"), state["otlp_request_count"])
        for signed in state["signed_headers"]["/v1/traces"]:
            self.assertLessEqual(SIGNED, set(signed.split(";")), signed)
        requests = state["otlp_requests"]
        self.assertEqual({r["content_encoding"] for r in requests}, {"gzip"})
        self.assertEqual({media_type(r["content_type"]) for r in requests},
                         set(CONTENT_TYPES.values()))

    def settled_metrics(self, received):
        """xrayd's /metrics once it has counted `received` OTLP spans in and as many out, sent
        or rejected (it counts a rejection when X-Ray's answer arrives); with the rejected
        spans summed over their reasons as "rejected"."""
        last = {}

        def settled():
            last.clear()
            last.update(self.daemon.metrics())
            last["rejected"] = sum(value for name, value in last.items()
                                   if name.startswith("xrayd_otlp_spans_rejected_total"))
            out = last.get("xrayd_otlp_spans_sent_total", 0) + last["rejected"]
            return dict(last) if last.get("xrayd_otlp_spans_received_total") == received == out \
                else None
        try:
            return harness.wait_until(settled, 15, f"{received} OTLP spans in and out of xrayd")
        except AssertionError as err:
            otlp = {k: v for k, v in last.items() if "otlp" in k or k == "rejected"}
            raise AssertionError(f"{err}; /metrics: {otlp}") from None

    def assert_summary_balances(self, received, rejected):
        rc, _ = self.daemon.terminate()
        self.assertEqual(rc, 0, self.daemon.output_unlocked())
        otlp = self.daemon.otlp_summary()
        self.assertIsNotNone(otlp, self.daemon.output_unlocked())
        self.assertEqual(otlp["received"],
                         otlp["sent"] + otlp["rejected"] + otlp["dropped"] + otlp["held"], otlp)
        self.assertEqual((otlp["received"], otlp["sent"], otlp["rejected"], otlp["dropped"],
                          otlp["held"]), (received, received - rejected, rejected, 0, 0), otlp)
        # The segment summary line counts the same spans among its own counters.
        summary = self.daemon.summary()
        self.assertEqual((summary["otlp_spans_received"], summary["otlp_spans_sent"]),
                         (received, received - rejected), summary)

    def test_spans_of_both_exporters_arrive_once_and_unchanged_in_signed_gzip_requests(self):
        self.start()
        report = self.run_driver()
        ended = report["spans"]
        want = {span["span_id"]: expected_span(span) for span in ended}
        self.assertEqual(len(want), len(ended), "the SDK made a span id twice")
        self.fake.wait_for_otlp_spans(len(ended))
        state = self.fake.state()
        self.assert_requests_signed_gzipped_and_typed(state)

        # Exactly once: no span twice, none missing, none that the SDK did not make.
        got = collections.Counter(span["span_id"] for span in state["otlp_spans"])
        self.assertEqual({s: n for s, n in got.items() if n > 1}, {})
        self.assertEqual((sorted(set(want) - set(got)), sorted(set(got) - set(want))), ([], []))
        self.assertEqual(state["otlp_rejected_spans"], 0)
        # Unchanged: every field of fake_xray's reading equals what the SDK ended.
        for span in state["otlp_spans"]:
            self.assertEqual(span, want[span["span_id"]], span["name"])
        # In a request of its exporter's encoding (xrayd keeps protobuf and JSON apart).
        exporter_of = {span["span_id"]: span["exporter"] for span in ended}
        for request in state["otlp_requests"]:
            self.assertEqual({CONTENT_TYPES[exporter_of[s]] for s in request["span_ids"]},
                             {media_type(request["content_type"])})
        # Merged: the SDK's concurrent exports reached X-Ray in fewer requests.
        self.assertLess(state["otlp_request_count"], len(report["exports"]),
                        [r["spans"] for r in state["otlp_requests"]])

        metrics = self.settled_metrics(len(ended))
        self.assertEqual(metrics["xrayd_otlp_spans_sent_total"], len(ended), metrics)
        self.assert_summary_balances(len(ended), rejected=0)

    def test_spans_x_ray_answers_as_rejected_are_counted_rejected(self):
        self.start("--otlp-rejected", REJECTED_PER_REQUEST)
        ended = self.run_driver()["spans"]
        self.fake.wait_for_otlp_spans(len(ended))
        state = self.fake.state()
        self.assert_requests_signed_gzipped_and_typed(state)
        rejected = state["otlp_rejected_spans"]
        self.assertEqual(rejected, sum(min(REJECTED_PER_REQUEST, r["spans"])
                                       for r in state["otlp_requests"]))
        self.assertGreater(rejected, 0)
        self.assertEqual(state["otlp_span_count"] + rejected, len(ended))

        metrics = self.settled_metrics(len(ended))
        self.assertEqual(metrics["rejected"], rejected, metrics)
        self.assertEqual(metrics["xrayd_otlp_spans_sent_total"], len(ended) - rejected)
        self.assert_summary_balances(len(ended), rejected)


if __name__ == "__main__":
    harness.main()
