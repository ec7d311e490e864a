//! ThreadKit's replacement of gdext's `godot-cell`: the run-time borrow checker that guards every
//! Rust object Godot calls into (`Gd::bind`, `Gd::bind_mut`, `#[func]` receivers, `base_mut`).
//!
//! Patched in for gdext by the workspace's `[patch.crates-io]`. It keeps gdext's rules: shared
//! borrows from any number of threads, one accessible mutable borrow, re-entrant borrows while
//! the mutable borrow is made inaccessible (`base_mut()` calling into Godot, which calls back),
//! and in [`blocking`] a borrow that conflicts with another thread's waits, while one that would
//! wait for the current thread itself fails instead. Unlike gdext's blocking cell (a mutex taken
//! twice, a per-thread map, reference-counted condition variables and a wake-up on every
//! release), taking and releasing a shared borrow here is one atomic read-modify-write each,
//! with no lock, no allocation and no wake-up call unless someone sleeps; sleeping goes through
//! `parking_lot_core`.
//!
//! Scheduling is gdext's: a writer that finds readers steps back and waits until they are gone,
//! so new readers may keep a writer waiting, but a reader never waits for a writer that waits
//! for it (a thread that reads an object and waits for another thread reading it cannot
//! deadlock). A blocking cell spends five 64-byte lines on its words (so two threads reading one
//! object write different lines); the panicking one, used from one thread, pads nothing.

mod cell;
mod guards;
mod held;
pub mod policy;
mod sync;

/// The cell for objects used from one thread (gdext without `experimental-threads`): every
/// conflicting borrow fails.
pub mod panicking {
    /// See [`crate::blocking::GdCell`]; here every conflicting borrow fails instead of waiting.
    pub type GdCell<T> = crate::cell::GdCell<T, crate::policy::Panicking>;
    /// A shared borrow.
    pub type RefGuard<'a, T> = crate::guards::RefGuard<'a, T, crate::policy::Panicking>;
    /// The mutable borrow.
    pub type MutGuard<'a, T> = crate::guards::MutGuard<'a, T, crate::policy::Panicking>;
    /// A mutable borrow made inaccessible for re-entrant borrows.
    pub type InaccessibleGuard<'a, T> =
        crate::guards::InaccessibleGuard<'a, T, crate::policy::Panicking>;
}

/// The cell for objects several threads use (gdext with `experimental-threads`): a borrow that
/// conflicts with another thread's waits for it.
pub mod blocking {
    /// A cell whose conflicting borrows wait for other threads and fail for the current one.
    pub type GdCell<T> = crate::cell::GdCell<T, crate::policy::Blocking>;
    /// A shared borrow.
    pub type RefGuard<'a, T> = crate::guards::RefGuard<'a, T, crate::policy::Blocking>;
    /// The mutable borrow.
    pub type MutGuard<'a, T> = crate::guards::MutGuard<'a, T, crate::policy::Blocking>;
    /// A mutable borrow made inaccessible for re-entrant borrows.
    pub type InaccessibleGuard<'a, T> =
        crate::guards::InaccessibleGuard<'a, T, crate::policy::Blocking>;
}
