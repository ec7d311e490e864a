//! One place that chooses between std and loom synchronisation primitives.
//!
//! Under `--cfg loom` every atomic, lock, condition variable, thread and thread-local used by
//! core comes from loom, so loom explores the interleavings of the real code (the approach tokio
//! and crossbeam take); every core module imports them from here, never from std or
//! parking_lot directly. Flavours:
//! - the std-like `Mutex`/`Condvar` (poisoning results), which loom mirrors exactly;
//! - [`lot`]: parking_lot's locks (no poisoning, `Condvar::wait(&mut guard)`), for the modules
//!   that use parking_lot for speed; under loom a thin wrapper gives loom's locks that API;
//! - [`rc`]: std's `Arc`/`Weak` in every build, for the data that needs weak references or
//!   `Arc<dyn Trait>` (loom's `Arc` has neither);
//! - [`thread`]: named threads with a stack size and `is_finished`;
//! - [`channel`]: crossbeam's channels in production. Loom does not model crossbeam, so under
//!   loom the pool's channels are a small test double built on loom's Mutex + Condvar +
//!   `VecDeque` with the subset of crossbeam's API the pool uses: the pool's own code (its
//!   queues, the wake-ups of idle workers, the stop handshake) is then what loom runs, without
//!   rewriting the pool around a different primitive. The double is not a production channel.
//!   The dispatcher's and the closable channel's crossbeam channels stay crossbeam (their models
//!   never block on them).
//!
//! Loom has no clock: a timed wait under loom waits for a notification only, as loom's own
//! `Condvar::wait_timeout` does, and a channel's `after` never fires.

#[cfg(not(loom))]
pub(crate) use std::sync::{
    Arc, Condvar, Mutex,
    atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence},
};

#[cfg(loom)]
pub(crate) use loom::sync::{
    Arc, Condvar, Mutex,
    atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence},
};

#[cfg(not(loom))]
pub(crate) use std::thread::{ThreadId, current as current_thread};
#[cfg(not(loom))]
pub(crate) use std::thread_local;

#[cfg(loom)]
pub(crate) use loom::thread::{ThreadId, current as current_thread};
#[cfg(loom)]
pub(crate) use loom::thread_local;

/// Spin waits back off (spin, then yield) rather than yield at once; under loom every snooze
/// yields to the model's scheduler, which is what lets loom explore a spin loop.
#[cfg(not(loom))]
pub(crate) use crossbeam_utils::Backoff;

#[cfg(loom)]
#[derive(Debug, Default)]
pub(crate) struct Backoff;

#[cfg(loom)]
impl Backoff {
    pub(crate) fn new() -> Self {
        Self
    }

    pub(crate) fn snooze(&self) {
        loom::thread::yield_now();
    }
}

/// For process-wide statics (ids, stripe hints, the thread-exit hook's flag): loom's atomics
/// cannot be built in a `static`, and none of these is what a model checks, so they are std's
/// in every build.
pub(crate) mod unmodelled {
    pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize};
    // For `per_thread`, which loom does not build.
    #[cfg(not(loom))]
    pub(crate) use std::sync::atomic::AtomicBool;
}

