use std::sync::Arc;

use godot::prelude::*;
use threadkit_core::{Reentrant, SharedMap};

use crate::coroutine;
use crate::describe;
use crate::kept_call::{self, Failure};
use crate::problem::Problem;
use crate::script_errors::Nesting;
use crate::send::{Optional, SharedVariant, deep_copy};

const CLASS: &str = "SharedResource";

/// A key of the store: GDScript's String and StringName keys are the same key (as in a
/// Dictionary), ints are their own.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Text(String),
    Int(i64),
}

impl Key {
    fn from_variant(key: &Variant) -> Option<Self> {
        match key.get_type() {
            VariantType::STRING | VariantType::STRING_NAME => Some(Self::Text(key.to_string())),
            VariantType::INT => Some(Self::Int(key.to::<i64>())),
            _ => None,
        }
    }

    fn to_variant(&self) -> Variant {
        match self {
            Self::Text(text) => text.to_variant(),
            Self::Int(int) => int.to_variant(),
        }
    }
}

/// A key → value store that any number of threads can read and write at once.
///
/// GDScript's Dictionary is not safe to change while another thread uses it, and guarding one
/// with a [Mutex] lets only one thread in at a time, readers included. Here readers share a
/// reader-writer lock, so they run in parallel, and each write takes it alone for one short step.
/// - Values are copied in and out: Arrays, Dictionaries and Packed\*Arrays you pass in or get back
///   (nested ones included) are your own copies, so no thread can change the stored data outside
///   the lock. A Packed\*Array's copy shares its buffer until either side changes it, so large
///   ones cost nothing to store or read. (Objects are shared by reference, as always in Godot;
///   only their reference is stored.)
/// - Several keys change together with [method batch_update] (readers see all of it or none), and
///   a read-modify-write is atomic with [method update_value] or [method compare_and_set].
/// - Keys are Strings (a StringName is the same key) or ints.
/// - [method get_version] counts the changes, so a reader can tell cheaply whether anything
///   changed; [method get_access_statistics] counts reads and writes per key.
///
/// ```gdscript
/// var world := SharedResource.new()
/// world.batch_update({"gold": 100, "wood": 5})
/// # On any thread:
/// var total = world.update_value("gold", func(old): return old + 10)  # 110, atomically.
/// ```
/// The Callable given to [method update_value] runs while every other change waits: it may read
/// this SharedResource (other threads read on meanwhile and see the old value until the new one
/// is stored), but it must not change it (that would wait for itself; it is refused with an
/// error instead), and it should be quick, because writers on other threads wait for it. It may
/// drop the last reference to this SharedResource: the store is freed once [method update_value]
/// returns.
#[derive(GodotClass)]
#[class(base = RefCounted, init)]
pub struct SharedResource {
    /// Shared with the changing calls, which may wait for an update_value Callable: they hold it
    /// (and a reference to the object) rather than a bind of the object, so the object is never
    /// freed while bound. Reads never wait for caller code, so they are quick `&self` calls.
    map: Arc<SharedMap<Key, SharedVariant>>,
}

#[godot_api]
impl IRefCounted for SharedResource {
    fn to_string(&self) -> GString {
        let size = self.map.len();
        GString::from(&format!(
            "SharedResource(size={size}, version={})",
            self.map.version()
        ))
    }
}

#[godot_api]
impl SharedResource {
    /// A copy of the value stored under [param key], or [param default] when there is none.
    #[func]
    pub fn read_value(
        &self,
        key: Variant,
        #[opt(default = Optional::null())] default: Optional<Variant>,
    ) -> Variant {
        let Optional(default) = default;
        let Some(key) = Self::key("read_value", &key) else {
            return default;
        };
        self.map.get(&key, SharedVariant::copy).unwrap_or(default)
    }

    /// Stores a copy of [param value] under [param key].
    #[func(gd_self)]
    pub fn write_value(this: Gd<Self>, key: Variant, value: Variant) {
        let map = Self::map(&this);
        if let Some(key) = Self::key("write_value", &key)
            && let Err(e) = map.insert(key, SharedVariant::store(value))
        {
            Self::refused("write_value", e, ());
        }
    }

