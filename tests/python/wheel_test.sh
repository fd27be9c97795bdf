#!/usr/bin/env bash
# integration: the three wheels of `memkv_wheels` (docs/python.md, "Wheels")
# installed with pip --no-index into a fresh virtual environment, then
# imported with no PYTHONPATH, from a directory outside the build tree, and a
# put/get round trip against a real memory-mode server.
# Usage: wheel_test.sh MEMKV DIST_DIR
set -u
here=$(cd "$(dirname "$0")" && pwd)
memkv=$(realpath "$1")
dist=$(realpath "$2")
dir=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
  rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir"
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV
fail() { echo "FAIL: $*" >&2; exit 1; }

/usr/bin/python3 -m venv "$dir/venv" || fail "python3 -m venv"
"$dir/venv/bin/python" -m pip install -q --no-index --disable-pip-version-check \
  --find-links "$dist" memkv memkv_lmcache memkv_sglang || fail "pip install"

. "$here/../../scripts/lib/server.sh"
memkv_start_server server.err "$memkv" -- --unix-socket "$dir/s.sock" --set storage.mode=memory ||
  fail "could not start a server: $(cat server.err)"
pid=$memkv_server_pid server=$memkv_server_address

MEMKV_TEST_SERVER=$server "$dir/venv/bin/python" - <<'PY' || fail "the round trip"
import os, sys
import memkv, memkv_lmcache, memkv_sglang

venv = sys.prefix
for m in (memkv, memkv_lmcache, memkv_sglang):
    assert m.__file__.startswith(venv), (m.__name__, m.__file__, venv)
for transport in ("tcp", "auto"):
    engine = memkv.Engine(os.environ["MEMKV_TEST_SERVER"], transport=transport)
    key, value = f"wheel-test/{transport}", os.urandom(1 << 20)
    engine.put(key, value)
    assert engine.get(key) == value
    buf = bytearray(len(value))
    engine.get_into(key, buf)
    assert bytes(buf) == value
    try:
        engine.get("wheel-test/missing")
        raise AssertionError("no NotFound")
    except memkv.NotFound:
        pass
# MEMKV_CONFIG is read by libmemkv.so itself (client/flat_yaml.h), which
# carries its own static C++ runtime: an exception thrown and caught inside
# it (std::stod on a duration too long for a double) must stay inside it.
with open("client.yaml", "w") as f:
    f.write(f"servers: [{os.environ['MEMKV_TEST_SERVER']}]\ntransport: tcp\ntimeout: 5s\n")
os.environ["MEMKV_CONFIG"] = os.path.abspath("client.yaml")
engine = memkv.Engine.from_environment()
assert engine.get("wheel-test/tcp") is not None
with open("bad.yaml", "w") as f:
    f.write("servers: [unclosed\n")
os.environ["MEMKV_CONFIG"] = os.path.abspath("bad.yaml")
try:
    memkv.Engine.from_environment()
    raise AssertionError("a malformed MEMKV_CONFIG was accepted")
except (memkv.Error, ValueError) as e:
    print("malformed config:", type(e).__name__, e)
with open("huge.yaml", "w") as f:
    f.write(f"servers: [{os.environ['MEMKV_TEST_SERVER']}]\ntimeout: 1{'0' * 400}\n")
os.environ["MEMKV_CONFIG"] = os.path.abspath("huge.yaml")
try:
    memkv.Engine.from_environment()
    raise AssertionError("a duration of 10^400 ms was accepted")
except (memkv.Error, ValueError) as e:
    assert "timeout" in str(e), e
    print("huge duration:", type(e).__name__, e)
print("wheels: imported from", os.path.dirname(memkv.__file__), "and round trip ok")
PY
# What the wheel needs of the host: glibc only, no newer than its tag says.
whl=$(ls "$dist"/memkv-*-manylinux_*.whl) || fail "no manylinux memkv wheel in $dist"
tag_glibc=$(basename "$whl" | sed -n 's/.*-manylinux_\([0-9]*\)_\([0-9]*\)_.*/\1.\2/p')
MEMKV_MAX_GLIBC=$tag_glibc bash "$here/../../scripts/portable-check.sh" "$whl" ||
  fail "the wheel needs more of the host than its tag (glibc $tag_glibc) says"
echo PASS
