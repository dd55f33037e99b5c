#!/usr/bin/env bash
# The .deb install/remove cycle on this machine: tools/build-deb.sh builds the package, dpkg -i
# installs it, the installed xrayd answers --version and --check-config (finding
# /etc/xrayd/cfg.yaml), the installed unit verifies, and dpkg -P leaves no xrayd file behind.
# The package replaces the Go daemon's: it Provides/Conflicts/Replaces xray, /usr/bin/xray and
# xray.service are links to xrayd's, and the Go daemon's /etc/amazon/xray/cfg.yaml (the EC2
# setup guide's, no Version key) is read first when present.
# Usage: deb_test.sh SOURCE_ROOT BUILD_ROOT [DEB]; with DEB (the release package of
# tools/build-release.sh, static binary) that package is tested instead. Exit 77 (skip) without
# root, when an xrayd is already installed (the test must not replace a real installation), or
# when a tool it needs is missing (tools/run-tests.sh fails on that skip: tools/install-deps.sh
# installs them all).
set -euo pipefail

src=${1:?source root}
build=${2:?build root}
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP(environment: installing a package needs root)"
  exit 77
fi
# tool:package. dpkg-shlibdeps computes Depends; systemd-analyze and man check the installed
# unit and man page.
for need in dpkg:dpkg dpkg-deb:dpkg dpkg-query:dpkg dpkg-shlibdeps:dpkg-dev \
            systemd-analyze:systemd man:man-db; do
  if ! command -v "${need%%:*}" >/dev/null; then
    echo "SKIP(missing-package: ${need%%:*}, from ${need#*:})"
    exit 77
  fi
done
if dpkg-query -W -f='${Status}' xrayd 2>/dev/null | grep -q 'installed' || [ -e /usr/bin/xrayd ]; then
  echo "SKIP(environment: xrayd is already installed on this machine)"
  exit 77
fi

work=$(mktemp -d)
installed=0
made_amazon=0
cleanup() {
  if [ "$installed" = 1 ]; then
    dpkg -P xrayd >/dev/null 2>&1 || true
  fi
  if [ "$made_amazon" = 1 ]; then
    rm -rf /etc/amazon
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Every path mentioning xray (xrayd, the xray links) in the places a package touches.
xrayd_paths() {
  find /etc /usr/bin /usr/lib/systemd /usr/share/man /usr/share/doc /var/log /var/lib/dpkg/info \
    -xdev -iname '*xray*' 2>/dev/null | sort
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
# The binary links libc, libgcc_s and libstdc++ at least, and the unit's ExecReload runs
# /bin/kill (procps): a package without them in Depends would install where it cannot run.
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
names=$(sed 's/ *([^)]*)//g; s/ *[,|] */\n/g' <<< "$depends")  # one package name a line
needed="libc6 libgcc-s1 libstdc++6 procps"
if [ -n "$release_deb" ]; then
  needed=procps  # the static binary needs no shared library, only the unit's /bin/kill
  [ "$names" = procps ] || { echo "FAIL: the static package depends on $depends"; exit 1; }
fi
for lib in $needed; do
  grep -qxF "$lib" <<< "$names" || { echo "FAIL: Depends lacks $lib"; exit 1; }
done
for field in Provides Conflicts Replaces; do
  [ "$(dpkg-deb -f "$deb" "$field")" = xray ] || { echo "FAIL: $field is not xray"; exit 1; }
done
for link in "./usr/bin/xray -> xrayd" "./lib/systemd/system/xray.service -> xrayd.service"; do
  grep -q "^l.* $link\$" <<< "$contents" || { echo "FAIL: no link $link in the package"; exit 1; }
done
echo "ok: Provides/Conflicts/Replaces xray, /usr/bin/xray and xray.service link to xrayd's"
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
# The Go daemon's command name answers the same (xrayd does not look at argv[0]).
[ "$(/usr/bin/xray --version)" = "$version" ] || { echo "FAIL: xray --version differs"; exit 1; }
[ "$(readlink -f /usr/bin/xray)" = /usr/bin/xrayd ] || { echo "FAIL: /usr/bin/xray"; exit 1; }
echo "ok: xray --version: $version"
# The guide's /etc/amazon/xray/cfg.yaml, left behind by a replaced Go package, is read first.
if [ ! -e /etc/amazon ]; then
  made_amazon=1
  install -D -m 0644 "$src/tests/integration/data/ec2-setup-guide-cfg.yaml" \
    /etc/amazon/xray/cfg.yaml
  check=$(cd "$work" && /usr/bin/xray --check-config)
  for want in '^# Configuration file: /etc/amazon/xray/cfg.yaml$' \
              '^# warning: Config file /etc/amazon/xray/cfg.yaml has no Version key' \
              '^# warning: Config file /etc/xrayd/cfg.yaml is not read'; do
    grep -q "$want" <<< "$check" ||
      { echo "FAIL: xray --check-config lacks /$want/:"; echo "$check"; exit 1; }
  done
  rm -rf /etc/amazon
  made_amazon=0
  echo "ok: the Go daemon's /etc/amazon/xray/cfg.yaml (the setup guide's) is read first"
else
  echo "note: /etc/amazon exists on this machine; the Go config check is left out"
fi
for name in xrayd xray; do
  out=$(systemd-analyze verify --man=no "/lib/systemd/system/$name.service" 2>&1) || true
  [ -z "$out" ] ||
    { echo "FAIL: the installed $name.service does not verify:"; echo "$out"; exit 1; }
done
grep -qx 'Alias=xray.service' /lib/systemd/system/xrayd.service ||
  { echo "FAIL: the installed unit lacks Alias=xray.service"; exit 1; }
echo "ok: the installed unit verifies, also by its alias xray.service"
man -w xrayd >/dev/null || { echo "FAIL: man cannot find xrayd(8)"; exit 1; }
echo "ok: man finds xrayd(8)"

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
