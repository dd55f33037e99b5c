#!/usr/bin/env bash
# Builds the static libraries a static xrayd needs that Debian 12 ships only as shared objects
# or with dependencies that have no static form, from Debian's own source packages, into
# CACHE/ARCH/prefix. Called by tools/build-release.sh; reuses what an earlier run built.
#   curl:          Debian's libcurl.a wants libpsl, libssh2, librtmp, GSSAPI/krb5 and LDAP, which
#                  have no .a; rebuilt with only OpenSSL, zlib, nghttp2 and c-ares (DNS without
#                  glibc's NSS modules), HTTP(S) only.
#   libmicrohttpd: Debian's .a is built with GnuTLS (p11-kit has no .a); xrayd serves plain HTTP
#                  only (admin, sampling proxy), so it is rebuilt with --disable-https.
#   simdjson:      Debian ships libsimdjson.so only; its amalgamated simdjson.cpp is compiled.
#   fmt:           Debian ships libfmt.so only; its two sources (format.cc, os.cc) are compiled.
#                  Header-only fmt would compile fmt's whole implementation into every object
#                  of xrayd: it doubled the release build's compile time.
# Usage: tools/release-deps.sh ARCH CACHE   (ARCH: x86_64 or aarch64)
set -euo pipefail

arch=$1
cache=$(mkdir -p "$2" && cd "$2" && pwd)
prefix=$cache/$arch/prefix
srcdir=$cache/$arch/src  # per architecture: build-release.sh builds them at the same time
work=$cache/$arch/work
mkdir -p "$prefix/lib/pkgconfig" "$prefix/include" "$srcdir" "$work"

case $arch in
  x86_64) triple=x86_64-linux-gnu ;;
  aarch64) triple=aarch64-linux-gnu ;;
  *) echo "release-deps: unknown ARCH $arch (x86_64 or aarch64)" >&2; exit 1 ;;
esac
export CC=$triple-gcc CXX=$triple-g++ AR=$triple-ar RANLIB=$triple-ranlib
# Only the target's multiarch .pc files and ours: never the build machine's, when crossing.
export PKG_CONFIG_LIBDIR=$prefix/lib/pkgconfig:/usr/lib/$triple/pkgconfig:/usr/share/pkgconfig
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0}
cflags="-O2 -g0 -fPIE -ffile-prefix-map=$cache=."
jobs=$(nproc)

# unpack PACKAGE: Debian's source package (orig + Debian patches) into $srcdir/PACKAGE-*.
unpack() {
  local pkg=$1 dir
  dir=$(find "$srcdir" -maxdepth 1 -type d -name "$pkg-[0-9]*" | head -1)
  if [ -z "$dir" ]; then
    (cd "$srcdir" && apt-get source -qq "$pkg" >/dev/null 2>&1) ||
      { echo "release-deps: apt-get source $pkg failed (is a deb-src entry configured?)" >&2;
        exit 1; }
    dir=$(find "$srcdir" -maxdepth 1 -type d -name "$pkg-[0-9]*" | head -1)
  fi
  echo "$dir"
}

# libyaml-cpp-dev is not Multi-Arch: same: installing the arm64 one would remove the native
# one, so a foreign architecture's package is unpacked here (its libyaml-cpp.a is static).
if [ "$arch" != "$(uname -m)" ] && [ ! -f "$prefix/lib/libyaml-cpp.a" ]; then
  echo "release-deps: unpacking libyaml-cpp-dev for $arch"
  debarch=$(dpkg-architecture -qDEB_HOST_ARCH -t"$triple" 2>/dev/null)
  rm -rf "$work/yaml" && mkdir -p "$work/yaml"
  (cd "$work/yaml" && apt-get download -qq "libyaml-cpp-dev:$debarch" >/dev/null 2>&1) ||
    { echo "release-deps: apt-get download libyaml-cpp-dev:$debarch failed" >&2; exit 1; }
  dpkg-deb -x "$work"/yaml/libyaml-cpp-dev_*.deb "$work/yaml/root"
  install -m 0644 "$work/yaml/root/usr/lib/$triple/libyaml-cpp.a" "$prefix/lib/"
  cp -r "$work/yaml/root/usr/include/yaml-cpp" "$prefix/include/"
  yaml_version=$(dpkg-deb -f "$work"/yaml/libyaml-cpp-dev_*.deb Version | sed 's/+.*//')
  cat > "$prefix/lib/pkgconfig/yaml-cpp.pc" <<EOF
