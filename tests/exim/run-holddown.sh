#!/bin/sh
# The hold-down against two real Exim 4.96 behind a TCP balancer (make test-holddown;
# make test runs it too). Builds pc-deliver (no TLS needed) against
# target/release/libpipeconnect.so and runs tests/exim/test_holddown.py, which prints its
# figures. Needs root and exim4-daemon-heavy; without them the test is skipped, except
# in CI (CI=true), where that is a failure. Exits non-zero when a test fails.
set -eu
me=tests/exim/run-holddown.sh
. "$(dirname "$0")/require.sh"

client=$(sh examples-c/client/build.sh --no-tls --profile release -o target/release/pc-deliver-plain)

PC_DELIVER=$client PIPECONNECT_TOOL=$root/target/release/pipeconnect \
    exec python3 tests/exim/test_holddown.py -v
