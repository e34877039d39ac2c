"""``Tracker``: early pipelining for an MTA that writes its own commands and reads its own
replies (``pipeconnect_tracker_*``)."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Optional, Union

from . import _ffi
from ._enums import (
    CommandKind,
    EventFlags,
    Extension,
    Phase,
    Reason,
    TrackerAction,
    TrackerFlags,
    TrackerMode,
    Verdict,
)
from ._handle import Handle, as_bytes, as_cstr, as_uint, check, check_detail
from .cache import Cache
from .policy import _enum

__all__ = ["Plan", "Step", "Tracker"]

_lib = _ffi.lib


@dataclass(frozen=True)
class Plan:
    """How a tracked connection goes (``pipeconnect_tracker_plan``)."""

    mode: Union[TrackerMode, int]
    #: Why it stays classic (END_OF_SEQUENCE when it does not).
    reason: Union[Reason, int]
    #: Commands to send now (0 when classic).
    command_count: int
    #: The cached extensions less the ignored ones: build MAIL/RCPT parameters from these.
    extensions: Extension
    #: The cached SIZE limit (0: none applies).
    size_limit: int


@dataclass(frozen=True)
class Step:
    """What to do after one reply (``pipeconnect_tracker_step``)."""

    action: Union[TrackerAction, int]
    verdict: Union[Verdict, int]
    flags: EventFlags
    #: After a 250 to EHLO: its extensions less the ignored ones.
    extensions: Extension
    #: After a 250 to EHLO: its SIZE limit (0: none applies).
    size_limit: int


class Tracker(Handle):
    """One connection of an MTA that does its own I/O (``pipeconnect_tracker``).

    ``Tracker(cache, server, port, rcpt_count=..., flags=TrackerFlags.EARLY_ALLOWED)``
    looks the server up and plans the connection (:attr:`plan`): send EHLO, MAIL, one RCPT
    per recipient and DATA now (``TRANSACTION``), EHLO and STARTTLS now (``STARTTLS``), or
    wait for the banner (``CLASSIC``). Pass every reply read to :meth:`reply` with the
    command it answers (the text is only read for a 250 to EHLO) and act on the step's
    action: PROCEED, RECONNECT (at once, classic) or DEFER.
    """

    _free = _lib.pipeconnect_tracker_free

    def __init__(
        self,
        cache: Cache,
        server: str,
        port: int,
        *,
        phase: Phase = Phase.CLEARTEXT,
        flags: TrackerFlags = TrackerFlags.EARLY_ALLOWED,
        rcpt_count: int = 0,
        message_size: int = 0,
        relies_on: Extension = Extension(0),
        required: Extension = Extension(0),
        ignored_keywords: Optional[str] = None,
    ) -> None:
        server_c = as_cstr(server, "server")
        ignored_c = None
        if ignored_keywords is not None:
            ignored_c = as_cstr(ignored_keywords, "ignored_keywords")
        req = _ffi.pipeconnect_tracker_request(
            server=server_c,
            port=as_uint(port, 16, "port"),
            phase=as_uint(int(phase), 32, "phase"),
            flags=as_uint(int(flags), 32, "flags"),
            rcpt_count=as_uint(rcpt_count, 32, "rcpt_count"),
            message_size=as_uint(message_size, 64, "message_size"),
            relies_on=as_uint(int(relies_on), 32, "relies_on"),
            required=as_uint(int(required), 32, "required"),
            ignored_keywords=ignored_c,
        )
        out = _ffi.TRACKER_P()
        plan = _ffi.pipeconnect_tracker_plan()
        detail = _ffi.pipeconnect_error_detail()
        check_detail(
            _lib.pipeconnect_tracker_begin(
                cache._handle(),
                ctypes.byref(req),
                ctypes.byref(out),
                ctypes.byref(plan),
                ctypes.byref(detail),
            ),
            detail,
        )
        super().__init__(out)
        self.plan = Plan(
            mode=_enum(TrackerMode, plan.mode),
            reason=_enum(Reason, plan.reason),
            command_count=int(plan.command_count),
            extensions=Extension(plan.extensions),
            size_limit=int(plan.size_limit),
        )

    def reply(
        self, answered: Union[CommandKind, int], code: int, text: Union[bytes, str] = b""
    ) -> Step:
        """Judge reply ``code`` to ``answered``; ``text`` is the whole reply as held (CRLF
        or LF line ends, the last optional)."""
        raw = as_bytes(text, "text")
        buf = (ctypes.c_uint8 * max(len(raw), 1)).from_buffer_copy(raw.ljust(1, b"\0"))
        step = _ffi.pipeconnect_tracker_step()
        check(
            _lib.pipeconnect_tracker_reply(
                self._handle(),
                as_uint(int(answered), 32, "answered"),
                as_uint(code, 32, "code"),
                buf,
                len(raw),
                ctypes.byref(step),
            )
        )
        return Step(
            action=_enum(TrackerAction, step.action),
            verdict=_enum(Verdict, step.verdict),
            flags=EventFlags(step.flags),
            extensions=Extension(step.extensions),
            size_limit=int(step.size_limit),
        )
