//! Waits that cannot overflow a stack or deadlock: bounded inline runs, spare workers, the
//! wait-for graph across pools, and a non-worker thread running the task it waits for. Real
//! threads, exact counts.
#![cfg(not(loom))]

use std::cell::Cell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use threadkit_core::pool::{MAX_INLINE_DEPTH, StopWait};
use threadkit_core::{Outcome, Pool, Priority, Status, Task, TaskRef, WaitError};

const LONG: Option<Duration> = Some(Duration::from_secs(60));

fn started(threads: usize, pool: Pool<u64>) -> Pool<u64> {
    pool.start(threads, "waits-").unwrap();
    pool
}

/// Every completion until `count` arrived, each task collected.
fn collect(pool: &Pool<u64>, count: usize) -> Vec<Arc<Task<u64>>> {
    (0..count)
        .map(|_| {
            let task = pool
                .completions()
                .recv_timeout(Duration::from_secs(60))
                .expect("completion within 60 s");
            pool.collect(&task);
            task
        })
        .collect()
}

fn count(tasks: &[Arc<Task<u64>>], status: Status) -> usize {
    tasks.iter().filter(|t| t.status() == status).count()
}

/// Polls `done` (generously bounded) for what settles after the tasks ended.
fn eventually(done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    false
}

thread_local! {
    /// How many links the current thread is running, nested.
    static NESTED: Cell<usize> = const { Cell::new(0) };
}

/// What the links of a chain share: the pool, the length, the deepest nesting seen on one thread
/// and the threads that ran links.
struct Chain {
    pool: Pool<u64>,
    length: u64,
    deepest: AtomicUsize,
    threads: Mutex<HashSet<thread::ThreadId>>,
}

/// Link `i` of a chain: queues link `i + 1`, waits for it and returns its result + 1; the last
/// returns 0: a chain of tasks each waiting for the next.
fn link(chain: Arc<Chain>, i: u64) -> Result<u64, String> {
    let depth = NESTED.get() + 1;
    NESTED.set(depth);
    chain.deepest.fetch_max(depth, Ordering::Relaxed);
    chain.threads.lock().unwrap().insert(thread::current().id());
    let result = if i == chain.length {
        Ok(0)
    } else {
        let next_chain = chain.clone();
        let next = chain
            .pool
            .submit(Priority::Normal, move |_| link(next_chain, i + 1))
            .map_err(|_| "stopped".to_string())?;
        match chain.pool.wait(&next, LONG) {
            Ok(true) => match next.outcome() {
                Some(Outcome::Completed(n)) => Ok(n + 1),
                Some(Outcome::Failed(message)) => Err(message),
                other => Err(format!("{other:?}")),
            },
            Ok(false) => Err("timed out".into()),
            Err(error) => Err(error.to_string()),
        }
    };
    NESTED.set(depth - 1);
    result
}

fn chain(pool: Pool<u64>, length: u64) -> (Arc<Chain>, Arc<Task<u64>>) {
    let chain = Arc::new(Chain {
        pool: pool.clone(),
        length,
        deepest: AtomicUsize::new(0),
        threads: Mutex::new(HashSet::new()),
    });
    let first_chain = chain.clone();
    let first = pool
        .submit(Priority::Normal, move |_| link(first_chain, 0))
        .unwrap();
    (chain, first)
}

#[test]
fn a_chain_of_ten_thousand_tasks_each_waiting_for_the_next_completes_on_two_workers() {
    let pool = started(2, Pool::new());
    let (chain, first) = chain(pool.clone(), 10_000);
    let done = collect(&pool, 10_001);
    assert_eq!(count(&done, Status::Completed), 10_001);
    assert_eq!(first.outcome(), Some(Outcome::Completed(10_000)));
    // The first link of each thread runs at depth 1, and up to MAX_INLINE_DEPTH more inside it.
    assert!(chain.deepest.load(Ordering::Relaxed) <= MAX_INLINE_DEPTH + 1);
    let threads = chain.threads.lock().unwrap().len();
    assert!(
        threads >= 10_001 / (MAX_INLINE_DEPTH + 1),
        "{threads} threads ran the links: segments of at most {} links",
        MAX_INLINE_DEPTH + 1
    );
    assert!(
        eventually(|| pool.stats().spare_workers == 0),
        "idle spares retire"
    );
    let stats = pool.stats();
    assert_eq!(
        (stats.pending, stats.running, stats.busy_workers),
        (0, 0, 0)
    );
    assert_eq!(pool.stop(StopWait::Forever).still_running, 0);
}

