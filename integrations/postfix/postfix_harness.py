#!/usr/bin/env python3
"""A private Postfix instance (the patched build from build.sh) for libpipeconnect tests.

Python 3 standard library only. Must run as root: Postfix's master(8) starts as root,
smtp(8) opens the early pipelining store before its chroot and then drops to the
``postfix`` user.

    import postfix_harness as ph
    pf = ph.Postfix(relay_port=2525, chroot=True)      # fresh workdir in /tmp
    pf.start()
    try:
        qid = pf.send("a@client.test.example", ["b@test.example"], "hello")
        pf.wait_delivered(1)
        print(pf.log())
    finally:
        pf.stop()

Everything is private: config_directory, queue_directory, data_directory and the log
(``maillog_file`` through postlogd) live in the workdir; the binaries come from the private
root that build.sh installed (``target/postfix/root``). Mail is relayed to
``[127.0.0.1]:relay_port``. The users ``postfix`` and group ``postdrop`` are created if
missing.
"""

import json
import grp
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORK = os.environ.get("POSTFIX_WORK", os.path.join(ROOT, "target", "postfix"))
DEST = os.path.join(WORK, "root")

HELO_NAME = "client.test.example"
CMD_TIMEOUT = 60

MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
pickup     unix  n       -       n       60      1       pickup
cleanup    unix  n       -       n       -       0       cleanup
qmgr       unix  n       -       n       300     1       qmgr
tlsmgr     unix  -       -       n       1000?   1       tlsmgr
rewrite    unix  -       -       n       -       -       trivial-rewrite
bounce     unix  -       -       n       -       0       bounce
defer      unix  -       -       n       -       0       bounce
trace      unix  -       -       n       -       0       bounce
verify     unix  -       -       n       -       1       verify
flush      unix  n       -       n       1000?   0       flush
proxymap   unix  -       -       n       -       -       proxymap
smtp       unix  -       -       {chroot}       -       -       smtp
relay      unix  -       -       {chroot}       -       -       smtp
showq      unix  n       -       n       -       -       showq
error      unix  -       -       n       -       -       error
retry      unix  -       -       n       -       -       error
discard    unix  -       -       n       -       -       discard
anvil      unix  -       -       n       -       1       anvil
scache     unix  -       -       n       -       1       scache
postlog    unix-dgram n  -       n       -       1       postlogd
"""


class HarnessError(RuntimeError):
    """Anything that keeps the harness from doing its job."""


def ensure_users():
    """Create group postdrop and user postfix (system, no login) if missing."""
    try:
        grp.getgrnam("postdrop")
    except KeyError:
        subprocess.run(["groupadd", "--system", "postdrop"], check=True)
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                        "postfix"], check=True)


def built():
    """True when build.sh has installed the private root."""
    return os.access(os.path.join(DEST, "usr", "libexec", "postfix", "smtp"), os.X_OK)


class Postfix:
    def __init__(self, relay_port, workdir=None, chroot=False, pipeconnect=True,
                 tls_level="none", extra=None):
        if os.geteuid() != 0:
            raise HarnessError("the Postfix harness must run as root")
        if not built():
            raise HarnessError("no Postfix build in %s: run integrations/postfix/build.sh" % DEST)
        ensure_users()
        self.relay_port = relay_port
        self.workdir = workdir or tempfile.mkdtemp(prefix="postfix-pc-")
        os.chmod(self.workdir, 0o755)
        self.conf = os.path.join(self.workdir, "conf")
        self.queue = os.path.join(self.workdir, "queue")
        self.data = os.path.join(self.workdir, "data")
        self.maillog = os.path.join(self.workdir, "maillog")
        self.store = os.path.join(self.data, "smtp_pipeconnect_cache")
        self.chroot = chroot
        self.started = False
        for d in (self.conf, self.queue, self.data):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.queue, 0o755)
        uid = pwd.getpwnam("postfix").pw_uid
        gid = pwd.getpwnam("postfix").pw_gid
        os.chown(self.data, uid, gid)
        os.chmod(self.data, 0o700)
        params = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.data,
            "command_directory": os.path.join(DEST, "usr", "sbin"),
            "daemon_directory": os.path.join(DEST, "usr", "libexec", "postfix"),
            "meta_directory": os.path.join(DEST, "etc", "postfix"),
            "shlib_directory": "no",
            "sendmail_path": os.path.join(DEST, "usr", "sbin", "sendmail"),
            "newaliases_path": os.path.join(DEST, "usr", "bin", "newaliases"),
            "mailq_path": os.path.join(DEST, "usr", "bin", "mailq"),
            "manpage_directory": os.path.join(DEST, "usr", "share", "man"),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": HELO_NAME,
            "mydomain": "client.test.example",
            "myorigin": "$myhostname",
            "mydestination": "",
            "relay_domains": "",
            "local_transport": "error:local delivery is disabled",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "relayhost": "[127.0.0.1]:%d" % relay_port,
            "smtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native",
            "smtp_helo_name": HELO_NAME,
            "smtp_tls_security_level": tls_level,
            "smtp_tls_loglevel": "1",
            "smtp_connection_cache_on_demand": "no",
            "smtp_pipeconnect_hosts": "127.0.0.1" if pipeconnect else "",
            "smtp_pipeconnect_cache": "$data_directory/smtp_pipeconnect_cache",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.workdir,
            "delay_logging_resolution_limit": "6",
            "biff": "no",
            "queue_run_delay": "300s",
            "minimal_backoff_time": "300s",
            "maximal_backoff_time": "600s",
            "bounce_queue_lifetime": "1d",
            "notify_classes": "",
            "smtputf8_enable": "no",
        }
        params.update(extra or {})
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            for k, v in params.items():
                f.write("%s = %s\n" % (k, v))
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(chroot="y" if chroot else "n"))

    # ------------------------------------------------------------- commands
    def _env(self):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "MAIL_CONFIG": self.conf}
        return env

    def _bin(self, name):
        return os.path.join(DEST, "usr", "sbin", name)

    def run(self, argv, input=None, check=True):
        p = subprocess.run(argv, input=input, env=self._env(), capture_output=True,
                           timeout=CMD_TIMEOUT)
        if check and p.returncode != 0:
            raise HarnessError("%s failed (%d): %s%s" % (" ".join(argv), p.returncode,
                               p.stdout.decode(errors="replace"),
                               p.stderr.decode(errors="replace")))
        return p

    def postconf(self, *args):
        return self.run([self._bin("postconf"), "-c", self.conf] + list(args)).stdout.decode()

    def set(self, **params):
        """Change main.cf parameters (and reload a running instance)."""
        self.run([self._bin("postconf"), "-c", self.conf, "-e"] +
                 ["%s=%s" % kv for kv in params.items()])
        if self.started:
            self.run([self._bin("postfix"), "-c", self.conf, "reload"])

    def start(self):
        self.run([self._bin("postfix"), "-c", self.conf, "start"])
        self.started = True
        deadline = time.time() + 15
        while time.time() < deadline:
            if os.path.exists(os.path.join(self.queue, "public", "pickup")) and \
               os.path.exists(self.maillog):
                return
            time.sleep(0.1)
        raise HarnessError("postfix did not start: %s" % self.log())

    def stop(self):
        if not self.started:
            return
        self.run([self._bin("postfix"), "-c", self.conf, "stop"], check=False)
        pidfile = os.path.join(self.queue, "pid", "master.pid")
        deadline = time.time() + 15
        while time.time() < deadline and os.path.exists(pidfile):
            try:
                with open(pidfile) as f:
                    pid = int(f.read().strip())
                os.kill(pid, 0)
            except (OSError, ValueError):
                break
            time.sleep(0.1)
        self.started = False

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------- mail
    def send(self, sender, rcpts, subject="test", body="hello\n"):
        """Submit one message with sendmail(1); returns nothing (see queue_ids/log)."""
        msg = "From: <%s>\nTo: %s\nSubject: %s\n\n%s" % (
            sender, ", ".join("<%s>" % r for r in rcpts), subject, body)
        self.run([self._bin("sendmail"), "-C", self.conf, "-f", sender, "--"] + list(rcpts),
                 input=msg.encode())

    def flush(self):
        self.run([self._bin("postqueue"), "-c", self.conf, "-f"])

    def queue_ids(self):
        p = self.run([self._bin("postqueue"), "-c", self.conf, "-j"])
        return [json.loads(line)["queue_id"] for line in p.stdout.decode().splitlines()
                if line.strip()]

    def queue_entries(self):
        p = self.run([self._bin("postqueue"), "-c", self.conf, "-j"])
        return [json.loads(line) for line in p.stdout.decode().splitlines() if line.strip()]

    def log(self):
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def count(self, pattern):
        return len(re.findall(pattern, self.log(), re.M))

    def wait_log(self, pattern, count=1, timeout=20.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.count(pattern) >= count:
                return self.log()
            time.sleep(0.05)
        raise HarnessError("timed out waiting for %r x%d in the Postfix log:\n%s"
                           % (pattern, count, self.log()[-4000:]))

    def wait_delivered(self, count, timeout=20.0):
        """Wait until `count` deliveries (status=sent) are in the log."""
        return self.wait_log(r" status=sent ", count, timeout)

    def wait_queue_empty(self, timeout=20.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.queue_ids():
                return
            time.sleep(0.1)
        raise HarnessError("queue not empty: %s" % self.queue_ids())


if __name__ == "__main__":
    import sys
    print("built" if built() else "not built", DEST)
    sys.exit(0 if built() else 1)
