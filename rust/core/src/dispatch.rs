//! The main-thread dispatcher: any thread pushes work, the main thread drains it each frame
//! within a budget (see [`mod@crate::drain`]).
//!
//! Items travel through one crossbeam channel, so each producer's items run in the order it
//! pushed them. The channel itself is unbounded; the capacity is enforced by an atomic `depth`
//! that counts every item from the moment a push reserves its slot until a pop releases it. A
//! producer reserves before it sends, and every successful pop (by a drain, or by a
//! [`Overflow::DropOldest`] push) is followed by exactly one release or hand-over, so the count
//! stays exact whichever of them races.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use crossbeam_utils::CachePadded;

use crate::drain::{DrainLimits, DrainReport, drain};
use crate::sync::{AtomicU64, AtomicUsize, Backoff, Condvar, Mutex, Ordering, fence};

/// What a push does when the queue is at its capacity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overflow {
    /// Refuse the item ([`PushError::Full`]).
    #[default]
    Reject,
    /// Wait up to this long for a drain to make room, then refuse ([`PushError::TimedOut`]).
    Block(Duration),
    /// Drop the oldest queued item (counted in [`DispatchStats::dropped`]) to make room.
    DropOldest,
}

impl Overflow {
    /// One `u64` holds the whole policy, so changing it is a single atomic store:
    /// 0 is Reject, 1 DropOldest, and `2 + nanoseconds` Block (saturating at ~584 years).
    fn encode(self) -> u64 {
        match self {
            Overflow::Reject => 0,
            Overflow::DropOldest => 1,
            Overflow::Block(timeout) => u64::try_from(timeout.as_nanos())
                .unwrap_or(u64::MAX)
                .saturating_add(2),
        }
    }

    fn decode(value: u64) -> Overflow {
        match value {
            0 => Overflow::Reject,
            1 => Overflow::DropOldest,
            nanos => Overflow::Block(Duration::from_nanos(nanos - 2)),
        }
    }
}

/// A push that was refused; it gives the item back.
#[derive(PartialEq, Eq)]
pub enum PushError<T> {
    /// The queue was full (policy [`Overflow::Reject`], or [`Dispatcher::try_push`]).
    Full(T),
    /// The queue stayed full for the whole [`Overflow::Block`] timeout.
    TimedOut(T),
}

impl<T> PushError<T> {
    /// The item that was not queued.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(item) | PushError::TimedOut(item) => item,
        }
    }
}

// Written by hand (as crossbeam does) so that `push(..).unwrap()` works for any item type,
// boxed closures included.
impl<T> std::fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PushError::Full(_) => "Full(..)",
            PushError::TimedOut(_) => "TimedOut(..)",
        })
    }
}

impl<T> std::fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PushError::Full(_) => "the dispatch queue is full",
            PushError::TimedOut(_) => "the dispatch queue stayed full for the whole timeout",
        })
    }
}

impl<T> std::error::Error for PushError<T> {}

/// Counters since the dispatcher was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DispatchStats {
    /// Pushes that were accepted.
    pub dispatched: u64,
    /// Items handed to a drain's `run`, including ones the runner then skipped and reported
    /// through [`Dispatcher::record_dropped`].
    pub executed: u64,
    /// Items dropped by [`Overflow::DropOldest`] plus those reported by
    /// [`Dispatcher::record_dropped`].
    pub dropped: u64,
    /// Pushes refused, full or timed out.
    pub rejected: u64,
    /// The most items ever queued at once.
    pub max_depth: u64,
    /// How long the last drain took, in microseconds.
    pub last_drain_usec: u64,
    /// Drains that stopped because the budget ran out with items from their start still queued.
    pub drains_over_budget: u64,
    /// Queued now.
    pub pending: u64,
}

/// Settings that mean "no limit" in the atomics below.
const NO_BUDGET: u64 = u64::MAX;
const NO_MAX: usize = usize::MAX;

