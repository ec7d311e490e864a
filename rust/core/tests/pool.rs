//! Pool behaviour with real threads and exact counts.
#![cfg(not(loom))]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam_channel::bounded;
use crossbeam_utils::Backoff;
use threadkit_core::pool::{StartError, StopReport, StopWait};
use threadkit_core::{DrainLimits, Outcome, Pool, Priority, Status, Task, current_task, drain};

fn pool(threads: usize) -> Pool<u64> {
    let pool = Pool::new();
    pool.start(threads, "test-worker-").unwrap();
    pool
}

/// Collects every completion until `count` arrived; returns (id, outcome) pairs. Outcomes are
/// copied, not taken: a task that waited for another may still be about to read its outcome.
fn collect(pool: &Pool<u64>, count: usize) -> Vec<(u64, Outcome<u64>)> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let task = pool
            .completions()
            .recv_timeout(Duration::from_secs(30))
            .expect("completion within 30 s");
        out.push((
            task.id(),
            task.outcome().expect("a delivered task has an outcome"),
        ));
        pool.collect(&task);
    }
    out
}

/// Submits a task that blocks its worker until the returned sender sends (or is dropped), so
/// that what is submitted next queues up behind it.
fn occupy_worker(pool: &Pool<u64>) -> crossbeam_channel::Sender<()> {
    let (release_tx, release_rx) = bounded::<()>(0);
    pool.submit(Priority::Normal, move |_| {
        let _ = release_rx.recv();
        Ok(0)
    })
    .unwrap();
    release_tx
}

