//! How a public struct crosses the C boundary so that it can grow in both directions.
//!
//! Every `#[repr(C)]` struct of the C API starts with `size_t struct_size`, set by the
//! caller to `sizeof` of the struct as its header declares it:
//!
//! - a struct the library **reads** (an intent, settings, a command): the library copies
//!   `min(struct_size, its own size)` bytes over a zeroed struct, so fields an older
//!   caller does not know read as 0, which always means the default. Bytes a newer
//!   caller has beyond what the library knows must be 0 (the caller asked for nothing
//!   the library cannot do); otherwise `PIPECONNECT_ERR_INVALID_ARGUMENT`.
//! - a struct the library **writes** (an event, a summary, stats): the library writes at
//!   most `struct_size` bytes, and zero-fills what a newer caller has beyond the fields
//!   the library knows. `struct_size` itself is left as the caller set it.
//! - an **array** of structs: the first element's `struct_size` is the stride; every
//!   element read must carry the same value, and every element written gets it.
//!
//! `struct_size` must be at least `sizeof(size_t)`, at most [`PIPECONNECT_STRUCT_SIZE_MAX`], and a
//! multiple of `sizeof(size_t)` (it is always a `sizeof` of a struct that starts with a
//! `size_t`); otherwise `PIPECONNECT_ERR_INVALID_ARGUMENT` naming `struct_size`.

use super::detail::Failure;
use super::result::pipeconnect_result as R;
use std::mem::{align_of, size_of};

/// The largest `struct_size` accepted: far above any struct of the API, low enough that
/// a forgotten (garbage) `struct_size` is refused before the library reads or writes far
/// beyond the struct.
pub const PIPECONNECT_STRUCT_SIZE_MAX: usize = 4096;

/// A public struct that starts with `struct_size: usize`.
///
/// # Safety
/// The implementor is `#[repr(C)]`, starts with a `usize` field, and every bit pattern
/// of zeroes is a valid value (integers and raw pointers only).
pub(crate) unsafe trait Versioned: Copy {
    /// The struct's name for error details (`"pipeconnect_intent"`).
    const NAME: &'static str;
}

fn check_size(n: usize, what: &'static str) -> Result<usize, Failure> {
    if n < size_of::<usize>() || n > PIPECONNECT_STRUCT_SIZE_MAX || n % align_of::<usize>() != 0 {
        return Err(Failure::new(R::PIPECONNECT_ERR_INVALID_ARGUMENT)
            .field(what)
            .say(format!(
                "{what}.struct_size is {n}: set it to sizeof the struct (a multiple of \
                 {} from {} to {PIPECONNECT_STRUCT_SIZE_MAX})",
                align_of::<usize>(),
                size_of::<usize>()
            )));
    }
    Ok(n)
}

/// The `struct_size` the caller set in `*p`.
///
/// # Safety
/// `p` is non-NULL and valid for reading a `usize` at its start.
unsafe fn caller_size<T: Versioned>(p: *const T) -> Result<usize, Failure> {
    // SAFETY: the struct starts with a usize, by the caller's promise and the trait's.
    let n = unsafe { p.cast::<usize>().read() };
    check_size(n, T::NAME)
}

/// Check the `struct_size` of a struct the library will write, before the call acts.
///
/// # Safety
/// `p` is NULL or valid for reading a `usize`.
pub(crate) unsafe fn check_out<T: Versioned>(p: *const T) -> Result<(), Failure> {
    if p.is_null() {
        return Err(Failure::new(R::PIPECONNECT_ERR_NULL_POINTER).field(T::NAME));
    }
    // SAFETY: non-NULL; see the function's contract.
    unsafe { caller_size(p) }.map(|_| ())
}

/// Read a struct the caller filled, whose size is in its own `struct_size`.
///
/// # Safety
/// `p` is NULL or valid for reading `struct_size` bytes.
pub(crate) unsafe fn read_in<T: Versioned>(p: *const T) -> Result<T, Failure> {
    if p.is_null() {
        return Err(Failure::new(R::PIPECONNECT_ERR_NULL_POINTER).field(T::NAME));
    }
    // SAFETY: non-NULL; see the function's contract.
    let n = unsafe { caller_size(p) }?;
    // SAFETY: as above, `n` bytes are readable.
    unsafe { read_sized(p.cast::<u8>(), n, T::NAME, None) }
}

