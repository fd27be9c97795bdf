"""The memkv Python package against real memory-mode servers (conftest.py)."""

import asyncio
import ctypes
import gc
import os
import subprocess
import sys
import threading
import tracemalloc
import uuid

import numpy as np
import pytest

import memkv


def unique(prefix="k"):
    return f"{prefix}-{uuid.uuid4().hex}"


# ---- every call ----


def test_single_calls(engine, server):
    assert engine.servers == [server.address]
    k = unique()
    assert engine.exists(k) is False
    engine.put(k, b"hello world")
    assert engine.exists(k) is True
    assert engine.size(k) == 11
    assert engine.get(k) == b"hello world"
    buf = bytearray(32)
    assert engine.get_into(k, buf) == 11
    assert bytes(buf[:11]) == b"hello world"
    # bytes keys name the same value as their UTF-8 str
    assert engine.get(k.encode()) == b"hello world"
    k2 = unique()
    engine.rename(k, k2)
    assert not engine.exists(k) and engine.get(k2) == b"hello world"
    assert engine.route(k2) == 0
    engine.delete(k2)
    assert not engine.exists(k2)


def test_list_and_capacity(engine):
    prefix = unique("list") + "/"
    engine.batch_put([(f"{prefix}{i:03d}", bytes([i]) * (i + 1)) for i in range(50)])
    listed = engine.list(prefix)
    assert listed == [(f"{prefix}{i:03d}", i + 1) for i in range(50)]
    assert engine.list(prefix, limit=7) == listed[:7]
    assert engine.list(prefix + "nothing") == []
    # A key that is not UTF-8 lists with its bytes escaped, and works as listed.
    raw = prefix.encode() + b"\xff\xfe"
    engine.put(raw, b"raw")
    (name, size), = [x for x in engine.list(prefix) if x[0].startswith(prefix + "\udcff")]
    assert size == 3 and engine.get(name) == b"raw"
    with pytest.raises(memkv.NotFound, match="\ufffd"):
        engine.get(raw + b"missing")
    cap = engine.capacity()
    assert cap["keys"] >= 50 and cap["total_bytes"] > 0 and cap["max_value_size"] > 0
    assert cap["used_bytes"] <= cap["total_bytes"]


def test_from_environment(server, monkeypatch):
    monkeypatch.setenv("MEMKV_SERVERS", server.address)
    monkeypatch.delenv("MEMKV_CONFIG", raising=False)
    e = memkv.Engine.from_environment()
    assert isinstance(e, memkv.Engine) and e.servers == [server.address]
    k = unique()
    e.put(k, b"env")
    assert e.get(k) == b"env"
    monkeypatch.delenv("MEMKV_SERVERS")
    with pytest.raises(memkv.InvalidArgument, match="MEMKV_SERVERS"):
        memkv.Engine.from_environment()


def test_engine_options(server):
    e = memkv.Engine([server.address], transport="tcp", timeout=5.0, connect_timeout=2.0,
                     io_threads=2)
    k = unique()
    e.put(k, b"tcp")
    assert e.get(k) == b"tcp"
    assert "transport=tcp" in repr(e)
    with pytest.raises(memkv.InvalidArgument, match="transport"):
        memkv.Engine(server.address, transport="carrier-pigeon")
    with pytest.raises(memkv.InvalidArgument, match="auth_key"):
        memkv.Engine(server.address, auth_key="not hex")
    with pytest.raises(TypeError):
        memkv.Engine(42)


# ---- exceptions ----


