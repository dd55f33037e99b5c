#!/usr/bin/env bash
# Installs the Debian 12 packages xrayd needs to build, run and test. Idempotent: apt is only
# called when something is missing. Run as root.
set -euo pipefail

packages=(
  # build
  meson ninja-build pkg-config g++
  # libraries (see meson.build)
  liburing-dev libsimdjson-dev libcurl4-openssl-dev libssl-dev libfmt-dev libyaml-cpp-dev zlib1g-dev
  libprotobuf-dev  # the OTLP wire-format reader (src/otlp); no generated code
  libmicrohttpd-dev libsystemd-dev ca-certificates
  # tests and benches
  doctest-dev libbenchmark-dev python3 openssl
  # tools the tests run: dpkg-shlibdeps (build-deb.sh), systemd-analyze, curl --aws-sigv4 (an
  # independent signer), /etc/services (service-name ports), man (the .deb's xrayd(8)), and
  # /bin/kill, which the unit's ExecReload runs and systemd-analyze verify requires, and ip
  # (unit_sandbox_test.sh brings up loopback in its network namespace)
  dpkg-dev systemd curl netbase man-db procps iproute2
  python3-aws-xray-sdk  # the official X-Ray SDK for Python: tests/integration/python_sdk_test.py
  nodejs  # runs the official X-Ray SDK for Node.js: tests/integration/node_sdk_test.py
  # fuzzing (tools/run-fuzzers.sh, the fuzz step of tools/run-tests.sh): clang with libFuzzer
  clang-14 libclang-rt-14-dev
  # the style check (tools/check-style.sh, meson test 'style'): .clang-format and .clang-tidy
  # over the files git tracks
  clang-format clang-tidy git
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# npm installs that SDK. Debian's npm package, unless an npm is already there (another nodejs
# build, such as NodeSource's, ships its own npm and conflicts with Debian's).
if ! command -v npm >/dev/null; then
  missing+=(npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root to install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
