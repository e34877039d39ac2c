#!/usr/bin/env python3
"""Interop: the C example client pc-deliver (examples-c/client, linked against
target/release/libpipeconnect.so) against a real Exim 4.96 on loopback.

Every case asserts on what Exim logged (its mainlog / rejectlog), not only on what
the client says. Run by tests/exim/run.sh, which builds the client with TLS and sets:

    PC_DELIVER        the client binary (default target/release/pc-deliver)
    PIPECONNECT_TOOL  the pipeconnect command, for `cache dump` (default
                      target/release/pipeconnect)

Needs root and exim4-daemon-heavy (see tests/exim/README.md).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import exim_harness as eh  # noqa: E402

CLIENT = os.environ.get("PC_DELIVER", os.path.join(ROOT, "target/release/pc-deliver"))
TOOL = os.environ.get("PIPECONNECT_TOOL", os.path.join(ROOT, "target/release/pipeconnect"))
CLIENT_TIMEOUT = 60
FROM = "sender@client.test.example"
EHLO = "client.test.example"
GOOD = "rcpt@test.example"


def free_port():
    """A TCP port nobody listens on now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EximInterop(unittest.TestCase):
    """One Exim per test, on its own port and workdir; one store file per test."""

    def setUp(self):
        for path, what in ((CLIENT, "pc-deliver"), (TOOL, "pipeconnect")):
            if not os.access(path, os.X_OK):
                self.fail("%s not found at %s (run tests/exim/run.sh)" % (what, path))
        self.tmp = tempfile.mkdtemp(prefix="pc-interop-")
        # Exim's unprivileged processes must traverse it to reach their workdir.
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.store = os.path.join(self.tmp, "pipeconnect.store")
        self.port = free_port()
        self.exim = None

    def start_exim(self, **options):
        if self.exim is not None:
            eh.stop(self.exim)
        workdir = os.path.join(self.tmp, "exim")
        # Exim decides "early pipelining used" (L* in the log) by whether the client's
        # input is already there when it sends its banner, and answers early input
        # without PIPECONNECT with a 554. On loopback the early flight normally wins that
        # race, but a busy machine can deschedule the client between connect() and
        # write(). A delay in the connect ACL, before the banner, takes scheduling out of
        # what the tests assert. (Exim's ACL delay takes whole seconds.)
        options.setdefault("extra_main", "acl_smtp_connect = accept delay = 1s")
        self.exim = eh.start(self.port, workdir, **options)
        self.addCleanup(self._stop_exim, self.exim)
        return self.exim

    def _stop_exim(self, h):
        try:
            eh.stop(h)
        except eh.HarnessError:
            pass

    # ---- the client ----

    def deliver(self, *args, rcpts=(GOOD,), mode="oneflight", expect_rc=0):
        """One delivery (its own process); returns the parsed JSON line."""
        cmd = [CLIENT, "--server", "127.0.0.1", "--port", str(self.port),
               "--store", self.store, "--ehlo", EHLO, "--from", FROM,
               "--mode", mode, "--json", "--timeout-ms", "20000"]
        for r in rcpts:
            cmd += ["--to", r]
        cmd += list(args)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=CLIENT_TIMEOUT, stdin=subprocess.DEVNULL)
        out = p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        lines = [l for l in out.splitlines() if l.startswith("{")]
        self.assertEqual(len(lines), 1, "client output:\n%s\n%s" % (out, err))
        d = json.loads(lines[0])
        d["stderr"] = err
        self.assertEqual(p.returncode, expect_rc,
                         "client exit %d, expected %d: %s\n%s\n--- mainlog:\n%s"
                         % (p.returncode, expect_rc, out, err, self.mainlog()))
        return d

    # ---- what Exim logged ----

    def mainlog(self):
        return eh.mainlog(self.exim) if self.exim else ""

    def accepted(self, count):
        """Wait until Exim logged `count` accepted messages; return those lines."""
        eh.wait_for_log(self.exim, " <= ", count=count)
        lines = eh.accepted_lines(self.exim)
        self.assertEqual(len(lines), count, "\n".join(lines))
        return lines

    def cache_dump(self):
        p = subprocess.run([TOOL, "cache", "dump", self.store], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr.decode("utf-8", "replace"))
        return p.stdout.decode("utf-8", "replace")

    def key(self, state="cleartext"):
        return "127.0.0.1:%d/%s" % (self.port, state)

    # ---- the cases ----

    def test_a_first_delivery_learns_and_the_second_is_early_pipelined(self):
        self.start_exim()
        first = self.deliver(mode="early")
        self.assertEqual((first["result"], first["early"]), ("ok", 0), first)
        self.assertIn(self.key(), self.cache_dump())
        second = self.deliver(mode="early")
        self.assertEqual((second["result"], second["early"], second["waits"]),
                         ("ok", 1, 2), second)
        lines = self.accepted(2)
        # L. : PIPECONNECT advertised, not used (the learning delivery, pipelined);
        # L* : input arrived before the banner: early pipelining.
        self.assertIn(" L. ", lines[0])
        self.assertNotIn(" L* ", lines[0])
        self.assertIn(" L* ", lines[1])
        for line in lines:
            self.assertIn("H=(%s)" % EHLO, line)
            self.assertIn("for %s" % GOOD, line)
            self.assertNotIn(" K ", line)  # DATA, not BDAT, in early mode
        self.assertNotIn("synchronization error", self.mainlog())

    def test_b_starttls_early_in_both_states(self):
        self.start_exim()
        first = self.deliver("--starttls")
        self.assertEqual((first["result"], first["early"]), ("ok", 0), first)
        dump = self.cache_dump()
        self.assertIn(self.key("cleartext"), dump)
        self.assertIn(self.key("encrypted"), dump)
        second = self.deliver("--starttls")
        self.assertEqual((second["result"], second["early"]), ("ok", 1), second)
        # Early EHLO+STARTTLS, then early EHLO..BDAT LAST after the handshake: two waits.
        self.assertEqual(second["waits"], 2, second)
        lines = self.accepted(2)
        for line in lines:
            self.assertIn("P=esmtps", line)
            self.assertIn("X=TLS1.", line)
        self.assertIn(" L* ", lines[1])
        self.assertIn(" K ", lines[1])

    def test_c_auth_plain_with_initial_response(self):
        self.start_exim()
        first = self.deliver("--auth-plain", "%s:%s" % (eh.AUTH_USER, eh.AUTH_PASSWORD))
        self.assertEqual(first["result"], "ok", first)
        second = self.deliver("--auth-plain", "%s:%s" % (eh.AUTH_USER, eh.AUTH_PASSWORD))
        self.assertEqual((second["result"], second["early"], second["waits"]),
                         ("ok", 1, 1), second)
        lines = self.accepted(2)
        for line in lines:
            self.assertIn("P=esmtpa", line)
            self.assertIn("A=plain_server:%s" % eh.AUTH_USER, line)
        self.assertIn(" L* ", lines[1])
        # A wrong password. PLAIN with an initial response lets MAIL, RCPT and BDAT ride
        # behind the AUTH (RFC 4954 section 4); Exim refuses the AUTH (535), then takes
        # the transaction unauthenticated, since its RCPT ACL accepts local recipients.
        # The client must report what the server did, the message accepted, or a retry
        # would deliver it twice.
        bad = self.deliver("--auth-plain", "%s:wrong" % eh.AUTH_USER)
        self.assertEqual((bad["result"], bad["early"]), ("ok", 1), bad)
        self.assertIn("535", bad["detail"])
        self.assertIn("accepted the message after an earlier failure", bad["stderr"])
        eh.wait_for_log(self.exim, "authenticator failed")
        lines = self.accepted(3)
        self.assertIn("P=esmtp ", lines[2])
        self.assertNotIn("A=plain_server", lines[2])

    def test_d_chunking_whole_message_in_one_flight(self):
        self.start_exim()
        self.deliver("--body-size", "5000")
        d = self.deliver("--body-size", "5000")
        self.assertEqual((d["result"], d["early"], d["waits"]), ("ok", 1, 1), d)
        self.assertEqual(d["reason"], "END_OF_SEQUENCE", d)
        lines = self.accepted(2)
        self.assertIn(" L* ", lines[1])
        self.assertIn(" K ", lines[1])  # BDAT was used
        eh.wait_for_log(self.exim, "Completed", count=2)
        box = eh.mailbox(self.exim)
        self.assertEqual(box.count("Subject: pc-deliver test message"), 2)

    def test_e_rejected_recipient(self):
        self.start_exim(reject_rcpt=["bad@test.example"])
        self.deliver()
        # Early, relaxed invalidation (as Exim does it), one good and one bad recipient.
        d = self.deliver("--relaxed", rcpts=(GOOD, "bad@test.example"))
        self.assertEqual((d["result"], d["early"]), ("ok", 1), d)
        self.assertEqual((d["rcpt_accepted"], d["rcpt_rejected"]), (1, 1), d)
        self.assertIn("<bad@test.example>: 550", d["stderr"])
        lines = self.accepted(2)
        self.assertIn(" L* ", lines[1])
        self.assertIn("for %s" % GOOD, lines[1])
        self.assertNotIn("bad@test.example", lines[1])
        log = eh.wait_for_log(self.exim, "rejected RCPT <bad@test.example>")
        self.assertIn("rejected by test harness: bad@test.example", log)
        self.assertIn(self.key(), self.cache_dump())
        # Only the bad one: rejected, nothing accepted; the strict default rule then
        # drops the entry (a 5xx in a transaction that used early pipelining).
        d = self.deliver(rcpts=("bad@test.example",), expect_rc=1)
        self.assertEqual((d["result"], d["early"]), ("rejected", 1), d)
        eh.wait_for_log(self.exim, "rejected RCPT <bad@test.example>", count=2)
        self.assertEqual(len(eh.accepted_lines(self.exim)), 2)
        self.assertNotIn(self.key(), self.cache_dump())

    def test_f_pipeconnect_withdrawn_client_reconnects_classic(self):
        self.start_exim()
        self.deliver()
        self.assertIn(self.key(), self.cache_dump())
        # The same server restarted without PIPECONNECT.
        self.start_exim(pipeconnect=False)
        d = self.deliver()
        self.assertEqual((d["result"], d["reconnected"], d["early"]), ("ok", 1, 0), d)
        log = eh.wait_for_log(self.exim, "SMTP protocol synchronization error")
        self.assertIn("input sent without waiting for greeting", log)
        lines = self.accepted(1)
        self.assertNotIn(" L* ", lines[0])
        self.assertNotIn(" L. ", lines[0])  # not advertised any more
        # The entry is gone: the classic EHLO reply had no PIPECONNECT to re-learn.
        self.assertNotIn(self.key(), self.cache_dump())
        # The next delivery is classic from the start: no second sync error.
        d = self.deliver()
        self.assertEqual((d["result"], d["reconnected"], d["early"]), ("ok", 0, 0), d)
        self.accepted(2)
        self.assertEqual(self.mainlog().count("SMTP protocol synchronization error"), 1)

    def test_g_probe_reads_exim_in_both_tls_states(self):
        self.start_exim()
        p = subprocess.run([TOOL, "probe", "127.0.0.1:%d" % self.port, "--starttls",
                            "--ehlo", EHLO], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=CLIENT_TIMEOUT)
        out = p.stdout.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, out + p.stderr.decode("utf-8", "replace"))
        self.assertIn("banner: 220 %s ESMTP Exim 4.96" % eh.HOSTNAME, out)
        self.assertIn("cleartext: PIPELINING PIPECONNECT STARTTLS CHUNKING", out)
        self.assertIn("encrypted: PIPELINING PIPECONNECT CHUNKING", out)
        self.assertEqual(out.splitlines()[-1],
                         "summary: pipeconnect=yes starttls=yes encrypted_pipeconnect=yes "
                         "chunking=yes round_trips_saved=3.5")
        # Classic all the way: Exim saw a STARTTLS and no early input, and no message.
        log = eh.wait_for_log(self.exim, "no MAIL in SMTP connection")
        self.assertNotIn("synchronization error", log)
        self.assertEqual(eh.accepted_lines(self.exim), [])

    def start_redis(self):
        """A redis-server of this test's own on a free loopback port, stopped by pid."""
        if shutil.which("redis-server") is None:
            if os.environ.get("CI") == "true":
                self.fail("redis-server is not installed (CI=true)")
            self.skipTest("redis-server is not installed")
        port = free_port()
        rdir = os.path.join(self.tmp, "redis")
        os.mkdir(rdir)
        p = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", rdir,
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

        def stop():
            p.kill()
            p.wait()

        self.addCleanup(stop)
        for _ in range(250):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                import time
                time.sleep(0.02)
        return "redis://127.0.0.1:%d" % port

    def test_h_second_host_is_early_because_the_first_learned(self):
        """Two hosts with their own stores and a shared Redis (docs/FLEET.md): host B's
        first delivery to the server is early because host A learned it."""
        url = self.start_redis()
        self.start_exim()
        store_a = self.store
        store_b = os.path.join(self.tmp, "host-b.store")
        shared = ("--shared", url, "--shared-prefix", "interop:%d:" % self.port)
        self.store = store_a
        a = self.deliver(*shared, mode="early")
        self.assertEqual((a["result"], a["early"]), ("ok", 0), a)
        self.assertNotIn("shared tier not attached", a["stderr"])
        self.store = store_b
        b = self.deliver(*shared, mode="early")
        self.assertEqual((b["result"], b["early"]), ("ok", 1), b)
        self.assertIn(self.key(), self.cache_dump())  # B keeps the entry locally
        lines = self.accepted(2)
        self.assertNotIn(" L* ", lines[0])
        self.assertIn(" L* ", lines[1])
        # Without the shared tier, a third host's first delivery is classic.
        self.store = os.path.join(self.tmp, "host-c.store")
        c = self.deliver(mode="early")
        self.assertEqual((c["result"], c["early"]), ("ok", 0), c)


if __name__ == "__main__":
    unittest.main(verbosity=2)
