//! The Rust API: gdext crates that depend on `threadkit` run Rust closures on the same workers
//! as GDScript tasks, with a continuation on the main thread.

use super::*;
use crate::main_thread_only::MainThreadOnly;

/// Why [`AsyncTaskProcessor::spawn`] did not queue the work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// The workers are not running (see `start_workers`).
    Stopped,
    /// Called off the main thread. The continuation runs on the main thread and may hold
    /// main-thread-only values (a `Gd<Node>`), so it must be created there too.
    NotMainThread,
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SpawnError::Stopped => "the AsyncTaskProcessor's workers are not running",
            SpawnError::NotMainThread => {
                "AsyncTaskProcessor::spawn must be called on the main thread"
            }
        })
    }
}

impl std::error::Error for SpawnError {}

impl AsyncTaskProcessor {
    /// Runs `work` on one of the processor's worker threads, then `then(result)` on the main
    /// thread during the processor's next delivery (with the GDScript callbacks, within the same
    /// frame budget). Returns the task id, which `cancel_task` and `get_task_status` accept.
    ///
    /// `work` may poll [`AsyncTaskProcessor::is_cancelled`] and call
    /// [`AsyncTaskProcessor::report_progress`]. If it panics, the task fails (the processor's
    /// `task_failed` signal and a Godot error carry the panic message) and `then` is dropped
    /// without being called; the same if the task is cancelled.
    ///
    /// To use it, depend on the `threadkit` crate from your own gdext crate: its classes register
    /// together with yours, so load only your extension (not also `addons/threadkit`).
    ///
    /// ```no_run
    /// use godot::prelude::*;
    /// use threadkit::AsyncTaskProcessor;
    ///
    /// #[derive(GodotClass)]
    /// #[class(init, base = Node)]
    /// struct Terrain {
    ///     heights: Vec<f32>,
    ///     base: Base<Node>,
    /// }
    ///
    /// #[godot_api]
    /// impl Terrain {
    ///     /// Regenerates the height map on a worker, then stores it on the main thread.
    ///     #[func]
    ///     fn regenerate(&self, processor: Gd<AsyncTaskProcessor>, seed: i64) -> i64 {
    ///         let mut this = self.to_gd();
    ///         let spawned = processor.bind().spawn(
    ///             move || generate_heights(seed, 256),
    ///             move |heights| this.bind_mut().heights = heights,
    ///         );
    ///         match spawned {
    ///             Ok(id) => id as i64,
    ///             Err(error) => {
    ///                 godot_error!("Terrain.regenerate: {error}");
    ///                 -1
    ///             }
    ///         }
    ///     }
    /// }
    ///
    /// fn generate_heights(seed: i64, size: usize) -> Vec<f32> {
    ///     (0..size * size)
    ///         .map(|i| ((i as i64 ^ seed) % 97) as f32 / 97.0)
    ///         .collect()
    /// }
    /// ```
    pub fn spawn<R, W, T>(&self, work: W, then: T) -> Result<u64, SpawnError>
    where
        R: Send + 'static,
        W: FnOnce() -> R + Send + 'static,
        T: FnOnce(R) + 'static,
    {
        if !godot::init::is_main_thread() {
            return Err(SpawnError::NotMainThread);
        }
        self.ensure_delivery();
        // The result stays a Rust value: the worker hands it to the continuation through core's
        // one-shot hand-off. The continuation runs only once the task completed, after
        // `complete`, so its zero wait finds the value there.
        let (runner, caller) = threadkit_core::oneshot();
        let continuation: Box<dyn FnOnce()> = Box::new(move || {
            if let Ok(result) = caller.wait(Some(Duration::ZERO)) {
                then(result);
            }
        });
        // Made on the main thread (checked above), so it is only ever called or dropped there.
        let continuation =
            MainThreadOnly::new(continuation).map_err(|_| SpawnError::NotMainThread)?;
        let delivery = |_: &Arc<Task<SendVariant>>| Delivery {
            then: Some(Then::Rust(continuation)),
            handle: None,
        };
        self.inner
            .submit("spawn", delivery, |pool| {
                pool.submit(Priority::Normal, move |_state| {
                    let result = work();
                    // `false` once the continuation was dropped: nobody takes the value then.
                    if runner.claim() {
                        runner.complete(result);
                    }
                    Ok(SendVariant::detach(Variant::nil()))
                })
            })
            .map(|task| task.id())
            .map_err(|_| SpawnError::Stopped)
    }
}
