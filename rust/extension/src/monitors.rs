//! ThreadKit's rows in the debugger's Monitors tab, under "ThreadKit/": custom monitors of
//! Godot's `Performance` singleton, which scripts can read too
//! (`Performance.get_custom_monitor("ThreadKit/busy_workers")`):
//!
//! - `ThreadKit/dispatcher_queue_depth`: work waiting for the main thread in the
//!   MainThreadDispatcher's queue (its `pending_count()`).
//! - `ThreadKit/tasks_pending`: tasks queued and not yet started, over every AsyncTaskProcessor
//!   alive.
//! - `ThreadKit/busy_workers`: worker threads running a task now, over every AsyncTaskProcessor
//!   alive.
//! - `ThreadKit/tasks_completed_per_second`: tasks that returned a result (failed and cancelled
//!   ones do not count), over every AsyncTaskProcessor, per second, measured at each read from
//!   the growth of their total since the newest earlier read at least a second old (or since the
//!   monitors were added, while no read is that old); see [`RateMeter`]. The debugger reads it
//!   once a second, so there it is the completions of the last second. A freed processor's
//!   completions stay in the total, so freeing one never makes the rate dip.
//!
//! Processors are found through a registry that each one joins when it is created and leaves
//! when it is dropped (freed), so the monitors neither keep a processor alive nor touch a freed
//! one. The monitors are added when the extension's scene level initialises and removed when it
//! deinitialises, so unloading or reloading the extension leaves none behind.

use std::collections::HashMap;
use std::sync::LazyLock as Lazy;
use std::time::{Duration, Instant};

use godot::classes::Performance;
use godot::prelude::*;
use parking_lot::Mutex;
use threadkit_core::Pool;
use threadkit_core::rate::RateMeter;

use crate::main_queue::QUEUE;
use crate::send::SendVariant;

struct Monitor {
    /// Its category and name in the Monitors tab.
    id: &'static str,
    read: fn() -> Variant,
}

const MONITORS: [Monitor; 4] = [
    Monitor {
        id: "ThreadKit/dispatcher_queue_depth",
        read: || (QUEUE.len() as i64).to_variant(),
    },
    Monitor {
        id: "ThreadKit/tasks_pending",
        read: || (processor_totals().pending as i64).to_variant(),
    },
    Monitor {
        id: "ThreadKit/busy_workers",
        read: || (processor_totals().busy_workers as i64).to_variant(),
    },
    Monitor {
        id: "ThreadKit/tasks_completed_per_second",
        read: || completed_per_second().to_variant(),
    },
];

/// The monitors this library added (and so removes).
static ADDED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// The pools of every AsyncTaskProcessor alive, by registration key.
static PROCESSORS: Lazy<Mutex<Processors>> = Lazy::new(|| {
    Mutex::new(Processors {
        live: HashMap::new(),
        next_key: 0,
        retired_completed: 0,
    })
});

/// Measures completions per second, its first baseline taken when the monitors are added.
static COMPLETION_RATE: Lazy<Mutex<RateMeter>> = Lazy::new(|| {
    let total = processor_totals().completed;
    Mutex::new(RateMeter::new(
        Duration::from_secs(1),
        Instant::now(),
        total,
    ))
});

struct Processors {
    live: HashMap<u64, Pool<SendVariant>>,
    next_key: u64,
    /// Tasks completed by processors since freed, so the total never goes down.
    retired_completed: u64,
}

/// Sums over every processor alive (completions: also over the freed ones).
#[derive(Default)]
struct Totals {
    pending: u64,
    busy_workers: u64,
    completed: u64,
}

/// An AsyncTaskProcessor's place in the monitors' sums: made with the processor, dropped with it.
pub(crate) struct Registration {
    key: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut processors = PROCESSORS.lock();
        if let Some(pool) = processors.live.remove(&self.key) {
            processors.retired_completed += pool.stats().completed;
        }
    }
}

/// Counts `pool` in the monitors until the returned registration is dropped.
pub(crate) fn register(pool: &Pool<SendVariant>) -> Registration {
    let mut processors = PROCESSORS.lock();
    let key = processors.next_key;
    processors.next_key += 1;
    processors.live.insert(key, pool.clone());
    Registration { key }
}

fn processor_totals() -> Totals {
    let processors = PROCESSORS.lock();
    let mut totals = Totals {
        completed: processors.retired_completed,
        ..Totals::default()
    };
    for pool in processors.live.values() {
        let stats = pool.stats();
        totals.pending += stats.pending;
        totals.busy_workers += stats.busy_workers;
        totals.completed += stats.completed;
    }
    totals
}

fn completed_per_second() -> f64 {
    let total = processor_totals().completed;
    COMPLETION_RATE.lock().sample(Instant::now(), total)
}

/// Adds the monitors to `Performance`. Called when the extension's scene level initialises.
pub(crate) fn install() {
    Lazy::force(&COMPLETION_RATE);
    let mut performance = Performance::singleton();
    let mut added = ADDED.lock();
    for Monitor { id, read } in MONITORS {
        // An id already taken is not ours to replace, nor to remove later (adding it again
        // would only make Godot log an error).
        if performance.has_custom_monitor(id) {
            continue;
        }
        // `from_sync_fn`: a script may read a monitor from any thread, and every read only
        // touches atomics and locks.
        let callable = Callable::from_sync_fn(id, move |_args: &[&Variant]| read());
        performance.add_custom_monitor(id, &callable);
        added.push(id);
    }
}

/// Removes the monitors this library added (dropping their callables, whose code is about to
/// be unloaded). Called when the extension's scene level deinitialises.
pub(crate) fn uninstall() {
    let mut performance = Performance::singleton();
    for id in ADDED.lock().drain(..) {
        if performance.has_custom_monitor(id) {
            performance.remove_custom_monitor(id);
        }
    }
}
