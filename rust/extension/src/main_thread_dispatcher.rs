use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use godot::classes::node::{InternalMode, ProcessMode};
use godot::classes::{Engine, INode, Node, Node2D, SceneTree};
use godot::prelude::*;
use parking_lot::Mutex;
use threadkit_core::dispatch::Overflow;
use threadkit_core::oneshot::{CallError, oneshot};

use crate::call::try_call;
use crate::describe;
use crate::lookup::{Refusal, check_class, live, object_argument};
use crate::main_queue::{self, MainJob};
use crate::problem::{self, Problem};
use crate::send::{Optional, SendCallable, SendVariant};
use crate::thread_context::ThreadContext;

// The queue's Rust API, also under the name of the class that drains it.
use crate::main_queue::{QUEUE, drain};

/// How long a push waits for room under [constant MainThreadDispatcher.OVERFLOW_BLOCK].
const BLOCK_TIMEOUT: Duration = Duration::from_millis(1000);

/// MainThreadDispatcher nodes a user put in the tree; while there is one, the built-in one
/// leaves the draining to it, and tells whether any of them drains.
static USER_NODE_IDS: Mutex<Vec<InstanceId>> = Mutex::new(Vec::new());

/// Why the user's dispatcher nodes cannot drain now ([`Stall`] as a number), as the built-in
/// node found at its last frame: a blocking call then fails at once instead of timing out.
static STALL: AtomicU8 = AtomicU8::new(Stall::None as u8);

#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Stall {
    None = 0,
    /// The tree is paused and every user node pauses with it.
    Paused = 1,
    /// Every user node has process_mode DISABLED (itself or inherited).
    Disabled = 2,
}

impl Stall {
    fn now() -> Stall {
        match STALL.load(Ordering::Relaxed) {
            1 => Stall::Paused,
            2 => Stall::Disabled,
            _ => Stall::None,
        }
    }

    /// Why a blocking call cannot be served, and what to do; `None` when it can.
    fn explain(self) -> Option<&'static str> {
        match self {
            Stall::None => None,
            Stall::Paused => Some(
                "the MainThreadDispatcher node in the scene cannot drain while the tree is paused (its process_mode pauses with the tree); set its process_mode to PROCESS_MODE_ALWAYS, or remove it to let ThreadKit's own dispatcher drain",
            ),
            Stall::Disabled => Some(
                "the MainThreadDispatcher node in the scene cannot drain: its process_mode is disabled; enable it, or remove it to let ThreadKit's own dispatcher drain",
            ),
        }
    }
}

const CLASS: &str = "MainThreadDispatcher";

/// Runs work from any thread on the main thread, a frame budget at a time.
///
/// Scene tree, UI and most engine objects may only be touched from the main thread. From a
/// worker or a [Thread], queue that work here; the main thread runs it during its next frame:
/// ```gdscript
/// # On any thread:
/// MainThreadDispatcher.dispatch(func(): $Label.text = "loaded %d items" % count)
/// var pos: Vector2 = MainThreadDispatcher.call_blocking(func(): return $Player.position)
/// MainThreadDispatcher.safe_add_child(self, enemy)  # Skipped if either was freed meanwhile.
/// ```
/// Compared with [method Object.call_deferred]: each drain stops at the queue length it started
/// with, at the frame budget ([method set_frame_budget_usec], 2 ms by default) or at
/// [method set_max_per_frame], so a flood of work spreads over frames instead of stalling one and
/// work queued during a drain waits for the next frame; the queue has no fixed size cap (and an
/// optional one with a policy, [method set_capacity]); [method call_blocking] returns a value.
/// Order is first-in first-out for each thread.
///
/// Nothing to set up: ThreadKit adds an internal dispatcher node to the scene tree's root when
/// the game starts (also with [code]-s script.gd[/code]), which drains every frame, even while the
/// tree is paused. Add a MainThreadDispatcher node to a scene to drain at its place in the frame
/// (its [member Node.process_priority]) and to follow its [member Node.process_mode] (a
/// pausable one holds the work back during a pause); while one is in the tree the internal one
/// stands by.
/// In the editor nothing drains by itself: call [method process_queue].
///
/// The queue's length appears in the debugger's Monitors tab as
/// [code]ThreadKit/dispatcher_queue_depth[/code].
#[derive(GodotClass)]
#[class(init, base = Node)]
pub struct MainThreadDispatcher {
    /// The node ThreadKit installs itself (as opposed to one a user added).
    internal: bool,
    base: Base<Node>,
}

