//! A reader-writer lock for callers that lock and unlock in separate calls, which knows who holds
//! it and refuses misuse instead of deadlocking.
//!
//! A caller with no destructors to release a guard (a script binding) locks and unlocks in two
//! calls; a mistake between them (unlocking twice, unlocking on another thread, asking for the write
//! lock while reading) would corrupt or deadlock a plain lock. This one records, per thread, what
//! it holds, so it can:
//! - let a thread that already reads read again without touching the underlying lock (so a writer
//!   queued in between cannot deadlock it, as it would with a fair lock),
//! - let the writer lock again (re-entrant write) and read under its own write lock,
//! - refuse a write lock requested by a thread that holds a read lock (an upgrade: two readers
//!   doing it at once would wait for each other forever),
//! - refuse an unlock by a thread that does not hold the lock, saying whether someone else does.
//!
//! Besides read and write holds there is one upgradable read hold at a time (parking_lot's):
//! it reads beside plain readers, excludes writers and other upgradable readers, and can become
//! the write hold ([`TrackedRwLock::upgrade`]) with no other writer in between, since none can
//! get in while it is held. A write hold can become a read hold at once
//! ([`TrackedRwLock::downgrade`]). Each thread is in one of four states: holding nothing, plain
//! reads, the upgradable hold, or the write hold; reads it takes in the last two are counted
//! beside that hold, without a shared hold of their own.
//!
//! When its owner goes away with holds outstanding (a script object freed while a thread holds
//! its write lock, which nobody can undo any more), [`TrackedRwLock::abandon`]
//! releases them, so threads waiting for it wake, and refuses every later lock.
//!
//! The blocking itself is parking_lot's raw reader-writer lock (writers are not starved); the
//! bookkeeping sits in a small mutex taken only briefly, never while waiting.

use std::collections::HashMap;
use std::time::Duration;

use crate::sync::{Mutex, RawRwLock, ThreadId, current_thread};

/// Why a lock request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockError {
    /// The lock was not free within the timeout.
    TimedOut,
    /// The calling thread holds a read lock and asked for the write lock.
    UpgradeRefused,
    /// The lock was abandoned (see [`TrackedRwLock::abandon`]) before or while waiting.
    Abandoned,
    /// The calling thread holds the write lock and asked for the upgradable one.
    WriteHeld,
}

/// Why [`TrackedRwLock::upgrade`] did not make the caller the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeError {
    /// The calling thread holds no upgradable lock (nothing, or plain reads, which cannot be
    /// upgraded: two readers upgrading would wait for each other).
    NotUpgradable,
    /// The readers did not leave within the timeout; the upgradable lock is still held.
    TimedOut,
    /// The lock was abandoned before or while waiting; nothing is held any more.
    Abandoned,
}

/// Why [`TrackedRwLock::downgrade`] was refused (the lock is left as it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DowngradeError {
    /// The calling thread does not hold the write lock.
    NotHeld,
    /// The calling thread took the write lock more than once; only the last one can become a
    /// read lock (undo the others first).
    Reentered,
}

/// Why an unlock was refused (the lock is left as it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockError {
    /// Nobody holds the lock in that mode.
    NotHeld,
    /// Another thread holds the lock in that mode; only it may unlock it.
    HeldByOtherThread,
    /// The writer still holds read locks it took under its write lock; unlock those first.
    ReadsStillHeld,
}

/// What each thread holds.
#[derive(Debug, Default)]
struct Holders {
    /// The writing thread and how many times it locked for writing.
    writer: Option<(ThreadId, u32)>,
    /// The upgradable reader and how many times it took the upgradable lock.
    upgradable: Option<(ThreadId, u32)>,
    /// Set while the upgradable reader waits in `upgrade`: its raw hold is changing, so
    /// `abandon` leaves it to that thread to release.
    upgrading: bool,
    /// Read locks the writer or the upgradable reader took (they need no shared hold of the raw
    /// lock: their own hold already keeps writers out).
    reads_under_write: u32,
    /// Reading threads and how many read locks each holds (each thread has one shared hold).
    readers: HashMap<ThreadId, u32>,
    /// Set by `abandon`: no lock is granted any more, and unlocks have nothing left to release.
    abandoned: bool,
}

impl Holders {
    fn writes(&self, me: ThreadId) -> bool {
        matches!(self.writer, Some((w, _)) if w == me)
    }