    /// Whether a value is stored under [param key].
    #[func]
    pub fn has_value(&self, key: Variant) -> bool {
        Self::key("has_value", &key).is_some_and(|key| self.map.contains(&key))
    }

    /// Removes [param key] and its statistics; [code]false[/code] when it was not there.
    #[func(gd_self)]
    pub fn erase_value(this: Gd<Self>, key: Variant) -> bool {
        let map = Self::map(&this);
        let Some(key) = Self::key("erase_value", &key) else {
            return false;
        };
        map.remove(&key)
            .unwrap_or_else(|e| Self::refused("erase_value", e, false))
    }

    /// The keys stored now, in no particular order (String keys come back as Strings).
    #[func]
    pub fn keys(&self) -> VarArray {
        self.map.keys().iter().map(Key::to_variant).collect()
    }

    /// How many keys are stored.
    #[func]
    pub fn size(&self) -> i64 {
        self.map.len() as i64
    }

    /// Removes every key and its statistics.
    #[func(gd_self)]
    pub fn clear(this: Gd<Self>) {
        let map = Self::map(&this);
        if let Err(e) = map.clear() {
            Self::refused("clear", e, ());
        }
    }

    /// A copy of everything, taken under one lock: a consistent snapshot, never half of a
    /// [method batch_update].
    #[func]
    pub fn get_all_data(&self) -> VarDictionary {
        let mut data = VarDictionary::new();
        self.map.for_each(|key, value| {
            data.set(&key.to_variant(), &value.copy());
        });
        data
    }

    /// Stores every key → value of [param updates] in one step: a reader sees all of them or none
    /// of them. If any key is not a String, StringName or int, nothing is stored.
    #[func(gd_self)]
    pub fn batch_update(this: Gd<Self>, updates: VarDictionary) {
        let map = Self::map(&this);
        let mut entries = Vec::with_capacity(updates.len());
        for (key, value) in updates.iter_shared() {
            let Some(key) = Self::key("batch_update", &key) else {
                return;
            };
            entries.push((key, SharedVariant::store(value)));
        }
        if let Err(e) = map.batch(entries) {
            Self::refused("batch_update", e, ());
        }
    }

    /// Atomic read-modify-write: calls [param function] with a copy of the current value (null when
    /// there is none), stores what it returns, and returns a copy of it. No other change happens
    /// in between, so no update is lost; readers meanwhile see the value before it. If Godot
    /// cannot call [param function] (invalid, freed, wrong argument count), if it stops at a
    /// script error, or if it is a coroutine (it uses [code]await[/code]), nothing changes and null
    /// is returned with an error (a runtime error inside it would otherwise store null). Inside a
    /// task, such a script error fails the task too. [param function] may read this
    /// SharedResource but not change it (see the class description); it may drop the last
    /// reference to it.
    #[func(gd_self)]
    pub fn update_value(this: Gd<Self>, key: Variant, function: Callable) -> Variant {
        let map = Self::map(&this);
        let Some(key) = Self::key("update_value", &key) else {
            return Variant::nil();
        };
        if !function.is_valid() {
            Problem::new(
                CLASS,
                "update_value",
                "the Callable is not valid (null, or its object was freed)",
            )
            .fix("pass a function that takes the old value and returns the new one.")
            .report();
            return Variant::nil();
        }
        let mut result = Variant::nil();
        let outcome = map.update(key, |old| {
            let old = old.map_or_else(Variant::nil, SharedVariant::copy);
            match kept_call::call(&function, &[old], Nesting::Shared) {
                Ok(new_value) => {
                    result = deep_copy(new_value.clone());
                    Some(SharedVariant::store(new_value))
                }
                Err(Failure::NotCalled(why)) => {
                    Problem::new(
                        CLASS,
                        "update_value",
                        format!("{why}; the value was left unchanged."),
                    )
                    .report();
                    None
                }
                Err(Failure::ScriptError(error)) => {
                    Problem::new(
                        CLASS,
                        "update_value",
                        format!(
                            "the Callable stopped at a script error, so it returned no new value; the value was left unchanged. The error: {}",
                            error.summary()
                        ),
                    )
                    .report();
                    None
                }
                Err(Failure::Coroutine) => {
                    Problem::new(
                        CLASS,
                        "update_value",
                        format!(
                            "the Callable is a coroutine (it uses await): it returned at its first await, before computing the new value; it was stopped there and the value left unchanged. To fix it, {}.",
                            coroutine::HINT
                        ),
                    )
                    .report();
                    None
                }
            }
        });
        match outcome {
            Ok(_) => result,
            Err(e) => Self::refused("update_value", e, Variant::nil()),
        }
    }

