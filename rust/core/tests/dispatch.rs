//! Dispatcher and oneshot behaviour with real threads and exact counts; the test thread plays
//! the main thread.
#![cfg(not(loom))]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;

use threadkit_core::{
    CallError, DispatchStats, Dispatcher, DrainLimits, Overflow, PushError, Runner, oneshot,
};

/// Drains until `done` says every expected item ran, or fails after 30 s.
fn drain_until<T>(d: &Dispatcher<T>, mut run: impl FnMut(T), done: impl Fn() -> bool) {
    let started = Instant::now();
    let backoff = Backoff::new();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "drained in time"
        );
        if d.is_empty() {
            backoff.snooze();
        }
        d.drain(&mut run);
    }
}

fn bounded(capacity: usize, overflow: Overflow) -> Dispatcher<u32> {
    let d = Dispatcher::new();
    d.set_capacity(capacity);
    d.set_overflow(overflow);
    d
}

fn drain_all(d: &Dispatcher<u32>) -> Vec<u32> {
    let mut seen = vec![];
    d.drain(|i| seen.push(i));
    seen
}

/// Boxed closures, the payload of the binding layer, can be queued and shared across threads.
#[test]
fn the_types_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Dispatcher<Box<dyn FnOnce() + Send>>>();
    send::<Runner<Box<dyn std::any::Any + Send>>>();
    send::<threadkit_core::Caller<Box<dyn std::any::Any + Send>>>();
}

#[test]
fn four_producers_fifty_thousand_items_each_run_once_in_order() {
    const PER_PRODUCER: u32 = 50_000;
    let d = Arc::new(Dispatcher::<(usize, u32)>::new());
    let mut next = [0u32; 4];
    let mut ran = 0usize;
    thread::scope(|s| {
        for producer in 0..4 {
            let d = d.clone();
            s.spawn(move || {
                for i in 0..PER_PRODUCER {
                    d.push((producer, i)).unwrap();
                }
            });
        }
        drain_until(
            &d,
            |(producer, i)| {
                assert_eq!(i, next[producer], "producer {producer} in order, each once");
                next[producer] += 1;
                ran += 1;
            },
            || d.stats().executed == 4 * u64::from(PER_PRODUCER),
        );
    });
    assert_eq!(next, [PER_PRODUCER; 4]);
    assert_eq!(ran, 200_000);
    let stats = d.stats();
    assert_eq!(
        (
            stats.dispatched,
            stats.executed,
            stats.dropped,
            stats.rejected,
            stats.pending
        ),
        (200_000, 200_000, 0, 0, 0)
    );
    assert!(d.receiver().is_empty());
}

#[test]
fn items_pushed_during_a_drain_run_next_drain() {
    let d = Dispatcher::new();
    for i in 0..3 {
        d.push(i).unwrap();
    }
    let mut seen = vec![];
    let report = d.drain(|i| {
        seen.push(i);
        d.push(i + 10).unwrap();
    });
    assert_eq!((seen.as_slice(), report.processed), (&[0, 1, 2][..], 3));
    assert_eq!(d.len(), 3);
    assert_eq!(drain_all(&d), [10, 11, 12]);
}

#[test]
fn max_per_drain_is_respected() {
    let d = Dispatcher::new();
    d.set_max_per_drain(Some(4));
    for i in 0..10 {
        d.push(i).unwrap();
    }
    assert_eq!(drain_all(&d), [0, 1, 2, 3]);
    assert_eq!(drain_all(&d), [4, 5, 6, 7]);
    assert_eq!(drain_all(&d), [8, 9]);
    let explicit = DrainLimits {
        max_items: Some(1),
        budget: None,
    };
    d.push(20).unwrap();
    d.push(21).unwrap();
    assert_eq!(d.drain_with(explicit, drop).processed, 1);
    assert_eq!(d.stats().pending, 1);
}

#[test]
fn budget_is_respected() {
    let d = Dispatcher::new();
    d.set_budget(Some(Duration::from_millis(5)));
    for i in 0..100 {
        d.push(i).unwrap();
    }
    // Each item takes at least 1 ms, so at most 5 start before the budget runs out, plus the one
    // running when it does.
    let report = d.drain(|_| thread::sleep(Duration::from_millis(1)));
    assert!(report.over_budget);
    assert!(
        (1..=6).contains(&report.processed),
        "ran {}",
        report.processed
    );
    let stats = d.stats();
    assert_eq!(stats.drains_over_budget, 1);
    assert_eq!(stats.pending, 100 - report.processed as u64);
    assert!(stats.last_drain_usec >= 5_000);
    d.set_budget(None);
    assert!(!d.drain(drop).over_budget);
    assert_eq!(d.stats().drains_over_budget, 1);
}

#[test]
fn reject_refuses_and_returns_the_item() {
    let d = bounded(2, Overflow::Reject);
    d.push(1).unwrap();
    d.push(2).unwrap();
    assert_eq!(d.push(3), Err(PushError::Full(3)));
    assert_eq!(d.push(4).unwrap_err().into_inner(), 4);
    assert_eq!(drain_all(&d), [1, 2]);
    d.push(5).unwrap();
    let stats = d.stats();
    assert_eq!(
        (
            stats.dispatched,
            stats.rejected,
            stats.max_depth,
            stats.pending
        ),
        (3, 2, 2, 1)
    );
}