#[test]
fn eight_producers_ten_thousand_tasks_each_complete_exactly_once() {
    let pool = pool(4);
    let runs = Arc::new(AtomicUsize::new(0));
    thread::scope(|s| {
        for producer in 0..8u64 {
            let (pool, runs) = (pool.clone(), runs.clone());
            s.spawn(move || {
                for i in 0..10_000u64 {
                    let runs = runs.clone();
                    pool.submit(Priority::Normal, move |_| {
                        runs.fetch_add(1, Ordering::Relaxed);
                        Ok(producer * 10_000 + i)
                    })
                    .unwrap();
                }
            });
        }
    });
    let done = collect(&pool, 80_000);
    assert_eq!(runs.load(Ordering::Relaxed), 80_000);
    let ids: HashSet<u64> = done.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 80_000, "every task completes exactly once");
    let values: HashSet<u64> = done
        .iter()
        .map(|(_, o)| match o {
            Outcome::Completed(v) => *v,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(values.len(), 80_000);
    assert!(
        pool.completions().try_recv().is_err(),
        "no extra completions"
    );
    let stats = pool.stats();
    assert_eq!(
        (stats.submitted, stats.completed, stats.pending),
        (80_000, 80_000, 0)
    );
    assert_eq!(pool.outstanding(), 0);
    pool.stop(StopWait::Forever);
}

#[test]
fn high_priority_runs_before_waiting_normal_tasks() {
    let pool = pool(1);
    let release_tx = occupy_worker(&pool);
    let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
    for (priority, tag) in [
        (Priority::Normal, 1),
        (Priority::Normal, 2),
        (Priority::High, 3),
        (Priority::High, 4),
    ] {
        let order = order.clone();
        pool.submit(priority, move |_| {
            order.lock().push(tag);
            Ok(tag)
        })
        .unwrap();
    }
    release_tx.send(()).unwrap();
    collect(&pool, 5);
    assert_eq!(*order.lock(), [3, 4, 1, 2]);
    pool.stop(StopWait::Forever);
}

#[test]
fn cancel_pending_and_running_tasks() {
    let pool = pool(1);
    let (started_tx, started_rx) = bounded::<()>(1);
    let running = pool
        .submit(Priority::Normal, move |state| {
            started_tx.send(()).unwrap();
            let backoff = Backoff::new();
            while !state.is_cancel_requested() {
                backoff.snooze();
            }
            Ok(1)
        })
        .unwrap();
    let pending = pool.submit(Priority::Normal, |_| Ok(2)).unwrap();
    started_rx.recv().unwrap();
    assert_eq!(
        pool.cancel(pending.id()),
        Some(threadkit_core::CancelOutcome::CancelledBeforeStart)
    );
    assert_eq!(
        pool.cancel(running.id()),
        Some(threadkit_core::CancelOutcome::Requested)
    );
    let mut done = collect(&pool, 2);
    done.sort_by_key(|(id, _)| *id);
    assert_eq!(
        done,
        [
            (running.id(), Outcome::Cancelled),
            (pending.id(), Outcome::Cancelled)
        ]
    );
    assert_eq!(pool.status_of(pending.id()), Some(Status::Cancelled));
    assert_eq!(pool.stats().cancelled, 2);
    assert_eq!(
        pool.cancel(running.id()),
        None,
        "collected tasks are no longer in flight"
    );
    pool.stop(StopWait::Forever);
}

/// `cancel_all` cancels the queued tasks before it asks the running one to stop: the other
/// order freed the only worker, which then ran queued tasks before their cancel came.
#[test]
fn cancel_all_runs_none_of_the_queued_tasks_even_as_the_running_one_stops_at_once() {
    let pool = pool(1);
    for round in 0..20 {
        let (started_tx, started_rx) = bounded::<()>(1);
        // Spins rather than sleeps, so that it returns the moment it is asked to stop.
        pool.submit(Priority::Normal, move |state| {
            started_tx.send(()).unwrap();
            while !state.is_cancel_requested() {
                std::hint::spin_loop();
            }
            Ok(0)
        })
        .unwrap();
        started_rx.recv().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..200 {
            let ran = ran.clone();
            pool.submit(Priority::Normal, move |_| {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok(1)
            })
            .unwrap();
        }
        assert_eq!(
            pool.cancel_all(),
            201,
            "round {round}: 200 queued, 1 running"
        );
        let done = collect(&pool, 201);
        assert!(
            done.iter()
                .all(|(_, outcome)| *outcome == Outcome::Cancelled)
        );
        assert_eq!(ran.load(Ordering::SeqCst), 0, "round {round}");
    }
    assert_eq!(pool.cancel_all(), 0, "nothing left");
    pool.stop(StopWait::Forever);
}

#[test]
fn stop_cancels_queued_tasks_and_refuses_new_ones() {
    let pool = pool(1);
    let release_tx = occupy_worker(&pool);
    for _ in 0..10 {
        pool.submit(Priority::Normal, |_| Ok(1)).unwrap();
    }
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        let _ = release_tx.send(());
    });
    pool.stop(StopWait::Forever);
    let done = collect(&pool, 11);
    let cancelled = done
        .iter()
        .filter(|(_, o)| *o == Outcome::Cancelled)
        .count();
    assert_eq!(
        cancelled, 11,
        "queued ones cancelled, running one asked to cancel"
    );
    assert!(pool.submit(Priority::Normal, |_| Ok(1)).is_err());
    assert_eq!(pool.worker_count(), 0);
}

#[test]
fn stop_start_cycles() {
    let pool = Pool::<u64>::new();
    for cycle in 0..20 {
        pool.start(2, "cycle-").unwrap();
        assert_eq!(pool.start(2, "cycle-"), Err(StartError::AlreadyRunning));
        for i in 0..10 {
            pool.submit(Priority::Normal, move |_| Ok(cycle * 10 + i))
                .unwrap();
        }
        pool.stop(StopWait::Forever);
    }
    // Every task either ran or was cancelled by the stop: 200 completions, none lost.
    assert_eq!(collect(&pool, 200).len(), 200);
    assert_eq!(pool.start(0, "x"), Err(StartError::InvalidThreadCount(0)));
    assert_eq!(
        pool.start(257, "x"),
        Err(StartError::InvalidThreadCount(257))
    );
}

