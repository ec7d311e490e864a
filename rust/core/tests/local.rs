//! Tasks queued for the thread that runs them (`Pool::set_local` / `Pool::run_local`), with exact
//! counts.
#![cfg(not(loom))]

use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use threadkit_core::pool::StopWait;
use threadkit_core::{DrainLimits, Outcome, Pool, Priority, Status, current_task};

fn local_pool(workers: usize) -> Pool<u64> {
    let pool = Pool::new();
    if workers > 0 {
        pool.start(workers, "local-test-").unwrap();
    }
    pool.set_local(true);
    pool
}

fn no_limits() -> DrainLimits {
    DrainLimits::default()
}

#[test]
fn local_tasks_run_only_on_the_thread_that_runs_them_even_with_idle_workers() {
    let pool = local_pool(2);
    let threads = Arc::new(Mutex::new(Vec::<ThreadId>::new()));
    let tasks: Vec<_> = (0..10u64)
        .map(|i| {
            let threads = threads.clone();
            pool.submit(Priority::Normal, move |_| {
                threads.lock().unwrap().push(thread::current().id());
                Ok(i * 2)
            })
            .unwrap()
        })
        .collect();
    assert!(tasks.iter().all(|t| t.status() == Status::Pending));
    assert_eq!(pool.stats().pending, 10);
    assert!(pool.has_local());
    assert_eq!(pool.run_local(no_limits()), 10);
    assert!(!pool.has_local());
    let me = thread::current().id();
    assert_eq!(threads.lock().unwrap().len(), 10);
    assert!(threads.lock().unwrap().iter().all(|t| *t == me));
    for (i, task) in tasks.iter().enumerate() {
        assert_eq!(task.outcome(), Some(Outcome::Completed(i as u64 * 2)));
    }
    assert_eq!(pool.completions().len(), 10, "each delivers its completion");
    let stats = pool.stats();
    assert_eq!(
        (stats.submitted, stats.completed, stats.pending),
        (10, 10, 0)
    );
}

#[test]
fn a_local_pool_needs_no_workers() {
    let pool = local_pool(0);
    let task = pool.submit(Priority::Normal, |_| Ok(7)).unwrap();
    assert!(!pool.is_running());
    assert_eq!(pool.run_local(no_limits()), 1);
    assert_eq!(task.outcome(), Some(Outcome::Completed(7)));
}

#[test]
fn high_priority_first_then_submission_order_within_the_limits() {
    let pool = local_pool(0);
    let order = Arc::new(Mutex::new(Vec::new()));
    for (name, priority) in [
        (1u64, Priority::Normal),
        (2, Priority::Normal),
        (3, Priority::High),
        (4, Priority::Normal),
    ] {
        let order = order.clone();
        pool.submit(priority, move |_| {
            order.lock().unwrap().push(name);
            Ok(name)
        })
        .unwrap();
    }
    let two = DrainLimits {
        max_items: Some(2),
        budget: None,
    };
    assert_eq!(pool.run_local(two), 2);
    assert_eq!(*order.lock().unwrap(), vec![3, 1]);
    // A zero budget still runs one task per call, so work always moves.
    let none_left = DrainLimits {
        max_items: None,
        budget: Some(Duration::ZERO),
    };
    assert_eq!(pool.run_local(none_left), 1);
    assert_eq!(pool.run_local(no_limits()), 1);
    assert_eq!(*order.lock().unwrap(), vec![3, 1, 2, 4]);
    assert_eq!(pool.run_local(no_limits()), 0);
}

#[test]
fn tasks_submitted_by_a_running_local_task_wait_for_the_next_run() {
    let pool = local_pool(0);
    let inner = pool.clone();
    pool.submit(Priority::Normal, move |_| {
        inner.submit(Priority::Normal, |_| Ok(2)).unwrap();
        Ok(1)
    })
    .unwrap();
    assert_eq!(pool.run_local(no_limits()), 1);
    assert_eq!(pool.stats().pending, 1);
    assert_eq!(pool.run_local(no_limits()), 1);
    assert_eq!(pool.stats().completed, 2);
}

#[test]
fn a_local_task_is_the_current_task_and_sees_its_cancel() {
    let pool = local_pool(0);
    let task = pool
        .submit(Priority::Normal, |state| {
            let current = current_task().expect("a running local task is the current task");
            assert_eq!(current.id(), state.id());
            state.report_progress(0.5);
            Ok(u64::from(state.is_cancel_requested()))
        })
        .unwrap();
    assert_eq!(pool.run_local(no_limits()), 1);
    assert_eq!(task.outcome(), Some(Outcome::Completed(0)));
    assert!(current_task().is_none(), "cleared after the run");
    let cancelled = pool.submit(Priority::Normal, |_| Ok(1)).unwrap();
    pool.cancel(cancelled.id());
    assert_eq!(
        pool.run_local(no_limits()),
        1,
        "taken from the queue, not run"
    );
    assert_eq!(cancelled.status(), Status::Cancelled);
    assert_eq!(pool.stats().cancelled, 1);
}

#[test]
fn a_local_group_runs_its_calls_in_index_order_on_this_thread() {
    let pool = local_pool(2);
    let order = Arc::new(Mutex::new(Vec::new()));
    let seen = order.clone();
    let me = thread::current().id();
    let group = pool
        .submit_group(
            Priority::Normal,
            5,
            move |i, _| {
                assert_eq!(thread::current().id(), me);
                seen.lock().unwrap().push(i);
                Ok(i as u64)
            },
            |results| results.into_iter().sum(),
        )
        .unwrap();
    assert_eq!(
        pool.run_local(no_limits()),
        1,
        "one queue entry for the whole group"
    );
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    assert_eq!(group.outcome(), Some(Outcome::Completed(10)));
}

