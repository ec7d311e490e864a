use std::collections::HashMap;

use godot::prelude::*;
use parking_lot::RwLock;

use crate::lookup::{live_object, object_argument};

const CLASS: &str = "ThreadSafeNodeManager";

/// A registry of nodes by name that any thread may query and change at once.
///
/// Register nodes on any thread, then find them by name from anywhere:
/// [codeblock]
/// # An autoload named Nodes, say:
/// Nodes.register_node("player", $Player)
///
/// # On a worker thread:
/// var player = Nodes.get_managed_node("player")
/// if player:
///     MainThreadDispatcher.safe_set(player, &"health", new_health)  # Set on the main thread.
/// [/codeblock]
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
#[derive(GodotClass)]
#[class(init, base = Node)]
pub struct ThreadSafeNodeManager {
    /// Name -> node. Only ids are stored, so no Godot object crosses threads through the map;
    /// each lookup revalidates the id on the thread that asks.
    nodes: RwLock<HashMap<String, InstanceId>>,
}

#[godot_api]
impl ThreadSafeNodeManager {
    /// Registers [param node] as [param name] and returns [code]true[/code]. Registering the same
    /// node under the same name again also returns [code]true[/code]; a name whose node was freed
    /// is simply taken over. Returns [code]false[/code] with an error for an empty name, a
    /// [code]null[/code] or freed node (or anything but a [Node]), or a name that another live
    /// node holds (unregister it first).
    ///
    /// [param node] is typed [Variant] so that a freed node reaches this check (a typed parameter
    /// would fail before it).
    #[func]
    pub fn register_node(&self, name: GString, node: Variant) -> bool {
        let method = "register_node";
        if name.is_empty() {
            godot_error!(
                "{CLASS}.{method}: the name is empty; pass the name threads will look the node up by."
            );
            return false;
        }
        let node = match object_argument::<Node>(&node) {
            Ok(node) => node,
            Err(why) => {
                godot_error!("{CLASS}.{method}: the node for \"{name}\" {why}; pass a live Node.");
                return false;
            }
        };
        let id = node.instance_id();
        let holder = {
            let mut nodes = self.nodes.write();
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
        godot_error!(
            "{CLASS}.{method}: \"{name}\" is already registered to another live node (instance #{holder}); call unregister_node(\"{name}\") first, or pick another name."
        );
        false
    }

    /// Forgets [param name]; returns whether it was registered (even to a node that was freed
    /// since). Unknown names return [code]false[/code] without an error.
    #[func]
    pub fn unregister_node(&self, name: GString) -> bool {
        self.nodes.write().remove(&name.to_string()).is_some()
    }

    /// The node registered as [param name], or [code]null[/code] if the name is unknown (a normal
    /// answer, not an error) or its node was freed. Typed [Variant], as
    /// [method SafeObjectReference.get_object] is; assign it to a [Node] variable.
    #[func]
    pub fn get_managed_node(&self, name: GString) -> Variant {
        self.id_of(&name).map_or_else(Variant::nil, live_object)
    }

    /// Whether [param name] is registered to a node that still exists. A hint: the main thread may
    /// free the node right after this returns.
    #[func]
    pub fn has_managed_node(&self, name: GString) -> bool {
        self.id_of(&name).is_some_and(InstanceId::lookup_validity)
    }

    /// The names whose nodes still exist, sorted.
    #[func]
    pub fn get_registered_names(&self) -> PackedStringArray {
        let mut names: Vec<String> = self
            .nodes
            .read()
            .iter()
            .filter(|(_, id)| id.lookup_validity())
            .map(|(name, _)| name.clone())
            .collect();
        names.sort_unstable();
        names.iter().map(GString::from).collect()
    }

    /// Forgets every name whose node was freed and returns how many there were.
    #[func]
    pub fn cleanup_invalid_references(&self) -> i64 {
        let mut nodes = self.nodes.write();
        let before = nodes.len();
        nodes.retain(|_, id| id.lookup_validity());
        (before - nodes.len()) as i64
    }
}

impl ThreadSafeNodeManager {
    fn id_of(&self, name: &GString) -> Option<InstanceId> {
        self.nodes.read().get(&name.to_string()).copied()
    }
}