#[test]
fn a_task_waiting_for_a_queued_task_runs_it_inline_instead_of_deadlocking() {
    let pool = pool(1);
    let release = occupy_worker(&pool);
    let inner = pool.submit(Priority::Normal, |_| Ok(2));
    let (pool2, inner) = (pool.clone(), inner.unwrap());
    // The only worker runs `outer` (high priority, so first), which waits for `inner`, still
    // queued behind it.
    let outer = pool
        .submit(Priority::High, move |_| {
            assert_eq!(pool2.wait(&inner, Some(Duration::from_secs(10))), Ok(true));
            match inner.outcome() {
                Some(Outcome::Completed(v)) => Ok(v * 10),
                other => Err(format!("{other:?}")),
            }
        })
        .unwrap();
    drop(release);
    let done = collect(&pool, 3);
    assert!(done.contains(&(outer.id(), Outcome::Completed(20))));
    pool.stop(StopWait::Forever);
}

#[test]
fn a_task_run_inline_by_a_waiting_task_is_a_second_run_on_the_same_busy_worker() {
    let pool = pool(1);
    let release = occupy_worker(&pool);
    let (seen_tx, seen_rx) = bounded(1);
    let pool2 = pool.clone();
    let inner = pool
        .submit(Priority::Normal, move |_| {
            let stats = pool2.stats();
            seen_tx.send((stats.running, stats.busy_workers)).unwrap();
            Ok(2)
        })
        .unwrap();
    let pool2 = pool.clone();
    pool.submit(Priority::High, move |_| {
        assert_eq!(pool2.wait(&inner, Some(Duration::from_secs(10))), Ok(true));
        Ok(1)
    })
    .unwrap();
    drop(release);
    assert_eq!(
        seen_rx.recv().unwrap(),
        (2, 1),
        "(running, busy_workers) inside the inline run"
    );
    collect(&pool, 3);
    let stats = pool.stats();
    assert_eq!((stats.running, stats.busy_workers), (0, 0));
    pool.stop(StopWait::Forever);
}

#[test]
fn busy_workers_counts_each_worker_running_a_task() {
    let pool = pool(3);
    let first = occupy_worker(&pool);
    let second = occupy_worker(&pool);
    // A worker counts itself busy a moment before the task leaves the pending count.
    let backoff = Backoff::new();
    let stats = loop {
        let stats = pool.stats();
        if stats.busy_workers >= 2 && stats.pending == 0 {
            break stats;
        }
        backoff.snooze();
    };
    assert_eq!((stats.running, stats.busy_workers), (2, 2));
    drop((first, second));
    collect(&pool, 2);
    assert_eq!(pool.stats().busy_workers, 0);
    pool.stop(StopWait::Forever);
}

#[test]
fn panics_fail_the_task_and_the_worker_lives_on() {
    let pool = pool(1);
    pool.submit(Priority::Normal, |_| panic!("kaboom")).unwrap();
    pool.submit(Priority::Normal, |_| Ok(5)).unwrap();
    let done = collect(&pool, 2);
    assert_eq!(
        done[0].1,
        Outcome::Failed("the task panicked: kaboom".into())
    );
    assert_eq!(done[1].1, Outcome::Completed(5));
    pool.stop(StopWait::Forever);
}

#[test]
fn current_task_reports_progress_and_is_none_elsewhere() {
    let pool = pool(1);
    assert!(current_task().is_none());
    let task = pool
        .submit(Priority::Normal, |_| {
            current_task().expect("on a worker").report_progress(0.5);
            Err("stop here".into())
        })
        .unwrap();
    collect(&pool, 1);
    assert_eq!(
        task.state().progress(),
        0.5,
        "a failed task keeps its last progress"
    );
    pool.stop(StopWait::Forever);
}

