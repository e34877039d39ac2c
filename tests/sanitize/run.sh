#!/bin/sh
# make test-sanitize: the C side under AddressSanitizer and UndefinedBehaviorSanitizer.
#
# 1. libpipeconnect (and, with -Zbuild-std, the standard library it contains) is built on
#    the nightly toolchain with -Zsanitizer=address for an explicit --target (so build
#    scripts and proc macros stay uninstrumented), into target/sanitize/, with
#    --cfg pipeconnect_sanitizer_canary (the library's canary).
# 2. Every C test program (tests/c/test_*.c), the example client (examples-c/client)
#    and the canary are compiled by clang with -fsanitize=address,undefined
#    -fno-omit-frame-pointer against that library.
# 3. The canaries run first: an out-of-bounds read in C and one inside the library must
#    both be reported, else the run fails (a sanitizer that is off would pass anything).
# 4. The C tests run; then the client delivers through `pipeconnect serve` (learning,
#    early, one flight, the file store) and `pipeconnect demo` drives it three ways.
#
# Environment: CI=true makes a missing nightly toolchain or clang a failure; otherwise
# they are reported as skipped (exit 0). SANITIZE_LIB=plain uses the ordinary library
# (debug build) with the C-side sanitizers only.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
TARGET=${SANITIZE_TARGET:-x86_64-unknown-linux-gnu}
CLANG=${CLANG:-clang}
out="$root/target/sanitize"
work="$out/work"
lib="$out/$TARGET/debug"

skip() {
    if [ "${CI:-}" = true ]; then
        echo "test-sanitize: FAILED: $1 (CI=true: a missing piece is a failure)" >&2
        exit 1
    fi
    echo "test-sanitize: skipped: $1" >&2
    exit 0
}

command -v "$CLANG" >/dev/null 2>&1 || skip "clang not found"
cargo +nightly --version >/dev/null 2>&1 || skip "no nightly toolchain (rustup toolchain install nightly)"
rm -rf "$work"
mkdir -p "$work"
printf 'int main(void) { return 0; }\n' >"$work/probe.c"
"$CLANG" -fsanitize=address,undefined "$work/probe.c" -o "$work/probe" 2>/dev/null \
    || skip "clang cannot link -fsanitize=address,undefined (install libclang-rt-dev)"

# 1. The library.
if [ "${SANITIZE_LIB:-asan}" = plain ]; then
    cargo build -p pipeconnect
    lib="$root/target/debug"
    rust_canary=no
else
    # The runtime comes from clang (-fsanitize=address on the C link); rustc links its
    # own runtime only into executables, and the library is a cdylib.
    # -Zbuild-std: the standard library is compiled with the same instrumentation (needs
    # the nightly rust-src component); SANITIZE_BUILD_STD=0 uses the shipped one.
    build_std=-Zbuild-std
    [ "${SANITIZE_BUILD_STD:-1}" = 0 ] && build_std=""
    # shellcheck disable=SC2086
    RUSTFLAGS="-Zsanitizer=address --cfg pipeconnect_sanitizer_canary" \
    RUSTDOCFLAGS="-Zsanitizer=address" \
        cargo +nightly build $build_std -p pipeconnect --target "$TARGET" --target-dir "$out"
    rust_canary=yes
    # Instrumented code calls the runtime's check functions: prove it is there.
    nm -D --undefined-only "$lib/libpipeconnect.so" | grep -q '__asan_report_load' || {
        echo "test-sanitize: FAILED: $lib/libpipeconnect.so has no AddressSanitizer checks" >&2
        exit 1
    }
fi
cargo build -p pipeconnect-tools
tool="$root/target/debug/pipeconnect"

