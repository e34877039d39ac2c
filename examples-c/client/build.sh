#!/bin/sh
# Build pc-deliver, the example delivery client, against the libpipeconnect built in
# target/<profile>/ (run `cargo build --release -p pipeconnect` first; make does).
#
#   sh examples-c/client/build.sh [--tls | --no-tls] [--profile release|debug] [-o OUT]
#
# TLS (--starttls) comes from examples-c/tls (rustls-ffi, built by its build.sh):
#   --tls      build that library if needed, and compile STARTTLS in (-DPC_WITH_TLS);
#   --no-tls   leave TLS out (the demo is cleartext and needs no rustls-ffi build);
#   default    TLS in when the rustls-ffi library is already built, out otherwise.
# Prints the path of the binary on stdout. CC and CFLAGS are honoured.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tlsdir="$root/examples-c/tls"

tls=auto
profile=release
out=""
while [ $# -gt 0 ]; do
    case "$1" in
    --tls) tls=yes ;;
    --no-tls) tls=no ;;
    --profile) profile=$2; shift ;;
    -o) out=$2; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

libdir="$root/target/$profile"
[ -f "$libdir/libpipeconnect.so" ] || {
    echo "build.sh: $libdir/libpipeconnect.so missing: run cargo build -p pipeconnect (add --release for release; make does)" >&2
    exit 1
}
[ -n "$out" ] || out="$libdir/pc-deliver"
CC=${CC:-cc}
CFLAGS=${CFLAGS:--O2 -g}
# The client itself: strict C99.
strict="-std=c99 -Wall -Wextra -Werror -pedantic"

if [ "$tls" = auto ]; then
    if [ -f "$tlsdir/target/release/librustls_ffi_static.a" ] && [ -f "$tlsdir/tls_stream.c" ]; then
        tls=yes
    else
        tls=no
    fi
fi

obj=$(mktemp -d "${TMPDIR:-/tmp}/pc-deliver-build.XXXXXX")
trap 'rm -rf "$obj"' EXIT INT TERM

tls_cflags=""
tls_objs=""
tls_libs=""
if [ "$tls" = yes ]; then
    [ -f "$tlsdir/build.sh" ] || { echo "build.sh: $tlsdir/build.sh missing" >&2; exit 1; }
    # Sets RUSTLS_FFI_LIB, RUSTLS_FFI_CFLAGS, RUSTLS_FFI_LDLIBS (cargo's output on stderr).
    eval "$(sh "$tlsdir/build.sh")"
    # tls_stream.c is the TLS helper's code, compiled with its own flags (its header is
    # plain C and is all the client includes).
    $CC $CFLAGS -Wall -Wextra -Werror $RUSTLS_FFI_CFLAGS -c "$tlsdir/tls_stream.c" \
        -o "$obj/tls_stream.o"
    tls_cflags="-DPC_WITH_TLS -I$tlsdir"
    tls_objs="$obj/tls_stream.o $RUSTLS_FFI_LIB"
    tls_libs=$RUSTLS_FFI_LDLIBS
fi

# A folder of links lets the binary find the build as if it were installed, under the
# library's soname (libpipeconnect.so.0.2 while the major version is 0).
soname=$(readelf -d "$libdir/libpipeconnect.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
linkdir="$libdir/pc-deliver-lib"
mkdir -p "$linkdir"
ln -sf "$libdir/libpipeconnect.so" "$linkdir/libpipeconnect.so"
ln -sf "$libdir/libpipeconnect.so" "$linkdir/${soname:?no SONAME in libpipeconnect.so}"

mkdir -p "$(dirname "$out")"
# shellcheck disable=SC2086
$CC $strict $CFLAGS $tls_cflags -I"$root/include" \
    "$here/pc_deliver.c" "$here/delivery.c" "$here/conn.c" $tls_objs \
    -L"$linkdir" -Wl,-rpath,"$linkdir" -lpipeconnect $tls_libs -o "$out"
echo "build.sh: built $out (TLS: $tls)" >&2
echo "$out"