#[test]
fn main_thread_drain_respects_the_start_length() {
    let pool = pool(2);
    for i in 0..50 {
        pool.submit(Priority::Normal, move |_| Ok(i)).unwrap();
    }
    let backoff = Backoff::new();
    while pool.stats().completed < 50 {
        backoff.snooze();
    }
    let limits = DrainLimits {
        max_items: Some(20),
        budget: None,
    };
    let mut seen = 0;
    let report = drain(pool.completions(), limits, |task| {
        pool.collect(&task);
        seen += 1;
    });
    assert_eq!((report.processed, seen), (20, 20));
    assert_eq!(pool.outstanding(), 30);
    pool.stop(StopWait::Forever);
}

/// A group whose parts return `i * i` and whose combination checks their order and sums them.
fn submit_squares(pool: &Pool<u64>, count: usize, runs: &Arc<AtomicUsize>) -> Arc<Task<u64>> {
    let runs = runs.clone();
    pool.submit_group(
        Priority::Normal,
        count,
        move |i, _| {
            runs.fetch_add(1, Ordering::Relaxed);
            Ok((i * i) as u64)
        },
        |results| {
            assert!(
                results
                    .iter()
                    .enumerate()
                    .all(|(i, r)| *r == (i * i) as u64)
            );
            results.iter().sum()
        },
    )
    .unwrap()
}

#[test]
fn a_group_runs_every_index_once_over_all_workers() {
    let pool = pool(4);
    let runs = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(parking_lot::Mutex::new(HashSet::new()));
    let threads = Arc::new(parking_lot::Mutex::new(HashSet::new()));
    let (seen2, threads2) = (seen.clone(), threads.clone());
    let group = pool
        .submit_group(
            Priority::Normal,
            10_000,
            move |i, _| {
                assert!(seen2.lock().insert(i), "index {i} ran twice");
                threads2.lock().insert(thread::current().id());
                Ok(i as u64)
            },
            |results| results.iter().sum(),
        )
        .unwrap();
    let squares = submit_squares(&pool, 1000, &runs);
    let done = collect(&pool, 2);
    assert!(done.contains(&(group.id(), Outcome::Completed(10_000 * 9_999 / 2))));
    assert!(done.contains(&(squares.id(), Outcome::Completed(332_833_500))));
    assert_eq!(seen.lock().len(), 10_000);
    assert_eq!(runs.load(Ordering::Relaxed), 1000);
    assert!(!threads.lock().is_empty());
    assert_eq!(group.state().progress(), 1.0);
    let stats = pool.stats();
    assert_eq!((stats.submitted, stats.completed, stats.pending), (2, 2, 0));
    assert!(
        pool.completions().try_recv().is_err(),
        "a group completes once"
    );
    pool.stop(StopWait::Forever);
}

#[test]
fn groups_from_many_producers_each_complete_exactly_once() {
    let pool = pool(3);
    let runs = Arc::new(AtomicUsize::new(0));
    thread::scope(|s| {
        for _ in 0..4 {
            let (pool, runs) = (&pool, &runs);
            s.spawn(move || {
                for count in 0..200 {
                    submit_squares(pool, count % 17, runs);
                }
            });
        }
    });
    let done = collect(&pool, 800);
    let ids: HashSet<u64> = done.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 800);
    assert!(done.iter().all(|(_, o)| matches!(o, Outcome::Completed(_))));
    let expected: usize = (0..200).map(|c| c % 17).sum::<usize>() * 4;
    assert_eq!(runs.load(Ordering::Relaxed), expected);
    assert!(pool.completions().try_recv().is_err());
    pool.stop(StopWait::Forever);
}

#[test]
fn an_empty_group_completes_with_no_results() {
    let pool = pool(2);
    let group = pool
        .submit_group(
            Priority::Normal,
            0,
            |_, _| unreachable!(),
            |r| r.len() as u64 + 7,
        )
        .unwrap();
    assert_eq!(collect(&pool, 1), [(group.id(), Outcome::Completed(7))]);
    assert_eq!(group.state().progress(), 1.0);
    pool.stop(StopWait::Forever);
}

