#!/usr/bin/env bash
# The preload shim's throughput on 16 MiB files, beside a tmpfs directory and
# beside the client library's own rail, all in this run on this machine.
#   scripts/bench-preload.sh [BUILD_DIR]   (default build/release)
# Starts a memory-mode server on loopback; prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
bench=$build/bench/preload_bench
shim=$build/src/preload/libmemkv_preload.so
memkv=$build/src/cli/memkv
for f in "$bench" "$shim" "$memkv"; do
  [ -e "$f" ] || { echo "bench-preload: $f is missing: cmake --build --preset release" >&2; exit 1; }
done
work=$(mktemp -d /dev/shm/memkv-bench-preload.XXXXXX)
port=$((20000 + (RANDOM % 20000) * 2))
"$memkv" --log-level warn server --address "127.0.0.1:$port" --unix-socket "$work/memkv.sock" \
  --set storage.mode=memory --set memory.max_size=2GiB 2>"$work/server.err" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  "$memkv" admin health --server "127.0.0.1:$((port + 1))" >/dev/null 2>&1 && break
  sleep 0.1
done
export MEMKV_SERVERS=127.0.0.1:$port
mkdir -p "$work/tmpfs"
echo "bench-preload: 16 files of 16 MiB written, then read, in rounds for about 3 s per row" >&2
read -r tw tr < <("$bench" --dir "$work/tmpfs")
read -r lw lr < <("$bench" --library)
read -r hw hr < <("$bench" --library --shared)
read -r sw sr < <(LD_PRELOAD=$shim MEMKV_PRELOAD_PREFIX=/memkv-bench "$bench" --dir /memkv-bench)
# The shim's baseline: the faster of the library's two ways, each way.
bw=$(awk -v a="$lw" -v b="$hw" 'BEGIN { print (a > b ? a : b) }')
br=$(awk -v a="$lr" -v b="$hr" 'BEGIN { print (a > b ? a : b) }')
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
echo "| 16 MiB files | write GiB/s | read GiB/s | write ÷ library | read ÷ library |"
echo "| --- | --- | --- | --- | --- |"
echo "| tmpfs (no memkv) | $tw | $tr | $(ratio "$tw" "$bw") | $(ratio "$tr" "$br") |"
echo "| library, ordinary memory (tcp rail) | $lw | $lr | $(ratio "$lw" "$bw") | $(ratio "$lr" "$br") |"
echo "| library, shared memory (shm rail) | $hw | $hr | $(ratio "$hw" "$bw") | $(ratio "$hr" "$br") |"
echo "| preload shim | $sw | $sr | $(ratio "$sw" "$bw") | $(ratio "$sr" "$br") |"
echo
echo "Ratios: against the faster library row of each column, in this run."
