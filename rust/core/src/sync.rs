//! One place that chooses between std and loom synchronisation primitives.
//!
//! Under `--cfg loom` every atomic comes from loom, so loom can explore the interleavings of the
//! real code (the approach tokio and crossbeam take).

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
