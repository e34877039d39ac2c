#!/bin/sh
# Install the Python binding into a fresh virtual environment and run its tests.
#
#   bindings/python/run-tests.sh [LIBRARY] [PYTEST ARGS...]
#
# LIBRARY is libpipeconnect.so or the directory holding it; without it,
# $LIBPIPECONNECT_DIR/libpipeconnect.so, else <repo>/target/debug/libpipeconnect.so.
# The tests that run the test sink use $PIPECONNECT_BIN, else the pipeconnect tool beside
# the library, else <repo>/target/debug/pipeconnect. POSIX sh (the Makefile runs it with sh).
# Exits non-zero when a test fails, when nothing was collected, or when setup fails.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

lib=""
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    lib=$1
    shift
elif [ -n "${LIBPIPECONNECT_DIR:-}" ]; then
    lib=$LIBPIPECONNECT_DIR
else
    lib=$repo/target/debug
fi
if [ -d "$lib" ]; then
    lib=$lib/libpipeconnect.so
fi
if [ ! -f "$lib" ]; then
    echo "run-tests.sh: no library at $lib (build it with 'cargo build', or pass its path)" >&2
    exit 2
fi
lib=$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")

python=${PYTHON:-python3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pipeconnect-py.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$python" -m venv "$tmp/venv"
venv_py=$tmp/venv/bin/python

# Build from a copy so the source tree gets no build/ or *.egg-info.
mkdir "$tmp/src"
cp -R "$here/pyproject.toml" "$here/README.md" "$here/src" "$tmp/src/"
"$venv_py" -m pip install --quiet --disable-pip-version-check "$tmp/src" "pytest>=7"

export PIPECONNECT_LIBRARY="$lib"
if [ -z "${PIPECONNECT_BIN:-}" ] && [ -x "$(dirname "$lib")/pipeconnect" ]; then
    export PIPECONNECT_BIN="$(dirname "$lib")/pipeconnect"
fi
export PIPECONNECT_HEADER=${PIPECONNECT_HEADER:-$repo/include/pipeconnect.h}
export PYTHONDONTWRITEBYTECODE=1

cd "$here"
"$venv_py" -c 'import pipeconnect, sys; sys.stderr.write("pipeconnect %s from %s, library %s at %s\n" % (pipeconnect.__version__, pipeconnect.__file__, pipeconnect.library_version(), pipeconnect.library_path()))'
set +e
"$venv_py" -m pytest -q -p no:cacheprovider "$@" tests
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "run-tests.sh: pytest collected no tests" >&2
fi
exit "$rc"
