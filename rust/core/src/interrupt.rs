//! A one-time broadcast that ends blocking waits: a task's cancellation, the engine shutting down.
//!
//! It is a crossbeam channel that never carries a value: [`Interrupt::fire`] drops its only
//! sender, which disconnects the receiver, and a disconnected receiver is ready in every
//! `crossbeam_channel::Select` from then on. So a wait on a channel (a queue pop, a blocking call's
//! reply) adds the interrupt's receiver to its `Select` and wakes when either is ready, without
//! polling, and a wait that starts after the fire returns at once. Waits on a [`Latch`] (a
//! blocking call's hand-off) register it with [`Interrupt::watch`] instead; a fire wakes it.

use std::convert::Infallible;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::latch::Latch;
use crate::sync::lot::Mutex;
use crate::sync::rc::{Arc, Weak};
use crate::sync::{AtomicBool, Ordering};

/// Fires once; see the module documentation.
#[derive(Debug)]
pub struct Interrupt {
    /// Set first by `fire`: the cheap check for hot paths (a zero-capacity channel's `try_recv`
    /// takes a lock).
    fired: AtomicBool,
    sender: Mutex<Option<Sender<Infallible>>>,
    receiver: Receiver<Infallible>,
    /// Latches to wake on fire; dead ones are pruned as new ones come.
    latches: Mutex<Vec<Weak<Latch>>>,
}

impl Default for Interrupt {
    fn default() -> Self {
        Self::new()
    }
}

impl Interrupt {
    pub fn new() -> Self {
        let (sender, receiver) = bounded(0);
        Self {
            fired: AtomicBool::new(false),
            sender: Mutex::new(Some(sender)),
            receiver,
            latches: Mutex::new(Vec::new()),
        }
    }

    /// Wakes every wait on [`Interrupt::receiver`], now and later, and every watched latch.
    /// Later calls do nothing.
    pub fn fire(&self) {
        self.fired.store(true, Ordering::SeqCst);
        self.sender.lock().take();
        // After the disconnect, so that a woken `Latch::wait_unless` sees `is_fired`.
        for latch in std::mem::take(&mut *self.latches.lock()) {
            if let Some(latch) = latch.upgrade() {
                latch.wake();
            }
        }
    }

    /// Wakes `latch` (see [`Latch::wake`]) when this fires, so that a `Latch::wait_unless` whose
    /// `give_up` checks [`Interrupt::is_fired`] ends. Register before waiting.
    pub fn watch(&self, latch: &Arc<Latch>) {
        let mut latches = self.latches.lock();
        latches.retain(|latch| latch.strong_count() > 0);
        latches.push(Arc::downgrade(latch));
    }

    pub fn is_fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    /// Ready (disconnected) in a `Select` once fired; it never yields a value.
    pub fn receiver(&self) -> &Receiver<Infallible> {
        &self.receiver
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn a_fire_wakes_a_blocked_select_and_every_later_one() {
        let interrupt = std::sync::Arc::new(Interrupt::new());
        assert!(!interrupt.is_fired());
        let waiter = {
            let interrupt = interrupt.clone();
            thread::spawn(move || interrupt.receiver().recv().is_err())
        };
        thread::sleep(Duration::from_millis(20));
        interrupt.fire();
        interrupt.fire();
        assert!(
            waiter.join().unwrap(),
            "the receiver reports a disconnect, never a value"
        );
        assert!(interrupt.is_fired());
        assert!(
            interrupt
                .receiver()
                .recv_timeout(Duration::from_secs(5))
                .is_err()
        );
    }
}
