//! `TaskHandle.bind_to(node)`: the node's metadata holds a small RefCounted listing the tasks
//! bound to it. Godot releases an object's metadata when it frees the object, on whichever thread
//! frees it, so that list's destructor is where the tasks get cancelled: no polling, nothing to
//! connect, and the cancel is as thread-safe as `TaskHandle.cancel`. `Node.duplicate()` copies
//! metadata, so a copy of a bound node holds the same list: each list records the node it was
//! made for, and on any other node it counts as no list (the copy gets its own at its first
//! binding, letting go of the original's).

use std::sync::{Arc, Weak};

use godot::classes::{IRefCounted, Node};
use godot::prelude::*;
use parking_lot::Mutex;

use super::{CLASS, Link, orphan_all};
use crate::lookup::{live, object_argument};
use crate::main_queue;
use crate::problem::Problem;

/// The metadata entry of a node that has tasks bound to it (hidden from the inspector: it starts
/// with an underscore).
const META: &str = "_threadkit_bound_tasks";

/// The tasks bound to one node; cancels those still unfinished when the node frees it.
#[derive(GodotClass)]
#[class(no_init, internal, base = RefCounted)]
pub struct BoundTasks {
    links: Mutex<Vec<Weak<Link>>>,
    /// The node whose metadata it was made for.
    node: InstanceId,
    base: Base<RefCounted>,
}

#[godot_api]
impl IRefCounted for BoundTasks {}

impl Drop for BoundTasks {
    fn drop(&mut self) {
        let links: Vec<Arc<Link>> = std::mem::take(&mut *self.links.lock())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        orphan_all(&links);
    }
}

/// Binds `link` to the node `node` holds, now on the main thread, else at the dispatcher's next
/// drain; reports a value that is no live node.
pub(super) fn bind(link: &Arc<Link>, node: &Variant) {
    let id = match object_argument::<Node>(node) {
        Ok(id) => id,
        Err(why) => {
            Problem::new(
                CLASS,
                "bind_to",
                format!("the node {why}, so the task was not bound"),
            )
            .fix("pass a live Node (the one whose freeing should cancel the task).")
            .report();
            return;
        }
    };
    let link = Arc::downgrade(link);
    let attach = move || match live::<Node>(id) {
        Ok(node) => attach(node, link),
        // Freed before the main thread got to it: what the binding was for.
        Err(_) => {
            if let Some(link) = link.upgrade() {
                link.orphan();
            }
        }
    };
    if godot::init::is_main_thread() {
        attach();
    } else {
        main_queue::run_on_main(Box::new(attach));
    }
}

/// Adds `link` to `node`'s list, made on first use. Main thread only.
fn attach(mut node: Gd<Node>, link: Weak<Link>) {
    let bound = match list_of(&node) {
        Some(bound) => bound,
        None => {
            let bound = Gd::from_init_fn(|base| BoundTasks {
                links: Mutex::new(Vec::new()),
                node: node.instance_id(),
                base,
            });
            node.set_meta(META, &bound.to_variant());
            bound
        }
    };
    let bound = bound.bind();
    let mut links = bound.links.lock();
    // Forget what was delivered, so that a long-lived node binding task after task keeps a
    // short list (a task that ended but whose callback is still to come stays: see `orphan`).
    links.retain(|link| link.upgrade().is_some_and(|link| link.is_live()));
    links.push(link);
}

/// The unfinished tasks bound to `node`. Main thread only.
pub(crate) fn bound_to(node: &Gd<Node>) -> Vec<Arc<Link>> {
    let Some(bound) = list_of(node) else {
        return Vec::new();
    };
    bound
        .bind()
        .links
        .lock()
        .iter()
        .filter_map(Weak::upgrade)
        .filter(|link| !link.task().status().is_finished())
        .collect()
}

/// `node`'s list, if a task was ever bound to it (not one `Node.duplicate()` copied from
/// another node).
fn list_of(node: &Gd<Node>) -> Option<Gd<BoundTasks>> {
    // Asked first: `get_meta` of a missing entry logs an error.
    if !node.has_meta(META) {
        return None;
    }
    let bound = node.get_meta(META).try_to::<Gd<BoundTasks>>().ok()?;
    let own = bound.bind().node == node.instance_id();
    own.then_some(bound)
}
