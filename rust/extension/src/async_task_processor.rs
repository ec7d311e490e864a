use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use godot::classes::{INode, Node};
use godot::prelude::*;
use parking_lot::Mutex;
use threadkit_core::{CancelOutcome, DrainLimits, Outcome, Pool, Priority, Status, Task};

use crate::send::{OptionalCallable, SendCallable, SendVariant};

/// Runs Callables on worker threads and delivers their results on the main thread.
///
/// Godot's `WorkerThreadPool` runs a task and leaves you to poll for it. This processor also
/// calls your callback with the task's result on the main thread (where touching the scene tree
/// is safe), emits signals for every outcome, lets you cancel, and reports progress. Completions
/// are delivered once per frame from the scene tree's `process_frame`, within
/// [member max_callbacks_per_frame] and [member frame_budget_usec]; completions that arrive
/// during a delivery wait for the next frame, so callbacks never stall a frame unboundedly.
///
/// [codeblock]
/// @onready var processor: AsyncTaskProcessor = $AsyncTaskProcessor
///
/// func _ready() -> void:
///     processor.submit_task(func(): return heavy_path_search(), func(path): $Agent.follow(path))
/// [/codeblock]
///
/// Tasks run in parallel: what a task touches must be safe to touch from another thread (its own
/// data, ThreadKit's thread-safe classes). Results that are Arrays or Dictionaries are deep-copied
/// on their way to the main thread. Long tasks should poll [method is_cancelled] so that
/// [method cancel_task] and [method stop_workers] take effect quickly.
#[derive(GodotClass)]
#[class(base = Node)]
pub struct AsyncTaskProcessor {
    /// How many worker threads [method start_workers] starts by default; 0 means one per CPU core.
    #[export]
    worker_count: i32,
    /// Start the workers when the node enters the tree ([code]_ready[/code]).
    #[export]
    autostart: bool,
    /// The most callbacks delivered in one frame; 0 means no limit.
    #[export]
    max_callbacks_per_frame: i32,
    /// The time, in microseconds, one frame may spend delivering completions; 0 means no limit.
    /// At least one completion is delivered per frame, so progress never stops.
    #[export]
    frame_budget_usec: i32,
    inner: Arc<Inner>,
    base: Base<Node>,
}

/// State shared by every call, from any thread.
struct Inner {
    pool: Pool<SendVariant>,
    /// Main-thread continuations per task id; taken when the completion is delivered.
    callbacks: Mutex<HashMap<u64, SendCallable>>,
    dropped_callbacks: AtomicU64,
}

const CLASS: &str = "AsyncTaskProcessor";

#[godot_api]
impl INode for AsyncTaskProcessor {
    fn init(base: Base<Node>) -> Self {
        Self {
            worker_count: 0,
            autostart: true,
            max_callbacks_per_frame: 0,
            frame_budget_usec: 2000,
            inner: Arc::new(Inner {
                pool: Pool::new(),
                callbacks: Mutex::new(HashMap::new()),
                dropped_callbacks: AtomicU64::new(0),
            }),
            base,
        }
    }

    fn ready(&mut self) {
        // Completions are delivered from a `&self` method connected to the tree's frame signal,
        // not from `process(&mut self)`: a callback may call back into this node (and worker
        // threads may call it) while delivery runs, which an exclusive borrow would block.
        let this = self.to_gd();
        let mut tree = self.base().get_tree();
        tree.connect(
            "process_frame",
            &Callable::from_object_method(&this, "_deliver_frame"),
        );
        let mut node = self.base().clone().upcast::<Node>();
        node.connect(
            "tree_exiting",
            &Callable::from_object_method(&this, "_on_tree_exiting"),
        );
        if self.autostart && !self.inner.pool.is_running() {
            self.start(self.worker_count as i64);
        }
    }
}

impl Drop for AsyncTaskProcessor {
    fn drop(&mut self) {
        // Freed without leaving the tree (or never added): stop without blocking the main thread
        // on a long task; the workers cancel what is queued and exit on their own.
        self.inner.pool.stop(false);
    }
}

#[godot_api]
impl AsyncTaskProcessor {
    /// A task's status: the id is unknown (never submitted, or long forgotten).
    #[constant]
    pub const STATUS_UNKNOWN: i64 = 0;
    /// Queued, not started.
    #[constant]
    pub const STATUS_PENDING: i64 = Status::Pending as i64;
    /// Running on a worker.
    #[constant]
    pub const STATUS_RUNNING: i64 = Status::Running as i64;
    /// Returned a result.
    #[constant]
    pub const STATUS_COMPLETED: i64 = Status::Completed as i64;
    /// Could not run, or failed while running (see the [signal task_failed] message).
    #[constant]
    pub const STATUS_FAILED: i64 = Status::Failed as i64;
    /// Cancelled before it started, or while it ran.
    #[constant]
    pub const STATUS_CANCELLED: i64 = Status::Cancelled as i64;
    /// Runs before every waiting normal-priority task.
    #[constant]
    pub const PRIORITY_HIGH: i64 = 1;
    /// The default priority.
    #[constant]
    pub const PRIORITY_NORMAL: i64 = 0;

