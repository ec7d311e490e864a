//! ThreadKit's GDExtension: one module per GDScript class, each a thin binding over
//! `threadkit-core`.

use godot::prelude::*;

pub mod async_task_processor;
pub mod atomic_counter;
mod call;
mod coroutine;
mod describe;
#[cfg(test)]
mod docs_check;
mod held_locks;
mod kept_call;
mod lookup;
mod main_queue;
pub mod main_thread_dispatcher;
mod main_thread_only;
mod monitors;
mod problem;
pub mod read_write_lock;
pub mod safe_object_reference;
mod script_errors;
mod send;
pub mod shared_resource;
mod shutdown;
mod status;
pub mod task_handle;
#[cfg(feature = "test-probes")]
mod test_probe;
pub mod thread_context;
pub mod thread_local;
pub mod thread_safe_node_manager;
pub mod thread_safe_queue;
pub mod thread_safety_tester;
mod thread_switch;

pub use async_task_processor::AsyncTaskProcessor;
pub use atomic_counter::AtomicCounter;
pub use main_thread_dispatcher::MainThreadDispatcher;
pub use read_write_lock::ReadWriteLock;
pub use safe_object_reference::SafeObjectReference;
pub use shared_resource::SharedResource;
pub use task_handle::TaskHandle;
pub use thread_context::ThreadContext;
pub use thread_local::ThreadLocal;
pub use thread_safe_node_manager::ThreadSafeNodeManager;
pub use thread_safe_queue::ThreadSafeQueue;
pub use thread_safety_tester::ThreadSafetyTester;

struct ThreadKit;

#[gdextension(entry_symbol = threadkit_init)]
// SAFETY: the only GDExtension entry point of this library; gdext's macro generates the
// `threadkit_init` symbol named in addons/threadkit/threadkit.gdextension.
unsafe impl ExtensionLibrary for ThreadKit {
    fn on_stage_init(stage: InitStage) {
        if stage == InitStage::Scene {
            monitors::install();
            script_errors::install();
            // The scene tree does not exist yet: install the dispatcher's node once the main loop
            // runs its first deferred calls.
            Callable::from_fn("ThreadKit.install_dispatcher", |_| {
                main_thread_dispatcher::install();
            })
            .call_deferred(&[]);
        }
    }

    fn on_stage_deinit(stage: InitStage) {
        if stage == InitStage::Scene {
            shutdown::begin();
            main_queue::discard_queue();
            thread_switch::discard();
            monitors::uninstall();
            held_locks::uninstall();
            thread_local::uninstall();
            script_errors::uninstall();
        }
    }
}
