//! Scheduling: delayed tasks and yielding inside a task (priorities and limited groups are
//! parameters of the submit methods).

use super::*;

#[godot_api(secondary)]
impl AsyncTaskProcessor {
    /// Runs [param task] (a Callable taking no arguments) once [param delay_msec] milliseconds
    /// have passed, and returns its [TaskHandle]. No worker is held meanwhile (one timer thread
    /// per processor, started by its first delayed task, hands it to the workers when its time
    /// comes, at [param priority]); it then waits for a free worker like any task, so the delay
    /// is a minimum. Until then the task is [constant STATUS_PENDING], counted in
    /// [method get_stats]' [code]pending[/code] and [code]delayed[/code], and may be cancelled
    /// ([method TaskHandle.cancel], [method cancel_task]): it never runs. Waiting for it
    /// ([method wait_for_task]) waits for the delay too: it is never run early.
    /// [method stop_workers] and freeing the processor cancel the delayed tasks (their handles
    /// finish, cancelled) and join the timer thread. A delay of 0 queues the task at once;
    /// delays past ten years wait ten years.
    /// ```gdscript
    /// var autosave = processor.run_delayed(save_game, 30_000, AsyncTaskProcessor.PRIORITY_LOW)
    /// # Later, if the player saved by hand:
    /// autosave.cancel()
    /// ```
    /// A negative delay, an invalid callable or stopped workers: an error, and a handle that has
    /// already failed (id -1).
    #[func]
    pub fn run_delayed(
        &self,
        task: Callable,
        delay_msec: i64,
        #[opt(default = 0)] priority: i64,
    ) -> Gd<TaskHandle> {
        let method = "run_delayed";
        self.ensure_delivery();
        self.inner.submit_with_handle(|inner, attach| {
            let Ok(delay) = u64::try_from(delay_msec) else {
                return Err(Problem::new(
                    CLASS,
                    method,
                    format!("delay_msec {delay_msec} is negative"),
                )
                .fix("pass how many milliseconds to wait, or 0 to run it now."));
            };
            let priority = parse_priority(method, priority)?;
            check_task(method, &task)?;
            let label = label_of(&task);
            let task = SendCallable::new(task);
            let delivery = |task: &Arc<Task<SendVariant>>| Delivery {
                then: None,
                handle: Some(HandleRef(attach(task))),
            };
            let submitted = inner.submit(method, delivery, |pool| {
                pool.submit_delayed(priority, Duration::from_millis(delay), move |state| {
                    call_task(state, &task.into_inner(), &[], None)
                })
            })?;
            submitted.set_label(label);
            Ok(submitted)
        })
    }

    /// Inside a task running on a worker: runs the tasks queued on this processor whose
    /// priority is the calling task's or higher, right here on this worker, one after the
    /// other, then returns how many it started (it also helps with a group that another worker
    /// started, without counting it). Like [code]WorkerThreadPool[/code]'s yield, it lets a
    /// long task keep the queue moving:
    /// ```gdscript
    /// func generate_world() -> void:
    ///     for chunk in chunks:
    ///         build(chunk)
    ///         AsyncTaskProcessor.yield_now()  # Urgent requests queued meanwhile run here.
    /// ```
    /// It runs what was queued when it was called (tasks queued meanwhile wait for the next
    /// call), so it always returns; lower-priority tasks wait for a free worker as usual.
    /// Tasks it runs nest inside the calling one, within the same limit as the tasks a wait runs
    /// (128 nested on one thread; past it, it runs nothing). A task it runs that waits for the
    /// calling task (which cannot go on until it returns) gets the cycle error of
    /// [method wait_for_task] instead of hanging. Keep what the calling task holds in mind:
    /// a [ReadWriteLock] it holds is still held while the others run.
    ///
    /// Outside a task on a worker (on the main thread, in a [Thread], or in a task the main
    /// thread runs inside [method wait_for_task]) there is no queue to help: it runs nothing and
    /// returns 0, without an error, so that code shared with those threads may call it.
    #[func]
    pub fn yield_now() -> i64 {
        threadkit_core::yield_now() as i64
    }
}

/// `max_threads` of `submit_group`: 0 (every worker) or the most workers a group may use.
pub(super) fn parse_max_threads(
    method: &'static str,
    max_threads: i64,
) -> Result<usize, Problem<'static>> {
    usize::try_from(max_threads).map_err(|_| {
        Problem::new(
            CLASS,
            method,
            format!("max_threads {max_threads} is negative"),
        )
        .fix("pass the most workers the group may use at once, or 0 for all of them.")
    })
}