    /// Emitted on the main thread when a task returned [param result], after its callback ran.
    #[signal]
    fn task_completed(task_id: i64, result: Variant);

    /// Emitted on the main thread when a task could not run or failed; [param message] says why.
    #[signal]
    fn task_failed(task_id: i64, message: GString);

    /// Emitted on the main thread when a task was cancelled (by [method cancel_task] or
    /// [method stop_workers]).
    #[signal]
    fn task_cancelled(task_id: i64);

    /// Emitted on the main thread after a delivery that left no task in flight.
    #[signal]
    fn all_tasks_completed();

    /// Starts [param num_threads] workers (0: [member worker_count], and if that is 0 too, one per
    /// CPU core). Returns [code]false[/code] with a warning when already running, and with an
    /// error for a count below 0 or above 256.
    #[func]
    pub fn start_workers(&self, #[opt(default = 0)] num_threads: i64) -> bool {
        self.start(num_threads)
    }

    fn start(&self, num_threads: i64) -> bool {
        if !(0..=threadkit_core::pool::MAX_THREADS as i64).contains(&num_threads) {
            godot_error!(
                "{CLASS}.start_workers: {num_threads} threads is not between 0 (one per CPU core) and {}; pass a count in that range.",
                threadkit_core::pool::MAX_THREADS
            );
            return false;
        }
        let threads = match num_threads {
            0 if self.worker_count > 0 => self.worker_count as usize,
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n as usize,
        };
        match self.inner.pool.start(threads, "ThreadKit worker ") {
            Ok(()) => true,
            Err(error) => {
                godot_warn!(
                    "{CLASS}.start_workers: {error}; call stop_workers() first to restart with another size."
                );
                false
            }
        }
    }

    /// Stops the workers. Pending tasks become cancelled ([signal task_cancelled]); running tasks
    /// are asked to cancel. With [param wait], returns once every worker has exited. Runs by itself
    /// when the node leaves the tree or is freed. Submitting afterwards fails until
    /// [method start_workers].
    #[func]
    pub fn stop_workers(&self, #[opt(default = true)] wait: bool) {
        if wait && self.inner.pool.is_own_worker() {
            godot_error!(
                "{CLASS}.stop_workers: called from one of its own tasks with wait = true, which would wait for itself; stopping without waiting."
            );
            self.inner.pool.stop(false);
            return;
        }
        self.inner.pool.stop(wait);
    }

    /// Whether the workers are running.
    #[func]
    pub fn is_running(&self) -> bool {
        self.inner.pool.is_running()
    }

    /// Runs [param task] (a Callable taking no arguments) on a worker. When it returns, calls
    /// [param callback] on the main thread with its result (or with no argument if the callback
    /// takes none). [param priority] is [constant PRIORITY_NORMAL] or [constant PRIORITY_HIGH].
    /// Returns the task id (> 0), or -1 with an error for an invalid callable or stopped workers.
    /// Callable from any thread, including from inside a task.
    #[func]
    pub fn submit_task(
        &self,
        task: Callable,
        #[opt(default = OptionalCallable::none())] callback: OptionalCallable,
        #[opt(default = 0)] priority: i64,
    ) -> i64 {
        let method = "submit_task";
        let OptionalCallable(callback) = callback;
        let Some(priority) = parse_priority(method, priority) else {
            return -1;
        };
        if !task.is_valid() {
            godot_error!(
                "{CLASS}.{method}: the task Callable is invalid (null, or its object was freed, or the method does not exist); pass a valid Callable such as func(): return work()."
            );
            return -1;
        }
        if !callback.is_null() && !callback.is_valid() {
            godot_error!(
                "{CLASS}.{method}: the callback Callable is invalid (its object was freed or the method does not exist); pass a valid Callable, or none."
            );
            return -1;
        }
        let job_callable = SendCallable(task);
        let submitted = self.inner.pool.submit(priority, move |_state| {
            let task = job_callable.into_inner();
            // Checked again here: the target may have been freed while the task waited.
            if !task.is_valid() {
                return Err(
                    "the task's object was freed (or lost its method) before the task ran".into(),
                );
            }
            Ok(SendVariant::detach(task.call(&[])))
        });
        match submitted {
            Ok(handle) => {
                if !callback.is_null() {
                    self.inner
                        .callbacks
                        .lock()
                        .insert(handle.id(), SendCallable(callback));
                }
                handle.id() as i64
            }
            Err(_) => {
                godot_error!(
                    "{CLASS}.{method}: the workers are not running; call start_workers() first (or keep autostart on and add the node to the tree)."
                );
                -1
            }
        }
    }

    /// Cancels task [param task_id]: a pending task never runs; a running one is asked to stop
    /// (it sees [method is_cancelled] turn true) and ends cancelled. Returns [code]false[/code]
    /// if the task already finished or is unknown.
    #[func]
    pub fn cancel_task(&self, task_id: i64) -> bool {
        let Ok(id) = u64::try_from(task_id) else {
            return false;
        };
        matches!(
            self.inner.pool.cancel(id),
            Some(CancelOutcome::CancelledBeforeStart | CancelOutcome::Requested)
        )
    }

