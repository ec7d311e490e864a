//! Budgeted draining of a queue on the main thread, shared by task completions and dispatched
//! calls.
//!
//! A drain takes at most the items that were queued when it started (items added while it runs,
//! including by the callbacks it runs, wait for the next drain, so a callback that re-queues
//! itself cannot starve the frame), at most `max_items`, and stops once `budget` has been spent.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select};

/// Bounds of one drain. `None` means no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainLimits {
    pub max_items: Option<usize>,
    pub budget: Option<Duration>,
}

/// What one drain did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub processed: usize,
    pub elapsed: Duration,
    /// Stopped because the time budget ran out with items still waiting from the start.
    pub over_budget: bool,
}

/// Receives and handles items from `queue` within `limits`.
pub fn drain<T>(
    queue: &Receiver<T>,
    limits: DrainLimits,
    mut handle: impl FnMut(T),
) -> DrainReport {
    let started = Instant::now();
    let mut quota = queue.len();
    if let Some(max) = limits.max_items {
        quota = quota.min(max);
    }
    let mut report = DrainReport::default();
    while report.processed < quota {
        // At least one item per drain, so work always moves, however small the budget.
        if report.processed > 0
            && limits
                .budget
                .is_some_and(|budget| started.elapsed() >= budget)
        {
            report.over_budget = true;
            break;
        }
        let Ok(item) = queue.try_recv() else { break };
        handle(item);
        report.processed += 1;
    }
    report.elapsed = started.elapsed();
    report
}

/// Sleeps until `first` or `second` has an item (without taking it: the caller's drains do their
/// own bookkeeping) or is disconnected, or until `deadline` passed. Returns whether one of them
/// is ready; `false` only at the deadline.
pub fn wait_ready<A, B>(
    first: &Receiver<A>,
    second: &Receiver<B>,
    deadline: Option<Instant>,
) -> bool {
    let mut select = Select::new();
    select.recv(first);
    select.recv(second);
    match deadline {
        None => {
            select.ready();
            true
        }
        Some(at) => select.ready_deadline(at).is_ok(),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crossbeam_channel::unbounded;

    #[test]
    fn takes_only_what_was_queued_at_the_start() {
        let (tx, rx) = unbounded();
        for i in 0..3 {
            tx.send(i).unwrap();
        }
        let mut seen = vec![];
        let report = drain(&rx, DrainLimits::default(), |i| {
            seen.push(i);
            tx.send(i + 10).unwrap(); // Re-queued items wait for the next drain.
        });
        assert_eq!(seen, [0, 1, 2]);
        assert_eq!(report.processed, 3);
        assert_eq!(rx.len(), 3);
    }

    #[test]
    fn respects_max_items_and_fifo() {
        let (tx, rx) = unbounded();
        for i in 0..10 {
            tx.send(i).unwrap();
        }
        let mut seen = vec![];
        let limits = DrainLimits {
            max_items: Some(4),
            budget: None,
        };
        drain(&rx, limits, |i| seen.push(i));
        drain(&rx, limits, |i| seen.push(i));
        assert_eq!(seen, [0, 1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn stops_when_the_budget_is_spent() {
        let (tx, rx) = unbounded();
        for i in 0..100 {
            tx.send(i).unwrap();
        }
        let limits = DrainLimits {
            max_items: None,
            budget: Some(Duration::from_millis(5)),
        };
        let report = drain(&rx, limits, |_| {
            std::thread::sleep(Duration::from_millis(2))
        });
        assert!(report.over_budget);
        assert!(report.processed < 100);
        assert!(report.processed >= 1, "at least one item runs per drain");
        assert_eq!(rx.len(), 100 - report.processed);
    }

    #[test]
    fn a_spent_budget_still_runs_one_item() {
        let (tx, rx) = unbounded();
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let limits = DrainLimits {
            max_items: None,
            budget: Some(Duration::ZERO),
        };
        let report = drain(&rx, limits, |_| {});
        assert_eq!((report.processed, report.over_budget), (1, true));
    }

    #[test]
    fn wait_ready_wakes_for_either_queue_without_taking_the_item() {
        let (send_a, first) = crossbeam_channel::unbounded::<u32>();
        let (send_b, second) = crossbeam_channel::unbounded::<&str>();
        let waiter = std::thread::spawn(move || {
            let ready = wait_ready(&first, &second, None);
            (ready, second.try_recv().ok(), first.len())
        });
        send_b.send("dispatched").unwrap();
        assert_eq!(waiter.join().unwrap(), (true, Some("dispatched"), 0));
        drop(send_a);
    }

    #[test]
    fn wait_ready_sees_an_item_queued_before_it() {
        let (send_a, first) = crossbeam_channel::unbounded::<u32>();
        let (_send_b, second) = crossbeam_channel::unbounded::<u32>();
        send_a.send(7).unwrap();
        assert!(wait_ready(&first, &second, Some(Instant::now())));
        assert_eq!(first.try_recv(), Ok(7));
    }

    #[test]
    fn wait_ready_returns_false_at_the_deadline_with_nothing_queued() {
        let (_send_a, first) = crossbeam_channel::unbounded::<u32>();
        let (_send_b, second) = crossbeam_channel::unbounded::<u32>();
        let deadline = Instant::now() + Duration::from_millis(1);
        assert!(!wait_ready(&first, &second, Some(deadline)));
        assert!(Instant::now() >= deadline);
    }
}
