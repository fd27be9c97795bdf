"""memkv as an SGLang HiCache storage backend (docs/sglang.md).

Load it with SGLang's dynamic backend::

    --hicache-storage-backend dynamic
    --hicache-storage-backend-extra-config '{"backend_name": "memkv",
        "module_path": "memkv_sglang", "class_name": "MemkvStore",
        "interface_v1": 1, "servers": "10.0.0.1:9900"}'

``MemkvStore`` subclasses SGLang's ``HiCacheStorage`` when SGLang is
importable, and an equivalent local base otherwise (``HiCacheStorage`` here
is whichever it is).
"""

from memkv_sglang.store import HiCacheStorage, MemkvStore

__all__ = ["HiCacheStorage", "MemkvStore"]
