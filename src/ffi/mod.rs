//! The C ABI. Each file is one C type; each function converts its arguments, calls the
//! safe core, and converts the result. No logic lives here.
//!
//! Conventions, for every exported function:
//! - the name starts with `pipeconnect_`;
//! - a fallible function returns [`result::pipeconnect_result`] and writes its outputs
//!   through out-parameters only when it returns `PIPECONNECT_OK` (or says otherwise);
//! - every pointer is checked: NULL is `PIPECONNECT_ERR_NULL_POINTER`, never a crash;
//! - every body runs inside [`guard`], so a panic becomes `PIPECONNECT_ERR_PANIC` and
//!   never unwinds into, or aborts, the calling MTA;
//! - handles are made by `_new`/`_open`/`_parse` and released by `_free`, which accepts NULL.
#![allow(non_camel_case_types)]

pub mod cache;
pub mod caps;
pub mod detail;
pub mod key;
pub mod policy;
pub mod qhlo_cookie;
pub mod result;
pub mod server;
pub mod session;
pub mod shared;
pub mod sized;
pub mod store;
pub mod tracker;
pub mod version;

use detail::{pipeconnect_error_detail, Failure};
use result::pipeconnect_result;
use std::cell::Cell;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

/// A handle's "a panic was caught while it was in use" mark. Once set, every later call
/// that takes the handle returns `PIPECONNECT_ERR_PANIC` without touching it: its state
/// may be half-changed. Only `_free` still works.
#[derive(Debug, Default)]
pub(crate) struct Poison(AtomicBool);

impl Poison {
    fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
    fn set(&self) {
        self.0.store(true, Ordering::Release)
    }
}

/// A handle type with a [`Poison`] mark.
pub(crate) trait Poisonable {
    /// The mark of the handle at `p`, reached without making a reference to the whole
    /// handle (a session is borrowed mutably inside the call), or NULL for NULL.
    ///
    /// # Safety
    /// `p` is NULL or a live handle of this type.
    unsafe fn poison_of(p: *const Self) -> *const Poison;
}

/// Implement [`Poisonable`] for handle types with a `poisoned: Poison` field.
macro_rules! poisonable {
    ($($t:ty),*) => {$(
        impl $crate::ffi::Poisonable for $t {
            unsafe fn poison_of(p: *const Self) -> *const $crate::ffi::Poison {
                if p.is_null() {
                    std::ptr::null()
                } else {
                    // SAFETY: a live handle by the caller's promise; no reference made.
                    unsafe { std::ptr::addr_of!((*p).poisoned) }
                }
            }
        }
    )*};
}
pub(crate) use poisonable;

/// The poison mark of one handle a call takes, for [`guard_on`]: NULL for a NULL handle.
/// Made only by [`mark`], whose caller promises the handle lives through the call.
#[derive(Clone, Copy)]
pub(crate) struct Mark(*const Poison);

impl Mark {
    fn get(&self) -> Option<&Poison> {
        // SAFETY: made by `mark` from a live handle that outlives the call.
        unsafe { self.0.as_ref() }
    }
}

/// The mark of the handle at `p`, for [`guard_on`].
///
/// # Safety
/// `p` is NULL or a live handle that stays live for the whole call.
pub(crate) unsafe fn mark<T: Poisonable>(p: *const T) -> Mark {
    // SAFETY: see the function's contract.
    Mark(unsafe { T::poison_of(p) })
}

thread_local! {
    /// How deep this thread is inside the library's own `catch_unwind`: the panic hook
    /// stays quiet for those panics.
    static INSIDE: Cell<u32> = const { Cell::new(0) };
}

/// The environment variable that lets the library's caught panics print their message
/// (through the previous panic hook, usually to stderr). Read once, at the first call.
pub const PANIC_MESSAGES_ENV: &str = "PIPECONNECT_PANIC_MESSAGES";

static HOOK: Once = Once::new();

