//! The cell: an atomic state word, shared-borrow counts striped over cache lines, and bookkeeping
//! that only the mutable borrower touches.
//!
//! A shared borrow adds one to its thread's stripe (one read-modify-write on a cache line that
//! other threads rarely write) and then reads the state word (which only mutable borrows write):
//! two threads calling `&self` methods on one object no longer bounce a shared counter between
//! their cores. A mutable borrow sets the state word's bit first, then waits until every stripe
//! is zero; both sides write, then read the other's word, all sequentially consistent, so either
//! the reader sees the bit and backs off or the writer sees the reader's count and waits.
//! A thread already reading the cell keeps reading while a writer waits for it (a re-entrant read
//! queued behind that writer would wait for itself). The parking lot is touched only when a
//! sleeper's bit is set.
//!
//! While the mutable borrow is held, the owner thread may make it inaccessible (`base_mut()` in
//! gdext, which lets Godot call back into the object) and borrow again: those nested borrows are
//! counted in the owner's bookkeeping, not in the stripes, so other threads that briefly bump a
//! stripe while they find the cell taken can never make a nested borrow fail.

use std::cell::UnsafeCell;
use std::error::Error;
use std::fmt;
use std::ptr::NonNull;

use crossbeam_utils::CachePadded;

use crate::guards::{InaccessibleGuard, MutGuard, RefGuard};
use crate::held;
use crate::sync::{AtomicUsize, Ordering, OwnerData, Parker, Queue, seq_cst_handshake};

const MUT: usize = 1;
const READERS_PARKED: usize = 1 << 1;
const WRITERS_PARKED: usize = 1 << 2;
const DRAIN_PARKED: usize = 1 << 3;
/// Stripes of shared-borrow counts; a thread uses the one its key selects. Under loom two, so
/// that its 3-thread models also have two threads sharing a stripe.
const STRIPES: usize = if cfg!(loom) { 2 } else { 4 };
/// Leaves room above it for the brief increments of threads that find the cell taken.
const MAX_SHARED: usize = usize::MAX / 2;

/// A cell that hands out shared and mutable borrows of its value under Rust's rules, checked at
/// run time, with re-entrant mutable re-borrows through [`GdCell::make_inaccessible`].
///
/// `BLOCKING = true`: a borrow that conflicts with another thread's borrow waits for it; one that
/// conflicts with this thread's own borrow fails (it would wait for itself). `BLOCKING = false`:
/// every conflict fails (the cell is used from one thread).
pub struct GdCell<T, const BLOCKING: bool> {
    state: CachePadded<AtomicUsize>,
    readers: [CachePadded<AtomicUsize>; STRIPES],
    /// The thread holding the mutable borrow (`held::thread_key`), 0 when none. Set after
    /// taking it and cleared before releasing it, so a thread reads its own key here only while
    /// it is the owner.
    owner: AtomicUsize,
    exclusive: OwnerData<Exclusive<T>>,
    parker: Parker,
    value: UnsafeCell<T>,
}

/// The mutable borrower's bookkeeping.
struct Exclusive<T> {
    /// Live mutable guards, accessible or made inaccessible.
    mut_depth: usize,
    /// Live inaccessible guards. The top mutable borrow is accessible iff `mut_depth` exceeds it.
    inaccessible_depth: usize,
    /// Shared borrows the owner took while its mutable borrow was inaccessible.
    nested_shared: usize,
    /// The references given to `make_inaccessible`, innermost last: nested borrows derive from
    /// the innermost, as a re-borrow of it.
    reborrowed: Vec<NonNull<T>>,
}

impl<T> Exclusive<T> {
    const IDLE: Self = Self {
        mut_depth: 0,
        inaccessible_depth: 0,
        nested_shared: 0,
        reborrowed: Vec::new(),
    };

    fn accessible(&self) -> bool {
        self.mut_depth > self.inaccessible_depth
    }
}

