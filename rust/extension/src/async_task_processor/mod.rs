use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use godot::classes::{Engine, INode, Node, SceneTree};
use godot::prelude::*;
use parking_lot::Mutex;
use threadkit_core::pool::{StopWait, Stopped};
use threadkit_core::{
    CancelOutcome, DrainLimits, Outcome, Pool, Priority, Task, TaskState, WaitError,
};

use crate::call::{static_name, try_call};
use crate::coroutine;
use crate::held_locks::TaskHolds;
use crate::kept_call::{self, Failure};
use crate::lookup::live_object;
use crate::main_thread_dispatcher;
use crate::monitors;
use crate::script_errors::Nesting;
use crate::send::{Optional, SendCallable, SendVariant, SharedCallable};
use crate::status;
use crate::task_handle::TaskHandle;

mod rust_api;
mod scheduling;
mod scopes;
mod switch;

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
/// Delivery follows the node's [member Node.process_mode]: while the game is paused nothing is
/// delivered unless it is [constant Node.PROCESS_MODE_ALWAYS]. Leaving the tree does not stop
/// the workers: a reparented processor keeps its tasks, and one outside the tree (never added,
/// or removed) starts its workers at the first submit and delivers every frame.
///
/// [codeblock]
/// @onready var processor: AsyncTaskProcessor = $AsyncTaskProcessor
///
/// func _ready() -> void:
///     processor.submit_task(func(): return heavy_path_search(), func(path): $Agent.follow(path))
///     var mesh = await processor.run(build_mesh).wait()  # null if it failed or was cancelled
/// [/codeblock]
///
/// Tasks run in parallel: what a task touches must be safe to touch from another thread (its own
/// data, ThreadKit's thread-safe classes). Results that are Arrays, Dictionaries or Packed*Arrays
/// are deep-copied on their way to the main thread (Godot shares all three by reference). Long
/// tasks should poll [method is_cancelled] so that [method cancel_task] and [method stop_workers]
/// take effect quickly.
///
/// [b]Freed objects.[/b] A task whose Callable's object was freed before it ran (a scene change
/// freed the level that queued it on a long-lived processor) ends cancelled, without an error,
/// counted in [method get_stats]' [code]dropped_tasks[/code]. Callbacks never run once the
/// processor is freed; every [TaskHandle] still emits [signal TaskHandle.finished].
///
/// [b]Errors inside a task.[/b] A call Godot refuses (wrong argument count, missing method,
/// freed object) fails the task with a message. So does a GDScript runtime error raised while the
/// task runs, in its code or in anything it calls (for example a method called on null): Godot
/// alone would print it and let the task complete with null, but ThreadKit sees it (through a
/// [Logger]) and the task fails with the error, where it happened and the script backtrace
/// (see [method TaskHandle.get_error]). [method @GlobalScope.push_error] and
/// [method @GlobalScope.push_warning] do not fail a task: the function runs on and its result
/// stands. Godot reports runtime errors in debug builds only (the editor, debug exports): in a
/// release export such a task completes with null. A task that uses [code]await[/code] (a
/// coroutine) returns at its first await: it fails with an error saying so, and the rest of it
/// never runs. To run part of a coroutine on a worker instead, see [method switch_to_worker]; to
/// run tasks on the main thread (breakpoints, no threads), see [member synchronous]. A [ReadWriteLock] the task still holds when it ends (it failed, or did not unlock)
/// is released, with an error naming the task.
///
/// Summed over every processor, the queued tasks, busy workers and completions per second
/// appear in the debugger's Monitors tab as [code]ThreadKit/tasks_pending[/code],
/// [code]ThreadKit/busy_workers[/code] and [code]ThreadKit/tasks_completed_per_second[/code].
///
/// The properties may be set at any time from any thread, from a callback and from a task (they
/// are atomics), and the methods that wait or call your code hold no lock on the node while they
/// do: freeing the processor while a thread waits in [method wait_for_task] or [method wait_all]
/// wakes that thread, which returns with an error, and the processor may be freed from one of
/// its callbacks or right after an [code]await[/code] of one of its handles.
#[derive(GodotClass)]
#[class(base = Node)]
pub struct AsyncTaskProcessor {
    /// How many worker threads [method start_workers] starts by default; 0 means one per CPU core.
    #[var(get = get_worker_count, set = set_worker_count)]
    #[export]
    worker_count: PhantomVar<i32>,
    /// Start the workers when the node enters the tree ([code]_ready[/code]).
    #[var(get = get_autostart, set = set_autostart)]
    #[export]
    autostart: PhantomVar<bool>,
    /// The most callbacks delivered in one frame; 0 means no limit. A change applies from the
    /// next delivery.
    #[var(get = get_max_callbacks_per_frame, set = set_max_callbacks_per_frame)]
    #[export]
    max_callbacks_per_frame: PhantomVar<i32>,
    /// The time, in microseconds, one frame may spend delivering completions; 0 means no limit.
    /// At least one completion is delivered per frame, so progress never stops. A change applies
    /// from the next delivery.
    #[var(get = get_frame_budget_usec, set = set_frame_budget_usec)]
    #[export]
    frame_budget_usec: PhantomVar<i32>,
    /// How long, in milliseconds, [method stop_workers] waits for running tasks to return; -1
    /// waits as long as they take. A task that ignores [method is_cancelled] past this is left
    /// to finish on its own thread, with a warning. Freeing the processor (a scene change,
    /// quitting) always waits until every task returned, since Godot would crash freeing a
    /// script a worker still runs: past this time it warns every second, naming the tasks
    /// (-1: without warnings). Make long tasks check [method is_cancelled].
    #[var(get = get_stop_timeout_msec, set = set_stop_timeout_msec)]
    #[export]
    stop_timeout_msec: PhantomVar<i32>,
    /// Run tasks on the main thread, during delivery, instead of on the workers: the same
    /// methods, signals and handles on one thread, to step through tasks with breakpoints, or on
    /// a platform without threads. Each delivery (every frame, [method process_completed])
    /// first runs the tasks queued for it, most urgent first, within
    /// [member max_callbacks_per_frame] and [member frame_budget_usec] (at least one task per
    /// delivery), then delivers the completions, theirs included; a task a task submits runs at
    /// the next delivery. [method is_cancelled], [method report_progress], groups (their calls in
    /// index order), script errors (they fail the task) and the refusal of coroutines work as on
    /// a worker. [method wait_for_task] and [method wait_all] on the main thread run the tasks
    /// they wait for. Like delivery, it follows [member Node.process_mode]: while the game is
    /// paused no task runs unless it is [constant Node.PROCESS_MODE_ALWAYS].
    ///
    /// A change applies to the tasks submitted after it, from any thread: tasks already queued
    /// for the workers still run there, and tasks already queued for the main thread still run
    /// there ([method stop_workers] and freeing the processor cancel both). On when the node
    /// enters the tree, it starts no workers; turned off later, the next submit starts them
    /// (with [member autostart]).
    #[var(get = get_synchronous, set = set_synchronous)]
    #[export]
    synchronous: PhantomVar<bool>,
    inner: Arc<Inner>,
    /// Counts this processor in ThreadKit's debugger monitors; held only to be dropped with it.
    _monitored: monitors::Registration,
    base: Base<Node>,
}

