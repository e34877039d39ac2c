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
