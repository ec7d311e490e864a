//! Objects that may be freed at any moment by another thread: looking one up by `InstanceId`, the
//! way Godot itself does, and checking one passed as a parameter.
//!
//! Lookups do not go through gdext's `Gd`: `Gd::try_from_instance_id` asserts that taking a reference to a
//! RefCounted succeeds, which fails (a panic) while another thread destroys it (its count already
//! reached 0, but it is still in Godot's ObjectDB); and returning a `Gd` to Godot asserts that the
//! object is alive, a panic whenever the main thread frees a node between the lookup and the
//! return. Godot's own lookups (`instance_from_id()`, `WeakRef.get_ref()`) build a Variant
//! instead: null for a RefCounted being destroyed, and otherwise holding a reference to a
//! RefCounted (so it stays alive while used) and the object's id (so later uses of a freed node
//! are caught by id).

use std::ptr;

use godot::prelude::*;
use godot::sys;

/// The object `id` names, or nil if it was freed; a RefCounted comes with a reference.
pub(crate) fn live_object(id: InstanceId) -> Variant {
    // SAFETY: a plain ObjectDB lookup (under Godot's lock) that returns the object or null.
    let object = unsafe { sys::interface_fn!(object_get_instance_from_id)(id.to_i64() as u64) };
    if object.is_null() {
        return Variant::nil();
    }
    // `object` was registered a moment ago (a node freed right now is the race that
    // SafeObjectReference's docs describe). The constructor is Godot's `Variant(Object *)`, which
    // always writes the slot, as `new_with_var_uninit` requires.
    // SAFETY: a valid `Object **` for the Variant-from-object constructor and a slot it fills.
    let variant = unsafe {
        Variant::new_with_var_uninit(|variant_ptr| {
            sys::builtin_fn!(object_to_variant)(
                variant_ptr,
                ptr::addr_of!(object) as sys::GDExtensionTypePtr,
            )
        })
    };
    // A RefCounted being destroyed comes back as a null object; make it a plain null.
    if variant.is_nil() {
        Variant::nil()
    } else {
        variant
    }
}

/// `value` as a live `T`, or what it held instead ("is null", "was freed", ...).
///
/// For `#[func]` parameters that may receive a freed object: gdext converts a typed `Gd`
/// parameter before our code runs, and a freed object there becomes its own panic or error (or,
/// through a ptrcall, a read of freed memory), never our message. A Variant parameter is checked
/// here by id instead.
pub(crate) fn object_argument<T: Inherits<Object>>(value: &Variant) -> Result<Gd<T>, String> {
    match value.get_type() {
        VariantType::NIL => Err("is null".into()),
        // For an object Variant, the only failure is a dead object (checked by id).
        VariantType::OBJECT => match value.try_to::<Gd<Object>>() {
            Ok(object) => object
                .try_cast::<T>()
                .map_err(|object| format!("is a {}, not a {}", object.get_class(), T::class_id())),
            Err(_) => Err("was freed".into()),
        },
        other => Err(format!("is of type {other:?}, not an object")),
    }
}
