//! One value per thread and per owner, dropped when its thread ends or its owner goes, whichever
//! comes first, and exactly once.
//!
//! Rust's `thread_local!` has one value per thread for the whole program; a [`PerThread`] is an
//! object: each has its own values, and dropping it drops them all. The values live in the
//! owner's map (keyed by thread), not in the threads' storage, so the owner can reach every one
//! when it goes. Each thread keeps only weak references to the maps it has a value in, in
//! thread storage whose destructor runs when the thread ends, however it was started (see
//! `exit_hook`), and removes that thread's values.
//! Whoever removes a value from the map under its lock (the ending thread, the owner's drop, an
//! explicit [`PerThread::remove`]) is the one that drops it, after the lock is released: so a
//! value is dropped exactly once, and dropping it (which may run arbitrary code) can use the
//! same `PerThread` again without deadlocking.
//!
//! Not model-checked with loom (which cannot run thread-local destructors of its own threads);
//! the protocol is one mutex around the map, and the race between a thread ending and the owner
//! dropping is tested with real threads and exact drop counts.

use std::collections::{HashMap, HashSet};

use crate::sync::lot::Mutex;
use crate::sync::rc::{Arc, Weak};
use crate::sync::{ThreadId, current_thread};

/// Why [`PerThread::get_or_try_init`] returned no value.
#[derive(Debug, PartialEq, Eq)]
pub enum InitError<E> {
    /// `init` failed.
    Failed(E),
    /// `init` asked this `PerThread` for the calling thread's value again, before returning it.
    Reentrant,
}

/// The values and the bookkeeping, shared with the threads' weak references.
struct Slots<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    values: HashMap<ThreadId, T>,
    /// Threads running `init` now (a second request from one of them is re-entrant).
    initializing: HashSet<ThreadId>,
    /// Set when the owner is dropped: nothing is stored any more.
    closed: bool,
}

/// What a thread's storage can do with a map it has a value in, whatever the value's type.
trait Evict: Send + Sync {
    /// Removes and drops `thread`'s value.
    fn evict(&self, thread: ThreadId);
}

impl<T: Send> Evict for Slots<T> {
    fn evict(&self, thread: ThreadId) {
        let value = self.state.lock().values.remove(&thread);
        // Dropped here, after the lock: dropping may run code that uses this map again.
        drop(value);
    }
}

/// The maps a thread has a value in; when the thread ends, its values are taken out of them.
struct ThreadValues {
    /// The thread's id, taken while it runs: when it ends, `thread::current()` of a thread the
    /// platform started (not std) may already be a new handle with a new id.
    thread: ThreadId,
    maps: Vec<Weak<dyn Evict>>,
}

impl Drop for ThreadValues {
    fn drop(&mut self) {
        for slots in self.maps.drain(..) {
            if let Some(slots) = slots.upgrade() {
                slots.evict(self.thread);
            }
        }
    }
}

/// Remembers, in the storage of the calling thread (`thread`), that it has a value in `slots`.
fn register(thread: ThreadId, slots: Weak<dyn Evict>) {
    exit_hook::with(thread, |values| {
        values.maps.retain(|slots| slots.strong_count() > 0);
        // A value removed and made again finds its map listed already: listed once, the list
        // stays as long as the maps alive, however often values are remade.
        if !values.maps.iter().any(|listed| listed.ptr_eq(&slots)) {
            values.maps.push(slots);
        }
    });
}

/// Stops running this crate's code when threads end (the values still kept stay in their maps,
/// where their owners' drops find them). For a library about to be unloaded: a thread that
/// ended later would otherwise call into unloaded code.
pub fn stop_thread_exit_hooks() {
    exit_hook::stop();
}

/// Each thread's [`ThreadValues`], dropped when the thread ends.
///
/// On Unix, a pthread key with a destructor: it runs for every thread that ends, however it was
/// started. Rust's `thread_local!` destructors are not enough there: in a library loaded into a
/// C++ program (a game engine), they were found not to run for the program's own threads.
#[cfg(unix)]
mod exit_hook {
    use std::sync::OnceLock;

