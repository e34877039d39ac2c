"""The shared file store (Cache.open): sharing across handles and processes, refusals."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap

import pytest

import pipeconnect
from pipeconnect import Cache, Extension, Key, Result

from conftest import EXIM_EHLO, T0, TTL

SMALL = {"sets": 16, "ways": 2}


def _open(path, **kw):
    opts = dict(SMALL, ttl=TTL)
    opts.update(kw)
    return Cache.open(path, **opts)


def test_new_store_file_is_private_and_shared_by_every_handle(tmp_path, key):
    path = tmp_path / "pc.store"
    with _open(path) as a, _open(str(path)) as b:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert a.path == str(path)
        a.set_time(T0)
        b.set_time(T0)
        assert a.learn(key, EXIM_EHLO)
        with b.lookup(key) as caps:
            assert caps.has(Extension.PIPECONNECT) and caps.size_limit == 52428800
            assert caps.learned_at == T0
        # The counters are the file's, for all its users; a handle adds its hits and
        # misses to the file's in batches, and when it closes.
        assert a.stats.entries == 1 and b.stats.hits == 1
        b.close()
        assert a.stats.hits == 1
    size = os.path.getsize(path)
    with _open(path) as again:  # it persists, and never grows
        again.set_time(T0)
        assert again.lookup(key) is not None
    assert os.path.getsize(path) == size


def test_what_one_process_learns_another_finds(tmp_path, key):
    path = tmp_path / "pc.store"
    child = textwrap.dedent(
        f"""
        import pipeconnect
        with pipeconnect.Cache.open({str(path)!r}, sets=16, ways=2, ttl={TTL}) as c, \\
                pipeconnect.Key("192.0.2.1") as k:
            c.set_time({T0})
            assert c.learn(k, {EXIM_EHLO!r})
        """
    )
    subprocess.run([sys.executable, "-c", child], check=True)
    with _open(path) as c:
        c.set_time(T0 + 10)
        caps = c.lookup(key)
        assert caps is not None and caps.learned_at == T0
        caps.close()
        c.set_time(T0 + TTL)
        assert c.lookup(key) is None
        assert c.stats.expirations == 1


def test_forget_and_clear_work_on_the_store(tmp_path, key):
    with _open(tmp_path / "s") as c:
        c.learn(key, EXIM_EHLO)
        assert c.forget(key) and not c.forget(key)
        c.learn(key, EXIM_EHLO)
        c.clear()
        assert c.lookup(key) is None


def test_symlink_is_refused(tmp_path):
    real = tmp_path / "real"
    _open(real).close()
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(pipeconnect.StoreError) as info:
        _open(link, rebuild_if_invalid=True)
    assert info.value.code == Result.ERR_STORE_SYMLINK


def test_an_io_error_keeps_its_errno(tmp_path):
    import errno

    with pytest.raises(pipeconnect.StoreError) as info:
        pipeconnect.Cache.open(tmp_path / "no-such-folder" / "store")
    assert info.value.code == pipeconnect.Result.ERR_STORE_IO
    assert info.value.os_errno == errno.ENOENT
    assert info.value.field == "path"


def test_directory_is_refused(tmp_path):
    with pytest.raises(pipeconnect.StoreError) as info:
        _open(tmp_path)
    assert info.value.code == Result.ERR_STORE_NOT_REGULAR


def test_file_writable_by_others_is_refused(tmp_path):
    path = tmp_path / "s"
    _open(path).close()
    os.chmod(path, 0o666)
    with pytest.raises(pipeconnect.StoreError) as info:
        _open(path, rebuild_if_invalid=True)
    assert info.value.code == Result.ERR_STORE_PERMISSIONS


def _open_as(uid, path):
    """Open ``path`` in a child process running as ``uid``; the child's exit status is
    the result code (0 for success)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            _open(path).close()
            code = 0
        except pipeconnect.StoreError as e:
            code = int(e.code) - 7399
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WEXITSTATUS(status) + 7399 if os.WEXITSTATUS(status) else 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file away")
def test_file_of_another_user_is_refused_but_root_gets_in(tmp_path):
    # A folder other users can reach (pytest's own are root's alone).
    folder = tempfile.mkdtemp()
    os.chmod(folder, 0o755)
    path = os.path.join(folder, "s")
    _open(path).close()
    # Root's store is another user's to nobody.
    assert _open_as(65534, path) == Result.ERR_STORE_WRONG_OWNER
    # Root opens nobody's store and leaves its owner alone; nobody still gets in.
    os.chown(path, 65534, 65534)
    _open(path, rebuild_if_invalid=True).close()
    assert os.stat(path).st_uid == 65534
    assert _open_as(65534, path) == 0
    shutil.rmtree(folder)


