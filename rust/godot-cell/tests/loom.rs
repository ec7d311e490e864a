//! loom models of the blocking cell: every interleaving of borrow, borrow_mut, make_inaccessible
//! and guard drops on 2–3 threads. The value is a loom cell, so any access the borrow rules
//! should have excluded is reported as a data race; a lost wake-up shows as a deadlock.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p godot-cell --test loom --release`.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

use godot_cell::blocking::GdCell;

/// A counter whose every read and write loom checks against the others.
struct Probe(UnsafeCell<u64>);

impl Probe {
    fn new() -> Self {
        Self(UnsafeCell::new(0))
    }

    fn read(&self) -> u64 {
        // SAFETY: loom's cell pointer is valid for the closure; loom reports a racing access.
        self.0.with(|value| unsafe { *value })
    }

    fn bump(&mut self) {
        // SAFETY: as in `read`; `&mut self` came through the cell's mutable borrow.
        self.0.with_mut(|value| unsafe { *value += 1 })
    }
}

#[test]
fn a_writer_and_a_reader_exclude_each_other() {
    loom::model(|| {
        let cell = Arc::new(GdCell::new(Probe::new()));
        let reader = {
            let cell = cell.clone();
            thread::spawn(move || {
                let seen = cell.borrow().unwrap().read();
                assert!(seen <= 1);
            })
        };
        cell.borrow_mut().unwrap().bump();
        reader.join().unwrap();
        assert_eq!(cell.borrow().unwrap().read(), 1);
        assert!(!cell.is_currently_bound());
    });
}

#[test]
fn two_writers_take_turns() {
    loom::model(|| {
        let cell = Arc::new(GdCell::new(Probe::new()));
        let other = {
            let cell = cell.clone();
            thread::spawn(move || cell.borrow_mut().unwrap().bump())
        };
        cell.borrow_mut().unwrap().bump();
        other.join().unwrap();
        assert_eq!(cell.borrow().unwrap().read(), 2);
    });
}

#[test]
fn two_readers_and_a_writer() {
    loom::model(|| {
        let cell = Arc::new(GdCell::new(Probe::new()));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let cell = cell.clone();
                thread::spawn(move || cell.borrow().unwrap().read())
            })
            .collect();
        cell.borrow_mut().unwrap().bump();
        for reader in readers {
            assert!(reader.join().unwrap() <= 1);
        }
        assert!(!cell.is_currently_bound());
    });
}

#[test]
fn an_owner_re_borrowing_under_make_inaccessible_beside_a_foreign_reader() {
    loom::model(|| {
        let cell = Arc::new(GdCell::new(Probe::new()));
        let reader = {
            let cell = cell.clone();
            thread::spawn(move || cell.borrow().unwrap().read())
        };
        {
            let mut outer = cell.borrow_mut().unwrap();
            outer.bump();
            {
                let _inaccessible = cell.make_inaccessible(&mut outer).unwrap();
                // The reader's brief increments never make these fail.
                let seen = cell.borrow().unwrap().read();
                let mut inner = cell.borrow_mut().unwrap();
                assert_eq!(inner.read(), seen);
                inner.bump();
            }
            outer.bump();
        }
        let seen = reader.join().unwrap();
        assert!(seen == 0 || seen == 3, "saw {seen}");
        assert!(!cell.is_currently_bound());
    });
}

#[test]
fn a_writer_sleeping_behind_two_readers_is_woken() {
    loom::model(|| {
        let cell = Arc::new(GdCell::new(Probe::new()));
        let first = cell.borrow().unwrap();
        let writer = {
            let cell = cell.clone();
            thread::spawn(move || cell.borrow_mut().unwrap().bump())
        };
        let reader = {
            let cell = cell.clone();
            thread::spawn(move || cell.borrow().unwrap().read())
        };
        assert_eq!(first.read(), 0);
        drop(first);
        writer.join().unwrap();
        assert!(reader.join().unwrap() <= 1);
        assert_eq!(cell.borrow().unwrap().read(), 1);
    });
}

#[test]
fn a_reader_reads_again_while_a_writer_waits_for_it() {
    loom::model(|| {
        let cell = Arc::new(GdCell::new(Probe::new()));
        let writer = {
            let cell = cell.clone();
            thread::spawn(move || cell.borrow_mut().unwrap().bump())
        };
        let outer = cell.borrow().unwrap();
        let again = cell.borrow().unwrap();
        assert_eq!(outer.read(), again.read());
        drop(again);
        drop(outer);
        writer.join().unwrap();
        assert_eq!(cell.borrow().unwrap().read(), 1);
    });
}

/// Runs `scenario` on a thread that reads the cell while another thread asks for its mutable
/// borrow (and bumps the value once it has it).
fn beside_a_writer(scenario: impl Fn(&Arc<GdCell<Probe>>, &Probe) + Send + Sync + 'static) {
    loom::model(move || {
        let cell = Arc::new(GdCell::new(Probe::new()));
        let reading = cell.borrow().unwrap();
        let writer = {
            let cell = cell.clone();
            thread::spawn(move || cell.borrow_mut().unwrap().bump())
        };
        scenario(&cell, &reading);
        drop(reading);
        writer.join().unwrap();
        assert_eq!(cell.borrow().unwrap().read(), 1);
    });
}

#[test]
fn a_reader_waiting_for_another_reader_beside_a_writer_does_not_deadlock() {
    beside_a_writer(|cell, reading| {
        let helper = {
            let cell = cell.clone();
            thread::spawn(move || cell.borrow().unwrap().read())
        };
        // This thread reads and waits for the helper's read, whatever the writer is doing.
        assert_eq!(helper.join().unwrap(), reading.read());
    });
}

#[test]
fn a_reader_asking_for_the_mutable_borrow_beside_a_writer_is_refused() {
    beside_a_writer(|cell, _| assert!(cell.borrow_mut().is_err()));
}
