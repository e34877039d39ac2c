"""The C API's flag and enum constants as Python enums.

``HEADER_CONSTANTS`` maps each ``#define`` prefix of include/pipeconnect.h to the enum
that holds its values; a test compares every such constant in the header with these
enums, so a constant added to the C API without a Python counterpart is noticed.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag
from typing import Dict, Type, Union

from ._errors import Result

__all__ = [
    "Extension",
    "TlsState",
    "ParseFlags",
    "StoreFlags",
    "SharedFlags",
    "CommandKind",
    "CommandFlags",
    "Phase",
    "SituationFlags",
    "SettingsFlags",
    "Reason",
    "Verdict",
    "CacheAction",
    "ReplyContext",
    "IntentFlags",
    "BodyMode",
    "SessionCommandFlags",
    "EventFlags",
    "SummaryFlags",
    "PrebannerClass",
    "PrebannerReason",
    "PrebannerOptionFlags",
    "PrebannerVerdictFlags",
    "QhloSize",
    "TrackerFlags",
    "TrackerMode",
    "TrackerAction",
]


class Extension(IntFlag):
    """Extension bits (``PIPECONNECT_EXT_*``), as in :attr:`Capabilities.flags`."""

    PIPELINING = 1 << 0
    PIPECONNECT = 1 << 1
    STARTTLS = 1 << 2
    CHUNKING = 1 << 3
    BINARYMIME = 1 << 4
    EIGHTBITMIME = 1 << 5
    SMTPUTF8 = 1 << 6
    DSN = 1 << 7
    SIZE = 1 << 8
    ENHANCEDSTATUSCODES = 1 << 9
    PRDR = 1 << 10
    REQUIRETLS = 1 << 11
    LIMITS = 1 << 12
    AUTH = 1 << 13


class TlsState(IntEnum):
    """The TLS state a connection is in (``PIPECONNECT_TLS_*``)."""

    CLEARTEXT = 0
    ENCRYPTED = 1


class ParseFlags(IntFlag):
    """Options for reading an EHLO reply (``PIPECONNECT_PARSE_*``)."""

    NONE = 0
    LEGACY_KEYWORDS = 1


class StoreFlags(IntFlag):
    """Flags of the file store's options (``PIPECONNECT_STORE_*``)."""

    NONE = 0
    REBUILD_IF_INVALID = 1 << 0
    ALLOW_REMOTE_FS = 1 << 1
    SET_OWNER = 1 << 2
    GROUP_MODE = 1 << 3


class SharedFlags(IntFlag):
    """Flags of the shared tier's options (``PIPECONNECT_SHARED_*``)."""

    NONE = 0
    ACROSS_LOCAL_ADDRESSES = 1 << 0


class HoldDownFlags(IntFlag):
    """Flags of the hold-down settings (``PIPECONNECT_HOLD_DOWN_*``)."""

    NONE = 0
    OFF = 1 << 0


class Limit(IntEnum):
    """One RFC 9422 LIMITS value (``PIPECONNECT_LIMIT_*``)."""

    MAILMAX = 1
    RCPTMAX = 2
    RCPTDOMAINMAX = 3


class CommandKind(IntEnum):
    """A command, or the reply it gets (``PIPECONNECT_CMD_*``)."""

    BANNER = 0
    EHLO = 1
    STARTTLS = 2
    AUTH = 3
    MAIL = 4
    RCPT = 5
    DATA = 6
    BDAT_LAST = 7
    BODY = 8
    QUIT = 9


class CommandFlags(IntFlag):
    """Flags of one policy command (``PIPECONNECT_COMMAND_*``)."""

    NONE = 0
    INITIAL_RESPONSE = 1


class Phase(IntEnum):
    """Where a connection stands (``PIPECONNECT_PHASE_*``)."""

    CLEARTEXT = 0
    AFTER_STARTTLS = 1
    TLS_ON_CONNECT = 2


class SituationFlags(IntFlag):
    """Flags of a connection's situation (``PIPECONNECT_SITUATION_*``)."""

    NONE = 0
    CLEARTEXT_EARLY_USED = 1
    EHLO_NAME_KNOWN = 2
    EARLY_WITHDRAWN = 4


class SettingsFlags(IntFlag):
    """The caller's settings (``PIPECONNECT_SETTINGS_*``)."""

    NONE = 0
    EARLY_ALLOWED = 1
    LEGACY_KEYWORDS = 2
    RELAXED = 4


