#!/usr/bin/env bash
# Installs what is missing, builds xrayd, and runs it on its embedded local default — the local
# sink, which prints each batch as one JSON line instead of uploading, so no AWS account is
# needed — while a demo sender sends segments for a few seconds. Then stops the daemon with
# SIGTERM so you see the drain and the exit summary.
# Environment: XRAYD_DEMO_PORT (default 2000), DEMO_SECONDS (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh
if [ ! -d build ]; then
  meson setup build --buildtype=release >/dev/null
fi
meson compile -C build xrayd

port=${XRAYD_DEMO_PORT:-2000}
seconds=${DEMO_SECONDS:-10}
build/src/xrayd --local-sink - -b "127.0.0.1:$port" -t "127.0.0.1:$port" &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null || true' EXIT

# Wait until the UDP port is bound (or the daemon has exited with an error).
hexport=$(printf '%04X' "$port")
for _ in $(seq 100); do
  grep -q ":$hexport " /proc/net/udp && break
  kill -0 $daemon 2>/dev/null || { wait $daemon; exit $?; }
  sleep 0.1
done

python3 tools/demo_sender.py --port "$port" --seconds "$seconds"
kill -TERM $daemon
trap - EXIT
wait $daemon
