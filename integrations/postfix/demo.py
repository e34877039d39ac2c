#!/usr/bin/env python3
"""`make postfix-demo`: what early pipelining saves Postfix against a real Exim 4.96.

A real Exim (PIPECONNECT, CHUNKING, STARTTLS) sits behind `pipeconnect delay` at 50 ms
round trip; one patched Postfix delivers through it, connection caching off, one message
at a time: 7 messages with early pipelining off (stock behaviour), then one learning
delivery and 7 with it on, in cleartext and again with STARTTLS (smtp_tls_security_level
= may). Each delivery is timed at the proxy, from Postfix's connect to the last byte sent
back to it (the final reply), and cross-checked with Postfix's own delays= c+d. The last
line is the summary.

Run as root after integrations/postfix/build.sh.
"""

import os
import re
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "exim"))
sys.path.insert(0, HERE)

import exim_harness as eh  # noqa: E402
import postfix_harness as ph  # noqa: E402

RTT_MS = int(os.environ.get("RTT_MS", "50"))
N = int(os.environ.get("DELIVERIES", "7"))
TOOL = os.path.join(ROOT, "target", "release", "pipeconnect")
SENDER = "demo@client.test.example"
RCPT = "rcpt@test.example"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def patch_lines():
    out = subprocess.run(["sh", os.path.join(HERE, "patch-lines.sh")], capture_output=True,
                         text=True, check=True).stdout
    return dict(kv.split("=") for kv in out.split())


