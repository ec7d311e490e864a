//! A group task: one task made of `count` indexed parts that several workers run side by side.
//!
//! The pool queues the same group task once per worker it may use; every worker that picks it up
//! joins in and claims part indices from one atomic cursor until none is left. Whoever completes
//! the last part (or skips the rest after a cancel or a failure) finishes the group, so exactly
//! one runner concludes it however the claims interleave, and a runner that arrives late simply
//! finds nothing left. A waiting worker can join the same way, so waiting on a group never
//! deadlocks the pool.

use crate::sync::{AtomicBool, AtomicUsize, Mutex, Ordering};
use crate::task_state::TaskState;
use crate::unwind::panic_message;

/// One part of a group: given its index and the group's state, a result or an error message.
pub type Part<R> = Box<dyn Fn(usize, &TaskState) -> Result<R, String> + Send + Sync>;

/// Turns the parts' results, in index order, into the group's result.
pub type Combine<R> = Box<dyn FnOnce(Vec<R>) -> R + Send>;

pub struct Group<R> {
    count: usize,
    /// The next unclaimed index (may run past `count`).
    next: AtomicUsize,
    /// Parts completed or skipped.
    done: AtomicUsize,
    /// Parts that ran (the progress: skipped parts do not count).
    ran: AtomicUsize,
    /// Set once a part failed, so the other runners skip the rest.
    failed: AtomicBool,
    part: Part<R>,
    results: Mutex<Vec<Option<R>>>,
    error: Mutex<Option<String>>,
    combine: Mutex<Option<Combine<R>>>,
    /// The most runners inside [`Group::work`] at once; 0 for no limit.
    max_runners: usize,
    /// Runners inside [`Group::work`] now (counted only with a limit).
    runners: AtomicUsize,
}

impl<R> Group<R> {
    pub fn new(count: usize, part: Part<R>, combine: Combine<R>) -> Self {
        Self {
            count,
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            ran: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
            part,
            results: Mutex::new((0..count).map(|_| None).collect()),
            error: Mutex::new(None),
            combine: Mutex::new(Some(combine)),
            max_runners: 0,
            runners: AtomicUsize::new(0),
        }
    }

    /// The same group, run by at most `max` threads at once (0: no limit).
    pub fn limit_runners(mut self, max: usize) -> Self {
        self.max_runners = max;
        self
    }

    /// The most threads that run it at once; 0 for no limit.
    pub fn max_runners(&self) -> usize {
        self.max_runners
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Runs unclaimed parts on this thread until none is left. Returns the group's result when
    /// this call completed (or skipped) the last part, `None` when another runner will.
    /// A runner that finds the group full ([`Group::limit_runners`]) returns `None` at once.
    pub(crate) fn work(&self, state: &TaskState) -> Option<Result<R, String>> {
        if self.max_runners == 0 {
            return self.claim_parts(state);
        }
        let entered = self
            .runners
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |inside| {
                (inside < self.max_runners).then_some(inside + 1)
            });
        if entered.is_err() {
            return None;
        }
        let result = self.claim_parts(state);
        self.runners.fetch_sub(1, Ordering::AcqRel);
        result
    }

    fn claim_parts(&self, state: &TaskState) -> Option<Result<R, String>> {
        loop {
            if state.is_cancel_requested() || self.failed.load(Ordering::Acquire) {
                // Claim everything left at once; its parts are skipped, not run.
                let first = self.next.swap(self.count, Ordering::AcqRel);
                let skipped = self.count.saturating_sub(first);
                return (skipped > 0 && self.complete(skipped)).then(|| self.conclude());
            }
            let index = self.next.fetch_add(1, Ordering::AcqRel);
            if index >= self.count {
                return None;
            }
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                (self.part)(index, state)
            }))
            .unwrap_or_else(|panic| Err(format!("it panicked: {}", panic_message(&*panic))));
            match result {
                Ok(value) => self.results.lock().unwrap()[index] = Some(value),
                Err(message) => {
                    self.error
                        .lock()
                        .unwrap()
                        .get_or_insert_with(|| format!("part {index} failed: {message}"));
                    self.failed.store(true, Ordering::Release);
                }
            }
            let ran = self.ran.fetch_add(1, Ordering::AcqRel) + 1;
            state.report_progress(ran as f64 / self.count as f64);
            if self.complete(1) {
                return Some(self.conclude());
            }
        }
    }

    /// Counts `parts` more as done (run or skipped); true for the call that made it all.
    fn complete(&self, parts: usize) -> bool {
        self.done.fetch_add(parts, Ordering::AcqRel) + parts == self.count
    }

    /// Called once: by the runner that completed the group, or by the one that started an empty
    /// group (no part will ever complete it).
    pub(crate) fn conclude(&self) -> Result<R, String> {
        if let Some(message) = self.error.lock().unwrap().take() {
            return Err(message);
        }
        let results: Option<Vec<R>> = std::mem::take(&mut *self.results.lock().unwrap())
            .into_iter()
            .collect();
        // Parts were skipped only because of a cancel request, which is permanent: the task
        // ends Cancelled whatever this returns.
        let Some(results) = results else {
            return Err("cancelled".into());
        };
        let combine = self
            .combine
            .lock()
            .unwrap()
            .take()
            .expect("a group concludes once");
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| combine(results)))
            .map_err(|panic| format!("combining its results panicked: {}", panic_message(&*panic)))
    }
}
