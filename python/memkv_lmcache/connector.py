"""memkv as an LMCache remote connector (docs/lmcache.md).

Each LMCache chunk is one memkv value, named by ``CacheEngineKey.to_string()``
and holding exactly the chunk's bytes (no header: the chunk's shapes, dtypes
and format are the engine's, which LMCache's RemoteConnector derives from its
metadata; a shorter value is a partial chunk). Bytes move between memkv and
the memory object's own ``byte_array`` -- memkv reads into it and writes from
it in place -- through memkv's asyncio batch calls, which complete on the
library's I/O threads without blocking LMCache's event loop.
"""

import asyncio

import memkv

from ._base import ConnectorAdapter, RemoteConnector, logger

SCHEME = "memkv://"


def parse_servers(url: str) -> str:
    """``memkv://host:port[,host:port...][/][?...]`` -> ``"host:port,..."``."""
    if not url.startswith(SCHEME):
        raise ValueError(f"not a memkv URL: {url!r} (memkv://host:port[,host:port...])")
    rest = url[len(SCHEME):]
    for sep in "/?":
        rest = rest.split(sep, 1)[0]
    servers = [s.strip() for s in rest.split(",") if s.strip()]
    if not servers:
        raise ValueError(f"no servers in {url!r} (memkv://host:port[,host:port...])")
    for s in servers:
        host, _, port = s.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad server {s!r} in {url!r}: host:port")
    return ",".join(servers)


def _byte_view(memory_obj) -> memoryview:
    """The memory object's bytes as a flat, unsigned-byte memoryview (no copy)."""
    view = memory_obj.byte_array
    if not isinstance(view, memoryview):
        view = memoryview(view)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _prefix_hits(sizes) -> int:
    """How many leading entries of a batch_exists result are present."""
    for i, n in enumerate(sizes):
        if n < 0:
            return i
    return len(sizes)