#[godot_api]
impl INode for MainThreadDispatcher {
    fn enter_tree(&mut self) {
        if !self.internal {
            USER_NODE_IDS.lock().push(self.base().instance_id());
        }
    }

    fn exit_tree(&mut self) {
        if !self.internal {
            let id = self.base().instance_id();
            USER_NODE_IDS.lock().retain(|node| *node != id);
        }
    }

    // Not `&mut self`: the work it runs may free this node, or call into it.
    #[func(gd_self)]
    fn process(this: Gd<Self>, _delta: f64) {
        if this.bind().internal {
            // Every frame, paused or not, whichever node drains.
            crate::thread_switch::tick();
            // The built-in node processes even while paused: it is the one that can tell.
            let stall = user_nodes_stall();
            STALL.store(stall.unwrap_or(Stall::None) as u8, Ordering::Relaxed);
            if stall.is_some() {
                return; // A user node drains (or holds the work back on purpose).
            }
        }
        drain(None);
    }
}

#[godot_api]
impl MainThreadDispatcher {
    /// [method set_overflow_policy]: refuse new work while the queue is full.
    #[constant]
    pub const OVERFLOW_REJECT: i64 = 0;
    /// [method set_overflow_policy]: wait up to 1 s for room (on the main thread: refuse, since it
    /// cannot make room while it waits).
    #[constant]
    pub const OVERFLOW_BLOCK: i64 = 1;
    /// [method set_overflow_policy]: drop the oldest queued work to make room.
    #[constant]
    pub const OVERFLOW_DROP_OLDEST: i64 = 2;

    /// Queues [param callable] (taking no arguments) to run on the main thread at the next drain.
    /// Returns [code]false[/code] with an error for a null or invalid callable or a full bounded
    /// queue.
    ///
    /// A callable whose object is freed before it runs is skipped and counted as dropped
    /// ([method get_stats]), without an error. A lambda's object is the script it was written
    /// in, not the nodes it uses, so tie it to the node it works on with [param owner]: it is
    /// skipped and counted as dropped, silently, if [param owner] was freed before it runs.
    /// ```gdscript
    /// MainThreadDispatcher.dispatch(func(): label.text = "done", label)
    /// ```
    /// A callable or [param owner] already freed when this is called (another thread freed it)
    /// is dropped and counted the same way, and this returns [code]false[/code]. [param owner]
    /// is typed [Variant] so that a freed object reaches this check (a typed parameter would fail
    /// before it).
    #[func]
    pub fn dispatch(
        callable: Callable,
        #[opt(default = Optional::null())] owner: Optional<Variant>,
    ) -> bool {
        let method = "dispatch";
        if !callable.is_valid() {
            if callable.object_id().is_some_and(|id| !id.lookup_validity()) {
                QUEUE.record_dropped(1);
            } else {
                Problem::new(
                    CLASS,
                    method,
                    "the Callable is invalid (null, or the method does not exist); pass a valid Callable such as func(): update_ui().",
                )
                .report();
            }
            return false;
        }
        let callable = SendCallable::new(callable);
        let Optional(owner) = owner;
        if owner.is_nil() {
            return push(method, MainJob::Call(callable));
        }
        match live_or_dropped(object_parameter::<Object>(
            method,
            "owner",
            &owner,
            NOTHING_QUEUED,
        )) {
            Some(owner) => push(method, MainJob::Owned(callable, owner)),
            None => false,
        }
    }

