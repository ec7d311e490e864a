//! One unit of pool work: its life-cycle state machine, cancellation flag, progress and result.
//!
//! Every task ends exactly once, in [`Status::Completed`], [`Status::Failed`] or
//! [`Status::Cancelled`]. Every transition, including a cancel request, is a compare-and-swap on
//! one atomic, so a `cancel` racing a worker's `try_start` or `finish` has exactly one winner:
//! either the task runs, or it is cancelled before it starts, never both and never neither; and a
//! cancel that answers `Requested` always ends the task Cancelled.

use std::sync::OnceLock;
use std::time::Duration;

use crate::counter::AtomicF64;
use crate::group::Group;
use crate::interrupt::Interrupt;
use crate::latch::Latch;
use crate::sync::{AtomicBool, AtomicU8, Mutex, Ordering};

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
        let moved = self.update(|s| match s {
            s if s == Status::Pending as u8 => Some(Status::Cancelled as u8),
            s if s == Status::Running as u8 => Some(CANCEL_REQUESTED),
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

/// How a task ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome<R> {
    Completed(R),
    Failed(String),
    Cancelled,
}

/// A task's work: given its state (to poll cancellation and report progress), it returns a
/// result or an error message.
pub type Job<R> = Box<dyn FnOnce(&TaskState) -> Result<R, String> + Send>;

/// How urgent a task is: a pool runs every queued task of a higher level before any of a lower
/// one, and the tasks of one level in the order they were queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Runs only while no `Normal` or `High` task waits.
    Low,
    Normal,
    /// Runs before every waiting `Normal` task.
    High,
}

/// A task: its state, its work until someone runs it, then its outcome.
pub struct Task<R> {
    id: u64,
    state: crate::sync::Arc<TaskState>,
    work: Work<R>,
    ending: Mutex<Ending<R>>,
    /// Says what the task runs, for messages about it (see [`Task::set_label`]).
    label: OnceLock<Label>,
    priority: Priority,
    /// Set while the task waits for its delay (see [`Task::hold`]): nobody may run it early.
    held: AtomicBool,
    /// Queued for one thread's pool loop (see [`Task::only_local`]): no other thread runs it.
    local: bool,
}

/// What runs once a task has ended (see [`Task::on_end`]).
pub type Hook = Box<dyn FnOnce() + Send>;

/// A task's outcome and what waits for it, under one lock: a hook added as the task ends either
/// sees the outcome or is run by the end, never neither.
struct Ending<R> {
    outcome: Option<Outcome<R>>,
    /// Set with the outcome, and kept after [`Task::take_outcome`] moved it out.
    ended: bool,
    hooks: Vec<Hook>,
}

/// Describes a task's work when asked; called rarely (a stop that waits long), so it costs
/// nothing until then.
pub type Label = Box<dyn Fn() -> String + Send + Sync>;

enum Work<R> {
    /// Run once, by the worker that starts the task.
    Job(Mutex<Option<Job<R>>>),
    /// Run by every worker that joins in, a part at a time (see [`crate::group`]).
    Group(Group<R>),
    /// None: the task is ended from outside ([`Task::settle`] or [`Task::cancel`]).
    Outside,
}

impl<R> std::fmt::Debug for Task<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id)
            .field("status", &self.state.status())
            .finish()
    }
}

impl<R> Task<R> {
    pub fn new(id: u64, job: Job<R>) -> Self {
        Self::with_work(id, Work::Job(Mutex::new(Some(job))))
    }

    /// A task made of `group.count()` parts, which several workers may run at once.
    pub fn new_group(id: u64, group: Group<R>) -> Self {
        Self::with_work(id, Work::Group(group))
    }

    fn with_work(id: u64, work: Work<R>) -> Self {
        Self {
            id,
            state: crate::sync::Arc::new(TaskState::new(id)),
            work,
            ending: Mutex::new(Ending {
                outcome: None,
                ended: false,
                hooks: Vec::new(),
            }),
            label: OnceLock::new(),
            priority: Priority::Normal,
            held: AtomicBool::new(false),
            local: false,
        }
    }

    /// The same task at `priority` (made `Normal`).
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// Marks the task as not to be run yet, even by a thread waiting for it: it waits for a
    /// delay. Before the task is shared.
    pub fn hold(self) -> Self {
        self.held.store(true, Ordering::Relaxed);
        self
    }

