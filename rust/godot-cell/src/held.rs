//! Which cells the current thread holds shared borrows of, and the thread's key.
//!
//! A mutable borrow uses it to tell "another thread reads: wait" from "this thread reads: waiting
//! would never end", and a reader uses it to keep reading a cell whose writer waits for it (a
//! re-entrant read must not queue behind a writer that waits for the outer read). Both answers
//! must be exact, so the record is: a few inline slots of (cell, count), then a list for the rare
//! thread that holds borrows of more cells at once. No atomics and no lock; a thread-local.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::sync::thread_local;

/// Cells one thread may hold shared borrows of at once without touching the spill list.
const SLOTS: usize = 8;

#[derive(Debug)]
struct Held {
    /// This thread's key, 0 until first asked for.
    key: usize,
    /// (cell, count) with count > 0, or count 0 for a free slot.
    slots: [(usize, usize); SLOTS],
    spill: Vec<(usize, usize)>,
}

impl Held {
    const EMPTY: Self = Self {
        key: 0,
        slots: [(0, 0); SLOTS],
        spill: Vec::new(),
    };

    fn key(&mut self) -> usize {
        if self.key == 0 {
            self.key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        }
        self.key
    }

    fn entry(&mut self, cell: usize) -> Option<&mut (usize, usize)> {
        self.slots
            .iter_mut()
            .chain(self.spill.iter_mut())
            .find(|(c, n)| *c == cell && *n > 0)
    }
}

#[cfg(not(loom))]
thread_local! {
    static HELD: RefCell<Held> = const { RefCell::new(Held::EMPTY) };
}

#[cfg(loom)]
thread_local! {
    static HELD: RefCell<Held> = RefCell::new(Held::EMPTY);
}

/// Where thread keys come from. Not an address: one that a finished thread freed could be
/// reused by a new thread, which could then read a stale owner field as itself.
#[cfg(not(loom))]
static NEXT_KEY: AtomicUsize = AtomicUsize::new(1);

// Under loom, numbered anew for each explored execution, so every execution picks the same
// stripes (loom requires a deterministic model).
#[cfg(loom)]
loom::lazy_static! {
    static ref NEXT_KEY: AtomicUsize = AtomicUsize::new(1);
}

/// This thread's identity: never 0, never reused.
pub(crate) fn thread_key() -> usize {
    HELD.with(|held| held.borrow_mut().key())
}

/// Records a shared borrow of the cell at `cell` by this thread. Returns the thread's key and
/// whether it already held a borrow of that cell.
pub(crate) fn enter(cell: usize) -> (usize, bool) {
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        let key = held.key();
        if let Some((_, count)) = held.entry(cell) {
            *count += 1;
            return (key, true);
        }
        match held.slots.iter_mut().find(|(_, n)| *n == 0) {
            Some(slot) => *slot = (cell, 1),
            None => {
                held.spill.retain(|(_, n)| *n > 0);
                held.spill.push((cell, 1));
            }
        }
        (key, false)
    })
}

/// Forgets one shared borrow of the cell at `cell` by this thread.
pub(crate) fn leave(cell: usize) {
    HELD.with(|held| {
        if let Some((_, count)) = held.borrow_mut().entry(cell) {
            *count -= 1;
        }
    });
}

/// Whether this thread holds a shared borrow of the cell at `cell`.
pub(crate) fn holds(cell: usize) -> bool {
    HELD.with(|held| held.borrow_mut().entry(cell).is_some())
}