/// Read `n` bytes at `src` as a `T`: a prefix is zero-extended; a longer struct must be
/// zero beyond `T`.
///
/// # Safety
/// `src` is readable for `n` bytes.
unsafe fn read_sized<T: Versioned>(
    src: *const u8,
    n: usize,
    what: &'static str,
    index: Option<usize>,
) -> Result<T, Failure> {
    let ours = size_of::<T>();
    // SAFETY: the source is readable for n bytes (see the contract).
    let bytes = unsafe { std::slice::from_raw_parts(src, n) };
    if n > ours && bytes[ours..].iter().any(|&b| b != 0) {
        let f = Failure::new(R::PIPECONNECT_ERR_INVALID_ARGUMENT)
            .field(what)
            .say(format!(
                "{what} has {n} bytes and sets fields past the {ours} this library knows \
                 (a newer header's fields): upgrade the library or leave them 0"
            ));
        return Err(match index {
            Some(i) => f.index(i),
            None => f,
        });
    }
    let mut value = std::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: both ranges are valid for min(n, ours) bytes and do not overlap; a zeroed
    // T with any bytes copied over it is a valid T (integers and pointers only).
    unsafe {
        std::ptr::copy_nonoverlapping(src, value.as_mut_ptr().cast::<u8>(), n.min(ours));
        let mut v = value.assume_init();
        // The core never looks at it, but keep the value self-consistent.
        std::ptr::addr_of_mut!(v).cast::<usize>().write(ours);
        Ok(v)
    }
}

/// Write `value` into a struct the caller provided, whose size is in its `struct_size`.
///
/// # Safety
/// `p` is NULL or valid for reading and writing `struct_size` bytes.
pub(crate) unsafe fn write_out<T: Versioned>(p: *mut T, value: T) -> Result<(), Failure> {
    if p.is_null() {
        return Err(Failure::new(R::PIPECONNECT_ERR_NULL_POINTER).field(T::NAME));
    }
    // SAFETY: non-NULL; see the function's contract.
    let n = unsafe { caller_size(p) }?;
    // SAFETY: as above, n bytes are writable.
    unsafe { write_sized(p.cast::<u8>(), n, value) };
    Ok(())
}

/// Write `value` as `n` bytes at `dst`: a prefix of it when `n` is smaller than `T`,
/// zeroes after it when larger; the first word is `n`.
///
/// # Safety
/// `dst` is writable for `n` bytes, `n >= size_of::<usize>()`.
unsafe fn write_sized<T: Versioned>(dst: *mut u8, n: usize, value: T) {
    let ours = size_of::<T>();
    let mut v = std::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: writing a value into its own zeroed slot; then copying bytes out of it. A
    // byte copy moves padding as it is (ptr::copy is an untyped copy).
    unsafe {
        v.as_mut_ptr().write(value);
        std::ptr::copy_nonoverlapping(v.as_ptr().cast::<u8>(), dst, n.min(ours));
        if n > ours {
            std::ptr::write_bytes(dst.add(ours), 0, n - ours);
        }
        dst.cast::<usize>().write_unaligned(n);
    }
}

/// An array of structs the caller filled: `count` elements at the stride of the first
/// one's `struct_size`. Every element must carry the same `struct_size`.
///
/// # Safety
/// `p` is NULL or valid for reading `count` elements of the caller's `struct_size`.
pub(crate) unsafe fn read_array<T: Versioned>(
    p: *const T,
    count: usize,
) -> Result<Vec<T>, Failure> {
    if p.is_null() {
        return Err(Failure::new(R::PIPECONNECT_ERR_NULL_POINTER).field(T::NAME));
    }
    if count == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: non-NULL with at least one element, by the contract.
    let stride = unsafe { caller_size(p) }?;
    let base = p.cast::<u8>();
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        // SAFETY: element i lies within the caller's array (count elements of stride).
        let elem = unsafe { base.add(i * stride) };
        // SAFETY: as above; every element starts with its struct_size.
        let n = unsafe { elem.cast::<usize>().read_unaligned() };
        if n != stride {
            return Err(Failure::new(R::PIPECONNECT_ERR_INVALID_ARGUMENT)
                .field(T::NAME)
                .index(i)
                .say(format!(
                    "element {i} of the {} array has struct_size {n}, the first has {stride}: \
                     every element must carry sizeof the struct",
                    T::NAME
                )));
        }
        // SAFETY: element i is readable for `stride` bytes.
        out.push(unsafe { read_sized::<T>(elem, stride, T::NAME, Some(i)) }?);
    }
    Ok(out)
}

