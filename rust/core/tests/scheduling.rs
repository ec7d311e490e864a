//! Scheduling in the pool (priorities, limited groups, delays, yielding), with real threads and
//! exact counts. Nothing here passes or fails on timing: delays are observed through the order
//! of events, and waits have generous timeouts only so that a bug fails instead of hanging.
#![cfg(not(loom))]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::{Sender, bounded, unbounded};
use parking_lot::Mutex;
use threadkit_core::pool::{MAX_INLINE_DEPTH, StopWait};
use threadkit_core::{CancelOutcome, Outcome, Pool, Priority, Status, WaitError, yield_now};

const PATIENCE: Duration = Duration::from_secs(30);

fn pool(threads: usize) -> Pool<u64> {
    let pool = Pool::new();
    pool.start(threads, "sched-worker-").unwrap();
    pool
}

/// Collects `count` completions; returns the ids in the order they finished.
fn collect(pool: &Pool<u64>, count: usize) -> Vec<u64> {
    (0..count)
        .map(|_| {
            let task = pool
                .completions()
                .recv_timeout(PATIENCE)
                .expect("a completion");
            pool.collect(&task);
            task.id()
        })
        .collect()
}

/// Holds a worker with a task until the returned sender sends (or drops), and returns once the
/// task runs, so that what is submitted next queues behind it.
fn hold_worker(pool: &Pool<u64>) -> Sender<()> {
    let (started_tx, started_rx) = bounded(1);
    let (release_tx, release_rx) = bounded::<()>(0);
    pool.submit(Priority::High, move |_| {
        started_tx.send(()).unwrap();
        let _ = release_rx.recv();
        Ok(0)
    })
    .unwrap();
    started_rx.recv_timeout(PATIENCE).unwrap();
    release_tx
}

#[test]
fn thirty_tasks_run_most_urgent_first_and_in_order_within_a_level() {
    let pool = pool(1);
    let release = hold_worker(&pool);
    let order = Arc::new(Mutex::new(Vec::new()));
    let levels = [Priority::Low, Priority::Normal, Priority::High];
    let mut expected: Vec<(Priority, u64)> = Vec::new();
    for tag in 0..30u64 {
        // A mix in which no level's tasks come in a row: 7 × 3 apart.
        let priority = levels[(tag * 7 % 3) as usize];
        let order = order.clone();
        pool.submit(priority, move |_| {
            order.lock().push(tag);
            Ok(tag)
        })
        .unwrap();
        expected.push((priority, tag));
    }
    drop(release);
    collect(&pool, 31);
    // Stable sort: most urgent first, submission order within a level.
    expected.sort_by_key(|(priority, _)| std::cmp::Reverse(*priority));
    let expected: Vec<u64> = expected.into_iter().map(|(_, tag)| tag).collect();
    assert_eq!(*order.lock(), expected);
    assert_eq!(&expected[..3], [2, 5, 8], "the high ones first");
    pool.stop(StopWait::Forever);
}

#[test]
fn a_limited_group_uses_at_most_its_workers_and_leaves_the_others_free() {
    let pool = pool(4);
    let inside = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (entered_tx, entered_rx) = unbounded();
    let (gate_tx, gate_rx) = unbounded::<()>();
    let group = {
        let (inside, peak) = (inside.clone(), peak.clone());
        pool.submit_group_limited(
            Priority::Normal,
            8,
            2,
            move |index, _| {
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                entered_tx.send(index).unwrap();
                gate_rx.recv_timeout(PATIENCE).unwrap();
                inside.fetch_sub(1, Ordering::SeqCst);
                Ok(index as u64)
            },
            |results| results.iter().sum(),
        )
        .unwrap()
    };
    // Two calls are inside and held: the group has the two workers it may use...
    let first_two = [entered_rx.recv().unwrap(), entered_rx.recv().unwrap()];
    assert_eq!(inside.load(Ordering::SeqCst), 2);
    // ...and the two others run other tasks meanwhile.
    let others: Vec<_> = (0..6)
        .map(|i| pool.submit(Priority::Normal, move |_| Ok(100 + i)).unwrap())
        .collect();
    for other in &others {
        assert!(pool.wait(other, Some(PATIENCE)).unwrap());
    }
    assert_eq!(inside.load(Ordering::SeqCst), 2, "no third call started");
    assert!(first_two.iter().all(|index| *index < 8));
    for _ in 0..8 {
        gate_tx.send(()).unwrap();
    }
    assert!(pool.wait(&group, Some(PATIENCE)).unwrap());
    assert_eq!(group.outcome(), Some(Outcome::Completed(28)));
    assert_eq!(peak.load(Ordering::SeqCst), 2);
    pool.stop(StopWait::Forever);
}

