# Sourced by the Exim test scripts (with $me set to the script's name): moves to the
# repository's root, checks that Exim and root are there (without them the tests are
# skipped, except in CI (CI=true), where that is a failure, never a skip), and builds
# the library and the tool if make has not already.
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

missing=""
if ! command -v exim4 >/dev/null 2>&1 && [ ! -x /usr/sbin/exim4 ] && [ ! -x /usr/sbin/exim ]; then
    missing="exim4 is not installed (apt-get install -y exim4-daemon-heavy)"
elif [ "$(id -u)" != 0 ]; then
    missing="the Exim harness must run as root (it starts exim -C -bd)"
fi
if [ -n "$missing" ]; then
    if [ "${CI:-}" = true ]; then
        echo "$me: FAIL: $missing" >&2
        exit 1
    fi
    echo "$me: SKIPPED: $missing"
    exit 0
fi
command -v python3 >/dev/null 2>&1 || { echo "$me: python3 missing" >&2; exit 1; }

if [ ! -f target/release/libpipeconnect.so ] || [ ! -x target/release/pipeconnect ]; then
    ${CARGO:-cargo} build --release -p pipeconnect -p pipeconnect-tools
fi
