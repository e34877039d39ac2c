#!/usr/bin/env python3
"""The server side against a real client: Exim 4.96 delivering to `pipeconnect serve`
(the project's sink, which classifies pre-banner input with the library's
`pipeconnect::server::prebanner` and logs one `prebanner` line per connection).

- Exim with `hosts_pipe_connect = *` learns the sink's EHLO on its first delivery and
  sends its second delivery's flight before the banner: the sink logs that connection as
  `class=early_flight reason=none`, and Exim logs `L*`.
- A client that talks first to a sink that never offered PIPECONNECT is logged as
  `class=pregreet reason=not_offered` (and answered 554, as Exim answers it); a bot's HELO
  before the banner is `class=pregreet reason=helo_first` even where PIPECONNECT is on.
- Exim never talks first to a sink that did not offer PIPECONNECT: `class=nothing`.

Run by tests/exim/run.sh. Needs root and exim4-daemon-heavy (see README.md). The sink is
PIPECONNECT_TOOL (default target/release/pipeconnect).
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import exim_client as ec  # noqa: E402

TOOL = os.environ.get("PIPECONNECT_TOOL", os.path.join(ROOT, "target/release/pipeconnect"))
RCPT = "rcpt@sink.test"
# A greet pause: the sink reads what arrives before its banner for this long, so that an
# early flight is classified whole, however the machine schedules the client.
GREET_PAUSE_MS = "300"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EximClientToSink(unittest.TestCase):
    def setUp(self):
        if not os.access(TOOL, os.X_OK):
            self.fail("pipeconnect not found at %s (run tests/exim/run.sh)" % TOOL)
        self.tmp = tempfile.mkdtemp(prefix="pc-server-side-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.port = free_port()
        self.log = os.path.join(self.tmp, "sink.log")
        self.sink = None

    def start_sink(self, *args):
        self.sink = subprocess.Popen(
            [TOOL, "serve", "--listen", "127.0.0.1:%d" % self.port, "--log", self.log,
             "--banner-delay-ms", GREET_PAUSE_MS] + list(args),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop_sink)
        line = self.sink.stdout.readline().decode()
        self.assertTrue(line.startswith("listening "), line)

    def stop_sink(self):
        if self.sink.poll() is None:
            self.sink.terminate()
        self.sink.wait(10)
        self.sink.stdout.close()

    def exim(self):
        c = ec.make_client(self.port)
        self.addCleanup(c.cleanup)
        return c

    def sink_log(self):
        try:
            with open(self.log) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_sink_log(self, needle, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.sink_log()
            if needle in text:
                return [ln for ln in text.splitlines() if needle in ln][0]
            time.sleep(0.05)
        self.fail("%r not in the sink's log:\n%s" % (needle, self.sink_log()))

    def deliver(self, client, n):
        rc = client.deliver(RCPT, "Subject: message %d\n\nhello\n" % n)
        self.assertEqual(rc, 0, client.last_output + client.mainlog())

    def test_exim_second_delivery_is_a_well_formed_early_flight(self):
        self.start_sink()
        client = self.exim()
        self.deliver(client, 1)
        self.deliver(client, 2)
        deliveries = [ln for ln in client.mainlog().splitlines() if " => " + RCPT in ln]
        self.assertEqual(len(deliveries), 2, client.mainlog())
        self.assertNotIn(" L* ", deliveries[0])
        self.assertIn(" L* ", deliveries[1])  # Exim: early pipelining used
        first = self.wait_sink_log("conn=1 prebanner")
        self.assertIn(" class=nothing reason=none ", first)
        second = self.wait_sink_log("conn=2 prebanner")
        # EHLO, MAIL, RCPT, BDAT LAST with the body, and QUIT, all before the banner.
        self.assertIn(" class=early_flight reason=none commands=4 ", second)
        self.assertIn(" incomplete=0", second)
        self.wait_sink_log("conn=2 message id=2 ")

    def test_exim_never_talks_first_where_pipeconnect_is_not_offered(self):
        self.start_sink("--pipeconnect", "off")
        client = self.exim()
        self.deliver(client, 1)
        self.deliver(client, 2)
        for conn in (1, 2):
            line = self.wait_sink_log("conn=%d prebanner" % conn)
            self.assertIn(" class=nothing reason=none ", line)
        self.assertNotIn("syncerror", self.sink_log())

    def test_talking_first_without_pipeconnect_offered_is_pregreet(self):
        self.start_sink("--pipeconnect", "off")
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"EHLO early.test\r\n")  # before the banner, never offered
            with s.makefile("rb") as f:
                reply = f.readline()
        self.assertEqual(reply, b"554 SMTP synchronization error\r\n")
        line = self.wait_sink_log("conn=1 prebanner")
        self.assertIn(" class=pregreet reason=not_offered commands=1 ", line)
        self.wait_sink_log("conn=1 syncerror")

    def test_a_bots_helo_before_the_banner_is_pregreet(self):
        self.start_sink("--pregreet", "reject")
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"HELO bot.test\r\nMAIL FROM:<spam@bot.test>\r\n")
            with s.makefile("rb") as f:
                reply = f.readline()
        self.assertEqual(reply, b"554 SMTP synchronization error\r\n")
        line = self.wait_sink_log("conn=1 prebanner")
        self.assertIn(" class=pregreet reason=helo_first ", line)
        # Exim, offered PIPECONNECT by the same sink, is still served early.
        client = self.exim()
        self.deliver(client, 1)
        self.deliver(client, 2)
        self.assertIn(" class=early_flight ", self.wait_sink_log("conn=3 prebanner"))


if __name__ == "__main__":
    unittest.main()
