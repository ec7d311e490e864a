use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use godot::classes::IRefCounted;
use godot::prelude::*;
use threadkit_core::{CancelOutcome, Outcome, Pool, Reach, Task};

use crate::call::static_name;
use crate::lookup::live;
use crate::main_queue;
use crate::problem::Problem;
use crate::send::SendVariant;
use crate::status;

mod combine;
pub(crate) mod owner;

const CLASS: &str = "TaskHandle";

/// One task: of an [AsyncTaskProcessor] ([method AsyncTaskProcessor.run],
/// [method AsyncTaskProcessor.submit_group], [method AsyncTaskProcessor.run_keyed]), one your code
/// ends ([method create_pending]), or one that combines others ([method when_all],
/// [method when_any]).
///
/// Await [method wait] to get the result without a callback, whether the task still runs or has
/// ended already:
/// ```gdscript
/// var path = await processor.run(func(): return find_path(start, goal)).wait()
/// if path == null:  # It failed or was cancelled: see get_status() and get_error().
///     return
/// ```
/// Leave the variable untyped (or check it) as above: a task that failed or was cancelled gives
/// [code]null[/code], which a typed variable ([code]var path: Array = await ...[/code]) refuses
/// with a script error.
///
/// [signal finished] is emitted exactly once, on the main thread, however the task ends
/// (completed, failed or cancelled). Every method may be called from any thread.
#[derive(GodotClass)]
#[class(no_init, base = RefCounted)]
pub struct TaskHandle {
    /// The task's id, as used by [method AsyncTaskProcessor.get_task_status] and
    /// [method AsyncTaskProcessor.cancel_task]; -1 for a task that could not be submitted (or
    /// combined), 0 for one of no processor ([method create_pending], [method when_all],
    /// [method when_any]).
    #[var(no_set)]
    id: i64,
    link: Arc<Link>,
    base: Base<RefCounted>,
}

/// A handle's task and what ends it, shared with whoever may cancel it from another thread (a
/// combination it is part of, the node it is bound to).
pub(crate) struct Link {
    task: Arc<Task<SendVariant>>,
    source: Source,
    /// Set when a node it was bound to was freed: its callback is skipped even if it completed
    /// first (see `owner`).
    orphaned: AtomicBool,
}

enum Source {
    /// A processor's task: the processor runs it, cancels it and emits `finished`.
    Pool(Pool<SendVariant>),
    /// Failed before a task existed; the processor emits `finished`.
    Refused,
    /// Ended by `complete`, `fail` or `cancel`; `finished` goes through the dispatcher.
    Pending,
    /// Ended by the handles it combines (or `cancel`); `finished` goes through the dispatcher.
    Combined,
    /// Failed at once (bad input to a combinator); `finished` goes through the dispatcher.
    Failed,
}

impl Link {
    fn new(task: Arc<Task<SendVariant>>, source: Source) -> Arc<Self> {
        Arc::new(Self {
            task,
            source,
            orphaned: AtomicBool::new(false),
        })
    }

    pub(crate) fn task(&self) -> &Arc<Task<SendVariant>> {
        &self.task
    }

    /// Whether its task has not ended, or ended and its processor has not delivered it yet (a
    /// binding still matters to its callback).
    pub(crate) fn is_live(&self) -> bool {
        !self.task.status().is_finished()
            || matches!(&self.source, Source::Pool(pool) if pool.task(self.task.id()).is_some())
    }

    /// Whether a node it was bound to has been freed.
    pub(crate) fn is_orphaned(&self) -> bool {
        self.orphaned.load(Ordering::Acquire)
    }

    /// Its node was freed: cancels it, and marks it so that its callback is skipped.
    pub(crate) fn orphan(&self) {
        orphan_all(&[self]);
    }

    /// Cancels the task as its owner does; `true` if it had not ended (a running one is asked to
    /// stop and ends cancelled).
    pub(crate) fn cancel(&self) -> bool {
        matches!(
            self.cancel_reaching(Reach::Running),
            CancelOutcome::CancelledBeforeStart | CancelOutcome::Requested
        )
    }

    /// [`Link::cancel`], asking a running task to stop only if `reach` goes that far: for
    /// cancelling several together ([`threadkit_core::cancel_together`]).
    pub(crate) fn cancel_reaching(&self, reach: Reach) -> CancelOutcome {
        match &self.source {
            Source::Pool(pool) => pool
                .cancel_reaching(self.task.id(), reach)
                .unwrap_or(CancelOutcome::TooLate),
            Source::Refused | Source::Failed => CancelOutcome::TooLate,
            // Never running: they end from outside, so a cancel either ends them or is too late.
            Source::Pending | Source::Combined => match self.task.cancel() {
                CancelOutcome::CancelledBeforeStart => CancelOutcome::CancelledBeforeStart,
                _ => CancelOutcome::TooLate,
            },
        }
    }
}