class Proxy:
    def __init__(self, upstream_port, logfile):
        self.logfile = logfile
        self.proc = subprocess.Popen(
            [TOOL, "delay", "--listen", "127.0.0.1:0", "--upstream",
             "127.0.0.1:%d" % upstream_port, "--one-way-ms", str(RTT_MS // 2),
             "--log", logfile], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if len(line) < 2 or line[0] != "listening":
            raise RuntimeError("pipeconnect delay did not start: %r" % line)
        self.port = int(line[1].rsplit(":", 1)[1])

    def records(self):
        try:
            with open(self.logfile) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        recs = []
        for line in lines:
            rec = dict(kv.split("=", 1) for kv in line.split())
            recs.append(rec)
        return recs

    def wait_records(self, count, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.records()) >= count:
                return self.records()
            time.sleep(0.05)
        raise RuntimeError("proxy logged %d connections, expected %d"
                           % (len(self.records()), count))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def postfix_cd(log, qid):
    """Postfix's own c+d delay (connection setup + transmission) for a queue id."""
    m = re.search(r"%s: to=<[^>]*>.*? delays=[\d.]+/[\d.]+/([\d.]+)/([\d.]+)," % qid, log)
    return (float(m.group(1)) + float(m.group(2))) * 1000 if m else float("nan")


def run_phase(pf, proxy, exim, label, early, tls, learn):
    """Deliver N messages (after one learning delivery if `learn`); return the records."""
    pf.set(smtp_pipeconnect_hosts="127.0.0.1" if early else "",
           smtp_tls_security_level="may" if tls else "none")
    time.sleep(0.5)
    sends = N + (1 if learn else 0)
    base_recs = len(proxy.records())
    base_sent = pf.count(r" status=sent ")
    for i in range(sends):
        pf.send(SENDER, [RCPT], "%s %d" % (label, i))
        pf.wait_log(r" status=sent ", base_sent + i + 1, timeout=60)
        proxy.wait_records(base_recs + i + 1)
    recs = proxy.records()[base_recs:][-N:]
    log = pf.log()
    qids = re.findall(r"(\w+): to=<%s>.*? status=sent " % re.escape(RCPT), log)[-N:]
    cds = [postfix_cd(log, q) for q in qids]
    times = [float(r["elapsed_ms"]) for r in recs]
    early_ok = sum(1 for r in recs
                   if all(v in r["before_banner"].split(",") for v in ("MAIL", "RCPT", "DATA")))
    print("%-14s proxy ms: %s" % (label, " ".join("%.0f" % t for t in times)))
    print("%-14s postfix c+d ms: %s" % ("", " ".join("%.0f" % c for c in cds)))
    print("%-14s before greeting: %s" % ("", " | ".join(r["before_banner"] for r in recs)))
    return statistics.median(times), statistics.median(cds), early_ok


def main():
    if os.geteuid() != 0:
        sys.exit("postfix-demo: run as root")
    if not ph.built():
        sys.exit("postfix-demo: run integrations/postfix/build.sh first")
    exim_port = free_port()
    exim = eh.start(exim_port)
    proxy = pf = None
    try:
        logfile = os.path.join(exim.workdir, "delay.log")
        proxy = Proxy(exim_port, logfile)
        pf = ph.Postfix(proxy.port, chroot=os.environ.get("POSTFIX_CHROOT", "y") == "y",
                        pipeconnect=False)
        pf.start()
        print("Exim 4.96 on 127.0.0.1:%d behind pipeconnect delay at %d ms RTT (127.0.0.1:%d)"
              % (exim_port, RTT_MS, proxy.port))
        # Each phase makes one extra delivery first (the learning delivery for the patched
        # phases, a warm-up for the stock ones) and is timed over the N after it.
        stock, stock_cd, _ = run_phase(pf, proxy, exim, "stock", False, False, learn=True)
        patched, patched_cd, k = run_phase(pf, proxy, exim, "patched", True, False, learn=True)
        stock_tls, stock_tls_cd, _ = run_phase(pf, proxy, exim, "stock tls", False, True,
                                               learn=True)
        patched_tls, patched_tls_cd, _ = run_phase(pf, proxy, exim, "patched tls", True, True,
                                                   learn=True)
        # Postfix's connection cache on: the proxy sees one connection for many messages,
        # so Postfix's c+d is the figure.
        pf.set(smtp_pipeconnect_hosts="", smtp_tls_security_level="none",
               smtp_connection_cache_destinations="127.0.0.1",
               smtp_connection_cache_time_limit="60s", smtp_connection_reuse_count_limit="0")
        time.sleep(0.5)
        base = pf.count(r" status=sent ")
        for i in range(N + 1):
            pf.send(SENDER, [RCPT], "cached %d" % i)
            pf.wait_log(r" status=sent ", base + i + 1, timeout=60)
        log = pf.log()
        qids = re.findall(r"(\w+): to=<%s>.*? status=sent " % re.escape(RCPT), log)[-N:]
        cached = statistics.median([postfix_cd(log, q) for q in qids])
        reused = len(re.findall(r" conn_use=\d+", log))

        eh.wait_for_log(exim, " <= ", count=4 * (N + 1) + N + 1, timeout=30)
        time.sleep(0.5)
        accepted = eh.accepted_lines(exim)
        ids = re.findall(r" id=(\S+@client\.test\.example)", "\n".join(accepted))
        once = len(ids) == len(set(ids)) == 4 * (N + 1) + N + 1
        print("Postfix c+d medians: stock %.0f, patched %.0f, stock tls %.0f, patched tls %.0f"
              " ms; connection cache on: %.0f ms per message (%d deliveries reused a"
              " connection)" % (stock_cd, patched_cd, stock_tls_cd, patched_tls_cd, cached,
                                reused))
        print("every message reached Exim exactly once: %s (%d messages)"
              % ("yes" if once else "NO", len(ids)))
        rtt = float(RTT_MS)
        print("saved: cleartext %.0f ms = %.2f RTT (goal >= 1.8), STARTTLS %.0f ms = %.2f RTT"
              " (goal >= 2.7); ratios patched/stock %.2f and %.2f"
              % (stock - patched, (stock - patched) / rtt, stock_tls - patched_tls,
                 (stock_tls - patched_tls) / rtt, patched / stock, patched_tls / stock_tls))
        lines = patch_lines()
        print("patch: %s lines in Postfix's existing files, %s in the new smtp_pipeconnect.c"
              % (lines["existing_files"], lines["new_file"]))
        print("summary: rtt_ms=%d stock_ms=%.0f patched_ms=%.0f stock_tls_ms=%.0f "
              "patched_tls_ms=%.0f exim_early=%d/%d patch_lines=%s"
              % (RTT_MS, stock, patched, stock_tls, patched_tls, k, N, lines["patch_lines"]))
        return 0 if once else 1
    finally:
        if pf:
            pf.cleanup()
        if proxy:
            proxy.stop()
        eh.stop(exim)


if __name__ == "__main__":
    sys.exit(main())
