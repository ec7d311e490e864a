use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use godot::classes::{INode, Node};
use godot::prelude::*;
use parking_lot::Mutex;
use threadkit_core::pool::{StopWait, Stopped};
use threadkit_core::{CancelOutcome, DrainLimits, Outcome, Pool, Priority, Status, Task};

use crate::call::{static_name, try_call};
use crate::main_thread_dispatcher;
use crate::monitors;
use crate::send::{Optional, SendCallable, SendVariant, SharedCallable};
use crate::task_handle::TaskHandle;

mod rust_api;

pub use rust_api::SpawnError;

/// Runs Callables on worker threads and delivers their results on the main thread.
///
/// Godot's `WorkerThreadPool` runs a task and leaves you to poll for it. This processor also
/// calls your callback with the task's result on the main thread (where touching the scene tree
/// is safe), lets you [code]await[/code] a task ([method run]), emits signals for every outcome,
/// cancels, reports progress and splits a job over every worker ([method submit_group]).
/// Completions are delivered once per frame from the scene tree's `process_frame`, within
/// [member max_callbacks_per_frame] and [member frame_budget_usec]; completions that arrive
/// during a delivery wait for the next frame, so callbacks never stall a frame unboundedly.
///
/// [codeblock]
/// @onready var processor: AsyncTaskProcessor = $AsyncTaskProcessor
///
/// func _ready() -> void:
///     processor.submit_task(func(): return heavy_path_search(), func(path): $Agent.follow(path))
///     var mesh = await processor.run(build_mesh).finished
/// [/codeblock]
///
/// Tasks run in parallel: what a task touches must be safe to touch from another thread (its own
/// data, ThreadKit's thread-safe classes). Results that are Arrays or Dictionaries are deep-copied
/// on their way to the main thread. Long tasks should poll [method is_cancelled] so that
/// [method cancel_task] and [method stop_workers] take effect quickly.
///
/// [b]Errors inside a task.[/b] A call Godot refuses (wrong argument count, missing method,
/// freed object) fails the task with a message. A GDScript runtime error inside the task's code
/// (for example calling a method on null) is printed by Godot as a SCRIPT ERROR, but Godot gives
/// the caller no error code for it: the function just returns (null, or the default of its
/// declared return type), so such a task completes with that value. To fail a task on purpose,
/// return a value your callback checks.
///
/// Summed over every processor, the queued tasks, busy workers and completions per second
/// appear in the debugger's Monitors tab as [code]ThreadKit/tasks_pending[/code],
/// [code]ThreadKit/busy_workers[/code] and [code]ThreadKit/tasks_completed_per_second[/code].
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
    /// How long, in milliseconds, [method stop_workers] (and leaving the tree, and being freed)
    /// waits for running tasks to return; -1 waits as long as they take. A task that ignores
    /// [method is_cancelled] past this is left to finish on its own thread, with a warning, so
    /// quitting never hangs; but Godot then frees the script it runs while it runs, which crashes
    /// at exit: make long tasks check [method is_cancelled], or raise this.
    #[export]
    stop_timeout_msec: i32,
    inner: Arc<Inner>,
    /// Counts this processor in ThreadKit's debugger monitors; held only to be dropped with it.
    _monitored: monitors::Registration,
    base: Base<Node>,
}

/// State shared by every call, from any thread.
struct Inner {
    pool: Pool<SendVariant>,
    /// What to do on the main thread when a task ends, per task id.
    deliveries: Mutex<HashMap<u64, Delivery>>,
    /// Handles of `run` calls that failed before a task existed; released at the next delivery.
    refused: Mutex<Vec<Delivery>>,
    dropped_callbacks: AtomicU64,
}

/// A task's main-thread continuation and handle.
#[derive(Default)]
struct Delivery {
    then: Option<Then>,
    handle: Option<Gd<TaskHandle>>,
}

enum Then {
    /// A GDScript callback, called with the result (or with nothing if it takes no argument).
    Callable(Callable),
    /// A Rust continuation (see `spawn`), which picks up its own result.
    Rust(Box<dyn FnOnce()>),
}