#[test]
fn past_the_spare_limit_the_wait_needing_one_more_worker_is_refused_not_hung() {
    let pool = started(1, Pool::with_max_spares(1));
    let segment = MAX_INLINE_DEPTH as u64 + 1;
    // The worker runs one segment, the one spare the next; the last link of that one finds every
    // thread blocked and no spare left to run the link it queued.
    let length = 2 * segment + 40;
    let (chain, first) = chain(pool.clone(), length);
    let done = collect(&pool, length as usize + 1);
    let refused = WaitError::NoWorkerLeft { spares: 1 }.to_string();
    assert_eq!(first.outcome(), Some(Outcome::Failed(refused)));
    assert_eq!(
        count(&done, Status::Failed),
        2 * segment as usize,
        "every link of the two segments failed with the refusal"
    );
    // The link left queued runs once a worker is free: it and the rest of the chain complete.
    assert_eq!(count(&done, Status::Completed), 41);
    assert!(
        chain.threads.lock().unwrap().len() <= 2,
        "never more than the one spare"
    );
    pool.stop(StopWait::Forever);
}

#[test]
fn a_task_queued_while_every_worker_waits_on_another_pool_gets_a_spare() {
    let (p, q) = (started(1, Pool::new()), started(1, Pool::new()));
    assert_eq!(needs_a_spare(&p, &q), Some(Outcome::Completed(51)));
    p.stop(StopWait::Forever);
    q.stop(StopWait::Forever);
}

#[test]
fn a_restarted_pool_forgets_the_spares_of_its_last_run() {
    let (p, q) = (started(1, Pool::new()), started(1, Pool::new()));
    assert_eq!(needs_a_spare(&p, &q), Some(Outcome::Completed(51)));
    // At once: the spare is still alive (it retires after 100 ms without work), so the stop ends it.
    p.stop(StopWait::Forever);
    assert_eq!(
        p.stats().spare_workers,
        0,
        "every spare exited with the stop"
    );
    p.start(1, "waits-").unwrap();
    assert_eq!(
        needs_a_spare(&p, &q),
        Some(Outcome::Completed(51)),
        "the restarted pool adds the spare it needs again"
    );
    p.stop(StopWait::Forever);
    q.stop(StopWait::Forever);
}

/// P's only worker waits for Q's task, which queues a task on P and waits for it: without a
/// spare worker for P nothing would ever run it. Returns the outer task's outcome.
fn needs_a_spare(p: &Pool<u64>, q: &Pool<u64>) -> Option<Outcome<u64>> {
    let (p2, q2) = (p.clone(), q.clone());
    let outer = p
        .submit(Priority::Normal, move |_| {
            let p3 = p2.clone();
            let middle = q2
                .submit(Priority::Normal, move |_| {
                    let inner = p3.submit(Priority::Normal, |_| Ok(5)).unwrap();
                    assert_eq!(p3.wait(&inner, LONG), Ok(true));
                    match inner.outcome() {
                        Some(Outcome::Completed(n)) => Ok(n * 10),
                        other => Err(format!("{other:?}")),
                    }
                })
                .unwrap();
            assert_eq!(q2.wait(&middle, LONG), Ok(true));
            match middle.outcome() {
                Some(Outcome::Completed(n)) => Ok(n + 1),
                other => Err(format!("{other:?}")),
            }
        })
        .unwrap();
    collect(q, 1);
    collect(p, 2);
    outer.outcome()
}

/// A task of `pool` that gets the task of `other` to wait for from `awaited` and waits for it:
/// returns 1 once the wait ended, or 0 after sending the refusal to `refused`.
fn waiter(
    pool: &Pool<u64>,
    other: Pool<u64>,
    awaited: Receiver<Arc<Task<u64>>>,
    refused: Sender<WaitError>,
) -> Arc<Task<u64>> {
    pool.submit(Priority::Normal, move |_| {
        let task = awaited.recv().unwrap();
        match other.wait(&task, LONG) {
            Ok(finished) => Ok(finished as u64),
            Err(error) => {
                refused.send(error).unwrap();
                Ok(0)
            }
        }
    })
    .unwrap()
}

