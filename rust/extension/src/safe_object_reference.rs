use godot::classes::IRefCounted;
use godot::prelude::*;

use crate::lookup::{Refusal, class_of, live_object, object_argument};
use crate::problem::Problem;

/// A weak reference to an object that any thread may hold and look up.
///
/// It stores only the object's instance id, never a pointer: [method get_object] looks the
/// object up again each time, on the thread that asks, and returns [code]null[/code] once it was
/// freed. It does not keep the object alive.
/// ```gdscript
/// var target := SafeObjectReference.create(enemy)
/// var settings_ref := SafeObjectReference.create(settings)  # A Resource.
///
/// # On a worker thread:
/// var settings: Resource = settings_ref.get_object()  # Stays alive while held.
/// if settings == null:
///     return
/// var damage := compute_damage(settings)
/// # Node work goes to the main thread, which looks the node up itself.
/// MainThreadDispatcher.dispatch(func():
///     var node = target.get_object()
///     if node:
///         node.take_hit(damage))
/// MainThreadDispatcher.safe_print("hit #%d" % target.get_id())  # The id outlives the object.
/// ```
/// What a thread may do with the object it gets follows Godot's rules, which this class does not
/// lift.
///
/// [b]Nodes in the scene tree:[/b] only the main thread may read or change them. From another
/// thread, hand the work over with [method MainThreadDispatcher.safe_call],
/// [method MainThreadDispatcher.safe_set], [method MainThreadDispatcher.dispatch] or
/// [method Object.call_deferred].
///
/// [b]Nodes and other objects that are not [RefCounted]:[/b] the main thread can free them at any
/// moment after [method get_object] returns, so [method is_valid] is a hint, not a guarantee.
/// Nothing can pin such an object: as with Godot's own [method @GlobalScope.instance_from_id] and
/// [method WeakRef.get_ref], a lookup on a thread races a free happening at that very instant.
/// When the main thread may free it, look it up on the main thread, as in the example.
///
/// [b][RefCounted] objects[/b] (a [Resource], your own classes) stay alive as long as you hold
/// what [method get_object] returned, even if every other reference is dropped meanwhile.
///
/// [b]Your own data:[/b] reading and writing the same objects and resources from several threads
/// at once is yours to synchronise (a [Mutex], or an [AtomicCounter] for counts).
///
/// Compared with [method @GlobalScope.weakref]: both are weak, lock-free and usable from any
/// thread (a [WeakRef] stores only an id, too). This one adds [method get_id], the id that
/// outlives the object (for logs, or maps keyed by id); [method is_valid], which checks without
/// taking a reference; a string form that still names the class after the object was freed; an
/// error and an empty reference for [code]null[/code] (where [code]weakref(null)[/code] returns
/// [code]null[/code]); and thread behaviour that is documented here and tested.
///
/// A reference never changes after it was created, so every method is safe from any thread
/// without a lock.
#[derive(GodotClass)]
#[class(init, base = RefCounted)]
pub struct SafeObjectReference {
    /// The object's id, `None` for an empty reference. Written before the reference exists and
    /// never again (there is no setter, as with WeakRef), so plain reads are race-free.
    id: Option<InstanceId>,
    /// The object's class, kept so `to_string` never has to touch the object.
    class: String,
}

#[godot_api]
impl IRefCounted for SafeObjectReference {
    fn to_string(&self) -> GString {
        let text = match self.id {
            None => "SafeObjectReference(empty)".to_string(),
            Some(id) if id.lookup_validity() => format!("SafeObjectReference({}#{id})", self.class),
            Some(id) => format!("SafeObjectReference(freed {}#{id})", self.class),
        };
        GString::from(&text)
    }
}

#[godot_api]
impl SafeObjectReference {
    /// A reference to [param object]. An object already freed (another thread may free it at
    /// any moment) gives an empty reference, without an error, as one freed right after would:
    /// never valid, [method get_object] returns [code]null[/code]. For [code]null[/code] or a
    /// value that is not an object it reports an error and returns an empty reference too, so the
    /// caller does not crash on a missing object. [code]SafeObjectReference.new()[/code] makes an
    /// empty one.
    ///
    /// [param object] is typed [Variant] so that a freed object reaches this check (a typed
    /// parameter would fail before it). Any thread may call it on any object, also while the main
    /// thread frees it.
    #[func]
    pub fn create(object: Variant) -> Gd<Self> {
        let found = object_argument::<Object>(&object).and_then(|id| {
            class_of(id)
                .map(|class| (id, class.to_string()))
                .ok_or(Refusal::Freed)
        });
        match found {
            Ok((id, class)) => Gd::from_object(Self {
                id: Some(id),
                class,
            }),
            Err(Refusal::Freed) => Self::new_gd(),
            Err(why) => {
                Problem::new(
                    "SafeObjectReference",
                    "create",
                    format!("the object {why}, so the reference is empty"),
                )
                .fix("pass a live object, e.g. SafeObjectReference.create(self).")
                .report();
                Self::new_gd()
            }
        }
    }

    /// The object, or [code]null[/code] if it was freed (or the reference is empty). A
    /// [RefCounted] is returned with a reference, so it stays alive while you hold it. See the
    /// class description for what a non-main thread may do with it.
    ///
    /// Typed [Variant], as [method WeakRef.get_ref] is: assign it to a typed variable
    /// ([code]var node: Node = ref.get_object()[/code]) to check its class.
    #[func]
    pub fn get_object(&self) -> Variant {
        self.id.map_or_else(Variant::nil, live_object)
    }

    /// Whether the object still exists. A hint: another thread may free it right after this
    /// returns, so check the result of [method get_object] rather than relying on this.
    #[func]
    pub fn is_valid(&self) -> bool {
        self.id.is_some_and(InstanceId::lookup_validity)
    }

    /// The object's instance id, as [method Object.get_instance_id] gives it; 0 for an empty
    /// reference. It stays the same after the object was freed, so it can name the object in
    /// logs.
    #[func]
    pub fn get_id(&self) -> i64 {
        self.id.map_or(0, InstanceId::to_i64)
    }
}