    /// Runs [param callable] on the main thread and returns its result. On the main thread it runs
    /// at once; elsewhere it waits (without spinning) until the main thread ran it. If the main
    /// thread has not started it within [param timeout_ms] (-1: no limit; another negative value is
    /// an error), it returns [code]null[/code] with an error, and the call will not run later. A
    /// call that started is always waited for. Arrays, Dictionaries and Packed\*Arrays come back as
    /// copies. It returns [code]null[/code] at once, without an error, once the game quits (so a
    /// Thread joined in [method Node._exit_tree] never hangs on it) and, inside an
    /// [AsyncTaskProcessor] task, when the task is cancelled (so freeing the processor never waits
    /// on it). While a MainThreadDispatcher node of the scene is the one draining and it cannot
    /// (paused with the tree, or disabled), it returns [code]null[/code] at once with an error that
    /// says so.
    #[func]
    pub fn call_blocking(callable: Callable, #[opt(default = 1000)] timeout_ms: i64) -> Variant {
        let method = "call_blocking";
        if !callable.is_valid() {
            Problem::new(
                CLASS,
                method,
                "the Callable is invalid (null, or its object was freed, or the method does not exist); pass a valid Callable such as func(): return $Player.position.",
            )
            .report();
            return Variant::nil();
        }
        if problem::timeout_ms(CLASS, method, timeout_ms, Ok(())).is_err() {
            return Variant::nil();
        }
        if ThreadContext::is_main_thread() {
            return try_call(&callable, &[]).unwrap_or_else(|message| {
                Problem::new(CLASS, method, format!("the call failed: {message}")).report();
                Variant::nil()
            });
        }
        let callable = SendCallable::new(callable);
        let result = block_on_main(method, timeout_ms, move || {
            let callable = callable.into_inner();
            if !callable.is_valid() {
                return None;
            }
            match try_call(&callable, &[]) {
                Ok(value) => Some(SendVariant::detach(value)),
                Err(message) => {
                    Problem::new(CLASS, method, format!("the call failed: {message}")).report();
                    None
                }
            }
        });
        result.map_or_else(Variant::nil, SendVariant::into_inner)
    }

    /// Moves the rest of the calling coroutine to the main thread:
    /// ```gdscript
    /// var mesh := build_mesh()  # On a worker, after await processor.switch_to_worker().
    /// await MainThreadDispatcher.switch_to_main_thread()
    /// $MeshInstance3D.mesh = mesh  # On the main thread.
    /// ```
    /// Returns a [Signal] that the main thread emits at its next drain (also while the tree is
    /// paused: ThreadKit's own dispatcher node processes then), where the coroutine resumes. On
    /// the main thread it returns [code]null[/code], which [code]await[/code] passes through at
    /// once. Only [code]await[/code] it right away: a Signal nobody awaited is reported with an
    /// error. From a [Thread] of your own, the main thread emits it at the first frame that finds
    /// the [code]await[/code] connected (within 2 s, else the error); do not switch there a
    /// coroutine that this Thread resumed by emitting a signal itself (Godot is still finishing
    /// that resumption when the await connects). Inside a task it reports an error and returns
    /// [code]null[/code]: a task may not await. Work the coroutine does after
    /// a switch to the main thread runs on it like any main-thread code (it may touch the scene
    /// tree), within the dispatcher's frame budget only as one item: keep it short or switch back
    /// with [method AsyncTaskProcessor.switch_to_worker].
    #[func]
    pub fn switch_to_main_thread() -> Variant {
        if godot::init::is_main_thread() {
            return Variant::nil();
        }
        crate::thread_switch::request(
            (CLASS, "switch_to_main_thread"),
            crate::thread_switch::Target::Main,
        )
    }

