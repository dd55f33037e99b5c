#!/usr/bin/env bash
# xrayd's CPU over the receive-only floor at one rate, in turns (issue #19 item 5's target:
# at most 1.5x the floor with 10 ms wake-ups). Each turn runs bench/floor/floor.sh (10 ms
# wake-ups only) and then bench/tps/perf_at_rate.sh for the same seconds, so a noisy machine
# moves both; prints every turn and the medians, with xrayd's threads apart.
#   bench/tps/floor_ratio.sh [-r RATE] [-s SECONDS] [-n TURNS] [-b BUILD_DIR] [-x XRAYD]
set -euo pipefail
rate=4000 secs=10 turns=5 build=build-bench xrayd=
while getopts "r:s:n:b:x:" o; do
    case $o in r) rate=$OPTARG ;; s) secs=$OPTARG ;; n) turns=$OPTARG ;; b) build=$OPTARG ;;
        x) xrayd=$OPTARG ;; *) exit 2 ;; esac
done
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp); trap 'rm -f "$out"' EXIT
for turn in $(seq "$turns"); do
    floor=$(bash "$here/../floor/floor.sh" -c -w 10000 -r "$rate" -s "$secs" -b "$build" |
        awk '/wake every/ {sub("%", "", $6); print $6}')
    perf=$(bash "$here/perf_at_rate.sh" -r "$rate" -s "$secs" -b "$build" ${xrayd:+-x "$xrayd"})
    all=$(awk '/all threads/ {sub("%", "", $4); print $4}' <<<"$perf")
    recv=$(awk '/xrayd-recv0/ {sub("%", "", $3); print $3}' <<<"$perf")
    pipe=$(awk '/xrayd-pipeline/ {sub("%", "", $3); print $3}' <<<"$perf")
    wakes=$(grep -o '[0-9]* wake-ups/s' <<<"$perf" | head -1 | cut -d' ' -f1)
    echo "turn $turn: floor $floor %, xrayd $all % (receiver $recv %, pipeline $pipe %), $wakes wake-ups/s" |
        tee -a "$out"
done
python3 - "$out" "$rate" <<'PY'
import re, statistics, sys
rows = [list(map(float, re.findall(r"[0-9.]+(?= %| wake)", line))) for line in open(sys.argv[1])]
floor, xrayd, recv, pipe = (statistics.median(r[i] for r in rows) for i in range(4))
print(f"rate {sys.argv[2]}/s, medians of {len(rows)} turns: floor (10 ms wake-ups) {floor:.3f} %, "
      f"xrayd {xrayd:.3f} % = {xrayd / floor:.1f}x the floor (receiver {recv:.3f} % = "
      f"{recv / floor:.1f}x, pipeline {pipe:.3f} %)")
PY