#[test]
fn a_failing_part_fails_the_group_and_skips_the_rest() {
    let pool = pool(1);
    let runs = Arc::new(AtomicUsize::new(0));
    let runs2 = runs.clone();
    let group = pool
        .submit_group(
            Priority::Normal,
            100,
            move |i, _| {
                runs2.fetch_add(1, Ordering::Relaxed);
                if i == 3 {
                    Err("bad tile".into())
                } else {
                    Ok(1)
                }
            },
            |_| unreachable!("a failed group is not combined"),
        )
        .unwrap();
    assert_eq!(
        collect(&pool, 1),
        [(
            group.id(),
            Outcome::Failed("part 3 failed: bad tile".into())
        )]
    );
    assert_eq!(
        runs.load(Ordering::Relaxed),
        4,
        "parts after the failure are skipped"
    );
    pool.stop(StopWait::Forever);
}

#[test]
fn a_cancelled_group_stops_claiming_parts() {
    let pool = pool(2);
    let (started_tx, started_rx) = bounded::<()>(1);
    let runs = Arc::new(AtomicUsize::new(0));
    let runs2 = runs.clone();
    let group = pool
        .submit_group(
            Priority::Normal,
            1_000_000,
            move |_, state| {
                runs2.fetch_add(1, Ordering::Relaxed);
                let _ = started_tx.try_send(());
                let backoff = Backoff::new();
                while !state.is_cancel_requested() {
                    backoff.snooze();
                }
                Ok(0)
            },
            |_| unreachable!("a cancelled group is not combined"),
        )
        .unwrap();
    started_rx.recv().unwrap();
    assert_eq!(
        pool.cancel(group.id()),
        Some(threadkit_core::CancelOutcome::Requested)
    );
    assert_eq!(collect(&pool, 1), [(group.id(), Outcome::Cancelled)]);
    assert!(
        runs.load(Ordering::Relaxed) <= 2,
        "at most the parts already running"
    );
    pool.stop(StopWait::Forever);
}

#[test]
fn stop_cancels_a_queued_group_once() {
    let pool = pool(2);
    let first = occupy_worker(&pool);
    let second = occupy_worker(&pool);
    let backoff = Backoff::new();
    while pool.stats().running < 2 {
        backoff.snooze();
    }
    let runs = Arc::new(AtomicUsize::new(0));
    submit_squares(&pool, 50, &runs);
    let report = pool.stop(StopWait::No);
    assert_eq!(report.cancelled, 1, "one group, however many queue entries");
    assert_eq!(
        report.still_running, 0,
        "a stop that does not wait counts none"
    );
    drop((first, second));
    let done = collect(&pool, 3);
    assert_eq!(
        done.iter()
            .filter(|(_, o)| *o == Outcome::Cancelled)
            .count(),
        3
    );
    assert_eq!(runs.load(Ordering::Relaxed), 0);
}

#[test]
fn a_worker_waiting_for_a_queued_group_joins_it() {
    let pool = pool(1);
    let release = occupy_worker(&pool);
    let runs = Arc::new(AtomicUsize::new(0));
    let group = submit_squares(&pool, 100, &runs);
    let pool2 = pool.clone();
    let outer = pool
        .submit(Priority::High, move |_| {
            assert_eq!(pool2.wait(&group, Some(Duration::from_secs(10))), Ok(true));
            match group.outcome() {
                Some(Outcome::Completed(sum)) => Ok(sum),
                other => Err(format!("{other:?}")),
            }
        })
        .unwrap();
    drop(release);
    let done = collect(&pool, 3);
    assert!(done.contains(&(outer.id(), Outcome::Completed(328_350))));
    pool.stop(StopWait::Forever);
}