    use super::{ThreadId, ThreadValues};
    use crate::sync::Ordering;
    use crate::sync::unmodelled::AtomicBool;

    static KEY: OnceLock<libc::pthread_key_t> = OnceLock::new();
    static STOPPED: AtomicBool = AtomicBool::new(false);

    /// Drops a thread's values: the key's destructor, called when a thread ends with a value set.
    // SAFETY (for callers): `values` must be a value set for KEY, a leaked `Box<ThreadValues>`;
    // only the platform calls it, as the key's destructor.
    unsafe extern "C" fn thread_ended(values: *mut libc::c_void) {
        // SAFETY: the only values ever set for the key are `Box<ThreadValues>` leaked by `with`,
        // and the platform calls this once per value (it clears the slot first).
        drop(unsafe { Box::from_raw(values.cast::<ThreadValues>()) });
    }

    fn key() -> libc::pthread_key_t {
        *KEY.get_or_init(|| {
            let mut key = 0;
            // SAFETY: `key` is a valid place for the new key; `thread_ended` matches the
            // destructor's signature.
            let created = unsafe { libc::pthread_key_create(&mut key, Some(thread_ended)) };
            assert_eq!(created, 0, "pthread_key_create failed (out of keys)");
            key
        })
    }

    /// Runs `f` on the calling thread's values (made on first use); nothing after `stop`.
    pub(super) fn with(thread: ThreadId, f: impl FnOnce(&mut ThreadValues)) {
        if STOPPED.load(Ordering::Acquire) {
            return;
        }
        let key = key();
        // SAFETY: a key created above and never deleted.
        let mut values = unsafe { libc::pthread_getspecific(key) }.cast::<ThreadValues>();
        if values.is_null() {
            values = Box::into_raw(Box::new(ThreadValues {
                thread,
                maps: Vec::new(),
            }));
            // SAFETY: as above; the leaked box is reclaimed by `thread_ended`.
            unsafe { libc::pthread_setspecific(key, values.cast()) };
        }
        // SAFETY: this thread's own box, alive until the thread ends; `f` runs no code that
        // could reach it again (it only edits the list).
        f(unsafe { &mut *values });
    }

    pub(super) fn stop() {
        STOPPED.store(true, Ordering::Release);
        if let Some(&key) = KEY.get() {
            // SAFETY: the key was created by `key()`; after this its destructor never runs, and
            // `STOPPED` keeps `with` from using it again. The lists left are leaked, not freed.
            unsafe { libc::pthread_key_delete(key) };
        }
    }
}

/// Each thread's [`ThreadValues`], in a `thread_local!` whose destructor runs when the thread
/// ends (on Windows, for every thread).
#[cfg(not(unix))]
mod exit_hook {
    use std::cell::RefCell;

    use super::{ThreadId, ThreadValues};
    use crate::sync::Ordering;
    use crate::sync::unmodelled::AtomicBool;

    static STOPPED: AtomicBool = AtomicBool::new(false);

    thread_local! {
        static VALUES: RefCell<Option<ThreadValues>> = const { RefCell::new(None) };
    }

    pub(super) fn with(thread: ThreadId, f: impl FnOnce(&mut ThreadValues)) {
        if STOPPED.load(Ordering::Acquire) {
            return;
        }
        // A thread whose storage is being torn down keeps the value in the map, where its
        // owner's drop still finds it.
        let _ = VALUES.try_with(|values| {
            f(values.borrow_mut().get_or_insert_with(|| ThreadValues {
                thread,
                maps: Vec::new(),
            }))
        });
    }

    pub(super) fn stop() {
        STOPPED.store(true, Ordering::Release);
    }
}

/// See the module documentation.
pub struct PerThread<T: Send + 'static> {
    slots: Arc<Slots<T>>,
}

