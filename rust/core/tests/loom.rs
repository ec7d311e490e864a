//! Loom model tests: every interleaving of a few threads, run by
//! `RUSTFLAGS="--cfg loom" cargo test -p threadkit-core --test loom` (which `cargo xtask test` does).
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use threadkit_core::{AtomicF64, Counter};

#[test]
fn atomic_f64_cas_loop_loses_no_addition() {
    loom::model(|| {
        let f = Arc::new(AtomicF64::default());
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let f = f.clone();
                thread::spawn(move || {
                    f.add(0.5);
                })
            })
            .collect();
        f.add(0.25);
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(f.load(), 1.25);
    });
}

#[test]
fn increment_if_less_than_never_overshoots() {
    loom::model(|| {
        let c = Arc::new(Counter::new(0));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                thread::spawn(move || c.try_increment_if_less_than(2) as i64)
            })
            .collect();
        let mine = c.try_increment_if_less_than(2) as i64;
        let wins: i64 = mine + handles.into_iter().map(|h| h.join().unwrap()).sum::<i64>();
        assert_eq!(wins, 2);
        assert_eq!(c.get(), 2);
    });
}

#[test]
fn increments_from_threads_are_exact() {
    loom::model(|| {
        let c = Arc::new(Counter::new(0));
        let other = {
            let c = c.clone();
            thread::spawn(move || {
                c.increment();
                c.add(2);
            })
        };
        c.decrement();
        other.join().unwrap();
        assert_eq!(c.get(), 2);
    });
}

/// Compare-and-set retry loops (the usual lock-free pattern) from three threads: each retries
/// with the fresh value until its own +1 lands, so none is lost.
#[test]
fn compare_and_set_retry_loops_lose_no_update() {
    loom::model(|| {
        let c = Arc::new(Counter::new(0));
        let add_one = |c: &Counter| {
            let mut seen = c.get();
            while !c.compare_and_set(seen, seen + 1) {
                seen = c.get();
            }
        };
        let others: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                thread::spawn(move || add_one(&c))
            })
            .collect();
        add_one(&c);
        for other in others {
            other.join().unwrap();
        }
        assert_eq!(c.get(), 3);
    });
}

/// `reset` racing increments: each increment lands either in the count `reset` returned or in
/// the count left after it, never in neither or both.
#[test]
fn reset_racing_increments_loses_no_count() {
    loom::model(|| {
        let c = Arc::new(Counter::new(0));
        let other = {
            let c = c.clone();
            thread::spawn(move || {
                c.increment();
                c.increment();
            })
        };
        let before_reset = c.reset();
        other.join().unwrap();
        assert_eq!(before_reset + c.get(), 2);
    });
}

mod task {
    use super::*;
    use threadkit_core::{CancelOutcome, Group, Latch, Outcome, Status, Task};

    /// A worker runs the task while another thread waits for it: the waiter always sees the
    /// stored outcome once the task's latch opens.
    #[test]
    fn completion_handoff_publishes_the_outcome() {
        loom::model(|| {
            let task = Arc::new(Task::<u32>::new(1, Box::new(|_| Ok(42))));
            let worker = {
                let task = task.clone();
                thread::spawn(move || task.run())
            };
            task.state().wait();
            assert_eq!(task.outcome(), Some(Outcome::Completed(42)));
            assert_eq!(worker.join().unwrap(), Some(Status::Completed));
        });
    }

