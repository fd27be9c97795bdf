#!/usr/bin/env bash
# The portability figures of the memkv wheel (issue 15, "Wheels"; docs/python.md):
# for every shared object in it, its DT_NEEDED libraries and the newest GLIBC_
# symbol version it needs. Allowed: glibc's own libraries, the host's fabric
# libraries (libibverbs, librdmacm, libfabric) and the libraries the wheel
# carries itself; glibc 2.34 at most.
# Usage: scripts/wheel-check.sh [build/release/python/dist/memkv-*.whl]
# Exits 1 when a requirement does not hold, after printing every figure.
set -u
whl=${1:-$(ls "$(dirname "$0")"/../build/release/python/dist/memkv-*-*linux_*.whl 2>/dev/null | head -1)}
[ -f "$whl" ] || { echo "no memkv wheel (build the memkv_wheels target)" >&2; exit 2; }
max_glibc=${WHEEL_MAX_GLIBC:-2.34}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$whl" "$dir"
mapfile -t objects < <(cd "$dir" && find . -name '*.so' -o -name '*.so.*' | sed 's|^\./||' | sort)
carried=$(for o in "${objects[@]}"; do basename "$o"; done)
allowed='^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|ld-linux-x86-64\.so\.2|libibverbs\.so\.1|librdmacm\.so\.1|libfabric\.so\.1)$'
ok=1
echo "wheel: $whl"
for o in "${objects[@]}"; do
  needed=$(readelf -d "$dir/$o" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  glibc=$(objdump -T "$dir/$o" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
  echo "$o"
  echo "  glibc: ${glibc:-none}"
  cxx=$(objdump -T "$dir/$o" | grep -o '\(GLIBCXX\|CXXABI\)_[0-9.]*' | sort -uV | tr '\n' ' ')
  [ -n "$cxx" ] && echo "  libstdc++ versions: $cxx"
  if [ -n "$glibc" ] && [ "$(printf '%s\n%s\n' "$glibc" "$max_glibc" | sort -V | tail -1)" != "$max_glibc" ]; then
    echo "  NOT OK: needs glibc $glibc > $max_glibc:"
    objdump -T "$dir/$o" | awk -v m="$max_glibc" '/GLIBC_/ {v=$0; sub(/.*GLIBC_/, "", v); sub(/[) ].*/, "", v); print v, $NF}' |
      sort -V | awk -v m="$max_glibc" '{ split($1, a, "."); split(m, b, "."); if (a[1] > b[1] || (a[1] == b[1] && a[2] > b[2])) print "    " $2 " (GLIBC_" $1 ")" }'
    ok=0
  fi
  for n in $needed; do
    if [[ $n =~ $allowed ]]; then
      echo "  needs: $n"
    elif grep -qxF "$n" <<<"$carried"; then
      echo "  needs: $n (carried in the wheel)"
    else
      echo "  needs: $n  NOT OK: neither glibc, fabric nor carried"
      ok=0
    fi
  done
done
if [ $ok = 1 ]; then echo "wheel-check: OK"; else echo "wheel-check: requirements not met"; exit 1; fi
