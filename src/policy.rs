//! The rules of PIPE_CONNECT as pure functions.
