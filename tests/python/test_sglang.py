"""memkv_sglang against real servers, through the calls SGLang's HiCache makes.

SGLang itself is not installed here: small stand-ins play its objects (the
storage config, a host KV pool over a numpy buffer with SGLang's MHA and MLA
page layouts and its get_page_buffer_meta), and the test loads the backend
the way SGLang's dynamic factory does (docs/sglang.md).
"""

import dataclasses
import importlib
import uuid
from typing import Optional

import numpy as np
import pytest

import memkv
import memkv_sglang


@dataclasses.dataclass
class StorageConfig:
    """The fields of SGLang's HiCacheStorageConfig the backend reads."""

    tp_rank: int = 0
    tp_size: int = 1
    pp_rank: int = 0
    pp_size: int = 1
    attn_cp_rank: int = 0
    attn_cp_size: int = 1
    is_mla_model: bool = False
    enable_storage_metrics: bool = False
    is_page_first_layout: bool = True
    model_name: Optional[str] = None
    extra_config: Optional[dict] = None


class HostPool:
    """A host KV pool as SGLang lays it out, over one numpy buffer.

    MHA, page_first: kv_buffer (2, tokens, layers, heads, dim); a page is a
    K range and a V range. MHA, layer_first: (2, layers, tokens, heads, dim);
    a K and a V range per layer. MLA, page_first: (tokens, layers, 1, dim);
    one range per page. get_page_buffer_meta gives (addresses, sizes) in that
    order, as SGLang's MHATokenToKVPoolHost and MLATokenToKVPoolHost do.
    """

    def __init__(self, mla=False, layout="page_first", pages=64, page_size=4,
                 layers=3, heads=2, dim=8, dtype=np.float16):
        self.mla, self.layout, self.page_size = mla, layout, page_size
        self.size, self.layer_num = pages * page_size, layers
        self.heads, self.dim = (1, dim) if mla else (heads, dim)
        if mla:
            shape = (self.size, layers, 1, dim)
        elif layout == "layer_first":
            shape = (2, layers, self.size, heads, dim)
        else:
            shape = (2, self.size, layers, heads, dim)
        self.kv_buffer = np.zeros(shape, dtype=dtype)
        self.item = np.dtype(dtype).itemsize

    def get_hybrid_pool_buffer(self):
        return [self.kv_buffer] if self.mla else [self.kv_buffer[0], self.kv_buffer[1]]

    def get_page_buffer_meta(self, indices):
        assert len(indices) % self.page_size == 0
        base = self.kv_buffer.ctypes.data
        token = self.heads * self.dim * self.item
        ptrs = []
        for first in indices.tolist()[::self.page_size]:
            if self.mla:
                ptrs.append(base + first * self.layer_num * token)
            elif self.layout == "layer_first":
                v_offset = self.layer_num * self.size * token
                for layer in range(self.layer_num):
                    k = base + (layer * self.size + first) * token
                    ptrs += [k, k + v_offset]
            else:
                v_offset = self.size * self.layer_num * token
                k = base + first * self.layer_num * token
                ptrs += [k, k + v_offset]
        per_range = self.page_size * token * (1 if self.layout == "layer_first" else self.layer_num)
        return ptrs, [per_range] * len(ptrs)

    def indices(self, slots):
        """The token indices of pool pages `slots`, as SGLang passes host_indices."""
        return np.concatenate([np.arange(s * self.page_size, (s + 1) * self.page_size)
                               for s in slots])

    def page_bytes(self, slot):
        ptrs, sizes = self.get_page_buffer_meta(self.indices([slot]))
        raw = self.kv_buffer.view(np.uint8).reshape(-1)
        base = self.kv_buffer.ctypes.data
        return [raw[p - base:p - base + s].tobytes() for p, s in zip(ptrs, sizes)]

    def fill(self, slots, rng):
        for s in slots:
            ptrs, sizes = self.get_page_buffer_meta(self.indices([s]))
            raw = self.kv_buffer.view(np.uint8).reshape(-1)
            base = self.kv_buffer.ctypes.data
            for p, n in zip(ptrs, sizes):
                raw[p - base:p - base + n] = rng.integers(0, 256, n, dtype=np.uint8)


def load_dynamic(extra, config):
    """What SGLang's StorageBackendFactory does for backend "dynamic"."""
    for field in ("backend_name", "module_path", "class_name"):
        assert field in extra
    cls = getattr(importlib.import_module(extra["module_path"]), extra["class_name"])
    assert issubclass(cls, memkv_sglang.HiCacheStorage)
    return cls(config, {})


def make_store(server, pool, mla=False, v1=True, **cfg):
    extra = {"backend_name": "memkv", "module_path": "memkv_sglang",
             "class_name": "MemkvStore", "interface_v1": int(v1),
             "servers": server.address, "key_prefix": "t-" + uuid.uuid4().hex[:8]}
    config = StorageConfig(is_mla_model=mla, model_name="org/model",
                           extra_config=extra, **cfg)
    store = load_dynamic(extra, config)
    if pool is not None:
        store.register_mem_pool_host(pool)  # as HiCacheController does next
    return store


