"""The policy functions through Python: early flights, reply outcomes, EHLO checks."""

from __future__ import annotations

import pytest

import pipeconnect
from pipeconnect import (
    CacheAction,
    Capabilities,
    CommandKind,
    EventFlags,
    Extension,
    Phase,
    Reason,
    ReplyContext,
    Result,
    TlsState,
    Verdict,
)
from pipeconnect.policy import (
    Command,
    Settings,
    Situation,
    check_ehlo,
    command_name,
    early_flight,
    early_flight_cached,
    outcome,
    reason_name,
    used_extensions,
    verdict_name,
)

from conftest import EXIM_EHLO

C = Command
TRANSACTION = [C.ehlo(), C.mail(), C.rcpt(), C.rcpt(), C.data()]


@pytest.fixture
def exim():
    with Capabilities.parse(EXIM_EHLO) as caps:
        yield caps


def test_cached_exim_reply_lets_the_transaction_go_early_up_to_data(exim):
    assert early_flight(exim, TRANSACTION) == (5, Reason.DATA_ENDS_FLIGHT)
    bdat = [C.ehlo(), C.mail(), C.rcpt(), C.bdat_last(1000)]
    assert early_flight(exim, bdat) == (4, Reason.END_OF_SEQUENCE)


def test_no_early_flight_without_permission_entry_or_ehlo_name(exim):
    f = early_flight(exim, TRANSACTION, settings=Settings())
    assert f == (0, Reason.NOT_ALLOWED) and f.classic and f.reason.is_classic
    assert early_flight(None, TRANSACTION) == (0, Reason.NO_ENTRY)
    unknown_name = Situation(ehlo_name_known=False)
    assert early_flight(exim, TRANSACTION, unknown_name) == (0, Reason.EHLO_NAME_UNKNOWN)
    after_tls = Situation(Phase.AFTER_STARTTLS)
    assert early_flight(exim, TRANSACTION, after_tls).reason == (
        Reason.ENCRYPTED_WITHOUT_CLEARTEXT_EARLY
    )
    with Capabilities.parse(b"250-mx\r\n250 PIPELINING\r\n") as no_pc:
        assert early_flight(no_pc, TRANSACTION) == (0, Reason.NO_PIPECONNECT)


def test_starttls_and_auth_end_the_flight(exim):
    assert early_flight(exim, [C.ehlo(), C.starttls(), C.ehlo(), C.mail()]) == (
        2,
        Reason.STARTTLS_ENDS_FLIGHT,
    )
    # PLAIN with an initial response completes in one round trip: MAIL may follow.
    assert early_flight(exim, [C.ehlo(), C.auth("PLAIN", True), C.mail(), C.rcpt(), C.data()])[
        0
    ] == 5
    assert early_flight(exim, [C.ehlo(), C.auth("PLAIN"), C.mail()]) == (
        2,
        Reason.AUTH_ENDS_FLIGHT,
    )
    assert early_flight(exim, [C.ehlo(), C.auth("CRAM-MD5"), C.mail()]) == (
        1,
        Reason.AUTH_NOT_OFFERED,
    )


def test_size_and_body_limits(exim):
    assert early_flight(exim, [C.ehlo(), C.mail(size=60_000_000), C.rcpt(), C.data()]) == (
        1,
        Reason.SIZE_EXCEEDED,
    )
    big = [C.ehlo(), C.mail(), C.rcpt(), C.bdat_last(100_000)]
    assert early_flight(exim, big) == (3, Reason.BODY_TOO_LARGE_FOR_ONE_FLIGHT)
    roomy = Settings(early_allowed=True, max_first_flight_body=200_000)
    assert early_flight(exim, big, settings=roomy) == (4, Reason.END_OF_SEQUENCE)


@pytest.mark.parametrize(
    "cmds",
    [[], [C.mail(), C.rcpt()], [C.ehlo(), C.rcpt()], [C.ehlo(), C(CommandKind.BODY)]],
    ids=["empty", "no-ehlo", "rcpt-before-mail", "body"],
)
def test_bad_sequences_are_refused(exim, cmds):
    with pytest.raises(pipeconnect.InvalidInputError) as info:
        early_flight(exim, cmds)
    assert info.value.code == Result.ERR_BAD_SEQUENCE


