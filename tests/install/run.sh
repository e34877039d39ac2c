#!/bin/sh
# Install into a temporary DESTDIR, then build and run a C program with nothing but
# `pkg-config --cflags --libs pipeconnect`, against the shared and the static library.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
prefix=/opt/pipeconnect-test
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAILED: $*"; }

make -s -C "$top" install DESTDIR="$stage" PREFIX="$prefix" >/dev/null
root="$stage$prefix"
# The soname policy (docs/ARCHITECTURE.md): libpipeconnect.so.0.MINOR while the major
# version is 0, since every 0.MINOR release may break the ABI.
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$top/Cargo.toml" | head -n 1)
major=${version%%.*}
minor=${version#*.}; minor=${minor%%.*}
if [ "$major" = 0 ]; then soname="libpipeconnect.so.0.$minor"; else soname="libpipeconnect.so.$major"; fi
for f in lib/libpipeconnect.so "lib/$soname" "lib/libpipeconnect.so.$version" lib/libpipeconnect.a \
         include/pipeconnect.h lib/pkgconfig/pipeconnect.pc; do
    if [ -e "$root/$f" ]; then ok "installed $f"; else bad "missing $f"; fi
done
if [ -e "$root/lib/libpipeconnect.so.0" ]; then bad "a libpipeconnect.so.0 link: 0.1 programs would load this ABI"; else ok "no libpipeconnect.so.0 link"; fi
real=$(readlink "$root/lib/$soname")
case "$real" in "libpipeconnect.so.$version") ok "soname link -> $real" ;; *) bad "soname link -> $real" ;; esac
real=$(readlink "$root/lib/libpipeconnect.so")
case "$real" in "$soname") ok "dev link -> $real" ;; *) bad "dev link -> $real" ;; esac
if readelf -d "$root/lib/$soname" | grep -q "SONAME.*\[$soname\]"; then
    ok "SONAME is $soname"
else
    bad "SONAME is not $soname"
fi
if grep -q "^Version: $version\$" "$root/lib/pkgconfig/pipeconnect.pc"; then
    ok "pipeconnect.pc says Version: $version"
else
    bad "pipeconnect.pc version"
fi

# pkg-config reads the .pc from the staged tree; its prefix points at $prefix, so
# redirect it into the stage with --define-prefix-less sysroot handling.
export PKG_CONFIG_PATH="$root/lib/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$stage"
cflags=$(pkg-config --cflags pipeconnect)
libs=$(pkg-config --libs pipeconnect)
cat > "$stage/quickstart.c" <<'C'
#include <pipeconnect.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    static const char ehlo[] = "250-mx.example\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n";
    pipeconnect_cache *cache = NULL;
    pipeconnect_key *key = NULL;
    pipeconnect_caps *caps = NULL;
    bool early = false;
    if (strcmp(pipeconnect_version(), PIPECONNECT_VERSION_STRING) != 0) return 10;
    if (pipeconnect_cache_new(0, 0, &cache) != PIPECONNECT_OK) return 11;
    if (pipeconnect_key_new("2001:db8::25", 25, PIPECONNECT_TLS_CLEARTEXT, &key)) return 12;
    if (pipeconnect_cache_learn(cache, key, (const uint8_t *)ehlo, strlen(ehlo), 0)) return 13;
    {
        pipeconnect_cache_stats st = {0};
        st.struct_size = sizeof st;
        if (pipeconnect_cache_get_stats(cache, &st) || st.entries != 1) return 16;
    }
    if (pipeconnect_cache_lookup(cache, key, &caps) != PIPECONNECT_OK) return 14;
    if (pipeconnect_caps_has(caps, PIPECONNECT_EXT_PIPECONNECT, &early) || !early) return 15;
    printf("early pipelining cached for [2001:db8::25]:25\n");
    pipeconnect_caps_free(caps);
    pipeconnect_key_free(key);
    pipeconnect_cache_free(cache);
    return 0;
}
C
# shellcheck disable=SC2086
if ${CC:-cc} -std=c99 -Wall -Wextra -Werror -pedantic $cflags "$stage/quickstart.c" -o "$stage/qs" $libs \
    && LD_LIBRARY_PATH="$root/lib" "$stage/qs"; then
    ok "shared: compiled with pkg-config and ran"
else
    bad "shared: compile or run with pkg-config"
fi
if readelf -d "$stage/qs" 2>/dev/null | grep -q "NEEDED.*\[$soname\]"; then
    ok "the program records the soname $soname"
else
    bad "the program does not depend on $soname"
fi
slibs=$(pkg-config --static --libs pipeconnect | sed 's/-lpipeconnect/-l:libpipeconnect.a/')
# shellcheck disable=SC2086
if ${CC:-cc} -std=c99 -Wall -Wextra -Werror $cflags "$stage/quickstart.c" -o "$stage/qs-static" $slibs \
    && "$stage/qs-static" && ! ldd "$stage/qs-static" | grep -q libpipeconnect; then
    ok "static: linked libpipeconnect.a with pkg-config --static and ran"
else
    bad "static link with pkg-config --static"
fi
# cargo-c, where installed, must give the same layout as `make install`.
if command -v cargo-cinstall >/dev/null 2>&1; then
    capi=$(mktemp -d)
    if cargo cinstall --release -p pipeconnect --manifest-path "$top/Cargo.toml" \
        --prefix="$prefix" --libdir="$prefix/lib" --destdir="$capi" >"$capi.log" 2>&1; then
        ours=$(cd "$stage" && find . -path ./qs -prune -o \( -type f -o -type l \) -print \
               | grep -v -e '^./quickstart.c$' -e '^./qs' | sort)
        theirs=$(cd "$capi" && find . \( -type f -o -type l \) -print | sort)
        if [ "$ours" = "$theirs" ] && cmp -s "$capi$prefix/include/pipeconnect.h" "$root/include/pipeconnect.h"; then
            ok "cargo cinstall installs the same files and header as make install"
        else
            bad "cargo cinstall layout differs:"; echo "make install:"; echo "$ours"; echo "cargo cinstall:"; echo "$theirs"
        fi
    else
        bad "cargo cinstall failed (see $capi.log)"
    fi
    rm -rf "$capi"
else
    echo "note: cargo-c is not installed; its layout was not compared (cargo install cargo-c --version 0.10.24 --locked)"
fi
echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