def test_exceptions(engine):
    assert issubclass(memkv.NotFound, memkv.Error) and issubclass(memkv.Error, Exception)
    for code in memkv.Code:
        if code == memkv.Code.OK:
            continue
        cls = getattr(memkv, memkv.code_name(code))
        assert issubclass(cls, memkv.Error) and cls.code == code
        assert isinstance(memkv.error_for(-code), cls)
    missing = unique("missing")
    with pytest.raises(memkv.NotFound, match=missing) as info:
        engine.get(missing)
    assert info.value.code == memkv.Code.NOT_FOUND
    with pytest.raises(memkv.NotFound):
        engine.get_into(missing, bytearray(8))
    with pytest.raises(memkv.NotFound):
        engine.size(missing)
    with pytest.raises(memkv.NotFound):
        engine.delete(missing)
    with pytest.raises(memkv.NotFound):
        engine.rename(missing, unique())
    k = unique()
    engine.put(k, b"x" * 100)
    with pytest.raises(memkv.BufferTooSmall, match="100 bytes"):
        engine.get_into(k, bytearray(10))
    with pytest.raises(memkv.InvalidArgument):
        engine.put("", b"x")  # an empty key
    with pytest.raises(memkv.InvalidArgument):
        engine.put(unique(), b"")  # a 0-byte value
    with pytest.raises(BufferError):
        engine.get_into(k, b"read-only bytes")
    with pytest.raises(TypeError):
        engine.put(42, b"x")


def test_unreachable_server_raises_unavailable():
    e = memkv.Engine("127.0.0.1:1", timeout=5.0, connect_timeout=1.0)
    with pytest.raises(memkv.Unavailable):
        e.put("k", b"v")
    with pytest.raises(memkv.Unavailable):
        e.get("k")
    assert e.batch_exists(["a", "b"]) == [-memkv.Code.UNAVAILABLE] * 2


# ---- every buffer kind ----


def test_buffer_kinds(engine):
    data = os.urandom(1 << 16)
    k = unique()
    engine.put(k, data)  # bytes
    engine.put(k + "ba", bytearray(data))  # bytearray
    engine.put(k + "mv", memoryview(data)[100:200])  # a memoryview slice
    arr = np.frombuffer(data, dtype=np.float32).copy()
    engine.put(k + "np", arr)  # a numpy array
    # bytearray
    ba = bytearray(len(data))
    assert engine.get_into(k, ba) == len(data) and ba == data
    assert engine.get(k + "ba") == data
    # memoryview into part of a bytearray
    big = bytearray(1000)
    assert engine.get_into(k + "mv", memoryview(big)[500:700]) == 100
    assert bytes(big[500:600]) == data[100:200] and big[:500] == bytes(500)
    # numpy arrays, any dtype, contiguous
    out = np.zeros_like(arr)
    assert engine.get_into(k + "np", out) == len(data)
    assert out.tobytes() == arr.tobytes()  # bitwise (random floats hold NaNs)
    with pytest.raises((BufferError, ValueError)):  # not contiguous
        engine.get_into(k, np.zeros((256, 512), dtype=np.uint8)[:, ::2])
    # shared memory from alloc(): memoryview and numpy views of it
    sb = engine.alloc(len(data))
    assert isinstance(sb, memkv.SharedBuffer) and len(sb) == len(data) and sb.address
    view = np.frombuffer(sb, dtype=np.uint8)
    assert not view.any()  # zeroed
    assert engine.get_into(k, sb) == len(data)
    assert view.tobytes() == data
    view[:4] = [1, 2, 3, 4]
    engine.put(k + "sb", sb)  # put from shared memory
    assert engine.get(k + "sb")[:4] == b"\x01\x02\x03\x04"
    assert engine.get_into(k + "mv", memoryview(sb)[10:]) == 100
    # raw (address, size): a tensor's data_ptr()
    raw = np.zeros(len(data), dtype=np.uint8)
    assert engine.get_into_ptr(k, raw.ctypes.data, raw.nbytes) == len(data)
    assert raw.tobytes() == data
    cbuf = ctypes.create_string_buffer(b"from ctypes", 11)
    engine.put_ptr(k + "ptr", ctypes.addressof(cbuf), 11)
    assert engine.get(k + "ptr") == b"from ctypes"
    with pytest.raises(ValueError):
        engine.get_into_ptr(k, 0, 10)


def test_shared_buffer_lives_while_referenced(engine):
    sb = engine.alloc(4096)
    view = memoryview(sb)
    arr = np.frombuffer(sb, dtype=np.uint32)
    del sb
    gc.collect()
    arr[:] = 7  # still mapped: the views hold it
    assert view[:4].tobytes() == b"\x07\x00\x00\x00"
    k = unique()
    engine.put(k, view)
    del arr
    view.release()
    assert engine.get(k)[:4] == b"\x07\x00\x00\x00"
    with pytest.raises(memkv.InvalidArgument):
        engine.alloc(0)