impl<T: Send + 'static> Default for PerThread<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + 'static> PerThread<T> {
    pub fn new() -> Self {
        Self {
            slots: Arc::new(Slots {
                state: Mutex::new(State {
                    values: HashMap::new(),
                    initializing: HashSet::new(),
                    closed: false,
                }),
            }),
        }
    }

    /// A handle to the same values that does not own them: the values still go when this
    /// `PerThread` is dropped. For code that must not keep the owner alive while it runs user
    /// code (`init`), during which the owner may be dropped.
    pub fn handle(&self) -> PerThreadHandle<T> {
        PerThreadHandle {
            slots: self.slots.clone(),
        }
    }

    /// How many threads have a value now (a snapshot).
    pub fn len(&self) -> usize {
        self.handle().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Send + 'static> Drop for PerThread<T> {
    /// Drops every thread's value, here (after the lock is released), and stores nothing more.
    fn drop(&mut self) {
        let values = {
            let mut state = self.slots.state.lock();
            state.closed = true;
            std::mem::take(&mut state.values)
        };
        drop(values);
    }
}

/// The calling thread's side of a [`PerThread`]: see [`PerThread::handle`].
pub struct PerThreadHandle<T: Send + 'static> {
    slots: Arc<Slots<T>>,
}

impl<T: Send + 'static> PerThreadHandle<T> {
    /// A clone of the calling thread's value, if it has one.
    pub fn get(&self) -> Option<T>
    where
        T: Clone,
    {
        let me = current_thread().id();
        self.slots.state.lock().values.get(&me).cloned()
    }

    /// The calling thread's value (a clone), made by `init` on this thread if it has none.
    /// `init` runs without any lock held, so it may use this `PerThread` (except to ask for this
    /// thread's value again: [`InitError::Reentrant`]) and other ones. If the owner was dropped
    /// meanwhile, the new value is returned without being kept.
    pub fn get_or_try_init<E>(&self, init: impl FnOnce() -> Result<T, E>) -> Result<T, InitError<E>>
    where
        T: Clone,
    {
        let me = current_thread().id();
        {
            let mut state = self.slots.state.lock();
            if let Some(value) = state.values.get(&me) {
                return Ok(value.clone());
            }
            if !state.initializing.insert(me) {
                return Err(InitError::Reentrant);
            }
        }
        // Only this thread adds a value for itself, so none can appear meanwhile.
        let made = init();
        let mut state = self.slots.state.lock();
        state.initializing.remove(&me);
        let value = made.map_err(InitError::Failed)?;
        if !state.closed {
            state.values.insert(me, value.clone());
            drop(state);
            let slots: Arc<dyn Evict> = self.slots.clone();
            register(me, Arc::downgrade(&slots));
        }
        Ok(value)
    }

    /// Whether the calling thread has a value.
    pub fn contains(&self) -> bool {
        let me = current_thread().id();
        self.slots.state.lock().values.contains_key(&me)
    }

    /// Takes the calling thread's value out (the caller drops it); the next
    /// [`PerThreadHandle::get_or_try_init`] makes a new one.
    pub fn remove(&self) -> Option<T> {
        let me = current_thread().id();
        self.slots.state.lock().values.remove(&me)
    }

    /// How many threads have a value now (a snapshot).
    pub fn len(&self) -> usize {
        self.slots.state.lock().values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_cleared_and_made_again_is_registered_once() {
        let owner = PerThread::<u32>::new();
        let values = owner.handle();
        // Each round makes the value again, which registers the map with this thread again.
        for round in 0..1000 {
            values.get_or_try_init(|| Ok::<_, ()>(round)).unwrap();
            values.remove();
        }
        values.get_or_try_init(|| Ok::<_, ()>(0)).unwrap();
        let mut registered = 0;
        exit_hook::with(current_thread().id(), |values| {
            registered = values.maps.len()
        });
        assert_eq!(
            registered, 1,
            "one entry per map, however often its value was made"
        );
    }
}
