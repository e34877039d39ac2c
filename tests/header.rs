//! The committed header is what cbindgen generates from the sources.
//! `PIPECONNECT_BLESS=1 cargo test --test header` (or `make header`) refreshes it.

#[test]
fn committed_header_is_not_stale() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("include/pipeconnect.h");
    let generated = pipeconnect::GENERATED_HEADER;
    assert!(
        !generated.starts_with("/* cbindgen failed"),
        "cbindgen failed: {generated}"
    );
    if std::env::var_os("PIPECONNECT_BLESS").is_some() {
        std::fs::write(&path, generated).expect("write include/pipeconnect.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/pipeconnect.h is stale: run `make header` and commit the result"
    );
}
