#!/bin/sh
# Interop tests against a real Exim 4.96 (make test-exim; make test runs it too).
#
# Builds pc-deliver with TLS (examples-c/client/build.sh --tls, linked against
# target/release/libpipeconnect.so) and runs tests/exim/test_interop.py with unittest.
# Needs root and exim4-daemon-heavy. Without them the tests are skipped, except in CI
# (CI=true), where a missing Exim or a non-root run is a failure, never a skip.
# Exits non-zero when any test fails.
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
        echo "tests/exim/run.sh: FAIL: $missing" >&2
        exit 1
    fi
    echo "tests/exim/run.sh: SKIPPED: $missing"
    exit 0
fi
command -v python3 >/dev/null 2>&1 || { echo "tests/exim/run.sh: python3 missing" >&2; exit 1; }

# The library and the tool (make test-exim has built them already; this is quick then).
if [ ! -f target/release/libpipeconnect.so ] || [ ! -x target/release/pipeconnect ]; then
    ${CARGO:-cargo} build --release -p pipeconnect -p pipeconnect-tools
fi
client=$(sh examples-c/client/build.sh --tls --profile release -o target/release/pc-deliver-tls)

echo "tests/exim/run.sh: $(exim4 -bV 2>/dev/null | head -n 1)"
# The server side: Exim as the client of the project's sink (pre-banner classification).
PIPECONNECT_TOOL=$root/target/release/pipeconnect python3 tests/exim/test_server_side.py -v
# unittest prints each test and its summary ("Ran N tests", then OK or FAILED) and exits
# non-zero when a test failed or errored.
PC_DELIVER=$client PIPECONNECT_TOOL=$root/target/release/pipeconnect \
    exec python3 tests/exim/test_interop.py -v
