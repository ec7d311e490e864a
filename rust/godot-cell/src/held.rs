//! Which cells the current thread holds shared borrows of, so that a mutable borrow can tell
//! "another thread reads: wait" from "this thread reads: waiting would never end".
//!
//! A plain thread-local record (no atomics, no lock, no allocation): a few slots of (cell, count).
//! Past them a borrow is counted as untracked, and then the answer for a cell not in a slot is
//! "maybe", which the cell treats as "yes" (an error instead of a possible self-deadlock).

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::sync::thread_local;

/// Distinct cells one thread may hold shared borrows of at once and still be told apart exactly.
const SLOTS: usize = 8;

#[derive(Debug)]
struct Held {
    /// This thread's key, 0 until first asked for.
    key: usize,
    cells: [usize; SLOTS],
    counts: [usize; SLOTS],
    untracked: usize,
}

impl Held {
    const EMPTY: Self = Self {
        key: 0,
        cells: [0; SLOTS],
        counts: [0; SLOTS],
        untracked: 0,
    };
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
static NEXT_KEY: AtomicUsize = AtomicUsize::new(1);

/// This thread's identity: never 0, never reused.
pub(crate) fn thread_key() -> usize {
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        if held.key == 0 {
            held.key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        }
        held.key
    })
}

/// Records a shared borrow of the cell at `cell` by this thread.
pub(crate) fn add(cell: usize) {
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        let slot = held
            .cells
            .iter()
            .zip(&held.counts)
            .position(|(&c, &n)| c == cell && n > 0)
            .or_else(|| held.counts.iter().position(|&n| n == 0));
        match slot {
            Some(slot) => {
                held.cells[slot] = cell;
                held.counts[slot] += 1;
            }
            None => held.untracked += 1,
        }
    });
}

/// Forgets one shared borrow of the cell at `cell` by this thread.
pub(crate) fn remove(cell: usize) {
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        let slot = held
            .cells
            .iter()
            .zip(&held.counts)
            .position(|(&c, &n)| c == cell && n > 0);
        match slot {
            Some(slot) => held.counts[slot] -= 1,
            // Recorded when every slot was taken.
            None => held.untracked -= 1,
        }
    });
}

/// Whether this thread may hold a shared borrow of the cell at `cell` (exact unless it holds
/// borrows of more than `SLOTS` cells at once).
pub(crate) fn may_hold(cell: usize) -> bool {
    HELD.with(|held| {
        let held = held.borrow();
        held.untracked > 0
            || held
                .cells
                .iter()
                .zip(&held.counts)
                .any(|(&c, &n)| c == cell && n > 0)
    })
}
