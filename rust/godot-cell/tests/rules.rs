//! Each borrow rule of both cells, on one thread and (for the blocking cell) across threads.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::Duration;

use godot_cell::blocking;

/// The rules both cells share on one thread, written once for each.
macro_rules! single_thread_rules {
    ($module:ident) => {
        mod $module {
            //! The rules on one thread.
            use godot_cell::$module::GdCell;

            #[test]
            fn shared_borrows_coexist_and_see_the_value() {
                let cell = GdCell::new(7);
                let a = cell.borrow().unwrap();
                let b = cell.borrow().unwrap();
                assert_eq!((*a, *b), (7, 7));
                assert!(cell.is_currently_bound());
                drop((a, b));
                assert!(!cell.is_currently_bound());
            }

            #[test]
            fn a_mutable_borrow_excludes_every_other_borrow() {
                let cell = GdCell::new(1);
                let mut m = cell.borrow_mut().unwrap();
                *m = 2;
                assert!(cell.borrow().is_err());
                assert!(cell.borrow_mut().is_err());
                assert!(cell.is_currently_bound());
                drop(m);
                assert_eq!(*cell.borrow().unwrap(), 2);
                assert!(!cell.is_currently_bound());
            }

            #[test]
            fn a_shared_borrow_excludes_a_mutable_one() {
                let cell = GdCell::new(1);
                let r = cell.borrow().unwrap();
                assert!(cell.borrow_mut().is_err());
                drop(r);
                assert!(cell.borrow_mut().is_ok());
            }

            #[test]
            fn an_inaccessible_borrow_allows_nested_borrows_then_comes_back() {
                let cell = GdCell::new(vec![1]);
                let mut outer = cell.borrow_mut().unwrap();
                outer.push(2);
                {
                    let guard = cell.make_inaccessible(&mut outer).unwrap();
                    {
                        let a = cell.borrow().unwrap();
                        let b = cell.borrow().unwrap();
                        assert_eq!(*a, [1, 2]);
                        assert_eq!(a.len(), b.len());
                        assert!(
                            cell.borrow_mut().is_err(),
                            "shared nested borrows exclude &mut"
                        );
                    }
                    {
                        let mut inner = cell.borrow_mut().unwrap();
                        inner.push(3);
                        assert!(cell.borrow().is_err());
                        // Two levels deep.
                        let guard2 = cell.make_inaccessible(&mut inner).unwrap();
                        cell.borrow_mut().unwrap().push(4);
                        drop(guard2);
                        inner.push(5);
                    }
                    assert!(guard.can_drop());
                }
                outer.push(6);
                assert_eq!(*outer, [1, 2, 3, 4, 5, 6]);
                assert!(cell.borrow().is_err(), "accessible again");
                drop(outer);
                assert!(!cell.is_currently_bound());
            }

            #[test]
            fn an_inaccessible_guard_cannot_drop_while_its_borrows_live() {
                let cell = GdCell::new(0);
                let mut outer = cell.borrow_mut().unwrap();
                let guard = cell.make_inaccessible(&mut outer).unwrap();
                let nested = cell.borrow().unwrap();
                let guard = guard.try_drop().expect_err("a nested borrow is alive");
                assert!(!guard.can_drop());
                drop(nested);
                let nested_mut = cell.borrow_mut().unwrap();
                let guard = guard.try_drop().expect_err("a nested &mut is alive");
                drop(nested_mut);
                guard.try_drop().expect("nothing nested is alive");
            }

            #[test]
            fn make_inaccessible_needs_the_current_mutable_borrow() {
                let cell = GdCell::new(0);
                let mut other = 0;
                assert!(
                    cell.make_inaccessible(&mut other).is_err(),
                    "no mutable borrow"
                );
                let mut outer = cell.borrow_mut().unwrap();
                assert!(
                    cell.make_inaccessible(&mut other).is_err(),
                    "not this cell's"
                );
                let guard = cell.make_inaccessible(&mut outer).unwrap();
                let mut also_other = 1;
                assert!(
                    cell.make_inaccessible(&mut also_other).is_err(),
                    "already inaccessible"
                );
                drop(guard);
            }

            #[test]
            fn many_shared_borrows_are_counted_exactly() {
                let cell = GdCell::new(());
                let guards: Vec<_> = (0..10_000).map(|_| cell.borrow().unwrap()).collect();
                assert!(cell.borrow_mut().is_err());
                drop(guards);
                assert!(cell.borrow_mut().is_ok());
            }
        }
    };
}

mod one_thread {
    single_thread_rules!(panicking);
    single_thread_rules!(blocking);
}

#[test]
fn blocking_shared_borrows_are_held_on_many_threads_at_once() {
    let cell = Arc::new(blocking::GdCell::new(5));
    let threads = 4;
    let all_in = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (cell, all_in) = (cell.clone(), all_in.clone());
            thread::spawn(move || {
                let guard = cell.borrow().unwrap();
                // Every thread holds its borrow here at the same time.
                all_in.wait();
                *guard
            })
        })
        .collect();
    let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, 20);
    assert!(!cell.is_currently_bound());
}

