//! A deliberate out-of-bounds read, compiled only into the sanitizer build of the
//! library (`--cfg pipeconnect_sanitizer_canary`, set by `tests/sanitize/run.sh`), so
//! that the sanitizer run can prove the library's own code is instrumented: calling it
//! with an index of 8 or more must be reported by AddressSanitizer. Never in a normal
//! build, so it is neither exported nor in the header.

/// Read byte `index` of an 8-byte heap buffer, without a bounds check.
///
/// # Safety
/// Undefined behaviour for `index >= 8`, on purpose: the sanitizer must catch it.
#[no_mangle]
pub unsafe extern "C" fn pipeconnect_sanitizer_canary(index: usize) -> u8 {
    let v = vec![7u8; 8];
    // SAFETY: none for index >= 8; this is the canary's point.
    let b = unsafe { std::ptr::read_volatile(v.as_ptr().add(index)) };
    std::hint::black_box(&v);
    b
}