#[test]
fn a_thread_waiting_for_a_full_group_does_not_join_it() {
    let pool = pool(2);
    let inside = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (entered_tx, entered_rx) = unbounded();
    let (gate_tx, gate_rx) = unbounded::<()>();
    let group = {
        let (inside, peak) = (inside.clone(), peak.clone());
        pool.submit_group_limited(
            Priority::Normal,
            4,
            1,
            move |_, _| {
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                entered_tx.send(()).unwrap();
                gate_rx.recv_timeout(PATIENCE).unwrap();
                inside.fetch_sub(1, Ordering::SeqCst);
                Ok(1)
            },
            |results| results.iter().sum(),
        )
        .unwrap()
    };
    entered_rx.recv().unwrap();
    // The other worker waits for the group: full, so it blocks rather than joining.
    let waiter = {
        let (pool, group) = (pool.clone(), group.clone());
        pool.clone()
            .submit(Priority::Normal, move |_| {
                pool.wait(&group, Some(PATIENCE))
                    .map(|_| 0)
                    .map_err(|e| e.to_string())
            })
            .unwrap()
    };
    for _ in 0..4 {
        gate_tx.send(()).unwrap();
    }
    assert!(pool.wait(&waiter, Some(PATIENCE)).unwrap());
    assert_eq!(group.outcome(), Some(Outcome::Completed(4)));
    assert_eq!(peak.load(Ordering::SeqCst), 1);
    pool.stop(StopWait::Forever);
}

#[test]
fn delayed_tasks_finish_in_delay_order() {
    let pool = pool(1);
    let (ran_tx, ran_rx) = unbounded();
    // Submitted longest first; half a second apart, so that the submissions' own pace (however
    // slow the machine) cannot change which deadline comes first.
    let delays = [1050u64, 550, 50];
    for ms in delays {
        let ran_tx = ran_tx.clone();
        pool.submit_delayed(Priority::Normal, Duration::from_millis(ms), move |_| {
            ran_tx.send(ms).unwrap();
            Ok(ms)
        })
        .unwrap();
    }
    let order: Vec<u64> = (0..3)
        .map(|_| ran_rx.recv_timeout(PATIENCE).unwrap())
        .collect();
    assert_eq!(order, [50, 550, 1050]);
    collect(&pool, 3);
    let stats = pool.stats();
    assert_eq!((stats.pending, stats.delayed, stats.completed), (0, 0, 3));
    pool.stop(StopWait::Forever);
}

#[test]
fn delayed_tasks_hold_no_worker_and_a_waiter_does_not_run_one_early() {
    let pool = pool(1);
    let hour = Duration::from_secs(3600);
    let delayed: Vec<_> = (0..3)
        .map(|i| {
            pool.submit_delayed(Priority::High, hour, move |_| Ok(i))
                .unwrap()
        })
        .collect();
    let stats = pool.stats();
    assert_eq!(
        (
            stats.pending,
            stats.delayed,
            stats.running,
            stats.busy_workers
        ),
        (3, 3, 0, 0)
    );
    assert!(delayed.iter().all(|task| task.status() == Status::Pending));
    // The only worker waits for one: it neither runs it early nor adds a spare for it.
    let first = delayed[0].clone();
    let waiter = {
        let pool2 = pool.clone();
        pool.submit(Priority::Low, move |_| {
            let finished = pool2
                .wait(&first, Some(Duration::from_millis(200)))
                .map_err(|e| e.to_string())?;
            Ok(finished as u64)
        })
        .unwrap()
    };
    assert!(pool.wait(&waiter, Some(PATIENCE)).unwrap());
    assert_eq!(waiter.outcome(), Some(Outcome::Completed(0)), "timed out");
    assert_eq!(pool.stats().spare_workers, 0);
    // Nor does a thread that is no worker, while every worker is busy.
    let release = hold_worker(&pool);
    assert!(!pool.help(&delayed[0]));
    drop(release);
    assert!(delayed.iter().all(|task| task.status() == Status::Pending));
    assert_eq!(pool.stop(StopWait::Forever).cancelled, 3);
}

