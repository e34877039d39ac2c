"""Reading include/pipeconnect.h: the functions, enums and constants it declares."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Set

#: bindings/python/tests -> the repository root.
REPO = Path(__file__).resolve().parents[3]


def header_path() -> Path:
    """The header to check: $PIPECONNECT_HEADER, else include/pipeconnect.h of the repo."""
    env = os.environ.get("PIPECONNECT_HEADER")
    return Path(env) if env else REPO / "include" / "pipeconnect.h"


def header_text() -> str:
    path = header_path()
    if not path.is_file():
        raise AssertionError(
            f"the C header {path} does not exist; set PIPECONNECT_HEADER to its path"
        )
    return path.read_text(encoding="utf-8")


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


# A declaration: return type words (and '*') at the start of a statement, then the name
# and '('. Statement starts are the text start or after ';', '}', '{' or a preprocessor
# line, so calls or mentions inside comments (already stripped) or macros do not count.
_DECL = re.compile(
    r"(?:^|[;{}])\s*((?:[A-Za-z_]\w*[\s*]+)+?)\**\s*(pipeconnect_\w+)\s*\(",
    re.M,
)


def functions(text: str) -> Set[str]:
    """Every function name declared in the header."""
    body = strip_comments(text)
    body = "\n".join(
        ";" if line.lstrip().startswith("#") else line for line in body.splitlines()
    )
    names = set()
    for m in _DECL.finditer(body):
        ret = m.group(1).split()
        if ret and ret[0] in ("typedef", "return"):
            continue
        names.add(m.group(2))
    return names


def enum_values(text: str, name: str) -> Dict[str, int]:
    """The members of ``typedef enum <name> { ... }`` (or ``enum <name> { ... }``)."""
    body = strip_comments(text)
    m = re.search(r"enum\s+" + re.escape(name) + r"\s*\{(.*?)\}", body, re.S)
    if not m:
        raise AssertionError(f"enum {name} not found in the header")
    out: Dict[str, int] = {}
    for item in m.group(1).split(","):
        item = item.strip()
        if not item:
            continue
        k, _, v = item.partition("=")
        out[k.strip()] = int(v.strip(), 0)
    return out


def enums(text: str) -> List[str]:
    """The names of every C enum declared in the header."""
    return sorted(set(re.findall(r"enum\s+(\w+)\s*\{", strip_comments(text))))


def defines(text: str) -> Dict[str, int]:
    """Every ``#define PIPECONNECT_X <integer expression>`` with an evaluable value."""
    out: Dict[str, int] = {}
    for m in re.finditer(r"^\s*#define\s+(PIPECONNECT_\w+)\s+(.+?)\s*$", text, re.M):
        name, value = m.group(1), m.group(2)
        if not re.fullmatch(r"[0-9xXa-fA-FuUlL\s()+*<|&>-]+", value):
            continue
        value = re.sub(r"(?<=[0-9a-fA-F])[uUlL]+\b", "", value)
        out[name] = int(eval(value, {"__builtins__": {}}, {}))  # digits and operators only
    return out
