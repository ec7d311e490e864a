//! SharedMap and TrackedRwLock under real threads: invariants on every read, exact counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use threadkit_core::{SharedMap, TrackedRwLock};

const WRITERS: usize = 4;
const READERS: usize = 4;
const OPS: usize = 50_000;
const TOTAL: i64 = 1_000;

/// Writers move amounts between two keys with `batch` (both keys under one write lock); every
/// read of both keys in one snapshot must see the same total.
#[test]
fn batch_updates_are_seen_all_or_nothing_by_concurrent_readers() {
    let m: Arc<SharedMap<&str, i64>> = Arc::new(SharedMap::new());
    m.batch([("left", TOTAL), ("right", 0)]).unwrap();
    let mut threads = vec![];
    for w in 0..WRITERS {
        let m = m.clone();
        threads.push(thread::spawn(move || {
            for i in 0..OPS {
                // Each writer sets a split of its own; the split differs so torn reads would show.
                let left = ((w * OPS + i) % (TOTAL as usize + 1)) as i64;
                m.batch([("left", left), ("right", TOTAL - left)]).unwrap();
            }
        }));
    }
    let torn = Arc::new(AtomicU64::new(0));
    for _ in 0..READERS {
        let (m, torn) = (m.clone(), torn.clone());
        threads.push(thread::spawn(move || {
            for _ in 0..OPS {
                let mut sum = 0;
                m.for_each(|_, v| sum += v);
                if sum != TOTAL {
                    torn.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(torn.load(Ordering::Relaxed), 0);
    assert_eq!(m.version(), 1 + (WRITERS * OPS) as u64);
    let stats = m.stats();
    assert!(
        stats
            .keys
            .iter()
            .all(|k| k.writes == 1 + (WRITERS * OPS) as u64)
    );
}

/// `update` is an atomic read-modify-write: 4 threads x 50 000 increments give an exact total,
/// while 4 readers count their reads exactly.
#[test]
fn updates_lose_nothing_and_every_read_is_counted() {
    let m: Arc<SharedMap<&str, i64>> = Arc::new(SharedMap::new());
    m.insert("n", 0).unwrap();
    let mut threads = vec![];
    for _ in 0..WRITERS {
        let m = m.clone();
        threads.push(thread::spawn(move || {
            for _ in 0..OPS {
                m.update("n", |old| Some(old.unwrap() + 1)).unwrap();
            }
        }));
    }
    for _ in 0..READERS {
        let m = m.clone();
        threads.push(thread::spawn(move || {
            let mut last = 0;
            for _ in 0..OPS {
                let now = m.get(&"n", |v| *v).unwrap();
                assert!(now >= last, "the count never goes back");
                last = now;
                assert_eq!(m.get(&"missing", |v| *v), None);
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(m.get(&"n", |v| *v), Some((WRITERS * OPS) as i64));
    let stats = m.stats();
    assert_eq!(stats.keys[0].reads, (READERS * OPS) as u64 + 1);
    assert_eq!(stats.keys[0].writes, (WRITERS * OPS) as u64 + 1);
    assert_eq!(stats.misses, (READERS * OPS) as u64);
}

/// Writers with the tracked lock (re-entrant write, reads under it) and readers (re-entrant
/// reads) on real threads: the protected pair is never seen torn and no increment is lost.
#[test]
fn tracked_lock_excludes_writers_from_readers() {
    let lock = Arc::new(TrackedRwLock::new());
    let pair = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let torn = Arc::new(AtomicU64::new(0));
    let mut threads = vec![];
    for _ in 0..WRITERS {
        let (lock, pair) = (lock.clone(), pair.clone());
        threads.push(thread::spawn(move || {
            for _ in 0..OPS / 10 {
                lock.lock_write(None).unwrap();
                lock.lock_write(None).unwrap();
                lock.lock_read(None).unwrap();
                // A split load-then-store: only exclusion makes it exact.
                let a = pair.0.load(Ordering::Relaxed);
                pair.0.store(a + 1, Ordering::Relaxed);
                let b = pair.1.load(Ordering::Relaxed);
                pair.1.store(b + 1, Ordering::Relaxed);
                lock.unlock_read().unwrap();
                lock.unlock_write().unwrap();
                lock.unlock_write().unwrap();
            }
        }));
    }
    for _ in 0..READERS {
        let (lock, pair, torn) = (lock.clone(), pair.clone(), torn.clone());
        threads.push(thread::spawn(move || {
            for _ in 0..OPS / 10 {
                lock.lock_read(None).unwrap();
                lock.lock_read(None).unwrap();
                if pair.0.load(Ordering::Relaxed) != pair.1.load(Ordering::Relaxed) {
                    torn.fetch_add(1, Ordering::Relaxed);
                }
                lock.unlock_read().unwrap();
                lock.unlock_read().unwrap();
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(torn.load(Ordering::Relaxed), 0);
    assert_eq!(pair.0.load(Ordering::Relaxed), (WRITERS * OPS / 10) as u64);
    assert!(!lock.is_write_locked());
    assert_eq!(lock.reader_threads(), 0);
}