#[test]
fn a_bounded_stop_leaves_a_task_that_ignores_cancellation_running() {
    let pool = pool(2);
    let (release_tx, release_rx) = bounded::<()>(0);
    let (started_tx, started_rx) = bounded::<()>(1);
    pool.submit(Priority::Normal, move |_| {
        started_tx.send(()).unwrap();
        // Never looks at its cancellation flag.
        let _ = release_rx.recv();
        Ok(1)
    })
    .unwrap();
    started_rx.recv().unwrap();
    let report = pool.stop(StopWait::Within(Duration::from_millis(50)));
    assert_eq!(
        report,
        StopReport {
            cancelled: 0,
            still_running: 1
        }
    );
    assert!(!pool.is_running());
    drop(release_tx);
    assert_eq!(collect(&pool, 1)[0].1, Outcome::Cancelled);
    // The pool can start again while the detached worker winds down.
    pool.start(1, "again-").unwrap();
    pool.submit(Priority::Normal, |_| Ok(3)).unwrap();
    assert_eq!(collect(&pool, 1)[0].1, Outcome::Completed(3));
    let report = pool.stop(StopWait::Within(Duration::from_secs(30)));
    assert_eq!(report, StopReport::default());
}

#[test]
fn cancelling_a_running_task_fires_its_interrupt_for_the_blocking_calls_inside_it() {
    let pool = pool(1);
    let queue = Arc::new(threadkit_core::channel::Channel::<u32>::unbounded());
    let (entered_tx, entered) = bounded(1);
    let q = queue.clone();
    let task = pool
        .submit(Priority::Normal, move |state| {
            entered_tx.send(()).unwrap();
            // Blocks until the cancel: nothing is ever pushed.
            let popped = q.pop_interruptible(None, &[state.cancel_interrupt()]);
            assert_eq!(popped, Err(threadkit_core::channel::PopError::Interrupted));
            Ok(1)
        })
        .unwrap();
    entered.recv_timeout(Duration::from_secs(30)).unwrap();
    pool.cancel(task.id());
    let done = collect(&pool, 1);
    assert_eq!(done, vec![(task.id(), Outcome::Cancelled)]);
}

#[test]
fn join_all_waits_for_workers_a_stop_left_running_and_says_what_runs_meanwhile() {
    let pool = pool(1);
    let (release_tx, release) = bounded::<()>(0);
    let (entered_tx, entered) = bounded(1);
    let blind = pool
        .submit(Priority::Normal, move |_| {
            entered_tx.send(()).unwrap();
            // Blind to cancellation: returns only when released.
            let _ = release.recv();
            Ok(1)
        })
        .unwrap();
    blind.set_label(Box::new(|| "blind work".into()));
    entered.recv_timeout(Duration::from_secs(30)).unwrap();
    let report = pool.stop(StopWait::Within(Duration::from_millis(10)));
    assert_eq!(report.still_running, 1);
    let mut nags = Vec::new();
    let mut release_tx = Some(release_tx);
    pool.join_all(
        Duration::from_millis(20),
        Duration::from_millis(20),
        |_, running| {
            nags.push(running.iter().map(|task| task.label()).collect::<Vec<_>>());
            if nags.len() == 3 {
                release_tx.take();
            }
        },
    );
    assert_eq!(
        nags.len(),
        3,
        "it waited past three nags, until the task returned"
    );
    let label = format!("task {}: blind work", blind.id());
    assert!(nags.iter().all(|running| running == &vec![label.clone()]));
    assert!(blind.status().is_finished());
}

#[test]
fn a_task_that_drops_its_work_ends_cancelled_and_is_counted_as_dropped() {
    let pool = pool(1);
    let dropped = pool
        .submit(Priority::Normal, |state| {
            state.drop_work();
            Err("what it worked on is gone".into())
        })
        .unwrap();
    let kept = pool.submit(Priority::Normal, |_| Ok(1)).unwrap();
    pool.cancel(kept.id());
    let done = collect(&pool, 2);
    assert!(done.contains(&(dropped.id(), Outcome::Cancelled)));
    let stats = pool.stats();
    assert_eq!(stats.dropped, 1, "only the task that dropped its work");
    assert_eq!(stats.cancelled + stats.completed, 2);
    pool.stop(StopWait::Forever);
}
