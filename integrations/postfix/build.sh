#!/bin/sh
# Build Debian bookworm's Postfix 3.7.11 (the pristine upstream source from the Debian
# source package) with the libpipeconnect patch, linked against this tree's library,
# and install it into a private root. Run as root (apt-get, chown of the private root).
#
#   integrations/postfix/build.sh            fetch, verify, patch, build, install
#   POSTFIX_WORK=/some/dir build.sh          work somewhere else (default target/postfix)
#
# Prints nothing on success but the paths; every step is skipped when its output is
# newer than its inputs, so a second run takes seconds.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${POSTFIX_WORK:-$ROOT/target/postfix}
VERSION=3.7.11
ORIG=postfix_$VERSION.orig.tar.gz
ORIG_SHA256=8451fb343692b23cba105b6a194a27a6f32ff21bd2c3bb2fed5ac50d0631deda
PATCH=$HERE/postfix-pipeconnect.patch
SRC=$WORK/postfix-$VERSION
LIBPREFIX=$WORK/libpipeconnect
DEST=$WORK/root

say() { echo "postfix build: $*" >&2; }
die() { echo "postfix build: error: $*" >&2; exit 1; }

mkdir -p "$WORK/dl"

# 1. Build dependencies (never the postfix binary package: it replaces exim4).
missing=""
for p in m4 libssl-dev libdb5.3-dev pkg-config patch; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    say "installing$missing"
    apt-get install -y -q $missing >/dev/null || die "apt-get install$missing failed"
fi

# 2. The orig tarball from Debian's source package.
if [ ! -f "$WORK/dl/$ORIG" ]; then
    if ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        say "adding deb-src entries for the configured Debian suites"
        # The same archives and suites as the binary entries, for source packages.
        cat > /etc/apt/sources.list.d/pipeconnect-deb-src.sources <<'SRCS'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRCS
        apt-get update -q >/dev/null || die "apt-get update failed"
    fi
    (cd "$WORK/dl" && apt-get source --download-only -q postfix >/dev/null 2>&1) \
        || { apt-get update -q >/dev/null; (cd "$WORK/dl" && apt-get source --download-only -q postfix >/dev/null); } \
        || die "apt-get source postfix failed"
    [ -f "$WORK/dl/$ORIG" ] || die "the source package has no $ORIG (another Postfix version?)"
fi
echo "$ORIG_SHA256  $WORK/dl/$ORIG" | sha256sum -c --quiet - || die "$ORIG: SHA-256 mismatch"

# 3. The library, installed into a private prefix (pkg-config file included).
# (re-installed only when it changed, so that Postfix is not relinked for nothing)
make -C "$ROOT" -s build >/dev/null 2>&1 || die "make build of libpipeconnect failed"
if ! cmp -s "$ROOT/target/release/libpipeconnect.so" "$LIBPREFIX/lib/libpipeconnect.so" \
   || ! cmp -s "$ROOT/include/pipeconnect.h" "$LIBPREFIX/include/pipeconnect.h"; then
    make -C "$ROOT" -s install PREFIX="$LIBPREFIX" >/dev/null 2>&1 \
        || die "make install of libpipeconnect failed"
fi
export PKG_CONFIG_PATH="$LIBPREFIX/lib/pkgconfig"
PC_CFLAGS=$(pkg-config --cflags pipeconnect)
PC_LIBS="$(pkg-config --libs pipeconnect) -Wl,-rpath,$LIBPREFIX/lib"

# 4. Pristine source + patch (re-extracted whenever the patch changes).
stamp=$SRC/.pipeconnect-patch
if [ ! -f "$stamp" ] || ! cmp -s "$PATCH" "$stamp"; then
    say "extracting and patching $VERSION"
    rm -rf "$SRC"
    tar -xzf "$WORK/dl/$ORIG" -C "$WORK"
    (cd "$SRC" && patch -p1 -s < "$PATCH") || die "the patch does not apply"
    cp "$PATCH" "$stamp"
fi

# 5. Build (makedefs refuses LD_LIBRARY_PATH; the rpath finds the library instead).
if [ ! -x "$SRC/libexec/smtp" ] || [ "$stamp" -nt "$SRC/libexec/smtp" ] \
   || [ "$LIBPREFIX/lib/libpipeconnect.so" -nt "$SRC/libexec/smtp" ] \
   || [ -n "$(find "$SRC/src" -newer "$SRC/libexec/smtp" -name '*.[ch]' | head -n 1)" ]; then
    say "building (a few minutes on 2 cores)"
    (cd "$SRC" && unset LD_LIBRARY_PATH &&
        make -s makefiles CCARGS="-DUSE_TLS -DHAS_PIPECONNECT $PC_CFLAGS" \
            AUXLIBS="-lssl -lcrypto -ldb $PC_LIBS" OPT="-O2" DEBUG="-g" >"$WORK/build.log" 2>&1 &&
        make -s -j2 >>"$WORK/build.log" 2>&1) || { tail -n 30 "$WORK/build.log" >&2; die "postfix build failed (see $WORK/build.log)"; }
fi

# 6. Install into the private root (a package-style install: no users, no chown).
if [ ! -x "$DEST/usr/libexec/postfix/smtp" ] || [ "$SRC/libexec/smtp" -nt "$DEST/usr/libexec/postfix/smtp" ]; then
    rm -rf "$DEST"
    (cd "$SRC" && make -s non-interactive-package install_root="$DEST" \
        config_directory=/etc/postfix meta_directory=/etc/postfix \
        daemon_directory=/usr/libexec/postfix command_directory=/usr/sbin \
        queue_directory=/var/spool/postfix data_directory=/var/lib/postfix \
        sendmail_path=/usr/sbin/sendmail newaliases_path=/usr/bin/newaliases \
        mailq_path=/usr/bin/mailq manpage_directory=/usr/share/man \
        sample_directory=no readme_directory=no html_directory=no shlib_directory=no \
        mail_owner=postfix setgid_group=postdrop >>"$WORK/build.log" 2>&1) \
        || { tail -n 30 "$WORK/build.log" >&2; die "postfix install failed"; }
fi
ldd "$DEST/usr/libexec/postfix/smtp" | grep -q "$LIBPREFIX/lib/libpipeconnect" \
    || die "smtp(8) is not linked against $LIBPREFIX/lib/libpipeconnect"
echo "$DEST"
