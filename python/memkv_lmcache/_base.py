"""LMCache's connector base classes, or minimal local ones without LMCache.

With LMCache installed, ``RemoteConnector`` and ``ConnectorAdapter`` are
LMCache's own (lmcache.v1.storage_backend.connector), so its loader accepts
the connector (it checks ``isinstance(adapter, ConnectorAdapter)``). Without
it -- in memkv's tests -- they are small stand-ins with the same attributes
the connector uses, so ``import memkv_lmcache`` never needs LMCache.
"""

import logging
import math

try:  # LMCache's own classes
    from lmcache.v1.storage_backend.connector import ConnectorAdapter  # type: ignore
    from lmcache.v1.storage_backend.connector.base_connector import (  # type: ignore
        RemoteConnector,
    )

    HAVE_LMCACHE = True
except ImportError:
    HAVE_LMCACHE = False

    class RemoteConnector:  # type: ignore[no-redef]
        """Stand-in for LMCache's RemoteConnector: the chunk geometry it
        derives from the engine metadata, and its partial-chunk reshape."""

        def __init__(self, config, metadata):
            assert metadata is not None
            extra = getattr(config, "extra_config", None) or {}
            self.save_chunk_meta = bool(extra.get("save_chunk_meta", True))
            self.meta_shapes = list(metadata.get_shapes())
            self.meta_dtypes = list(metadata.get_dtypes())
            self.meta_fmt = "KV_MLA_FMT" if getattr(metadata, "use_mla", False) else "KV_2LTD"
            self.full_chunk_size_bytes = sum(
                math.prod(shape) * dtype.itemsize
                for shape, dtype in zip(self.meta_shapes, self.meta_dtypes))
            assert self.full_chunk_size_bytes % metadata.chunk_size == 0
            self.single_token_size = self.full_chunk_size_bytes // metadata.chunk_size

        def reshape_partial_chunk(self, memory_obj, bytes_read):
            if (bytes_read == 0 or bytes_read % self.single_token_size
                    or bytes_read > self.full_chunk_size_bytes):
                raise ValueError(
                    f"bytes_read: {bytes_read} is illegal, single_token_size: "
                    f"{self.single_token_size}, full_chunk_size_bytes: "
                    f"{self.full_chunk_size_bytes}")
            if bytes_read != self.full_chunk_size_bytes:
                memory_obj.resize_raw_view(bytes_read)
            return memory_obj

        def post_init(self):
            pass

        def __repr__(self):
            return f"<{self.__class__.__name__}>"

    class ConnectorAdapter:  # type: ignore[no-redef]
        """Stand-in for LMCache's ConnectorAdapter: a URL scheme."""

        def __init__(self, schema=""):
            self.schema = schema

        def can_parse(self, url):
            return self.schema != "" and url.startswith(self.schema)

try:
    from lmcache.logging import init_logger as _init_logger  # type: ignore

    logger = _init_logger("memkv_lmcache")
except ImportError:
    logger = logging.getLogger("memkv_lmcache")

__all__ = ["HAVE_LMCACHE", "ConnectorAdapter", "RemoteConnector", "logger"]
