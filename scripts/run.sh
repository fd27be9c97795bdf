#!/usr/bin/env bash
# Builds the release `memkv` binary and runs it with the given arguments.
# With none it prints its help.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target memkv -j "$(nproc)"
exec build/release/src/cli/memkv "$@"
