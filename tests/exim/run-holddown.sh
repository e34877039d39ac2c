#!/bin/sh
# The hold-down against two real Exim 4.96 behind a TCP balancer (make test-holddown;
# make test runs it too). Builds pc-deliver (no TLS needed) against
# target/release/libpipeconnect.so and runs tests/exim/test_holddown.py, which prints its
# figures. Needs root and exim4-daemon-heavy; without them the test is skipped, except
# in CI (CI=true), where that is a failure. Exits non-zero when a test fails.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

missing=""
if ! command -v exim4 >/dev/null 2>&1 && [ ! -x /usr/sbin/exim4 ] && [ ! -x /usr/sbin/exim ]; then
    missing="exim4 is not installed (apt-get install -y exim4-daemon-heavy)"
elif [ "$(id -u)" != 0 ]; then
    missing="the Exim harness must run as root (it starts exim -C -bd)"
fi
if [ -n "$missing" ]; then
    if [ "${CI:-}" = true ]; then
        echo "tests/exim/run-holddown.sh: FAIL: $missing" >&2
        exit 1
    fi
    echo "tests/exim/run-holddown.sh: SKIPPED: $missing"
    exit 0
fi
command -v python3 >/dev/null 2>&1 || { echo "tests/exim/run-holddown.sh: python3 missing" >&2; exit 1; }

if [ ! -f target/release/libpipeconnect.so ] || [ ! -x target/release/pipeconnect ]; then
    ${CARGO:-cargo} build --release -p pipeconnect -p pipeconnect-tools
fi
client=$(sh examples-c/client/build.sh --no-tls --profile release -o target/release/pc-deliver-plain)

PC_DELIVER=$client PIPECONNECT_TOOL=$root/target/release/pipeconnect \
    exec python3 tests/exim/test_holddown.py -v