/// Install, once, a panic hook that keeps the library's own caught panics off the MTA's
/// stderr and hands every other panic to the hook that was there before. Panic hooks
/// are per copy of the Rust standard library: a C program loading the `.so` has its own
/// copy inside the library, so only the library's panics ever reach this hook; a Rust
/// program linking the rlib shares one, and keeps its own hook's behaviour (chained).
fn install_quiet_hook() {
    HOOK.call_once(|| {
        let verbose =
            std::env::var_os(PANIC_MESSAGES_ENV).is_some_and(|v| !v.is_empty() && v != "0");
        if verbose {
            return;
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !quiet_here() {
                previous(info);
            }
        }));
    });
}

/// Whether a panic on this thread now happens inside one of the library's calls.
fn quiet_here() -> bool {
    INSIDE.try_with(|d| d.get() > 0).unwrap_or(false)
}

/// `catch_unwind` with the thread marked "inside the library" for the hook.
fn catch<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    install_quiet_hook();
    let _ = INSIDE.try_with(|d| d.set(d.get() + 1));
    let r = catch_unwind(AssertUnwindSafe(f));
    let _ = INSIDE.try_with(|d| d.set(d.get().saturating_sub(1)));
    r
}

/// Run `f`, turning a panic into `PIPECONNECT_ERR_PANIC`.
pub(crate) fn guard(
    f: impl FnOnce() -> Result<pipeconnect_result, pipeconnect_result>,
) -> pipeconnect_result {
    match catch(f) {
        Ok(Ok(r)) | Ok(Err(r)) => r,
        Err(_) => pipeconnect_result::PIPECONNECT_ERR_PANIC,
    }
}

/// As [`guard`] for a call on handles: a handle already poisoned is refused with
/// `PIPECONNECT_ERR_PANIC`, and a panic poisons every handle of the call.
pub(crate) fn guard_on(
    marks: &[Mark],
    f: impl FnOnce() -> Result<pipeconnect_result, pipeconnect_result>,
) -> pipeconnect_result {
    guard_detail(marks, DetailOut(std::ptr::null_mut()), || {
        f().map_err(Failure::from)
    })
}

/// A caller's optional `pipeconnect_error_detail *`, made only by [`wrap_detail`].
#[derive(Clone, Copy)]
pub(crate) struct DetailOut(*mut pipeconnect_error_detail);

/// Wrap a caller's `detail_out` for [`guard_detail`].
///
/// # Safety
/// `p` is NULL or valid for its `struct_size` bytes for the whole call.
pub(crate) unsafe fn wrap_detail(p: *mut pipeconnect_error_detail) -> DetailOut {
    DetailOut(p)
}

/// As [`guard_on`], writing what went wrong to `detail_out` when the caller gave one
/// (on success too, so that the caller never reads an earlier call's detail).
///
pub(crate) fn guard_detail(
    marks: &[Mark],
    detail: DetailOut,
    f: impl FnOnce() -> Result<pipeconnect_result, Failure>,
) -> pipeconnect_result {
    let detail_out = detail.0;
    if !detail_out.is_null() {
        // SAFETY: valid, by `wrap_detail`'s contract.
        if let Err(f) = unsafe { sized::check_out(detail_out) } {
            return f.result;
        }
    }
    let poisoned = marks.iter().any(|m| m.get().is_some_and(Poison::is_set));
    let (r, failure) = if poisoned {
        let f = Failure::new(pipeconnect_result::PIPECONNECT_ERR_PANIC)
            .say("an earlier call on this handle panicked; free it and make another");
        (f.result, Some(f))
    } else {
        match catch(f) {
            Ok(Ok(r)) => (r, None),
            Ok(Err(f)) => (f.result, Some(f)),
            Err(_) => {
                for m in marks.iter().filter_map(Mark::get) {
                    m.set();
                }
                (pipeconnect_result::PIPECONNECT_ERR_PANIC, None)
            }
        }
    };
    // SAFETY: NULL or valid, by `wrap_detail`'s contract.
    let _ = catch(|| unsafe { detail::report(detail_out, r, failure.as_ref()) });
    r
}

