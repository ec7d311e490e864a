//! One unit of pool work: its state ([`TaskState`]), its work until someone runs it, then its
//! outcome and what waits for it.

use std::sync::OnceLock;

use crate::group::Group;
use crate::sync::{AtomicBool, Mutex, Ordering};
use crate::task_state::{CancelOutcome, Reach, Status, TaskState};
use crate::unwind::panic_message;

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
        let status = if result.is_ok() {
            Status::Completed
        } else {
            Status::Failed
        };
        self.end_with(status, result);
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
        match &self.work {
            Work::Outside => None, // Ended from outside only.
            Work::Job(job) => {
                if !self.state.try_start() {
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
                if self.state.try_start() {
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
        self.end_with(status, result);
        status
    }

    /// Stores the outcome of a task that ended `status` with the work's `result` (a result
    /// given to a task asked to cancel is dropped).
    fn end_with(&self, status: Status, result: Result<R, String>) {
        let outcome = match (status, result) {
            (Status::Completed, Ok(value)) => Outcome::Completed(value),
            (Status::Failed, Err(message)) => Outcome::Failed(message),
            _ => Outcome::Cancelled,
        };
        if status == Status::Completed {
            self.state.report_progress(1.0);
        }
        self.store(outcome);
    }

    /// Cancels the task; when it had not started, stores its cancellation and drops its job.
    pub fn cancel(&self) -> CancelOutcome {
        self.cancel_reaching(Reach::Running)
    }

    /// [`Task::cancel`], asking a running task to stop only if `reach` goes that far.
    pub fn cancel_reaching(&self, reach: Reach) -> CancelOutcome {
        let outcome = self.state.cancel_reaching(reach);
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

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
