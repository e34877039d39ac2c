"""The ctypes layer: C types, the table of bound functions, and loading the library.

Nothing here has behaviour of its own beyond finding and checking the library; the
Pythonic classes live in the other modules. To bind a new C function, add one line to
``FUNCTIONS`` (and its opaque or struct types above it); the header test fails until
every ``pipeconnect_*`` function of include/pipeconnect.h has a line here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import warnings
from ctypes import (
    POINTER,
    Structure,
    c_bool,
    c_char,
    c_char_p,
    c_int,
    c_size_t,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
)
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import _errors

__all__ = [
    "__library_version__",
    "LibraryNotFoundError",
    "LibraryVersionError",
    "FUNCTIONS",
    "STRUCTS",
    "lib",
]

#: The library version this binding was written for.
__library_version__ = "0.2.0"
#: The oldest library version this binding works with (same major required, and while
#: the major is 0 the same minor: every 0.MINOR release may change the C interface).
MIN_LIBRARY_VERSION = "0.2.0"

#: Environment variable naming the library file to load (a path).
ENV_LIBRARY = "PIPECONNECT_LIBRARY"


class LibraryNotFoundError(ImportError):
    """libpipeconnect could not be found or loaded; the message lists what was tried."""


class LibraryVersionError(ImportError):
    """The loaded libpipeconnect does not fit this binding; the message says both versions."""


# --- C types ---------------------------------------------------------------------------

RESULT = c_int  # enum pipeconnect_result
PARSE_FLAGS = c_uint32  # pipeconnect_parse_flags
EXT = c_uint32  # pipeconnect_ext
TLS_STATE = c_uint32  # pipeconnect_tls_state
STORE_FLAGS = c_uint32  # pipeconnect_store_flags
U32 = c_uint32  # the policy's and session's kind, flag, reason and verdict typedefs


class pipeconnect_cache(Structure):
    """Opaque: the capability cache."""


class pipeconnect_caps(Structure):
    """Opaque: one EHLO reply's capabilities."""


class pipeconnect_key(Structure):
    """Opaque: a cache key."""


class pipeconnect_session(Structure):
    """Opaque: one connection's bookkeeping."""


class pipeconnect_prebanner(Structure):
    """Opaque: one connection's pre-banner input classifier."""


class pipeconnect_tracker(Structure):
    """Opaque: one connection tracked for an MTA that does its own I/O."""


CACHE_P = POINTER(pipeconnect_cache)
PREBANNER_P = POINTER(pipeconnect_prebanner)
TRACKER_P = POINTER(pipeconnect_tracker)
SESSION_P = POINTER(pipeconnect_session)
CAPS_P = POINTER(pipeconnect_caps)
KEY_P = POINTER(pipeconnect_key)


class _Sized(Structure):
    """A struct that starts with ``size_t struct_size``. Made from Python, it is set to the
    struct's own size (what C does with ``sizeof``); positional arguments fill the fields
    after it. Elements of a ctypes array are not made this way: set their
    ``struct_size`` by hand (see :func:`sized_array`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(0, *args, **kwargs)
        self.struct_size = ctypes.sizeof(self)


def sized_array(cls: Any, n: int) -> Any:
    """A zeroed ctypes array of ``n`` (at least 1) ``cls`` structs, every element's
    ``struct_size`` set (the library takes the first one's as the stride)."""
    arr = (cls * max(n, 1))()
    for i in range(len(arr)):
        arr[i].struct_size = ctypes.sizeof(cls)
    return arr


class pipeconnect_cache_stats(_Sized):
    """``struct pipeconnect_cache_stats``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("entries", c_uint64),
        ("hits", c_uint64),
        ("misses", c_uint64),
        ("inserts", c_uint64),
        ("evictions", c_uint64),
        ("expirations", c_uint64),
        ("invalidations", c_uint64),
        ("hold_downs_entered", c_uint64),
        ("early_skipped_held_down", c_uint64),
        ("hold_downs_current", c_uint64),
        ("writes_abandoned", c_uint64),
        ("shared_hits", c_uint64),
        ("shared_misses", c_uint64),
        ("shared_errors", c_uint64),
        ("shared_timeouts", c_uint64),
        ("shared_skipped_open", c_uint64),
        ("shared_rejected", c_uint64),
    ]


class pipeconnect_shared_options(_Sized):
    """``struct pipeconnect_shared_options``: how the shared tier on Redis behaves."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("flags", c_uint32),
        ("deadline_ms", c_uint32),
        ("backoff_ms", c_uint32),
        ("reserved", c_uint32),
        ("local_ttl_cap_seconds", c_uint64),
        ("key_prefix", c_char_p),
        ("secret", POINTER(c_uint8)),
        ("secret_len", c_size_t),
    ]


