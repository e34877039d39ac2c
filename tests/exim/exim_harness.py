#!/usr/bin/env python3
"""A throw-away, real Exim 4.96 SMTP server for libpipeconnect interop tests.

Python 3 standard library only.  Must run as root (Exim is started with
``-C <config> -bd`` and binds a port; only root may use ``-C`` with an
untrusted configuration and keep its privileges).

Module use::

    import exim_harness as eh
    h = eh.start(2525)                      # fresh unique workdir in /tmp
    try:
        ...                                 # talk SMTP to 127.0.0.1:2525
        print(eh.mainlog(h))
        eh.wait_for_log(h, " <= ")          # bounded wait for acceptance
    finally:
        eh.stop(h)

CLI use::

    exim_harness.py start --port 2525 [--workdir DIR] [--no-pipeconnect]
                          [--no-chunking] [--no-starttls] [--no-auth-plain]
                          [--reject-rcpt bad@test.example ...]
    exim_harness.py stop --workdir DIR
    exim_harness.py mainlog --workdir DIR
    exim_harness.py rejectlog --workdir DIR
    exim_harness.py run --port 2525 [...]   # start, print, wait for Ctrl-C, stop

See README.md next to this file for what Exim 4.96 replies and logs.
"""

import argparse
import grp
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

EXIM_USER = "Debian-exim"
EXIM_GROUP = "Debian-exim"
HOSTNAME = "mx.test.example"
DOMAIN = "test.example"
AUTH_USER = "test"
AUTH_PASSWORD = "secret"

START_TIMEOUT = 15.0     # seconds to wait for the daemon to accept connections
STOP_TIMEOUT = 10.0      # seconds to wait for the daemon to exit after SIGTERM
CMD_TIMEOUT = 60.0       # timeout for every subprocess we run (openssl, exim -bV)

HANDLE_FILE = "harness.json"

# Strings Exim 4.96 is known to produce (see README.md); exported for tests.
SYNC_ERROR_REPLY = "554 SMTP synchronization error"
EARLY_PIPE_LOG_FLAG = "L*"     # on the '<=' line: early pipelining was used
PIPE_ADVERTISED_FLAG = "L."    # PIPECONNECT advertised but not used


class HarnessError(RuntimeError):
    """Anything that prevents the harness from doing its job."""


class Handle:
    """A running Exim daemon started by :func:`start`."""

    def __init__(self, port, workdir, pidfile, config, pid, options):
        self.port = port
        self.host = "127.0.0.1"
        self.workdir = workdir
        self.pidfile = pidfile
        self.config = config
        self.pid = pid
        self.options = options
        self.cert = os.path.join(workdir, "tls", "cert.pem")
        self.key = os.path.join(workdir, "tls", "key.pem")
        self.logdir = os.path.join(workdir, "log")
        self.maildir = os.path.join(workdir, "mail")
        self.proc = None       # subprocess.Popen when started in this process

    @property
    def address(self):
        return (self.host, self.port)

    def to_json(self):
        return {
            "port": self.port,
            "workdir": self.workdir,
            "pidfile": self.pidfile,
            "config": self.config,
            "pid": self.pid,
            "options": self.options,
        }

    @classmethod
    def from_json(cls, d):
        return cls(d["port"], d["workdir"], d["pidfile"], d["config"],
                   d["pid"], d.get("options", {}))

    @classmethod
    def load(cls, workdir):
        path = os.path.join(workdir, HANDLE_FILE)
        try:
            with open(path) as f:
                return cls.from_json(json.load(f))
        except FileNotFoundError:
            raise HarnessError("no harness state in %s (not started?)" % workdir)

    def __repr__(self):
        return "<exim_harness.Handle port=%d pid=%s workdir=%s>" % (
            self.port, self.pid, self.workdir)


# --------------------------------------------------------------------------
# helpers

def find_exim():
    """Path of the exim binary, or raise HarnessError with install advice."""
    for name in ("exim4", "exim"):
        p = shutil.which(name)
        if p:
            return p
    for p in ("/usr/sbin/exim4", "/usr/sbin/exim"):
        if os.access(p, os.X_OK):
            return p
    raise HarnessError(
        "exim4 is not installed; run: apt-get install -y exim4-daemon-heavy")


