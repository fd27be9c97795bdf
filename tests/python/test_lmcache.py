"""memkv_lmcache against real memkv servers, through the calls LMCache's
RemoteBackend makes on a RemoteConnector (docs/lmcache.md).

LMCache is not installed here: its objects are small stand-ins -- a key with
to_string(), a memory object over a numpy buffer (byte_array, tensor,
ref counts), the CPU backend's allocate(), the engine config and metadata --
and the connector derives from memkv_lmcache's local base classes.
"""

import asyncio
import uuid

import numpy as np
import pytest

import memkv
import memkv_lmcache
from memkv_lmcache import MemkvConnector, MemkvConnectorAdapter, parse_servers

LAYERS, TOKENS, HIDDEN = 2, 16, 64
DTYPE = np.dtype(np.float16)
SHAPE = (2, LAYERS, TOKENS, HIDDEN)
CHUNK = int(np.prod(SHAPE)) * DTYPE.itemsize  # 8 KiB
TOKEN_BYTES = CHUNK // TOKENS


# ---- stand-ins for LMCache's objects ----

class Key:
    def __init__(self, name):
        self.name = name

    def to_string(self):
        return self.name


class Metadata:
    chunk_size = TOKENS
    use_mla = False

    def get_shapes(self):
        return [SHAPE]

    def get_dtypes(self):
        return [DTYPE]


class Config:
    def __init__(self, **extra):
        self.extra_config = {"save_chunk_meta": False, **extra}
        self.use_layerwise = False


class MemoryObj:
    """A chunk in pinned CPU memory: ``tensor`` over ``buf``; byte_array is
    a view of the tensor (format 'e', 4-D, as a torch-backed view is not 'B')."""

    def __init__(self, backend):
        self.backend = backend
        self.buf = np.zeros(CHUNK, np.uint8)
        self.tensor = self.buf.view(DTYPE).reshape(SHAPE)
        self.size = CHUNK
        self.ref_count = 1

    @property
    def byte_array(self):
        if self.size == CHUNK:
            return memoryview(self.tensor)
        return memoryview(self.buf[:self.size])

    def resize_raw_view(self, n):
        self.size = n

    def ref_count_down(self):
        assert self.ref_count > 0
        self.ref_count -= 1

    def address(self):
        return self.buf.__array_interface__["data"][0]


class CPUBackend:
    def __init__(self, limit=None):
        self.allocated = []
        self.limit = limit

    def allocate(self, shapes, dtypes, fmt):
        assert list(shapes) == [SHAPE] and list(dtypes) == [DTYPE] and fmt == "KV_2LTD"
        if self.limit is not None and len(self.allocated) >= self.limit:
            return None
        obj = MemoryObj(self)
        self.allocated.append(obj)
        return obj

    def live(self):
        return [o for o in self.allocated if o.ref_count > 0]


class Context:
    """LMCache's ConnectorContext, as the adapter reads it."""

    def __init__(self, url, loop, backend, config=None):
        self.url, self.loop, self.local_cpu_backend = url, loop, backend
        self.config, self.metadata = config or Config(), Metadata()


