#!/usr/bin/env python3
"""run_otlp.py: xrayd's OTLP/HTTP path at fixed span rates: CPU per span and memory (issue #16).

Builds nothing: give it the binaries. It starts fake-xray-fast (pinned to --load-cpu) and an
xrayd per body kind (pinned to --daemon-cpu, `-o -n us-east-2 -m 10`, `--otlp-address 127.0.0.1:0`,
`--admin-address 127.0.0.1:0`, `--endpoint` = fake-xray-fast, the TPS bench's credentials), then
for every rate (and body kind) runs otlp-loadgen (pinned to --load-cpu) for --warmup-seconds
(not measured), then for --step-seconds, and measures over that window:

  cpu%      xrayd's utime+stime from /proc/<pid>/stat / wall time, percent of ONE core
            (also the sum of /proc/<pid>/task/*/schedstat, ns precision, as cpu%_ns)
  us/span   xrayd CPU time (stat) / spans the generator sent in the window
  rss       VmRSS and RssAnon from /proc/<pid>/status every 100 ms: average and max
  faults    xrayd's minor page faults (/proc/<pid>/stat) per request of the generator
  spans     the generator's sent / accepted (200) / refused (503, 429); the daemon's counters
            from its /metrics (deltas over the window plus a drain that waits until its "sent"
            counter stops moving): otlp_spans_received and the OTLP spans it counted as sent
  endpoint  POST /v1/traces requests and bytes fake-xray-fast received, and its CPU

Prints a table step by step and writes otlp.json and otlp.md into --out-dir. With --perf-dir,
it also records a call graph of every window (a separate run: perf inflates the figures).

Example:
  bench/otlp/run_otlp.py --xrayd build-bench/src/xrayd \\
      --loadgen build-bench/bench/otlp/otlp-loadgen --endpoint build-bench/tools/fake-xray-fast
"""

import argparse
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tps"))
import run_matrix  # noqa: E402  (the TPS bench's processes and /proc sampling, not a copy)
from run_matrix import (  # noqa: E402
    CLK_TCK, RssSampler, cpu_busy, cpu_ns, machine_info, rss_kb, run_to_end, stat_ticks)

RATES = [1000, 5000, 50_000]
BODIES = {  # --bodies name -> otlp-loadgen flags
    "protobuf": [], "protobuf-gzip": ["--gzip"],
    "json": ["--json"], "json-gzip": ["--json", "--gzip"],
}
# ADOT Collector 0.49 at 5000 spans/s, AWS's own performance report, as issue #16 quotes it.
ADOT_5000 = {"cpu_pct": 80.0, "rss_mb": 140.0}
OTLP_LISTEN = re.compile(r"Listening for OTLP/HTTP on (\S+):(\d+)")
ADMIN_LISTEN = re.compile(r"Admin http server on (\S+):(\d+)")
METRIC = re.compile(r"^xrayd_(\w+)_total (\d+)$", re.M)