def exim_version_info(exim=None):
    exim = exim or find_exim()
    r = subprocess.run([exim, "-bV"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=CMD_TIMEOUT,
                       stdin=subprocess.DEVNULL)
    return r.stdout.decode("utf-8", "replace")


def _check_prereqs(exim):
    if os.geteuid() != 0:
        raise HarnessError("the Exim harness must run as root (it uses exim -C -bd)")
    info = exim_version_info(exim)
    if "PIPECONNECT" not in info:
        raise HarnessError("%s was built without PIPECONNECT support:\n%s" % (exim, info))
    try:
        pw = pwd.getpwnam(EXIM_USER)
        gr = grp.getgrnam(EXIM_GROUP)
    except KeyError:
        raise HarnessError("user/group %s not found (is exim4 installed?)" % EXIM_USER)
    if not shutil.which("openssl"):
        raise HarnessError("openssl is not installed (needed for the test certificate)")
    return pw.pw_uid, gr.gr_gid


def _port_accepts(host, port, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _port_listening(port):
    """True if some socket LISTENs on TCP `port` (any local address).

    Read from /proc/net/tcp{,6} rather than by connecting, so that readiness
    probes leave no "SMTP connection ... lost" lines in Exim's main log."""
    found = False
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    if len(fields) < 4:
                        continue
                    local, state = fields[1], fields[3]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        found = True
        except OSError:
            continue
    return found


def _pid_alive(pid):
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still "exists"; reap it if it is ours.
    try:
        wpid, _ = os.waitpid(pid, os.WNOHANG)
        if wpid == pid:
            return False
    except ChildProcessError:
        pass
    try:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().split(")")[-1].split()[0] == "Z":
                return False
    except OSError:
        return False
    return True


def _read_pid(pidfile):
    try:
        with open(pidfile) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _is_exim_pid(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return bool(argv) and os.path.basename(argv[0]).startswith(b"exim")


def _daemon_pids_for_config(config):
    """PIDs of exim processes whose command line uses our -C config.

    Used to find leftovers (e.g. a daemon whose pidfile was lost, or delivery
    children that outlive the daemon) -- matched by our unique config path,
    never by name alone."""
    pids = []
    needle = config.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]).startswith(b"exim") and needle in argv:
            pids.append(int(entry))
    return pids


def _wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [p for p in pids if _pid_alive(p)]
        if not pids:
            return []
        time.sleep(0.05)
    return [p for p in pids if _pid_alive(p)]


# --------------------------------------------------------------------------
# configuration

def _exim_list(items):
    return " : ".join(i.replace(":", "::") for i in items)


def render_config(workdir, port, pipeconnect=True, chunking=True, starttls=True,
                  auth_plain=True, reject_rcpt=(), extra_main="", defer_rcpt=()):
    """Return the text of an Exim configuration for the given options."""
    reject = _exim_list(sorted({r.lower() for r in reject_rcpt}))
    defer = _exim_list(sorted({r.lower() for r in defer_rcpt}))
    w = workdir
    cfg = """\
# Generated by tests/exim/exim_harness.py -- do not edit.
# ---------------------------------------------------------------- main
primary_hostname = {host}
qualify_domain = {domain}
exim_user = {user}
exim_group = {group}
never_users = root
# The daemon (started by root with -C) runs as {user}; when it re-execs
# itself for delivery, Exim would log "exim user lost privilege for using -C
# option" to the paniclog.  Dropping privilege for deliveries is expected here
# (the only transport runs as {user} anyway), which silences that.
deliver_drop_privilege = true
spool_directory = {w}/spool
log_file_path = {w}/log/%slog
pid_file_path = {w}/exim.pid
daemon_smtp_ports = {port}
local_interfaces = <; 127.0.0.1.{port}
keep_environment =
add_environment = <; PATH=/bin:/usr/bin

# no DNS / ident lookups: the test machine has loopback only
host_lookup =
rfc1413_hosts =
rfc1413_query_timeout = 0s
helo_try_verify_hosts =
helo_verify_hosts =
helo_accept_junk_hosts = *
dns_retrans = 1s
dns_retry = 1

log_selector = +pipelining +smtp_connection +received_recipients \\
  +smtp_protocol_error +smtp_syntax_error +tls_cipher +tls_peerdn \\
  +incoming_port +smtp_confirmation +smtp_no_mail +connection_reject

pipelining_advertise_hosts = *
pipelining_connect_advertise_hosts = {pipeconnect}
chunking_advertise_hosts = {chunking}
smtp_enforce_sync = true
message_size_limit = 50M
smtp_accept_max = 50
smtp_accept_queue_per_connection = 0
smtp_receive_timeout = 30s
smtp_banner = $smtp_active_hostname ESMTP Exim $version_number $tod_full

tls_advertise_hosts = {tls}
tls_certificate = {w}/tls/cert.pem
tls_privatekey = {w}/tls/key.pem
tls_resumption_hosts =

auth_advertise_hosts = *

acl_smtp_rcpt = acl_check_rcpt
acl_smtp_data = acl_check_data

queue_run_max = 1
timeout_frozen_after = 1h
ignore_bounce_errors_after = 0s
{extra_main}
# ---------------------------------------------------------------- ACL
begin acl

acl_check_rcpt:
{reject_stmt}{defer_stmt}  accept  domains       = {domain}
  deny    message       = relay not permitted

acl_check_data:
  accept

# ---------------------------------------------------------------- routers
begin routers

local_mail:
  driver = accept
  domains = {domain}
  transport = local_file
  no_more

# ---------------------------------------------------------------- transports
begin transports

local_file:
  driver = appendfile
  # One mbox for everything: a path built from $local_part would be tainted
  # (Exim 4.94+ refuses it).  Envelope-to: names the recipients.
  file = {w}/mail/mbox
  user = {user}
  group = {group}
  mode = 0640
  create_file = anywhere
  delivery_date_add
  envelope_to_add
  return_path_add

# ---------------------------------------------------------------- retry
begin retry
*  *  F,1m,1m

# ---------------------------------------------------------------- auth
begin authenticators
""".format(host=HOSTNAME, domain=DOMAIN, user=EXIM_USER, group=EXIM_GROUP,
           w=w, port=port,
           pipeconnect="*" if pipeconnect else "",
           chunking="*" if chunking else "",
           tls="*" if starttls else "",
           reject_stmt=("  deny    message       = rejected by test harness: "
                        "$local_part@$domain\n"
                        "          recipients    = %s\n" % reject) if reject else "",
           defer_stmt=("  defer   message       = 451 4.3.0 deferred by test harness: "
                       "$local_part@$domain\n"
                       "          recipients    = %s\n" % defer) if defer else "",
           extra_main=extra_main)
    if auth_plain:
        cfg += """
plain_server:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${{if and {{{{eq{{$auth2}}{{{u}}}}}{{eq{{$auth3}}{{{p}}}}}}}}}
  server_set_id = $auth2
  server_advertise_condition = true
""".format(u=AUTH_USER, p=AUTH_PASSWORD)
    return cfg


def _make_cert(tlsdir, uid, gid):
    cert = os.path.join(tlsdir, "cert.pem")
    key = os.path.join(tlsdir, "key.pem")
    cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
           "-keyout", key, "-out", cert, "-days", "30",
           "-subj", "/CN=%s" % HOSTNAME,
           "-addext", "subjectAltName=DNS:%s,IP:127.0.0.1" % HOSTNAME,
           # An end-entity certificate (not a CA), so that a verifying client
           # (rustls/webpki) can use this very file as its trust anchor.
           "-addext", "basicConstraints=critical,CA:FALSE"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=CMD_TIMEOUT)
    if r.returncode != 0:
        raise HarnessError("openssl req failed:\n" + r.stdout.decode("utf-8", "replace"))
    for p in (cert, key):
        os.chown(p, 0, gid)
        os.chmod(p, 0o640)