@pytest.mark.parametrize("mla,layout", [(False, "page_first"), (True, "page_first"),
                                        (False, "layer_first")])
def test_pages_round_trip_in_place(server, mla, layout):
    rng = np.random.default_rng(1)
    pool = HostPool(mla=mla, layout=layout)
    store = make_store(server, pool, mla=mla)
    keys = [f"hash{i}" for i in range(8)]
    pool.fill(range(8), rng)
    written = [pool.page_bytes(s) for s in range(8)]

    assert store.batch_set_v1(keys, pool.indices(range(8))) == [True] * 8
    assert store.batch_exists(keys) == 8

    # The values are the pool's ranges, named by page key and part.
    parts = ["/kv"] if mla else (["/k", "/v"] if layout == "page_first"
                                 else [f"/{p}.{l}" for l in range(3) for p in "kv"])
    eng = store.engine
    for i, key in enumerate(keys):
        for j, part in enumerate(parts):
            assert eng.get(store.namespace + key + part) == written[i][j]

    # Read back into other pages of the same pool: filled in place.
    buffer, address = pool.kv_buffer, pool.kv_buffer.ctypes.data
    targets = list(range(20, 28))
    assert store.batch_get_v1(keys, pool.indices(targets)) == [True] * 8
    assert pool.kv_buffer is buffer and pool.kv_buffer.ctypes.data == address
    for i, slot in enumerate(targets):
        assert pool.page_bytes(slot) == written[i]
    store.close()


def test_batch_exists_counts_leading_pages(server):
    pool = HostPool()
    store = make_store(server, pool)
    pool.fill(range(10), np.random.default_rng(2))
    keys = [f"p{i}" for i in range(10)]
    assert store.batch_exists(keys) == 0
    assert store.batch_set_v1(keys, pool.indices(range(10))) == [True] * 10
    assert store.batch_exists(keys) == 10
    assert store.batch_exists(keys[:5] + ["missing"] + keys[5:]) == 5
    assert store.batch_exists(["missing"] + keys) == 0
    assert store.exists("p3") and not store.exists("missing")
    # A page missing one of its parts (its V) is not there.
    store.engine.delete(store.namespace + "p2/v")
    assert store.batch_exists(keys) == 2
    store.close()


def test_misses_leave_pages_alone(server):
    pool = HostPool()
    store = make_store(server, pool)
    rng = np.random.default_rng(3)
    pool.fill([0, 1], rng)
    assert store.batch_set_v1(["a", "b"], pool.indices([0, 1])) == [True, True]
    pool.fill([5, 6, 7], rng)
    before = pool.page_bytes(6)
    got = store.batch_get_v1(["a", "nope", "b"], pool.indices([5, 6, 7]))
    assert got == [True, False, True]
    assert pool.page_bytes(6) == before
    assert pool.page_bytes(5) == pool.page_bytes(0)
    assert pool.page_bytes(7) == pool.page_bytes(1)
    # A value of another size is a miss, not a partial page.
    store.engine.put(store.namespace + "short/k", b"x" * 5)
    store.engine.put(store.namespace + "short/v", b"x" * 5)
    assert store.batch_get_v1(["short"], pool.indices([8])) == [False]
    store.close()


def test_set_skips_stored_pages(server):
    pool = HostPool()
    store = make_store(server, pool)
    rng = np.random.default_rng(4)
    pool.fill([0], rng)
    first = pool.page_bytes(0)
    assert store.batch_set_v1(["same"], pool.indices([0])) == [True]
    pool.fill([0], rng)  # other bytes under the same page key: content keys do not change
    assert store.batch_set_v1(["same"], pool.indices([0])) == [True]
    assert store.engine.get(store.namespace + "same/k") == first[0]
    store.close()


def test_hundreds_of_pages(server):
    pool = HostPool(pages=1024, page_size=8, layers=4, heads=2, dim=16)
    store = make_store(server, pool)
    pool.fill(range(400), np.random.default_rng(5))
    keys = [f"big{i}" for i in range(400)]
    assert all(store.batch_set_v1(keys, pool.indices(range(400))))
    assert store.batch_exists(keys) == 400
    assert all(store.batch_get_v1(keys, pool.indices(range(500, 900))))
    for i in (0, 199, 399):
        assert pool.page_bytes(500 + i) == pool.page_bytes(i)
    store.close()


