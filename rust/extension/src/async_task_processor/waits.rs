//! The waits of `wait_for_task` and `wait_all`: off the main thread a plain blocking wait, on
//! it a loop that keeps delivering completions and dispatched calls while it waits.

use super::*;
use crate::task_handle::result_of;

/// `AsyncTaskProcessor.wait_for_task`.
pub(super) fn wait_for_task(
    this: &Gd<AsyncTaskProcessor>,
    task_id: i64,
    timeout_ms: i64,
) -> Variant {
    let inner = this.bind().inner.clone();
    let id = u64::try_from(task_id).unwrap_or(0);
    let Some(task) = inner.pool.task(id) else {
        if inner.pool.status_of(id).is_none() {
            Problem::new(
                CLASS,
                "wait_for_task",
                format!("there is no task {task_id}; pass an id returned by submit_task()."),
            )
            .report();
        }
        return Variant::nil();
    };
    let Ok(timeout) = problem::timeout_ms(CLASS, "wait_for_task", timeout_ms, Ok(())) else {
        return Variant::nil();
    };
    let _waiting = Waiting::new(&inner);
    let ended = if godot::init::is_main_thread() {
        // A task run here by an earlier wait may wait in turn: the main thread is then that
        // task, in the wait-for graph.
        match inner.pool.begin_wait(&task) {
            Ok(_edge) => wait_on_main_thread(
                &inner,
                this,
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
        WaitEnd::Done => result_of(&task),
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

/// `AsyncTaskProcessor.wait_all`.
pub(super) fn wait_all(this: &Gd<AsyncTaskProcessor>, timeout_ms: i64) -> bool {
    let inner = this.bind().inner.clone();
    if inner.pool.in_own_task() {
        Problem::new(
            CLASS,
            "wait_all",
            "called from one of its own tasks, which would wait for itself; wait for specific tasks with wait_for_task(id) instead.",
        )
        .report();
        return false;
    }
    let Ok(timeout) = problem::timeout_ms(CLASS, "wait_all", timeout_ms, Ok(())) else {
        return false;
    };
    let _waiting = Waiting::new(&inner);
    let ended = if godot::init::is_main_thread() {
        wait_on_main_thread(
            &inner,
            this,
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

/// How a wait for tasks ended.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum WaitEnd {
    Done,
    TimedOut,
    /// The processor was freed while the caller waited.
    Freed,
    /// Not waited: the wait could never end.
    Refused(WaitError),
}

pub(super) fn report_freed(method: &str) {
    Problem::new(
        CLASS,
        method,
        "the processor was freed while waiting; free it only once its waits have returned (for example after wait_all() on the main thread).",
    )
    .report();
}

/// Reports a wait refused by the pool; `gives` is what the method returns instead.
pub(super) fn report_refused(method: &str, error: &WaitError, gives: &str) {
    let advice = match error {
        WaitError::Cycle(_) => {
            "A task must not wait, directly or through other tasks, for itself: pass results on instead (a callback, a ThreadSafeQueue)"
        }
        WaitError::NoWorkerLeft { .. } => {
            "A chain of tasks each waiting for the next is limited to about (workers + 256) x 128 links: make such a chain a loop in one task"
        }
    };
    Problem::new(
        CLASS,
        method,
        format!("{error}; this wait returns {gives}. {advice}."),
    )
    .report();
}

/// Counts a thread in `Inner::waiting` while it lives.
pub(super) struct Waiting<'a>(&'a Inner);

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

/// Delivers completions, and runs MainThreadDispatcher work, as they arrive until `done`
/// holds, `timeout` passed or the node was freed (by a callback or a dispatched call run here).
/// Running the dispatcher's queue too is what lets a task that waits on the main thread
/// (`call_blocking`) finish while the main thread waits for it. Each time it wakes with nothing
/// left to deliver it calls `help`, which may run an awaited task right here (see
/// `Pool::help`), and goes round again if it did.
pub(super) fn wait_on_main_thread(
    inner: &Inner,
    this: &Gd<AsyncTaskProcessor>,
    timeout: Option<Duration>,
    done: impl Fn() -> bool,
    help: impl Fn() -> bool,
) -> WaitEnd {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let completions = inner.pool.completions();
    let dispatched = main_queue::QUEUE.receiver();
    let ended = || {
        if inner.is_freed() {
            Some(WaitEnd::Freed)
        } else {
            done().then_some(WaitEnd::Done)
        }
    };
    loop {
        deliver_completed(inner, this, DrainLimits::default());
        main_queue::drain(Some(DrainLimits::default()));
        if let Some(end) = ended() {
            return end;
        }
        if help() || inner.pool.run_local(DrainLimits::default()) > 0 {
            continue;
        }
        // A synchronous processor's delayed task falls due with no queue to wake us.
        let local_due = inner.pool.next_local_due();
        let wake_at = match (deadline, local_due) {
            (Some(deadline), Some(due)) => Some(deadline.min(due)),
            (deadline, due) => deadline.or(due),
        };
        let woke = threadkit_core::wait_ready(completions, dispatched, wake_at);
        if !woke && deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return ended().unwrap_or(WaitEnd::TimedOut);
        }
    }
}

impl Inner {
    /// Waits, off the main thread, until `task` ended, `timeout` passed or the node was freed;
    /// or refuses a wait that could never end (see `Pool::wait`).
    pub(super) fn wait_off_main_thread(
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
}
