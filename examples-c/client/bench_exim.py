#!/usr/bin/env python3
"""Bench: pc-deliver against a real Exim 4.96 over a 50 ms round trip, side by side with
Exim 4.96's own SMTP client and a hand-written ideal one-flight client.

Run through bench-exim.sh (it builds what is needed and checks root and exim4):

    sh examples-c/client/bench-exim.sh [--rounds N] [--one-way-ms MS] [--body-size N]

The path of every delivery:

    client -> tap (this file, `tap`) -> pipeconnect delay (one-way MS) -> Exim 4.96 daemon

The tap sits on the client's side of the slow link and stamps, with CLOCK_MONOTONIC (the
clock of Python's time.monotonic() and of pc-deliver --timestamps), when each connection
was accepted and when the final `250 ... id=` reply went through to the client. Every
client is measured the same way:

- whole process: from the spawn of the client process to its exit (the bench waits);
- to final 250: from the tap's accept (the client's connect) to the final 250 reaching
  the client; for the ideal client measured inside it too;
- exit after 250: from the final 250 to the process's exit (pc-deliver's own stamp of
  its final 250, --timestamps; the tap's for Exim's client).

Exim's client is a second Exim instance (`exim4 -C clientconf -odf -oi RCPT`, message on
stdin, a manualroute router and an smtp transport to the tap), with and without
`hosts_pipe_connect = *`. Rounds interleave the clients, so that a slower stretch of the
machine hits all of them alike; the figures are medians.

This is a bench, not a test: it prints a table and checks the goals of issue 9 (exit
within 5 ms of the final 250; the whole process no slower than Exim's; the time to the
final 250 within 10% of the ideal client's), exiting 1 when one is missed.
"""

import argparse
import os
import re
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "exim"))

FINAL_250 = re.compile(rb"(?:^|\n)250 [^\r\n]*id=[^\r\n]*\r\n")
EHLO = "client.test.example"
RCPT = "rcpt@test.example"


# ---------------------------------------------------------------------------- the tap

def tap(listen_port, upstream_port):
    """Relay one connection at a time to the delay proxy, forwarding each half-close on
    its own; print `accept ID T`, `final ID T`, `end ID T` (monotonic seconds), and
    `early ID 1` when the client wrote before the server's first byte reached it."""
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", listen_port))
    lsock.listen(16)
    print("listening 127.0.0.1:%d" % lsock.getsockname()[1], flush=True)
    conn_id = 0
    while True:
        client, _ = lsock.accept()
        t_accept = time.monotonic()
        conn_id += 1
        print("accept %d %.6f" % (conn_id, t_accept), flush=True)
        relay(conn_id, client, upstream_port)
        print("end %d %.6f" % (conn_id, time.monotonic()), flush=True)


def relay(conn_id, client, upstream_port):
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        server = socket.create_connection(("127.0.0.1", upstream_port))
    except OSError:
        client.close()
        return
    server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sel = selectors.DefaultSelector()
    sel.register(client, selectors.EVENT_READ, server)
    sel.register(server, selectors.EVENT_READ, client)
    from_server = b""
    final_seen = False
    server_spoke = False
    open_dirs = 2
    while open_dirs:
        events = sel.select(timeout=60)
        if not events:
            break  # a stuck connection: give up on it
        for key, _ in events:
            src, dst = key.fileobj, key.data
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if data:
                if src is client and not server_spoke:
                    # The client wrote before the banner reached it: an early flight.
                    server_spoke = True
                    print("early %d 1" % conn_id, flush=True)
                if src is server:
                    server_spoke = True
                try:
                    dst.sendall(data)
                except OSError:
                    pass
                if src is server and not final_seen:
                    from_server = (from_server + data)[-8192:]
                    if FINAL_250.search(from_server):
                        final_seen = True
                        print("final %d %.6f" % (conn_id, time.monotonic()), flush=True)
            else:
                # A FIN from one side: a FIN toward the other, that direction only.
                sel.unregister(src)
                open_dirs -= 1
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
    sel.close()
    client.close()
    server.close()


