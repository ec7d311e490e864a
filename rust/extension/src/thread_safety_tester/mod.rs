use godot::prelude::*;

use lessons::contention::{OutOfRange, Strategy, Workload, compare};
use lessons::deadlock::{lock_timeout, run_transfers};

use crate::problem::Problem;

mod lessons;

const CLASS: &str = "ThreadSafetyTester";

/// Shows, with real threads and real numbers, why shared data needs synchronisation and what each
/// kind costs, and what a deadlock is and how to avoid it.
///
/// [method run_unsafe_test] races threads on a counter that is read then written back, and
/// updates get lost (in every run with two or more threads); [method run_concurrent_test] does
/// the same with an atomic add, and none are.
/// [method compare_strategies] runs the race with seven strategies side by side, each with a
/// one-sentence lesson. [method run_deadlock_demo] makes two threads deadlock over two locks,
/// detects it, recovers, and shows that locking in a global order prevents it.
/// ```gdscript
/// var tester := ThreadSafetyTester.new()
/// var racy := tester.run_unsafe_test(4, 100_000)
/// print("lost %d of %d updates" % [racy.expected_count - racy.actual_count, racy.expected_count])
/// for row in tester.compare_strategies(4, 100_000):
///     print("%s: %s, %.1f ns per increment. %s" % [row.name, "exact" if row.correct else "LOST UPDATES", row.ns_per_op, row.lesson])
/// ```
/// [b]Every method blocks the calling thread[/b] until it is done: it starts its own threads and
/// waits for them. Sizes such as 4 threads x 100,000 operations take milliseconds; large ones take
/// seconds (the spin-lock row in particular when threads outnumber CPU cores), so run those from a
/// [Thread] rather than the main thread if the game must keep drawing. The tester keeps no state:
/// any thread may call it, several at once.
///
/// Out-of-range arguments (threads 1 to 64, operations per thread 1 to 10,000,000, timeout 1 to
/// 60,000 ms) are refused with an error naming the method, the value and the range; the method
/// then runs nothing and returns an empty Dictionary or Array.
///
/// [b]Deadlock detection.[/b] [method run_deadlock_demo] detects deadlocks itself: a thread whose
/// lock wait times out follows a small record of which thread holds which account and which
/// account each waits for, and only a cycle in it (each thread waiting for the next one's
/// account) counts as a deadlock. parking_lot's built-in detection (its
/// [code]deadlock_detection[/code] feature) is deliberately not enabled: it would add bookkeeping
/// to every lock in the whole extension, needs a background thread polling for cycles, and cannot
/// be combined with parking_lot's [code]send_guard[/code] feature, all for the two locks of a
/// demo.
#[derive(GodotClass)]
#[class(base = RefCounted, init)]
pub struct ThreadSafetyTester {}

#[godot_api]
impl ThreadSafetyTester {
    /// Races [param num_threads] threads, each adding one to a shared counter
    /// [param operations_per_thread] times with an atomic add (one indivisible step). Returns:
    /// - [code]expected_count[/code] (int): every increment, threads x operations per thread.
    /// - [code]actual_count[/code] (int): what the counter ended at: always
    ///   [code]expected_count[/code].
    /// - [code]duration_us[/code] (int): microseconds from the threads' release to the last one's
    ///   end (their start-up is not counted).
    /// - [code]thread_safe[/code] (bool): whether no increment was lost.
    /// - [code]ops_per_sec[/code] (float): increments per second, all threads together.
    ///
    /// Blocks the caller while it runs (see the class description).
    #[func]
    pub fn run_concurrent_test(
        &self,
        num_threads: i64,
        operations_per_thread: i64,
    ) -> VarDictionary {
        Self::race(
            "run_concurrent_test",
            Strategy::Atomic,
            num_threads,
            operations_per_thread,
        )
    }

    /// The same race as [method run_concurrent_test], but each increment reads the counter, then
    /// writes back the value plus one: two steps, like GDScript's [code]count += 1[/code] on a
    /// variable shared between threads. When another thread's increment lands between them it is
    /// overwritten. Left alone, that window is a few nanoseconds wide and a run may lose nothing
    /// (on one core especially), so here every 64th increment of a thread (its first included)
    /// waits between the two steps until another thread has changed the counter, or every other
    /// thread waits likewise or has finished. So with 2 or more threads every run loses
    /// updates, on any number of cores: [code]actual_count[/code] comes out lower than
    /// [code]expected_count[/code] and [code]thread_safe[/code] is [code]false[/code]. How many
    /// are lost varies from run to run; a single thread loses none. Same keys as
    /// [method run_concurrent_test].
    ///
    /// Each step is atomic on its own, so this is a logic race, not memory corruption: it is safe
    /// to run.
    #[func]
    pub fn run_unsafe_test(&self, num_threads: i64, operations_per_thread: i64) -> VarDictionary {
        Self::race(
            "run_unsafe_test",
            Strategy::Unsynchronized,
            num_threads,
            operations_per_thread,
        )
    }

