//! Guards: each ends its borrow when dropped. They stay on the thread that took them (they are
//! neither `Send` nor `Sync`), because a borrow's bookkeeping is that thread's.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use crate::cell::GdCell;

/// Not `Send`, not `Sync`.
type ThreadBound = PhantomData<*const ()>;

/// A shared borrow of a [`GdCell`]'s value.
pub struct RefGuard<'a, T, const BLOCKING: bool> {
    cell: &'a GdCell<T, BLOCKING>,
    value: NonNull<T>,
    /// The stripe counting this borrow; `None` for one the owner took under its inaccessible
    /// mutable borrow (counted in its bookkeeping).
    stripe: Option<usize>,
    _thread: ThreadBound,
}

impl<'a, T, const BLOCKING: bool> RefGuard<'a, T, BLOCKING> {
    pub(crate) fn new(
        cell: &'a GdCell<T, BLOCKING>,
        value: NonNull<T>,
        stripe: Option<usize>,
    ) -> Self {
        Self {
            cell,
            value,
            stripe,
            _thread: PhantomData,
        }
    }
}

impl<T, const BLOCKING: bool> Deref for RefGuard<'_, T, BLOCKING> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the cell counts this shared borrow, so no mutable reference is usable until
        // the guard drops.
        unsafe { self.value.as_ref() }
    }
}

impl<T, const BLOCKING: bool> Drop for RefGuard<'_, T, BLOCKING> {
    fn drop(&mut self) {
        match self.stripe {
            Some(stripe) => self.cell.release_shared(stripe),
            None => self.cell.release_nested_shared(),
        }
    }
}

impl<T, const BLOCKING: bool> fmt::Debug for RefGuard<'_, T, BLOCKING> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefGuard")
            .field("nested", &self.stripe.is_none())
            .finish_non_exhaustive()
    }
}

/// The mutable borrow of a [`GdCell`]'s value.
pub struct MutGuard<'a, T, const BLOCKING: bool> {
    cell: &'a GdCell<T, BLOCKING>,
    value: NonNull<T>,
    _thread: ThreadBound,
}

impl<'a, T, const BLOCKING: bool> MutGuard<'a, T, BLOCKING> {
    pub(crate) fn new(cell: &'a GdCell<T, BLOCKING>, value: NonNull<T>) -> Self {
        Self {
            cell,
            value,
            _thread: PhantomData,
        }
    }
}

impl<T, const BLOCKING: bool> Deref for MutGuard<'_, T, BLOCKING> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: this guard is the accessible mutable borrow: while it is made inaccessible, the
        // reference lent to `make_inaccessible` keeps it mutably borrowed, so it cannot be used.
        unsafe { self.value.as_ref() }
    }
}

impl<T, const BLOCKING: bool> DerefMut for MutGuard<'_, T, BLOCKING> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes the reference unique.
        unsafe { self.value.as_mut() }
    }
}

impl<T, const BLOCKING: bool> Drop for MutGuard<'_, T, BLOCKING> {
    fn drop(&mut self) {
        self.cell.release_mut();
    }
}

impl<T, const BLOCKING: bool> fmt::Debug for MutGuard<'_, T, BLOCKING> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutGuard").finish_non_exhaustive()
    }
}

/// Keeps a mutable borrow inaccessible (see [`GdCell::make_inaccessible`]); dropping it makes the
/// borrow accessible again, once the borrows taken meanwhile have ended.
pub struct InaccessibleGuard<'a, T, const BLOCKING: bool> {
    cell: &'a GdCell<T, BLOCKING>,
    _thread: ThreadBound,
}

impl<'a, T, const BLOCKING: bool> InaccessibleGuard<'a, T, BLOCKING> {
    pub(crate) fn new(cell: &'a GdCell<T, BLOCKING>) -> Self {
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

impl<T, const BLOCKING: bool> Drop for InaccessibleGuard<'_, T, BLOCKING> {
    fn drop(&mut self) {
        self.cell.restore();
    }
}

impl<T, const BLOCKING: bool> fmt::Debug for InaccessibleGuard<'_, T, BLOCKING> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InaccessibleGuard").finish_non_exhaustive()
    }
}
