//! Tasks ended by other tasks: when all of them have ended ([`all_of`]) or the first one has
//! ([`first_of`]).
//!
//! The combined task is a [`Task::outside`] task. Each part gets a hook ([`Task::on_end`]) that
//! counts it, on whichever thread ends the part, and the hook that decides ends the combined task
//! with [`Task::settle`] or [`Task::cancel`], whose single compare-and-swap makes one decision
//! win even when parts end on several threads at once. Nothing polls and nothing waits.
//!
//! The parts' hooks hold the counting state; the combined task holds none of it. So a part that
//! can never end (dropped unfinished by everyone) releases its hold, and once no part can end the
//! combined task any more, it is cancelled rather than left pending for ever.

use crate::sync::rc::{Arc, Weak};
use crate::sync::{AtomicUsize, Mutex, Ordering};
use crate::task::{Outcome, Task};
use crate::task_state::{CancelOutcome, Reach, cancel_together};

/// Copies a part's result for the combined one (a part's outcome stays the part's own).
pub type Read<R> = Box<dyn Fn(&R) -> R + Send + Sync>;

/// Makes the combined result from the parts' results, in order.
type Collect<R> = Box<dyn FnOnce(Vec<R>) -> R + Send>;

/// The combined task's failure message, from the index of the part that failed and its message.
pub type Failed = Box<dyn Fn(usize, &str) -> String + Send + Sync>;

/// Ends `parent` once every one of `parts` has ended: completed with `collect` of their results
/// (copied by `read`) in the order of `parts` once all completed; failed with `failed(index,
/// message)` as soon as one fails; cancelled as soon as one is cancelled. No parts: it completes
/// at once with `collect` of none.
///
/// Whenever `parent` ends other than completed (a part failed or was cancelled, or someone
/// cancelled `parent` itself), the parts that have not ended are cancelled together
/// ([`cancel_together`]) by `abort(index, reach)`, which cancels part `index` the way its owner
/// does. `keep` is held while a part can still end `parent`.
pub fn all_of<R: Send + 'static, K: Send + Sync + 'static>(
    parent: &Arc<Task<R>>,
    parts: &[Arc<Task<R>>],
    keep: K,
    read: Read<R>,
    collect: impl FnOnce(Vec<R>) -> R + Send + 'static,
    failed: Failed,
    abort: impl Fn(usize, Reach) -> CancelOutcome + Send + Sync + 'static,
) {
    if parts.is_empty() {
        parent.settle(Ok(collect(Vec::new())));
        return;
    }
    let weak_parts: Vec<Weak<Task<R>>> = parts.iter().map(Arc::downgrade).collect();
    parent.on_end(Box::new({
        let parent = Arc::downgrade(parent);
        move || {
            let completed = parent.upgrade().is_some_and(|parent| {
                parent.with_outcome(|o| matches!(o, Some(Outcome::Completed(_))))
            });
            if completed {
                return;
            }
            let unfinished: Vec<usize> = (0..weak_parts.len())
                .filter(|&index| {
                    weak_parts[index]
                        .upgrade()
                        .is_some_and(|part| !part.status().is_finished())
                })
                .collect();
            cancel_together(&unfinished, |&index, reach| abort(index, reach));
        }
    }));
    let state = Arc::new(Count {
        parent: parent.clone(),
        left: AtomicUsize::new(parts.len()),
        results: Mutex::new(parts.iter().map(|_| None).collect()),
        collect: Mutex::new(Some(Box::new(collect))),
        read,
        failed,
        _keep: keep,
    });
    on_each_end(parts, move |index, part| state.part_ended(index, part));
}

