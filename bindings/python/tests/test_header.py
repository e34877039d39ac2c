"""The binding against include/pipeconnect.h: every function, enum, constant and struct.

These tests fail, listing what is missing, as soon as the C API grows something the
binding does not cover (or the binding keeps something the C API dropped).
"""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess

from pipeconnect import _enums, _ffi

import _header
from conftest import skip_unless_ci

_IGNORED_DEFINES = re.compile(r"PIPECONNECT_VERSION_\w+|PIPECONNECT_H|PIPECONNECT_MUST_USE")


def test_every_header_function_is_bound():
    declared = _header.functions(_header.header_text())
    assert len(declared) >= 20, "the header parser found almost nothing: is it broken?"
    unbound = sorted(declared - set(_ffi.FUNCTIONS))
    assert not unbound, "functions in the header not bound by the Python binding:\n  " + (
        "\n  ".join(unbound)
    )


def test_every_bound_function_is_in_the_header():
    declared = _header.functions(_header.header_text())
    stale = sorted(set(_ffi.FUNCTIONS) - declared)
    assert not stale, "bound functions the header no longer declares:\n  " + "\n  ".join(stale)


def test_function_table_arity_matches_the_header():
    text = _header.strip_comments(_header.header_text())
    wrong = []
    for name, (_restype, argtypes) in _ffi.FUNCTIONS.items():
        m = re.search(r"\b" + name + r"\s*\(([^)]*)\)", text)
        if not m:
            continue  # reported by the test above
        params = m.group(1).strip()
        n = 0 if params in ("", "void") else params.count(",") + 1
        if n != len(argtypes):
            wrong.append(f"{name}: header has {n} parameters, table has {len(argtypes)}")
    assert not wrong, "\n".join(wrong)


def test_header_parser_finds_declarations_and_nothing_else():
    sample = """
    // pipeconnect_in_a_comment(int x);
    /* pipeconnect_block_comment(void); */
    #define PIPECONNECT_MACRO(x) pipeconnect_macro_call(x)
    typedef void (*pipeconnect_callback)(void *ctx);
    typedef struct pipeconnect_thing { uint32_t pipeconnect_field; } pipeconnect_thing;
    enum pipeconnect_result pipeconnect_one(const struct pipeconnect_key *key,
                                            size_t n);
    const char *pipeconnect_two(int result);
    void pipeconnect_three(void);
    bool pipeconnect_four (int r);
    """
    assert _header.functions(sample) == {
        "pipeconnect_one",
        "pipeconnect_two",
        "pipeconnect_three",
        "pipeconnect_four",
    }


def test_every_header_enum_matches_its_python_enum():
    text = _header.header_text()
    unknown = sorted(set(_header.enums(text)) - set(_enums.HEADER_ENUMS))
    assert not unknown, f"C enums without a Python enum: {unknown}"
    for c_name, py_enum in _enums.HEADER_ENUMS.items():
        c_values = _header.enum_values(text, c_name)
        py_values = {f"PIPECONNECT_{m.name}": int(m.value) for m in py_enum}
        assert c_values == py_values, f"{c_name} differs from {py_enum.__name__}"


def test_every_header_constant_matches_its_python_enum():
    defines = _header.defines(_header.header_text())
    problems = []
    seen = set()
    for name, value in defines.items():
        if _IGNORED_DEFINES.fullmatch(name):
            continue
        if name in _enums.HEADER_LIMITS:
            limit = _enums.HEADER_LIMITS[name]
            if int(limit) != value:
                problems.append(f"{name} = {value}: SizeLimit.{limit.name} is {int(limit)}")
            seen.add((_enums.SizeLimit, limit.name))
            continue
        # The longest matching prefix: PIPECONNECT_SESSION_COMMAND_ before any shorter one.
        prefix = max(
            (p for p in _enums.HEADER_CONSTANTS if name.startswith(p)), key=len, default=None
        )
        if prefix is None:
            problems.append(f"{name} = {value}: no Python enum for this group")
            continue
        enum = _enums.HEADER_CONSTANTS[prefix]
        member = name[len(prefix) :]
        py_name = {v: k for k, v in _enums.C_NAMES.items()}.get(member, member)
        if py_name not in enum.__members__:
            problems.append(f"{name} = {value}: missing from {enum.__name__}")
        elif int(enum.__members__[py_name]) != value:
            problems.append(
                f"{name} = {value}: {enum.__name__}.{py_name} is {int(enum[py_name])}"
            )
        seen.add((enum, py_name))
    for enum in set(_enums.HEADER_CONSTANTS.values()) | {_enums.SizeLimit}:
        for py_name, member in enum.__members__.items():
            if (enum, py_name) not in seen and int(member) != 0:
                problems.append(f"{enum.__name__}.{py_name} is not in the header")
    assert not problems, "\n".join(problems)


