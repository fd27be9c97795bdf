#!/usr/bin/env bash
# Where the time goes, per rail: runs memkv-bench on one rail at a time (1 MiB
# values, batches of 8, one client thread, auth off) and, while it measures,
# counts with perf every system call and every CPU millisecond on the
# machine (server and client together) and samples where the CPU time goes.
# Prints a Markdown table: GiB/s, system calls per MiB moved, CPU seconds per
# GiB moved, and the symbols that took the most samples.
#
#   scripts/profile.sh                  # build/release, 4 s windows
#   BUILD=../old/build/release scripts/profile.sh   # another build, same machine
#
# Needs perf (Debian: linux-perf) with tracepoints (raw_syscalls:sys_enter)
# and the cpu-clock software event; no hardware counters are needed. Run it
# as root on a quiet machine: the counts are system-wide.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build="${BUILD:-build/release}"
window="${WINDOW:-4}"
bench="$build/bench/memkv-bench"
sizes="${SIZES:-1M}"
[ -x "$bench" ] || { echo "profile.sh: $bench is not built (cmake --build $build --target memkv-bench memkv)" >&2; exit 2; }
command -v perf >/dev/null || { echo "profile.sh: perf is not installed (Debian: apt-get install linux-perf)" >&2; exit 2; }
if ! perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
  echo "profile.sh: perf cannot count raw_syscalls:sys_enter here (run as root; tracefs mounted?)" >&2
  exit 2
fi

tmp="$(mktemp -d /tmp/memkv-profile-XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

echo "| rail | op | size | GiB/s | system calls per MiB | CPU s per GiB (both sides) | where the CPU time goes (share of samples) |"
echo "| --- | --- | --- | ---: | ---: | ---: | --- |"
for size in ${sizes//,/ }; do
  for rail in tcp shm; do
    for op in read write; do
      log="$tmp/$rail-$op.log"
      echo "profile.sh: $rail $op $size ..." >&2
      "$bench" --tier rail --rails "$rail" --ops "$op" --sizes "$size" --threads 1 --auth off \
        --runs 1 --seconds "$((window + 4))" --no-goal-points --verify sample \
        --csv "$tmp/$rail-$op.csv" >"$tmp/$rail-$op.out" 2>"$log" &
      pid=$!
      # The measured run has begun once its progress line is out.
      for _ in $(seq 1 600); do
        grep -q "run 1/1 \.\.\." "$log" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      sleep 1
      perf stat -a -x, -e raw_syscalls:sys_enter,task-clock -o "$tmp/stat" -- sleep "$window" &
      stat_pid=$!
      perf record -q -a -e cpu-clock -F 499 -o "$tmp/perf.data" -- sleep "$window" >/dev/null 2>&1
      wait "$stat_pid"
      wait "$pid" || { echo "profile.sh: memkv-bench failed; its log:" >&2; cat "$log" >&2; exit 1; }
      gibps="$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "gib_per_s_median") c = i; next }
                        $1 == "memkv" { print $c; exit }' "$tmp/$rail-$op.csv")"
      calls="$(awk -F, '$3 == "raw_syscalls:sys_enter" { print $1 }' "$tmp/stat")"
      cpu_ms="$(awk -F, '$3 == "task-clock" { print $1 }' "$tmp/stat")"
      top="$(perf report -i "$tmp/perf.data" --sort sym --stdio --percent-limit 4 2>/dev/null |
             awk '/^ *[0-9.]+%/ { pct = $1; $1 = ""; $2 = ""; sub(/^ +/, ""); printf "%s%s %s", sep, $0, pct; sep = "; " }')"
      awk -v r="$rail" -v o="$op" -v s="$size" -v g="$gibps" -v c="$calls" -v m="$cpu_ms" -v w="$window" -v t="$top" \
        'BEGIN { mib = g * w * 1024; gib = g * w;
                 printf "| %s | %s | %s | %.2f | %.1f | %.2f | %s |\n", r, o, s, g,
                        (mib > 0 ? c / mib : 0), (gib > 0 ? m / 1000 / gib : 0), t }'
    done
  done
done
