"""The policy level: the rules of early pipelining over plain data (pure functions).

:func:`early_flight` says how much of a command sequence may be written before any
reply, :func:`outcome` what a reply means, :func:`check_ehlo` how the real EHLO reply
compares with the cached one. All are thread-safe and keep no state.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

from . import _ffi
from ._enums import (
    CacheAction,
    CommandFlags,
    CommandKind,
    EventFlags,
    Extension,
    Phase,
    Reason,
    ReplyContext,
    SettingsFlags,
    SituationFlags,
    Verdict,
)
from ._handle import as_cstr, as_uint, check, check_detail
from .cache import Cache
from .caps import Capabilities
from .key import Key

__all__ = [
    "Command",
    "Situation",
    "Settings",
    "Flight",
    "Outcome",
    "EhloCheck",
    "early_flight",
    "early_flight_cached",
    "used_extensions",
    "outcome",
    "check_ehlo",
    "reason_name",
    "verdict_name",
    "command_name",
]

_lib = _ffi.lib


@dataclass(frozen=True)
class Command:
    """One command of an intended sequence (``pipeconnect_command``).

    One element per command: three recipients are three ``Command.rcpt()``.
    """

    kind: CommandKind
    #: MAIL: the declared message size (0: none declared). BDAT_LAST: the body size.
    size: int = 0
    #: AUTH: the SASL mechanism.
    mechanism: Optional[str] = None
    #: AUTH: whether the line carries the initial response.
    initial_response: bool = False

    @classmethod
    def ehlo(cls) -> "Command":
        return cls(CommandKind.EHLO)

    @classmethod
    def starttls(cls) -> "Command":
        return cls(CommandKind.STARTTLS)

    @classmethod
    def auth(cls, mechanism: str, initial_response: bool = False) -> "Command":
        return cls(CommandKind.AUTH, mechanism=mechanism, initial_response=initial_response)

    @classmethod
    def mail(cls, size: int = 0) -> "Command":
        return cls(CommandKind.MAIL, size=size)

    @classmethod
    def rcpt(cls) -> "Command":
        return cls(CommandKind.RCPT)

    @classmethod
    def data(cls) -> "Command":
        return cls(CommandKind.DATA)

    @classmethod
    def bdat_last(cls, size: int) -> "Command":
        return cls(CommandKind.BDAT_LAST, size=size)


@dataclass(frozen=True)
class Situation:
    """Where the connection stands (``pipeconnect_situation``)."""

    phase: Phase = Phase.CLEARTEXT
    #: This connection's cleartext phase used an early flight (needed after STARTTLS).
    cleartext_early_used: bool = False
    #: The EHLO name is known before connecting (without it nothing goes early).
    ehlo_name_known: bool = True
    #: An EHLO reply earlier on this connection dropped PIPECONNECT.
    early_withdrawn: bool = False

    def _c(self) -> _ffi.pipeconnect_situation:
        flags = SituationFlags.NONE
        if self.cleartext_early_used:
            flags |= SituationFlags.CLEARTEXT_EARLY_USED
        if self.ehlo_name_known:
            flags |= SituationFlags.EHLO_NAME_KNOWN
        if self.early_withdrawn:
            flags |= SituationFlags.EARLY_WITHDRAWN
        return _ffi.pipeconnect_situation(as_uint(int(self.phase), 32, "phase"), int(flags))


@dataclass(frozen=True)
class Settings:
    """The caller's settings (``pipeconnect_settings``).

    As in C, early pipelining is off unless ``early_allowed`` (like Exim's
    ``hosts_pipe_connect``); invalidation is strict unless ``relaxed``.
    """

    #: Early pipelining may be used with this host.
    early_allowed: bool = False
    #: Read the legacy keywords PIPE_CONNECT and X_PIPE_CONNECT as PIPECONNECT.
    legacy_keywords: bool = False
    #: draft-harris-early-pipe-01 (Exim) invalidation instead of the strict rule.
    relaxed: bool = False
    #: The largest body sent with BDAT LAST before any recipient was accepted (0: 64 KiB).
    max_first_flight_body: int = 0

    @property
    def flags(self) -> SettingsFlags:
        f = SettingsFlags.NONE
        if self.early_allowed:
            f |= SettingsFlags.EARLY_ALLOWED
        if self.legacy_keywords:
            f |= SettingsFlags.LEGACY_KEYWORDS
        if self.relaxed:
            f |= SettingsFlags.RELAXED
        return f

    def _c(self) -> _ffi.pipeconnect_settings:
        return _ffi.pipeconnect_settings(
            int(self.flags), as_uint(self.max_first_flight_body, 64, "max_first_flight_body")
        )


#: Settings with early pipelining allowed (the default where asking only makes sense then).
EARLY_ALLOWED = Settings(early_allowed=True)
_NO_EXTENSIONS = Extension(0)


class Flight(NamedTuple):
    """How many commands may go early, and why the flight stops there."""

    allowed: int
    reason: Union[Reason, int]

    @property
    def classic(self) -> bool:
        """No early flight: wait for the banner (after STARTTLS, for the EHLO reply)."""
        return self.allowed == 0


@dataclass(frozen=True)
class Outcome:
    """What a reply means (``pipeconnect_outcome``)."""

    cache: Union[CacheAction, int]
    verdict: Union[Verdict, int]
    flags: EventFlags


@dataclass(frozen=True)
class EhloCheck:
    """The real EHLO reply against the cached one (``pipeconnect_ehlo_check``)."""

    cache: Union[CacheAction, int]
    flags: EventFlags
    #: Extensions whose facts differ.
    changed: Extension
    #: ``changed`` restricted to those the early flight used.
    used_changed: Extension

    @property
    def early_stopped(self) -> bool:
        """Nothing more may go early on this connection."""
        return bool(self.flags & EventFlags.EARLY_STOPPED)


def _enum(cls: type, value: int) -> int:
    # Values newer than this binding are kept as plain numbers.
    try:
        return cls(value)  # type: ignore[no-any-return]
    except ValueError:
        return value


def _commands(
    cmds: Sequence[Command],
) -> Tuple["ctypes.Array[_ffi.pipeconnect_command]", List[bytes]]:
    """The C array for ``cmds``, and the encoded strings it points to (keep them alive)."""
    keep: List[bytes] = []
    arr = _ffi.sized_array(_ffi.pipeconnect_command, len(cmds))
    for i, c in enumerate(cmds):
        if not isinstance(c, Command):
            raise TypeError(f"commands must be Command, not {type(c).__name__}")
        mech = None
        if c.mechanism is not None:
            mech = as_cstr(c.mechanism, "mechanism")
            keep.append(mech)
        flags = CommandFlags.INITIAL_RESPONSE if c.initial_response else CommandFlags.NONE
        arr[i].kind = as_uint(int(c.kind), 32, "kind")
        arr[i].flags = int(flags)
        arr[i].size = as_uint(c.size, 64, "size")
        arr[i].mechanism = mech
    return arr, keep


def _caps_ptr(caps: Optional[Capabilities]) -> object:
    return _ffi.CAPS_P() if caps is None else caps._handle()


def early_flight(
    cached: Optional[Capabilities],
    commands: Sequence[Command],
    situation: Situation = Situation(),  # noqa: B008 (frozen)
    settings: Settings = EARLY_ALLOWED,
) -> Flight:
    """How many of ``commands`` may be written before reading any reply.

    ``cached`` is what the cache holds for the server in the connection's TLS state (or
    None). The sequence must start with EHLO and keep SMTP's order, else
    :class:`InvalidInputError` (``ERR_BAD_SEQUENCE``). ``settings`` defaults to early
    pipelining allowed, since asking only makes sense then.
    """
    arr, _keep = _commands(commands)
    sit, st = situation._c(), settings._c()
    allowed, reason = ctypes.c_size_t(0), ctypes.c_uint32(0)
    detail = _ffi.pipeconnect_error_detail()
    check_detail(
        _lib.pipeconnect_policy_early_flight(
            _caps_ptr(cached),
            ctypes.byref(sit),
            ctypes.byref(st),
            arr,
            len(commands),
            ctypes.byref(allowed),
            ctypes.byref(reason),
            ctypes.byref(detail),
        ),
        detail,
    )
    return Flight(int(allowed.value), _enum(Reason, reason.value))


def early_flight_cached(
    cache: Cache,
    key: Key,
    commands: Sequence[Command],
    situation: Situation = Situation(),  # noqa: B008 (frozen)
    settings: Settings = EARLY_ALLOWED,
) -> Flight:
    """As :func:`early_flight`, looking ``key`` up in ``cache``.

    ``key``'s TLS state must be the connection's (cleartext for ``Phase.CLEARTEXT``,
    encrypted otherwise), else :class:`InvalidInputError` (``ERR_TLS_STATE_MISMATCH``).
    """
    arr, _keep = _commands(commands)
    sit, st = situation._c(), settings._c()
    allowed, reason = ctypes.c_size_t(0), ctypes.c_uint32(0)
    detail = _ffi.pipeconnect_error_detail()
    check_detail(
        _lib.pipeconnect_policy_early_flight_cached(
            cache._handle(),
            key._handle(),
            ctypes.byref(sit),
            ctypes.byref(st),
            arr,
            len(commands),
            ctypes.byref(allowed),
            ctypes.byref(reason),
            ctypes.byref(detail),
        ),
        detail,
    )
    return Flight(int(allowed.value), _enum(Reason, reason.value))


def used_extensions(commands: Sequence[Command]) -> Extension:
    """The extensions an early flight made of ``commands`` relied on."""
    arr, _keep = _commands(commands)
    out = _ffi.EXT(0)
    check(_lib.pipeconnect_policy_used_extensions(arr, len(commands), ctypes.byref(out)))
    return Extension(out.value)


def outcome(
    answered: Union[CommandKind, int],
    code: int,
    context: Union[ReplyContext, int] = ReplyContext.NONE,
    settings: Settings = Settings(),  # noqa: B008 (frozen, so sharing it is safe)
) -> Outcome:
    """What reply ``code`` (100 to 599) to ``answered`` means, in ``context``.

    Only ``settings.relaxed`` is read. A 250 to EHLO is CONTINUE and NOTHING here:
    compare what it advertised with :func:`check_ehlo`.
    """
    st = settings._c()
    out = _ffi.pipeconnect_outcome()
    check(
        _lib.pipeconnect_policy_outcome(
            as_uint(int(answered), 32, "answered"),
            as_uint(code, 32, "code"),
            as_uint(int(context), 32, "context"),
            ctypes.byref(st),
            ctypes.byref(out),
        )
    )
    return Outcome(
        _enum(CacheAction, out.cache), _enum(Verdict, out.verdict), EventFlags(out.flags)
    )


def check_ehlo(
    cached: Optional[Capabilities],
    fresh: Capabilities,
    used: Union[Extension, int] = _NO_EXTENSIONS,
) -> EhloCheck:
    """Compare the real EHLO reply ``fresh`` with ``cached`` (None if nothing was cached),
    given the extensions ``used`` by the early flight (:func:`used_extensions`)."""
    out = _ffi.pipeconnect_ehlo_check()
    check(
        _lib.pipeconnect_policy_check_ehlo(
            _caps_ptr(cached), fresh._handle(), as_uint(int(used), 32, "used"), ctypes.byref(out)
        )
    )
    return EhloCheck(
        _enum(CacheAction, out.cache),
        EventFlags(out.flags),
        Extension(out.changed),
        Extension(out.used_changed),
    )


def _name(raw: Optional[bytes]) -> str:
    return (raw or b"UNKNOWN").decode("ascii", "replace")


def reason_name(reason: Union[Reason, int]) -> str:
    """The library's name for a stop reason ("NO_ENTRY", ...; "UNKNOWN" if unknown)."""
    return _name(_lib.pipeconnect_reason_name(as_uint(int(reason), 32, "reason")))


def verdict_name(verdict: Union[Verdict, int]) -> str:
    """The library's name for a verdict ("CONTINUE", "RECONNECT", ...)."""
    return _name(_lib.pipeconnect_verdict_name(as_uint(int(verdict), 32, "verdict")))


def command_name(kind: Union[CommandKind, int]) -> str:
    """The library's name for a command kind ("BANNER", "EHLO", ..., "BODY")."""
    return _name(_lib.pipeconnect_command_name(as_uint(int(kind), 32, "kind")))