#[test]
fn drop_oldest_keeps_the_newest_in_order() {
    let d = bounded(3, Overflow::DropOldest);
    for i in 0..10 {
        d.push(i).unwrap();
    }
    assert_eq!(d.len(), 3);
    assert_eq!(drain_all(&d), [7, 8, 9]);
    let stats = d.stats();
    assert_eq!(
        (
            stats.dispatched,
            stats.dropped,
            stats.executed,
            stats.max_depth
        ),
        (10, 7, 3, 3)
    );
}

#[test]
fn block_returns_once_a_drain_makes_room() {
    let d = Arc::new(bounded(1, Overflow::Block(Duration::from_secs(30))));
    d.push(1).unwrap();
    let returned = Arc::new(AtomicBool::new(false));
    let producer = {
        let (d, returned) = (d.clone(), returned.clone());
        thread::spawn(move || {
            let pushed = d.push(2);
            returned.store(true, Ordering::SeqCst);
            pushed
        })
    };
    thread::sleep(Duration::from_millis(50));
    assert!(
        !returned.load(Ordering::SeqCst),
        "waits while the queue is full"
    );
    let started = Instant::now();
    assert_eq!(drain_all(&d), [1]);
    assert_eq!(producer.join().unwrap(), Ok(()));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "woken, not timed out"
    );
    assert_eq!(drain_all(&d), [2]);
    assert_eq!(d.stats().rejected, 0);
}

#[test]
fn block_times_out_when_nothing_drains() {
    let d = bounded(1, Overflow::Block(Duration::from_millis(50)));
    d.push(1).unwrap();
    let started = Instant::now();
    assert_eq!(d.push(2), Err(PushError::TimedOut(2)));
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!((d.stats().rejected, d.len()), (1, 1));
}

#[test]
fn raising_the_capacity_wakes_a_blocked_push() {
    let d = Arc::new(bounded(1, Overflow::Block(Duration::from_secs(30))));
    d.push(1).unwrap();
    let producer = {
        let d = d.clone();
        thread::spawn(move || d.push(2))
    };
    thread::sleep(Duration::from_millis(20));
    d.set_capacity(2);
    assert_eq!(producer.join().unwrap(), Ok(()));
    assert_eq!(drain_all(&d), [1, 2]);
}

#[test]
fn try_push_treats_block_as_reject() {
    let d = bounded(1, Overflow::Block(Duration::from_secs(30)));
    d.try_push(1).unwrap();
    let started = Instant::now();
    assert_eq!(d.try_push(2), Err(PushError::Full(2)));
    assert!(started.elapsed() < Duration::from_secs(5));
    d.set_overflow(Overflow::DropOldest);
    d.try_push(3).unwrap();
    assert_eq!(drain_all(&d), [3]);
}

#[test]
fn lowering_the_capacity_drops_nothing() {
    let d = bounded(5, Overflow::Reject);
    for i in 0..5 {
        d.push(i).unwrap();
    }
    d.set_capacity(2);
    assert_eq!(d.push(5), Err(PushError::Full(5)));
    assert_eq!(d.len(), 5);
    d.set_max_per_drain(Some(2));
    assert_eq!(drain_all(&d), [0, 1]);
    assert_eq!(d.push(6), Err(PushError::Full(6)), "3 queued, limit 2");
    d.set_max_per_drain(None);
    assert_eq!(drain_all(&d), [2, 3, 4]);
    d.push(7).unwrap();
    d.push(8).unwrap();
    assert!(d.push(9).is_err());
}

#[test]
fn racing_producers_never_exceed_a_rejecting_capacity() {
    let d = Arc::new(bounded(8, Overflow::Reject));
    let stats = race_producers_with_drain(&d);
    assert!(stats.max_depth <= 8);
    assert!(stats.rejected > 0, "the queue filled at some point");
    assert_eq!(stats.dispatched + stats.rejected, 40_000);
    assert_eq!((stats.executed, stats.dropped), (stats.dispatched, 0));
}

#[test]
fn drop_oldest_racing_a_drain_keeps_the_count_exact() {
    let d = Arc::new(bounded(8, Overflow::DropOldest));
    let stats = race_producers_with_drain(&d);
    assert!(stats.max_depth <= 8);
    assert_eq!((stats.dispatched, stats.rejected), (40_000, 0));
    assert_eq!(stats.executed + stats.dropped, 40_000);
}

#[test]
fn block_racing_a_drain_loses_nothing() {
    let d = Arc::new(bounded(8, Overflow::Block(Duration::from_secs(30))));
    let stats = race_producers_with_drain(&d);
    assert!(stats.max_depth <= 8);
    assert_eq!((stats.dispatched, stats.executed), (40_000, 40_000));
}

