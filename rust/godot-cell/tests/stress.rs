//! Real threads hammering one blocking cell: exact counts, and no reader ever sees a write half
//! done.
#![cfg(not(loom))]

use std::sync::Arc;
use std::thread;

use godot_cell::blocking::GdCell;

/// Two fields a writer changes one after the other: a reader seeing them differ saw a torn write.
#[derive(Default)]
struct Pair {
    a: u64,
    b: u64,
}

const ROUNDS: u64 = 200_000;

#[test]
fn writers_and_readers_on_four_threads_count_exactly() {
    let cell = Arc::new(GdCell::new(Pair::default()));
    let writers = 2;
    let readers = 2;
    let handles: Vec<_> = (0..writers + readers)
        .map(|i| {
            let cell = cell.clone();
            thread::spawn(move || {
                let mut reads = 0;
                for _ in 0..ROUNDS {
                    if i < writers {
                        let mut pair = cell.borrow_mut().unwrap();
                        pair.a += 1;
                        std::hint::black_box(&mut *pair);
                        pair.b += 1;
                    } else {
                        let pair = cell.borrow().unwrap();
                        assert_eq!(pair.a, pair.b, "a torn write was visible");
                        reads += 1;
                    }
                }
                reads
            })
        })
        .collect();
    let reads: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(reads, readers * ROUNDS);
    let pair = cell.borrow().unwrap();
    assert_eq!((pair.a, pair.b), (writers * ROUNDS, writers * ROUNDS));
    drop(pair);
    assert!(!cell.is_currently_bound());
}

#[test]
fn re_entrant_owners_and_foreign_readers_count_exactly() {
    let cell = Arc::new(GdCell::new(Pair::default()));
    let threads = 3;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let cell = cell.clone();
            thread::spawn(move || {
                for round in 0..ROUNDS / 5 {
                    let mut outer = cell.borrow_mut().unwrap();
                    outer.a += 1;
                    {
                        // What gdext's base_mut() does: Godot calls back into the object.
                        let _inaccessible = cell.make_inaccessible(&mut outer).unwrap();
                        let seen = cell.borrow().unwrap().a;
                        let mut inner = cell.borrow_mut().unwrap();
                        assert_eq!(inner.a, seen);
                        inner.b += 1;
                    }
                    outer.a += 1;
                    outer.b += 1;
                    drop(outer);
                    if round % 2 == 0 {
                        let pair = cell.borrow().unwrap();
                        assert_eq!(pair.a, pair.b);
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let pair = cell.borrow().unwrap();
    assert_eq!(pair.a, 2 * threads * ROUNDS / 5);
    assert_eq!(pair.b, pair.a);
}
