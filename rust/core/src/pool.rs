//! The worker pool: N threads run [`Task`]s by priority; each finished task is sent to a
//! completion queue that the main thread drains (see [`crate::drain`]).
//!
//! Idle workers block on crossbeam channels: no spinning, no sleep loops. Stopping the pool
//! cancels every task still queued (each delivers a `Cancelled` completion), asks running tasks
//! to cancel, and joins the workers when asked to wait.
//!
//! Waits ([`Pool::wait`]) never deadlock the pool and never overflow a stack:
//! - A worker waiting for a task of its pool that has not started runs it itself, nested in the
//!   wait, at most [`MAX_INLINE_DEPTH`] deep on one thread; past that it blocks.
//! - A pool whose every worker is blocked in a wait while tasks are queued adds a spare worker
//!   (as managed-blocking pools do), up to [`MAX_SPARE_WORKERS`]; a spare exits once it finds no
//!   work for [`SPARE_KEEP_ALIVE`]. So a chain of tasks each waiting for the next, however long,
//!   runs as segments of [`MAX_INLINE_DEPTH`] links, each on a thread of its own.
//! - A wait that would close a cycle of waits, across any pools, is refused
//!   ([`crate::wait_graph`]).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::group::Group;
use crate::sync::channel::{
    Receiver, RecvTimeoutError, Select, Sender, TryRecvError, after, never, unbounded,
};
use crate::sync::lot::{Mutex, RwLock};
use crate::sync::rc::{Arc, Weak};
use crate::sync::thread::{Builder, JoinHandle};
use crate::sync::{
    AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering, thread_local, unmodelled,
};
pub use crate::task::Priority;
use crate::task::Task;
use crate::task_state::{CancelOutcome, Reach, Status, TaskState, cancel_together};
use crate::timer::Timer;
use crate::wait_graph::{Edge, TaskRef, WaitCycle, WaitGraph};

/// The most worker threads a pool accepts: far past any core count, low enough to catch a typo.
pub const MAX_THREADS: usize = 256;

/// How many tasks one thread runs nested in its waits at most (a task waiting for a queued task
/// runs it inside the wait, and that one may wait in turn), so at most 128 tasks are nested on one
/// thread. Each level costs stack: measured, about 7.5 KiB for a one-frame script task in a debug
/// build of a binding (2 MiB overflowed at ~290 levels; ~650 in a release build), plus its script
/// frames, which the measured script engine's debug builds also cap at 1024 per thread. 128 levels
/// leave 8 script frames per level under that cap (measured: 8 fit, 9 overflow), and their native
/// stack fits in [`WORKER_STACK`] several times over.
pub const MAX_INLINE_DEPTH: usize = 127;

/// The most spare workers a pool adds while every worker is blocked in a wait with tasks queued.
/// With [`MAX_INLINE_DEPTH`] it bounds a chain of tasks each waiting for the next to about
/// `(workers + 256) × 128` links; past it a wait that needs one more worker is refused
/// ([`WaitError::NoWorkerLeft`]) rather than left hanging.
pub const MAX_SPARE_WORKERS: usize = 256;

/// How long a spare worker waits for work before it exits.
pub const SPARE_KEEP_ALIVE: Duration = Duration::from_millis(100);

/// The stack of every worker thread: 8 MiB, what a game engine's own threads get on Linux (Rust's
/// default is 2 MiB), so that script recursion that runs on an engine thread runs on a worker,
/// and [`MAX_INLINE_DEPTH`] nested tasks fit with room to spare.
const WORKER_STACK: usize = 8 << 20;

/// How many finished task ids [`Pool::status_of`] still remembers after they were collected.
const RECENT_STATUSES: usize = 4096;

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
    /// Workers still running a task when the wait ended (left to exit on their own); 0 for a
    /// stop that did not wait.
    pub still_running: usize,
}

/// Submitting to a pool that is not running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped;

/// Why [`Pool::wait`] refused to wait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitError {
    /// The wait would close a cycle of waits, which could never end.
    Cycle(WaitCycle),
    /// Every worker of the pool is blocked in a wait while tasks are queued, and the pool has
    /// `spares` spare workers already, its limit (or the system refused another thread).
    NoWorkerLeft { spares: usize },
}

impl std::fmt::Display for WaitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitError::Cycle(cycle) => write!(f, "{cycle}: a cycle of waits that could never end"),
            WaitError::NoWorkerLeft { spares } => write!(
                f,
                "every worker is blocked in a wait while tasks are queued, and no spare worker can be added to the {spares} running"
            ),
        }
    }
}

/// Counters since the pool was created.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PoolStats {
    pub submitted: u64,
    pub completed: u64,
    pub failed: u64,
    /// Cancelled tasks, those that dropped their work included.
    pub cancelled: u64,
    /// Tasks that ended because their work no longer applied ([`TaskState::drop_work`]).
    pub dropped: u64,
    /// Queued, not yet started (delayed tasks included).
    pub pending: u64,
    /// Of the pending tasks, those still waiting for their delay ([`Pool::submit_delayed`]).
    pub delayed: u64,
    /// Runs in progress now: one per worker running a task or part of a group, plus one per task
    /// that a waiting task runs inline on its worker ([`Pool::wait`]).
    pub running: u64,
    /// Workers (spares included) running something now; a worker that runs a task inline for
    /// the task it is running counts once.
    pub busy_workers: u64,
    pub workers: u64,
    /// Spare workers alive now, added while every worker was blocked in a wait.
    pub spare_workers: u64,
    /// Mean run time of the tasks that ran, in microseconds.
    pub mean_task_usec: f64,
}

