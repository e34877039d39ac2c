"""Result codes and the exceptions that carry them.

Every fallible C function returns a ``pipeconnect_result``: 0 is success, 7001 to 7099
are outcomes that are not errors (a lookup that found nothing), 7100 and up are errors.
The binding turns errors into :class:`PipeconnectError` (or one of its subclasses) that
carries the code and the library's own message for it.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Callable, Dict, List, Optional, Type, Union

__all__ = [
    "Result",
    "PipeconnectError",
    "InvalidInputError",
    "BadStateError",
    "ReplyError",
    "CorruptRecordError",
    "StoreError",
    "SessionError",
    "PanicError",
    "error_for",
]


class Result(IntEnum):
    """Every ``pipeconnect_result`` value (``PIPECONNECT_`` prefix dropped)."""

    OK = 0
    NOT_FOUND = 7001
    NOT_CACHED = 7002
    NOT_CACHED_REMOVED = 7003
    NO_EVENT = 7010
    ERR_NULL_POINTER = 7100
    ERR_INVALID_ARGUMENT = 7101
    ERR_INVALID_ADDRESS = 7102
    ERR_INVALID_EHLO_NAME = 7103
    ERR_NOT_UTF8 = 7104
    ERR_BUFFER_TOO_SMALL = 7105
    ERR_BAD_STATE = 7106
    ERR_MALFORMED_REPLY = 7200
    ERR_REPLY_LINE_TOO_LONG = 7201
    ERR_REPLY_TOO_MANY_LINES = 7202
    ERR_REPLY_TOO_LARGE = 7203
    ERR_REPLY_CODE_MISMATCH = 7204
    ERR_REPLY_INCOMPLETE = 7205
    ERR_NOT_EHLO_REPLY = 7206
    ERR_CORRUPT_RECORD = 7300
    ERR_STORE_IO = 7400
    ERR_STORE_SYMLINK = 7401
    ERR_STORE_NOT_REGULAR = 7402
    ERR_STORE_WRONG_OWNER = 7403
    ERR_STORE_TRUNCATED = 7404
    ERR_STORE_BAD_MAGIC = 7405
    ERR_STORE_VERSION = 7406
    ERR_STORE_GEOMETRY = 7407
    ERR_STORE_CHECKSUM = 7408
    ERR_STORE_PERMISSIONS = 7409
    ERR_STORE_REMOTE_FS = 7410
    ERR_BAD_SEQUENCE = 7500
    ERR_UNEXPECTED_REPLY = 7501
    ERR_CLEARTEXT_AFTER_STARTTLS = 7502
    ERR_INVALID_INTENT = 7503
    ERR_TLS_STATE_MISMATCH = 7504
    ERR_CANNOT_FORMAT = 7505
    ERR_PANIC = 7900

    @property
    def is_error(self) -> bool:
        """Whether this value is an error (not OK and not an outcome)."""
        return _is_error(int(self))

    @property
    def is_outcome(self) -> bool:
        """Whether this value is an outcome that is not an error (7001 to 7099)."""
        return 7000 < int(self) < 7100


def _is_error(code: int) -> bool:
    # The library's rule (pipeconnect_result_is_error), restated so that exceptions can
    # be built without the library loaded.
    return code >= 7100 or (code != 0 and code < 7000)


def _as_result(code: int) -> Union[Result, int]:
    try:
        return Result(code)
    except ValueError:
        # A newer library may return codes this binding does not know: keep the number.
        return code


class PipeconnectError(Exception):
    """An error result from libpipeconnect.

    ``code`` is the :class:`Result` (or the plain number, for a code newer than this
    binding) and ``message`` is the library's sentence for it
    (``pipeconnect_result_message``).
    """

    code: Union[Result, int]
    message: str
    #: From the call's error detail, where the library gave one: the field or argument
    #: at fault, the element's index, the system's errno value.
    field: Optional[str] = None
    index: Optional[int] = None
    os_errno: Optional[int] = None
    #: For :meth:`Session.feed`: the events made before the error (else empty).
    events: List[Any]

    def __init__(self, code: int, message: Optional[str] = None) -> None:
        self.code = _as_result(int(code))
        self.events = []
        if message is None:
            message = _message_lookup(int(code))
        self.message = message
        super().__init__(int(code), message)

    def __str__(self) -> str:
        name = self.code.name if isinstance(self.code, Result) else "unknown code"
        return f"{self.message} ({name}, {int(self.code)})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({int(self.code)!r}, {self.message!r})"


class InvalidInputError(PipeconnectError, ValueError):
    """An argument the library refused: a bad address, port, flag, EHLO name or text, a
    command sequence SMTP does not allow, an unusable intent, or cached information for
    another TLS state."""


class BadStateError(PipeconnectError):
    """A call that does not fit the handle's current state."""


class ReplyError(PipeconnectError, ValueError):
    """Reply bytes that are not a valid SMTP reply (or not a 250 EHLO reply), or too big."""


class CorruptRecordError(PipeconnectError, ValueError):
    """An encoded capability record that does not decode."""


class StoreError(PipeconnectError):
    """The file store refused or could not use its file."""


class SessionError(PipeconnectError):
    """A session (or the policy) refused to go on: an unexpected reply, cleartext after
    STARTTLS, a line it cannot format, and other session-level errors."""


class PanicError(PipeconnectError):
    """A panic inside the library, caught at its C boundary (please report it)."""


_BY_CODE: Dict[int, Type[PipeconnectError]] = {
    Result.ERR_INVALID_ARGUMENT: InvalidInputError,
    Result.ERR_INVALID_ADDRESS: InvalidInputError,
    Result.ERR_INVALID_EHLO_NAME: InvalidInputError,
    Result.ERR_NOT_UTF8: InvalidInputError,
    Result.ERR_BAD_STATE: BadStateError,
    Result.ERR_BAD_SEQUENCE: InvalidInputError,
    Result.ERR_INVALID_INTENT: InvalidInputError,
    Result.ERR_TLS_STATE_MISMATCH: InvalidInputError,
    Result.ERR_PANIC: PanicError,
}

# Code ranges (inclusive start, exclusive end) for codes not listed above, so that codes
# added by a newer library still land in the right family.
_BY_RANGE = (
    (7200, 7300, ReplyError),
    (7300, 7400, CorruptRecordError),
    (7400, 7500, StoreError),
    (7500, 7600, SessionError),
    (7900, 8000, PanicError),
)


def _default_message(code: int) -> str:
    return "unknown result"


# Replaced by the library's pipeconnect_result_message once the library is loaded.
_message_lookup: Callable[[int], str] = _default_message


def _set_message_lookup(fn: Callable[[int], str]) -> None:
    global _message_lookup
    _message_lookup = fn


def error_for(code: int, message: Optional[str] = None) -> PipeconnectError:
    """The exception for result ``code``, of the subclass that fits it (with the
    library's sentence for the code, or ``message``)."""
    cls = _BY_CODE.get(int(code))
    if cls is None:
        cls = PipeconnectError
        for start, end, family in _BY_RANGE:
            if start <= int(code) < end:
                cls = family
                break
    return cls(int(code), message)
