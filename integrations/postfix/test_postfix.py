#!/usr/bin/env python3
"""The patched Postfix against a real Exim 4.96 (and one scripted server).

Run as root after build.sh: ``python3 integrations/postfix/test_postfix.py -v``.
POSTFIX_CHROOT=y runs smtp(8) chrooted (Debian's default), anything else unchrooted.
Outside CI a missing piece (no Exim, no build, not root) skips; with CI=true it fails.
"""

import os
import re
import socket
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "exim"))
sys.path.insert(0, HERE)

import exim_harness as eh  # noqa: E402
import postfix_harness as ph  # noqa: E402

CHROOT = os.environ.get("POSTFIX_CHROOT", "n") == "y"
IN_CI = os.environ.get("CI") == "true"
TOOL = os.path.join(ROOT, "target", "release", "pipeconnect")
SENDER = "sender@client.test.example"
# Exim greets a second late, so that an early flight surely reaches it before its greeting
# (on loopback Exim's L* is otherwise a race between its banner and the client's bytes).
SLOW_GREETING = "acl_smtp_connect = accept delay = 1s"
EARLY = r"pipeconnect: early flight of \d+ commands to 127\.0\.0\.1\[127\.0\.0\.1\]:%d"


def missing_piece():
    if os.geteuid() != 0:
        return "not root"
    if not ph.built():
        return "Postfix not built (integrations/postfix/build.sh)"
    try:
        eh.find_exim()
    except Exception as e:  # noqa: BLE001 - any reason is a reason to skip
        return "no Exim: %s" % e
    if not os.access(TOOL, os.X_OK):
        return "no pipeconnect tool (make build)"
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def store_dump(pf):
    """The store's entries, one a line (the store must be readable)."""
    p = subprocess.run([TOOL, "cache", "dump", "--file", pf.store], capture_output=True,
                       timeout=30)
    if p.returncode != 0:
        raise AssertionError("cache dump failed: %s" % p.stderr.decode(errors="replace"))
    return p.stdout.decode(errors="replace")