    /// `cancel` racing `run`: exactly one of them decides the outcome, and the job runs only
    /// when the task was not cancelled before it started.
    #[test]
    fn cancel_versus_start_has_exactly_one_winner() {
        loom::model(|| {
            let ran = Arc::new(loom::sync::atomic::AtomicBool::new(false));
            let task = {
                let ran = ran.clone();
                Arc::new(Task::<u32>::new(
                    1,
                    Box::new(move |_| {
                        ran.store(true, loom::sync::atomic::Ordering::SeqCst);
                        Ok(7)
                    }),
                ))
            };
            let worker = {
                let task = task.clone();
                thread::spawn(move || task.run())
            };
            let cancel = task.cancel();
            let run = worker.join().unwrap();
            let ran = ran.load(loom::sync::atomic::Ordering::SeqCst);
            match cancel {
                CancelOutcome::CancelledBeforeStart => {
                    assert_eq!(run, None);
                    assert!(!ran);
                }
                // The worker started first: the cancel request makes it end Cancelled.
                CancelOutcome::Requested => {
                    assert!(ran);
                    assert_eq!(run, Some(Status::Cancelled));
                }
                CancelOutcome::TooLate => {
                    assert!(ran);
                    assert_eq!(run, Some(Status::Completed));
                }
            }
            assert!(task.state().wait_timeout(std::time::Duration::ZERO));
            let expected = if run == Some(Status::Completed) {
                Outcome::Completed(7)
            } else {
                Outcome::Cancelled
            };
            assert_eq!(task.outcome(), Some(expected));
        });
    }

    /// Two workers joining one group of two parts while the group is cancelled: the group ends
    /// exactly once (by one runner, or by the cancel before any started), and a completed group
    /// saw both parts in order.
    #[test]
    fn group_runners_and_cancel_end_the_group_exactly_once() {
        loom::model(|| {
            let group = Group::new(
                2,
                Box::new(|i, _| Ok(i as u32 + 1)),
                Box::new(|results: Vec<u32>| results[0] * 10 + results[1]),
            );
            let task = Arc::new(Task::new_group(1, group));
            let runners: Vec<_> = (0..2)
                .map(|_| {
                    let task = task.clone();
                    thread::spawn(move || task.run())
                })
                .collect();
            let cancel = task.cancel();
            let ends: Vec<Status> = runners
                .into_iter()
                .filter_map(|runner| runner.join().unwrap())
                .collect();
            let outcome = task.outcome().expect("ended");
            match cancel {
                CancelOutcome::CancelledBeforeStart => {
                    assert!(ends.is_empty());
                    assert_eq!(outcome, Outcome::Cancelled);
                }
                CancelOutcome::Requested => {
                    assert_eq!(ends, [Status::Cancelled]);
                    assert_eq!(outcome, Outcome::Cancelled);
                }
                CancelOutcome::TooLate => {
                    assert_eq!(ends, [Status::Completed]);
                    assert_eq!(outcome, Outcome::Completed(12));
                }
            }
        });
    }

    /// A failing part racing a second runner: the group fails exactly once, with the failing
    /// part's message, and whatever was not claimed before the failure is skipped.
    #[test]
    fn a_failing_part_fails_the_group_exactly_once() {
        loom::model(|| {
            let runs = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
            let group = {
                let runs = runs.clone();
                Group::new(
                    3,
                    Box::new(move |i, _| {
                        runs.fetch_add(1, loom::sync::atomic::Ordering::SeqCst);
                        if i == 0 { Err("boom".into()) } else { Ok(1u32) }
                    }),
                    Box::new(|results: Vec<u32>| results.iter().sum()),
                )
            };
            let task = Arc::new(Task::new_group(1, group));
            let other = {
                let task = task.clone();
                thread::spawn(move || task.run())
            };
            let ends: Vec<Status> = [task.run(), other.join().unwrap()]
                .into_iter()
                .flatten()
                .collect();
            assert_eq!(ends, [Status::Failed], "one runner ends the group");
            assert_eq!(
                task.outcome(),
                Some(Outcome::Failed("part 0 failed: boom".into()))
            );
            let runs = runs.load(loom::sync::atomic::Ordering::SeqCst);
            assert!((1..=3).contains(&runs), "part 0 ran, no part twice: {runs}");
        });
    }

