//! The worker pool: N threads run [`Task`]s by priority; each finished task is sent to a
//! completion queue that the main thread drains (see [`crate::drain`]).
//!
//! Idle workers block on crossbeam channels: no spinning, no sleep loops. Stopping the pool
//! cancels every task still queued (each delivers a `Cancelled` completion), asks running tasks
//! to cancel, and joins the workers when asked to wait.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, select, unbounded};
use parking_lot::{Mutex, RwLock};

use crate::group::Group;
use crate::task::{CancelOutcome, Status, Task, TaskState};

/// The most worker threads a pool accepts: far past any core count, low enough to catch a typo.
pub const MAX_THREADS: usize = 256;

/// How many finished task ids [`Pool::status_of`] still remembers after they were collected.
const RECENT_STATUSES: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// Runs before every waiting `Normal` task.
    High,
    Normal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    AlreadyRunning,
    /// Zero or more than [`MAX_THREADS`].
    InvalidThreadCount(usize),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::AlreadyRunning => f.write_str("the workers are already running"),
            StartError::InvalidThreadCount(n) => {
                write!(f, "{n} threads is not between 1 and {MAX_THREADS}")
            }
        }
    }
}

/// How long [`Pool::stop`] waits for the workers to exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopWait {
    /// Return at once; the workers exit on their own.
    No,
    /// Until every worker has exited, however long its task runs.
    Forever,
    /// At most this long; workers still busy after it are left to finish on their own.
    Within(Duration),
}

/// What [`Pool::stop`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StopReport {
    /// Queued tasks that were cancelled before they started.
    pub cancelled: usize,
    /// Workers still running a task when the wait ended (left to exit on their own).
    pub still_running: usize,
}

/// Submitting to a pool that is not running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped;

/// Counters since the pool was created.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PoolStats {
    pub submitted: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Queued, not yet started.
    pub pending: u64,
    /// Runs in progress now: one per worker running a task or part of a group, plus one per task
    /// that a waiting task runs inline on its worker ([`Pool::wait`]).
    pub running: u64,
    /// Workers running something now; a worker that runs a task inline for the task it is
    /// running counts once. At most `workers`.
    pub busy_workers: u64,
    pub workers: u64,
    /// Mean run time of the tasks that ran, in microseconds.
    pub mean_task_usec: f64,
}

thread_local! {
    /// The task the current worker thread is running, for `is_cancelled`/`report_progress`.
    static CURRENT_TASK: RefCell<Option<Arc<TaskState>>> = const { RefCell::new(None) };
    /// Which pool the current thread works for (the address of its shared state); 0 for none.
    static WORKER_OF: Cell<usize> = const { Cell::new(0) };
}

/// The state of the task running on this thread, when this thread is a pool worker running one.
pub fn current_task() -> Option<Arc<TaskState>> {
    CURRENT_TASK.with(|current| current.borrow().clone())
}

/// Whether the calling thread is a worker of any pool.
pub fn is_worker_thread() -> bool {
    WORKER_OF.get() != 0
}

/// A pool of worker threads with a completion queue. Cloning shares the same pool.
pub struct Pool<R> {
    shared: Arc<Shared<R>>,
}

impl<R> Clone for Pool<R> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

struct Shared<R> {
    running: RwLock<Option<Running<R>>>,
    completed_tx: Sender<Arc<Task<R>>>,
    completed_rx: Receiver<Arc<Task<R>>>,
    /// Submitted tasks whose completion has not been collected yet.
    tasks: Mutex<HashMap<u64, Arc<Task<R>>>>,
    recent: Mutex<VecDeque<(u64, Status)>>,
    next_id: AtomicU64,
    submitted: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    pending: AtomicI64,
    busy: AtomicI64,
    busy_workers: AtomicI64,
    run_nanos: AtomicU64,
    runs: AtomicU64,
    /// Workers of earlier runs that a stop did not wait for (or not long enough), so that
    /// [`Pool::join_all`] can still wait for them.
    lingering: Mutex<Vec<Lingering>>,
}

/// The workers of one run that were still running when its stop returned.
struct Lingering {
    exited: Receiver<()>,
    workers: Vec<JoinHandle<()>>,
}

struct Running<R> {
    high: Sender<Arc<Task<R>>>,
    normal: Sender<Arc<Task<R>>>,
    high_rx: Receiver<Arc<Task<R>>>,
    normal_rx: Receiver<Arc<Task<R>>>,
    stopping: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    /// Disconnects once every worker has exited: each holds a sender until it returns.
    exited: Receiver<()>,
}

