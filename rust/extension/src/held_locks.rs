//! ReadWriteLock holds that outlive the code that took them, released with an error instead of
//! locking other threads out forever.
//!
//! GDScript has no destructors, so a `write_lock()` whose `write_unlock()` never comes (the code
//! stopped at a script error, returned early, or is a coroutine that awaits and is never resumed)
//! would keep every other thread waiting (upgradable read holds, and what `upgrade()` and
//! `downgrade()` turn them into, alike). Each thread records the holds its raw lock calls take
//! (`with_read`/`with_write` release theirs themselves), under the task running on it if any:
//! - when a task ends, what it still holds is released, with an error naming the task;
//! - on the main thread outside tasks, what is still held when the next frame starts is released
//!   the same way. The main thread runs one function at a time between frames, so a hold that
//!   lasts into the next frame was either forgotten or held across an `await`, which may never
//!   resume (its node freed) and, if it does, resumes with other threads shut out all along.
//!
//! Other threads (a `Thread` of your own) keep what they hold: they are never resumed from an
//! `await`, and they end only when your code returns.

use std::cell::RefCell;
use std::sync::Arc;

use godot::classes::object::ConnectFlags;
use godot::classes::{Engine, SceneTree};
use godot::prelude::*;

use crate::problem::Problem;
use threadkit_core::TrackedRwLock;

/// Which side of the lock a hold is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Read,
    Write,
    Upgradable,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Upgradable => "upgradable_read",
        }
    }

    /// How to avoid leaving it held: unlock, or a `with_*` method where there is one.
    fn fix(self) -> String {
        match self {
            Self::Upgradable => {
                String::from("call upgradable_read_unlock() (or write_unlock() after upgrade())")
            }
            side => format!("call {0}_unlock(), or use with_{0}()", side.name()),
        }
    }
}

/// A lock first taken in one place (a task, or the main thread this frame): how many read and
/// write locks this thread held on it before, so that what is held past that at the end was
/// taken there and not undone; and the method that took them last. The lock counts each
/// thread's holds itself, so unlocks need no bookkeeping here.
struct Hold {
    lock: Arc<TrackedRwLock>,
    reads_before: u32,
    writes_before: u32,
    upgradables_before: u32,
    read_method: &'static str,
    write_method: &'static str,
    upgradable_method: &'static str,
}

#[derive(Default)]
struct Holds(Vec<Hold>);

impl Holds {
    /// Records that this thread just took `mode` on `lock` with `method`.
    fn add(&mut self, lock: &Arc<TrackedRwLock>, mode: Mode, method: &'static str) {
        let hold = match self.0.iter().position(|h| Arc::ptr_eq(&h.lock, lock)) {
            Some(index) => &mut self.0[index],
            None => {
                let (reads, writes) = (lock.reads_held(), lock.writes_held());
                let upgradables = lock.upgradables_held();
                // An upgrade or a downgrade turns a hold taken before into this mode: it does
                // not count as taken here (saturating: the hold it turned into is gone).
                self.0.push(Hold {
                    lock: lock.clone(),
                    reads_before: reads.saturating_sub(u32::from(mode == Mode::Read)),
                    writes_before: writes.saturating_sub(u32::from(mode == Mode::Write)),
                    upgradables_before: upgradables
                        .saturating_sub(u32::from(mode == Mode::Upgradable)),
                    read_method: "",
                    write_method: "",
                    upgradable_method: "",
                });
                self.0.last_mut().expect("just pushed")
            }
        };
        match mode {
            Mode::Read => hold.read_method = method,
            Mode::Write => hold.write_method = method,
            Mode::Upgradable => hold.upgradable_method = method,
        }
    }

    /// Releases, on this thread, what it holds past what it held before each lock was first
    /// taken here, and reports each with `report(mode, count, method)`. Reads first: the
    /// writer's (or upgradable reader's) reads under its own hold must go before that hold can.
    fn release(self, report: impl Fn(Mode, u32, &str)) {
        for hold in self.0 {
            let extra_reads = hold.lock.reads_held().saturating_sub(hold.reads_before);
            let reads = (0..extra_reads)
                .take_while(|_| hold.lock.unlock_read().is_ok())
                .count();
            let extra_writes = hold.lock.writes_held().saturating_sub(hold.writes_before);
            let writes = (0..extra_writes)
                .take_while(|_| hold.lock.unlock_write().is_ok())
                .count();
            let extra_upgradables = hold
                .lock
                .upgradables_held()
                .saturating_sub(hold.upgradables_before);
            let upgradables = (0..extra_upgradables)
                .take_while(|_| hold.lock.unlock_upgradable().is_ok())
                .count();
            if reads > 0 {
                report(Mode::Read, reads as u32, hold.read_method);
            }
            if writes > 0 {
                report(Mode::Write, writes as u32, hold.write_method);
            }
            if upgradables > 0 {
                report(Mode::Upgradable, upgradables as u32, hold.upgradable_method);
            }
        }
    }
}