/// State shared by every call, from any thread. Methods that wait or call user code clone the
/// `Arc` out of a bind that ends at once and work on this alone, so the node may be freed
/// meanwhile.
struct Inner {
    pool: Pool<SendVariant>,
    /// What to do on the main thread when a task ends, per task id.
    deliveries: Mutex<HashMap<u64, Delivery>>,
    /// Handles of `run` calls that failed before a task existed; released at the next delivery.
    refused: Mutex<Vec<Delivery>>,
    dropped_callbacks: AtomicU64,
    settings: Settings,
    /// Threads blocked in `wait_for_task` / `wait_all` now.
    waiting: AtomicU64,
    /// Set first thing when the node is freed: waits give up, deliveries stop touching the node.
    freed: AtomicBool,
    /// Whether the frame delivery is connected: by `ready`, or by the first submit of a
    /// processor outside the tree.
    frame_hooked: AtomicBool,
    /// Whether the workers were ever started: a processor outside the tree starts them at its
    /// first submit (with autostart), but never restarts workers someone stopped.
    ever_started: AtomicBool,
    /// The latest task of each `run_keyed` key.
    keys: scopes::Keys,
}

/// The exported properties: atomics, so that any thread may set them while others read them.
struct Settings {
    worker_count: AtomicI32,
    autostart: AtomicBool,
    max_callbacks_per_frame: AtomicI32,
    frame_budget_usec: AtomicI32,
    stop_timeout_msec: AtomicI32,
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
        // Until `ready` names it after the node, for the error reporting a cycle of waits.
        pool.set_name(format!("{CLASS} #{}", base.to_init_gd().instance_id()));
        Self {
            worker_count: PhantomVar::default(),
            autostart: PhantomVar::default(),
            max_callbacks_per_frame: PhantomVar::default(),
            frame_budget_usec: PhantomVar::default(),
            stop_timeout_msec: PhantomVar::default(),
            synchronous: PhantomVar::default(),
            _monitored: monitors::register(&pool),
            inner: Arc::new(Inner {
                pool,
                deliveries: Mutex::new(HashMap::new()),
                refused: Mutex::new(Vec::new()),
                dropped_callbacks: AtomicU64::new(0),
                settings: Settings {
                    worker_count: AtomicI32::new(0),
                    autostart: AtomicBool::new(true),
                    max_callbacks_per_frame: AtomicI32::new(0),
                    frame_budget_usec: AtomicI32::new(2000),
                    stop_timeout_msec: AtomicI32::new(5000),
                },
                waiting: AtomicU64::new(0),
                freed: AtomicBool::new(false),
                frame_hooked: AtomicBool::new(false),
                ever_started: AtomicBool::new(false),
                keys: scopes::Keys::default(),
            }),
            base,
        }
    }

    #[func(gd_self)]
    fn ready(this: Gd<Self>) {
        let inner = this.bind().inner.clone();
        name_pool(&this, &inner);
        hook_once(&this, &inner);
        if inner.settings.autostart.load(Ordering::Relaxed)
            && !inner.pool.is_running()
            && !inner.pool.is_local()
        {
            inner.start(inner.settings.worker_count.load(Ordering::Relaxed) as i64);
        }
    }
}

/// Connects delivery to the scene tree's `process_frame`, once. A Callable linked to the node
/// (Godot drops it when the node is freed) rather than a method of it: Godot refuses to free an
/// object while one of its methods runs, and a callback or an awaiting coroutine resumed by a
/// delivery may free the processor. Leaving the tree does not disconnect it: a reparented
/// processor keeps delivering, and one outside the tree delivers every frame.
fn hook_once(this: &Gd<AsyncTaskProcessor>, inner: &Arc<Inner>) {
    // From the main loop, not `get_tree()`: the node may be outside the tree.
    let Some(mut tree) = Engine::singleton()
        .get_main_loop()
        .and_then(|main_loop| main_loop.try_cast::<SceneTree>().ok())
    else {
        return; // A custom MainLoop: process_completed() delivers.
    };
    if inner.frame_hooked.swap(true, Ordering::AcqRel) {
        return;
    }
    let (node, shared) = (this.clone(), inner.clone());
    let deliver = Callable::from_linked_fn("AsyncTaskProcessor.deliver_frame", this, move |_| {
        // In the tree, delivery follows the node's process_mode (none while paused, unless
        // PROCESS_MODE_ALWAYS); outside it nothing pauses it.
        if !shared.is_freed() && (!node.is_inside_tree() || node.can_process()) {
            deliver_completed(&shared, &node, shared.frame_limits());
        }
        Variant::nil()
    });
    tree.connect("process_frame", &deliver);
}

