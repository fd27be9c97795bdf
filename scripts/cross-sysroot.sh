#!/usr/bin/env bash
# Makes the sysroot a cross build of memkv compiles and links against
# (docs/packaging.md, "arm64"): Debian 12's -dev packages of every library
# memkv uses, for a foreign architecture, with the runtime libraries they
# depend on (glibc, libfabric's and rdma-core's), unpacked into DEST/root.
# apt-get downloads them from the machine's own Debian sources for ARCH, in a
# private apt state under DEST (the system's apt configuration and its dpkg
# architectures are not touched, nothing is installed on the host) and checks
# them against the archive's signed index. The same root is what qemu-user
# runs the cross-built binaries in (`qemu-aarch64 -L DEST/root`).
# Idempotent: a second run with the same package list does nothing.
# Usage: scripts/cross-sysroot.sh ARCH DEST     prints DEST/root
set -euo pipefail
arch=$1
dest=$(mkdir -p "$2" && cd "$2" && pwd)
root=$dest/root

# The libraries of scripts/deps.sh, for ARCH, and Python's headers for the
# extension in the wheel.
packages=(
  libc6-dev
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  liburing-dev libibverbs-dev librdmacm-dev libfabric-dev libsimdjson-dev libyaml-cpp-dev
  libspdlog-dev libfmt-dev libcli11-dev libxxhash-dev libssl-dev libjemalloc-dev
  libbenchmark-dev libpython3.11-dev python3.11-dev
)
stamp="$root/.memkv-sysroot-$(printf '%s\n' "$arch" "${packages[@]}" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then echo "$root"; exit 0; fi

state=$dest/apt
mkdir -p "$state/sources.list.d" "$state/lists/partial" "$state/cache/archives/partial"
: >"$state/sources.list"
: >"$state/status"   # nothing installed: apt downloads every dependency
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && cp "$f" "$state/sources.list.d/"
done
if [ -f /etc/apt/sources.list ]; then
  grep '^deb\s' /etc/apt/sources.list >"$state/sources.list" || true
fi
apt=(apt-get -q -o "Dir::Etc::SourceList=$state/sources.list"
  -o "Dir::Etc::SourceParts=$state/sources.list.d" -o "Dir::State::Lists=$state/lists"
  -o "Dir::State::status=$state/status" -o "Dir::Cache=$state/cache"
  -o "APT::Architecture=$arch" -o "APT::Architectures::=$arch"
  -o "APT::Sandbox::User=$(id -un)" -o Debug::NoLocking=1)
echo "cross-sysroot.sh: $arch packages into $root" >&2
"${apt[@]}" update >&2
"${apt[@]}" install -y --download-only --no-install-recommends "${packages[@]}" >&2

rm -rf "$root"
mkdir -p "$root"
n=0
for deb in "$state"/cache/archives/*.deb; do
  dpkg-deb -x "$deb" "$root"
  n=$((n + 1))
done
# Absolute symbolic links (libfoo.so -> /lib/...) point into the host:
# make them relative to the root, so the linker and qemu find the root's.
find "$root" -type l | while read -r l; do
  t=$(readlink "$l")
  case "$t" in
    /*) ln -sfn "$(realpath -m --relative-to="$(dirname "$l")" "$root$t")" "$l" ;;
  esac
done
echo "cross-sysroot.sh: $n packages unpacked" >&2
touch "$stamp"
echo "$root"
