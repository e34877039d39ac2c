#!/bin/sh
# What a new user does: a fresh virtual environment, `pip install bindings/python`, no
# environment variable, no installed library; then `import pipeconnect` and the top
# README's Python snippet, verbatim. The build runs cargo (reusing the repository's target/).
# POSIX sh. Exits non-zero on any failure.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
python=${PYTHON:-python3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pipeconnect-pyinst.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unset PIPECONNECT_LIBRARY PIPECONNECT_BUNDLE PIPECONNECT_BUNDLE_LIBRARY PIPECONNECT_SOURCE_DIR || true
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
passed=0

"$python" -m venv "$tmp/venv"
py=$tmp/venv/bin/python
# As the README says it: from the repository's root, the folder as the argument.
(cd "$repo" && "$py" -m pip install --quiet --disable-pip-version-check bindings/python)
# Away from the source tree, so only the installed package can be imported.
cd "$tmp"
site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')
got=$("$py" -c 'import pipeconnect; print(pipeconnect.library_path())')
case "$got" in
    "$site"/pipeconnect/_lib/libpipeconnect.so) echo "ok: the bundled copy is loaded ($got)"; passed=$((passed + 1)) ;;
    *) echo "FAILED: import pipeconnect loaded $got, not the bundled copy" >&2; exit 1 ;;
esac
"$py" -c 'import pipeconnect; assert pipeconnect.library_version() == pipeconnect.__library_version__'
echo "ok: the version check passes"; passed=$((passed + 1))

# The first ```python block of the top README's "## Python" section, as written.
awk '/^## Python/ { s = 1 } s && /^```python/ { c = 1; next } c && /^```/ { exit } c { print }' \
    "$repo/README.md" > "$tmp/snippet.py"
[ -s "$tmp/snippet.py" ] || { echo "FAILED: no python snippet in README.md's Python section" >&2; exit 1; }
out=$("$py" "$tmp/snippet.py")
if [ "$out" = "True" ]; then
    echo "ok: the README's snippet prints True"; passed=$((passed + 1))
else
    echo "FAILED: the README's snippet printed: $out" >&2; exit 1
fi
echo "test-install.sh: $passed passed"