    /// Runs queued work now, within the frame budget and the per-frame maximum; returns how many
    /// items ran. Main thread only (elsewhere: an error and 0). The built-in node calls it every
    /// frame; call it yourself in the editor or from a custom main loop. It also launches the
    /// thread switches requested on the main thread since ([method switch_to_main_thread],
    /// [method AsyncTaskProcessor.switch_to_worker]).
    #[func]
    pub fn process_queue() -> i64 {
        if !ThreadContext::is_main_thread() {
            Problem::new(
                CLASS,
                "process_queue",
                format!(
                    "called from {}; it runs the queued work and must be called on the main thread.",
                    ThreadContext::thread_name(),
                ),
            )
            .report();
            return 0;
        }
        crate::thread_switch::tick();
        drain(None) as i64
    }

    /// How many items wait for the main thread.
    #[func]
    pub fn pending_count() -> i64 {
        QUEUE.len() as i64
    }

    /// Counters: dispatched, executed, dropped (by the overflow policy, or skipped because their
    /// object was freed), rejected, pending, max_depth, last_drain_usec, drains_over_budget, plus
    /// the settings frame_budget_usec, max_per_frame and capacity.
    #[func]
    pub fn get_stats() -> VarDictionary {
        let stats = QUEUE.stats();
        let mut dict = VarDictionary::new();
        dict.set("dispatched", stats.dispatched as i64);
        dict.set("executed", stats.executed as i64);
        dict.set("dropped", stats.dropped as i64);
        dict.set("rejected", stats.rejected as i64);
        dict.set("pending", stats.pending as i64);
        dict.set("max_depth", stats.max_depth as i64);
        dict.set("last_drain_usec", stats.last_drain_usec as i64);
        dict.set("drains_over_budget", stats.drains_over_budget as i64);
        dict.set(
            "frame_budget_usec",
            QUEUE.budget().map_or(0, |b| b.as_micros() as i64),
        );
        dict.set("max_per_frame", QUEUE.max_per_drain().unwrap_or(0) as i64);
        dict.set("capacity", QUEUE.capacity() as i64);
        dict
    }

    /// The time one frame's drain may take, in microseconds; 0 means no limit. Default 2000
    /// (2 ms). At least one item runs per drain, so a drain overshoots by at most one item.
    #[func]
    pub fn set_frame_budget_usec(usec: i64) {
        match u64::try_from(usec) {
            Ok(0) => QUEUE.set_budget(None),
            Ok(usec) => QUEUE.set_budget(Some(Duration::from_micros(usec))),
            Err(_) => Problem::new(
                CLASS,
                "set_frame_budget_usec",
                format!("{usec} is negative; pass microseconds, or 0 for no limit."),
            )
            .report(),
        }
    }

    /// The most items one frame's drain runs; 0 (the default) means no limit.
    #[func]
    pub fn set_max_per_frame(count: i64) {
        match usize::try_from(count) {
            Ok(0) => QUEUE.set_max_per_drain(None),
            Ok(count) => QUEUE.set_max_per_drain(Some(count)),
            Err(_) => Problem::new(
                CLASS,
                "set_max_per_frame",
                format!("{count} is negative; pass a count, or 0 for no limit."),
            )
            .report(),
        }
    }

    /// The most items the queue holds; 0 (the default) means unbounded. What happens to work
    /// queued beyond it is [method set_overflow_policy]'s choice.
    #[func]
    pub fn set_capacity(count: i64) {
        match usize::try_from(count) {
            Ok(count) => QUEUE.set_capacity(count),
            Err(_) => Problem::new(
                CLASS,
                "set_capacity",
                format!("{count} is negative; pass a count, or 0 for unbounded."),
            )
            .report(),
        }
    }

    /// What a full bounded queue does with new work: [constant OVERFLOW_REJECT] (the default),
    /// [constant OVERFLOW_BLOCK] or [constant OVERFLOW_DROP_OLDEST].
    #[func]
    pub fn set_overflow_policy(policy: i64) {
        let overflow = match policy {
            Self::OVERFLOW_REJECT => Overflow::Reject,
            Self::OVERFLOW_BLOCK => Overflow::Block(BLOCK_TIMEOUT),
            Self::OVERFLOW_DROP_OLDEST => Overflow::DropOldest,
            other => {
                Problem::new(
                    CLASS,
                    "set_overflow_policy",
                    format!(
                        "{other} is not OVERFLOW_REJECT (0), OVERFLOW_BLOCK (1) or OVERFLOW_DROP_OLDEST (2)."
                    ),
                )
                .report();
                return;
            }
        };
        QUEUE.set_overflow(overflow);
    }

