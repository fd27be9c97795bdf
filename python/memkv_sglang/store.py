"""MemkvStore: memkv as an SGLang HiCache storage backend (docs/sglang.md).

SGLang loads it as its "dynamic" backend: the factory imports
``module_path``, takes ``class_name`` and calls ``cls(storage_config,
kwargs)``; the cache controller then calls ``register_mem_pool_host(pool)``
with its host KV pool. Pages then move in one of two ways:

- zero-copy (extra config ``"interface_v1": 1``): ``batch_set_v1`` /
  ``batch_get_v1`` are handed page keys and host-pool indices; the pool's
  ``get_page_buffer_meta`` turns the indices into (address, size) ranges, and
  each range is one memkv value, moved by one ``batch_put`` /
  ``batch_get_into`` of ``(key, address, size)`` entries straight out of and
  into the pool's memory;
- generic (SGLang's default for dynamic backends): ``batch_set`` /
  ``batch_get`` with a flat tensor per page, one memkv value per page.

The adapter only names values and converts SGLang's objects at the edge; the
work (batching, routing, the shm or tcp rail) is the memkv client's.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any, List, Optional, Sequence

import memkv

try:  # SGLang's base class, so that its factory's issubclass check holds.
    from sglang.srt.mem_cache.hicache_storage import HiCacheStorage
except ImportError:  # no SGLang (or no torch) here: the same interface, locally
    from memkv_sglang._base import HiCacheStorage

logger = logging.getLogger(__name__)

# Extra-config keys this backend reads; SGLang passes its whole
# --hicache-storage-backend-extra-config JSON as storage_config.extra_config.
_ENGINE_KEYS = ("servers", "auth_key", "transport", "timeout", "connect_timeout", "io_threads")


def _memory(obj: Any):
    """(address, size) of a tensor's memory, or None for a buffer-protocol object."""
    if hasattr(obj, "data_ptr"):  # a torch tensor: its CPU memory, in place
        if not obj.is_contiguous():
            raise ValueError("memkv_sglang: a tensor must be contiguous")
        return obj.data_ptr(), obj.numel() * obj.element_size()
    return None


def _item(key: str, obj: Any):
    mem = _memory(obj)
    return (key, obj) if mem is None else (key, mem[0], mem[1])


def _size_of(obj: Any) -> int:
    mem = _memory(obj)
    return mem[1] if mem is not None else memoryview(obj).nbytes


