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
use crate::lookup::{live, live_object};
use crate::main_queue;
use crate::monitors;
use crate::problem::{self, Problem};
use crate::script_errors::Nesting;
use crate::send::{Optional, SendCallable, SendVariant, SharedCallable};
use crate::status;
use crate::task_handle::{HandleRef, TaskHandle};

mod delivery;
mod rust_api;
mod scheduling;
mod scopes;
mod switch;
mod waits;

use delivery::{Delivery, Inner, Settings, Then, deliver_completed, hook_once, release};

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
/// ```gdscript
/// @onready var processor: AsyncTaskProcessor = $AsyncTaskProcessor
///
/// func _ready() -> void:
///     processor.submit_task(func(): return heavy_path_search(), func(path): $Agent.follow(path))
///     var mesh = await processor.run(build_mesh).wait()  # null if it failed or was cancelled
/// ```
///
/// Tasks run in parallel: what a task touches must be safe to touch from another thread (its own
/// data, ThreadKit's thread-safe classes). Results that are Arrays, Dictionaries or Packed\*Arrays
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
    /// (-1: without warnings), and a task that never returns keeps the game from quitting. Make
    /// long tasks check [method is_cancelled].
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

impl AsyncTaskProcessor {
    /// Makes sure a processor that never entered the tree still delivers: hooks its delivery on
    /// the main thread, now or (from another thread) at the dispatcher's next drain.
    fn ensure_delivery(&self) {
        if self.inner.frame_hooked.load(Ordering::Acquire) {
            return;
        }
        let id = self.base().instance_id();
        let hook_later = move || {
            if let Ok(this) = live::<AsyncTaskProcessor>(id) {
                let inner = this.bind().inner.clone();
                hook_once(&this, &inner);
            }
        };
        if godot::init::is_main_thread() {
            hook_later();
        } else {
            main_queue::run_on_main(Box::new(hook_later));
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
            main_queue::run_on_main(Box::new(move || release(orphans)));
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
                    then: (!callback.is_null())
                        .then(|| Then::Callable(SendCallable::new(callback))),
                    handle: None,
                })
        });
        match submitted {
            Ok(task) => task.id() as i64,
            Err(problem) => {
                problem.report();
                -1
            }
        }
    }

    /// Runs [param task] (a Callable taking no arguments) on a worker and returns its
    /// [TaskHandle], whose [method TaskHandle.wait] brings the result back to the main thread
    /// (untyped: a task that failed or was cancelled gives [code]null[/code]):
    /// ```gdscript
    /// var result = await processor.run(func(): return expensive()).wait()
    /// ```
    /// On bad input (an invalid callable, stopped workers) it reports an error and returns a
    /// handle that has already failed (id -1), whose [signal TaskHandle.finished] is still
    /// emitted at the next delivery, so an [code]await[/code] never hangs.
    #[func]
    pub fn run(&self, task: Callable, #[opt(default = 0)] priority: i64) -> Gd<TaskHandle> {
        self.ensure_delivery();
        self.inner.submit_with_handle(|inner, attach| {
            inner.submit_single("run", task, priority, |task| Delivery {
                then: None,
                handle: Some(HandleRef(attach(task))),
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
    /// ```gdscript
    /// var rows = await processor.submit_group(func(y): return render_row(y), height).wait()
    /// ```
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
                return Err(Problem::new(
                    CLASS,
                    method,
                    format!("count {count} is not between 0 and {MAX_GROUP}"),
                )
                .fix("pass how many times to call the task."));
            }
            let priority = parse_priority(method, priority)?;
            let max_threads = scheduling::parse_max_threads(method, max_threads)?;
            check_task(method, &task)?;
            let label = label_of(&task);
            let body = SharedCallable::new(task);
            let delivery = |task: &Arc<Task<SendVariant>>| Delivery {
                then: (!callback.is_null()).then(|| Then::Callable(SendCallable::new(callback))),
                handle: Some(HandleRef(attach(task))),
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
                    |results| results.into_iter().collect::<SendVariant>(),
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

    /// Blocks until task [param task_id] has ended, or [param timeout_ms] passed (-1: no limit;
    /// another negative value is an error), and returns its result ([code]null[/code] if it failed,
    /// was cancelled or the wait timed out; check [method get_task_status]). On the main thread it
    /// keeps delivering completions while it waits (the task's own callback runs before this
    /// returns), so callbacks and signals still flow. A task's result is delivered once: after its
    /// callback ran (a later frame), this returns [code]null[/code]; keep a [TaskHandle] from
    /// [method run] to read a result any time. If the processor is freed while this waits (from
    /// another thread, or by a callback or a dispatched call it runs), it returns [code]null[/code]
    /// with an error.
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
        waits::wait_for_task(&this, task_id, timeout_ms)
    }

    /// Blocks until every task submitted so far (and any they or their callbacks submit) has ended,
    /// or [param timeout_ms] passed (-1: no limit; another negative value is an error). Returns
    /// whether all ended. On the main thread it keeps delivering completions meanwhile, so every
    /// callback has run when it returns [code]true[/code]. From inside one of this processor's
    /// tasks (also one the main thread runs in [method wait_for_task]) it would wait for itself: it
    /// reports an error and returns [code]false[/code]. If the processor is freed while this waits,
    /// it returns [code]false[/code] with an error; a wait that would close a cycle (see
    /// [method wait_for_task]) returns [code]false[/code] at once with an error.
    #[func(gd_self)]
    pub fn wait_all(this: Gd<Self>, #[opt(default = -1)] timeout_ms: i64) -> bool {
        waits::wait_all(&this, timeout_ms)
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
            None => Problem::new(
                CLASS,
                "report_progress",
                "called outside a running task; call it from the task's Callable.",
            )
            .report(),
        }
    }

    /// Delivers finished tasks' results on the main thread: callbacks, then signals, then the
    /// handles' [signal TaskHandle.finished], within [member max_callbacks_per_frame] and
    /// [member frame_budget_usec]. Runs every frame by itself; call it by hand to deliver sooner.
    /// Returns how many it delivered.
    #[func(gd_self)]
    pub fn process_completed(this: Gd<Self>) -> i64 {
        if !godot::init::is_main_thread() {
            Problem::new(
                CLASS,
                "process_completed",
                "called from a worker thread; it delivers callbacks and must run on the main thread.",
            )
            .report();
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
            Problem::new(
                CLASS,
                "start_workers",
                format!(
                    "{num_threads} threads is not between 0 (one per CPU core) and {}; pass a count in that range.",
                    threadkit_core::pool::MAX_THREADS,
                ),
            )
            .report();
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
                Problem::new(
                    CLASS,
                    "start_workers",
                    format!("{error}; call stop_workers() first to restart with another size."),
                )
                .warn();
                false
            }
        }
    }

    fn stop(&self, wait: bool) {
        let own_worker = self.pool.is_own_worker();
        if wait && own_worker {
            Problem::new(
                CLASS,
                "stop_workers",
                "called from one of its own tasks with wait = true, which would wait for itself; stopping without waiting.",
            )
            .report();
        }
        let timeout_ms = self.settings.stop_timeout_msec.load(Ordering::Relaxed);
        let how = match (wait && !own_worker, problem::limit(timeout_ms.into())) {
            (false, _) => StopWait::No,
            (true, None) => StopWait::Forever,
            (true, Some(limit)) => StopWait::Within(limit),
        };
        let report = self.pool.stop(how);
        if report.still_running > 0 {
            Problem::new(
                CLASS,
                "stop_workers",
                format!(
                    "{} task(s) still running {timeout_ms} ms after being asked to cancel; their workers are left to finish on their own (freeing the processor waits for them). Make long tasks return when AsyncTaskProcessor.is_cancelled() is true.",
                    report.still_running,
                ),
            )
            .warn();
        }
    }

    /// Stops the workers and waits until every one exited, those an earlier stop left running
    /// included. Past [member stop_timeout_msec], and then every second, warns naming the tasks
    /// that still run (-1: waits without warnings).
    fn join_workers(&self) {
        let timeout_ms = self.settings.stop_timeout_msec.load(Ordering::Relaxed);
        let first = problem::limit(timeout_ms.into()).unwrap_or(Duration::MAX);
        self.pool.join_all(first, Duration::from_secs(1), |waited, running| {
            if timeout_ms < 0 {
                return;
            }
            const SHOWN: usize = 4;
            let mut names: Vec<String> = running.iter().take(SHOWN).map(|task| task.label()).collect();
            if running.len() > SHOWN {
                names.push(format!("and {} more", running.len() - SHOWN));
            }
            Problem::of(
                CLASS,
                format!(
                    "freed, and still waiting for {} task(s) {:.1} s after asking them to cancel: {}. Their scripts cannot be freed while they run, so this waits for them; make long tasks return when AsyncTaskProcessor.is_cancelled() is true.",
                    running.len(),
                    waited.as_secs_f64(),
                    names.join("; "),
                ),
            )
            .warn();
        });
    }

    /// Queues a task that calls `task` with no argument.
    fn submit_single(
        &self,
        method: &'static str,
        task: Callable,
        priority: i64,
        delivery: impl FnOnce(&Arc<Task<SendVariant>>) -> Delivery,
    ) -> Result<Arc<Task<SendVariant>>, Problem<'static>> {
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
        method: &'static str,
        delivery: impl FnOnce(&Arc<Task<SendVariant>>) -> Delivery,
        queue: impl FnOnce(&Pool<SendVariant>) -> Result<Arc<Task<SendVariant>>, Stopped>,
    ) -> Result<Arc<Task<SendVariant>>, Problem<'static>> {
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
            Problem::new(CLASS, method, "the workers are not running").fix(
                "call start_workers() first (or keep autostart on and add the node to the tree).",
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
        ) -> Result<Arc<Task<SendVariant>>, Problem<'static>>,
    ) -> Gd<TaskHandle> {
        let mut made = None;
        let mut attach = |task: &Arc<Task<SendVariant>>| {
            let handle = TaskHandle::new(task.clone(), self.pool.clone());
            made = Some(handle.clone());
            handle
        };
        match submit(self, &mut attach) {
            Ok(_) => made.expect("a submitted task has its handle"),
            Err(problem) => {
                let message = problem.message();
                problem.report();
                let handle = TaskHandle::failed(message);
                self.refused.lock().push(Delivery {
                    then: None,
                    handle: Some(HandleRef(handle.clone())),
                });
                handle
            }
        }
    }
}

