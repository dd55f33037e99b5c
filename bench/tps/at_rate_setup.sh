# Sourced by perf_at_rate.sh and syscalls_per_batch.sh after they set `rate`, `secs` and `build`:
# reads the options [-r RATE] [-s SECONDS] [-b BUILD_DIR] [-x XRAYD] [-- extra xrayd args],
# starts fake-xray-fast on CPU 1 and xrayd on CPU 0 against it (pids ep and xp, ports eport and
# uport, scratch dir work, all cleaned up at exit), and defines start_load SECONDS, which starts
# the generator on CPU 1 (pid gp).
xrayd=
while getopts "r:s:b:x:" o; do
    case $o in r) rate=$OPTARG ;; s) secs=$OPTARG ;; b) build=$OPTARG ;; x) xrayd=$OPTARG ;; *) exit 2 ;; esac
done
xrayd=${xrayd:-$build/src/xrayd}
shift $((OPTIND - 1)); [[ ${1:-} == -- ]] && shift
work=$(mktemp -d); trap 'kill $xp $ep 2>/dev/null || true; rm -rf "$work"' EXIT
taskset -c 1 "$build/tools/fake-xray-fast" --port 0 --max-lifetime 600 >"$work/ep" &
ep=$!
for _ in $(seq 50); do [[ -s $work/ep ]] && break; sleep 0.1; done
eport=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["port"])' "$work/ep")
uport=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY \
    taskset -c 0 "$xrayd" -o -n us-east-1 -b "127.0.0.1:$uport" \
    --endpoint "http://127.0.0.1:$eport" -m 10 -t 127.0.0.1:0 --admin-address 127.0.0.1:0 "$@" \
    >"$work/xrayd.log" 2>&1 &
xp=$!
sleep 1

start_load() {
    taskset -c 1 "$build/tools/xrayd-loadgen" --target "127.0.0.1:$uport" --rate "$rate" \
        --duration "$1" --size 300 --sockets 4 >"$work/gen" &
    gp=$!
}
