//! Two threads moving money between two accounts, locked in two ways: in a global order, which
//! cannot deadlock, or source first, which does, and how a deadlock is detected, reported and
//! recovered from. The logic behind GDScript's `ThreadSafetyTester.run_deadlock_demo`.
//!
//! Thread `transfer-A-to-B` moves money from account A to B, `transfer-B-to-A` back; each
//! transfer locks both accounts. Locking the source first makes the two threads take the same
//! two locks in opposite orders, the classic deadlock: each holds one account and waits for the
//! other's. The demo makes it certain rather than likely: on their first transfer both threads
//! take their first lock, meet, and only then ask for the second.
//!
//! Detection: the second lock is asked for with a timeout (`try_lock_for`). When it expires, the
//! thread looks at a small wait-for record (which thread holds which account, which account each
//! waits for) and follows it: "I wait for B, held by the other thread, which waits for A, which I
//! hold" is a cycle, a real deadlock, and is reported. A timeout without a cycle (the holder was
//! merely slow) is not a deadlock: the thread waits again. The record is updated under its own
//! lock, after a thread takes an account and before it lets one go, so a cycle seen in it is a
//! cycle that exists.
//!
//! Recovery: the thread that found the cycle releases the account it holds, backs off briefly
//! and retries; from then on both threads lock in account order, the fix that ordered mode
//! applies from the start, so the deadlock cannot come back. (Retrying with random back-offs in
//! the old order would also recover, but could deadlock again any number of times, each costing a
//! full timeout.)
//!
//! parking_lot's own deadlock detection (its `deadlock_detection` feature) is not used: it adds
//! bookkeeping to every lock of every user of parking_lot in the program, needs a thread that
//! polls for cycles, and rules out parking_lot's `send_guard` feature; here the record covers the
//! only two locks that matter.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Mutex, MutexGuard};

use super::contention::OutOfRange;

/// How many transfers each of the two threads makes.
pub const TRANSFERS_PER_THREAD: usize = 1000;
/// The longest lock timeout accepted, in milliseconds.
pub const MAX_TIMEOUT_MS: i64 = 60_000;
/// Each account's balance before the transfers.
pub const OPENING_BALANCE: i64 = 10_000;
/// What one transfer moves. Each account could pay every one of its transfers with its opening
/// balance alone, so no transfer has to wait for funds.
const AMOUNT: i64 = 1;
/// How long a thread that gave up its account waits before retrying, so the other thread gets it.
const BACK_OFF: Duration = Duration::from_millis(1);

/// `timeout_ms` as a lock timeout, if it lies in 1..=[`MAX_TIMEOUT_MS`].
pub fn lock_timeout(timeout_ms: i64) -> Result<Duration, OutOfRange> {
    let ms = OutOfRange::check("timeout_ms", timeout_ms, 1, MAX_TIMEOUT_MS)?;
    Ok(Duration::from_millis(ms as u64))
}

/// One of the two accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Account {
    A,
    B,
}

impl Account {
    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::A => "A",
            Self::B => "B",
        })
    }
}

/// A thread that moves money one way, many times.
struct Transferrer {
    name: &'static str,
    from: Account,
    to: Account,
}

const TRANSFERRERS: [Transferrer; 2] = [
    Transferrer {
        name: "transfer-A-to-B",
        from: Account::A,
        to: Account::B,
    },
    Transferrer {
        name: "transfer-B-to-A",
        from: Account::B,
        to: Account::A,
    },
];

/// One thread of a deadlock: what it holds and what it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub thread: &'static str,
    pub holds: Account,
    pub waits_for: Account,
}

/// A detected deadlock: threads each waiting for an account the next one holds, the last waiting
/// for the first's. The first is the thread that detected it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadlock {
    pub cycle: Vec<Wait>,
}

impl fmt::Display for Deadlock {
    /// "deadlock: transfer-A-to-B holds account A and waits for account B, held by
    /// transfer-B-to-A, which waits for account A".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, wait) in self.cycle.iter().enumerate() {
            if i == 0 {
                write!(
                    f,
                    "deadlock: {} holds account {} and waits for account {}",
                    wait.thread, wait.holds, wait.waits_for
                )?;
            } else {
                write!(
                    f,
                    ", held by {}, which waits for account {}",
                    wait.thread, wait.waits_for
                )?;
            }
        }
        Ok(())
    }
}

