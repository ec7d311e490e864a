//! Newtypes that carry Godot values to another thread.
//!
//! `Variant` and `Callable` are not `Send` because most Godot values may not be touched from two
//! threads at once. These wrappers mark the places where we *move* one to exactly one other
//! thread, which is sound for the reasons given on each.

use godot::prelude::*;

use crate::call::static_name;

/// A Variant moved to another thread (a task's result, on its way to the main thread).
///
/// Sound because the value is moved, never shared: the sending thread keeps no handle to it.
/// Godot's reference counts (strings, arrays, dictionaries, RefCounted objects) are atomic, so the
/// receiving thread may clone or drop it, and containers are deep-copied by `detach` before they
/// are sent, so no other thread can mutate them while the receiver reads them.
pub struct SendVariant(pub Variant);

// SAFETY: moved to exactly one thread, with containers deep-copied first (see the type's doc).
unsafe impl Send for SendVariant {}

impl SendVariant {
    /// Wraps `value`, deep-copying Arrays and Dictionaries so the receiver owns its own copy.
    pub fn detach(value: Variant) -> Self {
        Self(deep_copy(value))
    }

    /// The Variant (a method, so a closure captures the whole wrapper, not just its field).
    pub fn into_inner(self) -> Variant {
        self.0
    }

    /// A copy for one consumer. A stored result is never handed out itself: consumers on
    /// different threads (the main thread's callback, a worker waiting for the task) each get
    /// their own Arrays and Dictionaries, so one mutating its copy cannot race another reading.
    /// Copying only reads the stored value, and concurrent reads are safe.
    pub fn copy(&self) -> Variant {
        deep_copy(self.0.clone())
    }
}

/// A Callable that several workers call at once (a group task's body).
///
/// Sound for the same reason `WorkerThreadPool.add_group_task` may call one Callable from many
/// threads: calling reads the Callable (its target and method) and never changes it, and its
/// reference count is atomic. What the called code does with shared data is the caller's
/// responsibility, as with that built-in.
pub struct SharedCallable(pub Callable);

// SAFETY: only ever called (a read) from several threads, never mutated (see the type's doc).
unsafe impl Send for SharedCallable {}
// SAFETY: as above: shared references are used only to call it.
unsafe impl Sync for SharedCallable {}

impl SharedCallable {
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
pub struct SendCallable(pub Callable);

// SAFETY: moved to exactly one thread, which alone calls or drops it (see the type's doc).
unsafe impl Send for SendCallable {}

impl SendCallable {
    /// The Callable (a method, so a closure captures the whole wrapper, not just its field).
    pub fn into_inner(self) -> Callable {
        self.0
    }
}

/// A Variant kept in a structure that several threads use (a SharedResource value).
///
/// Sound because it is only replaced under the structure's write lock and otherwise only read:
/// cloned (atomic reference counts), compared, or deep-copied for a caller. It was deep-copied
/// on the way in, so no caller holds a reference to its Arrays or Dictionaries, and callers only
/// ever get copies, so nothing mutates it outside the lock.
pub struct SharedVariant(Variant);

// SAFETY: moved in under the write lock, which alone replaces or drops it (see the type's doc).
unsafe impl Send for SharedVariant {}
// SAFETY: shared references only read it: clone, compare or copy (see the type's doc).
unsafe impl Sync for SharedVariant {}

impl SharedVariant {
    /// Stores a copy of `value`, so the caller's Arrays and Dictionaries stay the caller's.
    pub fn store(value: Variant) -> Self {
        Self(deep_copy(value))
    }

    /// A copy for a caller, sharing no Array or Dictionary with the stored value.
    pub fn copy(&self) -> Variant {
        deep_copy(self.0.clone())
    }

    /// The stored value, to compare or inspect without copying.
    pub fn get(&self) -> &Variant {
        &self.0
    }
}

/// A copy of `value` that shares no Array or Dictionary with anyone else.
pub fn deep_copy(value: Variant) -> Variant {
    match value.get_type() {
        // Through Variant's own `duplicate`, which keeps a typed array's element type.
        VariantType::ARRAY | VariantType::DICTIONARY => {
            value.call(static_name!(c"duplicate"), &[true.to_variant()])
        }
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
