#!/usr/bin/env bash
# Fuzzes every libFuzzer target for HOURS in total (split evenly between
# them, one after the other), each from its checked-in seeds
# (tests/fuzz/seeds/<name>) and a corpus kept outside the repository, so a
# long run builds on the ones before it. Builds the asan preset's fuzz
# targets first.
#
#   scripts/fuzz.sh HOURS [DIR]     # e.g. scripts/fuzz.sh 8, or 0.5
#
# DIR (default ${XDG_CACHE_HOME:-~/.cache}/memkv-fuzz) holds DIR/corpus/<name>
# and, for anything found, DIR/crashes/<name>/ (the input that crashed; rerun
# it with build/asan/tests/fuzz/<name>_fuzz FILE). Environment: JOBS (build
# parallelism, default nproc). Exits 1 when a target crashed.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 HOURS [DIR]" >&2
  exit 2
fi
hours="$1"
dir="${2:-${XDG_CACHE_HOME:-$HOME/.cache}/memkv-fuzz}"
if ! awk -v h="$hours" 'BEGIN { exit !(h + 0 > 0) }'; then
  echo "$0: HOURS must be a positive number, got '$hours'" >&2
  exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
targets=(decode config http store)
jobs="${JOBS:-$(nproc)}"

cmake --preset asan >/dev/null
cmake --build --preset asan -j "$jobs" --target "${targets[@]/%/_fuzz}"

each=$(awk -v h="$hours" -v n="${#targets[@]}" 'BEGIN { s = int(h * 3600 / n); print (s < 1 ? 1 : s) }')
echo "fuzzing ${#targets[@]} targets for ${each} s each; corpora in $dir"
failed=()
for t in "${targets[@]}"; do
  corpus="$dir/corpus/$t"
  crashes="$dir/crashes/$t"
  mkdir -p "$corpus" "$crashes"
  echo "== $t"
  if ! "build/asan/tests/fuzz/${t}_fuzz" -max_total_time="$each" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$crashes/" "$corpus" "tests/fuzz/seeds/$t"; then
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "crashed: ${failed[*]} (inputs in $dir/crashes/)" >&2
  exit 1
fi
echo "no crashes"