/// A handle held for the main thread (by a job, or a task's delivery), so that it lives until
/// its `finished` is emitted there even if nobody else holds it (a coroutine awaiting a
/// temporary handle).
pub(crate) struct HandleRef(pub(crate) Gd<TaskHandle>);

// A TaskHandle is a RefCounted (atomic count) whose Rust state is an `Arc<Link>` of thread-safe
// parts; the reference is moved to the main thread, which alone emits through it.
// SAFETY: so moving it to the main thread (or dropping it on the way) is sound.
unsafe impl Send for HandleRef {}

#[godot_api]
impl IRefCounted for TaskHandle {
    fn to_string(&self) -> GString {
        let status = status::name(self.link.task.status());
        GString::from(&format!("TaskHandle(id={}, {status})", self.id))
    }
}

#[godot_api]
impl TaskHandle {
    /// Emitted once on the main thread when the task ended: with its result when it completed,
    /// with [code]null[/code] when it failed or was cancelled (see [method get_status]). It is
    /// emitted once only: an [code]await handle.finished[/code] that starts after it never
    /// resumes. Await [method wait] instead, which also works after the end.
    #[signal]
    fn finished(result: Variant);

    /// One of the [code]AsyncTaskProcessor.STATUS_*[/code] constants.
    #[func]
    pub fn get_status(&self) -> i64 {
        status::code(self.link.task.status())
    }

    /// Whether the task has ended (completed, failed or cancelled). The result is available as
    /// soon as this is true, possibly a little before [signal finished] is emitted.
    #[func]
    pub fn is_done(&self) -> bool {
        self.link.task.status().is_finished()
    }

    /// The task's result once it completed; [code]null[/code] before that, or if it failed or was
    /// cancelled. For a group task, an Array of every call's result in index order. Arrays and
    /// Dictionaries are copies: changing them does not change what other callers get.
    #[func]
    pub fn get_result(&self) -> Variant {
        result_of(&self.link.task)
    }

    /// Why the task failed; empty unless [method get_status] is
    /// [constant AsyncTaskProcessor.STATUS_FAILED]. For a GDScript runtime error: its text and
    /// where it happened, then the script backtrace (the first 8 frames; a few KB at most).
    #[func]
    pub fn get_error(&self) -> GString {
        self.link.task.with_outcome(|outcome| match outcome {
            Some(Outcome::Failed(message)) => message.as_str().into(),
            _ => GString::new(),
        })
    }

    /// Progress from 0.0 to 1.0: what the task last passed to
    /// [method AsyncTaskProcessor.report_progress] (a group task: the share of calls done), and
    /// 1.0 once it completed.
    #[func]
    pub fn get_progress(&self) -> f64 {
        self.link.task.state().progress()
    }

    /// Cancels the task (see [method AsyncTaskProcessor.cancel_task]). Returns
    /// [code]false[/code] if it had already ended. A pending handle ([method create_pending]) ends
    /// cancelled; a [method when_all] handle ends cancelled and cancels the handles it waits for;
    /// a [method when_any] handle ends cancelled and leaves its handles as they are.
    #[func]
    pub fn cancel(&self) -> bool {
        if matches!(self.link.source, Source::Pending) {
            return self.kept_until_finished(|| self.link.cancel());
        }
        self.link.cancel()
    }

    /// What to [code]await[/code] for the result, whether the task still runs or has ended:
    /// ```gdscript
    /// var result = await handle.wait()
    /// ```
    /// Once the task has ended it returns the result at once (a copy; [code]null[/code] if it
    /// failed or was cancelled), and the [code]await[/code] goes on without waiting; before that
    /// it returns the [signal finished] signal, which brings the result. An
    /// [code]await handle.finished[/code] started after the end would never resume. Call it on
    /// the main thread, where [signal finished] is emitted: elsewhere, before the end, it reports
    /// an error and returns [code]null[/code] (the coroutine would resume on the main thread, and
    /// never if the signal came before the [code]await[/code] connected). (A task whose result is
    /// itself a [Signal] would have that signal awaited: return it inside an Array.)
    #[func]
    pub fn wait(&self) -> Variant {
        if self.is_done() {
            return self.get_result();
        }
        if !godot::init::is_main_thread() {
            Problem::new(
                CLASS,
                "wait",
                "called off the main thread before the task ended; its finished signal is emitted on the main thread, where the coroutine would resume (or never, if it came before the await connected), so this returns null. Await it on the main thread (after await MainThreadDispatcher.switch_to_main_thread()), or block with AsyncTaskProcessor.wait_for_task(handle.id).",
            )
            .report();
            return Variant::nil();
        }
        Signal::from_object_signal(&self.to_gd(), "finished").to_variant()
    }

