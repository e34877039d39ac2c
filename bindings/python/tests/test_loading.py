"""Finding the library, and checking its version against the binding's."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import warnings

import pytest

import pipeconnect
from pipeconnect import _ffi


def test_loaded_library_is_the_version_the_binding_was_written_for():
    assert pipeconnect.__library_version__ == "0.2.0"
    assert pipeconnect.library_version() == pipeconnect.__library_version__
    major, minor, patch = (int(x) for x in pipeconnect.library_version().split("."))
    assert _ffi.lib.pipeconnect_version_number() == major * 10000 + minor * 100 + patch


def test_env_variable_is_used_when_set():
    if os.environ.get(_ffi.ENV_LIBRARY):
        assert os.path.samefile(pipeconnect.library_path(), os.environ[_ffi.ENV_LIBRARY])
    else:
        pytest.skip(f"{_ffi.ENV_LIBRARY} is not set")


def test_version_rules():
    assert _ffi.check_version("0.1.0", "0.1.0", "0.1.0") is None
    with pytest.raises(_ffi.LibraryVersionError, match=r"1\.0\.0.*0\.1\.0"):
        _ffi.check_version("1.0.0", "0.1.0", "0.1.0")
    with pytest.raises(_ffi.LibraryVersionError, match=r"0\.1\.0.*at least 0\.2\.0"):
        _ffi.check_version("0.1.0", "0.2.0", "0.2.0")
    # Before 1.0 a minor release may change the C interface: another minor is refused.
    with pytest.raises(_ffi.LibraryVersionError, match=r"0\.3\.1.*0\.2\.0.*minor"):
        _ffi.check_version("0.3.1", "0.2.0", "0.2.0")
    warning = _ffi.check_version("0.2.5", "0.2.0", "0.2.0")
    assert warning and "0.2.5" in warning and "0.2.0" in warning
    warning = _ffi.check_version("1.3.1", "1.2.0", "1.2.0")
    assert warning and "1.3.1" in warning
    with pytest.raises(_ffi.LibraryVersionError, match="unreadable"):
        _ffi.check_version("banana", "0.1.0", "0.1.0")
    assert issubclass(_ffi.LibraryVersionError, ImportError)


def test_search_order_without_the_env_variable(monkeypatch, tmp_path):
    monkeypatch.delenv(_ffi.ENV_LIBRARY, raising=False)
    monkeypatch.setattr(_ffi, "_package_dir", lambda: str(tmp_path))
    names = [how for how, _ in _ffi.library_candidates()]
    assert names[0] == "soname"
    assert _ffi.library_candidates()[0][1] == "libpipeconnect.so.0.2"
    assert _ffi.soname("0.2.0") == "libpipeconnect.so.0.2"
    assert _ffi.soname("1.4.2") == "libpipeconnect.so.1"
    (tmp_path / "_lib").mkdir()
    bundled = tmp_path / "_lib" / "libpipeconnect.so.0.2"
    shutil.copy(pipeconnect.library_path(), bundled)
    cands = _ffi.library_candidates()
    assert cands[0] == ("bundled copy", str(bundled))
    assert [how for how, _ in cands][1] == "soname"
    loaded = _ffi.load()
    assert loaded.path == str(bundled) and loaded.version == pipeconnect.library_version()


def test_env_variable_wins_and_is_not_second_guessed(monkeypatch, tmp_path):
    monkeypatch.setenv(_ffi.ENV_LIBRARY, str(tmp_path / "nowhere.so"))
    assert _ffi.library_candidates() == [(f"${_ffi.ENV_LIBRARY}", str(tmp_path / "nowhere.so"))]
    with pytest.raises(_ffi.LibraryNotFoundError) as info:
        _ffi.load()
    assert "nowhere.so" in str(info.value) and _ffi.ENV_LIBRARY in str(info.value)
    assert isinstance(info.value, ImportError)


def test_import_fails_clearly_for_a_missing_library(tmp_path):
    env = dict(os.environ, **{_ffi.ENV_LIBRARY: str(tmp_path / "missing.so")})
    proc = subprocess.run(
        [sys.executable, "-c", "import pipeconnect"], env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "LibraryNotFoundError" in proc.stderr and "missing.so" in proc.stderr


def test_a_library_lacking_a_bound_function_is_refused(monkeypatch):
    monkeypatch.setitem(_ffi.FUNCTIONS, "pipeconnect_no_such_function", (None, ()))
    with pytest.raises(_ffi.LibraryVersionError, match="pipeconnect_no_such_function"):
        _ffi.Library(ctypes.CDLL(pipeconnect.library_path()), pipeconnect.library_path())


def test_every_table_entry_is_bound_with_types():
    for name, (restype, argtypes) in _ffi.FUNCTIONS.items():
        fn = getattr(_ffi.lib, name)
        assert fn.restype is restype, name
        assert list(fn.argtypes) == list(argtypes), name
    with pytest.raises(AttributeError, match="not bound"):
        _ffi.lib.pipeconnect_unbound  # noqa: B018


def test_no_warning_for_the_matching_version():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _ffi.Library(ctypes.CDLL(pipeconnect.library_path()), pipeconnect.library_path())


def test_package_is_typed():
    from pathlib import Path

    assert (Path(pipeconnect.__file__).parent / "py.typed").is_file()


def test_handles_left_open_at_exit_are_harmless():
    code = (
        "import pipeconnect as p\n"
        "c = p.Cache(); k = p.Key('192.0.2.1')\n"
        "s = p.Session(c, k, p.Intent(rcpts=1, ehlo_name='c.test'))\n"
        "caps = p.Capabilities.parse(b'250 OK\\r\\n')\n"
        "cycle = [c, k, s, caps]; cycle.append(cycle)\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ok\n" and proc.stderr == ""
