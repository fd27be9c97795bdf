#!/usr/bin/env bash
# Builds the release `memkv` binary and runs it with the given arguments.
# With none it runs `memkv server` on the embedded default: two 1 GiB sparse
# drives in ./var/memkv, 127.0.0.1:9900 and ./var/memkv/memkv.sock.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target memkv -j "$(nproc)"
[ $# -gt 0 ] || set -- server
exec build/release/src/cli/memkv "$@"