thread_local! {
    // No `const { }` initialisers: loom's `thread_local!` does not accept them.
    /// The task the current thread is running, for `is_cancelled`/`report_progress` and as the
    /// waiter in the wait-for graph.
    #[allow(clippy::missing_const_for_thread_local)]
    static CURRENT_TASK: RefCell<Option<Current>> = RefCell::new(None);
    /// Which pool the current thread works for (the address of its shared state); 0 for none.
    #[allow(clippy::missing_const_for_thread_local)]
    static WORKER_OF: Cell<usize> = Cell::new(0);
    /// The same pool, to count this worker as blocked in a wait for a task of any pool.
    #[allow(clippy::missing_const_for_thread_local)]
    static CREW: RefCell<Option<Weak<dyn Crew>>> = RefCell::new(None);
    /// How many tasks this thread runs nested in its waits now (see [`MAX_INLINE_DEPTH`]).
    #[allow(clippy::missing_const_for_thread_local)]
    static INLINE_DEPTH: Cell<usize> = Cell::new(0);
}

#[derive(Clone)]
struct Current {
    task: TaskRef,
    state: crate::sync::Arc<TaskState>,
    /// What [`yield_now`] may run: tasks of this priority or a higher one.
    priority: Priority,
}

/// The state of the task running on this thread: on a pool worker, or on a thread that runs a
/// task it waits for ([`Pool::help`]).
pub fn current_task() -> Option<crate::sync::Arc<TaskState>> {
    CURRENT_TASK.with(|current| current.borrow().as_ref().map(|c| c.state.clone()))
}

fn current_task_ref() -> Option<TaskRef> {
    CURRENT_TASK.with(|current| current.borrow().as_ref().map(|c| c.task))
}

/// A pool's workers, seen from one of them whatever the pool's result type.
trait Crew: Send + Sync {
    /// Counts the calling worker as blocked in a wait; `unblock` ends that. Makes sure first
    /// that the pool does not stall for it.
    fn block(&self) -> Result<(), WaitError>;
    fn unblock(&self);
    /// See [`yield_now`].
    fn run_queued(&self, at_least: Priority) -> usize;
}

/// Counts the calling worker, if it is one (of any pool), as blocked in a wait while it lives.
struct Blocked(Option<Arc<dyn Crew>>);

impl Blocked {
    fn new() -> Result<Self, WaitError> {
        let crew = CREW.with(|crew| crew.borrow().as_ref().and_then(Weak::upgrade));
        if let Some(crew) = &crew {
            crew.block()?;
        }
        Ok(Self(crew))
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        if let Some(crew) = &self.0 {
            crew.unblock();
        }
    }
}

/// Gives every pool its number in the wait-for graph.
static NEXT_POOL: unmodelled::AtomicU64 = unmodelled::AtomicU64::new(1);

/// Whether the calling thread is a worker of any pool.
pub fn is_worker_thread() -> bool {
    WORKER_OF.with(Cell::get) != 0
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
    /// This pool's number in the wait-for graph.
    uid: u64,
    max_spares: usize,
    running: RwLock<Option<Running<R>>>,
    completed_tx: Sender<Arc<Task<R>>>,
    completed_rx: Receiver<Arc<Task<R>>>,
    /// Submitted tasks whose completion has not been collected yet.
    tasks: Mutex<HashMap<u64, Arc<Task<R>>>>,
    recent: Mutex<VecDeque<(u64, Status)>>,
    next_id: AtomicU64,
    // The counters that submitters and workers move on every task, each on a cache line of its
    // own so that they do not slow each other down.
    submitted: CachePadded<AtomicU64>,
    completed: CachePadded<AtomicU64>,
    failed: CachePadded<AtomicU64>,
    cancelled: CachePadded<AtomicU64>,
    dropped: AtomicU64,
    pending: CachePadded<AtomicI64>,
    /// Pending tasks waiting for their delay: not queued, so no reason for a spare worker.
    delayed: AtomicI64,
    busy: CachePadded<AtomicI64>,
    busy_workers: CachePadded<AtomicI64>,
    /// Workers (spares included) blocked in a wait now.
    blocked: AtomicUsize,
    /// Spare workers alive now.
    spares: AtomicUsize,
    run_nanos: CachePadded<AtomicU64>,
    runs: CachePadded<AtomicU64>,
    /// Workers of earlier runs that a stop did not wait for (or not long enough), so that
    /// [`Pool::join_all`] can still wait for them.
    lingering: Mutex<Vec<Lingering>>,
    /// Whether submissions are queued in `local` rather than for the workers
    /// ([`Pool::set_local`]).
    local_mode: AtomicBool,
    local: Mutex<LocalQueue<R>>,
}

/// The workers of one run that were still running when its stop returned.
struct Lingering {
    exited: Receiver<()>,
    workers: Vec<JoinHandle<()>>,
}

impl Lingering {
    fn has_exited(&self) -> bool {
        self.exited.try_recv() == Err(TryRecvError::Disconnected)
    }
}

/// One queue per priority.
struct Queues<T> {
    high: T,
    normal: T,
    low: T,
}

impl<T> Queues<T> {
    fn of(&self, priority: Priority) -> &T {
        match priority {
            Priority::High => &self.high,
            Priority::Normal => &self.normal,
            Priority::Low => &self.low,
        }
    }
}

impl<T: Clone> Clone for Queues<T> {
    fn clone(&self) -> Self {
        Self {
            high: self.high.clone(),
            normal: self.normal.clone(),
            low: self.low.clone(),
        }
    }
}

impl<T> Queues<Receiver<T>> {
    /// Most urgent first: the queues of `at_least` and above, highest first.
    fn down_to(&self, at_least: Priority) -> impl Iterator<Item = &Receiver<T>> {
        [
            (Priority::High, &self.high),
            (Priority::Normal, &self.normal),
            (Priority::Low, &self.low),
        ]
        .into_iter()
        .filter(move |(priority, _)| *priority >= at_least)
        .map(|(_, queue)| queue)
    }
}

