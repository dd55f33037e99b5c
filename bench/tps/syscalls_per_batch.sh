#!/usr/bin/env bash
# System calls and wake-ups (voluntary context switches) of xrayd's pipeline thread (the
# uploader's loop) per batch sent, at one steady rate: `strace -c` on that one thread for
# SECONDS, divided by the requests fake-xray-fast counted in the same window; the wake-ups
# from /proc's voluntary_ctxt_switches over a second window of the same length without strace.
# Counts hardly depend on the machine's load, unlike CPU %.
#   bench/tps/syscalls_per_batch.sh [-r RATE] [-s SECONDS] [-b BUILD_DIR] [-x XRAYD] [-- xrayd args]
# -x measures another xrayd binary (e.g. a build of an older commit) with the same tools.
set -euo pipefail
rate=10000 secs=10 build=build-bench
source "$(dirname "$0")/at_rate_setup.sh"
tid=$(grep -l '^xrayd-pipeline$' /proc/"$xp"/task/*/comm | cut -d/ -f5)
start_load $((secs + 3))
sleep 1
stats() { python3 -c 'import json,sys,urllib.request as u
print(json.load(u.urlopen("http://127.0.0.1:%s/stats" % sys.argv[1]))["requests"])' "$eport"; }
switches() { sed -n 's/^voluntary_ctxt_switches:[[:space:]]*//p' /proc/"$xp"/task/"$tid"/status; }
before=$(stats) woke=$(switches)
sleep "$secs"
after=$(stats) woke=$(($(switches) - woke))
wait $gp
echo "rate $rate/s, ${secs}s: $((after - before)) batches; the pipeline thread woke $woke times:" \
     "$(python3 -c "print(f'{$woke / max(1, $after - $before):.2f}')") per batch"
start_load $((secs + 3))
sleep 1
before=$(stats)
timeout -s INT "$secs" strace -c -q -p "$tid" -o "$work/strace" || true
after=$(stats)
wait $gp
batches=$((after - before))
echo "rate $rate/s, ${secs}s: $batches batches sent while strace watched the pipeline thread"
awk -v n="$batches" '
    /^[ ]*[0-9.]+[ ]+[0-9.]+/ && $NF != "total" { calls[$NF] = $4; total += $4 }
    END {
        for (c in calls) printf "  %-16s %8d calls %7.2f per batch\n", c, calls[c], calls[c] / n
        printf "  %-16s %8d calls %7.2f per batch\n", "all", total, total / n
    }' "$work/strace" | sort -k2 -n -r
