//! The engine shutting down: the moment ThreadKit ends every wait that only the running game could
//! have ended, so that quitting never freezes on one and never leaves a thread blocked in
//! ThreadKit while Godot frees the scripts it would return into.
//!
//! It begins when a sentinel node of ThreadKit's leaves the tree. When the game quits, Godot's
//! `SceneTree::finalize` takes the root's children out in the reverse of the order they were
//! added, before freeing any; the sentinel is kept the last child added (it is added again, at
//! the end of the frame, after any other child of the root: a new scene, an autoload), so it
//! leaves first: before any of the game's `_exit_tree` (where a game joins its Threads) and
//! before any node is freed. Without a SceneTree it begins when the extension is unloaded.

use std::sync::LazyLock as Lazy;
use std::sync::atomic::{AtomicBool, Ordering};

use godot::classes::node::InternalMode;
use godot::classes::{Node, Window};
use godot::prelude::*;
use threadkit_core::Interrupt;

static SHUTDOWN: Lazy<Interrupt> = Lazy::new(Interrupt::new);

/// Set while the sentinel is taken out only to be added again.
static MOVING: AtomicBool = AtomicBool::new(false);

/// Adds the sentinel to `root`, and keeps it the last child added; when it leaves, the shutdown
/// begins and `then` runs (dropping what only the running game would have run). Main thread only.
pub(crate) fn install_sentinel(mut root: Gd<Window>, then: fn()) {
    let mut sentinel = Node::new_alloc();
    sentinel.set_name("ThreadKitShutdownSentinel");
    let leaving = Callable::from_linked_fn("ThreadKit.begin_shutdown", &sentinel, move |_| {
        if !MOVING.load(Ordering::Relaxed) {
            begin();
            then();
        }
    });
    sentinel.connect("tree_exiting", &leaving);
    root.add_child_ex(&sentinel)
        .internal(InternalMode::BACK)
        .done();
    let (root_id, sentinel_id) = (root.instance_id(), sentinel.instance_id());
    let move_last =
        Callable::from_linked_fn("ThreadKit.keep_sentinel_last", &sentinel, move |_| {
            let root = Gd::<Window>::try_from_instance_id(root_id);
            let sentinel = Gd::<Node>::try_from_instance_id(sentinel_id);
            if let (Ok(mut root), Ok(sentinel)) = (root, sentinel)
                && sentinel
                    .get_parent()
                    .is_some_and(|parent| parent == root.clone().upcast())
            {
                MOVING.store(true, Ordering::Relaxed);
                root.remove_child(&sentinel);
                root.add_child_ex(&sentinel)
                    .internal(InternalMode::BACK)
                    .done();
                MOVING.store(false, Ordering::Relaxed);
            }
        });
    let entered =
        Callable::from_linked_fn("ThreadKit.child_entered_root", &sentinel, move |args| {
            // Deferred: the root is busy adding the child now.
            if args
                .first()
                .and_then(|child| child.try_to::<Gd<Node>>().ok())
                .is_some_and(|child| child.instance_id() != sentinel_id)
            {
                move_last.call_deferred(&[]);
            }
        });
    root.connect("child_entered_tree", &entered);
}

/// Ends the waits: blocking calls onto the main thread return null, queue pushes and pops return
/// at once. Main thread only; later calls do nothing more. The caller then drops the main
/// thread's queue, which will not drain again.
pub(crate) fn begin() {
    if SHUTDOWN.is_fired() {
        return;
    }
    SHUTDOWN.fire();
}

pub(crate) fn is_shutting_down() -> bool {
    SHUTDOWN.is_fired()
}

/// Runs `wait` with the interrupts a blocking call on this thread must end on: the shutdown and,
/// inside a task, the task's cancellation (so a stopping processor never waits on its own task's
/// blocking call).
pub(crate) fn interruptible<T>(wait: impl FnOnce(&[&Interrupt]) -> T) -> T {
    match threadkit_core::current_task() {
        Some(task) => wait(&[&SHUTDOWN, task.cancel_interrupt()]),
        None => wait(&[&SHUTDOWN]),
    }
}
