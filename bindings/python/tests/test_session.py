"""Sessions through Python, with scripted server replies: classic then early, splits,
rejections, errors."""

from __future__ import annotations

import pytest

import pipeconnect
from pipeconnect import (
    BodyMode,
    CommandKind,
    EventFlags,
    Intent,
    Key,
    Reason,
    Result,
    Session,
    Settings,
    SummaryFlags,
    TlsState,
    Verdict,
)

from conftest import EXIM_EHLO

INTENT = Intent(
    rcpts=["b@example.net", "c@example.net"],
    ehlo_name="client.test",
    mail_from="a@example.org",
    body_size=100,
)
BANNER = b"220 mx.test.example ESMTP\r\n"
TRANSACTION_REPLIES = b"250 OK\r\n250 Accepted\r\n250 Accepted\r\n250 OK id=1\r\n"


def _kinds(cmds):
    return [c.kind for c in cmds]


def test_first_session_is_classic_and_learns_the_second_goes_early(cache, key):
    with Session(cache, key, INTENT) as s:
        assert s.reason == (0, Reason.NO_ENTRY)
        assert s.flight() == []  # classic: wait for the banner
        assert not s.done
        [banner] = s.feed(BANNER)
        assert (banner.seq, banner.kind, banner.code) == (0, CommandKind.BANNER, 220)
        [ehlo] = s.flight()
        assert ehlo.kind == CommandKind.EHLO and not ehlo.early
        assert s.command_line(ehlo) == b"EHLO client.test\r\n"
        [ev] = s.feed(EXIM_EHLO)
        assert ev.flags & EventFlags.CACHE_STORED
        assert ev.text.startswith("mx.test.example Hello client.test")
        cmds = s.flight()
        assert _kinds(cmds) == [
            CommandKind.MAIL,
            CommandKind.RCPT,
            CommandKind.RCPT,
            CommandKind.BDAT_LAST,
        ]
        assert [s.command_line(c) for c in cmds] == [
            b"MAIL FROM:<a@example.org> SIZE=100\r\n",
            b"RCPT TO:<b@example.net>\r\n",
            b"RCPT TO:<c@example.net>\r\n",
            b"BDAT 100 LAST\r\n",
        ]
        assert [c.rcpt_index for c in cmds[1:3]] == [0, 1]
        events = s.feed(TRANSACTION_REPLIES)
        assert [e.verdict for e in events] == [Verdict.CONTINUE] * 4
        assert events[-1].message_accepted
        assert s.done
        summary = s.finish()
    assert summary.verdict == Verdict.CONTINUE
    assert summary.flags == SummaryFlags.MESSAGE_ACCEPTED | SummaryFlags.CACHE_STORED
    assert (summary.rcpt_accepted, summary.groups) == (2, 2)
    assert not summary.early

    with Session(cache, key, INTENT) as s:
        assert s.reason == (5, Reason.END_OF_SEQUENCE)
        cmds = s.flight()
        assert _kinds(cmds) == [
            CommandKind.EHLO,
            CommandKind.MAIL,
            CommandKind.RCPT,
            CommandKind.RCPT,
            CommandKind.BDAT_LAST,
        ]
        assert all(c.early for c in cmds)
        assert [c.seq for c in cmds] == [1, 2, 3, 4, 5]
        # The replies arrive split at every byte: the session does not mind.
        stream = BANNER + EXIM_EHLO + TRANSACTION_REPLIES
        events = []
        for i in range(len(stream)):
            events += s.feed(stream[i : i + 1])
        assert [e.seq for e in events] == [0, 1, 2, 3, 4, 5]
        assert all(e.early for e in events[1:])
        assert s.done and s.flight() == []
        summary = s.finish()
    assert summary.message_accepted and summary.early
    assert summary.flags & SummaryFlags.CLEARTEXT_EARLY
    assert summary.groups == 1


def test_early_ehlo_refused_means_reconnect_and_invalidation(cache, key):
    cache.learn(key, EXIM_EHLO)
    with Session(cache, key, INTENT) as s:
        assert len(s.flight()) == 5
        events = s.feed(BANNER + b"554 SMTP synchronization error\r\n")
        assert events[1].kind == CommandKind.EHLO
        assert events[1].verdict == Verdict.RECONNECT
        assert events[1].flags & EventFlags.CACHE_INVALIDATED
        summary = s.finish()
    assert summary.verdict == Verdict.RECONNECT
    assert cache.lookup(key) is None


