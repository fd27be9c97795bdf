"""memkv: the client of memkv servers (a KV-cache store for LLM inference).

A thin layer over the C++ client library ``libmemkv.so`` (the same library the
LD_PRELOAD shim and the NIXL plugin use, so a process has one set of
connections). See docs/python.md.

    import memkv
    engine = memkv.Engine("127.0.0.1:9900")        # or memkv.Engine.from_environment()
    engine.put("k", b"value")
    engine.get("k")                                 # b'value'
    buf = engine.alloc(1 << 20)                     # shared memory, zero-copy over shm
    n = engine.get_into("k", buf)

Every call releases the GIL while it waits. Single calls raise ``memkv.Error``
subclasses (``NotFound``, ``Unavailable``, ...); batch calls return one result
per entry: a code (0 = ok) for puts and deletes; for gets and exists the bytes
written / the value's size (>= 0) or minus the entry's code (< 0).
"""

from __future__ import annotations

import asyncio
import atexit
import enum

from . import _memkv
from ._memkv import (  # noqa: F401  (re-exported)
    BufferTooSmall,
    Busy,
    ChecksumMismatch,
    Error,
    Internal,
    InvalidArgument,
    NoMemory,
    NoSpace,
    NotFound,
    RangeOutOfBounds,
    SharedBuffer,
    Timeout,
    TooLarge,
    TooManyEntries,
    Unauthorized,
    Unavailable,
    Unsupported,
    code_name,
)

__all__ = [
    "Engine", "SharedBuffer", "Code", "code_name", "error_for", "Error", "NotFound",
    "InvalidArgument", "TooLarge", "TooManyEntries", "Busy", "NoSpace", "ChecksumMismatch",
    "Unavailable", "Timeout", "Unauthorized", "Unsupported", "BufferTooSmall",
    "RangeOutOfBounds", "Internal", "NoMemory",
]


class Code(enum.IntEnum):
    """The outcome of an entry (the values of memkv::Code and MEMKV_* in C)."""

    OK = 0
    NOT_FOUND = 1
    INVALID_ARGUMENT = 2
    TOO_LARGE = 3
    TOO_MANY_ENTRIES = 4
    BUSY = 5
    NO_SPACE = 6
    CHECKSUM_MISMATCH = 7
    UNAVAILABLE = 8
    TIMEOUT = 9
    UNAUTHORIZED = 10
    UNSUPPORTED = 11
    BUFFER_TOO_SMALL = 12
    RANGE_OUT_OF_BOUNDS = 13
    INTERNAL = 14
    NO_MEMORY = 15


_ERRORS = {getattr(_memkv, code_name(c)).code: getattr(_memkv, code_name(c))
           for c in range(1, _memkv.MAX_CODE + 1)}


def error_for(code: int, message: str = "") -> Error:
    """The exception for a code (or for minus a code, as batch gets return it)."""
    code = abs(int(code))
    cls = _ERRORS.get(code, Error)
    return cls(message or code_name(code))


def _resolve(future: asyncio.Future, result: object) -> None:
    if future.cancelled():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


def _submit(start, arg) -> asyncio.Future:
    """Starts a callback call; its future completes on the running loop."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def done(result: object) -> None:  # on a library I/O thread, with the GIL
        try:
            loop.call_soon_threadsafe(_resolve, future, result)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    start(arg, done)
    return future


def _key_repr(key) -> str:
    return repr(key if isinstance(key, str) else bytes(key))


class Engine(_memkv.Engine):
    """Engine(servers, auth_key=None, transport="auto", timeout=30.0, *,
    connect_timeout=5.0, io_threads=1, immutable_keys=False)

    A client of memkv servers. ``servers``: "host:port,host:port" or a list;
    ``transport``: "auto" (shm for shared memory on this host, else tcp),
    "shm", "tcp"; ``timeout``: the deadline of every call, in seconds.
    Keys are str (UTF-8) or bytes.
    """

    # ---- asyncio forms: completed from the library's I/O threads ----

    async def abatch_put(self, items) -> list[int]:
        """batch_put, awaited: a code per entry."""
        return await _submit(self._async_batch_put, list(items))

    async def abatch_get_into(self, items) -> list[int]:
        """batch_get_into, awaited: bytes written, or minus the entry's code."""
        return await _submit(self._async_batch_get_into, list(items))

    async def abatch_exists(self, keys) -> list[int]:
        """batch_exists, awaited: the value's size, or minus the key's code."""
        return await _submit(self._async_batch_exists, list(keys))

    async def abatch_delete(self, keys) -> list[int]:
        """batch_delete, awaited: a code per key."""
        return await _submit(self._async_batch_delete, list(keys))

    async def aput(self, key, data) -> None:
        """put, awaited; raises as put does."""
        (code,) = await self.abatch_put([(key, data)])
        if code:
            raise error_for(code, f"put {_key_repr(key)}: {code_name(code)}")

    async def aget_into(self, key, buffer) -> int:
        """get_into, awaited: the bytes written; raises as get_into does."""
        (n,) = await self.abatch_get_into([(key, buffer)])
        if n < 0:
            raise error_for(n, f"get {_key_repr(key)}: {code_name(-n)}")
        return n

    async def aget(self, key) -> bytes:
        """get, awaited: the whole value; raises NotFound."""
        for _ in range(3):
            size = await self.asize(key)
            buf = bytearray(size)
            (n,) = await self.abatch_get_into([(key, buf)])
            if n == -Code.BUFFER_TOO_SMALL:
                continue  # rewritten larger meanwhile
            if n < 0:
                raise error_for(n, f"get {_key_repr(key)}: {code_name(-n)}")
            return bytes(memoryview(buf)[:n])
        raise error_for(Code.BUFFER_TOO_SMALL, f"get {_key_repr(key)}: the value keeps growing")

    async def asize(self, key) -> int:
        """size, awaited; raises NotFound."""
        (n,) = await self.abatch_exists([key])
        if n < 0:
            raise error_for(n, f"exists {_key_repr(key)}: {code_name(-n)}")
        return n

    async def aexists(self, key) -> bool:
        """exists, awaited."""
        (n,) = await self.abatch_exists([key])
        if n >= 0:
            return True
        if n == -Code.NOT_FOUND:
            return False
        raise error_for(n, f"exists {_key_repr(key)}: {code_name(-n)}")

    async def adelete(self, key) -> None:
        """delete, awaited; raises NotFound."""
        (code,) = await self.abatch_delete([key])
        if code:
            raise error_for(code, f"delete {_key_repr(key)}: {code_name(code)}")


# Async calls still in flight at exit finish (or time out) before the
# interpreter goes; later completions no longer touch it.
atexit.register(_memkv._shutdown)
