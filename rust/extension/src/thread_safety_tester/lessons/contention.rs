//! Many threads incrementing one shared count, with and without synchronisation: the
//! measurements behind GDScript's `ThreadSafetyTester`.
//!
//! Every [`Strategy`] runs the same race: `threads` threads, released together, each
//! adding one `ops_per_thread` times. The clock starts when they are released and stops when the
//! last thread (and, for the channel, the owner thread) has finished, so it measures the
//! contention, not the thread start-up. The threads are real OS threads (std, not the `sync`
//! module's loom switch): these are measurements, not model-checked code.

use std::fmt;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The most threads one race may use.
pub const MAX_THREADS: i64 = 64;
/// The most increments one thread may make in one race.
pub const MAX_OPS_PER_THREAD: i64 = 10_000_000;
/// How many increments may wait in the channel to the owner thread; senders wait beyond that, so
/// a slow owner cannot make the queue grow without bound.
const CHANNEL_CAPACITY: usize = 1024;
/// The unsynchronized strategy holds the window between its read and its write-back open (see
/// [`Strategy::Unsynchronized`]) on every increment whose index within its thread is a multiple
/// of this, the first one included.
pub const UNSYNCHRONIZED_WINDOW_EVERY: usize = 64;

/// An integer argument outside the range it must be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange {
    pub name: &'static str,
    pub value: i64,
    pub min: i64,
    pub max: i64,
}

impl OutOfRange {
    /// `value` if it lies in `min..=max`, else the error naming it.
    pub fn check(name: &'static str, value: i64, min: i64, max: i64) -> Result<i64, Self> {
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(Self {
                name,
                value,
                min,
                max,
            })
        }
    }
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} is out of range; pass {} to {}",
            self.name, self.value, self.min, self.max
        )
    }
}

/// How many threads race and how many increments each makes (both checked against the limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    threads: usize,
    ops_per_thread: usize,
}

impl Workload {
    /// Checks `num_threads` against 1..=[`MAX_THREADS`], then `operations_per_thread` against
    /// 1..=[`MAX_OPS_PER_THREAD`] (the names are those of the GDScript parameters).
    pub fn new(num_threads: i64, operations_per_thread: i64) -> Result<Self, OutOfRange> {
        let threads = OutOfRange::check("num_threads", num_threads, 1, MAX_THREADS)?;
        let ops = OutOfRange::check(
            "operations_per_thread",
            operations_per_thread,
            1,
            MAX_OPS_PER_THREAD,
        )?;
        Ok(Self {
            threads: threads as usize,
            ops_per_thread: ops as usize,
        })
    }

    /// Every increment of every thread: what a correct strategy counts.
    pub fn total_ops(self) -> u64 {
        (self.threads * self.ops_per_thread) as u64
    }
}

/// One way of sharing the count between the racing threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// An atomic load, then an atomic store of the value plus one: two steps, no lock. Every
    /// [`UNSYNCHRONIZED_WINDOW_EVERY`]th increment of a thread waits between the two until the
    /// count differs from what it read (another thread changed it), or every other thread is
    /// waiting likewise or has finished: so with two or more threads, every run loses updates.
    Unsynchronized,
    /// One atomic `fetch_add`.
    Atomic,
    /// `parking_lot::Mutex` around the count.
    ParkingLotMutex,
    /// `std::sync::Mutex` around the count.
    StdMutex,
    /// `parking_lot::RwLock` around the count, taken for writing every time.
    RwLockWrites,
    /// `spin::Mutex` around the count: waiting threads spin instead of sleeping.
    SpinLock,
    /// Threads send their increments over a channel to one owner thread that alone holds the count.
    ChannelToOwner,
}

impl Strategy {
    /// Every strategy, in the order a comparison reports them.
    pub const ALL: [Self; 7] = [
        Self::Unsynchronized,
        Self::Atomic,
        Self::ParkingLotMutex,
        Self::StdMutex,
        Self::RwLockWrites,
        Self::SpinLock,
        Self::ChannelToOwner,
    ];