def test_rejected_recipient_and_enhanced_codes(cache, key):
    cache.learn(key, EXIM_EHLO)
    with Session(cache, key, INTENT, Settings(early_allowed=True, relaxed=True)) as s:
        s.flight()
        events = s.feed(
            BANNER
            + EXIM_EHLO
            + b"250 OK\r\n550 5.1.1 no such user\r\n250 Accepted\r\n250 OK id=2\r\n"
        )
        rcpt = events[3]
        assert (rcpt.kind, rcpt.rcpt_index, rcpt.verdict) == (
            CommandKind.RCPT,
            0,
            Verdict.REJECTED,
        )
        assert rcpt.enhanced == (5, 1, 1)
        assert events[2].enhanced is None
        summary = s.finish()
    assert (summary.rcpt_accepted, summary.rcpt_rejected) == (1, 1)
    assert summary.message_accepted


def test_data_mode_hands_out_the_body(cache, key):
    intent = Intent(rcpts=1, ehlo_name="client.test", body_size=10, body_mode=BodyMode.DATA)
    cache.learn(key, EXIM_EHLO)
    with Session(cache, key, intent) as s:
        cmds = s.flight()
        assert _kinds(cmds)[-1] == CommandKind.DATA
        with pytest.raises(pipeconnect.SessionError) as info:
            s.command_line(cmds[1])  # MAIL without mail_from: the caller formats it
        assert info.value.code == Result.ERR_CANNOT_FORMAT
        s.feed(BANNER + EXIM_EHLO + b"250 OK\r\n250 OK\r\n354 go ahead\r\n")
        [body] = s.flight()
        assert body.kind == CommandKind.BODY
        [end] = s.feed(b"250 OK id=3\r\n")
        assert end.kind == CommandKind.BODY and end.message_accepted


def test_unexpected_and_malformed_replies_stop_the_session(cache, key):
    cache.learn(key, EXIM_EHLO)
    with Session(cache, key, INTENT) as s:
        s.flight()
        with pytest.raises(pipeconnect.SessionError) as info:
            s.feed(BANNER + EXIM_EHLO + TRANSACTION_REPLIES + b"250 nobody asked\r\n")
        assert info.value.code == Result.ERR_UNEXPECTED_REPLY
        assert [e.seq for e in info.value.events] == [0, 1, 2, 3, 4, 5]
        with pytest.raises(pipeconnect.SessionError) as again:
            s.feed(b"250 OK\r\n")  # the error repeats
        assert again.value.code == Result.ERR_UNEXPECTED_REPLY
        assert s.finish().flags & SummaryFlags.FAILED
    cache.clear()
    with Session(cache, key, INTENT) as s:
        with pytest.raises(pipeconnect.ReplyError) as info:
            s.feed(b"HTTP/1.1 200 OK\r\n")
        assert info.value.code == Result.ERR_MALFORMED_REPLY


def test_starttls_flow_and_cleartext_injection_guard(cache, key):
    intent = Intent(rcpts=["b@example.net"], ehlo_name="client.test", mail_from="", starttls=True)
    with Session(cache, key, intent) as s:
        s.feed(BANNER)
        s.flight()
        s.feed(EXIM_EHLO)
        [starttls] = s.flight()
        assert s.command_line(starttls) == b"STARTTLS\r\n"
        with pytest.raises(pipeconnect.BadStateError):
            s.tls_started()  # no 220 yet
        with pytest.raises(pipeconnect.SessionError) as info:
            s.feed(b"220 go ahead\r\n250 injected\r\n")
        assert info.value.code == Result.ERR_CLEARTEXT_AFTER_STARTTLS
        assert [(e.kind, e.code) for e in info.value.events] == [(CommandKind.STARTTLS, 220)]
        with pytest.raises(pipeconnect.PipeconnectError):
            s.tls_started()
    with Session(cache, key, intent) as s:  # the clean way: handshake, then encrypted EHLO
        s.feed(BANNER)
        s.flight()
        s.feed(EXIM_EHLO)
        s.flight()
        s.feed(b"220 go ahead\r\n")
        s.tls_started()
        [ehlo] = s.flight()
        assert ehlo.kind == CommandKind.EHLO and ehlo.seq == 3