    /// Prints [param message] on the main thread, prefixed with the calling thread's name
    /// ([method ThreadContext.get_thread_name]), so output from threads never interleaves.
    #[func]
    pub fn safe_print(message: GString) {
        let line = format!("[{}] {message}", ThreadContext::thread_name());
        push("safe_print", Box::new(move || godot_print!("{line}")));
    }

    /// Adds [param child] to [param parent] on the main thread; skipped (and counted as dropped)
    /// if either was freed, before this call or before it runs, without an error. A child whose
    /// parent was freed, and that has no other parent, is freed too, rather than leaked.
    ///
    /// Both must be [Node]s; otherwise it reports an error and queues nothing (off the main
    /// thread, a non-Node object is reported when the call runs, see [method safe_set]). They are
    /// typed [Variant] so that a freed node reaches this check (a typed parameter would fail
    /// before it).
    #[func]
    pub fn safe_add_child(parent: Variant, child: Variant) {
        let method = "safe_add_child";
        // Both checked, so one call reports every bad argument.
        let parent = object_parameter::<Node>(method, "parent", &parent, NOTHING_QUEUED);
        let child = object_parameter::<Node>(method, "child", &child, NOTHING_QUEUED);
        let (parent, child) = match (parent, child) {
            (Param::Refused, _) | (_, Param::Refused) => return,
            (_, Param::Freed) => return QUEUE.record_dropped(1),
            // Queued all the same: the child may have to be freed rather than leaked.
            (Param::Live(parent), Param::Live(child)) => (Some(parent), child),
            (Param::Freed, Param::Live(child)) => (None, child),
        };
        push(
            method,
            Box::new(move || {
                let Ok(mut child) = revive::<Node>(method, "child", child) else {
                    return QUEUE.record_dropped(1);
                };
                let parent = parent.map_or(Err(Refusal::Freed), |parent| {
                    revive::<Node>(method, "parent", parent)
                });
                match parent {
                    Ok(mut parent) => parent.add_child(&child),
                    Err(Refusal::Freed) if child.get_parent().is_none() => {
                        // Handed over to be added, and now nothing owns it: free it, not leak it.
                        child.queue_free();
                        QUEUE.record_dropped(1);
                    }
                    Err(_) => QUEUE.record_dropped(1),
                }
            }),
        );
    }

    /// Sets [param property] of [param object] to [param value] on the main thread; skipped (and
    /// counted as dropped, [method get_stats]) if the object was freed, before this call or
    /// before it runs, without an error: another thread freeing it is a race to expect, not a
    /// mistake. Arrays, Dictionaries and Packed\*Arrays are copied when queued, so later changes by
    /// the calling thread do not race the main thread.
    ///
    /// [param object] must be an [Object] (a [Node], a [Resource], ...); null or another value
    /// is reported with an error and queues nothing. It is typed [Variant] so that a freed object
    /// reaches this check (a typed parameter would fail before it).
    ///
    /// An object that is not a [RefCounted] must be freed on the main thread (or with
    /// [method safe_queue_free]): freed by another thread [i]while[/i] the main thread runs its
    /// call, it would be used as it is destroyed, the race Godot's own
    /// [method Object.call_deferred] has.
    #[func]
    pub fn safe_set(object: Variant, property: StringName, value: Variant) {
        let method = "safe_set";
        let Some(object) = live_or_dropped(object_parameter::<Object>(
            method,
            "object",
            &object,
            NOTHING_QUEUED,
        )) else {
            return;
        };
        let property = property.to_string();
        let value = SendVariant::detach(value);
        push(
            method,
            Box::new(move || match revive::<Object>(method, "object", object) {
                Ok(mut object) => object.set(&property, &value.into_inner()),
                Err(_) => QUEUE.record_dropped(1),
            }),
        );
    }

