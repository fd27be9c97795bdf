#!/usr/bin/env bash
# Builds memkv and runs every test, as CI does (.ci/run calls this script).
#   1. clang with ASan + UBSan (build/asan): unit tests, then the fuzz
#      targets over their seed corpora, MEMKV_FUZZ_SECONDS (default 60)
#      shared between them.
#   2. release (build/release): the binaries, integration and e2e tests
#      (the dashboard and docs in headless Chromium among them; screenshots in
#      build/release/test-artifacts/).
# Each test is compiled in one of the two builds only.
set -euo pipefail
cd "$(dirname "$0")/.."
# chromium and curl: the browser test of the dashboard and the docs site.
scripts/deps.sh chromium curl
export MEMKV_REQUIRE_BROWSER=1

jobs=$(nproc)
fuzz_seconds=${MEMKV_FUZZ_SECONDS:-60}

echo "== asan build: unit tests and fuzzing"
cmake --preset asan -DMEMKV_FUZZ_SECONDS="$fuzz_seconds" >/dev/null
cmake --build --preset asan -j "$jobs"
ctest --preset asan -L 'unit|fuzz' -j "$jobs"

echo "== release build: integration and e2e tests"
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
ctest --preset release -L 'integration|e2e' -j "$jobs"
