//! Moving the rest of a GDScript coroutine to another thread: `await processor.switch_to_worker()`
//! and `await MainThreadDispatcher.switch_to_main_thread()`.
//!
//! A coroutine resumes on the thread that emits the signal it awaits. Each switch returns the
//! signal of a fresh [`ThreadSwitch`], and the target thread emits it.
//!
//! What Godot allows (modules/gdscript, 4.5 and 4.6): at an `await` on a signal, the VM
//! (`OPCODE_AWAIT` in gdscript_vm.cpp) copies the frame into a `GDScriptFunctionState`, links it
//! into its script's and instance's pending lists under `GDScriptLanguage`'s mutex, and only then
//! connects it to the signal (one-shot). Resuming (`_signal_callback` → `resume`) unlinks it under
//! that mutex and runs the function on the state's own copy of the frame; the call depth is a
//! `thread_local` and the debugger's call stack is per thread. So a state may be resumed on
//! another thread, with one exception: the code that awaited is not done with it when it
//! connects. When that code was itself a resumption, `GDScriptFunctionState::resume` goes on,
//! after the connect, to write the new state's `first_state` and to clear its own state: a
//! resumption of the new state on another thread at that moment races a reference-counted
//! pointer. A signal emitted on another thread the instant an `await` connects can therefore
//! crash Godot, and checking the connection is not enough to avoid it. ThreadKit never emits a
//! switch before the thread that awaited it returned from the code that awaited:
//! - a switch requested while ThreadKit runs a coroutine it resumed (the emit of an earlier
//!   switch) is launched right after that emit returned;
//! - a switch requested anywhere else on the main thread is launched at the main thread's next
//!   [`tick`] (the built-in dispatcher node's frame, or `process_queue()`): nothing but Godot's own
//!   code runs on a thread between an `await`'s connect and the end of its resumption, so by then
//!   the main thread is done with it;
//! - a switch requested on another thread (a `Thread` of the game) is launched at the first frame
//!   that finds its await connected. That is safe for a coroutine's first suspension there:
//!   after the connect only the teardown of its own frame runs, on memory the state does not
//!   share. A coroutine that thread had resumed itself (by emitting a signal there) may still be
//!   finishing that resumption when the frame looks, which ThreadKit cannot see: the documentation
//!   says to switch such a coroutine from ThreadKit's threads only.
//!
//! A switch whose signal nobody awaited is reported and dropped.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use godot::prelude::*;
use parking_lot::Mutex;

use crate::call::static_name;
use crate::main_queue;
use crate::problem::Problem;

/// How long a switch requested on a thread other than the main one may go without its `await`
/// connecting before it is reported as never awaited.
const CONNECT_GRACE: Duration = Duration::from_secs(2);

/// The object whose `resumed` signal a switching coroutine awaits; one per switch.
#[derive(GodotClass)]
#[class(init, internal, base = RefCounted)]
pub struct ThreadSwitch {
    base: Base<RefCounted>,
}

#[godot_api]
impl ThreadSwitch {
    /// Emitted once, on the thread the coroutine switches to.
    #[signal]
    fn resumed();
}

/// A switch's object, moved to the thread that emits its signal.
pub(crate) struct Emitter(Gd<ThreadSwitch>);

// SAFETY: a RefCounted (atomic count) with no state of its own, moved from thread to thread and
// used (inspected, emitted, dropped) by one thread at a time; Godot guards its signal list.
unsafe impl Send for Emitter {}

impl Emitter {
    fn is_awaited(&self) -> bool {
        !Signal::from_object_signal(&self.0, "resumed")
            .connections()
            .is_empty()
    }