    fn upgradable_by(&self, me: ThreadId) -> bool {
        matches!(self.upgradable, Some((u, _)) if u == me)
    }
}

/// See the module documentation.
pub struct TrackedRwLock {
    raw: RawRwLock,
    holders: Mutex<Holders>,
}

impl Default for TrackedRwLock {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for TrackedRwLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackedRwLock")
            .field("holders", &*self.holders.lock().unwrap())
            .finish()
    }
}

impl TrackedRwLock {
    pub fn new() -> Self {
        Self {
            raw: RawRwLock::new(),
            holders: Mutex::new(Holders::default()),
        }
    }

    /// Takes a read lock for the calling thread. `timeout`: `None` waits as long as it takes,
    /// `Some(d)` gives up after `d` (zero: a single try).
    pub fn lock_read(&self, timeout: Option<Duration>) -> Result<(), LockError> {
        let me = current_thread().id();
        {
            let mut h = self.holders.lock().unwrap();
            if h.abandoned {
                return Err(LockError::Abandoned);
            }
            if h.writes(me) || h.upgradable_by(me) {
                h.reads_under_write += 1;
                return Ok(());
            }
            if let Some(count) = h.readers.get_mut(&me) {
                *count += 1;
                return Ok(());
            }
        }
        // Only this thread adds or removes its own entries, so what was decided above still holds.
        if !self.raw.lock_shared(timeout) {
            return Err(LockError::TimedOut);
        }
        let mut h = self.holders.lock().unwrap();
        if h.abandoned {
            // Woken by `abandon` (or granted just as it ran, too late for it to see this hold).
            // SAFETY: the shared hold taken just above, recorded nowhere, so released only here.
            unsafe { self.raw.unlock_shared() };
            return Err(LockError::Abandoned);
        }
        h.readers.insert(me, 1);
        Ok(())
    }

    /// Takes the write lock for the calling thread (again, if it already writes).
    pub fn lock_write(&self, timeout: Option<Duration>) -> Result<(), LockError> {
        let me = current_thread().id();
        {
            let mut h = self.holders.lock().unwrap();
            if h.abandoned {
                return Err(LockError::Abandoned);
            }
            if let Some((w, depth)) = &mut h.writer
                && *w == me
            {
                *depth += 1;
                return Ok(());
            }
            if h.readers.contains_key(&me) || h.upgradable_by(me) {
                return Err(LockError::UpgradeRefused);
            }
        }
        if !self.raw.lock_exclusive(timeout) {
            return Err(LockError::TimedOut);
        }
        let mut h = self.holders.lock().unwrap();
        if h.abandoned {
            // As in `lock_read`: this hold is released here, never recorded.
            // SAFETY: the exclusive hold taken just above, recorded nowhere.
            unsafe { self.raw.unlock_exclusive() };
            return Err(LockError::Abandoned);
        }
        h.writer = Some((me, 1));
        Ok(())
    }

    /// Releases one read lock of the calling thread.
    pub fn unlock_read(&self) -> Result<(), UnlockError> {
        let me = current_thread().id();
        let mut h = self.holders.lock().unwrap();
        if h.abandoned {
            // `abandon` released this thread's holds already.
            return Ok(());
        }
        if (h.writes(me) || h.upgradable_by(me)) && h.reads_under_write > 0 {
            h.reads_under_write -= 1;
            return Ok(());
        }
        let Some(count) = h.readers.get_mut(&me) else {
            return Err(if h.readers.is_empty() && h.reads_under_write == 0 {
                UnlockError::NotHeld
            } else {
                UnlockError::HeldByOtherThread
            });
        };
        *count -= 1;
        if *count == 0 {
            h.readers.remove(&me);
            // SAFETY: this thread's entry recorded its one shared hold, removed just now.
            unsafe { self.raw.unlock_shared() };
        }
        Ok(())
    }

