#!/bin/sh
# Regenerate postfix-pipeconnect.patch from an edited tree: mkpatch.sh EDITED_TREE
# (the pristine tree is extracted from the verified orig tarball).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
EDIT=$(cd "$1" && pwd)
WORK=${POSTFIX_WORK:-$ROOT/target/postfix}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
tar -xzf "$WORK/dl/postfix_3.7.11.orig.tar.gz" -C "$TMP"
mkdir -p "$TMP/a" "$TMP/b"
FILES="src/global/mail_params.h src/smtp/Makefile.in src/smtp/smtp-only src/smtp/smtp.c src/smtp/smtp.h
 src/smtp/smtp_params.c src/smtp/smtp_proto.c src/smtp/smtp_connect.c src/smtp/smtp_pipeconnect.c"
for f in $FILES; do
    mkdir -p "$TMP/a/$(dirname "$f")" "$TMP/b/$(dirname "$f")"
    [ -f "$TMP/postfix-3.7.11/$f" ] && cp "$TMP/postfix-3.7.11/$f" "$TMP/a/$f"
    cp "$EDIT/$f" "$TMP/b/$f"
done
(cd "$TMP" && diff -ruN a b) > "$HERE/postfix-pipeconnect.patch" || true
sh "$HERE/patch-lines.sh"