def test_register(engine):
    buf = bytearray(os.urandom(1 << 20))
    engine.register(buf)
    k = unique()
    items = [(f"{k}/{i}", memoryview(buf)[i << 16:(i + 1) << 16]) for i in range(16)]
    assert engine.batch_put(items) == [0] * 16
    with pytest.raises(BufferError):
        buf.append(0)  # held while registered: cannot move
    out = bytearray(1 << 16)
    assert engine.get_into(f"{k}/3", out) == 1 << 16
    assert out == buf[3 << 16:4 << 16]
    engine.unregister(buf)
    del items
    buf.append(0)  # released
    with pytest.raises(memkv.NotFound):
        engine.unregister(buf)


# ---- batches ----


def test_batch_of_7500(engine):
    n, size = 7500, 4096
    src = np.random.default_rng(1).integers(0, 256, n * size, dtype=np.uint8)
    keys = [f"{unique('batch')}/{i}" for i in range(n)]
    # half from memoryviews, half as (key, address, size)
    mv = memoryview(src)
    items = [(keys[i], mv[i * size:(i + 1) * size]) if i % 2 else
             (keys[i], src.ctypes.data + i * size, size) for i in range(n)]
    assert engine.batch_put(items) == [0] * n
    assert engine.batch_exists(keys) == [size] * n
    dst = engine.alloc(n * size)
    dmv = memoryview(dst)
    got = engine.batch_get_into([(keys[i], dmv[i * size:(i + 1) * size]) for i in range(n)])
    assert got == [size] * n
    assert np.array_equal(np.frombuffer(dst, dtype=np.uint8), src)
    # into plain numpy memory by address, with missing keys among them
    out = np.zeros(n * size, dtype=np.uint8)
    ask = [(keys[i] if i % 3 else keys[i] + "-missing", out.ctypes.data + i * size, size)
           for i in range(n)]
    got = engine.batch_get_into(ask)
    assert got == [size if i % 3 else -memkv.Code.NOT_FOUND for i in range(n)]
    assert np.array_equal(out[size:2 * size], src[size:2 * size])
    values = engine.batch_get(keys[:10] + ["nope-" + keys[0]])
    assert values[:10] == [src[i * size:(i + 1) * size].tobytes() for i in range(10)]
    assert values[10] is None
    assert engine.batch_delete(keys) == [0] * n
    assert engine.batch_delete(keys[:3]) == [memkv.Code.NOT_FOUND] * 3
    assert engine.batch_exists(keys[:3]) == [-memkv.Code.NOT_FOUND] * 3
    assert engine.batch_put([]) == [] and engine.batch_get_into([]) == []


def test_batch_errors_are_per_entry(engine):
    k = unique()
    # A bad argument refuses the whole call, naming the entry.
    with pytest.raises(memkv.InvalidArgument, match=r"entries\[1\]"):
        engine.batch_put([(k, b"ok"), (k + "/empty", b"")])
    assert not engine.exists(k)
    assert engine.batch_put([(k, b"ok")]) == [0]
    res = engine.batch_get_into([(k, bytearray(1)), (k, bytearray(2)), (k + "/no", bytearray(2))])
    assert res == [-memkv.Code.BUFFER_TOO_SMALL, 2, -memkv.Code.NOT_FOUND]
    with pytest.raises(TypeError):
        engine.batch_put([(k,)])
    with pytest.raises(TypeError):
        engine.batch_put([k])


# ---- the GIL ----


def test_gil_released_during_a_large_get(engine):
    k = unique()
    size = 64 << 20
    engine.put(k, np.ones(size, dtype=np.uint8))
    dst = bytearray(size)
    counter = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            counter[0] += 1
            if counter[0] % 64 == 0:
                import time
                time.sleep(0)  # lets the main thread back in promptly

    old = sys.getswitchinterval()
    # Without a release the spinning thread would get the GIL only after this.
    sys.setswitchinterval(100.0)
    t = threading.Thread(target=spin)
    try:
        t.start()
        progressed = 0
        for _ in range(3):
            before = counter[0]
            assert engine.get_into(k, dst) == size
            progressed += counter[0] - before
    finally:
        stop.set()
        sys.setswitchinterval(old)
        t.join()
    assert progressed > 0, "no other thread ran while get_into waited"
    assert dst[:4] == b"\x01\x01\x01\x01"


