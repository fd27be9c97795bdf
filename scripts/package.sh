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
# Usage: scripts/package.sh [OUT_DIR]   (default build/package/out)
#   MEMKV_PACKAGE_BUILD=DIR  the build folder (default build/package)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
"$here/scripts/deps.sh" lintian rpm dpkg-dev file systemd python3-dev
build=${MEMKV_PACKAGE_BUILD:-$here/build/package}
out=${1:-$build/out}
mkdir -p "$out"
step() { echo "package.sh: $*" >&2; }

step "configuring $build (RelWithDebInfo, prefix /usr)"
# Configured afresh every time: a cache from another configuration keeps
# the shared libraries find_package found then (the objects stay, and only
# what changed is rebuilt).
rm -rf "$build/CMakeCache.txt" "$build/CMakeFiles"
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_INSTALL_PREFIX=/usr -DMEMKV_BUILD_TESTS=OFF -DMEMKV_TEST_LABELS= -DMEMKV_PORTABLE=ON >/dev/null
step "building (ninja, $(nproc) jobs)"
cmake --build "$build" -j "$(nproc)"
step "packing with CPack"
(cd "$build" && cpack -G "DEB;RPM" -B "$build/cpack" >/dev/null)
version=$(sed -n 's/^project(memkv VERSION \([0-9.]*\).*/\1/p' "$here/CMakeLists.txt")
mapfile -t made < <(find "$build/cpack" -maxdepth 1 -name "*.deb" -o -maxdepth 1 -name "*.ddeb" -o -maxdepth 1 -name "*.rpm")
[ ${#made[@]} -gt 0 ] || { echo "package.sh: CPack made no package" >&2; exit 1; }
cp "${made[@]}" "$out/"
deb=$(ls "$out"/memkv_"$version"_*.deb | head -1)
rpm=$(ls "$out"/memkv-"$version"-*.rpm | grep -v debuginfo | head -1)

step "memkv --version from the package"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp/deb"
got=$("$tmp/deb/usr/bin/memkv" --version)
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

step "debug info apart: memkv-$version-debug-$(dpkg --print-architecture).tar.xz"
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
  objcopy --only-keep-debug --compress-debug-sections "$built" "$tmp/debug/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug"
done
tar -C "$tmp/debug" -cJf "$out/memkv-$version-debug-$(dpkg --print-architecture).tar.xz" usr

cp "$build"/python/dist/*.whl "$out/" 2>/dev/null || true
(cd "$out" && sha256sum -- *.deb *.rpm *.tar.xz $(ls *.whl 2>/dev/null) >sha256sums)
step "done: $(cd "$out" && ls | tr '\n' ' ')"
