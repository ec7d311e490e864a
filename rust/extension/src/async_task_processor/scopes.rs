//! Cancelling by scope: every task (`cancel_all`), the tasks bound to a node (`cancel_owner`),
//! and the earlier task of a key ("latest request wins": `run_keyed`).

use std::collections::HashMap;
use std::sync::Arc;

use godot::classes::Node;
use godot::prelude::*;
use parking_lot::Mutex;
use threadkit_core::{Pool, Task, cancel_together};

use super::{AsyncTaskProcessor, CLASS, Delivery};
use crate::describe;
use crate::lookup::{live, object_argument};
use crate::problem::Problem;
use crate::send::SendVariant;
use crate::task_handle::HandleRef;
use crate::task_handle::{TaskHandle, owner};

#[godot_api(secondary)]
impl AsyncTaskProcessor {
    /// Cancels every task of this processor: queued ones never run, running ones are asked to
    /// stop (they see [method is_cancelled] turn true) and end cancelled. The workers keep
    /// running, ready for new tasks (unlike [method stop_workers]). Returns how many tasks it
    /// cancelled (queued plus asked to stop). A task submitted while it runs may be missed.
    #[func]
    pub fn cancel_all(&self) -> i64 {
        self.inner.pool.cancel_all() as i64
    }

    /// Cancels this processor's tasks that were bound to [param node] with
    /// [method TaskHandle.bind_to], as [method cancel_all] does, and returns how many. Only bound
    /// tasks count, not tasks whose Callable belongs to [param node]: a lambda belongs to the
    /// script instance that wrote it, rarely to the node it works for, so bind the tasks to say
    /// which node owns them. Main thread only (elsewhere: an error and 0); [param node] must be a
    /// live [Node] (else: an error and 0).
    #[func]
    pub fn cancel_owner(&self, node: Variant) -> i64 {
        let method = "cancel_owner";
        if !godot::init::is_main_thread() {
            Problem::new(
                CLASS,
                method,
                "called off the main thread; it reads the node's bindings, so call it on the main thread (or cancel the handles themselves).",
            )
            .report();
            return 0;
        }
        let node = object_argument::<Node>(&node).and_then(live::<Node>);
        let node = match node {
            Ok(node) => node,
            Err(why) => {
                Problem::new(
                    CLASS,
                    method,
                    format!(
                        "the node {why}, so nothing was cancelled; pass a live Node that tasks were bound to with TaskHandle.bind_to()."
                    ),
                )
                .report();
                return 0;
            }
        };
        let pool = &self.inner.pool;
        let mine: Vec<_> = owner::bound_to(&node)
            .into_iter()
            .filter(|link| {
                let task = link.task();
                pool.task(task.id())
                    .is_some_and(|own| Arc::ptr_eq(&own, task))
            })
            .collect();
        cancel_together(&mine, |link, reach| link.cancel_reaching(reach)) as i64
    }

    /// Runs [param task] as [method run] does, and cancels the earlier task submitted with the
    /// same [param key] if it has not ended: the latest request wins (a chunk, a path or a search
    /// superseded by a newer one). The key is forgotten once its latest task ends, so keys do
    /// not pile up ([method get_stats]: [code]keyed_tasks[/code]).
    /// ```gdscript
    /// func _on_target_moved(target: Vector2i) -> void:
    ///     var path = await processor.run_keyed(&"path", func(): return find_path(target)).wait()
    ///     if path != null:  # null: a newer request cancelled this one.
    ///         follow(path)
    /// ```
    /// A key is a value compared by content: an int, float (not NaN), bool, String or StringName
    /// (equal when their text is: [code]"a"[/code] and [code]&"a"[/code] are one key),
    /// NodePath, Vector2/3/4, Vector2i/3i/4i, Color, or a live Object (by identity). Anything
    /// else (null, an Array, a Dictionary, a Packed\*Array, a Callable, a freed object) is
    /// reported with an error and returns a handle that has already failed.
    #[func]
    pub fn run_keyed(
        &self,
        key: Variant,
        task: Callable,
        #[opt(default = 0)] priority: i64,
    ) -> Gd<TaskHandle> {
        let method = "run_keyed";
        self.ensure_delivery();
        let mut keyed = None;
        let handle = self.inner.submit_with_handle(|inner, attach| {
            let key = Key::of(method, &key)?;
            let task = inner.submit_single(method, task, priority, |task| Delivery {
                then: None,
                handle: Some(HandleRef(attach(task))),
            })?;
            keyed = Some((key, task.clone()));
            Ok(task)
        });
        if let Some((key, task)) = keyed {
            self.inner.keys.replace(key, &task, &self.inner.pool);
        }
        handle
    }
}

