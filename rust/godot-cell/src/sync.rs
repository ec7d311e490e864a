//! The one place that chooses between the real primitives and loom's.
//!
//! Under `--cfg loom` the state word, the owner's bookkeeping, the thread-local record and the
//! parking of waiters all come from loom, so its model tests explore the real cell's code.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::thread_local;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::thread_local;

/// Orders the sequentially consistent operations before it against those after it, for loom.
///
/// The cell's reader/writer handshake is a store-buffering pattern: each side writes its own word
/// with a SeqCst read-modify-write, then reads the other's with a SeqCst load. Rust's memory model
/// (C++20's) puts all SeqCst operations in one total order, which rules out both sides reading
/// the old value. loom models SeqCst accesses only as AcqRel (its README), but it does model
/// SeqCst fences, so under loom this is such a fence; in a real build it is nothing (a fence
/// there would add an `mfence` on x86 to every borrow for no gain).
#[inline(always)]
pub(crate) fn seq_cst_handshake() {
    #[cfg(loom)]
    loom::sync::atomic::fence(Ordering::SeqCst);
}

/// Data that only the thread holding a cell's mutable borrow touches, handed over with the state
/// word's Acquire/Release (loom checks that claim).
#[derive(Debug)]
pub(crate) struct OwnerData<T>(
    #[cfg(not(loom))] std::cell::UnsafeCell<T>,
    #[cfg(loom)] loom::cell::UnsafeCell<T>,
);

impl<T> OwnerData<T> {
    pub(crate) fn new(value: T) -> Self {
        #[cfg(not(loom))]
        return Self(std::cell::UnsafeCell::new(value));
        #[cfg(loom)]
        return Self(loom::cell::UnsafeCell::new(value));
    }

    /// Runs `f` on the data.
    ///
    /// # Safety
    /// The caller is the only thread touching the data now: it holds the cell's mutable borrow
    /// (or is acquiring or releasing it), and does not call `with` again inside `f`.
    // SAFETY: an unsafe fn: the contract above is the caller's.
    pub(crate) unsafe fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        #[cfg(not(loom))]
        // SAFETY: exclusive access, as the caller promises.
        return f(unsafe { &mut *self.0.get() });
        #[cfg(loom)]
        // SAFETY: exclusive access, as the caller promises (and loom verifies).
        return self.0.with_mut(|data| f(unsafe { &mut *data }));
    }
}

/// Which waiters a wake-up is for: readers and writers wait for the mutable borrow to end; the
/// thread taking the mutable borrow waits for the shared borrows to drain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Queue {
    Readers,
    Writers,
    Drain,
}

/// Puts threads to sleep until a cell's state changes: parking_lot_core's global parking lot,
/// keyed by the address of the cell's state word (one key per queue). Costs nothing per cell.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct Parker;

#[cfg(not(loom))]
impl Parker {
    pub(crate) fn new() -> Self {
        Self
    }

    /// Sleeps on `queue` of the cell at `key` unless `validate` (run under the queue's lock,
    /// where it may set the state's "parked" bit) returns false; returns when woken.
    pub(crate) fn park(&self, key: usize, queue: Queue, validate: impl FnOnce() -> bool) {
        // SAFETY: the key is the address of a state word this cell owns (plus 0 to 2, still
        // inside it), so no other parking_lot user shares it; the callbacks only touch that
        // atomic word and never call back into the parking lot.
        unsafe {
            parking_lot_core::park(
                key + queue as usize,
                validate,
                || {},
                |_, _| {},
                parking_lot_core::DEFAULT_PARK_TOKEN,
                None,
            );
        }
    }

    /// Wakes every thread sleeping on `queue`, running `emptied` under the queue's lock once
    /// they are all taken off it (to clear the "parked" bit while no new sleeper can slip in).
    pub(crate) fn unpark_all(&self, key: usize, queue: Queue, emptied: impl FnOnce()) {
        // SAFETY: as in `park`; the callbacks only touch the cell's atomic state word.
        unsafe {
            parking_lot_core::unpark_filter(
                key + queue as usize,
                |_| parking_lot_core::FilterOp::Unpark,
                |_| {
                    emptied();
                    parking_lot_core::DEFAULT_UNPARK_TOKEN
                },
            );
        }
    }
}

/// Under loom: a mutex and a condition variable per queue, with the same contract (validate and
/// the emptied callback run under the lock that sleeping and waking take).
#[cfg(loom)]
#[derive(Debug, Default)]
pub(crate) struct Parker {
    queues: [(loom::sync::Mutex<()>, loom::sync::Condvar); 3],
}

#[cfg(loom)]
impl Parker {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn park(&self, _key: usize, queue: Queue, validate: impl FnOnce() -> bool) {
        let (lock, condvar) = &self.queues[queue as usize];
        let guard = lock.lock().unwrap();
        if validate() {
            drop(condvar.wait(guard).unwrap());
        }
    }

    pub(crate) fn unpark_all(&self, _key: usize, queue: Queue, emptied: impl FnOnce()) {
        let (lock, condvar) = &self.queues[queue as usize];
        let _guard = lock.lock().unwrap();
        emptied();
        condvar.notify_all();
    }
}
