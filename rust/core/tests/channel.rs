//! Channel behaviour with real threads and exact counts.
#![cfg(not(loom))]

use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use crossbeam_utils::Backoff;

use threadkit_core::channel::{Channel, PopError, PushError};

/// Long enough for a spawned thread to reach its blocking call. Only used to make the tests
/// meaningful (the thread is really blocked when woken); no result depends on it.
const SETTLE: Duration = Duration::from_millis(50);

/// A timeout no test should ever reach.
const FOREVER: Duration = Duration::from_secs(3600);

/// How long a woken thread may take to report back before the test fails (instead of hanging).
const WAKE_LIMIT: Duration = Duration::from_secs(10);

/// Runs `call` on a new (detached) thread; its result arrives on the returned receiver.
fn spawn<R: Send + 'static>(call: impl FnOnce() -> R + Send + 'static) -> mpsc::Receiver<R> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(call()).unwrap());
    rx
}

fn still_blocked<R>(result: &mpsc::Receiver<R>) -> bool {
    matches!(result.try_recv(), Err(mpsc::TryRecvError::Empty))
}

fn woken<R>(result: &mpsc::Receiver<R>) -> R {
    result
        .recv_timeout(WAKE_LIMIT)
        .expect("the blocked call was woken")
}

#[test]
fn the_channel_crosses_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Channel<Box<dyn std::any::Any + Send>>>();
}

/// 4 producers push 50 000 numbered items each while 4 consumers pop until the channel is
/// closed and drained: every item arrives exactly once, and each consumer sees every producer's
/// items in the order they were pushed.
fn four_producers_four_consumers(channel: Channel<(usize, u32)>) {
    const PER_PRODUCER: u32 = 50_000;
    let seen: Vec<Vec<(usize, u32)>> = thread::scope(|s| {
        let consumers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut seen = vec![];
                    loop {
                        match channel.pop(None) {
                            Ok(item) => seen.push(item),
                            Err(error) => {
                                assert_eq!(error, PopError::Closed);
                                return seen;
                            }
                        }
                    }
                })
            })
            .collect();
        let producers: Vec<_> = (0..4)
            .map(|producer| {
                let channel = &channel;
                s.spawn(move || {
                    for i in 0..PER_PRODUCER {
                        channel.push((producer, i), None).unwrap();
                    }
                })
            })
            .collect();
        for producer in producers {
            producer.join().unwrap();
        }
        channel.close();
        consumers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let mut times_seen = vec![vec![0u8; PER_PRODUCER as usize]; 4];
    for consumer in &seen {
        let mut last: [Option<u32>; 4] = [None; 4];
        for &(producer, i) in consumer {
            assert!(
                last[producer].is_none_or(|last| last < i),
                "a consumer sees producer {producer}'s items in push order"
            );
            last[producer] = Some(i);
            times_seen[producer][i as usize] += 1;
        }
    }
    assert!(
        times_seen.iter().flatten().all(|&times| times == 1),
        "every item exactly once"
    );
    assert_eq!(seen.iter().map(Vec::len).sum::<usize>(), 200_000);
    assert!(channel.is_empty());
}

#[test]
fn four_producers_four_consumers_unbounded_every_item_once() {
    four_producers_four_consumers(Channel::unbounded());
}

#[test]
fn four_producers_four_consumers_bounded_every_item_once() {
    four_producers_four_consumers(Channel::bounded(64));
}

#[test]
fn fifo_len_capacity_and_try_variants() {
    let channel = Channel::bounded(3);
    assert_eq!(channel.capacity(), Some(3));
    assert!(channel.is_empty());
    assert_eq!(channel.try_pop(), Err(PopError::Empty));
    assert_eq!(channel.try_push(1), Ok(()));
    assert_eq!(channel.push(2, None), Ok(()));
    assert_eq!(channel.push(3, Some(Duration::ZERO)), Ok(()));
    assert_eq!(channel.len(), 3);
    assert!(!channel.is_empty());
    assert_eq!(channel.try_push(4), Err(PushError::Full(4)));
    assert_eq!(channel.try_pop(), Ok(1));
    assert_eq!(channel.pop(None), Ok(2));
    assert_eq!(channel.pop(Some(Duration::ZERO)), Ok(3));
    assert_eq!(channel.len(), 0);
    assert!(!channel.is_closed());

    let unbounded = Channel::unbounded();
    assert_eq!(unbounded.capacity(), None);
    for i in 0..10 {
        assert_eq!(unbounded.try_push(i), Ok(()));
    }
    assert_eq!(unbounded.len(), 10);
    assert_eq!(unbounded.try_pop(), Ok(0));
}