/// A queue of work for one draining thread, fed by any number of threads. Every method takes
/// `&self`, and settings may change at any time from any thread; a push or drain uses the
/// settings it reads when it starts.
pub struct Dispatcher<T> {
    tx: Sender<T>,
    rx: Receiver<T>,
    /// Reserved slots: items queued, being sent, or just popped and not yet released. A count,
    /// not a publication (the channel carries the items), so its accesses are relaxed; the one
    /// ordering it needs, against `blocked`, comes from SeqCst fences. Padded, like the two
    /// counters every push or drain moves, to a cache line of its own.
    depth: CachePadded<AtomicUsize>,
    /// Pushes waiting for room under [`Overflow::Block`]. A release only takes `room_lock` to
    /// wake them when this is non-zero, so the common path costs a fence and a load.
    blocked: AtomicUsize,
    room_lock: Mutex<()>,
    room: Condvar,
    capacity: AtomicUsize,
    overflow: AtomicU64,
    budget_nanos: AtomicU64,
    max_per_drain: AtomicUsize,
    dispatched: CachePadded<AtomicU64>,
    executed: CachePadded<AtomicU64>,
    dropped: AtomicU64,
    rejected: AtomicU64,
    max_depth: AtomicU64,
    last_drain_usec: AtomicU64,
    drains_over_budget: AtomicU64,
}

impl<T> Default for Dispatcher<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Dispatcher<T> {
    /// An unbounded queue with policy [`Overflow::Reject`], no budget and no maximum per drain.
    pub fn new() -> Self {
        let (tx, rx) = unbounded();
        Self {
            tx,
            rx,
            depth: CachePadded::new(AtomicUsize::new(0)),
            blocked: AtomicUsize::new(0),
            room_lock: Mutex::new(()),
            room: Condvar::new(),
            capacity: AtomicUsize::new(0),
            overflow: AtomicU64::new(Overflow::Reject.encode()),
            budget_nanos: AtomicU64::new(NO_BUDGET),
            max_per_drain: AtomicUsize::new(NO_MAX),
            dispatched: CachePadded::new(AtomicU64::new(0)),
            executed: CachePadded::new(AtomicU64::new(0)),
            dropped: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            max_depth: AtomicU64::new(0),
            last_drain_usec: AtomicU64::new(0),
            drains_over_budget: AtomicU64::new(0),
        }
    }

