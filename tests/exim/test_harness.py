#!/usr/bin/env python3
"""Self-test of exim_harness.py against the real Exim 4.96 (unittest, stdlib).

Run as root:  python3 tests/exim/test_harness.py -v
Skips (does not fail) when exim4 is not installed or not running as root.
Set EXIM_HARNESS_PORT to choose the base port (default: a free one).
"""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import exim_harness as eh  # noqa: E402


def free_port():
    base = os.environ.get("EXIM_HARNESS_PORT")
    if base:
        return int(base)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_replies(sock, n, timeout=10.0):
    """Read until n complete SMTP replies (final lines 'DDD ') or EOF."""
    sock.settimeout(timeout)
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        finals = [l for l in buf.split(b"\r\n") if len(l) >= 4 and l[3:4] == b" "]
        if len(finals) >= n:
            break
        try:
            d = sock.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        buf += d
    return buf.decode("utf-8", "replace")


def ehlo_keywords(reply):
    kws = set()
    for line in reply.split("\r\n")[1:]:
        if len(line) > 4 and line.startswith("250"):
            kws.add(line[4:].upper())
    return kws


def skip_reason():
    if os.geteuid() != 0:
        return "needs root"
    try:
        eh.find_exim()
    except eh.HarnessError as e:
        return str(e)
    return None


@unittest.skipIf(skip_reason(), skip_reason() or "")
class HarnessWithPipeconnect(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = eh.start(free_port(), reject_rcpt=["bad@test.example"])

    @classmethod
    def tearDownClass(cls):
        eh.cleanup(cls.h)

    def connect(self):
        return socket.create_connection(self.h.address, timeout=10)

    def test_1_classic_ehlo_keywords(self):
        with self.connect() as s:
            banner = read_replies(s, 1)
            self.assertTrue(banner.startswith("220 mx.test.example ESMTP Exim 4.96"), banner)
            s.sendall(b"EHLO client.test.example\r\n")
            reply = read_replies(s, 1)
            s.sendall(b"QUIT\r\n")
            read_replies(s, 1)
        self.assertTrue(reply.startswith("250-mx.test.example Hello client.test.example"),
                        reply)
        kws = ehlo_keywords(reply)
        for k in ("PIPECONNECT", "PIPELINING", "CHUNKING", "STARTTLS", "AUTH PLAIN"):
            self.assertIn(k, kws, reply)
        self.assertTrue(any(k.startswith("SIZE") for k in kws), reply)

    def test_2_early_flight_delivered(self):
        body = b"Subject: harness self-test\r\n\r\nearly flight\r\n"
        flight = (b"EHLO early.test.example\r\n"
                  b"MAIL FROM:<a@client.test.example>\r\n"
                  b"RCPT TO:<bad@test.example>\r\n"
                  b"RCPT TO:<early@test.example>\r\n"
                  b"BDAT %d LAST\r\n" % len(body)) + body
        with self.connect() as s:
            s.sendall(flight)           # before reading the banner
            r = read_replies(s, 6)
            s.sendall(b"QUIT\r\n")
            read_replies(s, 1)
        lines = r.split("\r\n")
        self.assertTrue(lines[0].startswith("220 "), r)
        self.assertIn("250 OK\r\n550 rejected by test harness: bad@test.example\r\n"
                      "250 Accepted\r\n", r)
        self.assertRegex(r, r"250 OK id=\S+\r\n")
        log = eh.wait_for_log(self.h, "<= a@client.test.example")
        acc = [l for l in log.splitlines() if " <= " in l]
        self.assertIn(" L* ", acc[-1])          # early pipelining used
        self.assertIn(" K ", acc[-1])           # CHUNKING used
        eh.wait_for_log(self.h, " Completed")
        self.assertIn("early flight", eh.mailbox(self.h))
        self.assertEqual(eh.paniclog(self.h), "")


@unittest.skipIf(skip_reason(), skip_reason() or "")
class HarnessWithoutPipeconnect(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = eh.start(free_port(), pipeconnect=False)

    @classmethod
    def tearDownClass(cls):
        eh.cleanup(cls.h)

    def test_1_no_pipeconnect_keyword(self):
        with socket.create_connection(self.h.address, timeout=10) as s:
            read_replies(s, 1)
            s.sendall(b"EHLO client.test.example\r\n")
            kws = ehlo_keywords(read_replies(s, 1))
        self.assertNotIn("PIPECONNECT", kws)
        self.assertIn("PIPELINING", kws)

    def test_3_early_ehlo_gets_sync_error(self):
        with socket.create_connection(self.h.address, timeout=10) as s:
            s.sendall(b"EHLO early.test.example\r\n")
            r = read_replies(s, 1)
            # then the server closes the connection
            s.settimeout(5)
            self.assertEqual(s.recv(100), b"")
        self.assertEqual(r, eh.SYNC_ERROR_REPLY + "\r\n")
        eh.wait_for_log(self.h, "SMTP protocol synchronization error "
                        "(input sent without waiting for greeting): rejected "
                        "connection from H=[127.0.0.1]:", log="rejectlog")


@unittest.skipIf(skip_reason(), skip_reason() or "")
class HarnessLifecycle(unittest.TestCase):
    def test_stop_frees_port_and_kills_daemon(self):
        port = free_port()
        h = eh.start(port)
        pid = h.pid
        self.assertTrue(eh._pid_alive(pid))
        eh.stop(h)
        self.assertFalse(eh._pid_alive(pid))
        self.assertFalse(eh._port_listening(port))
        self.assertEqual(eh._daemon_pids_for_config(h.config), [])
        # same workdir again: old state is wiped, a new daemon starts
        h2 = eh.start(port, h.workdir)
        try:
            self.assertNotEqual(h2.pid, pid)
            self.assertEqual(eh.mainlog(h2).count("daemon started"), 1)
        finally:
            eh.cleanup(h2)


if __name__ == "__main__":
    unittest.main()