#[test]
fn pop_with_timeout_on_an_empty_channel_times_out() {
    let channel = Channel::<u32>::bounded(1);
    assert_eq!(
        channel.pop(Some(Duration::from_millis(10))),
        Err(PopError::TimedOut)
    );
    assert_eq!(
        Channel::<u32>::unbounded().pop(Some(Duration::ZERO)),
        Err(PopError::TimedOut)
    );
}

#[test]
fn bounded_push_blocks_until_a_pop_frees_space() {
    let channel = Arc::new(Channel::bounded(2));
    channel.push(1, None).unwrap();
    channel.push(2, None).unwrap();
    let pushed = spawn({
        let channel = channel.clone();
        move || channel.push(3, None)
    });
    thread::sleep(SETTLE);
    assert!(
        still_blocked(&pushed),
        "the push waits while the channel is full"
    );
    assert_eq!(channel.len(), 2);
    assert_eq!(channel.pop(None), Ok(1));
    assert_eq!(woken(&pushed), Ok(()));
    assert_eq!(channel.drain(), vec![2, 3]);
}

#[test]
fn push_with_timeout_on_a_full_channel_times_out_and_gives_the_value_back() {
    let channel = Channel::bounded(1);
    channel.push(String::from("kept"), None).unwrap();
    let refused = channel.push(String::from("refused"), Some(Duration::from_millis(10)));
    assert_eq!(refused, Err(PushError::TimedOut(String::from("refused"))));
    assert_eq!(refused.unwrap_err().into_inner(), "refused");
    assert_eq!(
        channel.push(String::from("no wait"), Some(Duration::ZERO)),
        Err(PushError::TimedOut(String::from("no wait")))
    );
    assert_eq!(channel.drain(), vec![String::from("kept")]);
}

#[test]
fn close_wakes_every_blocked_pop() {
    let channel = Arc::new(Channel::<u32>::unbounded());
    let pops: Vec<_> = [None, None, None, Some(FOREVER)]
        .into_iter()
        .map(|timeout| {
            let channel = channel.clone();
            spawn(move || channel.pop(timeout))
        })
        .collect();
    thread::sleep(SETTLE);
    assert!(pops.iter().all(still_blocked));
    channel.close();
    for pop in &pops {
        assert_eq!(woken(pop), Err(PopError::Closed));
    }
}

#[test]
fn close_wakes_every_blocked_push_and_gives_each_its_value_back() {
    let channel = Arc::new(Channel::bounded(1));
    channel.push(0, None).unwrap();
    let pushes: Vec<_> = [(1, None), (2, None), (3, None), (4, Some(FOREVER))]
        .into_iter()
        .map(|(value, timeout)| {
            let channel = channel.clone();
            spawn(move || channel.push(value, timeout))
        })
        .collect();
    thread::sleep(SETTLE);
    assert!(pushes.iter().all(still_blocked));
    channel.close();
    for (push, value) in pushes.iter().zip(1..) {
        assert_eq!(woken(push), Err(PushError::Closed(value)));
    }
    assert_eq!(
        channel.pop(None),
        Ok(0),
        "the value queued before the close is kept"
    );
    assert_eq!(channel.pop(None), Err(PopError::Closed));
}

#[test]
fn after_close_pops_drain_what_is_left_then_report_closed() {
    let channel = Channel::bounded(8);
    for i in 1..=4 {
        channel.push(i, None).unwrap();
    }
    channel.close();
    assert!(channel.is_closed());
    assert_eq!(channel.len(), 4);
    assert_eq!(channel.pop(None), Ok(1));
    assert_eq!(channel.try_pop(), Ok(2));
    assert_eq!(channel.pop(Some(Duration::ZERO)), Ok(3));
    assert_eq!(channel.drain(), vec![4]);
    assert_eq!(channel.pop(None), Err(PopError::Closed));
    assert_eq!(channel.pop(Some(FOREVER)), Err(PopError::Closed));
    assert_eq!(channel.try_pop(), Err(PopError::Closed));
    channel.close();
    assert!(channel.is_closed(), "closing twice changes nothing");
}

#[test]
fn push_after_close_fails_and_gives_the_value_back() {
    for channel in [Channel::unbounded(), Channel::bounded(4)] {
        channel.push(1, None).unwrap();
        channel.close();
        assert_eq!(channel.push(2, None), Err(PushError::Closed(2)));
        assert_eq!(channel.push(3, Some(FOREVER)), Err(PushError::Closed(3)));
        assert_eq!(channel.try_push(4), Err(PushError::Closed(4)));
        assert_eq!(channel.drain(), vec![1]);
    }
}