/// Run `f` for a function that returns nothing (the `_free` functions): a panic is
/// swallowed, because there is no way to report it and unwinding into C is undefined.
pub(crate) fn guard_void(f: impl FnOnce()) {
    let _ = catch(f);
}

/// The `T` behind a handle pointer.
///
/// # Safety
/// `p` is NULL or a pointer this library handed out as a `T` and has not been freed.
pub(crate) unsafe fn handle<'a, T>(p: *const T) -> Result<&'a T, pipeconnect_result> {
    // SAFETY: the caller promises a live handle or NULL; NULL is refused here.
    unsafe { p.as_ref() }.ok_or(pipeconnect_result::PIPECONNECT_ERR_NULL_POINTER)
}

/// The `T` behind a mutable handle pointer.
///
/// # Safety
/// As [`handle`], and no other reference to the handle is in use (the C documentation
/// says which handles are for one thread at a time).
pub(crate) unsafe fn handle_mut<'a, T>(p: *mut T) -> Result<&'a mut T, pipeconnect_result> {
    // SAFETY: as above.
    unsafe { p.as_mut() }.ok_or(pipeconnect_result::PIPECONNECT_ERR_NULL_POINTER)
}

/// A checked out-parameter.
///
/// # Safety
/// `p` is NULL or valid for a write of `T`.
pub(crate) unsafe fn out<'a, T>(p: *mut T) -> Result<&'a mut T, pipeconnect_result> {
    // SAFETY: the caller promises `p` is writable or NULL.
    unsafe { p.as_mut() }.ok_or(pipeconnect_result::PIPECONNECT_ERR_NULL_POINTER)
}

/// A NUL-terminated C string as UTF-8 text.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn text<'a>(p: *const c_char) -> Result<&'a str, pipeconnect_result> {
    if p.is_null() {
        return Err(pipeconnect_result::PIPECONNECT_ERR_NULL_POINTER);
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's promise.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| pipeconnect_result::PIPECONNECT_ERR_NOT_UTF8)
}