    /// Marks the task as run only by the thread that runs its pool's local queue, never by a
    /// worker that waits for it. Before the task is shared.
    pub fn only_local(mut self) -> Self {
        self.local = true;
        self
    }

    /// Whether only the thread running its pool's local queue may run it.
    pub fn is_local(&self) -> bool {
        self.local
    }

    /// Whether the task still waits for its delay.
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::Acquire)
    }

    /// Ends the hold; true for the one call that ended it (the delay ran out, or the task was
    /// cancelled or stopped while held), so that exactly one of them accounts for it.
    pub fn release_hold(&self) -> bool {
        self.held.swap(false, Ordering::AcqRel)
    }

    /// A task with no work, which no worker runs: its owner ends it from any thread with
    /// [`Task::settle`] or [`Task::cancel`] (a promise, or a task that combines others).
    pub fn outside(id: u64) -> Self {
        Self::with_work(id, Work::Outside)
    }

    /// Ends a task made by [`Task::outside`] with `result`, unless it had ended already:
    /// exactly one of the calls racing to end it (this, [`Task::cancel`]) wins and returns
    /// `true`.
    pub fn settle(&self, result: Result<R, String>) -> bool {
        if !self.state.settle(result.is_ok()) {
            return false;
        }
        let outcome = match result {
            Ok(value) => {
                self.state.report_progress(1.0);
                Outcome::Completed(value)
            }
            Err(message) => Outcome::Failed(message),
        };
        self.store(outcome);
        true
    }

    /// Runs `hook` once the task has ended and its outcome is stored: on the thread that ends
    /// it, or here and now if it has ended already. Hooks run in the order they were added,
    /// outside the task's locks, so a hook may read the outcome or end other tasks.
    pub fn on_end(&self, hook: Hook) {
        let mut ending = self.ending.lock().unwrap();
        if ending.ended {
            drop(ending);
            hook();
        } else {
            ending.hooks.push(hook);
        }
    }

    /// Whether several workers may run this task together (a group).
    pub fn is_group(&self) -> bool {
        matches!(self.work, Work::Group(_))
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Sets what [`Task::label`] says; the first call wins.
    pub fn set_label(&self, label: Label) {
        let _ = self.label.set(label);
    }

    /// What the task runs ("task 7: Level.load_chunk"), or its id alone without a label.
    pub fn label(&self) -> String {
        match self.label.get() {
            Some(label) => format!("task {}: {}", self.id, label()),
            None => format!("task {}", self.id),
        }
    }

    pub fn state(&self) -> &crate::sync::Arc<TaskState> {
        &self.state
    }

    pub fn status(&self) -> Status {
        self.state.status()
    }

    /// Runs the job on this thread if the task is still pending. Returns the final status, or
    /// `None` if someone else started or cancelled it first. A panic in the job is caught and
    /// turned into a failure, so it never unwinds into the pool (or into the host program).
    pub fn run(&self) -> Option<Status> {
        self.run_then(|| {})
    }

    /// [`Task::run`], calling `on_start` once the task is claimed and before its work starts.
    ///
    /// A group task is joined instead: a call made while another thread runs it helps with the
    /// parts left, and only the call that completes the last part returns its final status.
    pub fn run_then(&self, on_start: impl FnOnce()) -> Option<Status> {
        if matches!(self.work, Work::Outside) {
            return None; // Ended from outside only.
        }
        let started = self.state.try_start();
        match &self.work {
            Work::Outside => None,
            Work::Job(job) => {
                if !started {
                    return None;
                }
                on_start();
                let job = job
                    .lock()
                    .unwrap()
                    .take()
                    .expect("a pending task has its job");
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&self.state)))
                        .unwrap_or_else(|panic| {
                            Err(format!("the task panicked: {}", panic_message(&*panic)))
                        });
                Some(self.conclude(result))
            }
            Work::Group(group) => {
                if started {
                    on_start();
                    if group.count() == 0 {
                        return Some(self.conclude(group.conclude()));
                    }
                } else if self.state.status() != Status::Running {
                    return None;
                }
                group.work(&self.state).map(|result| self.conclude(result))
            }
        }
    }

    /// Running → final, with the work's result; stores the outcome. Returns the final status.
    fn conclude(&self, result: Result<R, String>) -> Status {
        let status = self.state.finish(result.is_ok());
        let outcome = match (status, result) {
            (Status::Completed, Ok(value)) => Outcome::Completed(value),
            (Status::Failed, Err(message)) => Outcome::Failed(message),
            _ => Outcome::Cancelled,
        };
        if status == Status::Completed {
            self.state.report_progress(1.0);
        }
        self.store(outcome);
        status
    }

    /// Cancels the task; when it had not started, stores its cancellation and drops its job.
    pub fn cancel(&self) -> CancelOutcome {
        let outcome = self.state.cancel();
        if outcome == CancelOutcome::CancelledBeforeStart {
            if let Work::Job(job) = &self.work {
                job.lock().unwrap().take();
            }
            self.store(Outcome::Cancelled);
        }
        outcome
    }

    fn store(&self, outcome: Outcome<R>) {
        let hooks = {
            let mut ending = self.ending.lock().unwrap();
            ending.outcome = Some(outcome);
            ending.ended = true;
            std::mem::take(&mut ending.hooks)
        };
        self.state.open();
        for hook in hooks {
            hook();
        }
    }

    /// The outcome, once the task has finished.
    pub fn outcome(&self) -> Option<Outcome<R>>
    where
        R: Clone,
    {
        self.ending.lock().unwrap().outcome.clone()
    }

    /// Lends the outcome (`None` until the task has finished) to `f`, for consumers that copy
    /// what they need rather than clone `R`.
    pub fn with_outcome<T>(&self, f: impl FnOnce(Option<&Outcome<R>>) -> T) -> T {
        f(self.ending.lock().unwrap().outcome.as_ref())
    }

    /// Moves the outcome out (for a consumer that needs it only once).
    pub fn take_outcome(&self) -> Option<Outcome<R>> {
        self.ending.lock().unwrap().outcome.take()
    }
}