    /// Releases one write lock of the calling thread.
    pub fn unlock_write(&self) -> Result<(), UnlockError> {
        let me = current_thread().id();
        let mut h = self.holders.lock().unwrap();
        if h.abandoned {
            // `abandon` released this thread's holds already.
            return Ok(());
        }
        match h.writer {
            None => Err(UnlockError::NotHeld),
            Some((w, _)) if w != me => Err(UnlockError::HeldByOtherThread),
            Some((_, depth)) if depth > 1 => {
                h.writer = Some((me, depth - 1));
                Ok(())
            }
            Some(_) if h.reads_under_write > 0 => Err(UnlockError::ReadsStillHeld),
            Some(_) => {
                h.writer = None;
                // SAFETY: `writer` recorded this thread's exclusive hold, cleared just now.
                unsafe { self.raw.unlock_exclusive() };
                Ok(())
            }
        }
    }

    /// Takes the upgradable read lock for the calling thread (again, if it holds it already):
    /// it reads beside plain readers, while writers and other upgradable readers wait. Refused
    /// for a thread that holds plain reads ([`LockError::UpgradeRefused`]: its upgrade would
    /// wait for its own reads) or the write lock ([`LockError::WriteHeld`]).
    pub fn lock_upgradable(&self, timeout: Option<Duration>) -> Result<(), LockError> {
        let me = current_thread().id();
        {
            let mut h = self.holders.lock().unwrap();
            if h.abandoned {
                return Err(LockError::Abandoned);
            }
            if let Some((u, depth)) = &mut h.upgradable
                && *u == me
            {
                *depth += 1;
                return Ok(());
            }
            if h.writes(me) {
                return Err(LockError::WriteHeld);
            }
            if h.readers.contains_key(&me) {
                return Err(LockError::UpgradeRefused);
            }
        }
        if !self.raw.lock_upgradable(timeout) {
            return Err(LockError::TimedOut);
        }
        let mut h = self.holders.lock().unwrap();
        if h.abandoned {
            // As in `lock_read`: this hold is released here, never recorded.
            // SAFETY: the upgradable hold taken just above, recorded nowhere.
            unsafe { self.raw.unlock_upgradable() };
            return Err(LockError::Abandoned);
        }
        h.upgradable = Some((me, 1));
        Ok(())
    }

    /// Releases one upgradable read lock of the calling thread.
    pub fn unlock_upgradable(&self) -> Result<(), UnlockError> {
        let me = current_thread().id();
        let mut h = self.holders.lock().unwrap();
        if h.abandoned {
            return Ok(());
        }
        match h.upgradable {
            None => Err(UnlockError::NotHeld),
            Some((u, _)) if u != me => Err(UnlockError::HeldByOtherThread),
            Some((_, depth)) if depth > 1 => {
                h.upgradable = Some((me, depth - 1));
                Ok(())
            }
            Some(_) if h.reads_under_write > 0 => Err(UnlockError::ReadsStillHeld),
            Some(_) => {
                h.upgradable = None;
                // SAFETY: `upgradable` recorded this thread's upgradable hold, cleared just now.
                unsafe { self.raw.unlock_upgradable() };
                Ok(())
            }
        }
    }

    /// Turns the calling thread's upgradable read lock into the write lock, waiting (up to
    /// `timeout`) for the plain readers to leave. No other writer can get in between: what the
    /// thread read under the upgradable lock is still current when this returns `Ok`. Every
    /// upgradable lock the thread took becomes a write lock (undo each with `unlock_write`), and
    /// its reads stay, now under the write lock. On timeout the upgradable lock is kept.
    pub fn upgrade(&self, timeout: Option<Duration>) -> Result<(), UpgradeError> {
        let me = current_thread().id();
        {
            let mut h = self.holders.lock().unwrap();
            if h.abandoned {
                return Err(UpgradeError::Abandoned);
            }
            if !h.upgradable_by(me) {
                return Err(UpgradeError::NotUpgradable);
            }
            h.upgrading = true;
        }
        // SAFETY: `upgradable` records this thread's upgradable hold, and `upgrading` keeps
        // `abandon` (the only other code that could release it) from touching it meanwhile.
        let upgraded = unsafe { self.raw.upgrade(timeout) };
        let mut h = self.holders.lock().unwrap();
        h.upgrading = false;
        if h.abandoned {
            // `abandon` cleared the record and left this hold to us, in whichever form it is now.
            if upgraded {
                // SAFETY: the exclusive hold the upgrade just took, recorded nowhere.
                unsafe { self.raw.unlock_exclusive() };
            } else {
                // SAFETY: the upgradable hold the failed upgrade kept, recorded nowhere now.
                unsafe { self.raw.unlock_upgradable() };
            }
            return Err(UpgradeError::Abandoned);
        }
        if !upgraded {
            return Err(UpgradeError::TimedOut);
        }
        let (_, depth) = h
            .upgradable
            .take()
            .expect("only this thread clears its own hold");
        h.writer = Some((me, depth));
        Ok(())
    }

