//! Channel behaviour with real threads and exact counts.
#![cfg(not(loom))]

use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

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
