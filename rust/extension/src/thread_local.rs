use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use godot::prelude::*;
use threadkit_core::{InitError, PerThread};

use crate::coroutine;
use crate::kept_call::{self, Failure};
use crate::problem::Problem;
use crate::script_errors::Nesting;
use crate::send::SharedCallable;

const CLASS: &str = "ThreadLocal";

/// Set when the extension is unloaded: a value still kept then (a ThreadLocal that was never
/// freed) is left alone, since the engine it belongs to is gone.
static UNLOADED: AtomicBool = AtomicBool::new(false);

/// One value per thread: [method get_value] returns the calling thread's own value, made by a
/// factory the first time that thread asks.
///
/// For objects that must not be shared between threads but are costly to make for every task:
/// an [AStarGrid2D] per worker (Godot's AStar classes are not safe to use from two threads at
/// once), a [RandomNumberGenerator], a scratch [Image] or a cache.
/// ```gdscript
/// var grids := ThreadLocal.create(func() -> AStarGrid2D:
///     var grid := AStarGrid2D.new()
///     grid.region = Rect2i(0, 0, 64, 64)
///     grid.update()
///     return grid)
///
/// func find_path(from: Vector2i, to: Vector2i) -> Array[Vector2i]:  # In any task.
///     return grids.get_value().get_id_path(from, to)
/// ```
/// Create it with [method create]: a native class's [code]new()[/code] cannot take arguments in
/// Godot, so [code]ThreadLocal.new()[/code] is refused.
///
/// [b]Lifetime.[/b] A thread's value is released when that thread ends ([Thread] and
/// [AsyncTaskProcessor] workers alike), or when the ThreadLocal is freed (its last reference
/// dropped), whichever comes first: exactly once either way. Values released with the
/// ThreadLocal are released on the thread that dropped the last reference. [method clear_value]
/// releases the calling thread's value early. The main thread's value lives until the
/// ThreadLocal is freed.
///
/// [b]The factory[/b] is called with no arguments, on the thread that asks, without any lock
/// held: it may use other ThreadLocals (but asking this one for the same thread's value from
/// inside the factory is refused with an error). If it fails (a script error, a freed object),
/// returns [code]null[/code], or is a coroutine (uses [code]await[/code]), [method get_value]
/// returns [code]null[/code] with an error and keeps nothing, so the next call tries again.
#[derive(GodotClass)]
#[class(base = RefCounted, no_init)]
pub struct ThreadLocal {
    values: PerThread<ThreadValue>,
    factory: Arc<SharedCallable>,
}

/// A thread's value, kept in the ThreadLocal's map.
#[derive(Clone)]
struct ThreadValue(Variant);

// SAFETY: a value is only ever read (cloned, handed back) by the thread it belongs to. It leaves
// that thread only to be dropped, when the ThreadLocal is freed on another thread: dropping a
// Variant only decrements reference counts, which are atomic in Godot.
unsafe impl Send for ThreadValue {}

impl Drop for ThreadValue {
    fn drop(&mut self) {
        if UNLOADED.load(Ordering::Acquire) {
            // Dropping it would call into the engine that is gone; the process is exiting.
            std::mem::forget(std::mem::take(&mut self.0));
        }
    }
}

#[godot_api]
impl IRefCounted for ThreadLocal {
    fn to_string(&self) -> GString {
        GString::from(&format!("ThreadLocal(values={})", self.values.len()))
    }
}

#[godot_api]
impl ThreadLocal {
    /// A new ThreadLocal whose values [param factory] makes: it is called with no arguments, on
    /// each thread that asks for its value the first time, and returns that thread's value.
    /// Returns [code]null[/code] with an error if [param factory] is not valid.
    #[func]
    pub fn create(factory: Callable) -> Option<Gd<Self>> {
        if !factory.is_valid() {
            Problem::new(
                CLASS,
                "create",
                "the factory Callable is not valid (null, or its object was freed)",
            )
            .fix("pass a function that returns a new value for the calling thread.")
            .report();
            return None;
        }
        Some(Gd::from_object(Self {
            values: PerThread::new(),
            factory: Arc::new(SharedCallable::new(factory)),
        }))
    }

    /// The calling thread's value. The first call on a thread calls the factory there and keeps
    /// what it returns; later calls on that thread return the same value, until the thread ends,
    /// [method clear_value] is called or the ThreadLocal is freed. Returns [code]null[/code] with
    /// an error when the factory fails, returns [code]null[/code], is a coroutine, or asks this
    /// ThreadLocal for the value it is making (see the class description). If the ThreadLocal is
    /// freed while the factory runs (the factory dropped its last reference), the value is
    /// returned but not kept.
    #[func(gd_self)]
    pub fn get_value(this: Gd<Self>) -> Variant {
        // Taken under a bind that ends at once: the factory is user code, which may use this
        // object or drop the last reference to it.
        let (values, factory) = {
            let this = this.bind();
            (this.values.handle(), this.factory.clone())
        };
        drop(this);
        let made = values.get_or_try_init(|| make_value(factory.get()));
        match made {
            Ok(value) => value.0.clone(),
            Err(InitError::Failed(())) => Variant::nil(),
            Err(InitError::Reentrant) => {
                Problem::new(
                    CLASS,
                    "get_value",
                    "the factory asked this ThreadLocal for the value it is making (on the same thread), which would never end",
                )
                .fix("make the value without calling get_value() of the same ThreadLocal.")
                .report();
                Variant::nil()
            }
        }
    }

    /// Whether the calling thread has a value (made by [method get_value] and not released).
    #[func]
    pub fn has_value(&self) -> bool {
        self.values.handle().contains()
    }

    /// Releases the calling thread's value now (if it has one); its next [method get_value]
    /// calls the factory again. Returns whether there was a value.
    #[func]
    pub fn clear_value(&self) -> bool {
        let value = self.values.handle().remove();
        // Released after the map's lock: releasing may run a script's code.
        value.is_some()
    }

    /// How many threads have a value now (for diagnostics: threads may add or release theirs at
    /// any moment).
    #[func]
    pub fn get_value_count(&self) -> i64 {
        self.values.len() as i64
    }
}

/// Calls the factory for the calling thread's value; `Err` (with the error printed) when it
/// produced no value to keep.
fn make_value(factory: &Callable) -> Result<ThreadValue, ()> {
    match kept_call::call(factory, &[], Nesting::Shared) {
        Ok(value) if value.is_nil() => {
            Problem::new(
                CLASS,
                "get_value",
                "the factory returned null, which is kept as no value",
            )
            .fix("return the value this thread should have (the next get_value() calls the factory again).")
            .report();
            Err(())
        }
        Ok(value) => Ok(ThreadValue(value)),
        Err(Failure::NotCalled(why)) => {
            Problem::new(
                CLASS,
                "get_value",
                format!("the factory could not be called: {why}; no value was made."),
            )
            .report();
            Err(())
        }
        // Godot printed the script error already (and it fails the task this runs in, if any).
        Err(Failure::ScriptError(_)) => Err(()),
        Err(Failure::Coroutine) => {
            Problem::new(
                CLASS,
                "get_value",
                format!(
                    "the factory is a coroutine (it uses await), so it returned before making the value; it was stopped there and nothing was kept. To fix it, {}.",
                    coroutine::HINT
                ),
            )
            .report();
            Err(())
        }
    }
}

/// The extension is being unloaded: values still kept from now on are left alone, and threads
/// that end later no longer call into this library.
pub(crate) fn uninstall() {
    UNLOADED.store(true, Ordering::Release);
    threadkit_core::per_thread::stop_thread_exit_hooks();
}
