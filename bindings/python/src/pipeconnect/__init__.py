"""Python binding for libpipeconnect: SMTP early pipelining (PIPECONNECT).

Loads libpipeconnect.so with ctypes (see ``pipeconnect._ffi.library_candidates`` for
where it is looked for; ``PIPECONNECT_LIBRARY`` names a file to use) and wraps its C API:

    >>> import pipeconnect
    >>> with pipeconnect.Cache(ttl=3600) as cache, pipeconnect.Key("192.0.2.1", 25) as key:
    ...     cache.learn(key, ehlo_reply_bytes)
    ...     caps = cache.lookup(key)
"""

from __future__ import annotations

from ._enums import (
    BodyMode,
    CacheAction,
    CommandKind,
    EventFlags,
    Extension,
    ParseFlags,
    Phase,
    PrebannerClass,
    PrebannerReason,
    Reason,
    ReplyContext,
    SharedFlags,
    StoreFlags,
    HoldDownFlags,
    SizeLimit,
    SummaryFlags,
    TlsState,
    TrackerAction,
    TrackerFlags,
    TrackerMode,
    Verdict,
)
from ._errors import (
    BadStateError,
    CorruptRecordError,
    InvalidInputError,
    PanicError,
    PipeconnectError,
    ReplyError,
    Result,
    SessionError,
    StoreError,
)
from ._ffi import (
    LibraryNotFoundError,
    LibraryVersionError,
    __library_version__,
    lib as _lib,
)
from .cache import Cache, CacheStats
from .caps import Capabilities, Limits
from .key import Key
from . import policy
from .policy import Command, Settings, Situation
from .session import Event, Intent, Session, SessionCommand, Summary
from . import server
from .server import Prebanner, PrebannerVerdict
from .tracker import Plan, Step, Tracker

__version__ = "0.2.0"


def library_version() -> str:
    """The loaded library's version, "MAJOR.MINOR.PATCH"."""
    return _lib.version


def library_path() -> str:
    """Where the loaded library was found."""
    return _lib.path


def result_message(code: int) -> str:
    """The library's sentence for result ``code``."""
    from ._ffi import _message

    return _message(code)


__all__ = [
    "__version__",
    "__library_version__",
    "library_version",
    "library_path",
    "result_message",
    "Result",
    "PipeconnectError",
    "InvalidInputError",
    "BadStateError",
    "ReplyError",
    "CorruptRecordError",
    "StoreError",
    "SessionError",
    "PanicError",
    "LibraryNotFoundError",
    "LibraryVersionError",
    "Extension",
    "TlsState",
    "ParseFlags",
    "SharedFlags",
    "StoreFlags",
    "HoldDownFlags",
    "SizeLimit",
    "CommandKind",
    "Phase",
    "Reason",
    "Verdict",
    "CacheAction",
    "ReplyContext",
    "BodyMode",
    "EventFlags",
    "SummaryFlags",
    "Key",
    "Capabilities",
    "Limits",
    "Cache",
    "CacheStats",
    "policy",
    "Command",
    "Situation",
    "Settings",
    "Intent",
    "Session",
    "SessionCommand",
    "Event",
    "Summary",
    "server",
    "Prebanner",
    "PrebannerVerdict",
    "PrebannerClass",
    "PrebannerReason",
    "Tracker",
    "Plan",
    "Step",
    "TrackerFlags",
    "TrackerMode",
    "TrackerAction",
]
