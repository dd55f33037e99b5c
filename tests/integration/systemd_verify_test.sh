#!/usr/bin/env bash
# systemd/xrayd.service.in passes `systemd-analyze verify` and keeps the directives the daemon's
# lifecycle depends on. Usage: systemd_verify_test.sh SOURCE_ROOT (XRAYD_BIN in the environment).
# Exit 77 (skip) when systemd-analyze is not installed; tools/run-tests.sh fails on that skip.
set -euo pipefail

src=${1:?source root}
bin=${XRAYD_BIN:?XRAYD_BIN}
if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP(missing-package: systemd-analyze, from systemd)"
  exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# verify checks that ExecStart= is executable: point it at the binary under test.
install -d "$work/bin"
ln -s "$(readlink -f "$bin")" "$work/bin/xrayd"
unit="$work/xrayd.service"
sed "s|@BINDIR@|$work/bin|g" "$src/systemd/xrayd.service.in" > "$unit"

# --man=no: the man page is not installed here (the .deb test verifies the installed unit).
if ! output=$(systemd-analyze verify --man=no "$unit" 2>&1) || [ -n "$output" ]; then
  echo "FAIL: systemd-analyze verify is not clean:"
  echo "$output"
  exit 1
fi
echo "ok: systemd-analyze verify is clean"

fail=0
require() {
  if ! grep -qxF -- "$1" "$unit"; then
    echo "FAIL: the unit lacks: $1"
    fail=1
  fi
}
require "Type=notify"
require "Restart=on-failure"
require "WatchdogSec=30s"
require "DynamicUser=yes"
require "LogsDirectory=xrayd xray"
require "Alias=xray.service"
require "ProtectSystem=strict"
require "NoNewPrivileges=yes"
require "CapabilityBoundingSet="
require "MemoryDenyWriteExecute=yes"
require "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK"
require "SystemCallFilter=@system-service io_uring_setup io_uring_enter io_uring_register"
require "LimitMEMLOCK=64M"
require "ExecReload=/bin/kill -HUP \$MAINPID"
# The Go daemon's setup (systemctl start/enable/reload xray) goes through the alias.
if [ "$(sed -n '/^\[Install\]/,/^\[/p' "$unit" | grep -c '^Alias=xray.service$')" != 1 ]; then
  echo "FAIL: Alias=xray.service is not in [Install]"
  fail=1
fi
# No -f: the config's Logging.LogPath (the guide's /var/log/xray/xray.log) must decide.
if grep -q '^ExecStart=.* -f ' "$unit"; then
  echo "FAIL: ExecStart= hard-codes a log file, overriding Logging.LogPath"
  fail=1
fi
if grep -q '^Restart=always' "$unit"; then
  echo "FAIL: Restart=always cannot be stopped by a signal (Go daemon issue #111)"
  fail=1
fi
# The stop timeout must leave room for the default 5 s drain.
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$unit")
if [ -z "$stop" ] || [ "$stop" -le 5 ]; then
  echo "FAIL: TimeoutStopSec must exceed the 5s shutdown timeout (got '${stop}')"
  fail=1
fi
# The sandbox score, for the log (informational: the number depends on the systemd version).
systemd-analyze security --offline=yes "$unit" 2>/dev/null | tail -1 || true
exit $fail
