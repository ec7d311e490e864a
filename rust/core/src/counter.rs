//! A 64-bit atomic counter and an atomic `f64`.

use crate::sync::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// An `f64` that many threads can add to without a lock.
///
/// Hardware has no atomic float add, so [`AtomicF64::add`] is a compare-and-swap loop over the
/// value's bit pattern: a thread whose update raced with another's retries with the fresh value,
/// so no addition is ever lost.
#[derive(Debug)]
pub struct AtomicF64 {
    bits: AtomicU64,
}

impl AtomicF64 {
    pub fn new(value: f64) -> Self {
        Self {
            bits: AtomicU64::new(value.to_bits()),
        }
    }

    pub fn load(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::Acquire))
    }

    pub fn store(&self, value: f64) {
        self.bits.store(value.to_bits(), Ordering::Release);
    }

    /// Replaces the value and returns the previous one.
    pub fn swap(&self, value: f64) -> f64 {
        f64::from_bits(self.bits.swap(value.to_bits(), Ordering::AcqRel))
    }

    /// Adds `delta` and returns the new value.
    pub fn add(&self, delta: f64) -> f64 {
        let mut current = self.bits.load(Ordering::Acquire);
        loop {
            let new = f64::from_bits(current) + delta;
            match self.bits.compare_exchange_weak(
                current,
                new.to_bits(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return new,
                Err(actual) => current = actual,
            }
        }
    }
}

impl Default for AtomicF64 {
    fn default() -> Self {
        Self::new(0.0)
    }
}

/// A lock-free 64-bit counter with a float accumulator and an on/off switch.
///
/// Counting operations (`increment`, `decrement`, `add`, `add_value`,
/// `try_increment_if_less_than`) do nothing while the counter is disabled, so a game can pause
/// statistics without touching every call site. Explicit writes (`set`, `reset`,
/// `compare_and_set`) always apply. Integer arithmetic wraps on overflow (two's complement)
/// instead of panicking.
///
/// Read-modify-write operations use acquire-release ordering, so a thread that observes a count
/// also observes what the incrementing threads wrote before they counted.
#[derive(Debug)]
pub struct Counter {
    value: AtomicI64,
    sum: AtomicF64,
    enabled: AtomicBool,
}

impl Counter {
    pub fn new(initial: i64) -> Self {
        Self {
            value: AtomicI64::new(initial),
            sum: AtomicF64::new(0.0),
            enabled: AtomicBool::new(true),
        }
    }

    /// Adds one; returns the new value (the unchanged value while disabled).
    pub fn increment(&self) -> i64 {
        self.add(1)
    }

    /// Subtracts one; returns the new value (the unchanged value while disabled).
    pub fn decrement(&self) -> i64 {
        self.add(-1)
    }

    /// Adds `delta`; returns the new value (the unchanged value while disabled).
    pub fn add(&self, delta: i64) -> i64 {
        if !self.is_enabled() {
            return self.get();
        }
        self.value
            .fetch_add(delta, Ordering::AcqRel)
            .wrapping_add(delta)
    }

    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Acquire)
    }

    pub fn set(&self, value: i64) {
        self.value.store(value, Ordering::Release);
    }

    /// Sets the count and the float sum back to zero; returns the count it had.
    ///
    /// Each of the two is reset atomically, not the pair: a concurrent `add_value` lands either
    /// in the old sum or in the new one.
    pub fn reset(&self) -> i64 {
        self.sum.store(0.0);
        self.value.swap(0, Ordering::AcqRel)
    }

    /// Stores `new_value` only if the count is `expected`; returns whether it did.
    pub fn compare_and_set(&self, expected: i64, new_value: i64) -> bool {
        self.value
            .compare_exchange(expected, new_value, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Adds one only if the result stays below or equal to `threshold`, that is when the count is
    /// less than `threshold`; returns whether it counted. Many threads racing on it never push the
    /// count past `threshold`, which makes it a lock-free quota or slot allocator.
    pub fn try_increment_if_less_than(&self, threshold: i64) -> bool {
        if !self.is_enabled() {
            return false;
        }
        self.value
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                (current < threshold).then(|| current + 1)
            })
            .is_ok()
    }

    /// Adds `value` to the float sum; returns the new sum (the unchanged sum while disabled).
    pub fn add_value(&self, value: f64) -> f64 {
        if !self.is_enabled() {
            return self.sum.load();
        }
        self.sum.add(value)
    }

    pub fn sum(&self) -> f64 {
        self.sum.load()
    }

    /// Switches counting on or off; takes effect for calls that start after it returns.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Release);
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }
}

