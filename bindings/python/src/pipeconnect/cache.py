"""``Cache``: the capability cache (in-process; the shared file store via ``Cache.open``)."""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from typing import Optional, Union

from . import _ffi
from ._enums import ParseFlags, StoreFlags
from ._errors import InvalidInputError, Result
from ._handle import SIZE_BITS, Handle, as_bytes, as_uint, check, check_detail
from .caps import Capabilities, _buffer
from .key import Key

__all__ = ["Cache", "CacheStats"]

_lib = _ffi.lib

#: Permission bits of a new store file unless told otherwise.
DEFAULT_STORE_MODE = 0o600


@dataclass(frozen=True)
class CacheStats:
    """The cache's counters (``struct pipeconnect_cache_stats``)."""

    #: Entries held now.
    entries: int
    #: Lookups that found a live entry.
    hits: int
    #: Lookups that found nothing or an expired entry.
    misses: int
    #: Entries written (new or replaced).
    inserts: int
    #: Entries dropped to make room.
    evictions: int
    #: Entries dropped because their time to live had passed.
    expirations: int
    #: Entries dropped by forget() or by the protocol's rules.
    invalidations: int


class Cache(Handle):
    """The capability cache (``pipeconnect_cache``).

    ``Cache.open(path, ...)`` opens the shared file store, for MTAs that fork a process
    per delivery. ``Cache(capacity, ttl)`` makes an in-process cache holding at most ``capacity``
    entries (0: the library's default, 10000), each living ``ttl`` seconds after it was
    learned (0: 7 days). Any threads may use one cache at once; ``close()`` must not race
    with other calls. Sessions made from a cache keep it alive on their own.
    """

    _free = _lib.pipeconnect_cache_free

    def __init__(self, capacity: int = 0, ttl: int = 0) -> None:
        out = _ffi.CACHE_P()
        capacity = as_uint(capacity, SIZE_BITS, "capacity")
        ttl = as_uint(ttl, 64, "ttl")
        check(_lib.pipeconnect_cache_new(capacity, ttl, ctypes.byref(out)))
        super().__init__(out)
        self._path: Optional[str] = None

    @classmethod
    def open(
        cls,
        path: Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"],
        *,
        sets: int = 0,
        ways: int = 0,
        ttl: int = 0,
        mode: int = DEFAULT_STORE_MODE,
        rebuild_if_invalid: bool = False,
    ) -> "Cache":
        """Open (or create) the shared file store at ``path`` as a cache.

        Every process that opens the same path shares one cache; the file has a fixed
        size (``sets`` x ``ways`` entries; 0 for the existing file's geometry, or the
        library's default for a new file) and is created with ``mode`` (default 0600).
        ``ttl`` is the entries' time to live in seconds (0: 7 days).

        A symbolic link, a file that is not regular, owned by another user or writable
        by group or others is refused with :class:`StoreError`; so are a truncated or
        corrupt file, another format version or another geometry, unless
        ``rebuild_if_invalid`` is set, which replaces those with a new, empty store.
        """
        opts = _ffi.pipeconnect_store_options()
        check(_lib.pipeconnect_store_options_default(ctypes.byref(opts)))
        opts.sets = as_uint(sets, 32, "sets")
        opts.ways = as_uint(ways, 32, "ways")
        opts.ttl_seconds = as_uint(ttl, 64, "ttl")
        opts.mode = as_uint(mode, 32, "mode")
        flags = StoreFlags.REBUILD_IF_INVALID if rebuild_if_invalid else StoreFlags.NONE
        opts.flags = int(flags)
        raw = os.fsencode(path)
        if b"\0" in raw:
            raise InvalidInputError(Result.ERR_INVALID_ARGUMENT, "path contains a NUL byte")
        out = _ffi.CACHE_P()
        detail = _ffi.pipeconnect_error_detail()
        check_detail(
            _lib.pipeconnect_cache_open(
                raw, ctypes.byref(opts), ctypes.byref(out), ctypes.byref(detail)
            ),
            detail,
        )
        obj = cls._adopt(out)
        obj._path = os.fsdecode(raw)
        return obj

    @property
    def path(self) -> Optional[str]:
        """The store file's path for a cache from :meth:`open`; None for an in-process one."""
        return self._path

    @classmethod
    def _adopt(cls, ptr: "ctypes._Pointer[_ffi.pipeconnect_cache]") -> "Cache":
        obj = cls.__new__(cls)
        Handle.__init__(obj, ptr)
        obj._path = None
        return obj

    def learn(
        self,
        key: Key,
        reply: Union[bytes, bytearray, memoryview, str],
        *,
        legacy_keywords: bool = False,
    ) -> bool:
        """Learn from an EHLO reply received from ``key``'s server in ``key``'s TLS state.

        Returns True when stored; False when the reply lacks PIPECONNECT or PIPELINING
        (then any older entry for the key was removed). A reply that is not a valid 250
        reply raises :class:`ReplyError` and leaves the cache unchanged.
        """
        data = as_bytes(reply, "reply")
        flags = ParseFlags.LEGACY_KEYWORDS if legacy_keywords else ParseFlags.NONE
        rc = _lib.pipeconnect_cache_learn(
            self._handle(), key._handle(), _buffer(data), len(data), int(flags)
        )
        return check(rc, Result.NOT_CACHED, Result.NOT_CACHED_REMOVED) == Result.OK

    def learn_caps(self, key: Key, caps: Capabilities) -> bool:
        """As :meth:`learn`, from capabilities already parsed."""
        rc = _lib.pipeconnect_cache_learn_caps(self._handle(), key._handle(), caps._handle())
        return check(rc, Result.NOT_CACHED, Result.NOT_CACHED_REMOVED) == Result.OK

    def lookup(self, key: Key) -> Optional[Capabilities]:
        """The live entry for ``key`` as a new snapshot, or None on a miss."""
        out = _ffi.CAPS_P()
        rc = _lib.pipeconnect_cache_lookup(self._handle(), key._handle(), ctypes.byref(out))
        if check(rc, Result.NOT_FOUND) == Result.NOT_FOUND:
            return None
        return Capabilities(out)

    def forget(self, key: Key) -> bool:
        """Drop ``key``'s entry; True if there was one."""
        rc = _lib.pipeconnect_cache_forget(self._handle(), key._handle())
        return check(rc, Result.NOT_FOUND) == Result.OK

    def clear(self) -> None:
        """Drop every entry."""
        check(_lib.pipeconnect_cache_clear(self._handle()))

    @property
    def stats(self) -> CacheStats:
        """The cache's counters, read now."""
        out = _ffi.pipeconnect_cache_stats()
        check(_lib.pipeconnect_cache_get_stats(self._handle(), ctypes.byref(out)))
        return CacheStats(
            entries=out.entries,
            hits=out.hits,
            misses=out.misses,
            inserts=out.inserts,
            evictions=out.evictions,
            expirations=out.expirations,
            invalidations=out.invalidations,
        )

    def set_time(self, unix_seconds: Optional[int]) -> None:
        """Pin the cache's clock at ``unix_seconds``, or return to the system clock (None).

        For tests and tools that replay time.
        """
        when = as_uint(unix_seconds or 0, 64, "unix_seconds")
        check(_lib.pipeconnect_cache_set_time(self._handle(), when))

    def __repr__(self) -> str:
        if self.closed:
            return f"<pipeconnect.{type(self).__name__} closed>"
        where = f" {self._path!r}" if self._path else ""
        return f"<pipeconnect.{type(self).__name__}{where} entries={self.stats.entries}>"