    /// Resumes the coroutine on this thread; the switches it requests meanwhile are launched
    /// once it returned here.
    pub(crate) fn resume(self) {
        let outer = SCOPE.with(|scope| scope.replace(Some(Vec::new())));
        self.0
            .clone()
            .upcast::<Object>()
            .emit_signal(static_name!(c"resumed"), &[]);
        let requested = SCOPE.with(|scope| scope.replace(outer)).unwrap_or_default();
        for switch in requested {
            if switch.emitter.is_awaited() {
                switch.launch();
            } else {
                switch.report_not_awaited();
            }
        }
    }
}

/// Where a switch goes.
pub(crate) enum Target {
    /// Hands the emitter to a processor, which emits it on a worker.
    Worker(Box<dyn FnOnce(Emitter) + Send>),
    Main,
}

/// The class and method of a switch, for errors.
pub(crate) type Origin = (&'static str, &'static str);

struct Switch {
    emitter: Emitter,
    target: Target,
    /// The class and method that requested it, for errors.
    origin: Origin,
    requested: Instant,
    on_main_thread: bool,
}

impl Switch {
    fn launch(self) {
        match self.target {
            Target::Worker(hand_over) => hand_over(self.emitter),
            Target::Main => {
                let emitter = self.emitter;
                main_queue::run_on_main(Box::new(move || emitter.resume()));
            }
        }
    }

    fn report_not_awaited(&self) {
        let (class, method) = self.origin;
        Problem::new(
            class,
            method,
            "the Signal it returned was not awaited, so nothing switched",
        )
        .fix(format!("await it where you call it: await ...{method}()."))
        .report();
    }
}

thread_local! {
    /// While ThreadKit resumes a coroutine on this thread: the switches requested meanwhile.
    static SCOPE: RefCell<Option<Vec<Switch>>> = const { RefCell::new(None) };
}

/// Switches requested outside a resumption, launched by the built-in dispatcher node ([`tick`]).
static UNSCOPED: Mutex<Vec<Switch>> = Mutex::new(Vec::new());

/// Requests a switch to `target` and returns the signal the caller awaits; inside a task (not a
/// switched coroutine), an error and null, which `await` passes through: a task may not await.
pub(crate) fn request(origin: Origin, target: Target) -> Variant {
    let in_resumption = SCOPE.with(|scope| scope.borrow().is_some());
    if !in_resumption && threadkit_core::current_task().is_some() {
        let (class, name) = origin;
        Problem::new(
            class,
            name,
            "called inside a task, which may not await (its await would end the task there); the task goes on where it is. Switch threads in a coroutine you call outside tasks, or return the result and use the task's callback.",
        )
        .report();
        return Variant::nil();
    }
    let object = ThreadSwitch::new_gd();
    let signal = Signal::from_object_signal(&object, "resumed");
    let mut switch = Some(Switch {
        emitter: Emitter(object),
        target,
        origin,
        requested: Instant::now(),
        on_main_thread: godot::init::is_main_thread(),
    });
    SCOPE.with(|scope| {
        if let Some(requested) = scope.borrow_mut().as_mut() {
            requested.extend(switch.take());
        }
    });
    if let Some(switch) = switch {
        UNSCOPED.lock().push(switch);
    }
    signal.to_variant()
}

/// Launches the switches requested outside a resumption whose await is connected. Main thread:
/// the built-in dispatcher node's frame (paused or not) and `process_queue()`.
pub(crate) fn tick() {
    let pending = std::mem::take(&mut *UNSCOPED.lock());
    if pending.is_empty() {
        return;
    }
    let mut waiting = Vec::new();
    for switch in pending {
        if switch.emitter.is_awaited() {
            switch.launch();
        } else if !switch.on_main_thread && switch.requested.elapsed() < CONNECT_GRACE {
            // Another thread may not have reached its await yet.
            waiting.push(switch);
        } else {
            switch.report_not_awaited();
        }
    }
    UNSCOPED.lock().extend(waiting);
}

/// Drops the switches still waiting, at shutdown, while the classes they hold still exist.
pub(crate) fn discard() {
    drop(std::mem::take(&mut *UNSCOPED.lock()));
}
