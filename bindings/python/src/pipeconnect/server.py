"""The server side: what a receiving MTA makes of input found before its banner.

:class:`Prebanner` is fed the bytes that arrived before (or during a greet pause before)
the banner, in any pieces, and says whether they are a well-formed early flight, input to
answer with the banner first, or a pregreet violation (:class:`PrebannerClass`).
:func:`classify` does the same in one call. Whether this server offers PIPECONNECT to the
client is the caller's decision, given as ``offered``.
"""

from __future__ import annotations

import ctypes
from typing import NamedTuple, Optional, Union

from . import _ffi
from ._enums import PrebannerClass, PrebannerOptionFlags, PrebannerReason, PrebannerVerdictFlags
from ._errors import Result
from ._handle import Handle, as_bytes, as_cstr, as_uint, check
from .caps import Capabilities

__all__ = [
    "PrebannerVerdict",
    "Prebanner",
    "classify",
    "class_name",
    "reason_name",
    "parse_greeting",
    "greeting_cookie",
    "qhlo_cookie",
    "qhlo_cookie_valid",
    "qhlo_epoch_secret",
]

_lib = _ffi.lib


class PrebannerVerdict(NamedTuple):
    """The classification of the input so far (``pipeconnect_prebanner_verdict``)."""

    class_: PrebannerClass
    reason: PrebannerReason
    #: Complete command lines accepted as part of the flight.
    commands: int
    #: Bytes looked at.
    bytes: int
    flags: PrebannerVerdictFlags

    @property
    def incomplete(self) -> bool:
        """The input ends inside a line or a BDAT body."""
        return bool(self.flags & PrebannerVerdictFlags.INCOMPLETE)

    @property
    def decided(self) -> bool:
        """The verdict cannot change, whatever follows."""
        return bool(self.flags & PrebannerVerdictFlags.DECIDED)


def _options(
    offered: bool, max_commands: int, max_bytes: int, max_body: int, quickstart: bool = False
) -> _ffi.pipeconnect_prebanner_options:
    o = _ffi.pipeconnect_prebanner_options()
    flags = PrebannerOptionFlags.OFFERED if offered else PrebannerOptionFlags.NONE
    if quickstart:
        flags |= PrebannerOptionFlags.QUICKSTART
    o.flags = int(flags)
    o.max_commands = as_uint(max_commands, 32, "max_commands")
    o.max_bytes = as_uint(max_bytes, 64, "max_bytes")
    o.max_body = as_uint(max_body, 64, "max_body")
    return o


def _verdict(v: _ffi.pipeconnect_prebanner_verdict) -> PrebannerVerdict:
    return PrebannerVerdict(
        PrebannerClass(v.class_),
        PrebannerReason(v.reason),
        int(v.commands),
        int(v.bytes),
        PrebannerVerdictFlags(v.flags),
    )


def _buffer(data: bytes) -> "ctypes.Array[ctypes.c_uint8]":
    # One spare byte: a non-NULL pointer even for empty input.
    return (ctypes.c_uint8 * (len(data) + 1)).from_buffer_copy(data + b"\0")


class Prebanner(Handle):
    """One connection's pre-banner input classifier (``pipeconnect_prebanner``).

    ``offered``: whether this server advertises PIPECONNECT to this client. A limit of 0
    is its default (100 commands, 65536 bytes, a 65536-byte BDAT LAST body).
    ``quickstart`` (experimental): QHLO may stand where EHLO may.
    """

    _free = _lib.pipeconnect_server_prebanner_free

    def __init__(
        self,
        offered: bool,
        *,
        max_commands: int = 0,
        max_bytes: int = 0,
        max_body: int = 0,
        quickstart: bool = False,
    ) -> None:
        o = _options(offered, max_commands, max_bytes, max_body, quickstart)
        out = _ffi.PREBANNER_P()
        check(_lib.pipeconnect_server_prebanner_new(ctypes.byref(o), ctypes.byref(out)))
        super().__init__(out)

    def feed(self, data: Union[bytes, bytearray, memoryview, str]) -> None:
        """Look at more input (any split gives the same verdict)."""
        raw = as_bytes(data, "data")
        check(_lib.pipeconnect_server_prebanner_feed(self._handle(), _buffer(raw), len(raw)))

    def verdict(self) -> PrebannerVerdict:
        """The classification of everything fed so far."""
        v = _ffi.pipeconnect_prebanner_verdict()
        check(_lib.pipeconnect_server_prebanner_verdict(self._handle(), ctypes.byref(v)))
        return _verdict(v)


