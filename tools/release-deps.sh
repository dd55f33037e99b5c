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

# compiled_library NAME VERSION DESCRIPTION STD OPT INCLUDE_DIR SOURCE...: a static library of
# the sources, compiled as they are (no build system), and its .pc.
compiled_library() {
  local name=$1 version=$2 description=$3 std=$4 opt=$5 include=$6 objects=() unit object
  shift 6
  rm -rf "${work:?}/$name" && mkdir -p "$work/$name"
  for unit in "$@"; do
    object=$work/$name/$(basename "${unit%.*}").o
    $CXX -std="$std" "$opt" -g0 -fPIE -DNDEBUG -ffile-prefix-map="$cache"=. -I"$include" \
      -c "$unit" -o "$object"
    objects+=("$object")
  done
  rm -f "$prefix/lib/lib$name.a"
  $AR rcsD "$prefix/lib/lib$name.a" "${objects[@]}"
  cat > "$prefix/lib/pkgconfig/$name.pc" <<EOF
prefix=$prefix
Name: $name
Description: $description
Version: $version
Libs: -L\${prefix}/lib -l$name
Cflags: -I\${prefix}/include
EOF
}

if [ ! -f "$prefix/lib/libsimdjson.a" ]; then
  echo "release-deps: building simdjson for $arch"
  src=$(unpack simdjson)
  version=$(sed -n 's/^#define SIMDJSON_VERSION "\?\([0-9.]*\)"\?$/\1/p' "$src/singleheader/simdjson.h")
  compiled_library simdjson "$version" "simdjson (static, from Debian's source package)" \
    c++17 -O3 "$src/singleheader" "$src/singleheader/simdjson.cpp"
  install -m 0644 "$src/singleheader/simdjson.h" "$prefix/include/simdjson.h"
fi
if [ ! -f "$prefix/lib/libfmt.a" ]; then
  echo "release-deps: building fmt for $arch"
  src=$(unpack fmtlib)
  version=$(sed -n 's/^#define FMT_VERSION \([0-9]*\)$/\1/p' "$src/include/fmt/core.h")
  version=$((version / 10000)).$((version / 100 % 100)).$((version % 100))
  compiled_library fmt "$version" "fmt (static, from Debian's source package fmtlib)" \
    c++17 -O2 "$src/include" "$src/src/format.cc" "$src/src/os.cc"
  rm -rf "$prefix/include/fmt" && cp -r "$src/include/fmt" "$prefix/include/fmt"
fi
echo "$prefix"
