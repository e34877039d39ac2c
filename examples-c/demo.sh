#!/bin/sh
# make demo: the saving of early pipelining on a simulated slow link.
#
# Builds the C example client (examples-c/client, against target/release/libpipeconnect.so)
# and runs `pipeconnect demo`, which starts the test sink and a delay proxy on loopback and
# times classic, early-flight and one-flight deliveries with it. The demo is cleartext:
# it needs no TLS build (pc-deliver gets STARTTLS only if examples-c/tls is already built).
#
#   sh examples-c/demo.sh [pipeconnect demo options: --rtt-ms 50 --deliveries 7 ...]
#
# `make demo` builds the library and the tool first; run by hand, build them with
#   cargo build --release -p pipeconnect -p pipeconnect-tools
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

tool="$root/target/release/pipeconnect"
[ -x "$tool" ] || { echo "demo.sh: $tool missing: run make (or make demo)" >&2; exit 1; }

client=$(sh "$root/examples-c/client/build.sh" --profile release)
exec "$tool" demo --client "$client" "$@"
