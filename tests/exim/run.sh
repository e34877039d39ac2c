#!/bin/sh
# Interop tests against a real Exim 4.96 (make test-exim; make test runs it too).
#
# Builds pc-deliver with TLS (examples-c/client/build.sh --tls, linked against
# target/release/libpipeconnect.so) and runs tests/exim/test_interop.py with unittest.
# Needs root and exim4-daemon-heavy. Without them the tests are skipped, except in CI
# (CI=true), where a missing Exim or a non-root run is a failure, never a skip.
# Exits non-zero when any test fails.
set -eu
me=tests/exim/run.sh
. "$(dirname "$0")/require.sh"

client=$(sh examples-c/client/build.sh --tls --profile release -o target/release/pc-deliver-tls)

echo "tests/exim/run.sh: $(exim4 -bV 2>/dev/null | head -n 1)"
# The server side: Exim as the client of the project's sink (pre-banner classification).
PIPECONNECT_TOOL=$root/target/release/pipeconnect python3 tests/exim/test_server_side.py -v
# unittest prints each test and its summary ("Ran N tests", then OK or FAILED) and exits
# non-zero when a test failed or errored.
PC_DELIVER=$client PIPECONNECT_TOOL=$root/target/release/pipeconnect \
    exec python3 tests/exim/test_interop.py -v
