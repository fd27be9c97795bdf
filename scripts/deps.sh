#!/usr/bin/env bash
# Installs the Debian 12 packages memkv builds and tests with, and any more
# named as arguments (scripts/bench.sh adds redis-server iperf3). Idempotent:
# quiet and quick when everything is already there. Needs root (or sudo) only
# when something is missing. Optional: python3-dev builds the Python extension
# (python/; scripts/test.sh installs it with python3-pytest for its tests).
set -euo pipefail

packages=(
  # toolchain
  cmake ninja-build g++ clang libclang-rt-14-dev pkg-config ccache git
  # renders docs/ into the binary at build time
  cmark
  # libraries (Boost 1.81 by component, not the 1.74 default nor -all-dev)
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  liburing-dev libibverbs-dev librdmacm-dev libfabric-dev libsimdjson-dev libyaml-cpp-dev
  libspdlog-dev libfmt-dev libcli11-dev libxxhash-dev libssl-dev libjemalloc-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # the drive tests (loop devices) and the drive benchmark
  util-linux fio
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "memkv: these packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  sudo=(sudo)
fi
echo "memkv: installing ${#missing[@]} Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >/dev/null
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