class MemkvStore(HiCacheStorage):
    """A HiCacheStorage over a memkv.Engine.

    ``MemkvStore(storage_config, kwargs)`` as SGLang's dynamic factory calls
    it (``kwargs`` a dict, unused), or ``MemkvStore(storage_config,
    mem_pool_host)`` as its built-in backends are called. ``engine`` may be
    given directly (tests, or a program sharing one engine); otherwise the
    extra config's ``servers`` (and ``auth_key``, ``transport``, ``timeout``,
    ``connect_timeout``, ``io_threads``) make one, and without ``servers``
    ``memkv.Engine.from_environment()`` does (MEMKV_SERVERS, MEMKV_CONFIG...).

    Thread safety: SGLang's prefetch and backup threads call it at once; the
    engine is safe for that, and the adapter's state is constant after
    ``register_mem_pool_host``.
    """

    def __init__(self, storage_config: Any = None, kwargs_or_pool: Any = None,
                 engine: Optional[memkv.Engine] = None):
        extra = dict(getattr(storage_config, "extra_config", None) or {})
        self.extra_config = extra
        self.engine = engine if engine is not None else self._make_engine(extra)
        self.is_mla = bool(getattr(storage_config, "is_mla_model", False))
        self.interface_v1 = bool(int(extra.get("interface_v1", 0) or 0))
        self.skip_existing = bool(extra.get("skip_existing", True))
        self.register_host_pool = bool(extra.get("register_host_pool", True))
        self.namespace = self._namespace(storage_config, extra)
        self.mem_pool_host = None
        self._registered: List[Any] = []
        if kwargs_or_pool is not None and not isinstance(kwargs_or_pool, dict):
            self.register_mem_pool_host(kwargs_or_pool)

    # ---- construction ----

    @staticmethod
    def _make_engine(extra: dict) -> memkv.Engine:
        if not extra.get("servers"):
            return memkv.Engine.from_environment()
        args = {k: extra[k] for k in _ENGINE_KEYS if extra.get(k) is not None}
        for k in ("timeout", "connect_timeout"):
            if k in args:
                args[k] = float(args[k])
        if "io_threads" in args:
            args["io_threads"] = int(args["io_threads"])
        return memkv.Engine(**args)

    @staticmethod
    def _namespace(config: Any, extra: dict) -> str:
        """The prefix of every key: tag, model, and the rank that owns the bytes.

        An MHA rank holds its own heads, so its pages are per TP rank; MLA's
        latent cache is the same on every TP rank (SGLang backs it up from
        rank 0 only), so MLA pages are shared by the TP ranks. Pipeline and
        attention-context-parallel ranks each hold different layers or
        tokens, so they always name theirs.
        """
        parts = [str(extra.get("key_prefix", "sglang"))]
        model = getattr(config, "model_name", None)
        if model:
            parts.append("-".join(str(model).split("/")))
        rank = ""
        if config is not None and not getattr(config, "is_mla_model", False):
            rank += f"tp{getattr(config, 'tp_rank', 0)}of{getattr(config, 'tp_size', 1)}"
        pp_size = int(getattr(config, "pp_size", 1) or 1)
        if pp_size > 1:
            rank += f"pp{getattr(config, 'pp_rank', 0)}of{pp_size}"
        cp_size = int(getattr(config, "attn_cp_size", 1) or 1)
        if cp_size > 1:
            rank += f"cp{getattr(config, 'attn_cp_rank', 0)}of{cp_size}"
        if rank:
            parts.append(rank)
        return "/".join(parts) + "/"

    def register_mem_pool_host(self, mem_pool_host: Any) -> None:
        """Keeps SGLang's host KV pool, and registers its buffers with memkv.

        Registered memory is sent in place by puts (docs/python.md); a pool
        that cannot be registered still works, its puts copied.
        """
        super().register_mem_pool_host(mem_pool_host)
        self.mem_pool_host = mem_pool_host
        if not self.register_host_pool:
            return
        get_buffers = getattr(mem_pool_host, "get_hybrid_pool_buffer", None)
        buffers = get_buffers() if get_buffers else [getattr(mem_pool_host, "kv_buffer", None)]
        for buf in buffers:
            if buf is None:
                continue
            try:
                mem = _memory(buf)
                region = buf if mem is None else (ctypes.c_ubyte * mem[1]).from_address(mem[0])
                if len(memoryview(region)) == 0:
                    continue
                self.engine.register(region)
                self._registered.append(region)
            except (memkv.Error, BufferError, TypeError, ValueError) as e:
                logger.warning("memkv_sglang: host pool buffer not registered (%s); "
                               "puts from it are copied", e)

    def close(self) -> None:
        while self._registered:
            region = self._registered.pop()
            try:
                self.engine.unregister(region)
            except memkv.Error:
                pass

    # ---- names ----

    def _key(self, key: str) -> str:
        return self.namespace + key

    def _parts(self, per_page: int) -> List[str]:
        """The suffixes of a page's values, in get_page_buffer_meta's order.

        MHA pools give a K and a V range per page ("/k", "/v"), MLA pools one
        ("/kv"); a layer_first pool gives those per layer ("/k.3", "/v.3").
        """
        base = ["kv"] if self.is_mla else ["k", "v"]
        if per_page == len(base):
            return ["/" + p for p in base]
        if per_page % len(base):
            raise ValueError(f"memkv_sglang: {per_page} buffers per page for "
                             f"{'MLA' if self.is_mla else 'MHA'}")
        return [f"/{p}.{layer}" for layer in range(per_page // len(base)) for p in base]

    def _parts_for_pool(self) -> List[str]:
        base = 1 if self.is_mla else 2
        pool = self.mem_pool_host
        if pool is not None and getattr(pool, "layout", None) == "layer_first":
            return self._parts(base * int(pool.layer_num))
        return self._parts(base)

    def _page_items(self, keys: Sequence[str], host_indices: Any):
        if self.mem_pool_host is None:
            raise RuntimeError("memkv_sglang: register_mem_pool_host was not called")
        ptrs, sizes = self.mem_pool_host.get_page_buffer_meta(host_indices)
        if isinstance(sizes, int):
            sizes = [sizes] * len(ptrs)
        if not keys or len(ptrs) % len(keys) or len(sizes) != len(ptrs):
            raise ValueError(f"memkv_sglang: {len(ptrs)} buffers for {len(keys)} pages")
        per_page = len(ptrs) // len(keys)
        parts = self._parts(per_page)
        items = [(self._key(key) + part, int(ptrs[i * per_page + j]), int(sizes[i * per_page + j]))
                 for i, key in enumerate(keys) for j, part in enumerate(parts)]
        return items, per_page

    # ---- zero-copy page I/O (extra config "interface_v1": 1) ----

    def batch_get_v1(self, keys: List[str], host_indices: Any,
                     extra_info: Optional[Any] = None) -> List[bool]:
        """Reads each page's values into the host pool; per page, whether all came."""
        if not keys:
            return []
        items, n = self._page_items(keys, host_indices)
        results = self.engine.batch_get_into(items)
        return [all(results[i * n + j] == items[i * n + j][2] for j in range(n))
                for i in range(len(keys))]

    def batch_set_v1(self, keys: List[str], host_indices: Any,
                     extra_info: Optional[Any] = None) -> List[bool]:
        """Writes each page's values from the host pool; per page, whether all are stored.

        Values already stored with the same size are left alone (page keys
        name their content), unless the extra config says "skip_existing": false.
        """
        if not keys:
            return []
        items, n = self._page_items(keys, host_indices)
        codes = [1] * len(items)
        todo = list(range(len(items)))
        if self.skip_existing:
            sizes = self.engine.batch_exists([it[0] for it in items])
            todo = [i for i in todo if sizes[i] != items[i][2]]
            for i in range(len(items)):
                if sizes[i] == items[i][2]:
                    codes[i] = 0
        if todo:
            for i, code in zip(todo, self.engine.batch_put([items[i] for i in todo])):
                codes[i] = code
        return [all(codes[i * n + j] == 0 for j in range(n)) for i in range(len(keys))]

    # ---- existence ----

    def _exists_keys(self, keys: Sequence[str]):
        if self.interface_v1:
            parts = self._parts_for_pool()
            return [self._key(k) + p for k in keys for p in parts], len(parts)
        return [self._key(k) for k in keys], 1

    def batch_exists(self, keys: List[str], extra_info: Optional[Any] = None) -> int:
        """The number of leading pages all of whose values are stored."""
        if not keys:
            return 0
        query, n = self._exists_keys(keys)
        sizes = self.engine.batch_exists(query)
        for i in range(len(keys)):
            if any(s < 0 for s in sizes[i * n:(i + 1) * n]):
                return i
        return len(keys)

    def exists(self, key: str) -> bool:
        return self.batch_exists([key]) == 1

    # ---- generic page I/O (one value per page) ----

    def get(self, key: str, target_location: Any = None, target_sizes: Any = None):
        """Fills ``target_location`` (a tensor or writable buffer, or an address
        with ``target_sizes`` bytes) and returns it; None when the page is not
        stored whole. Without a target, returns the value's bytes or None."""
        return self.batch_get([key], None if target_location is None else [target_location],
                              None if target_sizes is None else [target_sizes])[0]

    def batch_get(self, keys: List[str], target_locations: Any = None,
                  target_sizes: Any = None) -> List[Any]:
        if not keys:
            return []
        names = [self._key(k) for k in keys]
        if target_locations is None:
            return self.engine.batch_get(names)
        if target_sizes is not None and isinstance(target_locations[0], int):
            items = [(k, int(a), int(s)) for k, a, s in zip(names, target_locations, target_sizes)]
        else:
            items = [_item(k, t) for k, t in zip(names, target_locations)]
        results = self.engine.batch_get_into(items)
        out = []
        for item, target, n in zip(items, target_locations, results):
            want = item[2] if len(item) == 3 else _size_of(target)
            out.append(target if n == want else None)
        return out

    def set(self, key: str, value: Any = None, target_location: Any = None,
            target_sizes: Any = None) -> bool:
        """Stores ``value`` (a tensor or buffer), or ``target_sizes`` bytes at the
        address ``target_location``; True when stored."""
        return self.batch_set([key], None if value is None else [value],
                              None if target_location is None else [target_location],
                              None if target_sizes is None else [target_sizes])

    def batch_set(self, keys: List[str], values: Any = None, target_locations: Any = None,
                  target_sizes: Any = None) -> bool:
        if not keys:
            return False
        names = [self._key(k) for k in keys]
        if values is not None:
            items = [_item(k, v) for k, v in zip(names, values)]
        elif target_locations is not None and target_sizes is not None:
            items = [(k, int(a), int(s)) for k, a, s in zip(names, target_locations, target_sizes)]
        else:
            raise ValueError("memkv_sglang: batch_set needs values or target locations and sizes")
        if len(items) != len(keys):
            raise ValueError("memkv_sglang: one value per key")
        return all(code == 0 for code in self.engine.batch_put(items))

    # ---- housekeeping ----

    def delete(self, key: str) -> None:
        keys = [self._key(key)] + [self._key(key) + p for p in self._parts_for_pool()]
        self.engine.batch_delete(keys)

    def clear(self) -> None:
        """Deletes every value under this backend's namespace (this model and rank)."""
        while True:
            names = [k for k, _ in self.engine.list(self.namespace, 10000)]
            if not names:
                return
            self.engine.batch_delete(names)
