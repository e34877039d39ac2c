//! A byte queue whose items come out a fixed delay after they went in: one direction of the
//! simulated link. The reader side stamps each chunk when it was read; the writer side sleeps
//! until the front chunk is due. Order is kept, and delays do not add up: a chunk read while
//! others wait is due `delay` after its own read, not after theirs.
//!
//! Memory is bounded: [`TimedQueue::wait_for_room`] holds the reader while the queued bytes are
//! at or over the cap.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// What the writer gets next.
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    Data(Vec<u8>),
    /// The source shut its write half (or failed): shut the destination's write half.
    End,
}

#[derive(Debug)]
struct State {
    items: VecDeque<(Instant, Item)>,
    bytes: usize,
    /// The writer has given up (its destination failed): readers stop.
    abandoned: bool,
}

#[derive(Debug)]
pub struct TimedQueue {
    delay: Duration,
    cap: usize,
    state: Mutex<State>,
    changed: Condvar,
}

impl TimedQueue {
    pub fn new(delay: Duration, cap: usize) -> Self {
        TimedQueue {
            delay,
            cap,
            state: Mutex::new(State {
                items: VecDeque::new(),
                bytes: 0,
                abandoned: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Blocks while the queue is full. False if the writer has given up.
    pub fn wait_for_room(&self) -> bool {
        let mut state = self.lock();
        while state.bytes >= self.cap && !state.abandoned {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        !state.abandoned
    }

    /// Queues bytes read just now; they are due `delay` from now.
    pub fn push(&self, item: Item) {
        let due = Instant::now() + self.delay;
        let mut state = self.lock();
        if state.abandoned {
            return;
        }
        if let Item::Data(bytes) = &item {
            state.bytes += bytes.len();
        }
        state.items.push_back((due, item));
        self.changed.notify_all();
    }

    /// Blocks until the front item is due, and takes it.
    pub fn pop(&self) -> Item {
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            let wait = match state.items.front() {
                Some((due, _)) if *due <= now => break,
                Some((due, _)) => Some(*due - now),
                None => None,
            };
            state = match wait {
                Some(wait) => {
                    self.changed
                        .wait_timeout(state, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
        let (_, item) = state.items.pop_front().expect("front item checked above");
        if let Item::Data(bytes) = &item {
            state.bytes -= bytes.len();
        }
        self.changed.notify_all();
        item
    }

    /// The writer stops: queued data is dropped and readers are released.
    pub fn abandon(&self) {
        let mut state = self.lock();
        state.abandoned = true;
        state.items.clear();
        state.bytes = 0;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn items_come_out_after_the_delay_in_order() {
        let delay = Duration::from_millis(100);
        let queue = TimedQueue::new(delay, 1024);
        let start = Instant::now();
        queue.push(Item::Data(b"a".to_vec()));
        queue.push(Item::Data(b"b".to_vec()));
        queue.push(Item::End);
        assert_eq!(queue.pop(), Item::Data(b"a".to_vec()));
        assert!(start.elapsed() >= delay);
        assert_eq!(queue.pop(), Item::Data(b"b".to_vec()));
        assert_eq!(queue.pop(), Item::End);
        // Each item waited for its own due time, not for the one before it plus a delay: that
        // would take 300 ms. The margin leaves room for a loaded machine.
        let elapsed = start.elapsed();
        assert!(elapsed < Duration::from_millis(250), "{elapsed:?}");
    }

    #[test]
    fn a_full_queue_holds_the_reader() {
        let queue = Arc::new(TimedQueue::new(Duration::ZERO, 4));
        queue.push(Item::Data(vec![0; 4]));
        let reader = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.wait_for_room())
        };
        thread::sleep(Duration::from_millis(20));
        assert!(!reader.is_finished());
        queue.pop();
        assert!(reader.join().unwrap());
    }

    #[test]
    fn abandon_releases_the_reader() {
        let queue = Arc::new(TimedQueue::new(Duration::ZERO, 1));
        queue.push(Item::Data(vec![0; 2]));
        let reader = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.wait_for_room())
        };
        queue.abandon();
        assert!(!reader.join().unwrap());
    }
}
