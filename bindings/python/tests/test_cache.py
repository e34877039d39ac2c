"""The in-process cache through Python: the behaviours tests/c/test_cache.c checks."""

from __future__ import annotations

import threading

import pytest

import pipeconnect
from pipeconnect import Extension, Key, PipeconnectError, Reason, Result, TlsState

from conftest import EXIM_EHLO, T0, TTL


def test_exim_reply_learned_then_found_with_its_extensions(cache, key):
    assert cache.lookup(key) is None
    assert cache.learn(key, EXIM_EHLO) is True
    with cache.lookup(key) as caps:
        for ext in (
            Extension.PIPECONNECT,
            Extension.PIPELINING,
            Extension.CHUNKING,
            Extension.STARTTLS,
            Extension.AUTH,
            Extension.SIZE,
        ):
            assert caps.has(ext), ext
        assert not caps.has(Extension.DSN)
        assert caps.auth_mechanisms == ("PLAIN",)
        assert caps.has_auth("plain")
        assert caps.size_limit == 52428800
        assert caps.learned_at == T0


def test_learning_a_reply_without_pipeconnect_says_whether_it_removed_an_entry(cache, key):
    without = EXIM_EHLO.replace(b"250-PIPECONNECT\r\n", b"")
    assert without != EXIM_EHLO
    assert cache.learn(key, EXIM_EHLO) is True
    assert cache.learn(key, without) is False  # NOT_CACHED_REMOVED: not an error
    assert cache.lookup(key) is None
    assert cache.learn(key, without) is False  # NOT_CACHED
    assert pipeconnect.Result.NOT_CACHED_REMOVED.is_outcome


def test_misses_for_encrypted_other_port_other_address(cache, key):
    cache.learn(key, EXIM_EHLO)
    with key.with_tls(TlsState.ENCRYPTED) as enc, Key("192.0.2.1", 587) as p587, Key(
        "192.0.2.2", 25
    ) as other:
        assert cache.lookup(enc) is None
        assert cache.lookup(p587) is None
        assert cache.lookup(other) is None
    caps = cache.lookup(key)
    assert caps is not None
    caps.close()


def test_entry_lives_until_the_ttl_then_expires(cache, key):
    cache.learn(key, EXIM_EHLO)
    cache.set_time(T0 + TTL - 1)
    caps = cache.lookup(key)
    assert caps is not None and caps.learned_at == T0
    caps.close()
    cache.set_time(T0 + TTL)
    assert cache.lookup(key) is None
    st = cache.stats
    assert st.expirations == 1
    assert st.entries == 0
    assert st.hits == 1


def test_two_spellings_of_one_ipv6_address_are_one_key(cache):
    with Key("[2001:db8::1]") as a, Key("2001:0db8:0:0::1") as b:
        assert a == b and hash(a) == hash(b)
        assert str(b) == "[2001:db8::1]:25/cleartext"
        assert cache.learn(a, EXIM_EHLO)
        caps = cache.lookup(b)
        assert caps is not None
        caps.close()


def test_stats_count_every_kind_of_event():
    # Capacity 1: one shard, so the eviction below is certain.
    with pipeconnect.Cache(capacity=1, ttl=TTL) as c:
        c.set_time(T0)
        keys = [Key(f"192.0.2.{i}") for i in (1, 2, 3)]
        assert c.stats == pipeconnect.CacheStats(0, 0, 0, 0, 0, 0, 0)
        assert c.lookup(keys[0]) is None  # miss
        assert c.learn(keys[0], EXIM_EHLO)  # insert
        c.lookup(keys[0]).close()  # hit
        assert c.learn(keys[1], EXIM_EHLO)  # insert, evicts keys[0]
        assert c.lookup(keys[0]) is None  # miss
        assert c.forget(keys[1]) is True  # invalidation
        assert c.forget(keys[1]) is False
        assert c.learn(keys[2], EXIM_EHLO)  # insert
        c.set_time(T0 + TTL)
        assert c.lookup(keys[2]) is None  # expiration (and miss)
        assert c.stats == pipeconnect.CacheStats(
            entries=0,
            hits=1,
            misses=3,
            inserts=3,
            evictions=1,
            expirations=1,
            invalidations=1,
        )
        for k in keys:
            k.close()


def test_reply_without_pipeconnect_is_not_cached_and_removes_the_entry(cache, key):
    assert cache.learn(key, EXIM_EHLO) is True
    assert cache.learn(key, b"250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n") is False
    assert cache.lookup(key) is None


def test_learn_caps_and_clear(cache, key):
    with pipeconnect.Capabilities.parse(EXIM_EHLO) as caps:
        assert cache.learn_caps(key, caps) is True
    assert cache.stats.entries == 1
    cache.clear()
    assert cache.stats.entries == 0
    assert cache.lookup(key) is None


