//! A task's life-cycle state machine, cancellation flag and progress: the payload-free part of a
//! task that the code running it, the pool and its waiters share.
//!
//! Every task ends exactly once, in [`Status::Completed`], [`Status::Failed`] or
//! [`Status::Cancelled`]. Every transition, including a cancel request, is a compare-and-swap on
//! one atomic, so a `cancel` racing a worker's `try_start` or `finish` has exactly one winner:
//! either the task runs, or it is cancelled before it starts, never both and never neither; and a
//! cancel that answers `Requested` always ends the task Cancelled.

use std::sync::OnceLock;
use std::time::Duration;

use crate::counter::AtomicF64;
use crate::interrupt::Interrupt;
use crate::latch::Latch;
use crate::sync::{AtomicBool, AtomicU8, Ordering};

/// Where a task is in its life. Its discriminants are only the encoding of [`TaskState`]'s atomic:
/// a binding that gives statuses numbers maps them itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl Status {
    fn from_u8(value: u8) -> Status {
        match value {
            0 => Status::Pending,
            1 => Status::Running,
            2 => Status::Completed,
            3 => Status::Failed,
            _ => Status::Cancelled,
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Cancelled)
    }
}

/// What `cancel` achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The task had not started and now never will: the caller must deliver its cancellation.
    CancelledBeforeStart,
    /// The task is running; it was asked to stop (see [`TaskState::is_cancel_requested`]) and
    /// will end [`Status::Cancelled`] whatever its job returns.
    Requested,
    /// The task had already finished.
    TooLate,
}

/// Which tasks a cancel reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Only a task that has not started (a running one answers [`CancelOutcome::TooLate`]).
    Unstarted,
    /// A running task too, which is asked to stop.
    Running,
}

/// Cancels `tasks` as one scope (all of a processor's, those bound to a node): every one that
/// has not started first, then asks the running ones to stop. The other order lets a worker that
/// a stopped task frees start the next queued one of the scope before its cancel comes.
/// `cancel(task, reach)` cancels one task; returns how many were cancelled or asked to stop.
pub fn cancel_together<T>(tasks: &[T], cancel: impl Fn(&T, Reach) -> CancelOutcome) -> usize {
    let started: Vec<&T> = tasks
        .iter()
        .filter(|task| cancel(task, Reach::Unstarted) != CancelOutcome::CancelledBeforeStart)
        .collect();
    let asked = started
        .iter()
        .filter(|task| cancel(task, Reach::Running) == CancelOutcome::Requested)
        .count();
    tasks.len() - started.len() + asked
}

/// Internal state value for "running, and asked to cancel": reported as [`Status::Running`].
/// Keeping the request in the same atomic as the status makes `cancel` and `finish`
/// linearizable: a `Requested` answer guarantees a `Cancelled` end.
const CANCEL_REQUESTED: u8 = 6;

/// The engine-agnostic, payload-free part of a task, shared with the code that runs it (for
/// `is_cancelled` and `report_progress`) and with anyone who waits on it.
#[derive(Debug)]
pub struct TaskState {
    /// The task's id, so that the code running it can name it.
    id: u64,
    state: AtomicU8,
    progress: AtomicF64,
    finished: Latch,
    /// Made on first use: by a blocking call inside the task, or by a cancel request.
    cancelled: OnceLock<Interrupt>,
    /// Set by [`TaskState::drop_work`].
    dropped: AtomicBool,
}