#[test]
fn stop_cancels_local_tasks_and_the_mode_applies_to_later_submissions() {
    let pool = local_pool(1);
    let local = pool.submit(Priority::Normal, |_| Ok(1)).unwrap();
    pool.set_local(false);
    let on_worker = pool
        .submit(Priority::Normal, |_| {
            Ok(thread::current().name().map_or(0, |_| 2))
        })
        .unwrap();
    assert!(pool.wait(&on_worker, None).unwrap(), "a worker runs it");
    assert_eq!(on_worker.outcome(), Some(Outcome::Completed(2)));
    assert_eq!(
        local.status(),
        Status::Pending,
        "still queued for run_local"
    );
    let report = pool.stop(StopWait::Forever);
    assert_eq!(report.cancelled, 1);
    assert_eq!(local.status(), Status::Cancelled);
    assert_eq!(pool.run_local(no_limits()), 0);
}

#[test]
fn low_priority_runs_after_normal_and_high() {
    let pool = local_pool(0);
    let order = Arc::new(Mutex::new(Vec::new()));
    for (name, priority) in [
        ("low", Priority::Low),
        ("normal", Priority::Normal),
        ("high", Priority::High),
        ("low2", Priority::Low),
    ] {
        let order = order.clone();
        pool.submit(priority, move |_| {
            order.lock().unwrap().push(name);
            Ok(0)
        })
        .unwrap();
    }
    assert_eq!(pool.run_local(no_limits()), 4);
    assert_eq!(*order.lock().unwrap(), ["high", "normal", "low", "low2"]);
}

#[test]
fn a_delayed_local_task_is_held_until_due_then_run_by_run_local() {
    let pool = local_pool(0);
    let task = pool
        .submit_delayed(Priority::Normal, Duration::from_millis(50), |_| Ok(5))
        .unwrap();
    let due = pool.next_local_due().expect("a delayed task waits");
    assert_eq!((pool.stats().pending, pool.stats().delayed), (1, 1));
    assert!(!pool.help(&task), "a waiting thread may not run it early");
    while std::time::Instant::now() < due {
        assert_eq!(pool.run_local(no_limits()), 0, "not before it is due");
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(pool.run_local(no_limits()), 1);
    assert_eq!(task.outcome(), Some(Outcome::Completed(5)));
    assert_eq!(pool.next_local_due(), None);
    assert_eq!((pool.stats().pending, pool.stats().delayed), (0, 0));
}

#[test]
fn stop_cancels_delayed_local_tasks_and_counts_them() {
    let pool = local_pool(0);
    let task = pool
        .submit_delayed(Priority::Low, Duration::from_secs(3600), |_| Ok(1))
        .unwrap();
    assert_eq!(pool.stop(StopWait::Forever).cancelled, 1);
    assert_eq!(task.status(), Status::Cancelled);
    let stats = pool.stats();
    assert_eq!((stats.pending, stats.delayed, stats.cancelled), (0, 0, 1));
    assert_eq!(pool.next_local_due(), None);
}

#[test]
fn cancelled_delayed_local_tasks_are_let_go_at_the_next_run_local() {
    let pool = local_pool(0);
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let task = pool
                .submit_delayed(Priority::Normal, Duration::from_secs(3600), |_| Ok(1))
                .unwrap();
            pool.cancel(task.id());
            assert_eq!(pool.run_local(no_limits()), 0);
            task
        })
        .collect();
    assert_eq!(pool.next_local_due(), None, "nothing will fall due");
    for finished in pool.completions().try_iter() {
        pool.collect(&finished);
    }
    assert!(
        tasks.iter().all(|task| Arc::strong_count(task) == 1),
        "once collected, kept by the caller only"
    );
    let stats = pool.stats();
    assert_eq!(
        (stats.pending, stats.delayed, stats.cancelled),
        (0, 0, 1000)
    );
    assert_eq!(pool.stop(StopWait::Forever).cancelled, 0);
}

/// Tasks queued for `run_local` are no work for the workers: a worker that blocks while one
/// waits is not a stall, so it needs no spare worker (here none may be added, and the wait
/// would be refused).
#[test]
fn a_worker_blocking_while_local_tasks_wait_needs_no_spare() {
    let pool = Pool::<u64>::with_max_spares(0);
    pool.start(1, "local-stall-").unwrap();
    pool.set_local(true);
    let local = pool.submit(Priority::Normal, |_| Ok(1)).unwrap();
    pool.set_local(false);
    let delayed = pool
        .submit_delayed(Priority::Normal, Duration::from_secs(3600), |_| Ok(2))
        .unwrap();
    let (entered_tx, entered_rx) = crossbeam_channel::bounded(1);
    let (result_tx, result_rx) = crossbeam_channel::bounded(1);
    let waiter = {
        let (pool, delayed) = (pool.clone(), delayed.clone());
        pool.clone()
            .submit(Priority::Normal, move |_| {
                let waited = pool.wait_unless(&delayed, None, || {
                    let _ = entered_tx.try_send(());
                    false
                });
                result_tx.send(waited).unwrap();
                Ok(0)
            })
            .unwrap()
    };
    crossbeam_channel::select! {
        recv(entered_rx) -> _ => {}
        recv(result_rx) -> refused => panic!("the wait was refused: {refused:?}"),
    }
    pool.cancel(delayed.id());
    assert_eq!(result_rx.recv().unwrap(), Ok(true));
    assert!(pool.wait(&waiter, None).unwrap());
    assert_eq!(pool.stats().spare_workers, 0);
    assert_eq!(pool.run_local(no_limits()), 1);
    assert_eq!(local.outcome(), Some(Outcome::Completed(1)));
    pool.stop(StopWait::Forever);
}
