//! The C API of the session helper.