impl TaskState {
    pub fn new(id: u64) -> Self {
        Self {
            id,
            state: AtomicU8::new(Status::Pending as u8),
            progress: AtomicF64::new(0.0),
            finished: Latch::new(),
            cancelled: OnceLock::new(),
            dropped: AtomicBool::new(false),
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn status(&self) -> Status {
        match self.state.load(Ordering::Acquire) {
            CANCEL_REQUESTED => Status::Running,
            value => Status::from_u8(value),
        }
    }

    /// Moves the state on by `next(current)` (None: leave it) in one compare-and-swap loop;
    /// returns the state it moved from, or the state that made `next` refuse.
    fn update(&self, next: impl Fn(u8) -> Option<u8>) -> Result<u8, u8> {
        self.state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, next)
    }

    /// Pending → Running. `false` when the task was cancelled first (or already started).
    pub fn try_start(&self) -> bool {
        self.update(|s| (s == Status::Pending as u8).then_some(Status::Running as u8))
            .is_ok()
    }

    /// Pending → Completed (or Failed) in one step, for a task that is ended from outside rather
    /// than run ([`Task::settle`]). `false` when it had ended (or started) already.
    pub fn settle(&self, succeeded: bool) -> bool {
        let done = if succeeded {
            Status::Completed
        } else {
            Status::Failed
        };
        self.update(|s| (s == Status::Pending as u8).then_some(done as u8))
            .is_ok()
    }

    /// Cancels a pending task, or asks a running one to stop.
    pub fn cancel(&self) -> CancelOutcome {
        self.cancel_reaching(Reach::Running)
    }

    /// Cancels a pending task, and asks a running one to stop if `reach` goes that far.
    pub fn cancel_reaching(&self, reach: Reach) -> CancelOutcome {
        let moved = self.update(|s| match s {
            s if s == Status::Pending as u8 => Some(Status::Cancelled as u8),
            s if s == Status::Running as u8 && reach == Reach::Running => Some(CANCEL_REQUESTED),
            _ => None,
        });
        match moved {
            Ok(from) if from == Status::Pending as u8 => CancelOutcome::CancelledBeforeStart,
            Ok(_) | Err(CANCEL_REQUESTED) => {
                // Made here if no wait made it yet: a wait that starts later finds it fired.
                self.cancel_interrupt().fire();
                CancelOutcome::Requested
            }
            Err(_) => CancelOutcome::TooLate,
        }
    }

    /// For the running task's own code: its work no longer applies (what it works on is gone).
    /// The task ends [`Status::Cancelled`], and its pool counts it as dropped
    /// ([`crate::PoolStats::dropped`]) rather than as cancelled by someone.
    pub fn drop_work(&self) {
        self.dropped.store(true, Ordering::Relaxed);
        self.cancel();
    }

    /// Whether [`TaskState::drop_work`] ended it.
    pub fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Fires when this task is asked to cancel: blocking calls made inside the task add it to
    /// their wait, so a cancelled task is never stuck in one (and a pool's stop never waits on it).
    pub fn cancel_interrupt(&self) -> &Interrupt {
        self.cancelled.get_or_init(Interrupt::new)
    }

    /// Whether someone asked this task to stop. Long tasks poll it and return early.
    pub fn is_cancel_requested(&self) -> bool {
        let state = self.state.load(Ordering::Acquire);
        state == CANCEL_REQUESTED || state == Status::Cancelled as u8
    }

    /// Running → final. A task asked to cancel while it ran ends Cancelled whatever it returned,
    /// so a cancelled task never delivers a result. Returns the final status.
    pub fn finish(&self, succeeded: bool) -> Status {
        let done = if succeeded {
            Status::Completed
        } else {
            Status::Failed
        };
        let moved = self.update(|s| match s {
            s if s == Status::Running as u8 => Some(done as u8),
            CANCEL_REQUESTED => Some(Status::Cancelled as u8),
            _ => None,
        });
        match moved {
            Ok(CANCEL_REQUESTED) => Status::Cancelled,
            Ok(_) => done,
            Err(state) => panic!("finish() on a task that was not running (state {state})"),
        }
    }

    /// Progress in 0..=1, as last reported by the task (1 once it completed).
    pub fn progress(&self) -> f64 {
        self.progress.load()
    }

    /// Records progress, clamped to 0..=1 (NaN counts as 0).
    pub fn report_progress(&self, value: f64) {
        let clamped = if value.is_nan() {
            0.0
        } else {
            value.clamp(0.0, 1.0)
        };
        self.progress.store(clamped);
    }

    /// Marks the end visible to waiters; called once the outcome is stored.
    pub(crate) fn open(&self) {
        self.finished.set();
    }

    /// Blocks until the task has finished and its outcome is stored.
    pub fn wait(&self) {
        self.finished.wait();
    }

    /// Like [`TaskState::wait`], for at most `timeout`; returns whether it finished.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.finished.wait_timeout(timeout)
    }

    /// Like [`TaskState::wait`], until `give_up()` holds or `timeout` (if any) passed too; see
    /// [`Latch::wait_unless`]. Returns whether the task finished.
    pub fn wait_unless(&self, timeout: Option<Duration>, give_up: impl Fn() -> bool) -> bool {
        self.finished.wait_unless(timeout, give_up)
    }

    /// Wakes the threads in [`TaskState::wait_unless`] so that they check `give_up` again.
    pub fn wake_waiters(&self) {
        self.finished.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_together_cancels_every_unstarted_task_before_asking_any_running_one() {
        // 0, 2: queued; 1, 3: running; 4: ended.
        let log = std::sync::Mutex::new(Vec::new());
        let cancelled = cancel_together(&[0, 1, 2, 3, 4], |&task, reach| {
            log.lock().unwrap().push((task, reach));
            match (task, reach) {
                (0 | 2, _) => CancelOutcome::CancelledBeforeStart,
                (1 | 3, Reach::Running) => CancelOutcome::Requested,
                _ => CancelOutcome::TooLate,
            }
        });
        assert_eq!(cancelled, 4);
        let log = log.into_inner().unwrap();
        let first_ask = log.iter().position(|&(_, reach)| reach == Reach::Running);
        assert_eq!(
            first_ask,
            Some(5),
            "all five tried as unstarted first: {log:?}"
        );
        assert_eq!(
            log[5..],
            [
                (1, Reach::Running),
                (3, Reach::Running),
                (4, Reach::Running)
            ]
        );
    }

    #[test]
    fn a_cancel_reaching_unstarted_tasks_leaves_a_running_one_alone() {
        let state = TaskState::new(1);
        assert!(state.try_start());
        assert_eq!(
            state.cancel_reaching(Reach::Unstarted),
            CancelOutcome::TooLate
        );
        assert!(!state.is_cancel_requested());
        assert_eq!(
            state.cancel_reaching(Reach::Running),
            CancelOutcome::Requested
        );
        assert!(state.is_cancel_requested());
    }
}
