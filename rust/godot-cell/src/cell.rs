//! The cell: a state word, shared-borrow counts (striped over cache lines in the blocking cell),
//! and bookkeeping that only the mutable borrower touches.
//!
//! A shared borrow adds one to its thread's stripe (one read-modify-write on a cache line that
//! other threads rarely write) and then reads the state word (which only mutable borrows write):
//! two threads calling `&self` methods on one object do not bounce a shared counter between their
//! cores. A mutable borrow sets the state word's bit, then checks that every stripe is zero; both
//! sides write, then read the other's word, all sequentially consistent, so either the reader
//! sees the bit and backs off or the writer sees the reader's count. A writer that sees readers
//! clears its bit again and sleeps until they are gone: readers never wait for a writer that
//! waits for readers, so a thread that reads an object and waits for another thread reading it
//! too cannot deadlock with a writer (as with gdext's own cell, a steady stream of readers can
//! keep a writer waiting). The parking lot is touched only when a sleeper's bit is set.
//!
//! While the mutable borrow is held, the owner thread may make it inaccessible (`base_mut()` in
//! gdext, which lets Godot call back into the object) and borrow again: those nested borrows are
//! counted in the owner's bookkeeping, not in the stripes, so other threads that briefly bump a
//! stripe while they find the cell taken can never make a nested borrow fail.

use std::cell::UnsafeCell;
use std::error::Error;
use std::fmt;
use std::ptr::NonNull;

use crate::guards::{InaccessibleGuard, MutGuard, RefGuard};
use crate::held;
use crate::policy::{Policy, Words};
use crate::sync::{AtomicUsize, Ordering, OwnerData, Parker, Queue, seq_cst_handshake};

const MUT: usize = 1;
const READERS_PARKED: usize = 1 << 1;
const WRITERS_PARKED: usize = 1 << 2;
const DRAIN_PARKED: usize = 1 << 3;
/// A bug left borrows alive that the cell can no longer account for: every borrow fails from now
/// on, and the object is never freed (`is_currently_bound` stays true) rather than freed in use.
const POISONED: usize = 1 << 4;
/// Leaves room above it for the brief increments of threads that find the cell taken.
const MAX_SHARED: usize = usize::MAX / 2;

const POISONED_MESSAGE: &str =
    "GdCell: poisoned: a borrow taken under make_inaccessible() outlived its guard";

/// A cell that hands out shared and mutable borrows of its value under Rust's rules, checked at
/// run time, with re-entrant mutable re-borrows through [`GdCell::make_inaccessible`].
///
/// [`Blocking`](crate::policy::Blocking): a borrow that conflicts with another thread's borrow
/// waits for it; one that conflicts with this thread's own borrow fails (it would wait for
/// itself). [`Panicking`](crate::policy::Panicking): every conflict fails (the cell is used from
/// one thread).
pub struct GdCell<T, P: Policy> {
    words: P::Words,
    /// Names the cell in threads' records of what they read (blocking cell; 0 otherwise).
    id: usize,
    /// The thread holding the mutable borrow (`held::thread_key`; blocking cell), 0 when none.
    /// Set after taking it and cleared before releasing it, so a thread reads its own key here
    /// only while it is the owner.
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
unsafe impl<T: Send, P: Policy> Send for GdCell<T, P> {}
// Every access to the value goes through guards handed out under the borrow rules (one mutable
// borrow, or shared ones), and the owner-only bookkeeping is touched by the mutable borrower
// alone. Shared borrows may be held on several threads at once, as gdext's own blocking cell
// allows: `experimental-threads` leaves what a `&self` method does to a non-`Sync` field to its
// author, and so do we.
// SAFETY: hence `T: Send` (the value may be used from any thread), not `T: Sync`, as gdext's.
unsafe impl<T: Send> Sync for GdCell<T, crate::policy::Blocking> {}

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

impl<T, P: Policy> GdCell<T, P> {
    pub fn new(value: T) -> Self {
        Self {
            words: P::Words::new(),
            id: if P::BLOCKING { held::new_id() } else { 0 },
            owner: AtomicUsize::new(0),
            exclusive: OwnerData::new(Exclusive::IDLE),
            parker: Parker::new(),
            value: UnsafeCell::new(value),
        }
    }

