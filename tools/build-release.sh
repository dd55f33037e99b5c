#!/usr/bin/env bash
# Builds the release artifacts into dist/: per architecture a statically linked xrayd in a
# tarball, a .deb and an .rpm; the OCI image archive for both; SHA256SUMS. Installs what it
# needs from Debian's archive (as root). Reproducible: the same commit gives the same bytes
# (SOURCE_DATE_EPOCH defaults to the commit time).
# Usage: tools/build-release.sh [--packages-only]   (--packages-only: install, build nothing)
# Environment: XRAYD_RELEASE_ARCHES ("x86_64 aarch64"), XRAYD_RELEASE_OUT (dist),
#   XRAYD_RELEASE_CACHE (build-release: build dirs and the static dependencies, kept between
#   runs), XRAYD_RELEASE_IMAGE (1: build the OCI image; 0: skip it).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
arches=${XRAYD_RELEASE_ARCHES:-x86_64 aarch64}
out=${XRAYD_RELEASE_OUT:-$src/dist}
cache=${XRAYD_RELEASE_CACHE:-$src/build-release}
mkdir -p "$out" "$cache"
out=$(cd "$out" && pwd)
cache=$(cd "$cache" && pwd)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$src" log -1 --format=%ct)}
export TZ=UTC LC_ALL=C.UTF-8

debian_arch() { case $1 in x86_64) echo amd64 ;; aarch64) echo arm64 ;; esac; }

