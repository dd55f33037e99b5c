"""Hostile clients against the real daemon (issue #12): each case is the reproduction of a defect
an outside review found, and asserts the fixed behaviour.

One daemon (with --proxy-forward-all, which the SSRF needed) and one test X-Ray endpoint serve
every case. The cases are a list: add a new one as a function taking the Context and append it
to CASES with a name that says the defect it guards. Each case closes the connections it opens.
"""

import os
import re
import select
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TCP_RE = re.compile(r"\[Debug\] Listening on TCP 127\.0\.0\.1:(\d+)")

HEAD_DEADLINE = 10.0  # default_head_timeout in include/xrayd/http/connection_gate.h
MARGIN = 3.0          # scheduling slack on a loaded machine, on top of a deadline
PROMPT = 1.0          # what "served at once" means in issue #12


class Context:
    """What every case gets: the endpoint, the daemon and its two TCP ports."""

    def __init__(self, fake, daemon):
        self.fake = fake
        self.daemon = daemon
        self.proxy_port = int(daemon.wait_for_line(TCP_RE).group(1))
        self.admin_port = int(daemon.wait_for_line(harness.ADMIN_RE).group(1))

    def forwarded(self):
        """How many requests the endpoint has received, by path."""
        return dict(self.fake.state(documents=False)["paths"])


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=15)