class MemkvConnector(RemoteConnector):
    """LMCache RemoteConnector over a memkv ``Engine``.

    ``servers`` is memkv's "host:port,host:port"; ``config`` and ``metadata``
    are LMCache's engine config and metadata (the chunk geometry);
    ``local_cpu_backend`` allocates the memory objects gets fill.
    """

    def __init__(self, servers, loop, local_cpu_backend, config, metadata, *,
                 engine=None, auth_key=None, transport="auto", timeout=30.0,
                 connect_timeout=5.0, io_threads=1):
        super().__init__(config, metadata)
        # Values carry only the chunk's bytes; their geometry is the engine's.
        if self.save_chunk_meta:
            logger.info("memkv connector: values hold the chunk bytes only "
                        "(save_chunk_meta is treated as False)")
        self.save_chunk_meta = False
        self.loop = loop
        self.local_cpu_backend = local_cpu_backend
        self.servers = servers
        self.engine = engine if engine is not None else memkv.Engine(
            servers, auth_key=auth_key, transport=transport, timeout=timeout,
            connect_timeout=connect_timeout, io_threads=io_threads)
        logger.info("memkv connector: servers %s, chunk %d bytes",
                    servers, self.full_chunk_size_bytes)

    # ---- gets: into memory objects allocated from LMCache's CPU backend ----

    def _allocate(self, count):
        objs = []
        for _ in range(count):
            obj = self.local_cpu_backend.allocate(
                self.meta_shapes, self.meta_dtypes, self.meta_fmt)
            if obj is None:  # memory pressure: the rest would fail too
                logger.warning("memkv connector: CPU memory allocation failed")
                break
            objs.append(obj)
        return objs

    async def _get_many(self, keys):
        objs = self._allocate(len(keys))
        items = [(k.to_string(), _byte_view(o)) for k, o in zip(keys, objs)]
        try:
            results = await self.engine.abatch_get_into(items) if items else []
        except BaseException:
            for obj in objs:
                obj.ref_count_down()
            raise
        out = []
        for (key, _), obj, n in zip(items, objs, results):
            if n > 0:
                try:
                    out.append(self.reshape_partial_chunk(obj, n))
                    continue
                except Exception as e:  # not only ValueError: release the object
                    logger.warning("memkv connector: %r: %s", key, e)
            elif n != -memkv.Code.NOT_FOUND:
                logger.warning("memkv connector: get %r: %s", key, memkv.Code(-n).name
                               if n < 0 else "empty value")
            obj.ref_count_down()
            out.append(None)
        out.extend([None] * (len(keys) - len(out)))
        return out

    async def get(self, key):
        return (await self._get_many([key]))[0]

    def support_batched_get(self) -> bool:
        return True

    async def batched_get(self, keys):
        return await self._get_many(list(keys))

    def support_batched_get_non_blocking(self) -> bool:
        return True

    async def batched_get_non_blocking(self, lookup_id, keys):
        prefix, missed = [], False
        for obj in await self._get_many(list(keys)):
            if obj is None:
                missed = True
            elif missed:
                obj.ref_count_down()  # after a miss: not part of the prefix
            else:
                prefix.append(obj)
        return prefix

    # ---- puts: from the memory objects' own bytes ----
    # The caller (LMCache's RemoteBackend) holds and releases the objects'
    # references; a put does not change them.

    async def _put_many(self, keys, memory_objs):
        items = [(k.to_string(), _byte_view(o)) for k, o in zip(keys, memory_objs, strict=True)]
        if not items:
            return
        codes = await self.engine.abatch_put(items)
        failed = [(k, c) for (k, _), c in zip(items, codes) if c]
        if failed:
            key, code = failed[0]
            raise memkv.error_for(code, f"put {key!r}: {memkv.Code(code).name}"
                                  + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""))

    async def put(self, key, memory_obj):
        await self._put_many([key], [memory_obj])

    def support_batched_put(self) -> bool:
        return True

    async def batched_put(self, keys, memory_objs):
        await self._put_many(list(keys), list(memory_objs))

    # ---- lookups ----

    async def exists(self, key) -> bool:
        return await self.engine.aexists(key.to_string())

    def exists_sync(self, key) -> bool:
        return self.engine.exists(key.to_string())

    def support_batched_contains(self) -> bool:
        return True

    def batched_contains(self, keys) -> int:
        keys = [k.to_string() for k in keys]
        return _prefix_hits(self.engine.batch_exists(keys)) if keys else 0

    def support_batched_async_contains(self) -> bool:
        return True

    async def batched_async_contains(self, lookup_id, keys, pin=False) -> int:
        keys = [k.to_string() for k in keys]
        return _prefix_hits(await self.engine.abatch_exists(keys)) if keys else 0

    def remove_sync(self, key) -> bool:
        try:
            self.engine.delete(key.to_string())
            return True
        except memkv.NotFound:
            return False

    async def list(self):
        # list() walks every server; the GIL is released while it waits.
        pairs = await asyncio.get_running_loop().run_in_executor(None, self.engine.list)
        return [k for k, _ in pairs]

    def support_ping(self) -> bool:
        return True

    async def ping(self) -> int:
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.engine.capacity)
            return 0
        except memkv.Error as e:
            return int(e.code)

    async def close(self):
        # Engines share their connections; the library closes them with the
        # last engine naming these servers.
        self.engine = None
        logger.info("memkv connector: closed")


def _option(extra, name, default, kind=str):
    value = extra.get(f"memkv.{name}", default)
    return kind(value) if value is not None else None


class MemkvConnectorAdapter(ConnectorAdapter):
    """LMCache ConnectorAdapter for ``memkv://`` remote URLs.

    LMCache loads it as a remote storage plugin (docs/lmcache.md): its
    ``extra_config`` names this module and class. Options, all optional, from
    ``extra_config``: ``memkv.auth_key`` (else $MEMKV_AUTH_KEY),
    ``memkv.transport``, ``memkv.timeout``, ``memkv.connect_timeout``,
    ``memkv.io_threads``.
    """

    def __init__(self) -> None:
        super().__init__(SCHEME)

    def create_connector(self, context):
        import os

        servers = parse_servers(context.url)
        config = context.config
        metadata = getattr(context, "metadata", None)
        if config is None:
            config = getattr(context.local_cpu_backend, "config", None)
        if metadata is None:
            metadata = getattr(context.local_cpu_backend, "metadata", None)
        extra = (getattr(config, "extra_config", None) or {}) if config is not None else {}
        logger.info("creating memkv connector for %s", context.url)
        return MemkvConnector(
            servers, context.loop, context.local_cpu_backend, config, metadata,
            auth_key=_option(extra, "auth_key", os.environ.get("MEMKV_AUTH_KEY")),
            transport=_option(extra, "transport", "auto"),
            timeout=_option(extra, "timeout", 30.0, float),
            connect_timeout=_option(extra, "connect_timeout", 5.0, float),
            io_threads=_option(extra, "io_threads", 1, int))
