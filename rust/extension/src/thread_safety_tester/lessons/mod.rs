//! The two lessons `ThreadSafetyTester` teaches: the contention race ([`contention`]) and the
//! deadlock demo ([`deadlock`]), plain Rust on real OS threads with no Godot types.
//!
//! They live here, inside the binding, rather than in `threadkit-core` or a crate of their own:
//! their argument names, range errors and lesson sentences are written for the GDScript class and
//! change with it, and nothing else runs them, so a crate would be a second home for one class's
//! text. Their unit tests run with the extension's (`cargo test --workspace`), needing no engine.

pub mod contention;
pub mod deadlock;
