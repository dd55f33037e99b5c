#!/usr/bin/env python3
"""Generates xrayd(8) from docs/xrayd.8.in and the output of `xrayd -h` (troff, no pandoc).

`xrayd -h` is generated from the settings table (include/xrayd/config/settings.h), so the
page's options come from the same rows as the flag parser, the cfg.yaml loader and
--check-config."""
import argparse
import datetime
import os
import subprocess
import sys


def troff_escape(text):
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def options_from_usage(usage):
    """Each option line of `xrayd -h` becomes a .TP entry; section lines become .SS."""
    out = []
    for line in usage.splitlines():
        if not line.strip() or line.startswith("Usage:"):
            continue
        if not line.startswith("\t"):
            heading = line.rstrip(":")
            out.append(".SS " + troff_escape(heading.split(" (")[0].capitalize()))
            if " (" in heading:
                out.append(troff_escape("(" + heading.split(" (", 1)[1]))
            continue
        fields = [f for f in line.split("\t") if f]
        if len(fields) == 3:  # the Go daemon's lines: -x, --long, description
            term = "\\fB{}\\fR, \\fB{}\\fR".format(troff_escape(fields[0]), troff_escape(fields[1]))
            desc = fields[2]
        elif len(fields) == 2:  # xrayd's: "--name ARG", description
            name, _, arg = fields[0].partition(" ")
            term = "\\fB{}\\fR".format(troff_escape(name))
            if arg:
                term += " \\fI{}\\fR".format(troff_escape(arg))
            desc = fields[1]
        else:
            raise SystemExit("gen_manpage: cannot read usage line: %r" % line)
        out.append(".TP")
        out.append(term)
        out.append(troff_escape(desc))
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--binary", required=True)
    p.add_argument("--exe-wrapper", action="append", default=[],
                   help="runs --binary (a cross build's qemu); repeat for each word")
    p.add_argument("--template", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--output", required=True)
    a = p.parse_args()
    usage = subprocess.run(a.exe_wrapper + [a.binary, "-h"], check=True, capture_output=True, text=True).stdout
    # SOURCE_DATE_EPOCH keeps the page (and the .deb) reproducible.
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or None
    date = (datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc) if epoch
            else datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%d")
    with open(a.template, encoding="utf-8") as f:
        page = f.read()
    lines = [l for l in page.splitlines(keepends=True) if not l.startswith('.\\" ')]
    page = "".join(lines)
    page = (page.replace("@OPTIONS@", options_from_usage(usage))
                .replace("@VERSION@", a.version).replace("@DATE@", date))
    with open(a.output, "w", encoding="utf-8") as f:
        f.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