/// The text of a caught panic's payload (a `&str` or `String`), for error messages.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_string())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn task(job: impl FnOnce(&TaskState) -> Result<i32, String> + Send + 'static) -> Task<i32> {
        Task::new(1, Box::new(job))
    }

    #[test]
    fn completes_with_result_and_full_progress() {
        let t = task(|_| Ok(7));
        assert_eq!(t.status(), Status::Pending);
        assert_eq!(t.run(), Some(Status::Completed));
        assert_eq!(t.outcome(), Some(Outcome::Completed(7)));
        assert_eq!(t.state().progress(), 1.0);
        assert!(t.state().wait_timeout(Duration::ZERO));
        assert_eq!(t.run(), None, "a task runs once");
    }

    #[test]
    fn error_and_panic_become_failures() {
        let t = task(|_| Err("bad input".into()));
        assert_eq!(t.run(), Some(Status::Failed));
        assert_eq!(t.outcome(), Some(Outcome::Failed("bad input".into())));
        let t = task(|_| panic!("boom"));
        assert_eq!(t.run(), Some(Status::Failed));
        assert_eq!(
            t.outcome(),
            Some(Outcome::Failed("the task panicked: boom".into()))
        );
    }

    #[test]
    fn cancel_before_start_means_it_never_runs() {
        let t = task(|_| unreachable!());
        assert_eq!(t.cancel(), CancelOutcome::CancelledBeforeStart);
        assert_eq!(t.run(), None);
        assert_eq!(t.outcome(), Some(Outcome::Cancelled));
        assert_eq!(t.cancel(), CancelOutcome::TooLate);
    }

    #[test]
    fn cancel_while_running_is_requested_and_ends_cancelled() {
        let t = std::sync::Arc::new(task(|state| {
            state.report_progress(0.5);
            Ok(1)
        }));
        // Simulate the race deterministically: the request lands while the job runs.
        let state = t.state().clone();
        assert!(state.try_start());
        assert_eq!(t.state().cancel(), CancelOutcome::Requested);
        assert!(state.is_cancel_requested());
        assert_eq!(state.finish(true), Status::Cancelled);
    }

    #[test]
    fn progress_is_clamped() {
        let s = TaskState::new(1);
        s.report_progress(1.5);
        assert_eq!(s.progress(), 1.0);
        s.report_progress(-1.0);
        assert_eq!(s.progress(), 0.0);
        s.report_progress(f64::NAN);
        assert_eq!(s.progress(), 0.0);
        s.report_progress(0.25);
        assert_eq!(s.progress(), 0.25);
    }
}
