#!/usr/bin/env python3
"""Soak: xrayd at a steady 20 000 segments/s for 10 minutes through intermittent X-Ray faults.

Pieces: xrayd-loadgen (paced UDP, sequence-numbered segments) → xrayd → a fault-injecting
HTTP/1.1 relay (this script, asyncio) → fake-xray-fast (counts every sequence number, so loss and
duplicates are exact). The relay repeats a fault cycle (default 120 s):
    0-60 s clean · 60-75 s 30 % HTTP 500 · 75-90 s 30 % HTTP 429 ThrottlingException
    (Retry-After: 1) · 90-100 s 30 % connection resets (RST) · 100-115 s outage (every request
    reset) · 115-120 s clean
Injected answers are made by the relay without forwarding, so the fake only sees delivered
batches. Every 5 s it samples xrayd's RSS; at the end it stops the generator, waits for the
fake's count to settle, SIGTERMs xrayd and prints one JSON line with the figures: sent,
delivered (unique), lost, duplicates, kernel drops, RSS per cycle (flat = the same high-water
mark cycle after cycle), injected faults, and xrayd's exit summary.

Usage: run_soak.py --xrayd B/src/xrayd --loadgen B/tools/xrayd-loadgen \
                   --endpoint B/tools/fake-xray-fast [--rate 20000] [--seconds 600] [-m 512]
"""

import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
               "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}

# (start, end, mode, probability) within one cycle; modes: 500, 429, reset.
PHASES = [(60, 75, "500", 0.3), (75, 90, "429", 0.3), (90, 100, "reset", 0.3),
          (100, 115, "reset", 1.0)]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def udp_drops(port):
    total = 0
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        with open(path) as f:
            for row in f.readlines()[1:]:
                cols = row.split()
                if int(cols[1].split(":")[1], 16) == port:
                    total += int(cols[-1])
    return total


