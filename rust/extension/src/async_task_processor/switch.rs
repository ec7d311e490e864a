//! `await processor.switch_to_worker()`: the rest of a coroutine runs as a task of the processor
//! (see `crate::thread_switch` for when the switch is emitted, and why).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use godot::prelude::*;
use threadkit_core::{Priority, TaskState};

use super::{AsyncTaskProcessor, CLASS, Delivery, Inner};
use crate::main_queue;
use crate::problem::Problem;
use crate::script_errors::{self, Nesting};
use crate::send::SendVariant;
use crate::thread_switch::{self, Emitter, Target};

const METHOD: thread_switch::Origin = (CLASS, "switch_to_worker");

#[godot_api(secondary)]
impl AsyncTaskProcessor {
    /// Moves the rest of the calling coroutine to one of this processor's workers:
    /// ```gdscript
    /// func rebuild() -> void:
    ///     var data := gather_inputs()  # On the main thread.
    ///     await processor.switch_to_worker()
    ///     var mesh := build_mesh(data)  # On a worker.
    ///     await MainThreadDispatcher.switch_to_main_thread()
    ///     $MeshInstance3D.mesh = mesh  # Back on the main thread.
    /// ```
    /// Returns a [Signal] that a worker emits, where the coroutine resumes. Until it awaits
    /// something else, what follows runs as a task of this processor: it counts in
    /// [method get_stats] and ends with [signal task_completed] (or [signal task_failed]),
    /// [method is_cancelled] and [method report_progress] work in it, a script error in it fails
    /// that task with the error (as in any task), and freeing the processor waits for it. On a
    /// worker of this processor it returns [code]null[/code], which [code]await[/code] passes
    /// through at once.
    ///
    /// Called on the main thread outside such a coroutine, the switch happens at the next frame
    /// (or the next [method MainThreadDispatcher.process_queue]);
    /// from a coroutine ThreadKit resumed (after an earlier switch), as soon as it awaits. Only
    /// [code]await[/code] the Signal right away: one nobody awaited is reported with an error.
    /// Inside a switched coroutine await only ThreadKit's switches: Godot cannot safely resume it
    /// from a signal of another thread at any instant (ThreadKit times its own emits for that).
    ///
    /// When no worker can run it (the workers are stopped, or stop or the processor is freed
    /// before the switch ran, or [method cancel_all] cancels it first), it reports an error and the coroutine resumes on the main thread
    /// instead (at once, when called there), so the [code]await[/code] never hangs. With
    /// [member synchronous] on, the task that resumes it runs on the main thread, as every task.
    #[func]
    pub fn switch_to_worker(&self) -> Variant {
        let inner = &self.inner;
        if inner.pool.is_own_worker() {
            return Variant::nil();
        }
        self.ensure_delivery();
        let will_run = inner.pool.is_running()
            || inner.pool.is_local()
            || (!inner.ever_started.load(Ordering::Relaxed)
                && inner.settings.autostart.load(Ordering::Relaxed));
        if !will_run {
            Problem::new(
                CLASS,
                "switch_to_worker",
                "the workers are not running, so the coroutine goes on on the main thread",
            )
            .fix("call start_workers() first (or keep autostart on).")
            .report();
            if godot::init::is_main_thread() {
                return Variant::nil();
            }
            return thread_switch::request(METHOD, Target::Main);
        }
        let inner = inner.clone();
        let hand_over = move |emitter: Emitter| submit(&inner, emitter);
        thread_switch::request(METHOD, Target::Worker(Box::new(hand_over)))
    }
}

/// Queues the task that resumes the coroutine on a worker. A task that never runs (stopped
/// workers, a stop before it ran) resumes it on the main thread instead: see `OnWorker`.
fn submit(inner: &Arc<Inner>, emitter: Emitter) {
    let on_worker = OnWorker(Some(emitter));
    let submitted = inner.submit(
        "switch_to_worker",
        |_| Delivery::default(),
        |pool| pool.submit(Priority::Normal, move |state| on_worker.run(state)),
    );
    // On error (stopped since the request) `OnWorker` was dropped with the job, and said so.
    if let Ok(task) = submitted {
        task.set_label(Box::new(|| "a coroutine after switch_to_worker()".into()));
    }
}

/// A switched coroutine, until a worker resumes it; dropped unresumed, it resumes on the main
/// thread.
struct OnWorker(Option<Emitter>);

impl OnWorker {
    fn run(mut self, _state: &TaskState) -> Result<SendVariant, String> {
        let emitter = self.0.take().expect("a switch is resumed once");
        let ((), error) = script_errors::watch(Nesting::Isolated, || emitter.resume());
        match error {
            Some(error) => Err(error.to_string()),
            None => Ok(SendVariant::detach(Variant::nil())),
        }
    }
}

impl Drop for OnWorker {
    fn drop(&mut self) {
        if let Some(emitter) = self.0.take() {
            Problem::new(
                CLASS,
                "switch_to_worker",
                "no worker ran the switch (it was cancelled, by cancel_all() or cancel_task(), or the workers stopped, or the processor was freed), so the coroutine goes on on the main thread.",
            )
            .report();
            main_queue::run_on_main(Box::new(move || emitter.resume()));
        }
    }
}
