"""A stand-in for SGLang's HiCacheStorage where SGLang is not installed.

SGLang's factory requires a dynamic backend's class to be a subclass of its
own ``HiCacheStorage``; ``memkv_sglang.store`` subclasses that class when
``sglang`` imports, and this one otherwise, so the package (and its tests)
import on machines without SGLang and torch. It has the methods of SGLang's
base that a backend relies on and no more (docs/sglang.md names the commit).
"""

from __future__ import annotations

import abc
from typing import Any, List, Optional


class HiCacheStorage(abc.ABC):
    """The subset of ``sglang.srt.mem_cache.hicache_storage.HiCacheStorage``."""

    def register_mem_pool_host(self, mem_pool_host: Any) -> None:
        self.mem_pool_host = mem_pool_host

    def batch_get_v1(self, keys: List[str], host_indices: Any,
                     extra_info: Optional[Any] = None) -> List[bool]:
        raise NotImplementedError()

    def batch_set_v1(self, keys: List[str], host_indices: Any,
                     extra_info: Optional[Any] = None) -> List[bool]:
        raise NotImplementedError()

    @abc.abstractmethod
    def get(self, key, target_location=None, target_sizes=None): ...

    @abc.abstractmethod
    def batch_get(self, keys, target_locations=None, target_sizes=None): ...

    @abc.abstractmethod
    def set(self, key, value=None, target_location=None, target_sizes=None) -> bool: ...

    @abc.abstractmethod
    def batch_set(self, keys, values=None, target_locations=None, target_sizes=None) -> bool: ...

    @abc.abstractmethod
    def exists(self, key) -> bool: ...

    def batch_exists(self, keys: List[str], extra_info: Optional[Any] = None) -> int:
        for i, key in enumerate(keys):
            if not self.exists(key):
                return i
        return len(keys)

    def clear(self) -> None:
        pass

    def get_stats(self):
        return None