// SAFETY: moving the cell moves its value (hence `T: Send`); the only pointers it keeps
// (`reborrowed`) exist while guards borrow the cell, and a borrowed cell cannot be moved.
unsafe impl<T: Send, const BLOCKING: bool> Send for GdCell<T, BLOCKING> {}
// SAFETY: every access to the value goes through guards that the state word hands out under the
// borrow rules (one mutable borrow, or shared ones), and the owner-only bookkeeping is touched by
// the mutable borrower alone. Shared borrows may be held on several threads at once, as gdext's
// own blocking cell allows: gdext's `experimental-threads` leaves what a `&self` method does to a
// non-`Sync` field to its author, and so do we (hence `T: Send`, not `T: Sync`).
unsafe impl<T: Send> Sync for GdCell<T, true> {}

/// Why a borrow was refused.
#[derive(Debug)]
struct BorrowError(&'static str);

impl fmt::Display for BorrowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Error for BorrowError {}

fn refused<R>(why: &'static str) -> Result<R, Box<dyn Error>> {
    Err(Box::new(BorrowError(why)))
}

impl<T, const BLOCKING: bool> GdCell<T, BLOCKING> {
    pub fn new(value: T) -> Self {
        Self {
            state: CachePadded::new(AtomicUsize::new(0)),
            readers: std::array::from_fn(|_| CachePadded::new(AtomicUsize::new(0))),
            owner: AtomicUsize::new(0),
            exclusive: OwnerData::new(Exclusive::IDLE),
            parker: Parker::new(),
            value: UnsafeCell::new(value),
        }
    }

    /// A shared borrow of the value. Fails if this thread holds the mutable borrow and has not
    /// made it inaccessible; waits (blocking cell) while another thread holds the mutable borrow.
    pub fn borrow(&self) -> Result<RefGuard<'_, T, BLOCKING>, Box<dyn Error>> {
        loop {
            let (stripe, re_entrant) = if BLOCKING {
                let (thread, re_entrant) = held::enter(self.key());
                (thread % STRIPES, re_entrant)
            } else {
                (0, false)
            };
            let before = self.readers[stripe].fetch_add(1, Ordering::SeqCst);
            seq_cst_handshake();
            if before >= MAX_SHARED {
                self.release_shared(stripe);
                return refused("GdCell: too many shared borrows");
            }
            // A re-entrant reader holds a borrow the writer is still waiting for, so the writer
            // cannot have its borrow yet: reading on is safe, and waiting would never end.
            if re_entrant || self.state.load(Ordering::SeqCst) & MUT == 0 {
                return Ok(RefGuard::new(self, self.value_ptr(), Some(stripe)));
            }
            self.release_shared(stripe);
            if !BLOCKING || self.owned_by_current_thread() {
                return self.borrow_nested();
            }
            self.park(Queue::Readers, |state| state & MUT != 0);
        }
    }

    /// The mutable borrow of the value. Fails if this thread holds any accessible borrow of it;
    /// waits (blocking cell) while other threads hold borrows.
    pub fn borrow_mut(&self) -> Result<MutGuard<'_, T, BLOCKING>, Box<dyn Error>> {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & MUT != 0 {
                if !BLOCKING || self.owned_by_current_thread() {
                    return self.borrow_mut_nested();
                }
                self.park(Queue::Writers, |state| state & MUT != 0);
                state = self.state.load(Ordering::Relaxed);
                continue;
            }
            if !BLOCKING && self.has_readers() {
                return refused("GdCell: cannot borrow mutably while shared borrows exist");
            }
            if BLOCKING && held::holds(self.key()) {
                return refused(
                    "GdCell: this thread holds a shared borrow, so a mutable borrow would wait for itself",
                );
            }
            match self.state.compare_exchange_weak(
                state,
                state | MUT,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => state = now,
            }
        }
        seq_cst_handshake();
        self.owner.store(held::thread_key(), Ordering::Relaxed);
        // New readers now back off; wait for the ones already in.
        while self.has_readers() {
            self.park(Queue::Drain, |_| self.has_readers());
        }
        // SAFETY: this thread has just taken the mutable borrow.
        unsafe { self.exclusive.with(|ex| ex.mut_depth = 1) };
        Ok(MutGuard::new(self, self.value_ptr()))
    }

    /// Makes the current (accessible) mutable borrow, `current_ref`, inaccessible until the
    /// returned guard drops, so the value can be borrowed again (shared or mutably) meanwhile.
    /// Fails if there is no accessible mutable borrow or `current_ref` is not it.
    pub fn make_inaccessible<'cell, 'val>(
        &'cell self,
        current_ref: &'val mut T,
    ) -> Result<InaccessibleGuard<'val, T, BLOCKING>, Box<dyn Error>>
    where
        'cell: 'val,
    {
        if self.state.load(Ordering::Relaxed) & MUT == 0
            || (BLOCKING && !self.owned_by_current_thread())
        {
            return refused("GdCell: make_inaccessible needs this thread's mutable borrow");
        }
        let current = NonNull::from(current_ref);
        // SAFETY: this thread holds the mutable borrow (checked above).
        unsafe {
            self.exclusive.with(|ex| {
                if !ex.accessible() {
                    return refused("GdCell: the mutable borrow is already inaccessible");
                }
                if current != Self::base(ex, self.value_ptr()) {
                    return refused(
                        "GdCell: make_inaccessible was given a reference that is not the cell's current mutable borrow",
                    );
                }
                ex.inaccessible_depth += 1;
                ex.reborrowed.push(current);
                Ok(InaccessibleGuard::new(self))
            })
        }
    }

    /// Whether any borrow (shared, or mutable whether accessible or not) exists.
    pub fn is_currently_bound(&self) -> bool {
        self.state.load(Ordering::SeqCst) & MUT != 0 || self.has_readers()
    }

    fn borrow_nested(&self) -> Result<RefGuard<'_, T, BLOCKING>, Box<dyn Error>> {
        // SAFETY: this thread holds the mutable borrow (the callers checked).
        unsafe {
            self.exclusive.with(|ex| {
                if ex.accessible() {
                    return refused(
                        "GdCell: cannot borrow while an accessible mutable borrow exists",
                    );
                }
                ex.nested_shared += 1;
                Ok(RefGuard::new(self, Self::base(ex, self.value_ptr()), None))
            })
        }
    }

    fn borrow_mut_nested(&self) -> Result<MutGuard<'_, T, BLOCKING>, Box<dyn Error>> {
        // SAFETY: this thread holds the mutable borrow (the callers checked).
        unsafe {
            self.exclusive.with(|ex| {
                if ex.accessible() {
                    return refused("GdCell: the value is already mutably borrowed");
                }
                if ex.nested_shared > 0 {
                    return refused("GdCell: cannot borrow mutably while shared borrows exist");
                }
                ex.mut_depth += 1;
                Ok(MutGuard::new(self, Self::base(ex, self.value_ptr())))
            })
        }
    }

    /// Ends a shared borrow counted in `stripe`; wakes a writer waiting for the last of them.
    pub(crate) fn release_shared(&self, stripe: usize) {
        if BLOCKING {
            held::leave(self.key());
        }
        let before = self.readers[stripe].fetch_sub(1, Ordering::SeqCst);
        seq_cst_handshake();
        if BLOCKING && before == 1 && self.state.load(Ordering::SeqCst) & DRAIN_PARKED != 0 {
            self.wake(Queue::Drain);
        }
    }

    fn has_readers(&self) -> bool {
        self.readers
            .iter()
            .any(|count| count.load(Ordering::SeqCst) != 0)
    }

    /// Ends a shared borrow the owner took while its mutable borrow was inaccessible.
    pub(crate) fn release_nested_shared(&self) {
        // SAFETY: nested borrows belong to the owner thread, and guards do not leave it.
        unsafe { self.exclusive.with(|ex| ex.nested_shared -= 1) };
    }

    /// Ends a mutable borrow; the last one releases the cell and wakes every sleeper.
    pub(crate) fn release_mut(&self) {
        // SAFETY: mutable guards belong to the owner thread, and do not leave it.
        let last = unsafe {
            self.exclusive.with(|ex| {
                // A leaked InaccessibleGuard (or borrows outliving one) would leave nested
                // borrows alive: then the cell stays taken rather than hand them out twice.
                let consistent = ex.accessible() && ex.nested_shared == 0;
                if consistent {
                    ex.mut_depth -= 1;
                }
                consistent.then_some(ex.mut_depth == 0)
            })
        };
        match last {
            Some(true) => {
                self.owner.store(0, Ordering::Relaxed);
                let before = self.state.fetch_and(!MUT, Ordering::SeqCst);
                if before & READERS_PARKED != 0 {
                    self.wake(Queue::Readers);
                }
                if before & WRITERS_PARKED != 0 {
                    self.wake(Queue::Writers);
                }
            }
            Some(false) => {}
            None if std::thread::panicking() => {}
            None => panic!(
                "GdCell: a mutable borrow ended while borrows taken under its make_inaccessible() were still alive"
            ),
        }
    }

    /// Whether the borrows taken under the innermost inaccessible guard have all ended.
    pub(crate) fn can_restore(&self) -> bool {
        // SAFETY: inaccessible guards belong to the owner thread, and do not leave it.
        unsafe {
            self.exclusive
                .with(|ex| ex.mut_depth == ex.inaccessible_depth && ex.nested_shared == 0)
        }
    }

    /// Makes the mutable borrow accessible again (an inaccessible guard dropping).
    pub(crate) fn restore(&self) {
        if !self.can_restore() {
            if std::thread::panicking() {
                return;
            }
            panic!(
                "GdCell: an InaccessibleGuard dropped while borrows taken under it were still alive"
            );
        }
        // SAFETY: as in `can_restore`.
        unsafe {
            self.exclusive.with(|ex| {
                ex.inaccessible_depth -= 1;
                ex.reborrowed.pop();
            })
        };
    }

    fn owned_by_current_thread(&self) -> bool {
        self.owner.load(Ordering::Relaxed) == held::thread_key()
    }

    /// The pointer new borrows derive from: the innermost re-borrowed reference, else the value.
    fn base(ex: &Exclusive<T>, value: NonNull<T>) -> NonNull<T> {
        ex.reborrowed.last().copied().unwrap_or(value)
    }

    fn value_ptr(&self) -> NonNull<T> {
        // SAFETY: UnsafeCell::get is never null.
        unsafe { NonNull::new_unchecked(self.value.get()) }
    }

    /// This cell's identity: the address of its state word, also its parking-lot key.
    pub(crate) fn key(&self) -> usize {
        &*self.state as *const AtomicUsize as usize
    }

    /// Sleeps on `queue` unless, once the queue's bit is set in the state word (so whoever
    /// changes what blocks this thread wakes it), `blocked(state)` no longer holds. Returns when
    /// woken or when not blocked.
    fn park(&self, queue: Queue, blocked: impl Fn(usize) -> bool) {
        let bit = Self::parked_bit(queue);
        self.parker.park(self.key(), queue, || {
            let state = self.state.fetch_or(bit, Ordering::SeqCst) | bit;
            seq_cst_handshake();
            blocked(state)
        });
    }

    fn wake(&self, queue: Queue) {
        let bit = Self::parked_bit(queue);
        self.parker.unpark_all(self.key(), queue, || {
            self.state.fetch_and(!bit, Ordering::SeqCst);
        });
    }

    fn parked_bit(queue: Queue) -> usize {
        match queue {
            Queue::Readers => READERS_PARKED,
            Queue::Writers => WRITERS_PARKED,
            Queue::Drain => DRAIN_PARKED,
        }
    }
}

impl<T, const BLOCKING: bool> fmt::Debug for GdCell<T, BLOCKING> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GdCell")
            .field("blocking", &BLOCKING)
            .field("bound", &self.is_currently_bound())
            .finish_non_exhaustive()
    }
}
