//! A reader-writer lock for callers that lock and unlock in separate calls, which knows who holds
//! it and refuses misuse instead of deadlocking.
//!
//! GDScript has no destructors to release a guard, so its `read_lock()` and `read_unlock()` are two
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
//! When its owner goes away with holds outstanding (a GDScript object freed while a thread holds
//! it through `write_lock()`, which nobody can undo any more), [`TrackedRwLock::abandon`]
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
    /// Read locks the writer took while writing (they need no shared hold of the raw lock).
    reads_under_write: u32,
    /// Reading threads and how many read locks each holds (each thread has one shared hold).
    readers: HashMap<ThreadId, u32>,
    /// Set by `abandon`: no lock is granted any more, and unlocks have nothing left to release.
    abandoned: bool,
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
            if matches!(h.writer, Some((w, _)) if w == me) {
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
            if h.readers.contains_key(&me) {
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
        if matches!(h.writer, Some((w, _)) if w == me) && h.reads_under_write > 0 {
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
        let under_write = match h.writer {
            Some((w, _)) if w == me => h.reads_under_write,
            _ => 0,
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

    /// How many threads hold a read lock now (a snapshot).
    pub fn reader_threads(&self) -> usize {
        self.holders.lock().unwrap().readers.len()
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
}
