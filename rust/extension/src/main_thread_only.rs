//! A value that only the main thread may reach, carried inside structures that cross threads.

use std::mem::ManuallyDrop;

/// A value of the main thread (a Rust continuation that may hold `Gd<Node>`s) carried inside a
/// structure that crosses threads (a task's delivery), which only the main thread can reach.
///
/// It can only be made on the main thread ([`MainThreadOnly::new`]), only the main thread gets
/// the value out ([`MainThreadOnly::into_inner`]), and it is only ever dropped there: dropped
/// on another thread (its processor was freed there), the wrapper is sent to the main thread
/// through the MainThreadDispatcher and dropped at its next drain. When the game is quitting
/// nothing drains any more, and the value is leaked instead: dropping it there could run its
/// non-`Send` destructor on the wrong thread, and the process is about to exit anyway.
pub(crate) struct MainThreadOnly<T: 'static>(ManuallyDrop<T>);

// SAFETY: the value is reached (taken or dropped) on the main thread only: `new` and
// `into_inner` check the thread, and `Drop` forwards the wrapper to the main thread or leaks it.
// Moving the wrapper between threads moves the bytes of `T` without touching it.
unsafe impl<T: 'static> Send for MainThreadOnly<T> {}

impl<T: 'static> MainThreadOnly<T> {
    /// Wraps `value`; gives it back off the main thread.
    pub(crate) fn new(value: T) -> Result<Self, T> {
        if godot::init::is_main_thread() {
            Ok(Self(ManuallyDrop::new(value)))
        } else {
            Err(value)
        }
    }

    /// The value, on the main thread; off it, the wrapper back (its value stays untouched).
    pub(crate) fn into_inner(self) -> Result<T, Self> {
        if !godot::init::is_main_thread() {
            return Err(self);
        }
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the value is taken exactly once.
        Ok(unsafe { ManuallyDrop::take(&mut this.0) })
    }
}

impl<T: 'static> Drop for MainThreadOnly<T> {
    fn drop(&mut self) {
        if godot::init::is_main_thread() {
            // SAFETY: dropped once, here, and `self.0` is not used after (we are in `drop`).
            unsafe { ManuallyDrop::drop(&mut self.0) };
        } else if !crate::shutdown::is_shutting_down() {
            // SAFETY: taken once; `self.0` is not used after (we are in `drop`).
            let value = Self(ManuallyDrop::new(unsafe {
                ManuallyDrop::take(&mut self.0)
            }));
            // Had the dispatcher started shutting down meanwhile, it drops the job here: the
            // wrapper's drop then sees the shutdown and leaks the value.
            crate::main_queue::run_on_main(Box::new(move || drop(value)));
        }
    }
}