    /// A group limited to one runner, joined by two threads at once: no two parts ever run at
    /// the same time, every part runs exactly once, and exactly one runner concludes it.
    #[test]
    fn a_group_limited_to_one_runner_never_runs_two_parts_at_once() {
        loom::model(|| {
            use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
            let inside = Arc::new(AtomicUsize::new(0));
            let runs = Arc::new(AtomicUsize::new(0));
            let group = {
                let (inside, runs) = (inside.clone(), runs.clone());
                Group::new(
                    2,
                    Box::new(move |i, _| {
                        assert_eq!(inside.fetch_add(1, SeqCst), 0, "one part at a time");
                        runs.fetch_add(1, SeqCst);
                        inside.fetch_sub(1, SeqCst);
                        Ok(i as u32 + 1)
                    }),
                    Box::new(|results: Vec<u32>| results[0] * 10 + results[1]),
                )
                .limit_runners(1)
            };
            let task = Arc::new(Task::new_group(1, group));
            let other = {
                let task = task.clone();
                thread::spawn(move || task.run())
            };
            let ends: Vec<Status> = [task.run(), other.join().unwrap()]
                .into_iter()
                .flatten()
                .collect();
            assert_eq!(ends, [Status::Completed], "one runner ends the group");
            assert_eq!(runs.load(SeqCst), 2);
            assert_eq!(task.outcome(), Some(Outcome::Completed(12)));
        });
    }

    /// An empty group started by two runners at once is concluded by exactly one of them.
    #[test]
    fn an_empty_group_is_concluded_exactly_once() {
        loom::model(|| {
            let group = Group::new(
                0,
                Box::new(|_, _| Ok(1u32)),
                Box::new(|results: Vec<u32>| results.len() as u32 + 7),
            );
            let task = Arc::new(Task::new_group(1, group));
            let other = {
                let task = task.clone();
                thread::spawn(move || task.run())
            };
            let ends: Vec<Status> = [task.run(), other.join().unwrap()]
                .into_iter()
                .flatten()
                .collect();
            assert_eq!(ends, [Status::Completed]);
            assert_eq!(task.outcome(), Some(Outcome::Completed(7)));
        });
    }

    #[test]
    fn latch_wakes_every_waiter_once_set() {
        loom::model(|| {
            let latch = Arc::new(Latch::new());
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let latch = latch.clone();
                    thread::spawn(move || {
                        latch.wait();
                        assert!(latch.is_set());
                    })
                })
                .collect();
            latch.set();
            for waiter in waiters {
                waiter.join().unwrap();
            }
        });
    }
}

/// The wait-for graph: searching for a cycle and recording the wait are one step, so two waits
/// that close a cycle together never both get in.
mod wait_graph {
    use loom::sync::Arc;
    use loom::thread;
    use threadkit_core::{TaskRef, WaitGraph};

    #[test]
    fn of_two_waits_closing_a_cycle_at_once_exactly_one_is_refused() {
        loom::model(|| {
            let graph = Arc::new(WaitGraph::new());
            let a = TaskRef { pool: 1, task: 1 };
            let b = TaskRef { pool: 2, task: 1 };
            // Each wait stays recorded (its edge is never dropped), as while both tasks block.
            let enter = |graph: &WaitGraph, waiter, awaited| {
                graph.enter(waiter, awaited).map(std::mem::forget).is_ok()
            };
            let other = {
                let graph = graph.clone();
                thread::spawn(move || enter(&graph, b, a))
            };
            let mine = enter(&graph, a, b);
            let theirs = other.join().unwrap();
            assert!(mine != theirs, "exactly one of the two waits is refused");
            assert_eq!(graph.waits(), 1);
        });
    }
}

/// A task ended from outside (`Task::settle`) racing a `cancel`, while a third thread adds a hook:
/// exactly one end wins, and the hook runs exactly once, whether it was added before the end (the
/// end runs it) or after (it runs at once).
#[test]
fn settle_cancel_and_on_end_racing_end_the_task_once_and_run_the_hook_once() {
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use threadkit_core::{CancelOutcome, Task};
    loom::model(|| {
        let task = Arc::new(Task::<u8>::outside(1));
        let hooks = Arc::new(AtomicUsize::new(0));
        let settler = {
            let task = task.clone();
            thread::spawn(move || task.settle(Ok(7)) as usize)
        };
        let canceller = {
            let task = task.clone();
            thread::spawn(move || (task.cancel() == CancelOutcome::CancelledBeforeStart) as usize)
        };
        let counted = hooks.clone();
        task.on_end(Box::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        }));
        let wins = settler.join().unwrap() + canceller.join().unwrap();
        assert_eq!(wins, 1);
        assert_eq!(hooks.load(Ordering::SeqCst), 1);
        assert!(task.outcome().is_some());
    });
}