class FaultRelay:
    """HTTP/1.1 relay with scheduled fault injection, on its own thread's event loop."""

    def __init__(self, upstream_port, cycle, seed):
        self.upstream_port = upstream_port
        self.cycle = cycle
        self.rng = random.Random(seed)
        self.start = time.monotonic()
        self.injected = {"500": 0, "429": 0, "reset": 0}
        self.forwarded = 0
        self.port = None
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def fault(self):
        t = (time.monotonic() - self.start) % self.cycle
        for start, end, mode, p in PHASES:
            if start <= t < end and self.rng.random() < p:
                self.injected[mode] += 1
                return mode
        return None

    def _run(self, ready):
        loop = asyncio.new_event_loop()

        async def serve():
            server = await asyncio.start_server(self.client, "127.0.0.1", 0, backlog=256)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            async with server:
                await server.serve_forever()
        loop.run_until_complete(serve())

    @staticmethod
    async def read_message(reader):
        head = await reader.readuntil(b"\r\n\r\n")
        match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        body = await reader.readexactly(int(match.group(1))) if match else b""
        return head, body

    async def client(self, reader, writer):
        up_reader = up_writer = None
        try:
            while True:
                try:
                    head, body = await self.read_message(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                mode = self.fault()
                if mode == "reset":
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                if mode in ("500", "429"):
                    kind = "ThrottlingException" if mode == "429" else "InternalFailure"
                    payload = json.dumps({"__type": kind, "message": "injected"}).encode()
                    extra = b"Retry-After: 1\r\n" if mode == "429" else b""
                    writer.write(b"HTTP/1.1 " + mode.encode() + b" Injected\r\n" + extra +
                                 b"Content-Type: application/x-amz-json-1.1\r\n"
                                 b"Content-Length: " + str(len(payload)).encode() +
                                 b"\r\n\r\n" + payload)
                    await writer.drain()
                    continue
                if up_writer is None:
                    up_reader, up_writer = await asyncio.open_connection("127.0.0.1",
                                                                         self.upstream_port)
                up_writer.write(head + body)
                await up_writer.drain()
                rhead, rbody = await self.read_message(up_reader)
                self.forwarded += 1
                writer.write(rhead + rbody)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            if up_writer is not None:
                up_writer.close()
            if not writer.transport.is_closing():
                writer.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--xrayd", required=True)
    p.add_argument("--loadgen", required=True)
    p.add_argument("--endpoint", required=True, help="path to fake-xray-fast")
    p.add_argument("--rate", type=int, default=20000)
    p.add_argument("--seconds", type=int, default=600)
    p.add_argument("--cycle", type=float, default=120.0, help="fault cycle length (s)")
    p.add_argument("-m", "--memory-mb", type=int, default=512)
    p.add_argument("--size", default="300")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--log", default="/tmp/xrayd-soak.log")
    p.add_argument("--xrayd-arg", action="append", default=[])
    a = p.parse_args()

    fake = subprocess.Popen([a.endpoint, "--port", "0", "--max-lifetime", str(a.seconds + 900)],
                            stdout=subprocess.PIPE, text=True)
    fake_port = json.loads(fake.stdout.readline())["port"]
    relay = FaultRelay(fake_port, a.cycle, a.seed)

    def fake_get(path):
        with urllib.request.urlopen(f"http://127.0.0.1:{fake_port}{path}", timeout=10) as r:
            return json.loads(r.read())

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        udp_port = s.getsockname()[1]
    log = open(a.log, "w")
    daemon = subprocess.Popen(
        [a.xrayd, "-o", "-n", "us-east-1", "-b", f"127.0.0.1:{udp_port}", "-t", "127.0.0.1:0",
         "--endpoint", f"http://127.0.0.1:{relay.port}", "-m", str(a.memory_mb),
         "--shutdown-timeout", "60s", "-l", "info"] + a.xrayd_arg,
        stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, **CREDENTIALS))
    time.sleep(1.0)
    drops0 = udp_drops(udp_port)
    gen = subprocess.Popen([a.loadgen, "--target", f"127.0.0.1:{udp_port}", "--rate",
                            str(a.rate), "--duration", str(a.seconds), "--size", a.size,
                            "--sockets", "2", "--start-seq", "0"],
                           stdout=subprocess.PIPE, text=True)
    samples = []  # (t, rss MB, delivered)
    t0 = time.monotonic()
    while gen.poll() is None:
        time.sleep(5)
        t = time.monotonic() - t0
        delivered = fake_get(f"/stats?from=0&to={a.rate * a.seconds * 2}")["range"]["unique"]
        samples.append((round(t, 1), round(rss_mb(daemon.pid), 1), delivered))
        print(f"# t={t:6.1f}s rss={samples[-1][1]:7.1f} MB delivered={delivered} "
              f"injected={relay.injected}", flush=True)
    gen_out = json.loads(gen.stdout.read().strip().splitlines()[-1])
    sent, end_seq = gen_out["sent"], gen_out["next_seq"]
    kernel_drops = udp_drops(udp_port) - drops0
    # Drain: wait for the count to stop moving (the outage backlog may still be retrying).
    last, since = -1, time.monotonic()
    while True:
        stats = fake_get(f"/stats?from=0&to={end_seq}")
        unique = stats["range"]["unique"]
        if unique >= sent or time.monotonic() - since > 45:
            break
        if unique != last:
            last, since = unique, time.monotonic()
        time.sleep(0.5)
    rss_end = rss_mb(daemon.pid)
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=120)
    log.close()
    summary = None
    with open(a.log) as f:
        for line in f:
            if "Exit summary:" in line:
                summary = {k: int(v) for k, v in
                           re.findall(r"(\w+)=(\d+)", line.split("Exit summary:", 1)[1])}
    fake.send_signal(signal.SIGTERM)
    fake.wait(timeout=10)
    per_cycle = {}
    for t, rss, _ in samples:
        c = int(t // a.cycle)
        per_cycle[c] = max(per_cycle.get(c, 0.0), rss)
    result = {
        "rate": a.rate, "seconds": a.seconds, "generator": gen_out,
        "sent": sent, "delivered_unique": stats["range"]["unique"],
        "lost": sent - stats["range"]["unique"], "duplicates": stats["range"]["duplicates"],
        "kernel_drops": kernel_drops, "injected": relay.injected, "forwarded": relay.forwarded,
        "rss_max_mb_per_cycle": per_cycle, "rss_end_mb": round(rss_end, 1),
        "throttle_lines": sum(1 for line in open(a.log) if "X-Ray is throttling" in line),
        "throttle_end_lines": sum(1 for line in open(a.log) if "throttling ended" in line),
        "exit_summary": summary, "samples": samples,
    }
    print(json.dumps(result))
    return 0 if result["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