impl AsyncTaskProcessor {
    /// Makes sure a processor that never entered the tree still delivers: hooks its delivery on
    /// the main thread, now or (from another thread) at the dispatcher's next drain.
    fn ensure_delivery(&self) {
        if self.inner.frame_hooked.load(Ordering::Acquire) {
            return;
        }
        let id = self.base().instance_id();
        let hook_later = move || {
            if let Ok(this) = live_object(id).try_to::<Gd<AsyncTaskProcessor>>() {
                let inner = this.bind().inner.clone();
                hook_once(&this, &inner);
            }
        };
        if godot::init::is_main_thread() {
            hook_later();
        } else {
            main_thread_dispatcher::run_on_main(Box::new(hook_later));
        }
    }
}

impl Drop for AsyncTaskProcessor {
    fn drop(&mut self) {
        let inner = &self.inner;
        // First, so that waiting threads give up and a delivery running further up this thread's
        // stack (a callback freed the node) stops touching it.
        inner.freed.store(true, Ordering::SeqCst);
        inner.pool.wake_waiters();
        // Stop, and wait for every worker, however long: Godot frees a task's script after this
        // (a scene change, quitting, a hot reload that unloads this library), and a worker still
        // running it then would crash. WorkerThreadPool waits the same way.
        inner.join_workers();
        // Nobody will deliver these tasks now: release whoever awaits their handles, on the main
        // thread's next drain rather than here, where a resumed coroutine would meet this node
        // half destroyed.
        let mut orphans: Vec<Delivery> = std::mem::take(&mut *inner.deliveries.lock())
            .into_values()
            .collect();
        orphans.append(&mut inner.refused.lock());
        // When the game quits nothing resumes any more: they are dropped here, while the scripts
        // they hold still live.
        if !orphans.is_empty() && !crate::shutdown::is_shutting_down() {
            main_thread_dispatcher::run_on_main(Box::new(move || release(orphans)));
        }
    }
}

