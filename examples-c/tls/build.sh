#!/bin/sh
# Build rustls-ffi 0.15.7 (crates.io) as a static library for the C example
# client.  Idempotent: when nothing changed, a re-run takes well under 1 s.
#
# Usage:  examples-c/tls/build.sh                   # ring provider (default)
#         TLS_PROVIDER=aws-lc-rs examples-c/tls/build.sh
#         eval "$(examples-c/tls/build.sh)"         # import the variables
#
# Prints on stdout shell assignments (cargo's progress goes to stderr):
#   RUSTLS_FFI_LIB=<abs path of the .a>
#   RUSTLS_FFI_INCLUDE=<abs dir holding rustls.h>
#   RUSTLS_FFI_CFLAGS=-I<that dir>
#   RUSTLS_FFI_LDLIBS=<system libraries to put after the .a>
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

command -v cargo >/dev/null 2>&1 || { echo "build.sh: cargo not found" >&2; exit 1; }

provider=${TLS_PROVIDER:-ring}
case "$provider" in
ring)      features="--features ring";      target="$here/target" ;;
aws-lc-rs) features="--features aws-lc-rs"; target="$here/target-aws-lc-rs" ;;
*) echo "build.sh: TLS_PROVIDER must be ring or aws-lc-rs" >&2; exit 2 ;;
esac

locked=""
[ -f Cargo.lock ] && locked="--locked"

# Our own target dir, whatever CARGO_TARGET_DIR says.
cargo build --release $locked --no-default-features $features \
      --manifest-path "$here/Cargo.toml" --target-dir "$target" >&2

lib="$target/release/librustls_ffi_static.a"
inc="$here/include"
[ -f "$lib" ] || { echo "build.sh: $lib missing after the build" >&2; exit 1; }
[ -f "$inc/rustls.h" ] || { echo "build.sh: $inc/rustls.h missing after the build" >&2; exit 1; }

# As printed by `cargo rustc --release -- --print native-static-libs`
# (rustc 1.95, x86_64-unknown-linux-gnu).  On glibc >= 2.34 (Debian 12) the
# .a even links with no extra flags; -lpthread -ldl -lm is the portable minimum.
ldlibs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

echo "RUSTLS_FFI_LIB=$lib"
echo "RUSTLS_FFI_INCLUDE=$inc"
echo "RUSTLS_FFI_CFLAGS=-I$inc"
echo "RUSTLS_FFI_LDLIBS=\"$ldlibs\""