# --- what the build needs, from Debian's archive -------------------------------------------
install_packages() {
  local packages=(meson ninja-build pkg-config g++ dpkg-dev python3 file rpm umoci skopeo
                  ca-certificates libfmt-dev libsimdjson-dev libmicrohttpd-dev doctest-dev openssl)
  # libyaml-cpp-dev is not Multi-Arch: same (the :arm64 one would remove the native one), so
  # tools/release-deps.sh unpacks a foreign architecture's into its own prefix instead.
  local arch_libs=(libc-ares-dev libnghttp2-dev libssl-dev zlib1g-dev liburing-dev libfmt-dev
                  libprotobuf-dev)
  packages+=(libyaml-cpp-dev)
  local a d
  for a in $arches; do
    d=$(debian_arch "$a")
    if [ "$d" = "$(dpkg --print-architecture)" ]; then
      packages+=("${arch_libs[@]}")
    else
      packages+=("g++-$a-linux-gnu" qemu-user-static "${arch_libs[@]/%/:$d}")
      dpkg --print-foreign-architectures | grep -qx "$d" || { need_update=1; dpkg --add-architecture "$d"; }
    fi
  done
  # apt-get source needs deb-src entries: the same Debian mirrors as the binary packages, from
  # whichever files name bookworm, one-line (sources.list, *.list) or deb822 (*.sources, as
  # debian.sources on a stock install or 0000debian.sources from mmdebstrap).
  if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ &&
     ! grep -qs '^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/*.list; then
    local f deb822="" one_line=""
    for f in /etc/apt/sources.list.d/*.sources; do
      if grep -qs bookworm "$f"; then deb822+=$(sed 's/^Types: deb$/Types: deb-src/' "$f")$'\n\n'; fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      if grep -qs bookworm "$f"; then one_line+=$(sed -n 's/^deb \(.*bookworm.*\)$/deb-src \1/p' "$f")$'\n'; fi
    done
    if [ -z "${deb822//[$'\n']/}" ] && [ -z "${one_line//[$'\n']/}" ]; then
      echo "build-release: no bookworm entry in /etc/apt to add deb-src entries for" >&2
      exit 1
    fi
    [ -z "${deb822//[$'\n']/}" ] ||
      printf '%s' "$deb822" > /etc/apt/sources.list.d/xrayd-release-src.sources
    [ -z "${one_line//[$'\n']/}" ] ||
      printf '%s' "$one_line" > /etc/apt/sources.list.d/xrayd-release-src.list
    need_update=1
  fi
  local missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ] || [ -n "${need_update:-}" ]; then
    [ "$(id -u)" -eq 0 ] || { echo "build-release: run as root to install: ${missing[*]}" >&2; exit 1; }
    echo "build-release: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    [ ${#missing[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# --- the static binary ----------------------------------------------------------------------
# build_static ARCH: configures and builds $cache/ARCH with the static libraries.
build_static() {
  local arch=$1 prefix dir
  prefix=$(bash "$src/tools/release-deps.sh" "$arch" "$cache/deps" | tail -1)
  dir=$cache/$arch
  # Tests are configured (not built here): tests/integration/release_test.py builds and runs
  # the arm64 unit tests under qemu in the same directory.
  local setup=(--buildtype=release -Dstatic_release=true -Dtests=enabled
               -Dbenchmarks=disabled -Dpkg_config_path="$prefix/lib/pkgconfig"
               -Dcpp_args="-ffile-prefix-map=$src/=")
  if [ "$arch" != "$(uname -m)" ]; then
    setup+=(--cross-file "$src/tools/cross/$arch-linux-gnu.ini")
  fi
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$src" "${setup[@]}" >"$cache/$arch-setup.log" ||
      { tail -20 "$cache/$arch-setup.log" >&2; exit 1; }
  fi
  ninja -C "$dir" src/xrayd docs/xrayd.8 >"$cache/$arch-ninja.log" ||
    { tail -40 "$cache/$arch-ninja.log" >&2; exit 1; }
  # The point of it all: no interpreter, no NEEDED libraries.
  if readelf -d "$dir/src/xrayd" 2>/dev/null | grep -q NEEDED ||
     readelf -l "$dir/src/xrayd" | grep -q INTERP; then
    echo "build-release: $dir/src/xrayd is not statically linked" >&2
    exit 1
  fi
}

# --- packages -------------------------------------------------------------------------------
tar_reproducibly() {  # tar_reproducibly OUT.tar.gz DIR NAME
  tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$2" -cf - "$3" | gzip -9n > "$1"
}

triple() { echo "$1-linux-gnu"; }

# exec_wrapper ARCH: how to run a binary of ARCH here ("" natively).
exec_wrapper() { [ "$1" = "$(uname -m)" ] || echo "qemu-$1-static"; }

make_tarball() {
  local arch=$1 name stage
  name=xrayd-$version-linux-$arch
  stage=$cache/stage/$arch/tarball
  rm -rf "$stage" && mkdir -p "$stage/$name"
  install -m 0755 "$cache/$arch/src/xrayd" "$stage/$name/xrayd"
  "$(triple "$arch")-strip" --strip-unneeded --remove-section=.comment "$stage/$name/xrayd"
  sed 's|@BINDIR@|/usr/local/bin|g' "$src/systemd/xrayd.service.in" > "$stage/$name/xrayd.service"
  install -m 0644 "$src/systemd/cfg.yaml" "$src/LICENSE" "$stage/$name/"
  install -m 0644 "$cache/$arch/docs/xrayd.8" "$stage/$name/xrayd.8"
  sed "s/@VERSION@/$version/g; s/@ARCH@/$arch/g" "$src/tools/release/INSTALL.in" \
    > "$stage/$name/INSTALL"
  chmod 0644 "$stage/$name/xrayd.service" "$stage/$name/INSTALL"
  chmod 0755 "$stage/$name"
  tar_reproducibly "$out/$name.tar.gz" "$stage" "$name"
}

make_deb() {
  local arch=$1
  XRAYD_DEB_STATIC=1 XRAYD_DEB_ARCH=$(debian_arch "$arch") XRAYD_DEB_EXEC=$(exec_wrapper "$arch") \
    XRAYD_DEB_STRIP=$(triple "$arch")-strip \
    bash "$src/tools/build-deb.sh" "$cache/$arch" "$out" >/dev/null
}

# make_rpm ARCH: rpmbuild from Debian's rpm package, the files staged here, the scriptlets in
# tools/release/xrayd.spec.in (no %systemd_* macros on Debian: their equivalent is written out).
make_rpm() {
  local arch=$1 top root
  top=$cache/stage/$arch/rpm
  root=$top/root
  rm -rf "$top" && mkdir -p "$root" "$top/SPECS"
  install -D -m 0755 "$cache/$arch/src/xrayd" "$root/usr/bin/xrayd"
  "$(triple "$arch")-strip" --strip-unneeded --remove-section=.comment "$root/usr/bin/xrayd"
  sed 's|@BINDIR@|/usr/bin|g' "$src/systemd/xrayd.service.in" > "$top/xrayd.service"
  install -D -m 0644 "$top/xrayd.service" "$root/usr/lib/systemd/system/xrayd.service"
  install -D -m 0644 "$src/systemd/cfg.yaml" "$root/etc/xrayd/cfg.yaml"
  install -D -m 0644 "$src/systemd/xrayd.logrotate" "$root/etc/logrotate.d/xrayd"
  install -d -m 0755 "$root/usr/share/man/man8"
  gzip -9n -c "$cache/$arch/docs/xrayd.8" > "$root/usr/share/man/man8/xrayd.8.gz"
  install -D -m 0644 "$src/LICENSE" "$root/usr/share/licenses/xrayd/LICENSE"
  sed "s/@VERSION@/$version/g" "$src/tools/release/xrayd.spec.in" > "$top/SPECS/xrayd.spec"
  rpmbuild -bb --quiet --target "$arch-linux" \
    --define "_topdir $top" --define "_rpmdir $top/RPMS" --define "staged_root $root" \
    --define "_buildhost xrayd-release" \
    --define "use_source_date_epoch_as_buildtime 1" \
    --define "clamp_mtime_to_source_date_epoch 1" \
    --define "source_date_epoch_from_changelog 0" \
    --define "_build_id_links none" \
    "$top/SPECS/xrayd.spec" >"$top/rpmbuild.log" 2>&1 ||
    { tail -30 "$top/rpmbuild.log" >&2; exit 1; }
  cp "$top/RPMS/$arch/xrayd-$version-1.$arch.rpm" "$out/"
}

version=$(sed -n "s/^  version : '\(.*\)',$/\1/p" "$src/meson.build")
[ -n "$version" ] || { echo "build-release: no version in meson.build" >&2; exit 1; }

install_packages
if [ "${1:-}" = --packages-only ]; then
  exit 0
fi
# The static libraries of every architecture at once: their configure scripts and simdjson's one
# big file keep a single core busy each.
deps_pids=()
for arch in $arches; do
  bash "$src/tools/release-deps.sh" "$arch" "$cache/deps" >"$cache/$arch-deps.log" 2>&1 &
  deps_pids+=("$!")
done
for pid in "${deps_pids[@]}"; do
  wait "$pid" || { tail -40 "$cache"/*-deps.log >&2; exit 1; }
done
for arch in $arches; do
  echo "build-release: static xrayd for $arch"
  build_static "$arch"
  file "$cache/$arch/src/xrayd"
  make_tarball "$arch"
  make_deb "$arch"
  make_rpm "$arch"
done
if [ "${XRAYD_RELEASE_IMAGE:-1}" = 1 ]; then
  bash "$src/tools/release/build-image.sh" "$version" "$cache" "$out" $arches
fi
(cd "$out" && rm -f SHA256SUMS && sha256sum -- xrayd[-_]"$version"* > SHA256SUMS)
echo "build-release: wrote $out:"
(cd "$out" && ls -l)
