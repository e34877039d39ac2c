"""The tracker from Python: plan from the cache, pass replies as an MTA holds them."""

import pytest

import pipeconnect as pc
from pipeconnect import CommandKind as K

EHLO = ("250-mx.example.org Hello\n250-SIZE 52428800\n250-8BITMIME\n"
        "250-PIPELINING\n250-PIPECONNECT\n250-DSN\n250 STARTTLS")
EHLO_NO_PC = "250-mx.example.org Hello\n250-PIPELINING\n250 SIZE 52428800"


def learned_cache():
    cache = pc.Cache()
    with pc.Tracker(cache, "192.0.2.25", 25, rcpt_count=1) as t:
        assert t.plan.mode == pc.TrackerMode.CLASSIC
        assert t.plan.reason == pc.Reason.NO_ENTRY
        step = t.reply(K.EHLO, 250, EHLO)
        assert step.flags & pc.EventFlags.CACHE_STORED
        assert step.size_limit == 52428800
    return cache


def test_learn_then_an_early_transaction_that_proceeds():
    cache = learned_cache()
    with pc.Tracker(cache, "192.0.2.25", 25, rcpt_count=2, message_size=900,
                    ignored_keywords="dsn") as t:
        assert t.plan.mode == pc.TrackerMode.TRANSACTION
        assert t.plan.command_count == 5
        assert pc.Extension.DSN not in t.plan.extensions
        assert pc.Extension.EIGHTBITMIME in t.plan.extensions
        for kind, code in [(K.BANNER, 220), (K.EHLO, 250), (K.MAIL, 250), (K.RCPT, 250),
                           (K.RCPT, 250), (K.DATA, 354)]:
            assert t.reply(kind, code, EHLO).action == pc.TrackerAction.PROCEED
        last = t.reply(K.BODY, 250)
        assert last.flags & pc.EventFlags.MESSAGE_ACCEPTED


def test_a_refused_flight_says_reconnect_and_the_server_is_held_down():
    cache = learned_cache()
    with pc.Tracker(cache, "192.0.2.25", 25, rcpt_count=1) as t:
        step = t.reply(K.BANNER, 554, "554 SMTP synchronization error")
        assert step.action == pc.TrackerAction.RECONNECT
        assert step.verdict == pc.Verdict.RECONNECT
        again = t.reply(K.EHLO, 250, EHLO_NO_PC)
        assert again.action == pc.TrackerAction.RECONNECT
        assert again.flags & pc.EventFlags.FOLLOWS_FAILURE
    with pc.Tracker(cache, "192.0.2.25", 25, rcpt_count=1) as t:
        assert t.plan.mode == pc.TrackerMode.CLASSIC


def test_starttls_when_offered_and_bad_arguments():
    cache = learned_cache()
    flags = pc.TrackerFlags.EARLY_ALLOWED | pc.TrackerFlags.STARTTLS_IF_OFFERED
    with pc.Tracker(cache, "192.0.2.25", 25, rcpt_count=1, flags=flags) as t:
        assert t.plan.mode == pc.TrackerMode.STARTTLS
        assert t.plan.command_count == 2
        with pytest.raises(pc.InvalidInputError):
            t.reply(K.MAIL, 600)
    with pytest.raises(pc.PipeconnectError) as e:
        pc.Tracker(cache, "not an address", 25)
    assert e.value.field == "server"