#[test]
fn a_cancelled_delayed_task_never_runs_and_stop_cancels_the_others() {
    let pool = pool(2);
    let runs = Arc::new(AtomicUsize::new(0));
    let delayed: Vec<_> = [50u64, 3_600_000, 3_600_000]
        .into_iter()
        .map(|ms| {
            let runs = runs.clone();
            pool.submit_delayed(Priority::High, Duration::from_millis(ms), move |_| {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok(ms)
            })
            .unwrap()
        })
        .collect();
    assert_eq!(
        pool.cancel(delayed[0].id()),
        Some(CancelOutcome::CancelledBeforeStart)
    );
    assert_eq!((pool.stats().pending, pool.stats().delayed), (2, 2));
    // Past the cancelled one's deadline (the timer hands over in deadline order): it stayed so.
    let later = pool
        .submit_delayed(Priority::Low, Duration::from_millis(100), |_| Ok(0))
        .unwrap();
    assert!(pool.wait(&later, Some(PATIENCE)).unwrap());
    assert_eq!(delayed[0].status(), Status::Cancelled);
    let report = pool.stop(StopWait::Forever);
    assert_eq!(report.cancelled, 2, "the hour-long ones");
    assert!(
        delayed
            .iter()
            .all(|task| task.status() == Status::Cancelled)
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let stats = pool.stats();
    assert_eq!((stats.pending, stats.delayed, stats.cancelled), (0, 0, 3));
    assert_eq!(collect(&pool, 4).len(), 4);
    // A stopped pool refuses delayed tasks; a restarted one starts a timer of its own.
    assert!(
        pool.submit_delayed(Priority::Normal, Duration::from_millis(1), |_| Ok(0))
            .is_err()
    );
    pool.start(1, "sched-again-").unwrap();
    let again = pool
        .submit_delayed(Priority::Normal, Duration::from_millis(1), |_| Ok(9))
        .unwrap();
    assert!(pool.wait(&again, Some(PATIENCE)).unwrap());
    assert_eq!(again.outcome(), Some(Outcome::Completed(9)));
    pool.stop(StopWait::Forever);
}

#[test]
fn a_zero_delay_queues_at_once() {
    let pool = pool(1);
    let task = pool
        .submit_delayed(Priority::Normal, Duration::ZERO, |_| Ok(5))
        .unwrap();
    assert_eq!(pool.stats().delayed, 0);
    assert!(pool.wait(&task, Some(PATIENCE)).unwrap());
    pool.stop(StopWait::Forever);
}

#[test]
fn yield_now_runs_the_queued_tasks_of_its_level_and_above_then_returns() {
    let pool = pool(1);
    let order = Arc::new(Mutex::new(Vec::new()));
    let (started_tx, started_rx) = bounded(1);
    let (go_tx, go_rx) = bounded::<()>(1);
    let long = {
        let order = order.clone();
        pool.submit(Priority::Normal, move |_| {
            started_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            let (mut ran, mut calls) = (0, 0);
            // A long task's loop: keeps the queue moving until it has seen the ten through.
            while ran < 10 {
                ran += yield_now();
                calls += 1;
            }
            order.lock().push(99);
            Ok(calls * 1000 + ran as u64)
        })
        .unwrap()
    };
    started_rx.recv().unwrap();
    for tag in 0..10u64 {
        let order = order.clone();
        let priority = if tag % 2 == 0 {
            Priority::High
        } else {
            Priority::Normal
        };
        pool.submit(priority, move |_| {
            order.lock().push(tag);
            Ok(tag)
        })
        .unwrap();
    }
    let low = {
        let order = order.clone();
        pool.submit(Priority::Low, move |_| {
            order.lock().push(50);
            Ok(50)
        })
        .unwrap()
    };
    go_tx.send(()).unwrap();
    assert!(pool.wait(&low, Some(PATIENCE)).unwrap());
    // High ones first, then normal; the low one only after the long task returned.
    assert_eq!(*order.lock(), [0, 2, 4, 6, 8, 1, 3, 5, 7, 9, 99, 50]);
    assert_eq!(
        long.outcome(),
        Some(Outcome::Completed(1010)),
        "all ten in its first call"
    );
    pool.stop(StopWait::Forever);
}

#[test]
fn yield_now_outside_a_worker_task_runs_nothing() {
    let pool = pool(1);
    let release = hold_worker(&pool);
    let queued = pool.submit(Priority::High, |_| Ok(1)).unwrap();
    assert_eq!(yield_now(), 0);
    assert_eq!(std::thread::spawn(yield_now).join().unwrap(), 0);
    assert_eq!(queued.status(), Status::Pending);
    drop(release);
    assert!(pool.wait(&queued, Some(PATIENCE)).unwrap());
    pool.stop(StopWait::Forever);
}

#[test]
fn a_task_run_by_yield_that_waits_for_the_yielder_is_refused_as_a_cycle() {
    let pool = pool(1);
    let release = hold_worker(&pool);
    let (yielder_tx, yielder_rx) = bounded(1);
    let refused = Arc::new(Mutex::new(None));
    let yielder = pool
        .submit(Priority::Normal, |_| Ok(yield_now() as u64))
        .unwrap();
    yielder_tx.send(yielder.clone()).unwrap();
    {
        let (pool, refused) = (pool.clone(), refused.clone());
        pool.clone()
            .submit(Priority::Normal, move |_| {
                let yielder = yielder_rx.recv().unwrap();
                *refused.lock() = Some(pool.wait(&yielder, Some(PATIENCE)));
                Ok(0)
            })
            .unwrap();
    }
    drop(release);
    assert!(pool.wait(&yielder, Some(PATIENCE)).unwrap());
    assert_eq!(yielder.outcome(), Some(Outcome::Completed(1)));
    assert!(matches!(*refused.lock(), Some(Err(WaitError::Cycle(_)))));
    pool.stop(StopWait::Forever);
}

#[test]
fn yield_now_respects_the_inline_depth_limit() {
    // Every link queues the next, then yields: a chain as deep as yields nest. It stops at the
    // limit, and the rest runs after, each link exactly once.
    let pool = pool(1);
    let release = hold_worker(&pool);
    let links = MAX_INLINE_DEPTH + 20;
    struct Chain {
        pool: Pool<u64>,
        runs: AtomicUsize,
        nested: AtomicUsize,
        peak: AtomicUsize,
    }
    fn link(chain: Arc<Chain>, left: usize) {
        let pool = chain.pool.clone();
        pool.submit(Priority::Normal, move |_| {
            chain.runs.fetch_add(1, Ordering::SeqCst);
            let now = chain.nested.fetch_add(1, Ordering::SeqCst) + 1;
            chain.peak.fetch_max(now, Ordering::SeqCst);
            if left > 1 {
                link(chain.clone(), left - 1);
            }
            let ran = yield_now();
            chain.nested.fetch_sub(1, Ordering::SeqCst);
            Ok(ran as u64)
        })
        .unwrap();
    }
    let chain = Arc::new(Chain {
        pool: pool.clone(),
        runs: AtomicUsize::new(0),
        nested: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    });
    link(chain.clone(), links);
    drop(release);
    collect(&pool, 1 + links);
    assert_eq!(chain.runs.load(Ordering::SeqCst), links);
    // The first link runs on the worker itself, and the limit's worth nested in it.
    assert_eq!(chain.peak.load(Ordering::SeqCst), MAX_INLINE_DEPTH + 1);
    pool.stop(StopWait::Forever);
}

#[test]
fn a_group_call_that_yields_skips_the_entries_of_its_own_group() {
    let pool = pool(2);
    let hold_a = hold_worker(&pool);
    let hold_b = hold_worker(&pool);
    // Two entries queued (one per worker); the first worker freed takes one, and its first call
    // yields while the other entry waits in the queue: it must not join its own group again.
    let group = pool
        .submit_group(
            Priority::Normal,
            3,
            |_, _| Ok(yield_now() as u64),
            |yields| yields.iter().sum(),
        )
        .unwrap();
    drop(hold_a);
    assert!(pool.wait(&group, Some(PATIENCE)).unwrap());
    assert_eq!(group.outcome(), Some(Outcome::Completed(0)));
    drop(hold_b);
    collect(&pool, 3);
    pool.stop(StopWait::Forever);
}

#[test]
fn yield_now_in_another_pools_task_run_inline_takes_nothing_off_this_pools_queue() {
    let a = pool(1);
    let b = pool(1);
    let hold_a = hold_worker(&a);
    // Queued on `a` (its only worker is held): `b`'s worker runs it inline, helping `a`.
    let inline = a
        .submit(Priority::Normal, |_| Ok(yield_now() as u64))
        .unwrap();
    let (go_tx, go_rx) = bounded::<()>(1);
    let (a2, inline2) = (a.clone(), inline.clone());
    let waiter = b
        .submit(Priority::Normal, move |_| {
            go_rx.recv().unwrap();
            Ok(u64::from(a2.help(&inline2)))
        })
        .unwrap();
    let queued_on_b = b.submit(Priority::Normal, |_| Ok(7)).unwrap();
    go_tx.send(()).unwrap();
    assert!(b.wait(&waiter, Some(PATIENCE)).unwrap());
    assert_eq!(
        inline.outcome(),
        Some(Outcome::Completed(0)),
        "a's task ran on b's worker, where it yields nothing"
    );
    assert!(
        b.wait(&queued_on_b, Some(PATIENCE)).unwrap(),
        "b's queued task was not taken and lost"
    );
    assert_eq!(queued_on_b.outcome(), Some(Outcome::Completed(7)));
    drop(hold_a);
}