    /// The name shown to users.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unsynchronized => "unsynchronized",
            Self::Atomic => "atomic",
            Self::ParkingLotMutex => "parking_lot Mutex",
            Self::StdMutex => "std Mutex",
            Self::RwLockWrites => "RwLock (writes)",
            Self::SpinLock => "spin lock",
            Self::ChannelToOwner => "channel to one owner",
        }
    }

    /// One sentence on what the strategy teaches.
    pub fn lesson(self) -> &'static str {
        match self {
            Self::Unsynchronized => {
                "Reading then writing back is two steps: when another thread's increment lands between them it is overwritten, so updates are lost (GDScript's `count += 1` on shared data does the same). Left alone, that window is a few nanoseconds wide and a run may lose nothing; here every 64th increment holds it open until another thread has changed the count, or every other thread waits too or has finished, so every run with two or more threads loses updates, on any number of cores."
            }
            Self::Atomic => {
                "One indivisible hardware add: exact and lock-free, the cheapest correct counter, though the cores still take turns owning the cache line."
            }
            Self::ParkingLotMutex => {
                "Exact, and a waiting thread sleeps instead of burning a core; but under contention the threads take turns, so adding threads adds no speed."
            }
            Self::StdMutex => {
                "Exact; a thin layer over the platform's lock, on Linux and Windows about as fast as parking_lot's, and it marks itself poisoned if a holder panics."
            }
            Self::RwLockWrites => {
                "Exact, but an RwLock only pays off when most accesses are reads: taken for writing every time it is a mutex with extra bookkeeping."
            }
            Self::SpinLock => {
                "Exact, but a waiting thread spins and burns a whole core instead of sleeping; when threads outnumber cores it keeps spinning while the holder is not even running, which is why game threads should use a parking lock."
            }
            Self::ChannelToOwner => {
                "Share memory by communicating: no thread touches the count but its owner, so nothing can race; each message costs more than a lock, so send batches in real code."
            }
        }
    }

    /// Runs the race with this strategy.
    pub fn run(self, workload: Workload) -> Run {
        let (actual, duration) = match self {
            Self::Unsynchronized => {
                let count = AtomicU64::new(0);
                let start = Start::default();
                let waiting = AtomicUsize::new(0);
                // Two separate atomic operations: no data race in Rust's sense (no undefined
                // behaviour), yet another thread's store can land between them. Left alone, the
                // window is a few cycles wide, and a run on a busy machine (or on one core, where
                // a thread is rarely preempted inside it) often loses nothing. Holding it open now
                // and then, as GDScript's `+=` does by running many instructions there, makes the
                // interleaving certain: this thread's store overwrites another's, or two threads
                // that read the same value store the same result. Waiting only while some other
                // thread still runs outside a window, no thread waits forever.
                let duration = race(workload, &start, |index| {
                    let seen = count.load(Ordering::Relaxed);
                    if index % UNSYNCHRONIZED_WINDOW_EVERY == 0 {
                        waiting.fetch_add(1, Ordering::SeqCst);
                        while count.load(Ordering::Relaxed) == seen
                            && waiting.load(Ordering::SeqCst) + start.finished() < start.racers()
                        {
                            // Not only spinning: on one core the others need this one.
                            thread::yield_now();
                        }
                        waiting.fetch_sub(1, Ordering::SeqCst);
                    }
                    count.store(seen + 1, Ordering::Relaxed);
                });
                (count.into_inner(), duration)
            }
            Self::Atomic => {
                let count = AtomicU64::new(0);
                // Relaxed suffices: only the count matters, and joining the threads orders it
                // before the read below.
                let duration = race(workload, &Start::default(), |_| {
                    count.fetch_add(1, Ordering::Relaxed);
                });
                (count.into_inner(), duration)
            }
            Self::ParkingLotMutex => {
                let count = parking_lot::Mutex::new(0);
                let duration = race(workload, &Start::default(), |_| *count.lock() += 1);
                (count.into_inner(), duration)
            }
            Self::StdMutex => {
                let count = std::sync::Mutex::new(0);
                // Nothing panics while holding it, so poisoning cannot happen; if it did, the
                // count would still be whole.
                let duration = race(workload, &Start::default(), |_| {
                    *count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                });
                let count = count.into_inner().unwrap_or_else(PoisonError::into_inner);
                (count, duration)
            }
            Self::RwLockWrites => {
                let count = parking_lot::RwLock::new(0);
                let duration = race(workload, &Start::default(), |_| *count.write() += 1);
                (count.into_inner(), duration)
            }
            Self::SpinLock => {
                let count = spin::Mutex::new(0);
                let duration = race(workload, &Start::default(), |_| *count.lock() += 1);
                (count.into_inner(), duration)
            }
            Self::ChannelToOwner => channel_to_owner(workload),
        };
        Run {
            strategy: self,
            expected: workload.total_ops(),
            actual,
            duration,
        }
    }
}

