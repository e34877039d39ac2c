//! One connection's bookkeeping.
