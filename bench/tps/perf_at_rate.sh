#!/usr/bin/env bash
# perf stat of xrayd at one steady rate: daemon pinned to CPU 0, generator and endpoint on CPU 1.
# Prints per-second and per-segment figures (task-clock, context switches, user/kernel
# instructions) so optimisations can be compared as ratios in one sitting.
#   bench/tps/perf_at_rate.sh [-r RATE] [-s SECONDS] [-b BUILD_DIR] [-x XRAYD] [-- extra xrayd args]
# -x compares another xrayd binary (e.g. a build of an older commit) with the same tools.
set -euo pipefail
rate=4000 secs=10 build=build-bench
source "$(dirname "$0")/at_rate_setup.sh"
start_load $((secs + 2))
sleep 1
if [[ -n ${PERF_RECORD:-} ]]; then  # optional call-graph profile of the same window
    perf record -q -o "$PERF_RECORD" -F 2999 -g -p "$xp" -- sleep "$secs" 2>/dev/null &
fi
snapshot() {  # per thread: name, on-CPU ns, voluntary context switches
    for t in /proc/"$xp"/task/*; do
        printf '%s %s %s\n' "$(cat "$t/comm")" "$(cut -d' ' -f1 "$t/schedstat")" \
            "$(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status")"
    done
}
snapshot >"$work/before"
perf stat -x, -e task-clock,context-switches,instructions:u,instructions:k -p "$xp" \
    -- sleep "$secs" 2>"$work/perf"
snapshot >"$work/after"
wait $gp
[[ -n ${PERF_RAW:-} ]] && cat "$work/perf"
awk -F, -v secs="$secs" -v rate="$rate" '
    { v[$3] = $1 }
    END {
        n = secs * rate
        printf "rate %d/s over %ds: CPU %.2f%% of a core, %.0f wake-ups/s, %.0f user + %.0f kernel instructions/segment\n",
            rate, secs, v["task-clock"] / (secs * 1e3) * 100, v["context-switches"] / secs,
            v["instructions:u"] / n, v["instructions:k"] / n
    }' "$work/perf"
# Per thread, from /proc (no attach overhead): CPU % of a core and wake-ups/s.
awk -v secs="$secs" 'NR == FNR { cpu[$1] -= $2; cs[$1] -= $3; next }
    { cpu[$1] += $2; cs[$1] += $3 }
    END { for (t in cpu) { total += cpu[t]; if (cpu[t] > 0 || cs[t] > 0)
              printf "  %-16s CPU %6.3f%%  %6.0f wake-ups/s\n", t, cpu[t] / secs / 1e7, cs[t] / secs }
          printf "  %-16s CPU %6.3f%%\n", "all threads", total / secs / 1e7 }' "$work/before" "$work/after"
