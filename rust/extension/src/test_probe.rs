//! `ThreadKitTestProbe`: lets the in-engine tests drive the Rust API as another gdext crate
//! would. Built only with the `test-probes` feature (which `cargo xtask test` enables).

use godot::prelude::*;

use crate::AsyncTaskProcessor;

/// Test-only entry points into ThreadKit's Rust API.
#[derive(GodotClass)]
#[class(init, base = RefCounted)]
pub struct ThreadKitTestProbe {
    base: Base<RefCounted>,
}

#[godot_api]
impl ThreadKitTestProbe {
    /// Spawns a Rust closure summing 1..=n; `callback` gets [sum, whether the sum ran off the
    /// main thread, whether the continuation ran on it]. Returns the task id, or -1.
    #[func]
    fn spawn_sum(processor: Gd<AsyncTaskProcessor>, n: i64, callback: Callable) -> i64 {
        let spawned = processor.bind().spawn(
            move || ((1..=n).sum::<i64>(), !godot::init::is_main_thread()),
            move |(sum, off_main)| {
                callback.call(&[
                    sum.to_variant(),
                    off_main.to_variant(),
                    godot::init::is_main_thread().to_variant(),
                ]);
            },
        );
        spawned.map_or(-1, |id| id as i64)
    }

    /// Spawns a Rust closure that panics; its continuation must never run.
    #[func]
    fn spawn_panic(processor: Gd<AsyncTaskProcessor>, callback: Callable) -> i64 {
        let spawned = processor.bind().spawn(
            || -> i64 { panic!("probe panic") },
            move |_| {
                callback.call(&[]);
            },
        );
        spawned.map_or(-1, |id| id as i64)
    }
}