/// std's reference counting in every build: loom's `Arc` has no `Weak` and no unsized
/// coercion (`Arc<dyn Trait>`). Loom loses only its leak check on these.
pub(crate) mod rc {
    pub(crate) use std::sync::{Arc, Weak};
}

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
        match timeout {
            None => {
                // SAFETY: the caller guarantees the upgradable hold.
                unsafe { self.0.upgrade(Default::default()) };
                true
            }
            Some(d) if d.is_zero() => {
                // SAFETY: the caller guarantees the upgradable hold.
                unsafe { self.0.try_upgrade(Default::default()) }.is_ok()
            }
            Some(d) => {
                // SAFETY: the caller guarantees the upgradable hold.
                unsafe { self.0.try_upgrade_for(Default::default(), d) }.is_ok()
            }
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

/// Threads with a name and a stack size, whose handle says whether the thread has returned.
pub(crate) mod thread {
    #[cfg(not(loom))]
    pub(crate) use std::thread::{Builder, JoinHandle};

    #[cfg(loom)]
    pub(crate) use self::model::{Builder, JoinHandle};

    /// Loom's builder and handle, plus the `is_finished` that loom's handle lacks.
    #[cfg(loom)]
    mod model {
        use loom::sync::Arc;
        use loom::sync::atomic::{AtomicBool, Ordering};

        pub(crate) struct Builder(loom::thread::Builder);

        impl Builder {
            pub(crate) fn new() -> Self {
                Self(loom::thread::Builder::new())
            }

            pub(crate) fn name(self, name: String) -> Self {
                Self(self.0.name(name))
            }

            pub(crate) fn stack_size(self, size: usize) -> Self {
                Self(self.0.stack_size(size))
            }

            pub(crate) fn spawn<F, T>(self, f: F) -> std::io::Result<JoinHandle<T>>
            where
                F: FnOnce() -> T + Send + 'static,
                T: Send + 'static,
            {
                let finished = Arc::new(AtomicBool::new(false));
                let set = finished.clone();
                let thread = self.0.spawn(move || {
                    let value = f();
                    set.store(true, Ordering::Release);
                    value
                })?;
                Ok(JoinHandle { thread, finished })
            }
        }

        pub(crate) struct JoinHandle<T> {
            thread: loom::thread::JoinHandle<T>,
            finished: Arc<AtomicBool>,
        }

        impl<T> JoinHandle<T> {
            pub(crate) fn is_finished(&self) -> bool {
                self.finished.load(Ordering::Acquire)
            }

            pub(crate) fn join(self) -> std::thread::Result<T> {
                self.thread.join()
            }
        }
    }
}

/// parking_lot's locks: no poisoning, guards returned directly, `Condvar::wait(&mut guard)`.
/// Under loom, loom's std-like locks behind that API.
pub(crate) mod lot {
    #[cfg(not(loom))]
    pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};

    #[cfg(loom)]
    pub(crate) use self::model::{Condvar, Mutex, MutexGuard, RwLock};

    #[cfg(loom)]
    mod model {
        use std::ops::{Deref, DerefMut};
        use std::time::Instant;

        #[derive(Debug, Default)]
        pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

        impl<T> Mutex<T> {
            pub(crate) fn new(value: T) -> Self {
                Self(loom::sync::Mutex::new(value))
            }

            pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
                MutexGuard {
                    mutex: self,
                    guard: Some(self.0.lock().unwrap()),
                }
            }

            pub(crate) fn into_inner(self) -> T {
                self.0.into_inner().unwrap()
            }
        }

        /// Holds the lock except inside [`MutexGuard::unlocked`] or a [`Condvar`] wait.
        pub(crate) struct MutexGuard<'a, T> {
            mutex: &'a Mutex<T>,
            guard: Option<loom::sync::MutexGuard<'a, T>>,
        }

        impl<T> MutexGuard<'_, T> {
            pub(crate) fn unlocked<U>(this: &mut Self, f: impl FnOnce() -> U) -> U {
                this.guard = None;
                let value = f();
                this.guard = Some(this.mutex.0.lock().unwrap());
                value
            }
        }

        impl<T> Deref for MutexGuard<'_, T> {
            type Target = T;

            fn deref(&self) -> &T {
                self.guard.as_ref().expect("locked")
            }
        }

        impl<T> DerefMut for MutexGuard<'_, T> {
            fn deref_mut(&mut self) -> &mut T {
                self.guard.as_mut().expect("locked")
            }
        }

        #[derive(Debug, Default)]
        pub(crate) struct Condvar(loom::sync::Condvar);

        impl Condvar {
            pub(crate) fn new() -> Self {
                Self(loom::sync::Condvar::new())
            }

            pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
                let held = guard.guard.take().expect("locked");
                guard.guard = Some(self.0.wait(held).unwrap());
            }

            /// Loom has no clock: waits for a notification (see the module comment).
            pub(crate) fn wait_until<T>(&self, guard: &mut MutexGuard<'_, T>, _deadline: Instant) {
                self.wait(guard);
            }

            pub(crate) fn notify_one(&self) {
                self.0.notify_one();
            }
        }

        #[derive(Debug, Default)]
        pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

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
    }
}

/// The pool's channels: crossbeam's, or under loom the test double below (see the module
/// comment).
pub(crate) mod channel {
    #[cfg(not(loom))]
    pub(crate) use crossbeam_channel::{
        Receiver, RecvTimeoutError, Select, Sender, TryRecvError, after, never, unbounded,
    };

    #[cfg(loom)]
    pub(crate) use self::model::{
        Receiver, RecvTimeoutError, Select, Sender, TryRecvError, after, never, unbounded,
    };

    /// A loom test double of crossbeam's unbounded channel: a `VecDeque` under a loom Mutex.
    /// A blocked receive or `Select::ready` subscribes a signal (a loom Mutex + Condvar) to
    /// every channel it waits on, after checking them under their locks, and each send or
    /// last-sender drop fires the subscribed signals: so loom sees every wake-up, and a lost
    /// one shows as a deadlock. Senders never see the receivers gone (the pool ignores that
    /// error anyway). Public, as crossbeam's are: `Pool::completions` hands out a receiver.
    #[cfg(loom)]
    mod model {
        use std::collections::VecDeque;
        use std::sync::Arc as StdArc;
        use std::time::{Duration, Instant};

        use loom::sync::{Arc, Condvar, Mutex};

        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum TryRecvError {
            Empty,
            Disconnected,
        }

        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum RecvTimeoutError {
            Timeout,
            Disconnected,
        }

        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct RecvError;

        #[derive(Debug, PartialEq, Eq)]
        pub struct SendError<T>(pub T);

        struct Signal {
            fired: Mutex<bool>,
            cond: Condvar,
        }

        impl Signal {
            fn fire(&self) {
                *self.fired.lock().unwrap() = true;
                self.cond.notify_all();
            }
        }

        struct State<T> {
            items: VecDeque<T>,
            senders: usize,
            watchers: Vec<StdArc<Signal>>,
        }

        impl<T> State<T> {
            fn fire(&mut self) {
                for signal in self.watchers.drain(..) {
                    signal.fire();
                }
            }
        }