class Reason(IntEnum):
    """Why an early flight stops (``PIPECONNECT_REASON_*``)."""

    END_OF_SEQUENCE = 0
    NOT_ALLOWED = 1
    EHLO_NAME_UNKNOWN = 2
    ENCRYPTED_WITHOUT_CLEARTEXT_EARLY = 3
    NO_ENTRY = 4
    NO_PIPECONNECT = 5
    NO_PIPELINING = 6
    PIPECONNECT_WITHDRAWN = 7
    STARTTLS_ENDS_FLIGHT = 8
    STARTTLS_NOT_OFFERED = 9
    AUTH_ENDS_FLIGHT = 10
    AUTH_NOT_OFFERED = 11
    DATA_ENDS_FLIGHT = 12
    NO_CHUNKING = 13
    RCPTMAX_REACHED = 14
    MAILMAX_REACHED = 15
    SIZE_EXCEEDED = 16
    BODY_TOO_LARGE_FOR_ONE_FLIGHT = 17
    HELD_DOWN = 18
    EXTENSION_MISSING = 19

    @property
    def is_classic(self) -> bool:
        """Whether this reason means no early flight at all (values 1 to 7, 18 and 19)."""
        return 1 <= int(self) <= 7 or int(self) in (18, 19)


class Verdict(IntEnum):
    """What to do about a reply (``PIPECONNECT_VERDICT_*``)."""

    CONTINUE = 0
    REJECTED = 1
    TEMPFAIL = 2
    RECONNECT = 3
    HOST_ERROR = 4


class CacheAction(IntEnum):
    """What the cache must do (``PIPECONNECT_CACHE_*``)."""

    NOTHING = 0
    INVALIDATE = 1
    STORE = 2


class ReplyContext(IntFlag):
    """The context of a reply, for :func:`pipeconnect.policy.outcome`
    (``PIPECONNECT_CONTEXT_*``)."""

    NONE = 0
    EARLY_USED = 1
    AUTH_REQUIRED = 2
    COMMANDS_AFTER_AUTH = 4
    BODY_SENT = 8


class IntentFlags(IntFlag):
    """Flags of a session's intent (``PIPECONNECT_INTENT_*``)."""

    NONE = 0
    STARTTLS = 1
    AUTH = 2
    AUTH_INITIAL_RESPONSE = 4
    AUTH_OPTIONAL = 8


class BodyMode(IntEnum):
    """How the body goes (``PIPECONNECT_BODY_*``)."""

    AUTO = 0
    DATA = 1


class SessionCommandFlags(IntFlag):
    """Flags of a command a session hands out (``PIPECONNECT_SESSION_COMMAND_*``)."""

    NONE = 0
    EARLY = 1


class EventFlags(IntFlag):
    """Flags of a session event, an outcome or an EHLO check (``PIPECONNECT_EVENT_*``)."""

    NONE = 0
    CACHE_INVALIDATED = 1
    CACHE_STORED = 2
    EARLY_STOPPED = 4
    CONNECTION_DONE = 8
    FOLLOWS_FAILURE = 16
    AUTH_CHALLENGE = 32
    EARLY = 64
    MESSAGE_ACCEPTED = 128
    OUT_OF_STEP = 256
    TEXT_TRUNCATED = 512
    RAW_TRUNCATED = 1024


class SummaryFlags(IntFlag):
    """Flags of a session's summary (``PIPECONNECT_SUMMARY_*``)."""

    NONE = 0
    MESSAGE_ACCEPTED = 1
    CLEARTEXT_EARLY = 2
    ENCRYPTED_EARLY = 4
    CACHE_INVALIDATED = 8
    CACHE_STORED = 16
    EARLY_STOPPED = 32
    FAILED = 64


class DetailFlags(IntFlag):
    """``PIPECONNECT_DETAIL_*``: flags of a ``pipeconnect_error_detail``."""

    NONE = 0
    HAS_INDEX = 1



class PrebannerClass(IntEnum):
    """What a server should do with input found before its banner
    (``PIPECONNECT_PREBANNER_CLASS_*``)."""

    NOTHING = 0
    EARLY_FLIGHT = 1
    BANNER_FIRST = 2
    PREGREET = 3


class PrebannerReason(IntEnum):
    """Why pre-banner input got its class (``PIPECONNECT_PREBANNER_REASON_*``)."""

    NONE = 0
    NOT_OFFERED = 1
    HELO_FIRST = 2
    COMMAND_FIRST = 3
    NOT_SMTP = 4
    BAD_SYNTAX = 5
    OUT_OF_ORDER = 6
    LINE_TOO_LONG = 7
    BODY_BEFORE_REPLY = 8
    AFTER_STARTTLS = 9
    AFTER_AUTH_CHALLENGE = 10
    AFTER_QUIT = 11
    NOT_EARLY_COMMAND = 12
    BODY_TOO_LARGE = 13
    TOO_MANY_COMMANDS = 14
    TOO_MUCH_INPUT = 15


class PrebannerOptionFlags(IntFlag):
    """Flags of the pre-banner classifier's options (``PIPECONNECT_PREBANNER_OPTION_*``)."""

    NONE = 0
    OFFERED = 1
    QUICKSTART = 2


class QhloSize(IntEnum):
    """Sizes of the QUICKSTART QHLO cookie and its secret (``PIPECONNECT_QHLO_*``)."""

    COOKIE_LEN = 32
    SECRET_LEN = 32
    COOKIE_MAX = 128


