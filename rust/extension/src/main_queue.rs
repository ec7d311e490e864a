//! The one queue of work for the main thread: any thread feeds it, the main thread drains it
//! (`MainThreadDispatcher`'s node or `process_queue()`). ThreadKit's own jobs go through
//! [`run_on_main`]; the GDScript class adds the user-facing pushes, policies and helpers.

use std::time::Duration;

use godot::prelude::*;
use std::sync::LazyLock as Lazy;
use threadkit_core::DrainLimits;
use threadkit_core::dispatch::Dispatcher;

use crate::call::try_call;
use crate::problem::Problem;
use crate::send::SendCallable;

/// 2 ms: an eighth of a 60 FPS frame, so a flood of dispatched work cannot eat the frame.
const DEFAULT_BUDGET_USEC: u64 = 2000;

/// Work for the main thread, queued by any thread: a dispatched Callable, carried as it is (the
/// common case: no allocation per item), or any other job as a closure.
pub(crate) enum MainJob {
    Call(SendCallable),
    /// A dispatched Callable tied to an owner: dropped if the owner was freed before it runs.
    Owned(SendCallable, InstanceId),
    Run(Box<dyn FnOnce() + Send>),
}

impl<F: FnOnce() + Send + 'static> From<Box<F>> for MainJob {
    fn from(job: Box<F>) -> Self {
        Self::Run(job)
    }
}

impl MainJob {
    fn run(self) {
        match self {
            Self::Call(callable) => run_dispatched(callable.into_inner()),
            Self::Owned(callable, owner) if owner.lookup_validity() => {
                run_dispatched(callable.into_inner())
            }
            Self::Owned(..) => QUEUE.record_dropped(1),
            Self::Run(job) => job(),
        }
    }
}

/// Runs a dispatched Callable; one whose object was freed meanwhile is dropped and counted.
fn run_dispatched(callable: Callable) {
    if !callable.is_valid() {
        QUEUE.record_dropped(1);
    } else if let Err(message) = try_call(&callable, &[]) {
        Problem::new(
            "MainThreadDispatcher",
            "dispatch",
            format!("a dispatched call failed: {message}"),
        )
        .report();
    }
}

/// The one queue every thread feeds and the main thread drains.
pub(crate) static QUEUE: Lazy<Dispatcher<MainJob>> = Lazy::new(|| {
    let queue = Dispatcher::new();
    queue.set_budget(Some(Duration::from_micros(DEFAULT_BUDGET_USEC)));
    queue
});

/// Runs `job` on the main thread at the next drain, whatever the capacity and the overflow
/// policy: for ThreadKit's own jobs that release waiters, which must not be lost.
/// Once the game quits nothing runs any more, and the job is dropped at once (as the dispatcher
/// class's `push` does).
pub(crate) fn run_on_main(job: Box<dyn FnOnce() + Send>) {
    if !crate::shutdown::is_shutting_down() {
        QUEUE.push_unbounded(MainJob::Run(job));
    }
}

/// Runs queued work on the main thread: within `limits`, or the queue's own settings.
pub(crate) fn drain(limits: Option<DrainLimits>) -> usize {
    let run = |job: MainJob| {
        // A panicking job must not abort the rest of the drain (or unwind into Godot).
        if crate::call::catch_panic(|| job.run()).is_err() {
            Problem::of(
                "MainThreadDispatcher",
                "a queued job panicked; it was skipped.",
            )
            .report();
        }
    };
    match limits {
        Some(limits) => QUEUE.drain_with(limits, run),
        None => QUEUE.drain(run),
    }
    .processed
}

/// Drops what is still queued at shutdown, on purpose: its targets are being freed.
pub(crate) fn discard_queue() {
    QUEUE.drain_with(DrainLimits::default(), drop);
}
