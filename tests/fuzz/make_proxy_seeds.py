#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_proxy (corpus/fuzz_proxy/): one file per defect of issue #12
and per ordinary SDK request, in the input encoding of fuzz_proxy.cpp's build_request().

Each choice of build_request() reads one byte from the end of the input (FuzzedDataProvider),
in this order: line ending, method, target, target suffix, version, Host, header count, then
per header: name, odd byte, value, space after the colon. What is left at the front is the body.
Choice 0 is always what an SDK sends. Run it after changing build_request(): python3 <this>.
"""

from pathlib import Path

OUT = Path(__file__).resolve().parent / "corpus" / "fuzz_proxy"

# Indexes into the choice lists of fuzz_proxy.cpp.
METHOD = {"POST": 0, "GET": 1, "OPTIONS": 5, "CONNECT": 6}
TARGET = {"/GetSamplingRules": 0, "/SamplingTargets": 1, "/TraceGraph": 2, "origin-with-at": 3,
          "@host:port/x": 4, ".evil/x": 5, ":port/x": 6, "//host/x": 7, "absolute": 8,
          "authority": 9, "*": 10}
NAME = {"Content-Type": 0, "Content-Length": 1, "Transfer-Encoding": 2, "Host": 3,
        "Authorization": 4, "X-Amz-Date": 5, "X-Custom": 9}
ODD = {"": 0, "space": 1, "tab": 2, "fold": 3, "nul": 4, "cr": 5}
LENGTH = {"2": 0, "0": 1, "-1": 2, "2, 2": 3, "+2": 5}
CODING = {"chunked": 0, "gzip, chunked": 2, "identity": 3}
OTHER = {"application/json": 0, "crlf": 3}


def header(name, value, odd=""):
    values = LENGTH if name == "Content-Length" else CODING if name == "Transfer-Encoding" \
        else {"127.0.0.1:2000": 0, "evil.example": 1} if name == "Host" else OTHER
    return [NAME[name], ODD[odd], values[value], 0]


def seed(body=b"{}", method="POST", target="/GetSamplingRules", headers=(), eol=0, host=0,
         version=0):
    choices = [eol, METHOD[method], TARGET[target], 0, version, host, len(headers)]
    for h in headers:
        choices += h
    return body + bytes(reversed(choices))


CT = header("Content-Type", "application/json")
CL2 = header("Content-Length", "2")
CHUNKED = header("Transfer-Encoding", "chunked")

SEEDS = {
    "sdk-GetSamplingRules": seed(headers=[CT, CL2]),
    "sdk-SamplingTargets-chunked": seed(target="/SamplingTargets", headers=[CT, CHUNKED]),
    "forward-all-TraceGraph-query": seed(method="GET", target="/TraceGraph", body=b""),
    "origin-form-with-at-sign": seed(target="origin-with-at", headers=[CL2]),
    "ssrf-at-host-port": seed(target="@host:port/x", headers=[CL2]),
    "ssrf-dot-evil": seed(target=".evil/x", headers=[CL2]),
    "ssrf-colon-port": seed(target=":port/x", headers=[CL2]),
    "ssrf-double-slash": seed(target="//host/x", headers=[CL2]),
    "ssrf-absolute-form": seed(target="absolute", headers=[CL2]),
    "authority-form-connect": seed(method="CONNECT", target="authority", body=b""),
    "asterisk-form-options": seed(method="OPTIONS", target="*", body=b""),
    "name-host-space-before-colon": seed(headers=[header("Host", "evil.example", "space"), CL2]),
    "name-authorization-tab-before-colon": seed(
        headers=[header("Authorization", "application/json", "tab"), CL2]),
    "name-transfer-encoding-space": seed(headers=[header("Transfer-Encoding", "chunked",
                                                         "space"), CL2]),
    "name-with-nul": seed(headers=[header("X-Amz-Date", "application/json", "nul"), CL2]),
    "obsolete-fold": seed(headers=[CL2, header("X-Custom", "application/json", "fold")]),
    "length-and-chunked": seed(headers=[CL2, CHUNKED]),
    "length-negative": seed(headers=[header("Content-Length", "-1")]),
    "length-duplicate": seed(headers=[CL2, CL2]),
    "length-list": seed(headers=[header("Content-Length", "2, 2")]),
    "coding-gzip-chunked": seed(headers=[header("Transfer-Encoding", "gzip, chunked")]),
    "coding-identity": seed(headers=[header("Transfer-Encoding", "identity"), CL2]),
    "crlf-in-value": seed(headers=[header("X-Custom", "crlf"), CL2]),
    "bare-lf-lines": seed(headers=[CL2], eol=15),
    "http11-without-host": seed(headers=[CL2], host=7),
}

if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in SEEDS.items():
        (OUT / name).write_bytes(data)
    print(f"{len(SEEDS)} seeds in {OUT}")