class RecordingEngine:
    """Wraps a memkv.Engine and records every call the connector makes."""

    def __init__(self, engine):
        self.engine, self.calls = engine, []

    def __getattr__(self, name):
        attr = getattr(self.engine, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self.calls.append((name, args))
            return attr(*args, **kwargs)
        return call


def chunk(obj, seed):
    """Fills a memory object with bytes that name it."""
    obj.buf[:] = np.random.default_rng(seed).integers(0, 256, CHUNK, dtype=np.uint8)
    return obj


def connect(servers, loop, backend=None, **kw):
    backend = backend or CPUBackend()
    conn = MemkvConnectorAdapter().create_connector(
        Context("memkv://" + servers, loop, backend, **kw))
    return conn, backend


@pytest.fixture
def prefix():
    return f"lmc/{uuid.uuid4().hex}/"


# ---- tests ----

def test_import_and_url():
    assert not memkv_lmcache.HAVE_LMCACHE  # the local stand-in bases
    assert parse_servers("memkv://10.0.0.1:9900") == "10.0.0.1:9900"
    assert parse_servers("memkv://a:1, b:2/") == "a:1,b:2"
    assert parse_servers("memkv://[::1]:9900?x=1") == "[::1]:9900"
    adapter = MemkvConnectorAdapter()
    assert adapter.can_parse("memkv://a:1") and not adapter.can_parse("redis://a:1")
    for bad in ("memkv://", "memkv://host", "memkv://host:x", "redis://a:1", "memkv://a:0"):
        with pytest.raises(ValueError):
            parse_servers(bad)


def test_plugin_loading(server):
    """What LMCache's plugin launcher does with the config of docs/lmcache.md."""
    import importlib

    config = Config(**{"remote_storage_plugin.memkv.module_path": "memkv_lmcache",
                       "remote_storage_plugin.memkv.class_name": "MemkvConnectorAdapter"})
    extra = config.extra_config
    module = importlib.import_module(extra["remote_storage_plugin.memkv.module_path"])
    adapter = getattr(module, extra["remote_storage_plugin.memkv.class_name"])()
    url = f"memkv://{server.address}"
    assert adapter.can_parse(url)

    async def main():
        conn = adapter.create_connector(Context(url, asyncio.get_running_loop(), CPUBackend(), config))
        assert isinstance(conn, MemkvConnector) and conn.servers == server.address
        assert await conn.ping() == 0
        await conn.close()

    asyncio.run(main())


def test_single_calls_round_trip(server, start_server, prefix):
    other = start_server("--set", "memory.max_size=256MiB")

    async def main():
        loop = asyncio.get_running_loop()
        conn, backend = connect(f"{server.address},{other.address}", loop)
        conn.post_init()
        assert conn.save_chunk_meta is False and conn.full_chunk_size_bytes == CHUNK
        src = CPUBackend()
        keys = [Key(f"{prefix}{i}") for i in range(16)]
        objs = [chunk(MemoryObj(src), i) for i in range(16)]
        for k, o in zip(keys, objs):
            assert not await conn.exists(k)
            await conn.put(k, o)
            assert o.ref_count == 1  # the caller's reference is left to it
        for k, o in zip(keys, objs):
            assert await conn.exists(k) and conn.exists_sync(k)
            got = await conn.get(k)
            assert got is not None and got.ref_count == 1
            assert got.buf.tobytes() == o.buf.tobytes()
        # keys spread over both servers, and list() sees them all
        assert {conn.engine.route(k.to_string()) for k in keys} == {0, 1}
        listed = await conn.list()
        assert {k.to_string() for k in keys} <= set(listed)
        # a miss is None, and its memory object is released
        n = len(backend.allocated)
        assert await conn.get(Key(prefix + "missing")) is None
        assert len(backend.allocated) == n + 1 and backend.allocated[-1].ref_count == 0
        assert not conn.exists_sync(Key(prefix + "missing"))
        # remove, ping, close
        assert conn.remove_sync(keys[0]) and not conn.remove_sync(keys[0])
        assert await conn.get(keys[0]) is None
        assert conn.support_ping() and await conn.ping() == 0
        await conn.close()

    asyncio.run(main())


def test_zero_copy(engine, server, prefix):
    """Puts send the memory object's own memory; gets fill the object the
    CPU backend allocated; no call returns the value as bytes."""

    async def main():
        rec = RecordingEngine(engine)
        backend = CPUBackend()
        conn = MemkvConnector(server.address, asyncio.get_running_loop(), backend,
                              Config(), Metadata(), engine=rec)
        src = chunk(MemoryObj(CPUBackend()), 7)
        await conn.put(Key(prefix + "z"), src)
        await conn.batched_put([Key(prefix + "z2")], [src])
        got = await conn.get(Key(prefix + "z"))
        (got2,) = await conn.batched_get([Key(prefix + "z2")])
        assert got is backend.allocated[0] and got2 is backend.allocated[1]
        assert got.buf.tobytes() == src.buf.tobytes() == got2.buf.tobytes()
        names = [name for name, _ in rec.calls]
        assert names == ["abatch_put", "abatch_put", "abatch_get_into", "abatch_get_into"]
        for name, (items,) in rec.calls:
            for _, view in items:
                assert isinstance(view, memoryview) and view.format == "B"
                owner = src if name == "abatch_put" else None
                addr = np.frombuffer(view, np.uint8).__array_interface__["data"][0]
                if owner is not None:
                    assert addr == src.address()
                else:
                    assert addr in {o.address() for o in backend.allocated}

    asyncio.run(main())


def test_batched_forms(engine, server, prefix):
    async def main():
        conn, backend = connect(server.address, asyncio.get_running_loop())
        assert conn.support_batched_put() and conn.support_batched_get()
        assert conn.support_batched_contains() and conn.support_batched_async_contains()
        assert conn.support_batched_get_non_blocking()
        src = CPUBackend()
        keys = [Key(f"{prefix}{i}") for i in range(64)]
        objs = [chunk(MemoryObj(src), 100 + i) for i in range(64)]
        present = [i for i in range(64) if i != 40]
        await conn.batched_put([keys[i] for i in present], [objs[i] for i in present])
        assert all(o.ref_count == 1 for o in objs)
        assert await conn.batched_async_contains("lookup-1", keys) == 40
        assert conn.batched_contains(keys) == 40
        assert await conn.batched_async_contains("lookup-2", keys[:40]) == 40
        assert await conn.batched_async_contains("lookup-3", []) == 0

        got = await conn.batched_get(keys)
        assert len(got) == 64 and got[40] is None
        for i in present:
            assert got[i].buf.tobytes() == objs[i].buf.tobytes()
        assert [o.ref_count for o in backend.allocated].count(0) == 1  # the miss

        before = len(backend.allocated)
        prefix_objs = await conn.batched_get_non_blocking("lookup-4", keys)
        assert [o.buf.tobytes() for o in prefix_objs] == [o.buf.tobytes() for o in objs[:40]]
        after = backend.allocated[before:]
        assert sum(o.ref_count for o in after) == 40  # the miss and the rest released
        assert await conn.batched_get([]) == [] and await conn.batched_put([], []) is None

    asyncio.run(main())


def test_partial_chunk_and_bad_sizes(engine, server, prefix):
    async def main():
        conn, backend = connect(server.address, asyncio.get_running_loop())
        src = chunk(MemoryObj(CPUBackend()), 3)
        src.resize_raw_view(5 * TOKEN_BYTES)  # the last chunk of a prompt: 5 tokens
        await conn.put(Key(prefix + "part"), src)
        got = await conn.get(Key(prefix + "part"))
        assert got.size == 5 * TOKEN_BYTES
        assert got.byte_array.tobytes() == src.buf[:5 * TOKEN_BYTES].tobytes()
        # values that are not whole tokens, or larger than a chunk: None, released
        engine.put(prefix + "odd", b"x" * (TOKEN_BYTES + 1))
        engine.put(prefix + "big", b"x" * (CHUNK + TOKEN_BYTES))
        n = len(backend.allocated)
        assert await conn.get(Key(prefix + "odd")) is None
        assert await conn.get(Key(prefix + "big")) is None
        assert all(o.ref_count == 0 for o in backend.allocated[n:])
        # the engine's reshaping failing with something else than ValueError
        # (seen against LMCache's own code): None, and the object released
        def broken(obj, size):
            raise AttributeError("'MemoryObjMetadata' object has no attribute 'shapes'")
        conn.reshape_partial_chunk = broken
        n = len(backend.allocated)
        assert await conn.get(Key(prefix + "part")) is None
        assert len(backend.allocated) == n + 1 and backend.allocated[-1].ref_count == 0

    asyncio.run(main())


def test_allocation_failure(server, prefix):
    async def main():
        conn, backend = connect(server.address, asyncio.get_running_loop(),
                                backend=CPUBackend(limit=3))
        src = CPUBackend()
        keys = [Key(f"{prefix}{i}") for i in range(5)]
        await conn.batched_put(keys, [chunk(MemoryObj(src), i) for i in range(5)])
        got = await conn.batched_get(keys)
        assert [g is not None for g in got] == [True, True, True, False, False]
        assert len(await conn.batched_get_non_blocking("l", keys)) == 0  # backend full

    asyncio.run(main())


def test_put_failure_raises(start_server, prefix):
    s = start_server("--set", "memory.max_size=256MiB")

    async def main():
        conn, _ = connect(s.address, asyncio.get_running_loop(), config=Config(**{"memkv.timeout": 2}))
        obj = chunk(MemoryObj(CPUBackend()), 1)
        await conn.put(Key(prefix + "a"), obj)
        s.stop()
        with pytest.raises(memkv.Error):
            await conn.batched_put([Key(prefix + "b")], [obj])

    asyncio.run(main())


def test_many_concurrent_calls(server, prefix):
    """LMCache issues puts and gets as separate tasks on its loop."""

    async def main():
        conn, backend = connect(server.address, asyncio.get_running_loop())
        src = CPUBackend()
        n = 1000
        keys = [Key(f"{prefix}{i}") for i in range(n)]
        objs = [chunk(MemoryObj(src), 1000 + i) for i in range(n)]
        await asyncio.gather(*(conn.put(k, o) for k, o in zip(keys, objs)))
        exists = await asyncio.gather(*(conn.exists(k) for k in keys))
        assert all(exists)
        got = await asyncio.gather(*(conn.get(k) for k in keys),
                                   *(conn.get(Key(prefix + f"miss{i}")) for i in range(100)))
        for o, g in zip(objs, got[:n]):
            assert g.buf.tobytes() == o.buf.tobytes()
        assert all(g is None for g in got[n:])
        # gets and puts of batches, concurrently
        batches = [keys[i:i + 50] for i in range(0, n, 50)]
        results = await asyncio.gather(*(conn.batched_get(b) for b in batches),
                                       *(conn.batched_put(b, objs[:len(b)]) for b in batches[:5]))
        assert all(g is not None for r in results[:len(batches)] for g in r)

    asyncio.run(main())