def test_threads_share_an_engine(engine):
    k = unique()
    errors = []

    def work(t):
        try:
            for i in range(200):
                key = f"{k}/{t}/{i}"
                engine.put(key, key.encode())
                assert engine.get(key) == key.encode()
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# ---- asyncio ----


def test_asyncio_many_concurrent_calls(engine):
    k = unique("async")
    n = 2000

    async def main():
        ticks = 0
        done = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        tick = asyncio.ensure_future(ticker())
        await asyncio.gather(*[engine.aput(f"{k}/{i}", f"v{i}".encode() * 100) for i in range(n)])
        assert all(await asyncio.gather(*[engine.aexists(f"{k}/{i}") for i in range(n)]))
        bufs = [bytearray(1000) for _ in range(n)]
        lens = await asyncio.gather(*[engine.aget_into(f"{k}/{i}", bufs[i]) for i in range(n)])
        for i in range(n):
            v = f"v{i}".encode() * 100
            assert lens[i] == len(v) and bufs[i][:len(v)] == v
        assert await engine.aget(f"{k}/7") == b"v7" * 100
        assert await engine.asize(f"{k}/7") == 200
        batch = await engine.abatch_get_into([(f"{k}/{i}", bytearray(1000)) for i in range(n)])
        assert all(x > 0 for x in batch)
        assert await engine.abatch_exists([f"{k}/0", f"{k}/none"]) == [200, -1]
        assert await engine.abatch_put([(f"{k}/x", b"1")]) == [0]
        with pytest.raises(memkv.NotFound):
            await engine.aget(f"{k}/none")
        with pytest.raises(memkv.NotFound):
            await engine.aget_into(f"{k}/none", bytearray(10))
        with pytest.raises(memkv.BufferTooSmall):
            await engine.aget_into(f"{k}/0", bytearray(10))
        assert not await engine.aexists(f"{k}/none")
        with pytest.raises(memkv.InvalidArgument):  # refused before anything is sent
            await engine.aput("", b"x")
        await engine.adelete(f"{k}/x")
        with pytest.raises(memkv.NotFound):
            await engine.adelete(f"{k}/x")
        assert await engine.abatch_delete([f"{k}/{i}" for i in range(n)]) == [0] * n
        done.set()
        await tick
        return ticks

    ticks = asyncio.run(main())
    assert ticks > 0  # the loop kept running while calls were in flight
    assert memkv._memkv._inflight() == 0


def test_asyncio_cancelled_call_is_harmless(engine):
    k = unique()
    engine.put(k, b"z" * 1000)

    async def main():
        buf = bytearray(1000)
        task = asyncio.ensure_future(engine.aget_into(k, buf))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await engine.aget(k)

    assert asyncio.run(main()) == b"z" * 1000