def test_bad_intents(cache, key):
    for intent, code in [
        (Intent(rcpts=0, ehlo_name="c.test"), Result.ERR_INVALID_INTENT),
        (Intent(rcpts=1001, ehlo_name="c.test"), Result.ERR_INVALID_INTENT),
        (Intent(rcpts=["a<b@c"], ehlo_name="c.test"), Result.ERR_INVALID_INTENT),
        (Intent(rcpts=1, ehlo_name="c.test", auth_optional=True), Result.ERR_INVALID_INTENT),
        (Intent(rcpts=1, body_mode=7), Result.ERR_INVALID_ARGUMENT),  # type: ignore[arg-type]
    ]:
        with pytest.raises(pipeconnect.InvalidInputError) as info:
            Session(cache, key, intent)
        assert info.value.code == code, intent
    with pytest.raises(TypeError):
        Intent(rcpts="a@b")._c()


def test_a_refused_intent_names_its_field_and_recipient(cache, key):
    intent = Intent(rcpts=["a@example.org", "b@example.org", "c<@example.org"], ehlo_name="c.test")
    with pytest.raises(pipeconnect.InvalidInputError) as info:
        Session(cache, key, intent)
    assert info.value.field == "rcpts" and info.value.index == 2
    assert "rcpts[2]" in info.value.message
    with pytest.raises(pipeconnect.InvalidInputError) as info:
        Session(cache, key, Intent(rcpts=1, ehlo_name="c.test", mail_from="a\r\nb@c"))
    assert info.value.field == "mail_from" and info.value.index is None


def test_session_outlives_its_cache_handle(key):
    cache = pipeconnect.Cache()
    cache.learn(key, EXIM_EHLO)
    s = Session(cache, key, INTENT)
    cache.close()
    assert len(s.flight()) == 5
    s.feed(BANNER + EXIM_EHLO)
    s.close()
    s.close()
    with pytest.raises(ValueError, match="closed"):
        s.flight()


def test_tls_on_connect_uses_an_encrypted_key(cache):
    with Key("192.0.2.1", 465, TlsState.ENCRYPTED) as k:
        cache.learn(k, EXIM_EHLO.replace(b"250-STARTTLS\r\n", b""))
        with Session(cache, k, INTENT) as s:
            assert s.reason.allowed == 5


def test_out_of_step_stream_never_delivers(cache, key):
    """Four 250 lines then 220 after an early flight with the body: no acceptance,
    TEMPFAIL, the entry gone (issue 9)."""
    cache.learn(key, EXIM_EHLO)
    with Session(cache, key, INTENT) as s:
        assert _kinds(s.flight())[-1] == CommandKind.BDAT_LAST
        events = s.feed(b"250 a\r\n250 b\r\n250 c\r\n250 d\r\n250 e\r\n220 f\r\n")
        assert events[0].flags & EventFlags.OUT_OF_STEP and events[0].code == 250
        assert not any(e.message_accepted for e in events)
        summary = s.finish()
        assert summary.verdict == Verdict.TEMPFAIL and not summary.message_accepted
    assert cache.lookup(key) is None


def test_quit_raw_reply_and_server_caps(cache, key):
    cache.learn(key, EXIM_EHLO)
    with Session(cache, key, INTENT) as s:
        assert s.server_caps is None
        s.flight()
        s.quit()
        assert _kinds(s.flight()) == [CommandKind.QUIT]
        with pytest.raises(pipeconnect.BadStateError):
            s.quit()
        events = s.feed(BANNER + EXIM_EHLO + TRANSACTION_REPLIES + b"221 2.0.0 bye\r\n")
        assert events[0].raw == BANNER
        assert events[1].raw == EXIM_EHLO
        assert events[-1].kind == CommandKind.QUIT and events[-1].code == 221
        assert events[-2].message_accepted
        caps = s.server_caps
        assert caps is not None and caps.has(pipeconnect.Extension.PIPECONNECT)
        summary = s.finish()
        assert summary.verdict == Verdict.CONTINUE and summary.replies_outstanding == 0
    assert cache.lookup(key) is not None
