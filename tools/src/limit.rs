//! A counter of live connections with a fixed ceiling.
//!
//! The accept loop takes a [`Slot`] before starting a connection's thread; the slot frees
//! itself when dropped, however the thread ends. [`Limiter::wait_idle`] lets a server that was
//! told to stop after N connections wait until the last one is finished.

use std::sync::{Arc, Condvar, Mutex, PoisonError};

#[derive(Debug)]
struct State {
    active: usize,
}

/// Shared between the accept loop and the connection threads.
#[derive(Debug)]
pub struct Limiter {
    max: usize,
    state: Mutex<State>,
    changed: Condvar,
}

/// One taken place; released on drop.
#[derive(Debug)]
pub struct Slot {
    limiter: Arc<Limiter>,
}

impl Limiter {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Limiter {
            max,
            state: Mutex::new(State { active: 0 }),
            changed: Condvar::new(),
        })
    }

    /// Takes a place if one is free.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Slot> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.active >= self.max {
            return None;
        }
        state.active += 1;
        Some(Slot {
            limiter: Arc::clone(self),
        })
    }

    /// Blocks until no place is taken.
    pub fn wait_idle(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while state.active > 0 {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self
            .limiter
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.active -= 1;
        self.limiter.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_and_release() {
        let limiter = Limiter::new(2);
        let a = limiter.try_acquire().expect("first");
        let _b = limiter.try_acquire().expect("second");
        assert!(limiter.try_acquire().is_none());
        drop(a);
        assert!(limiter.try_acquire().is_some());
    }

    #[test]
    fn wait_idle_returns_when_all_released() {
        let limiter = Limiter::new(4);
        let slot = limiter.try_acquire().unwrap();
        let waiter = {
            let limiter = Arc::clone(&limiter);
            std::thread::spawn(move || limiter.wait_idle())
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(slot);
        waiter.join().unwrap();
    }
}