    /// The status of task [param task_id]: one of the [code]STATUS_*[/code] constants. Finished
    /// tasks are remembered for the last few thousand ids.
    #[func]
    pub fn get_task_status(&self, task_id: i64) -> i64 {
        u64::try_from(task_id)
            .ok()
            .and_then(|id| self.inner.pool.status_of(id))
            .map_or(Self::STATUS_UNKNOWN, |status| status as i64)
    }

    /// Inside a running task: whether it was asked to cancel. Long tasks should check it and
    /// return early. [code]false[/code] outside a task.
    #[func]
    pub fn is_cancelled() -> bool {
        threadkit_core::current_task().is_some_and(|task| task.is_cancel_requested())
    }

    /// Inside a running task: records its progress, from 0.0 to 1.0 (clamped). Outside a task it
    /// reports an error and does nothing.
    #[func]
    pub fn report_progress(value: f64) {
        match threadkit_core::current_task() {
            Some(task) => task.report_progress(value),
            None => godot_error!(
                "{CLASS}.report_progress: called outside a running task; call it from the task's Callable."
            ),
        }
    }

    /// Delivers finished tasks' results on the main thread: callbacks, then signals. Runs every
    /// frame by itself; call it by hand to deliver sooner. Returns how many it delivered.
    #[func]
    pub fn process_completed(&self) -> i64 {
        if !godot::init::is_main_thread() {
            godot_error!(
                "{CLASS}.process_completed: called from a worker thread; it delivers callbacks and must run on the main thread."
            );
            return 0;
        }
        let limits = DrainLimits {
            max_items: usize::try_from(self.max_callbacks_per_frame)
                .ok()
                .filter(|&n| n > 0),
            budget: u64::try_from(self.frame_budget_usec)
                .ok()
                .filter(|&n| n > 0)
                .map(Duration::from_micros),
        };
        let report = threadkit_core::drain(self.inner.pool.completions(), limits, |task| {
            self.deliver(&task)
        });
        if report.processed > 0 && self.inner.pool.outstanding() == 0 {
            self.to_gd().emit_signal("all_tasks_completed", &[]);
        }
        report.processed as i64
    }

    /// Counters: submitted, completed, failed, cancelled, pending, running, workers,
    /// busy_workers, dropped_callbacks (callbacks whose object was freed before delivery) and
    /// mean_task_usec.
    #[func]
    pub fn get_stats(&self) -> VarDictionary {
        let stats = self.inner.pool.stats();
        let mut dict = VarDictionary::new();
        dict.set("submitted", stats.submitted as i64);
        dict.set("completed", stats.completed as i64);
        dict.set("failed", stats.failed as i64);
        dict.set("cancelled", stats.cancelled as i64);
        dict.set("pending", stats.pending as i64);
        dict.set("running", stats.running as i64);
        dict.set("workers", stats.workers as i64);
        dict.set("busy_workers", stats.running as i64);
        dict.set(
            "dropped_callbacks",
            self.inner.dropped_callbacks.load(Ordering::Relaxed) as i64,
        );
        dict.set("mean_task_usec", stats.mean_task_usec);
        dict
    }

    #[func]
    fn _deliver_frame(&self) {
        if self.base().can_process() {
            self.process_completed();
        }
    }

    #[func]
    fn _on_tree_exiting(&self) {
        self.stop_workers(true);
    }

    /// Calls the task's callback and emits its signal. Runs on the main thread.
    fn deliver(&self, task: &Task<SendVariant>) {
        self.inner.pool.collect(task);
        let callback = self.inner.callbacks.lock().remove(&task.id());
        let id = task.id() as i64;
        let mut this = self.to_gd();
        match task.take_outcome() {
            Some(Outcome::Completed(SendVariant(result))) => {
                if let Some(SendCallable(callback)) = callback {
                    self.call_back(&callback, &result);
                }
                this.emit_signal("task_completed", &[id.to_variant(), result]);
            }
            Some(Outcome::Failed(message)) => {
                godot_error!("{CLASS}: task {id} failed: {message}");
                this.emit_signal("task_failed", &[id.to_variant(), message.to_variant()]);
            }
            Some(Outcome::Cancelled) | None => {
                this.emit_signal("task_cancelled", &[id.to_variant()]);
            }
        }
    }

    fn call_back(&self, callback: &Callable, result: &Variant) {
        if !callback.is_valid() {
            // Its object was freed while the task ran: that is the caller's choice, not an error.
            self.inner.dropped_callbacks.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if callback.get_argument_count() == 0 {
            callback.call(&[]);
        } else {
            callback.call(std::slice::from_ref(result));
        }
    }
}

fn parse_priority(method: &str, priority: i64) -> Option<Priority> {
    match priority {
        AsyncTaskProcessor::PRIORITY_HIGH => Some(Priority::High),
        AsyncTaskProcessor::PRIORITY_NORMAL => Some(Priority::Normal),
        other => {
            godot_error!(
                "{CLASS}.{method}: priority {other} is neither PRIORITY_NORMAL (0) nor PRIORITY_HIGH (1)."
            );
            None
        }
    }
}
