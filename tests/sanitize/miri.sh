#!/bin/sh
# make test-miri: Miri (nightly) over the pure modules' unit tests, their integration
# tests (policy, session, in-process cache) and tests/miri_capi.rs, the C API driven as a
# C caller drives it. The file store is left
# out: Miri cannot map files (mmap of a file is not supported), and its tests need real
# processes. Isolation is off so that the clock may read the system time.
#
# CI=true: a missing nightly toolchain or Miri is a failure; otherwise a skip.
set -eu
cd "$(dirname "$0")/../.."
skip() {
    if [ "${CI:-}" = true ]; then
        echo "test-miri: FAILED: $1 (CI=true: a missing piece is a failure)" >&2
        exit 1
    fi
    echo "test-miri: skipped: $1" >&2
    exit 0
}
cargo +nightly miri --version >/dev/null 2>&1 || skip "Miri not installed (rustup +nightly component add miri rust-src)"
# parking_lot casts integers to pointers: permissive provenance (the default, unwarned).
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation -Zmiri-permissive-provenance}"
start=$(date +%s)
nice -n 10 cargo +nightly miri test -p pipeconnect --lib -- --skip cache::file
# The pure integration tests too, but for the two that learn thousands of entries (many
# minutes in Miri; the same code runs in the other cache tests).
nice -n 10 cargo +nightly miri test -p pipeconnect --test miri_capi --test session_rules \
    --test policy_flight --test policy_outcome --test cache_memory --test tracker_rules \
    -- --skip capacity_bounds_the_entries_and_evictions_are_counted \
    --skip many_threads_at_once_agree_with_one
echo "test-miri: passed in $(($(date +%s) - start)) s"
