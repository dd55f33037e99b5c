#!/usr/bin/env bash
# Repeats the README's quick start on a minimal Debian 12 root, as a new user would: builds the
# root with mmdebstrap (--variant=minbase bookworm, from the Debian mirror this machine's apt
# uses), clones the checkout's current commit into it, and runs `bash tools/quickstart.sh` and
# `bash tools/run-tests.sh` there as root in a chroot with /proc, /sys and /dev mounted. Prints
# each command's result and ends with the test command's "N passed, N failed, N skipped" line;
# exits non-zero when either command fails. Run as root on a Debian 12 host.
#
# Environment: XRAYD_MINIMAL_DIR (where the root is built; default a new directory under
# /var/tmp, removed at the end unless XRAYD_MINIMAL_KEEP=1), XRAYD_MINIMAL_TARBALL (reuse this
# mmdebstrap tarball instead of bootstrapping; it is written there when it does not exist yet),
# DEMO_SECONDS (default 3), XRAYD_DEMO_PORT (default a free port), XRAYD_TEST_SUITES and
# XRAYD_FUZZ_SECONDS (handed to run-tests.sh).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "check-minimal-debian: run as root (mmdebstrap, mount and chroot need it)" >&2
  exit 1
fi
commit=$(git -C "$src" rev-parse HEAD)
if [ -n "$(git -C "$src" status --porcelain --untracked-files=no)" ]; then
  echo "check-minimal-debian: note: uncommitted changes are not checked, only $commit"
fi

if ! command -v mmdebstrap >/dev/null; then
  echo "check-minimal-debian: installing mmdebstrap"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap
fi

# The host's own Debian sources (one-line or deb822 files that name bookworm): the mirror this
# machine can reach is the one its apt already uses.
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  if [ -s "$f" ] && grep -qE '^[^#]*\bbookworm\b' "$f"; then
    sources+=("$f")
  fi
done
if [ ${#sources[@]} -eq 0 ]; then
  echo "check-minimal-debian: no bookworm source in /etc/apt; using deb.debian.org"
  sources=("deb http://deb.debian.org/debian bookworm main")
fi

root=${XRAYD_MINIMAL_DIR:-$(mktemp -d /var/tmp/xrayd-minimal.XXXXXX)}
mkdir -p "$root"
if [ -n "$(ls -A "$root")" ]; then
  echo "check-minimal-debian: $root is not empty" >&2
  exit 1
fi
mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount -R "${mounted[i]}" 2>/dev/null || umount -lR "${mounted[i]}" 2>/dev/null || true
  done
  if [ "${XRAYD_MINIMAL_KEEP:-0}" = 1 ]; then
    echo "check-minimal-debian: kept $root"
  else
    rm -rf --one-file-system "$root"
  fi
}
trap cleanup EXIT

tarball=${XRAYD_MINIMAL_TARBALL:-}
if [ -n "$tarball" ] && [ -s "$tarball" ]; then
  echo "== reusing $tarball"
  tar -C "$root" -xf "$tarball"
else
  echo "== mmdebstrap --variant=minbase bookworm $root (sources: ${sources[*]})"
  if [ -n "$tarball" ]; then
    mmdebstrap --variant=minbase bookworm "$tarball" "${sources[@]}"
    tar -C "$root" -xf "$tarball"
  else
    mmdebstrap --variant=minbase bookworm "$root" "${sources[@]}"
  fi
fi
# apt inside the root reaches the mirror by name.
cp -L /etc/resolv.conf "$root/etc/resolv.conf"

echo "== cloning $commit into /root/xrayd"
git clone -q --no-hardlinks "$src" "$root/root/xrayd"
git -C "$root/root/xrayd" checkout -q --detach "$commit"

# Certificate authorities this machine adds locally (an egress proxy's, say) so that npm in
# the root reaches the registry as it does here; ca-certificates, which install-deps.sh
# installs, takes them in. A real Debian 12 machine reaching the registry directly needs none.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  install -d "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
fi

# The root is a mount point of its own, as / is on any machine or container: the unit sandbox
# test makes its mount namespace private, which needs that.
mount --bind "$root" "$root" && mounted+=("$root")
# io_uring's probe, /proc/net/udp, the sanitizers and the tests need the kernel's file systems.
mount -t proc proc "$root/proc" && mounted+=("$root/proc")
mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys" && mounted+=("$root/sys")
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev" && mounted+=("$root/dev")

# The root shares this machine's network: the demo gets a port free here, UDP and TCP alike,
# instead of 2000, which a daemon on this machine may hold.
demo_port=${XRAYD_DEMO_PORT:-$(python3 - <<'PY'
import socket
while True:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
         socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
        u.bind(("127.0.0.1", 0))
        try:
            t.bind(("127.0.0.1", u.getsockname()[1]))
        except OSError:
            continue
        print(u.getsockname()[1])
        break
PY
)}

in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DEMO_SECONDS="${DEMO_SECONDS:-3}" XRAYD_DEMO_PORT="$demo_port" \
    ${XRAYD_TEST_SUITES:+XRAYD_TEST_SUITES="$XRAYD_TEST_SUITES"} \
    ${XRAYD_FUZZ_SECONDS:+XRAYD_FUZZ_SECONDS="$XRAYD_FUZZ_SECONDS"} \
    /bin/bash -c "cd /root/xrayd && $1"
}

status=0
echo "== bash tools/quickstart.sh"
start=$SECONDS
if in_root "bash tools/quickstart.sh"; then
  quick="ok"
else
  quick="FAILED (exit $?)"
  status=1
fi
quick="$quick in $((SECONDS - start)) s"
echo "== bash tools/quickstart.sh: $quick"

echo "== bash tools/run-tests.sh"
log=$root/root/run-tests.log
start=$SECONDS
set +e
in_root "bash tools/run-tests.sh" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -eq 0 ]; then
  tests="ok"
else
  tests="FAILED (exit $rc)"
  status=1
fi
tests="$tests in $((SECONDS - start)) s"

echo "== minimal Debian 12 ($commit)"
echo "bash tools/quickstart.sh: $quick"
echo "bash tools/run-tests.sh: $tests"
grep -E '^== .*passed' "$log" || true
sed -n '/^== skips$/,$p' "$log" | sed '$d'  # every skip with its reason, when there are any
tail -1 "$log"
exit $status