/// Ends `parent` as the first of `parts` to end did: completed with `pick(index, result)` (its
/// result copied by `read`), failed with `failed(index, message)`, or cancelled. The other parts
/// are left as they are. `keep` is held while a part can still end `parent`.
pub fn first_of<R: Send + 'static, K: Send + Sync + 'static>(
    parent: &Arc<Task<R>>,
    parts: &[Arc<Task<R>>],
    keep: K,
    read: Read<R>,
    pick: impl Fn(usize, R) -> R + Send + Sync + 'static,
    failed: Failed,
) {
    let state = Arc::new(First {
        parent: parent.clone(),
        read,
        pick: Box::new(pick),
        failed,
        _keep: keep,
    });
    on_each_end(parts, move |index, part| state.part_ended(index, part));
}

/// Calls `ended(index, part)` once each of `parts` has ended, on the thread that ends it (a part
/// dropped unended calls nothing).
fn on_each_end<R: Send + 'static>(
    parts: &[Arc<Task<R>>],
    ended: impl Fn(usize, &Arc<Task<R>>) + Clone + Send + 'static,
) {
    for (index, part) in parts.iter().enumerate() {
        let ended = ended.clone();
        let weak = Arc::downgrade(part);
        part.on_end(Box::new(move || {
            if let Some(part) = weak.upgrade() {
                ended(index, &part);
            }
        }));
    }
}

/// What the parts of an [`all_of`] share.
struct Count<R, K> {
    parent: Arc<Task<R>>,
    /// Parts that have not completed yet.
    left: AtomicUsize,
    results: Mutex<Vec<Option<R>>>,
    collect: Mutex<Option<Collect<R>>>,
    read: Read<R>,
    failed: Failed,
    _keep: K,
}

impl<R: Send + 'static, K> Count<R, K> {
    fn part_ended(&self, index: usize, part: &Task<R>) {
        let value = part.with_outcome(|outcome| match outcome {
            Some(Outcome::Completed(value)) => Ok(Some((self.read)(value))),
            Some(Outcome::Failed(message)) => Err(Some((self.failed)(index, message))),
            Some(Outcome::Cancelled) | None => Err(None),
        });
        match value {
            Ok(value) => {
                self.results.lock().unwrap()[index] = value;
                // AcqRel: the last one sees every other part's result stored.
                if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
                    let results = std::mem::take(&mut *self.results.lock().unwrap());
                    let collect = self.collect.lock().unwrap().take();
                    if let Some(collect) = collect {
                        let results = results.into_iter().flatten().collect();
                        self.parent.settle(Ok(collect(results)));
                    }
                }
            }
            Err(Some(message)) => {
                self.parent.settle(Err(message));
            }
            Err(None) => {
                self.parent.cancel();
            }
        }
    }
}

/// What the parts of a [`first_of`] share.
struct First<R, K> {
    parent: Arc<Task<R>>,
    read: Read<R>,
    pick: Box<dyn Fn(usize, R) -> R + Send + Sync>,
    failed: Failed,
    _keep: K,
}

impl<R: Send + 'static, K> First<R, K> {
    fn part_ended(&self, index: usize, part: &Task<R>) {
        if self.parent.status().is_finished() {
            return; // Another part came first: nothing to copy.
        }
        let value = part.with_outcome(|outcome| match outcome {
            Some(Outcome::Completed(value)) => Ok((self.read)(value)),
            Some(Outcome::Failed(message)) => Err(Some((self.failed)(index, message))),
            Some(Outcome::Cancelled) | None => Err(None),
        });
        match value {
            Ok(value) => {
                self.parent.settle(Ok((self.pick)(index, value)));
            }
            Err(Some(message)) => {
                self.parent.settle(Err(message));
            }
            Err(None) => {
                self.parent.cancel();
            }
        }
    }
}

/// No part can end the combined task any more (each ended or was dropped unfinished): if it is
/// still pending, it never would be, so it is cancelled.
impl<R, K> Drop for Count<R, K> {
    fn drop(&mut self) {
        self.parent.cancel();
    }
}

impl<R, K> Drop for First<R, K> {
    fn drop(&mut self) {
        self.parent.cancel();
    }
}