def test_unknown_values_are_invalid_arguments(exim):
    with pytest.raises(pipeconnect.InvalidInputError) as info:
        early_flight(exim, [C(99)])  # type: ignore[arg-type]
    assert info.value.code == Result.ERR_INVALID_ARGUMENT
    with pytest.raises(pipeconnect.InvalidInputError):
        early_flight(exim, TRANSACTION, Situation(phase=7))  # type: ignore[arg-type]
    with pytest.raises(pipeconnect.InvalidInputError):
        outcome(CommandKind.MAIL, 99)
    with pytest.raises(pipeconnect.InvalidInputError):
        outcome(CommandKind.MAIL, 250, 64)


def test_early_flight_cached_checks_the_tls_state(cache, key):
    cache.learn(key, EXIM_EHLO)
    assert early_flight_cached(cache, key, TRANSACTION) == (5, Reason.DATA_ENDS_FLIGHT)
    with key.with_tls(TlsState.ENCRYPTED) as enc:
        with pytest.raises(pipeconnect.InvalidInputError) as info:
            early_flight_cached(cache, enc, TRANSACTION)
        assert info.value.code == Result.ERR_TLS_STATE_MISMATCH
        # Encrypted phase with an encrypted key: nothing cached encrypted.
        sit = Situation(Phase.AFTER_STARTTLS, cleartext_early_used=True)
        assert early_flight_cached(cache, enc, TRANSACTION, sit) == (0, Reason.NO_ENTRY)


def test_used_extensions():
    assert used_extensions([]) == Extension(0)
    used = used_extensions([C.ehlo(), C.mail(), C.rcpt(), C.bdat_last(10)])
    assert Extension.PIPECONNECT in used and Extension.CHUNKING in used


K, X, V = CommandKind, CacheAction, Verdict
EARLY, STRICT, RELAXED = ReplyContext.EARLY_USED, Settings(), Settings(relaxed=True)


@pytest.mark.parametrize(
    "answered, code, context, settings, want",
    [
        (K.EHLO, 554, EARLY, STRICT, (X.INVALIDATE, V.RECONNECT)),
        (K.BANNER, 220, EARLY, STRICT, (X.NOTHING, V.CONTINUE)),
        (K.RCPT, 550, ReplyContext.NONE, STRICT, (X.NOTHING, V.REJECTED)),
        (K.RCPT, 451, EARLY, STRICT, (X.INVALIDATE, V.TEMPFAIL)),
        (K.RCPT, 451, EARLY, RELAXED, (X.NOTHING, V.TEMPFAIL)),
    ],
    ids=["early-ehlo-554", "banner-ok", "rcpt-550", "strict-451", "relaxed-451"],
)
def test_outcomes(answered, code, context, settings, want):
    o = outcome(answered, code, context, settings)
    assert (o.cache, o.verdict) == want


def test_outcome_flags():
    assert outcome(CommandKind.BODY, 250).flags & EventFlags.MESSAGE_ACCEPTED
    assert outcome(CommandKind.AUTH, 334).flags & EventFlags.AUTH_CHALLENGE


def test_check_ehlo(exim):
    same = check_ehlo(exim, exim, Extension.PIPECONNECT | Extension.PIPELINING)
    assert same.cache == CacheAction.NOTHING and not same.early_stopped
    assert same.changed == Extension(0)
    with Capabilities.parse(EXIM_EHLO.replace(b"250-PIPECONNECT\r\n", b"")) as gone:
        c = check_ehlo(exim, gone, Extension.PIPECONNECT)
        assert c.cache == CacheAction.INVALIDATE and c.early_stopped
        assert Extension.PIPECONNECT in c.changed
    with Capabilities.parse(EXIM_EHLO.replace(b"250-CHUNKING\r\n", b"")) as no_chunking:
        c = check_ehlo(exim, no_chunking, Extension.PIPECONNECT | Extension.CHUNKING)
        assert c.cache == CacheAction.STORE
        assert c.used_changed == Extension.CHUNKING
    assert check_ehlo(None, exim).cache == CacheAction.STORE


def test_names_come_from_the_library():
    assert [command_name(k) for k in CommandKind] == [k.name for k in CommandKind]
    assert [reason_name(r) for r in Reason] == [r.name for r in Reason]
    assert [verdict_name(v) for v in Verdict] == [v.name for v in Verdict]
    assert reason_name(99) == verdict_name(99) == command_name(99) == "UNKNOWN"