/// The outcome of one race.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    pub strategy: Strategy,
    /// Every increment made: threads x operations per thread.
    pub expected: u64,
    /// What the count ended at.
    pub actual: u64,
    /// From the threads' release to the last one finishing.
    pub duration: Duration,
}

impl Run {
    /// Whether no increment was lost.
    pub fn is_correct(&self) -> bool {
        self.actual == self.expected
    }

    /// Wall-clock nanoseconds per increment, over all threads.
    pub fn ns_per_op(&self) -> f64 {
        self.duration.as_nanos() as f64 / self.expected as f64
    }

    /// Increments per second, over all threads.
    pub fn ops_per_sec(&self) -> f64 {
        // A race lasts at least a nanosecond; the floor only keeps a coarse clock from dividing
        // by zero.
        self.expected as f64 / self.duration.as_secs_f64().max(1e-9)
    }
}

/// Runs every strategy in [`Strategy::ALL`] order, one after another.
pub fn compare(workload: Workload) -> Vec<Run> {
    Strategy::ALL.iter().map(|s| s.run(workload)).collect()
}

/// Runs `increment` `ops_per_thread` times on each of `threads` threads released together (it is
/// given the increment's index within its thread), counting them in `start`; returns the time
/// from their release to the last one's end.
fn race(workload: Workload, start: &Start, increment: impl Fn(usize) + Sync) -> Duration {
    let increment = &increment;
    let started = thread::scope(|s| {
        let (starting_gun, start_line) = start.line();
        for _ in 0..workload.threads {
            let start_line = start_line.clone();
            s.spawn(move || {
                start_line.wait();
                for index in 0..workload.ops_per_thread {
                    increment(index);
                }
                start_line.finish();
            });
            start.spawned();
        }
        let started = Instant::now();
        drop(starting_gun);
        started
    });
    started.elapsed()
}

/// The channel strategy: racing threads send each increment to an owner thread, the only one
/// that holds the count; it stops when every sender has hung up.
fn channel_to_owner(workload: Workload) -> (u64, Duration) {
    let mut count = 0;
    let start = Start::default();
    let started = thread::scope(|s| {
        let (starting_gun, start_line) = start.line();
        let (to_owner, owner_inbox) = crossbeam_channel::bounded::<u64>(CHANNEL_CAPACITY);
        let count = &mut count;
        s.spawn(move || *count = owner_inbox.iter().sum());
        for _ in 0..workload.threads {
            let (start_line, to_owner) = (start_line.clone(), to_owner.clone());
            s.spawn(move || {
                start_line.wait();
                for _ in 0..workload.ops_per_thread {
                    // Fails only once the owner is gone, which it is not before every sender is.
                    if to_owner.send(1).is_err() {
                        break;
                    }
                }
            });
            start.spawned();
        }
        // The senders are the racing threads' clones alone, so the owner stops when they end.
        drop(to_owner);
        let started = Instant::now();
        drop(starting_gun);
        started
    });
    (count, started.elapsed())
}

