//! Newtypes that carry Godot values to another thread.
//!
//! `Variant` and `Callable` are not `Send` because most Godot values may not be touched from two
//! threads at once. These wrappers mark the places where we *move* one to exactly one other
//! thread, which is sound for the reasons given on each.

use godot::prelude::*;

use crate::call::static_name;

/// A Variant moved to another thread (a task's result, a queued value, a blocking call's result).
///
/// Sound because the value is moved, never shared: the sending thread keeps no handle to it.
/// Godot's reference counts (strings, arrays, dictionaries, packed arrays, RefCounted objects)
/// are atomic, so the receiving thread may clone or drop it, and containers (Arrays,
/// Dictionaries, Packed*Arrays, nested ones included) are copied by `detach` before they are
/// sent, so no other thread can mutate them while the receiver reads them. The field is private
/// so that every way in goes through that copy.
pub struct SendVariant(Variant);

// SAFETY: moved to exactly one thread, with containers deep-copied first (see the type's doc).
unsafe impl Send for SendVariant {}

impl SendVariant {
    /// Wraps a copy of `value` (see [`deep_copy`]), so the receiver owns its own containers.
    pub fn detach(value: Variant) -> Self {
        Self(deep_copy(value))
    }

    /// The Variant (a method, so a closure captures the whole wrapper, not just its field).
    pub fn into_inner(self) -> Variant {
        self.0
    }

    /// A copy for one consumer. A stored result is never handed out itself: consumers on
    /// different threads (the main thread's callback, a worker waiting for the task) each get
    /// their own containers, so one mutating its copy cannot race another reading.
    /// Copying only reads the stored value, and concurrent reads are safe.
    pub fn copy(&self) -> Variant {
        deep_copy(self.0.clone())
    }
}

/// An Array of values that were each detached already (a group's results), built without
/// copying them again: the new Array and its elements belong to this value alone.
impl FromIterator<SendVariant> for SendVariant {
    fn from_iter<I: IntoIterator<Item = SendVariant>>(values: I) -> Self {
        Self(
            values
                .into_iter()
                .map(Self::into_inner)
                .collect::<VarArray>()
                .to_variant(),
        )
    }
}

/// A Callable that several workers call at once (a group task's body).
///
/// Sound for the same reason `WorkerThreadPool.add_group_task` may call one Callable from many
/// threads: calling reads the Callable (its target and method) and never changes it, and its
/// reference count is atomic. What the called code does with shared data is the caller's
/// responsibility, as with that built-in.
pub struct SharedCallable(Callable);

// SAFETY: only ever called (a read) from several threads, never mutated (see the type's doc).
unsafe impl Send for SharedCallable {}
// SAFETY: as above: shared references are used only to call it.
unsafe impl Sync for SharedCallable {}

impl SharedCallable {
    /// Wraps `callable` for its workers.
    pub fn new(callable: Callable) -> Self {
        Self(callable)
    }

    /// The Callable (a method, so a closure captures the whole wrapper, not just its field).
    pub fn get(&self) -> &Callable {
        &self.0
    }
}

/// A Callable moved to the thread that will call it (a task, to its worker).
///
/// Sound because the Callable is moved to one thread and called only there (or dropped). Godot
/// allows calling methods and lambdas from any thread (it is how `Thread.start` and
/// `WorkerThreadPool` run them); what the called code does with shared data is the caller's
/// responsibility, as with those built-ins. Its refcount is atomic, so dropping it there is fine.
pub struct SendCallable(Callable);

// SAFETY: moved to exactly one thread, which alone calls or drops it (see the type's doc).
unsafe impl Send for SendCallable {}

impl SendCallable {
    /// Wraps `callable` for the thread that will call it.
    pub fn new(callable: Callable) -> Self {
        Self(callable)
    }

    /// The Callable (a method, so a closure captures the whole wrapper, not just its field).
    pub fn into_inner(self) -> Callable {
        self.0
    }
}

/// A Variant kept in a structure that several threads use (a SharedResource value).
///
/// Sound because it is only replaced under the structure's write lock and otherwise only read:
/// cloned (atomic reference counts), compared, or deep-copied for a caller. It was deep-copied
/// on the way in, so no caller holds a reference to its Arrays, Dictionaries or Packed*Arrays,
/// and callers only ever get copies, so nothing mutates it outside the lock.
pub struct SharedVariant(Variant);

