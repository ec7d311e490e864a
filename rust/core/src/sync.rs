//! One place that chooses between std and loom synchronisation primitives.
//!
//! Under `--cfg loom` every atomic, lock and condition variable used by the model-tested code
//! comes from loom, so loom explores the interleavings of the real code (the approach tokio and
//! crossbeam take). std's Mutex/Condvar are used there (rather than parking_lot) because loom
//! mirrors their API exactly. Channels (crossbeam) are not modelled by loom; the code built on
//! them is covered by stress tests.

#[cfg(not(loom))]
pub(crate) use std::sync::{
    Arc, Condvar, Mutex,
    atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence},
};
#[cfg(not(loom))]
pub(crate) use std::thread::yield_now;

#[cfg(loom)]
pub(crate) use loom::sync::{
    Arc, Condvar, Mutex,
    atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence},
};
#[cfg(loom)]
pub(crate) use loom::thread::yield_now;

#[cfg(not(loom))]
pub(crate) use std::thread::{ThreadId, current as current_thread};
#[cfg(not(loom))]
pub(crate) use std::thread_local;

#[cfg(loom)]
pub(crate) use loom::thread::{ThreadId, current as current_thread};
#[cfg(loom)]
pub(crate) use loom::thread_local;

/// A reader-writer lock with guards for read-mostly data: crossbeam's sharded lock, where a reader
/// locks only its own thread's shard (a cache line other readers do not write), so readers on
/// different cores do not slow each other down; a writer locks every shard.
#[cfg(not(loom))]
#[derive(Debug, Default)]
pub(crate) struct RwLock<T>(crossbeam_utils::sync::ShardedLock<T>);

#[cfg(not(loom))]
impl<T> RwLock<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(crossbeam_utils::sync::ShardedLock::new(value))
    }

    pub(crate) fn read(&self) -> crossbeam_utils::sync::ShardedLockReadGuard<'_, T> {
        // Poisoning only marks that a holder panicked; the data is as consistent as after any
        // other write (ours never leave it half changed), as with parking_lot's locks.
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> crossbeam_utils::sync::ShardedLockWriteGuard<'_, T> {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(loom)]
#[derive(Debug, Default)]
pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

#[cfg(loom)]
impl<T> RwLock<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(loom::sync::RwLock::new(value))
    }

    pub(crate) fn read(&self) -> loom::sync::RwLockReadGuard<'_, T> {
        self.0.read().unwrap()
    }

    pub(crate) fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
        self.0.write().unwrap()
    }
}

/// A reader-writer lock without guards, for callers that lock and unlock in separate calls.
/// `timeout`: `None` waits as long as it takes, `Some(d)` gives up after `d` (zero: one try).
#[cfg(not(loom))]
pub(crate) struct RawRwLock(parking_lot::RawRwLock);

#[cfg(not(loom))]
impl RawRwLock {
    pub(crate) fn new() -> Self {
        Self(<parking_lot::RawRwLock as parking_lot::lock_api::RawRwLock>::INIT)
    }

    pub(crate) fn lock_shared(&self, timeout: Option<std::time::Duration>) -> bool {
        use parking_lot::lock_api::{RawRwLock as _, RawRwLockTimed as _};
        match timeout {
            None => {
                self.0.lock_shared();
                true
            }
            Some(d) if d.is_zero() => self.0.try_lock_shared().is_some(),
            Some(d) => self.0.try_lock_shared_for(d).is_some(),
        }
    }

    pub(crate) fn lock_exclusive(&self, timeout: Option<std::time::Duration>) -> bool {
        use parking_lot::lock_api::{RawRwLock as _, RawRwLockTimed as _};
        match timeout {
            None => {
                self.0.lock_exclusive();
                true
            }
            Some(d) if d.is_zero() => self.0.try_lock_exclusive().is_some(),
            Some(d) => self.0.try_lock_exclusive_for(d).is_some(),
        }
    }

    /// Releases one shared hold.
    ///
    /// # Safety
    /// A `lock_shared` not yet undone took the hold being released, on this thread or another.
    /// parking_lot's raw lock keeps no record of which thread holds it (its `send_guard` feature,
    /// which only makes this explicit, conflicts only with `deadlock_detection`, which is not
    /// enabled), so any thread may release a hold it knows of.
    // SAFETY: an unsafe fn: the contract above is the caller's.
    pub(crate) unsafe fn unlock_shared(&self) {
        // parking_lot's guard state is a stateless marker, so a fresh one stands for the one that
        // `lock_shared` returned.
        // SAFETY: the caller guarantees an outstanding shared hold (see above).
        unsafe { parking_lot::lock_api::RawRwLock::unlock_shared(&self.0, Default::default()) }
    }

    /// Releases the exclusive hold.
    ///
    /// # Safety
    /// A `lock_exclusive` not yet undone took the hold, on this thread or another (any thread may
    /// release it, as for `unlock_shared`).
    // SAFETY: an unsafe fn: the contract above is the caller's.
    pub(crate) unsafe fn unlock_exclusive(&self) {
        // A fresh stateless marker stands for the guard, as in `unlock_shared`.
        // SAFETY: the caller guarantees the outstanding exclusive hold (see above).
        unsafe { parking_lot::lock_api::RawRwLock::unlock_exclusive(&self.0, Default::default()) }
    }

    /// Takes the upgradable hold: beside shared holds, but alone among upgradable and
    /// exclusive ones.
    pub(crate) fn lock_upgradable(&self, timeout: Option<std::time::Duration>) -> bool {
        use parking_lot::lock_api::{RawRwLockUpgrade as _, RawRwLockUpgradeTimed as _};
        match timeout {
            None => {
                self.0.lock_upgradable();
                true
            }
            Some(d) if d.is_zero() => self.0.try_lock_upgradable().is_some(),
            Some(d) => self.0.try_lock_upgradable_for(d).is_some(),
        }
    }

