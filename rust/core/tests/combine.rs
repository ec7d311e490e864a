//! Tasks ended from outside (`Task::outside`, `settle`, `on_end`) and the combinators built on
//! them (`combine::all_of`, `combine::first_of`), with real threads and exact counts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use threadkit_core::combine::{all_of, first_of};
use threadkit_core::{CancelOutcome, Outcome, Status, Task};

fn outside(id: u64) -> Arc<Task<Vec<i64>>> {
    Arc::new(Task::outside(id))
}

fn read() -> threadkit_core::combine::Read<Vec<i64>> {
    Box::new(|value: &Vec<i64>| value.clone())
}

fn failed() -> threadkit_core::combine::Failed {
    Box::new(|index, message| format!("part {index} failed: {message}"))
}

fn concat(results: Vec<Vec<i64>>) -> Vec<i64> {
    results.into_iter().flatten().collect()
}

#[test]
fn of_four_threads_racing_to_end_one_task_exactly_one_wins_every_time() {
    for _ in 0..500 {
        let task = outside(1);
        let hooks = Arc::new(AtomicUsize::new(0));
        let counted = hooks.clone();
        task.on_end(Box::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        }));
        let start = Arc::new(Barrier::new(4));
        let wins: usize = (0..4)
            .map(|i| {
                let (task, start) = (task.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    match i {
                        0 => task.settle(Ok(vec![0])),
                        1 => task.settle(Err("one".into())),
                        2 => task.cancel() == threadkit_core::CancelOutcome::CancelledBeforeStart,
                        _ => task.settle(Ok(vec![3])),
                    }
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|thread| thread.join().unwrap() as usize)
            .sum();
        assert_eq!(wins, 1, "exactly one of the four ends it");
        assert_eq!(hooks.load(Ordering::SeqCst), 1, "its hook ran once");
        assert!(task.status().is_finished());
        assert!(task.outcome().is_some());
    }
}

#[test]
fn a_hook_added_after_the_end_runs_at_once_and_an_outside_task_never_runs() {
    let task = outside(1);
    assert_eq!(task.run(), None, "no worker can run it");
    assert_eq!(task.status(), Status::Pending);
    assert!(task.settle(Ok(vec![7])));
    assert!(!task.settle(Ok(vec![8])));
    let ran = Arc::new(AtomicUsize::new(0));
    let counted = ran.clone();
    task.on_end(Box::new(move || {
        counted.fetch_add(1, Ordering::SeqCst);
    }));
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(task.outcome(), Some(Outcome::Completed(vec![7])));
    assert_eq!(task.state().progress(), 1.0);
}

