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

use godot::classes::ClassDb;
use godot::meta::ClassId;
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

/// What a Variant that should hold an object holds.
pub(crate) enum Held {
    /// A live object, by id.
    Object(InstanceId),
    Null,
    /// An object that was freed.
    Freed,
    /// A value of another type.
    Other(VariantType),
}

/// What `value` holds, found without gdext's `Gd`: converting to one re-checks the object's
/// liveness after reading it, and that check panics ("access to instance ... after it has been
/// freed") when another thread frees the object in between, the race every thread that is handed
/// a node has with the main thread. Here only the id the Variant stores is read and looked up, as
/// Godot's `is_instance_valid()` does: the object itself is never touched.
pub(crate) fn held_object(value: &Variant) -> Held {
    match value.get_type() {
        VariantType::NIL => Held::Null,
        VariantType::OBJECT => match value.object_id_unchecked() {
            None => Held::Null,
            Some(id) if id.lookup_validity() => Held::Object(id),
            Some(_) => Held::Freed,
        },
        other => Held::Other(other),
    }
}

/// The pointer that `value`, a Variant of type OBJECT, carries, copied out without following it.
fn object_pointer(value: &Variant) -> sys::GDExtensionObjectPtr {
    let mut object: sys::GDExtensionObjectPtr = ptr::null_mut();
    // SAFETY: a valid Variant holding an object, and the address of an object pointer to fill.
    unsafe {
        sys::builtin_fn!(object_from_variant)(
            ptr::addr_of_mut!(object) as sys::GDExtensionUninitializedTypePtr,
            sys::SysPtr::force_mut(value.var_sys()),
        )
    };
    object
}

/// The class of the object `id` (as [method Object.get_class] gives it: the engine or extension
/// class, never user code), or `None` if it was freed.
///
/// Read through the extension interface rather than by calling `get_class`: a method called on an
/// object through Godot's `call` locks it for its duration (in debug builds), and the main thread
/// freeing it at that moment would fail ("Object is locked and can't be freed").
pub(crate) fn class_of(id: InstanceId) -> Option<StringName> {
    let object = live_object(id);
    if object.is_nil() {
        return None;
    }
    let object = object_pointer(&object);
    // `object` is alive: `live_object` just found it (and holds a reference to a RefCounted).
    // `object_get_class_name` always writes the name, as `new_with_string_uninit` requires.
    // SAFETY: a live object, this library's token and a name slot that is always written.
    let class = unsafe {
        StringName::new_with_string_uninit(|name| {
            sys::interface_fn!(object_get_class_name)(
                object.cast_const(),
                sys::get_library(),
                name,
            );
        })
    };
    Some(class)
}

/// Why an object parameter was refused; its `Display` completes "the object ...".
pub(crate) enum Refusal {
    Null,
    Freed,
    NotAnObject(VariantType),
    WrongClass {
        class: StringName,
        expected: ClassId,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Null => write!(f, "is null"),
            Self::Freed => write!(f, "was freed"),
            Self::NotAnObject(kind) => write!(f, "is of type {kind:?}, not an object"),
            Self::WrongClass { class, expected } => write!(f, "is a {class}, not a {expected}"),
        }
    }
}

/// The `T` that `id` names, looked up as [`live_object`] does: `Err(Freed)` once it was freed
/// (or when it is no `T`: check the class first where that can be).
pub(crate) fn live<T: Inherits<Object>>(id: InstanceId) -> Result<Gd<T>, Refusal> {
    live_object(id)
        .try_to::<Gd<T>>()
        .map_err(|_| Refusal::Freed)
}

/// The id of the live `T` that `value` holds, or why not.
///
/// For `#[func]` parameters that may receive a freed object: gdext converts a typed `Gd`
/// parameter before our code runs, and a freed object there becomes its own panic or error (or,
/// through a ptrcall, a read of freed memory), never our message. A Variant parameter is checked
/// here by id instead (see [`held_object`]).
pub(crate) fn object_argument<T: Inherits<Object>>(value: &Variant) -> Result<InstanceId, Refusal> {
    let id = match held_object(value) {
        Held::Object(id) => id,
        Held::Null => return Err(Refusal::Null),
        Held::Freed => return Err(Refusal::Freed),
        Held::Other(kind) => return Err(Refusal::NotAnObject(kind)),
    };
    check_class::<T>(id)
}

/// `id` if its object is a `T`; for a class check done apart from the lookup. Asks ClassDB, not
/// the object, for the reason given at [`class_of`].
pub(crate) fn check_class<T: Inherits<Object>>(id: InstanceId) -> Result<InstanceId, Refusal> {
    let expected = T::class_id();
    if expected == Object::class_id() {
        return Ok(id);
    }
    let class = class_of(id).ok_or(Refusal::Freed)?;
    if ClassDb::singleton().is_parent_class(&class, &expected.to_string_name()) {
        Ok(id)
    } else {
        Err(Refusal::WrongClass { class, expected })
    }
}