impl Default for Counter {
    fn default() -> Self {
        Self::new(0)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::thread;

    const THREADS: usize = 8;

    fn on_threads(f: impl Fn() + Sync) {
        thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(&f);
            }
        });
    }

    #[test]
    fn single_thread_operations_return_new_values() {
        let c = Counter::new(5);
        assert_eq!(c.increment(), 6);
        assert_eq!(c.decrement(), 5);
        assert_eq!(c.add(-10), -5);
        assert_eq!(c.get(), -5);
        c.set(42);
        assert_eq!(c.reset(), 42);
        assert_eq!(c.get(), 0);
    }

    #[test]
    fn increment_wraps_on_overflow() {
        let c = Counter::new(i64::MAX);
        assert_eq!(c.increment(), i64::MIN);
    }

    #[test]
    fn compare_and_set_only_applies_on_match() {
        let c = Counter::new(3);
        assert!(!c.compare_and_set(4, 10));
        assert_eq!(c.get(), 3);
        assert!(c.compare_and_set(3, 10));
        assert_eq!(c.get(), 10);
    }

    #[test]
    fn disabled_counter_ignores_counting_but_not_explicit_writes() {
        let c = Counter::new(7);
        c.set_enabled(false);
        assert!(!c.is_enabled());
        assert_eq!(c.increment(), 7);
        assert_eq!(c.decrement(), 7);
        assert_eq!(c.add(100), 7);
        assert!(!c.try_increment_if_less_than(100));
        assert_eq!(c.add_value(1.5), 0.0);
        c.set(9);
        assert_eq!(c.get(), 9);
        assert!(c.compare_and_set(9, 11));
        c.set_enabled(true);
        assert_eq!(c.increment(), 12);
    }

    #[test]
    fn reset_clears_count_and_sum() {
        let c = Counter::new(4);
        c.add_value(2.5);
        assert_eq!(c.reset(), 4);
        assert_eq!(c.sum(), 0.0);
    }

    #[test]
    fn concurrent_increments_are_exact() {
        let c = Counter::default();
        on_threads(|| {
            for _ in 0..100_000 {
                c.increment();
            }
        });
        assert_eq!(c.get(), (THREADS * 100_000) as i64);
    }

    #[test]
    fn concurrent_mixed_adds_are_exact() {
        let c = Counter::default();
        on_threads(|| {
            for _ in 0..10_000 {
                c.add(3);
                c.decrement();
            }
        });
        assert_eq!(c.get(), (THREADS * 10_000 * 2) as i64);
    }

    #[test]
    fn increment_if_less_than_never_overshoots_and_reaches_threshold() {
        let c = Counter::default();
        let successes = Counter::default();
        on_threads(|| {
            for _ in 0..1_000 {
                if c.try_increment_if_less_than(1_000) {
                    successes.increment();
                }
            }
        });
        assert_eq!(c.get(), 1_000);
        assert_eq!(successes.get(), 1_000);
    }

    #[test]
    fn atomic_f64_concurrent_adds_are_exact() {
        let f = AtomicF64::default();
        on_threads(|| {
            for _ in 0..10_000 {
                f.add(0.5);
            }
        });
        assert_eq!(f.load(), THREADS as f64 * 10_000.0 * 0.5);
    }

    #[test]
    fn atomic_f64_swap_and_store() {
        let f = AtomicF64::new(1.25);
        assert_eq!(f.swap(2.5), 1.25);
        f.store(-0.0);
        assert!(f.load().is_sign_negative());
    }
}