    /// Sets the most items queued at once; 0 means unbounded. Lowering it below the current
    /// length drops nothing: only new pushes see the new limit.
    pub fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity, Ordering::Relaxed);
        // Blocked pushes may fit now; the lock in `wake_blocked` orders the store before their
        // re-check.
        self.wake_blocked();
    }

    /// The most items queued at once; 0 means unbounded.
    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    /// Sets what a push does when the queue is full.
    pub fn set_overflow(&self, overflow: Overflow) {
        self.overflow.store(overflow.encode(), Ordering::Relaxed);
    }

    /// What a push does when the queue is full.
    pub fn overflow(&self) -> Overflow {
        Overflow::decode(self.overflow.load(Ordering::Relaxed))
    }

    /// Sets the time a [`Dispatcher::drain`] may spend; `None` for no limit.
    pub fn set_budget(&self, budget: Option<Duration>) {
        let nanos = budget.map_or(NO_BUDGET, |b| {
            u64::try_from(b.as_nanos()).unwrap_or(NO_BUDGET)
        });
        self.budget_nanos.store(nanos, Ordering::Relaxed);
    }

    /// The time a [`Dispatcher::drain`] may spend; `None` for no limit.
    pub fn budget(&self) -> Option<Duration> {
        match self.budget_nanos.load(Ordering::Relaxed) {
            NO_BUDGET => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// Sets the most items a [`Dispatcher::drain`] runs; `None` for no limit.
    pub fn set_max_per_drain(&self, max: Option<usize>) {
        self.max_per_drain
            .store(max.unwrap_or(NO_MAX), Ordering::Relaxed);
    }

    /// The most items a [`Dispatcher::drain`] runs; `None` for no limit.
    pub fn max_per_drain(&self) -> Option<usize> {
        match self.max_per_drain.load(Ordering::Relaxed) {
            NO_MAX => None,
            max => Some(max),
        }
    }

    /// Queues `item`, applying the overflow policy when the queue is full. Under
    /// [`Overflow::Block`] this waits for a drain, so the thread that drains must use
    /// [`Dispatcher::try_push`] instead (it cannot make room while it waits).
    pub fn push(&self, item: T) -> Result<(), PushError<T>> {
        self.push_with(item, self.overflow())
    }

    /// Like [`Dispatcher::push`], but never waits for a drain: [`Overflow::Block`] acts as
    /// [`Overflow::Reject`]. For the thread that drains.
    pub fn try_push(&self, item: T) -> Result<(), PushError<T>> {
        let overflow = match self.overflow() {
            Overflow::Block(_) => Overflow::Reject,
            other => other,
        };
        self.push_with(item, overflow)
    }

    /// Queues `item` whatever the capacity and the overflow policy say, never waiting: for the
    /// few items that must not be lost (they release waiters), not for user work.
    pub fn push_unbounded(&self, item: T) {
        let reached = self.depth.fetch_add(1, Ordering::Relaxed) as u64 + 1;
        self.max_depth.fetch_max(reached, Ordering::Relaxed);
        self.send(item);
        self.dispatched.fetch_add(1, Ordering::Relaxed);
    }

    fn push_with(&self, item: T, overflow: Overflow) -> Result<(), PushError<T>> {
        let pushed = if self.try_reserve() {
            self.send(item);
            Ok(())
        } else {
            match overflow {
                Overflow::Reject => Err(PushError::Full(item)),
                Overflow::Block(timeout) => self.push_when_room(item, timeout),
                Overflow::DropOldest => {
                    self.push_over_oldest(item);
                    Ok(())
                }
            }
        };
        let counter = match pushed {
            Ok(()) => &self.dispatched,
            Err(_) => &self.rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        pushed
    }

    /// Takes a slot if the queue is below its capacity. A compare-and-swap loop, so racing
    /// producers never take more slots than there are.
    fn try_reserve(&self) -> bool {
        let capacity = self.capacity.load(Ordering::Relaxed);
        let mut depth = self.depth.load(Ordering::Relaxed);
        loop {
            if capacity != 0 && depth >= capacity {
                return false;
            }
            match self.depth.compare_exchange_weak(
                depth,
                depth + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => depth = now,
            }
        }
        let reached = depth as u64 + 1;
        if reached > self.max_depth.load(Ordering::Relaxed) {
            self.max_depth.fetch_max(reached, Ordering::Relaxed);
        }
        true
    }

    fn send(&self, item: T) {
        // Cannot fail: `self` holds the receiver.
        let _ = self.tx.send(item);
    }

    /// Waits on `room` until a release lets [`Dispatcher::try_reserve`] succeed, or `timeout`
    /// passes. This raises `blocked` before it re-checks `depth` under `room_lock`, and a release
    /// lowers `depth` before it reads `blocked`, each with a SeqCst fence in between (the Dekker
    /// pattern): either the re-check sees the room, or the release sees the waiter and notifies
    /// it under the lock, after it started waiting. No wake-up is lost.
    fn push_when_room(&self, item: T, timeout: Duration) -> Result<(), PushError<T>> {
        let deadline = Instant::now().checked_add(timeout);
        let mut guard = self.room_lock.lock().unwrap();
        self.blocked.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let reserved = loop {
            if self.try_reserve() {
                break true;
            }
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                break false;
            }
            guard = self.room.wait_timeout(guard, left).unwrap().0;
        };
        self.blocked.fetch_sub(1, Ordering::Relaxed);
        drop(guard);
        if !reserved {
            return Err(PushError::TimedOut(item));
        }
        self.send(item);
        Ok(())
    }

    /// Pops the oldest item and gives its slot to `item`, so the depth does not change. When
    /// the queue is full but has nothing to pop, every slot is held by an item another thread is
    /// sending or has just popped and is about to release: back off until that finishes.
    fn push_over_oldest(&self, item: T) {
        let backoff = Backoff::new();
        loop {
            if let Ok(oldest) = self.rx.try_recv() {
                self.send(item);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                drop(oldest);
                return;
            }
            backoff.snooze();
            if self.try_reserve() {
                self.send(item);
                return;
            }
        }
    }

    /// Frees the slot of one popped item and wakes pushes waiting for room.
    fn release(&self) {
        self.depth.fetch_sub(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.blocked.load(Ordering::Relaxed) > 0 {
            self.wake_blocked();
        }
    }

    fn wake_blocked(&self) {
        // Taking the lock orders this wake-up after a waiter's re-check (see `push_when_room`).
        let _guard = self.room_lock.lock().unwrap();
        self.room.notify_all();
    }

    /// Runs queued items with `run`, within the current budget and maximum per drain. See
    /// [`Dispatcher::drain_with`].
    pub fn drain(&self, run: impl FnMut(T)) -> DrainReport {
        let limits = DrainLimits {
            max_items: self.max_per_drain(),
            budget: self.budget(),
        };
        self.drain_with(limits, run)
    }

    /// Runs queued items with `run`, in queue order, until as many items as were queued at the
    /// start ran, `limits.max_items` ran, or `limits.budget` is spent. Items pushed meanwhile,
    /// also by `run`, wait for the next drain, except that under [`Overflow::DropOldest`] one
    /// may take the place of an item it dropped. Call it from one thread (the main thread).
    pub fn drain_with(&self, limits: DrainLimits, mut run: impl FnMut(T)) -> DrainReport {
        let report = drain(&self.rx, limits, |item| {
            self.release();
            self.executed.fetch_add(1, Ordering::Relaxed);
            run(item);
        });
        let usec = u64::try_from(report.elapsed.as_micros()).unwrap_or(u64::MAX);
        self.last_drain_usec.store(usec, Ordering::Relaxed);
        if report.over_budget {
            self.drains_over_budget.fetch_add(1, Ordering::Relaxed);
        }
        report
    }

    /// The channel the items travel through, for a thread that blocks on something else to
    /// also wake on new work (`crossbeam_channel::Select::ready`). Take items with
    /// [`Dispatcher::drain`] only: one received here directly is never released from the count,
    /// so the queue would look fuller for good.
    pub fn receiver(&self) -> &Receiver<T> {
        &self.rx
    }

    /// Items queued now (counting pushes still in progress).
    pub fn len(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts `n` items the runner skipped (e.g. their target object was freed) as dropped.
    pub fn record_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters so far.
    pub fn stats(&self) -> DispatchStats {
        DispatchStats {
            dispatched: self.dispatched.load(Ordering::Relaxed),
            executed: self.executed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            max_depth: self.max_depth.load(Ordering::Relaxed),
            last_drain_usec: self.last_drain_usec.load(Ordering::Relaxed),
            drains_over_budget: self.drains_over_budget.load(Ordering::Relaxed),
            pending: self.len() as u64,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn overflow_round_trips_through_its_encoding() {
        for overflow in [
            Overflow::Reject,
            Overflow::DropOldest,
            Overflow::Block(Duration::ZERO),
            Overflow::Block(Duration::from_millis(250)),
        ] {
            assert_eq!(Overflow::decode(overflow.encode()), overflow);
        }
        let forever = Overflow::decode(Overflow::Block(Duration::MAX).encode());
        let five_centuries = Duration::from_secs(500 * 365 * 24 * 3600);
        assert!(matches!(forever, Overflow::Block(t) if t > five_centuries));
    }

    #[test]
    fn push_unbounded_ignores_a_full_queue() {
        let d = Dispatcher::<u8>::new();
        d.set_capacity(1);
        d.push(1).unwrap();
        assert!(d.push(2).is_err());
        d.push_unbounded(3);
        assert_eq!(d.len(), 2);
        let mut seen = vec![];
        d.drain(|item| seen.push(item));
        assert_eq!(seen, [1, 3]);
        assert!(
            d.push(4).is_ok(),
            "the slot it took was given back by the drain"
        );
    }

    #[test]
    fn settings_read_back() {
        let d = Dispatcher::<u8>::new();
        assert_eq!(
            (d.capacity(), d.overflow(), d.budget(), d.max_per_drain()),
            (0, Overflow::Reject, None, None)
        );
        d.set_capacity(3);
        d.set_overflow(Overflow::Block(Duration::from_millis(5)));
        d.set_budget(Some(Duration::from_micros(1500)));
        d.set_max_per_drain(Some(0));
        assert_eq!(
            (d.capacity(), d.overflow(), d.budget(), d.max_per_drain()),
            (
                3,
                Overflow::Block(Duration::from_millis(5)),
                Some(Duration::from_micros(1500)),
                Some(0)
            )
        );
    }
}
