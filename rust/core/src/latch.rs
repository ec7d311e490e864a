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
        self.wait_unless(None, || false);
    }

    /// Blocks until the latch is set or `timeout` passes; returns whether it is set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_unless(Some(timeout), || false)
    }

    /// Blocks until the latch is set, `give_up()` holds, or `timeout` (if any) passes; returns
    /// whether it is set. `give_up` is checked under the latch's lock: a thread that makes it
    /// true and then calls [`Latch::wake`] never leaves a waiter asleep.
    pub fn wait_unless(&self, timeout: Option<Duration>, give_up: impl Fn() -> bool) -> bool {
        let deadline = timeout.map(|timeout| std::time::Instant::now() + timeout);
        let mut set = self.set.lock().unwrap();
        while !*set {
            if give_up() {
                return false;
            }
            set = match deadline {
                None => self.opened.wait(set).unwrap(),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    self.opened.wait_timeout(set, left).unwrap().0
                }
            };
        }
        true
    }

    /// Wakes every waiter without setting the latch, so that [`Latch::wait_unless`] checks its
    /// `give_up` again.
    pub fn wake(&self) {
        // Taken so that a waiter between its `give_up` check and its sleep cannot miss this.
        let _set = self.set.lock().unwrap();
        self.opened.notify_all();
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
    fn wake_makes_a_waiter_give_up() {
        let latch = Arc::new(Latch::new());
        let give_up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let waiter = {
            let (latch, give_up) = (latch.clone(), give_up.clone());
            thread::spawn(move || {
                latch.wait_unless(None, || give_up.load(std::sync::atomic::Ordering::SeqCst))
            })
        };
        give_up.store(true, std::sync::atomic::Ordering::SeqCst);
        latch.wake();
        assert!(!waiter.join().unwrap(), "woke without the latch being set");
        assert!(!latch.is_set());
        assert!(!latch.wait_unless(None, || true), "an unset latch gives up");
        latch.set();
        assert!(
            latch.wait_unless(None, || true),
            "a set latch wins over give_up"
        );
    }

    #[test]
    fn wait_timeout_reports_unset() {
        let latch = Latch::new();
        assert!(!latch.wait_timeout(Duration::from_millis(10)));
        latch.set();
        assert!(latch.wait_timeout(Duration::ZERO));
    }
}