        struct Chan<T>(Mutex<State<T>>);

        pub struct Sender<T>(Arc<Chan<T>>);

        pub struct Receiver<T>(Arc<Chan<T>>);

        fn chan<T>() -> Arc<Chan<T>> {
            Arc::new(Chan(Mutex::new(State {
                items: VecDeque::new(),
                senders: 1,
                watchers: Vec::new(),
            })))
        }

        pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
            let chan = chan();
            (Sender(chan.clone()), Receiver(chan))
        }

        /// A channel that never delivers: it counts one sender that does not exist, so it
        /// never disconnects.
        pub fn never<T>() -> Receiver<T> {
            Receiver(chan())
        }

        /// Loom has no clock: never fires (see the module comment).
        pub fn after(_: Duration) -> Receiver<Instant> {
            never()
        }

        impl<T> Sender<T> {
            pub fn send(&self, value: T) -> Result<(), SendError<T>> {
                let mut state = self.0.0.lock().unwrap();
                state.items.push_back(value);
                state.fire();
                Ok(())
            }
        }

        impl<T> Clone for Sender<T> {
            fn clone(&self) -> Self {
                self.0.0.lock().unwrap().senders += 1;
                Self(self.0.clone())
            }
        }

        impl<T> Drop for Sender<T> {
            fn drop(&mut self) {
                let mut state = self.0.0.lock().unwrap();
                state.senders -= 1;
                if state.senders == 0 {
                    state.fire();
                }
            }
        }

        impl<T> Clone for Receiver<T> {
            fn clone(&self) -> Self {
                Self(self.0.clone())
            }
        }

        impl<T> Receiver<T> {
            pub fn try_recv(&self) -> Result<T, TryRecvError> {
                let mut state = self.0.0.lock().unwrap();
                match state.items.pop_front() {
                    Some(value) => Ok(value),
                    None if state.senders == 0 => Err(TryRecvError::Disconnected),
                    None => Err(TryRecvError::Empty),
                }
            }

            pub fn try_iter(&self) -> impl Iterator<Item = T> + '_ {
                std::iter::from_fn(|| self.try_recv().ok())
            }

            pub fn recv(&self) -> Result<T, RecvError> {
                loop {
                    let mut select = Select::new();
                    select.recv(self);
                    select.ready();
                    match self.try_recv() {
                        Ok(value) => return Ok(value),
                        Err(TryRecvError::Disconnected) => return Err(RecvError),
                        // Another receiver took it first.
                        Err(TryRecvError::Empty) => {}
                    }
                }
            }

            /// Loom has no clock: waits as `recv` does.
            pub fn recv_timeout(&self, _: Duration) -> Result<T, RecvTimeoutError> {
                self.recv().map_err(|_| RecvTimeoutError::Disconnected)
            }

            /// Loom has no clock: waits as `recv` does.
            pub fn recv_deadline(&self, _: Instant) -> Result<T, RecvTimeoutError> {
                self.recv().map_err(|_| RecvTimeoutError::Disconnected)
            }

            pub fn len(&self) -> usize {
                self.0.0.lock().unwrap().items.len()
            }
        }

        /// What [`Select`] needs of a channel whatever its item type.
        trait Watch {
            /// Whether a receive would not block; if not, `signal` fires on the next change.
            fn ready_or_watch(&self, signal: &StdArc<Signal>) -> bool;
            fn unwatch(&self, signal: &StdArc<Signal>);
        }

        impl<T> Watch for Receiver<T> {
            fn ready_or_watch(&self, signal: &StdArc<Signal>) -> bool {
                let mut state = self.0.0.lock().unwrap();
                if !state.items.is_empty() || state.senders == 0 {
                    return true;
                }
                state.watchers.push(signal.clone());
                false
            }

            fn unwatch(&self, signal: &StdArc<Signal>) {
                let mut state = self.0.0.lock().unwrap();
                state.watchers.retain(|s| !StdArc::ptr_eq(s, signal));
            }
        }

        #[derive(Default)]
        pub struct Select<'a>(Vec<&'a dyn Watch>);

        impl<'a> Select<'a> {
            pub fn new() -> Self {
                Self(Vec::new())
            }

            pub fn recv<T>(&mut self, receiver: &'a Receiver<T>) -> usize {
                self.0.push(receiver);
                self.0.len() - 1
            }

            /// Blocks until one of the channels has an item or is disconnected; returns its
            /// index.
            pub fn ready(&mut self) -> usize {
                loop {
                    let signal = StdArc::new(Signal {
                        fired: Mutex::new(false),
                        cond: Condvar::new(),
                    });
                    let ready = self
                        .0
                        .iter()
                        .position(|channel| channel.ready_or_watch(&signal));
                    if ready.is_none() {
                        let mut fired = signal.fired.lock().unwrap();
                        while !*fired {
                            fired = signal.cond.wait(fired).unwrap();
                        }
                    }
                    for channel in &self.0 {
                        channel.unwatch(&signal);
                    }
                    if let Some(index) = ready {
                        return index;
                    }
                }
            }
        }
    }
}
