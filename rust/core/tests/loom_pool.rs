//! Loom models of the worker pool: its real code (queues, worker loop, stop, cancel, waits, inline
//! runs) under every interleaving of one worker and one or two other threads. Run by
//! `RUSTFLAGS="--cfg loom" cargo test -p threadkit-core --test loom_pool --release` (which
//! `cargo xtask test` does). Under loom the pool's channels are the test double of
//! `sync::channel`, and its worker is a loom thread.
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use threadkit_core::pool::StopWait;
use threadkit_core::{CancelOutcome, Outcome, Pool, Priority, Status, Task};

/// Counts, across a model's executions, those in which each of two outcomes happened: both must,
/// or the model missed the race it is about.
#[derive(Default)]
struct Seen([std::sync::atomic::AtomicUsize; 2]);

impl Seen {
    fn record(&self, first: bool) {
        self.0[usize::from(!first)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn assert_both(&self, what: &str) {
        let [a, b] = &self.0;
        let counts = (
            a.load(std::sync::atomic::Ordering::Relaxed),
            b.load(std::sync::atomic::Ordering::Relaxed),
        );
        assert!(counts.0 > 0 && counts.1 > 0, "{what}: {counts:?}");
    }
}

/// A pool with one worker.
fn pool() -> Pool<u32> {
    let pool = Pool::new();
    pool.start(1, "loom-worker-").unwrap();
    pool
}

/// A job that counts its runs in `runs` and returns `value`.
fn counted(
    runs: &Arc<AtomicUsize>,
    value: u32,
) -> impl FnOnce(&threadkit_core::TaskState) -> Result<u32, String> + Send + 'static {
    let runs = runs.clone();
    move |_| {
        runs.fetch_add(1, Ordering::SeqCst);
        Ok(value)
    }
}

/// Stops the pool, waiting for its worker; collects every completion delivered and returns
/// them. Checks that nothing is left pending or running.
fn stop_and_collect(pool: &Pool<u32>) -> Vec<std::sync::Arc<Task<u32>>> {
    let report = pool.stop(StopWait::Forever);
    assert_eq!(report.still_running, 0);
    let completions: Vec<_> = pool.completions().try_iter().collect();
    for task in &completions {
        pool.collect(task);
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.pending, stats.running, stats.busy_workers),
        (0, 0, 0)
    );
    assert_eq!(pool.outstanding(), 0);
    completions
}

/// A submitted task runs on the worker once; the submitter's wait sees its result, and its
/// completion is delivered once.
#[test]
fn submit_runs_on_the_worker() {
    loom::model(|| {
        let pool = pool();
        let runs = Arc::new(AtomicUsize::new(0));
        let task = pool.submit(Priority::Normal, counted(&runs, 7)).unwrap();
        assert_eq!(pool.wait(&task, None), Ok(true));
        assert_eq!(task.outcome(), Some(Outcome::Completed(7)));
        let completions = stop_and_collect(&pool);
        assert_eq!(completions.len(), 1);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let stats = pool.stats();
        assert_eq!(
            (stats.submitted, stats.completed, stats.cancelled),
            (1, 1, 0)
        );
    });
}

/// `Pool::cancel` racing the worker's start: either the cancel came first (the job never
/// runs, the task ends Cancelled) or the job ran; one completion either way.
#[test]
fn cancel_racing_start_has_exactly_one_winner() {
    let seen = std::sync::Arc::new(Seen::default());
    let record = seen.clone();
    loom::model(move || {
        let pool = pool();
        let runs = Arc::new(AtomicUsize::new(0));
        let task = pool.submit(Priority::Normal, counted(&runs, 7)).unwrap();
        let cancel = pool.cancel(task.id()).expect("not collected yet");
        record.record(cancel == CancelOutcome::CancelledBeforeStart);
        assert_eq!(pool.wait(&task, None), Ok(true));
        let ran = runs.load(Ordering::SeqCst);
        match cancel {
            CancelOutcome::CancelledBeforeStart => {
                assert_eq!(ran, 0);
                assert_eq!(task.status(), Status::Cancelled);
            }
            CancelOutcome::Requested => {
                assert_eq!(ran, 1);
                assert_eq!(task.status(), Status::Cancelled);
            }
            CancelOutcome::TooLate => {
                assert_eq!(ran, 1);
                assert_eq!(task.status(), Status::Completed);
            }
        }
        let completions = stop_and_collect(&pool);
        assert_eq!(completions.len(), 1);
        assert_eq!(runs.load(Ordering::SeqCst), ran, "never run after the stop");
        let stats = pool.stats();
        assert_eq!(stats.completed + stats.cancelled, 1);
    });
    seen.assert_both("cancelled before the start, and after");
}