impl<R: Send + 'static> Default for Pool<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Send + 'static> Pool<R> {
    /// A pool with no workers yet; see [`Pool::start`].
    pub fn new() -> Self {
        let (completed_tx, completed_rx) = unbounded();
        Self {
            shared: Arc::new(Shared {
                running: RwLock::new(None),
                completed_tx,
                completed_rx,
                tasks: Mutex::new(HashMap::new()),
                recent: Mutex::new(VecDeque::new()),
                next_id: AtomicU64::new(1),
                submitted: AtomicU64::new(0),
                completed: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                cancelled: AtomicU64::new(0),
                pending: AtomicI64::new(0),
                busy: AtomicI64::new(0),
                busy_workers: AtomicI64::new(0),
                run_nanos: AtomicU64::new(0),
                runs: AtomicU64::new(0),
                lingering: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Starts `threads` workers named `{name_prefix}{index}`.
    pub fn start(&self, threads: usize, name_prefix: &str) -> Result<(), StartError> {
        if threads == 0 || threads > MAX_THREADS {
            return Err(StartError::InvalidThreadCount(threads));
        }
        let mut running = self.shared.running.write();
        if running.is_some() {
            return Err(StartError::AlreadyRunning);
        }
        let (high, high_rx) = unbounded();
        let (normal, normal_rx) = unbounded();
        let stopping = Arc::new(AtomicBool::new(false));
        let (alive, exited) = unbounded::<()>();
        let workers = (0..threads)
            .map(|index| {
                let shared = self.shared.clone();
                let (high_rx, normal_rx) = (high_rx.clone(), normal_rx.clone());
                let stopping = stopping.clone();
                let alive = alive.clone();
                std::thread::Builder::new()
                    .name(format!("{name_prefix}{index}"))
                    .spawn(move || {
                        shared.work(&high_rx, &normal_rx, &stopping);
                        drop(alive);
                    })
                    .expect("the OS refused to start a worker thread")
            })
            .collect();
        *running = Some(Running {
            high,
            normal,
            high_rx,
            normal_rx,
            stopping,
            workers,
            exited,
        });
        Ok(())
    }

    pub fn is_running(&self) -> bool {
        self.shared.running.read().is_some()
    }

    pub fn worker_count(&self) -> usize {
        self.shared
            .running
            .read()
            .as_ref()
            .map_or(0, |r| r.workers.len())
    }

    /// Stops the workers: queued tasks are cancelled, running ones asked to cancel, and the
    /// workers exit once their task returns. `wait` says how long to wait for that; from one of
    /// the pool's own workers it never waits (a worker cannot wait for itself). Does nothing if
    /// the pool is not running.
    pub fn stop(&self, wait: StopWait) -> StopReport {
        let Some(running) = self.shared.running.write().take() else {
            return StopReport::default();
        };
        running.stopping.store(true, Ordering::Release);
        drop((running.high, running.normal));
        let mut report = StopReport::default();
        for task in running
            .high_rx
            .try_iter()
            .chain(running.normal_rx.try_iter())
        {
            if self.shared.cancel_task(&task) == CancelOutcome::CancelledBeforeStart {
                report.cancelled += 1;
            }
        }
        for task in self.in_flight() {
            if task.status() == Status::Running {
                task.cancel();
            }
        }
        let wait = if self.is_own_worker() {
            StopWait::No
        } else {
            wait
        };
        // Workers never send on `exited`: a disconnect means every one has returned.
        let all_exited = match wait {
            StopWait::No => false,
            StopWait::Forever => running.exited.recv().is_err(),
            StopWait::Within(timeout) => {
                running.exited.recv_timeout(timeout) == Err(RecvTimeoutError::Disconnected)
            }
        };
        let mut left = Vec::new();
        for worker in running.workers {
            if all_exited || (wait != StopWait::No && worker.is_finished()) {
                let _ = worker.join();
            } else {
                // Left to exit when its task returns; `join_all` can still wait for it.
                report.still_running += usize::from(!worker.is_finished());
                left.push(worker);
            }
        }
        if !left.is_empty() {
            self.shared.lingering.lock().push(Lingering {
                exited: running.exited,
                workers: left,
            });
        }
        report
    }

    /// Stops the pool (as [`Pool::stop`] does) and waits until every worker it ever started has
    /// exited, those an earlier stop left running included, however long their tasks take. While
    /// some still run, calls `nag` after `first` and then every `every`, with the time waited so
    /// far and the tasks still running, so that the caller can say what it waits for. From one of
    /// the pool's own workers it stops without waiting (a worker cannot wait for itself).
    pub fn join_all(
        &self,
        first: Duration,
        every: Duration,
        mut nag: impl FnMut(Duration, &[Arc<Task<R>>]),
    ) {
        self.stop(StopWait::No);
        if self.is_own_worker() {
            return;
        }
        let started = Instant::now();
        let mut next_nag = started + first;
        let lingering = std::mem::take(&mut *self.shared.lingering.lock());
        for run in lingering {
            while run.exited.recv_deadline(next_nag) == Err(RecvTimeoutError::Timeout) {
                let running: Vec<_> = self
                    .in_flight()
                    .into_iter()
                    .filter(|task| task.status() == Status::Running)
                    .collect();
                nag(started.elapsed(), &running);
                next_nag += every;
            }
            for worker in run.workers {
                let _ = worker.join();
            }
        }
    }

    /// Queues `job`; returns its task (whose id is > 0), or [`Stopped`].
    pub fn submit(
        &self,
        priority: Priority,
        job: impl FnOnce(&TaskState) -> Result<R, String> + Send + 'static,
    ) -> Result<Arc<Task<R>>, Stopped> {
        self.enqueue(priority, |id| Task::new(id, Box::new(job)), |_| 1)
    }

    /// Queues a group task: `part(i)` runs for every `i` in `0..count`, spread over the workers
    /// (each claims the next index when it finishes one); `combine` turns the results, in index
    /// order, into the task's result. Its progress is the share of parts done. The first part
    /// that fails makes the rest be skipped and the task fail with that part's message.
    pub fn submit_group(
        &self,
        priority: Priority,
        count: usize,
        part: impl Fn(usize, &TaskState) -> Result<R, String> + Send + Sync + 'static,
        combine: impl FnOnce(Vec<R>) -> R + Send + 'static,
    ) -> Result<Arc<Task<R>>, Stopped> {
        let group = Group::new(count, Box::new(part), Box::new(combine));
        self.enqueue(
            priority,
            |id| Task::new_group(id, group),
            // One entry per worker that can help; an empty group still needs one to end it.
            |workers| count.clamp(1, workers),
        )
    }

    fn enqueue(
        &self,
        priority: Priority,
        make: impl FnOnce(u64) -> Task<R>,
        entries: impl FnOnce(usize) -> usize,
    ) -> Result<Arc<Task<R>>, Stopped> {
        let running = self.shared.running.read();
        let running = running.as_ref().ok_or(Stopped)?;
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let task = Arc::new(make(id));
        self.shared.tasks.lock().insert(id, task.clone());
        self.shared.submitted.fetch_add(1, Ordering::Relaxed);
        self.shared.pending.fetch_add(1, Ordering::Relaxed);
        let queue = match priority {
            Priority::High => &running.high,
            Priority::Normal => &running.normal,
        };
        for _ in 0..entries(running.workers.len()) {
            // Cannot fail: the receivers live in `running`, which the read lock keeps alive.
            let _ = queue.send(task.clone());
        }
        Ok(task)
    }

    /// A task whose completion has not been collected yet.
    pub fn task(&self, id: u64) -> Option<Arc<Task<R>>> {
        self.shared.tasks.lock().get(&id).cloned()
    }

    /// The status of task `id`: live tasks, then the last few thousand collected ones.
    pub fn status_of(&self, id: u64) -> Option<Status> {
        if let Some(task) = self.task(id) {
            return Some(task.status());
        }
        let recent = self.shared.recent.lock();
        recent.iter().rev().find(|(i, _)| *i == id).map(|(_, s)| *s)
    }

    /// Cancels task `id` if it is still pending, or asks it to stop if running. `None` when no
    /// such task is in flight.
    pub fn cancel(&self, id: u64) -> Option<CancelOutcome> {
        let task = self.task(id)?;
        Some(self.shared.cancel_task(&task))
    }

    /// Finished tasks, in the order they finished, for the main thread to collect.
    pub fn completions(&self) -> &Receiver<Arc<Task<R>>> {
        &self.shared.completed_rx
    }

    /// Forgets a finished task once its completion was handled (its status stays queryable for
    /// a while through [`Pool::status_of`]).
    pub fn collect(&self, task: &Task<R>) {
        self.shared.tasks.lock().remove(&task.id());
        let mut recent = self.shared.recent.lock();
        if recent.len() == RECENT_STATUSES {
            recent.pop_front();
        }
        recent.push_back((task.id(), task.status()));
    }

    /// Every task submitted and not yet collected.
    pub fn in_flight(&self) -> Vec<Arc<Task<R>>> {
        self.shared.tasks.lock().values().cloned().collect()
    }

    /// Tasks submitted and not yet collected.
    pub fn outstanding(&self) -> usize {
        self.shared.tasks.lock().len()
    }

    /// Blocks until `task` has finished, or `timeout` passed; returns whether it finished. On a
    /// worker of this pool a task that has not started is run right here (and a group is joined),
    /// so a task waiting for another never deadlocks the pool, however few workers it has.
    pub fn wait(&self, task: &Arc<Task<R>>, timeout: Option<Duration>) -> bool {
        self.wait_unless(task, timeout, || false)
    }

    /// Like [`Pool::wait`], and also gives up (returning `false`) once `give_up()` holds: it is
    /// checked again whenever [`Pool::wake_waiters`] runs, so whoever makes it true and then
    /// calls that never leaves a waiter asleep.
    pub fn wait_unless(
        &self,
        task: &Arc<Task<R>>,
        timeout: Option<Duration>,
        give_up: impl Fn() -> bool,
    ) -> bool {
        if self.is_own_worker() && !task.status().is_finished() {
            self.shared.execute(task);
        }
        task.state().wait_unless(timeout, give_up)
    }

    /// Wakes every thread in [`Pool::wait_unless`] (on any task not yet collected: a collected
    /// one has finished, so its waiters are already awake) to check its `give_up` again.
    pub fn wake_waiters(&self) {
        for task in self.in_flight() {
            task.state().wake_waiters();
        }
    }

    /// Whether the calling thread is one of this pool's workers.
    pub fn is_own_worker(&self) -> bool {
        WORKER_OF.get() == Arc::as_ptr(&self.shared) as usize
    }

    pub fn stats(&self) -> PoolStats {
        let s = &self.shared;
        let runs = s.runs.load(Ordering::Relaxed);
        PoolStats {
            submitted: s.submitted.load(Ordering::Relaxed),
            completed: s.completed.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            cancelled: s.cancelled.load(Ordering::Relaxed),
            pending: s.pending.load(Ordering::Relaxed).max(0) as u64,
            running: s.busy.load(Ordering::Relaxed).max(0) as u64,
            busy_workers: s.busy_workers.load(Ordering::Relaxed).max(0) as u64,
            workers: self.worker_count() as u64,
            mean_task_usec: if runs == 0 {
                0.0
            } else {
                s.run_nanos.load(Ordering::Relaxed) as f64 / runs as f64 / 1000.0
            },
        }
    }
}

impl<R: Send + 'static> Shared<R> {
    fn work(
        self: &Arc<Self>,
        high: &Receiver<Arc<Task<R>>>,
        normal: &Receiver<Arc<Task<R>>>,
        stopping: &AtomicBool,
    ) {
        WORKER_OF.set(Arc::as_ptr(self) as usize);
        while let Some(task) = next_task(high, normal) {
            if stopping.load(Ordering::Acquire) {
                self.cancel_task(&task);
            } else {
                self.execute(&task);
            }
        }
    }

    /// Runs `task` on this thread if it is still pending, and delivers its completion.
    fn execute(&self, task: &Arc<Task<R>>) {
        let previous = CURRENT_TASK.with(|c| c.borrow_mut().replace(task.state().clone()));
        // Nested only when a waiting task runs this one inline: its worker is already busy.
        let outermost = previous.is_none();
        self.busy.fetch_add(1, Ordering::Relaxed);
        if outermost {
            self.busy_workers.fetch_add(1, Ordering::Relaxed);
        }
        let started = Instant::now();
        let ran = task.run_then(|| {
            self.pending.fetch_sub(1, Ordering::Relaxed);
        });
        CURRENT_TASK.with(|c| *c.borrow_mut() = previous);
        if outermost {
            self.busy_workers.fetch_sub(1, Ordering::Relaxed);
        }
        self.busy.fetch_sub(1, Ordering::Relaxed);
        if let Some(status) = ran {
            self.run_nanos
                .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            self.runs.fetch_add(1, Ordering::Relaxed);
            self.deliver(task, status);
        }
    }

    fn cancel_task(&self, task: &Arc<Task<R>>) -> CancelOutcome {
        let outcome = task.cancel();
        if outcome == CancelOutcome::CancelledBeforeStart {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            self.deliver(task, Status::Cancelled);
        }
        outcome
    }

    fn deliver(&self, task: &Arc<Task<R>>, status: Status) {
        let counter = match status {
            Status::Completed => &self.completed,
            Status::Failed => &self.failed,
            _ => &self.cancelled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        // Cannot fail: `self` owns the receiver.
        let _ = self.completed_tx.send(task.clone());
    }
}

/// High priority first; blocks while both queues are empty; `None` once they are closed and
/// drained.
fn next_task<T>(high: &Receiver<T>, normal: &Receiver<T>) -> Option<T> {
    if let Ok(task) = high.try_recv() {
        return Some(task);
    }
    if let Ok(task) = normal.try_recv() {
        return Some(task);
    }
    select! {
        recv(high) -> task => task.ok().or_else(|| normal.recv().ok()),
        recv(normal) -> task => task.ok().or_else(|| high.recv().ok()),
    }
}
