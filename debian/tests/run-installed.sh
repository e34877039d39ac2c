#!/bin/sh
# `make test-deb`: installs the packages from DIR (default target/debian) into this machine
# with dpkg, runs the installed-package test (debian/tests/build-and-run), checks the man
# pages and the command, then purges the packages again, also when a step fails.
# Needs root. Refuses to run when any of the packages is installed already (it would not
# put the old one back).
set -eu
dir=${1:-target/debian}
here=$(cd "$(dirname "$0")" && pwd)
pkgs="libpipeconnect0.2 libpipeconnect-dev pipeconnect-tools"
if [ "$(id -u)" != 0 ]; then
    if [ "${CI:-}" = true ]; then echo "test-deb: needs root" >&2; exit 1; fi
    echo "test-deb: skipped (needs root to install packages)"; exit 0
fi
for p in $pkgs; do
    if dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null | grep -qv '^not-installed$'; then
        echo "test-deb: $p is installed on this machine already; remove it first" >&2; exit 1
    fi
done
debs=""
for p in $pkgs; do
    f=$(ls "$dir"/${p}_*.deb 2>/dev/null | head -n 1)
    [ -n "$f" ] || { echo "test-deb: no ${p}_*.deb in $dir (make deb)" >&2; exit 1; }
    debs="$debs $f"
done
cleanup() { dpkg --purge $pkgs >/dev/null || echo "test-deb: could not purge $pkgs" >&2; }
trap cleanup EXIT
dpkg -i $debs >/dev/null
passed=0
for p in $pkgs; do
    dpkg-query -W -f '${Package} ${Version} ${db:Status-Status}\n' "$p"
done
sh "$here/build-and-run"; passed=$((passed + 1))
pipeconnect serve --help 2>&1 | grep -q '^usage: pipeconnect serve' && passed=$((passed + 1)) || {
    echo "FAILED: the installed pipeconnect command" >&2; exit 1; }
# The Perl binding finds the packaged library by its soname.
perl_dir=$(cd "$here/../../bindings/perl" 2>/dev/null && pwd || true)
if [ -n "$perl_dir" ] && perl -MFFI::Platypus -e 1 2>/dev/null; then
    got=$(env -u PIPECONNECT_LIBRARY perl -I"$perl_dir/lib" -MPipeconnect -e 'print Pipeconnect::library_path(), " ", Pipeconnect::library_version()')
    [ "$got" = "libpipeconnect.so.0.2 0.2.0" ] || { echo "FAILED: Perl loaded: $got" >&2; exit 1; }
    env -u PIPECONNECT_LIBRARY PIPECONNECT_USE_SYSTEM=1 prove -Q "$perl_dir/t/cache.t" "$perl_dir/t/session.t"
    passed=$((passed + 1))
fi
for page in pipeconnect libpipeconnect.3; do
    warn=$(MANWIDTH=80 man --warnings "$page" 2>&1 >/dev/null)
    if [ -n "$warn" ] || ! man -w "$page" >/dev/null 2>&1; then
        echo "FAILED: man $page: ${warn:-not installed}" >&2; exit 1
    fi
    passed=$((passed + 1))
done
trap - EXIT
cleanup
for p in $pkgs; do
    if dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null | grep -qv '^not-installed$'; then
        echo "FAILED: $p is still installed" >&2; exit 1
    fi
done
[ ! -e /usr/include/pipeconnect.h ] || { echo "FAILED: /usr/include/pipeconnect.h left behind" >&2; exit 1; }
passed=$((passed + 1))
echo "test-deb: $passed checks passed; packages installed, used and purged"
