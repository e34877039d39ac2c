//! The shared tier through the C API (called from Rust with C's conventions): attach
//! with options, a bad URL or option refused with detail, stats with the new fields,
//! an older caller's stats struct not written past its end.
#![cfg(feature = "shared-redis")]

mod redis_harness;

use pipeconnect::ffi::cache::*;
use pipeconnect::ffi::caps::*;
use pipeconnect::ffi::detail::pipeconnect_error_detail;
use pipeconnect::ffi::key::*;
use pipeconnect::ffi::result::pipeconnect_result as R;
use pipeconnect::ffi::shared::*;
use std::ffi::{CStr, CString};
use std::mem::size_of;
use std::ptr::{null, null_mut};

const EHLO: &[u8] = b"250-mx.example\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n";

fn new_cache() -> *mut pipeconnect_cache {
    let mut c = null_mut();
    assert_eq!(
        unsafe { pipeconnect_cache_new(0, 0, &mut c) },
        R::PIPECONNECT_OK
    );
    c
}

fn detail() -> pipeconnect_error_detail {
    // SAFETY: plain integers and arrays; all-zero is valid.
    let mut d: pipeconnect_error_detail = unsafe { std::mem::zeroed() };
    d.struct_size = size_of::<pipeconnect_error_detail>();
    d
}

fn options(prefix: &CStr, secret: &[u8]) -> pipeconnect_shared_options {
    pipeconnect_shared_options {
        struct_size: size_of::<pipeconnect_shared_options>(),
        flags: 0,
        deadline_ms: 50,
        backoff_ms: 0,
        reserved: 0,
        local_ttl_cap_seconds: 0,
        key_prefix: prefix.as_ptr(),
        secret: secret.as_ptr(),
        secret_len: secret.len(),
    }
}

fn field(d: &pipeconnect_error_detail) -> String {
    unsafe { CStr::from_ptr(d.field.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn attach_refuses_bad_urls_and_options_with_detail() {
    let c = new_cache();
    let prefix = CString::new("capi:").unwrap();
    for url in ["rediss://127.0.0.1", "http://x", "redis://h:notaport"] {
        let u = CString::new(url).unwrap();
        let mut d = detail();
        let r = unsafe { pipeconnect_cache_attach_shared(c, u.as_ptr(), null(), &mut d) };
        assert_eq!(r, R::PIPECONNECT_ERR_INVALID_ARGUMENT, "{url}");
        assert_eq!(field(&d), "url");
    }
    let u = CString::new("redis://127.0.0.1:1").unwrap();
    let mut o = options(&prefix, b"s");
    o.flags = 1 << 7;
    let mut d = detail();
    let r = unsafe { pipeconnect_cache_attach_shared(c, u.as_ptr(), &o, &mut d) };
    assert_eq!(r, R::PIPECONNECT_ERR_INVALID_ARGUMENT);
    assert_eq!(field(&d), "options.flags");
    let mut o = options(&prefix, b"s");
    o.secret_len = 0;
    let r = unsafe { pipeconnect_cache_attach_shared(c, u.as_ptr(), &o, &mut d) };
    assert_eq!(r, R::PIPECONNECT_ERR_INVALID_ARGUMENT);
    assert_eq!(field(&d), "options.secret_len");
    let bad_prefix = CString::new("has space").unwrap();
    let o = options(&bad_prefix, b"s");
    let r = unsafe { pipeconnect_cache_attach_shared(c, u.as_ptr(), &o, &mut d) };
    assert_eq!(r, R::PIPECONNECT_ERR_INVALID_ARGUMENT);
    // NULL options: the defaults.
    let r = unsafe { pipeconnect_cache_attach_shared(c, u.as_ptr(), null(), null_mut()) };
    assert_eq!(r, R::PIPECONNECT_OK);
    assert_eq!(
        unsafe { pipeconnect_cache_detach_shared(c) },
        R::PIPECONNECT_OK
    );
    unsafe { pipeconnect_cache_free(c) };
}

#[test]
fn two_caches_share_through_the_c_api() {
    let Some(r) = redis_harness::Redis::start("capi", false) else {
        return;
    };
    let url = CString::new(r.url()).unwrap();
    let prefix = CString::new("capi:").unwrap();
    let o = options(&prefix, b"fleet secret");
    let (a, b) = (new_cache(), new_cache());
    for c in [a, b] {
        let mut d = detail();
        let rc = unsafe { pipeconnect_cache_attach_shared(c, url.as_ptr(), &o, &mut d) };
        assert_eq!(rc, R::PIPECONNECT_OK);
    }
    let server = CString::new("192.0.2.9").unwrap();
    let mut k = null_mut();
    assert_eq!(
        unsafe { pipeconnect_key_new(server.as_ptr(), 25, PIPECONNECT_TLS_CLEARTEXT, &mut k) },
        R::PIPECONNECT_OK
    );
    assert_eq!(
        unsafe { pipeconnect_cache_learn(a, k, EHLO.as_ptr(), EHLO.len(), 0) },
        R::PIPECONNECT_OK
    );
    let mut caps = null_mut();
    assert_eq!(
        unsafe { pipeconnect_cache_lookup(b, k, &mut caps) },
        R::PIPECONNECT_OK
    );
    unsafe { pipeconnect_caps_free(caps) };
    let mut st = pipeconnect_cache_stats {
        struct_size: size_of::<pipeconnect_cache_stats>(),
        ..Default::default()
    };
    assert_eq!(
        unsafe { pipeconnect_cache_get_stats(b, &mut st) },
        R::PIPECONNECT_OK
    );
    assert_eq!(
        (st.shared_hits, st.shared_misses, st.shared_rejected),
        (1, 0, 0)
    );
    // A caller from before the shared fields: nothing written past its struct.
    let old_size = std::mem::offset_of!(pipeconnect_cache_stats, shared_hits);
    let mut buf = vec![0xa5u8; size_of::<pipeconnect_cache_stats>()];
    buf[..8].copy_from_slice(&old_size.to_ne_bytes());
    let rc = unsafe { pipeconnect_cache_get_stats(b, buf.as_mut_ptr().cast()) };
    assert_eq!(rc, R::PIPECONNECT_OK);
    assert!(buf[old_size..].iter().all(|&x| x == 0xa5));
    unsafe {
        pipeconnect_key_free(k);
        pipeconnect_cache_free(a);
        pipeconnect_cache_free(b);
    }
}
