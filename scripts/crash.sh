#!/usr/bin/env bash
# SIGKILL cycles: builds the release memkv and memkv-crash if needed and
# runs CYCLES cycles (default 1000) of writes through the client library,
# SIGKILL of the file-mode server at a random moment, restart on the same
# drives, and a check of every acknowledged put and delete
# (docs/operations.md, "What survives what"). Progress every 25 cycles on
# stderr, the result line on stdout; exit status 1 on anything lost, wrong
# or resurrected (each named on stderr), with the drives and the server log
# kept for a look.
#
#   scripts/crash.sh                  # 1000 cycles
#   scripts/crash.sh 50               # a shorter run
#   scripts/crash.sh 1000 --drives embedded --transport unix
#                                     # anything after CYCLES goes to memkv-crash
#                                     # (memkv-crash --help lists it all; a
#                                     # repeated option: the last one wins)
#
# Environment: BUILD (build dir, default build/release), JOBS (build
# parallelism, default nproc), PROGRESS (cycles between progress lines, 25).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build="${BUILD:-build/release}"
jobs="${JOBS:-$(nproc)}"
cycles=1000
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then
  cycles="$1"
  shift
fi

if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DMEMKV_TEST_LABELS="integration;e2e" >/dev/null
fi
cmake --build "$build" --target memkv memkv-crash -j "$jobs" >/dev/null

exec "$build/bench/memkv-crash" --cycles "$cycles" --progress "${PROGRESS:-25}" "$@"