@pytest.mark.parametrize(
    "content, codes",
    [
        (b"", {Result.ERR_STORE_TRUNCATED, Result.ERR_STORE_BAD_MAGIC}),
        (b"not a store" * 1000, {Result.ERR_STORE_BAD_MAGIC}),
    ],
    ids=["empty", "garbage"],
)
def test_foreign_file_is_refused_or_rebuilt_on_request(tmp_path, key, content, codes):
    path = tmp_path / "s"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(pipeconnect.StoreError) as info:
        _open(path)
    assert info.value.code in codes
    assert path.read_bytes() == content  # refused means untouched
    with _open(path, rebuild_if_invalid=True) as c:
        assert c.stats.entries == 0
        assert c.learn(key, EXIM_EHLO)


def test_damaged_header_and_truncation_are_detected(tmp_path):
    path = tmp_path / "s"
    _open(path).close()
    data = bytearray(path.read_bytes())
    data[40] ^= 0xFF  # inside the header
    path.write_bytes(bytes(data))
    with pytest.raises(pipeconnect.StoreError) as info:
        _open(path)
    assert info.value.code in {
        Result.ERR_STORE_CHECKSUM,
        Result.ERR_STORE_GEOMETRY,
        Result.ERR_STORE_VERSION,
        Result.ERR_STORE_BAD_MAGIC,
    }
    _open(path, rebuild_if_invalid=True).close()
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(pipeconnect.StoreError) as info:
        _open(path)
    assert info.value.code == Result.ERR_STORE_TRUNCATED


def test_geometry_must_match_unless_zero(tmp_path):
    path = tmp_path / "s"
    _open(path).close()
    with pytest.raises(pipeconnect.StoreError) as info:
        _open(path, sets=32)
    assert info.value.code == Result.ERR_STORE_GEOMETRY
    Cache.open(path).close()  # 0: take the file's geometry


@pytest.mark.parametrize(
    "kw",
    [{"mode": 0o666}, {"mode": 0o400}, {"ways": 65}, {"sets": 2**21}, {"mode": 0o4600}],
)
def test_options_out_of_range_are_invalid_arguments(tmp_path, kw):
    with pytest.raises(pipeconnect.InvalidInputError) as info:
        _open(tmp_path / "s", **kw)
    assert info.value.code == Result.ERR_INVALID_ARGUMENT
    assert not (tmp_path / "s").exists()


def test_bad_paths(tmp_path):
    with pytest.raises(pipeconnect.InvalidInputError):
        Cache.open("")
    with pytest.raises(pipeconnect.InvalidInputError):
        Cache.open("a\0b")
    with pytest.raises(pipeconnect.StoreError) as info:
        Cache.open(tmp_path / "no" / "such" / "dir" / "s")
    assert info.value.code == Result.ERR_STORE_IO


def test_store_with_default_geometry_and_bytes_path(tmp_path, key):
    with Cache.open(os.fsencode(tmp_path / "default.store")) as c:
        assert c.learn(key, EXIM_EHLO)
        assert Key("192.0.2.1") == key
        assert c.lookup(key) is not None


@pytest.mark.parametrize(
    "reply",
    [
        EXIM_EHLO,
        b"250-mx.example\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n",
        b"250-mx\r\n250-SIZE 100\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250 LIMITS RCPTMAX=5\r\n",
        b"250-mx\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250 AUTH " + b" ".join(
            b"M%02d" % i for i in range(20)
        ) + b"\r\n",
    ],
    ids=["exim", "minimal-no-auth", "size-limits-no-auth", "many-auth"],
)
def test_store_round_trips_what_the_in_process_cache_holds(tmp_path, key, reply):
    with Cache() as mem, _open(tmp_path / "s") as store:
        for c in (mem, store):
            c.set_time(T0)
            assert c.learn(key, reply)
        a, b = mem.lookup(key), store.lookup(key)
        assert a is not None, "in-process cache lost the entry"
        assert b is not None, "file store lost the entry it just stored"
        with a, b:
            assert (b.flags, b.size_limit, b.limits, b.auth_mechanisms, b.fingerprint) == (
                a.flags,
                a.size_limit,
                a.limits,
                a.auth_mechanisms,
                a.fingerprint,
            )
            assert b.learned_at == a.learned_at == T0