    /// Calls [param method] of [param object] with [param args] on the main thread; skipped (and
    /// counted as dropped) if the object was freed, before this call or before it runs, without
    /// an error (as [method safe_set]). The arguments are copied when queued. An object that
    /// has no such method is reported when the call runs.
    ///
    /// [param object] must be an [Object] (a [Node], a [Resource], ...); null or another value
    /// is reported with an error and queues nothing. It is typed [Variant] so that a freed object
    /// reaches this check (a typed parameter would fail before it).
    #[func]
    pub fn safe_call(
        object: Variant,
        method: StringName,
        #[opt(default = Optional::<VarArray>::empty())] args: Optional<VarArray>,
    ) {
        let Some(object) = live_or_dropped(object_parameter::<Object>(
            "safe_call",
            "object",
            &object,
            NOTHING_QUEUED,
        )) else {
            return;
        };
        let name = method.to_string();
        let args = SendVariant::detach(args.0.to_variant());
        push(
            "safe_call",
            Box::new(
                move || match revive::<Object>("safe_call", "object", object) {
                    Ok(mut target) if target.has_method(&name) => {
                        target.callv(&name, &args.into_inner().to::<VarArray>());
                    }
                    // Freed by another thread right now: dropped like any call on a freed object.
                    _ if !object.lookup_validity() => QUEUE.record_dropped(1),
                    Ok(target) => Problem::new(
                        CLASS,
                        "safe_call",
                        format!(
                            "{} object #{object} has no method {}; check the method name.",
                            target.get_class(),
                            describe::text(&GString::from(&name))
                        ),
                    )
                    .report(),
                    Err(_) => QUEUE.record_dropped(1),
                },
            ),
        );
    }

    /// Calls [method Node.queue_free] on [param node] on the main thread; skipped (and counted as
    /// dropped) if it was freed, before this call or before it runs, without an error.
    ///
    /// [param node] must be a [Node]; otherwise it reports an error and queues nothing (see
    /// [method safe_add_child]). It is typed [Variant] so that a freed node reaches this check (a
    /// typed parameter would fail before it).
    #[func]
    pub fn safe_queue_free(node: Variant) {
        let method = "safe_queue_free";
        let Some(node) = live_or_dropped(object_parameter::<Node>(
            method,
            "node",
            &node,
            NOTHING_QUEUED,
        )) else {
            return;
        };
        push(
            method,
            Box::new(move || match revive::<Node>(method, "node", node) {
                Ok(mut node) => node.queue_free(),
                Err(_) => QUEUE.record_dropped(1),
            }),
        );
    }

    /// [member Node2D.position] of [param node], read on the main thread (blocking, like
    /// [method call_blocking] with its default timeout). [code]Vector2.ZERO[/code] if the node
    /// was freed, before this call or before the main thread got to it (counted as dropped,
    /// without an error), and with an error if the main thread did not get to it in time.
    ///
    /// [param node] must be a [Node2D]; otherwise it reports an error and returns
    /// [code]Vector2.ZERO[/code] (at once on the main thread). It is typed [Variant] so that a
    /// freed node reaches this check (a typed parameter would fail before it).
    #[func]
    pub fn safe_get_node_position(node: Variant) -> Vector2 {
        let method = "safe_get_node_position";
        let outcome = "the position is Vector2.ZERO";
        let Some(id) = live_or_dropped(object_parameter::<Node2D>(method, "node", &node, outcome))
        else {
            return Vector2::ZERO;
        };
        if ThreadContext::is_main_thread() {
            return revive::<Node2D>(method, "node", id)
                .map_or(Vector2::ZERO, |node| node.get_position());
        }
        block_on_main(method, 1000, move || {
            revive::<Node2D>(method, "node", id)
                .ok()
                .map(|node| node.get_position())
        })
        .unwrap_or(Vector2::ZERO)
    }
}

