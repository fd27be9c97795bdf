#!/usr/bin/env bash
# Builds memkv and runs every test, as CI does (.ci/run calls this script).
#   1. clang with ASan + UBSan (build/asan): unit tests, then the fuzz
#      targets over their seed corpora, MEMKV_FUZZ_SECONDS (default 60)
#      shared between them.
#   2. clang with TSan (build/tsan): the same unit tests again, under
#      ThreadSanitizer (tests/tsan.supp lists the only suppressions).
#   3. release (build/release): the binaries, integration and e2e tests
#      (the dashboard and docs in headless Chromium among them; screenshots in
#      build/release/test-artifacts/).
# Unit tests are compiled in the two sanitizer builds, the other tests in the
# release build only.
set -euo pipefail
cd "$(dirname "$0")/.."
# What the tests call: chromium and curl (the browser test of the dashboard
# and the docs site), openssl (the admin API's HTTPS test), iproute2 and
# iptables (the network test, tests/net: namespaces, veth, tc, loss; it
# needs root, as CI runs); python3-numpy (the preload shim under numpy, tests/preload,
# and the Python package's tests); python3-dev (the Python extension, python/: optional
# in a build, skipped with a message without it, so not in deps.sh's list) and
# python3-pytest (its tests, tests/python); python3-venv (the wheels' test,
# tests/python/wheel_test.sh: pip installs them into a fresh venv); minisign,
# gnupg and systemd (tests/packaging: release signatures, systemd-analyze
# verify of the unit).
scripts/deps.sh chromium curl openssl iproute2 iptables python3-numpy python3-dev python3-pytest \
  python3-venv minisign gnupg systemd
export MEMKV_REQUIRE_BROWSER=1

# ctest, failing on any test that skipped itself: under the test command a
# skip means the machine lacks something this script should have installed.
# Tests that need what these machines cannot have (a GPU, an RDMA NIC, NIXL)
# carry the labels gpu, rdma-hw and nixl and are left out, not skipped.
run_ctest() {
  local log rc=0
  log=$(mktemp)
  ctest "$@" -LE 'gpu|rdma-hw|nixl' 2>&1 | tee "$log" || rc=$?
  if grep -q '(Skipped)' "$log"; then
    echo "memkv: tests skipped under the test command (install what they need):" >&2
    grep '(Skipped)' "$log" >&2
    rc=1
  fi
  rm -f "$log"
  return "$rc"
}

jobs=$(nproc)
fuzz_seconds=${MEMKV_FUZZ_SECONDS:-60}

echo "== asan build: unit tests and fuzzing"
cmake --preset asan -DMEMKV_FUZZ_SECONDS="$fuzz_seconds" >/dev/null
cmake --build --preset asan -j "$jobs"
run_ctest --preset asan -L 'unit|fuzz' -j "$jobs"

echo "== tsan build: unit tests"
cmake --preset tsan >/dev/null
cmake --build --preset tsan -j "$jobs"
run_ctest --preset tsan -L unit -j "$jobs"

echo "== release build: integration and e2e tests"
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
run_ctest --preset release -L 'integration|e2e' -j "$jobs"