class pipeconnect_hold_down(_Sized):
    """``struct pipeconnect_hold_down``: how long hold-downs last."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("first_seconds", c_uint64),
        ("max_seconds", c_uint64),
        ("remember_seconds", c_uint64),
        ("growth", c_uint32),
        ("decay_after", c_uint32),
        ("flags", c_uint32),
        ("reserved", c_uint32),
    ]


class pipeconnect_limits(_Sized):
    """``struct pipeconnect_limits``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("mail_max", c_uint32),
        ("rcpt_max", c_uint32),
        ("rcpt_domain_max", c_uint32),
    ]


class pipeconnect_store_options(_Sized):
    """``struct pipeconnect_store_options``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("sets", c_uint32),
        ("ways", c_uint32),
        ("ttl_seconds", c_uint64),
        ("mode", c_uint32),
        ("flags", STORE_FLAGS),
        ("owner_uid", c_uint32),
        ("owner_gid", c_uint32),
        ("group_gid", c_uint32),
        ("reserved", c_uint32),
    ]


class pipeconnect_command(_Sized):
    """``struct pipeconnect_command``: one command of an intended sequence."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("kind", U32),
        ("flags", U32),
        ("size", c_uint64),
        ("mechanism", c_char_p),
    ]


class pipeconnect_situation(_Sized):
    """``struct pipeconnect_situation``."""

    _fields_ = [("struct_size", c_size_t), ("phase", U32), ("flags", U32)]


class pipeconnect_settings(_Sized):
    """``struct pipeconnect_settings``."""

    _fields_ = [("struct_size", c_size_t), ("flags", U32), ("max_first_flight_body", c_uint64)]


class pipeconnect_outcome(_Sized):
    """``struct pipeconnect_outcome``."""

    _fields_ = [("struct_size", c_size_t), ("cache", U32), ("verdict", U32), ("flags", c_uint32)]


class pipeconnect_ehlo_check(_Sized):
    """``struct pipeconnect_ehlo_check``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("cache", U32),
        ("flags", c_uint32),
        ("changed", EXT),
        ("used_changed", EXT),
    ]


class pipeconnect_intent(_Sized):
    """``struct pipeconnect_intent``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("ehlo_name", c_char_p),
        ("flags", U32),
        ("body_mode", U32),
        ("auth_mechanism", c_char_p),
        ("mail_from", c_char_p),
        ("rcpts", POINTER(c_char_p)),
        ("rcpt_count", c_size_t),
        ("body_size", c_uint64),
    ]


class pipeconnect_session_command(_Sized):
    """``struct pipeconnect_session_command``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("seq", c_size_t),
        ("kind", U32),
        ("flags", U32),
        ("rcpt_index", c_size_t),
        ("size", c_uint64),
    ]


class pipeconnect_event(_Sized):
    """``struct pipeconnect_event``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("seq", c_size_t),
        ("kind", U32),
        ("verdict", U32),
        ("flags", U32),
        ("code", c_uint32),
        ("rcpt_index", c_size_t),
        ("enhanced_class", c_uint32),
        ("enhanced_subject", c_uint32),
        ("enhanced_detail", c_uint32),
        ("changed_extensions", EXT),
        ("text", POINTER(c_uint8)),
        ("text_len", c_size_t),
        ("raw", POINTER(c_uint8)),
        ("raw_len", c_size_t),
    ]