    /// Turns the calling thread's write lock into a read lock at once: no writer gets in
    /// between, and readers may join. The reads it took under the write lock stay, as reads.
    pub fn downgrade(&self) -> Result<(), DowngradeError> {
        let me = current_thread().id();
        let mut h = self.holders.lock().unwrap();
        if h.abandoned {
            // Nothing is held any more; there is nothing to change.
            return Ok(());
        }
        match h.writer {
            Some((w, 1)) if w == me => {}
            Some((w, _)) if w == me => return Err(DowngradeError::Reentered),
            _ => return Err(DowngradeError::NotHeld),
        }
        // SAFETY: `writer` records this thread's exclusive hold; it becomes the shared hold that
        // the `readers` entry below records.
        unsafe { self.raw.downgrade() };
        h.writer = None;
        let reads = 1 + std::mem::take(&mut h.reads_under_write);
        h.readers.insert(me, reads);
        Ok(())
    }

    /// Gives the lock up for good: releases every hold still recorded (whichever thread took it),
    /// which wakes the threads waiting for it, and from then on refuses every lock with
    /// [`LockError::Abandoned`] (including those woken now) and accepts every unlock as a no-op.
    /// For an owner that goes away while holds are outstanding, which their threads could never
    /// release. A thread still running code under a hold keeps running; it just excludes nobody
    /// any more, since nobody can lock. Abandoning twice does nothing more.
    pub fn abandon(&self) {
        let mut h = self.holders.lock().unwrap();
        if std::mem::replace(&mut h.abandoned, true) {
            return;
        }
        h.reads_under_write = 0;
        if h.writer.take().is_some() {
            // SAFETY: `writer` recorded an exclusive hold not yet released, cleared just now under
            // the holders lock, so it is released once. The raw lock does not tie a hold to a
            // thread (see `RawRwLock::unlock_exclusive`), so this thread may release it.
            unsafe { self.raw.unlock_exclusive() };
        }
        if h.upgradable.take().is_some() && !h.upgrading {
            // SAFETY: `upgradable` recorded an upgradable hold not yet released, cleared just
            // now; any thread may release it (as above). One being upgraded is left to its
            // thread, which releases it when its upgrade returns (see `upgrade`).
            unsafe { self.raw.unlock_upgradable() };
        }
        for _ in h.readers.drain() {
            // SAFETY: each entry recorded one shared hold not yet released, removed just now, and
            // any thread may release it (as above).
            unsafe { self.raw.unlock_shared() };
        }
    }

    /// How many read locks the calling thread holds (including those under its write lock).
    pub fn reads_held(&self) -> u32 {
        let me = current_thread().id();
        let h = self.holders.lock().unwrap();
        let under_write = if h.writes(me) || h.upgradable_by(me) {
            h.reads_under_write
        } else {
            0
        };
        h.readers.get(&me).copied().unwrap_or(0) + under_write
    }

    /// How many write locks the calling thread holds (0 when it does not write).
    pub fn writes_held(&self) -> u32 {
        let me = current_thread().id();
        match self.holders.lock().unwrap().writer {
            Some((w, depth)) if w == me => depth,
            _ => 0,
        }
    }

    /// How many upgradable read locks the calling thread holds (0 or its re-entry count).
    pub fn upgradables_held(&self) -> u32 {
        let me = current_thread().id();
        match self.holders.lock().unwrap().upgradable {
            Some((u, depth)) if u == me => depth,
            _ => 0,
        }
    }

    /// How many threads hold a read lock now, the upgradable reader included (a snapshot).
    pub fn reader_threads(&self) -> usize {
        let h = self.holders.lock().unwrap();
        h.readers.len() + usize::from(h.upgradable.is_some())
    }

    /// Whether some thread holds the upgradable read lock now (a snapshot).
    pub fn is_upgradable_locked(&self) -> bool {
        self.holders.lock().unwrap().upgradable.is_some()
    }