/// Where an array of structs the library fills begins and how far apart its elements
/// are: the first element's `struct_size`.
///
/// # Safety
/// `p` is NULL or valid for reading a `usize`.
pub(crate) unsafe fn out_array_stride<T: Versioned>(p: *mut T) -> Result<usize, Failure> {
    if p.is_null() {
        return Err(Failure::new(R::PIPECONNECT_ERR_NULL_POINTER).field(T::NAME));
    }
    // SAFETY: non-NULL; see the contract.
    unsafe { caller_size(p.cast_const()) }
}

/// Write element `i` of an array whose stride came from [`out_array_stride`].
///
/// # Safety
/// `p` is valid for writing `i + 1` elements of `stride` bytes.
pub(crate) unsafe fn write_array_element<T: Versioned>(
    p: *mut T,
    stride: usize,
    i: usize,
    value: T,
) {
    // SAFETY: see the contract.
    unsafe { write_sized(p.cast::<u8>().add(i * stride), stride, value) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C)]
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct New {
        struct_size: usize,
        a: u32,
        b: u64,
        c: u64,
    }
    unsafe impl Versioned for New {
        const NAME: &'static str = "new";
    }

    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    struct Old {
        struct_size: usize,
        a: u32,
        b: u64,
    }

    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    struct Newer {
        struct_size: usize,
        a: u32,
        b: u64,
        c: u64,
        d: u64,
    }

    #[test]
    fn an_older_callers_struct_reads_with_zero_for_what_it_lacks() {
        let old = Old {
            struct_size: size_of::<Old>(),
            a: 7,
            b: 9,
        };
        let v: New = unsafe { read_in((&old as *const Old).cast()) }.unwrap();
        assert_eq!((v.a, v.b, v.c), (7, 9, 0));
    }

    #[test]
    fn a_newer_callers_struct_reads_when_its_new_fields_are_zero() {
        let mut n = Newer {
            struct_size: size_of::<Newer>(),
            a: 1,
            b: 2,
            c: 3,
            d: 0,
        };
        let v: New = unsafe { read_in((&n as *const Newer).cast()) }.unwrap();
        assert_eq!((v.a, v.b, v.c), (1, 2, 3));
        n.d = 1;
        let e = unsafe { read_in::<New>((&n as *const Newer).cast()) }.unwrap_err();
        assert_eq!(e.result, R::PIPECONNECT_ERR_INVALID_ARGUMENT);
    }

    #[test]
    fn bad_sizes_are_refused() {
        for bad in [0usize, 4, 12, PIPECONNECT_STRUCT_SIZE_MAX + 8] {
            let mut buf = [0u64; 2];
            buf[0] = bad as u64;
            let e = unsafe { read_in::<New>(buf.as_ptr().cast()) }.unwrap_err();
            assert_eq!(e.result, R::PIPECONNECT_ERR_INVALID_ARGUMENT, "{bad}");
        }
    }

    #[test]
    fn output_writes_no_more_than_the_caller_has_and_zeroes_the_rest() {
        let value = New {
            struct_size: 0,
            a: 1,
            b: 2,
            c: 3,
        };
        // An older caller: a canary right after its struct stays untouched.
        let mut buf = [0xAAu8; 64];
        buf[..8].copy_from_slice(&size_of::<Old>().to_ne_bytes());
        unsafe { write_out(buf.as_mut_ptr().cast::<New>(), value) }.unwrap();
        assert!(buf[size_of::<Old>()..].iter().all(|&b| b == 0xAA));
        let old: Old = unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
        assert_eq!((old.struct_size, old.a, old.b), (size_of::<Old>(), 1, 2));
        // A newer caller: its unknown field is zeroed.
        let mut newer = Newer {
            struct_size: size_of::<Newer>(),
            a: 0,
            b: 0,
            c: 0,
            d: 0x5555,
        };
        unsafe { write_out((&mut newer as *mut Newer).cast::<New>(), value) }.unwrap();
        assert_eq!((newer.a, newer.b, newer.c, newer.d), (1, 2, 3, 0));
        assert_eq!(newer.struct_size, size_of::<Newer>());
    }

    #[test]
    fn arrays_use_the_first_elements_size_as_stride() {
        let arr = [
            Old {
                struct_size: size_of::<Old>(),
                a: 1,
                b: 10,
            },
            Old {
                struct_size: size_of::<Old>(),
                a: 2,
                b: 20,
            },
        ];
        let v: Vec<New> = unsafe { read_array(arr.as_ptr().cast(), 2) }.unwrap();
        assert_eq!((v[1].a, v[1].b, v[1].c), (2, 20, 0));
        let mut bad = arr;
        bad[1].struct_size = 8;
        let e = unsafe { read_array::<New>(bad.as_ptr().cast(), 2) }.unwrap_err();
        assert_eq!(e.index, Some(1));
    }
}