    /// Releases the upgradable hold.
    ///
    /// # Safety
    /// A `lock_upgradable` not yet undone (nor upgraded) took it, on any thread.
    // SAFETY: an unsafe fn: the contract above is the caller's.
    pub(crate) unsafe fn unlock_upgradable(&self) {
        // A fresh stateless marker stands for the guard, as in `unlock_shared`.
        // SAFETY: the caller guarantees the outstanding upgradable hold.
        unsafe {
            parking_lot::lock_api::RawRwLockUpgrade::unlock_upgradable(&self.0, Default::default())
        }
    }

    /// Turns the upgradable hold into the exclusive one once the shared holds are gone, with no
    /// other exclusive hold in between (none can be taken while the upgradable one is held).
    /// On timeout it stays upgradable and returns `false`.
    ///
    /// # Safety
    /// The upgradable hold is outstanding.
    // SAFETY: an unsafe fn: the contract above is the caller's.
    pub(crate) unsafe fn upgrade(&self, timeout: Option<std::time::Duration>) -> bool {
        use parking_lot::lock_api::{RawRwLockUpgrade as _, RawRwLockUpgradeTimed as _};
        // Fresh stateless markers stand for the guards, as in `unlock_shared`.
        // SAFETY (all three): the caller guarantees the upgradable hold.
        match timeout {
            None => {
                unsafe { self.0.upgrade(Default::default()) };
                true
            }
            Some(d) if d.is_zero() => unsafe { self.0.try_upgrade(Default::default()) }.is_ok(),
            Some(d) => unsafe { self.0.try_upgrade_for(Default::default(), d) }.is_ok(),
        }
    }

    /// Turns the exclusive hold into a shared one at once: no exclusive hold can come between.
    ///
    /// # Safety
    /// The exclusive hold is outstanding.
    // SAFETY: an unsafe fn: the contract above is the caller's.
    pub(crate) unsafe fn downgrade(&self) {
        // SAFETY: the caller guarantees the exclusive hold.
        unsafe {
            parking_lot::lock_api::RawRwLockDowngrade::downgrade(&self.0, Default::default());
        }
    }
}

/// The loom model of [`RawRwLock`]: readers and writer counted under a Mutex, waiters on a
/// Condvar. Loom's Condvar never times out, so a timeout of any length is modelled as one try.
#[cfg(loom)]
pub(crate) struct RawRwLock {
    /// Shared holds, the exclusive hold, the upgradable hold.
    state: Mutex<(usize, bool, bool)>,
    changed: Condvar,
}

#[cfg(loom)]
impl RawRwLock {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new((0, false, false)),
            changed: Condvar::new(),
        }
    }

    pub(crate) fn lock_shared(&self, timeout: Option<std::time::Duration>) -> bool {
        let mut s = self.state.lock().unwrap();
        while s.1 {
            if timeout.is_some() {
                return false;
            }
            s = self.changed.wait(s).unwrap();
        }
        s.0 += 1;
        true
    }

    pub(crate) fn lock_exclusive(&self, timeout: Option<std::time::Duration>) -> bool {
        let mut s = self.state.lock().unwrap();
        while s.1 || s.2 || s.0 > 0 {
            if timeout.is_some() {
                return false;
            }
            s = self.changed.wait(s).unwrap();
        }
        s.1 = true;
        true
    }

    pub(crate) fn lock_upgradable(&self, timeout: Option<std::time::Duration>) -> bool {
        let mut s = self.state.lock().unwrap();
        while s.1 || s.2 {
            if timeout.is_some() {
                return false;
            }
            s = self.changed.wait(s).unwrap();
        }
        s.2 = true;
        true
    }

    // SAFETY (for callers): as for the parking_lot version; the model also asserts it.
    pub(crate) unsafe fn unlock_upgradable(&self) {
        let mut s = self.state.lock().unwrap();
        assert!(s.2, "unlock_upgradable without the upgradable hold");
        s.2 = false;
        self.changed.notify_all();
    }

    // SAFETY (for callers): as for the parking_lot version; the model also asserts it.
    pub(crate) unsafe fn upgrade(&self, timeout: Option<std::time::Duration>) -> bool {
        let mut s = self.state.lock().unwrap();
        assert!(s.2 && !s.1, "upgrade without the upgradable hold");
        while s.0 > 0 {
            if timeout.is_some() {
                return false;
            }
            s = self.changed.wait(s).unwrap();
        }
        s.2 = false;
        s.1 = true;
        true
    }

    // SAFETY (for callers): as for the parking_lot version; the model also asserts it.
    pub(crate) unsafe fn downgrade(&self) {
        let mut s = self.state.lock().unwrap();
        assert!(s.1, "downgrade without the exclusive hold");
        s.1 = false;
        s.0 += 1;
        self.changed.notify_all();
    }

    // SAFETY (for callers): as for the parking_lot version; the model also asserts it.
    pub(crate) unsafe fn unlock_shared(&self) {
        let mut s = self.state.lock().unwrap();
        assert!(s.0 > 0, "unlock_shared without a shared hold");
        s.0 -= 1;
        self.changed.notify_all();
    }

    // SAFETY (for callers): as for the parking_lot version; the model also asserts it.
    pub(crate) unsafe fn unlock_exclusive(&self) {
        let mut s = self.state.lock().unwrap();
        assert!(s.1, "unlock_exclusive without the exclusive hold");
        s.1 = false;
        self.changed.notify_all();
    }
}
