#!/usr/bin/env bash
# The floors under two issue-6 targets, measured on this machine (bench/README.md quotes them):
# 1. RSS: a do-nothing C program, the same linked against Debian's libcurl, and that one after
#    curl_global_init — what any daemon that uploads with Debian's libcurl starts from.
# 2. CPU: receiving (and discarding) RATE datagrams/s of 300 B with recvmmsg, waking per
#    arrival, every 2 ms and every 10 ms — what receiving alone costs at that rate.
#   bench/floor/floor.sh [-r RATE] [-s SECONDS] [-b BUILD_DIR] [-w "US..."] [-c]
#   (needs xrayd-loadgen built). -w: the wake-up periods in µs, 0 = per arrival (default
#   "0 2000 10000"); -c: the CPU floor only, without the RSS floors.
set -euo pipefail
rate=4000 secs=10 build=build-bench periods="0 2000 10000" rss=1
while getopts "r:s:b:w:c" o; do
    case $o in r) rate=$OPTARG ;; s) secs=$OPTARG ;; b) build=$OPTARG ;; w) periods=$OPTARG ;;
        c) rss=0 ;; *) exit 2 ;; esac
done
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cat >"$work/idle.c" <<'C'
#include <unistd.h>
int main(void) { pause(); return 0; }
C
cat >"$work/curl_init.c" <<'C'
#include <curl/curl.h>
#include <unistd.h>
int main(void) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
    CURLM* multi = curl_multi_init();
    CURL* easy = curl_easy_init();
    if (multi == NULL || easy == NULL) return 1;
    pause();
    return 0;
}
C
cc -O2 "$work/idle.c" -o "$work/idle"
cc -O2 "$work/idle.c" -o "$work/idle_libcurl" -Wl,--no-as-needed -lcurl
cc -O2 "$work/curl_init.c" -o "$work/curl_init" -lcurl
cc -O2 "$here/receive_floor.c" -o "$work/receive_floor"
rss() {  # prints VmRSS, RssAnon, RssFile (kB) of the program after it settled
    "$@" & local p=$!
    sleep 0.5
    awk '/^(VmRSS|RssAnon|RssFile)/ {printf "%s %s kB  ", $1, $2}' "/proc/$p/status"
    kill "$p"; wait "$p" 2>/dev/null || true
}
if [ "$rss" = 1 ]; then
    echo "RSS floor:"
    echo "  do-nothing C program:             $(rss "$work/idle")"
    echo "  the same, linked to libcurl:      $(rss "$work/idle_libcurl")"
    echo "  after curl_global_init:           $(rss "$work/curl_init")"
fi

port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "CPU floor: receive-only at $rate/s, 300 B, CPU 0 (generator on CPU 1), ${secs} s:"
for us in $periods; do
    taskset -c 0 "$work/receive_floor" "$port" "$us" >"$work/count" &
    p=$!
    sleep 0.3
    taskset -c 1 "$build/tools/xrayd-loadgen" --target "127.0.0.1:$port" --rate "$rate" \
        --duration $((secs + 2)) --size 300 --sockets 4 >/dev/null &
    g=$!
    sleep 1
    before=$(cut -d' ' -f1 "/proc/$p/schedstat"); cs0=$(awk '/^voluntary/ {print $2}' "/proc/$p/status")
    sleep "$secs"
    after=$(cut -d' ' -f1 "/proc/$p/schedstat"); cs1=$(awk '/^voluntary/ {print $2}' "/proc/$p/status")
    wait "$g"; kill "$p"; wait "$p" 2>/dev/null || true
    awk -v a="$before" -v b="$after" -v c0="$cs0" -v c1="$cs1" -v s="$secs" -v us="$us" 'BEGIN {
        printf "  %-28s CPU %.3f%% of a core, %.0f wake-ups/s\n",
            (us == 0 ? "wake per arrival:" : "wake every " us / 1000 " ms:"), (b - a) / s / 1e7, (c1 - c0) / s }'
done
