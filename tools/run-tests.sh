#!/usr/bin/env bash
# Installs what is missing, builds xrayd and runs the whole test suite (unit + end-to-end) three
# times: plain, under ASan+UBSan and under TSan, each in its own build dir; then a short run of
# every fuzz target when clang-14 is installed; then the release artifacts (static x86_64 and
# arm64 binaries, packages, image) and their tests, the arm64 unit tests under qemu. Ends with one line "N passed, N failed, N skipped"
# summed over all of them (a fuzz target counts as one test) and a non-zero exit status on any
# failure. Every skip is printed with its reason (see count_results); a skip that a missing
# package caused counts as a failure.
#
# Environment: XRAYD_TEST_SUITES (default "plain asan tsan fuzz release"; "release": the release
# artifacts, tools/build-release.sh, built once and tested by tests/integration/release_test.py,
# the arm64 unit tests under qemu included), XRAYD_BUILD_DIR (the plain build dir, where the
# release suite builds too; default build-tests), XRAYD_FUZZ_SECONDS (per target, default 30).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh

suites=${XRAYD_TEST_SUITES:-plain asan tsan fuzz release}
fuzz_seconds=${XRAYD_FUZZ_SECONDS:-30}
total_passed=0
total_failed=0
total_skipped=0
status=0
root=$PWD
skip_log=$(mktemp)  # every skip and skip-caused failure, repeated above the closing line
trap 'rm -f "$skip_log"' EXIT

# Sanitizer reports must fail the test that triggered them, with a stack to act on.
asan_env=(
  "ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1"
  "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
)
# exitcode=66 (TSan's default) fails the test after it has printed every race it saw.
tsan_env=(
  "TSAN_OPTIONS=suppressions=$root/tests/tsan.supp:second_deadlock_stack=1:exitcode=66"
)

# Counts meson's own log and prints every skip with its reason, as "<passed> <failed> <skipped>"
# on its last line. A skip says why in a line "SKIP(<kind>: <reason>)" of the test's output: a
# whole test that exits 77, or a part of one (doctest MESSAGE, unittest skip reason). Kind
# "kernel" (a feature this machine's kernel lacks) or "environment" stays a skip;
# "missing-package" fails the test, since tools/install-deps.sh installs everything the suite
# uses; so does a skip that gives no reason.
count_results() {
  python3 - "$1" "$2" <<'PY'
import json, re, sys
log, suite = sys.argv[1], sys.argv[2]
tagged = re.compile(r"SKIP\(([a-z-]+): (.*)\)")
# unittest's "... skipped 'why'" and doctest's "| 1 skipped" summary: skips the tag must explain.
untagged = re.compile(r"\.\.\. skipped '|\| *[1-9][0-9]* skipped")
passed = failed = skipped = 0
with open(log) as f:
    for line in f:
        test = json.loads(line)
        result, name = test.get("result"), f"{suite}: {test.get('name')}"
        output = ((test.get("stdout") or "") + "\n" + (test.get("stderr") or "")).splitlines()
        reasons = [m.groups() for m in map(tagged.search, output) if m]
        for kind, why in reasons:
            print(f"SKIP {name}: SKIP({kind}: {why})")
        unexplained = [l.strip() for l in output if untagged.search(l) and not tagged.search(l)]
        for l in unexplained:
            print(f"SKIP {name}: no SKIP(<kind>: <reason>) for: {l}")
        if result == "SKIP" and not reasons:
            unexplained.append("exit 77")
            print(f"SKIP {name}: exit 77 without a SKIP(<kind>: <reason>) line")
        missing = [why for kind, why in reasons if kind == "missing-package"]
        if missing or unexplained:
            why = "a missing package" if missing else "a skip without its reason"
            print(f"FAIL {name}: failed for {why}")
            failed += 1
        elif result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:
            failed += 1
print(passed, failed, skipped)
PY
}

# Debug info for the suites' builds: line tables only (-g1, after the build type's -g). A failure
# here is read from a sanitizer's or a crash's stack, which needs functions and lines (inlined
# frames included), not the variable locations of full -g. g++ 12 compiles 20 of this tree's
# files in 0.82x the CPU time with -g1 (0.80x with ASan+UBSan): about 8 CPU-minutes less over
# the plain, ASan and TSan builds of a CI run.
debug_info=-g1