struct Running<R> {
    senders: Queues<Sender<Arc<Task<R>>>>,
    receivers: Queues<Receiver<Arc<Task<R>>>>,
    /// Started by the first delayed task: a pool that never delays runs no timer thread.
    timer: Mutex<Option<Timer<Arc<Task<R>>>>>,
    stopping: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    /// The pool's state, for the spare workers it starts.
    shared: Weak<Shared<R>>,
    /// The spare workers started so far; locked while one is added or retires.
    spare_workers: Mutex<Vec<JoinHandle<()>>>,
    name_prefix: String,
    /// Cloned by every worker, spares included; dropped by `stop`.
    alive: Sender<()>,
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
        Self::with_max_spares(MAX_SPARE_WORKERS)
    }

    /// A pool that adds at most `max_spares` spare workers (rather than [`MAX_SPARE_WORKERS`])
    /// while every worker is blocked in a wait.
    pub fn with_max_spares(max_spares: usize) -> Self {
        let (completed_tx, completed_rx) = unbounded();
        Self {
            shared: Arc::new(Shared {
                uid: NEXT_POOL.fetch_add(1, Ordering::Relaxed),
                max_spares: max_spares.min(MAX_SPARE_WORKERS),
                running: RwLock::new(None),
                completed_tx,
                completed_rx,
                tasks: Mutex::new(HashMap::new()),
                recent: Mutex::new(VecDeque::new()),
                next_id: AtomicU64::new(1),
                submitted: CachePadded::new(AtomicU64::new(0)),
                completed: CachePadded::new(AtomicU64::new(0)),
                failed: CachePadded::new(AtomicU64::new(0)),
                cancelled: CachePadded::new(AtomicU64::new(0)),
                dropped: AtomicU64::new(0),
                pending: CachePadded::new(AtomicI64::new(0)),
                delayed: AtomicI64::new(0),
                busy: CachePadded::new(AtomicI64::new(0)),
                busy_workers: CachePadded::new(AtomicI64::new(0)),
                blocked: AtomicUsize::new(0),
                spares: AtomicUsize::new(0),
                run_nanos: CachePadded::new(AtomicU64::new(0)),
                runs: CachePadded::new(AtomicU64::new(0)),
                lingering: Mutex::new(Vec::new()),
                local_mode: AtomicBool::new(false),
                local: Mutex::new(LocalQueue::default()),
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
        let (low, low_rx) = unbounded();
        let receivers = Queues {
            high: high_rx,
            normal: normal_rx,
            low: low_rx,
        };
        let stopping = Arc::new(AtomicBool::new(false));
        let (alive, exited) = unbounded::<()>();
        let workers = (0..threads)
            .map(|index| {
                let shared = self.shared.clone();
                let queues = receivers.clone();
                let stopping = stopping.clone();
                let alive = alive.clone();
                Builder::new()
                    .name(format!("{name_prefix}{index}"))
                    .stack_size(WORKER_STACK)
                    .spawn(move || {
                        shared.work(&queues, &stopping, None);
                        drop(alive);
                    })
                    .expect("the OS refused to start a worker thread")
            })
            .collect();
        *running = Some(Running {
            senders: Queues { high, normal, low },
            receivers,
            timer: Mutex::new(None),
            stopping,
            workers,
            shared: Arc::downgrade(&self.shared),
            spare_workers: Mutex::new(Vec::new()),
            name_prefix: name_prefix.to_string(),
            alive,
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
        let local_cancelled = self.cancel_local();
        let Some(running) = self.shared.running.write().take() else {
            return StopReport {
                cancelled: local_cancelled,
                ..StopReport::default()
            };
        };
        running.stopping.store(true, Ordering::Release);
        // Joined before the queues close: it queues tasks as their delay runs out.
        let delayed = running
            .timer
            .into_inner()
            .map(Timer::stop)
            .unwrap_or_default();
        drop((running.senders, running.alive));
        let mut report = StopReport {
            cancelled: local_cancelled,
            ..StopReport::default()
        };
        let queues = &running.receivers;
        for task in queues
            .high
            .try_iter()
            .chain(queues.normal.try_iter())
            .chain(queues.low.try_iter())
            .chain(delayed)
        {
            if self.shared.cancel_task(&task, Reach::Running) == CancelOutcome::CancelledBeforeStart
            {
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
        let spares = running.spare_workers.into_inner();
        for worker in running.workers.into_iter().chain(spares) {
            if all_exited || worker.is_finished() {
                let _ = worker.join();
            } else {
                // Left to exit when its task returns; `join_all` can still wait for it.
                left.push(worker);
            }
        }
        if wait != StopWait::No {
            report.still_running = left.len();
        }
        let mut lingering = self.shared.lingering.lock();
        // Earlier runs whose workers have all exited since: joined now, so that a pool started
        // and stopped over and over does not keep every exited thread's stack until it is freed.
        for run in lingering.extract_if(.., |run| run.has_exited()) {
            run.workers
                .into_iter()
                .for_each(|worker| drop(worker.join()));
        }
        if !left.is_empty() {
            lingering.push(Lingering {
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
        self.submit_group_limited(priority, count, 0, part, combine)
    }

    fn enqueue(
        &self,
        priority: Priority,
        make: impl FnOnce(u64) -> Task<R>,
        entries: impl FnOnce(usize) -> usize,
    ) -> Result<Arc<Task<R>>, Stopped> {
        if self.is_local() {
            return Ok(self.enqueue_local(priority, make));
        }
        let running = self.shared.running.read();
        let running = running.as_ref().ok_or(Stopped)?;
        let task = self.shared.register(|id| make(id).with_priority(priority));
        // SeqCst, then `blocked` read: see `Shared::keep_progress`.
        self.shared.pending.fetch_add(1, Ordering::SeqCst);
        self.shared
            .queue(running, &task, entries(running.workers.len()));
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
        self.cancel_reaching(id, Reach::Running)
    }

    /// [`Pool::cancel`], asking a running task to stop only if `reach` goes that far.
    pub fn cancel_reaching(&self, id: u64, reach: Reach) -> Option<CancelOutcome> {
        let task = self.task(id)?;
        Some(self.shared.cancel_task(&task, reach))
    }

    /// Cancels every task submitted and not yet ended, as one scope ([`cancel_together`]: the
    /// queued ones before any running one is asked to stop). Returns how many it cancelled or
    /// asked to stop; a task submitted meanwhile may be missed.
    pub fn cancel_all(&self) -> usize {
        cancel_together(&self.in_flight(), |task, reach| {
            self.shared.cancel_task(task, reach)
        })
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
    /// worker of this pool a task that has not started is run right here (and a group is
    /// joined), nested at most [`MAX_INLINE_DEPTH`] deep; past that the worker blocks, and while
    /// every worker is blocked with tasks queued the pool adds spare workers. So a task waiting
    /// for another never deadlocks the pool, however few workers it has.
    ///
    /// Refused (before any waiting) when the task running on this thread would close a cycle of
    /// waits ([`WaitError::Cycle`]), or when no worker is left to run what is queued
    /// ([`WaitError::NoWorkerLeft`]).
    pub fn wait(&self, task: &Arc<Task<R>>, timeout: Option<Duration>) -> Result<bool, WaitError> {
        self.wait_unless(task, timeout, || false)
    }

    /// Like [`Pool::wait`], and also gives up (returning `Ok(false)`) once `give_up()` holds: it
    /// is checked again whenever [`Pool::wake_waiters`] runs, so whoever makes it true and then
    /// calls that never leaves a waiter asleep.
    pub fn wait_unless(
        &self,
        task: &Arc<Task<R>>,
        timeout: Option<Duration>,
        give_up: impl Fn() -> bool,
    ) -> Result<bool, WaitError> {
        // A finished task needs no edge in the wait-for graph (it waits for nothing), no inline
        // run and no spare: only its latch, set as it finished.
        if !task.status().is_finished() {
            let _edge = self.begin_wait(task).map_err(WaitError::Cycle)?;
            // A task queued for `run_local` runs on that thread alone, even when a worker waits.
            if self.is_own_worker() && !task.is_local() {
                self.run_here(task);
            }
            if !task.status().is_finished() {
                let _blocked = Blocked::new()?;
                return Ok(task.state().wait_unless(timeout, give_up));
            }
        }
        Ok(task.state().wait_unless(timeout, give_up))
    }

    /// Records in the wait-for graph, until the returned edge drops, that the task running on
    /// this thread (if any) waits for `task`; refuses a wait that would close a cycle. For a
    /// caller that waits in a way of its own (the main thread); [`Pool::wait`] does this itself.
    pub fn begin_wait(&self, task: &Task<R>) -> Result<Option<Edge<'static>>, WaitCycle> {
        let Some(waiter) = current_task_ref() else {
            return Ok(None);
        };
        WaitGraph::global()
            .enter(waiter, self.task_ref(task))
            .map(Some)
    }

    /// For a thread that waits for `task` and is not one of the workers (the main thread): runs
    /// `task` right here if no worker has started it and no worker is free to (every one is
    /// busy), within [`MAX_INLINE_DEPTH`]. Returns whether it ran it. Calling it again whenever
    /// the waiter wakes covers workers that became busy meanwhile.
    pub fn help(&self, task: &Arc<Task<R>>) -> bool {
        task.status() == Status::Pending && self.idle_workers() == 0 && self.run_here(task)
    }

    /// Runs (or joins) `task` on this thread, nested in the caller's wait, unless this thread
    /// already runs [`MAX_INLINE_DEPTH`] tasks so, or the task waits for its delay. Returns
    /// whether it tried.
    fn run_here(&self, task: &Arc<Task<R>>) -> bool {
        !task.is_held() && self.shared.run_nested(task).is_some()
    }

    /// Workers (spares included) waiting for a task to run now.
    fn idle_workers(&self) -> usize {
        let busy = self.shared.busy_workers.load(Ordering::SeqCst).max(0) as usize;
        (self.worker_count() + self.shared.spares.load(Ordering::SeqCst)).saturating_sub(busy)
    }

    fn task_ref(&self, task: &Task<R>) -> TaskRef {
        TaskRef {
            pool: self.shared.uid,
            task: task.id(),
        }
    }

    /// Names this pool in the descriptions of wait cycles (see [`WaitError::Cycle`]); until
    /// then it is "pool N".
    pub fn set_name(&self, name: impl Into<String>) {
        WaitGraph::global().set_name(self.shared.uid, name);
    }

    /// Whether the calling thread is running one of this pool's tasks (on a worker, or nested
    /// in a wait on another thread: [`Pool::help`]).
    pub fn in_own_task(&self) -> bool {
        current_task_ref().is_some_and(|task| task.pool == self.shared.uid)
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
        WORKER_OF.with(Cell::get) == Arc::as_ptr(&self.shared) as usize
    }

    pub fn stats(&self) -> PoolStats {
        let s = &self.shared;
        let runs = s.runs.load(Ordering::Relaxed);
        PoolStats {
            submitted: s.submitted.load(Ordering::Relaxed),
            completed: s.completed.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            cancelled: s.cancelled.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            pending: s.pending.load(Ordering::Relaxed).max(0) as u64,
            delayed: s.delayed.load(Ordering::Relaxed).max(0) as u64,
            running: s.busy.load(Ordering::Relaxed).max(0) as u64,
            busy_workers: s.busy_workers.load(Ordering::Relaxed).max(0) as u64,
            workers: self.worker_count() as u64,
            spare_workers: s.spares.load(Ordering::Relaxed) as u64,
            mean_task_usec: if runs == 0 {
                0.0
            } else {
                s.run_nanos.load(Ordering::Relaxed) as f64 / runs as f64 / 1000.0
            },
        }
    }
}

/// Tasks that run on the thread that asks for them ([`Pool::run_local`]) instead of on the
/// workers: debugging on one thread, platforms without threads.
impl<R: Send + 'static> Pool<R> {
    /// From now on, queues submitted tasks for [`Pool::run_local`] (`true`) or for the workers
    /// (`false`). Tasks already queued stay where they are. Queued for `run_local`, a task needs
    /// no worker: it is accepted whether the workers run or not, and [`Pool::stop`] cancels it.
    pub fn set_local(&self, local: bool) {
        self.shared.local_mode.store(local, Ordering::Release);
    }

    /// Whether submitted tasks are queued for [`Pool::run_local`].
    pub fn is_local(&self) -> bool {
        self.shared.local_mode.load(Ordering::Acquire)
    }

    /// Whether tasks wait for [`Pool::run_local`].
    pub fn has_local(&self) -> bool {
        !self.shared.local.lock().is_empty()
    }

    /// Runs tasks queued for this thread ([`Pool::set_local`]) right here, most urgent first and
    /// in submission order within a priority, bounded like [`crate::drain()`]: at most the tasks
    /// queued when it starts (those they submit wait for the next call), at most
    /// `limits.max_items`, and no new one once `limits.budget` is spent (at least one runs).
    /// Each runs as a task of this pool ([`current_task`], cancellation, progress), a group's
    /// calls one after the other in index order. Nested in a task this thread runs, it stops at
    /// [`MAX_INLINE_DEPTH`]. Returns how many it took from the queue.
    pub fn run_local(&self, limits: crate::DrainLimits) -> usize {
        let started = Instant::now();
        self.release_due_local();
        let mut quota = self.shared.local.lock().len();
        if let Some(max) = limits.max_items {
            quota = quota.min(max);
        }
        let mut ran = 0;
        while ran < quota && INLINE_DEPTH.with(Cell::get) < MAX_INLINE_DEPTH {
            if ran > 0
                && limits
                    .budget
                    .is_some_and(|budget| started.elapsed() >= budget)
            {
                break;
            }
            let Some(task) = self.shared.local.lock().pop() else {
                break;
            };
            // Never refused: the depth was checked above. A task cancelled meanwhile does nothing.
            self.run_here(&task);
            ran += 1;
        }
        ran
    }

    fn enqueue_local(&self, priority: Priority, make: impl FnOnce(u64) -> Task<R>) -> Arc<Task<R>> {
        let task = self
            .shared
            .register(|id| make(id).with_priority(priority).only_local());
        self.shared.pending.fetch_add(1, Ordering::SeqCst);
        self.shared.local.lock().push(task.clone());
        task
    }

    /// A delayed task of a pool in local mode: [`Pool::run_local`] queues it once it is due.
    fn delay_local(&self, at: Instant, make: impl FnOnce(u64) -> Task<R>) -> Arc<Task<R>> {
        let task = self.shared.register(|id| make(id).hold().only_local());
        // `pending` first: see `Shared::stalled`.
        self.shared.pending.fetch_add(1, Ordering::SeqCst);
        self.shared.delayed.fetch_add(1, Ordering::SeqCst);
        self.shared.local.lock().delayed.push((at, task.clone()));
        task
    }

    /// When the next delayed task of [`Pool::run_local`] is due, if one waits: a thread that
    /// sleeps until it can run local tasks wakes then.
    pub fn next_local_due(&self) -> Option<Instant> {
        let local = self.shared.local.lock();
        local
            .delayed
            .iter()
            .filter(|(_, task)| task.is_held())
            .map(|(at, _)| *at)
            .min()
    }

    /// Queues the delayed tasks of [`Pool::run_local`] that are due, earliest first; cancelled
    /// ones are left to their canceller, and let go now, due or not (so that tasks delayed long
    /// and cancelled do not pile up).
    fn release_due_local(&self) {
        let mut local = self.shared.local.lock();
        if local.delayed.is_empty() {
            return;
        }
        let now = Instant::now();
        let (mut due, waiting): (Vec<_>, Vec<_>) = local
            .delayed
            .drain(..)
            .filter(|(_, task)| task.is_held())
            .partition(|(at, _)| *at <= now);
        local.delayed = waiting;
        due.sort_by_key(|(at, _)| *at);
        for (_, task) in due {
            if task.release_hold() {
                self.shared.delayed.fetch_sub(1, Ordering::SeqCst);
                local.push(task);
            }
        }
    }

    /// Cancels every task queued for [`Pool::run_local`]; returns how many.
    fn cancel_local(&self) -> usize {
        let queued = std::mem::take(&mut *self.shared.local.lock());
        queued
            .into_tasks()
            .filter(|task| {
                self.shared.cancel_task(task, Reach::Running) == CancelOutcome::CancelledBeforeStart
            })
            .count()
    }
}

/// The queue of [`Pool::run_local`].
struct LocalQueue<R> {
    /// Most urgent first: high, normal, low.
    levels: [VecDeque<Arc<Task<R>>>; 3],
    /// Tasks waiting for their delay, with the time they are due; queued by `release_due_local`.
    delayed: Vec<(Instant, Arc<Task<R>>)>,
}

impl<R> Default for LocalQueue<R> {
    fn default() -> Self {
        Self {
            levels: Default::default(),
            delayed: Vec::new(),
        }
    }
}

impl<R> LocalQueue<R> {
    fn push(&mut self, task: Arc<Task<R>>) {
        let level = match task.priority() {
            Priority::High => 0,
            Priority::Normal => 1,
            Priority::Low => 2,
        };
        self.levels[level].push_back(task);
    }

    fn pop(&mut self) -> Option<Arc<Task<R>>> {
        self.levels.iter_mut().find_map(VecDeque::pop_front)
    }

    /// The tasks ready to run (not those waiting for a delay).
    fn len(&self) -> usize {
        self.levels.iter().map(VecDeque::len).sum()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn into_tasks(self) -> impl Iterator<Item = Arc<Task<R>>> {
        let delayed = self.delayed.into_iter().map(|(_, task)| task);
        self.levels.into_iter().flatten().chain(delayed)
    }
}

impl<R> Drop for Shared<R> {
    fn drop(&mut self) {
        WaitGraph::global().forget(self.uid);
    }
}

impl<R: Send + 'static> Shared<R> {
    /// A worker's loop. A spare (`spare_of`: how many regular workers the pool has) retires once
    /// it found no work for [`SPARE_KEEP_ALIVE`], unless the pool would stall without it.
    fn work(
        self: &Arc<Self>,
        queues: &Queues<Receiver<Arc<Task<R>>>>,
        stopping: &AtomicBool,
        spare_of: Option<usize>,
    ) {
        WORKER_OF.with(|w| w.set(Arc::as_ptr(self) as usize));
        let crew: Weak<dyn Crew> = Arc::downgrade(self) as Weak<Self>;
        CREW.with(|c| *c.borrow_mut() = Some(crew));
        loop {
            let keep_alive = spare_of.map(|_| SPARE_KEEP_ALIVE);
            let task = match next_task(queues, keep_alive) {
                Ok(task) => task,
                // `retire` uncounted it.
                Err(Idle) if spare_of.is_some_and(|workers| self.retire(workers)) => return,
                Err(Idle) => continue,
            };
            let Some(task) = task else { break };
            if stopping.load(Ordering::Acquire) {
                self.cancel_task(&task, Reach::Running);
            } else {
                self.execute(&task);
            }
        }
        // The queues closed: the pool stopped. A spare is uncounted here, so that a restarted
        // pool does not count it.
        if spare_of.is_some() {
            self.spares.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Whether tasks are queued while every worker is blocked in a wait, so none will run them.
    fn stalled(&self, workers: usize) -> bool {
        // Delayed tasks are pending but not queued. The counters move so that a race here
        // overcounts what is queued, never undercounts it: a delayed task is added to `pending`
        // first, and taken off `delayed` first (`Shared::cancel_task`, `Shared::due`).
        let queued = self.pending.load(Ordering::SeqCst) - self.delayed.load(Ordering::SeqCst);
        if queued <= 0
            || self.blocked.load(Ordering::SeqCst) < workers + self.spares.load(Ordering::SeqCst)
        {
            return false;
        }
        // Tasks queued for `Pool::run_local` are pending too, but no work for the workers. Read
        // again under their lock, which `Pool::run_local` queues and takes them under: a task
        // there still pending is counted in `pending` (a cancelled or started one may not be).
        let local = self.local.lock();
        let local_pending = local
            .levels
            .iter()
            .flatten()
            .filter(|task| task.status() == Status::Pending)
            .count() as i64;
        self.pending.load(Ordering::SeqCst) - self.delayed.load(Ordering::SeqCst) > local_pending
    }

    /// Adds a spare worker if the pool is stalled. Called after each change that can stall it:
    /// a task queued (`pending` up), a worker blocking (`blocked` up), a spare retiring (`spares`
    /// down). Each makes its change (SeqCst) before reading the other two (SeqCst), so of two
    /// such changes racing, at least one sees both and adds the spare needed: a stall is never
    /// missed. Two may both add one; the extra spare retires when idle.
    fn keep_progress(&self, running: &Running<R>) -> Result<(), WaitError> {
        let workers = running.workers.len();
        if !self.stalled(workers) {
            return Ok(());
        }
        let mut spares = running.spare_workers.lock();
        // Again under the lock that adding and retiring take: another thread may have added one.
        if !self.stalled(workers) {
            return Ok(());
        }
        let count = self.spares.load(Ordering::SeqCst);
        if count >= self.max_spares {
            return Err(WaitError::NoWorkerLeft { spares: count });
        }
        // Join the spares that retired: their handles are all that is left of them.
        for retired in spares.extract_if(.., |spare| spare.is_finished()) {
            let _ = retired.join();
        }
        self.spares.fetch_add(1, Ordering::SeqCst);
        let shared = running
            .shared
            .upgrade()
            .expect("a running pool's state is alive");
        let queues = running.receivers.clone();
        let (stopping, alive) = (running.stopping.clone(), running.alive.clone());
        let spawned = Builder::new()
            .name(format!("{}spare", running.name_prefix))
            .stack_size(WORKER_STACK)
            .spawn(move || {
                shared.work(&queues, &stopping, Some(workers));
                drop(alive);
            });
        match spawned {
            Ok(spare) => {
                spares.push(spare);
                Ok(())
            }
            Err(_) => {
                self.spares.fetch_sub(1, Ordering::SeqCst);
                Err(WaitError::NoWorkerLeft { spares: count })
            }
        }
    }

    /// Whether an idle spare may exit: yes, unless the pool would then stall. Under the lock
    /// that adding a spare takes, so that the two never miss each other.
    /// Uncounts the spare when it may.
    fn retire(&self, workers: usize) -> bool {
        let running = self.running.read();
        let _spares = running.as_ref().map(|running| running.spare_workers.lock());
        self.spares.fetch_sub(1, Ordering::SeqCst);
        if running.is_some() && self.stalled(workers) {
            self.spares.fetch_add(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Runs `task` on this thread if it is still pending (or joins its group), and delivers its
    /// completion. Returns whether it started it here.
    fn execute(&self, task: &Arc<Task<R>>) -> bool {
        let current = Current {
            task: TaskRef {
                pool: self.uid,
                task: task.id(),
            },
            state: task.state().clone(),
            priority: task.priority(),
        };
        let previous = CURRENT_TASK.with(|c| c.borrow_mut().replace(current));
        // Nested only when a waiting task runs this one inline: its worker is already busy. A
        // thread that is not a worker (the main thread, see `Pool::help`) is no busy worker.
        let outermost =
            previous.is_none() && WORKER_OF.with(Cell::get) == self as *const Self as usize;
        self.busy.fetch_add(1, Ordering::Relaxed);
        if outermost {
            self.busy_workers.fetch_add(1, Ordering::Relaxed);
        }
        let started = Instant::now();
        let mut claimed = false;
        let ran = task.run_then(|| {
            claimed = true;
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
        claimed
    }

    fn cancel_task(&self, task: &Arc<Task<R>>, reach: Reach) -> CancelOutcome {
        let outcome = task.cancel_reaching(reach);
        if outcome == CancelOutcome::CancelledBeforeStart {
            // `delayed` before `pending`: see `stalled`.
            if task.release_hold() {
                self.delayed.fetch_sub(1, Ordering::SeqCst);
            }
            self.pending.fetch_sub(1, Ordering::SeqCst);
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
        if status == Status::Cancelled && task.state().is_dropped() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        // Cannot fail: `self` owns the receiver.
        let _ = self.completed_tx.send(task.clone());
    }
}

/// Scheduling: priorities, delays, limited groups and yielding.
impl<R: Send + 'static> Pool<R> {
    /// Like [`Pool::submit_group`], run by at most `max_threads` workers at once (0: by all):
    /// the others stay free for other tasks. A thread waiting for the group joins it only
    /// within that limit too.
    pub fn submit_group_limited(
        &self,
        priority: Priority,
        count: usize,
        max_threads: usize,
        part: impl Fn(usize, &TaskState) -> Result<R, String> + Send + Sync + 'static,
        combine: impl FnOnce(Vec<R>) -> R + Send + 'static,
    ) -> Result<Arc<Task<R>>, Stopped> {
        let group = Group::new(count, Box::new(part), Box::new(combine)).limit_runners(max_threads);
        self.enqueue(
            priority,
            |id| Task::new_group(id, group),
            // One entry per worker that can help; an empty group still needs one to end it.
            |workers| match max_threads {
                0 => count.clamp(1, workers),
                max => count.clamp(1, workers.min(max)),
            },
        )
    }

    /// Queues `job` once `delay` has passed (at most [`MAX_DELAY`]), from a timer thread the
    /// pool starts with its first delayed task: no worker is held meanwhile. Until then the
    /// task is pending (counted in [`PoolStats::pending`] and [`PoolStats::delayed`]), may be
    /// cancelled, and is never run early, not even by a thread waiting for it. Stopping the
    /// pool cancels it. A zero delay queues it at once.
    pub fn submit_delayed(
        &self,
        priority: Priority,
        delay: Duration,
        job: impl FnOnce(&TaskState) -> Result<R, String> + Send + 'static,
    ) -> Result<Arc<Task<R>>, Stopped> {
        if delay.is_zero() {
            return self.submit(priority, job);
        }
        let at = Instant::now() + delay.min(MAX_DELAY);
        if self.is_local() {
            let make = |id| Task::new(id, Box::new(job)).with_priority(priority);
            return Ok(self.delay_local(at, make));
        }
        let running = self.shared.running.read();
        let running = running.as_ref().ok_or(Stopped)?;
        let mut timer = running.timer.lock();
        let timer = timer.get_or_insert_with(|| self.shared.start_timer(running));
        let task = self
            .shared
            .register(|id| Task::new(id, Box::new(job)).with_priority(priority).hold());
        // `pending` first: see `Shared::stalled`.
        self.shared.pending.fetch_add(1, Ordering::SeqCst);
        self.shared.delayed.fetch_add(1, Ordering::SeqCst);
        timer.schedule(at, task.clone());
        Ok(task)
    }
}

/// The longest delay [`Pool::submit_delayed`] waits: ten years (a longer one waits that long).
pub const MAX_DELAY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Inside a task running on a worker: runs tasks queued on its pool whose priority is that
/// task's or higher, right here, one after the other, then returns how many it started (a group
/// that another worker started, which it joins, is not counted). Only what was queued when it was called: tasks queued meanwhile
/// wait for the next call, so it always returns. Like a wait's inline runs, it runs nothing past
/// [`MAX_INLINE_DEPTH`] nested tasks, and each task it runs counts as awaited by the yielding
/// one, so a task run here that waits for it (which cannot go on until this returns) is refused
/// as a cycle ([`WaitError::Cycle`]) rather than left hanging. Outside a task, or on a thread
/// that is not a worker (one that runs a task it waits for), it runs nothing and returns 0.
pub fn yield_now() -> usize {
    let Some(priority) = CURRENT_TASK.with(|c| c.borrow().as_ref().map(|c| c.priority)) else {
        return 0;
    };
    let Some(crew) = CREW.with(|crew| crew.borrow().as_ref().and_then(Weak::upgrade)) else {
        return 0;
    };
    crew.run_queued(priority)
}

impl<R: Send + 'static> Shared<R> {
    /// Makes task `make(id)` with a new id and records it as submitted.
    fn register(&self, make: impl FnOnce(u64) -> Task<R>) -> Arc<Task<R>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let task = Arc::new(make(id));
        self.tasks.lock().insert(id, task.clone());
        self.submitted.fetch_add(1, Ordering::Relaxed);
        task
    }

    /// Puts `entries` entries of `task` (counted pending already) in its priority's queue.
    fn queue(&self, running: &Running<R>, task: &Arc<Task<R>>, entries: usize) {
        let queue = running.senders.of(task.priority());
        for _ in 0..entries {
            // Cannot fail: the receivers live in `running`, which the caller's lock keeps alive.
            let _ = queue.send(task.clone());
        }
        if self.blocked.load(Ordering::SeqCst) > 0 {
            // Queued while workers wait: it needs a spare if they all do. If none can be added
            // it waits for a worker; a task that waits for it is told (`NoWorkerLeft`).
            let _ = self.keep_progress(running);
        }
    }

    /// The timer thread of delayed tasks; it holds the queues open until [`Pool::stop`] joins it.
    fn start_timer(self: &Arc<Self>, running: &Running<R>) -> Timer<Arc<Task<R>>> {
        let shared = Arc::downgrade(self);
        let senders = running.senders.clone();
        Timer::start(
            format!("{}timer", running.name_prefix),
            |task: &Arc<Task<R>>| task.is_held(),
            move |task| {
                if let Some(shared) = shared.upgrade() {
                    shared.due(&senders, task);
                }
            },
        )
        .expect("the OS refused to start a timer thread")
    }

    /// A delayed task's time has come: it is queued, unless it was cancelled meanwhile.
    fn due(&self, senders: &Queues<Sender<Arc<Task<R>>>>, task: Arc<Task<R>>) {
        if !task.release_hold() {
            return;
        }
        // Queued from now on, in the count of `stalled`.
        self.delayed.fetch_sub(1, Ordering::SeqCst);
        // Fails only once the pool stopped and its workers exited: nobody would run it.
        let _ = senders.of(task.priority()).send(task);
        if self.blocked.load(Ordering::SeqCst) > 0
            && let Some(running) = self.running.read().as_ref()
        {
            let _ = self.keep_progress(running);
        }
    }

    /// Runs (or joins) `task` on this thread, nested in what it runs already, unless it runs
    /// [`MAX_INLINE_DEPTH`] tasks so (`None`). Returns whether it started it here.
    fn run_nested(&self, task: &Arc<Task<R>>) -> Option<bool> {
        let depth = INLINE_DEPTH.with(Cell::get);
        if depth >= MAX_INLINE_DEPTH {
            return None;
        }
        INLINE_DEPTH.with(|d| d.set(depth + 1));
        // Never unwinds: the task's panics are caught where it runs.
        let ran = self.execute(task);
        INLINE_DEPTH.with(|d| d.set(depth));
        Some(ran)
    }
}

impl<R: Send + 'static> Crew for Shared<R> {
    fn block(&self) -> Result<(), WaitError> {
        // SeqCst, then `pending` read: see `keep_progress`.
        self.blocked.fetch_add(1, Ordering::SeqCst);
        let kept = match self.running.read().as_ref() {
            Some(running) => self.keep_progress(running),
            None => Ok(()),
        };
        if kept.is_err() {
            self.unblock();
        }
        kept
    }

    fn unblock(&self) {
        self.blocked.fetch_sub(1, Ordering::SeqCst);
    }

    fn run_queued(&self, at_least: Priority) -> usize {
        let (queues, stopping) = match self.running.read().as_ref() {
            Some(running) => (running.receivers.clone(), running.stopping.clone()),
            None => return 0,
        };
        // Checked before any task is taken off a queue: one taken and not run would be lost.
        let Some(waiter) = current_task_ref().filter(|task| task.pool == self.uid) else {
            return 0;
        };
        // What is queued now, not what the tasks run here queue: so this always returns.
        let mut left: usize = queues.down_to(at_least).map(Receiver::len).sum();
        let mut ran = 0;
        while left > 0 && INLINE_DEPTH.with(Cell::get) < MAX_INLINE_DEPTH {
            let Some(task) = queues
                .down_to(at_least)
                .find_map(|queue| queue.try_recv().ok())
            else {
                break;
            };
            left -= 1;
            if stopping.load(Ordering::Acquire) {
                self.cancel_task(&task, Reach::Running);
                continue;
            }
            // Recorded as a wait: a task run here that waits for the one below it on this
            // stack (which cannot go on until it returns) is refused as a cycle, not hung. Only
            // a group already running elsewhere can close a cycle at once (it waits for the
            // yielding task): joining it is left to its other runners.
            let waited = TaskRef {
                pool: self.uid,
                task: task.id(),
            };
            let Ok(_edge) = WaitGraph::global().enter(waiter, waited) else {
                continue;
            };
            if self.run_nested(&task) == Some(true) {
                ran += 1;
            }
        }
        ran
    }
}

/// No task came within the time given.
struct Idle;

/// Most urgent first; blocks while every queue is empty, up to `keep_alive` if given;
/// `Ok(None)` once they are closed and drained.
///
/// It waits for any queue to be ready without taking from it, then takes from the most urgent
/// one: a worker woken while tasks of several priorities arrived still starts with the most
/// urgent (a `select!` would take from whichever it happened to pick).
fn next_task<T>(
    queues: &Queues<Receiver<T>>,
    keep_alive: Option<Duration>,
) -> Result<Option<T>, Idle> {
    // A busy pool finds a task at once: the select (and a spare's timer) only for waiting.
    if let Some(ready) = take_most_urgent(queues) {
        return Ok(ready);
    }
    let idle = keep_alive.map_or_else(never, after);
    let mut select = Select::new();
    for queue in queues.down_to(Priority::Low) {
        select.recv(queue);
    }
    let timeout = select.recv(&idle);
    loop {
        if let Some(ready) = take_most_urgent(queues) {
            return Ok(ready);
        }
        if select.ready() == timeout {
            return Err(Idle);
        }
    }
}

/// A task from the most urgent queue that has one; `Some(None)` once the pool stopped (`stop`
/// closes the queues together, then cancels what is left in them); `None` while all are empty.
fn take_most_urgent<T>(queues: &Queues<Receiver<T>>) -> Option<Option<T>> {
    let mut closed = false;
    for queue in queues.down_to(Priority::Low) {
        match queue.try_recv() {
            Ok(task) => return Some(Some(task)),
            Err(TryRecvError::Disconnected) => closed = true,
            Err(TryRecvError::Empty) => {}
        }
    }
    closed.then_some(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_a_stop_left_behind_are_joined_once_their_workers_exited() {
        let pool = Pool::<u64>::new();
        for _ in 0..50 {
            pool.start(2, "lingering-").unwrap();
            pool.stop(StopWait::No);
            // Idle workers exit at once; the next stop joins them.
            let exited = Instant::now() + Duration::from_secs(30);
            let backoff = crate::sync::Backoff::new();
            while !pool
                .shared
                .lingering
                .lock()
                .iter()
                .all(Lingering::has_exited)
            {
                assert!(Instant::now() < exited, "idle workers exit after a stop");
                backoff.snooze();
            }
        }
        assert!(
            pool.shared.lingering.lock().len() <= 1,
            "only the last stop's run is kept, until the next stop or join_all"
        );
    }
}