/// Names the processor's pool after the node (in the tree, so it has a name), for the error that
/// reports a cycle of waits running through it. Main thread only.
fn name_pool(this: &Gd<AsyncTaskProcessor>, inner: &Inner) {
    let name = this.upcast_ref::<Node>().get_name();
    inner.pool.set_name(format!("{CLASS} '{name}'"));
}

fn check_callback(method: &'static str, callback: &Callable) -> Result<(), Problem<'static>> {
    if !callback.is_null() && !callback.is_valid() {
        return Err(Problem::new(
            CLASS,
            method,
            "the callback Callable is invalid (its object was freed or the method does not exist)",
        )
        .fix("pass a valid Callable, or none."));
    }
    Ok(())
}

/// The error for a task Callable that cannot be called at all.
fn check_task(method: &'static str, task: &Callable) -> Result<(), Problem<'static>> {
    if task.is_valid() {
        Ok(())
    } else {
        Err(Problem::new(
            CLASS,
            method,
            "the task Callable is invalid (null, or its object was freed, or the method does not exist)",
        )
        .fix("pass a valid Callable such as func(): return work()."))
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
            .and_then(|id| live::<Object>(id).ok());
        match object {
            Some(object) => match object.clone().try_cast::<Node>() {
                Ok(node) => format!("{method} of {} '{}'", node.get_class(), node.get_name()),
                Err(object) => format!("{method} of {}", object.get_class()),
            },
            None => method,
        }
    })
}

fn parse_priority(method: &'static str, priority: i64) -> Result<Priority, Problem<'static>> {
    match priority {
        AsyncTaskProcessor::PRIORITY_HIGH => Ok(Priority::High),
        AsyncTaskProcessor::PRIORITY_NORMAL => Ok(Priority::Normal),
        AsyncTaskProcessor::PRIORITY_LOW => Ok(Priority::Low),
        other => Err(Problem::new(
            CLASS,
            method,
            format!(
                "priority {other} is not PRIORITY_LOW (-1), PRIORITY_NORMAL (0) or PRIORITY_HIGH (1)"
            ),
        )
        .fix("pass one of those constants.")),
    }
}