/// What a run of the demo did.
#[derive(Debug, Clone)]
pub struct TransferReport {
    /// Whether both threads locked in account order from the start.
    pub ordered: bool,
    pub transfers_done: usize,
    pub transfers_expected: usize,
    /// Every deadlock detected, in the order found.
    pub deadlocks: Vec<Deadlock>,
    /// The sum of both balances before and after: transfers move money, they never make or lose
    /// any.
    pub total_before: i64,
    pub total_after: i64,
    pub duration: Duration,
}

impl TransferReport {
    pub fn is_conserved(&self) -> bool {
        self.total_before == self.total_after
    }

    pub fn is_completed(&self) -> bool {
        self.transfers_done == self.transfers_expected
    }
}

/// Runs both threads to the end of their transfers and reports. `ordered`: lock in account
/// order from the start; otherwise source first, which deadlocks on the first transfer (see the
/// module documentation). `timeout` is how long a thread waits for its second lock before
/// looking for a deadlock. Blocks the caller until both threads are done.
pub fn run_transfers(ordered: bool, timeout: Duration) -> TransferReport {
    let bank = Bank {
        accounts: [Mutex::new(OPENING_BALANCE), Mutex::new(OPENING_BALANCE)],
        record: Mutex::new(WaitFor::default()),
        in_order: AtomicBool::new(ordered),
        timeout,
        transfers_done: AtomicUsize::new(0),
    };
    let total_before = bank.total();
    let started = Instant::now();
    thread::scope(|s| {
        // Each side of the first transfer's meeting: tell the other "I hold my first account",
        // then hear it from the other.
        let (to_second, second_hears) = crossbeam_channel::bounded(1);
        let (to_first, first_hears) = crossbeam_channel::bounded(1);
        let meetings = [(to_second, first_hears), (to_first, second_hears)];
        for (me, meeting) in meetings.into_iter().enumerate() {
            let meeting = (!ordered).then_some(meeting);
            let bank = &bank;
            thread::Builder::new()
                .name(TRANSFERRERS[me].name.to_string())
                .spawn_scoped(s, move || bank.transfer_all(me, meeting))
                .expect("the OS refused to start a thread");
        }
    });
    let duration = started.elapsed();
    let total_after = bank.total();
    TransferReport {
        ordered,
        transfers_done: bank.transfers_done.into_inner(),
        transfers_expected: TRANSFERS_PER_THREAD * TRANSFERRERS.len(),
        deadlocks: bank.record.into_inner().deadlocks,
        total_before,
        total_after,
        duration,
    }
}

/// Who holds what and who waits for what, as far as the transfer threads have said.
#[derive(Debug, Default)]
struct WaitFor {
    /// Per account: the index of the thread holding it.
    holder: [Option<usize>; 2],
    /// Per thread: the account it waits for while holding another.
    waiting_for: [Option<Account>; 2],
    deadlocks: Vec<Deadlock>,
}

impl WaitFor {
    /// The cycle through `me`, if following "waits for an account held by" from `me` leads back.
    fn cycle_from(&self, me: usize) -> Option<Deadlock> {
        let mut chain: Vec<(usize, Account)> = Vec::new();
        let mut thread = me;
        while chain.len() < TRANSFERRERS.len() {
            let waits_for = self.waiting_for[thread]?;
            chain.push((thread, waits_for));
            thread = self.holder[waits_for.index()]?;
            if thread == me {
                // Each thread holds what the one before it waits for; the first, what the last
                // waits for.
                let cycle = (0..chain.len())
                    .map(|i| Wait {
                        thread: TRANSFERRERS[chain[i].0].name,
                        holds: chain[(i + chain.len() - 1) % chain.len()].1,
                        waits_for: chain[i].1,
                    })
                    .collect();
                return Some(Deadlock { cycle });
            }
        }
        None
    }
}