# A folder of links under the library's soname (read from the library: it follows the
# version, libpipeconnect.so.0.2 for 0.2.x) makes the build look installed.
linkdir="$work/lib"
mkdir -p "$linkdir"
soname=$(readelf -d "$lib/libpipeconnect.so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ -n "$soname" ] || { echo "test-sanitize: FAILED: $lib/libpipeconnect.so has no soname" >&2; exit 1; }
ln -sf "$lib/libpipeconnect.so" "$linkdir/libpipeconnect.so"
ln -sf "$lib/libpipeconnect.so" "$linkdir/$soname"

SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
compile() { # out, sources...
    o=$1
    shift
    # shellcheck disable=SC2086
    "$CLANG" -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -pedantic -g -O1 $SAN \
        -I"$root/include" -I"$root/tests/c" "$@" -o "$o" \
        -L"$linkdir" -Wl,-rpath,"$linkdir" -lpipeconnect
}
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=86:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

# 3. The canaries.
compile "$work/canary" "$root/tests/sanitize/canary.c"
expect_caught() { # mode
    if "$work/canary" "$1" >"$work/canary-$1.out" 2>"$work/canary-$1.err"; then
        echo "test-sanitize: FAILED: the $1 canary's out-of-bounds read was not caught" >&2
        exit 1
    fi
    grep -q 'heap-buffer-overflow' "$work/canary-$1.err" || {
        echo "test-sanitize: FAILED: the $1 canary failed without an AddressSanitizer report:" >&2
        cat "$work/canary-$1.err" >&2
        exit 1
    }
    echo "test-sanitize: canary $1: caught ($(grep -m1 -o 'heap-buffer-overflow.*' "$work/canary-$1.err" | cut -c1-60))"
}
expect_caught c
if [ "$rust_canary" = yes ]; then
    expect_caught rust
    "$work/canary" none >/dev/null || { echo "test-sanitize: FAILED: canary none" >&2; exit 1; }
fi

# 4. The C tests.
failed=0
for src in "$root"/tests/c/test_*.c; do
    name=$(basename "$src" .c)
    compile "$work/$name" "$src"
    if (cd "$work" && "./$name") >"$work/$name.out" 2>"$work/$name.err" \
        && grep -q ' passed, 0 failed' "$work/$name.out"; then
        echo "test-sanitize: $name: $(grep ' passed, ' "$work/$name.out" | tail -n 1)"
    else
        echo "test-sanitize: FAILED: $name" >&2
        tail -n 40 "$work/$name.out" "$work/$name.err" >&2
        failed=1
    fi
done

# The example client against the test sink, and the demo.
compile "$work/pc-deliver" examples-c/client/pc_deliver.c examples-c/client/delivery.c \
    examples-c/client/conn.c
"$tool" serve --listen 127.0.0.1:0 --log "$work/sink.log" >"$work/sink.out" 2>"$work/sink.err" &
sink=$!
trap 'kill "$sink" 2>/dev/null || true' EXIT INT TERM
port=""
for _ in $(seq 100); do
    port=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$work/sink.out")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "test-sanitize: FAILED: pipeconnect serve did not start" >&2; exit 1; }
deliver() { # label, args...
    label=$1
    shift
    if "$work/pc-deliver" --server 127.0.0.1 --port "$port" --ehlo client.test.example \
        --from sender@test.example --timeout-ms 10000 "$@" \
        >"$work/deliver-$label.out" 2>"$work/deliver-$label.err" \
        && grep -q 'result=ok' "$work/deliver-$label.out" \
        && ! grep -q 'result=[^o]' "$work/deliver-$label.out"; then
        echo "test-sanitize: client $label: $(grep -c 'result=ok' "$work/deliver-$label.out") delivered"
    else
        echo "test-sanitize: FAILED: client $label" >&2
        cat "$work/deliver-$label.out" "$work/deliver-$label.err" >&2
        failed=1
    fi
}
deliver memory --memory --to rcpt@test.example --count 3 --mode oneflight
deliver store-learn --store "$work/pc.store" --to rcpt@test.example --mode early
deliver store-early --store "$work/pc.store" --to rcpt@test.example --to b@test.example \
    --mode early --body-size 5000
deliver oneflight --store "$work/pc.store" --to rcpt@test.example --mode oneflight
kill "$sink" 2>/dev/null || true
wait "$sink" 2>/dev/null || true
trap - EXIT INT TERM

if "$tool" demo --rtt-ms 10 --deliveries 2 --client "$work/pc-deliver" \
    >"$work/demo.out" 2>"$work/demo.err"; then
    echo "test-sanitize: demo: $(tail -n 1 "$work/demo.out")"
else
    echo "test-sanitize: FAILED: pipeconnect demo with the sanitized client" >&2
    tail -n 40 "$work/demo.out" "$work/demo.err" >&2
    failed=1
fi

[ "$failed" = 0 ] || exit 1
echo "test-sanitize: all passed (library: ${SANITIZE_LIB:-asan}, C: address,undefined)"