def test_mla_pages_are_shared_by_tp_ranks_mha_pages_are_not(server):
    prefix = "shared-" + uuid.uuid4().hex[:8]

    def store(mla, rank, pool):
        extra = {"backend_name": "memkv", "module_path": "memkv_sglang",
                 "class_name": "MemkvStore", "interface_v1": 1,
                 "servers": server.address, "key_prefix": prefix}
        s = load_dynamic(extra, StorageConfig(tp_rank=rank, tp_size=2, is_mla_model=mla,
                                              model_name="m", extra_config=extra))
        s.register_mem_pool_host(pool)
        return s

    for mla in (True, False):
        pool0, pool1 = HostPool(mla=mla), HostPool(mla=mla)
        pool0.fill([0], np.random.default_rng(6))
        r0, r1 = store(mla, 0, pool0), store(mla, 1, pool1)
        assert r0.batch_set_v1([f"x{mla}"], pool0.indices([0])) == [True]
        assert r1.batch_exists([f"x{mla}"]) == (1 if mla else 0)
        r0.close()
        r1.close()


def test_generic_interface(server):
    """get/set/batch_get/batch_set/exists: SGLang's path without interface_v1."""
    store = make_store(server, HostPool(), v1=False)
    pages = [np.arange(64, dtype=np.float16) + i for i in range(3)]
    assert store.set("g0", pages[0])
    assert store.batch_set(["g1", "g2"], pages[1:])
    assert store.exists("g1") and not store.exists("g9")
    assert store.batch_exists(["g0", "g1", "g2", "g9"]) == 3

    dst = np.zeros(64, dtype=np.float16)
    assert store.get("g0", dst) is dst and np.array_equal(dst, pages[0])
    dsts = [np.zeros(64, dtype=np.float16) for _ in range(3)]
    got = store.batch_get(["g2", "g9", "g1"], dsts)
    assert got[0] is dsts[0] and got[1] is None and got[2] is dsts[2]
    assert np.array_equal(dsts[0], pages[2]) and np.array_equal(dsts[2], pages[1])
    assert store.get("g9", np.zeros(64, dtype=np.float16)) is None
    assert store.get("g1") == pages[1].tobytes()

    # The (address, size) form Mooncake-style callers use.
    raw = np.zeros(128, dtype=np.uint8)
    assert store.set("g3", target_location=pages[0].ctypes.data, target_sizes=128)
    assert store.batch_get(["g3"], [raw.ctypes.data], [128]) == [raw.ctypes.data]
    assert raw.tobytes() == pages[0].tobytes()

    store.clear()
    assert store.batch_exists(["g0", "g1"]) == 0
    store.close()


def test_engine_from_environment(server, monkeypatch):
    monkeypatch.setenv("MEMKV_SERVERS", server.address)
    extra = {"backend_name": "memkv", "module_path": "memkv_sglang",
             "class_name": "MemkvStore"}
    store = load_dynamic(extra, StorageConfig(extra_config=extra))
    assert store.engine.servers == [server.address]
    assert store.set("env", b"abc") and store.get("env") == b"abc"
    store.clear()


def test_unregistered_pool_is_an_error(server):
    store = make_store(server, None)
    with pytest.raises(RuntimeError):
        store.batch_get_v1(["k"], np.arange(4))


def test_torch_tensors(server):
    """Tensors as SGLang hands them: a bfloat16 pool, index tensors, flat pages.

    Debian's python3-torch is not among the test command's packages, so this
    runs only where torch is installed."""
    torch = pytest.importorskip("torch")

    class TorchPool(HostPool):
        def __init__(self):
            super().__init__(dtype=np.uint8)
            self.kv_buffer = torch.zeros((2, self.size, self.layer_num, self.heads, self.dim // 2),
                                         dtype=torch.bfloat16).normal_()
            self.item = 2

        def get_page_buffer_meta(self, indices):
            token = self.heads * (self.dim // 2) * self.item
            base, ptrs = self.kv_buffer.data_ptr(), []
            for first in indices.tolist()[::self.page_size]:
                k = base + first * self.layer_num * token
                ptrs += [k, k + self.size * self.layer_num * token]
            return ptrs, [self.page_size * self.layer_num * token] * len(ptrs)

        def page(self, slot):
            return self.kv_buffer[:, slot * self.page_size:(slot + 1) * self.page_size].clone()

    pool = TorchPool()
    store = make_store(server, pool)
    assert len(store._registered) == 2
    keys = [f"t{i}" for i in range(6)]
    assert store.batch_set_v1(keys, torch.arange(0, 6 * pool.page_size)) == [True] * 6
    assert store.batch_get_v1(keys, torch.arange(40 * pool.page_size, 46 * pool.page_size)) == [True] * 6
    for i in range(6):
        assert torch.equal(pool.page(i), pool.page(40 + i))

    flat = [torch.randn(96).to(torch.bfloat16) for _ in range(2)]
    assert store.batch_set(["f0", "f1"], flat)
    out = store.batch_get(["f0", "f1"], [torch.zeros(96, dtype=torch.bfloat16) for _ in range(2)])
    assert all(torch.equal(a, b) for a, b in zip(flat, out))
    with pytest.raises(ValueError):  # a strided view is not one range of memory
        store.set("f2", torch.zeros(8, 8)[:, 0])
    store.close()