/// `Pool::stop` while a task is queued, racing the worker that would take it: the task is
/// cancelled before it starts or it runs, once, with one completion, and the counters end at
/// zero. A run that the stop catches is asked to cancel, so it may end Cancelled too. The stop's
/// report counts the cancel when the stop drained the task from the queue; when the worker had
/// just taken it, the worker sees the stop and cancels it (counted in the stats only).
#[test]
fn stop_cancels_a_queued_task_exactly_once() {
    let seen = std::sync::Arc::new(Seen::default());
    let record = seen.clone();
    loom::model(move || {
        let pool = pool();
        let runs = Arc::new(AtomicUsize::new(0));
        let task = pool.submit(Priority::Normal, counted(&runs, 7)).unwrap();
        let report = pool.stop(StopWait::Forever);
        assert_eq!(report.still_running, 0);
        let ran = runs.load(Ordering::SeqCst);
        assert!(ran <= 1);
        record.record(ran == 0);
        if ran == 0 {
            assert_eq!(task.status(), Status::Cancelled);
        } else {
            assert_eq!(
                report.cancelled, 0,
                "a task that ran was not cancelled before it started"
            );
        }
        let completions = stop_and_collect(&pool);
        assert_eq!(completions.len(), 1);
        let stats = pool.stats();
        assert!(report.cancelled as u64 <= stats.cancelled);
        assert_eq!(stats.completed + stats.cancelled, 1);
        assert_eq!(stats.completed == 1, task.status() == Status::Completed);
    });
    seen.assert_both("cancelled by the stop, and ran");
}

/// A thread that is not the submitter waits for the task: it wakes (no lost wake-up: loom
/// would report the waiter asleep for ever as a deadlock) and sees the result.
#[test]
fn a_waiter_on_another_thread_sees_the_result() {
    loom::model(|| {
        let pool = pool();
        let task = pool.submit(Priority::Normal, |_| Ok(7)).unwrap();
        let waiter = {
            let (pool, task) = (pool.clone(), task.clone());
            thread::spawn(move || {
                assert_eq!(pool.wait(&task, None), Ok(true));
                task.outcome()
            })
        };
        assert_eq!(waiter.join().unwrap(), Some(Outcome::Completed(7)));
        assert_eq!(stop_and_collect(&pool).len(), 1);
    });
}

/// A waiter that is not a worker runs a queued task itself when the worker is busy
/// (`Pool::help`), racing the worker that takes the same task from its queue: the task runs
/// exactly once, and each task is delivered once.
#[test]
fn an_inline_run_racing_the_worker_runs_the_task_once() {
    let seen = std::sync::Arc::new(Seen::default());
    let record = seen.clone();
    loom::model(move || {
        let pool = pool();
        let runs = Arc::new(AtomicUsize::new(0));
        let first = pool.submit(Priority::Normal, |_| Ok(1)).unwrap();
        let second = pool.submit(Priority::Normal, counted(&runs, 2)).unwrap();
        record.record(pool.help(&second));
        assert_eq!(pool.wait(&second, None), Ok(true));
        assert_eq!(second.outcome(), Some(Outcome::Completed(2)));
        assert_eq!(pool.wait(&first, None), Ok(true));
        let completions = stop_and_collect(&pool);
        assert_eq!(completions.len(), 2);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let stats = pool.stats();
        assert_eq!((stats.completed, stats.cancelled), (2, 0));
    });
    seen.assert_both("run inline by the waiter, and not");
}
