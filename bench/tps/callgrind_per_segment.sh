#!/usr/bin/env bash
# callgrind_per_segment.sh: user-space instructions per segment of xrayd (ingest and upload paths).
#
# Runs xrayd under `valgrind --tool=callgrind` three times for the same wall time:
#   idle    no load (start-up, timers, shutdown: the fixed cost)
#   ingest  N segments of SIZE from xrayd-loadgen, batches written to the local sink /dev/null
#   upload  N segments, uploaded (SigV4 + HTTP) to fake-xray-fast
# and prints (Ir(run) - Ir(idle)) / segments, where segments is what xrayd itself counted
# (received for ingest, sent for upload, from its exit summary), so a datagram lost under
# valgrind's slowdown does not skew the figure. Instruction counts do not depend on how busy the
# machine is, so the figure is repeatable on a noisy machine (to about 1 %: the number of wake-ups
# still depends on timing).
#
# The receive backend is epoll + recvmmsg: valgrind does not model io_uring (xrayd under callgrind
# with io_uring never finishes its shutdown), so this measures the shared user-space path
# (validate, queue, batch, body, sign, HTTP) plus the recvmmsg receiver, on one receiver thread.
#
# Usage: bench/tps/callgrind_per_segment.sh [-x XRAYD] [-g LOADGEN] [-e FAKE_XRAY_FAST]
#          [-n SEGMENTS] [-r RATE] [-s SIZE] [-o OUTDIR] [-- extra xrayd args]
# Defaults: build-bench binaries, 10000 segments at 500/s, size 300, OUTDIR /tmp/xrayd-callgrind.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
xrayd=$root/build-bench/src/xrayd
loadgen=$root/build-bench/tools/xrayd-loadgen
endpoint=$root/build-bench/tools/fake-xray-fast
segments=10000
rate=500
size=300
outdir=/tmp/xrayd-callgrind
while getopts "x:g:e:n:r:s:o:h" opt; do
    case $opt in
        x) xrayd=$OPTARG ;;
        g) loadgen=$OPTARG ;;
        e) endpoint=$OPTARG ;;
        n) segments=$OPTARG ;;
        r) rate=$OPTARG ;;
        s) size=$OPTARG ;;
        o) outdir=$OPTARG ;;
        *) sed -n "2,22p" "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
extra_args=("$@")
mkdir -p "$outdir"
duration=$(python3 -c "print($segments / $rate)")

export AWS_ACCESS_KEY_ID=AKIDEXAMPLE
export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
export HOME=/nonexistent

free_port() {
    python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

udp_bound() {
    local hex
    hex=$(printf '%04X' "$1")
    grep -q ":$hex " /proc/net/udp
}

endpoint_pid=
cleanup() {
    if [[ -n $endpoint_pid ]]; then kill "$endpoint_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

"$endpoint" --port 0 --max-lifetime 3600 >"$outdir/endpoint.out" &
endpoint_pid=$!
for _ in $(seq 50); do [[ -s $outdir/endpoint.out ]] && break; sleep 0.1; done
endpoint_port=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['port'])" \
    "$outdir/endpoint.out")

# run NAME SEND(0|1) xrayd-args...: one callgrind run; prints "Ir segments" on stdout.
run() {
    local name=$1 send=$2
    shift 2
    local port
    port=$(free_port)
    rm -f "$outdir/callgrind.$name".*
    valgrind --tool=callgrind --callgrind-out-file="$outdir/callgrind.$name.out" \
        --dump-instr=no --collect-jumps=no \
        "$xrayd" -o -n us-east-1 -b "127.0.0.1:$port" -m 10 --receivers 1 --io-backend epoll \
        "$@" "${extra_args[@]}" \
        >"$outdir/xrayd.$name.log" 2>"$outdir/valgrind.$name.log" &
    local pid=$!
    for _ in $(seq 600); do udp_bound "$port" && break; sleep 0.1; done
    udp_bound "$port" || { echo "xrayd ($name) did not bind" >&2; exit 1; }
    sleep 1
    if [[ $send == 1 ]]; then
        "$loadgen" --target "127.0.0.1:$port" --rate "$rate" --duration "$duration" \
            --size "$size" --sockets 1 >"$outdir/loadgen.$name.json"
    else
        sleep "$duration"
    fi
    sleep 2  # linger + upload of the last batch
    kill -TERM "$pid"
    wait "$pid" || true
    local ir counted
    ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$outdir/callgrind.$name.out")
    counted=$(grep -o 'Exit summary:.*' "$outdir/xrayd.$name.log" | head -1)
    local received sent
    received=$(sed -n 's/.* datagrams_received=\([0-9]*\).*/\1/p' <<<"$counted")
    sent=$(sed -n 's/.* segments_sent=\([0-9]*\).*/\1/p' <<<"$counted")
    echo "$ir ${received:-0} ${sent:-0}"
}

read -r idle_ir _ _ < <(run idle 0 --local-sink /dev/null)
read -r ingest_ir ingest_received _ < <(run ingest 1 --local-sink /dev/null)
read -r upload_ir _ upload_sent < <(run upload 1 --endpoint "http://127.0.0.1:$endpoint_port")

python3 - "$idle_ir" "$ingest_ir" "$ingest_received" "$upload_ir" "$upload_sent" \
    "$segments" "$size" <<'EOF'
import json, sys
idle, ingest, ingest_n, upload, upload_n, asked, size = (int(x) if x.isdigit() else x
                                                         for x in sys.argv[1:])
res = {
    "segments_asked": asked, "size": size, "idle_ir": idle,
    "ingest_ir": ingest, "ingest_segments": ingest_n,
    "ingest_ir_per_segment": round((ingest - idle) / ingest_n, 1) if ingest_n else None,
    "upload_ir": upload, "upload_segments": upload_n,
    "upload_ir_per_segment": round((upload - idle) / upload_n, 1) if upload_n else None,
}
print(f"idle run:   {idle:>14,} Ir")
print(f"ingest run: {ingest:>14,} Ir, {ingest_n} segments -> "
      f"{res['ingest_ir_per_segment']} Ir/segment (local sink /dev/null)")
print(f"upload run: {upload:>14,} Ir, {upload_n} segments -> "
      f"{res['upload_ir_per_segment']} Ir/segment (PutTraceSegments to fake-xray-fast)")
print(json.dumps(res))
EOF
echo "callgrind outputs in $outdir (callgrind_annotate $outdir/callgrind.upload.out)"
