//! The shared file store (see docs/FILE_STORE.md).
