#!/usr/bin/env python3
"""Sends X-Ray segment datagrams the way an SDK does (header line, newline, document) to a
daemon: a few per second, each with a fresh id, plus one malformed datagram to show how rejects
are counted. Usage: demo_sender.py [--host H] [--port P] [--seconds S] [--rate N]"""

import argparse
import json
import os
import socket
import sys
import time

HEADER = b'{"format": "json", "version": 1}\n'


def segment(n: int, route: str) -> bytes:
    now = time.time()
    doc = {
        "trace_id": f"1-{int(now):08x}-{os.urandom(12).hex()}",
        "id": os.urandom(8).hex(),
        "name": "demo-app",
        "start_time": round(now - 0.012, 3),
        "end_time": round(now, 3),
        "http": {"request": {"method": "GET", "url": f"http://demo.local/{route}/{n}"},
                 "response": {"status": 200}},
        "annotations": {"demo": True, "route": route},
    }
    return HEADER + json.dumps(doc, separators=(",", ":")).encode()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--rate", type=float, default=6, help="segments per second")
    a = p.parse_args()

    sock = socket.socket(socket.AF_INET6 if ":" in a.host else socket.AF_INET, socket.SOCK_DGRAM)
    target = (a.host, a.port)
    routes = ["items", "orders", "users"]
    sent = 0
    end = time.monotonic() + a.seconds
    while time.monotonic() < end:
        sock.sendto(segment(sent, routes[sent % 3]), target)
        sent += 1
        if sent == 3:  # one bad datagram: shows up as rejected_bad_header in the summary
            sock.sendto(b'{"format": "xml", "version": 1}\n{"not": "a segment"}', target)
        time.sleep(1 / a.rate)
    print(f"demo_sender: sent {sent} segments and 1 malformed datagram to {a.host}:{a.port}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
