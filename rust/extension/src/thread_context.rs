use godot::classes::Os;
use godot::prelude::*;

use crate::describe;
use crate::problem::Problem;

/// The longest thread name kept, in characters: names appear in messages.
const MAX_NAME_CHARS: usize = 64;

/// Which thread is running, from any thread: main, a ThreadKit worker, or another thread.
///
/// Godot's own answer is [method OS.get_thread_caller_id] compared with
/// [method OS.get_main_thread_id]; this class wraps that (so it is right on every thread, including
/// threads Godot did not start) and adds names for messages and a guard for main-thread-only work:
/// ```gdscript
/// func spawn_enemy() -> void:
///     if not ThreadContext.assert_main_thread("spawn_enemy"):
///         return  # An error already says which thread it was and what to do.
///     add_child(Enemy.new())
/// ```
#[derive(GodotClass)]
#[class(no_init, base = Object)]
pub struct ThreadContext {
    base: Base<Object>,
}

#[godot_api]
impl ThreadContext {
    /// [method get_context] on the main thread.
    #[constant]
    pub const CONTEXT_MAIN: i64 = 0;
    /// [method get_context] on an AsyncTaskProcessor worker.
    #[constant]
    pub const CONTEXT_WORKER: i64 = 1;
    /// [method get_context] on any other thread (a [Thread], a WorkerThreadPool task...).
    #[constant]
    pub const CONTEXT_OTHER: i64 = 2;

    /// Whether the caller runs on the main thread (the engine's, by its thread id).
    #[func]
    pub fn is_main_thread() -> bool {
        let os = Os::singleton();
        os.get_thread_caller_id() == os.get_main_thread_id()
    }

    /// The calling thread's id, as [method OS.get_thread_caller_id] gives it.
    #[func]
    pub fn get_thread_id() -> i64 {
        Os::singleton().get_thread_caller_id() as i64
    }

    /// The main thread's id, as [method OS.get_main_thread_id] gives it.
    #[func]
    pub fn get_main_thread_id() -> i64 {
        Os::singleton().get_main_thread_id() as i64
    }

    /// Names the calling thread for [method get_thread_name] and ThreadKit's messages; a name is
    /// kept to its first 64 characters, so that messages naming the thread stay short. The main
    /// thread is always "main" and AsyncTaskProcessor workers keep "threadkit-worker-N" (tasks
    /// share them), so calling it there reports an error and changes nothing.
    #[func]
    pub fn set_thread_name(name: GString) {
        match Self::get_context() {
            Self::CONTEXT_MAIN => Problem::new(
                "ThreadContext",
                "set_thread_name",
                "the main thread is always named \"main\"",
            )
            .fix("call it from the thread you want to name.")
            .report(),
            Self::CONTEXT_WORKER => Problem::new(
                "ThreadContext",
                "set_thread_name",
                "AsyncTaskProcessor workers keep their names (threadkit-worker-N) because many tasks share them; name your own Thread instead.",
            )
            .report(),
            _ => {
                let name: String = name.chars().iter().take(MAX_NAME_CHARS).collect();
                threadkit_core::context::set_thread_name(&name);
            }
        }
    }

    /// "main" on the main thread; "threadkit-worker-N" on an AsyncTaskProcessor worker
    /// ("threadkit-worker-spare" on a spare one, see [method AsyncTaskProcessor.wait_for_task]);
    /// otherwise the name given with [method set_thread_name], or "thread-<id>".
    #[func]
    pub fn get_thread_name() -> GString {
        GString::from(&Self::thread_name())
    }

    /// [constant CONTEXT_MAIN], [constant CONTEXT_WORKER] or [constant CONTEXT_OTHER].
    #[func]
    pub fn get_context() -> i64 {
        if Self::is_main_thread() {
            Self::CONTEXT_MAIN
        } else if threadkit_core::pool::is_worker_thread() {
            Self::CONTEXT_WORKER
        } else {
            Self::CONTEXT_OTHER
        }
    }

    /// Returns [code]true[/code] on the main thread. Elsewhere it reports an error naming
    /// [param operation], the calling thread and the fix, and returns [code]false[/code], so the
    /// caller can skip what only the main thread may do.
    #[func]
    pub fn assert_main_thread(operation: GString) -> bool {
        if Self::is_main_thread() {
            return true;
        }
        Problem::new(
            "ThreadContext",
            "assert_main_thread",
            format!(
                "{} must run on the main thread, but ran on {} (thread {})",
                describe::text(&operation),
                Self::thread_name(),
                Self::get_thread_id()
            ),
        )
        .fix("run it from a callback, MainThreadDispatcher.dispatch(...) or call_deferred(...).")
        .report();
        false
    }
}

impl ThreadContext {
    /// The calling thread's name, as [`ThreadContext::get_thread_name`] describes.
    pub fn thread_name() -> String {
        match Self::get_context() {
            Self::CONTEXT_MAIN => "main".into(),
            Self::CONTEXT_WORKER => std::thread::current()
                .name()
                .unwrap_or("threadkit-worker")
                .into(),
            _ => threadkit_core::context::thread_name()
                .unwrap_or_else(|| format!("thread-{}", Self::get_thread_id())),
        }
    }
}
