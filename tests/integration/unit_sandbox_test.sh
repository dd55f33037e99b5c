#!/usr/bin/env bash
# The daemon started the way systemd/xrayd.service.in starts it (its ExecStart= line, as a
# dynamic-style unprivileged user with NoNewPrivileges, under a reproduction of its file-system
# sandbox) can write the EC2 setup guide's log path, /var/log/xray/xray.log, read from the Go
# daemon's /etc/amazon/xray/cfg.yaml; and the reproduction really is read-only elsewhere.
# Usage: unit_sandbox_test.sh SOURCE_ROOT (XRAYD_BIN in the environment). Exit 77 (skip)
# without root, unshare, setpriv or overlayfs.
#
# How faithful: no systemd runs here, so the sandbox is rebuilt in a private mount and network
# namespace. ProtectSystem=strict = every mount remounted read-only except /proc, /sys and /dev;
# LogsDirectory= = each listed directory under /var/log bind-mounted writable again and owned by
# the service's user (systemd does the same, via /var/log/private/<dir> with DynamicUser=yes).
# /etc and /var/log are overlaid with test copies so nothing on this machine changes. Not
# reproduced: the seccomp filter, capability bounds, PrivateTmp/PrivateDevices, ProtectHome
# and ProtectProc (none of them concerns writing a file under /var/log).
set -euo pipefail

src=${1:?source root}
bin=${XRAYD_BIN:?XRAYD_BIN}
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP(environment: building mount namespaces needs root)"
  exit 77
fi
# tool:package (tools/install-deps.sh installs them; their absence fails tools/run-tests.sh).
for need in unshare:util-linux setpriv:util-linux findmnt:util-linux ip:iproute2; do
  command -v "${need%%:*}" >/dev/null ||
    { echo "SKIP(missing-package: ${need%%:*}, from ${need#*:})"; exit 77; }
done

unit=$src/systemd/xrayd.service.in
guide=$src/tests/integration/data/ec2-setup-guide-cfg.yaml
user=65534  # nobody: an unprivileged id, as DynamicUser= allocates one
work=$(mktemp -d)
chmod 0755 "$work"
trap 'rm -rf "$work"' EXIT

bindir=$(dirname "$(readlink -f "$bin")")
exec_start=$(sed -n 's/^ExecStart=//p' "$unit" | sed "s|@BINDIR@|$bindir|")
logs_dirs=$(sed -n 's/^LogsDirectory=//p' "$unit")
for directive in ProtectSystem=strict NoNewPrivileges=yes; do
  grep -qx "$directive" "$unit" || { echo "FAIL: the unit lacks $directive"; exit 1; }
done
case " $logs_dirs " in
  *" xray "*) ;;
  *) echo "FAIL: LogsDirectory=$logs_dirs does not include xray"; exit 1 ;;
esac
echo "ExecStart: $exec_start; LogsDirectory: $logs_dirs"

# Runs ExecStart in the sandbox with `cfg` as /etc/amazon/xray/cfg.yaml, for `seconds`, then
# SIGTERM; the test's /var/log is left in $work/<name>/log, the daemon's stdout and stderr in
# $work/<name>/output. Prints the daemon's exit status.
run_unit() {
  local name=$1 cfg=$2 seconds=$3 dir=$work/$1
  mkdir -p "$dir/etc-upper/amazon/xray" "$dir/etc-work" "$dir/log/not-a-logs-directory"
  cp "$cfg" "$dir/etc-upper/amazon/xray/cfg.yaml"
  chmod -R a+rX "$dir/etc-upper"
  # Writable by the service user but not a LogsDirectory: only the sandbox can stop a write.
  chown "$user:$user" "$dir/log/not-a-logs-directory"
  for d in $logs_dirs; do
    install -d -m 0750 -o "$user" -g "$user" "$dir/log/$d"
  done
  # A stale /etc/xrayd/cfg.yaml on this machine comes second: the Go file must still win.
  unshare --mount --net --fork -- bash -euo pipefail -c '
    dir=$1 seconds=$2 user=$3 logs_dirs=$4; shift 4
    mount --make-rprivate /
    ip link set lo up
    mount -t overlay overlay -o "lowerdir=/etc,upperdir=$dir/etc-upper,workdir=$dir/etc-work" /etc
    mount --bind "$dir/log" /var/log
    # ProtectSystem=strict: the whole hierarchy read-only but the API file systems.
    findmnt -rn -o TARGET | sort -r | while read -r m; do
      case "$m" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
      mount -o remount,bind,ro "$m" 2>/dev/null || true
    done
    # LogsDirectory= (systemd adds each to the writable paths).
    for d in $logs_dirs; do
      mount --bind "/var/log/$d" "/var/log/$d"
      mount -o remount,bind,rw "/var/log/$d"
    done
    if touch /var/log/probe 2>/dev/null || touch /etc/probe 2>/dev/null; then
      echo "FAIL: the reproduction of ProtectSystem=strict left / writable"; exit 1
    fi
    cd /
    setpriv --reuid="$user" --regid="$user" --clear-groups --no-new-privs -- "$@" &
    pid=$!
    for _ in $(seq $((seconds * 10))); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -TERM "$pid" 2>/dev/null || true
    rc=0
    wait "$pid" || rc=$?
    echo "unit exit status: $rc"  # stdout was opened before the file systems turned read-only
  ' sandbox "$dir" "$seconds" "$user" "$logs_dirs" $exec_start > "$dir/output" 2>&1 || {
    echo "FAIL: the sandbox could not be built:" >&2; cat "$dir/output" >&2; exit 1; }
  sed -n 's/^unit exit status: //p' "$dir/output" | tail -1
}

# 1. The guide's file, verbatim: the daemon starts, writes /var/log/xray/xray.log, stops on
#    SIGTERM with exit 0.
rc=$(run_unit guide "$guide" 3)
log=$work/guide/log/xray/xray.log
if [ "$rc" != 0 ] || [ ! -s "$log" ]; then
  echo "FAIL: exit $rc, log file ${log#"$work"/}:"; cat "$log" 2>/dev/null; cat "$work/guide/output"
  exit 1
fi
for line in '\[Warn\] Config file /etc/amazon/xray/cfg.yaml has no Version key' \
            '\[Info\] Initializing AWS X-Ray daemon' '\[Info\] Exit summary: received=0 '; do
  grep -q "$line" "$log" ||
    { echo "FAIL: /var/log/xray/xray.log lacks /$line/:"; cat "$log"; exit 1; }
done
[ "$(stat -c %u "$log")" = "$user" ] ||
  { echo "FAIL: the log is not owned by the service user"; exit 1; }
echo "ok: started as the unit starts it, the daemon wrote /var/log/xray/xray.log and exited 0"

# 2. Control: the same file with LogPath outside the LogsDirectory= list: the daemon cannot open
#    it (read-only file system) and exits 1 naming the file.
sed 's|/var/log/xray/xray.log|/var/log/not-a-logs-directory/xray.log|' "$guide" \
  > "$work/elsewhere.yaml"
rc=$(run_unit elsewhere "$work/elsewhere.yaml" 10)
if [ "$rc" != 1 ] || [ -e "$work/elsewhere/log/not-a-logs-directory/xray.log" ] ||
   ! grep -q 'not-a-logs-directory/xray.log.*Read-only file system' "$work/elsewhere/output"; then
  echo "FAIL: a log path outside LogsDirectory= was writable (exit $rc):"
  cat "$work/elsewhere/output"; exit 1
fi
echo "ok: outside LogsDirectory= the same daemon gets 'Read-only file system' and exits 1"