def classify(
    data: Union[bytes, bytearray, memoryview, str],
    offered: bool,
    *,
    max_commands: int = 0,
    max_bytes: int = 0,
    max_body: int = 0,
) -> PrebannerVerdict:
    """Classify pre-banner input in one call."""
    raw = as_bytes(data, "data")
    o = _options(offered, max_commands, max_bytes, max_body)
    v = _ffi.pipeconnect_prebanner_verdict()
    check(_lib.pipeconnect_server_classify(ctypes.byref(o), _buffer(raw), len(raw), ctypes.byref(v)))
    return _verdict(v)


def class_name(value: Union[PrebannerClass, int]) -> str:
    """The C name of a class (``"EARLY_FLIGHT"``; ``"UNKNOWN"`` for an unknown value)."""
    return (_lib.pipeconnect_server_class_name(as_uint(int(value), 32, "class")) or b"").decode()


def reason_name(value: Union[PrebannerReason, int]) -> str:
    """The C name of a reason (``"HELO_FIRST"``; ``"UNKNOWN"`` for an unknown value)."""
    return (_lib.pipeconnect_server_reason_name(as_uint(int(value), 32, "reason")) or b"").decode()


# ---- SMTP QUICKSTART (experimental) ----------------------------------------------------


def parse_greeting(
    greeting: Union[bytes, bytearray, memoryview, str], *, legacy_keywords: bool = False
) -> Capabilities:
    """A server's (multi-line) 220 greeting read like an EHLO reply, ``QHLO=`` left out;
    learn it with :meth:`Cache.learn_caps` under the usual key."""
    raw = as_bytes(greeting, "greeting")
    out = _ffi.CAPS_P()
    check(
        _lib.pipeconnect_quickstart_parse_greeting(
            _buffer(raw), len(raw), 1 if legacy_keywords else 0, ctypes.byref(out)
        )
    )
    return Capabilities(out)


def greeting_cookie(greeting: Union[bytes, bytearray, memoryview, str]) -> Optional[str]:
    """The cookie of the greeting's ``QHLO=<cookie>`` line, or None."""
    raw = as_bytes(greeting, "greeting")
    buf = ctypes.create_string_buffer(1024)
    n = ctypes.c_size_t(0)
    rc = check(
        _lib.pipeconnect_quickstart_greeting_cookie(
            _buffer(raw), len(raw), buf, len(buf), ctypes.byref(n)
        ),
        Result.NOT_FOUND,
    )
    return None if rc == Result.NOT_FOUND else buf.raw[: n.value].decode("ascii")


def qhlo_cookie(secret: bytes, client: str, fingerprint: int) -> str:
    """The QHLO cookie for ``client`` (a numeric address) and the capability list with this
    fingerprint, under ``secret`` (16 to 64 bytes)."""
    raw = as_bytes(secret, "secret")
    buf = ctypes.create_string_buffer(64)
    n = ctypes.c_size_t(0)
    check(
        _lib.pipeconnect_server_qhlo_cookie(
            _buffer(raw),
            len(raw),
            as_cstr(client, "client"),
            as_uint(fingerprint, 64, "fingerprint"),
            buf,
            len(buf),
            ctypes.byref(n),
        )
    )
    return buf.raw[: n.value].decode("ascii")


def qhlo_cookie_valid(secret: bytes, client: str, fingerprint: int, cookie: str) -> bool:
    """Whether ``cookie`` is :func:`qhlo_cookie` of these arguments."""
    raw = as_bytes(secret, "secret")
    out = ctypes.c_bool(False)
    check(
        _lib.pipeconnect_server_qhlo_cookie_valid(
            _buffer(raw),
            len(raw),
            as_cstr(client, "client"),
            as_uint(fingerprint, 64, "fingerprint"),
            as_cstr(cookie, "cookie"),
            ctypes.byref(out),
        )
    )
    return bool(out.value)


def qhlo_epoch_secret(master: bytes, epoch: int) -> bytes:
    """The cookie secret of rotation period ``epoch``, derived from ``master``."""
    raw = as_bytes(master, "master")
    out = (ctypes.c_uint8 * 32)()
    check(
        _lib.pipeconnect_server_qhlo_epoch_secret(
            _buffer(raw), len(raw), as_uint(epoch, 64, "epoch"), out, len(out)
        )
    )
    return bytes(out)