class PostfixCase(unittest.TestCase):
    def setUp(self):
        why = missing_piece()
        if why:
            if IN_CI:
                self.fail("CI: " + why)
            self.skipTest(why)
        self.port = free_port()
        self.exim = None
        self.pf = None

    def tearDown(self):
        if self.pf:
            self.pf.stop()
            if not self._outcome_ok():
                print("\n--- Postfix log (%s):\n%s" % (self.pf.workdir, self.pf.log()[-6000:]))
            else:
                self.pf.cleanup()
        if self.exim:
            eh.stop(self.exim)

    def _outcome_ok(self):
        result = getattr(self, "_outcome", None)
        errors = getattr(result, "errors", None) if result else None
        if errors is None and result is not None:
            # Python 3.11+: the result object is on the outcome.
            res = getattr(result, "result", None)
            errors = (getattr(res, "errors", []) or []) + (getattr(res, "failures", []) or [])
            return not any(t is self for t, _ in errors)
        return True

    def start_exim(self, **kw):
        self.exim = eh.start(self.port, **kw)

    def restart_exim(self, **kw):
        eh.stop(self.exim)
        self.exim = eh.start(self.port, **kw)

    def start_postfix(self, **kw):
        self.pf = ph.Postfix(self.port, chroot=CHROOT, **kw)
        self.pf.start()

    def exim_received(self, subject_tag):
        """Exim '<=' lines for messages whose Postfix queue id is in the log line's id=."""
        return [l for l in eh.accepted_lines(self.exim) if subject_tag in l]

    def deliver(self, rcpts=("good@test.example",), n=1, subject="t"):
        self.pf.send(SENDER, list(rcpts), subject)
        return self.pf.wait_log(r" status=(sent|bounced|deferred) ", n)

    # ------------------------------------------------------------ tests
    def test_learn_then_early(self):
        self.start_exim(extra_main=SLOW_GREETING)
        self.start_postfix()
        self.deliver(n=1)
        self.assertEqual(self.pf.count(EARLY % self.port), 0, "no entry yet: classic")
        self.deliver(n=2)
        self.assertEqual(self.pf.count(EARLY % self.port), 1)
        eh.wait_for_log(self.exim, " <= ", count=2)
        lines = eh.accepted_lines(self.exim)
        self.assertEqual(len(lines), 2, lines)
        self.assertIn(" L. ", lines[0])       # advertised, not used
        self.assertIn(" L* ", lines[1])       # early pipelining used
        self.assertEqual(self.pf.count(r" status=sent "), 2)
        self.assertIn("127.0.0.1:%d/cleartext" % self.port, store_dump(self.pf))

    def test_xforward_sends_ehlo_alone_early(self):
        # XFORWARD goes between EHLO and MAIL: the early flight is EHLO alone, the
        # transaction follows the EHLO reply (Exim offers no XFORWARD, so none is sent).
        self.start_exim(extra_main=SLOW_GREETING)
        self.start_postfix(extra={"smtp_send_xforward_command": "yes"})
        self.deliver(n=1)
        self.deliver(n=2)
        log = self.pf.log()
        self.assertEqual(self.pf.count(r"pipeconnect: early flight of 1 commands to "), 1, log)
        self.assertEqual(self.pf.count(r" status=sent "), 2)
        eh.wait_for_log(self.exim, " <= ", count=2)
        lines = eh.accepted_lines(self.exim)
        self.assertEqual(len(lines), 2, lines)
        self.assertIn(" L* ", lines[1])       # EHLO before the greeting

    def test_withdrawn_pipeconnect_554_reconnects_classic_once(self):
        self.start_exim()
        self.start_postfix()
        self.deliver(n=1)
        self.restart_exim(pipeconnect=False, extra_main=SLOW_GREETING)
        self.deliver(n=2)
        log = self.pf.log()
        self.assertEqual(self.pf.count(EARLY % self.port), 1, log)
        self.assertRegex(log, r"early flight to .* failed: BANNER: 554 .*reconnecting")
        self.assertIn(eh.SYNC_ERROR_REPLY, log)
        self.assertEqual(self.pf.count(r" status=sent "), 2)
        self.assertEqual(self.pf.count(r" status=(deferred|bounced) "), 0)
        eh.wait_for_log(self.exim, " <= ", count=1)
        time.sleep(0.3)
        lines = eh.accepted_lines(self.exim)
        self.assertEqual(len(lines), 1, "delivered exactly once: %s" % lines)
        self.assertNotIn("127.0.0.1:%d/cleartext" % self.port, store_dump(self.pf))
        self.pf.wait_queue_empty()

    def test_refused_early_flight_holds_the_server_down(self):
        self.start_exim()
        self.start_postfix()
        self.deliver(n=1)
        self.restart_exim(pipeconnect=False, extra_main=SLOW_GREETING)
        self.deliver(n=2)                           # 554, classic retry
        self.restart_exim()                         # PIPECONNECT again
        self.deliver(n=3)                           # learns it again
        self.deliver(n=4)                           # held down: still classic
        self.assertEqual(self.pf.count(EARLY % self.port), 1, self.pf.log())
        self.assertIn("127.0.0.1:%d/cleartext" % self.port, store_dump(self.pf))
        self.assertEqual(self.pf.count(r" status=sent "), 4)

    def test_rejected_and_deferred_recipients_beside_a_good_one(self):
        self.start_exim(reject_rcpt=["bad@test.example"], defer_rcpt=["later@test.example"],
                        extra_main=SLOW_GREETING)
        self.start_postfix()
        self.deliver(n=1)
        self.deliver(["good@test.example", "bad@test.example", "later@test.example"], n=4)
        log = self.pf.wait_log(r"to=<later@test.example>.* status=deferred ", 1)
        self.assertEqual(self.pf.count(EARLY % self.port), 1, log)
        self.assertRegex(log, r"to=<good@test.example>.* status=sent ")
        self.assertRegex(log, r"to=<bad@test.example>.* status=bounced .*550")
        self.assertRegex(log, r"to=<later@test.example>.* status=deferred .*451")
        eh.wait_for_log(self.exim, " <= ", count=2)
        time.sleep(0.3)
        lines = eh.accepted_lines(self.exim)
        self.assertEqual(len(lines), 2, lines)
        self.assertIn(" L* ", lines[1])
        self.assertIn("for good@test.example", lines[1])
        # The deferred recipient stays in the queue, nothing else (beside the bounce
        # to the sender, on its way).
        entries = [e for e in self.pf.queue_entries() if e["sender"] != "MAILER-DAEMON"]
        self.assertEqual(len(entries), 1, entries)
        self.assertEqual([r["address"] for r in entries[0]["recipients"]],
                         ["later@test.example"])

    def test_starttls_early_in_both_tls_states(self):
        self.start_exim(extra_main=SLOW_GREETING)
        self.start_postfix(tls_level="may")
        self.deliver(n=1)                   # learns both TLS states, classic
        self.deliver(n=2)                   # EHLO+STARTTLS early, then the transaction
        log = self.pf.log()
        self.assertEqual(self.pf.count(r"early flight of 2 commands to "), 1, log)
        self.assertEqual(self.pf.count(r"early flight of 4 commands to "), 1, log)
        self.assertEqual(self.pf.count(r"Trusted TLS connection established|"
                                       r"Untrusted TLS connection established|"
                                       r"Anonymous TLS connection established"), 2, log)
        self.assertEqual(self.pf.count(r" status=sent "), 2)
        eh.wait_for_log(self.exim, " <= ", count=2)
        lines = eh.accepted_lines(self.exim)
        self.assertEqual(len(lines), 2, lines)
        self.assertIn(" X=TLS", lines[1])
        self.assertIn(" L* ", lines[1])
        dump = store_dump(self.pf)
        self.assertIn("127.0.0.1:%d/cleartext" % self.port, dump)
        self.assertIn("127.0.0.1:%d/encrypted" % self.port, dump)

    def test_discarded_pipeconnect_keyword_keeps_it_classic(self):
        self.start_exim()
        self.start_postfix(extra={"smtp_discard_ehlo_keywords": "pipeconnect, silent-discard"})
        self.deliver(n=1)
        self.deliver(n=2)
        self.assertEqual(self.pf.count(EARLY % self.port), 0, self.pf.log())
        self.assertIn("127.0.0.1:%d/cleartext" % self.port, store_dump(self.pf))
        eh.wait_for_log(self.exim, " <= ", count=2)
        self.assertTrue(all(" L. " in l for l in eh.accepted_lines(self.exim)))

    def test_out_of_step_server_leaves_the_message_queued(self):
        server = ScriptedServer(self.port)
        server.start()
        try:
            self.start_postfix()
            self.deliver(n=1)                          # learns, delivered
            self.deliver(n=2)                          # early: 250 to DATA
            log = self.pf.wait_log(r"status=deferred", 1)
            self.assertEqual(self.pf.count(EARLY % self.port), 1, log)
            self.assertRegex(log, r"failed: DATA: 250 .*reconnecting")
            self.assertEqual(self.pf.count(r" status=sent "), 1, log)
            self.assertEqual(self.pf.count(r" status=bounced "), 0, log)
            self.assertEqual(len(self.pf.queue_ids()), 1, "still queued")
            self.assertEqual(server.messages, 1)
            self.assertEqual(server.connections, 3)  # learn, early, classic (421)
        finally:
            server.stop()


    def test_out_of_step_after_the_body_defers_without_a_second_copy(self):
        server = ScriptedServer(self.port, after_body=True)
        server.start()
        try:
            self.start_postfix()
            self.deliver(n=1)                          # learns, delivered
            self.deliver(n=2)                          # early: 354 to the end of data
            log = self.pf.wait_log(r"status=deferred", 1)
            self.assertRegex(log, r"failed: BODY: 354 .*out of step after the message body")
            time.sleep(1.0)
            self.assertEqual(server.connections, 2, "no immediate resend after the body")
            self.assertEqual(self.pf.count(r" status=sent "), 1, log)
            self.assertEqual(len(self.pf.queue_ids()), 1, "still queued")
        finally:
            server.stop()


