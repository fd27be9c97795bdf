"""A storage workload as Python programs write it: numpy arrays saved and
loaded, file objects, os.stat/statvfs/listdir/rename/unlink, glob, threads.
Run under the preload shim with ROOT inside its prefix, and again on a local
directory: the JSON it prints must be the same. Usage: numpy_workload.py ROOT
"""
import glob
import hashlib
import json
import os
import sys
import threading

import numpy as np

root = sys.argv[1]
out = {}
cache = os.path.join(root, "cache")
os.makedirs(os.path.join(cache, "layers"), exist_ok=True)
out["isdir"] = os.path.isdir(cache)

# Arrays of several sizes, np.save / np.load (fdopen + fwrite / fread under
# numpy), and np.load with mmap.
sums = {}
for i, shape in enumerate([(16,), (256, 1024), (2048, 2048), (3, 1000, 999)]):
    a = np.random.default_rng(i).standard_normal(shape).astype(np.float32)
    path = os.path.join(cache, f"block_{i}.npy")
    np.save(path, a)
    b = np.load(path)
    assert np.array_equal(a, b), path
    m = np.load(path, mmap_mode="r")
    assert np.array_equal(a, m), path
    sums[os.path.basename(path)] = [os.stat(path).st_size, hashlib.sha256(b.tobytes()).hexdigest()]
out["arrays"] = sums

# File objects: chunks written, read back with seek and tell.
path = os.path.join(cache, "layers", "raw.bin")
data = np.random.default_rng(9).integers(0, 255, size=9 << 20, dtype=np.uint8).tobytes()
with open(path, "wb") as f:
    for at in range(0, len(data), 1 << 20):
        f.write(data[at:at + (1 << 20)])
with open(path, "rb") as f:
    f.seek(5 << 20)
    tail = f.read()
    out["tell"] = f.tell()
    f.seek(100)
    head = f.read(1000)
assert tail == data[5 << 20:] and head == data[100:1100]
with open(path, "r+b") as f:  # patch in place
    f.seek(4096)
    f.write(b"patched")
with open(path, "rb") as f:
    patched = f.read()
assert patched[4096:4103] == b"patched" and patched[:4096] == data[:4096]
out["raw"] = hashlib.sha256(patched).hexdigest()
with open(path, "ab") as f:
    f.write(b"appended")
out["appended_size"] = os.path.getsize(path)

# An empty file, and text.
open(os.path.join(cache, "empty"), "w").close()
with open(os.path.join(cache, "notes.txt"), "w") as f:
    f.write("line one\nline two\n")
with open(os.path.join(cache, "notes.txt")) as f:
    out["lines"] = f.readlines()
out["empty_size"] = os.stat(os.path.join(cache, "empty")).st_size

# Threads, each with its own files.
def worker(t):
    for k in range(3):
        p = os.path.join(cache, f"t{t}_{k}.npy")
        a = np.full((128, 1024), t * 10 + k, dtype=np.int32)
        np.save(p, a)
        assert np.array_equal(np.load(p), a)
threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()

# Listing, glob, rename, unlink.
os.rename(os.path.join(cache, "t0_0.npy"), os.path.join(cache, "layers", "renamed.npy"))
os.unlink(os.path.join(cache, "t1_1.npy"))
out["listdir"] = sorted(os.listdir(cache))
out["glob"] = sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(cache, "*.npy")))
out["layers"] = sorted(e.name + ("/" if e.is_dir() else "") for e in os.scandir(os.path.join(cache, "layers")))
out["exists_after_unlink"] = os.path.exists(os.path.join(cache, "t1_1.npy"))
try:
    os.stat(os.path.join(cache, "missing"))
    out["missing"] = "found"
except FileNotFoundError:
    out["missing"] = "ENOENT"
st = os.statvfs(root)
out["statvfs"] = st.f_bsize > 0 and st.f_blocks > 0 and st.f_bavail <= st.f_blocks

# fork: the child reads a descriptor it inherited, and opens files itself.
fd = os.open(os.path.join(cache, "notes.txt"), os.O_RDONLY)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    got = os.read(fd, 8)
    with open(os.path.join(cache, "from_child.txt"), "w") as f:
        f.write("child wrote this")
    os.write(w, got)
    os._exit(0)
os.waitpid(pid, 0)
out["fork_read"] = os.read(r, 100).decode()
with open(os.path.join(cache, "from_child.txt")) as f:
    out["fork_write"] = f.read()
os.close(fd)

# A write through a read-only descriptor.
fd = os.open(os.path.join(cache, "notes.txt"), os.O_RDONLY)
try:
    os.write(fd, b"x")
    out["write_readonly"] = "written"
except OSError as e:
    out["write_readonly"] = os.strerror(e.errno)
os.close(fd)
try:
    os.rmdir(cache)
    out["rmdir_nonempty"] = "removed"
except OSError as e:
    out["rmdir_nonempty"] = os.strerror(e.errno)
print(json.dumps(out, sort_keys=True, indent=1))