/// The racing threads of one race: how many were spawned and how many have finished. They wait
/// on a [`StartLine`] until its starting gun (the paired sender) is dropped, which releases them
/// all at once.
///
/// A closed channel rather than a `Barrier`: if spawning a thread fails, the spawning code
/// unwinds, the gun is dropped with it, and the threads already waiting run and end instead of
/// waiting forever for one that will never come (which would hang the scope that joins them).
/// For the same reason [`Start::racers`] counts the threads spawned, not the threads asked for.
/// Create the line inside the `thread::scope` closure, so that unwinding drops the gun before
/// the scope joins.
#[derive(Default)]
struct Start {
    spawned: AtomicUsize,
    finished: AtomicUsize,
}

impl Start {
    fn line(&self) -> (crossbeam_channel::Sender<()>, StartLine<'_>) {
        let (gun, line) = crossbeam_channel::bounded(0);
        (gun, StartLine { line, start: self })
    }

    /// Counts a racing thread that was spawned (call it after each successful spawn).
    fn spawned(&self) {
        self.spawned.fetch_add(1, Ordering::SeqCst);
    }

    /// How many threads race; final once they are released, which is when they ask. (The
    /// channel's disconnection orders the last spawn's count before the release.)
    fn racers(&self) -> usize {
        self.spawned.load(Ordering::SeqCst)
    }

    /// How many racing threads have made all their increments.
    fn finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct StartLine<'a> {
    line: crossbeam_channel::Receiver<()>,
    start: &'a Start,
}

