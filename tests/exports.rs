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

#[test]
fn the_shared_library_carries_its_soname() {
    let so = common::lib_dir().join("libpipeconnect.so");
    let o = common::run_ok(Command::new("readelf").arg("-d").arg(&so));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("[libpipeconnect.so.0]"), "{text}");
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
