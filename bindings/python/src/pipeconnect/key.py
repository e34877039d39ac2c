"""``Key``: which server, port, TLS state (and optionally local address, EHLO name)."""

from __future__ import annotations

import ctypes
from typing import Optional, Union

from . import _ffi
from ._enums import TlsState
from ._errors import InvalidInputError, Result
from ._handle import Handle, as_cstr, check

__all__ = ["Key"]

_lib = _ffi.lib


class Key(Handle):
    """A cache key (``pipeconnect_key``).

    ``server`` is IPv4 or IPv6 text (IPv6 optionally in brackets; no host names),
    ``port`` is 1..65535. Two spellings of one address make one key:
    ``Key("[2001:db8::1]") == Key("2001:0db8:0:0::1")``.

    A key is immutable from Python: :meth:`with_tls`, :meth:`with_local` and
    :meth:`with_ehlo_name` return new keys.
    """

    _free = _lib.pipeconnect_key_free

    def __init__(
        self,
        server: str,
        port: int = 25,
        tls: Union[TlsState, int] = TlsState.CLEARTEXT,
        *,
        local: Optional[str] = None,
        ehlo_name: Optional[str] = None,
    ) -> None:
        if not isinstance(port, int) or isinstance(port, bool):
            raise TypeError(f"port must be int, not {type(port).__name__}")
        if not 0 <= port <= 0xFFFF:
            # The C type is uint16_t: an out-of-range port would silently wrap.
            raise InvalidInputError(Result.ERR_INVALID_ARGUMENT, f"port {port} is out of range")
        out = _ffi.KEY_P()
        check(
            _lib.pipeconnect_key_new(
                as_cstr(server, "server"), port, _tls_arg(tls), ctypes.byref(out)
            )
        )
        super().__init__(out)
        try:
            if local is not None:
                check(_lib.pipeconnect_key_set_local(out, as_cstr(local, "local")))
            if ehlo_name is not None:
                check(
                    _lib.pipeconnect_key_set_ehlo_name(out, as_cstr(ehlo_name, "ehlo_name"))
                )
        except BaseException:
            self.close()
            raise
        self._tls = TlsState(int(tls))

    @classmethod
    def _adopt(cls, ptr: "ctypes._Pointer[_ffi.pipeconnect_key]", tls: TlsState) -> "Key":
        obj = cls.__new__(cls)
        Handle.__init__(obj, ptr)
        obj._tls = tls
        return obj

    @property
    def tls(self) -> TlsState:
        """The TLS state the key is for."""
        return self._tls

    def with_tls(self, tls: Union[TlsState, int]) -> "Key":
        """A new key equal to this one but in TLS state ``tls``."""
        out = _ffi.KEY_P()
        check(_lib.pipeconnect_key_with_tls(self._handle(), _tls_arg(tls), ctypes.byref(out)))
        return Key._adopt(out, TlsState(int(tls)))

    def copy(self) -> "Key":
        """A new, independent key equal to this one."""
        return self.with_tls(self._tls)

    def with_local(self, local: str) -> "Key":
        """A new key narrowed to connections made from the local address ``local``."""
        k = self.copy()
        try:
            check(_lib.pipeconnect_key_set_local(k._handle(), as_cstr(local, "local")))
        except BaseException:
            k.close()
            raise
        return k

    def with_ehlo_name(self, ehlo_name: str) -> "Key":
        """A new key narrowed to connections that greet with ``ehlo_name``."""
        k = self.copy()
        try:
            check(
                _lib.pipeconnect_key_set_ehlo_name(
                    k._handle(), as_cstr(ehlo_name, "ehlo_name")
                )
            )
        except BaseException:
            k.close()
            raise
        return k

    def __str__(self) -> str:
        buf = ctypes.create_string_buffer(320)
        written = ctypes.c_size_t(0)
        rc = _lib.pipeconnect_key_to_string(
            self._handle(), buf, len(buf), ctypes.byref(written)
        )
        if rc == Result.ERR_BUFFER_TOO_SMALL:
            buf = ctypes.create_string_buffer(written.value + 1)
            rc = _lib.pipeconnect_key_to_string(
                self._handle(), buf, len(buf), ctypes.byref(written)
            )
        check(rc)
        return buf.raw[: written.value].decode("utf-8")

    def __repr__(self) -> str:
        if self.closed:
            return "<pipeconnect.Key closed>"
        return f"<pipeconnect.Key {self}>"

    def _identity(self) -> str:
        # The text form is canonical (normalised address); EHLO names compare
        # case-insensitively, and nothing else in the text has letters that vary.
        return str(self).lower()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())


def _tls_arg(tls: Union[TlsState, int]) -> int:
    if isinstance(tls, bool) or not isinstance(tls, int):
        raise TypeError(f"tls must be TlsState, not {type(tls).__name__}")
    if not 0 <= int(tls) <= 0xFFFFFFFF:
        raise InvalidInputError(Result.ERR_INVALID_ARGUMENT, f"TLS state {tls} is out of range")
    # Values that fit the C type but are not TLS states are left to the library to
    # refuse, so its error code is the one raised.
    return int(tls)
