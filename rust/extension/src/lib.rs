//! ThreadKit's GDExtension: one module per GDScript class, each a thin binding over
//! `threadkit-core`.

use godot::prelude::*;

pub mod async_task_processor;
pub mod atomic_counter;
mod call;
mod send;
pub mod task_handle;
#[cfg(feature = "test-probes")]
mod test_probe;
pub mod thread_context;

pub use async_task_processor::AsyncTaskProcessor;
pub use atomic_counter::AtomicCounter;
pub use task_handle::TaskHandle;
pub use thread_context::ThreadContext;

struct ThreadKit;

// SAFETY: the only GDExtension entry point of this library; gdext's macro generates the
// `threadkit_init` symbol named in addons/threadkit/threadkit.gdextension.
#[gdextension(entry_symbol = threadkit_init)]
unsafe impl ExtensionLibrary for ThreadKit {}
