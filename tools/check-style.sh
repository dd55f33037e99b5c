#!/usr/bin/env bash
# Checks the house style (.clang-format, .clang-tidy) and prints every finding; exits 1 on any.
#
#   tools/check-style.sh [BASE]
#
# 1. clang-format --dry-run -Werror on every tracked *.cpp and *.h under include/ src/ tests/
#    bench/ tools/ (seconds).
# 2. clang-tidy on every .cpp the build compiles (about 11 CPU-minutes: 5-6 minutes on two idle
#    cores). The meson test `style` runs this, once per run of the suite, so CI lints the whole
#    tree: a clone of main cannot tell which commits a submission brought, and a check of only
#    the last commit would pass whatever came before it.
#    With BASE (a quick local look, e.g. `main` on a branch): only what changed between BASE and
#    HEAD (git diff BASE...HEAD): each changed .cpp, and for each changed header one .cpp that
#    includes it (its findings show in any includer).
#    A .cpp the build does not compile (tests/fuzz without -Dfuzzing) is not checked.
#
# Environment: XRAYD_BUILD_DIR, the build dir whose compile_commands.json clang-tidy reads
# (default build-tests; `meson setup` runs there if it has none); XRAYD_TIDY_JOBS, clang-tidy
# processes at once (default 2).
# Exits 77 with a SKIP(<kind>: <reason>) line when it cannot run (see tools/run-tests.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

base=${1:-}
if [ -n "$base" ] && ! git rev-parse -q --verify "$base^{commit}" >/dev/null 2>&1; then
  echo "check-style: $base is not a commit" >&2
  exit 2
fi
build_dir=${XRAYD_BUILD_DIR:-build-tests}
jobs=${XRAYD_TIDY_JOBS:-2}

missing=()
for tool in git clang-format clang-tidy; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -ne 0 ]; then
  echo "SKIP(missing-package: ${missing[*]}; tools/install-deps.sh installs them)"
  exit 77
fi
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "SKIP(environment: $PWD is not a git checkout, so there is no list of tracked files)"
  exit 77
fi

status=0
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# 1. Layout.
mapfile -t cxx_files < <(git ls-files -- \
  'include/*.cpp' 'include/*.h' 'src/*.cpp' 'src/*.h' 'tests/*.cpp' 'tests/*.h' \
  'bench/*.cpp' 'bench/*.h' 'tools/*.cpp' 'tools/*.h')
if ! printf '%s\0' "${cxx_files[@]}" |
     xargs -0 clang-format --dry-run -Werror >"$logs/format" 2>&1; then
  cat "$logs/format"
  echo "check-style: clang-format: $(grep -c 'error: code should be clang-formatted' \
    "$logs/format") places differ; fix with: clang-format -i FILE..."
  status=1
else
  echo "check-style: clang-format: ${#cxx_files[@]} files clean"
fi

# 2. Lint, with the compile commands of a configured build dir.
if [ ! -f "$build_dir/compile_commands.json" ]; then
  echo "check-style: configuring $build_dir for its compile_commands.json"
  meson setup "$build_dir" >"$logs/setup" 2>&1 || { cat "$logs/setup"; exit 1; }
fi
if [ -n "$base" ]; then
  mapfile -t changed < <(git diff --name-only --diff-filter=ACMR "$base"...HEAD -- \
    'include/*.cpp' 'src/*.cpp' 'tests/*.cpp' 'bench/*.cpp' 'tools/*.cpp')
  mapfile -t headers < <(git diff --name-only --diff-filter=ACMR "$base"...HEAD -- \
    'include/*.h' 'src/*.h' 'tests/*.h' 'bench/*.h' 'tools/*.h')
  for h in "${headers[@]}"; do
    # Spelled <xrayd/...> under include/, by its file name in src/ and tests/ ("hash.h").
    case $h in
      include/*) spelled=${h#include/} ;;
      *) spelled=${h##*/} ;;
    esac
    own=${h%.h}.cpp
    [ "${h#include/xrayd/}" != "$h" ] && own=src/${h#include/xrayd/} && own=${own%.h}.cpp
    if [ -f "$own" ]; then
      changed+=("$own")
    else
      includer=$(git grep -lF "$spelled" -- "${h%%/*}/*.cpp" 'src/*.cpp' 'tests/*.cpp' |
        head -1 || true)
      [ -n "$includer" ] && changed+=("$includer")
    fi
  done
  mapfile -t changed < <(printf '%s\n' "${changed[@]}" | sort -u | grep . || true)
  scope="changed since $base"
else
  mapfile -t changed < <(printf '%s\n' "${cxx_files[@]}" | grep '\.cpp$')
  scope="all"
fi
# Only what the build compiles has a compile command to check with.
mapfile -t compiled < <(python3 - "$build_dir/compile_commands.json" <<'PY'
import json, os, sys
db = sys.argv[1]
for entry in json.load(open(db)):
    path = os.path.normpath(os.path.join(entry["directory"], entry["file"]))
    print(os.path.relpath(path))
PY
)
declare -A in_build=()
for f in "${compiled[@]}"; do
  in_build[$f]=1
done
if [ -z "${in_build[src/main.cpp]:-}" ]; then
  echo "check-style: $build_dir/compile_commands.json is not a build of this tree" >&2
  exit 1
fi
tidy_files=()
for f in "${changed[@]}"; do
  if [ -n "${in_build[$f]:-}" ]; then
    tidy_files+=("$f")
  fi
done
if [ ${#tidy_files[@]} -eq 0 ]; then
  echo "check-style: clang-tidy: no compiled .cpp file to check ($scope)"
  exit $status
fi

# One log per file, printed in order once all are done. The compile commands are g++'s:
# clang need not know every warning flag in them, and must not colour its output.
i=0
for f in "${tidy_files[@]}"; do
  printf '%s\0%s\0' "$f" "$logs/tidy.$i"
  i=$((i + 1))
done | xargs -0 -n 2 -P "$jobs" sh -c '
  clang-tidy -p "$0" --quiet --extra-arg=-Wno-unknown-warning-option \
    --extra-arg=-fno-diagnostics-color "$1" >"$2" 2>&1 || echo failed >>"$2.failed"
' "$build_dir" || true
failed=0
for i in "${!tidy_files[@]}"; do
  if [ -f "$logs/tidy.$i.failed" ]; then
    grep -v ' warnings\? generated\.$' "$logs/tidy.$i" || true
    failed=$((failed + 1))
  fi
done
if [ $failed -ne 0 ]; then
  echo "check-style: clang-tidy: findings in $failed of ${#tidy_files[@]} files ($scope)"
  status=1
else
  echo "check-style: clang-tidy: ${#tidy_files[@]} files clean ($scope)"
fi
exit $status
