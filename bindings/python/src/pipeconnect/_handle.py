"""Shared plumbing: result checking and the base class of every handle-owning object."""

from __future__ import annotations

import ctypes
import threading
from typing import Any, Callable, Optional, TypeVar

from . import _errors
from ._errors import Result

T = TypeVar("T", bound="Handle")


def check(rc: int, *accept: Result) -> int:
    """Return ``rc`` if it is OK or one of ``accept``; raise the matching error otherwise."""
    if rc == Result.OK or rc in accept:
        return rc
    raise _errors.error_for(rc)


def check_detail(rc: int, detail: Any, *accept: Result) -> int:
    """As :func:`check`, the error carrying the call's ``pipeconnect_error_detail``: its
    sentence as the message, and ``field``, ``index`` and ``os_errno`` attributes (None
    when the library named none)."""
    if rc == Result.OK or rc in accept:
        return rc
    message = bytes(detail.message).split(b"\0", 1)[0].decode("utf-8", "replace")
    err = _errors.error_for(rc) if not message else _errors.error_for(rc, message)
    field = bytes(detail.field).split(b"\0", 1)[0].decode("ascii", "replace")
    err.field = field or None
    err.index = int(detail.index) if detail.flags & 1 else None
    err.os_errno = int(detail.os_errno) or None
    raise err


def as_bytes(value: Any, what: str) -> bytes:
    """Bytes for a C byte buffer: bytes-like objects as they are, ``str`` as UTF-8."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be bytes or str, not {type(value).__name__}")


SIZE_BITS = 8 * ctypes.sizeof(ctypes.c_size_t)


def as_uint(value: int, bits: int, what: str) -> int:
    """An int that fits an unsigned C type of ``bits`` bits (ctypes would wrap it)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be int, not {type(value).__name__}")
    if not 0 <= value < (1 << bits):
        raise _errors.InvalidInputError(
            Result.ERR_INVALID_ARGUMENT, f"{what} {value} is out of range"
        )
    return value


def as_cstr(value: str, what: str) -> bytes:
    """A NUL-free UTF-8 C string; an embedded NUL is refused here (C would cut it)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    raw = value.encode("utf-8")
    if b"\0" in raw:
        raise _errors.InvalidInputError(
            Result.ERR_INVALID_ARGUMENT, f"{what} contains a NUL character"
        )
    return raw


class Handle:
    """Owns one C handle: ``close()`` releases it (idempotent), as do ``with`` and GC.

    Subclasses set ``_free`` to the C function releasing their handle.
    """

    _free: Optional[Callable[[Any], None]] = None
    _ptr: Any = None

    def __init__(self, ptr: Any) -> None:
        if not ptr:
            raise ValueError("NULL handle")
        self._ptr = ptr
        self._close_lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """Whether the handle has been released."""
        return self._ptr is None

    def close(self) -> None:
        """Release the C handle. Calling it again does nothing."""
        lock = getattr(self, "_close_lock", None)
        if lock is None:  # __init__ did not finish
            return
        with lock:
            ptr, self._ptr = self._ptr, None
            free = type(self)._free
            if ptr is not None and free is not None:
                free(ptr)

    def _handle(self) -> Any:
        """The live C pointer; a closed object raises ValueError (as files do)."""
        ptr = self._ptr
        if ptr is None:
            raise ValueError(f"operation on a closed {type(self).__name__}")
        return ptr

    def __enter__(self: T) -> T:
        self._handle()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass
