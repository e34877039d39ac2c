//! What the shared library exports, and what the header and the NULL-pointer tables cover.
mod common;

use std::collections::BTreeSet;
use std::process::Command;

fn header() -> String {
    std::fs::read_to_string(common::root().join("include/pipeconnect.h")).expect("header")
}

/// `(name, parameter list)` of every function declared in the header.
fn header_functions() -> Vec<(String, String)> {
    let h = header();
    let mut out = Vec::new();
    let mut rest = h.as_str();
    while let Some(i) = rest.find("pipeconnect_") {
        let tail = &rest[i..];
        let name_len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..name_len];
        let after = &tail[name_len..];
        if let Some(params) = after.strip_prefix('(') {
            let close = params.find(')').expect("closing parenthesis");
            out.push((name.to_string(), params[..close].to_string()));
            rest = &params[close..];
        } else {
            rest = after;
        }
    }
    out
}

#[test]
fn the_shared_library_exports_only_pipeconnect_symbols() {
    let so = common::lib_dir().join("libpipeconnect.so");
    let o = common::run_ok(Command::new("nm").args(["-D", "--defined-only"]).arg(&so));
    let text = String::from_utf8_lossy(&o.stdout);
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let name = line.split_whitespace().last().unwrap_or("");
        assert!(
            name.starts_with("pipeconnect_"),
            "{} exports {name:?}, which is not a pipeconnect_ symbol",
            so.display()
        );
        names.insert(name.to_string());
    }
    // Every function of the header is exported, and nothing else.
    let declared: BTreeSet<String> = header_functions().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names, declared,
        "exported symbols and header declarations differ"
    );
}

/// The soname policy (docs/ARCHITECTURE.md): while the major version is 0, every 0.MINOR
/// may break the ABI, so the soname carries the minor: 0.2.x is `libpipeconnect.so.0.2`,
/// which a program built against 0.1 (`libpipeconnect.so.0`) never picks up by mistake.
#[test]
fn the_shared_library_carries_its_soname() {
    let so = common::lib_dir().join("libpipeconnect.so");
    let o = common::run_ok(Command::new("readelf").arg("-d").arg(&so));
    let text = String::from_utf8_lossy(&o.stdout);
    let major = env!("CARGO_PKG_VERSION_MAJOR");
    let minor = env!("CARGO_PKG_VERSION_MINOR");
    let want = if major == "0" {
        format!("[libpipeconnect.so.0.{minor}]")
    } else {
        format!("[libpipeconnect.so.{major}]")
    };
    assert_eq!(format!("[{}]", common::soname()), want);
    let soname_line = text
        .lines()
        .find(|l| l.contains("(SONAME)"))
        .unwrap_or_else(|| panic!("no SONAME in {}:\n{text}", so.display()));
    assert!(soname_line.contains(&want), "{soname_line}");
    assert_eq!(
        (major, minor),
        ("0", "2"),
        "this ABI (struct_size in every struct) is 0.2: a release that breaks it again \
         bumps the minor, and this test with it"
    );
}

/// The build leaves the soname link beside the library, so a program linked against the
/// build folder starts without an install or LD_LIBRARY_PATH.
#[test]
fn the_build_folder_holds_the_soname_link() {
    let dir = common::lib_dir();
    let link = dir.join(common::soname());
    let target = std::fs::read_link(&link)
        .unwrap_or_else(|e| panic!("{}: {e} (build.rs makes it)", link.display()));
    assert_eq!(target, std::path::Path::new("libpipeconnect.so"));
    assert!(link.exists(), "{} dangles", link.display());
}

#[test]
fn every_function_with_a_pointer_argument_has_null_rows() {
    let mut tables = String::new();
    for e in std::fs::read_dir(common::root().join("tests/c")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("test_null") && name.ends_with(".c") {
            tables.push_str(&std::fs::read_to_string(&p).unwrap());
        }
    }
    let mut missing = Vec::new();
    for (name, params) in header_functions() {
        let has_pointer = params.contains('*');
        let exempt = name.ends_with("_free") || name == "pipeconnect_version";
        // A row is `NULL_ROW(name, call)` or a table entry `{"name", caller, pointers}`.
        let has_row = tables.contains(&format!("NULL_ROW({name},"))
            || tables.contains(&format!("{{\"{name}\","));
        if has_pointer && !exempt && !has_row {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "no NULL_ROW for: {missing:?}");
}

/// The Debian symbols file lists exactly the header's functions, so a package build
/// notices a dropped symbol (dpkg-gensymbols) and a new one is recorded with its version.
#[test]
fn the_debian_symbols_file_lists_every_function() {
    let path = common::root().join("debian/libpipeconnect0.2.symbols");
    let text = std::fs::read_to_string(&path).expect("symbols file");
    let listed: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix(' '))
        .filter_map(|l| l.split('@').next())
        .filter(|n| n.starts_with("pipeconnect_"))
        .map(str::to_string)
        .collect();
    let declared: BTreeSet<String> = header_functions().into_iter().map(|(n, _)| n).collect();
    assert_eq!(listed, declared, "{} and the header differ", path.display());
}
