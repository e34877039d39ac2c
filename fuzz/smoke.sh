#!/bin/sh
# make fuzz-smoke: every fuzz target for a short, fixed time (FUZZ_SECONDS, default 15)
# from the committed seeds (fuzz/seeds/<target>/) and the inputs of past findings
# (fuzz/regressions/<target>/), one target at a time, at the lowest CPU priority.
# Any crash, panic, leak or sanitizer report fails the run; libFuzzer saves the input
# in fuzz/artifacts/<target>/. The corpus a run grows is scratch (fuzz/corpus/smoke/).
#
# CI=true: a missing nightly toolchain or cargo-fuzz is a failure. Otherwise it is
# reported as skipped (exit 0), with how to install it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
SECS=${FUZZ_SECONDS:-15}
TARGETS=${FUZZ_TARGETS:-"reply caps key session store_open store_slot capi tracker"}

skip() {
    if [ "${CI:-}" = true ]; then
        echo "fuzz-smoke: FAILED: $1 (CI=true: a missing piece is a failure)" >&2
        exit 1
    fi
    echo "fuzz-smoke: skipped: $1" >&2
    exit 0
}
cargo +nightly --version >/dev/null 2>&1 || skip "no nightly toolchain (rustup toolchain install nightly)"
cargo +nightly fuzz --version >/dev/null 2>&1 || skip "cargo-fuzz not installed (cargo install cargo-fuzz --locked)"

start=$(date +%s)
nice -n 19 cargo +nightly fuzz build -O
built=$(date +%s)
echo "fuzz-smoke: built in $((built - start)) s"
for t in $TARGETS; do
    corpus="$here/corpus/smoke/$t"
    mkdir -p "$corpus" "$here/regressions/$t"
    log="$here/corpus/smoke/$t.log"
    if nice -n 19 cargo +nightly fuzz run -O "$t" "$corpus" "$here/seeds/$t" "$here/regressions/$t" -- \
        -max_total_time="$SECS" -max_len=8192 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
        echo "fuzz-smoke: $t: ${execs:-?} executions in ${SECS} s, $cov"
    else
        echo "fuzz-smoke: FAILED: $t (input saved in fuzz/artifacts/$t/)" >&2
        grep -E 'panicked|ERROR|SUMMARY|Test unit written' -A3 "$log" | head -n 40 >&2
        exit 1
    fi
done
echo "fuzz-smoke: all targets passed in $(($(date +%s) - start)) s"
