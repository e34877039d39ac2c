"""Capabilities.parse and the snapshot's properties."""

from __future__ import annotations

import pytest

import pipeconnect
from pipeconnect import Capabilities, Extension, Result

from conftest import EXIM_EHLO


def test_exim_reply_flags_are_exactly_what_it_advertised():
    with Capabilities.parse(EXIM_EHLO) as caps:
        assert caps.flags == (
            Extension.SIZE
            | Extension.EIGHTBITMIME
            | Extension.PIPELINING
            | Extension.PIPECONNECT
            | Extension.AUTH
            | Extension.CHUNKING
            | Extension.STARTTLS
            | Extension.SMTPUTF8
        )
        assert Extension.CHUNKING in caps
        assert Extension.DSN not in caps
        assert caps.size_limit == 52428800
        assert caps.auth_mechanisms == ("PLAIN",)
        assert caps.has_auth("Plain") and not caps.has_auth("LOGIN")
        assert caps.limits == pipeconnect.Limits(None, None, None)
        assert caps.learned_at is None  # parsed, not from a cache


def test_str_and_lf_only_replies_are_accepted():
    text = EXIM_EHLO.decode().replace("\r\n", "\n")
    with Capabilities.parse(text) as a, Capabilities.parse(EXIM_EHLO) as b:
        assert a.flags == b.flags
        assert a.fingerprint == b.fingerprint


def test_fingerprint_ignores_order_and_case_and_sees_changes():
    lines = EXIM_EHLO.split(b"\r\n")[:-1]
    body = [line[4:] for line in lines[1:]]
    reordered = [b"mx Hello"] + [b.lower() for b in reversed(body)]
    again = b"".join(
        (b"250-" if i < len(reordered) - 1 else b"250 ") + line + b"\r\n"
        for i, line in enumerate(reordered)
    )
    changed = EXIM_EHLO.replace(b"SIZE 52428800", b"SIZE 10485760")
    with Capabilities.parse(EXIM_EHLO) as a, Capabilities.parse(again) as b, Capabilities.parse(
        changed
    ) as c:
        assert a.fingerprint == b.fingerprint
        assert a.fingerprint != c.fingerprint
        assert 0 <= a.fingerprint < 2**64


def test_limits_and_auth_lists():
    reply = (
        b"250-mx\r\n250-PIPELINING\r\n250-LIMITS MAILMAX=10 RCPTMAX=100\r\n"
        b"250-AUTH LOGIN plain CRAM-MD5\r\n250 SIZE\r\n"
    )
    with Capabilities.parse(reply) as caps:
        assert caps.limits == pipeconnect.Limits(10, 100, None)
        assert caps.auth_mechanisms == ("LOGIN", "PLAIN", "CRAM-MD5")
        assert caps.has(Extension.SIZE)
        assert caps.size_limit is None  # SIZE without a number


def test_legacy_keywords_only_when_asked():
    reply = b"250-mx\r\n250-PIPELINING\r\n250 PIPE_CONNECT\r\n"
    with Capabilities.parse(reply) as a, Capabilities.parse(reply, legacy_keywords=True) as b:
        assert not a.has(Extension.PIPECONNECT)
        assert b.has(Extension.PIPECONNECT)


@pytest.mark.parametrize("bad", [0, Extension.DSN | Extension.SIZE, 1 << 20, -1, 2**40])
def test_has_refuses_anything_but_one_known_bit(bad):
    with Capabilities.parse(EXIM_EHLO) as caps:
        with pytest.raises(pipeconnect.InvalidInputError) as info:
            caps.has(bad)
        assert info.value.code == Result.ERR_INVALID_ARGUMENT


@pytest.mark.parametrize(
    "reply, code",
    [
        (b"", Result.ERR_REPLY_INCOMPLETE),
        (b"HTTP/1.1 200 OK\r\n\r\n", Result.ERR_MALFORMED_REPLY),
        (b"220 banner, not EHLO\r\n", Result.ERR_NOT_EHLO_REPLY),
        (b"250-a\r\n251 b\r\n", Result.ERR_REPLY_CODE_MISMATCH),
        (b"250-" + b"A" * 3000 + b"\r\n250 OK\r\n", Result.ERR_REPLY_LINE_TOO_LONG),
        ((b"250-" + b"x" * 2000 + b"\r\n") * 40 + b"250 OK\r\n", Result.ERR_REPLY_TOO_LARGE),
    ],
)
def test_parse_errors_carry_code_and_library_message(reply, code):
    with pytest.raises(pipeconnect.ReplyError) as info:
        Capabilities.parse(reply)
    err = info.value
    assert isinstance(err, pipeconnect.PipeconnectError)
    assert isinstance(err, ValueError)
    assert err.code == code
    assert err.message == pipeconnect.result_message(code)
    assert err.message in str(err) and code.name in str(err)


def test_wrong_argument_types():
    with pytest.raises(TypeError):
        Capabilities.parse(12)  # type: ignore[arg-type]
    with Capabilities.parse(EXIM_EHLO) as caps:
        with pytest.raises(TypeError):
            caps.has_auth(b"PLAIN")  # type: ignore[arg-type]
        with pytest.raises(pipeconnect.InvalidInputError):
            caps.has_auth("PL\0AIN")


def test_closed_snapshot_refuses_use():
    caps = Capabilities.parse(EXIM_EHLO)
    caps.close()
    caps.close()
    with pytest.raises(ValueError, match="closed"):
        _ = caps.flags
    assert "closed" in repr(caps)
