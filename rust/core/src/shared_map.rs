//! A key-value store many threads read at once, with a version number and per-key access counts.
//!
//! One reader-writer lock guards the whole map, held only for the length of one operation
//! (several keys in `batch` and `update` change under one write lock, so readers see all of the
//! change or none of it). The lock is sharded, so readers on different cores lock different cache
//! lines; read counts are striped atomics bumped under the read lock, for the same reason, and
//! counting a read never needs the write lock; write counts change only under the write lock.
//!
//! Every change also holds the map's write gate, a mutex, for its whole length. `update` runs
//! caller code under the gate and a read lock, never under the write lock: readers go on reading
//! the old value meanwhile and never wait for caller code, while no other change can slip in
//! between its read and its write. If that code changes the same map on the same thread it would
//! wait for the gate it holds, so every change first checks a thread-local list of the maps this
//! thread is updating and returns [`Reentrant`] instead; reads from it are fine.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;

use crate::stripes::StripedCount;
use crate::sync::{AtomicU64, Mutex, Ordering, RwLock, thread_local};

/// The calling thread is inside [`SharedMap::update`] of this map; the change was refused because
/// it would wait for the write gate that thread holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reentrant;

#[derive(Debug)]
struct Entry<V> {
    value: V,
    /// Striped: every reader bumps it, and readers on two cores must not share its cache line.
    reads: StripedCount,
    writes: u64,
}

/// Access counts of one key, as [`SharedMap::stats`] reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStats<K> {
    pub key: K,
    pub reads: u64,
    pub writes: u64,
}

/// A consistent snapshot of the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapStats<K> {
    /// Keys present now, in no particular order. Erasing a key drops its counts.
    pub keys: Vec<KeyStats<K>>,
    /// Reads of keys that were not there.
    pub misses: u64,
    pub version: u64,
}

/// See the module documentation.
#[derive(Debug)]
pub struct SharedMap<K, V> {
    entries: RwLock<HashMap<K, Entry<V>>>,
    /// Held by every change for its whole length (see the module documentation).
    gate: Mutex<()>,
    version: AtomicU64,
    misses: AtomicU64,
}

thread_local! {
    /// Addresses of the maps whose `update` is running on this thread.
    // Not a `const { }` initialiser: loom's `thread_local!` does not accept one.
    #[allow(clippy::missing_const_for_thread_local)]
    static UPDATING: RefCell<Vec<usize>> = RefCell::new(Vec::new());
}

/// Marks a map as being updated on this thread until dropped (also when the update panics).
struct UpdatingMark(usize);

impl UpdatingMark {
    fn new(map: usize) -> Self {
        UPDATING.with(|u| u.borrow_mut().push(map));
        Self(map)
    }
}

impl Drop for UpdatingMark {
    fn drop(&mut self) {
        UPDATING.with(|u| {
            let mut u = u.borrow_mut();
            if let Some(i) = u.iter().rposition(|&m| m == self.0) {
                u.remove(i);
            }
        });
    }
}