class Tap:
    """The tap as a child process; its lines are read as they come."""

    def __init__(self, upstream_port):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "tap", "0", str(upstream_port)],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        first = self.proc.stdout.readline().decode()
        if not first.startswith("listening "):
            raise RuntimeError("tap did not start: %r" % first)
        self.port = int(first.rsplit(":", 1)[1])
        self.events = {}
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buf = b""

    def poll(self):
        try:
            chunk = os.read(self.proc.stdout.fileno(), 65536)
        except BlockingIOError:
            chunk = b""
        self.buf += chunk
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            what, cid, t = line.decode().split()
            self.events.setdefault(int(cid), {})[what] = float(t)

    def last_conns(self, since, timeout=5.0):
        """The connections accepted after connection `since`, once each has ended."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            conns = {c: e for c, e in self.events.items() if c > since}
            if conns and all("end" in e for e in conns.values()):
                return conns
            if time.monotonic() > deadline:
                return conns
            time.sleep(0.005)

    def last_id(self):
        self.poll()
        return max(self.events) if self.events else 0

    def stop(self):
        self.proc.kill()
        self.proc.wait()


# ---------------------------------------------------------------------------- clients

def message(sender, size):
    """A message of exactly `size` bytes (CRLF lines), headers first."""
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: bench\r\n\r\n" % (sender, RCPT)).encode()
    body = b""
    left = max(size - len(head), 4)
    while left > 0:
        line = min(78, left)
        if left - line == 1:
            line -= 1
        body += b"b" * (line - 2) + b"\r\n"
        left -= line
    return head + body


def ideal_client(port, sender, size):
    """The whole transaction in one write at connect; read until the final 250.
    Returns (ms to the final 250 from the connect's start, t_final monotonic)."""
    msg = message(sender, size)
    flight = ("EHLO %s\r\nMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nBDAT %d LAST\r\n"
              % (EHLO, sender, RCPT, len(msg))).encode() + msg
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(flight)
    got = b""
    while not FINAL_250.search(got):
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("ideal client: connection closed: %r" % got)
        got += chunk
    t1 = time.monotonic()
    s.sendall(b"QUIT\r\n")
    s.shutdown(socket.SHUT_WR)
    s.settimeout(2)
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()
    return (t1 - t0) * 1000.0, t1


def exim_client_config(workdir, port, pipe_connect):
    return """\
# Exim 4.96 as the sending client of the bench (generated by bench_exim.py).
primary_hostname = {ehlo}
qualify_domain = client.test.example
exim_user = Debian-exim
exim_group = Debian-exim
never_users = root
deliver_drop_privilege = true
spool_directory = {w}/spool
log_file_path = {w}/log/%slog
pid_file_path = {w}/exim.pid
keep_environment =
host_lookup =
rfc1413_hosts =
rfc1413_query_timeout = 0s
log_selector = +pipelining +smtp_confirmation

begin routers
to_bench_server:
  driver = manualroute
  domains = test.example
  transport = bench_smtp
  route_list = * 127.0.0.1
  self = send
  no_more

begin transports
bench_smtp:
  driver = smtp
  port = {port}
  allow_localhost
  helo_data = {ehlo}
  hosts_avoid_tls = *
  {pipe}

begin retry
*  *  F,1m,1m
""".format(ehlo=EHLO, w=workdir, port=port,
           pipe="hosts_pipe_connect = *" if pipe_connect else "# no hosts_pipe_connect")


def make_exim_client(base, name, port, pipe_connect, exim):
    import pwd
    w = os.path.join(base, name)
    uid = pwd.getpwnam("Debian-exim").pw_uid
    gid = pwd.getpwnam("Debian-exim").pw_gid
    for sub in ("spool", "log"):
        d = os.path.join(w, sub)
        os.makedirs(d, exist_ok=True)
        os.chown(d, uid, gid)
        os.chmod(d, 0o750)
    os.chmod(w, 0o755)
    conf = os.path.join(w, "exim.conf")
    with open(conf, "w") as f:
        f.write(exim_client_config(w, port, pipe_connect))
    os.chown(conf, 0, 0)
    os.chmod(conf, 0o644)
    r = subprocess.run([exim, "-C", conf, "-bV"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("client config refused:\n" + r.stdout.decode())
    return conf


def spawn_timed(argv, stdin_bytes=None):
    """Run a process; returns (t_spawn, t_exit, returncode, stdout, stderr)."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin_bytes is not None
                         else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(stdin_bytes, timeout=60)
    t1 = time.monotonic()
    return t0, t1, p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


# ---------------------------------------------------------------------------- the bench

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pc-deliver", required=True)
    ap.add_argument("--tool", required=True, help="the pipeconnect program")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--one-way-ms", type=int, default=25)
    ap.add_argument("--body-size", type=int, default=2048)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--baseline", help="another pc-deliver binary (an older build) to run "
                    "in oneflight mode beside this one, measured from outside only")
    a = ap.parse_args()
    if a.rounds < 7:
        ap.error("--rounds: at least 7 (medians of 7 or more deliveries)")

    import exim_harness as eh
    exim = eh.find_exim()
    base = tempfile.mkdtemp(prefix="pc-bench-exim-")
    os.chmod(base, 0o755)
    procs = []
    server = tap_ = None
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            exim_port = s.getsockname()[1]
        # The server: PIPECONNECT and CHUNKING, no STARTTLS or AUTH (the clients all go
        # in cleartext); queue_only keeps its deliveries off the CPU during the bench.
        server = eh.start(exim_port, os.path.join(base, "server"), pipeconnect=True,
                          chunking=True, starttls=False, auth_plain=False,
                          extra_main="queue_only = true")
        delay = subprocess.Popen(
            [a.tool, "delay", "--listen", "127.0.0.1:0", "--upstream",
             "127.0.0.1:%d" % exim_port, "--one-way-ms", str(a.one_way_ms)],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        procs.append(delay)
        first = delay.stdout.readline().decode()
        delay_port = int(first.rsplit(":", 1)[1])
        tap_ = Tap(delay_port)
        store = os.path.join(base, "pipeconnect.store")
        exim_classic = make_exim_client(base, "exim-client", tap_.port, False, exim)
        exim_pipe = make_exim_client(base, "exim-client-pipe", tap_.port, True, exim)

        def pc(mode, sender, extra=()):
            return [a.pc_deliver, "--server", "127.0.0.1", "--port", str(tap_.port),
                    "--store", store, "--ehlo", EHLO, "--from", sender, "--to", RCPT,
                    "--mode", mode, "--body-size", str(a.body_size), "--timestamps"] + \
                list(extra)

        def exim_cmd(conf, sender):
            return [exim, "-C", conf, "-odf", "-oi", "-f", sender, RCPT]

        variants = [
            ("pc-deliver classic", "pc-classic@client.test.example", "pc", "classic"),
            ("pc-deliver early", "pc-early@client.test.example", "pc", "early"),
            ("pc-deliver oneflight", "pc-oneflight@client.test.example", "pc", "oneflight"),
            ("exim 4.96 client", "exim-classic@client.test.example", "exim", exim_classic),
            ("exim 4.96 client, hosts_pipe_connect", "exim-pipe@client.test.example", "exim",
             exim_pipe),
            ("ideal one-flight client", "ideal@client.test.example", "ideal", None),
        ]
        if a.baseline:
            variants.insert(3, ("pc-deliver oneflight, baseline build",
                                "pc-base@client.test.example", "base", a.baseline))
        results = {v[0]: [] for v in variants}

        def run(variant):
            name, sender, kind, arg = variant
            since = tap_.last_id()
            row = {}
            if kind == "pc":
                t0, t1, rc, out, err = spawn_timed(pc(arg, sender))
                if rc != 0 or "result=ok" not in out:
                    raise RuntimeError("%s failed (%d): %s %s" % (name, rc, out, err))
                fields = dict(f.split("=", 1) for f in out.split()[1:] if "=" in f)
                row["self_ms"] = float(fields["ms"])
                row["exit_after_own_250"] = (t1 - float(fields["t_accepted"])) * 1000.0
            elif kind == "base":
                argv = pc("oneflight", sender)
                argv[0] = arg
                argv.remove("--timestamps")
                t0, t1, rc, out, err = spawn_timed(argv)
                if rc != 0 or "result=ok" not in out:
                    raise RuntimeError("%s failed (%d): %s %s" % (name, rc, out, err))
                fields = dict(f.split("=", 1) for f in out.split()[1:] if "=" in f)
                row["self_ms"] = float(fields["ms"])
            elif kind == "exim":
                t0, t1, rc, out, err = spawn_timed(
                    exim_cmd(arg, sender), message(sender, a.body_size))
                if rc != 0:
                    raise RuntimeError("%s failed (%d): %s %s" % (name, rc, out, err))
            else:
                t0 = None
                row["self_ms"], t1 = ideal_client(tap_.port, sender, a.body_size)
            conns = tap_.last_conns(since)
            if len(conns) != 1:
                raise RuntimeError("%s: %d connections through the tap, expected 1: %r"
                                   % (name, len(conns), conns))
            ev = list(conns.values())[0]
            if "final" not in ev:
                raise RuntimeError("%s: no final 250 seen by the tap" % name)
            row["to_250"] = (ev["final"] - ev["accept"]) * 1000.0
            row["early"] = "early" in ev
            if t0 is not None:
                row["whole"] = (t1 - t0) * 1000.0
                row["exit_after_250"] = (t1 - ev["final"]) * 1000.0
            return row

        # Warm-up, not counted: pc-deliver learns the server into the store; each Exim
        # client creates its hints databases and caches the server's EHLO reply.
        for v in variants:
            run(v)
        for _ in range(a.rounds):
            for v in variants:
                results[v[0]].append(run(v))

        # Every delivery reached Exim.
        eh.wait_for_log(server, " <= ", count=(a.rounds + 1) * len(variants))

        def med(rows, key):
            vals = [r[key] for r in rows if key in r]
            return statistics.median(vals) if vals else None

        def fmt(v):
            return "%8.1f" % v if v is not None else "       -"

        print()
        print("Exim %s server, %d ms round trip (pipeconnect delay --one-way-ms %d), "
              "body %d bytes, medians of %d deliveries"
              % (eh.exim_version_info(exim).split()[2], 2 * a.one_way_ms, a.one_way_ms,
                 a.body_size, a.rounds))
        print()
        print("| client | whole process ms | to final 250 ms (tap) | own figure ms "
              "| exit after final 250 ms | sent before the banner |")
        print("|---|---:|---:|---:|---:|---:|")
        summary = {}
        for name, sender, kind, _ in variants:
            rows = results[name]
            early = sum(1 for r in rows if r["early"])
            exit_gap = med(rows, "exit_after_own_250")
            if exit_gap is None:
                exit_gap = med(rows, "exit_after_250")
            summary[name] = dict(whole=med(rows, "whole"), to_250=med(rows, "to_250"),
                                 own=med(rows, "self_ms"), exit_gap=exit_gap)
            s = summary[name]
            print("| %s | %s | %s | %s | %s | %d/%d |"
                  % (name, fmt(s["whole"]), fmt(s["to_250"]), fmt(s["own"]),
                     fmt(s["exit_gap"]), early, a.rounds))
        print()
        print("own figure: pc-deliver's ms (connect to final 250) and the ideal client's; "
              "exit after final 250: from pc-deliver's own stamp of its 250 (--timestamps), "
              "from the tap's for the others; sent before the banner: the client wrote "
              "before the server's first byte reached it (seen by the tap).")

        pc1 = summary["pc-deliver oneflight"]
        ex1 = summary["exim 4.96 client, hosts_pipe_connect"]
        ideal = summary["ideal one-flight client"]
        goals = [
            ("pc-deliver exits within 5 ms of its final 250 (every mode, median)",
             all(summary[n]["exit_gap"] <= 5.0 for n in summary
                 if n.startswith("pc-") and "baseline" not in n)),
            ("pc-deliver oneflight's whole process no slower than Exim's client with "
             "hosts_pipe_connect (%.1f <= %.1f ms)" % (pc1["whole"], ex1["whole"]),
             pc1["whole"] <= ex1["whole"]),
            ("pc-deliver oneflight's final 250 within 10%% of the ideal client's "
             "(%.1f <= %.1f ms)" % (pc1["to_250"], 1.1 * ideal["to_250"]),
             pc1["to_250"] <= 1.1 * ideal["to_250"]),
        ]
        print()
        ok = True
        for text, met in goals:
            print("%s %s" % ("met:   " if met else "MISSED:", text))
            ok = ok and met
        return 0 if ok else 1
    finally:
        if tap_ is not None:
            tap_.stop()
        for p in procs:
            p.kill()
            p.wait()
        if server is not None:
            eh.stop(server)
        if a.keep:
            print("work folder kept: %s" % base)
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "tap":
        tap(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(main())
