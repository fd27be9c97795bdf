#!/usr/bin/env bash
# e2e: unmodified programs under libmemkv_preload.so against a real server,
# each compared with the same run on a local directory. The data must be in
# memkv (read back with `memkv kv get`, no shim) and nothing on the disk.
# Usage: preload_test.sh MEMKV LIBMEMKV_PRELOAD
set -u
memkv=$(realpath "$1")
shim=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../cli/e2e_lib.sh"
py=/usr/bin/python3
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir"

# A memory-mode server on a random loopback port: start_mem_server NAME
# [--set ...]; sets the variable NAME to its address.
start_mem_server() {
  local var=$1
  shift
  if ! memkv_start_server "$var.err" "$memkv" -- --unix-socket "$dir/$var.sock" \
    --set storage.mode=memory "$@"; then
    echo "could not start a server: $(cat "$var.err")" >&2
    return 1
  fi
  pids+=("$memkv_server_pid")
  printf -v "$var" '%s' "$memkv_server_address"
}

start_mem_server main --set memory.max_size=6GiB --set limits.max_value_size=5GiB || exit 1
export MEMKV_SERVERS=$main
P=/memkv-preload-e2e-$$   # the prefix: not on the disk
export MEMKV_PRELOAD_WINDOW=4M
shim() { LD_PRELOAD=$shim MEMKV_PRELOAD_PREFIX=$P "$@"; }
stest() { shim /usr/bin/test "$@"; }  # test(1) under the shim (bash's builtin would run without it)
kvget() { "$memkv" kv get "$1" >"$2" 2>kv.err; }
L=$dir/local
mkdir -p "$L"

head -c $((5 << 20)) /dev/urandom >src.bin
head -c 1000 /dev/urandom >small.bin

# ---- coreutils ----
shim cp src.bin "$P/a.bin"
check "cp writes a file into the prefix" test $? -eq 0
kvget a.bin got.bin
check "its bytes are the key's value (memkv kv get, no shim)" cmp -s src.bin got.bin
check "nothing of it is on the disk" test ! -e "$P"
shim cat "$P/a.bin" >cat.out
check "cat reads it back" cmp -s src.bin cat.out
shim dd if=src.bin of="$P/dd.bin" bs=1M status=none
shim dd if="$P/dd.bin" of=dd.out bs=64K status=none
check "dd writes and reads in blocks" cmp -s src.bin dd.out
check "sha256sum (stdio) reads a redirected standard input" \
  test "$(shim bash -c "sha256sum < $P/a.bin" | cut -d' ' -f1)" = "$(sha256sum <src.bin | cut -d' ' -f1)"
check "sha256sum of a path in the prefix" \
  test "$(shim sha256sum "$P/a.bin" | cut -d' ' -f1)" = "$(sha256sum src.bin | cut -d' ' -f1)"

# A shell redirection: the shell opens the file, then execs the program that
# writes it (the descriptor crosses exec).
shim bash -c "head -c 3000000 src.bin > $P/redir.bin && cat small.bin >> $P/redir.bin"
head -c 3000000 src.bin >redir.expected && cat small.bin >>redir.expected
kvget redir.bin got.bin
check "a redirection to an exec'd program, then an append, are stored" cmp -s redir.expected got.bin