/// The latest task of each key of `run_keyed`, by id. Shared with the hooks that forget a key
/// when its task ends, on whichever thread ends it.
#[derive(Default)]
pub(super) struct Keys(Arc<Mutex<HashMap<Key, u64>>>);

impl Keys {
    /// Makes `task` the latest of `key`, cancelling the one before if it has not ended.
    fn replace(&self, key: Key, task: &Arc<Task<SendVariant>>, pool: &Pool<SendVariant>) {
        let id = task.id();
        let earlier = self.0.lock().insert(key.clone(), id);
        let keys = self.0.clone();
        // Added after the insert: a task that has ended already runs it at once.
        task.on_end(Box::new(move || {
            let mut keys = keys.lock();
            if keys.get(&key) == Some(&id) {
                keys.remove(&key);
            }
        }));
        // Outside the lock: a task cancelled before it started runs its hooks right here.
        if let Some(earlier) = earlier.filter(|&earlier| earlier != id) {
            pool.cancel(earlier);
        }
    }

    /// Keys whose latest task has not ended.
    pub(super) fn len(&self) -> usize {
        self.0.lock().len()
    }
}

/// A `run_keyed` key: a Variant's content, as a value any thread can hash and compare.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) enum Key {
    Bool(bool),
    Int(i64),
    /// The bits of a float that is not NaN (-0.0 counted as 0.0).
    Float(u64),
    /// A String or a StringName.
    Text(String),
    Path(String),
    /// A vector, integer or float (bits), or a Color, with its type.
    Components(i32, [u64; 4]),
    Object(i64),
}

impl Key {
    fn of(method: &'static str, value: &Variant) -> Result<Key, Problem<'static>> {
        let bits = |x: f64| -> Option<u64> { (!x.is_nan()).then(|| (x + 0.0).to_bits()) };
        let floats = |xs: &[f32]| -> Option<[u64; 4]> {
            let mut out = [0; 4];
            for (slot, x) in out.iter_mut().zip(xs) {
                *slot = bits(*x as f64)?;
            }
            Some(out)
        };
        let ints = |xs: &[i32]| -> [u64; 4] {
            let mut out = [0; 4];
            for (slot, x) in out.iter_mut().zip(xs) {
                *slot = *x as i64 as u64;
            }
            out
        };
        let kind = value.get_type();
        let of = |parts: Option<[u64; 4]>| parts.map(|parts| Key::Components(kind.ord(), parts));
        let key = match kind {
            VariantType::BOOL => Some(Key::Bool(value.to())),
            VariantType::INT => Some(Key::Int(value.to())),
            VariantType::FLOAT => bits(value.to::<f64>()).map(Key::Float),
            VariantType::STRING => Some(Key::Text(value.to::<GString>().to_string())),
            VariantType::STRING_NAME => Some(Key::Text(value.to::<StringName>().to_string())),
            VariantType::NODE_PATH => Some(Key::Path(value.to::<NodePath>().to_string())),
            VariantType::VECTOR2I => {
                let v = value.to::<Vector2i>();
                of(Some(ints(&[v.x, v.y])))
            }
            VariantType::VECTOR3I => {
                let v = value.to::<Vector3i>();
                of(Some(ints(&[v.x, v.y, v.z])))
            }
            VariantType::VECTOR4I => {
                let v = value.to::<Vector4i>();
                of(Some(ints(&[v.x, v.y, v.z, v.w])))
            }
            VariantType::VECTOR2 => {
                let v = value.to::<Vector2>();
                of(floats(&[v.x, v.y]))
            }
            VariantType::VECTOR3 => {
                let v = value.to::<Vector3>();
                of(floats(&[v.x, v.y, v.z]))
            }
            VariantType::VECTOR4 => {
                let v = value.to::<Vector4>();
                of(floats(&[v.x, v.y, v.z, v.w]))
            }
            VariantType::COLOR => {
                let c = value.to::<Color>();
                of(floats(&[c.r, c.g, c.b, c.a]))
            }
            VariantType::OBJECT => object_argument::<Object>(value)
                .ok()
                .map(|id| Key::Object(id.to_i64())),
            _ => None,
        };
        key.ok_or_else(|| {
            Problem::new(
                CLASS,
                method,
                format!(
                    "the key is {}, which cannot be a key (it is null, NaN, a freed object, or a value that changes in place or cannot be compared)",
                    describe::value(value)
                ),
            )
            .fix("pass an int, a String or StringName, a Vector2i/3i/4i, a Vector2/3/4, a Color, a bool, a NodePath or a live Object, for example the chunk's coordinates.")
        })
    }
}
