//! `pipeconnect cache` against a real store file written through the library.

use pipeconnect::cache::file::StoreOptions;
use pipeconnect::caps::{Capabilities, ParseOptions};
use pipeconnect::key::{PeerKey, TlsState};
use pipeconnect::Cache;
use std::path::Path;
use std::process::Command;

const EXIM: &[u8] = b"250-mx.test.example Hello\r\n250-SIZE 52428800\r\n250-PIPELINING\r\n\
250-PIPECONNECT\r\n250-AUTH PLAIN\r\n250-CHUNKING\r\n250 STARTTLS\r\n";

fn tool(args: &[&str], store: &Path) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_pipeconnect"))
        .arg("cache")
        .args(args)
        .arg("--file")
        .arg(store)
        .output()
        .expect("run pipeconnect cache");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn dump_forget_stats_and_flush() {
    let dir = std::env::temp_dir().join(format!("pc-cache-cmd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("store");
    let opts = StoreOptions {
        sets: 64,
        ways: 4,
        ..StoreOptions::default()
    };
    let cache = Cache::open_file(&store, &opts).unwrap();
    let caps = Capabilities::parse_ehlo(EXIM, ParseOptions::default()).unwrap();
    let k = PeerKey::parse("192.0.2.1", 25, TlsState::Cleartext).unwrap();
    cache.learn(&k, caps.clone());
    cache.learn(&k.in_state(TlsState::Encrypted), caps.clone());
    cache.learn(
        &PeerKey::parse("2001:db8::7", 25, TlsState::Cleartext).unwrap(),
        caps,
    );
    drop(cache);

    let (code, out) = tool(&["dump"], &store);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines
        .iter()
        .any(|l| l.starts_with("192.0.2.1:25/cleartext age=")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("192.0.2.1:25/encrypted age=")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("[2001:db8::7]:25/cleartext")));
    assert!(lines[0].contains("PIPECONNECT") && lines[0].contains("size=52428800"));
    assert!(lines[0].contains("auth=PLAIN"));

    let (code, out) = tool(&["forget", "192.0.2.1:25"], &store);
    assert_eq!((code, out.trim()), (0, "forgot 2 entries for 192.0.2.1:25"));
    let (code, _) = tool(&["forget", "192.0.2.9"], &store);
    assert_eq!(code, 1, "nothing to forget is exit 1");

    let (code, out) = tool(&["stats"], &store);
    assert_eq!(code, 0);
    assert!(out.contains("sets=64 ways=4 capacity=256"), "{out}");
    assert!(out.contains("entries=1 "), "{out}");
    assert!(out.contains("invalidations=2"), "{out}");

    let o = Command::new(env!("CARGO_BIN_EXE_pipeconnect"))
        .args(["cache", "flush"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("flushed 1 entries from {}", store.display())
    );
    let (_, out) = tool(&["dump"], &store);
    assert!(out.is_empty(), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_or_hostile_file_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("pc-cache-cmd-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_pipeconnect"))
        .args(["cache", "dump", "--file"])
        .arg(dir.join("absent"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no store file at"));
    let garbage = dir.join("garbage");
    std::fs::write(&garbage, vec![0x41u8; 10_000]).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_pipeconnect"))
        .args(["cache", "dump", "--file"])
        .arg(&garbage)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        std::fs::read(&garbage).unwrap(),
        vec![0x41u8; 10_000],
        "left untouched"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dump_and_stats_show_hold_downs() {
    let dir = std::env::temp_dir().join(format!("pc-cache-cmd-hold-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("store");
    let opts = StoreOptions {
        sets: 16,
        ways: 4,
        ..StoreOptions::default()
    };
    let cache = Cache::open_file(&store, &opts).unwrap();
    let k = PeerKey::parse("192.0.2.5", 25, TlsState::Cleartext).unwrap();
    cache.learn(
        &k,
        Capabilities::parse_ehlo(EXIM, ParseOptions::default()).unwrap(),
    );
    // Refused in the encrypted state: one record for the server, shown for any TLS state.
    assert!(cache.note_early_refused(&k.in_state(TlsState::Encrypted)));
    cache.forget(&k);
    drop(cache);

    let (code, out) = tool(&["dump"], &store);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].starts_with("hold-down 192.0.2.5:25/any-tls level=1 remaining=")
            && lines[0].ends_with(" successes=0"),
        "{out}"
    );
    let (code, out) = tool(&["stats"], &store);
    assert_eq!(code, 0);
    assert!(out.contains("entries=0 "), "{out}");
    assert!(
        out.contains("hold_downs_entered=1 early_skipped_held_down=0 hold_downs_current=1"),
        "{out}"
    );
    let (code, _) = tool(&["forget", "192.0.2.5"], &store);
    assert_eq!(code, 1, "no entry left to forget");
    let (_, out) = tool(&["dump"], &store);
    assert!(out.is_empty(), "the hold-down went with the server: {out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Root works on the MTA user's store: `dump` and `stats` read it (with `pread`, never
/// mapping it), `forget` and `flush` change it as its owner; the owner stays.
#[test]
fn root_works_on_another_users_store() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        let skip = std::env::var("PIPECONNECT_SKIP_ROOT_TESTS").is_ok_and(|v| v == "1");
        assert!(
            skip,
            "root_works_on_another_users_store needs root; set PIPECONNECT_SKIP_ROOT_TESTS=1 \
             to skip it"
        );
        println!("SKIPPED root_works_on_another_users_store: not root");
        return;
    }
    const NOBODY: u32 = 65534;
    let dir = std::env::temp_dir().join(format!("pc-cache-cmd-root-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = dir.join("store");
    let opts = StoreOptions {
        sets: 16,
        ways: 4,
        owner: Some((NOBODY, NOBODY)),
        ..StoreOptions::default()
    };
    let cache = Cache::open_file(&store, &opts).unwrap();
    let caps = Capabilities::parse_ehlo(EXIM, ParseOptions::default()).unwrap();
    for a in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        cache.learn(
            &PeerKey::parse(a, 25, TlsState::Cleartext).unwrap(),
            caps.clone(),
        );
    }
    drop(cache);
    let owner = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    assert_eq!(owner(&store), (NOBODY, NOBODY, 0o600));
    let before = std::fs::read(&store).unwrap();
    let (code, out) = tool(&["dump"], &store);
    assert_eq!((code, out.lines().count()), (0, 3), "{out}");
    let (code, out) = tool(&["stats"], &store);
    assert_eq!(code, 0);
    assert!(out.contains("entries=3 "), "{out}");
    assert!(out.contains("writes_abandoned=0"), "{out}");
    assert_eq!(
        std::fs::read(&store).unwrap(),
        before,
        "reading changed nothing"
    );
    let (code, out) = tool(&["forget", "192.0.2.1"], &store);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("forgot 1 entries"), "{out}");
    let (code, out) = tool(&["dump"], &store);
    assert_eq!((code, out.lines().count()), (0, 2), "{out}");
    let (code, out) = tool(&["flush"], &store);
    assert_eq!(code, 0, "{out}");
    let (code, out) = tool(&["dump"], &store);
    assert_eq!((code, out.as_str()), (0, ""));
    assert_eq!(owner(&store), (NOBODY, NOBODY, 0o600), "the owner stays");
    std::fs::remove_dir_all(&dir).unwrap();
}
