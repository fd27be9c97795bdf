#!/usr/bin/env bash
# The portability figures of memkv's binaries (docs/packaging.md,
# "Portability"; docs/python.md, "Wheels"): for every ELF object given, its
# DT_NEEDED libraries and the newest GLIBC_ symbol version it needs.
# Allowed: glibc's own libraries, the host's fabric libraries (libibverbs,
# librdmacm, libmlx5, libfabric) and the objects of the set itself (the
# preload shim on libmemkv.so.0, the wheel's extension on its libmemkv.so);
# glibc MEMKV_MAX_GLIBC (2.34) at most.
# Usage: scripts/portable-check.sh [FILE...]
#   FILE: a wheel or a .deb (unpacked, every ELF object in it), a folder
#   (every ELF object under it) or an ELF file. No FILE: the memkv wheel of
#   build/release (tests/python/wheel_test.sh passes its own).
# Exits 1 when a requirement does not hold, after printing every figure.
set -u
max_glibc=${MEMKV_MAX_GLIBC:-2.34}
[ $# -gt 0 ] || set -- $(ls "$(dirname "$0")"/../build/release/python/dist/memkv-*-*linux_*.whl 2>/dev/null | head -1)
[ $# -gt 0 ] || { echo "no memkv wheel (build the memkv_wheels target), and no file named" >&2; exit 2; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

objects=()
n=0
for f in "$@"; do
  [ -e "$f" ] || { echo "portable-check: no $f" >&2; exit 2; }
  case "$f" in
    *.whl) n=$((n + 1)); /usr/bin/python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$f" "$dir/$n"; root=$dir/$n ;;
    *.deb) n=$((n + 1)); dpkg-deb -x "$f" "$dir/$n"; root=$dir/$n ;;
    *) root=$f ;;
  esac
  echo "checking: $f"
  while IFS= read -r o; do
    [ -L "$o" ] && continue
    [ "$(head -c 4 "$o" | od -An -c | tr -d ' ')" = '177ELF' ] && objects+=("$o")
  done < <(find "$root" -type f | sort)
done
[ ${#objects[@]} -gt 0 ] || { echo "portable-check: no ELF object in $*" >&2; exit 2; }

carried=$(for o in "${objects[@]}"; do
  basename "$o"
  readelf -d "$o" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p'
done)
allowed='^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|ld-linux-x86-64\.so\.2|ld-linux-aarch64\.so\.1|libibverbs\.so\.1|librdmacm\.so\.1|libmlx5\.so\.1|libfabric\.so\.1)$'
ok=1
for o in "${objects[@]}"; do
  name=${o#"$dir"/*/}
  needed=$(readelf -d "$o" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  glibc=$(objdump -T "$o" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
  echo "$name"
  echo "  glibc: ${glibc:-none}"
  cxx=$(objdump -T "$o" | grep -o '\(GLIBCXX\|CXXABI\)_[0-9.]*' | sort -uV | tr '\n' ' ')
  [ -n "$cxx" ] && echo "  libstdc++ versions: $cxx"
  if [ -n "$glibc" ] && [ "$(printf '%s\n%s\n' "$glibc" "$max_glibc" | sort -V | tail -1)" != "$max_glibc" ]; then
    echo "  NOT OK: needs glibc $glibc > $max_glibc:"
    objdump -T "$o" | awk '/GLIBC_/ {v=$0; sub(/.*GLIBC_/, "", v); sub(/[) ].*/, "", v); print v, $NF}' |
      sort -V | awk -v m="$max_glibc" '{ split($1, a, "."); split(m, b, "."); if (a[1] > b[1] || (a[1] == b[1] && a[2] > b[2])) print "    " $2 " (GLIBC_" $1 ")" }'
    ok=0
  fi
  for lib in $needed; do
    if [[ $lib =~ $allowed ]]; then
      echo "  needs: $lib"
    elif grep -qxF "$lib" <<<"$carried"; then
      echo "  needs: $lib (one of the set)"
    else
      echo "  needs: $lib  NOT OK: neither glibc, fabric nor one of the set"
      ok=0
    fi
  done
done
if [ $ok = 1 ]; then echo "portable-check: OK"; else echo "portable-check: requirements not met"; exit 1; fi
