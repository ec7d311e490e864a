//! Which cells the current thread holds shared borrows of, and the thread's key.
//!
//! A mutable borrow asks it whether this thread reads the cell itself: then waiting for the reads
//! to end would never end, and the borrow fails instead. A thread-local without a destructor (so
//! it works even while other thread-locals are destroyed at thread exit), no atomics, no lock:
//! up to `SLOTS` (cell, count) pairs, kept packed so a lookup scans only the cells this thread
//! reads now (usually none or one). Past that, borrows are counted as untracked, and the answer
//! becomes "maybe" for every cell, which the cell treats as "yes": an error, never a deadlock.
//! Cells are named by an id that is never reused, so a leaked guard's entry can never be taken
//! for a borrow of a later cell at the same address.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::sync::thread_local;

/// Distinct cells one thread may read at once and still be told apart exactly.
const SLOTS: usize = 32;

#[derive(Debug)]
struct Held {
    /// This thread's key, 0 until first asked for.
    key: usize,
    /// `slots[..len]` are (cell id, count > 0).
    slots: [(usize, usize); SLOTS],
    len: usize,
    untracked: usize,
}

impl Held {
    const EMPTY: Self = Self {
        key: 0,
        slots: [(0, 0); SLOTS],
        len: 0,
        untracked: 0,
    };

    /// This thread's key, numbered on first use.
    fn key(&mut self) -> usize {
        if self.key == 0 {
            self.key = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
        }
        self.key
    }

    fn position(&self, cell: usize) -> Option<usize> {
        self.slots[..self.len].iter().position(|&(c, _)| c == cell)
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

/// Where cell ids and thread keys come from: numbers, not addresses, because an address that a
/// dropped cell or a finished thread freed can be reused. Two counters: thread keys must be
/// consecutive, so that threads started one after the other use different stripes.
#[cfg(not(loom))]
static NEXT_CELL: AtomicUsize = AtomicUsize::new(1);
#[cfg(not(loom))]
static NEXT_THREAD: AtomicUsize = AtomicUsize::new(1);

// Under loom, numbered anew for each explored execution, so every execution picks the same
// stripes (loom requires a deterministic model).
#[cfg(loom)]
loom::lazy_static! {
    static ref NEXT_CELL: AtomicUsize = AtomicUsize::new(1);
    static ref NEXT_THREAD: AtomicUsize = AtomicUsize::new(1);
}

/// A new cell id, never 0 and never handed out before.
pub(crate) fn new_id() -> usize {
    NEXT_CELL.fetch_add(1, Ordering::Relaxed)
}

/// This thread's key: never 0, never reused.
pub(crate) fn thread_key() -> usize {
    HELD.with(|held| held.borrow_mut().key())
}

/// Records a shared borrow of cell `cell` by this thread; returns the thread's key.
pub(crate) fn enter(cell: usize) -> usize {
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        let key = held.key();
        match held.position(cell) {
            Some(i) => held.slots[i].1 += 1,
            None if held.len < SLOTS => {
                let len = held.len;
                held.slots[len] = (cell, 1);
                held.len += 1;
            }
            None => held.untracked += 1,
        }
        key
    })
}

/// Forgets one shared borrow of cell `cell` by this thread.
pub(crate) fn leave(cell: usize) {
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        match held.position(cell) {
            Some(i) => {
                held.slots[i].1 -= 1;
                if held.slots[i].1 == 0 {
                    held.len -= 1;
                    let last = held.len;
                    held.slots.swap(i, last);
                }
            }
            // Recorded while every slot was taken.
            None => held.untracked -= 1,
        }
    });
}

/// Whether this thread may hold a shared borrow of cell `cell` (exact unless it reads more than
/// `SLOTS` cells at once).
pub(crate) fn may_hold(cell: usize) -> bool {
    HELD.with(|held| {
        let held = held.borrow();
        held.untracked > 0 || held.position(cell).is_some()
    })
}
