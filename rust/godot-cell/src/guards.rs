//! Guards: each ends its borrow when dropped. They stay on the thread that took them (they are
//! neither `Send` nor `Sync`), because a borrow's bookkeeping is that thread's.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use crate::cell::GdCell;
use crate::policy::Policy;

/// Not `Send`, not `Sync`.
type ThreadBound = PhantomData<*const ()>;

/// A shared borrow of a [`GdCell`]'s value.
pub struct RefGuard<'a, T, P: Policy> {
    cell: &'a GdCell<T, P>,
    value: NonNull<T>,
    /// The stripe counting this borrow; `None` for one the owner took under its inaccessible
    /// mutable borrow (counted in its bookkeeping).
    stripe: Option<usize>,
    _thread: ThreadBound,
}

impl<'a, T, P: Policy> RefGuard<'a, T, P> {
    pub(crate) fn new(cell: &'a GdCell<T, P>, value: NonNull<T>, stripe: Option<usize>) -> Self {
        Self {
            cell,
            value,
            stripe,
            _thread: PhantomData,
        }
    }
}

impl<T, P: Policy> Deref for RefGuard<'_, T, P> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the cell counts this shared borrow, so no mutable reference is usable until
        // the guard drops.
        unsafe { self.value.as_ref() }
    }
}

impl<T, P: Policy> Drop for RefGuard<'_, T, P> {
    fn drop(&mut self) {
        match self.stripe {
            Some(stripe) => self.cell.release_shared(stripe),
            None => self.cell.release_nested_shared(),
        }
    }
}

impl<T, P: Policy> fmt::Debug for RefGuard<'_, T, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefGuard")
            .field("nested", &self.stripe.is_none())
            .finish_non_exhaustive()
    }
}

/// The mutable borrow of a [`GdCell`]'s value.
pub struct MutGuard<'a, T, P: Policy> {
    cell: &'a GdCell<T, P>,
    value: NonNull<T>,
    _thread: ThreadBound,
}

impl<'a, T, P: Policy> MutGuard<'a, T, P> {
    pub(crate) fn new(cell: &'a GdCell<T, P>, value: NonNull<T>) -> Self {
        Self {
            cell,
            value,
            _thread: PhantomData,
        }
    }
}

impl<T, P: Policy> Deref for MutGuard<'_, T, P> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard is the accessible mutable borrow: while it is made inaccessible, the
        // reference lent to `make_inaccessible` keeps it mutably borrowed, so it cannot be used.
        unsafe { self.value.as_ref() }
    }
}

impl<T, P: Policy> DerefMut for MutGuard<'_, T, P> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes the reference unique.
        unsafe { self.value.as_mut() }
    }
}

impl<T, P: Policy> Drop for MutGuard<'_, T, P> {
    fn drop(&mut self) {
        self.cell.release_mut();
    }
}

impl<T, P: Policy> fmt::Debug for MutGuard<'_, T, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutGuard").finish_non_exhaustive()
    }
}

/// Keeps a mutable borrow inaccessible (see [`GdCell::make_inaccessible`]); dropping it makes the
/// borrow accessible again, once the borrows taken meanwhile have ended.
pub struct InaccessibleGuard<'a, T, P: Policy> {
    cell: &'a GdCell<T, P>,
    _thread: ThreadBound,
}

impl<'a, T, P: Policy> InaccessibleGuard<'a, T, P> {
    pub(crate) fn new(cell: &'a GdCell<T, P>) -> Self {
        Self {
            cell,
            _thread: PhantomData,
        }
    }

    /// Whether every borrow taken while this guard lives has ended, so it may drop.
    pub fn can_drop(&self) -> bool {
        self.cell.can_restore()
    }

    /// Drops the guard if it may ([`Self::can_drop`]); otherwise gives it back.
    pub fn try_drop(self) -> Result<(), Self> {
        if self.can_drop() { Ok(()) } else { Err(self) }
    }
}

impl<T, P: Policy> Drop for InaccessibleGuard<'_, T, P> {
    fn drop(&mut self) {
        self.cell.restore();
    }
}

impl<T, P: Policy> fmt::Debug for InaccessibleGuard<'_, T, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InaccessibleGuard").finish_non_exhaustive()
    }
}