/// Producers keep pushing into a small channel while it is closed under them: consumers pop
/// exactly the items whose push returned `Ok` before any of them sees `Closed`.
#[test]
fn every_accepted_push_is_popped_before_closed() {
    for round in 0..20 {
        let channel = Channel::bounded(4);
        let (accepted, popped) = thread::scope(|s| {
            let consumers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let mut popped = 0u64;
                        while channel.pop(None).is_ok() {
                            popped += 1;
                        }
                        popped
                    })
                })
                .collect();
            let producers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let mut accepted = 0u64;
                        let mut i = 0u64;
                        loop {
                            match channel.push(i, None) {
                                Ok(()) => accepted += 1,
                                Err(PushError::Closed(value)) => {
                                    assert_eq!(value, i);
                                    return accepted;
                                }
                                Err(other) => panic!("a push without timeout got {other}"),
                            }
                            i += 1;
                        }
                    })
                })
                .collect();
            thread::sleep(Duration::from_millis(1 + round % 5));
            channel.close();
            let accepted: u64 = producers.into_iter().map(|p| p.join().unwrap()).sum();
            let popped: u64 = consumers.into_iter().map(|c| c.join().unwrap()).sum();
            (accepted, popped)
        });
        assert_eq!(popped, accepted, "round {round}");
        assert!(channel.is_empty());
    }
}

#[test]
fn drain_takes_what_is_queued_in_order() {
    let channel = Channel::bounded(10);
    assert_eq!(channel.drain(), Vec::<u32>::new());
    for i in 0..10 {
        channel.push(i, None).unwrap();
    }
    assert_eq!(channel.drain(), (0..10).collect::<Vec<_>>());
    assert!(channel.is_empty());
    assert_eq!(channel.try_push(10), Ok(()), "draining frees the room");
}

#[test]
fn unbounded_holds_a_million_items_in_order() {
    const ITEMS: u32 = 1_000_000;
    let channel = Channel::unbounded();
    for i in 0..ITEMS {
        channel.push(i, None).unwrap();
    }
    assert_eq!(channel.len(), ITEMS as usize);
    for i in 0..ITEMS {
        assert_eq!(channel.try_pop(), Ok(i));
    }
    assert_eq!(channel.try_pop(), Err(PopError::Empty));
}

#[test]
#[should_panic(expected = "the capacity must be at least 1")]
fn a_bounded_channel_needs_room_for_one() {
    let _ = Channel::<u32>::bounded(0);
}

#[test]
fn an_interrupt_ends_a_pop_waiting_on_an_empty_channel_but_a_queued_value_comes_first() {
    let channel = Arc::new(Channel::<u32>::unbounded());
    let interrupt = Arc::new(threadkit_core::Interrupt::new());
    let (c, i) = (channel.clone(), interrupt.clone());
    let popped = spawn(move || c.pop_interruptible(None, &[&i]));
    thread::sleep(SETTLE);
    assert!(still_blocked(&popped));
    interrupt.fire();
    assert_eq!(woken(&popped), Err(PopError::Interrupted));
    channel.push(4, None).unwrap();
    assert_eq!(channel.pop_interruptible(None, &[&interrupt]), Ok(4));
    assert_eq!(
        channel.pop_interruptible(Some(FOREVER), &[&interrupt]),
        Err(PopError::Interrupted),
        "a wait that starts after the fire returns at once"
    );
}

#[test]
fn an_interrupt_gives_a_waiting_push_its_value_back() {
    let channel = Arc::new(Channel::<u32>::bounded(1));
    channel.push(1, None).unwrap();
    let interrupt = Arc::new(threadkit_core::Interrupt::new());
    let (c, i) = (channel.clone(), interrupt.clone());
    let pushed = spawn(move || c.push_interruptible(2, None, &[&i]));
    thread::sleep(SETTLE);
    assert!(still_blocked(&pushed));
    interrupt.fire();
    assert_eq!(woken(&pushed), Err(PushError::Interrupted(2)));
    assert_eq!(
        channel.drain(),
        vec![1],
        "the interrupted value was not queued"
    );
}

mod rendezvous {
    use super::*;

    #[test]
    fn a_push_returns_only_once_a_pop_took_the_value() {
        let channel = Arc::new(Channel::rendezvous());
        assert_eq!(channel.capacity(), Some(0));
        assert!(channel.is_full(), "a push would wait");
        assert_eq!(channel.try_push(1), Err(PushError::Full(1)), "no pop waits");
        assert_eq!(
            channel.push(1, Some(Duration::ZERO)),
            Err(PushError::TimedOut(1))
        );
        let pushed = {
            let channel = channel.clone();
            spawn(move || channel.push(7, None))
        };
        thread::sleep(SETTLE);
        assert!(still_blocked(&pushed), "the push waits for a pop");
        assert_eq!(channel.len(), 0, "it holds nothing");
        assert_eq!(channel.pop(Some(FOREVER)), Ok(7));
        assert_eq!(woken(&pushed), Ok(()));
    }