def read_until_closed(sock, timeout):
    """Everything the peer sends until it closes (or resets); None when it stays open."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([sock], [], [], remaining)
        if not ready:
            return None
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def one_answer(port, request: bytes, timeout=10.0):
    """Sends raw bytes on a new connection; returns the status of the single answer, checking
    that the connection then closes with nothing after it."""
    with connect(port) as s:
        try:
            s.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed before everything was written
        data = read_until_closed(s, timeout)
    assert data is not None, f"no answer, connection still open: {request!r}"
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"no complete answer to {request!r}: {data!r}"
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value.strip())
    assert len(body) == length, f"more than one answer to {request!r}: {data!r}"
    return int(head.split(b" ", 2)[1])


def sdk_request(path, body=b"{}", extra=()):
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1:2000", "User-Agent: aws-xray-sdk/3",
             "Content-Type: application/json", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def timed_status(port, request: bytes):
    start = time.monotonic()
    status = one_answer(port, request)
    return status, time.monotonic() - start


def open_idle(port, count, trickle_every=0):
    """`count` connections that send nothing; every `trickle_every`-th sends half a head."""
    socks = []
    for i in range(count):
        s = connect(port)
        if trickle_every and i % trickle_every == 0:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        socks.append(s)
    return socks


def close_all(socks):
    for s in socks:
        s.close()


# --- the sampling proxy -----------------------------------------------------------------------

def ssrf_targets_get_400_and_reach_no_other_host(ctx):
    """Item 1: a target not in origin form changed the upstream host, signed token included."""
    with socket.socket() as elsewhere:
        elsewhere.bind(("127.0.0.1", 0))
        elsewhere.listen(16)
        elsewhere.setblocking(False)
        port = elsewhere.getsockname()[1]
        before = ctx.forwarded()
        for target in (f"@127.0.0.1:{port}/GetSamplingRules", ".evil/x", f":{port}/x",
                       f"//127.0.0.1:{port}/x", f"http://127.0.0.1:{port}/GetSamplingRules"):
            request = (f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}"
                       .encode())
            assert one_answer(ctx.proxy_port, request) == 400, target
        time.sleep(0.2)  # a forwarded request would have connected by now
        ready, _, _ = select.select([elsewhere], [], [], 0)
        assert not ready, "a connection reached the other listener"
        assert ctx.forwarded() == before, (before, ctx.forwarded())


def header_names_with_space_or_tab_get_400(ctx):
    """Item 2: `Host : x` and `Authorization\\t: x` passed the exact-name filter to X-Ray."""
    before = ctx.forwarded()
    for line in ("Host : evil.example", "Transfer-Encoding : chunked", "Authorization\t: x",
                 "X-Amz-Date : 20260101T000000Z"):
        assert one_answer(ctx.proxy_port, sdk_request("/GetSamplingRules", extra=[line])) == 400, \
            line
    assert ctx.forwarded() == before, (before, ctx.forwarded())


def ambiguous_framing_gets_exactly_one_400(ctx):
    """Item 2: folding, CL with TE, other codings, bad or duplicate lengths."""
    start = b"POST /GetSamplingRules HTTP/1.1\r\nHost: x\r\n"
    for rest in (b"X-A: one\r\n two\r\nContent-Length: 2\r\n\r\n{}",
                 b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                 b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                 b"Content-Length: -1\r\n\r\n",
                 b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}"):
        assert one_answer(ctx.proxy_port, start + rest) == 400, rest


def idle_connections_do_not_lock_out_a_new_request(ctx):
    """Item 3: 500 idle connections locked legitimate SDKs out for 30 s."""
    idle = open_idle(ctx.proxy_port, 500)
    try:
        status, took = timed_status(ctx.proxy_port, sdk_request("/GetSamplingRules"))
        assert status == 200, status
        assert took < PROMPT, f"answered after {took:.2f} s"
    finally:
        close_all(idle)


def trickled_proxy_head_is_cut_at_the_head_deadline(ctx):
    """Item 3: one header byte every few seconds kept a connection open for ever."""
    with connect(ctx.proxy_port) as s:
        s.sendall(b"POST /GetSamplingRules HTTP/1.1\r\n")
        start = time.monotonic()
        data = None
        while data is None and time.monotonic() - start < HEAD_DEADLINE + MARGIN:
            try:
                s.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                data = b""
                break
            data = read_until_closed(s, 1.0)
        took = time.monotonic() - start
    assert data is not None, f"still open after {took:.1f} s of trickling"
    assert took >= HEAD_DEADLINE - 1, f"closed after {took:.1f} s, before the deadline"
    assert data.startswith(b"HTTP/1.1 408 "), data


# --- the admin listener -------------------------------------------------------------------------

def healthz_answers_at_once_under_idle_and_trickling_connections(ctx):
    """Item 4: 32 idle connections delayed /healthz by 10 s; trickled bytes blocked it."""
    idle = open_idle(ctx.admin_port, 40, trickle_every=4)
    try:
        status, took = timed_status(ctx.admin_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 200, status
        assert took < PROMPT, f"answered after {took:.2f} s"
    finally:
        close_all(idle)


def admin_header_names_with_space_get_400(ctx):
    """Item 4, with item 2's remedy: the admin listener reads heads as strictly."""
    for request in (b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n",
                    b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"):
        assert one_answer(ctx.admin_port, request) == 400, request


CASES = [
    ("ssrf targets get 400 and reach no other host", ssrf_targets_get_400_and_reach_no_other_host),
    ("header names with a space or tab get 400", header_names_with_space_or_tab_get_400),
    ("ambiguous framing gets exactly one 400", ambiguous_framing_gets_exactly_one_400),
    ("500 idle connections do not lock out a new request",
     idle_connections_do_not_lock_out_a_new_request),
    ("a trickled proxy head is cut at the head deadline",
     trickled_proxy_head_is_cut_at_the_head_deadline),
    ("/healthz answers at once under idle and trickling connections",
     healthz_answers_at_once_under_idle_and_trickling_connections),
    ("admin header names with a space get 400", admin_header_names_with_space_get_400),
]


class HostileClientTest(unittest.TestCase):
    def test_hostile_cases(self):
        with harness.FakeXray() as fake, \
                harness.Xrayd(fake.endpoint, "--proxy-forward-all") as daemon:
            ctx = Context(fake, daemon)
            for name, case in CASES:
                with self.subTest(name):
                    started = time.monotonic()
                    case(ctx)
                    print(f"ok: {name} ({time.monotonic() - started:.1f} s)", flush=True)
            # Still healthy after all of it: a plain SDK call goes through.
            self.assertEqual(one_answer(ctx.proxy_port, sdk_request("/GetSamplingRules")), 200)
            rc, summary = daemon.terminate()
            self.assertEqual(rc, 0, daemon.output)


if __name__ == "__main__":
    harness.main()