    /// Whether some thread holds the write lock now (a snapshot).
    pub fn is_write_locked(&self) -> bool {
        self.holders.lock().unwrap().writer.is_some()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const NOW: Option<Duration> = Some(Duration::ZERO);

    #[test]
    fn reads_and_writes_are_reentrant_and_counted() {
        let l = TrackedRwLock::new();
        l.lock_read(None).unwrap();
        l.lock_read(None).unwrap();
        assert_eq!((l.reads_held(), l.reader_threads()), (2, 1));
        l.unlock_read().unwrap();
        l.unlock_read().unwrap();
        assert_eq!(l.unlock_read(), Err(UnlockError::NotHeld));

        l.lock_write(None).unwrap();
        l.lock_write(None).unwrap();
        l.lock_read(None).unwrap();
        assert_eq!((l.writes_held(), l.reads_held()), (2, 1));
        l.unlock_write().unwrap();
        assert_eq!(l.unlock_write(), Err(UnlockError::ReadsStillHeld));
        l.unlock_read().unwrap();
        l.unlock_write().unwrap();
        assert_eq!(l.unlock_write(), Err(UnlockError::NotHeld));
        assert!(!l.is_write_locked());
    }

    #[test]
    fn upgrade_is_refused_and_the_read_kept() {
        let l = TrackedRwLock::new();
        l.lock_read(None).unwrap();
        assert_eq!(l.lock_write(None), Err(LockError::UpgradeRefused));
        assert_eq!(l.reads_held(), 1);
        l.unlock_read().unwrap();
        l.lock_write(NOW).unwrap();
        l.unlock_write().unwrap();
    }

    #[test]
    fn unlocks_from_another_thread_are_refused() {
        let l = Arc::new(TrackedRwLock::new());
        l.lock_read(None).unwrap();
        let other = l.clone();
        let read = std::thread::spawn(move || other.unlock_read())
            .join()
            .unwrap();
        assert_eq!(read, Err(UnlockError::HeldByOtherThread));
        l.unlock_read().unwrap();

        l.lock_write(None).unwrap();
        let other = l.clone();
        let results = std::thread::spawn(move || (other.unlock_write(), other.unlock_read()))
            .join()
            .unwrap();
        assert_eq!(
            results,
            (
                Err(UnlockError::HeldByOtherThread),
                Err(UnlockError::NotHeld)
            )
        );
        assert!(l.is_write_locked());
        l.unlock_write().unwrap();
    }

    #[test]
    fn try_locks_time_out_while_the_other_mode_is_held() {
        let l = Arc::new(TrackedRwLock::new());
        l.lock_write(None).unwrap();
        let other = l.clone();
        let got = std::thread::spawn(move || {
            (
                other.lock_read(NOW),
                other.lock_read(Some(Duration::from_millis(20))),
                other.lock_write(Some(Duration::from_millis(20))),
            )
        })
        .join()
        .unwrap();
        assert_eq!(
            got,
            (
                Err(LockError::TimedOut),
                Err(LockError::TimedOut),
                Err(LockError::TimedOut)
            )
        );
        l.unlock_write().unwrap();
        l.lock_read(None).unwrap();
        let other = l.clone();
        let got = std::thread::spawn(move || {
            let read = other.lock_read(NOW);
            other.unlock_read().unwrap();
            (read, other.lock_write(NOW))
        })
        .join()
        .unwrap();
        assert_eq!(got, (Ok(()), Err(LockError::TimedOut)));
        l.unlock_read().unwrap();
    }

    /// A reader reading again while a writer waits must not deadlock (a fair lock would queue the
    /// second read behind the writer, which waits for the first read).
    #[test]
    fn nested_read_with_a_writer_waiting_does_not_deadlock() {
        let l = Arc::new(TrackedRwLock::new());
        l.lock_read(None).unwrap();
        let wrote = Arc::new(AtomicBool::new(false));
        let writer = {
            let (l, wrote) = (l.clone(), wrote.clone());
            std::thread::spawn(move || {
                l.lock_write(None).unwrap();
                wrote.store(true, Ordering::SeqCst);
                l.unlock_write().unwrap();
            })
        };
        // Give the writer time to queue; correctness does not depend on it.
        std::thread::sleep(Duration::from_millis(20));
        l.lock_read(None).unwrap();
        assert!(
            !wrote.load(Ordering::SeqCst),
            "the writer waits for the reader"
        );
        l.unlock_read().unwrap();
        l.unlock_read().unwrap();
        writer.join().unwrap();
        assert!(wrote.load(Ordering::SeqCst));
    }

    #[test]
    fn abandoning_releases_every_hold_wakes_waiters_and_refuses_later_locks() {
        let l = Arc::new(TrackedRwLock::new());
        l.lock_write(None).unwrap();
        l.lock_write(None).unwrap();
        let waiters: Vec<_> = (0..3)
            .map(|i| {
                let l = l.clone();
                std::thread::spawn(move || {
                    if i == 0 {
                        l.lock_read(None)
                    } else {
                        l.lock_write(None)
                    }
                })
            })
            .collect();
        // Give them time to block; they are woken by `abandon` whether or not they got there.
        std::thread::sleep(Duration::from_millis(20));
        l.abandon();
        for waiter in waiters {
            assert_eq!(waiter.join().unwrap(), Err(LockError::Abandoned));
        }
        assert!(!l.is_write_locked());
        assert_eq!(l.lock_read(NOW), Err(LockError::Abandoned));
        assert_eq!(l.lock_write(None), Err(LockError::Abandoned));
        assert_eq!(
            (l.unlock_write(), l.unlock_read()),
            (Ok(()), Ok(())),
            "the holds were released already"
        );
        l.abandon();
    }

    #[test]
    fn abandoning_releases_the_readers_holds() {
        let l = Arc::new(TrackedRwLock::new());
        let reader = {
            let l = l.clone();
            std::thread::spawn(move || l.lock_read(None))
        };
        reader.join().unwrap().unwrap();
        l.lock_read(None).unwrap();
        let writer = {
            let l = l.clone();
            std::thread::spawn(move || l.lock_write(None))
        };
        std::thread::sleep(Duration::from_millis(20));
        l.abandon();
        assert_eq!(writer.join().unwrap(), Err(LockError::Abandoned));
        assert_eq!(l.reader_threads(), 0);
    }

    #[test]
    fn an_upgradable_reader_reads_beside_readers_and_excludes_writers_and_its_kind() {
        let l = Arc::new(TrackedRwLock::new());
        l.lock_upgradable(None).unwrap();
        l.lock_upgradable(None).unwrap();
        assert_eq!((l.upgradables_held(), l.reader_threads()), (2, 1));
        let other = l.clone();
        let got = std::thread::spawn(move || {
            let read = other.lock_read(NOW);
            other.unlock_read().unwrap();
            (read, other.lock_upgradable(NOW), other.lock_write(NOW))
        })
        .join()
        .unwrap();
        assert_eq!(
            got,
            (Ok(()), Err(LockError::TimedOut), Err(LockError::TimedOut))
        );
        assert_eq!(
            l.lock_write(NOW),
            Err(LockError::UpgradeRefused),
            "use upgrade()"
        );
        l.lock_read(None).unwrap();
        assert_eq!(l.reads_held(), 1, "a read beside its own upgradable lock");
        l.unlock_upgradable().unwrap();
        assert_eq!(l.unlock_upgradable(), Err(UnlockError::ReadsStillHeld));
        l.unlock_read().unwrap();
        l.unlock_upgradable().unwrap();
        assert_eq!(l.unlock_upgradable(), Err(UnlockError::NotHeld));
        l.lock_write(NOW).unwrap();
        l.unlock_write().unwrap();
    }

    #[test]
    fn misuse_of_upgrades_and_downgrades_is_refused() {
        let l = TrackedRwLock::new();
        assert_eq!(l.upgrade(None), Err(UpgradeError::NotUpgradable));
        l.lock_read(None).unwrap();
        assert_eq!(
            l.upgrade(None),
            Err(UpgradeError::NotUpgradable),
            "a plain read"
        );
        assert_eq!(l.lock_upgradable(None), Err(LockError::UpgradeRefused));
        l.unlock_read().unwrap();
        assert_eq!(l.downgrade(), Err(DowngradeError::NotHeld));
        l.lock_write(None).unwrap();
        assert_eq!(l.lock_upgradable(None), Err(LockError::WriteHeld));
        l.lock_write(None).unwrap();
        assert_eq!(l.downgrade(), Err(DowngradeError::Reentered));
        l.unlock_write().unwrap();
        l.lock_read(None).unwrap();
        l.downgrade().unwrap();
        assert_eq!(
            (l.reads_held(), l.writes_held()),
            (2, 0),
            "the write and its read, as reads"
        );
        assert!(!l.is_write_locked());
        l.unlock_read().unwrap();
        l.unlock_read().unwrap();
        assert_eq!(l.reader_threads(), 0);
    }

    #[test]
    fn upgrade_waits_for_readers_and_keeps_its_reads() {
        let l = Arc::new(TrackedRwLock::new());
        let reader = l.clone();
        let (read_tx, read_rx) = std::sync::mpsc::channel();
        let (leave_tx, leave_rx) = std::sync::mpsc::channel::<()>();
        let reading = std::thread::spawn(move || {
            reader.lock_read(None).unwrap();
            read_tx.send(()).unwrap();
            leave_rx.recv().unwrap();
            reader.unlock_read().unwrap();
        });
        read_rx.recv().unwrap();
        l.lock_upgradable(None).unwrap();
        l.lock_read(None).unwrap();
        assert_eq!(
            l.upgrade(Some(Duration::from_millis(20))),
            Err(UpgradeError::TimedOut)
        );
        assert_eq!(l.upgradables_held(), 1, "kept after the timeout");
        leave_tx.send(()).unwrap();
        l.upgrade(None).unwrap();
        reading.join().unwrap();
        assert_eq!(
            (l.writes_held(), l.reads_held(), l.upgradables_held()),
            (1, 1, 0)
        );
        assert_eq!(l.unlock_write(), Err(UnlockError::ReadsStillHeld));
        l.unlock_read().unwrap();
        l.unlock_write().unwrap();
        assert!(!l.is_write_locked() && !l.is_upgradable_locked());
    }

    /// Abandoning the lock while a thread waits in `upgrade` for a reader: the upgrade ends
    /// with `Abandoned`, and the raw lock is left free (a new lock of the same raw would work).
    #[test]
    fn abandoning_during_an_upgrade_ends_it() {
        let l = Arc::new(TrackedRwLock::new());
        l.lock_read(None).unwrap();
        let upgrader = {
            let l = l.clone();
            std::thread::spawn(move || {
                // Abandoned before or during the upgrade: the same outcome either way.
                match l.lock_upgradable(None) {
                    Ok(()) => l.upgrade(None),
                    Err(_) => Err(UpgradeError::Abandoned),
                }
            })
        };
        // Give it time to wait in `upgrade` for this thread's read; the result does not depend on it.
        std::thread::sleep(Duration::from_millis(30));
        l.abandon();
        assert_eq!(upgrader.join().unwrap(), Err(UpgradeError::Abandoned));
        assert!(l.raw.lock_exclusive(NOW), "every raw hold was released");
    }

    /// 4 threads upgrade 1000 times each while 2 writers and 2 readers run: what an upgrader read
    /// is still current after its upgrade, and no increment is lost.
    #[test]
    fn upgrades_let_no_writer_in_between() {
        const ROUNDS: u64 = 1000;
        let l = TrackedRwLock::new();
        let value = std::sync::atomic::AtomicU64::new(0);
        let stale = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..ROUNDS {
                        l.lock_upgradable(None).unwrap();
                        let seen = value.load(Ordering::SeqCst);
                        std::thread::yield_now();
                        l.upgrade(None).unwrap();
                        if value.load(Ordering::SeqCst) != seen {
                            stale.fetch_add(1, Ordering::SeqCst);
                        }
                        value.store(seen + 1, Ordering::SeqCst);
                        l.downgrade().unwrap();
                        assert_eq!(
                            value.load(Ordering::SeqCst),
                            seen + 1,
                            "no writer after the downgrade"
                        );
                        l.unlock_read().unwrap();
                    }
                });
            }
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..ROUNDS {
                        l.lock_write(None).unwrap();
                        let seen = value.load(Ordering::SeqCst);
                        value.store(seen + 1, Ordering::SeqCst);
                        l.unlock_write().unwrap();
                        l.lock_read(None).unwrap();
                        l.unlock_read().unwrap();
                    }
                });
            }
        });
        assert_eq!(stale.load(Ordering::SeqCst), 0);
        assert_eq!(value.load(Ordering::SeqCst), 6 * ROUNDS);
        assert_eq!((l.reader_threads(), l.is_write_locked()), (0, false));
    }
}