impl<K: Eq + Hash + Clone, V> Default for SharedMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash + Clone, V> SharedMap<K, V> {
    pub fn new() -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            gate: Mutex::new(()),
            version: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Takes the write gate, or refuses when this thread's `update` holds it.
    fn gate(&self) -> Result<impl Drop + '_, Reentrant> {
        let me = self as *const Self as usize;
        if UPDATING.with(|u| u.borrow().contains(&me)) {
            return Err(Reentrant);
        }
        Ok(self
            .gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn bump(&self) {
        self.version.fetch_add(1, Ordering::Release);
    }

    /// Reads `key` through `read` (for example to copy the value), counting the read.
    /// `None` when the key is absent (counted as a miss).
    pub fn get<R>(&self, key: &K, read: impl FnOnce(&V) -> R) -> Option<R> {
        let entries = self.entries.read();
        match entries.get(key) {
            Some(entry) => {
                entry.reads.bump();
                Some(read(&entry.value))
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    pub fn contains(&self, key: &K) -> bool {
        self.entries.read().contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.entries.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn keys(&self) -> Vec<K> {
        self.entries.read().keys().cloned().collect()
    }

    /// Calls `visit` for every entry under one read lock, so it sees one consistent state.
    pub fn for_each(&self, mut visit: impl FnMut(&K, &V)) {
        for (key, entry) in self.entries.read().iter() {
            visit(key, &entry.value);
        }
    }

    /// Sets `key` to `value`.
    pub fn insert(&self, key: K, value: V) -> Result<(), Reentrant> {
        self.batch([(key, value)])
    }

    /// Sets every key of `updates` under one write lock (one version step): a reader sees all of
    /// them or none.
    pub fn batch(&self, updates: impl IntoIterator<Item = (K, V)>) -> Result<(), Reentrant> {
        let _gate = self.gate()?;
        let mut entries = self.entries.write();
        for (key, value) in updates {
            Self::put(&mut entries, key, value);
        }
        self.bump();
        Ok(())
    }

    fn put(entries: &mut HashMap<K, Entry<V>>, key: K, value: V) {
        match entries.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut slot) => {
                let entry = slot.get_mut();
                entry.value = value;
                entry.writes += 1;
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(Entry {
                    value,
                    reads: StripedCount::new(),
                    writes: 1,
                });
            }
        }
    }

    /// Removes `key`; `false` when it was not there.
    pub fn remove(&self, key: &K) -> Result<bool, Reentrant> {
        let _gate = self.gate()?;
        let removed = self.entries.write().remove(key).is_some();
        if removed {
            self.bump();
        }
        Ok(removed)
    }

    /// Removes every key (their counts go with them).
    pub fn clear(&self) -> Result<(), Reentrant> {
        let _gate = self.gate()?;
        let mut entries = self.entries.write();
        if !entries.is_empty() {
            entries.clear();
            self.bump();
        }
        Ok(())
    }

    /// Atomic read-modify-write: `modify` gets the current value (`None` when absent) and returns
    /// the new value, or `None` to leave the key as it was. No other change happens in between;
    /// readers read the old value until the new one is in. `Ok(true)` when a value was written.
    pub fn update(
        &self,
        key: K,
        modify: impl FnOnce(Option<&V>) -> Option<V>,
    ) -> Result<bool, Reentrant> {
        let _gate = self.gate()?;
        let new_value = {
            // A read lock only: other readers go on, and every writer waits at the gate we hold
            // (so this thread's own reads from `modify` never queue behind a writer either).
            let entries = self.entries.read();
            let _mark = UpdatingMark::new(self as *const Self as usize);
            modify(entries.get(&key).map(|e| &e.value))
        };
        let Some(value) = new_value else {
            return Ok(false);
        };
        Self::put(&mut self.entries.write(), key, value);
        self.bump();
        Ok(true)
    }

    /// Sets `key` to `value` only if `expected` accepts the current value (`None` when absent).
    pub fn compare_and_set(
        &self,
        key: K,
        expected: impl FnOnce(Option<&V>) -> bool,
        value: V,
    ) -> Result<bool, Reentrant> {
        let mut value = Some(value);
        self.update(key, |current| {
            if expected(current) {
                value.take()
            } else {
                None
            }
        })
    }

    /// Bumped once by every operation that changed the map; read without a lock.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The counters, read under one read lock (so reads and writes of each key belong together).
    pub fn stats(&self) -> MapStats<K> {
        let entries = self.entries.read();
        MapStats {
            keys: entries
                .iter()
                .map(|(key, e)| KeyStats {
                    key: key.clone(),
                    reads: e.reads.sum(),
                    writes: e.writes,
                })
                .collect(),
            misses: self.misses.load(Ordering::Relaxed),
            version: self.version(),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn map() -> SharedMap<&'static str, i64> {
        SharedMap::new()
    }

    #[test]
    fn operations_count_reads_writes_misses_and_versions() {
        let m = map();
        m.insert("a", 1).unwrap();
        m.insert("a", 2).unwrap();
        m.batch([("b", 3), ("c", 4)]).unwrap();
        assert_eq!(m.get(&"a", |v| *v), Some(2));
        assert_eq!(m.get(&"a", |v| *v), Some(2));
        assert_eq!(m.get(&"zz", |v| *v), None);
        assert_eq!(m.version(), 3, "the batch is one step");
        let mut stats = m.stats();
        stats.keys.sort_by_key(|k| k.key);
        let counts: Vec<_> = stats
            .keys
            .iter()
            .map(|k| (k.key, k.reads, k.writes))
            .collect();
        assert_eq!(counts, [("a", 2, 2), ("b", 0, 1), ("c", 0, 1)]);
        assert_eq!((stats.misses, stats.version), (1, 3));

        assert_eq!(m.remove(&"b"), Ok(true));
        assert_eq!(m.remove(&"b"), Ok(false));
        assert_eq!(
            m.version(),
            4,
            "a remove that found nothing changes nothing"
        );
        assert_eq!((m.len(), m.contains(&"c")), (2, true));
        m.clear().unwrap();
        m.clear().unwrap();
        assert_eq!((m.is_empty(), m.version()), (true, 5));
    }

    #[test]
    fn update_and_compare_and_set_are_read_modify_write() {
        let m = map();
        assert_eq!(
            m.update("n", |old| Some(old.copied().unwrap_or(0) + 1)),
            Ok(true)
        );
        assert_eq!(m.update("n", |old| Some(old.unwrap() + 1)), Ok(true));
        assert_eq!(m.update("n", |_| None), Ok(false), "None leaves it");
        assert_eq!(m.get(&"n", |v| *v), Some(2));
        assert_eq!(m.compare_and_set("n", |v| v == Some(&5), 9), Ok(false));
        assert_eq!(m.compare_and_set("n", |v| v == Some(&2), 9), Ok(true));
        assert_eq!(m.compare_and_set("new", |v| v.is_none(), 1), Ok(true));
        assert_eq!(m.get(&"n", |v| *v), Some(9));
        assert_eq!(m.version(), 4);
    }

    #[test]
    fn changes_from_inside_update_are_refused_and_reads_see_the_old_value() {
        let m = map();
        m.insert("a", 1).unwrap();
        let other: SharedMap<&str, i64> = SharedMap::new();
        let mut seen = vec![];
        m.update("a", |old| {
            seen.push(format!("{:?}", m.get(&"a", |v| *v)));
            seen.push(format!("{:?}", m.stats().version));
            seen.push(format!("{:?}", m.insert("b", 2)));
            seen.push(format!("{:?}", m.update("a", |_| None)));
            seen.push(format!("{:?}", m.remove(&"a")));
            seen.push(format!("{:?}", m.clear()));
            seen.push(format!("{:?}", other.insert("x", 1)));
            Some(old.unwrap() + 10)
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                "Some(1)",
                "1",
                "Err(Reentrant)",
                "Err(Reentrant)",
                "Err(Reentrant)",
                "Err(Reentrant)",
                "Ok(())"
            ]
        );
        assert_eq!(
            m.get(&"a", |v| *v),
            Some(11),
            "the map works again afterwards"
        );
        assert_eq!(m.keys(), vec!["a"]);
    }

    #[test]
    fn readers_on_other_threads_read_the_old_value_while_update_runs() {
        let m = std::sync::Arc::new(map());
        m.insert("a", 1).unwrap();
        let (inside, wait_inside) = std::sync::mpsc::channel();
        let (go_on, wait_go_on) = std::sync::mpsc::channel::<()>();
        let updater = {
            let m = m.clone();
            std::thread::spawn(move || {
                m.update("a", |old| {
                    inside.send(()).unwrap();
                    wait_go_on.recv().unwrap();
                    Some(old.unwrap() + 1)
                })
            })
        };
        wait_inside.recv().unwrap();
        // The updater holds the gate and runs its code: reads go on and see the old value.
        assert_eq!(m.get(&"a", |v| *v), Some(1));
        assert_eq!(m.len(), 1);
        go_on.send(()).unwrap();
        assert_eq!(updater.join().unwrap(), Ok(true));
        assert_eq!(m.get(&"a", |v| *v), Some(2));
    }

    #[test]
    fn a_panicking_update_unmarks_the_map() {
        let m = map();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            m.update("a", |_| panic!("boom"))
        }));
        assert!(caught.is_err());
        assert_eq!(m.insert("a", 1), Ok(()));
    }
}
