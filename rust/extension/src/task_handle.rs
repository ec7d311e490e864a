use std::sync::Arc;

use godot::classes::IRefCounted;
use godot::prelude::*;
use threadkit_core::{CancelOutcome, Outcome, Pool, Task};

use crate::async_task_processor::AsyncTaskProcessor;
use crate::call::static_name;
use crate::send::SendVariant;

/// One task of an [AsyncTaskProcessor], returned by [method AsyncTaskProcessor.run] and
/// [method AsyncTaskProcessor.submit_group].
///
/// Await its [signal finished] to get the result without a callback:
/// [codeblock]
/// var path = await processor.run(func(): return find_path(start, goal)).finished
/// [/codeblock]
/// [signal finished] is emitted exactly once, on the main thread, however the task ends
/// (completed, failed or cancelled), so such an [code]await[/code] always resumes. Every method
/// may be called from any thread.
#[derive(GodotClass)]
#[class(no_init, base = RefCounted)]
pub struct TaskHandle {
    /// The task's id, as used by [method AsyncTaskProcessor.get_task_status] and
    /// [method AsyncTaskProcessor.cancel_task]; -1 for a task that could not be submitted.
    #[var(no_set)]
    id: i64,
    task: Arc<Task<SendVariant>>,
    /// The pool it was submitted to; `None` for a task that could not be submitted.
    pool: Option<Pool<SendVariant>>,
    base: Base<RefCounted>,
}

#[godot_api]
impl IRefCounted for TaskHandle {
    fn to_string(&self) -> GString {
        let status = match self.task.status() as i64 {
            AsyncTaskProcessor::STATUS_PENDING => "pending",
            AsyncTaskProcessor::STATUS_RUNNING => "running",
            AsyncTaskProcessor::STATUS_COMPLETED => "completed",
            AsyncTaskProcessor::STATUS_FAILED => "failed",
            _ => "cancelled",
        };
        GString::from(&format!("TaskHandle(id={}, {status})", self.id))
    }
}

#[godot_api]
impl TaskHandle {
    /// Emitted once on the main thread when the task ended: with its result when it completed,
    /// with [code]null[/code] when it failed or was cancelled (see [method get_status]).
    #[signal]
    fn finished(result: Variant);

    /// One of the [code]AsyncTaskProcessor.STATUS_*[/code] constants.
    #[func]
    pub fn get_status(&self) -> i64 {
        self.task.status() as i64
    }

    /// Whether the task has ended (completed, failed or cancelled). The result is available as
    /// soon as this is true, possibly a little before [signal finished] is emitted.
    #[func]
    pub fn is_done(&self) -> bool {
        self.task.status().is_finished()
    }

    /// The task's result once it completed; [code]null[/code] before that, or if it failed or was
    /// cancelled. For a group task, an Array of every call's result in index order. Arrays and
    /// Dictionaries are copies: changing them does not change what other callers get.
    #[func]
    pub fn get_result(&self) -> Variant {
        self.task.with_outcome(|outcome| match outcome {
            Some(Outcome::Completed(result)) => result.copy(),
            _ => Variant::nil(),
        })
    }

    /// Why the task failed; empty unless [method get_status] is
    /// [constant AsyncTaskProcessor.STATUS_FAILED]. For a GDScript runtime error: its text and
    /// where it happened, then the script backtrace (the first 8 frames; a few KB at most).
    #[func]
    pub fn get_error(&self) -> GString {
        self.task.with_outcome(|outcome| match outcome {
            Some(Outcome::Failed(message)) => message.as_str().into(),
            _ => GString::new(),
        })
    }

    /// Progress from 0.0 to 1.0: what the task last passed to
    /// [method AsyncTaskProcessor.report_progress] (a group task: the share of calls done), and
    /// 1.0 once it completed.
    #[func]
    pub fn get_progress(&self) -> f64 {
        self.task.state().progress()
    }

    /// Cancels the task (see [method AsyncTaskProcessor.cancel_task]). Returns
    /// [code]false[/code] if it had already ended.
    #[func]
    pub fn cancel(&self) -> bool {
        let Some(pool) = &self.pool else {
            return false;
        };
        matches!(
            pool.cancel(self.task.id()),
            Some(CancelOutcome::CancelledBeforeStart | CancelOutcome::Requested)
        )
    }
}

impl TaskHandle {
    /// A handle for `task`, submitted to `pool`.
    pub(crate) fn new(task: Arc<Task<SendVariant>>, pool: Pool<SendVariant>) -> Gd<Self> {
        Gd::from_init_fn(|base| Self {
            id: task.id() as i64,
            task,
            pool: Some(pool),
            base,
        })
    }

    /// A handle for a task that could not be submitted: it has already failed with `message`.
    pub(crate) fn failed(message: String) -> Gd<Self> {
        let task = Task::new(0, Box::new(move |_| Err(message)));
        task.run();
        Gd::from_init_fn(|base| Self {
            id: -1,
            task: Arc::new(task),
            pool: None,
            base,
        })
    }

    /// Emits [signal finished] with `result` (null unless the task completed).
    pub(crate) fn emit_finished(handle: &mut Gd<Self>, result: &Variant) {
        handle.emit_signal(static_name!(c"finished"), std::slice::from_ref(result));
    }
}