prefix=$prefix
Name: yaml-cpp
Description: yaml-cpp (static, from Debian's libyaml-cpp-dev:$debarch)
Version: $yaml_version
Libs: -L\${prefix}/lib -lyaml-cpp
Cflags: -I\${prefix}/include
EOF
fi

# doctest (header-only, arch-independent) ships only a CMake config: meson cannot use it when
# cross-compiling, nor natively without cmake installed (tests=enabled then fails), so a .pc for
# the unit tests of either build.
if [ ! -f "$prefix/lib/pkgconfig/doctest.pc" ]; then
  cat > "$prefix/lib/pkgconfig/doctest.pc" <<EOF
Name: doctest
Description: doctest (header-only, Debian's doctest-dev)
Version: $(dpkg-query -W -f='${Version}' doctest-dev | sed 's/-[^-]*$//')
Cflags:
EOF
fi

if [ ! -f "$prefix/lib/libcurl.a" ]; then
  echo "release-deps: building curl for $arch"
  src=$(unpack curl)
  rm -rf "$work/curl" && mkdir -p "$work/curl"
  (cd "$work/curl" && "$src/configure" -q --host="$triple" --prefix="$prefix" \
      CFLAGS="$cflags" \
      --disable-shared --enable-static --with-openssl --with-zlib --with-nghttp2 \
      --enable-ares --disable-threaded-resolver \
      --without-libpsl --without-libidn2 --without-brotli --without-zstd --without-libssh2 \
      --without-libssh --without-librtmp --without-gssapi --without-libgsasl --without-hyper \
      --without-ngtcp2 --without-nghttp3 --without-quiche --without-msh3 \
      --disable-ldap --disable-ldaps --disable-rtsp --disable-dict --disable-telnet \
      --disable-tftp --disable-pop3 --disable-imap --disable-smtp --disable-gopher \
      --disable-mqtt --disable-smb --disable-ftp --disable-file --disable-manual \
      --disable-docs --without-ca-bundle --without-ca-path --without-ca-fallback &&
    make -s -j"$jobs" -C lib && make -s -C lib install && make -s -C include install &&
    make -s install-pkgconfigDATA) >"$work/curl.log" 2>&1 ||
    { tail -30 "$work/curl.log" >&2; exit 1; }
fi

if [ ! -f "$prefix/lib/libmicrohttpd.a" ]; then
  echo "release-deps: building libmicrohttpd for $arch"
  src=$(unpack libmicrohttpd)
  rm -rf "$work/mhd" && mkdir -p "$work/mhd"
  (cd "$work/mhd" && "$src/configure" -q --host="$triple" --prefix="$prefix" \
      CFLAGS="$cflags" --disable-shared --enable-static --disable-https --disable-curl \
      --disable-doc --disable-examples --disable-tools &&
    make -s -j"$jobs" -C src/microhttpd && make -s -C src/microhttpd install &&
    make -s -C src/include install && make -s install-pkgconfigDATA) >"$work/mhd.log" 2>&1 ||
    { tail -30 "$work/mhd.log" >&2; exit 1; }
fi

if [ ! -f "$prefix/lib/libsimdjson.a" ]; then
  echo "release-deps: building simdjson for $arch"
  src=$(unpack simdjson)
  rm -rf "$work/simdjson" && mkdir -p "$work/simdjson"
  version=$(sed -n 's/^#define SIMDJSON_VERSION "\?\([0-9.]*\)"\?$/\1/p' "$src/singleheader/simdjson.h")
  $CXX -std=c++17 -O3 -g0 -fPIE -DNDEBUG -ffile-prefix-map="$cache"=. \
    -I"$src/singleheader" -c "$src/singleheader/simdjson.cpp" -o "$work/simdjson/simdjson.o"
  rm -f "$prefix/lib/libsimdjson.a"
  $AR rcsD "$prefix/lib/libsimdjson.a" "$work/simdjson/simdjson.o"
  install -m 0644 "$src/singleheader/simdjson.h" "$prefix/include/simdjson.h"
  cat > "$prefix/lib/pkgconfig/simdjson.pc" <<EOF
prefix=$prefix
Name: simdjson
Description: simdjson (static, from Debian's source package)
Version: $version
Libs: -L\${prefix}/lib -lsimdjson
Cflags: -I\${prefix}/include
EOF
fi
if [ ! -f "$prefix/lib/libfmt.a" ]; then
  echo "release-deps: building fmt for $arch"
  src=$(unpack fmtlib)
  rm -rf "$work/fmt" && mkdir -p "$work/fmt"
  version=$(sed -n 's/^#define FMT_VERSION \([0-9]*\)$/\1/p' "$src/include/fmt/core.h")
  version=$((version / 10000)).$((version / 100 % 100)).$((version % 100))
  for unit in format os; do
    $CXX -std=c++17 -O2 -g0 -fPIE -DNDEBUG -ffile-prefix-map="$cache"=. -I"$src/include" \
      -c "$src/src/$unit.cc" -o "$work/fmt/$unit.o"
  done
  rm -f "$prefix/lib/libfmt.a"
  $AR rcsD "$prefix/lib/libfmt.a" "$work/fmt/format.o" "$work/fmt/os.o"
  rm -rf "$prefix/include/fmt" && cp -r "$src/include/fmt" "$prefix/include/fmt"
  cat > "$prefix/lib/pkgconfig/fmt.pc" <<EOF
prefix=$prefix
Name: fmt
Description: fmt (static, from Debian's source package fmtlib)
Version: $version
Libs: -L\${prefix}/lib -lfmt
Cflags: -I\${prefix}/include
EOF
fi
echo "$prefix"