struct Bank {
    accounts: [Mutex<i64>; 2],
    record: Mutex<WaitFor>,
    /// Lock in account order: from the start in ordered mode, after the first deadlock otherwise.
    in_order: AtomicBool,
    timeout: Duration,
    transfers_done: AtomicUsize,
}

/// An account a transfer thread holds. Dropping it clears the record, then unlocks.
struct Held<'a> {
    bank: &'a Bank,
    account: Account,
    balance: MutexGuard<'a, i64>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // Runs before the guard field is dropped: the record never names a holder that has let
        // go, so nobody sees a cycle that is not there.
        self.bank.record.lock().holder[self.account.index()] = None;
    }
}

impl Bank {
    fn total(&self) -> i64 {
        self.accounts.iter().map(|a| *a.lock()).sum()
    }

    fn transfer_all(&self, me: usize, mut meeting: Option<(Sender<()>, Receiver<()>)>) {
        let t = &TRANSFERRERS[me];
        for _ in 0..TRANSFERS_PER_THREAD {
            loop {
                let (first, second) = if self.in_order.load(Ordering::Acquire) {
                    (t.from.min(t.to), t.from.max(t.to))
                } else {
                    (t.from, t.to)
                };
                // A thread holding nothing cannot be part of a deadlock: no timeout needed.
                let first = self.take(me, first);
                if let Some((tell, hear)) = meeting.take() {
                    // Errors mean the other thread is gone (it could not be started): go on
                    // rather than wait for it.
                    let _ = tell.send(());
                    let _ = hear.recv();
                }
                let Some(second) = self.take_or_detect(me, second, first.account) else {
                    // Deadlocked and chosen to give way: release, let the other thread finish
                    // its transfer, retry (in account order now).
                    drop(first);
                    thread::sleep(BACK_OFF);
                    continue;
                };
                let (mut from, mut to) = if first.account == t.from {
                    (first, second)
                } else {
                    (second, first)
                };
                *from.balance -= AMOUNT;
                *to.balance += AMOUNT;
                self.transfers_done.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }

    fn take(&self, me: usize, account: Account) -> Held<'_> {
        let balance = self.accounts[account.index()].lock();
        self.record.lock().holder[account.index()] = Some(me);
        Held {
            bank: self,
            account,
            balance,
        }
    }

    /// Takes `account` while holding `holding`. Each time the timeout expires, looks for a
    /// wait-for cycle: none, and it waits again; one, and it records the deadlock, takes itself
    /// out of the record (no longer waiting, no longer holding: the caller releases `holding`
    /// next), switches both threads to account order and returns `None`.
    fn take_or_detect(&self, me: usize, account: Account, holding: Account) -> Option<Held<'_>> {
        self.record.lock().waiting_for[me] = Some(account);
        loop {
            if let Some(balance) = self.accounts[account.index()].try_lock_for(self.timeout) {
                let mut record = self.record.lock();
                record.waiting_for[me] = None;
                record.holder[account.index()] = Some(me);
                return Some(Held {
                    bank: self,
                    account,
                    balance,
                });
            }
            let mut record = self.record.lock();
            if let Some(deadlock) = record.cycle_from(me) {
                record.waiting_for[me] = None;
                record.holder[holding.index()] = None;
                record.deadlocks.push(deadlock);
                self.in_order.store(true, Ordering::Release);
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(50);

    #[test]
    fn timeout_limits() {
        assert_eq!(lock_timeout(1), Ok(Duration::from_millis(1)));
        assert_eq!(lock_timeout(60_000), Ok(Duration::from_secs(60)));
        for ms in [0, -5, 60_001] {
            assert_eq!(
                lock_timeout(ms),
                Err(OutOfRange {
                    name: "timeout_ms",
                    value: ms,
                    min: 1,
                    max: 60_000
                })
            );
        }
    }

    #[test]
    fn ordered_locking_completes_without_a_deadlock() {
        let report = run_transfers(true, TIMEOUT);
        assert!(report.ordered);
        assert_eq!(report.deadlocks, []);
        assert_eq!(report.transfers_expected, 2 * TRANSFERS_PER_THREAD);
        assert_eq!(report.transfers_done, 2 * TRANSFERS_PER_THREAD);
        assert!(report.is_completed());
        assert_eq!(report.total_before, 2 * OPENING_BALANCE);
        assert_eq!(report.total_after, 2 * OPENING_BALANCE);
        assert!(report.is_conserved());
    }

    #[test]
    fn ordered_locking_with_a_short_timeout_never_reports() {
        // With 1 ms, timeouts expire whenever a holder is descheduled; with no cycle they are
        // waited through, not reported.
        for _ in 0..5 {
            let report = run_transfers(true, Duration::from_millis(1));
            assert_eq!(report.deadlocks, []);
            assert!(report.is_completed() && report.is_conserved());
        }
    }

    #[test]
    fn a_timeout_without_a_cycle_waits_again() {
        let bank = Bank {
            accounts: [Mutex::new(0), Mutex::new(0)],
            record: Mutex::new(WaitFor::default()),
            in_order: AtomicBool::new(false),
            timeout: Duration::from_millis(2),
            transfers_done: AtomicUsize::new(0),
        };
        let slow_holder = bank.take(1, Account::B);
        thread::scope(|s| {
            let waiter = s.spawn(|| {
                let first = bank.take(0, Account::A);
                bank.take_or_detect(0, Account::B, first.account).is_some()
            });
            // Many timeouts expire meanwhile; thread 1 holds B but waits for nothing.
            thread::sleep(Duration::from_millis(40));
            drop(slow_holder);
            assert!(waiter.join().unwrap(), "B was taken once free");
        });
        let record = bank.record.into_inner();
        assert_eq!(record.deadlocks, []);
        assert_eq!(record.holder, [None, None], "both released, both cleared");
        assert_eq!(record.waiting_for, [None, None]);
    }

    #[test]
    fn source_first_locking_deadlocks_then_detects_and_recovers() {
        let report = run_transfers(false, TIMEOUT);
        assert!(!report.ordered);
        // The meeting makes the first transfer deadlock every time; recovery switches to account
        // order, so there is exactly one.
        assert_eq!(report.deadlocks.len(), 1, "{:?}", report.deadlocks);
        let deadlock = &report.deadlocks[0];
        let mut threads: Vec<_> = deadlock.cycle.iter().map(|w| w.thread).collect();
        threads.sort_unstable();
        assert_eq!(threads, ["transfer-A-to-B", "transfer-B-to-A"]);
        for wait in &deadlock.cycle {
            // Each holds its source and waits for its destination.
            let (holds, waits_for) = if wait.thread == "transfer-A-to-B" {
                (Account::A, Account::B)
            } else {
                (Account::B, Account::A)
            };
            assert_eq!((wait.holds, wait.waits_for), (holds, waits_for));
        }
        assert!(report.is_completed());
        assert_eq!(report.transfers_done, 2 * TRANSFERS_PER_THREAD);
        assert!(report.is_conserved());
        assert_eq!(report.total_after, 2 * OPENING_BALANCE);
    }

    #[test]
    fn deadlock_reads_as_a_wait_for_cycle() {
        let deadlock = Deadlock {
            cycle: vec![
                Wait {
                    thread: "transfer-A-to-B",
                    holds: Account::A,
                    waits_for: Account::B,
                },
                Wait {
                    thread: "transfer-B-to-A",
                    holds: Account::B,
                    waits_for: Account::A,
                },
            ],
        };
        assert_eq!(
            deadlock.to_string(),
            "deadlock: transfer-A-to-B holds account A and waits for account B, held by transfer-B-to-A, which waits for account A"
        );
    }

    #[test]
    fn cycle_detection_follows_the_record() {
        let mut record = WaitFor {
            holder: [Some(0), Some(1)],
            waiting_for: [Some(Account::B), None],
            ..WaitFor::default()
        };
        assert_eq!(record.cycle_from(0), None, "the holder of B is not waiting");
        record.waiting_for[1] = Some(Account::A);
        let found = record.cycle_from(1).expect("a cycle");
        assert_eq!(
            found.to_string(),
            "deadlock: transfer-B-to-A holds account B and waits for account A, held by transfer-A-to-B, which waits for account B"
        );
        record.holder[1] = None;
        assert_eq!(record.cycle_from(0), None, "B is free");
    }
}
