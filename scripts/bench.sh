#!/usr/bin/env bash
# Measures memkv on this machine and regenerates docs/performance.md and
# docs/performance.svg: installs what the baselines need (redis-server,
# iperf3, fio, through scripts/deps.sh), builds the release memkv-bench,
# runs the drive tier against fio and the rail sweep with its baselines
# (memcpy, iperf3, Redis) interleaved, and lets memkv-bench write the
# Markdown. Run it on a quiet machine: the full sweep takes about an hour
# with the defaults.
#
#   scripts/bench.sh                 # everything, into docs/
#   scripts/bench.sh --smoke         # a short run into build/release/bench-results/,
#                                    # labelled as a smoke run (not figures to quote)
#   scripts/bench.sh -- --threads 1  # anything after -- goes to the rail sweep
#
# Environment: BUILD (build dir, default build/release), RUNS (3), SECONDS_PER_RUN
# (rail 2, drive 5), JOBS (build parallelism, default nproc), DRIVE_DIR (where
# the drive tier puts its sparse files, default ./var/bench).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build="${BUILD:-build/release}"
runs="${RUNS:-3}"
jobs="${JOBS:-$(nproc)}"
smoke=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "bench.sh: unknown argument '$1' (--smoke, or -- then memkv-bench options)" >&2; exit 2 ;;
  esac
  shift
done

"$root/scripts/deps.sh" redis-server iperf3 fio

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target memkv memkv-bench -j "$jobs" >/dev/null
bench="$build/bench/memkv-bench"

if [ "$smoke" -eq 1 ]; then
  out="$build/bench-results"
  label="SMOKE RUN: one short run per point on $(hostname), not figures to quote"
  rail=(--sizes 4K,1M,16M --threads 1 --runs 1 --seconds "${SECONDS_PER_RUN:-0.5}")
  drive=(--size 256MiB --runs 1 --seconds 1 --reopen-keys 10000 --replay-keys 1000)
else
  out="docs"
  label=""
  # One read request in 16 per thread is checked against its pattern (the
  # client library still checks every value's XXH3): checking every value
  # would add a pass over each byte that the baselines do not make.
  rail=(--runs "$runs" --verify sample ${SECONDS_PER_RUN:+--seconds "$SECONDS_PER_RUN"})
  drive=(--runs "$runs" ${SECONDS_PER_RUN:+--seconds "$SECONDS_PER_RUN"})
fi
mkdir -p "$out"
results="$build/bench-results"
mkdir -p "$results"

status=0
echo "bench.sh: drive tier (memkv-bench --tier drive, against fio)" >&2
"$bench" --tier drive --dir "${DRIVE_DIR:-./var/bench}" "${drive[@]}" \
  --json "$results/drive.json" > "$results/drive.txt" || status=1

echo "bench.sh: rail sweep with baselines (memkv-bench --tier rail --baseline)" >&2
"$bench" --tier rail --baseline "${rail[@]}" "${extra[@]}" \
  --json "$results/rail.json" --csv "$results/rail.csv" \
  --svg "$out/performance.svg" --markdown "$out/performance.md" \
  --markdown-drive "$results/drive.txt" ${label:+--label "$label"} || status=1

# Where the time goes: system calls and CPU per byte, and the hottest
# symbols, per rail (scripts/profile.sh); with PROFILE_BASELINE_BUILD, the
# same for an older build (the "before") on this machine in this run.
if [ "$smoke" -eq 0 ] && [ -s "$out/performance.md" ]; then
  "$root/scripts/deps.sh" linux-perf
  echo "bench.sh: profiles (scripts/profile.sh)" >&2
  {
    echo
    echo "## Where the time goes"
    echo
    echo "Measured by \`scripts/profile.sh\` while memkv-bench moves 1 MiB values in batches of"
    echo "8 on one client thread, auth off: every system call (\`perf stat -e raw_syscalls:sys_enter\`)"
    echo "and CPU millisecond (\`task-clock\`) on the machine, server and client together, over the"
    echo "bytes moved in the window; and the symbols that took the most \`cpu-clock\` samples"
    echo "(\`pv_native_safe_halt\` is an idle CPU). This machine has no hardware counters."
    echo
    if [ -n "${PROFILE_BASELINE_BUILD:-}" ]; then
      echo "Before: $(git -C "$(dirname "$PROFILE_BASELINE_BUILD")/.." log -1 --format='%h %s' 2>/dev/null) ($PROFILE_BASELINE_BUILD)"
      echo
      BUILD="$PROFILE_BASELINE_BUILD" "$root/scripts/profile.sh" || status=1
      echo
      echo "After: this build"
      echo
    fi
    BUILD="$build" "$root/scripts/profile.sh" || status=1
    if [ -s "$root/bench/passes.md" ]; then echo; cat "$root/bench/passes.md"; fi
  } >> "$out/performance.md"
fi

# The server's memory per idle session (bench/session_bench.cc).
if [ "$smoke" -eq 0 ] && [ -s "$out/performance.md" ]; then
  cmake --build "$build" --target session_bench -j "$jobs" >/dev/null
  echo "bench.sh: memory per idle session (session_bench)" >&2
  {
    echo
    echo "## Memory per idle session"
    echo
    echo "\`session_bench --sessions 1000\`: a memory-mode server on loopback with 1,000 TCP"
    echo "sessions attached and idle; its resident memory before and after, per session"
    echo "(goal: at most 4 KiB)."
    echo
    echo '```'
    "$build/bench/session_bench" --sessions 1000 2>&1 || status=1
    echo '```'
  } >> "$out/performance.md"
fi

echo "bench.sh: wrote $out/performance.md and $out/performance.svg (JSON, CSV and the" \
     "drive tier's table in $results/)" >&2
exit "$status"