thread_local! {
    /// The holds of the tasks running on this thread, innermost (a task run inline) last.
    static TASKS: RefCell<Vec<Holds>> = const { RefCell::new(Vec::new()) };
    /// The main thread's holds outside tasks, since the last check.
    static MAIN: RefCell<Holds> = const { RefCell::new(Holds(Vec::new())) };
    /// The main thread's check connected to the next `process_frame`, if any.
    static CHECK: RefCell<Option<(Gd<SceneTree>, Callable)>> = const { RefCell::new(None) };
}

/// Records that this thread took `mode` on `lock` with `method` (a raw lock call, not
/// `with_*`).
pub fn acquired(lock: &Arc<TrackedRwLock>, mode: Mode, method: &'static str) {
    let in_task = TASKS.with(|tasks| match tasks.borrow_mut().last_mut() {
        Some(holds) => {
            holds.add(lock, mode, method);
            true
        }
        None => false,
    });
    if !in_task && godot::init::is_main_thread() {
        MAIN.with(|main| main.borrow_mut().add(lock, mode, method));
        check_at_next_frame();
    }
}

/// The holds of one task run on this thread: alive while it runs; when dropped (the task ended,
/// however), releases what it still holds with an error naming it (`task` says how).
pub struct TaskHolds<F: Fn() -> String> {
    task: F,
}

impl<F: Fn() -> String> TaskHolds<F> {
    pub fn begin(task: F) -> Self {
        TASKS.with(|tasks| tasks.borrow_mut().push(Holds::default()));
        Self { task }
    }
}

impl<F: Fn() -> String> Drop for TaskHolds<F> {
    fn drop(&mut self) {
        let Some(holds) = TASKS.with(|tasks| tasks.borrow_mut().pop()) else {
            return;
        };
        holds.release(|mode, count, method| {
            let (side, fix) = (mode.name(), mode.fix());
            Problem::new(
                "ReadWriteLock",
                method,
                format!(
                    "{} ended still holding {count} {side} lock(s) it took (it stopped at an error, or did not unlock); ThreadKit released them so that other threads do not wait forever. Before the task returns, {fix}.",
                    (self.task)()
                ),
            )
            .report();
        });
    }
}

/// Connects `release_main_holds` to the scene tree's next `process_frame` (once). Without a
/// SceneTree (a custom MainLoop) there is no frame to check at, and holds stay as they are.
fn check_at_next_frame() {
    if CHECK.with(|check| check.borrow().is_some()) {
        return;
    }
    let tree = Engine::singleton()
        .get_main_loop()
        .and_then(|main_loop| main_loop.try_cast::<SceneTree>().ok());
    let Some(tree) = tree else {
        return;
    };
    let check = Callable::from_fn("ReadWriteLock.release_locks_held_across_frames", |_| {
        CHECK.with(|check| check.borrow_mut().take());
        release_main_holds();
    });
    Signal::from_object_signal(&tree, "process_frame")
        .connect_flags(&check, ConnectFlags::ONE_SHOT);
    CHECK.with(|pending| *pending.borrow_mut() = Some((tree, check)));
}

fn release_main_holds() {
    let holds = MAIN.with(|main| std::mem::take(&mut *main.borrow_mut()));
    holds.release(|mode, count, method| {
        let (side, fix) = (mode.name(), mode.fix());
        Problem::new(
            "ReadWriteLock",
            method,
            format!(
                "the main thread still held {count} {side} lock(s) when the next frame started (held across an await, or never unlocked); ThreadKit released them so that other threads do not wait forever. On the main thread, before the function awaits or returns, {fix}."
            ),
        )
        .report();
    });
}

/// Disconnects a pending check: it is code of this library, which is about to be unloaded.
/// Main thread, when the extension is unloaded.
pub fn uninstall() {
    // The tree is usually freed by now (at exit Godot frees it before unloading extensions).
    if let Some((mut tree, check)) = CHECK.with(|check| check.borrow_mut().take())
        && tree.is_instance_valid()
        && tree.is_connected("process_frame", &check)
    {
        tree.disconnect("process_frame", &check);
    }
    MAIN.with(|main| main.borrow_mut().0.clear());
}