#[test]
fn blocking_a_reader_waits_for_another_threads_mutable_borrow() {
    let cell = Arc::new(blocking::GdCell::new(0));
    let mut writer = cell.borrow_mut().unwrap();
    let (started, reader_started) = mpsc::channel();
    let reader = {
        let cell = cell.clone();
        thread::spawn(move || {
            started.send(()).unwrap();
            *cell.borrow().unwrap()
        })
    };
    reader_started.recv().unwrap();
    // Whatever the reader's timing, it can only read once the writer has finished writing.
    *writer = 1;
    *writer = 2;
    drop(writer);
    assert_eq!(reader.join().unwrap(), 2);
}

#[test]
fn blocking_a_writer_waits_for_other_threads_shared_borrows() {
    let cell = Arc::new(blocking::GdCell::new(0));
    let reading = cell.borrow().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (cell, done) = (cell.clone(), done.clone());
        thread::spawn(move || {
            *cell.borrow_mut().unwrap() += 1;
            done.store(true, Ordering::SeqCst);
        })
    };
    // The read in progress keeps seeing the old value however long the writer has waited.
    for _ in 0..1000 {
        assert_eq!(*reading, 0);
        thread::yield_now();
    }
    assert!(!done.load(Ordering::SeqCst));
    drop(reading);
    writer.join().unwrap();
    assert_eq!(*cell.borrow().unwrap(), 1);
}

#[test]
fn blocking_a_thread_never_waits_for_its_own_shared_borrow() {
    let cell = Arc::new(blocking::GdCell::new(0));
    let mine = cell.borrow().unwrap();
    // Another thread reads too: without knowing whose borrows these are, this would wait forever.
    let (hold, release) = mpsc::channel::<()>();
    let (held, wait_held) = mpsc::channel();
    let other = {
        let cell = cell.clone();
        thread::spawn(move || {
            let _theirs = cell.borrow().unwrap();
            held.send(()).unwrap();
            release.recv().unwrap();
        })
    };
    wait_held.recv().unwrap();
    let error = cell.borrow_mut().unwrap_err().to_string();
    assert!(error.contains("wait for itself"), "{error}");
    drop(mine);
    hold.send(()).unwrap();
    other.join().unwrap();
    assert!(cell.borrow_mut().is_ok());
}

#[test]
fn blocking_a_thread_never_waits_for_its_own_mutable_borrow() {
    let cell = blocking::GdCell::new(0);
    let m = cell.borrow_mut().unwrap();
    assert!(cell.borrow().is_err());
    assert!(cell.borrow_mut().is_err());
    drop(m);
}

#[test]
fn blocking_other_threads_wait_while_the_owner_borrows_under_make_inaccessible() {
    let cell = Arc::new(blocking::GdCell::new(Vec::<u32>::new()));
    let mut outer = cell.borrow_mut().unwrap();
    let (started, wait_started) = mpsc::channel();
    let reader = {
        let cell = cell.clone();
        thread::spawn(move || {
            started.send(()).unwrap();
            cell.borrow().unwrap().clone()
        })
    };
    wait_started.recv().unwrap();
    {
        let _guard = cell.make_inaccessible(&mut outer).unwrap();
        // The owner's nested borrows succeed however often the reader finds the cell taken.
        for i in 0..1000 {
            cell.borrow_mut().unwrap().push(i);
            assert_eq!(cell.borrow().unwrap().len(), i as usize + 1);
        }
    }
    outer.push(1000);
    drop(outer);
    assert_eq!(reader.join().unwrap(), (0..=1000).collect::<Vec<_>>());
}

#[test]
fn blocking_borrows_of_more_cells_than_tracked_are_still_never_waited_for() {
    // More than the 32 cells a thread's record tells apart: past them the answer is "maybe".
    let cells: Vec<_> = (0..40).map(|_| blocking::GdCell::new(0)).collect();
    let guards: Vec<_> = cells.iter().map(|c| c.borrow().unwrap()).collect();
    for cell in &cells {
        assert!(cell.borrow_mut().is_err());
    }
    drop(guards);
    for cell in &cells {
        assert!(cell.borrow_mut().is_ok());
    }
    // Untracked borrows are forgotten exactly: a cell this thread no longer reads is free.
    let spare = blocking::GdCell::new(0);
    assert!(spare.borrow_mut().is_ok());
}

#[test]
fn blocking_a_reader_reads_again_while_a_writer_waits_for_it() {
    let cell = Arc::new(blocking::GdCell::new(0));
    let outer = cell.borrow().unwrap();
    let writer = {
        let cell = cell.clone();
        thread::spawn(move || *cell.borrow_mut().unwrap() += 1)
    };
    // Whether or not the writer has announced itself yet, the re-entrant reads go on: queued
    // behind the writer they would wait for `outer`, which waits for them.
    for _ in 0..10_000 {
        assert_eq!(*cell.borrow().unwrap(), 0);
    }
    drop(outer);
    writer.join().unwrap();
    assert_eq!(*cell.borrow().unwrap(), 1);
}