    /// A shared borrow of the value. Fails if this thread holds the mutable borrow and has not
    /// made it inaccessible; waits (blocking cell) while another thread holds the mutable borrow.
    pub fn borrow(&self) -> Result<RefGuard<'_, T, P>, Box<dyn Error>> {
        loop {
            let stripe = if P::BLOCKING {
                held::enter(self.id) % P::Words::STRIPES
            } else {
                0
            };
            let before = self.words.readers(stripe).fetch_add(1, Ordering::SeqCst);
            seq_cst_handshake();
            if before >= MAX_SHARED {
                self.release_shared(stripe);
                return refused("GdCell: too many shared borrows");
            }
            let state = self.state().load(Ordering::SeqCst);
            if state & (MUT | POISONED) == 0 {
                return Ok(RefGuard::new(self, self.value_ptr(), Some(stripe)));
            }
            self.release_shared(stripe);
            if state & POISONED != 0 {
                return refused(POISONED_MESSAGE);
            }
            if !P::BLOCKING || self.owned_by(held::thread_key()) {
                return self.borrow_nested();
            }
            self.park(Queue::Readers, |state| state & MUT != 0);
        }
    }

    /// The mutable borrow of the value. Fails if this thread holds any accessible borrow of it;
    /// waits (blocking cell) while other threads hold borrows.
    pub fn borrow_mut(&self) -> Result<MutGuard<'_, T, P>, Box<dyn Error>> {
        // Checked first: this thread's reads cannot end while it waits here.
        if P::BLOCKING && held::may_hold(self.id) {
            return refused(
                "GdCell: this thread holds a shared borrow, so a mutable borrow would wait for itself",
            );
        }
        let me = if P::BLOCKING { held::thread_key() } else { 0 };
        loop {
            let state = self.state().load(Ordering::Relaxed);
            if state & POISONED != 0 {
                return refused(POISONED_MESSAGE);
            }
            if state & MUT != 0 {
                if !P::BLOCKING || self.owned_by(me) {
                    return self.borrow_mut_nested();
                }
                self.park(Queue::Writers, |state| state & MUT != 0);
                continue;
            }
            if self.has_readers() {
                if !P::BLOCKING {
                    return refused("GdCell: cannot borrow mutably while shared borrows exist");
                }
                self.park(Queue::Drain, |_| self.has_readers());
                continue;
            }
            if self
                .state()
                .compare_exchange_weak(state, state | MUT, Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            seq_cst_handshake();
            if self.has_readers() {
                // A reader came in between: let it (and any behind it) go on, and wait again.
                self.clear_mut();
                continue;
            }
            self.owner.store(me, Ordering::Relaxed);
            // SAFETY: this thread has just taken the mutable borrow.
            unsafe { self.exclusive.with(|ex| ex.mut_depth = 1) };
            return Ok(MutGuard::new(self, self.value_ptr()));
        }
    }

