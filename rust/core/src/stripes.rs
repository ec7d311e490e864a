//! A count many threads add to at once without sharing a cache line: each thread adds to one of
//! a few padded stripes, and reading sums them. For statistics that every reader bumps.

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU64, Ordering, thread_local, unmodelled};

const STRIPES: usize = 4;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct StripedCount {
    stripes: [CachePadded<AtomicU64>; STRIPES],
}

impl StripedCount {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one, on this thread's stripe.
    pub fn bump(&self) {
        self.stripes[stripe()].fetch_add(1, Ordering::Relaxed);
    }

    /// The total (exact once the adding threads are done; a snapshot meanwhile).
    pub fn sum(&self) -> u64 {
        self.stripes.iter().map(|s| s.load(Ordering::Relaxed)).sum()
    }
}

thread_local! {
    /// This thread's stripe, given out in turn as threads first count something.
    // Not a `const { }` initialiser: loom's `thread_local!` does not accept one.
    #[allow(clippy::missing_const_for_thread_local)]
    static STRIPE: usize = next_stripe();
}

fn stripe() -> usize {
    STRIPE.with(|stripe| *stripe)
}

#[cfg(not(loom))]
fn next_stripe() -> usize {
    static NEXT: unmodelled::AtomicUsize = unmodelled::AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES
}

// Under loom, numbered anew for each explored execution (loom requires a deterministic model).
#[cfg(loom)]
fn next_stripe() -> usize {
    loom::lazy_static! {
        static ref NEXT: unmodelled::AtomicUsize = unmodelled::AtomicUsize::new(0);
    }
    NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_add_up_exactly() {
        let count = std::sync::Arc::new(StripedCount::new());
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let count = count.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        count.bump();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(count.sum(), 60_000);
    }
}
