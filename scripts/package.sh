#!/usr/bin/env bash
# Builds memkv's release packages with CPack (docs/packaging.md): a .deb and
# an .rpm of one `memkv` package (server, memkv-bench, libmemkv.so with
# headers, memkv.pc and the CMake package, the preload shim, the wheels,
# the docs, the systemd unit), stripped, with their debug info apart in a
# tarball by build id, linked portably (-DMEMKV_PORTABLE=ON: static
# dependencies, glibc 2.34); then checks them: the binaries need nothing of
# the host but glibc <= 2.34 and the fabric libraries
# (scripts/portable-check.sh, and the .deb's Depends and .rpm's requires say
# so), lintian on the .deb (no errors), `rpm -qlp` lists the same files as
# the .deb, and the unit passes systemd-analyze verify. Writes the packages
# and sha256sums into OUT_DIR.
# Then runs the packaged binaries: `memkv setup` on two sparse files, the
# server on that config and a `memkv kv put/get` round trip.
#
# MEMKV_PACKAGE_ARCH=arm64 makes the arm64 packages on an amd64 machine
# (docs/packaging.md, "arm64"): Debian's cross toolchain against a sysroot
# of Debian's arm64 -dev packages (scripts/cross-sysroot.sh), the .deb's
# Depends from dpkg-shlibdeps over that sysroot's packages, and every
# packaged binary run above under qemu-user in that sysroot.
#
# Usage: scripts/package.sh [OUT_DIR]   (default BUILD/out)
#   MEMKV_PACKAGE_ARCH=ARCH  the Debian architecture to pack (default the machine's)
#   MEMKV_PACKAGE_BUILD=DIR  the build folder (default build/package, or
#                            build/package-ARCH for another architecture)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
step() { echo "package.sh: $*" >&2; }
host_arch=$(dpkg --print-architecture)
arch=${MEMKV_PACKAGE_ARCH:-$host_arch}
cross=()     # the toolchain file and sysroot of a cross build
run=()       # how this machine runs the packaged binaries
tools=       # the prefix of the binutils that read them
cross_deps=()
if [ "$arch" != "$host_arch" ]; then
  case "$arch" in
    arm64) triplet=aarch64-linux-gnu qemu=qemu-aarch64-static ;;
    *) echo "package.sh: no cross build for $arch (arm64 is the one there is)" >&2; exit 2 ;;
  esac
  cross_deps=("g++-$triplet" qemu-user-static)
fi
"$here/scripts/deps.sh" lintian rpm dpkg-dev file systemd python3-dev "${cross_deps[@]}"
if [ "$arch" = "$host_arch" ]; then
  build=${MEMKV_PACKAGE_BUILD:-$here/build/package}
else
  build=${MEMKV_PACKAGE_BUILD:-$here/build/package-$arch}
  sysroot=$("$here/scripts/cross-sysroot.sh" "$arch" "$here/build/sysroot-$arch")
  cross=(-DCMAKE_TOOLCHAIN_FILE="$here/cmake/toolchains/$triplet.cmake" -DMEMKV_SYSROOT="$sysroot")
  run=("$qemu" -L "$sysroot")
  tools=$triplet-
fi
out=${1:-$build/out}
mkdir -p "$out"

step "configuring $build (RelWithDebInfo, prefix /usr, $arch)"
# Configured afresh every time: a cache from another configuration keeps
# the shared libraries find_package found then (the objects stay, and only
# what changed is rebuilt).
rm -rf "$build/CMakeCache.txt" "$build/CMakeFiles"
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_INSTALL_PREFIX=/usr -DMEMKV_BUILD_TESTS=OFF -DMEMKV_TEST_LABELS= -DMEMKV_PORTABLE=ON "${cross[@]}" >/dev/null
step "building (ninja, $(nproc) jobs)"
cmake --build "$build" -j "$(nproc)"
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
  rm -rf "$tmp"
}
trap cleanup EXIT

