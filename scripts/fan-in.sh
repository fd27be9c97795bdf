#!/usr/bin/env bash
# The seed's fan-in pattern, multi-process, for a long run: 8 client
# processes whose worker threads come and go push 7,500-entry batches of
# 64 B - 16 KiB values through one `memkv server` (memory mode), every byte
# checked on read-back, and the server's sessions, open descriptors and
# VmRSS are compared between the warm start and the end of the run.
#   scripts/fan-in.sh [--minutes 10] [more memkv-bench --tier fan-in options]
# Builds memkv and memkv-bench (release) first. Exit status 0: 100 %
# success, sessions back to the baseline after the clients exit, no
# descriptor growth beyond --fd-slack. See docs/operations.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# The defaults below; an option given on the command line replaces its default.
declare -A opt=([--minutes]=10 [--processes]=8 [--workers]=2 [--worker-batches]=3
                [--entries]=7500 [--min-value]=64 [--max-value]=16384 [--sample]=10)
order=(--minutes --processes --workers --worker-batches --entries --min-value --max-value --sample)
args=()
while [ $# -gt 0 ]; do
  if [ -n "${opt[$1]+set}" ] && [ $# -ge 2 ]; then
    opt[$1]=$2
    shift 2
  else
    args+=("$1")
    shift
  fi
done
for o in "${order[@]}"; do args+=("$o" "${opt[$o]}"); done
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target memkv memkv-bench >/dev/null
exec build/release/bench/memkv-bench --tier fan-in "${args[@]}"
