//! The hand-off of one blocking call to the thread that runs it (the main thread), with a
//! timeout that cannot race the run.
//!
//! The [`Runner`] travels inside the queued item; the [`Caller`] stays with the thread that
//! waits. One atomic holds who decided first: the runner's [`Runner::claim`] (Waiting → Running)
//! or the caller giving up (Waiting → Abandoned, on a timeout or when the caller is dropped).
//! Both are compare-and-swaps, so exactly one wins: a call that timed out never runs, and a call
//! that started always delivers its value, however long it takes.

use std::time::Duration;

use crate::interrupt::Interrupt;
use crate::latch::Latch;
use crate::sync::{Arc, AtomicU8, Mutex, Ordering, rc};

const WAITING: u8 = 0;
const RUNNING: u8 = 1;
const ABANDONED: u8 = 2;

/// Why [`Caller::wait`] got no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The timeout passed before the call started; it will never run.
    TimedOut,
    /// The [`Runner`] was dropped without completing: its queued item was discarded, or the call
    /// panicked.
    Dropped,
    /// An [`Interrupt`] fired before the call started; it will never run.
    Interrupted,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CallError::TimedOut => "the call timed out before it started",
            CallError::Dropped => "the call was discarded before it delivered a value",
            CallError::Interrupted => "the wait was interrupted before the call started",
        })
    }
}

impl std::error::Error for CallError {}

/// A new hand-off: the runner goes with the queued call, the caller waits for its value.
pub fn oneshot<T>() -> (Runner<T>, Caller<T>) {
    let slot = Arc::new(Slot {
        state: AtomicU8::new(WAITING),
        value: Mutex::new(None),
        done: rc::Arc::new(Latch::new()),
    });
    (Runner { slot: slot.clone() }, Caller { slot })
}

struct Slot<T> {
    state: AtomicU8,
    value: Mutex<Option<T>>,
    /// Opens when the runner is gone: completed, skipped or dropped. Shared with the interrupts
    /// that watch it (std's `Arc`: they hold a `Weak`).
    done: rc::Arc<Latch>,
}

/// The side that runs the call. Dropping it without [`Runner::complete`] makes the caller's
/// wait end with [`CallError::Dropped`].
pub struct Runner<T> {
    slot: Arc<Slot<T>>,
}

impl<T> Runner<T> {
    /// Marks the call as started. `false` when the caller already gave up: the call must not run
    /// then (just drop the runner).
    pub fn claim(&self) -> bool {
        self.slot
            .state
            .compare_exchange(WAITING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Hands `value` to the caller. Call it after [`Runner::claim`] returned `true`.
    pub fn complete(self, value: T) {
        *self.slot.value.lock().unwrap() = Some(value);
        // Dropping `self` opens the latch, after the value is stored.
    }
}

impl<T> Drop for Runner<T> {
    fn drop(&mut self) {
        self.slot.done.set();
    }
}

/// The side that waits for the call's value. Dropping it gives up like a timeout: a call not
/// yet claimed will not run.
pub struct Caller<T> {
    slot: Arc<Slot<T>>,
}

impl<T> Caller<T> {
    /// Blocks until the call delivered its value or was dropped, or, with a `timeout`, until
    /// that passed before the call started. A call that started before the timeout is waited for
    /// without limit, so a value is never lost to the timeout.
    pub fn wait(self, timeout: Option<Duration>) -> Result<T, CallError> {
        self.wait_interruptible(timeout, &[])
    }

    /// Like [`Caller::wait`], and also gives up with [`CallError::Interrupted`] once one of
    /// `interrupts` fired, if the call has not started by then (a started call is waited for).
    pub fn wait_interruptible(
        self,
        timeout: Option<Duration>,
        interrupts: &[&Interrupt],
    ) -> Result<T, CallError> {
        let slot = &self.slot;
        for interrupt in interrupts {
            interrupt.watch(&slot.done);
        }
        let interrupted = || interrupts.iter().any(|interrupt| interrupt.is_fired());
        if !slot.done.wait_unless(timeout, interrupted) && self.abandon() {
            return Err(if interrupted() {
                CallError::Interrupted
            } else {
                CallError::TimedOut
            });
        }
        slot.done.wait();
        slot.value.lock().unwrap().take().ok_or(CallError::Dropped)
    }

    /// Waiting → Abandoned; `false` when the runner claimed the call first.
    fn abandon(&self) -> bool {
        self.slot
            .state
            .compare_exchange(WAITING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

impl<T> Drop for Caller<T> {
    fn drop(&mut self) {
        self.abandon();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn dropping_the_caller_means_the_call_does_not_run() {
        let (runner, caller) = oneshot::<u32>();
        drop(caller);
        assert!(!runner.claim());
    }

    #[test]
    fn an_interrupt_ends_the_wait_before_the_call_starts_and_the_call_never_runs() {
        let (runner, caller) = oneshot::<u32>();
        let interrupt = std::sync::Arc::new(Interrupt::new());
        let firing = {
            let interrupt = interrupt.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                interrupt.fire();
            })
        };
        assert_eq!(
            caller.wait_interruptible(None, &[&interrupt]),
            Err(CallError::Interrupted)
        );
        firing.join().unwrap();
        assert!(!runner.claim(), "an interrupted call does not run");
    }

    #[test]
    fn an_interrupt_does_not_abandon_a_call_that_started() {
        let (runner, caller) = oneshot::<u32>();
        let interrupt = Interrupt::new();
        assert!(runner.claim());
        interrupt.fire();
        let completing = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            runner.complete(7);
        });
        assert_eq!(caller.wait_interruptible(None, &[&interrupt]), Ok(7));
        completing.join().unwrap();
    }

    #[test]
    fn a_claim_succeeds_once() {
        let (runner, _caller) = oneshot::<u32>();
        assert!(runner.claim());
        assert!(!runner.claim());
    }
}