/// Queues `job`; on the main thread a full queue never waits (the main thread could not make
/// room while it waits), elsewhere the overflow policy applies. Reports a refusal.
fn push(method: &str, job: impl Into<MainJob>) -> bool {
    if crate::shutdown::is_shutting_down() {
        // Dropped here and now, while the scripts it holds still live: the main thread does not
        // drain again, and dropping it later, at unload, would free them twice.
        return false;
    }
    let job = job.into();
    // gdext's check (a thread-id compare) rather than ThreadContext's two engine calls: this is
    // the hot path, and both name the same thread, the one that loaded the extension.
    let pushed = if godot::init::is_main_thread() {
        QUEUE.try_push(job)
    } else {
        QUEUE.push(job)
    };
    match pushed {
        Ok(()) => true,
        Err(error) => {
            Problem::new(
                CLASS,
                method,
                format!(
                    "{error} (capacity {}); raise it with set_capacity(), pick another set_overflow_policy(), or queue less per frame.",
                    QUEUE.capacity(),
                ),
            )
            .report();
            false
        }
    }
}

/// `None` without user dispatcher nodes; else whether they can drain: [`Stall::None`] as soon as
/// one can.
fn user_nodes_stall() -> Option<Stall> {
    let nodes = USER_NODE_IDS.lock();
    let mut stall = (!nodes.is_empty()).then_some(Stall::None);
    for id in nodes.iter() {
        let Ok(node) = live::<Node>(*id) else {
            continue;
        };
        if node.can_process() {
            return Some(Stall::None);
        }
        // In the tree (they leave the list when they leave it) and not processing.
        let paused =
            node.get_tree().is_paused() && node.get_process_mode() != ProcessMode::DISABLED;
        stall = Some(if paused {
            Stall::Paused
        } else {
            Stall::Disabled
        });
    }
    stall
}

/// Runs `work` on the main thread and waits for its value (from another thread). `None` when
/// it timed out, was dropped, or `work` had nothing to return (counted as dropped); at once,
/// silently, when the game quits or the calling task is cancelled, and with an error when the
/// scene's dispatcher node cannot drain.
fn block_on_main<T: Send + 'static>(
    method: &'static str,
    timeout_ms: i64,
    work: impl FnOnce() -> Option<T> + Send + 'static,
) -> Option<T> {
    if let Some(why) = Stall::now().explain() {
        Problem::new(CLASS, method, format!("{why}. The call did not run.")).report();
        return None;
    }
    let (runner, caller) = oneshot::<T>();
    let job = Box::new(move || {
        if !runner.claim() {
            return; // The caller gave up: a call that timed out never runs.
        }
        match work() {
            Some(value) => runner.complete(value),
            None => QUEUE.record_dropped(1),
        }
    });
    if !push(method, job) {
        return None;
    }
    // Checked by the callers; a bad value reaching here would wait without limit.
    let timeout = problem::limit(timeout_ms);
    let waited =
        crate::shutdown::interruptible(|interrupts| caller.wait_interruptible(timeout, interrupts));
    match waited {
        Ok(value) => Some(value),
        // The game quits, or the task this runs in was cancelled: an end, not a mistake.
        Err(CallError::Interrupted) => None,
        Err(_) if crate::shutdown::is_shutting_down() => None,
        Err(CallError::TimedOut) => {
            match Stall::now().explain() {
                Some(why) => {
                    Problem::new(CLASS, method, format!("{why}. The call did not run.")).report();
                }
                None => {
                    Problem::new(
                        CLASS,
                        method,
                        format!(
                            "the main thread did not get to the call within {timeout_ms} ms (it is busy or blocked); the call will not run. Raise timeout_ms, or use dispatch() when you do not need a result."
                        ),
                    )
                    .report();
                }
            }
            None
        }
        Err(CallError::Dropped) => {
            Problem::new(
                CLASS,
                method,
                "the call did not run: its object was freed, it failed, or the queue dropped it (OVERFLOW_DROP_OLDEST).",
            )
            .report();
            None
        }
    }
}

