//! Engine-agnostic concurrency primitives behind ThreadKit.
//!
//! Nothing here depends on Godot: the `threadkit` extension crate converts Variants and Callables
//! and forwards to these types, and Rust gdext crates can use them directly. The atomics, locks
//! and condition variables of the model-checked parts are imported through one `sync` module, so
//! the loom tests (`--cfg loom`) check the real code rather than a copy.

pub mod channel;
pub mod combine;
pub mod context;
pub mod counter;
pub mod dispatch;
pub mod drain;
pub mod group;
pub mod interrupt;
pub mod latch;
pub mod oneshot;
#[cfg(not(loom))]
pub mod per_thread;
pub mod pool;
pub mod rate;
pub mod rwlock;
pub mod shared_map;
pub mod stripes;
mod sync;
pub mod task;
pub mod task_state;
pub mod timer;
pub mod unwind;
pub mod wait_graph;

pub use counter::{AtomicF64, Counter};
pub use dispatch::{DispatchStats, Dispatcher, Overflow, PushError};
pub use drain::{DrainLimits, DrainReport, drain, wait_ready};
pub use group::Group;
pub use interrupt::Interrupt;
pub use latch::Latch;
pub use oneshot::{CallError, Caller, Runner, oneshot};
#[cfg(not(loom))]
pub use per_thread::{InitError, PerThread, PerThreadHandle};
pub use pool::{Pool, PoolStats, WaitError, current_task, yield_now};
pub use rwlock::{DowngradeError, LockError, TrackedRwLock, UnlockError, UpgradeError};
pub use shared_map::{KeyStats, MapStats, Reentrant, SharedMap};
pub use task::{Hook, Job, Label, Outcome, Priority, Task};
pub use task_state::{CancelOutcome, Reach, Status, TaskState, cancel_together};
pub use unwind::panic_message;
pub use wait_graph::{TaskRef, WaitCycle, WaitGraph};
