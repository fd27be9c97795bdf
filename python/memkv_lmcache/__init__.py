"""memkv_lmcache: memkv as LMCache's remote storage for ``memkv://`` URLs.

LMCache loads ``MemkvConnectorAdapter`` as a remote storage plugin; it builds
a ``MemkvConnector`` (an LMCache ``RemoteConnector``) over a ``memkv.Engine``.
See docs/lmcache.md for the LMCache configuration. Importing this package
does not need LMCache (``HAVE_LMCACHE`` says whether its classes are used).
"""

from ._base import HAVE_LMCACHE
from .connector import MemkvConnector, MemkvConnectorAdapter, parse_servers

__all__ = ["HAVE_LMCACHE", "MemkvConnector", "MemkvConnectorAdapter", "parse_servers"]