/// Four producers push 10 000 items each while the test thread drains; returns the stats once
/// the producers finished and the queue is empty, after checking per-producer order.
fn race_producers_with_drain(d: &Arc<Dispatcher<u32>>) -> DispatchStats {
    let mut last = [None::<u32>; 4];
    thread::scope(|s| {
        let producers: Vec<_> = (0..4u32)
            .map(|producer| {
                let d = d.clone();
                s.spawn(move || {
                    for i in 0..10_000 {
                        let _ = d.push(producer << 16 | i);
                    }
                })
            })
            .collect();
        drain_until(
            d,
            |item| {
                let (producer, i) = ((item >> 16) as usize, item & 0xffff);
                assert!(last[producer].is_none_or(|prev| prev < i), "in order");
                last[producer] = Some(i);
            },
            || producers.iter().all(|p| p.is_finished()) && d.is_empty(),
        );
    });
    let stats = d.stats();
    assert_eq!(stats.pending, 0);
    assert!(d.receiver().is_empty());
    stats
}

#[test]
fn a_million_items_unbounded_lose_nothing() {
    let d = Dispatcher::new();
    for i in 0..1_000_000u64 {
        d.push(i).unwrap();
    }
    let mut sum = 0u64;
    let mut expected = 0u64;
    d.drain(|i| {
        assert_eq!(i, expected);
        expected += 1;
        sum += i;
    });
    assert_eq!(expected, 1_000_000);
    assert_eq!(sum, 999_999 * 1_000_000 / 2);
    let stats = d.stats();
    assert_eq!(
        (
            stats.dispatched,
            stats.executed,
            stats.max_depth,
            stats.pending
        ),
        (1_000_000, 1_000_000, 1_000_000, 0)
    );
}

#[test]
fn record_dropped_adds_to_dropped() {
    let d = Dispatcher::<u32>::new();
    d.record_dropped(2);
    d.record_dropped(3);
    assert_eq!(d.stats().dropped, 5);
}

mod calls {
    use super::*;

    #[test]
    fn the_value_is_handed_over() {
        let (runner, caller) = oneshot();
        let main = thread::spawn(move || {
            assert!(runner.claim());
            runner.complete(42);
        });
        assert_eq!(caller.wait(Some(Duration::from_secs(30))), Ok(42));
        main.join().unwrap();
    }

    #[test]
    fn a_timeout_before_the_run_means_it_never_runs() {
        let (runner, caller) = oneshot::<u32>();
        assert_eq!(
            caller.wait(Some(Duration::from_millis(10))),
            Err(CallError::TimedOut)
        );
        assert!(!runner.claim());
    }

    #[test]
    fn a_call_claimed_before_the_timeout_is_waited_for() {
        let (runner, caller) = oneshot();
        assert!(runner.claim());
        let main = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            runner.complete("late");
        });
        assert_eq!(caller.wait(Some(Duration::from_millis(5))), Ok("late"));
        main.join().unwrap();
    }

    #[test]
    fn a_dropped_runner_ends_the_wait_promptly() {
        let (runner, caller) = oneshot::<u32>();
        let started = Instant::now();
        let main = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            drop(runner);
        });
        assert_eq!(
            caller.wait(Some(Duration::from_secs(30))),
            Err(CallError::Dropped)
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        main.join().unwrap();
    }

    #[test]
    fn a_panicking_call_ends_the_wait_with_dropped() {
        let (runner, caller) = oneshot::<u32>();
        let main = thread::spawn(move || {
            assert!(runner.claim());
            panic!("the call failed");
        });
        assert_eq!(caller.wait(None), Err(CallError::Dropped));
        assert!(main.join().is_err());
    }

    #[test]
    fn a_call_dropped_from_a_full_queue_ends_its_wait() {
        let d = Arc::new(Dispatcher::new());
        d.set_capacity(1);
        d.set_overflow(Overflow::DropOldest);
        let (runner, caller) = oneshot::<u32>();
        d.push(runner).unwrap();
        let (newer, _newer_caller) = oneshot::<u32>();
        d.push(newer).unwrap();
        assert_eq!(caller.wait(None), Err(CallError::Dropped));
        assert_eq!(d.stats().dropped, 1);
    }

    #[test]
    fn calls_through_the_dispatcher_deliver_their_values() {
        let d = Arc::new(Dispatcher::<(u32, Runner<u32>)>::new());
        thread::scope(|s| {
            let callers: Vec<_> = (0..4u32)
                .map(|worker| {
                    let d = d.clone();
                    s.spawn(move || {
                        for i in 0..100 {
                            let (runner, caller) = oneshot();
                            d.push((worker * 1000 + i, runner)).unwrap();
                            assert_eq!(caller.wait(None), Ok(2 * (worker * 1000 + i)));
                        }
                    })
                })
                .collect();
            drain_until(
                &d,
                |(value, runner)| {
                    assert!(runner.claim());
                    runner.complete(2 * value);
                },
                || callers.iter().all(|c| c.is_finished()),
            );
        });
        assert_eq!(d.stats().executed, 400);
    }
}
