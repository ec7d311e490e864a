//! PerThread with real threads and exact drop counts.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use threadkit_core::{InitError, PerThread};

struct Drops {
    made: AtomicUsize,
    dropped: AtomicUsize,
}

/// One `Counted` per `made`; `dropped` counts the last clone of each going.
struct Token(Arc<Drops>);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

fn drops() -> Arc<Drops> {
    Arc::new(Drops {
        made: AtomicUsize::new(0),
        dropped: AtomicUsize::new(0),
    })
}

fn make(drops: &Arc<Drops>) -> Arc<Token> {
    drops.made.fetch_add(1, Ordering::SeqCst);
    Arc::new(Token(drops.clone()))
}

#[test]
fn each_thread_gets_its_own_value_made_once() {
    let counts = drops();
    let local = PerThread::<Arc<Token>>::new();
    let handle = local.handle();
    let a = handle
        .get_or_try_init(|| Ok::<_, ()>(make(&counts)))
        .unwrap();
    let b = handle
        .get_or_try_init(|| Ok::<_, ()>(make(&counts)))
        .unwrap();
    assert!(Arc::ptr_eq(&a, &b), "the same value on the same thread");
    let other = thread::scope(|s| {
        s.spawn(|| {
            let handle = local.handle();
            let mine = handle
                .get_or_try_init(|| Ok::<_, ()>(make(&counts)))
                .unwrap();
            (Arc::ptr_eq(&mine, &a), handle.contains())
        })
        .join()
        .unwrap()
    });
    assert_eq!(other, (false, true));
    assert_eq!(counts.made.load(Ordering::SeqCst), 2);
    assert_eq!(
        counts.dropped.load(Ordering::SeqCst),
        1,
        "the other thread's value went with it"
    );
    drop((a, b));
    assert_eq!(local.len(), 1);
    drop(local);
    assert_eq!(counts.dropped.load(Ordering::SeqCst), 2);
}

#[test]
fn values_go_when_their_threads_end() {
    let counts = drops();
    let local = PerThread::<Arc<Token>>::new();
    // Joined one by one: only a join waits for a thread's thread-local destructors (the end of
    // a scope does not).
    thread::scope(|s| {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let handle = local.handle();
                    for _ in 0..100 {
                        handle
                            .get_or_try_init(|| Ok::<_, ()>(make(&counts)))
                            .unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
    });
    assert_eq!(counts.made.load(Ordering::SeqCst), 8);
    assert_eq!(counts.dropped.load(Ordering::SeqCst), 8);
    assert!(local.is_empty());
}

/// The owner dropped while 8 threads hold values, then the threads end: each value is dropped
/// exactly once, by whichever came first.
#[test]
fn the_owner_dropped_while_threads_hold_values_drops_each_once() {
    for _ in 0..20 {
        let counts = drops();
        let local = PerThread::<Arc<Token>>::new();
        let barrier = Barrier::new(9);
        thread::scope(|s| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let handle = local.handle();
                    let (counts, barrier) = (&counts, &barrier);
                    s.spawn(move || {
                        drop(
                            handle
                                .get_or_try_init(|| Ok::<_, ()>(make(counts)))
                                .unwrap(),
                        );
                        barrier.wait();
                        // The owner drops now, racing with this thread's end.
                    })
                })
                .collect();
            barrier.wait();
            drop(local);
            threads.into_iter().for_each(|t| t.join().unwrap());
        });
        assert_eq!(counts.made.load(Ordering::SeqCst), 8);
        assert_eq!(counts.dropped.load(Ordering::SeqCst), 8);
    }
}

#[test]
fn init_failures_and_reentrant_inits_store_nothing() {
    let local = PerThread::<u32>::new();
    let handle = local.handle();
    assert_eq!(
        handle.get_or_try_init(|| Err::<u32, _>("no")),
        Err(InitError::Failed("no"))
    );
    assert!(!handle.contains());
    let inner = local.handle();
    let outer = handle.get_or_try_init(|| {
        assert_eq!(
            inner.get_or_try_init(|| Ok::<_, ()>(1)),
            Err(InitError::Reentrant)
        );
        Ok::<_, ()>(2)
    });
    assert_eq!(outer, Ok(2));
    assert_eq!(handle.get(), Some(2));
    assert_eq!(handle.remove(), Some(2));
    assert_eq!(handle.get(), None);
    assert_eq!(
        handle.get_or_try_init(|| Ok::<_, ()>(3)),
        Ok(3),
        "made anew"
    );
}

#[test]
fn a_value_made_after_the_owner_went_is_returned_but_not_kept() {
    let counts = drops();
    let local = PerThread::<Arc<Token>>::new();
    let handle = local.handle();
    let value = handle
        .get_or_try_init(|| {
            drop(local);
            Ok::<_, ()>(make(&counts))
        })
        .unwrap();
    assert!(!handle.contains());
    drop(value);
    assert_eq!(counts.dropped.load(Ordering::SeqCst), 1);
}

/// Dropping a value runs code (an engine object's destructor may run a script); here that code
/// uses the same PerThread, which must not deadlock (values are dropped outside the lock).
#[test]
fn a_value_whose_drop_uses_the_same_per_thread_does_not_deadlock() {
    struct UsesLocal(threadkit_core::PerThreadHandle<Arc<UsesLocal>>);
    impl Drop for UsesLocal {
        fn drop(&mut self) {
            assert!(!self.0.contains());
            assert_eq!(self.0.len(), 0);
        }
    }
    let local = PerThread::<Arc<UsesLocal>>::new();
    thread::scope(|s| {
        s.spawn(|| {
            let handle = local.handle();
            let made = handle.get_or_try_init(|| Ok::<_, ()>(Arc::new(UsesLocal(local.handle()))));
            drop(made);
        })
        .join()
        .unwrap();
    });
    assert!(local.is_empty(), "dropped when its thread ended");
    let handle = local.handle();
    drop(handle.get_or_try_init(|| Ok::<_, ()>(Arc::new(UsesLocal(local.handle())))));
    drop(local);
    assert!(!handle.contains(), "dropped with its owner");
}

#[test]
fn many_owners_on_many_threads_drop_every_value_once() {
    let counts = drops();
    let locals: Vec<_> = (0..4).map(|_| PerThread::<Arc<Token>>::new()).collect();
    thread::scope(|s| {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    for local in &locals {
                        local
                            .handle()
                            .get_or_try_init(|| Ok::<_, ()>(make(&counts)))
                            .unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
    });
    assert_eq!(counts.made.load(Ordering::SeqCst), 16);
    assert_eq!(counts.dropped.load(Ordering::SeqCst), 16);
    drop(locals);
}