class pipeconnect_summary(_Sized):
    """``struct pipeconnect_summary``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("verdict", U32),
        ("flags", U32),
        ("rcpt_accepted", c_size_t),
        ("rcpt_rejected", c_size_t),
        ("rcpt_deferred", c_size_t),
        ("rcpt_not_attempted", c_size_t),
        ("replies_outstanding", c_size_t),
        ("groups", c_size_t),
    ]


class pipeconnect_error_detail(_Sized):
    """``struct pipeconnect_error_detail``: why a call failed."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("result", c_int),
        ("os_errno", c_int),
        ("index", c_size_t),
        ("flags", c_uint32),
        ("field", c_char * 64),
        ("message", c_char * 256),
    ]


class pipeconnect_prebanner_options(_Sized):
    """``struct pipeconnect_prebanner_options``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("flags", U32),
        ("max_commands", c_uint32),
        ("max_bytes", c_uint64),
        ("max_body", c_uint64),
    ]


class pipeconnect_prebanner_verdict(_Sized):
    """``struct pipeconnect_prebanner_verdict``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("class_", U32),
        ("reason", U32),
        ("commands", c_uint32),
        ("flags", U32),
        ("bytes", c_uint64),
    ]


class pipeconnect_tracker_request(_Sized):
    """``struct pipeconnect_tracker_request``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("server", c_char_p),
        ("port", c_uint16),
        ("phase", U32),
        ("flags", U32),
        ("rcpt_count", c_uint32),
        ("message_size", c_uint64),
        ("relies_on", EXT),
        ("required", EXT),
        ("ignored_keywords", c_char_p),
        ("local", c_char_p),
        ("ehlo_name", c_char_p),
    ]


class pipeconnect_tracker_plan(_Sized):
    """``struct pipeconnect_tracker_plan``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("mode", U32),
        ("reason", U32),
        ("command_count", c_size_t),
        ("extensions", EXT),
        ("size_limit", c_uint64),
    ]


