"""``Session``: one connection's bookkeeping (the early flight, replies reaped in order,
what the cache learns and forgets)."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Sequence, Tuple, Union

from . import _errors, _ffi
from ._enums import (
    BodyMode,
    CommandKind,
    EventFlags,
    Extension,
    IntentFlags,
    Reason,
    SessionCommandFlags,
    SummaryFlags,
    Verdict,
)
from ._errors import Result
from ._handle import Handle, as_bytes, as_cstr, as_uint, check, check_detail
from .cache import Cache
from .caps import Capabilities, _buffer
from .key import Key
from .policy import EARLY_ALLOWED, Flight, Settings, _enum

__all__ = ["Intent", "SessionCommand", "Event", "Summary", "Session"]

_lib = _ffi.lib

#: Commands taken per call to pipeconnect_session_flight (it is called until drained).
_FLIGHT_CHUNK = 64


@dataclass(frozen=True)
class Intent:
    """What the caller means to do on one connection: one transaction to one server.

    ``rcpts`` is a sequence of addresses (without angle brackets), or a count when the
    caller formats its own RCPT lines. ``mail_from`` is the envelope sender ("" for the
    null sender) or None when the caller formats its own MAIL line. ``ehlo_name`` None
    means it is not known before connecting (then nothing goes early). ``body_size`` is
    the body's size as sent (after dot-stuffing for DATA).
    """

    rcpts: Union[Sequence[str], int]
    ehlo_name: Optional[str] = None
    mail_from: Optional[str] = None
    body_size: int = 0
    body_mode: BodyMode = BodyMode.AUTO
    starttls: bool = False
    auth_mechanism: Optional[str] = None
    auth_initial_response: bool = False
    auth_optional: bool = False

    @property
    def flags(self) -> IntentFlags:
        f = IntentFlags.NONE
        if self.starttls:
            f |= IntentFlags.STARTTLS
        if self.auth_mechanism is not None:
            f |= IntentFlags.AUTH
        if self.auth_initial_response:
            f |= IntentFlags.AUTH_INITIAL_RESPONSE
        if self.auth_optional:
            f |= IntentFlags.AUTH_OPTIONAL
        return f

    def _c(self) -> Tuple[_ffi.pipeconnect_intent, List[object]]:
        """The C struct and the objects it points into (keep them alive during the call)."""
        keep: List[object] = []

        def cstr(v: Optional[str], what: str) -> Optional[bytes]:
            if v is None:
                return None
            raw = as_cstr(v, what)
            keep.append(raw)
            return raw

        c = _ffi.pipeconnect_intent()
        c.ehlo_name = cstr(self.ehlo_name, "ehlo_name")
        c.flags = int(self.flags)
        c.auth_mechanism = cstr(self.auth_mechanism, "auth_mechanism")
        c.mail_from = cstr(self.mail_from, "mail_from")
        if isinstance(self.rcpts, bool):
            raise TypeError("rcpts must be a sequence of addresses or a count, not bool")
        if isinstance(self.rcpts, int):
            c.rcpts = None
            c.rcpt_count = as_uint(self.rcpts, 8 * ctypes.sizeof(ctypes.c_size_t), "rcpts")
        elif isinstance(self.rcpts, (str, bytes)):
            raise TypeError("rcpts must be a sequence of addresses or a count, not one string")
        else:
            addrs = [as_cstr(a, "recipient") for a in self.rcpts]
            arr = (ctypes.c_char_p * max(len(addrs), 1))(*addrs)
            keep.extend(addrs)
            keep.append(arr)
            c.rcpts = ctypes.cast(arr, ctypes.POINTER(ctypes.c_char_p))
            c.rcpt_count = len(addrs)
        c.body_size = as_uint(self.body_size, 64, "body_size")
        c.body_mode = as_uint(int(self.body_mode), 32, "body_mode")
        return c, keep


@dataclass(frozen=True)
class SessionCommand:
    """A command the session says to send now (``pipeconnect_session_command``)."""

    #: Its place in the conversation, from 1 (0 is the banner); events carry the same.
    seq: int
    kind: Union[CommandKind, int]
    flags: SessionCommandFlags
    #: For RCPT: which recipient of the intent (0-based).
    rcpt_index: int
    #: BDAT_LAST: the body size. MAIL: the SIZE= value to declare (0: none).
    size: int
    _raw: _ffi.pipeconnect_session_command = field(repr=False, compare=False)

    @property
    def early(self) -> bool:
        """The command goes in an early flight."""
        return bool(self.flags & SessionCommandFlags.EARLY)


@dataclass(frozen=True)
class Event:
    """One complete reply and what it means (``pipeconnect_event``)."""

    #: The seq of the command answered (0: the banner).
    seq: int
    #: The command answered (BANNER for the greeting, BODY for the end-of-data reply).
    kind: Union[CommandKind, int]
    verdict: Union[Verdict, int]
    flags: EventFlags
    code: int
    #: For RCPT: which recipient (0-based).
    rcpt_index: int
    #: The enhanced status code (class, subject, detail), or None.
    enhanced: Optional[Tuple[int, int, int]]
    #: For EHLO: the extensions whose facts differ from the cached entry.
    changed_extensions: Extension
    #: The reply text, lines joined with "\n" (at most 2048 bytes).
    text: str
    #: The reply as received, codes included, each line ending in CRLF (whole lines, at
    #: most 4096 bytes).
    raw: bytes = b""

    @property
    def early(self) -> bool:
        """The command answered went in an early flight."""
        return bool(self.flags & EventFlags.EARLY)

    @property
    def connection_done(self) -> bool:
        """The connection can carry nothing more."""
        return bool(self.flags & EventFlags.CONNECTION_DONE)

    @property
    def message_accepted(self) -> bool:
        """The server accepted the message."""
        return bool(self.flags & EventFlags.MESSAGE_ACCEPTED)


@dataclass(frozen=True)
class Summary:
    """What a session did (``pipeconnect_summary``)."""

    verdict: Union[Verdict, int]
    flags: SummaryFlags
    rcpt_accepted: int
    rcpt_rejected: int
    rcpt_deferred: int
    rcpt_not_attempted: int
    replies_outstanding: int
    groups: int

    @property
    def message_accepted(self) -> bool:
        return bool(self.flags & SummaryFlags.MESSAGE_ACCEPTED)

    @property
    def early(self) -> bool:
        """An early flight was used (cleartext or encrypted)."""
        return bool(self.flags & (SummaryFlags.CLEARTEXT_EARLY | SummaryFlags.ENCRYPTED_EARLY))


def _event(e: _ffi.pipeconnect_event) -> Event:
    text = ctypes.string_at(e.text, e.text_len) if e.text and e.text_len else b""
    raw = ctypes.string_at(e.raw, e.raw_len) if e.raw and e.raw_len else b""
    enhanced = (
        (int(e.enhanced_class), int(e.enhanced_subject), int(e.enhanced_detail))
        if e.enhanced_class
        else None
    )
    return Event(
        seq=int(e.seq),
        kind=_enum(CommandKind, e.kind),
        verdict=_enum(Verdict, e.verdict),
        flags=EventFlags(e.flags),
        code=int(e.code),
        rcpt_index=int(e.rcpt_index),
        enhanced=enhanced,
        changed_extensions=Extension(e.changed_extensions),
        text=text.decode("utf-8", "replace"),
        raw=raw,
    )


class Session(Handle):
    """One connection's bookkeeping (``pipeconnect_session``); one thread at a time.

    ``Session(cache, key, intent, settings)`` looks ``key`` up in ``cache`` and plans the
    early flight. Then, in a loop: send every command from :meth:`flight` (format lines
    with :meth:`command_line`), stop when :attr:`done`, read from the socket and
    :meth:`feed` the bytes (any split), act on the events it returns; after a 220 to
    STARTTLS and the handshake, call :meth:`tls_started`. Finally :meth:`finish`.
    ``settings`` defaults to early pipelining allowed.
    """

    _free = _lib.pipeconnect_session_free

    def __init__(
        self,
        cache: Cache,
        key: Key,
        intent: Intent,
        settings: Settings = EARLY_ALLOWED,
    ) -> None:
        c_intent, keep = intent._c()
        st = settings._c()
        out = _ffi.SESSION_P()
        detail = _ffi.pipeconnect_error_detail()
        check_detail(
            _lib.pipeconnect_session_begin(
                cache._handle(),
                key._handle(),
                ctypes.byref(c_intent),
                ctypes.byref(st),
                ctypes.byref(out),
                ctypes.byref(detail),
            ),
            detail,
        )
        del keep  # the library copied the strings
        super().__init__(out)
        self.intent = intent
        self.key = key

    def flight(self) -> List[SessionCommand]:
        """Take every command that may be sent now, in order (empty: wait for replies)."""
        h = self._handle()
        taken: List[SessionCommand] = []
        while True:
            arr = _ffi.sized_array(_ffi.pipeconnect_session_command, _FLIGHT_CHUNK)
            n = ctypes.c_size_t(0)
            check(_lib.pipeconnect_session_flight(h, arr, _FLIGHT_CHUNK, ctypes.byref(n)))
            for i in range(n.value):
                raw = _ffi.pipeconnect_session_command.from_buffer_copy(arr[i])
                taken.append(
                    SessionCommand(
                        seq=int(raw.seq),
                        kind=_enum(CommandKind, raw.kind),
                        flags=SessionCommandFlags(raw.flags),
                        rcpt_index=int(raw.rcpt_index),
                        size=int(raw.size),
                        _raw=raw,
                    )
                )
            if n.value < _FLIGHT_CHUNK:
                return taken

    def pending(self) -> Tuple[int, int]:
        """(commands waiting to be taken, events waiting to be taken)."""
        cmds, events = ctypes.c_size_t(0), ctypes.c_size_t(0)
        check(
            _lib.pipeconnect_session_pending(
                self._handle(), ctypes.byref(cmds), ctypes.byref(events)
            )
        )
        return int(cmds.value), int(events.value)

    def command_line(self, cmd: SessionCommand) -> bytes:
        """The line for ``cmd``, CRLF included.

        :class:`SessionError` (``ERR_CANNOT_FORMAT``) for AUTH with an initial response,
        the body, and lines whose EHLO name or addresses the intent did not give.
        """
        buf = ctypes.create_string_buffer(600)
        n = ctypes.c_size_t(0)
        raw = cmd._raw
        rc = _lib.pipeconnect_session_command_line(
            self._handle(), ctypes.byref(raw), buf, len(buf), ctypes.byref(n)
        )
        if rc == Result.ERR_BUFFER_TOO_SMALL:
            buf = ctypes.create_string_buffer(n.value + 1)
            rc = _lib.pipeconnect_session_command_line(
                self._handle(), ctypes.byref(raw), buf, len(buf), ctypes.byref(n)
            )
        check(rc)
        return buf.raw[: n.value]

    def feed(self, data: Union[bytes, bytearray, memoryview]) -> List[Event]:
        """Feed reply bytes exactly as read; return the events of every complete reply.

        An error stops the session (and repeats on later calls); the exception's
        ``events`` attribute holds the events made before it. Close the connection then.
        """
        raw = as_bytes(data, "data")
        h = self._handle()
        n = ctypes.c_size_t(0)
        rc = _lib.pipeconnect_session_feed(h, _buffer(raw), len(raw), ctypes.byref(n))
        events = list(self.events())
        if rc != Result.OK:
            err = _errors.error_for(rc)
            err.events = events
            raise err
        return events

    def next_event(self) -> Optional[Event]:
        """The oldest queued event, or None."""
        out = _ffi.pipeconnect_event()
        rc = check(
            _lib.pipeconnect_session_next_event(self._handle(), ctypes.byref(out)),
            Result.NO_EVENT,
        )
        if rc == Result.NO_EVENT:
            return None
        return _event(out)  # copies the text, which lives only until the next call

    def events(self) -> Iterator[Event]:
        """Take every queued event."""
        while True:
            e = self.next_event()
            if e is None:
                return
            yield e

    def tls_started(self) -> None:
        """The TLS handshake after a 220 to STARTTLS completed: plan the encrypted phase.

        :class:`SessionError` (``ERR_CLEARTEXT_AFTER_STARTTLS``) when cleartext bytes
        were fed after the 220; :class:`BadStateError` when no 220 to STARTTLS was seen.
        """
        check(_lib.pipeconnect_session_tls_started(self._handle()))

    @property
    def reason(self) -> Flight:
        """The current phase's early flight: how many commands went early, and why it
        stopped there."""
        allowed, reason = ctypes.c_size_t(0), ctypes.c_uint32(0)
        check(
            _lib.pipeconnect_session_reason(
                self._handle(), ctypes.byref(allowed), ctypes.byref(reason)
            )
        )
        return Flight(int(allowed.value), _enum(Reason, reason.value))

    @property
    def done(self) -> bool:
        """Nothing more to do: no reply awaited and no command waiting."""
        out = ctypes.c_bool(False)
        check(_lib.pipeconnect_session_is_done(self._handle(), ctypes.byref(out)))
        return bool(out.value)

    def quit(self) -> None:
        """Plan a QUIT (take it with :meth:`flight`); its reply is expected to be 221.

        Allowed once nothing more can follow it: the body command was handed out (QUIT
        may then be pipelined behind it), or the transaction ended; otherwise
        :class:`BadStateError`.
        """
        check(_lib.pipeconnect_session_quit(self._handle()))

    @property
    def server_caps(self) -> Optional[Capabilities]:
        """The capabilities of the current phase's real EHLO reply, or None before it
        (after a failed EHLO, and after STARTTLS until the new EHLO reply)."""
        out = _ffi.CAPS_P()
        rc = _lib.pipeconnect_session_server_caps(self._handle(), ctypes.byref(out))
        if check(rc, Result.NOT_FOUND) == Result.NOT_FOUND:
            return None
        return Capabilities(out)

    def finish(self) -> Summary:
        """End the session (e.g. the connection closed) and say what it did.

        A banner or EHLO reply still missing after an early flight invalidates the entry
        (verdict RECONNECT). Later calls give the same summary.
        """
        out = _ffi.pipeconnect_summary()
        check(_lib.pipeconnect_session_finish(self._handle(), ctypes.byref(out)))
        return Summary(
            verdict=_enum(Verdict, out.verdict),
            flags=SummaryFlags(out.flags),
            rcpt_accepted=int(out.rcpt_accepted),
            rcpt_rejected=int(out.rcpt_rejected),
            rcpt_deferred=int(out.rcpt_deferred),
            rcpt_not_attempted=int(out.rcpt_not_attempted),
            replies_outstanding=int(out.replies_outstanding),
            groups=int(out.groups),
        )

    def __repr__(self) -> str:
        if self.closed:
            return "<pipeconnect.Session closed>"
        return f"<pipeconnect.Session {self.key}>"