def minor_faults(pid):
    """Minor page faults of the process, exited threads included (/proc/<pid>/stat field 10)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def wait_for_log(path, pattern, proc, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with open(path) as f:
            m = pattern.search(f.read())
        if m:
            return int(m.group(2))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit(f"xrayd did not log {pattern.pattern!r}; see {path}")


class Bench(run_matrix.Bench):
    """The TPS bench's endpoint and daemon handling, with xrayd's OTLP and admin listeners."""
    region = "us-east-2"

    def __init__(self, args):
        super().__init__(args)
        self.otlp_port = self.admin_port = None
        self.otlp_exits = []  # per daemon: its "Exit summary: otlp spans: ..." as a dict

    def stop_daemon(self):
        """Also keeps the OTLP exit summary (the TPS bench keeps only the last summary line)."""
        running = self.daemon is not None and self.daemon.poll() is None
        super().stop_daemon()
        if running:
            with open(self.daemon_log.name) as f:
                m = re.search(r"Exit summary: otlp spans: (.*)", f.read())
            exit_line = dict(re.findall(r"(\w+)=(\d+)", m.group(1))) if m else {}
            self.otlp_exits.append(exit_line)
            print(f"# xrayd exit, OTLP spans: {m.group(1) if m else 'no summary'}", flush=True)

    def daemon_command(self):
        return super().daemon_command() + ["--otlp-address", "127.0.0.1:0",
                                           "--admin-address", "127.0.0.1:0"]

    def wait_until_ready(self, log_path):
        self.otlp_port = wait_for_log(log_path, OTLP_LISTEN, self.daemon)
        self.admin_port = wait_for_log(log_path, ADMIN_LISTEN, self.daemon)
        print(f"# OTLP port {self.otlp_port}, admin port {self.admin_port}", flush=True)

    def metrics(self):
        url = f"http://127.0.0.1:{self.admin_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as r:
            return {k: int(v) for k, v in METRIC.findall(r.read().decode())}

    def loadgen(self, rate, seconds, body):
        a = self.args
        cmd = ["taskset", "-c", str(a.load_cpu), a.loadgen,
               "--url", f"http://127.0.0.1:{self.otlp_port}/v1/traces", "--rate", str(rate),
               "--duration", str(seconds), "--spans-per-request", str(a.spans_per_request),
               "--connections", str(a.connections)] + BODIES[body]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    # -- one step
    def run_step(self, rate, body):
        a = self.args
        pid = self.daemon.pid
        if a.warmup_seconds > 0:
            self.loadgen(rate, a.warmup_seconds, body)
            self.drain(self.metrics())
        m0, ep0 = self.metrics(), self.endpoint_get("/stats")
        ticks0, ns0, t0 = stat_ticks(pid), cpu_ns(pid), time.monotonic()
        faults0 = minor_faults(pid)
        busy0, epcpu0 = cpu_busy(a.load_cpu), cpu_ns(self.endpoint.pid)
        sampler = RssSampler(pid)
        sampler.start()
        perf = None
        if a.perf_dir:  # a call graph of the window (it costs the daemon CPU: not for figures)
            perf = subprocess.Popen(
                ["perf", "record", "-q", "-g", "-F", "4999", "-p", str(pid), "-o",
                 os.path.join(a.perf_dir, f"perf-{body}-{rate}.data"), "--", "sleep",
                 str(a.step_seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        gen = self.loadgen(rate, a.step_seconds, body)
        if perf is not None:
            perf.wait()
        ticks1, ns1, t1 = stat_ticks(pid), cpu_ns(pid), time.monotonic()
        faults1 = minor_faults(pid)
        busy1, epcpu1 = cpu_busy(a.load_cpu), cpu_ns(self.endpoint.pid)
        rss_avg, rss_max, anon_max = sampler.finish()
        m1 = self.drain(m0, gen["spans_accepted"])
        ep1 = self.endpoint_get("/stats")
        wall = t1 - t0
        cpu_s = (ticks1 - ticks0) / CLK_TCK
        sent = gen["spans_sent"]
        delta = {k: m1.get(k, 0) - m0.get(k, 0) for k in m1 if k.startswith("otlp")}
        row = {
            "rate": rate, "body": body, "seconds": wall,
            "achieved_rate": gen["achieved_rate"], "spans_sent": sent,
            "spans_accepted": gen["spans_accepted"], "spans_refused": gen["spans_refused"],
            "spans_failed": gen["spans_failed"] + gen["spans_rejected"],
            "status": gen["status"], "late_requests": gen["late_requests"],
            "cpu_pct": 100.0 * cpu_s / wall,
            "cpu_pct_ns": 100.0 * (ns1 - ns0) / 1e9 / wall,
            "us_per_span": 1e6 * cpu_s / sent if sent else 0.0,
            "us_per_span_ns": (ns1 - ns0) / 1e3 / sent if sent else 0.0,
            "rss_avg_mb": rss_avg, "rss_max_mb": rss_max, "rss_anon_max_mb": anon_max,
            "faults_per_request": (faults1 - faults0) / gen["requests"] if gen["requests"] else 0,
            "daemon_received": delta.get("otlp_spans_received"),
            "daemon_sent": delta.get(a.sent_counter),
            "daemon_counters": delta,
            "endpoint_requests": ep1["otlp_requests"] - ep0["otlp_requests"],
            "endpoint_bytes": ep1["otlp_body_bytes"] - ep0["otlp_body_bytes"],
            "endpoint_gzip": ep1["otlp_gzip_requests"] - ep0["otlp_gzip_requests"],
            "endpoint_cpu_pct": 100.0 * (epcpu1 - epcpu0) / 1e9 / wall,
            "gen_cpu_pct": gen["cpu_pct"],
            "load_cpu_busy_pct": 100.0 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]),
            "generator": gen,
        }
        self.rows.append(row)
        print(markdown_row(row), flush=True)
        return row

    def drain(self, before, accepted=None):
        """Waits until the daemon's sent counter reaches `accepted` more than `before`, or stops
        moving for --drain-quiet-seconds; returns the last /metrics."""
        a = self.args
        deadline = time.monotonic() + a.drain_max_seconds
        last, since = None, time.monotonic()
        while True:
            m = self.metrics()
            sent = m.get(a.sent_counter, 0) - before.get(a.sent_counter, 0)
            now = time.monotonic()
            if accepted is not None and sent >= accepted:
                return m
            if sent != last:
                last, since = sent, now
            elif now - since > a.drain_quiet_seconds or now > deadline:
                return m
            time.sleep(0.1)

    def run(self):
        a = self.args
        load = os.getloadavg()
        self.start_endpoint()
        self.start_daemon()
        time.sleep(1.0)
        pid = self.daemon.pid
        idle = {"rss_mb": rss_kb(pid) / 1024.0, "anon_mb": rss_kb(pid, "RssAnon:") / 1024.0,
                "file_mb": rss_kb(pid, "RssFile:") / 1024.0}
        print(f"# load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; idle RSS "
              f"{idle['rss_mb']:.2f} MB (anon {idle['anon_mb']:.2f}, file {idle['file_mb']:.2f})",
              flush=True)
        if a.sent_counter not in self.metrics():
            print(f"# warning: /metrics has no xrayd_{a.sent_counter}_total; the daemon column "
                  f"stays empty (otlp counters: "
                  f"{sorted(k for k in self.metrics() if k.startswith('otlp'))})", flush=True)
        print(markdown_header(), flush=True)
        try:
            for n, body in enumerate(a.bodies):
                if n > 0:  # a fresh daemon per body kind: RSS does not carry over
                    self.stop_daemon()
                    self.start_daemon()
                    time.sleep(1.0)
                for rate in a.rates:
                    self.run_step(rate, body)
        finally:
            self.stop_daemon()
            self.endpoint.send_signal(signal.SIGTERM)
            self.endpoint.wait(timeout=10)
        result = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "machine": machine_info(), "load_average_before": load,
            "load_average_after": os.getloadavg(), "args": vars(a), "idle": idle,
            "adot_5000": ADOT_5000, "otlp_exit_summaries": self.otlp_exits, "steps": self.rows,
        }
        with open(os.path.join(a.out_dir, "otlp.json"), "w") as f:
            json.dump(result, f, indent=1)
        with open(os.path.join(a.out_dir, "otlp.md"), "w") as f:
            f.write(markdown(result))
        print(f"# load average after: {' '.join(f'{x:.2f}' for x in result['load_average_after'])}"
              f"; wrote {a.out_dir}/otlp.json and otlp.md", flush=True)


# ---------------------------------------------------------------------------------------------
# output

def markdown_header():
    return ("| spans/s | body | achieved/s | xrayd CPU % | CPU % (ns) | µs/span | RSS avg MB "
            "| RSS max MB | anon max MB | faults/req | gen sent | gen 200 | gen 503/429 | daemon received "
            "| daemon sent | endpoint req (MB) | gen CPU % | endpoint CPU % | CPU1 busy % |\n"
            "|---:|---|" + "---:|" * 17)


def markdown_row(r):
    def opt(v):
        return "-" if v is None else str(v)
    return (f"| {r['rate']} | {r['body']} | {r['achieved_rate']:.0f} | {r['cpu_pct']:.2f} | "
            f"{r['cpu_pct_ns']:.2f} | {r['us_per_span']:.2f} | {r['rss_avg_mb']:.2f} | "
            f"{r['rss_max_mb']:.2f} | {r['rss_anon_max_mb']:.2f} | "
            f"{r['faults_per_request']:.0f} | {r['spans_sent']} | "
            f"{r['spans_accepted']} | {r['spans_refused']} | {opt(r['daemon_received'])} | "
            f"{opt(r['daemon_sent'])} | {r['endpoint_requests']} "
            f"({r['endpoint_bytes'] / 1e6:.1f}) | {r['gen_cpu_pct']:.1f} | "
            f"{r['endpoint_cpu_pct']:.1f} | {r['load_cpu_busy_pct']:.0f} |")


def markdown(result):
    a, idle = result["args"], result["idle"]
    lines = [
        f"Run {result['date']} on {result['machine']}; load average before "
        f"{' '.join(f'{x:.2f}' for x in result['load_average_before'])}, after "
        f"{' '.join(f'{x:.2f}' for x in result['load_average_after'])}; "
        f"`step_seconds={a['step_seconds']} warmup_seconds={a['warmup_seconds']} "
        f"-m {a['memory_mb']} connections={a['connections']} "
        f"spans_per_request={a['spans_per_request']} xrayd_arg={a['xrayd_arg']}`.",
        "",
        f"Idle RSS after start: {idle['rss_mb']:.2f} MB (anonymous {idle['anon_mb']:.2f} MB, "
        f"file-backed {idle['file_mb']:.2f} MB).",
        "",
        markdown_header(),
    ]
    lines += [markdown_row(r) for r in result["steps"]]
    lines += ["", "xrayd's exit summaries, OTLP spans (one daemon per body kind): " + "; ".join(
        " ".join(f"{k}={v}" for k, v in s.items()) or "none" for s in result["otlp_exit_summaries"])
        + "."]
    lines += ["", f"ADOT Collector 0.49 at 5000 spans/s (AWS's report, per issue #16): "
                  f"~{ADOT_5000['cpu_pct']:.0f} % of a core, ~{ADOT_5000['rss_mb']:.0f} MB."]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    run_matrix.add_process_arguments(p, "otlp-loadgen")
    p.add_argument("--rates", default=",".join(str(r) for r in RATES),
                   help="comma list of spans/s")
    p.add_argument("--bodies", default="protobuf",
                   help="comma list of " + ", ".join(BODIES) + " (each runs every rate)")
    p.add_argument("--step-seconds", type=float, default=20.0)
    p.add_argument("--warmup-seconds", type=float, default=5.0)
    p.add_argument("--spans-per-request", type=int, default=512)
    p.add_argument("--connections", type=int, default=4, help="otlp-loadgen --connections")
    p.add_argument("--sent-counter", default="otlp_spans_sent",
                   help="the daemon's counter (in /metrics, without xrayd_ and _total) of OTLP "
                        "spans it delivered")
    p.add_argument("--drain-quiet-seconds", type=float, default=2.0)
    p.add_argument("--drain-max-seconds", type=float, default=30.0)
    p.add_argument("--perf-dir", default="",
                   help="record a call graph of each window (perf record -g -p) into "
                        "DIR/perf-<body>-<rate>.data; perf's own cost inflates the CPU figures")
    p.add_argument("--out-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "results"))
    args = p.parse_args()
    args.rates = [int(x) for x in args.rates.split(",") if x.strip()]
    args.bodies = [x.strip() for x in args.bodies.split(",") if x.strip()]
    for body in args.bodies:
        if body not in BODIES:
            p.error(f"--bodies: {body} is not one of {', '.join(BODIES)}")
    run_to_end(Bench(args))


if __name__ == "__main__":
    sys.exit(main())