    #[test]
    fn try_push_succeeds_while_a_pop_waits() {
        let channel = Arc::new(Channel::rendezvous());
        let popped = {
            let channel = channel.clone();
            spawn(move || channel.pop(None))
        };
        // The pop must be waiting for the try_push to succeed: retry until it is.
        let mut value = 5;
        let backoff = Backoff::new();
        loop {
            match channel.try_push(value) {
                Ok(()) => break,
                Err(PushError::Full(back)) => value = back,
                Err(other) => panic!("unexpected {other:?}"),
            }
            backoff.snooze();
        }
        assert_eq!(woken(&popped), Ok(5));
    }

    #[test]
    fn close_wakes_a_waiting_push_with_its_value() {
        let channel = Arc::new(Channel::rendezvous());
        let pushed = {
            let channel = channel.clone();
            spawn(move || channel.push("kept", None))
        };
        thread::sleep(SETTLE);
        channel.close();
        match woken(&pushed) {
            Err(PushError::Closed("kept")) => {}
            other => panic!("expected Closed(kept), got {other:?}"),
        }
        assert_eq!(channel.pop(None), Err(PopError::Closed));
    }

    /// Every value of 4 pushers reaches one of 4 poppers exactly once.
    #[test]
    fn pushers_and_poppers_hand_over_every_value_once() {
        const PER_PUSHER: u32 = 2_000;
        let channel = Channel::rendezvous();
        let (sum, count) = thread::scope(|s| {
            let poppers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let (mut sum, mut count) = (0u64, 0u32);
                        while let Ok(value) = channel.pop(None) {
                            sum += u64::from(value);
                            count += 1;
                        }
                        (sum, count)
                    })
                })
                .collect();
            thread::scope(|p| {
                for pusher in 0..4 {
                    let channel = &channel;
                    p.spawn(move || {
                        for i in 0..PER_PUSHER {
                            channel.push(pusher * PER_PUSHER + i, None).unwrap();
                        }
                    });
                }
            });
            channel.close();
            poppers
                .into_iter()
                .map(|popper| popper.join().unwrap())
                .fold((0, 0), |(s, c), (ps, pc)| (s + ps, c + pc))
        });
        let total = 4 * PER_PUSHER;
        assert_eq!(count, total);
        assert_eq!(sum, u64::from(total) * u64::from(total - 1) / 2);
    }
}

mod select {
    use super::*;
    use threadkit_core::Interrupt;
    use threadkit_core::channel::{SelectError, select};

    #[test]
    fn it_takes_from_whichever_channel_has_a_value() {
        let (a, b) = (Channel::unbounded(), Channel::bounded(4));
        b.push("b", None).unwrap();
        assert_eq!(select(&[&a, &b], None, &[]), Ok((1, "b")));
        a.push("a", None).unwrap();
        assert_eq!(select(&[&a, &b], Some(FOREVER), &[]), Ok((0, "a")));
        assert_eq!(
            select(&[&a, &b], Some(Duration::from_millis(10)), &[]),
            Err(SelectError::TimedOut)
        );
        assert_eq!(select::<u8>(&[], None, &[]), Err(SelectError::Closed));
    }

    #[test]
    fn closed_channels_give_what_is_left_then_drop_out() {
        let (a, b) = (Channel::unbounded(), Channel::unbounded());
        a.push(1, None).unwrap();
        a.close();
        b.push(2, None).unwrap();
        let mut got = vec![
            select(&[&a, &b], None, &[]).unwrap(),
            select(&[&a, &b], None, &[]).unwrap(),
        ];
        got.sort();
        assert_eq!(got, [(0, 1), (1, 2)]);
        assert_eq!(
            select(&[&a, &b], Some(Duration::from_millis(10)), &[]),
            Err(SelectError::TimedOut),
            "b is still open"
        );
        b.close();
        assert_eq!(select(&[&a, &b], None, &[]), Err(SelectError::Closed));
    }

