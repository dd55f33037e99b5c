#!/usr/bin/env bash
# Installs what is missing, builds xrayd and runs the whole test suite (unit + end-to-end).
# Ends with one line "N passed, N failed" and a non-zero exit status on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh

builddir=${XRAYD_BUILD_DIR:-build-tests}
if [ -d "$builddir" ]; then
  meson setup --reconfigure "$builddir" >/dev/null
else
  meson setup "$builddir" --buildtype=debugoptimized >/dev/null
fi
meson compile -C "$builddir"

status=0
meson test -C "$builddir" --print-errorlogs --num-processes 2 || status=$?

# One closing line that any CI reader understands, counted from meson's own log.
python3 - "$builddir/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
with open(sys.argv[1]) as f:
    for line in f:
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
