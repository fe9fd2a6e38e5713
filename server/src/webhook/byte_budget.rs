//! The byte bound of the webhook's queues (decision log, audit events): each entry holds its bytes
//! from the moment it is queued until the writer takes it, and an entry that would pass the bound is
//! refused rather than waited for.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes held by entries waiting in one queue, against a maximum.
#[derive(Debug)]
pub struct ByteBudget {
    held: AtomicUsize,
    max: usize,
}

impl ByteBudget {
    /// An empty budget of `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            held: AtomicUsize::new(0),
            max,
        }
    }

    /// Hold `bytes` if they fit; reserved first, so concurrent callers cannot all pass together.
    pub fn try_hold(&self, bytes: usize) -> bool {
        let before = self.held.fetch_add(bytes, Ordering::Relaxed);
        if before + bytes > self.max {
            self.release(bytes);
            return false;
        }
        true
    }

    /// Give back what an entry held (taken by the writer, or not queued after all).
    pub fn release(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// A budget of nothing: for a queue that takes no entries (a disabled log).
impl Default for ByteBudget {
    fn default() -> Self {
        Self::new(0)
    }
}