/// A byte buffer given as pointer and length. NULL is refused even with length 0, so a
/// caller's forgotten buffer is caught.
///
/// # Safety
/// `p` is NULL or valid for reads of `len` bytes for `'a`.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize) -> Result<&'a [u8], pipeconnect_result> {
    if p.is_null() {
        return Err(pipeconnect_result::PIPECONNECT_ERR_NULL_POINTER);
    }
    if len > isize::MAX as usize {
        return Err(pipeconnect_result::PIPECONNECT_ERR_INVALID_ARGUMENT);
    }
    // SAFETY: non-NULL, length in range, readable by the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Hand a value to C as a new handle.
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Take back and drop a handle made by [`into_handle`]; NULL is allowed.
///
/// # Safety
/// `p` is NULL or a handle from [`into_handle`] of the same `T`, not yet freed.
pub(crate) unsafe fn free_handle<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: made by Box::into_raw and freed once, by the caller's promise.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// Copy `s` with a NUL into `buf` of `len` bytes; the length without the NUL goes to
/// `written`. Too small a buffer is `PIPECONNECT_ERR_BUFFER_TOO_SMALL`, with the needed
/// length (without the NUL) in `written` and nothing written to `buf`.
///
/// # Safety
/// `buf` is NULL or writable for `len` bytes; `written` is NULL or writable.
pub(crate) unsafe fn copy_out_text(
    s: &str,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> Result<pipeconnect_result, pipeconnect_result> {
    // SAFETY: checked by `out`.
    let written = unsafe { out(written) }?;
    if buf.is_null() {
        return Err(pipeconnect_result::PIPECONNECT_ERR_NULL_POINTER);
    }
    if s.len() + 1 > len {
        *written = s.len();
        return Err(pipeconnect_result::PIPECONNECT_ERR_BUFFER_TOO_SMALL);
    }
    // SAFETY: buf holds at least s.len() + 1 bytes by the check above.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len());
        *buf.add(s.len()) = 0;
    }
    *written = s.len();
    Ok(pipeconnect_result::PIPECONNECT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// A struct the library reads must end exactly at its last field: a field added
    /// later then starts at the old `sizeof`, never in bytes that an older caller's
    /// struct had as (possibly uninitialised) tail padding.
    #[test]
    fn structs_the_library_reads_have_no_tail_padding() {
        macro_rules! ends_at_last_field {
            ($t:ty, $last:ident, $last_ty:ty) => {
                assert_eq!(
                    size_of::<$t>(),
                    offset_of!($t, $last) + size_of::<$last_ty>(),
                    stringify!($t)
                );
            };
        }
        ends_at_last_field!(session::pipeconnect_intent, body_size, u64);
        ends_at_last_field!(policy::pipeconnect_settings, max_first_flight_body, u64);
        ends_at_last_field!(policy::pipeconnect_situation, flags, u32);
        ends_at_last_field!(policy::pipeconnect_command, mechanism, *const c_char);
        ends_at_last_field!(store::pipeconnect_store_options, reserved, u32);
        ends_at_last_field!(cache::pipeconnect_hold_down, reserved, u32);
        ends_at_last_field!(shared::pipeconnect_shared_options, secret_len, usize);
        ends_at_last_field!(session::pipeconnect_session_command, size, u64);
        ends_at_last_field!(server::pipeconnect_prebanner_options, max_body, u64);
    }

    #[test]
    fn a_panic_poisons_the_handles_of_the_call_and_only_those() {
        let a = cache::pipeconnect_cache::new(crate::cache::Cache::in_memory(Default::default()));
        let b = cache::pipeconnect_cache::new(crate::cache::Cache::in_memory(Default::default()));
        let ma = unsafe { mark(&a) };
        let mb = unsafe { mark(&b) };
        let r = guard_on(&[ma], || panic!("inside the library"));
        assert_eq!(r, pipeconnect_result::PIPECONNECT_ERR_PANIC);
        let mut ran = false;
        let again = guard_on(&[ma], || {
            ran = true;
            Ok(pipeconnect_result::PIPECONNECT_OK)
        });
        assert_eq!(again, pipeconnect_result::PIPECONNECT_ERR_PANIC);
        assert!(!ran, "a poisoned handle is not touched");
        let other = guard_on(&[mb], || Ok(pipeconnect_result::PIPECONNECT_OK));
        assert_eq!(other, pipeconnect_result::PIPECONNECT_OK);
    }

    #[test]
    fn the_hook_is_quiet_only_inside_the_library() {
        assert!(!quiet_here());
        let inside = catch(quiet_here).unwrap();
        assert!(inside);
        assert!(!quiet_here());
    }

    #[test]
    fn a_panic_becomes_an_error_result_and_does_not_unwind() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r = guard(|| panic!("inside the library"));
        let mut freed = false;
        guard_void(|| {
            freed = true;
            panic!("inside a free function")
        });
        std::panic::set_hook(prev);
        assert_eq!(r, pipeconnect_result::PIPECONNECT_ERR_PANIC);
        assert!(freed);
    }

    #[test]
    fn copy_out_text_never_overruns() {
        let mut buf = [0x55 as c_char; 8];
        let mut n = 0usize;
        let r = unsafe { copy_out_text("12345678", buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_eq!(r, Err(pipeconnect_result::PIPECONNECT_ERR_BUFFER_TOO_SMALL));
        assert_eq!(n, 8);
        assert!(buf.iter().all(|&b| b == 0x55));
        let r = unsafe { copy_out_text("1234567", buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_eq!(r, Ok(pipeconnect_result::PIPECONNECT_OK));
        assert_eq!(buf[7], 0);
    }
}