    /// Makes the current (accessible) mutable borrow, `current_ref`, inaccessible until the
    /// returned guard drops, so the value can be borrowed again (shared or mutably) meanwhile.
    /// Fails if there is no accessible mutable borrow or `current_ref` is not it.
    pub fn make_inaccessible<'cell, 'val>(
        &'cell self,
        current_ref: &'val mut T,
    ) -> Result<InaccessibleGuard<'val, T, P>, Box<dyn Error>>
    where
        'cell: 'val,
    {
        let state = self.state().load(Ordering::Relaxed);
        if state & MUT == 0 || (P::BLOCKING && !self.owned_by(held::thread_key())) {
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

    /// Whether any borrow (shared, or mutable whether accessible or not) exists, or the cell was
    /// poisoned: whether the value may be in use, so that it must not be destroyed.
    pub fn is_currently_bound(&self) -> bool {
        self.state().load(Ordering::SeqCst) & (MUT | POISONED) != 0 || self.has_readers()
    }

    fn borrow_nested(&self) -> Result<RefGuard<'_, T, P>, Box<dyn Error>> {
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

    fn borrow_mut_nested(&self) -> Result<MutGuard<'_, T, P>, Box<dyn Error>> {
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
    ///
    /// It reads the state word after its count is released, as `release_mut` touches the word
    /// after clearing its bit: so the cell must not be destroyed by another thread in that
    /// instant. gdext destroys an object only when `is_currently_bound` is false, so this needs a
    /// `free()` racing a call on the same object, which Godot itself does not survive either.
    pub(crate) fn release_shared(&self, stripe: usize) {
        if P::BLOCKING {
            held::leave(self.id);
        }
        let before = self.words.readers(stripe).fetch_sub(1, Ordering::SeqCst);
        seq_cst_handshake();
        if P::BLOCKING && before == 1 && self.state().load(Ordering::SeqCst) & DRAIN_PARKED != 0 {
            self.wake(Queue::Drain);
        }
    }

    fn has_readers(&self) -> bool {
        (0..P::Words::STRIPES).any(|stripe| self.words.readers(stripe).load(Ordering::SeqCst) != 0)
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
                // borrows alive: then the cell is poisoned rather than handing them out twice.
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
                self.clear_mut();
            }
            Some(false) => {}
            None => self.poison(),
        }
    }

    /// Clears the mutable bit and wakes whoever sleeps until it is clear.
    fn clear_mut(&self) {
        let before = self.state().fetch_and(!MUT, Ordering::SeqCst);
        if before & READERS_PARKED != 0 {
            self.wake(Queue::Readers);
        }
        if before & WRITERS_PARKED != 0 {
            self.wake(Queue::Writers);
        }
    }

    /// Fails every later borrow, wakes every sleeper so it fails too, and reports the bug.
    fn poison(&self) {
        self.state().fetch_or(POISONED, Ordering::SeqCst);
        self.wake(Queue::Readers);
        self.wake(Queue::Writers);
        self.wake(Queue::Drain);
        if !std::thread::panicking() {
            panic!("{POISONED_MESSAGE}");
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
            self.poison();
            return;
        }
        // SAFETY: as in `can_restore`.
        unsafe {
            self.exclusive.with(|ex| {
                ex.inaccessible_depth -= 1;
                ex.reborrowed.pop();
            })
        };
    }

    fn owned_by(&self, thread: usize) -> bool {
        self.owner.load(Ordering::Relaxed) == thread
    }

    fn state(&self) -> &AtomicUsize {
        self.words.state()
    }

    /// The pointer new borrows derive from: the innermost re-borrowed reference, else the value.
    fn base(ex: &Exclusive<T>, value: NonNull<T>) -> NonNull<T> {
        ex.reborrowed.last().copied().unwrap_or(value)
    }

    fn value_ptr(&self) -> NonNull<T> {
        // SAFETY: UnsafeCell::get is never null.
        unsafe { NonNull::new_unchecked(self.value.get()) }
    }

    /// The cell's parking-lot key: the address of its state word.
    fn key(&self) -> usize {
        self.state() as *const AtomicUsize as usize
    }

    /// Sleeps on `queue` unless, once the queue's bit is set in the state word (so whoever
    /// changes what blocks this thread wakes it), `blocked(state)` no longer holds or the cell is
    /// poisoned. Returns when woken or when not blocked.
    fn park(&self, queue: Queue, blocked: impl Fn(usize) -> bool) {
        let bit = Self::parked_bit(queue);
        self.parker.park(self.key(), queue, || {
            let state = self.state().fetch_or(bit, Ordering::SeqCst) | bit;
            seq_cst_handshake();
            state & POISONED == 0 && blocked(state)
        });
    }

    fn wake(&self, queue: Queue) {
        let bit = Self::parked_bit(queue);
        self.parker.unpark_all(self.key(), queue, || {
            self.state().fetch_and(!bit, Ordering::SeqCst);
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

impl<T, P: Policy> fmt::Debug for GdCell<T, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GdCell")
            .field("blocking", &P::BLOCKING)
            .field("bound", &self.is_currently_bound())
            .finish_non_exhaustive()
    }
}
