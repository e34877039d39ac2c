"""The server side: what a receiving MTA makes of input found before its banner.

:class:`Prebanner` is fed the bytes that arrived before (or during a greet pause before)
the banner, in any pieces, and says whether they are a well-formed early flight, input to
answer with the banner first, or a pregreet violation (:class:`PrebannerClass`).
:func:`classify` does the same in one call. Whether this server offers PIPECONNECT to the
client is the caller's decision, given as ``offered``.
"""

from __future__ import annotations

import ctypes
from typing import NamedTuple, Union

from . import _ffi
from ._enums import PrebannerClass, PrebannerOptionFlags, PrebannerReason, PrebannerVerdictFlags
from ._handle import Handle, as_bytes, as_uint, check

__all__ = ["PrebannerVerdict", "Prebanner", "classify", "class_name", "reason_name"]

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
    offered: bool, max_commands: int, max_bytes: int, max_body: int
) -> _ffi.pipeconnect_prebanner_options:
    o = _ffi.pipeconnect_prebanner_options()
    o.flags = int(PrebannerOptionFlags.OFFERED if offered else PrebannerOptionFlags.NONE)
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
    """

    _free = _lib.pipeconnect_server_prebanner_free

    def __init__(
        self, offered: bool, *, max_commands: int = 0, max_bytes: int = 0, max_body: int = 0
    ) -> None:
        o = _options(offered, max_commands, max_bytes, max_body)
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
