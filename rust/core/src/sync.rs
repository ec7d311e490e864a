//! One place that chooses between std and loom synchronisation primitives.
//!
//! Under `--cfg loom` every atomic, lock and condition variable used by the model-tested code
//! comes from loom, so loom explores the interleavings of the real code (the approach tokio and
//! crossbeam take). std's Mutex/Condvar are used there (rather than parking_lot) because loom
//! mirrors their API exactly. Channels (crossbeam) are not modelled by loom; the code built on
//! them is covered by stress tests.

#[cfg(not(loom))]
pub(crate) use std::sync::{
    Arc, Condvar, Mutex,
    atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence},
};
#[cfg(not(loom))]
pub(crate) use std::thread::yield_now;

#[cfg(loom)]
pub(crate) use loom::sync::{
    Arc, Condvar, Mutex,
    atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence},
};
#[cfg(loom)]
pub(crate) use loom::thread::yield_now;