    /// A handle that your code ends, from any thread, with [method complete], [method fail] or
    /// [method cancel]: wrap a [Thread], an [HTTPRequest] or a signal into something to await and
    /// to combine with [method when_all] and [method when_any] (a completion source, or promise).
    /// Its [member id] is 0. [signal finished] is emitted on the main thread at the next drain of
    /// the [MainThreadDispatcher] queue (during the next frame, also while the game is paused),
    /// never on the thread that ended it.
    /// ```gdscript
    /// var pending := TaskHandle.create_pending()
    /// $HTTPRequest.request_completed.connect(func(_result, code, _headers, body):
    ///     if code == 200: pending.complete(body.get_string_from_utf8())
    ///     else: pending.fail("HTTP %d" % code))
    /// var text = await pending.wait()
    /// ```
    #[func]
    pub fn create_pending() -> Gd<TaskHandle> {
        Self::outside(Task::outside(0), Source::Pending, None)
    }

    /// Ends a handle from [method create_pending] with [param result] (Arrays, Dictionaries and
    /// Packed\*Arrays are copied). Returns [code]false[/code] if it had ended already: of several
    /// threads racing to end it, exactly one gets [code]true[/code]. Any other handle is refused
    /// with an error (its processor or its handles end it).
    #[func]
    pub fn complete(&self, result: Variant) -> bool {
        self.settle("complete", Ok(SendVariant::detach(result)))
    }

    /// Ends a handle from [method create_pending] as failed with [param message] (see
    /// [method get_error]); its awaiters get [code]null[/code]. Returns [code]false[/code] if it
    /// had ended already (see [method complete]).
    #[func]
    pub fn fail(&self, message: GString) -> bool {
        self.settle("fail", Err(message.to_string()))
    }

    /// A handle that ends when every one of [param handles] (an Array of TaskHandles, of any
    /// processors, pending ones and combined ones alike) has ended: completed with an Array of
    /// their results in the order of [param handles]; failed as soon as one of them fails (its
    /// [method get_error] names which: [code]handle 2 of 3 failed: ...[/code]), cancelling the
    /// rest; cancelled as soon as one of them is cancelled, cancelling the rest. An empty Array
    /// completes with an empty Array. An element that is not a TaskHandle is reported with an
    /// error, and the handle returned has already failed. [method cancel] on it cancels the
    /// handles it waits for. Once none of them can end any more (pending handles nobody holds),
    /// it is cancelled. [signal finished] is emitted on the main thread (see
    /// [method create_pending]).
    /// ```gdscript
    /// var results = await TaskHandle.when_all([processor.run(load_a), processor.run(load_b)]).wait()
    /// if results != null:
    ///     var a = results[0]
    /// ```
    #[func]
    pub fn when_all(handles: VarArray) -> Gd<TaskHandle> {
        combine::when_all(&handles)
    }

    /// A handle that ends as soon as the first of [param handles] ends, as that one did (the
    /// UniTask rule): completed with [code][index, result][/code] (its index in [param handles]);
    /// failed if it failed ([method get_error]: [code]handle 1 of 2 failed: ...[/code]);
    /// cancelled if it was cancelled. A handle that never ends does not hold it back; the others
    /// are left running (cancel them if you no longer need them). An empty Array, or an element
    /// that is not a TaskHandle, is reported with an error, and the handle returned has already
    /// failed.
    /// ```gdscript
    /// var first = await TaskHandle.when_any([processor.run(search_a), processor.run(search_b)]).wait()
    /// if first != null:
    ///     print("search ", first[0], " found ", first[1])
    /// ```
    #[func]
    pub fn when_any(handles: VarArray) -> Gd<TaskHandle> {
        combine::when_any(&handles)
    }

    /// Ties the task to [param node]: when the node is freed (on any thread), the task is
    /// cancelled (a running one sees [method AsyncTaskProcessor.is_cancelled] turn true, and a
    /// group's callback is not called, even if it completed just before); see also [method AsyncTaskProcessor.cancel_owner].
    /// Returns this handle, to chain: [code]processor.run(work).bind_to(self)[/code]. A task may
    /// be bound to several nodes. Off the main thread the binding is made at the dispatcher's
    /// next drain (a node freed before then cancels the task). A null or freed [param node], or
    /// another value, is reported with an error and binds nothing. It does not keep the handle
    /// alive. [method Node.duplicate] copies a node's metadata, where the binding lives: a copy
    /// of a bound node is not bound ([method AsyncTaskProcessor.cancel_owner] of the copy cancels
    /// nothing), but while it lives, and until a task is bound to the copy itself, freeing the
    /// original does not cancel the original's tasks; bind after duplicating.
    #[func]
    pub fn bind_to(&self, node: Variant) -> Gd<TaskHandle> {
        owner::bind(&self.link, &node);
        self.to_gd()
    }
}

