use std::collections::HashMap;
use std::sync::LazyLock;

use godot::prelude::*;
use parking_lot::RwLock;

use crate::describe;
use crate::lookup::{live_object, object_argument};
use crate::problem::Problem;

const CLASS: &str = "ThreadSafeNodeManager";

/// A registry of nodes by name that any thread may query and change at once.
///
/// Register nodes on any thread, then find them by name from anywhere:
/// ```gdscript
/// # An autoload named Nodes, say:
/// Nodes.register_node("player", $Player)
///
/// # On a worker thread:
/// var player = Nodes.get_managed_node("player")
/// if player:
///     MainThreadDispatcher.safe_set(player, &"health", new_health)  # Set on the main thread.
/// ```
/// It holds each node's instance id, not the node: it does not keep nodes alive, and a freed
/// node's name answers [code]null[/code] ([method get_managed_node]), [code]false[/code]
/// ([method has_managed_node]) and is left out of [method get_registered_names] at once, without
/// any cleanup. [method cleanup_invalid_references] then forgets such names for good; a name whose
/// node was freed can also be registered again directly.
///
/// The manager only hands out the node. Godot's thread rules still apply to it: a node inside the
/// scene tree may only be read or changed on the main thread, so from other threads use
/// [method MainThreadDispatcher.safe_call], [method MainThreadDispatcher.safe_set] or
/// [method MainThreadDispatcher.dispatch]. And the main thread may free a node at any moment,
/// also right after (or while) a thread looks it up, so [method has_managed_node] is a hint; see
/// [SafeObjectReference] for the details, which are the same here.
///
/// Lookups share a read lock and run in parallel; registering and unregistering take it briefly
/// for writing. A node may be registered under several names.
///
/// The manager itself may be freed while other threads query it: their calls never hold on to
/// it, and those that run after the free find nothing ([code]null[/code], [code]false[/code],
/// an empty list). Freeing it on the main thread while a thread is about to call it is still
/// the race Godot has for every node, so stop the threads' queries, or check
/// [method @GlobalScope.is_instance_valid], before a manager they use goes away.
#[derive(GodotClass)]
#[class(base = Node)]
pub struct ThreadSafeNodeManager {
    /// This manager's key in [`REGISTRIES`], the same for the object's whole life.
    id: InstanceId,
}

/// Manager -> name -> node, for every manager. Kept outside the objects so that the methods
/// reach it from the manager's instance id alone, with no bind of the node: the main thread may
/// free a manager (a Node) at any moment, and gdext aborts the process if that meets an active
/// bind. Only ids are stored, so no Godot object crosses threads through it; each lookup
/// revalidates the node's id on the thread that asks.
static REGISTRIES: LazyLock<RwLock<HashMap<InstanceId, HashMap<String, InstanceId>>>> =
    LazyLock::new(RwLock::default);

#[godot_api]
impl INode for ThreadSafeNodeManager {
    fn init(base: Base<Node>) -> Self {
        Self {
            id: base.to_init_gd().instance_id(),
        }
    }
}

impl Drop for ThreadSafeNodeManager {
    /// Forgets the freed manager's names; queries still running finish on what they read.
    fn drop(&mut self) {
        REGISTRIES.write().remove(&self.id);
    }
}

#[godot_api]
impl ThreadSafeNodeManager {
    /// Registers [param node] as [param name] and returns [code]true[/code]. Registering the same
    /// node under the same name again also returns [code]true[/code]; a name whose node was freed
    /// is simply taken over. Returns [code]false[/code] with an error for an empty name or one
    /// that is not a String or StringName, a [code]null[/code] or freed node (or anything but a
    /// [Node]), or a name that another live node holds (unregister it first).
    ///
    /// [param name] and [param node] are typed [Variant] so that a wrong value reaches this check,
    /// which names it by type and size (a typed parameter would fail before it, in a message that
    /// prints the whole value), and a freed node gets its own message.
    #[func(gd_self)]
    pub fn register_node(this: Gd<Self>, name: Variant, node: Variant) -> bool {
        let method = "register_node";
        let Some(name) = name_of(method, &name) else {
            return false;
        };
        if name.is_empty() {
            Problem::new(CLASS, method, "the name is empty")
                .fix("pass the name threads will look the node up by.")
                .report();
            return false;
        }
        let id = match object_argument::<Node>(&node) {
            Ok(id) => id,
            Err(why) => {
                Problem::new(
                    CLASS,
                    method,
                    format!("the node for {} {why}", describe::text(&name)),
                )
                .fix("pass a live Node.")
                .report();
                return false;
            }
        };
        let holder = {
            let mut registries = REGISTRIES.write();
            let nodes = registries.entry(this.instance_id_unchecked()).or_default();
            let key = name.to_string();
            match nodes.get(&key) {
                Some(&held) if held != id && held.lookup_validity() => Some(held),
                _ => {
                    nodes.insert(key, id);
                    None
                }
            }
        };
        let Some(holder) = holder else {
            return true;
        };
        let name = describe::text(&name);
        Problem::new(
            CLASS,
            method,
            format!("{name} is already registered to another live node (instance #{holder})"),
        )
        .fix(format!(
            "call unregister_node({name}) first, or pick another name."
        ))
        .report();
        false
    }

