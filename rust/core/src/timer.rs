//! A timer thread: items scheduled for an instant are handed to a callback, in deadline order
//! (and in scheduling order for equal deadlines), once their instant has passed.
//!
//! The thread sleeps on a condition variable until the earliest deadline or a new earlier item,
//! never in a sleep loop, and it runs no user code besides the callback, which must not block
//! (the pool's just queues a task): so stopping it is prompt, and joins it.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::sync::lot::{Condvar, Mutex, MutexGuard};
use crate::sync::rc::Arc;
use crate::sync::thread::{Builder, JoinHandle};

/// The timer's thread and its queue of items; [`Timer::stop`] joins the thread.
pub struct Timer<T> {
    shared: Arc<Shared<T>>,
    thread: JoinHandle<()>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    wake: Condvar,
    /// Whether a scheduled item still matters; the others are dropped unannounced when the
    /// queue grows (see [`Timer::schedule`]).
    is_live: fn(&T) -> bool,
}

struct State<T> {
    due: BinaryHeap<Entry<T>>,
    next_seq: u64,
    /// How many items the queue may hold before the dead ones are purged.
    purge_at: usize,
    stopped: bool,
}

/// The purge threshold's floor: below it the queue is never scanned.
const PURGE_FLOOR: usize = 64;

struct Entry<T> {
    at: Instant,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    /// Reversed: `BinaryHeap` is a max-heap, and the earliest (then first scheduled) comes first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<T: Send + 'static> Timer<T> {
    /// Starts the thread, named `name`, which calls `on_due(item)` for each item once its
    /// instant has passed. `is_live(item)` tells whether an item still matters: when the queue
    /// grows, dead ones are purged so that cancelled far-off items do not pile up.
    pub fn start(
        name: String,
        is_live: fn(&T) -> bool,
        mut on_due: impl FnMut(T) + Send + 'static,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                due: BinaryHeap::new(),
                next_seq: 0,
                purge_at: PURGE_FLOOR,
                stopped: false,
            }),
            wake: Condvar::new(),
            is_live,
        });
        let thread = {
            let shared = shared.clone();
            Builder::new()
                .name(name)
                .spawn(move || shared.run(&mut on_due))?
        };
        Ok(Self { shared, thread })
    }

    /// Hands `item` to the callback once `at` has passed.
    pub fn schedule(&self, at: Instant, item: T) {
        let mut state = self.shared.state.lock();
        let seq = state.next_seq;
        state.next_seq += 1;
        if state.due.len() >= state.purge_at {
            let is_live = self.shared.is_live;
            state.due.retain(|entry| is_live(&entry.item));
            // Doubling keeps the scans' cost proportional to the items scheduled.
            state.purge_at = (state.due.len() * 2).max(PURGE_FLOOR);
        }
        let earliest = state.due.peek().is_none_or(|first| at < first.at);
        state.due.push(Entry { at, seq, item });
        // Only a new earliest deadline changes how long the thread sleeps.
        if earliest {
            self.shared.wake.notify_one();
        }
    }

    /// Items scheduled and not yet handed over (dead ones included until purged).
    pub fn len(&self) -> usize {
        self.shared.state.lock().due.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops and joins the thread; returns the items never handed over, in deadline order.
    pub fn stop(self) -> Vec<T> {
        self.shared.state.lock().stopped = true;
        self.shared.wake.notify_one();
        // The callback never panics (the pool's only queues), and a panic there was reported
        // on its thread already: what is left is returned either way.
        let _ = self.thread.join();
        let due = std::mem::take(&mut self.shared.state.lock().due);
        due.into_sorted_vec()
            .into_iter()
            .rev()
            .map(|entry| entry.item)
            .collect()
    }
}

impl<T> Shared<T> {
    fn run(&self, on_due: &mut impl FnMut(T)) {
        let mut state = self.state.lock();
        while !state.stopped {
            let Some(first) = state.due.peek() else {
                self.wake.wait(&mut state);
                continue;
            };
            let at = first.at;
            if at > Instant::now() {
                self.wake.wait_until(&mut state, at);
                continue;
            }
            let entry = state.due.pop().expect("peeked");
            // Unlocked, so that scheduling never waits for a hand-over.
            MutexGuard::unlocked(&mut state, || on_due(entry.item));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::unbounded;
    use std::time::Duration;

    #[test]
    fn items_come_in_deadline_order_whatever_the_scheduling_order() {
        let (tx, rx) = unbounded();
        let timer = Timer::start(
            "timer-test".into(),
            |_| true,
            move |item: u32| {
                tx.send(item).unwrap();
            },
        )
        .unwrap();
        let now = Instant::now();
        // Scheduled latest first; two share a deadline and keep their scheduling order.
        timer.schedule(now + Duration::from_millis(30), 3);
        timer.schedule(now + Duration::from_millis(20), 2);
        timer.schedule(now + Duration::from_millis(10), 1);
        timer.schedule(now + Duration::from_millis(10), 11);
        let got: Vec<u32> = (0..4).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(got, [1, 11, 2, 3]);
        assert!(timer.stop().is_empty());
    }

    #[test]
    fn stop_joins_the_thread_and_returns_what_was_not_due() {
        let timer = Timer::start(
            "timer-test".into(),
            |_| true,
            |_: u32| unreachable!("nothing is due"),
        )
        .unwrap();
        let later = Instant::now() + Duration::from_secs(3600);
        timer.schedule(later + Duration::from_secs(1), 2);
        timer.schedule(later, 1);
        assert_eq!(timer.len(), 2);
        assert_eq!(timer.stop(), [1, 2]);
    }

    #[test]
    fn dead_items_are_purged_as_the_queue_grows() {
        let timer = Timer::start(
            "timer-test".into(),
            |item: &u32| item.is_multiple_of(2),
            |_| {},
        )
        .unwrap();
        let later = Instant::now() + Duration::from_secs(3600);
        for item in 0..(PURGE_FLOOR as u32 * 4) {
            timer.schedule(later, item);
        }
        let left = timer.stop();
        assert!(left.len() < PURGE_FLOOR * 3, "{} left", left.len());
        assert!(left.iter().filter(|item| item.is_multiple_of(2)).count() == PURGE_FLOOR * 2);
    }
}
