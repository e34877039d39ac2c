"""The shared tier on Redis through Python: options checked, a dead Redis is a quick
miss counted in the stats, and two caches share an entry through a real redis-server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

import pipeconnect
from pipeconnect import Key, PipeconnectError, TlsState

from conftest import EXIM_EHLO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bad_urls_and_options_are_refused_with_the_field():
    c = pipeconnect.Cache()
    with pytest.raises(PipeconnectError) as e:
        c.attach_shared("rediss://127.0.0.1")
    assert e.value.field == "url"
    with pytest.raises(PipeconnectError) as e:
        c.attach_shared("redis://127.0.0.1:1", prefix="has space")
    with pytest.raises(PipeconnectError):
        c.attach_shared("redis://127.0.0.1:1", secret=b"")
    c.close()


def test_a_dead_redis_is_a_quick_miss():
    c = pipeconnect.Cache()
    c.attach_shared(f"redis://127.0.0.1:{_free_port()}", deadline_ms=20, backoff_ms=60000)
    k = Key("192.0.2.1", 25, TlsState.CLEARTEXT)
    t = time.monotonic()
    assert c.lookup(k) is None
    assert c.lookup(k) is None
    assert time.monotonic() - t < 0.5
    s = c.stats
    assert s.shared_errors == 1 and s.shared_skipped_open == 1
    c.detach_shared()
    c.close()


@pytest.fixture
def redis_url():
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed (CI=true)")
        pytest.skip("redis-server is not installed")
    port = _free_port()
    d = tempfile.mkdtemp(prefix="pipeconnect-py-redis-")
    p = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
         "--save", "", "--appendonly", "no", "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(250):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}"
    finally:
        p.kill()
        p.wait()
        shutil.rmtree(d, ignore_errors=True)


def test_two_caches_share_an_entry(redis_url):
    a, b = pipeconnect.Cache(), pipeconnect.Cache()
    for c in (a, b):
        c.attach_shared(redis_url, prefix="py:", secret=b"fleet", deadline_ms=100)
    k = Key("192.0.2.7", 25, TlsState.CLEARTEXT)
    assert a.learn(k, EXIM_EHLO)
    caps = b.lookup(k)
    assert caps is not None
    caps.close()
    assert b.stats.shared_hits == 1
    a.close()
    b.close()