    /// Forgets [param name]; returns whether it was registered (even to a node that was freed
    /// since). Unknown names return [code]false[/code] without an error; a [param name] that is
    /// not a String or StringName, with one.
    #[func(gd_self)]
    pub fn unregister_node(this: Gd<Self>, name: Variant) -> bool {
        let Some(name) = name_of("unregister_node", &name) else {
            return false;
        };
        REGISTRIES
            .write()
            .get_mut(&this.instance_id_unchecked())
            .is_some_and(|nodes| nodes.remove(&name.to_string()).is_some())
    }

    /// The node registered as [param name], or [code]null[/code] if the name is unknown (a normal
    /// answer, not an error) or its node was freed. Typed [Variant], as
    /// [method SafeObjectReference.get_object] is; assign it to a [Node] variable. A
    /// [param name] that is not a String or StringName is reported with an error.
    #[func(gd_self)]
    pub fn get_managed_node(this: Gd<Self>, name: Variant) -> Variant {
        name_of("get_managed_node", &name)
            .and_then(|name| Self::id_of(&this, &name))
            .map_or_else(Variant::nil, live_object)
    }

    /// Whether [param name] is registered to a node that still exists. A hint: the main thread may
    /// free the node right after this returns.
    #[func(gd_self)]
    pub fn has_managed_node(this: Gd<Self>, name: Variant) -> bool {
        name_of("has_managed_node", &name)
            .and_then(|name| Self::id_of(&this, &name))
            .is_some_and(InstanceId::lookup_validity)
    }

    /// The names whose nodes still exist, sorted.
    #[func(gd_self)]
    pub fn get_registered_names(this: Gd<Self>) -> PackedStringArray {
        let mut names: Vec<String> = REGISTRIES
            .read()
            .get(&this.instance_id_unchecked())
            .into_iter()
            .flatten()
            .filter(|(_, id)| id.lookup_validity())
            .map(|(name, _)| name.clone())
            .collect();
        names.sort_unstable();
        names.iter().map(GString::from).collect()
    }

    /// Forgets every name whose node was freed and returns how many there were.
    #[func(gd_self)]
    pub fn cleanup_invalid_references(this: Gd<Self>) -> i64 {
        let mut registries = REGISTRIES.write();
        let Some(nodes) = registries.get_mut(&this.instance_id_unchecked()) else {
            return 0;
        };
        let before = nodes.len();
        nodes.retain(|_, id| id.lookup_validity());
        (before - nodes.len()) as i64
    }
}

/// The name a `#[func]` was given, as a String; `None` after an error for any other value.
fn name_of(method: &str, name: &Variant) -> Option<GString> {
    match name.get_type() {
        VariantType::STRING | VariantType::STRING_NAME => name.try_to_relaxed::<GString>().ok(),
        _ => {
            Problem::new(
                CLASS,
                method,
                format!("the name is {}, not a String", describe::value(name)),
            )
            .fix("pass the node's name as a String or StringName.")
            .report();
            None
        }
    }
}

impl ThreadSafeNodeManager {
    /// `this`'s id is read from the `Gd` itself, never from the (maybe freed) object.
    fn id_of(this: &Gd<Self>, name: &GString) -> Option<InstanceId> {
        REGISTRIES
            .read()
            .get(&this.instance_id_unchecked())?
            .get(&name.to_string())
            .copied()
    }
}
