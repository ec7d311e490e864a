//! Engine-agnostic concurrency primitives behind ThreadKit.
//!
//! Nothing here depends on Godot: the `threadkit` extension crate converts Variants and Callables
//! and forwards to these types, and Rust gdext crates can use them directly. Every atomic, lock and
//! thread spawn is imported through [`sync`], so the loom model tests (`--cfg loom`) check the real
//! code rather than a copy.

pub mod counter;
mod sync;

pub use counter::{AtomicF64, Counter};