    /// Stores [param new_value] under [param key] only if the current value equals
    /// [param expected] (compared with [code]==[/code]; a missing key equals null), atomically.
    /// Returns whether it stored it. Use it in a retry loop when the new value is computed
    /// outside the lock.
    #[func(gd_self)]
    pub fn compare_and_set(
        this: Gd<Self>,
        key: Variant,
        expected: Variant,
        new_value: Variant,
    ) -> bool {
        let map = Self::map(&this);
        let Some(key) = Self::key("compare_and_set", &key) else {
            return false;
        };
        map.compare_and_set(
            key,
            |current| match current {
                Some(value) => *value.get() == expected,
                None => expected.is_nil(),
            },
            SharedVariant::store(new_value),
        )
        .unwrap_or_else(|e| Self::refused("compare_and_set", e, false))
    }

    /// Goes up by one with every change (a write, a batch, an update, an erase, a clear), so a
    /// reader can see cheaply whether anything changed since it last looked. Takes no lock.
    #[func]
    pub fn get_version(&self) -> i64 {
        self.map.version() as i64
    }

    /// [code]{"keys": {key: {"reads": int, "writes": int}}, "total_reads": int,
    /// "total_writes": int, "misses": int, "version": int}[/code], taken under one read lock.
    /// Reads are [method read_value] calls that found the key (counted with atomics, so readers
    /// never wait for each other to count); misses are those that did not. An erased key's counts
    /// go with it.
    #[func]
    pub fn get_access_statistics(&self) -> VarDictionary {
        let stats = self.map.stats();
        let mut keys = VarDictionary::new();
        for k in &stats.keys {
            keys.set(
                &k.key.to_variant(),
                &vdict! { "reads" => k.reads as i64, "writes" => k.writes as i64 },
            );
        }
        vdict! {
            "keys" => &keys,
            "total_reads" => stats.keys.iter().map(|k| k.reads).sum::<u64>() as i64,
            "total_writes" => stats.keys.iter().map(|k| k.writes).sum::<u64>() as i64,
            "misses" => stats.misses as i64,
            "version" => stats.version as i64,
        }
    }
}

impl SharedResource {
    /// The store, taken out under a bind that ends at once. The caller keeps `this`, so the
    /// object lives until the call returns, even if an update_value Callable drops every other
    /// reference; and no bind is held while the call waits for the write gate or runs that
    /// Callable.
    fn map(this: &Gd<Self>) -> Arc<SharedMap<Key, SharedVariant>> {
        this.bind().map.clone()
    }

    fn key(method: &str, key: &Variant) -> Option<Key> {
        let converted = Key::from_variant(key);
        if converted.is_none() {
            Problem::new(
                CLASS,
                method,
                format!(
                    "a key must be a String, StringName or int, not {}",
                    describe::value(key)
                ),
            )
            .fix("convert it, for example with str(key).")
            .report();
        }
        converted
    }

    fn refused<T>(method: &str, _: Reentrant, fallback: T) -> T {
        Problem::new(
            CLASS,
            method,
            "called from inside update_value's Callable on the same SharedResource, which holds its write gate; that change would wait for itself. Return the new value from the Callable instead of writing it.",
        )
        .report();
        fallback
    }
}
