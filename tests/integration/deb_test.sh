#!/usr/bin/env bash
# The .deb install/remove cycle on this machine: tools/build-deb.sh builds the package, dpkg -i
# installs it, the installed xrayd answers --version and --check-config (finding
# /etc/xrayd/cfg.yaml), the installed unit verifies, and dpkg -P leaves no xrayd file behind.
# Usage: deb_test.sh SOURCE_ROOT BUILD_ROOT [DEB]; with DEB (the release package of
# tools/build-release.sh, static binary) that package is tested instead. Exit 77 (skip) without root or dpkg, or when an
# xrayd is already installed (the test must not replace a real installation).
set -euo pipefail

src=${1:?source root}
build=${2:?build root}
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: installing a package needs root"
  exit 77
fi
for tool in dpkg dpkg-deb dpkg-query; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool is not installed"
    exit 77
  fi
done
if dpkg-query -W -f='${Status}' xrayd 2>/dev/null | grep -q 'installed' || [ -e /usr/bin/xrayd ]; then
  echo "SKIP: xrayd is already installed on this machine"
  exit 77
fi

work=$(mktemp -d)
installed=0
cleanup() {
  if [ "$installed" = 1 ]; then
    dpkg -P xrayd >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Every path mentioning xrayd in the places a package touches, before and after.
xrayd_paths() {
  find /etc /usr/bin /usr/lib/systemd /usr/share/man /usr/share/doc /var/log /var/lib/dpkg/info \
    -xdev -iname '*xrayd*' 2>/dev/null | sort
}
xrayd_paths > "$work/before"

release_deb=${3:-}
if [ -n "$release_deb" ]; then
  deb=$release_deb
else
  deb=$("$src/tools/build-deb.sh" "$build" "$work")
  echo "built $deb"
fi
case "$(basename "$deb")" in
  xrayd_*_"$(dpkg --print-architecture)".deb) ;;
  *) echo "FAIL: unexpected package name $deb"; exit 1 ;;
esac
contents=$(dpkg-deb -c "$deb")
for path in ./usr/bin/xrayd ./lib/systemd/system/xrayd.service ./etc/xrayd/cfg.yaml \
            ./etc/logrotate.d/xrayd ./usr/share/man/man8/xrayd.8.gz; do
  grep -q " $path\$" <<< "$contents" || { echo "FAIL: $path is not in the package"; exit 1; }
done
if [ -n "$release_deb" ]; then
  # The static binary needs no shared library, so no package either.
  [ -z "$(dpkg-deb -f "$deb" Depends)" ] || { echo "FAIL: the static package has Depends"; exit 1; }
else
  dpkg-deb -f "$deb" Depends | grep -q 'libc6' || { echo "FAIL: Depends lacks libc6"; exit 1; }
fi
dpkg-deb -e "$deb" "$work/control"
grep -qx /etc/xrayd/cfg.yaml "$work/control/conffiles" || { echo "FAIL: cfg.yaml is no conffile"; exit 1; }

installed=1
dpkg -i "$deb"
version=$(/usr/bin/xrayd --version)
echo "$version"
grep -q '^AWS X-Ray daemon version: xrayd ' <<< "$version" || { echo "FAIL: --version"; exit 1; }
check=$(cd "$work" && /usr/bin/xrayd --check-config)
grep -q '^# Configuration file: /etc/xrayd/cfg.yaml$' <<< "$check" ||
  { echo "FAIL: --check-config did not use /etc/xrayd/cfg.yaml:"; echo "$check"; exit 1; }
echo "ok: --check-config read /etc/xrayd/cfg.yaml"
if command -v systemd-analyze >/dev/null; then
  out=$(systemd-analyze verify --man=no /lib/systemd/system/xrayd.service 2>&1) || true
  [ -z "$out" ] || { echo "FAIL: the installed unit does not verify:"; echo "$out"; exit 1; }
  echo "ok: the installed unit verifies"
fi
if command -v man >/dev/null && ! man -w xrayd >/dev/null 2>&1; then
  echo "FAIL: man cannot find xrayd(8)"; exit 1
fi

dpkg -P xrayd
installed=0
if dpkg-query -W -f='${Status}' xrayd 2>/dev/null | grep -q 'installed'; then
  echo "FAIL: xrayd is still known to dpkg after purge"; exit 1
fi
xrayd_paths > "$work/after"
if ! diff -u "$work/before" "$work/after"; then
  echo "FAIL: files left behind after dpkg -P (diff above)"; exit 1
fi
echo "ok: install, run and purge left the machine as it was"