# The same tree made both ways.
make_tree() {  # make_tree ROOT (run with or without the shim)
  mkdir -p "$1/x/y/z" "$1/x/empty" &&
    cp small.bin "$1/x/small.bin" && cp src.bin "$1/x/y/big.bin" &&
    : >"$1/x/y/z/zero" && echo hello >"$1/x/hello.txt"
}
shim bash -c "$(declare -f make_tree); make_tree $P"
check "mkdir -p, cp, an empty file and a redirect in the prefix" test $? -eq 0
make_tree "$L"
listing() { (cd "$1" && find ./x | sort && find ./x -type f -exec sha256sum {} + | sort -k2); }
shim bash -c "$(declare -f listing); listing $P" >tree.memkv
listing "$L" >tree.local
check "find lists the same tree, with the same contents" diff tree.local tree.memkv
# (A directory's link count is always 2 here: memkv keeps no link counts.)
shim ls -l "$P/x" | awk 'NR > 1 {print $1, $5, $9}' >ls.memkv
ls -l "$L/x" | awk 'NR > 1 {print $1, $5, $9}' >ls.local
check "ls -l shows the same types, modes, sizes and names" diff ls.local ls.memkv
check "test -d sees an empty directory" stest -d "$P/x/empty"
check "a shell glob lists the prefix" test "$(shim bash -c "echo $P/x/*.bin")" = "$P/x/small.bin"
check "stat of the empty file says 0 bytes" test "$(shim stat -c %s "$P/x/y/z/zero")" = 0

shim mv "$P/x/small.bin" "$P/x/y/moved.bin"
check "mv within the prefix" test "$(shim cat "$P/x/y/moved.bin" | cmp - small.bin && echo same)" = same
check "mv leaves no source" stest ! -e "$P/x/small.bin"
cp small.bin local.bin
shim mv local.bin "$P/x/from-disk.bin"
check "mv from the disk into the prefix (a copy, then unlink)" test ! -e local.bin
check "mv from the disk: the bytes arrived" test "$(shim cat "$P/x/from-disk.bin" | cmp - small.bin && echo same)" = same
shim mv "$P/x/y" "$P/x/y2"
check "mv of a directory moves everything below it" stest -f "$P/x/y2/z/zero"
check "and leaves nothing at the old name" stest ! -e "$P/x/y"
kvget x/y2/big.bin got.bin
check "a moved file is under its new key" cmp -s src.bin got.bin

# ---- tar ----
tar -cf local.tar -C "$L" x
shim tar -cf "$P/t.tar" -C "$L" x
check "tar creates an archive in the prefix" test $? -eq 0
shim mkdir "$P/ex"
shim tar -xf "$P/t.tar" -C "$P/ex"
check "tar extracts into the prefix" test $? -eq 0
mkdir ex && tar -xf local.tar -C ex
shim bash -c "$(declare -f listing); listing $P/ex" >ex.memkv
listing ex >ex.local
check "the extracted tree is the same" diff ex.local ex.memkv

# ---- rm ----
shim rm -r "$P/x"
check "rm -r removes a tree" stest ! -e "$P/x"
"$memkv" kv exists x/hello.txt >/dev/null 2>&1
check "its keys are gone" test $? -ne 0

# ---- Python with numpy ----
shim "$py" "$here/numpy_workload.py" "$P/np" >np.memkv 2>np.err
check "the numpy workload runs under the shim" test $? -eq 0
"$py" "$here/numpy_workload.py" "$L/np" >np.local
check "it gives the same results as on a local directory" diff np.local np.memkv
[ -s np.err ] && cat np.err

# ---- fio, psync, verified ----
shim fio --name=verify --filename="$P/fio.dat" --rw=write --bs=1M --size=32M --ioengine=psync \
  --verify=crc32c --do_verify=1 --output=fio.out >/dev/null 2>fio.err
check "fio (psync, verify=crc32c) passes on a file in the prefix" test $? -eq 0
check "fio's file is in memkv" "$memkv" kv exists fio.dat
check "nothing was written to the disk" test ! -e "$P"

# ---- a file of 4 GiB in bounded memory ----
shim "$py" - "$P/huge.bin" >huge.out 2>huge.err <<'PY'
import hashlib, os, resource, sys
path, chunk, n = sys.argv[1], 64 << 20, 64
block = bytes(range(256)) * (chunk // 256)
with open(path, "wb") as f:
    for i in range(n):
        f.write(block[:chunk - 1] + bytes([i]))
h = hashlib.sha256()
with open(path, "rb") as f:
    while True:
        b = f.read(chunk)
        if not b:
            break
        h.update(b)
ref = hashlib.sha256()
for i in range(n):
    ref.update(block[:chunk - 1] + bytes([i]))
print(os.path.getsize(path), h.hexdigest() == ref.hexdigest(),
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
PY
read -r huge_size huge_same huge_rss <huge.out
check "a 4 GiB file is written and read back whole" test "${huge_size:-0}" = 4294967296 -a "${huge_same:-}" = True
check "while the process stays under 512 MiB resident (was ${huge_rss:-?} MiB)" test "${huge_rss:-99999}" -lt 512
shim rm "$P/huge.bin"

# ---- failures ----
start_mem_server tiny --set memory.max_size=8MiB --set limits.max_value_size=64MiB || exit 1
head -c $((16 << 20)) /dev/zero >16m.bin
MEMKV_SERVERS=$tiny shim cp 16m.bin "$P/full.bin" 2>full.err
check "a full server: the write fails" test $? -ne 0
check "with ENOSPC" grep -q "No space left" full.err
start_mem_server small --set memory.max_size=64MiB --set limits.max_value_size=1MiB || exit 1
MEMKV_SERVERS=$small shim dd if=src.bin of="$P/big.bin" bs=1M status=none 2>big.err
check "a file over limits.max_value_size fails" test $? -ne 0
check "with EFBIG" grep -q "File too large" big.err
start=$(date +%s)
MEMKV_SERVERS=127.0.0.1:1 timeout 60 env LD_PRELOAD="$shim" MEMKV_PRELOAD_PREFIX=$P cat "$P/a.bin" >/dev/null 2>down.err
rc=$?
check "a server down: a clear error, no hang" test "$rc" -ne 0 -a "$rc" -ne 124
check "the error is an I/O error" grep -q "Input/output error" down.err
echo "(server down answered in $(( $(date +%s) - start )) s)"

# A file another process is still writing is not there yet (it appears
# whole at close); an earlier version stays readable meanwhile.
shim "$py" - "$P" >inflight.out 2>inflight.err <<'PY'
import os, subprocess, sys
root = sys.argv[1]
path = os.path.join(root, "inflight.bin")
with open(path, "wb") as f:
    f.write(b"old")
w = subprocess.Popen([sys.executable, "-c", """
import sys
f = open(sys.argv[1], 'wb'); f.write(b'new' * 1000); f.flush()
print('written', flush=True); sys.stdin.read(); f.close()
""", path], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
assert w.stdout.readline().strip() == b"written"
during = open(path, "rb").read()
w.stdin.close(); w.wait()
after = open(path, "rb").read()
print(during == b"old", after == b"new" * 1000)
PY
check "a reader sees the old version while another process writes, the new one after close" \
  test "$(cat inflight.out)" = "True True"

# The same on a server with drives (the embedded default, file mode): a
# file that streams (over the window), renamed, listed, read back.
start_server || exit 1
pids+=("$server_pid")
head -c $((20 << 20)) /dev/urandom >drive.bin
MEMKV_SERVERS=127.0.0.1:$port shim bash -c "mkdir $P/d && cp drive.bin $P/d/a.bin && mv $P/d/a.bin $P/d/b.bin && ls $P/d && cat $P/d/b.bin" >drive.out 2>drive.err
check "on drives: cp (streamed), mv (a re-key), ls" test "$(head -c 6 drive.out)" = "b.bin$(printf '\n')"
tail -c +7 drive.out >drive.back
check "on drives: the bytes read back" cmp -s drive.bin drive.back

# Children (fork, subprocess with close_fds) of a process writing a file
# neither store nor damage it; the parent's close stores it whole.
shim "$py" - "$P/forked.bin" >forked.out 2>forked.err <<'PY'
import os, subprocess, sys
f = open(sys.argv[1], "wb")
f.write(b"parent ")
f.flush()
subprocess.run(["true"], check=True)  # forks, closes every descriptor (close_range), execs
pid = os.fork()
if pid == 0:
    f.close()    # the child's copy: stores nothing
    sys.exit(0)  # exit handlers run
os.waitpid(pid, 0)
f.write(b"and more")
f.close()
print(open(sys.argv[1], "rb").read().decode())
PY
check "a file written across fork and subprocess is stored once, whole" test "$(cat forked.out)" = "parent and more"

# A program that never touches the prefix sees no difference.
check "programs outside the prefix are untouched" \
  test "$(shim sha256sum src.bin)" = "$(sha256sum src.bin)"

finish