cpack_args=()
if [ ${#cross[@]} -gt 0 ]; then
  # dpkg-shlibdeps, as CPack runs it for the machine's own architecture,
  # but looking the libraries up in the sysroot's packages (-S: each one
  # unpacked with its control files, symbols and shlibs).
  step "the .deb's Depends: dpkg-shlibdeps over the $arch sysroot's packages"
  DESTDIR="$tmp/stage" cmake --install "$build" >/dev/null
  version_major=$(sed -n 's/^project(memkv VERSION \([0-9]*\)\..*/\1/p' "$here/CMakeLists.txt")
  mapfile -t elfs < <(find "$tmp/stage" -type f | while read -r f; do
    [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] && echo "$f"; done)
  needed=$(for f in "${elfs[@]}"; do readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; done | sort -u)
  mkdir -p "$tmp/shlibdeps/debian" "$tmp/stage/DEBIAN"
  # The package's own library (the preload shim needs it): ours, no Depends.
  echo "libmemkv $version_major memkv" >"$tmp/stage/DEBIAN/shlibs"
  search=("-S$tmp/stage")
  printf 'Source: memkv\n\nPackage: memkv\nArchitecture: %s\n' "$arch" >"$tmp/shlibdeps/debian/control"
  for deb in "$(dirname "$sysroot")"/apt/cache/archives/*_"$arch".deb; do
    files=$(dpkg-deb -c "$deb" | awk '{print $NF}')
    for lib in $needed; do
      if grep -q "/$lib\$" <<<"$files"; then
        d="$tmp/shlibdeps/$(basename "$deb" .deb)"
        dpkg-deb -R "$deb" "$d"
        search+=("-S$d")
        break
      fi
    done
  done
  deps=$(cd "$tmp/shlibdeps" && DEB_HOST_ARCH=$arch dpkg-shlibdeps -O "${search[@]}" "${elfs[@]}" |
    sed -n 's/^shlibs:Depends=//p' | tr ',' '\n' | sed 's/^ *//' | grep -v '^memkv\b' | paste -sd, | sed 's/,/, /g')
  [ -n "$deps" ] || { echo "package.sh: dpkg-shlibdeps found no Depends for $arch" >&2; exit 1; }
  cpack_args=(-D "CPACK_DEBIAN_PACKAGE_DEPENDS=passwd, $deps")
fi

step "packing with CPack"
(cd "$build" && cpack -G "DEB;RPM" -B "$build/cpack" "${cpack_args[@]}" >/dev/null)
version=$(sed -n 's/^project(memkv VERSION \([0-9.]*\).*/\1/p' "$here/CMakeLists.txt")
mapfile -t made < <(find "$build/cpack" -maxdepth 1 -name "*.deb" -o -maxdepth 1 -name "*.ddeb" -o -maxdepth 1 -name "*.rpm")
[ ${#made[@]} -gt 0 ] || { echo "package.sh: CPack made no package" >&2; exit 1; }
cp "${made[@]}" "$out/"
deb=$(ls "$out"/memkv_"$version"_*.deb | head -1)
rpm=$(ls "$out"/memkv-"$version"-*.rpm | grep -v debuginfo | head -1)

step "memkv --version from the package${run:+ (under ${run[*]})}"
dpkg-deb -x "$deb" "$tmp/deb"
got=$("${run[@]}" "$tmp/deb/usr/bin/memkv" --version)
case "$got" in "memkv $version "*|"memkv $version") ;; *) echo "package.sh: the packaged memkv says '$got', not $version" >&2; exit 1 ;; esac

step "what the packaged binaries need of the host (scripts/portable-check.sh)"
# MEMKV_PORTABLE: glibc up to 2.34 and the host's fabric libraries, nothing
# else; the .deb's Depends (dpkg-shlibdeps) and the .rpm's automatic
# requires say the same.
"$here/scripts/portable-check.sh" "$deb" | tee "$out/portable-check.txt" >&2
host_libs='libc6|libibverbs1|librdmacm1|libfabric1|ibverbs-providers'
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends" >&2
extra=$(tr ',' '\n' <<<"$depends" | sed 's/^ *//; s/ .*//' | grep -vxE "passwd|$host_libs" || true)
[ -z "$extra" ] || { echo "package.sh: the .deb depends on more than glibc and fabric: $extra" >&2; exit 1; }
rpm -qp --requires "$rpm" 2>/dev/null >"$out/rpm-requires.txt"
extra=$(grep -vE '^(/bin/sh|rpmlib\(|rtld\(GNU_HASH\)|ld-linux-[a-z0-9_-]+\.so\.[0-9]|lib(c|m|pthread|dl|rt)\.so\.6|lib(ibverbs|rdmacm|mlx5|fabric)\.so\.1|libmemkv\.so\.0)' "$out/rpm-requires.txt" || true)
[ -z "$extra" ] || { echo "package.sh: the .rpm requires more than glibc and fabric: $extra" >&2; exit 1; }
echo "rpm requires: $(sed 's/(64bit)//' "$out/rpm-requires.txt" | grep -v '^rpmlib' | sort -u | tr '\n' ' ')" >&2

step "lintian $(basename "$deb")"
lintian --no-tag-display-limit "$deb" | tee "$out/lintian.txt" >&2 || true
if grep -q '^E: ' "$out/lintian.txt"; then
  echo "package.sh: lintian reports errors (above)" >&2
  exit 1
fi

step "the .rpm holds the same files as the .deb"
(cd "$tmp/deb" && find . -type f -o -type l | sed 's|^\.||' | sort) >"$tmp/deb.files"
rpm -qlp "$rpm" 2>/dev/null | while read -r f; do
  [ -d "$tmp/deb$f" ] && [ ! -L "$tmp/deb$f" ] && continue
  echo "$f"
done | sort >"$tmp/rpm.files"
if ! diff -u "$tmp/deb.files" "$tmp/rpm.files" >"$tmp/files.diff"; then
  cat "$tmp/files.diff" >&2
  echo "package.sh: the .deb and the .rpm hold different files" >&2
  exit 1
fi

step "systemd-analyze verify memkv.service"
sed "s|/usr/bin/memkv|$tmp/deb/usr/bin/memkv|" "$tmp/deb/usr/lib/systemd/system/memkv.service" >"$tmp/memkv.service"
systemd-analyze verify "$tmp/memkv.service"

step "the packaged server: memkv setup on two sparse files, the server, a kv round trip"
# As docs/packaging.md tells an operator: setup writes the config, the
# server runs on it (loopback, a port of its own), the CLI puts a value and
# gets it back whole.
memkv=("${run[@]}" "$tmp/deb/usr/bin/memkv")
mkdir -p "$tmp/srv"
truncate -s 1G "$tmp/srv/d0.img" "$tmp/srv/d1.img"
"${memkv[@]}" setup --drives "$tmp/srv/d0.img" "$tmp/srv/d1.img" >"$tmp/srv/config.yaml"
key=$(sed -n 's/^ *auth_key: *"\{0,1\}\([0-9a-f]\{64\}\)"\{0,1\}.*/\1/p' "$tmp/srv/config.yaml")
[ -n "$key" ] || { echo "package.sh: memkv setup wrote no auth_key" >&2; exit 1; }
. "$here/scripts/lib/server.sh"
memkv_start_server "$tmp/srv/server.err" "${memkv[@]}" -- --config "$tmp/srv/config.yaml" \
  --unix-socket "$tmp/srv/memkv.sock" ||
  { echo "package.sh: the packaged server did not start: $(cat "$tmp/srv/server.err")" >&2; exit 1; }
pid=$memkv_server_pid server=$memkv_server_address
head -c 3000000 /dev/urandom >"$tmp/srv/value.bin"
MEMKV_SERVERS=$server MEMKV_AUTH_KEY=$key "${memkv[@]}" kv put package/check "$tmp/srv/value.bin"
MEMKV_SERVERS=$server MEMKV_AUTH_KEY=$key "${memkv[@]}" kv get package/check "$tmp/srv/back.bin"
cmp "$tmp/srv/value.bin" "$tmp/srv/back.bin" ||
  { echo "package.sh: the value read back differs from the one put" >&2; exit 1; }
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
echo "package.sh: $server ($arch): setup, server, kv put/get of 3,000,000 bytes: equal" >&2

step "debug info apart: memkv-$version-debug-$arch.tar.xz"
# The packaged binaries are stripped; their debug info, from the same build,
# goes by build id (usr/lib/debug/.build-id/xx/rest.debug, where gdb and
# debuginfod clients look) into a tarball beside the packages.
mkdir -p "$tmp/debug"
find "$tmp/deb" -type f \( -name '*.so*' -o -perm -u+x \) | while read -r f; do
  file -b "$f" | grep -q '^ELF' || continue
  id=$(readelf -n "$f" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p')
  [ -n "$id" ] || continue
  name=$(basename "$f")
  built=$(find "$build" -name "$name" -type f -not -path '*/cpack/*' | while read -r b; do
    [ "$(readelf -n "$b" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p')" = "$id" ] && echo "$b" && break
  done)
  [ -n "$built" ] || { echo "package.sh: no unstripped $name with build id $id in $build" >&2; exit 1; }
  mkdir -p "$tmp/debug/usr/lib/debug/.build-id/${id:0:2}"
  "${tools}objcopy" --only-keep-debug --compress-debug-sections "$built" "$tmp/debug/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug"
done
tar -C "$tmp/debug" -cJf "$out/memkv-$version-debug-$arch.tar.xz" usr

cp "$build"/python/dist/*.whl "$out/" 2>/dev/null || true
(cd "$out" && sha256sum -- *.deb *.rpm *.tar.xz $(ls *.whl 2>/dev/null) >sha256sums)
step "done: $(cd "$out" && ls | tr '\n' ' ')"