class pipeconnect_tracker_step(_Sized):
    """``struct pipeconnect_tracker_step``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("action", U32),
        ("verdict", U32),
        ("flags", U32),
        ("extensions", EXT),
        ("size_limit", c_uint64),
    ]


#: C struct name -> ctypes layout; a test compiles a C program against the header to
#: compare sizes and field offsets with these.
STRUCTS: Dict[str, Any] = {
    "pipeconnect_cache_stats": pipeconnect_cache_stats,
    "pipeconnect_hold_down": pipeconnect_hold_down,
    "pipeconnect_shared_options": pipeconnect_shared_options,
    "pipeconnect_limits": pipeconnect_limits,
    "pipeconnect_store_options": pipeconnect_store_options,
    "pipeconnect_command": pipeconnect_command,
    "pipeconnect_situation": pipeconnect_situation,
    "pipeconnect_settings": pipeconnect_settings,
    "pipeconnect_outcome": pipeconnect_outcome,
    "pipeconnect_ehlo_check": pipeconnect_ehlo_check,
    "pipeconnect_intent": pipeconnect_intent,
    "pipeconnect_session_command": pipeconnect_session_command,
    "pipeconnect_event": pipeconnect_event,
    "pipeconnect_summary": pipeconnect_summary,
    "pipeconnect_error_detail": pipeconnect_error_detail,
    "pipeconnect_prebanner_options": pipeconnect_prebanner_options,
    "pipeconnect_prebanner_verdict": pipeconnect_prebanner_verdict,
    "pipeconnect_tracker_request": pipeconnect_tracker_request,
    "pipeconnect_tracker_plan": pipeconnect_tracker_plan,
    "pipeconnect_tracker_step": pipeconnect_tracker_step,
}

_u8_p = POINTER(c_uint8)
STORE_OPTIONS_P = POINTER(pipeconnect_store_options)
_size_p = POINTER(c_size_t)
CMD_P = POINTER(pipeconnect_command)
SITUATION_P = POINTER(pipeconnect_situation)
SETTINGS_P = POINTER(pipeconnect_settings)
SCMD_P = POINTER(pipeconnect_session_command)
DETAIL_P = POINTER(pipeconnect_error_detail)

# --- The function table: name -> (restype, argtypes), one line per function ------------

# fmt: off
FUNCTIONS: Dict[str, Tuple[Any, Tuple[Any, ...]]] = {
    # version and results
    "pipeconnect_version": (c_char_p, ()),
    "pipeconnect_version_number": (c_uint32, ()),
    "pipeconnect_result_message": (c_char_p, (c_int,)),
    "pipeconnect_result_is_error": (c_bool, (c_int,)),
    # key
    "pipeconnect_key_new": (RESULT, (c_char_p, c_uint16, TLS_STATE, POINTER(KEY_P))),
    "pipeconnect_key_set_local": (RESULT, (KEY_P, c_char_p)),
    "pipeconnect_key_set_ehlo_name": (RESULT, (KEY_P, c_char_p)),
    "pipeconnect_key_with_tls": (RESULT, (KEY_P, TLS_STATE, POINTER(KEY_P))),
    "pipeconnect_key_to_string": (RESULT, (KEY_P, c_char_p, c_size_t, POINTER(c_size_t))),
    "pipeconnect_key_free": (None, (KEY_P,)),
    # capabilities
    "pipeconnect_caps_parse": (RESULT, (_u8_p, c_size_t, PARSE_FLAGS, POINTER(CAPS_P))),
    "pipeconnect_caps_has": (RESULT, (CAPS_P, EXT, POINTER(c_bool))),
    "pipeconnect_caps_flags": (RESULT, (CAPS_P, POINTER(EXT))),
    "pipeconnect_caps_size_limit": (RESULT, (CAPS_P, POINTER(c_uint64))),
    "pipeconnect_caps_limits": (RESULT, (CAPS_P, POINTER(pipeconnect_limits))),
    "pipeconnect_caps_limit": (RESULT, (CAPS_P, U32, POINTER(c_uint32))),
    "pipeconnect_caps_auth_count": (RESULT, (CAPS_P, POINTER(c_size_t))),
    "pipeconnect_caps_auth_name": (RESULT, (CAPS_P, c_size_t, POINTER(c_char_p))),
    "pipeconnect_caps_has_auth": (RESULT, (CAPS_P, c_char_p, POINTER(c_bool))),
    "pipeconnect_caps_fingerprint": (RESULT, (CAPS_P, POINTER(c_uint64))),
    "pipeconnect_caps_learned_at": (RESULT, (CAPS_P, POINTER(c_uint64))),
    "pipeconnect_caps_free": (None, (CAPS_P,)),
    # in-process cache
    "pipeconnect_cache_new": (RESULT, (c_size_t, c_uint64, POINTER(CACHE_P))),
    "pipeconnect_cache_learn": (RESULT, (CACHE_P, KEY_P, _u8_p, c_size_t, PARSE_FLAGS)),
    "pipeconnect_cache_learn_caps": (RESULT, (CACHE_P, KEY_P, CAPS_P)),
    "pipeconnect_cache_lookup": (RESULT, (CACHE_P, KEY_P, POINTER(CAPS_P))),
    "pipeconnect_cache_forget": (RESULT, (CACHE_P, KEY_P)),
    "pipeconnect_cache_learn_qhlo_cookie": (RESULT, (CACHE_P, KEY_P, c_char_p)),
    "pipeconnect_cache_qhlo_cookie": (RESULT, (CACHE_P, KEY_P, c_char_p, c_size_t, _size_p)),
    "pipeconnect_cache_forget_qhlo_cookie": (RESULT, (CACHE_P, KEY_P)),
    "pipeconnect_cache_clear": (RESULT, (CACHE_P,)),
    "pipeconnect_cache_get_stats": (RESULT, (CACHE_P, POINTER(pipeconnect_cache_stats))),
    "pipeconnect_cache_set_time": (RESULT, (CACHE_P, c_uint64)),
    "pipeconnect_hold_down_default": (RESULT, (POINTER(pipeconnect_hold_down),)),
    "pipeconnect_cache_set_hold_down": (RESULT, (CACHE_P, POINTER(pipeconnect_hold_down))),
    "pipeconnect_cache_note_early_refused": (RESULT, (CACHE_P, KEY_P)),
    "pipeconnect_cache_note_early_success": (RESULT, (CACHE_P, KEY_P)),
    "pipeconnect_cache_held_down": (RESULT, (CACHE_P, KEY_P, POINTER(c_uint64))),
    "pipeconnect_cache_free": (None, (CACHE_P,)),
    # shared file store
    "pipeconnect_store_options_default": (RESULT, (STORE_OPTIONS_P,)),
    "pipeconnect_cache_open": (RESULT, (c_char_p, STORE_OPTIONS_P, POINTER(CACHE_P), DETAIL_P)),
    # shared tier on Redis
    "pipeconnect_cache_attach_shared": (RESULT, (CACHE_P, c_char_p, POINTER(pipeconnect_shared_options), DETAIL_P)),
    "pipeconnect_cache_detach_shared": (RESULT, (CACHE_P,)),
    # policy
    "pipeconnect_policy_early_flight": (RESULT, (CAPS_P, SITUATION_P, SETTINGS_P, CMD_P, c_size_t, _size_p, POINTER(U32), DETAIL_P)),
    "pipeconnect_policy_early_flight_cached": (RESULT, (CACHE_P, KEY_P, SITUATION_P, SETTINGS_P, CMD_P, c_size_t, _size_p, POINTER(U32), DETAIL_P)),
    "pipeconnect_policy_used_extensions": (RESULT, (CMD_P, c_size_t, POINTER(EXT))),
    "pipeconnect_policy_outcome": (RESULT, (U32, c_uint32, U32, SETTINGS_P, POINTER(pipeconnect_outcome))),
    "pipeconnect_policy_check_ehlo": (RESULT, (CAPS_P, CAPS_P, EXT, POINTER(pipeconnect_ehlo_check))),
    "pipeconnect_reason_name": (c_char_p, (U32,)),
    "pipeconnect_verdict_name": (c_char_p, (U32,)),
    "pipeconnect_command_name": (c_char_p, (U32,)),
    # session
    "pipeconnect_session_begin": (RESULT, (CACHE_P, KEY_P, POINTER(pipeconnect_intent), SETTINGS_P, POINTER(SESSION_P), DETAIL_P)),
    "pipeconnect_session_flight": (RESULT, (SESSION_P, SCMD_P, c_size_t, _size_p)),
    "pipeconnect_session_pending": (RESULT, (SESSION_P, _size_p, _size_p)),
    "pipeconnect_session_command_line": (RESULT, (SESSION_P, SCMD_P, c_char_p, c_size_t, _size_p)),
    "pipeconnect_session_feed": (RESULT, (SESSION_P, _u8_p, c_size_t, _size_p)),
    "pipeconnect_session_next_event": (RESULT, (SESSION_P, POINTER(pipeconnect_event))),
    "pipeconnect_session_tls_started": (RESULT, (SESSION_P,)),
    "pipeconnect_session_reason": (RESULT, (SESSION_P, _size_p, POINTER(U32))),
    "pipeconnect_session_is_done": (RESULT, (SESSION_P, POINTER(c_bool))),
    "pipeconnect_session_finish": (RESULT, (SESSION_P, POINTER(pipeconnect_summary))),
    "pipeconnect_session_quit": (RESULT, (SESSION_P,)),
    "pipeconnect_session_server_caps": (RESULT, (SESSION_P, POINTER(CAPS_P))),
    "pipeconnect_session_free": (None, (SESSION_P,)),
    # tracker: for an MTA that writes its own commands and reads its own replies
    "pipeconnect_tracker_begin": (RESULT, (CACHE_P, POINTER(pipeconnect_tracker_request), POINTER(TRACKER_P), POINTER(pipeconnect_tracker_plan), DETAIL_P)),
    "pipeconnect_tracker_reply": (RESULT, (TRACKER_P, U32, c_uint32, _u8_p, c_size_t, POINTER(pipeconnect_tracker_step))),
    "pipeconnect_tracker_free": (None, (TRACKER_P,)),
    # server side
    "pipeconnect_server_prebanner_new": (RESULT, (POINTER(pipeconnect_prebanner_options), POINTER(PREBANNER_P))),
    "pipeconnect_server_prebanner_feed": (RESULT, (PREBANNER_P, _u8_p, c_size_t)),
    "pipeconnect_server_prebanner_verdict": (RESULT, (PREBANNER_P, POINTER(pipeconnect_prebanner_verdict))),
    "pipeconnect_server_classify": (RESULT, (POINTER(pipeconnect_prebanner_options), _u8_p, c_size_t, POINTER(pipeconnect_prebanner_verdict))),
    "pipeconnect_server_prebanner_free": (None, (PREBANNER_P,)),
    "pipeconnect_server_class_name": (c_char_p, (U32,)),
    "pipeconnect_server_reason_name": (c_char_p, (U32,)),
    # SMTP QUICKSTART (experimental)
    "pipeconnect_quickstart_parse_greeting": (RESULT, (_u8_p, c_size_t, PARSE_FLAGS, POINTER(CAPS_P))),
    "pipeconnect_quickstart_greeting_cookie": (RESULT, (_u8_p, c_size_t, c_char_p, c_size_t, _size_p)),
    "pipeconnect_server_qhlo_cookie": (RESULT, (_u8_p, c_size_t, c_char_p, c_uint64, c_char_p, c_size_t, _size_p)),
    "pipeconnect_server_qhlo_cookie_valid": (RESULT, (_u8_p, c_size_t, c_char_p, c_uint64, c_char_p, POINTER(c_bool))),
    "pipeconnect_server_qhlo_epoch_secret": (RESULT, (_u8_p, c_size_t, c_uint64, _u8_p, c_size_t)),
}
# fmt: on


# --- Finding and checking the library --------------------------------------------------


def _parse_version(text: str) -> Tuple[int, int, int]:
    parts = text.strip().split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise LibraryVersionError(f"libpipeconnect reports an unreadable version {text!r}")
    return (int(parts[0]), int(parts[1]), int(parts[2]))


def check_version(
    found: str, wanted: str = __library_version__, minimum: str = MIN_LIBRARY_VERSION
) -> Optional[str]:
    """Compare the loaded library's version ``found`` with the binding's.

    Raises :class:`LibraryVersionError` when the major versions differ or the library is
    older than ``minimum``; returns a warning text when only minor/patch differ; returns
    None when they are equal.
    """
    f, w, m = _parse_version(found), _parse_version(wanted), _parse_version(minimum)
    if f[0] != w[0]:
        raise LibraryVersionError(
            f"libpipeconnect {found} is loaded, but this binding (pipeconnect for Python) "
            f"was written for libpipeconnect {wanted}: the major versions differ, so the "
            f"C interface is incompatible"
        )
    if f < m:
        raise LibraryVersionError(
            f"libpipeconnect {found} is loaded, but this binding (written for {wanted}) "
            f"needs at least {minimum}: install a newer library or an older binding"
        )
    if f[0] == 0 and f[1] != w[1]:
        raise LibraryVersionError(
            f"libpipeconnect {found} is loaded, but this binding (pipeconnect for Python) "
            f"was written for libpipeconnect {wanted}: before 1.0 every minor version may "
            f"change the C interface (the soname is libpipeconnect.so.0.MINOR)"
        )
    if f != w:
        return (
            f"libpipeconnect {found} is loaded; this binding was written for {wanted} "
            f"(compatible, but functions added since {wanted} are not bound)"
        )
    return None


def soname(version: str = __library_version__) -> str:
    """The library's soname for ``version``: ``libpipeconnect.so.0.MINOR`` before 1.0,
    ``libpipeconnect.so.MAJOR`` after."""
    major, minor, _ = _parse_version(version)
    return f"libpipeconnect.so.0.{minor}" if major == 0 else f"libpipeconnect.so.{major}"


def _package_dir() -> str:
    return os.path.dirname(os.path.abspath(__file__))


def library_candidates() -> List[Tuple[str, str]]:
    """Where the library is looked for, in order, as (how, path or name) pairs."""
    env = os.environ.get(ENV_LIBRARY)
    if env:
        # An explicit choice is not second-guessed: only that file is tried.
        return [(f"${ENV_LIBRARY}", env)]
    out: List[Tuple[str, str]] = []
    for path in sorted(glob.glob(os.path.join(_package_dir(), "_lib", "libpipeconnect.so*"))):
        out.append(("bundled copy", path))
    out.append(("soname", soname()))
    found = ctypes.util.find_library("pipeconnect")
    if found:
        out.append(("ctypes.util.find_library", found))
    return out


def _open(candidates: Sequence[Tuple[str, str]]) -> Tuple[ctypes.CDLL, str]:
    tried: List[str] = []
    for how, where in candidates:
        try:
            return ctypes.CDLL(where), where
        except OSError as e:
            tried.append(f"  {how}: {where}: {e}")
    if not tried:
        tried.append("  (no candidates)")
    raise LibraryNotFoundError(
        "libpipeconnect could not be loaded. Tried, in order:\n"
        + "\n".join(tried)
        + f"\nSet {ENV_LIBRARY} to the path of libpipeconnect.so, or install the library "
        f"so that {soname()} is found by the dynamic loader."
    )


class Library:
    """The loaded library: one attribute per bound function, plus ``path`` and ``version``."""

    path: str
    version: str

    def __init__(self, cdll: ctypes.CDLL, path: str) -> None:
        self._cdll = cdll
        self.path = path
        # Bind the version function alone first, so a mismatch is reported as such
        # rather than as a list of missing functions.
        ver = cdll.pipeconnect_version
        ver.restype, ver.argtypes = c_char_p, []
        self.version = (ver() or b"?").decode("ascii", "replace")
        warning = check_version(self.version)
        missing = []
        for name, (restype, argtypes) in FUNCTIONS.items():
            try:
                fn = getattr(cdll, name)
            except AttributeError:
                missing.append(name)
                continue
            fn.restype = restype
            fn.argtypes = list(argtypes)
            setattr(self, name, fn)
        if missing:
            raise LibraryVersionError(
                f"libpipeconnect {self.version} at {path} lacks functions this binding "
                f"(written for {__library_version__}) needs: {', '.join(missing)}. "
                "The library is older than the binding (or a stale build)."
            )
        if warning:
            warnings.warn(warning, RuntimeWarning, stacklevel=3)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not bound above (typing aid and a clear message).
        raise AttributeError(f"{name} is not bound by this binding")


def load(candidates: Optional[Sequence[Tuple[str, str]]] = None) -> Library:
    """Find, load and check libpipeconnect."""
    cdll, path = _open(library_candidates() if candidates is None else candidates)
    return Library(cdll, path)


lib: Library = load()


def _message(code: int) -> str:
    raw = lib.pipeconnect_result_message(int(code))
    return raw.decode("utf-8", "replace") if raw else "unknown result"


_errors._set_message_lookup(_message)
