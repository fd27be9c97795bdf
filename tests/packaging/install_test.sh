#!/usr/bin/env bash
# integration: the build installed into a staging prefix (`cmake --install`,
# as the packages are made: docs/packaging.md), then what a user of the
# installed library does: a C++ program built with find_package(memkv) and a
# C program built with `pkg-config memkv`, both run against a real server;
# libmemkv.so exports only its API; the systemd unit passes
# `systemd-analyze verify`.
# Usage: install_test.sh BUILD_DIR SOURCE_DIR
set -u
build=$(realpath "$1")
src=$(realpath "$2")
dir=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
stage=$dir/stage

cmake --install "$build" --prefix "$stage" >"$dir/install.log" 2>&1 ||
  fail "cmake --install: $(tail -5 "$dir/install.log")"
libdir=$(dirname "$(find "$stage" -name 'libmemkv.so.0' | head -1)")
[ -n "$libdir" ] && [ -d "$libdir" ] || fail "no libmemkv.so.0 under $stage"
for f in bin/memkv include/memkv/memkv.h include/memkv/engine.h; do
  [ -e "$stage/$f" ] || fail "$f not installed"
done
[ -L "$libdir/libmemkv.so" ] || fail "no libmemkv.so development link"
[ -f "$libdir/memkv/libmemkv_preload.so" ] || fail "no preload shim in $libdir/memkv"
soname=$(readelf -d "$libdir/libmemkv.so.0" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libmemkv.so.0 ] || fail "soname is '$soname', not libmemkv.so.0"

# Exports: the C ABI (memkv_*) and the C++ API in namespace memkv, nothing else.
others=$(nm -D --defined-only "$libdir/libmemkv.so.0" | awk '{print $3}' | c++filt |
  grep -v -e '^memkv_' -e '^memkv::' -e '^MEMKV_' || true)
[ -z "$others" ] || fail "libmemkv.so exports more than its API: $(echo "$others" | head -5)"
nm -D --defined-only "$libdir/libmemkv.so.0" | grep -q ' T memkv_engine_create$' ||
  fail "memkv_engine_create is not exported"

# A server to run the consumers against.
. "$src/scripts/lib/server.sh"
memkv_start_server "$dir/server.err" "$stage/bin/memkv" -- \
  --unix-socket "$dir/s.sock" --set storage.mode=memory ||
  fail "could not start the installed server: $(cat "$dir/server.err")"
pid=$memkv_server_pid server=$memkv_server_address

# find_package(memkv) -> memkv::memkv
cmake -S "$src/tests/packaging/consumer" -B "$dir/cmake-consumer" -G Ninja \
  -DCMAKE_PREFIX_PATH="$stage" >"$dir/cmake.log" 2>&1 || fail "find_package: $(cat "$dir/cmake.log")"
cmake --build "$dir/cmake-consumer" >>"$dir/cmake.log" 2>&1 || fail "build: $(tail -20 "$dir/cmake.log")"
LD_LIBRARY_PATH=$libdir "$dir/cmake-consumer/consumer" "$server" || fail "the find_package consumer"

# pkg-config memkv
export PKG_CONFIG_PATH=$libdir/pkgconfig
pkg-config --exists memkv || fail "pkg-config does not find memkv in $PKG_CONFIG_PATH"
[ "$(pkg-config --modversion memkv)" = "$("$stage/bin/memkv" --version | grep -o '[0-9][0-9.]*' | head -1)" ] ||
  fail "memkv.pc's version is not memkv --version's"
# shellcheck disable=SC2046
cc -std=c11 -o "$dir/pc-consumer" "$src/tests/packaging/consumer/consumer.c" \
  $(pkg-config --cflags --libs memkv) || fail "building with pkg-config memkv"
LD_LIBRARY_PATH=$libdir "$dir/pc-consumer" "$server" || fail "the pkg-config consumer"

# The unit, with its ExecStart pointed at the staged binary.
command -v systemd-analyze >/dev/null || fail "systemd-analyze is not installed (Debian: systemd)"
sed "s|/usr/bin/memkv|$stage/bin/memkv|" "$src/packaging/memkv.service" >"$dir/memkv.service"
out=$(systemd-analyze verify "$dir/memkv.service" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify: $out"
echo PASS