// A Delivery is created on the submitting thread and used (called, emitted, dropped) on the main
// thread only. Callables may be called from any thread (see `SendCallable`); Rust continuations
// are only accepted from the main thread (`spawn` checks), so they never leave it; a TaskHandle
// is a RefCounted with an atomic count whose state is all thread-safe.
// SAFETY: so moving a Delivery to the main thread, where alone it is used, is sound.
unsafe impl Send for Delivery {}

const CLASS: &str = "AsyncTaskProcessor";

/// The most calls a group may have (its results are kept in one Array).
const MAX_GROUP: i64 = 1 << 24;

#[godot_api]
impl INode for AsyncTaskProcessor {
    fn init(base: Base<Node>) -> Self {
        let pool = Pool::new();
        Self {
            worker_count: 0,
            autostart: true,
            max_callbacks_per_frame: 0,
            frame_budget_usec: 2000,
            stop_timeout_msec: 5000,
            _monitored: monitors::register(&pool),
            inner: Arc::new(Inner {
                pool,
                deliveries: Mutex::new(HashMap::new()),
                refused: Mutex::new(Vec::new()),
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
        // Freed without leaving the tree: never added, or the extension is being hot-reloaded
        // (Godot frees every instance, then unloads this library). Stop as leaving the tree does,
        // joining the workers within stop_timeout_msec: idle ones exit at once, and a worker
        // still running this library's code when it is unloaded would crash the editor.
        self.stop_workers(!self.inner.pool.is_own_worker());
        // Nobody will deliver these tasks now: release whoever awaits their handles.
        if godot::init::is_main_thread() {
            let deliveries = std::mem::take(&mut *self.inner.deliveries.lock());
            let refused = std::mem::take(&mut *self.inner.refused.lock());
            for delivery in deliveries.into_values().chain(refused) {
                if let Some(mut handle) = delivery.handle {
                    TaskHandle::emit_finished(&mut handle, &Variant::nil());
                }
            }
        }
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

    /// Stops the workers. Pending tasks become cancelled ([signal task_cancelled]); running tasks
    /// are asked to cancel. With [param wait], returns once every worker has exited or
    /// [member stop_timeout_msec] passed. Runs by itself, waiting, when the node leaves the tree
    /// or is freed (a hot reload of the extension frees it too). Submitting afterwards fails
    /// until [method start_workers].
    #[func]
    pub fn stop_workers(&self, #[opt(default = true)] wait: bool) {
        let own_worker = self.inner.pool.is_own_worker();
        if wait && own_worker {
            godot_error!(
                "{CLASS}.stop_workers: called from one of its own tasks with wait = true, which would wait for itself; stopping without waiting."
            );
        }
        let how = match (wait && !own_worker, self.stop_timeout_msec) {
            (false, _) => StopWait::No,
            (true, ms) if ms < 0 => StopWait::Forever,
            (true, ms) => StopWait::Within(Duration::from_millis(ms as u64)),
        };
        let report = self.inner.pool.stop(how);
        if report.still_running > 0 {
            godot_warn!(
                "{CLASS}.stop_workers: {} task(s) still running {} ms after being asked to cancel; their workers are left to finish on their own. Make long tasks return when AsyncTaskProcessor.is_cancelled() is true.",
                report.still_running,
                self.stop_timeout_msec
            );
        }
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
        #[opt(default = Optional::<Callable>::none())] callback: Optional<Callable>,
        #[opt(default = 0)] priority: i64,
    ) -> i64 {
        let method = "submit_task";
        let Optional(callback) = callback;
        let submitted = self.check_callback(method, &callback).and_then(|()| {
            self.submit_single(method, task, priority, |_| Delivery {
                then: (!callback.is_null()).then(|| Then::Callable(callback)),
                handle: None,
            })
        });
        match submitted {
            Ok(task) => task.id() as i64,
            Err(message) => {
                godot_error!("{message}");
                -1
            }
        }
    }

    /// Runs [param task] (a Callable taking no arguments) on a worker and returns its
    /// [TaskHandle], whose [signal TaskHandle.finished] brings the result back to the main
    /// thread:
    /// [codeblock]
    /// var result = await processor.run(func(): return expensive()).finished
    /// [/codeblock]
    /// On bad input (an invalid callable, stopped workers) it reports an error and returns a
    /// handle that has already failed (id -1), whose [signal TaskHandle.finished] is still
    /// emitted at the next delivery, so an [code]await[/code] never hangs.
    #[func]
    pub fn run(&self, task: Callable, #[opt(default = 0)] priority: i64) -> Gd<TaskHandle> {
        self.submit_with_handle(|this, attach| {
            this.submit_single("run", task, priority, |task| Delivery {
                then: None,
                handle: Some(attach(task)),
            })
        })
    }

    /// Calls [param task] with every index from 0 to [param count] - 1, spread over all the
    /// workers (each takes the next index when it finishes one), as one task: like
    /// [code]WorkerThreadPool.add_group_task[/code], plus a result, progress and cancel.
    /// [param task] takes the index as its only argument. When every call has returned,
    /// [param callback] gets an Array of their results in index order, and so does the handle's
    /// [signal TaskHandle.finished]. Progress is the share of calls done. The first call that
    /// fails fails the group and the calls not yet started are skipped; cancelling skips them
    /// too. [param count] may be 0 (an empty result) up to 16 777 216.
    /// [codeblock]
    /// var rows = await processor.submit_group(func(y): return render_row(y), height).finished
    /// [/codeblock]
    #[func]
    pub fn submit_group(
        &self,
        task: Callable,
        count: i64,
        #[opt(default = Optional::<Callable>::none())] callback: Optional<Callable>,
        #[opt(default = 0)] priority: i64,
    ) -> Gd<TaskHandle> {
        let method = "submit_group";
        let Optional(callback) = callback;
        self.submit_with_handle(|this, attach| {
            this.check_callback(method, &callback)?;
            if !(0..=MAX_GROUP).contains(&count) {
                return Err(format!(
                    "{CLASS}.{method}: count {count} is not between 0 and {MAX_GROUP}; pass how many times to call the task."
                ));
            }
            let priority = parse_priority(method, priority)?;
            check_task(method, &task)?;
            let body = SharedCallable::new(task);
            let delivery = |task: &Arc<Task<SendVariant>>| Delivery {
                then: (!callback.is_null()).then(|| Then::Callable(callback)),
                handle: Some(attach(task)),
            };
            this.submit(method, delivery, |pool| {
                pool.submit_group(
                    priority,
                    count as usize,
                    move |index, _state| call_task(body.get(), &[(index as i64).to_variant()]),
                    |results| {
                        results.into_iter().collect::<SendVariant>()
                    },
                )
            })
        })
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

    /// Blocks until task [param task_id] has ended, or [param timeout_ms] passed (-1: no
    /// limit), and returns its result ([code]null[/code] if it failed, was cancelled or the wait
    /// timed out; check [method get_task_status]). On the main thread it keeps delivering
    /// completions while it waits (the task's own callback runs before this returns), so
    /// callbacks and signals still flow. From one of this processor's tasks it runs the awaited
    /// task itself if no worker has started it yet, so waiting never deadlocks the workers.
    /// A task's result is delivered once: after its callback ran (a later frame), this returns
    /// [code]null[/code]; keep a [TaskHandle] from [method run] to read a result any time.
    #[func]
    pub fn wait_for_task(&self, task_id: i64, #[opt(default = -1)] timeout_ms: i64) -> Variant {
        let id = u64::try_from(task_id).unwrap_or(0);
        let Some(task) = self.inner.pool.task(id) else {
            if self.inner.pool.status_of(id).is_none() {
                godot_error!(
                    "{CLASS}.wait_for_task: there is no task {task_id}; pass an id returned by submit_task()."
                );
            }
            return Variant::nil();
        };
        let timeout = timeout_from_ms(timeout_ms);
        let ended = if godot::init::is_main_thread() {
            self.wait_on_main_thread(timeout, || {
                task.status().is_finished() && self.inner.pool.task(id).is_none()
            })
        } else {
            self.inner.pool.wait(&task, timeout)
        };
        if !ended {
            return Variant::nil();
        }
        task.with_outcome(|outcome| match outcome {
            Some(Outcome::Completed(result)) => result.copy(),
            _ => Variant::nil(),
        })
    }

    /// Blocks until every task submitted so far (and any they or their callbacks submit) has
    /// ended, or [param timeout_ms] passed (-1: no limit). Returns whether all ended. On the main
    /// thread it keeps delivering completions meanwhile, so every callback has run when it
    /// returns [code]true[/code]. From inside one of this processor's tasks it would wait for
    /// itself: it reports an error and returns [code]false[/code].
    #[func]
    pub fn wait_all(&self, #[opt(default = -1)] timeout_ms: i64) -> bool {
        if self.inner.pool.is_own_worker() {
            godot_error!(
                "{CLASS}.wait_all: called from one of its own tasks, which would wait for itself; wait for specific tasks with wait_for_task(id) instead."
            );
            return false;
        }
        let timeout = timeout_from_ms(timeout_ms);
        if godot::init::is_main_thread() {
            return self.wait_on_main_thread(timeout, || self.inner.pool.outstanding() == 0);
        }
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        self.inner.pool.in_flight().iter().all(|task| {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            self.inner.pool.wait(task, left)
        })
    }

    /// Inside a running task: whether it was asked to cancel. Long tasks should check it and
    /// return early. [code]false[/code] outside a task.
    #[func]
    pub fn is_cancelled() -> bool {
        threadkit_core::current_task().is_some_and(|task| task.is_cancel_requested())
    }

    /// Inside a running task: records its progress, from 0.0 to 1.0 (clamped). Outside a task it
    /// reports an error and does nothing. (In a group task the progress is the share of calls
    /// done, which replaces what a call reports.)
    #[func]
    pub fn report_progress(value: f64) {
        match threadkit_core::current_task() {
            Some(task) => task.report_progress(value),
            None => godot_error!(
                "{CLASS}.report_progress: called outside a running task; call it from the task's Callable."
            ),
        }
    }

    /// Delivers finished tasks' results on the main thread: callbacks, then signals, then the
    /// handles' [signal TaskHandle.finished], within [member max_callbacks_per_frame] and
    /// [member frame_budget_usec]. Runs every frame by itself; call it by hand to deliver sooner.
    /// Returns how many it delivered.
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
        self.deliver_completed(limits) as i64
    }

    /// Counters: submitted, completed, failed, cancelled, pending, running (runs in progress,
    /// counting a task that a waiting task runs inline on its worker), workers, busy_workers
    /// (workers running something), dropped_callbacks (callbacks whose object was freed before
    /// delivery) and mean_task_usec.
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
        dict.set("busy_workers", stats.busy_workers as i64);
        dict.set(
            "dropped_callbacks",
            self.inner.dropped_callbacks.load(Ordering::Relaxed) as i64,
        );
        dict.set("mean_task_usec", stats.mean_task_usec);
        dict
    }

    #[func]
    fn _deliver_frame(&self) {
        // Still connected to the tree's frame signal after leaving the tree (removed, or a scene
        // change freeing it at the end of the frame), where `can_process` would report an error.
        let node = self.base();
        if node.is_inside_tree() && node.can_process() {
            self.process_completed();
        }
    }

    #[func]
    fn _on_tree_exiting(&self) {
        self.stop_workers(true);
        // What ended (including what the stop cancelled) is delivered now, so awaiters of this
        // processor's handles resume even if it never re-enters the tree.
        self.deliver_completed(DrainLimits::default());
    }
}

/// Submission and delivery, shared by the GDScript and Rust APIs.
impl AsyncTaskProcessor {
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
        match self.inner.pool.start(threads, "threadkit-worker-") {
            Ok(()) => true,
            Err(error) => {
                godot_warn!(
                    "{CLASS}.start_workers: {error}; call stop_workers() first to restart with another size."
                );
                false
            }
        }
    }

    fn check_callback(&self, method: &str, callback: &Callable) -> Result<(), String> {
        if !callback.is_null() && !callback.is_valid() {
            return Err(format!(
                "{CLASS}.{method}: the callback Callable is invalid (its object was freed or the method does not exist); pass a valid Callable, or none."
            ));
        }
        Ok(())
    }

    /// Queues a task that calls `task` with no argument.
    fn submit_single(
        &self,
        method: &str,
        task: Callable,
        priority: i64,
        delivery: impl FnOnce(&Arc<Task<SendVariant>>) -> Delivery,
    ) -> Result<Arc<Task<SendVariant>>, String> {
        let priority = parse_priority(method, priority)?;
        check_task(method, &task)?;
        let task = SendCallable::new(task);
        self.submit(method, delivery, |pool| {
            pool.submit(priority, move |_state| call_task(&task.into_inner(), &[]))
        })
    }

    /// Queues with `queue` and records the task's `delivery` before any thread can deliver it.
    fn submit(
        &self,
        method: &str,
        delivery: impl FnOnce(&Arc<Task<SendVariant>>) -> Delivery,
        queue: impl FnOnce(&Pool<SendVariant>) -> Result<Arc<Task<SendVariant>>, Stopped>,
    ) -> Result<Arc<Task<SendVariant>>, String> {
        // Held across the submit: the main thread takes a delivery under this lock, so it cannot
        // look for one between the task being queued and its delivery being recorded.
        let mut deliveries = self.inner.deliveries.lock();
        let task = queue(&self.inner.pool).map_err(|Stopped| {
            format!(
                "{CLASS}.{method}: the workers are not running; call start_workers() first (or keep autostart on and add the node to the tree)."
            )
        })?;
        let delivery = delivery(&task);
        if delivery.then.is_some() || delivery.handle.is_some() {
            deliveries.insert(task.id(), delivery);
        }
        Ok(task)
    }

    /// Submits through `submit`, which gets a function making the task's handle; on error
    /// reports it and returns a handle that has already failed.
    fn submit_with_handle(
        &self,
        submit: impl FnOnce(
            &Self,
            &mut dyn FnMut(&Arc<Task<SendVariant>>) -> Gd<TaskHandle>,
        ) -> Result<Arc<Task<SendVariant>>, String>,
    ) -> Gd<TaskHandle> {
        let mut made = None;
        let mut attach = |task: &Arc<Task<SendVariant>>| {
            let handle = TaskHandle::new(task.clone(), self.inner.pool.clone());
            made = Some(handle.clone());
            handle
        };
        match submit(self, &mut attach) {
            Ok(_) => made.expect("a submitted task has its handle"),
            Err(message) => {
                godot_error!("{message}");
                let handle = TaskHandle::failed(message);
                self.inner.refused.lock().push(Delivery {
                    then: None,
                    handle: Some(handle.clone()),
                });
                handle
            }
        }
    }

    /// Delivers completions within `limits` (and releases refused handles). Main thread only.
    fn deliver_completed(&self, limits: DrainLimits) -> usize {
        let refused = std::mem::take(&mut *self.inner.refused.lock());
        for delivery in refused {
            if let Some(mut handle) = delivery.handle {
                TaskHandle::emit_finished(&mut handle, &Variant::nil());
            }
        }
        let report = threadkit_core::drain(self.inner.pool.completions(), limits, |task| {
            self.deliver(&task)
        });
        self.notify_if_idle(report.processed);
        report.processed
    }

    fn notify_if_idle(&self, delivered: usize) {
        if delivered > 0 && self.inner.pool.outstanding() == 0 {
            self.to_gd()
                .emit_signal(static_name!(c"all_tasks_completed"), &[]);
        }
    }

    /// Delivers completions, and runs MainThreadDispatcher work, as they arrive until `done`
    /// holds or `timeout` passed. Running the dispatcher's queue too is what lets a task that
    /// waits on the main thread (`call_blocking`) finish while the main thread waits for it.
    fn wait_on_main_thread(&self, timeout: Option<Duration>, done: impl Fn() -> bool) -> bool {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let completions = self.inner.pool.completions();
        let dispatched = main_thread_dispatcher::QUEUE.receiver();
        loop {
            self.deliver_completed(DrainLimits::default());
            main_thread_dispatcher::drain(Some(DrainLimits::default()));
            if done() {
                return true;
            }
            // Sleep until either queue has something, without taking it: the drains above do
            // their own bookkeeping.
            let mut select = crossbeam_channel::Select::new();
            select.recv(completions);
            select.recv(dispatched);
            let woke = match deadline {
                None => Some(select.ready()),
                Some(deadline) => select.ready_deadline(deadline).ok(),
            };
            if woke.is_none() {
                return done();
            }
        }
    }

    /// Calls the task's continuation, emits the processor's signal, then its handle's. Runs on the
    /// main thread.
    fn deliver(&self, task: &Task<SendVariant>) {
        self.inner.pool.collect(task);
        let Delivery { then, handle } = self
            .inner
            .deliveries
            .lock()
            .remove(&task.id())
            .unwrap_or_default();
        let id = task.id() as i64;
        let mut this = self.to_gd();
        enum Ended {
            Completed(Variant),
            Failed(String),
            Cancelled,
        }
        let ended = task.with_outcome(|outcome| match outcome {
            Some(Outcome::Completed(result)) => Ended::Completed(result.copy()),
            Some(Outcome::Failed(message)) => Ended::Failed(message.clone()),
            Some(Outcome::Cancelled) | None => Ended::Cancelled,
        });
        let result = match &ended {
            Ended::Completed(result) => result.clone(),
            _ => Variant::nil(),
        };
        if let (Ended::Completed(_), Some(then)) = (&ended, then) {
            self.call_back(id, then, &result);
        }
        match ended {
            Ended::Completed(_) => {
                this.emit_signal(
                    static_name!(c"task_completed"),
                    &[id.to_variant(), result.clone()],
                );
            }
            Ended::Failed(message) => {
                godot_error!("{CLASS}: task {id} failed: {message}");
                this.emit_signal(
                    static_name!(c"task_failed"),
                    &[id.to_variant(), message.to_variant()],
                );
            }
            Ended::Cancelled => {
                this.emit_signal(static_name!(c"task_cancelled"), &[id.to_variant()]);
            }
        }
        // Last: an awaiting coroutine resumes inside this emit and may run on for a while.
        if let Some(mut handle) = handle {
            TaskHandle::emit_finished(&mut handle, &result);
        }
    }

    fn call_back(&self, id: i64, then: Then, result: &Variant) {
        match then {
            Then::Callable(callback) if !callback.is_valid() => {
                // Its object was freed while the task ran: the caller's choice, not an error.
                self.inner.dropped_callbacks.fetch_add(1, Ordering::Relaxed);
            }
            Then::Callable(callback) => {
                let args = if callback.get_argument_count() == 0 {
                    &[][..]
                } else {
                    std::slice::from_ref(result)
                };
                // `Callable::call` would drop a call Godot refuses without a word.
                if let Err(message) = try_call(&callback, args) {
                    godot_error!(
                        "{CLASS}: the callback of task {id} was not called: {message}; give it one parameter for the result (untyped or of the result's type), or none."
                    );
                }
            }
            Then::Rust(continuation) => {
                // A panic must not abort the rest of this frame's deliveries.
                if let Err(panic) =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(continuation))
                {
                    let message = threadkit_core::panic_message(&*panic);
                    godot_error!("{CLASS}: the Rust continuation of task {id} panicked: {message}");
                }
            }
        }
    }
}

/// The error for a task Callable that cannot be called at all.
fn check_task(method: &str, task: &Callable) -> Result<(), String> {
    if task.is_valid() {
        Ok(())
    } else {
        Err(format!(
            "{CLASS}.{method}: the task Callable is invalid (null, or its object was freed, or the method does not exist); pass a valid Callable such as func(): return work()."
        ))
    }
}

/// Runs a task's Callable on a worker; a call Godot refuses becomes the task's failure.
fn call_task(task: &Callable, args: &[Variant]) -> Result<SendVariant, String> {
    // Checked again here: the target may have been freed while the task waited.
    if !task.is_valid() {
        return Err("the task's object was freed (or lost its method) before the task ran".into());
    }
    try_call(task, args).map(SendVariant::detach)
}

fn timeout_from_ms(timeout_ms: i64) -> Option<Duration> {
    u64::try_from(timeout_ms).ok().map(Duration::from_millis)
}

fn parse_priority(method: &str, priority: i64) -> Result<Priority, String> {
    match priority {
        AsyncTaskProcessor::PRIORITY_HIGH => Ok(Priority::High),
        AsyncTaskProcessor::PRIORITY_NORMAL => Ok(Priority::Normal),
        other => Err(format!(
            "{CLASS}.{method}: priority {other} is neither PRIORITY_NORMAL (0) nor PRIORITY_HIGH (1)."
        )),
    }
}