impl TaskHandle {
    /// A handle for `task`, submitted to `pool`.
    pub(crate) fn new(task: Arc<Task<SendVariant>>, pool: Pool<SendVariant>) -> Gd<Self> {
        Gd::from_init_fn(|base| Self {
            id: task.id() as i64,
            link: Link::new(task, Source::Pool(pool)),
            base,
        })
    }

    /// A handle for a task that could not be submitted: it has already failed with `message`.
    /// The processor that refused it emits its `finished`.
    pub(crate) fn failed(message: String) -> Gd<Self> {
        let task = Task::outside(0);
        task.settle(Err(message));
        Gd::from_init_fn(|base| Self {
            id: -1,
            link: Link::new(Arc::new(task), Source::Refused),
            base,
        })
    }

    /// A handle of no processor, whose `finished` is emitted through the dispatcher once `task`
    /// ends. `keep`, if given, holds the handle alive until then, for as long as it is kept.
    fn outside(
        task: Task<SendVariant>,
        source: Source,
        keep: Option<std::sync::Weak<Keep>>,
    ) -> Gd<Self> {
        let id = if matches!(source, Source::Failed) {
            -1
        } else {
            0
        };
        let task = Arc::new(task);
        let handle = Gd::from_init_fn(|base| Self {
            id,
            link: Link::new(task.clone(), source),
            base,
        });
        let instance = handle.instance_id();
        task.on_end(Box::new(move || {
            let held = keep
                .and_then(|keep| keep.upgrade())
                .and_then(|keep| keep.take());
            emit_later(instance, held);
        }));
        handle
    }

    /// Ends a pending handle for `complete` / `fail`.
    fn settle(&self, method: &str, result: Result<SendVariant, String>) -> bool {
        if !matches!(self.link.source, Source::Pending) {
            Problem::new(
                CLASS,
                method,
                "this handle is not one from TaskHandle.create_pending() (its processor or the handles it combines end it)",
            )
            .fix(format!(
                "call {method}() on a pending handle, or cancel() this one."
            ))
            .report();
            return false;
        }
        self.kept_until_finished(|| self.link.task.settle(result))
    }

    /// Ends a pending handle with `end`, keeping the handle alive until its `finished` was
    /// emitted, even if the caller drops it now: released after the emission that ending it
    /// queues, from this same thread.
    fn kept_until_finished(&self, end: impl FnOnce() -> bool) -> bool {
        if self.link.task.status().is_finished() {
            return false;
        }
        let keep = HandleRef(self.to_gd());
        let won = end();
        main_queue::run_on_main(Box::new(move || drop(keep)));
        won
    }

    pub(crate) fn link(&self) -> &Arc<Link> {
        &self.link
    }

    /// Emits [signal finished] with `result` (null unless the task completed).
    pub(crate) fn emit_finished(handle: &mut Gd<Self>, result: &Variant) {
        handle.emit_signal(static_name!(c"finished"), std::slice::from_ref(result));
    }

    /// Emits [signal finished] with the task's result (null unless it completed).
    pub(crate) fn announce(mut handle: Gd<Self>) {
        let result = handle.bind().get_result();
        Self::emit_finished(&mut handle, &result);
    }
}

/// A copy of the task's result; null unless it completed.
pub(crate) fn result_of(task: &Task<SendVariant>) -> Variant {
    task.with_outcome(|outcome| match outcome {
        Some(Outcome::Completed(result)) => result.copy(),
        _ => Variant::nil(),
    })
}

/// A combined handle, held while the handles it combines can still end it (see
/// `threadkit_core::combine`), then handed to the job that emits its `finished`.
struct Keep(parking_lot::Mutex<Option<HandleRef>>);

impl Keep {
    fn take(&self) -> Option<HandleRef> {
        self.0.lock().take()
    }
}

/// Emits `finished` on the handle `instance` on the main thread at the dispatcher's next drain;
/// `held` keeps it alive until then. A handle nobody holds any more is gone, and so is whoever
/// could await it.
fn emit_later(instance: InstanceId, held: Option<HandleRef>) {
    main_queue::run_on_main(Box::new(move || {
        let handle = match held {
            Some(HandleRef(handle)) => Some(handle),
            None => live::<TaskHandle>(instance).ok(),
        };
        if let Some(handle) = handle {
            TaskHandle::announce(handle);
        }
    }));
}

/// Their node was freed: cancels them together (the queued ones before any running one is asked
/// to stop, whose worker would otherwise start the next of them), and marks them so that their
/// callbacks are skipped.
pub(crate) fn orphan_all<L: std::ops::Deref<Target = Link>>(links: &[L]) {
    for link in links {
        link.orphaned.store(true, Ordering::Release);
    }
    threadkit_core::cancel_together(links, |link, reach| link.cancel_reaching(reach));
}
