//! The C API of the policy functions.
