"""Build hook: the package carries its own copy of libpipeconnect.

Building the package (``pip install bindings/python``, ``pip wheel``, ``python -m build``)
runs ``cargo build --release -p pipeconnect`` in the source tree and copies the shared
library into the package as ``pipeconnect/_lib/libpipeconnect.so``, where the loader looks
after ``$PIPECONNECT_LIBRARY`` and before the system's soname. Why a hook and not
setuptools-rust or maturin: see README.md, "How the package is built".

Environment:

- ``PIPECONNECT_SOURCE_DIR``: the crate's folder (the repository root); default: two
  folders up from this file, when a Cargo.toml is there.
- ``PIPECONNECT_BUNDLE_LIBRARY``: a ready-built ``libpipeconnect.so`` to bundle instead of
  running cargo.
- ``PIPECONNECT_BUNDLE=0``: bundle nothing (a pure-Python package that loads the system's
  library); also what happens when the package is built away from the crate's source.
- ``CARGO``: the cargo to run (default ``cargo``); ``CARGO_TARGET_DIR`` is honoured, and
  defaults to the repository's own ``target/`` so nothing is compiled twice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1 takes it from the wheel package
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = os.path.dirname(os.path.abspath(__file__))
LIBRARY = "libpipeconnect.so"


def _wanted() -> bool:
    return os.environ.get("PIPECONNECT_BUNDLE", "1") not in ("0", "no", "false", "")


def _source_dir() -> str | None:
    explicit = os.environ.get("PIPECONNECT_SOURCE_DIR")
    if explicit:
        if not os.path.isfile(os.path.join(explicit, "Cargo.toml")):
            sys.exit(f"pipeconnect build: PIPECONNECT_SOURCE_DIR={explicit} has no Cargo.toml")
        return os.path.abspath(explicit)
    guess = os.path.abspath(os.path.join(HERE, "..", ".."))
    if os.path.isfile(os.path.join(guess, "Cargo.toml")) and os.path.isfile(
        os.path.join(guess, "include", "pipeconnect.h")
    ):
        return guess
    return None


def _build_library() -> str | None:
    """The path of the library to bundle, building it when needed; None: bundle nothing."""
    if not _wanted():
        return None
    ready = os.environ.get("PIPECONNECT_BUNDLE_LIBRARY")
    if ready:
        if not os.path.isfile(ready):
            sys.exit(f"pipeconnect build: PIPECONNECT_BUNDLE_LIBRARY={ready} is not a file")
        return ready
    src = _source_dir()
    if src is None:
        print(
            "pipeconnect build: the crate's source is not beside this package; building "
            "without a bundled library (set PIPECONNECT_SOURCE_DIR to bundle one)",
            file=sys.stderr,
        )
        return None
    cargo = os.environ.get("CARGO", "cargo")
    if shutil.which(cargo) is None:
        sys.exit(
            f"pipeconnect build: '{cargo}' was not found. The package bundles libpipeconnect, "
            "built with Rust's cargo (https://rustup.rs); install it, or build with "
            "PIPECONNECT_BUNDLE=0 to use an installed library instead."
        )
    env = dict(os.environ)
    target = env.setdefault("CARGO_TARGET_DIR", os.path.join(src, "target"))
    cmd = [cargo, "build", "--release", "--locked", "-p", "pipeconnect"]
    print(f"pipeconnect build: {' '.join(cmd)} (in {src}, target {target})", file=sys.stderr)
    subprocess.run(cmd, cwd=src, env=env, check=True)
    built = os.path.join(target, "release", LIBRARY)
    if not os.path.isfile(built):
        sys.exit(f"pipeconnect build: cargo finished but {built} is missing")
    return built


class BuildPyWithLibrary(build_py):
    """build_py, then the shared library into ``pipeconnect/_lib/``."""

    def run(self) -> None:
        super().run()
        lib = _build_library()
        if lib is None:
            return
        dest = os.path.join(self.build_lib, "pipeconnect", "_lib")
        os.makedirs(dest, exist_ok=True)
        for old in os.listdir(dest):
            os.remove(os.path.join(dest, old))
        # The real file, not a symlink: wheels hold no links.
        shutil.copyfile(lib, os.path.join(dest, LIBRARY))
        os.chmod(os.path.join(dest, LIBRARY), 0o755)


class BinaryDistribution(Distribution):
    """With a bundled library the wheel is for one platform, not pure Python."""

    def has_ext_modules(self) -> bool:
        return _wanted() and bool(os.environ.get("PIPECONNECT_BUNDLE_LIBRARY") or _source_dir())


class WheelForAnyPython3(bdist_wheel):
    """ctypes needs no particular CPython ABI: tag py3-none-<platform>."""

    def get_tag(self) -> tuple[str, str, str]:
        python, abi, plat = super().get_tag()
        if not self.root_is_pure:
            return "py3", "none", plat
        return python, abi, plat


setup(
    cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": WheelForAnyPython3},
    distclass=BinaryDistribution,
)