#[test]
fn all_of_100_parts_ended_on_8_threads_completes_once_with_results_in_order() {
    for _ in 0..50 {
        let parts: Vec<_> = (0..100).map(outside).collect();
        let parent = outside(1000);
        let ends = Arc::new(AtomicUsize::new(0));
        let counted = ends.clone();
        parent.on_end(Box::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        }));
        all_of(&parent, &parts, (), read(), concat, failed(), |_, _| {
            panic!("nothing to abort")
        });
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let parts = parts.clone();
                std::thread::spawn(move || {
                    for (i, part) in parts.iter().enumerate().filter(|(i, _)| i % 8 == t) {
                        assert!(part.settle(Ok(vec![i as i64])));
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(ends.load(Ordering::SeqCst), 1);
        assert_eq!(
            parent.outcome(),
            Some(Outcome::Completed((0..100).collect::<Vec<i64>>()))
        );
    }
}

#[test]
fn all_of_fails_with_the_first_failure_and_aborts_exactly_the_unfinished_parts() {
    let parts: Vec<_> = (0..5).map(outside).collect();
    let parent = outside(10);
    let aborted = Arc::new(Mutex::new(Vec::new()));
    let abort = {
        let (aborted, parts) = (aborted.clone(), parts.clone());
        move |index: usize, reach| {
            aborted.lock().unwrap().push(index);
            parts[index].cancel_reaching(reach)
        }
    };
    all_of(&parent, &parts, (), read(), concat, failed(), abort);
    assert!(parts[0].settle(Ok(vec![0])));
    assert!(parts[3].settle(Err("no route".into())));
    assert_eq!(
        parent.outcome(),
        Some(Outcome::Failed("part 3 failed: no route".into()))
    );
    let mut aborted = aborted.lock().unwrap().clone();
    aborted.sort();
    assert_eq!(aborted, vec![1, 2, 4]);
    assert_eq!(parts[1].status(), Status::Cancelled);
    assert!(!parts[4].settle(Ok(vec![4])), "an aborted part is over");
}

#[test]
fn all_of_is_cancelled_by_a_cancelled_part_and_cancelling_it_aborts_its_parts() {
    let parts: Vec<_> = (0..3).map(outside).collect();
    let parent = outside(10);
    all_of(&parent, &parts, (), read(), concat, failed(), |_, _| {
        CancelOutcome::TooLate
    });
    parts[1].cancel();
    assert_eq!(parent.outcome(), Some(Outcome::Cancelled));

    let parts: Vec<_> = (0..3).map(outside).collect();
    let parent = outside(11);
    let aborts = Arc::new(AtomicUsize::new(0));
    let counted = aborts.clone();
    all_of(
        &parent,
        &parts,
        (),
        read(),
        concat,
        failed(),
        move |_, _| {
            counted.fetch_add(1, Ordering::SeqCst);
            CancelOutcome::CancelledBeforeStart
        },
    );
    assert!(parts[0].settle(Ok(vec![])));
    parent.cancel();
    assert_eq!(aborts.load(Ordering::SeqCst), 2, "the two unfinished parts");
}

#[test]
fn all_of_nothing_completes_at_once_and_nested_combinations_end_once() {
    let parent = outside(1);
    all_of(&parent, &[], (), read(), concat, failed(), |_, _| {
        CancelOutcome::TooLate
    });
    assert_eq!(parent.outcome(), Some(Outcome::Completed(vec![])));

    // all_of(first_of(a, b), c)
    let (a, b, c) = (outside(1), outside(2), outside(3));
    let any = outside(4);
    first_of(
        &any,
        &[a.clone(), b.clone()],
        (),
        read(),
        |i, mut v| {
            v.insert(0, i as i64);
            v
        },
        failed(),
    );
    let all = outside(5);
    all_of(
        &all,
        &[any.clone(), c.clone()],
        (),
        read(),
        concat,
        failed(),
        |_, _| CancelOutcome::TooLate,
    );
    assert!(b.settle(Ok(vec![20])));
    assert!(a.settle(Ok(vec![10])));
    assert_eq!(any.outcome(), Some(Outcome::Completed(vec![1, 20])));
    assert_eq!(all.status(), Status::Pending);
    assert!(c.settle(Ok(vec![30])));
    assert_eq!(all.outcome(), Some(Outcome::Completed(vec![1, 20, 30])));
}

#[test]
fn first_of_takes_the_first_end_whatever_it_is_from_racing_threads() {
    for _ in 0..200 {
        let parts: Vec<_> = (0..4).map(outside).collect();
        let parent = outside(10);
        first_of(&parent, &parts, (), read(), |i, _| vec![i as i64], failed());
        let start = Arc::new(Barrier::new(4));
        let threads: Vec<_> = parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let (part, start) = (part.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    part.settle(Ok(vec![]));
                    i
                })
            })
            .collect();
        threads.into_iter().for_each(|t| drop(t.join()));
        let Some(Outcome::Completed(winner)) = parent.outcome() else {
            panic!("completed by one part");
        };
        assert!(parts[winner[0] as usize].status() == Status::Completed);
    }
    let parts: Vec<_> = (0..2).map(outside).collect();
    let parent = outside(10);
    first_of(&parent, &parts, (), read(), |i, _| vec![i as i64], failed());
    assert!(parts[1].settle(Err("lost".into())));
    assert_eq!(
        parent.outcome(),
        Some(Outcome::Failed("part 1 failed: lost".into()))
    );
    assert_eq!(
        parts[0].status(),
        Status::Pending,
        "the others are left as they are"
    );
}

#[test]
fn a_combination_whose_parts_are_all_dropped_unfinished_is_cancelled_and_keeps_nothing() {
    let kept = Arc::new(());
    let parent = outside(10);
    {
        let parts: Vec<_> = (0..3).map(outside).collect();
        all_of(
            &parent,
            &parts,
            kept.clone(),
            read(),
            concat,
            failed(),
            |_, _| CancelOutcome::TooLate,
        );
        assert!(parts[0].settle(Ok(vec![])));
        assert_eq!(Arc::strong_count(&kept), 2, "held while parts can end it");
    }
    assert_eq!(parent.outcome(), Some(Outcome::Cancelled));
    assert_eq!(Arc::strong_count(&kept), 1, "released with the last part");

    let parent = outside(11);
    {
        let parts: Vec<_> = (0..3).map(outside).collect();
        first_of(&parent, &parts, kept.clone(), read(), |_, v| v, failed());
    }
    assert_eq!(parent.outcome(), Some(Outcome::Cancelled));
    assert_eq!(Arc::strong_count(&kept), 1);
}