/// The `T` whose id is `id`, looked up on the main thread, where it is used: `Err(Freed)` if it
/// was freed; `Err(WrongClass)`, after an error naming the `#[func]` parameter `name` of `method`,
/// for a call queued off the main thread, where the class was not checked. Looked up as
/// `live_object` does it, not with `Gd::try_from_instance_id`, which panics when another thread is
/// destroying a RefCounted at this moment; such an object counts as freed. The Variant holds a
/// reference to a RefCounted, so it stays alive while it is used.
fn revive<T: Inherits<Object>>(method: &str, name: &str, id: InstanceId) -> Result<Gd<T>, Refusal> {
    let checked = check_class::<T>(id).and_then(live::<T>);
    if let Err(why @ Refusal::WrongClass { .. }) = &checked {
        Problem::new(
            CLASS,
            method,
            format!(
                "the {name} {why}, so the call was dropped; pass a live {}.",
                T::class_id()
            ),
        )
        .report();
    }
    checked
}

/// What a helper does instead when an object parameter is refused.
const NOTHING_QUEUED: &str = "nothing was queued";

/// What an object parameter of a helper held.
enum Param {
    /// A live object (a `T`, when checked on the main thread), by id.
    Live(InstanceId),
    /// A freed object: the call is dropped, counted by the caller.
    Freed,
    /// Anything else, reported already.
    Refused,
}

/// The id of a live object parameter; `None` for a refused one, and for a freed one, whose call is
/// counted as dropped.
fn live_or_dropped(param: Param) -> Option<InstanceId> {
    match param {
        Param::Live(id) => Some(id),
        Param::Freed => {
            QUEUE.record_dropped(1);
            None
        }
        Param::Refused => None,
    }
}

/// What the `#[func]` parameter `name` holds; after an error saying what it held instead and
/// what `method` did about it (`outcome`), `Refused`. A freed object is no mistake: another thread
/// may free it at any instant. For the same reason the class is checked only on the main thread:
/// elsewhere a node the main thread is destroying already reads as a plain Object, so the class is
/// checked when the call runs (see `revive`).
fn object_parameter<T: Inherits<Object>>(
    method: &str,
    name: &str,
    value: &Variant,
    outcome: &str,
) -> Param {
    let checked = object_argument::<Object>(value).and_then(|id| {
        if godot::init::is_main_thread() {
            check_class::<T>(id)
        } else {
            Ok(id)
        }
    });
    match checked {
        Ok(id) => Param::Live(id),
        Err(Refusal::Freed) => Param::Freed,
        Err(why) => {
            Problem::new(
                CLASS,
                method,
                format!(
                    "the {name} {why}, so {outcome}; pass a live {}.",
                    T::class_id()
                ),
            )
            .report();
            Param::Refused
        }
    }
}

/// Adds the built-in dispatcher node to the scene tree's root, once the main loop runs. Called
/// deferred from extension start-up; without a SceneTree (a custom MainLoop, or the editor),
/// users drain with `process_queue()`.
pub(crate) fn install() {
    if Engine::singleton().is_editor_hint() {
        return;
    }
    let Some(tree) = Engine::singleton()
        .get_main_loop()
        .and_then(|main_loop| main_loop.try_cast::<SceneTree>().ok())
    else {
        return;
    };
    let Some(mut root) = tree.get_root() else {
        return;
    };
    let mut node = MainThreadDispatcher::new_alloc();
    node.bind_mut().internal = true;
    node.set_name("ThreadKitMainThreadDispatcher");
    node.set_process_mode(ProcessMode::ALWAYS);
    root.add_child_ex(&node).internal(InternalMode::BACK).done();
    crate::shutdown::install_sentinel(root, main_queue::discard_queue);
}
