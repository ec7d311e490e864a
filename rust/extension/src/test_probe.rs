//! `ThreadKitTestProbe`: lets the in-engine tests drive the Rust API as another gdext crate
//! would. Built only with the `test-probes` feature, which `cargo xtask test` enables for a
//! library of its own in target/test-probes/, never the one it installs in addons/threadkit/bin.

use std::rc::Rc;
use std::sync::atomic::{AtomicI64, Ordering};

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

    /// Spawns a no-op Rust task whose continuation is not `Send` (it holds an `Rc`) and counts,
    /// when dropped, on which thread (see [method continuation_drops]); `callback` is called if
    /// the continuation runs.
    #[func]
    fn spawn_with_drop_probe(processor: Gd<AsyncTaskProcessor>, callback: Callable) -> i64 {
        let guard = Rc::new(DropProbe);
        let spawned = processor.bind().spawn(
            || (),
            move |()| {
                let _guard = &guard;
                callback.call(&[]);
            },
        );
        spawned.map_or(-1, |id| id as i64)
    }

    /// How many continuations of [method spawn_with_drop_probe] were dropped so far:
    /// [on the main thread, on another thread].
    #[func]
    fn continuation_drops() -> VarArray {
        varray![
            DROPS_ON_MAIN.load(Ordering::SeqCst),
            DROPS_ELSEWHERE.load(Ordering::SeqCst)
        ]
    }
}

static DROPS_ON_MAIN: AtomicI64 = AtomicI64::new(0);
static DROPS_ELSEWHERE: AtomicI64 = AtomicI64::new(0);

/// Counts the thread its continuation is dropped on.
struct DropProbe;

impl Drop for DropProbe {
    fn drop(&mut self) {
        let count = if godot::init::is_main_thread() {
            &DROPS_ON_MAIN
        } else {
            &DROPS_ELSEWHERE
        };
        count.fetch_add(1, Ordering::SeqCst);
    }
}