    #[test]
    fn a_waiting_select_wakes_for_a_push_a_close_or_an_interrupt() {
        let (a, b) = (
            Arc::new(Channel::unbounded()),
            Arc::new(Channel::unbounded()),
        );
        let interrupt = Arc::new(Interrupt::new());
        let start = || {
            let (a, b, interrupt) = (a.clone(), b.clone(), interrupt.clone());
            spawn(move || select(&[&*a, &*b], None, &[&interrupt]))
        };
        let waiting = start();
        thread::sleep(SETTLE);
        assert!(still_blocked(&waiting));
        b.push(9, None).unwrap();
        assert_eq!(woken(&waiting), Ok((1, 9)));

        let waiting = start();
        thread::sleep(SETTLE);
        a.close();
        thread::sleep(SETTLE);
        assert!(still_blocked(&waiting), "b is still open");
        b.close();
        assert_eq!(woken(&waiting), Err(SelectError::Closed));

        let (c, d) = (
            Arc::new(Channel::<u8>::unbounded()),
            Arc::new(Channel::rendezvous()),
        );
        let waiting = {
            let (c, d, interrupt) = (c.clone(), d.clone(), interrupt.clone());
            spawn(move || select(&[&*c, &*d], None, &[&interrupt]))
        };
        thread::sleep(SETTLE);
        interrupt.fire();
        assert_eq!(woken(&waiting), Err(SelectError::Interrupted));
    }

    /// Two channels that always have a value: each is chosen about half the time.
    #[test]
    fn it_is_fair_across_channels_that_are_always_ready() {
        let (a, b) = (Channel::bounded(1), Channel::bounded(1));
        a.push(0, None).unwrap();
        b.push(1, None).unwrap();
        let mut chosen = [0u32; 2];
        for _ in 0..1000 {
            let (index, value) = select(&[&a, &b], None, &[]).unwrap();
            assert_eq!(index, value);
            chosen[index] += 1;
            [&a, &b][index].push(value, None).unwrap();
        }
        assert!(chosen.iter().all(|&n| n >= 300), "chosen {chosen:?}");
    }

    /// A rendezvous channel in a select takes a value from a push waiting on it.
    #[test]
    fn it_takes_from_a_push_waiting_on_a_rendezvous_channel() {
        let (a, b) = (
            Arc::new(Channel::<u8>::unbounded()),
            Arc::new(Channel::rendezvous()),
        );
        let pushed = {
            let b = b.clone();
            spawn(move || b.push(3, None))
        };
        assert_eq!(select(&[&*a, &*b], Some(FOREVER), &[]), Ok((1, 3)));
        assert_eq!(woken(&pushed), Ok(()));
    }
}

mod after {
    use super::*;
    use threadkit_core::channel::{SelectError, select};

    #[test]
    fn its_value_shows_once_the_time_has_passed_then_it_is_closed() {
        let timer = Channel::after(Duration::from_millis(100), "ding");
        assert!(timer.is_closed(), "closed for pushes from the start");
        assert_eq!(timer.try_push("x"), Err(PushError::Closed("x")));
        assert_eq!(timer.try_pop(), Err(PopError::Empty), "not yet");
        assert_eq!((timer.len(), timer.is_empty()), (0, true));
        assert!(timer.drain().is_empty());
        assert_eq!(timer.pop(Some(FOREVER)), Ok("ding"), "a pop waits for it");
        assert_eq!(timer.pop(None), Err(PopError::Closed));
        assert_eq!(timer.try_pop(), Err(PopError::Closed));
    }

    #[test]
    fn a_select_with_a_timer_ends_when_it_fires() {
        let jobs = Channel::<&str>::unbounded();
        let timer = Channel::after(Duration::from_millis(30), "deadline");
        assert_eq!(select(&[&jobs, &timer], None, &[]), Ok((1, "deadline")));
        assert_eq!(
            select(&[&jobs, &timer], Some(Duration::from_millis(10)), &[]),
            Err(SelectError::TimedOut),
            "the timer is spent; jobs is still open"
        );
        jobs.push("job", None).unwrap();
        let zero = Channel::after(Duration::ZERO, "now");
        let mut got = vec![
            select(&[&jobs, &zero], None, &[]).unwrap(),
            select(&[&jobs, &zero], None, &[]).unwrap(),
        ];
        got.sort();
        assert_eq!(got, [(0, "job"), (1, "now")]);
    }

    #[test]
    fn of_two_threads_waiting_for_a_timer_one_gets_the_value() {
        let timer = Channel::after(Duration::from_millis(50), 1u8);
        let results: Vec<_> = thread::scope(|s| {
            let waiters: Vec<_> = (0..2).map(|_| s.spawn(|| timer.pop(None))).collect();
            waiters.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|r| **r == Ok(1)).count(), 1);
        assert_eq!(
            results
                .iter()
                .filter(|r| **r == Err(PopError::Closed))
                .count(),
            1
        );
    }
}