def test_exit_with_calls_in_flight(server):
    """The interpreter exits cleanly while async calls are still in flight."""
    script = f"""
import asyncio, memkv
engine = memkv.Engine({server.address!r})
engine.put("exit-key", b"x" * 65536)
bufs = [bytearray(65536) for _ in range(500)]
async def main():
    for b in bufs:
        asyncio.ensure_future(engine.aget_into("exit-key", b))
    await asyncio.sleep(0)  # returns with the calls in flight: asyncio.run cancels them
asyncio.run(main())
engine._async_batch_get_into([("exit-key", b) for b in bufs], lambda r: None)
del engine
print("done")
"""
    out = subprocess.run([sys.executable, "-X", "dev", "-c", script], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "done\n"
    assert "Traceback" not in out.stderr and "Fatal" not in out.stderr, out.stderr


# ---- a server killed mid-batch ----


def test_server_killed_mid_batch(start_server):
    a, b = start_server(), start_server()
    e = memkv.Engine([a.address, b.address], timeout=10.0, connect_timeout=2.0)
    n, size = 7500, 16 << 10
    keys = [f"{unique('kill')}/{i}" for i in range(n)]
    src = np.random.default_rng(2).integers(0, 256, size, dtype=np.uint8)
    assert e.batch_put([(key, src) for key in keys]) == [0] * n
    on_b = [e.route(key) == 1 for key in keys]
    assert any(on_b) and not all(on_b)
    dst = np.zeros(n * size, dtype=np.uint8)
    outcome = {}

    def get_all():
        try:
            outcome["results"] = e.batch_get_into(
                [(keys[i], dst.ctypes.data + i * size, size) for i in range(n)])
        except memkv.Unavailable as err:
            outcome["error"] = err

    t = threading.Thread(target=get_all)
    t.start()
    b.stop()  # SIGKILL while the batch is (most likely) in flight
    t.join(timeout=120)
    assert not t.is_alive(), "batch_get_into hung after a server was killed"
    print("killed mid-batch:", {k: (v if k == "error" else sum(x < 0 for x in v))
                                for k, v in outcome.items()})
    if "results" in outcome:
        res = outcome["results"]
        for i in range(n):
            if not on_b[i]:
                assert res[i] == size
            else:
                assert res[i] == size or res[i] < 0
    # Afterwards: the dead server's keys fail per entry, the others succeed.
    res = e.batch_get_into([(keys[i], dst.ctypes.data + i * size, size) for i in range(n)])
    for i in range(n):
        if on_b[i]:
            assert res[i] in (-memkv.Code.UNAVAILABLE, -memkv.Code.TIMEOUT)
        else:
            assert res[i] == size
    dead = keys[on_b.index(True)]
    with pytest.raises((memkv.Unavailable, memkv.Timeout)):
        e.get(dead)
    live = keys[on_b.index(False)]
    assert e.get(live) == src.tobytes()


# ---- refcounts and memory over 10,000 calls ----


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_refcounts_and_memory_steady(engine):
    k = unique("steady")
    data = b"d" * 512
    buf = bytearray(512)
    arr = np.zeros(512, dtype=np.uint8)
    engine.put(k, data)
    missing = k + "-missing"

    def round_trip():
        engine.put(k, data)
        engine.get(k)
        engine.get_into(k, buf)
        engine.get_into(k, arr)
        engine.exists(k)
        engine.batch_put([(k, data)])
        engine.batch_get_into([(k, buf), (missing, arr)])
        engine.batch_exists([k, missing])
        try:
            engine.get(missing)
        except memkv.NotFound:
            pass

    for _ in range(200):  # warm up caches and the allocator
        round_trip()
    gc.collect()
    refs = [sys.getrefcount(o) for o in (k, data, buf, arr, missing)]
    rss0 = rss_bytes()
    tracemalloc.start()
    snap0 = tracemalloc.take_snapshot()
    for _ in range(10_000 // 9 + 1):  # 9 calls each: over 10,000 calls
        round_trip()
    gc.collect()
    snap1 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    assert [sys.getrefcount(o) for o in (k, data, buf, arr, missing)] == refs
    growth = sum(s.size_diff for s in snap1.compare_to(snap0, "filename"))
    assert growth < 256 << 10, f"Python heap grew by {growth} bytes"
    assert rss_bytes() - rss0 < 32 << 20


def test_async_refcounts_steady(engine):
    k = unique("asteady")
    engine.put(k, b"a" * 256)
    buf = bytearray(256)

    async def many():
        for _ in range(20):
            await asyncio.gather(*[engine.aget_into(k, buf) for _ in range(100)])

    asyncio.run(many())
    gc.collect()
    before = sys.getrefcount(buf)
    asyncio.run(many())  # 2,000 more calls
    gc.collect()
    assert sys.getrefcount(buf) == before


def test_alloc_memory_is_freed(engine):
    for _ in range(50):
        engine.alloc(8 << 20)
    gc.collect()
    rss0 = rss_bytes()
    for _ in range(500):
        b = engine.alloc(8 << 20)
        np.frombuffer(b, dtype=np.uint8)[::4096] = 1  # touch every page
        del b
    gc.collect()
    assert rss_bytes() - rss0 < 64 << 20
