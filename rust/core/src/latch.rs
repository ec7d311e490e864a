//! A one-shot latch: many threads wait until one thread sets it, once.

use std::time::Duration;

use crate::sync::{Condvar, Mutex};

/// Starts unset; [`Latch::set`] opens it for good and wakes every waiter. Waiting blocks on a
/// condition variable (no spinning, no sleep loop).
#[derive(Debug, Default)]
pub struct Latch {
    set: Mutex<bool>,
    opened: Condvar,
}

impl Latch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens the latch; later calls do nothing.
    pub fn set(&self) {
        let mut set = self.set.lock().unwrap();
        if !*set {
            *set = true;
            self.opened.notify_all();
        }
    }

    pub fn is_set(&self) -> bool {
        *self.set.lock().unwrap()
    }

    /// Blocks until the latch is set.
    pub fn wait(&self) {
        let mut set = self.set.lock().unwrap();
        while !*set {
            set = self.opened.wait(set).unwrap();
        }
    }

    /// Blocks until the latch is set or `timeout` passes; returns whether it is set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut set = self.set.lock().unwrap();
        while !*set {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            set = self.opened.wait_timeout(set, left).unwrap().0;
        }
        true
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn wakes_every_waiter() {
        let latch = Arc::new(Latch::new());
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let latch = latch.clone();
                thread::spawn(move || latch.wait())
            })
            .collect();
        latch.set();
        latch.set();
        for waiter in waiters {
            waiter.join().unwrap();
        }
        assert!(latch.is_set());
    }

    #[test]
    fn wait_timeout_reports_unset() {
        let latch = Latch::new();
        assert!(!latch.wait_timeout(Duration::from_millis(10)));
        latch.set();
        assert!(latch.wait_timeout(Duration::ZERO));
    }
}
