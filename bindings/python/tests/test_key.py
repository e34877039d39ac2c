"""Keys: canonical text, equality, narrowing, and bad input."""

from __future__ import annotations

import gc

import pytest

import pipeconnect
from pipeconnect import Key, Result, TlsState


def test_text_forms():
    with Key("192.0.2.1") as k:
        assert str(k) == "192.0.2.1:25/cleartext"
        assert k.tls is TlsState.CLEARTEXT
        with k.with_tls(TlsState.ENCRYPTED) as e:
            assert str(e) == "192.0.2.1:25/encrypted"
            assert e.tls is TlsState.ENCRYPTED
            assert e != k
    with Key("2001:db8::1", 587, TlsState.ENCRYPTED) as k:
        assert str(k) == "[2001:db8::1]:587/encrypted"


def test_spellings_of_one_address_are_one_key():
    assert Key("[2001:db8::1]") == Key("2001:0db8:0:0::1")
    assert Key("::ffff:192.0.2.1") == Key("192.0.2.1")
    assert Key("192.0.2.1") != Key("192.0.2.1", 26)
    assert len({Key("[2001:db8::1]"), Key("2001:0db8::1"), Key("2001:db8:0::1")}) == 1


def test_narrowing_by_local_address_and_ehlo_name():
    k = Key("192.0.2.1", local="198.51.100.7", ehlo_name="Client.Example")
    assert str(k) == "192.0.2.1:25/cleartext from 198.51.100.7 as client.example"
    assert k == Key("192.0.2.1").with_local("198.51.100.7").with_ehlo_name("CLIENT.example")
    assert k != Key("192.0.2.1", local="198.51.100.7")
    # with_* return new keys; the original is unchanged.
    base = Key("192.0.2.1")
    narrowed = base.with_ehlo_name("a.example")
    assert str(base) == "192.0.2.1:25/cleartext"
    assert str(narrowed).endswith(" as a.example")


def test_narrowed_keys_are_separate_cache_entries(exim_ehlo):
    with pipeconnect.Cache() as c:
        plain = Key("192.0.2.1")
        named = plain.with_ehlo_name("a.example")
        c.learn(named, exim_ehlo)
        assert c.lookup(plain) is None
        caps = c.lookup(Key("192.0.2.1", ehlo_name="A.EXAMPLE"))
        assert caps is not None
        caps.close()


@pytest.mark.parametrize(
    "args, kwargs, code",
    [
        (("192.0.2.300",), {}, Result.ERR_INVALID_ADDRESS),
        (("mx.example.com",), {}, Result.ERR_INVALID_ADDRESS),
        (("",), {}, Result.ERR_INVALID_ADDRESS),
        (("192.0.2.1", 0), {}, Result.ERR_INVALID_ARGUMENT),
        (("192.0.2.1", 65536), {}, Result.ERR_INVALID_ARGUMENT),
        (("192.0.2.1", -1), {}, Result.ERR_INVALID_ARGUMENT),
        (("192.0.2.1", 25, 7), {}, Result.ERR_INVALID_ARGUMENT),
        (("192.0.2.1",), {"local": "nowhere"}, Result.ERR_INVALID_ADDRESS),
        (("192.0.2.1",), {"ehlo_name": "bad name"}, Result.ERR_INVALID_EHLO_NAME),
        (("192.0.2.1",), {"ehlo_name": ""}, Result.ERR_INVALID_EHLO_NAME),
        (("192.0.2.1",), {"ehlo_name": "a" * 256}, Result.ERR_INVALID_EHLO_NAME),
        (("192.0.2\0.1",), {}, Result.ERR_INVALID_ARGUMENT),
    ],
)
def test_bad_input_raises_with_the_right_code(args, kwargs, code):
    with pytest.raises(pipeconnect.InvalidInputError) as info:
        Key(*args, **kwargs)
    assert info.value.code == code
    assert isinstance(info.value, ValueError)


def test_wrong_types_are_type_errors():
    with pytest.raises(TypeError):
        Key(b"192.0.2.1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Key("192.0.2.1", "25")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Key("192.0.2.1", 25, True)  # type: ignore[arg-type]


def test_close_idempotent_and_garbage_collection_frees():
    k = Key("192.0.2.1")
    k.close()
    k.close()
    with pytest.raises(ValueError, match="closed"):
        str(k)
    assert repr(k) == "<pipeconnect.Key closed>"
    for _ in range(1000):
        Key("192.0.2.1").with_tls(TlsState.ENCRYPTED)
    gc.collect()