class PrebannerVerdictFlags(IntFlag):
    """Flags of a pre-banner verdict (``PIPECONNECT_PREBANNER_VERDICT_*``)."""

    NONE = 0
    INCOMPLETE = 1
    DECIDED = 2

class TrackerFlags(IntFlag):
    """Flags of a tracker request (``PIPECONNECT_TRACKER_*``)."""

    NONE = 0
    EARLY_ALLOWED = 1
    LEGACY_KEYWORDS = 2
    RELAXED = 4
    CLEARTEXT_EARLY_USED = 8
    STARTTLS_IF_OFFERED = 16
    STARTTLS_REQUIRED = 32


class TrackerMode(IntEnum):
    """How a tracked connection goes (``PIPECONNECT_TRACKER_MODE_*``)."""

    CLASSIC = 0
    TRANSACTION = 1
    STARTTLS = 2
    EHLO = 3


class TrackerAction(IntEnum):
    """What to do after a reply (``PIPECONNECT_TRACKER_ACTION_*``)."""

    PROCEED = 0
    RECONNECT = 1
    DEFER = 2


class SizeLimit(IntEnum):
    """The header's size limits (``PIPECONNECT_`` prefix dropped)."""

    #: Bytes that always hold ``pipeconnect_key_to_string()``'s text and its NUL.
    KEY_STRING_MAX = 362
    #: The largest capacity of an in-process cache.
    CACHE_CAPACITY_MAX = 16777216
    #: The largest ``struct_size`` the library accepts.
    STRUCT_SIZE_MAX = 4096
    #: The longest shared secret of the shared tier, in bytes.
    SHARED_SECRET_MAX = 1024


#: Whole ``#define`` names in the header -> their Python member (checked before the
#: prefixes below).
HEADER_LIMITS: Dict[str, "SizeLimit"] = {
    "PIPECONNECT_KEY_STRING_MAX": SizeLimit.KEY_STRING_MAX,
    "PIPECONNECT_CACHE_CAPACITY_MAX": SizeLimit.CACHE_CAPACITY_MAX,
    "PIPECONNECT_STRUCT_SIZE_MAX": SizeLimit.STRUCT_SIZE_MAX,
    "PIPECONNECT_SHARED_SECRET_MAX": SizeLimit.SHARED_SECRET_MAX,
}


#: C spelling of a member name, where Python needs another (identifiers cannot start
#: with a digit).
C_NAMES: Dict[str, str] = {"EIGHTBITMIME": "8BITMIME"}

#: ``#define`` prefix in the header -> the enum holding those constants.
HEADER_CONSTANTS: Dict[str, Type[Union[IntEnum, IntFlag]]] = {
    "PIPECONNECT_EXT_": Extension,
    "PIPECONNECT_TLS_": TlsState,
    "PIPECONNECT_PARSE_": ParseFlags,
    "PIPECONNECT_STORE_": StoreFlags,
    "PIPECONNECT_LIMIT_": Limit,
    "PIPECONNECT_HOLD_DOWN_": HoldDownFlags,
    "PIPECONNECT_SHARED_": SharedFlags,
    "PIPECONNECT_CMD_": CommandKind,
    "PIPECONNECT_COMMAND_": CommandFlags,
    "PIPECONNECT_PHASE_": Phase,
    "PIPECONNECT_SITUATION_": SituationFlags,
    "PIPECONNECT_SETTINGS_": SettingsFlags,
    "PIPECONNECT_REASON_": Reason,
    "PIPECONNECT_VERDICT_": Verdict,
    "PIPECONNECT_CACHE_": CacheAction,
    "PIPECONNECT_CONTEXT_": ReplyContext,
    "PIPECONNECT_INTENT_": IntentFlags,
    "PIPECONNECT_BODY_": BodyMode,
    "PIPECONNECT_SESSION_COMMAND_": SessionCommandFlags,
    "PIPECONNECT_EVENT_": EventFlags,
    "PIPECONNECT_SUMMARY_": SummaryFlags,
    "PIPECONNECT_DETAIL_": DetailFlags,
    "PIPECONNECT_PREBANNER_CLASS_": PrebannerClass,
    "PIPECONNECT_PREBANNER_REASON_": PrebannerReason,
    "PIPECONNECT_PREBANNER_OPTION_": PrebannerOptionFlags,
    "PIPECONNECT_PREBANNER_VERDICT_": PrebannerVerdictFlags,
    "PIPECONNECT_QHLO_": QhloSize,
    "PIPECONNECT_TRACKER_": TrackerFlags,
    "PIPECONNECT_TRACKER_MODE_": TrackerMode,
    "PIPECONNECT_TRACKER_ACTION_": TrackerAction,
}

#: C enum name in the header -> the Python enum with its members (``PIPECONNECT_``
#: prefix dropped).
HEADER_ENUMS: Dict[str, Type[IntEnum]] = {
    "pipeconnect_result": Result,
}
