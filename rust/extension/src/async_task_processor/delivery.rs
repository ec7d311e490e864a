//! Main-thread delivery: what each task leaves for the main thread (its continuation and
//! handle), and the per-frame drain that calls callbacks and emits signals.

use super::*;
use crate::main_thread_only::MainThreadOnly;
use crate::task_handle::HandleRef;

/// State shared by every call, from any thread. Methods that wait or call user code clone the
/// `Arc` out of a bind that ends at once and work on this alone, so the node may be freed
/// meanwhile.
pub(super) struct Inner {
    pub(super) pool: Pool<SendVariant>,
    /// What to do on the main thread when a task ends, per task id.
    pub(super) deliveries: Mutex<HashMap<u64, Delivery>>,
    /// Handles of `run` calls that failed before a task existed; released at the next delivery.
    pub(super) refused: Mutex<Vec<Delivery>>,
    pub(super) dropped_callbacks: AtomicU64,
    pub(super) settings: Settings,
    /// Threads blocked in `wait_for_task` / `wait_all` now.
    pub(super) waiting: AtomicU64,
    /// Set first thing when the node is freed: waits give up, deliveries stop touching the node.
    pub(super) freed: AtomicBool,
    /// Whether the frame delivery is connected: by `ready`, or by the first submit of a
    /// processor outside the tree.
    pub(super) frame_hooked: AtomicBool,
    /// Whether the workers were ever started: a processor outside the tree starts them at its
    /// first submit (with autostart), but never restarts workers someone stopped.
    pub(super) ever_started: AtomicBool,
    /// The latest task of each `run_keyed` key.
    pub(super) keys: scopes::Keys,
}

/// The exported properties: atomics, so that any thread may set them while others read them.
pub(super) struct Settings {
    pub(super) worker_count: AtomicI32,
    pub(super) autostart: AtomicBool,
    pub(super) max_callbacks_per_frame: AtomicI32,
    pub(super) frame_budget_usec: AtomicI32,
    pub(super) stop_timeout_msec: AtomicI32,
}

/// A task's main-thread continuation and handle. It crosses threads (made by the submitting
/// thread, used by the main thread, dropped by whichever thread frees the processor), so each
/// part is of a type that may: the Rust continuation, which may not, is main-thread-only.
#[derive(Default)]
pub(super) struct Delivery {
    pub(super) then: Option<Then>,
    pub(super) handle: Option<HandleRef>,
}

pub(super) enum Then {
    /// A GDScript callback, called with the result (or with nothing if it takes no argument).
    Callable(SendCallable),
    /// A Rust continuation (see `spawn`), which picks up its own result. Made on the main
    /// thread, and only ever called or dropped there.
    Rust(MainThreadOnly<Box<dyn FnOnce()>>),
}

/// Connects delivery to the scene tree's `process_frame`, once. A Callable linked to the node
/// (Godot drops it when the node is freed) rather than a method of it: Godot refuses to free an
/// object while one of its methods runs, and a callback or an awaiting coroutine resumed by a
/// delivery may free the processor. Leaving the tree does not disconnect it: a reparented
/// processor keeps delivering, and one outside the tree delivers every frame.
pub(super) fn hook_once(this: &Gd<AsyncTaskProcessor>, inner: &Arc<Inner>) {
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

/// Runs the tasks queued for the main thread ([member synchronous]) within `limits`, then
/// delivers completions within `limits` (and releases refused handles). Main thread only.
/// `this` is only touched while the node lives: a callback may free it.
pub(super) fn deliver_completed(
    inner: &Inner,
    this: &Gd<AsyncTaskProcessor>,
    limits: DrainLimits,
) -> usize {
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
pub(super) fn release(deliveries: Vec<Delivery>) {
    for delivery in deliveries {
        if let Some(HandleRef(handle)) = delivery.handle {
            TaskHandle::announce(handle);
        }
    }
}

/// Calls the task's continuation, emits the processor's signal, then its handle's. Runs on the
/// main thread.
pub(super) fn deliver(inner: &Inner, this: &Gd<AsyncTaskProcessor>, task: &Task<SendVariant>) {
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
        .is_some_and(|handle| handle.0.bind().link().is_orphaned());
    match (&ended, then) {
        (Ended::Completed(_), Some(_)) if orphaned => {
            inner.dropped_callbacks.fetch_add(1, Ordering::Relaxed);
        }
        (Ended::Completed(_), Some(then)) => call_back(inner, id, then, &result),
        _ => {}
    }
    if let Ended::Failed(message) = &ended {
        Problem::of(CLASS, format!("task {id} failed: {message}")).report();
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
    if let Some(HandleRef(mut handle)) = handle {
        TaskHandle::emit_finished(&mut handle, &result);
    }
}

pub(super) fn call_back(inner: &Inner, id: i64, then: Then, result: &Variant) {
    match then {
        Then::Callable(callback) => call_callable(inner, id, callback.into_inner(), result),
        // Deliveries run on the main thread, where the continuation comes out of its wrapper.
        Then::Rust(continuation) => {
            if let Ok(continuation) = continuation.into_inner() {
                // A panic must not abort the rest of this frame's deliveries.
                if let Err(message) = crate::call::catch_panic(continuation) {
                    Problem::of(
                        CLASS,
                        format!("the Rust continuation of task {id} panicked: {message}"),
                    )
                    .report();
                }
            }
        }
    }
}

fn call_callable(inner: &Inner, id: i64, callback: Callable, result: &Variant) {
    if !callback.is_valid() {
        // Its object was freed while the task ran: the caller's choice, not an error.
        inner.dropped_callbacks.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let args = if callback.get_argument_count() == 0 {
        &[][..]
    } else {
        std::slice::from_ref(result)
    };
    // `Callable::call` would drop a call Godot refuses without a word.
    if let Err(message) = try_call(&callback, args) {
        Problem::of(
            CLASS,
            format!(
                "the callback of task {id} was not called: {message}; give it one parameter for the result (untyped or of the result's type), or none."
            ),
        )
        .report();
    }
}
