"""``Cache``: the capability cache (in-process; the shared file store via ``Cache.open``)."""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from typing import Optional, Tuple, Union

from . import _ffi
from ._enums import HoldDownFlags, ParseFlags, QhloSize, SharedFlags, StoreFlags
from ._errors import InvalidInputError, Result
from ._handle import SIZE_BITS, Handle, as_bytes, as_cstr, as_uint, check, check_detail
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
    #: Hold-downs entered (early flights refused by a server that did not expect them).
    hold_downs_entered: int = 0
    #: Early flights not sent because their server was held down.
    early_skipped_held_down: int = 0
    #: Servers held down now.
    hold_downs_current: int = 0
    #: File store only: writes given up because a stalled writer's set was taken over.
    writes_abandoned: int = 0
    #: Shared tier: local misses that Redis answered with a valid entry.
    shared_hits: int = 0
    #: Shared tier: local misses that Redis did not answer with an entry either.
    shared_misses: int = 0
    #: Shared tier: calls that failed.
    shared_errors: int = 0
    #: Shared tier: calls that ran out of their deadline.
    shared_timeouts: int = 0
    #: Shared tier: calls not made because the circuit breaker was open.
    shared_skipped_open: int = 0
    #: Shared tier: values refused (malformed, bad checksum, bad or missing signature).
    shared_rejected: int = 0


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
        owner: Optional[Tuple[int, int]] = None,
        group: Optional[int] = None,
        allow_remote_fs: bool = False,
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

        ``owner`` (uid, gid) is the owner a new file gets (for root creating its MTA
        user's store); ``group`` turns on group mode (members of that group share the
        store; ``mode`` may then be 0o660). A store on a network filesystem is refused
        unless ``allow_remote_fs``.
        """
        opts = _ffi.pipeconnect_store_options()
        check(_lib.pipeconnect_store_options_default(ctypes.byref(opts)))
        opts.sets = as_uint(sets, 32, "sets")
        opts.ways = as_uint(ways, 32, "ways")
        opts.ttl_seconds = as_uint(ttl, 64, "ttl")
        opts.mode = as_uint(mode, 32, "mode")
        flags = StoreFlags.REBUILD_IF_INVALID if rebuild_if_invalid else StoreFlags.NONE
        if allow_remote_fs:
            flags |= StoreFlags.ALLOW_REMOTE_FS
        opts.flags = int(flags)
        if owner is not None:
            flags |= StoreFlags.SET_OWNER
            opts.owner_uid = as_uint(owner[0], 32, "owner uid")
            opts.owner_gid = as_uint(owner[1], 32, "owner gid")
        if group is not None:
            flags |= StoreFlags.GROUP_MODE
            opts.group_gid = as_uint(group, 32, "group")
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

    def learn_qhlo_cookie(self, key: Key, cookie: str) -> None:
        """Experimental (SMTP QUICKSTART): keep a greeting's QHLO cookie for ``key``'s
        server (beside its capabilities, same TTL); a cookie that cannot be kept raises."""
        rc = _lib.pipeconnect_cache_learn_qhlo_cookie(
            self._handle(), key._handle(), as_cstr(cookie, "cookie")
        )
        check(rc)

    def qhlo_cookie(self, key: Key) -> Optional[str]:
        """Experimental (SMTP QUICKSTART): the QHLO cookie kept for ``key``'s server, or
        None."""
        buf = ctypes.create_string_buffer(QhloSize.COOKIE_MAX + 1)
        n = ctypes.c_size_t(0)
        rc = _lib.pipeconnect_cache_qhlo_cookie(
            self._handle(), key._handle(), buf, len(buf), ctypes.byref(n)
        )
        if check(rc, Result.NOT_FOUND) == Result.NOT_FOUND:
            return None
        return buf.raw[: n.value].decode("ascii")

    def forget_qhlo_cookie(self, key: Key) -> bool:
        """Experimental (SMTP QUICKSTART): drop the QHLO cookie kept for ``key``'s server;
        True if there was one."""
        rc = _lib.pipeconnect_cache_forget_qhlo_cookie(self._handle(), key._handle())
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
            hold_downs_entered=out.hold_downs_entered,
            early_skipped_held_down=out.early_skipped_held_down,
            hold_downs_current=out.hold_downs_current,
            writes_abandoned=out.writes_abandoned,
            shared_hits=out.shared_hits,
            shared_misses=out.shared_misses,
            shared_errors=out.shared_errors,
            shared_timeouts=out.shared_timeouts,
            shared_skipped_open=out.shared_skipped_open,
            shared_rejected=out.shared_rejected,
        )

    def attach_shared(
        self,
        url: str,
        *,
        deadline_ms: int = 0,
        backoff_ms: int = 0,
        local_ttl_cap: int = 0,
        prefix: Optional[str] = None,
        secret: Optional[bytes] = None,
        across_local_addresses: bool = False,
    ) -> None:
        """Put the Redis at ``url`` (``redis://`` or ``unix://``) behind this cache as a
        shared tier (docs/FLEET.md). 0 means the library's default for each number."""
        o = _ffi.pipeconnect_shared_options()
        o.deadline_ms = as_uint(deadline_ms, 32, "deadline_ms")
        o.backoff_ms = as_uint(backoff_ms, 32, "backoff_ms")
        o.local_ttl_cap_seconds = as_uint(local_ttl_cap, 64, "local_ttl_cap")
        if across_local_addresses:
            o.flags = int(SharedFlags.ACROSS_LOCAL_ADDRESSES)
        raw_prefix = None
        if prefix is not None:
            raw_prefix = prefix.encode("utf-8")
            if b"\0" in raw_prefix:
                raise InvalidInputError(Result.ERR_INVALID_ARGUMENT, "prefix contains a NUL byte")
            o.key_prefix = raw_prefix
        secret_buf = None
        if secret is not None:
            data = as_bytes(secret, "secret")
            secret_buf = (ctypes.c_uint8 * max(len(data), 1)).from_buffer_copy(data or b"\0")
            o.secret = ctypes.cast(secret_buf, ctypes.POINTER(ctypes.c_uint8))
            o.secret_len = len(data)
        raw_url = url.encode("utf-8")
        if b"\0" in raw_url:
            raise InvalidInputError(Result.ERR_INVALID_ARGUMENT, "url contains a NUL byte")
        detail = _ffi.pipeconnect_error_detail()
        check_detail(
            _lib.pipeconnect_cache_attach_shared(
                self._handle(), raw_url, ctypes.byref(o), ctypes.byref(detail)
            ),
            detail,
        )
        del raw_prefix, secret_buf

    def detach_shared(self) -> None:
        """Detach the shared tier: local only again."""
        check(_lib.pipeconnect_cache_detach_shared(self._handle()))

    def set_hold_down(
        self,
        first: Optional[int] = None,
        max: Optional[int] = None,
        growth: Optional[int] = None,
        decay_after: Optional[int] = None,
        remember: Optional[int] = None,
    ) -> None:
        """Set how long this handle's hold-downs last (seconds; None keeps the default).

        ``first=0`` turns hold-downs off for this handle. See docs/RULES.md, "Hold-down".
        """
        c = _ffi.pipeconnect_hold_down()
        check(_lib.pipeconnect_hold_down_default(ctypes.byref(c)))
        if first == 0:
            c.flags = int(HoldDownFlags.OFF)
            first = None
        for field, value, bits in (
            ("first_seconds", first, 64),
            ("max_seconds", max, 64),
            ("growth", growth, 32),
            ("decay_after", decay_after, 32),
            ("remember_seconds", remember, 64),
        ):
            if value is not None:
                setattr(c, field, as_uint(value, bits, field))
        check(_lib.pipeconnect_cache_set_hold_down(self._handle(), ctypes.byref(c)))

    def note_early_refused(self, key: Key) -> bool:
        """An early flight to ``key`` was refused (for MTAs driving the policy themselves).

        Returns whether a new hold-down began.
        """
        rc = check(
            _lib.pipeconnect_cache_note_early_refused(self._handle(), key._handle()),
            Result.NOT_FOUND,
        )
        return rc == Result.OK

    def note_early_success(self, key: Key) -> None:
        """An early flight to ``key`` went through (for MTAs driving the policy themselves)."""
        check(_lib.pipeconnect_cache_note_early_success(self._handle(), key._handle()))

    def held_down_until(self, key: Key) -> Optional[int]:
        """When the hold-down of ``key``'s server ends (Unix seconds), or None if none runs."""
        out = ctypes.c_uint64(0)
        rc = check(
            _lib.pipeconnect_cache_held_down(self._handle(), key._handle(), ctypes.byref(out)),
            Result.NOT_FOUND,
        )
        return None if rc == Result.NOT_FOUND else int(out.value)

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