/// Runs `scenario` on its own thread and returns its result, failing the test (instead of
/// hanging the suite) if it has not finished within a minute: the deadlock tests' watchdog.
fn within_a_minute<R: Send + 'static>(scenario: impl FnOnce() -> R + Send + 'static) -> R {
    let (done, result) = mpsc::channel();
    thread::spawn(move || done.send(scenario()).unwrap());
    result
        .recv_timeout(Duration::from_secs(60))
        .expect("the scenario deadlocked")
}

/// Starts a thread that takes the mutable borrow (and then adds one), and returns once it has
/// announced itself, which it can only do while `cell` is read: it then waits for the readers.
fn pending_writer(cell: &Arc<blocking::GdCell<i32>>) -> thread::JoinHandle<()> {
    let writer = {
        let cell = cell.clone();
        thread::spawn(move || *cell.borrow_mut().unwrap() += 1)
    };
    // Whether or not it has reached its wait yet, the scenarios below must hold either way;
    // give it a moment so that they usually run with the writer asleep.
    thread::sleep(Duration::from_millis(20));
    writer
}

#[test]
fn blocking_a_reader_asking_for_the_mutable_borrow_while_a_writer_waits_gets_an_error() {
    within_a_minute(|| {
        let cell = Arc::new(blocking::GdCell::new(0));
        let reading = cell.borrow().unwrap();
        let writer = pending_writer(&cell);
        let error = cell.borrow_mut().unwrap_err().to_string();
        assert!(error.contains("wait for itself"), "{error}");
        drop(reading);
        writer.join().unwrap();
        assert_eq!(*cell.borrow().unwrap(), 1);
    });
}

#[test]
fn blocking_a_reader_waiting_for_another_reader_does_not_deadlock_with_a_writer() {
    within_a_minute(|| {
        // A `&self` method that hands work to another thread which reads the same object, while
        // a third thread asks for `bind_mut()`: the helper's read must not queue behind it.
        let cell = Arc::new(blocking::GdCell::new(5));
        let reading = cell.borrow().unwrap();
        let writer = pending_writer(&cell);
        let helper = {
            let cell = cell.clone();
            thread::spawn(move || *cell.borrow().unwrap())
        };
        assert_eq!((*reading, helper.join().unwrap()), (5, 5));
        drop(reading);
        writer.join().unwrap();
        assert_eq!(*cell.borrow().unwrap(), 6);
    });
}

#[test]
fn blocking_a_leaked_guard_of_a_dropped_cell_says_nothing_about_a_new_cell_in_its_place() {
    let mut slot = Box::new(blocking::GdCell::new(0));
    std::mem::forget(slot.borrow().unwrap());
    // The same memory, a new cell: this thread does not read it.
    *slot = blocking::GdCell::new(1);
    assert!(slot.borrow_mut().is_ok());
}

#[test]
fn borrows_work_in_thread_local_destructors_at_thread_exit() {
    struct BorrowsOnDrop;
    impl Drop for BorrowsOnDrop {
        fn drop(&mut self) {
            let blocking = blocking::GdCell::new(1);
            assert_eq!(*blocking.borrow().unwrap(), 1);
            *blocking.borrow_mut().unwrap() += 1;
            let panicking = godot_cell::panicking::GdCell::new(1);
            *panicking.borrow_mut().unwrap() += 1;
            assert_eq!(*panicking.borrow().unwrap(), 2);
        }
    }
    thread_local! {
        static LAST: std::cell::RefCell<Option<BorrowsOnDrop>> = const { std::cell::RefCell::new(None) };
    }
    thread::spawn(|| {
        // Registered before the cells' own record is first used, so destroyed after it would be
        // if that record had a destructor.
        LAST.with(|last| *last.borrow_mut() = Some(BorrowsOnDrop));
        let cell = blocking::GdCell::new(0);
        drop(cell.borrow().unwrap());
    })
    .join()
    .expect("borrowing during thread-local destruction works");
}

#[test]
fn a_borrow_outliving_its_inaccessible_guard_poisons_the_cell_instead_of_aliasing() {
    let cell = Arc::new(blocking::GdCell::new(0));
    let poisoned = {
        let cell = cell.clone();
        thread::spawn(move || {
            let mut outer = cell.borrow_mut().unwrap();
            let guard = cell.make_inaccessible(&mut outer).unwrap();
            let nested = cell.borrow().unwrap();
            drop(guard);
            std::mem::forget(nested);
        })
        .join()
    };
    assert!(poisoned.is_err(), "the bug is reported with a panic");
    // Other threads get errors (not a hang, not the value), and the cell is never freed in use.
    let error = within_a_minute({
        let cell = cell.clone();
        move || cell.borrow().unwrap_err().to_string()
    });
    assert!(error.contains("poisoned"), "{error}");
    assert!(cell.borrow_mut().is_err());
    assert!(cell.is_currently_bound());
}

#[test]
fn a_panicking_cell_is_small_and_a_blocking_one_spends_five_cache_lines() {
    use std::mem::size_of;
    assert!(size_of::<godot_cell::panicking::GdCell<u64>>() <= 96);
    assert!(size_of::<blocking::GdCell<u64>>() <= 5 * 64 + 128);
}
