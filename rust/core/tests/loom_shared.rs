//! Loom model tests of the tracked reader-writer lock's bookkeeping and the shared map's
//! counters, run by `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=3 \
//!  cargo test --release -p threadkit-core --test loom_shared`.
//!
//! Under loom the raw lock beneath `TrackedRwLock` is a Mutex+Condvar model (see `sync.rs`), so
//! these check the per-thread bookkeeping around it: which thread may unlock, re-entrant reads
//! next to a waiting writer, upgrades refused; and that the map's atomic read counts, write
//! counts and version stay exact whatever the interleaving.
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use threadkit_core::{LockError, SharedMap, TrackedRwLock, UnlockError, UpgradeError};

/// A reader reads again while a writer is trying to get in: no deadlock, and each ends with the
/// lock free and the bookkeeping empty.
#[test]
fn reentrant_read_beside_a_writer() {
    loom::model(|| {
        let lock = Arc::new(TrackedRwLock::new());
        let writer = {
            let lock = lock.clone();
            thread::spawn(move || {
                lock.lock_write(None).unwrap();
                assert_eq!(lock.reader_threads(), 0, "no reader while writing");
                lock.unlock_write().unwrap();
            })
        };
        lock.lock_read(None).unwrap();
        lock.lock_read(None).unwrap();
        assert!(!lock.is_write_locked(), "no writer while reading");
        lock.unlock_read().unwrap();
        lock.unlock_read().unwrap();
        writer.join().unwrap();
        assert_eq!((lock.reader_threads(), lock.is_write_locked()), (0, false));
    });
}

/// Another thread's unlocks are refused whatever the timing, and never release the holder's lock.
#[test]
fn foreign_unlocks_never_release_the_holders_lock() {
    loom::model(|| {
        let lock = Arc::new(TrackedRwLock::new());
        lock.lock_write(None).unwrap();
        let intruder = {
            let lock = lock.clone();
            thread::spawn(move || (lock.unlock_write(), lock.unlock_read()))
        };
        let (write, read) = intruder.join().unwrap();
        assert_eq!(write, Err(UnlockError::HeldByOtherThread));
        assert_eq!(read, Err(UnlockError::NotHeld));
        assert_eq!(lock.writes_held(), 1);
        lock.unlock_write().unwrap();
        assert!(!lock.is_write_locked());
    });
}

/// Two readers both asking to upgrade would wait for each other forever; both are refused, keep
/// their reads, and a write afterwards succeeds.
#[test]
fn racing_upgrades_are_refused() {
    loom::model(|| {
        let lock = Arc::new(TrackedRwLock::new());
        let other = {
            let lock = lock.clone();
            thread::spawn(move || {
                lock.lock_read(None).unwrap();
                let upgrade = lock.lock_write(None);
                lock.unlock_read().unwrap();
                upgrade
            })
        };
        lock.lock_read(None).unwrap();
        assert_eq!(lock.lock_write(None), Err(LockError::UpgradeRefused));
        assert_eq!(lock.reads_held(), 1);
        lock.unlock_read().unwrap();
        assert_eq!(other.join().unwrap(), Err(LockError::UpgradeRefused));
        lock.lock_write(None).unwrap();
        lock.unlock_write().unwrap();
    });
}

/// Reads counted under the read lock (atomics) and writes under the write lock stay exact when
/// readers and a writer interleave.
#[test]
fn map_counters_are_exact() {
    loom::model(|| {
        let map: Arc<SharedMap<u8, u32>> = Arc::new(SharedMap::new());
        map.insert(1, 10).unwrap();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let map = map.clone();
                thread::spawn(move || {
                    let seen = map.get(&1, |v| *v).unwrap();
                    assert!(seen == 10 || seen == 11);
                    map.get(&2, |v| *v).is_some()
                })
            })
            .collect();
        map.update(1, |old| Some(old.unwrap() + 1)).unwrap();
        let found_two = readers
            .into_iter()
            .map(|r| r.join().unwrap())
            .filter(|&f| f)
            .count();
        assert_eq!(found_two, 0);
        let stats = map.stats();
        assert_eq!((stats.keys[0].reads, stats.keys[0].writes), (2, 2));
        assert_eq!((stats.misses, stats.version), (2, 2));
    });
}

/// Two threads doing read-modify-write through `update` lose nothing.
#[test]
fn racing_updates_lose_nothing() {
    loom::model(|| {
        let map: Arc<SharedMap<u8, u32>> = Arc::new(SharedMap::new());
        let other = {
            let map = map.clone();
            thread::spawn(move || {
                map.update(0, |old| Some(old.copied().unwrap_or(0) + 1))
                    .unwrap();
            })
        };
        map.update(0, |old| Some(old.copied().unwrap_or(0) + 1))
            .unwrap();
        other.join().unwrap();
        assert_eq!(map.get(&0, |v| *v), Some(2));
        assert_eq!(map.version(), 2);
    });
}

/// An upgrade racing with a writer: what the upgrader read is still current once it writes (no
/// writer got in between), and both increments land.
#[test]
fn upgrade_lets_no_writer_in_between() {
    loom::model(|| {
        let lock = Arc::new(TrackedRwLock::new());
        let value = Arc::new(AtomicUsize::new(0));
        let writer = {
            let (lock, value) = (lock.clone(), value.clone());
            thread::spawn(move || {
                lock.lock_write(None).unwrap();
                value.store(value.load(Ordering::SeqCst) + 1, Ordering::SeqCst);
                lock.unlock_write().unwrap();
            })
        };
        lock.lock_upgradable(None).unwrap();
        let seen = value.load(Ordering::SeqCst);
        lock.upgrade(None).unwrap();
        assert_eq!(
            value.load(Ordering::SeqCst),
            seen,
            "no writer between read and upgrade"
        );
        value.store(seen + 1, Ordering::SeqCst);
        lock.downgrade().unwrap();
        assert_eq!(
            value.load(Ordering::SeqCst),
            seen + 1,
            "no writer after the downgrade"
        );
        lock.unlock_read().unwrap();
        writer.join().unwrap();
        assert_eq!(value.load(Ordering::SeqCst), 2);
        assert_eq!((lock.reader_threads(), lock.is_write_locked()), (0, false));
    });
}

/// The lock abandoned while a thread waits in `upgrade` for a reader (or before it gets there):
/// the upgrade ends, no hold is released twice (the model asserts that), and nothing deadlocks.
#[test]
fn abandon_during_an_upgrade() {
    loom::model(|| {
        let lock = Arc::new(TrackedRwLock::new());
        lock.lock_read(None).unwrap();
        let upgrader = {
            let lock = lock.clone();
            thread::spawn(move || match lock.lock_upgradable(None) {
                Ok(()) => lock.upgrade(None),
                Err(error) => {
                    assert_eq!(error, LockError::Abandoned);
                    Err(UpgradeError::Abandoned)
                }
            })
        };
        lock.abandon();
        assert_eq!(upgrader.join().unwrap(), Err(UpgradeError::Abandoned));
        assert_eq!(lock.lock_write(None), Err(LockError::Abandoned));
        assert!(!lock.is_upgradable_locked());
    });
}