# Where the time goes, on every stage line: CI has a time limit to keep well under.
elapsed() { echo "at $((SECONDS / 60))m$((SECONDS % 60))s"; }

add_counts() {
  local name=$1 p=$2 f=$3 s=$4
  total_passed=$((total_passed + p))
  total_failed=$((total_failed + f))
  total_skipped=$((total_skipped + s))
  if [ "$f" -ne 0 ]; then
    status=1
  fi
  echo "== $name: $p passed, $f failed, $s skipped ($(elapsed))"
}

# Under the sanitizers: meson's suite "sanitizer", every unit test and the end-to-end tests that
# exercise the threads (the daemon's receivers, pipeline, uploader, proxy, telemetry). The
# fault-injection suite (minutes of timed faults), the .deb install and the pure-Python verifier
# add no coverage of our C++ there and would only multiply CI time (tests/integration/meson.build).

# run_meson_suite NAME BUILDDIR TIMEOUT_MULTIPLIER SUITE ENV... -- SETUP_ARGS...
# SUITE: a meson test suite to run, or "all" for every test but the release suite.
run_meson_suite() {
  local name=$1 dir=$2 multiplier=$3 suite=$4
  shift 4
  local env=()
  while [ "$1" != "--" ]; do
    env+=("$1")
    shift
  done
  shift
  echo "== $name: building in $dir ($(elapsed))"
  local ok=1
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null || ok=0
  else
    meson setup "$dir" --buildtype=debugoptimized "$@" >/dev/null || ok=0
  fi
  if [ $ok -eq 0 ]; then
    add_counts "$name" 0 1 0  # the configuration itself is the failed test
    return
  fi
  # -k 0: one broken target does not hide the results of every test that did build.
  local built=1
  ninja -C "$dir" -k 0 -j "${XRAYD_BUILD_JOBS:-$(nproc)}" || built=0
  rm -f "$dir/meson-logs/testlog.json"
  local selected=(--no-suite release)
  if [ "$suite" != all ]; then
    selected=(--suite "$suite")
  fi
  # After a partial build, name the tests whose programs exist (meson refuses to run any when
  # one is missing; named tests and --suite intersect); the build failure is counted below.
  if [ $built -eq 0 ]; then
    local present=()
    mapfile -t present < <(meson introspect --tests "$dir" | python3 -c '
import json, os, sys
build = os.path.abspath(sys.argv[1])
for t in json.load(sys.stdin):
    # meson names suites "<project>:<suite>", e.g. "xrayd:unit".
    suites = [s.split(":")[-1] for s in t["suite"]]
    if sys.argv[2] not in suites if sys.argv[2] != "all" else "release" in suites:
        continue
    # The program, and any built file handed over in the environment (XRAYD_BIN).
    paths = [t["cmd"][0]] + [v for v in t["env"].values() if v.startswith(build + "/")]
    if all(os.path.exists(p) for p in paths):
        print(t["name"])' "$dir" "$suite")
    if [ ${#present[@]} -eq 0 ]; then
      add_counts "$name-build" 0 1 0
      return
    fi
    selected+=("${present[@]}")
  fi
  env "${env[@]}" meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes 2 \
    --timeout-multiplier "$multiplier" "${selected[@]}" || true
  if [ -f "$dir/meson-logs/testlog.json" ]; then
    local counted
    counted=$(count_results "$dir/meson-logs/testlog.json" "$name")
    if [ "$counted" != "$(tail -1 <<< "$counted")" ]; then
      sed '$d' <<< "$counted" | tee -a "$skip_log"
    fi
    # shellcheck disable=SC2046
    add_counts "$name" $(tail -1 <<< "$counted")
  else
    add_counts "$name" 0 1 0
  fi
  if [ $built -eq 0 ]; then
    add_counts "$name-build" 0 1 0  # the build failure itself is a failed test
  fi
}

# The release suite lives in the plain build dir: declared there only when it is to run. Its
# artifacts (two static builds, the arm64 unit tests, the packages: most of its time) are built
# in the background from here on at the lowest CPU priority, on what the other suites leave idle
# (apt, test phases waiting on timers, links); the suite then waits for them and tests them.
release_tests=disabled
release_pid=
if [[ " $suites " == *" release "* ]]; then
  release_tests=enabled
  export XRAYD_RELEASE_CACHE=$root/build-release-cache XRAYD_RELEASE_OUT=$root/build-release-dist
  # Its apt-get installs now, in the foreground: dpkg's lock is the suites' too (.deb tests).
  bash tools/build-release.sh --packages-only
  mkdir -p "$XRAYD_RELEASE_CACHE"
  # nice alone is not enough where the kernel groups processes by session (autogroup, on in
  # Debian's kernels): meson runs each test in a session of its own, which then gets as much
  # CPU as this whole script's session, nice or not. So the build gets a session of its own
  # with the group's nice at 19 too (setsid -w: $! waits for it and gives its status).
  setsid -w nice -n 19 bash -c 'echo 19 2>/dev/null >/proc/self/autogroup || true
                                bash tools/build-release.sh &&
                                ninja -C "$XRAYD_RELEASE_CACHE/aarch64"' \
    >"$XRAYD_RELEASE_CACHE/background.log" 2>&1 &
  release_pid=$!
fi

for suite in $suites; do
  case $suite in
    plain)
      run_meson_suite plain "${XRAYD_BUILD_DIR:-build-tests}" 1 all -- \
        -Drelease_tests=$release_tests "-Dcpp_args=$debug_info" ;;
    asan)
      # b_lundef=false: clang (and some distros' gcc) cannot link sanitized shared objects
      # with -Wl,--no-undefined; harmless with gcc.
      # -Wno-maybe-uninitialized: g++ 12 reports false positives in <regex> and <functional>
      # once the sanitizers instrument them (GCC documents the warning as unreliable under
      # -fsanitize); the plain build keeps it as an error.
      # -Og: g++ 12 builds this tree with ASan+UBSan in 935 s at -O2 and in 393 s at -Og on 2
      # cores, and the tests take as long (80 s summed); the sanitizers need no -O2 to report.
      # (TSan gains 10 % from -Og: it keeps the -O2 its documentation asks for.)
      run_meson_suite asan+ubsan build-asan 3 sanitizer "${asan_env[@]}" -- \
        -Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=disabled -Doptimization=g \
        "-Dcpp_args=$debug_info -Wno-maybe-uninitialized" ;;
    tsan)
      run_meson_suite tsan build-tsan 5 sanitizer "${tsan_env[@]}" -- \
        -Db_sanitize=thread -Dbenchmarks=disabled "-Dcpp_args=$debug_info -Wno-maybe-uninitialized" ;;
    fuzz)
      if command -v clang++-14 >/dev/null &&
         compgen -G "/usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a" >/dev/null; then
        echo "== fuzz: ${fuzz_seconds}s per target ($(elapsed))"
        fuzz_log=$(mktemp)
        bash tools/run-fuzzers.sh "$fuzz_seconds" | tee "$fuzz_log" || true
        add_counts fuzz "$(grep -c '^ok ' "$fuzz_log" || true)" \
          "$(grep -c '^FAIL ' "$fuzz_log" || true)" 0
        if ! grep -qE '^(ok|FAIL) ' "$fuzz_log"; then
          add_counts fuzz-build 0 1 0
        fi
        rm -f "$fuzz_log"
      else
        # tools/install-deps.sh installs both: their absence fails the run.
        echo "SKIP fuzz: SKIP(missing-package: clang-14, libclang-rt-14-dev)" | tee -a "$skip_log"
        echo "FAIL fuzz: failed for a missing package" | tee -a "$skip_log"
        add_counts fuzz 0 1 0
      fi ;;
    release)
      # Once, in the plain build dir: both static builds, the packages, the image, then their
      # tests (root: chroot, mount, dpkg -i). The test runs tools/build-release.sh again, which
      # reuses what the background build made, or reports why that failed.
      echo "== release: waiting for the background build ($XRAYD_RELEASE_CACHE/background.log," \
        "$(elapsed))"
      if ! wait "$release_pid"; then
        tail -40 "$XRAYD_RELEASE_CACHE/background.log"
      fi
      run_meson_suite release "${XRAYD_BUILD_DIR:-build-tests}" 1 release -- \
        -Drelease_tests=$release_tests "-Dcpp_args=$debug_info" ;;
    *)
      echo "run-tests: unknown suite $suite" >&2
      exit 2 ;;
  esac
done

if [ -s "$skip_log" ]; then
  echo "== skips"
  cat "$skip_log"
fi
# One closing line that any CI reader understands.
echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
exit $status
