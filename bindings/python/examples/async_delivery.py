"""Deliver a message over SMTP with asyncio, using early pipelining (PIPECONNECT) when the
capability cache allows it.

The first delivery to a server is classic: wait for the banner, send EHLO, learn the
reply. Later deliveries (with the same cache) send EHLO, MAIL, RCPT and the body before the
banner arrives: one round trip for the whole message when the server offers CHUNKING.

    python async_delivery.py 127.0.0.1 2525 --to rcpt@example.org --times 2
    python async_delivery.py 127.0.0.1 2525 --store /tmp/pc.store   # shared by processes

The library plans and checks; this script owns the socket. No TLS here: a key is for a
cleartext connection, and the intent does not ask for STARTTLS.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import pipeconnect
from pipeconnect import (
    BodyMode,
    Cache,
    CommandKind,
    Event,
    Intent,
    Key,
    Session,
    Settings,
    Summary,
    Verdict,
)


@dataclass
class Delivery:
    """What one delivery did."""

    summary: Summary
    #: How many commands went before the banner (0: classic), and why the flight stopped.
    flight: pipeconnect.policy.Flight
    events: List[Event] = field(default_factory=list)
    #: Every line written, for logs and tests (the body is shown as its size).
    sent: List[bytes] = field(default_factory=list)

    @property
    def early(self) -> bool:
        return self.summary.early

    @property
    def accepted(self) -> bool:
        return self.summary.message_accepted


def crlf_body(text: bytes) -> bytes:
    """The body with CRLF line ends and a final CRLF."""
    lines = text.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join(line + b"\r\n" for line in lines)


def dot_stuff(body: bytes) -> bytes:
    """RFC 5321 dot-stuffing of a CRLF body (a leading '.' on a line is doubled)."""
    stuffed = body.replace(b"\r\n.", b"\r\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


async def deliver(
    cache: Cache,
    host: str,
    port: int,
    *,
    ehlo_name: str,
    mail_from: str,
    rcpts: Sequence[str],
    body: bytes,
    settings: Settings = pipeconnect.policy.EARLY_ALLOWED,
    timeout: float = 30.0,
) -> Delivery:
    """Deliver ``body`` to ``rcpts`` at ``host`` (an IP address) and ``port``."""
    body = crlf_body(body)
    stuffed = dot_stuff(body)
    # The intent's body size is the size as sent. BDAT sends the body as it is and DATA
    # sends it dot-stuffed; when those differ, ask for DATA so the size is unambiguous.
    mode = BodyMode.AUTO if stuffed == body else BodyMode.DATA
    intent = Intent(
        rcpts=list(rcpts),
        ehlo_name=ehlo_name,
        mail_from=mail_from,
        body_size=len(stuffed if mode == BodyMode.DATA else body),
        body_mode=mode,
    )
    events: List[Event] = []
    sent: List[bytes] = []
    with Key(host, port) as key, Session(cache, key, intent, settings) as session:
        flight = session.reason  # the early flight planned from the cache (0: classic)
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        in_step = True
        try:
            while True:
                # Everything the session releases now: before the banner, this is the
                # early flight; later, each group after the replies it waited for.
                for cmd in session.flight():
                    if cmd.kind == CommandKind.BODY:
                        writer.write(stuffed + b".\r\n")
                        sent.append(b"<body %d bytes>.\r\n" % len(stuffed))
                        continue
                    line = session.command_line(cmd)
                    writer.write(line)
                    sent.append(line)
                    if cmd.kind == CommandKind.BDAT_LAST:
                        assert cmd.size == len(body)
                        writer.write(body)
                        sent.append(b"<body %d bytes>" % len(body))
                await writer.drain()
                if session.done:
                    break
                data = await asyncio.wait_for(reader.read(65536), timeout)
                if not data:
                    in_step = False
                    break
                try:
                    got = session.feed(data)
                except pipeconnect.PipeconnectError as e:
                    events += e.events
                    in_step = False
                    break
                events += got
                if any(e.flags & pipeconnect.EventFlags.OUT_OF_STEP for e in got):
                    in_step = False
        finally:
            summary = session.finish()
            try:
                if in_step and not writer.is_closing():
                    writer.write(b"QUIT\r\n")
                    await writer.drain()
                    await asyncio.wait_for(reader.read(65536), timeout)
            except (OSError, asyncio.TimeoutError):
                pass
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
    return Delivery(summary=summary, flight=flight, events=events, sent=sent)


def _describe(n: int, d: Delivery) -> str:
    mode = f"early ({d.flight.allowed} commands before the banner)" if d.early else "classic"
    verdict = d.summary.verdict
    name = verdict.name if isinstance(verdict, Verdict) else str(verdict)
    outcome = "accepted" if d.accepted else f"not accepted ({name})"
    return (
        f"delivery {n}: {mode}, {outcome}, {d.summary.groups} group(s) of commands, "
        f"{d.summary.rcpt_accepted} recipient(s) accepted"
    )


async def _main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("host", help="server IP address")
    p.add_argument("port", type=int)
    p.add_argument("--ehlo-name", default="client.test")
    p.add_argument("--from", dest="mail_from", default="sender@client.test")
    p.add_argument("--to", dest="rcpts", action="append", default=[])
    p.add_argument("--store", help="use the shared file store at this path")
    p.add_argument("--times", type=int, default=1, help="deliver this many times")
    p.add_argument("--classic", action="store_true", help="never use early pipelining")
    args = p.parse_args(argv)
    rcpts = args.rcpts or ["rcpt@server.test"]
    body = b"Subject: early pipelining\r\n\r\nHello from pipeconnect for Python.\r\n"
    settings = Settings(early_allowed=not args.classic)
    cache = Cache.open(args.store) if args.store else Cache()
    status = 0
    with cache:
        for n in range(1, args.times + 1):
            d = await deliver(
                cache,
                args.host,
                args.port,
                ehlo_name=args.ehlo_name,
                mail_from=args.mail_from,
                rcpts=rcpts,
                body=body,
                settings=settings,
            )
            print(_describe(n, d), flush=True)
            if not d.accepted:
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(asyncio.run(_main()))