# --------------------------------------------------------------------------
# public API

def start(port, workdir=None, pipeconnect=True, chunking=True, starttls=True,
          auth_plain=True, reject_rcpt=(), extra_main="", timeout=START_TIMEOUT,
          defer_rcpt=()):
    """Start an Exim daemon on 127.0.0.1:port; return a :class:`Handle`.

    workdir: None (default) creates a fresh unique directory under /tmp.  If a
    path is given, it is created if needed; a daemon still running from an
    earlier start() in it is stopped, and its spool/log/mail/tls/config are
    replaced, so every start begins from a clean state.
    """
    exim = find_exim()
    uid, gid = _check_prereqs(exim)
    port = int(port)

    if workdir is None:
        workdir = tempfile.mkdtemp(prefix="exim-harness-%d-" % port)
    else:
        workdir = os.path.abspath(workdir)
        os.makedirs(workdir, exist_ok=True)
        if os.path.exists(os.path.join(workdir, HANDLE_FILE)):
            try:
                stop(Handle.load(workdir))
            except HarnessError:
                pass
        for sub in ("spool", "log", "mail", "tls"):
            shutil.rmtree(os.path.join(workdir, sub), ignore_errors=True)
        for f in ("exim.conf", "exim.pid", HANDLE_FILE, "daemon.out"):
            try:
                os.unlink(os.path.join(workdir, f))
            except FileNotFoundError:
                pass
    # Exim's unprivileged children (uid Debian-exim) must traverse workdir,
    # and the parents of a mkdtemp() directory.
    os.chmod(workdir, 0o755)

    if _port_listening(port) or _port_accepts("127.0.0.1", port, timeout=0.3):
        raise HarnessError("TCP port %d is already in use "
                           "(another server running?)" % port)

    for sub in ("spool", "log", "mail"):
        d = os.path.join(workdir, sub)
        os.makedirs(d, exist_ok=True)
        os.chown(d, uid, gid)
        os.chmod(d, 0o750)
    tlsdir = os.path.join(workdir, "tls")
    os.makedirs(tlsdir, exist_ok=True)
    os.chmod(tlsdir, 0o755)
    _make_cert(tlsdir, uid, gid)

    config = os.path.join(workdir, "exim.conf")
    text = render_config(workdir, port, pipeconnect=pipeconnect, chunking=chunking,
                         starttls=starttls, auth_plain=auth_plain,
                         reject_rcpt=reject_rcpt, extra_main=extra_main,
                         defer_rcpt=defer_rcpt)
    # Exim insists that a -C file is owned by root and not writable by others.
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chown(config, 0, 0)
    os.chmod(config, 0o644)

    # Syntax check first: a clear message beats a daemon that dies silently.
    r = subprocess.run([exim, "-C", config, "-bV"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                       timeout=CMD_TIMEOUT)
    if r.returncode != 0:
        raise HarnessError("exim rejected the generated config %s:\n%s"
                           % (config, r.stdout.decode("utf-8", "replace")))

    pidfile = os.path.join(workdir, "exim.pid")
    options = dict(pipeconnect=bool(pipeconnect), chunking=bool(chunking),
                   starttls=bool(starttls), auth_plain=bool(auth_plain),
                   reject_rcpt=list(reject_rcpt))
    out = open(os.path.join(workdir, "daemon.out"), "wb")
    try:
        # -bdf: the daemon stays in the foreground, so it is our child: we know
        # its pid at once, can wait() for it, and it leaves no zombie behind.
        # start_new_session: it survives the CLI process and Ctrl-C of a test.
        proc = subprocess.Popen(
            [exim, "-C", config, "-bdf", "-oX", str(port), "-oP", pidfile],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            close_fds=True, start_new_session=True)
    finally:
        out.close()
    handle = Handle(port, workdir, pidfile, config, proc.pid, options)
    handle.proc = proc
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise HarnessError("exim -bdf exited with status %s: %s" % (
                    proc.returncode, _startup_diag(handle)))
            if _read_pid(pidfile) == proc.pid and _port_listening(port):
                break
            if time.monotonic() > deadline:
                raise HarnessError("exim did not listen on 127.0.0.1:%d "
                                   "within %.0fs: %s" % (port, timeout,
                                                         _startup_diag(handle)))
            time.sleep(0.05)
    except BaseException:
        _kill_all(handle)
        raise
    with open(os.path.join(workdir, HANDLE_FILE), "w") as f:
        json.dump(handle.to_json(), f, indent=1)
    return handle


def _startup_diag(handle):
    parts = []
    for name in ("daemon.out", "log/paniclog", "log/mainlog"):
        p = os.path.join(handle.workdir, name)
        try:
            with open(p, errors="replace") as f:
                t = f.read()[-2000:]
            if t.strip():
                parts.append("--- %s ---\n%s" % (name, t))
        except OSError:
            pass
    return "\n".join(parts) or "(no output)"


def _kill_all(handle, timeout=STOP_TIMEOUT):
    """SIGTERM the daemon and every exim process using our config; SIGKILL
    whatever is left after timeout.  Returns list of pids that survived."""
    pids = set(_daemon_pids_for_config(handle.config))
    for pid in (handle.pid, _read_pid(handle.pidfile)):
        if pid and _pid_alive(pid) and _is_exim_pid(pid):
            pids.add(pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    proc = getattr(handle, "proc", None)
    if proc is not None:
        try:
            proc.terminate()
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                pass
        except OSError:
            pass
    left = _wait_gone(list(pids), timeout)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return _wait_gone(left, 2.0)


def stop(handle, timeout=STOP_TIMEOUT):
    """Stop the daemon (by pidfile) and any leftover exim processes of it."""
    if isinstance(handle, str):
        handle = Handle.load(handle)
    left = _kill_all(handle, timeout)
    deadline = time.monotonic() + timeout
    while handle.port and _port_listening(handle.port):
        # Someone else could legitimately own the port after we are gone;
        # only complain while one of our processes is alive.
        if not _daemon_pids_for_config(handle.config) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    try:
        os.unlink(os.path.join(handle.workdir, HANDLE_FILE))
    except FileNotFoundError:
        pass
    if left:
        raise HarnessError("exim processes %s would not die" % left)


def _read_log(handle, name):
    if isinstance(handle, str):
        handle = Handle.load(handle)
    try:
        with open(os.path.join(handle.workdir, "log", name), errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def mainlog(handle):
    return _read_log(handle, "mainlog")


def rejectlog(handle):
    return _read_log(handle, "rejectlog")


def paniclog(handle):
    return _read_log(handle, "paniclog")


def wait_for_log(handle, needle, timeout=10.0, log="mainlog", count=1):
    """Wait (bounded) until `needle` occurs `count` times in the log; return
    the log text.  Raises HarnessError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        text = _read_log(handle, log)
        if text.count(needle) >= count:
            return text
        if time.monotonic() > deadline:
            raise HarnessError("timed out after %.1fs waiting for %r in %s:\n%s"
                               % (timeout, needle, log, text[-3000:]))
        time.sleep(0.05)


def mailbox(handle):
    """All messages delivered so far (one mbox, '' if none).  Each message
    carries an Envelope-to: header naming its recipients."""
    try:
        with open(os.path.join(handle.maildir, "mbox"), errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def accepted_lines(handle):
    """The '<=' (message accepted) lines of the main log."""
    return [l for l in mainlog(handle).splitlines() if " <= " in l]


def cleanup(handle):
    """stop() and remove the workdir."""
    try:
        stop(handle)
    finally:
        shutil.rmtree(handle.workdir, ignore_errors=True)


# --------------------------------------------------------------------------
# CLI

def _main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("start", "run"):
        p = sub.add_parser(name)
        p.add_argument("--port", type=int, default=2525)
        p.add_argument("--workdir")
        p.add_argument("--no-pipeconnect", action="store_true")
        p.add_argument("--no-chunking", action="store_true")
        p.add_argument("--no-starttls", action="store_true")
        p.add_argument("--no-auth-plain", action="store_true")
        p.add_argument("--reject-rcpt", action="append", default=[])
    for name in ("stop", "mainlog", "rejectlog", "paniclog", "status"):
        p = sub.add_parser(name)
        p.add_argument("--workdir", required=True)
    a = ap.parse_args(argv)
    try:
        if a.cmd in ("start", "run"):
            h = start(a.port, a.workdir, pipeconnect=not a.no_pipeconnect,
                      chunking=not a.no_chunking, starttls=not a.no_starttls,
                      auth_plain=not a.no_auth_plain, reject_rcpt=a.reject_rcpt)
            if a.cmd == "run":
                signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
                try:
                    print(json.dumps(h.to_json(), indent=1))
                    sys.stdout.flush()
                    signal.pause()
                except KeyboardInterrupt:
                    pass
                finally:
                    stop(h)
            else:
                print(json.dumps(h.to_json(), indent=1))
        elif a.cmd == "stop":
            try:
                h = Handle.load(a.workdir)
            except HarnessError:
                # State file gone (workdir removed?): still kill any daemon
                # that runs with this workdir's config.
                wd = os.path.abspath(a.workdir)
                h = Handle(0, wd, os.path.join(wd, "exim.pid"),
                           os.path.join(wd, "exim.conf"), 0, {})
                if not _daemon_pids_for_config(h.config):
                    raise
            stop(h)
        elif a.cmd == "status":
            h = Handle.load(a.workdir)
            alive = _pid_alive(h.pid)
            print(json.dumps(dict(h.to_json(), alive=alive), indent=1))
            return 0 if alive else 1
        else:
            sys.stdout.write(_read_log(a.workdir if a.workdir else None,
                                       a.cmd))
    except HarnessError as e:
        print("exim_harness: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main())
