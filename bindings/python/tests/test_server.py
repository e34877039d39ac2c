"""The server side: the pre-banner classifier through the binding."""

from __future__ import annotations

import pytest

from pipeconnect import InvalidInputError
from pipeconnect.server import Prebanner, classify, class_name, reason_name
from pipeconnect import PrebannerClass as C, PrebannerReason as R

FLIGHT = (
    b"EHLO client.test\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<b@sink.test>\r\n"
    b"BDAT 5 LAST\r\nhelloQUIT\r\n"
)


def test_an_early_flight_fed_in_pieces():
    with Prebanner(offered=True) as pb:
        assert pb.verdict().class_ == C.NOTHING
        for i in range(0, len(FLIGHT), 7):
            pb.feed(FLIGHT[i : i + 7])
            assert pb.verdict().class_ == C.EARLY_FLIGHT
        v = pb.verdict()
        assert (v.reason, v.commands, v.bytes) == (R.NONE, 4, len(FLIGHT))
        assert not v.incomplete and not v.decided
        pb.feed(b"")
        pb.feed("NOOP\r\n")
        v = pb.verdict()
        assert (v.class_, v.reason) == (C.BANNER_FIRST, R.AFTER_QUIT)
        assert v.decided


@pytest.mark.parametrize(
    "data, offered, class_, reason",
    [
        (b"", False, C.NOTHING, R.NONE),
        (b"EHLO c\r\n", False, C.PREGREET, R.NOT_OFFERED),
        (b"HELO bot\r\n", True, C.PREGREET, R.HELO_FIRST),
        (b"\x16\x03\x01", True, C.PREGREET, R.NOT_SMTP),
        (b"EHLO c\r\nSTARTTLS\r\n\x16\x03", True, C.BANNER_FIRST, R.AFTER_STARTTLS),
        (b"EHLO cli", True, C.EARLY_FLIGHT, R.NONE),
    ],
)
def test_classify(data, offered, class_, reason):
    v = classify(data, offered)
    assert (v.class_, v.reason) == (class_, reason)


def test_limits_and_bad_options():
    v = classify(FLIGHT, True, max_bytes=10)
    assert (v.class_, v.reason, v.bytes) == (C.BANNER_FIRST, R.TOO_MUCH_INPUT, 10)
    with pytest.raises(InvalidInputError):
        classify(FLIGHT, True, max_commands=5000)
    with pytest.raises(InvalidInputError):
        Prebanner(True, max_bytes=-1)


def test_names():
    assert class_name(C.PREGREET) == "PREGREET"
    assert reason_name(R.AFTER_STARTTLS) == "AFTER_STARTTLS"
    assert reason_name(99) == "UNKNOWN"


def test_quickstart_greeting_and_cookie():
    from pipeconnect import Cache, Capabilities, Key
    from pipeconnect.server import (
        greeting_cookie,
        parse_greeting,
        qhlo_cookie,
        qhlo_cookie_valid,
        qhlo_epoch_secret,
    )

    secret = qhlo_epoch_secret(b"m" * 32, 7)
    assert len(secret) == 32 and secret != qhlo_epoch_secret(b"m" * 32, 8)
    own = Capabilities.parse("250-mx\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250 QUICKSTART\r\n")
    cookie = qhlo_cookie(secret, "192.0.2.1", own.fingerprint)
    assert len(cookie) == 32
    greeting = (
        "220-mx ESMTP\r\n220-PIPELINING\r\n220-PIPECONNECT\r\n220-QUICKSTART\r\n"
        f"220 QHLO={cookie}\r\n"
    )
    caps = parse_greeting(greeting)
    assert caps.fingerprint == own.fingerprint
    assert greeting_cookie(greeting) == cookie
    assert greeting_cookie("220 mx\r\n") is None
    cache = Cache(16)
    key = Key("192.0.2.25", 25)
    cache.learn_caps(key, caps)
    assert cache.lookup(key) is not None
    assert cache.qhlo_cookie(key) is None
    cache.learn_qhlo_cookie(key, cookie)
    assert cache.qhlo_cookie(key) == cookie
    assert cache.qhlo_cookie(Key("192.0.2.25", 25, 1)) == cookie
    assert cache.lookup(key).fingerprint == own.fingerprint
    with pytest.raises(InvalidInputError):
        cache.learn_qhlo_cookie(key, "has space")
    assert cache.forget_qhlo_cookie(key) and not cache.forget_qhlo_cookie(key)
    assert cache.qhlo_cookie(key) is None
    assert qhlo_cookie_valid(secret, "192.0.2.1", own.fingerprint, cookie)
    assert not qhlo_cookie_valid(secret, "192.0.2.9", own.fingerprint, cookie)
    with pytest.raises(InvalidInputError):
        qhlo_cookie(b"short", "192.0.2.1", 1)
    v = classify(f"QHLO c {cookie}\r\n", True)
    assert v.class_ == C.PREGREET
    with Prebanner(True, quickstart=True) as pb:
        pb.feed(f"QHLO c {cookie}\r\n")
        assert pb.verdict().class_ == C.EARLY_FLIGHT
