"""``Capabilities``: what one EHLO reply advertised."""

from __future__ import annotations

import ctypes
from typing import NamedTuple, Optional, Tuple, Union

from . import _ffi
from ._enums import Extension, Limit, ParseFlags
from ._errors import Result, error_for
from ._handle import Handle, as_bytes, as_cstr, check

__all__ = ["Capabilities", "Limits"]

_lib = _ffi.lib


class Limits(NamedTuple):
    """RFC 9422 LIMITS values; None where the server did not advertise the value."""

    mail_max: Optional[int]
    rcpt_max: Optional[int]
    rcpt_domain_max: Optional[int]


def _buffer(data: bytes) -> "ctypes.Array[ctypes.c_uint8]":
    return (ctypes.c_uint8 * len(data)).from_buffer_copy(data)


class Capabilities(Handle):
    """An immutable snapshot of one EHLO reply's capabilities (``pipeconnect_caps``).

    Made by :meth:`parse` or returned by :meth:`Cache.lookup`; it does not change when
    the cache does.
    """

    _free = _lib.pipeconnect_caps_free

    def __init__(self, ptr: "ctypes._Pointer[_ffi.pipeconnect_caps]") -> None:
        """Wrap a snapshot pointer this object will own (use :meth:`parse` instead)."""
        super().__init__(ptr)

    @classmethod
    def parse(
        cls, reply: Union[bytes, bytearray, memoryview, str], *, legacy_keywords: bool = False
    ) -> "Capabilities":
        """Read one complete EHLO reply, exactly as received (CRLF or LF line ends).

        ``legacy_keywords`` also takes ``PIPE_CONNECT`` / ``X_PIPE_CONNECT`` (Exim 4.92
        to 4.95) as early pipelining. Raises :class:`ReplyError` for a malformed,
        incomplete, oversized or non-250 reply.
        """
        data = as_bytes(reply, "reply")
        flags = ParseFlags.LEGACY_KEYWORDS if legacy_keywords else ParseFlags.NONE
        out = _ffi.CAPS_P()
        check(_lib.pipeconnect_caps_parse(_buffer(data), len(data), int(flags), ctypes.byref(out)))
        return cls(out)

    @property
    def flags(self) -> Extension:
        """Every advertised extension, as :class:`Extension` bits."""
        out = _ffi.EXT(0)
        check(_lib.pipeconnect_caps_flags(self._handle(), ctypes.byref(out)))
        return Extension(out.value)

    def has(self, ext: Union[Extension, int]) -> bool:
        """Whether the single extension ``ext`` was advertised.

        More than one bit, or an unknown bit, raises :class:`InvalidInputError`.
        """
        value = int(ext)
        if not 0 <= value <= 0xFFFFFFFF:
            # Out of the C type's range: refuse rather than let ctypes wrap it.
            raise error_for(Result.ERR_INVALID_ARGUMENT)
        out = ctypes.c_bool(False)
        check(_lib.pipeconnect_caps_has(self._handle(), value, ctypes.byref(out)))
        return bool(out.value)

    def __contains__(self, ext: Union[Extension, int]) -> bool:
        return self.has(ext)

    @property
    def size_limit(self) -> Optional[int]:
        """The SIZE limit in bytes; None if SIZE had no number; 0 means no fixed limit."""
        out = ctypes.c_uint64(0)
        rc = check(
            _lib.pipeconnect_caps_size_limit(self._handle(), ctypes.byref(out)), Result.NOT_FOUND
        )
        return None if rc == Result.NOT_FOUND else int(out.value)

    @property
    def limits(self) -> Limits:
        """The RFC 9422 LIMITS values (None for those not advertised; 0 is a value)."""
        h = self._handle()
        values = []
        for which in (Limit.MAILMAX, Limit.RCPTMAX, Limit.RCPTDOMAINMAX):
            out = ctypes.c_uint32(0)
            rc = check(
                _lib.pipeconnect_caps_limit(h, int(which), ctypes.byref(out)), Result.NOT_FOUND
            )
            values.append(None if rc == Result.NOT_FOUND else int(out.value))
        return Limits(*values)

    @property
    def auth_mechanisms(self) -> Tuple[str, ...]:
        """The AUTH mechanisms offered, upper case, in the server's order (at most 16)."""
        h = self._handle()
        count = ctypes.c_size_t(0)
        check(_lib.pipeconnect_caps_auth_count(h, ctypes.byref(count)))
        names = []
        for i in range(count.value):
            name = ctypes.c_char_p()
            check(_lib.pipeconnect_caps_auth_name(h, i, ctypes.byref(name)))
            names.append((name.value or b"").decode("ascii", "replace"))
        return tuple(names)

    def has_auth(self, mechanism: str) -> bool:
        """Whether the AUTH mechanism ``mechanism`` (any case) was offered."""
        out = ctypes.c_bool(False)
        check(
            _lib.pipeconnect_caps_has_auth(
                self._handle(), as_cstr(mechanism, "mechanism"), ctypes.byref(out)
            )
        )
        return bool(out.value)

    @property
    def fingerprint(self) -> int:
        """A 64-bit fingerprint of every extension line (case and order ignored)."""
        out = ctypes.c_uint64(0)
        check(_lib.pipeconnect_caps_fingerprint(self._handle(), ctypes.byref(out)))
        return int(out.value)

    @property
    def learned_at(self) -> Optional[int]:
        """When the snapshot was learned (Unix seconds) if it came from a cache lookup."""
        out = ctypes.c_uint64(0)
        rc = check(
            _lib.pipeconnect_caps_learned_at(self._handle(), ctypes.byref(out)),
            Result.NOT_FOUND,
        )
        return None if rc == Result.NOT_FOUND else int(out.value)

    def __repr__(self) -> str:
        if self.closed:
            return "<pipeconnect.Capabilities closed>"
        return f"<pipeconnect.Capabilities {self.flags!r} size={self.size_limit}>"