class ScriptedServer(threading.Thread):
    """A server that answers well, then out of step to an early flight, then 421."""

    EHLO = (b"250-fake.test.example\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n"
            b"250-8BITMIME\r\n250 SIZE 1000000\r\n")

    def __init__(self, port, after_body=False):
        super().__init__(daemon=True)
        self.after_body = after_body
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.running = True
        self.connections = 0
        self.messages = 0

    def stop(self):
        self.running = False
        self.join(5)
        self.sock.close()

    def run(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(10)
                try:
                    self.serve(conn, self.connections)
                except OSError:
                    pass

    def serve(self, conn, n):
        f = conn.makefile("rb")
        if n == 1:
            conn.sendall(b"220 fake.test.example ESMTP\r\n")
            while True:
                line = f.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb == b"EHLO":
                    conn.sendall(self.EHLO)
                elif verb == b"DATA":
                    conn.sendall(b"354 go\r\n")
                    while f.readline() not in (b".\r\n", b""):
                        pass
                    self.messages += 1
                    conn.sendall(b"250 accepted\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")
        elif n == 2 and self.after_body:
            time.sleep(0.2)                       # the early flight arrives first
            conn.sendall(b"220 fake.test.example ESMTP\r\n" + self.EHLO +
                         b"250 ok\r\n250 ok\r\n354 go\r\n")
            while f.readline() not in (b".\r\n", b""):
                pass
            conn.sendall(b"354 out of step after the body\r\n")
            time.sleep(0.5)
        elif n == 2:
            time.sleep(0.2)                       # the early flight arrives first
            conn.sendall(b"220 fake.test.example ESMTP\r\n" + self.EHLO +
                         b"250 ok\r\n250 ok\r\n250 ok, but that was DATA\r\n")
            time.sleep(0.5)
        else:
            conn.sendall(b"421 fake.test.example busy\r\n")


if __name__ == "__main__":
    unittest.main()