// SAFETY: moved in under the write lock, which alone replaces or drops it (see the type's doc).
unsafe impl Send for SharedVariant {}
// SAFETY: shared references only read it: clone, compare or copy (see the type's doc).
unsafe impl Sync for SharedVariant {}

impl SharedVariant {
    /// Stores a copy of `value`, so the caller's containers stay the caller's.
    pub fn store(value: Variant) -> Self {
        Self(deep_copy(value))
    }

    /// A copy for a caller, sharing no container with the stored value.
    pub fn copy(&self) -> Variant {
        deep_copy(self.0.clone())
    }

    /// The stored value, to compare or inspect without copying.
    pub fn get(&self) -> &Variant {
        &self.0
    }
}

/// A copy of `value` that shares no Array, Dictionary or Packed*Array with anyone else, nested
/// ones included; everything else is a value already, or an Object, which stays shared by design.
///
/// Godot 4 shares all three by reference between Variants. Each is copied through its own
/// `duplicate` method, which keeps a typed Array's or Dictionary's element types; a deep
/// `duplicate` of an Array or Dictionary copies the Packed*Arrays inside it too (the round-trip
/// tests check that). A packed array's copy shares the element buffer copy-on-write, with an
/// atomic count, so sending a large one costs nothing until one side changes it, and that side
/// then copies it for itself.
pub fn deep_copy(value: Variant) -> Variant {
    let duplicate = static_name!(c"duplicate");
    match value.get_type() {
        VariantType::ARRAY | VariantType::DICTIONARY => value.call(duplicate, &[true.to_variant()]),
        kind if crate::describe::is_packed_array(kind) => value.call(duplicate, &[]),
        _ => value,
    }
}

/// A parameter that may be left out, for the types gdext cannot give a default to directly
/// (`#[opt(default)]` needs an immutable type): GDScript sees the inner type, with the default
/// registered by the constructor named on each implementation below.
#[derive(Clone, Debug)]
pub struct Optional<T>(pub T);

impl<T: GodotConvert<Via = T> + godot::meta::GodotType> GodotConvert for Optional<T> {
    type Via = T;

    fn godot_shape() -> godot::meta::shape::GodotShape {
        T::godot_shape()
    }
}

impl<T> ToGodot for Optional<T>
where
    T: GodotConvert<Via = T> + godot::meta::GodotType + Clone,
{
    // By value (as for `i64`, whose passing mode names it; godot::meta does not export it):
    // `#[opt(default)]` requires it, and cloning these is only a reference-count increment.
    type Pass = <i64 as ToGodot>::Pass;

    fn to_godot(&self) -> Self::Via {
        self.0.clone()
    }
}

impl<T: GodotConvert<Via = T> + godot::meta::GodotType> FromGodot for Optional<T> {
    fn try_from_godot(via: T) -> Result<Self, godot::meta::error::ConvertError> {
        Ok(Self(via))
    }
}

// A Callable is an immutable value: no method changes one in place (`bind`, `unbind` and friends
// return new Callables), and its reference count is atomic. The only default registered is null.
// SAFETY: so clones of the default may be made and used from any thread, as the trait requires.
unsafe impl godot::meta::GodotImmutable for Optional<Callable> {}

impl Optional<Callable> {
    /// The default: the null Callable.
    pub fn none() -> Self {
        Self(Callable::invalid())
    }
}

// The only default registered is a read-only empty Array, which no one can change.
// SAFETY: so clones of the default may be made and used from any thread, as the trait requires.
unsafe impl godot::meta::GodotImmutable for Optional<VarArray> {}

impl Optional<VarArray> {
    /// The default: a read-only empty Array.
    pub fn empty() -> Self {
        Self(VarArray::new().into_read_only())
    }
}

// The only default registered is null, which holds nothing that could change.
// SAFETY: so clones of the default may be made and used from any thread, as the trait requires.
unsafe impl godot::meta::GodotImmutable for Optional<Variant> {}

impl Optional<Variant> {
    /// The default: null.
    pub fn null() -> Self {
        Self(Variant::nil())
    }
}
