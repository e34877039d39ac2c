//! The C API of the shared file store.
