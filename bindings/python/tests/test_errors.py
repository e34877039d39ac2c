"""Result codes, messages and the exception classes."""

from __future__ import annotations

import pytest

import pipeconnect
from pipeconnect import PipeconnectError, Result, _errors, _ffi


def test_every_result_has_the_librarys_own_message():
    for r in Result:
        msg = pipeconnect.result_message(r)
        assert msg and msg != "unknown result", r
    assert pipeconnect.result_message(Result.ERR_INVALID_ADDRESS) == (
        "not a valid IPv4 or IPv6 address"
    )
    assert pipeconnect.result_message(12345) == "unknown result"


@pytest.mark.parametrize("code", [int(r) for r in Result] + [1, 22, 6999, 7000, 7099, 7999, -1])
def test_is_error_agrees_with_the_library(code):
    assert _errors._is_error(code) == _ffi.lib.pipeconnect_result_is_error(code)
    if code in Result.__members__.values():
        assert Result(code).is_error == _ffi.lib.pipeconnect_result_is_error(code)


def test_outcomes_are_not_errors():
    assert not Result.OK.is_error and not Result.OK.is_outcome
    assert Result.NOT_FOUND.is_outcome and not Result.NOT_FOUND.is_error
    assert Result.NOT_CACHED.is_outcome
    assert Result.ERR_NULL_POINTER.is_error and not Result.ERR_NULL_POINTER.is_outcome


@pytest.mark.parametrize(
    "code, cls",
    [
        (Result.ERR_NULL_POINTER, PipeconnectError),
        (Result.ERR_INVALID_ADDRESS, pipeconnect.InvalidInputError),
        (Result.ERR_NOT_UTF8, pipeconnect.InvalidInputError),
        (Result.ERR_BAD_STATE, pipeconnect.BadStateError),
        (Result.ERR_REPLY_TOO_LARGE, pipeconnect.ReplyError),
        (Result.ERR_CORRUPT_RECORD, pipeconnect.CorruptRecordError),
        (Result.ERR_STORE_SYMLINK, pipeconnect.StoreError),
        (Result.ERR_PANIC, pipeconnect.PanicError),
        (7299, pipeconnect.ReplyError),  # a reply error added by a newer library
        (7600, PipeconnectError),
    ],
)
def test_error_for_picks_the_family(code, cls):
    err = _errors.error_for(code)
    assert type(err) is cls
    assert int(err.code) == int(code)
    assert err.message == pipeconnect.result_message(code)


def test_exception_carries_code_and_message():
    err = PipeconnectError(7102, "custom")
    assert err.code is Result.ERR_INVALID_ADDRESS
    assert err.message == "custom"
    assert err.args == (7102, "custom")
    assert str(err) == "custom (ERR_INVALID_ADDRESS, 7102)"
    unknown = PipeconnectError(7777)
    assert unknown.code == 7777 and not isinstance(unknown.code, Result)
    assert unknown.message == "unknown result"
    assert "7777" in str(unknown)
    with pytest.raises(PipeconnectError) as info:
        pipeconnect.Key("not an address")
    assert info.value.code is Result.ERR_INVALID_ADDRESS
