#!/usr/bin/env bash
# Builds xrayd_<version>_<arch>.deb with dpkg-deb from a meson build directory: the binary, the
# systemd unit, /etc/xrayd/cfg.yaml (conffile), the logrotate snippet (conffile), xrayd(8) and
# the maintainer scripts. The service runs with DynamicUser=yes, so no account is created.
# Usage: tools/build-deb.sh [BUILD_DIR [OUT_DIR]]   (defaults: build, BUILD_DIR)
# Environment (tools/build-release.sh): XRAYD_DEB_STATIC=1 for a statically linked binary (no
# shared-library Depends), XRAYD_DEB_ARCH (default: this machine's), XRAYD_DEB_EXEC (a wrapper
# that runs the binary, e.g. qemu-aarch64-static for an arm64 build).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
out=${2:-$build}
bin=$build/src/xrayd
if [ ! -x "$bin" ]; then
  echo "build-deb: $bin not found; build it first: ninja -C $build src/xrayd" >&2
  exit 1
fi
for tool in dpkg-deb dpkg dpkg-shlibdeps python3 gzip; do
  command -v "$tool" >/dev/null ||
    { echo "build-deb: $tool is missing (tools/install-deps.sh installs it)" >&2; exit 1; }
done

# "AWS X-Ray daemon version: xrayd 0.1.0" -> 0.1.0 (the binary is the truth, not the sources)
run=${XRAYD_DEB_EXEC:-}
version=$($run "$bin" -v | sed -n 's/^AWS X-Ray daemon version: xrayd //p')
[ -n "$version" ] || { echo "build-deb: cannot read the version from $bin -v" >&2; exit 1; }
arch=${XRAYD_DEB_ARCH:-$(dpkg --print-architecture)}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$src" log -1 --format=%ct 2>/dev/null || date +%s)}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg=$stage/pkg
install -d -m 0755 "$pkg/DEBIAN"
install -D -m 0755 "$bin" "$pkg/usr/bin/xrayd"
${XRAYD_DEB_STRIP:-strip} --strip-unneeded --remove-section=.comment "$pkg/usr/bin/xrayd" 2>/dev/null || true
# The Go daemon's command name (`xray --version`, scripts); xrayd does not look at argv[0].
ln -s xrayd "$pkg/usr/bin/xray"
printf '#!/bin/sh\nexec %s "%s" "$@"\n' "$run" "$bin" > "$stage/run-xrayd"
chmod +x "$stage/run-xrayd"
sed 's|@BINDIR@|/usr/bin|g' "$src/systemd/xrayd.service.in" > "$stage/xrayd.service"
install -D -m 0644 "$stage/xrayd.service" "$pkg/lib/systemd/system/xrayd.service"
# `systemctl start xray` before any `enable` (the unit's Alias= only links once enabled).
ln -s xrayd.service "$pkg/lib/systemd/system/xray.service"
install -D -m 0644 "$src/systemd/cfg.yaml" "$pkg/etc/xrayd/cfg.yaml"
install -D -m 0644 "$src/systemd/xrayd.logrotate" "$pkg/etc/logrotate.d/xrayd"
python3 "$src/docs/gen_manpage.py" --binary "$stage/run-xrayd" --template "$src/docs/xrayd.8.in" \
  --version "$version" --output "$stage/xrayd.8"
install -d -m 0755 "$pkg/usr/share/man/man8" "$pkg/usr/share/doc/xrayd"
gzip -9n -c "$stage/xrayd.8" > "$pkg/usr/share/man/man8/xrayd.8.gz"
install -m 0644 "$src/docs/migrating-from-aws-xray-daemon.md" "$pkg/usr/share/doc/xrayd/"
cat > "$pkg/usr/share/doc/xrayd/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: xrayd

Files: *
License: Apache-2.0
 On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.
EOF

# Runtime dependencies: the packages that ship the shared libraries the binary needs, with
# their shlibs/symbols versions, as dpkg-shlibdeps (dpkg-dev) knows them; none for the static
# binary. No hand-made fallback: dpkg -S on a library path misses packages on merged-/usr
# systems, where the linker resolves /usr/lib/... and dpkg registered /lib/... (libc6 and
# libgcc-s1 dropped out of Depends).
if [ "${XRAYD_DEB_STATIC:-0}" = 1 ]; then
  depends=""
else
  mkdir -p "$stage/shlibs/debian"
  touch "$stage/shlibs/debian/control"
  err=$stage/shlibdeps.err
  if ! depends=$(cd "$stage/shlibs" && dpkg-shlibdeps -O "$pkg/usr/bin/xrayd" 2>"$err" |
                 sed -n 's/^shlibs:Depends=//p') || [ -z "$depends" ]; then
    echo "build-deb: dpkg-shlibdeps could not compute the dependencies:" >&2
    cat "$err" >&2
    exit 1
  fi
fi
depends="${depends:+$depends, }procps"  # /bin/kill: the unit's ExecReload

installed_kb=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat > "$pkg/DEBIAN/control" <<EOF
Package: xrayd
Version: $version
Architecture: $arch
Maintainer: xrayd maintainers <xrayd@localhost>
Installed-Size: $installed_kb
Depends: $depends
Recommends: logrotate
Provides: xray
Conflicts: xray
Replaces: xray
Section: net
Priority: optional
Description: drop-in replacement for the AWS X-Ray daemon
 xrayd receives trace segments over UDP, batches them and uploads them to
 AWS X-Ray, with the Go daemon's flags, cfg.yaml and log format. It adds a
 health and Prometheus metrics endpoint, systemd notification and watchdog,
 SIGHUP reload and a hardened systemd unit.
EOF
printf '%s\n' /etc/xrayd/cfg.yaml /etc/logrotate.d/xrayd > "$pkg/DEBIAN/conffiles"

cat > "$pkg/DEBIAN/postinst" <<'EOF'
#!/bin/sh
# The service is not enabled or started on first install: review /etc/xrayd/cfg.yaml, then
# `systemctl enable --now xrayd`. An upgrade restarts it if it was running.
set -e
if [ "$1" = "configure" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
    if [ -n "$2" ]; then
        systemctl try-restart xrayd.service >/dev/null 2>&1 || true
    fi
fi
exit 0
EOF
cat > "$pkg/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = "remove" ] || [ "$1" = "deconfigure" ]; then
    if [ -d /run/systemd/system ]; then
        systemctl stop xrayd.service >/dev/null 2>&1 || true
    fi
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable xrayd.service >/dev/null 2>&1 || true
    fi
fi
exit 0
EOF
cat > "$pkg/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = "purge" ]; then
    # DynamicUser=yes keeps the logs in /var/log/private/xrayd behind a /var/log/xrayd link.
    rm -rf /var/log/xrayd /var/log/private/xrayd /var/log/private/xray
    # StateDirectory= (the disk spool): purge means its undelivered segments go too.
    rm -rf /var/lib/xrayd /var/lib/private/xrayd
    if [ -L /var/log/xray ]; then rm -f /var/log/xray; fi
    rm -f /etc/systemd/system/multi-user.target.wants/xrayd.service
    if [ "$(readlink /etc/systemd/system/xray.service)" = /lib/systemd/system/xrayd.service ]; then
        rm -f /etc/systemd/system/xray.service
    fi
    rm -rf /var/lib/systemd/deb-systemd-helper-enabled/xrayd.service.dsh-also
    rmdir /etc/xrayd 2>/dev/null || true
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
EOF
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm" "$pkg/DEBIAN/postrm"
(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
   xargs -0 md5sum > DEBIAN/md5sums)

mkdir -p "$out"
deb="$out/xrayd_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"
