#!/usr/bin/env python3
"""python_bench: one batch get of 7,500 x 64 KiB into a preallocated buffer
through the Python package, beside the same batch through the C++ client
(batch_get_bench), on the same rail and the same kind of buffer.

    PYTHONPATH=build/release/python python3 bench/python_bench.py [--shared] \
        [--count N] [--size BYTES] [--rounds R] [--build build/release]

Uses MEMKV_SERVERS, or starts a memory-mode server of the build on a free
loopback port. --shared: both read into Engine.alloc / AllocateShared memory
(the shm rail); otherwise into ordinary memory (tcp). Prints GiB/s (best and
median of the rounds) for each and the ratio Python / C++.
"""

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time


def start_server(memkv, tmp):
    for _ in range(5):
        port = 20000 + random.randrange(20000) * 2
        proc = subprocess.Popen(
            [memkv, "--log-level", "warn", "server", "--address", f"127.0.0.1:{port}",
             "--unix-socket", os.path.join(tmp, "bench.sock"), "--set", "storage.mode=memory",
             "--set", "memory.max_size=4GiB"], stdout=subprocess.DEVNULL)
        for _ in range(100):
            if proc.poll() is not None:
                break
            if subprocess.run([memkv, "admin", "health", "--server", f"127.0.0.1:{port + 1}"],
                              capture_output=True).returncode == 0:
                return proc, f"127.0.0.1:{port}"
            time.sleep(0.05)
        proc.kill()
        proc.wait()
    sys.exit("python_bench: could not start a memkv server")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=7500)
    ap.add_argument("--size", type=int, default=64 << 10)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--shared", action="store_true")
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                     "release"))
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.build, "python"))
    import memkv
    import numpy as np

    server = None
    tmp = tempfile.mkdtemp(prefix="memkv-pybench-")
    if not os.environ.get("MEMKV_SERVERS"):
        server, address = start_server(os.path.join(args.build, "src", "cli", "memkv"), tmp)
        os.environ["MEMKV_SERVERS"] = address
    try:
        engine = memkv.Engine.from_environment()
        n, size = args.count, args.size
        buf = engine.alloc(n * size) if args.shared else np.zeros(n * size, dtype=np.uint8)
        view = memoryview(buf).cast("B")
        keys = [f"python_bench/{i}" for i in range(n)]
        items = [(keys[i], view[i * size:(i + 1) * size]) for i in range(n)]
        assert engine.batch_put(items) == [0] * n
        rates = []
        for r in range(args.rounds + 1):
            t0 = time.perf_counter()
            res = engine.batch_get_into(items)
            s = time.perf_counter() - t0
            assert min(res) == size, "a get failed"
            if r:  # round 0 warms up
                rates.append(n * size / s / (1 << 30))
        rates.sort()
        py_best, py_median = rates[-1], rates[len(rates) // 2]
        kind = "shared" if args.shared else "plain"
        print(f"python batch_get_into {n} x {size} ({kind}): {py_best:.2f} GiB/s best, "
              f"{py_median:.2f} median")
        cxx = [os.path.join(args.build, "bench", "batch_get_bench"), "--count", str(n),
               "--size", str(size), "--rounds", str(args.rounds)]
        if args.shared:
            cxx.append("--shared")
        out = subprocess.run(cxx, capture_output=True, text=True, check=True).stdout.strip()
        print("c++    " + out)
        m = re.search(r"([0-9.]+) GiB/s best, ([0-9.]+) median", out)
        print(f"python / c++: {py_best / float(m.group(1)):.2f}x best, "
              f"{py_median / float(m.group(2)):.2f}x median")
    finally:
        if server:
            server.kill()
            server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