@pytest.mark.parametrize(
    "reply, code",
    [
        (b"HTTP/1.1 200 OK\r\n\r\n", Result.ERR_MALFORMED_REPLY),
        (b"550 no\r\n", Result.ERR_NOT_EHLO_REPLY),
        (EXIM_EHLO[:20], Result.ERR_REPLY_INCOMPLETE),
        (b"250-" + b"x" * 5000 + b"\r\n250 OK\r\n", Result.ERR_REPLY_LINE_TOO_LONG),
        (b"250-x\r\n" * 300 + b"250 OK\r\n", Result.ERR_REPLY_TOO_MANY_LINES),
        ((b"250-" + b"x" * 1000 + b"\r\n") * 70 + b"250 OK\r\n", Result.ERR_REPLY_TOO_LARGE),
    ],
    ids=["garbage", "rejection", "incomplete", "long-line", "many-lines", "oversized"],
)
def test_bad_replies_raise_the_right_code_and_leave_the_cache_unchanged(cache, key, reply, code):
    cache.learn(key, EXIM_EHLO)
    before = cache.stats
    with pytest.raises(pipeconnect.ReplyError) as info:
        cache.learn(key, reply)
    assert info.value.code == code
    assert info.value.message == pipeconnect.result_message(code)
    assert cache.stats.entries == before.entries
    caps = cache.lookup(key)
    assert caps is not None and caps.has(Extension.PIPECONNECT)
    caps.close()


def test_legacy_keyword_needs_the_option(cache, key):
    legacy = b"250-mx\r\n250-PIPELINING\r\n250 X_PIPE_CONNECT\r\n"
    assert cache.learn(key, legacy) is False
    assert cache.learn(key, legacy, legacy_keywords=True) is True


def test_out_of_range_arguments_are_refused_before_reaching_c():
    with pytest.raises(pipeconnect.InvalidInputError):
        pipeconnect.Cache(ttl=-1)
    with pytest.raises(pipeconnect.InvalidInputError):
        pipeconnect.Cache(ttl=2**64)
    with pytest.raises(TypeError):
        pipeconnect.Cache(capacity="10")  # type: ignore[arg-type]


def test_close_is_idempotent_and_use_after_close_is_an_error(key):
    c = pipeconnect.Cache()
    c.close()
    c.close()
    assert c.closed
    with pytest.raises(ValueError, match="closed"):
        c.lookup(key)
    with pytest.raises(ValueError, match="closed"):
        with c:
            pass


def test_snapshot_outlives_the_cache(key):
    with pipeconnect.Cache() as c:
        c.learn(key, EXIM_EHLO)
        caps = c.lookup(key)
    assert c.closed
    assert caps is not None and caps.size_limit == 52428800
    caps.close()


def test_many_threads_use_one_cache_at_once():
    # A roomy cache: the in-process cache is sharded, and a shard may evict before the
    # whole cache is full, which is not what this test is about.
    cache = pipeconnect.Cache(capacity=10_000, ttl=TTL)
    keys = [Key(f"198.51.100.{i}") for i in range(1, 41)]
    errors = []

    def work(part):
        try:
            for _ in range(20):
                for k in part:
                    cache.learn(k, EXIM_EHLO)
                    caps = cache.lookup(k)
                    assert caps is not None and caps.has(Extension.PIPECONNECT)
                    caps.close()
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(keys[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cache.stats.entries == 40
    assert cache.stats.hits == 40 * 20
    for k in keys:
        k.close()
    cache.close()


def test_hold_down_settings_and_counters(cache):
    s = cache.stats
    assert (s.hold_downs_entered, s.early_skipped_held_down, s.hold_downs_current) == (0, 0, 0)
    cache.set_hold_down(first=600, max=7200, growth=2, decay_after=10)
    cache.set_hold_down(first=0)  # off
    with pytest.raises(PipeconnectError):
        cache.set_hold_down(first=3600, max=60)  # the cap below the first length
    with pytest.raises(PipeconnectError):
        cache.set_hold_down(max=1)  # below the default first length
    cache.set_hold_down(growth=0)  # 0 is the default, as in every struct of the API
    assert Reason.HELD_DOWN.is_classic


def test_a_refused_early_flight_holds_the_server_down(cache, key):
    cache.set_time(T0)
    assert cache.held_down_until(key) is None
    assert cache.note_early_refused(key) is True
    assert cache.note_early_refused(key) is False  # already held
    assert cache.held_down_until(key) == T0 + 3600
    cache.note_early_success(key)  # during the hold-down: changes nothing
    assert cache.stats.hold_downs_entered == 1
    assert cache.stats.hold_downs_current == 1
    cache.set_time(T0 + 3600)
    assert cache.held_down_until(key) is None
    assert cache.stats.hold_downs_current == 0


def test_limits_tell_zero_from_absent(cache):
    caps = pipeconnect.Capabilities.parse(
        b"250-mx\r\n250 LIMITS RCPTMAX=0 MAILMAX=4294967295\r\n"
    )
    assert caps.limits == (4294967295, 0, None)
