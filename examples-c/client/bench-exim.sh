#!/bin/sh
# Bench (not a test): pc-deliver against a real Exim 4.96 over a 50 ms round trip, beside
# Exim 4.96's own client (with and without hosts_pipe_connect) and an ideal one-flight
# client. Prints a table of medians and checks the goals of issue 9; README.md beside this
# file has the figures of a run and what they mean.
#
#   sh examples-c/client/bench-exim.sh [--rounds N] [--one-way-ms MS] [--body-size N] [--keep]
#
# Needs root and exim4-daemon-heavy (like tests/exim), python3; strace for the half-close
# trace at the end (skipped without it). Builds the release library, the tool and
# pc-deliver (cleartext) first. Exit status 1 when a goal is missed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

[ "$(id -u)" = 0 ] || { echo "bench-exim.sh: must run as root (Exim runs with -C)" >&2; exit 2; }
command -v exim4 >/dev/null 2>&1 || { echo "bench-exim.sh: exim4 is not installed" >&2; exit 2; }
command -v python3 >/dev/null 2>&1 || { echo "bench-exim.sh: python3 is not installed" >&2; exit 2; }

${CARGO:-cargo} build --release -q -p pipeconnect -p pipeconnect-tools
client=$(sh examples-c/client/build.sh --no-tls --profile release -o target/release/pc-deliver-bench)
tool=$root/target/release/pipeconnect

status=0
python3 "$here/bench_exim.py" --pc-deliver "$client" --tool "$tool" "$@" || status=$?

# The half-close, seen by strace: QUIT, then shutdown(SHUT_WR) at once, before any 221.
if command -v strace >/dev/null 2>&1; then
    python3 - "$client" "$tool" <<'PY'
import os, subprocess, sys, tempfile, socket
sys.path.insert(0, "tests/exim")
import exim_harness as eh
client, tool = sys.argv[1], sys.argv[2]
base = tempfile.mkdtemp(prefix="pc-bench-strace-")
os.chmod(base, 0o755)
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
h = eh.start(port, os.path.join(base, "server"), starttls=False, auth_plain=False)
delay = subprocess.Popen([tool, "delay", "--upstream", "127.0.0.1:%d" % port,
                          "--one-way-ms", "25"], stdout=subprocess.PIPE)
try:
    dport = delay.stdout.readline().decode().rsplit(":", 1)[1].strip()
    args = [client, "--server", "127.0.0.1", "--port", dport, "--store",
            os.path.join(base, "s.store"), "--from", "trace@client.test.example",
            "--to", "rcpt@test.example"]
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    r = subprocess.run(["strace", "-f", "-ttt", "-s", "2048",
                        "-e", "trace=shutdown,sendto,recvfrom,exit_group"] + args,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    print("\nstrace -f -e trace=shutdown (with the socket calls around it), pc-deliver "
          "oneflight to Exim over the same 50 ms round trip:")
    for line in r.stdout.decode("utf-8", "replace").splitlines():
        if "250 OK id=" in line:
            ts, rest = line.split(" ", 1)
            print("  %s %s ...\\r\\n250 OK id=%s) = %s" % (
                ts, rest.split('"', 1)[0], line.split("250 OK id=", 1)[1].split("\\r", 1)[0],
                line.rsplit("= ", 1)[1]))
        elif ("shutdown(" in line or "QUIT" in line or "221 " in line
              or "exit" in line):
            print("  " + line[:160])
finally:
    delay.kill()
    delay.wait()
    eh.stop(h)
    import shutil
    shutil.rmtree(base, ignore_errors=True)
PY
fi
exit $status
