#!/usr/bin/env bash
# Runs every libFuzzer target (tests/fuzz) for SECONDS each, from its seed corpus, and prints one
# line per target (execs, execs/s, coverage, crashes). Exit status 1 when any target crashed.
#
#   bash tools/run-fuzzers.sh SECONDS [TARGET...]
#
# Needs clang (clang-14, libclang-rt-14-dev); builds build-fuzz (XRAYD_FUZZ_BUILD_DIR) when
# missing. Runs XRAYD_FUZZ_JOBS targets at a time (default 2). New inputs go to
# <builddir>/fuzz-corpus/<target>/ (the seed corpus in the tree is never written), crash
# reproducers to <builddir>/fuzz-artifacts/, full logs to <builddir>/fuzz-logs/.
# XRAYD_FUZZ_FLAGS adds libFuzzer flags (e.g. "-fork=1 -ignore_crashes=1" to keep going past a
# known crash). Reproduce a crash: <builddir>/tests/fuzz/<target> <artifact file>
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 SECONDS [TARGET...]" >&2
  exit 2
fi
seconds=$1
shift
builddir=${XRAYD_FUZZ_BUILD_DIR:-build-fuzz}
jobs=${XRAYD_FUZZ_JOBS:-2}
cxx=${XRAYD_FUZZ_CXX:-clang++-14}

if ! command -v "$cxx" >/dev/null; then
  echo "run-fuzzers: $cxx not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 2
fi
if [ ! -f "$builddir/build.ninja" ]; then
  CXX=$cxx meson setup "$builddir" --buildtype=debugoptimized -Dfuzzing=enabled \
    -Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=disabled >/dev/null
fi
ninja -C "$builddir" -j "$jobs" fuzz-targets >/dev/null
# Every target tests/fuzz/meson.build declares, as the build lists them: no second list to keep.
mapfile -t all_targets < <(meson introspect --targets "$builddir" | python3 -c '
import json, sys
names = {t["name"] for t in json.load(sys.stdin)
         if t["type"] == "executable" and t["name"].startswith("fuzz_")}
print("\n".join(sorted(names)))')
if [ ${#all_targets[@]} -eq 0 ]; then
  echo "run-fuzzers: $builddir declares no fuzz target" >&2
  exit 2
fi
targets=("${@:-${all_targets[@]}}")

mkdir -p "$builddir/fuzz-corpus" "$builddir/fuzz-artifacts" "$builddir/fuzz-logs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {
  local t=$1
  local corpus="$builddir/fuzz-corpus/$t"
  mkdir -p "$corpus"
  # -timeout: one input taking this long is a hang (reported as a crash). -rss_limit_mb:
  # well above any target's need; the 2-core CI box has no room for more.
  "$builddir/tests/fuzz/$t" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$builddir/fuzz-artifacts/$t-" ${XRAYD_FUZZ_FLAGS:-} \
    "$corpus" "tests/fuzz/corpus/$t" >"$builddir/fuzz-logs/$t.log" 2>&1
}

# A small job pool: at most $jobs fuzzers at once (each uses one core).
declare -A pid_of
for t in "${targets[@]}"; do
  if [ ! -x "$builddir/tests/fuzz/$t" ]; then
    echo "run-fuzzers: no target $t in $builddir" >&2
    exit 2
  fi
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
    wait -n || true
  done
  run_one "$t" &
  pid_of[$t]=$!
done

failed=0
for t in "${targets[@]}"; do
  status=0
  wait "${pid_of[$t]}" || status=$?
  log="$builddir/fuzz-logs/$t.log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  units=$(find "$builddir/fuzz-corpus/$t" -type f | wc -l)
  if [ "$status" -ne 0 ]; then
    failed=1
    echo "FAIL $t: exit $status; see $log and $builddir/fuzz-artifacts/$t-*"
    grep -m1 -E 'ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error' "$log" || true
  else
    echo "ok   $t: ${execs:-?} execs, ${rate:-?} execs/s, ${cov:-cov: ?}, corpus $units"
  fi
done
exit $failed