/// `n` pools of one worker each, task i of pool i waiting for task i+1 of pool i+1 and the last
/// for the first: exactly one wait is refused, naming the whole cycle; every task ends.
fn cycle_of(n: usize) {
    let pools: Vec<Pool<u64>> = (0..n).map(|_| started(1, Pool::new())).collect();
    for (i, pool) in pools.iter().enumerate() {
        pool.set_name(format!("'P{i}'"));
    }
    let (refused_tx, refused_rx) = unbounded();
    let mut senders = Vec::new();
    let tasks: Vec<Arc<Task<u64>>> = (0..n)
        .map(|i| {
            let (to_wait_for, awaited) = bounded(1);
            senders.push(to_wait_for);
            let other = pools[(i + 1) % n].clone();
            waiter(&pools[i], other, awaited, refused_tx.clone())
        })
        .collect();
    for (i, sender) in senders.iter().enumerate() {
        sender.send(tasks[(i + 1) % n].clone()).unwrap();
    }
    let results: Vec<u64> = pools
        .iter()
        .zip(&tasks)
        .map(|(pool, task)| {
            collect(pool, 1);
            match task.outcome() {
                Some(Outcome::Completed(n)) => n,
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert_eq!(
        results.iter().filter(|&&r| r == 0).count(),
        1,
        "exactly one wait refused: {results:?}"
    );
    let Ok(WaitError::Cycle(cycle)) = refused_rx.try_recv() else {
        panic!("the refusal is a cycle")
    };
    let closer = results.iter().position(|&r| r == 0).unwrap();
    let ids: Vec<TaskRef> = cycle.tasks().collect();
    assert_eq!(ids.len(), n + 1, "{cycle}");
    let text = cycle.to_string();
    for i in 0..n {
        let k = (closer + i) % n;
        assert!(
            text.contains(&format!("task {} of 'P{k}'", tasks[k].id())),
            "{text}"
        );
    }
    assert!(text.starts_with(&format!(
        "task {} of 'P{closer}' waits for",
        tasks[closer].id()
    )));
    for pool in &pools {
        pool.stop(StopWait::Forever);
    }
}

#[test]
fn two_pools_whose_tasks_wait_for_each_other_refuse_one_wait_and_both_end() {
    cycle_of(2);
}

#[test]
fn a_cycle_through_three_pools_is_refused_once_and_every_task_ends() {
    cycle_of(3);
}

#[test]
fn a_task_waiting_for_itself_is_refused() {
    let pool = started(1, Pool::new());
    pool.set_name("'Self'");
    let (me_tx, me_rx) = bounded::<Arc<Task<u64>>>(1);
    let pool2 = pool.clone();
    let task = pool
        .submit(Priority::Normal, move |_| {
            let me = me_rx.recv().unwrap();
            match pool2.wait(&me, LONG) {
                Err(error) => Err(error.to_string()),
                Ok(_) => Ok(1),
            }
        })
        .unwrap();
    me_tx.send(task.clone()).unwrap();
    collect(&pool, 1);
    assert_eq!(
        task.outcome(),
        Some(Outcome::Failed(format!(
            "task {} of 'Self' waits for itself: a cycle of waits that could never end",
            task.id()
        )))
    );
    pool.stop(StopWait::Forever);
}

#[test]
fn a_thread_that_is_no_worker_runs_a_queued_task_only_while_every_worker_is_busy() {
    let pool = started(1, Pool::new());
    let (release, held) = bounded::<()>(0);
    let (running_tx, running_rx) = bounded(1);
    pool.submit(Priority::Normal, move |_| {
        running_tx.send(()).unwrap();
        let _ = held.recv();
        Ok(0)
    })
    .unwrap();
    running_rx.recv().unwrap();
    let here = thread::current().id();
    let ran_on = Arc::new(Mutex::new(None));
    let seen = ran_on.clone();
    let queued = pool
        .submit(Priority::Normal, move |state| {
            *seen.lock().unwrap() = Some(thread::current().id());
            state.report_progress(0.5);
            Ok(7)
        })
        .unwrap();
    assert!(
        pool.help(&queued),
        "the only worker is busy: this thread runs it"
    );
    assert_eq!(*ran_on.lock().unwrap(), Some(here));
    assert_eq!(queued.outcome(), Some(Outcome::Completed(7)));
    assert!(!pool.help(&queued), "a finished task is not run again");
    assert_eq!(pool.stats().busy_workers, 1, "this thread is no worker");
    drop(release);
    let done = collect(&pool, 2);
    assert_eq!(count(&done, Status::Completed), 2);
    pool.stop(StopWait::Forever);
}