impl StartLine<'_> {
    fn wait(&self) {
        // Nothing is ever sent: `recv` returns, with a disconnection, when the gun is dropped.
        let _ = self.line.recv();
    }

    /// Counts this racing thread as finished.
    fn finish(&self) {
        self.start.finished.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(threads: i64, ops: i64) -> Workload {
        Workload::new(threads, ops).expect("a valid workload")
    }

    #[test]
    fn workload_limits_name_the_argument_value_and_range() {
        assert_eq!(workload(1, 1).total_ops(), 1);
        assert_eq!(workload(64, 10_000_000).total_ops(), 640_000_000);
        let cases = [
            (0, 1, "num_threads", 0, 64),
            (65, 1, "num_threads", 65, 64),
            (-3, 0, "num_threads", -3, 64),
            (4, 0, "operations_per_thread", 0, 10_000_000),
            (
                4,
                10_000_001,
                "operations_per_thread",
                10_000_001,
                10_000_000,
            ),
        ];
        for (threads, ops, name, value, max) in cases {
            let error = Workload::new(threads, ops).unwrap_err();
            assert_eq!(
                error,
                OutOfRange {
                    name,
                    value,
                    min: 1,
                    max
                }
            );
        }
        assert_eq!(
            Workload::new(0, 5).unwrap_err().to_string(),
            "num_threads 0 is out of range; pass 1 to 64"
        );
    }

    #[test]
    fn every_synchronized_strategy_counts_exactly() {
        let w = workload(4, 20_000);
        for strategy in Strategy::ALL {
            if strategy == Strategy::Unsynchronized {
                continue;
            }
            let run = strategy.run(w);
            assert_eq!(run.strategy, strategy);
            assert_eq!(run.expected, 80_000, "{}", strategy.name());
            assert_eq!(run.actual, 80_000, "{}", strategy.name());
            assert!(run.is_correct(), "{}", strategy.name());
        }
    }

    /// Runs the unsynchronized race `runs` times; returns how many runs lost updates.
    fn runs_losing_updates(threads: i64, ops: i64, runs: usize) -> usize {
        (0..runs)
            .filter(|_| {
                let run = Strategy::Unsynchronized.run(workload(threads, ops));
                assert!(run.actual <= run.expected, "a lost update never adds");
                !run.is_correct()
            })
            .count()
    }

    /// Sizes from the smallest race that can lose (2 threads, one increment each) to the README's.
    const LOSING_RACES: [(i64, i64, usize); 5] = [
        (2, 1, 200),
        (2, 100, 200),
        (64, 1, 10),
        (4, 10_000, 50),
        (4, 1_000_000, 3),
    ];

    #[test]
    fn unsynchronized_increments_lose_updates_in_every_run() {
        for (threads, ops, runs) in LOSING_RACES {
            assert_eq!(
                runs_losing_updates(threads, ops, runs),
                runs,
                "runs of {threads} x {ops} that lost updates, out of {runs}"
            );
        }
    }

    /// With one core the threads never run at once: a thread that reads, waits and writes back
    /// is the only way another's increment lands in between.
    #[cfg(target_os = "linux")]
    #[test]
    fn unsynchronized_increments_lose_updates_in_every_run_on_one_core() {
        // The first CPU this thread may run on: a container's cpuset need not hold CPU 0.
        // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity writes inside it,
        // CPU_ISSET only reads it, and CPU_ISSET is given indexes below CPU_SETSIZE.
        let first = unsafe {
            let mut allowed: libc::cpu_set_t = std::mem::zeroed();
            let read =
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut allowed);
            assert_eq!(read, 0, "read this thread's CPUs");
            (0..libc::CPU_SETSIZE as usize).find(|&cpu| libc::CPU_ISSET(cpu, &allowed))
        };
        let first = first.expect("a CPU to run on");
        // SAFETY: a zeroed cpu_set_t is a valid empty set and CPU_SET writes inside it (`first`
        // is below CPU_SETSIZE); sched_setaffinity only reads it. Pid 0 pins this test's own
        // thread, and the threads it starts inherit that.
        let pinned = unsafe {
            let mut one_core: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(first, &mut one_core);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one_core)
        };
        assert_eq!(pinned, 0, "pinned to CPU {first}");
        for (threads, ops, runs) in LOSING_RACES {
            assert_eq!(
                runs_losing_updates(threads, ops, runs),
                runs,
                "runs of {threads} x {ops} on one core that lost updates, out of {runs}"
            );
        }
    }

    #[test]
    fn unsynchronized_is_exact_on_one_thread() {
        let run = Strategy::Unsynchronized.run(workload(1, 100_000));
        assert_eq!(run.actual, 100_000);
    }

    #[test]
    fn compare_runs_every_strategy_in_order_with_names_and_lessons() {
        let runs = compare(workload(2, 1_000));
        let names: Vec<_> = runs.iter().map(|r| r.strategy.name()).collect();
        assert_eq!(
            names,
            [
                "unsynchronized",
                "atomic",
                "parking_lot Mutex",
                "std Mutex",
                "RwLock (writes)",
                "spin lock",
                "channel to one owner"
            ]
        );
        for run in &runs[1..] {
            assert_eq!(run.actual, 2_000, "{}", run.strategy.name());
        }
        assert!(Strategy::ALL.iter().all(|s| !s.lesson().is_empty()));
        assert!(Strategy::SpinLock.lesson().contains("burns a whole core"));
        // The lesson (and the class docs) name the window's period in words.
        assert!(
            Strategy::Unsynchronized
                .lesson()
                .contains(&format!("every {UNSYNCHRONIZED_WINDOW_EVERY}th increment"))
        );
        // What ends the wait: a change, or every other thread waiting or done (one other
        // waiting thread is not enough while a third still runs).
        assert!(
            Strategy::Unsynchronized
                .lesson()
                .contains("or every other thread waits too or has finished"),
            "{}",
            Strategy::Unsynchronized.lesson()
        );
    }

    #[test]
    fn rates_derive_from_duration_and_total() {
        let run = Run {
            strategy: Strategy::Atomic,
            expected: 2_000,
            actual: 2_000,
            duration: Duration::from_micros(1_000),
        };
        assert_eq!(run.ns_per_op(), 500.0);
        assert_eq!(run.ops_per_sec(), 2_000_000.0);
    }
}