def test_every_header_struct_has_a_ctypes_type():
    text = _header.strip_comments(_header.header_text())
    with_body = set(re.findall(r"struct\s+(pipeconnect_\w+)\s*\{", text))
    opaque = set(re.findall(r"typedef\s+struct\s+(pipeconnect_\w+)\s+\1\s*;", text)) - with_body
    missing = sorted(with_body - set(_ffi.STRUCTS))
    assert not missing, f"structs without a ctypes layout in _ffi.STRUCTS: {missing}"
    missing_opaque = sorted(n for n in opaque if not hasattr(_ffi, n))
    assert not missing_opaque, f"opaque handle types without a ctypes type: {missing_opaque}"


def test_struct_layouts_match_the_c_compiler(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        skip_unless_ci("no C compiler to check the struct layouts with")
    lines = ["#include <stdio.h>", "#include <stddef.h>", '#include "pipeconnect.h"',
             "int main(void) {"]
    expected = []
    for cname, st in _ffi.STRUCTS.items():
        lines.append(f'    printf("{cname} %zu\\n", sizeof(struct {cname}));')
        expected.append(f"{cname} {ctypes.sizeof(st)}")
        for field, *_ in st._fields_:
            lines.append(
                f'    printf("{cname}.{field} %zu\\n", offsetof(struct {cname}, {field}));'
            )
            expected.append(f"{cname}.{field} {getattr(st, field).offset}")
        lines.append(f'    printf("{cname} align %zu\\n", _Alignof(struct {cname}));')
        expected.append(f"{cname} align {ctypes.alignment(st)}")
    lines += ["    return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "layout"
    header_dir = _header.header_path().parent
    subprocess.run(
        [cc, "-std=c11", "-Wall", "-Werror", "-I", str(header_dir), str(src), "-o", str(exe)],
        check=True,
    )
    got = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    assert got.splitlines() == expected


_SCALARS = {
    "int": ctypes.c_int,
    "bool": ctypes.c_bool,
    "size_t": ctypes.c_size_t,
    "uint8_t": ctypes.c_uint8,
    "uint16_t": ctypes.c_uint16,
    "uint32_t": ctypes.c_uint32,
    "uint64_t": ctypes.c_uint64,
    "enum pipeconnect_result": ctypes.c_int,
}


def _c_type(decl: str, typedefs: dict):
    """("pointer", None) or ("scalar", ctypes type) for a C declaration without its name."""
    decl = " ".join(decl.replace("const", " ").split())
    if "*" in decl:
        return ("pointer", decl)
    while decl in typedefs:
        decl = typedefs[decl]
    return ("scalar", _SCALARS.get(decl))


def _is_pointer(t) -> bool:
    return t in (ctypes.c_char_p, ctypes.c_void_p) or (
        isinstance(t, type) and issubclass(t, ctypes._Pointer)
    )


def test_function_table_types_match_the_header():
    """Scalar widths must be exact (a wrong width corrupts silently); pointers must be
    pointers; return types must match."""
    text = _header.strip_comments(_header.header_text()).replace("PIPECONNECT_MUST_USE", "")
    text = "\n".join(";" if ln.lstrip().startswith("#") else ln for ln in text.splitlines())
    typedefs = dict(
        (name, base) for base, name in re.findall(r"typedef\s+(\w+)\s+(pipeconnect_\w+)\s*;", text)
    )
    wrong = []
    for name, (restype, argtypes) in _ffi.FUNCTIONS.items():
        m = re.search(r"[;{}]\s*([\w\s*]+?)\b" + name + r"\s*\(([^)]*)\)", text)
        if not m:
            continue
        ret = _c_type(m.group(1).strip(), typedefs)
        if m.group(1).strip() == "void":
            ok = restype is None
        elif ret[0] == "pointer":
            ok = _is_pointer(restype)
        else:
            ok = ret[1] is not None and restype is ret[1]
        if not ok:
            wrong.append(f"{name}: returns {m.group(1).strip()!r}, table has {restype}")
        params = [p.strip() for p in m.group(2).split(",") if p.strip() not in ("", "void")]
        for i, (param, argtype) in enumerate(zip(params, argtypes)):
            decl = re.sub(r"\w+$", "", param).strip()  # drop the parameter's name
            kind, ctype = _c_type(decl, typedefs)
            if kind == "pointer":
                ok = _is_pointer(argtype)
            else:
                ok = ctype is not None and ctypes.sizeof(argtype) == ctypes.sizeof(ctype) and (
                    argtype is ctype
                )
            if not ok:
                wrong.append(f"{name} parameter {i} ({param!r}): table has {argtype}")
    assert not wrong, "\n".join(wrong)
