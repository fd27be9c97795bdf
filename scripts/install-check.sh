#!/usr/bin/env bash
# Installs memkv's .deb the way an operator would, into a new minimal Debian
# 12 root (debootstrap --variant=minbase), and runs it there: `apt-get
# install ./memkv_*.deb`, `memkv --version`, `memkv setup` on two sparse
# files, the server on that config (under systemd's unit's command line,
# started by hand: a chroot has no systemd), `memkv kv put/get` with a
# compare, and in a virtual environment `pip install --no-index` of the
# wheels the package ships (/usr/share/memkv/wheels) with an `import memkv`
# round trip. Then removes the package and checks the drives and config
# stayed. Not part of the test command: it needs root, the network to
# Debian's archive, and a few minutes (docs/packaging.md).
#
# A .deb of another architecture than the machine's (arm64, from
# MEMKV_PACKAGE_ARCH=arm64 scripts/package.sh) goes into a root of its own
# architecture, which runs under qemu-user through binfmt_misc
# (qemu-user-static's registration, made here when it is missing): every
# command above, apt and Python included, runs as arm64 code.
#
# Usage: scripts/install-check.sh [DEB]   (default build/package/out/memkv_*_amd64.deb,
#        made by scripts/package.sh)
#   KEEP=1 keeps the root; its base tarball is cached in
#   ${XDG_CACHE_HOME:-~/.cache}/memkv-install-check.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
deb=${1:-$(ls "$here"/build/package/out/memkv_*_amd64.deb 2>/dev/null | head -1)}
[ -n "$deb" ] && [ -f "$deb" ] || { echo "install-check: no .deb (run scripts/package.sh first)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "install-check: needs root (debootstrap, chroot)" >&2; exit 2; }
step() { echo "install-check: $*" >&2; }

arch=$(dpkg-deb -f "$deb" Architecture)
host_arch=$(dpkg --print-architecture)
if [ "$arch" != "$host_arch" ]; then
  # The root's programs are $arch code: the kernel hands them to qemu-user.
  "$here/scripts/deps.sh" qemu-user-static
  qemu_arch=$(case "$arch" in arm64) echo aarch64 ;; *) echo "$arch" ;; esac)
  binfmt=/proc/sys/fs/binfmt_misc
  [ -f "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt"
  if [ ! -f "$binfmt/qemu-$qemu_arch" ]; then
    step "registering qemu-$qemu_arch with binfmt_misc (/usr/lib/binfmt.d/qemu-$qemu_arch.conf)"
    cat "/usr/lib/binfmt.d/qemu-$qemu_arch.conf" >"$binfmt/register"
  fi
  grep -q '^flags:.*F' "$binfmt/qemu-$qemu_arch" ||
    { echo "install-check: qemu-$qemu_arch is registered without F (a chroot cannot reach it)" >&2; exit 2; }
fi
cache=${XDG_CACHE_HOME:-$HOME/.cache}/memkv-install-check
mkdir -p "$cache"
base=$cache/base-$arch.tar
if [ ! -f "$base" ]; then
  "$here/scripts/deps.sh" debootstrap
  mirror=$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  mirror=${mirror:-http://deb.debian.org/debian}
  step "debootstrap bookworm (minbase, $arch) from $mirror"
  rm -rf "$cache/base"
  debootstrap --variant=minbase --arch="$arch" bookworm "$cache/base" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  tar -C "$cache/base" -cf "$base" .
  rm -rf "$cache/base"
fi
root=$(mktemp -d "$cache/root.XXXX")
tar -C "$root" -xf "$base"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
cp "$deb" "$root/root/"
for m in proc sys dev dev/pts; do mount --bind "/$m" "$root/$m"; done
trap 'for m in dev/pts dev sys proc; do umount -l "$root/$m" 2>/dev/null || true; done
      [ "${KEEP:-0}" = 1 ] || rm -rf --one-file-system "$root"' EXIT
step "root: $root ($arch); package: $(basename "$deb")"

chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb \
  DEB="$(basename "$deb")" bash -euo pipefail -c '
cd /root
echo "== apt-get install ./$DEB"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq "./$DEB" python3-venv >apt.log 2>&1 || { tail -30 apt.log; exit 1; }
grep -E "^(Setting up|Unpacking) memkv" apt.log || true
echo "== memkv --version (machine: $(uname -m), dpkg: $(dpkg --print-architecture))"
memkv --version
echo "== what the package holds"
dpkg -L memkv | grep -E "bin/|\.so|\.service|\.pc|Config\.cmake|wheels/.*whl" | sort
echo "== memkv setup on two sparse files"
mkdir -p /srv/memkv
truncate -s 2G /srv/memkv/d0.img /srv/memkv/d1.img
memkv setup --drives /srv/memkv/d0.img /srv/memkv/d1.img >/etc/memkv/config.yaml
grep -E "^  (mode|address)|media" /etc/memkv/config.yaml
key=$(sed -n "s/^ *auth_key: *\"\{0,1\}\([0-9a-f]\{64\}\)\"\{0,1\}.*/\1/p" /etc/memkv/config.yaml)
echo "== the server, as the unit starts it ($(grep ^ExecStart= /lib/systemd/system/memkv.service))"
memkv server --config /etc/memkv/config.yaml --set network.address=127.0.0.1:9900 >server.log 2>&1 &
pid=$!
for i in $(seq 1 100); do
  memkv admin health --server 127.0.0.1:9901 >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { cat server.log; exit 1; }
  sleep 0.1
done
memkv admin health --server 127.0.0.1:9901
head -c 3000000 /dev/urandom >value.bin
echo "== memkv kv put/get (3,000,000 bytes)"
export MEMKV_SERVERS=127.0.0.1:9900 MEMKV_AUTH_KEY=$key
memkv kv put install/check value.bin
memkv kv get install/check back.bin
cmp value.bin back.bin && echo "kv round trip: equal"
echo "== pip install the shipped wheels in a virtual environment, import memkv"
python3 -m venv /root/venv
/root/venv/bin/pip install -q --no-index /usr/share/memkv/wheels/*.whl
/root/venv/bin/pip list 2>/dev/null | grep -i memkv
/root/venv/bin/python - <<EOF
import memkv
e = memkv.Engine("127.0.0.1:9900", auth_key="$key")
data = bytes(range(256)) * 4096
e.put("install/py", data)
back = bytearray(len(data))
n = e.get_into("install/py", back)
assert n == len(data) and bytes(back) == data, "python round trip differs"
print("python round trip: equal,", n, "bytes")
EOF
kill $pid; wait $pid || true
tail -2 server.log
echo "== apt-get remove memkv: config and drives stay"
apt-get remove -y -qq memkv >remove.log 2>&1 || { cat remove.log; exit 1; }
ls -l /etc/memkv/config.yaml /srv/memkv/d0.img /srv/memkv/d1.img
if [ -e /usr/bin/memkv ]; then echo "memkv is still installed"; exit 1; fi
echo "memkv: removed ($(dpkg-query -W -f="\${db:Status-Status}" memkv 2>/dev/null || echo gone))"
'
step "done"
