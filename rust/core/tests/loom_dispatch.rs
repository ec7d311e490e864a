//! Loom model tests of the oneshot call hand-off and the dispatcher's slot accounting, run by
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=3 \
//!  cargo test --release -p threadkit-core --test loom_dispatch`.
//!
//! The dispatcher's items travel through a crossbeam channel, which loom does not model: loom
//! sees each `send`/`try_recv`/`len` as one indivisible step between the dispatcher's own
//! (modelled) atomics, lock and condition variable. That is faithful for an unbounded channel,
//! whose operations are linearizable and never block, and it makes loom no less strict: the
//! channel's own happens-before edges are hidden from it. So these models check the depth
//! reservation, the slot hand-over of `DropOldest`, the wake-ups of blocked pushes and the
//! stats around the channel; that a drain stops at the length it saw when it started is a
//! property of one `len` read, covered by the real-thread tests in `tests/dispatch.rs`.
#![cfg(loom)]

use std::time::Duration;

use loom::sync::Arc;
use loom::thread;
use threadkit_core::{CallError, Dispatcher, Overflow, oneshot};

fn bounded(capacity: usize, overflow: Overflow) -> Arc<Dispatcher<u32>> {
    let d = Dispatcher::new();
    d.set_capacity(capacity);
    d.set_overflow(overflow);
    Arc::new(d)
}

fn drain_all(d: &Dispatcher<u32>) -> Vec<u32> {
    let mut seen = vec![];
    d.drain(|i| seen.push(i));
    seen
}

/// The main thread runs the call while the caller's timeout expires: either the caller gave up
/// first and the call never runs, or the call was claimed first and the caller gets its value.
#[test]
fn call_timeout_versus_run_has_exactly_one_winner() {
    loom::model(|| {
        let (runner, caller) = oneshot::<u32>();
        let main = thread::spawn(move || {
            if runner.claim() {
                runner.complete(7);
                true
            } else {
                false
            }
        });
        // Loom does not model time: a zero timeout is a timeout that expires at once, wherever
        // the main thread is.
        let waited = caller.wait(Some(Duration::ZERO));
        let ran = main.join().unwrap();
        match waited {
            Ok(value) => assert!(ran && value == 7),
            Err(CallError::TimedOut) => assert!(!ran),
            Err(CallError::Dropped) => panic!("a runner that completes is never Dropped"),
            Err(CallError::Interrupted) => panic!("no interrupt was given"),
        }
    });
}

/// A runner dropped without completing (claimed or not) wakes a caller that waits without limit.
#[test]
fn a_dropped_runner_wakes_the_caller() {
    loom::model(|| {
        let (runner, caller) = oneshot::<u32>();
        let main = thread::spawn(move || {
            runner.claim();
            drop(runner);
        });
        assert_eq!(caller.wait(None), Err(CallError::Dropped));
        main.join().unwrap();
    });
}

/// Two producers race for the last slot of a rejecting queue: exactly one gets it.
#[test]
fn racing_pushes_never_overshoot_a_rejecting_capacity() {
    loom::model(|| {
        let d = bounded(2, Overflow::Reject);
        d.push(0).unwrap();
        let other = {
            let d = d.clone();
            thread::spawn(move || d.push(1).is_ok())
        };
        let mine = d.push(2).is_ok();
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "exactly one push fits");
        let stats = d.stats();
        assert_eq!((stats.dispatched, stats.rejected), (2, 1));
        assert_eq!((stats.max_depth, stats.pending), (2, 2));
        assert_eq!(drain_all(&d).len(), 2);
    });
}

/// A `DropOldest` producer and a drain pop from the same channel: every item is either run or
/// dropped, once, in order, and the depth ends exact. When the producer finds the queue full
/// with nothing to pop (the drain popped the last item and has not released its slot yet), it
/// yields until the drain does; loom explores that path too.
#[test]
fn drop_oldest_racing_a_drain_keeps_the_depth_exact() {
    loom::model(|| {
        let d = bounded(1, Overflow::DropOldest);
        d.push(0).unwrap();
        let producer = {
            let d = d.clone();
            thread::spawn(move || {
                d.push(1).unwrap();
                d.push(2).unwrap();
            })
        };
        let mut ran = drain_all(&d);
        producer.join().unwrap();
        ran.extend(drain_all(&d));
        assert!(ran.is_sorted(), "in order: {ran:?}");
        assert_eq!(ran.last(), Some(&2), "the newest item is never dropped");
        let stats = d.stats();
        assert_eq!(stats.executed, ran.len() as u64);
        assert_eq!(stats.executed + stats.dropped, 3);
        assert_eq!(
            (stats.dispatched, stats.pending, stats.max_depth),
            (3, 0, 1)
        );
        assert!(d.is_empty() && d.receiver().is_empty());
    });
}

/// Two `DropOldest` producers race for one slot, each popping the other's item: the count
/// stays exact and the slot is never exceeded. (A drain racing both at once is not modelled:
/// loom would explore schedules where the two producers, each yielding while the drain holds
/// the slot, hand the turn to each other forever, which no real scheduler does.)
#[test]
fn drop_oldest_producers_racing_each_other_keep_the_depth_exact() {
    loom::model(|| {
        let d = bounded(1, Overflow::DropOldest);
        d.push(0).unwrap();
        let other = {
            let d = d.clone();
            thread::spawn(move || d.push(1).unwrap())
        };
        d.push(2).unwrap();
        other.join().unwrap();
        let ran = drain_all(&d);
        assert!(ran == [1] || ran == [2], "one newest item kept: {ran:?}");
        let stats = d.stats();
        assert_eq!((stats.dispatched, stats.dropped, stats.executed), (3, 2, 1));
        assert_eq!((stats.pending, stats.max_depth), (0, 1));
    });
}

/// A push blocked on a full queue is woken by the drain that makes room (loom reports a
/// deadlock if a wake-up is lost: its condition variable never times out).
#[test]
fn a_drain_wakes_a_blocked_push() {
    loom::model(|| {
        let d = bounded(1, Overflow::Block(Duration::from_secs(3600)));
        d.push(0).unwrap();
        let producer = {
            let d = d.clone();
            thread::spawn(move || d.push(1))
        };
        let mut ran = drain_all(&d);
        producer.join().unwrap().unwrap();
        ran.extend(drain_all(&d));
        assert_eq!(ran, [0, 1]);
        let stats = d.stats();
        assert_eq!((stats.rejected, stats.max_depth, stats.pending), (0, 1, 0));
    });
}

/// Items pushed while a drain runs are either run by it (they were queued before it read the
/// length) or wait for the next one; none is lost, run twice or run out of order.
#[test]
fn a_drain_racing_pushes_runs_each_item_once_in_order() {
    loom::model(|| {
        let d = bounded(0, Overflow::Reject);
        d.push(0).unwrap();
        let producer = {
            let d = d.clone();
            thread::spawn(move || {
                d.push(1).unwrap();
                d.push(2).unwrap();
            })
        };
        let mut ran = drain_all(&d);
        assert!(!ran.is_empty(), "the item queued before the drain runs");
        producer.join().unwrap();
        ran.extend(drain_all(&d));
        assert_eq!(ran, [0, 1, 2]);
        assert_eq!(d.stats().executed, 3);
        assert!(d.is_empty());
    });
}
