#!/bin/sh
# Run test_tls_stream (under $VALGRIND if set) against a real Exim 4.96 with
# STARTTLS, started on 127.0.0.1:$1 (default 2599) by tests/exim/exim_harness.py.
# Needs root and exim4-daemon-heavy.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
harness="$here/../../tests/exim/exim_harness.py"
port=${1:-2599}
work=$(mktemp -d /tmp/tls-stream-exim.XXXXXX)

python3 "$harness" start --port "$port" --workdir "$work" >/dev/null
trap 'python3 "$harness" stop --workdir "$work" || true' EXIT INT TERM
rc=0
${VALGRIND:-} "$here/test_tls_stream" 127.0.0.1 "$port" || rc=$?
if [ "$rc" -ne 0 ]; then
    echo "--- exim mainlog ($work/log/mainlog) ---" >&2
    tail -n 30 "$work/log/mainlog" >&2 || true
else
    # The TLS-delivered test message must be in the Exim log as received.
    grep -q "<= c@client.test.example .* X=TLS" "$work/log/mainlog" \
        || { echo "run_tests.sh: message over TLS not logged as received" >&2; rc=1; }
fi
trap - EXIT INT TERM
python3 "$harness" stop --workdir "$work" || rc=1
if [ "$rc" -eq 0 ]; then rm -rf "$work"; else echo "logs kept in $work" >&2; fi
exit $rc