#[godot_api]
impl AsyncTaskProcessor {
    /// A task's status: the id is unknown (never submitted, or long forgotten).
    #[constant]
    pub const STATUS_UNKNOWN: i64 = status::UNKNOWN;
    /// Queued, not started.
    #[constant]
    pub const STATUS_PENDING: i64 = status::PENDING;
    /// Running on a worker.
    #[constant]
    pub const STATUS_RUNNING: i64 = status::RUNNING;
    /// Returned a result.
    #[constant]
    pub const STATUS_COMPLETED: i64 = status::COMPLETED;
    /// Could not run, or failed while running (see the [signal task_failed] message).
    #[constant]
    pub const STATUS_FAILED: i64 = status::FAILED;
    /// Cancelled before it started, or while it ran.
    #[constant]
    pub const STATUS_CANCELLED: i64 = status::CANCELLED;
    /// Runs before every waiting normal-priority task.
    #[constant]
    pub const PRIORITY_HIGH: i64 = 1;
    /// The default priority.
    #[constant]
    pub const PRIORITY_NORMAL: i64 = 0;
    /// Runs only while no normal- or high-priority task waits: background work (prefetching,
    /// warming caches) that must never delay the rest. Tasks run most urgent first, and in the
    /// order they were submitted within a priority.
    #[constant]
    pub const PRIORITY_LOW: i64 = -1;

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
        self.inner.start(num_threads)
    }

    /// Stops the workers. Pending tasks become cancelled ([signal task_cancelled]); running tasks
    /// are asked to cancel. With [param wait], returns once every worker has exited or
    /// [member stop_timeout_msec] passed. Leaving the tree does not stop the workers (a
    /// reparented processor keeps working); being freed does, and waits for every task (a hot
    /// reload of the extension frees it too). Submitting afterwards fails until
    /// [method start_workers].
    #[func(gd_self)]
    pub fn stop_workers(this: Gd<Self>, #[opt(default = true)] wait: bool) {
        let inner = this.bind().inner.clone();
        inner.stop(wait);
    }

    /// Whether the workers are running.
    #[func]
    pub fn is_running(&self) -> bool {
        self.inner.pool.is_running()
    }

    /// Runs [param task] (a Callable taking no arguments) on a worker. When it returns, calls
    /// [param callback] on the main thread with its result (or with no argument if the callback
    /// takes none). [param priority] is [constant PRIORITY_LOW], [constant PRIORITY_NORMAL] or
    /// [constant PRIORITY_HIGH].
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
        self.ensure_delivery();
        let Optional(callback) = callback;
        let submitted = check_callback(method, &callback).and_then(|()| {
            self.inner
                .submit_single(method, task, priority, |_| Delivery {
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
    /// [TaskHandle], whose [method TaskHandle.wait] brings the result back to the main thread
    /// (untyped: a task that failed or was cancelled gives [code]null[/code]):
    /// [codeblock]
    /// var result = await processor.run(func(): return expensive()).wait()
    /// [/codeblock]
    /// On bad input (an invalid callable, stopped workers) it reports an error and returns a
    /// handle that has already failed (id -1), whose [signal TaskHandle.finished] is still
    /// emitted at the next delivery, so an [code]await[/code] never hangs.
    #[func]
    pub fn run(&self, task: Callable, #[opt(default = 0)] priority: i64) -> Gd<TaskHandle> {
        self.ensure_delivery();
        self.inner.submit_with_handle(|inner, attach| {
            inner.submit_single("run", task, priority, |task| Delivery {
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
    /// [method TaskHandle.wait]. Progress is the share of calls done. The first call that
    /// fails fails the group and the calls not yet started are skipped; cancelling skips them
    /// too. [param count] may be 0 (an empty result) up to 16 777 216.
    /// [param max_threads] caps how many workers run its calls at once (0: all of them), like
    /// [code]WorkerThreadPool.add_group_task[/code]'s [code]tasks_needed[/code]: the other
    /// workers stay free for other tasks meanwhile.
    /// [codeblock]
    /// var rows = await processor.submit_group(func(y): return render_row(y), height).wait()
    /// [/codeblock]
    #[func]
    pub fn submit_group(
        &self,
        task: Callable,
        count: i64,
        #[opt(default = Optional::<Callable>::none())] callback: Optional<Callable>,
        #[opt(default = 0)] priority: i64,
        #[opt(default = 0)] max_threads: i64,
    ) -> Gd<TaskHandle> {
        let method = "submit_group";
        self.ensure_delivery();
        let Optional(callback) = callback;
        self.inner.submit_with_handle(|inner, attach| {
            check_callback(method, &callback)?;
            if !(0..=MAX_GROUP).contains(&count) {
                return Err(format!(
                    "{CLASS}.{method}: count {count} is not between 0 and {MAX_GROUP}; pass how many times to call the task."
                ));
            }
            let priority = parse_priority(method, priority)?;
            let max_threads = scheduling::parse_max_threads(method, max_threads)?;
            check_task(method, &task)?;
            let label = label_of(&task);
            let body = SharedCallable::new(task);
            let delivery = |task: &Arc<Task<SendVariant>>| Delivery {
                then: (!callback.is_null()).then(|| Then::Callable(callback)),
                handle: Some(attach(task)),
            };
            let submitted = inner.submit(method, delivery, |pool| {
                pool.submit_group_limited(
                    priority,
                    count as usize,
                    max_threads,
                    move |index, state| {
                        let args = [(index as i64).to_variant()];
                        call_task(state, body.get(), &args, Some(index))
                    },
                    |results| {
                        results.into_iter().collect::<SendVariant>()
                    },
                )
            })?;
            submitted.set_label(label);
            Ok(submitted)
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
            .map_or(Self::STATUS_UNKNOWN, status::code)
    }

    /// Blocks until task [param task_id] has ended, or [param timeout_ms] passed (-1: no
    /// limit), and returns its result ([code]null[/code] if it failed, was cancelled or the wait
    /// timed out; check [method get_task_status]). On the main thread it keeps delivering
    /// completions while it waits (the task's own callback runs before this returns), so
    /// callbacks and signals still flow. A task's result is delivered once: after its callback
    /// ran (a later frame), this returns [code]null[/code]; keep a [TaskHandle] from
    /// [method run] to read a result any time. If the processor is freed while this waits (from
    /// another thread, or by a callback or a dispatched call it runs), it returns
    /// [code]null[/code] with an error.
    ///
    /// [b]Waits never deadlock and never overflow a stack.[/b]
    /// - From one of this processor's tasks, a task no worker has started yet is run right
    ///   here, nested in the wait, at most 128 tasks nested on one thread; past that the worker
    ///   blocks. While every worker is blocked in a wait and tasks are queued, the processor adds a
    ///   spare worker (at most 256; each exits after 0.1 s without work; see [method get_stats]),
    ///   so a chain of tasks each waiting for the next completes on any number of workers, up to
    ///   about (workers + 256) × 128 links. A wait that would need a worker past that returns
    ///   [code]null[/code] at once with an error.
    /// - On the main thread, without a timeout, a task still queued while every worker is busy
    ///   is run by the main thread itself, inside this call. (With a timeout it is not: the task
    ///   could run past it.)
    /// - A wait that would close a cycle (task A waits for task B, of this processor or another,
    ///   which waits, directly or through other tasks, for A; or a task waits for itself) returns
    ///   [code]null[/code] at once with an error naming each task of the cycle and its processor
    ///   (by the node's name when it entered the tree, or else by its instance id). The other
    ///   waits of the cycle then end as the task whose wait was refused ends.
    #[func(gd_self)]
    pub fn wait_for_task(
        this: Gd<Self>,
        task_id: i64,
        #[opt(default = -1)] timeout_ms: i64,
    ) -> Variant {
        let inner = this.bind().inner.clone();
        let id = u64::try_from(task_id).unwrap_or(0);
        let Some(task) = inner.pool.task(id) else {
            if inner.pool.status_of(id).is_none() {
                godot_error!(
                    "{CLASS}.wait_for_task: there is no task {task_id}; pass an id returned by submit_task()."
                );
            }
            return Variant::nil();
        };
        let timeout = timeout_from_ms(timeout_ms);
        let _waiting = Waiting::new(&inner);
        let ended = if godot::init::is_main_thread() {
            // A task run here by an earlier wait may wait in turn: the main thread is then that
            // task, in the wait-for graph.
            match inner.pool.begin_wait(&task) {
                Ok(_edge) => wait_on_main_thread(
                    &inner,
                    &this,
                    timeout,
                    || task.status().is_finished() && inner.pool.task(id).is_none(),
                    // Not with a timeout: the task could run past it.
                    || timeout.is_none() && inner.pool.help(&task),
                ),
                Err(cycle) => WaitEnd::Refused(WaitError::Cycle(cycle)),
            }
        } else {
            inner.wait_off_main_thread(&task, timeout)
        };
        match ended {
            WaitEnd::Done => task.with_outcome(|outcome| match outcome {
                Some(Outcome::Completed(result)) => result.copy(),
                _ => Variant::nil(),
            }),
            WaitEnd::TimedOut => Variant::nil(),
            WaitEnd::Freed => {
                report_freed("wait_for_task");
                Variant::nil()
            }
            WaitEnd::Refused(error) => {
                report_refused("wait_for_task", &error, "null");
                Variant::nil()
            }
        }
    }

    /// Blocks until every task submitted so far (and any they or their callbacks submit) has
    /// ended, or [param timeout_ms] passed (-1: no limit). Returns whether all ended. On the main
    /// thread it keeps delivering completions meanwhile, so every callback has run when it
    /// returns [code]true[/code]. From inside one of this processor's tasks (also one the main
    /// thread runs in [method wait_for_task]) it would wait for itself: it reports an error and
    /// returns [code]false[/code]. If the processor is freed while this waits, it returns
    /// [code]false[/code] with an error; a wait that would close a cycle (see
    /// [method wait_for_task]) returns [code]false[/code] at once with an error.
    #[func(gd_self)]
    pub fn wait_all(this: Gd<Self>, #[opt(default = -1)] timeout_ms: i64) -> bool {
        let inner = this.bind().inner.clone();
        if inner.pool.in_own_task() {
            godot_error!(
                "{CLASS}.wait_all: called from one of its own tasks, which would wait for itself; wait for specific tasks with wait_for_task(id) instead."
            );
            return false;
        }
        let timeout = timeout_from_ms(timeout_ms);
        let _waiting = Waiting::new(&inner);
        let ended = if godot::init::is_main_thread() {
            wait_on_main_thread(
                &inner,
                &this,
                timeout,
                || inner.pool.outstanding() == 0,
                || false,
            )
        } else {
            let deadline = timeout.map(|timeout| Instant::now() + timeout);
            inner
                .pool
                .in_flight()
                .iter()
                .map(|task| {
                    let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                    inner.wait_off_main_thread(task, left)
                })
                .find(|ended| *ended != WaitEnd::Done)
                .unwrap_or(WaitEnd::Done)
        };
        match ended {
            WaitEnd::Done => true,
            WaitEnd::TimedOut => false,
            WaitEnd::Freed => {
                report_freed("wait_all");
                false
            }
            WaitEnd::Refused(error) => {
                report_refused("wait_all", &error, "false");
                false
            }
        }
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
    #[func(gd_self)]
    pub fn process_completed(this: Gd<Self>) -> i64 {
        if !godot::init::is_main_thread() {
            godot_error!(
                "{CLASS}.process_completed: called from a worker thread; it delivers callbacks and must run on the main thread."
            );
            return 0;
        }
        let inner = this.bind().inner.clone();
        deliver_completed(&inner, &this, inner.frame_limits()) as i64
    }

    /// Counters: submitted, completed, failed, cancelled, pending (delayed tasks included),
    /// delayed (tasks of [method run_delayed] still waiting for their delay), running (runs in
    /// progress, counting a task that a waiting task runs inline on its worker), workers,
    /// busy_workers (workers running something, spares included), spare_workers (extra workers
    /// alive now, added while every worker was blocked in a wait; see [method wait_for_task]),
    /// dropped_callbacks (callbacks whose object was freed before delivery), waiting (threads
    /// blocked in [method wait_for_task] or [method wait_all] now), dropped_tasks (tasks whose
    /// object was freed before they ran), keyed_tasks (keys of [method run_keyed] whose latest
    /// task has not ended) and mean_task_usec.
    #[func]
    pub fn get_stats(&self) -> VarDictionary {
        let stats = self.inner.pool.stats();
        let mut dict = VarDictionary::new();
        dict.set("submitted", stats.submitted as i64);
        dict.set("completed", stats.completed as i64);
        dict.set("failed", stats.failed as i64);
        dict.set("cancelled", stats.cancelled as i64);
        dict.set("pending", stats.pending as i64);
        dict.set("delayed", stats.delayed as i64);
        dict.set("running", stats.running as i64);
        dict.set("workers", stats.workers as i64);
        dict.set("busy_workers", stats.busy_workers as i64);
        dict.set("spare_workers", stats.spare_workers as i64);
        dict.set(
            "dropped_callbacks",
            self.inner.dropped_callbacks.load(Ordering::Relaxed) as i64,
        );
        dict.set("waiting", self.inner.waiting.load(Ordering::Relaxed) as i64);
        dict.set("dropped_tasks", stats.dropped as i64);
        dict.set("keyed_tasks", self.inner.keys.len() as i64);
        dict.set("mean_task_usec", stats.mean_task_usec);
        dict
    }

    /// The getter of [member worker_count].
    #[func]
    pub fn get_worker_count(&self) -> i32 {
        self.inner.settings.worker_count.load(Ordering::Relaxed)
    }

    /// The setter of [member worker_count]; callable from any thread.
    #[func]
    pub fn set_worker_count(&self, value: i32) {
        self.inner
            .settings
            .worker_count
            .store(value, Ordering::Relaxed);
    }

    /// The getter of [member autostart].
    #[func]
    pub fn get_autostart(&self) -> bool {
        self.inner.settings.autostart.load(Ordering::Relaxed)
    }

    /// The setter of [member autostart]; callable from any thread.
    #[func]
    pub fn set_autostart(&self, value: bool) {
        self.inner
            .settings
            .autostart
            .store(value, Ordering::Relaxed);
    }

    /// The getter of [member max_callbacks_per_frame].
    #[func]
    pub fn get_max_callbacks_per_frame(&self) -> i32 {
        self.inner
            .settings
            .max_callbacks_per_frame
            .load(Ordering::Relaxed)
    }

    /// The setter of [member max_callbacks_per_frame]; callable from any thread, and from a
    /// callback (the next delivery applies it).
    #[func]
    pub fn set_max_callbacks_per_frame(&self, value: i32) {
        self.inner
            .settings
            .max_callbacks_per_frame
            .store(value, Ordering::Relaxed);
    }

    /// The getter of [member frame_budget_usec].
    #[func]
    pub fn get_frame_budget_usec(&self) -> i32 {
        self.inner
            .settings
            .frame_budget_usec
            .load(Ordering::Relaxed)
    }

    /// The setter of [member frame_budget_usec]; callable from any thread, and from a callback
    /// (the next delivery applies it).
    #[func]
    pub fn set_frame_budget_usec(&self, value: i32) {
        self.inner
            .settings
            .frame_budget_usec
            .store(value, Ordering::Relaxed);
    }

    /// The getter of [member stop_timeout_msec].
    #[func]
    pub fn get_stop_timeout_msec(&self) -> i32 {
        self.inner
            .settings
            .stop_timeout_msec
            .load(Ordering::Relaxed)
    }

    /// The setter of [member stop_timeout_msec]; callable from any thread, and from a task (the
    /// next stop applies it).
    #[func]
    pub fn set_stop_timeout_msec(&self, value: i32) {
        self.inner
            .settings
            .stop_timeout_msec
            .store(value, Ordering::Relaxed);
    }

    /// The getter of [member synchronous].
    #[func]
    pub fn get_synchronous(&self) -> bool {
        self.inner.pool.is_local()
    }

    /// The setter of [member synchronous]; callable from any thread, from a callback and from a
    /// task (tasks submitted afterwards follow it).
    #[func]
    pub fn set_synchronous(&self, value: bool) {
        self.inner.pool.set_local(value);
    }
}

/// Starting, stopping and submission, shared by the GDScript and Rust APIs.
impl Inner {
    fn is_freed(&self) -> bool {
        self.freed.load(Ordering::SeqCst)
    }

    /// One frame's delivery bounds, from the settings as they are now.
    fn frame_limits(&self) -> DrainLimits {
        let settings = &self.settings;
        DrainLimits {
            max_items: usize::try_from(settings.max_callbacks_per_frame.load(Ordering::Relaxed))
                .ok()
                .filter(|&n| n > 0),
            budget: u64::try_from(settings.frame_budget_usec.load(Ordering::Relaxed))
                .ok()
                .filter(|&n| n > 0)
                .map(Duration::from_micros),
        }
    }

    fn start(&self, num_threads: i64) -> bool {
        if !(0..=threadkit_core::pool::MAX_THREADS as i64).contains(&num_threads) {
            godot_error!(
                "{CLASS}.start_workers: {num_threads} threads is not between 0 (one per CPU core) and {}; pass a count in that range.",
                threadkit_core::pool::MAX_THREADS
            );
            return false;
        }
        let worker_count = self.settings.worker_count.load(Ordering::Relaxed);
        let threads = match num_threads {
            0 if worker_count > 0 => worker_count as usize,
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n as usize,
        };
        match self.pool.start(threads, "threadkit-worker-") {
            Ok(()) => {
                self.ever_started.store(true, Ordering::Relaxed);
                true
            }
            Err(error) => {
                godot_warn!(
                    "{CLASS}.start_workers: {error}; call stop_workers() first to restart with another size."
                );
                false
            }
        }
    }

    fn stop(&self, wait: bool) {
        let own_worker = self.pool.is_own_worker();
        if wait && own_worker {
            godot_error!(
                "{CLASS}.stop_workers: called from one of its own tasks with wait = true, which would wait for itself; stopping without waiting."
            );
        }
        let timeout_ms = self.settings.stop_timeout_msec.load(Ordering::Relaxed);
        let how = match (wait && !own_worker, timeout_ms) {
            (false, _) => StopWait::No,
            (true, ms) if ms < 0 => StopWait::Forever,
            (true, ms) => StopWait::Within(Duration::from_millis(ms as u64)),
        };
        let report = self.pool.stop(how);
        if report.still_running > 0 {
            godot_warn!(
                "{CLASS}.stop_workers: {} task(s) still running {timeout_ms} ms after being asked to cancel; their workers are left to finish on their own (freeing the processor waits for them). Make long tasks return when AsyncTaskProcessor.is_cancelled() is true.",
                report.still_running
            );
        }
    }

    /// Stops the workers and waits until every one exited, those an earlier stop left running
    /// included. Past [member stop_timeout_msec], and then every second, warns naming the tasks
    /// that still run (-1: waits without warnings).
    fn join_workers(&self) {
        let timeout_ms = self.settings.stop_timeout_msec.load(Ordering::Relaxed);
        let first = u64::try_from(timeout_ms).map_or(Duration::MAX, Duration::from_millis);
        self.pool.join_all(first, Duration::from_secs(1), |waited, running| {
            if timeout_ms < 0 {
                return;
            }
            const SHOWN: usize = 4;
            let mut names: Vec<String> = running.iter().take(SHOWN).map(|task| task.label()).collect();
            if running.len() > SHOWN {
                names.push(format!("and {} more", running.len() - SHOWN));
            }
            godot_warn!(
                "{CLASS}: freed, and still waiting for {} task(s) {:.1} s after asking them to cancel: {}. Their scripts cannot be freed while they run, so this waits for them; make long tasks return when AsyncTaskProcessor.is_cancelled() is true.",
                running.len(),
                waited.as_secs_f64(),
                names.join("; ")
            );
        });
    }

    /// Waits, off the main thread, until `task` ended, `timeout` passed or the node was freed;
    /// or refuses a wait that could never end (see `Pool::wait`).
    fn wait_off_main_thread(
        &self,
        task: &Arc<Task<SendVariant>>,
        timeout: Option<Duration>,
    ) -> WaitEnd {
        match self.pool.wait_unless(task, timeout, || self.is_freed()) {
            Ok(true) => WaitEnd::Done,
            Ok(false) if self.is_freed() => WaitEnd::Freed,
            Ok(false) => WaitEnd::TimedOut,
            Err(error) => WaitEnd::Refused(error),
        }
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
        let label = label_of(&task);
        let task = SendCallable::new(task);
        let submitted = self.submit(method, delivery, |pool| {
            pool.submit(priority, move |state| {
                call_task(state, &task.into_inner(), &[], None)
            })
        })?;
        submitted.set_label(label);
        Ok(submitted)
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
        let mut deliveries = self.deliveries.lock();
        if !self.ever_started.load(Ordering::Relaxed)
            && self.settings.autostart.load(Ordering::Relaxed)
            && !self.pool.is_local()
        {
            // Never added to the tree (where `ready` starts them): start at the first submit.
            self.start(0);
        }
        let task = queue(&self.pool).map_err(|Stopped| {
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
            let handle = TaskHandle::new(task.clone(), self.pool.clone());
            made = Some(handle.clone());
            handle
        };
        match submit(self, &mut attach) {
            Ok(_) => made.expect("a submitted task has its handle"),
            Err(message) => {
                godot_error!("{message}");
                let handle = TaskHandle::failed(message);
                self.refused.lock().push(Delivery {
                    then: None,
                    handle: Some(handle.clone()),
                });
                handle
            }
        }
    }
}

/// How a wait for tasks ended.
#[derive(Clone, PartialEq, Eq)]
enum WaitEnd {
    Done,
    TimedOut,
    /// The processor was freed while the caller waited.
    Freed,
    /// Not waited: the wait could never end.
    Refused(WaitError),
}

fn report_freed(method: &str) {
    godot_error!(
        "{CLASS}.{method}: the processor was freed while waiting; free it only once its waits have returned (for example after wait_all() on the main thread)."
    );
}

/// Reports a wait refused by the pool; `gives` is what the method returns instead.
fn report_refused(method: &str, error: &WaitError, gives: &str) {
    let advice = match error {
        WaitError::Cycle(_) => {
            "A task must not wait, directly or through other tasks, for itself: pass results on instead (a callback, a ThreadSafeQueue)"
        }
        WaitError::NoWorkerLeft { .. } => {
            "A chain of tasks each waiting for the next is limited to about (workers + 256) x 128 links: make such a chain a loop in one task"
        }
    };
    godot_error!("{CLASS}.{method}: {error}; this wait returns {gives}. {advice}.");
}

/// Names the processor's pool after the node (in the tree, so it has a name), for the error that
/// reports a cycle of waits running through it. Main thread only.
fn name_pool(this: &Gd<AsyncTaskProcessor>, inner: &Inner) {
    let name = this.upcast_ref::<Node>().get_name();
    inner.pool.set_name(format!("{CLASS} '{name}'"));
}

/// Counts a thread in `Inner::waiting` while it lives.
struct Waiting<'a>(&'a Inner);

impl<'a> Waiting<'a> {
    fn new(inner: &'a Inner) -> Self {
        inner.waiting.fetch_add(1, Ordering::Relaxed);
        Self(inner)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs the tasks queued for the main thread ([member synchronous]) within `limits`, then
/// delivers completions within `limits` (and releases refused handles). Main thread only.
/// `this` is only touched while the node lives: a callback may free it.
fn deliver_completed(inner: &Inner, this: &Gd<AsyncTaskProcessor>, limits: DrainLimits) -> usize {
    if !inner.is_freed() {
        inner.pool.run_local(limits);
    }
    // Taken in a statement of its own: the lock must be released before the emits.
    let refused = std::mem::take(&mut *inner.refused.lock());
    release(refused);
    let report = threadkit_core::drain(inner.pool.completions(), limits, |task| {
        // Once the node is freed its Drop has released every delivery left.
        if !inner.is_freed() {
            deliver(inner, this, &task);
        }
    });
    if report.processed > 0 && inner.pool.outstanding() == 0 && !inner.is_freed() {
        this.clone()
            .emit_signal(static_name!(c"all_tasks_completed"), &[]);
    }
    report.processed
}

/// Emits `finished` on the handles of `deliveries` (with the task's result if it completed,
/// else null) and drops their continuations: callbacks never run once their processor is
/// freed. Main thread only.
fn release(deliveries: Vec<Delivery>) {
    for delivery in deliveries {
        if let Some(mut handle) = delivery.handle {
            let result = handle.bind().get_result();
            TaskHandle::emit_finished(&mut handle, &result);
        }
    }
}

/// Delivers completions, and runs MainThreadDispatcher work, as they arrive until `done`
/// holds, `timeout` passed or the node was freed (by a callback or a dispatched call run here).
/// Running the dispatcher's queue too is what lets a task that waits on the main thread
/// (`call_blocking`) finish while the main thread waits for it. Each time it wakes with nothing
/// left to deliver it calls `help`, which may run an awaited task right here (see
/// `Pool::help`), and goes round again if it did.
fn wait_on_main_thread(
    inner: &Inner,
    this: &Gd<AsyncTaskProcessor>,
    timeout: Option<Duration>,
    done: impl Fn() -> bool,
    help: impl Fn() -> bool,
) -> WaitEnd {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let completions = inner.pool.completions();
    let dispatched = main_thread_dispatcher::QUEUE.receiver();
    let ended = || {
        if inner.is_freed() {
            Some(WaitEnd::Freed)
        } else {
            done().then_some(WaitEnd::Done)
        }
    };
    loop {
        deliver_completed(inner, this, DrainLimits::default());
        main_thread_dispatcher::drain(Some(DrainLimits::default()));
        if let Some(end) = ended() {
            return end;
        }
        if help() || inner.pool.run_local(DrainLimits::default()) > 0 {
            continue;
        }
        // Sleep until either queue has something, without taking it: the drains above do
        // their own bookkeeping.
        let mut select = crossbeam_channel::Select::new();
        select.recv(completions);
        select.recv(dispatched);
        // A synchronous processor's delayed task falls due with no queue to wake us.
        let local_due = inner.pool.next_local_due();
        let wake_at = match (deadline, local_due) {
            (Some(deadline), Some(due)) => Some(deadline.min(due)),
            (deadline, due) => deadline.or(due),
        };
        let woke = match wake_at {
            None => Some(select.ready()),
            Some(at) => select.ready_deadline(at).ok(),
        };
        if woke.is_none() && deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return ended().unwrap_or(WaitEnd::TimedOut);
        }
    }
}

/// Calls the task's continuation, emits the processor's signal, then its handle's. Runs on the
/// main thread.
fn deliver(inner: &Inner, this: &Gd<AsyncTaskProcessor>, task: &Task<SendVariant>) {
    inner.pool.collect(task);
    let Delivery { then, handle } = inner
        .deliveries
        .lock()
        .remove(&task.id())
        .unwrap_or_default();
    let id = task.id() as i64;
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
    // A task whose bound node was freed after it completed: its callback is skipped too.
    let orphaned = handle
        .as_ref()
        .is_some_and(|handle| handle.bind().link().is_orphaned());
    match (&ended, then) {
        (Ended::Completed(_), Some(_)) if orphaned => {
            inner.dropped_callbacks.fetch_add(1, Ordering::Relaxed);
        }
        (Ended::Completed(_), Some(then)) => call_back(inner, id, then, &result),
        _ => {}
    }
    if let Ended::Failed(message) = &ended {
        godot_error!("{CLASS}: task {id} failed: {message}");
    }
    // The callback may have freed the node; the handle below is an object of its own.
    if !inner.is_freed() {
        let mut this = this.clone();
        match ended {
            Ended::Completed(_) => {
                this.emit_signal(
                    static_name!(c"task_completed"),
                    &[id.to_variant(), result.clone()],
                );
            }
            Ended::Failed(message) => {
                this.emit_signal(
                    static_name!(c"task_failed"),
                    &[id.to_variant(), message.to_variant()],
                );
            }
            Ended::Cancelled => {
                this.emit_signal(static_name!(c"task_cancelled"), &[id.to_variant()]);
            }
        }
    }
    // Last: an awaiting coroutine resumes inside this emit and may run on for a while.
    if let Some(mut handle) = handle {
        TaskHandle::emit_finished(&mut handle, &result);
    }
}

fn call_back(inner: &Inner, id: i64, then: Then, result: &Variant) {
    match then {
        Then::Callable(callback) if !callback.is_valid() => {
            // Its object was freed while the task ran: the caller's choice, not an error.
            inner.dropped_callbacks.fetch_add(1, Ordering::Relaxed);
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
            if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(continuation))
            {
                let message = threadkit_core::panic_message(&*panic);
                godot_error!("{CLASS}: the Rust continuation of task {id} panicked: {message}");
            }
        }
    }
}

fn check_callback(method: &str, callback: &Callable) -> Result<(), String> {
    if !callback.is_null() && !callback.is_valid() {
        return Err(format!(
            "{CLASS}.{method}: the callback Callable is invalid (its object was freed or the method does not exist); pass a valid Callable, or none."
        ));
    }
    Ok(())
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

/// Runs a task's Callable (one call of it for a group, `call`) on a worker. A call Godot
/// refuses, a script error and a coroutine become the task's failure; ReadWriteLock holds it
/// leaves behind are released.
fn call_task(
    state: &TaskState,
    task: &Callable,
    args: &[Variant],
    call: Option<usize>,
) -> Result<SendVariant, String> {
    // Checked again here: the target may have been freed while the task waited (a scene change
    // freed the level whose work a long-lived processor queued). Like a callback of a freed
    // object, that is the game moving on, not an error: the task ends cancelled, counted.
    if !task.is_valid() {
        let freed = task.object_id().is_some_and(|id| live_object(id).is_nil());
        if !freed {
            return Err("Godot could not call it: the method does not exist".into());
        }
        state.drop_work();
        return Err("the task's object was freed before the task ran".into());
    }
    let _holds = TaskHolds::begin(|| match call {
        None => format!("task {}", state.id()),
        Some(index) => format!("task {} (its call {index})", state.id()),
    });
    match kept_call::call(task, args, Nesting::Isolated) {
        Ok(result) => Ok(SendVariant::detach(result)),
        Err(Failure::NotCalled(message)) => Err(message),
        Err(Failure::ScriptError(error)) => Err(error.to_string()),
        Err(Failure::Coroutine) => Err(format!(
            "the task's function is a coroutine (it uses await): it returned at its first await, and the rest of it would have run later, outside the task; it was stopped there. To fix it, {}.",
            coroutine::HINT
        )),
    }
}

/// What a task runs, for the warnings that name it: the method and, on the main thread (where
/// objects may be looked at), its object.
fn label_of(callable: &Callable) -> threadkit_core::Label {
    let callable = SharedCallable::new(callable.clone());
    Box::new(move || {
        let callable = callable.get();
        let method = callable
            .method_name()
            .map_or_else(|| "a custom Callable".to_string(), |name| name.to_string());
        let object = callable
            .object_id()
            .filter(|_| godot::init::is_main_thread())
            .and_then(|id| live_object(id).try_to::<Gd<Object>>().ok());
        match object {
            Some(object) => match object.clone().try_cast::<Node>() {
                Ok(node) => format!("{method} of {} '{}'", node.get_class(), node.get_name()),
                Err(object) => format!("{method} of {}", object.get_class()),
            },
            None => method,
        }
    })
}

fn timeout_from_ms(timeout_ms: i64) -> Option<Duration> {
    u64::try_from(timeout_ms).ok().map(Duration::from_millis)
}

fn parse_priority(method: &str, priority: i64) -> Result<Priority, String> {
    match priority {
        AsyncTaskProcessor::PRIORITY_HIGH => Ok(Priority::High),
        AsyncTaskProcessor::PRIORITY_NORMAL => Ok(Priority::Normal),
        AsyncTaskProcessor::PRIORITY_LOW => Ok(Priority::Low),
        other => Err(format!(
            "{CLASS}.{method}: priority {other} is not PRIORITY_LOW (-1), PRIORITY_NORMAL (0) or PRIORITY_HIGH (1); pass one of those constants."
        )),
    }
}