    /// Runs the race of [method run_concurrent_test] once per strategy, one after another, and
    /// returns one Dictionary per strategy, in this order of [code]name[/code]:
    /// [code]"unsynchronized"[/code] (read, then write back, as in [method run_unsafe_test]:
    /// loses updates),
    /// [code]"atomic"[/code] (one atomic add), [code]"parking_lot Mutex"[/code],
    /// [code]"std Mutex"[/code], [code]"RwLock (writes)"[/code] (a reader-writer lock always
    /// taken for writing), [code]"spin lock"[/code] (a lock whose waiters spin instead of
    /// sleeping) and [code]"channel to one owner"[/code] (threads send their increments over a
    /// channel to one thread that alone holds the count). Each Dictionary has:
    /// - [code]name[/code] (String): the strategy, as above.
    /// - [code]expected[/code] (int): every increment, threads x operations per thread.
    /// - [code]actual[/code] (int): what the count ended at.
    /// - [code]correct[/code] (bool): whether no increment was lost: [code]true[/code] for every
    ///   strategy but [code]"unsynchronized"[/code], which is [code]false[/code] in every run with
    ///   2 or more threads (see [method run_unsafe_test]) and [code]true[/code] with one.
    /// - [code]duration_us[/code] (int): microseconds from the threads' release to the last one's
    ///   end.
    /// - [code]ns_per_op[/code] (float): wall-clock nanoseconds per increment, all threads
    ///   together: lower is faster.
    /// - [code]lesson[/code] (String): one sentence on what the strategy teaches.
    ///
    /// Blocks the caller for all seven races (see the class description).
    #[func]
    pub fn compare_strategies(
        &self,
        num_threads: i64,
        operations_per_thread: i64,
    ) -> Array<VarDictionary> {
        let Some(workload) =
            Self::workload("compare_strategies", num_threads, operations_per_thread)
        else {
            return Array::new();
        };
        compare(workload)
            .iter()
            .map(|run| {
                vdict! {
                    "name" => run.strategy.name(),
                    "expected" => run.expected as i64,
                    "actual" => run.actual as i64,
                    "correct" => run.is_correct(),
                    "duration_us" => run.duration.as_micros() as i64,
                    "ns_per_op" => run.ns_per_op(),
                    "lesson" => run.strategy.lesson(),
                }
            })
            .collect()
    }

    /// Two threads, [code]"transfer-A-to-B"[/code] and [code]"transfer-B-to-A"[/code], each make
    /// 1000 transfers of money between accounts A and B, each account a lock around its balance;
    /// a transfer holds both locks.
    ///
    /// With [param ordered] [code]false[/code], each thread locks the account it takes money from
    /// first, so the two take the same locks in opposite orders. Their first transfer is arranged
    /// to deadlock every time: both take their first lock, wait for each other, then ask for the
    /// second, which the other holds. A thread that waits [param timeout_ms] milliseconds for a
    /// lock checks who holds what; finding a cycle, it reports the deadlock, releases its account,
    /// backs off for a millisecond and retries, and from then on both threads lock in account
    /// order (A before B), so the deadlock cannot return and every transfer completes. With
    /// [param ordered] [code]true[/code], both lock in account order from the start: no deadlock,
    /// nothing to detect. A timeout without a cycle (the holder was just slow) is waited through,
    /// never reported.
    ///
    /// Returns:
    /// - [code]ordered[/code] (bool): [param ordered].
    /// - [code]transfers_done[/code] (int) and [code]transfers_expected[/code] (int, 2000).
    /// - [code]deadlocks_detected[/code] (int): 1 when not ordered, 0 when ordered.
    /// - [code]reports[/code] (Array of String): one line per deadlock, for example
    ///   [code]"deadlock: transfer-A-to-B holds account A and waits for account B, held by
    ///   transfer-B-to-A, which waits for account A"[/code].
    /// - [code]total_before[/code] and [code]total_after[/code] (int): both balances added up,
    ///   before and after.
    /// - [code]conserved[/code] (bool): whether the total is unchanged, as it always is: money
    ///   only moves between the two accounts, under both locks.
    /// - [code]duration_us[/code] (int): microseconds for the whole run; not ordered, it includes
    ///   the one [param timeout_ms] wait that detects the deadlock.
    /// - [code]completed[/code] (bool): whether every transfer was done.
    ///
    /// Blocks the caller until both threads are done: about [param timeout_ms] milliseconds more
    /// than the transfers themselves when not ordered.
    #[func]
    pub fn run_deadlock_demo(&self, ordered: bool, timeout_ms: i64) -> VarDictionary {
        let timeout = match lock_timeout(timeout_ms) {
            Ok(timeout) => timeout,
            Err(error) => {
                Self::refuse("run_deadlock_demo", error);
                return VarDictionary::new();
            }
        };
        let report = run_transfers(ordered, timeout);
        let reports: Array<GString> = report
            .deadlocks
            .iter()
            .map(|deadlock| GString::from(&deadlock.to_string()))
            .collect();
        vdict! {
            "ordered" => report.ordered,
            "transfers_done" => report.transfers_done as i64,
            "transfers_expected" => report.transfers_expected as i64,
            "deadlocks_detected" => report.deadlocks.len() as i64,
            "reports" => &reports,
            "total_before" => report.total_before,
            "total_after" => report.total_after,
            "conserved" => report.is_conserved(),
            "duration_us" => report.duration.as_micros() as i64,
            "completed" => report.is_completed(),
        }
    }
}

impl ThreadSafetyTester {
    fn race(method: &str, strategy: Strategy, threads: i64, ops: i64) -> VarDictionary {
        let Some(workload) = Self::workload(method, threads, ops) else {
            return VarDictionary::new();
        };
        let run = strategy.run(workload);
        vdict! {
            "expected_count" => run.expected as i64,
            "actual_count" => run.actual as i64,
            "duration_us" => run.duration.as_micros() as i64,
            "thread_safe" => run.is_correct(),
            "ops_per_sec" => run.ops_per_sec(),
        }
    }

    fn workload(method: &str, threads: i64, ops: i64) -> Option<Workload> {
        match Workload::new(threads, ops) {
            Ok(workload) => Some(workload),
            Err(error) => {
                Self::refuse(method, error);
                None
            }
        }
    }

    fn refuse(method: &str, error: OutOfRange) {
        Problem::new(CLASS, method, format!("{error}. Nothing was run.")).report();
    }
}
