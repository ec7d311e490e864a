//! Loom model tests: every interleaving of a few threads, run by
//! `RUSTFLAGS="--cfg loom" cargo test -p threadkit-core --test loom` (which `cargo xtask test` does).
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use threadkit_core::{AtomicF64, Counter};

#[test]
fn atomic_f64_cas_loop_loses_no_addition() {
    loom::model(|| {
        let f = Arc::new(AtomicF64::default());
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let f = f.clone();
                thread::spawn(move || {
                    f.add(0.5);
                })
            })
            .collect();
        f.add(0.25);
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(f.load(), 1.25);
    });
}

#[test]
fn increment_if_less_than_never_overshoots() {
    loom::model(|| {
        let c = Arc::new(Counter::new(0));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                thread::spawn(move || c.try_increment_if_less_than(2) as i64)
            })
            .collect();
        let mine = c.try_increment_if_less_than(2) as i64;
        let wins: i64 = mine + handles.into_iter().map(|h| h.join().unwrap()).sum::<i64>();
        assert_eq!(wins, 2);
        assert_eq!(c.get(), 2);
    });
}

#[test]
fn increments_from_threads_are_exact() {
    loom::model(|| {
        let c = Arc::new(Counter::new(0));
        let other = {
            let c = c.clone();
            thread::spawn(move || {
                c.increment();
                c.add(2);
            })
        };
        c.decrement();
        other.join().unwrap();
        assert_eq!(c.get(), 2);
    });
}
