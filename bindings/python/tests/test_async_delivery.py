"""The asyncio example against the test sink (`pipeconnect serve`): the first delivery is
classic and learns, the second goes early; the sink's log shows it."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pipeconnect

import _header
from conftest import skip_unless_ci

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "examples" / "async_delivery.py"


def _sink_binary() -> Path:
    env = os.environ.get("PIPECONNECT_BIN")
    path = Path(env) if env else _header.REPO / "target" / "debug" / "pipeconnect"
    if not (path.is_file() and os.access(path, os.X_OK)):
        skip_unless_ci(
            f"the test sink {path} is not built (cargo build -p pipeconnect-tools, or set "
            "PIPECONNECT_BIN)"
        )
    return path


class Sink:
    """A running `pipeconnect serve`, stopped by the test that started it."""

    def __init__(self, tmp_path: Path, *extra: str) -> None:
        self.log = tmp_path / "sink.log"
        self.proc = subprocess.Popen(
            [str(_sink_binary()), "serve", "--listen", "127.0.0.1:0", "--log", str(self.log),
             *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        m = re.fullmatch(r"listening 127\.0\.0\.1:(\d+)\n", first)
        if not m:
            self.stop()
            raise AssertionError(f"the sink did not say where it listens: {first!r}")
        self.port = int(m.group(1))

    def lines(self, until: str = "", timeout: float = 5.0) -> list:
        """The log's lines, once one matching ``until`` is there."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log.read_text() if self.log.exists() else ""
            if not until or re.search(until, text, re.M) or time.monotonic() > deadline:
                return text.splitlines()
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def sink(tmp_path):
    # A banner delay makes "the flight arrived before the banner" certain, not a race.
    s = Sink(tmp_path, "--banner-delay-ms", "200")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("async_delivery", EXAMPLE)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["async_delivery"] = mod
    spec.loader.exec_module(mod)
    return mod


def _cmd_lines(lines, conn):
    out = []
    for line in lines:
        m = re.fullmatch(r"t_ms=\d+ conn=(\d+) tls=(\d) early=(\d) cmd=(.*)", line)
        if m and int(m.group(1)) == conn:
            out.append((m.group(4).split(" ")[0], m.group(3)))
    return out


def test_second_delivery_goes_early_and_the_sink_sees_it(sink, example):
    async def run():
        with pipeconnect.Cache() as cache:
            out = []
            for _ in range(2):
                out.append(
                    await example.deliver(
                        cache,
                        "127.0.0.1",
                        sink.port,
                        ehlo_name="client.test",
                        mail_from="sender@client.test",
                        rcpts=["a@server.test", "b@server.test"],
                        body=b"Subject: test\n\nhello\n",
                        timeout=10,
                    )
                )
            return out

    first, second = asyncio.run(run())
    assert first.accepted and not first.early
    assert first.flight.allowed == 0 and first.flight.reason == pipeconnect.Reason.NO_ENTRY
    assert first.summary.flags & pipeconnect.SummaryFlags.CACHE_STORED
    assert second.accepted and second.early
    assert second.flight.allowed == 5  # EHLO, MAIL, RCPT, RCPT, BDAT LAST
    assert second.summary.groups == 1  # one round trip for the whole message
    assert second.summary.rcpt_accepted == 2
    assert second.sent[0] == b"EHLO client.test\r\n"

    lines = sink.lines(until=r"^conn=2 closed$")
    assert _cmd_lines(lines, 1)[:2] == [("EHLO", "0"), ("MAIL", "0")]
    assert _cmd_lines(lines, 2) == [
        ("EHLO", "1"),
        ("MAIL", "1"),
        ("RCPT", "1"),
        ("RCPT", "1"),
        ("BDAT", "1"),
        ("QUIT", "0"),
    ]
    body_bytes = len(b"Subject: test\r\n\r\nhello\r\n")
    assert f"conn=1 message id=1 bytes={body_bytes} rcpts=2" in lines
    assert f"conn=2 message id=2 bytes={body_bytes} rcpts=2" in lines


def test_dot_stuffed_body_goes_with_data(sink, example):
    body = b"Subject: dots\n\n.leading dot\n..two\nend\n"

    async def run():
        with pipeconnect.Cache() as cache:
            return [
                await example.deliver(
                    cache, "127.0.0.1", sink.port, ehlo_name="client.test",
                    mail_from="", rcpts=["a@server.test"], body=body, timeout=10,
                )
                for _ in range(2)
            ]

    first, second = asyncio.run(run())
    assert first.accepted and second.accepted and second.early
    assert second.flight.reason == pipeconnect.Reason.DATA_ENDS_FLIGHT
    lines = sink.lines(until=r"^conn=2 closed$")
    assert [c for c, _ in _cmd_lines(lines, 2)][:4] == ["EHLO", "MAIL", "RCPT", "DATA"]
    # The sink counts the body after removing the dot-stuffing.
    size = len(example.crlf_body(body))
    assert f"conn=2 message id=2 bytes={size} rcpts=1" in lines


def test_a_server_that_dropped_pipeconnect_gets_classic_again(tmp_path, example):
    first_sink = Sink(tmp_path)
    try:
        async def run(port, cache):
            return await example.deliver(
                cache, "127.0.0.1", port, ehlo_name="client.test", mail_from="a@client.test",
                rcpts=["a@server.test"], body=b"x\n", timeout=10,
            )

        with pipeconnect.Cache() as cache:
            assert asyncio.run(run(first_sink.port, cache)).accepted
            port = first_sink.port
            first_sink.stop()
            # The same address and port, now without PIPECONNECT: the early EHLO is met
            # with a synchronization error, the entry goes, and the verdict is RECONNECT.
            (tmp_path / "2").mkdir()
            second = Sink(tmp_path / "2", "--listen", f"127.0.0.1:{port}", "--pipeconnect", "off",
                          "--banner-delay-ms", "200")
            try:
                d = asyncio.run(run(port, cache))
                assert d.flight.allowed > 0
                assert d.summary.verdict == pipeconnect.Verdict.RECONNECT
                assert not d.accepted
                with pipeconnect.Key("127.0.0.1", port) as key:
                    assert cache.lookup(key) is None
                again = asyncio.run(run(port, cache))  # reconnect at once, classic
                assert again.accepted and not again.early
            finally:
                second.stop()
    finally:
        first_sink.stop()


def test_command_line_example_shares_the_file_store_between_processes(sink, tmp_path):
    store = tmp_path / "pc.store"
    env = dict(os.environ)
    cmd = [sys.executable, str(EXAMPLE), "127.0.0.1", str(sink.port), "--store", str(store)]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "delivery 1: classic, accepted" in first.stdout
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert "delivery 1: early (4 commands before the banner), accepted" in second.stdout
    lines = sink.lines(until=r"^conn=2 closed$")
    assert ("EHLO", "1") in _cmd_lines(lines, 2)
