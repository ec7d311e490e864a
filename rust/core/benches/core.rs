//! Benchmarks of rust/core against std: queue throughput (ThreadKit's `Dispatcher` and `Channel`
//! vs `std::sync::mpsc` and a hand-made `Mutex<VecDeque>`) and the blocking-call round trip (a
//! oneshot through a `Dispatcher`, the way `MainThreadDispatcher.call_blocking` works, vs an mpsc
//! request with an mpsc reply).
//!
//! `cargo bench -p threadkit-core --bench core [-- --quick] [--filter TEXT]`; `cargo xtask bench`
//! runs it after the in-engine benchmarks and puts its rows in the same report. It prints what
//! godot_project/bench/run_bench.gd prints: `RUN name` before each workload, then one line per
//! row, `BENCH name=N unit=U threadkit=X builtin=Y metric=M value=V target=T extra=text`, or
//! `FAIL name: why` when a check failed (the run then exits 1).
//!
//! A small std harness (`#[bench]` needs nightly), with the in-engine workloads' method, so the
//! two sets of rows read alike: every side of a workload runs in this process, in rounds that
//! rotate which side goes first, after one warm-up round that is not counted; each figure is the
//! median of the rounds.

use std::collections::VecDeque;
use std::ops::Range;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Select;
use threadkit_core::channel::{Channel, PopError};
use threadkit_core::{Dispatcher, oneshot};

struct Options {
    quick: bool,
    /// Rows whose name contains it run; empty for all.
    filter: String,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            quick: false,
            filter: String::new(),
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                // `cargo bench` passes it to every bench binary.
                "--bench" => {}
                "--quick" => options.quick = true,
                "--filter" => options.filter = args.next().ok_or("--filter needs a value")?,
                other => match other.strip_prefix("--filter=") {
                    Some(text) => options.filter = text.to_string(),
                    None => return Err(format!("unknown option {other}")),
                },
            }
        }
        Ok(options)
    }

    /// Counted rounds per workload, as in godot_project/bench/support.gd.
    fn rounds(&self) -> usize {
        if self.quick { 3 } else { 7 }
    }

    /// Scales a full run's item count down for `--quick`.
    fn items(&self, full: u64) -> u64 {
        if self.quick { full / 10 } else { full }
    }

    fn wants(&self, row: &str) -> bool {
        row.contains(&self.filter)
    }
}

/// One measured comparison: ThreadKit and its std counterpart, in `unit`.
struct Row {
    name: &'static str,
    unit: &'static str,
    threadkit: f64,
    builtin: f64,
    extra: String,
}

impl Row {
    /// The runner's line. No target: the issue sets none for these rows.
    fn line(&self) -> String {
        format!(
            "BENCH name={} unit={} threadkit={} builtin={} metric=ratio value={} target=n/a extra={}",
            self.name,
            self.unit,
            number(self.threadkit),
            number(self.builtin),
            number(self.threadkit / self.builtin),
            self.extra
        )
    }
}

struct Workload {
    name: &'static str,
    /// The rows it reports; it runs when the filter matches one of them.
    rows: &'static [&'static str],
    run: fn(&Options) -> Result<Vec<Row>, String>,
}

const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "core_queue_spsc",
        rows: &SPSC_ROWS,
        run: |options| queues(options, 1, SPSC_ROWS),
    },
    Workload {
        name: "core_queue_mpsc",
        rows: &MPSC_ROWS,
        run: |options| queues(options, 2, MPSC_ROWS),
    },
    Workload {
        name: "core_blocking_call",
        rows: &["core_blocking_call"],
        run: blocking_calls,
    },
];

/// Each queue workload's rows: ThreadKit against std::sync::mpsc, then against Mutex<VecDeque>.
const SPSC_ROWS: [&str; 2] = [
    "core_queue_spsc_vs_std_mpsc",
    "core_queue_spsc_vs_mutex_vecdeque",
];
const MPSC_ROWS: [&str; 2] = [
    "core_queue_mpsc_vs_std_mpsc",
    "core_queue_mpsc_vs_mutex_vecdeque",
];

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("core bench: {error} (expected --quick, --filter TEXT)");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let (mut ran, mut failed) = (0, 0);
    for workload in &WORKLOADS {
        if !workload.rows.iter().any(|row| options.wants(row)) {
            continue;
        }
        println!("RUN {}", workload.name);
        ran += 1;
        match (workload.run)(&options) {
            Ok(rows) => {
                for row in rows.iter().filter(|row| options.wants(row.name)) {
                    println!("{}", row.line());
                }
            }
            Err(why) => {
                failed += 1;
                println!("FAIL {}: {why}", workload.name);
            }
        }
    }
    println!(
        "core bench: {ran} workloads, {failed} failed, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs `rounds` counted rounds of every side (each returns one sample), rotating which goes
/// first, after one warm-up round that is not counted; the median sample of each side.
fn alternate<F, const N: usize>(rounds: usize, mut sides: [F; N]) -> Result<[f64; N], String>
where
    F: FnMut() -> Result<f64, String>,
{
    let mut samples: [Vec<f64>; N] = std::array::from_fn(|_| Vec::new());
    for round in 0..=rounds {
        for k in 0..N {
            let side = (round + k) % N;
            let sample = sides[side]()?;
            if round > 0 {
                samples[side].push(sample);
            }
        }
    }
    Ok(samples.map(median))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn ns_per(elapsed: Duration, items: u64) -> f64 {
    elapsed.as_nanos() as f64 / items as f64
}

/// About three significant digits, as run_bench.gd prints them.
fn number(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

// ---- Queues ------------------------------------------------------------------------------

/// Producer `p` pushes `p << 32 | i` for i in 0..per_producer, so the consumer can tell whose
/// value it got and check that each producer's values arrive whole and in order.
const PRODUCER_SHIFT: u32 = 32;

/// What the consumer got: per producer, the index it expects next.
struct Tally {
    next: Vec<u64>,
    taken: u64,
    /// The first value that was not the one expected: (producer, index expected, index got).
    wrong: Option<(usize, u64, u64)>,
}

impl Tally {
    fn new(producers: usize) -> Self {
        Self {
            next: vec![0; producers],
            taken: 0,
            wrong: None,
        }
    }

    fn take(&mut self, value: u64) {
        self.taken += 1;
        let producer = (value >> PRODUCER_SHIFT) as usize;
        let index = value & ((1 << PRODUCER_SHIFT) - 1);
        match self.next.get_mut(producer) {
            Some(next) if *next == index => *next += 1,
            next => {
                let expected = next.map_or(0, |next| *next);
                self.wrong.get_or_insert((producer, expected, index));
            }
        }
    }

    fn check(&self, per_producer: u64) -> Result<(), String> {
        if let Some((producer, expected, got)) = self.wrong {
            return Err(format!(
                "expected value {expected} of producer {producer}, got {got} (values lost, \
                 reordered or duplicated)"
            ));
        }
        let expected = per_producer * self.next.len() as u64;
        if self.taken != expected {
            return Err(format!("took {} values of {expected}", self.taken));
        }
        Ok(())
    }
}

/// `producers` threads push `per_producer` values each with `produce` (and `close` runs after
/// the last one), while this thread takes them with `consume` until it has them all or
/// `consume` says nothing more will come. `consume` gets whether every producer was done
/// before the call: when it then finds nothing queued, the stream is over. Timed from the start
/// signal to the last value taken; the values are checked after.
fn flood(
    producers: usize,
    per_producer: u64,
    produce: impl Fn(Range<u64>) -> Result<(), String> + Sync,
    close: impl Fn() + Sync,
    mut consume: impl FnMut(&mut Tally, bool) -> Result<bool, String>,
) -> Result<Duration, String> {
    let left = AtomicUsize::new(producers);
    let start = Barrier::new(producers + 1);
    let producer_error = Mutex::new(None);
    let total = per_producer * producers as u64;
    let (elapsed, tally) = thread::scope(|scope| {
        for producer in 0..producers as u64 {
            let (left, start, producer_error) = (&left, &start, &producer_error);
            let (produce, close) = (&produce, &close);
            scope.spawn(move || {
                start.wait();
                let first = producer << PRODUCER_SHIFT;
                if let Err(error) = produce(first..first + per_producer) {
                    *producer_error.lock().unwrap() = Some(error);
                }
                if left.fetch_sub(1, Ordering::AcqRel) == 1 {
                    close();
                }
            });
        }
        start.wait();
        let began = Instant::now();
        let mut tally = Tally::new(producers);
        while tally.taken < total {
            let all_pushed = left.load(Ordering::Acquire) == 0;
            if !consume(&mut tally, all_pushed)? {
                break;
            }
        }
        Ok::<_, String>((began.elapsed(), tally))
    })?;
    if let Some(error) = producer_error.into_inner().unwrap() {
        return Err(error);
    }
    tally.check(per_producer)?;
    Ok(elapsed)
}

/// The polling consumers' step after taking `taken` values: yield when there was nothing, stop
/// when there was nothing and every producer was already done.
fn poll_step(taken: usize, all_pushed: bool) -> bool {
    if taken > 0 {
        return true;
    }
    if all_pushed {
        return false;
    }
    thread::yield_now();
    true
}

/// One side of a queue workload: (producers, values per producer) to the time taken.
type QueueSide = fn(usize, u64) -> Result<Duration, String>;

/// Our main-thread queue: pushes from any thread; the consumer drains what is queued, polling.
fn dispatcher_queue(producers: usize, per_producer: u64) -> Result<Duration, String> {
    let queue = Dispatcher::new();
    flood(
        producers,
        per_producer,
        |values| {
            for value in values {
                queue
                    .push(value)
                    .map_err(|error| format!("Dispatcher::push: {error}"))?;
            }
            Ok(())
        },
        || {},
        |tally, all_pushed| {
            let taken = queue.drain(|value| tally.take(value)).processed;
            Ok(poll_step(taken, all_pushed))
        },
    )
}

/// A hand-made main-thread queue: the consumer swaps the whole deque out under the lock, polling.
/// It keeps both buffers, so neither side reallocates once warm.
fn mutex_queue(producers: usize, per_producer: u64) -> Result<Duration, String> {
    let queue = Mutex::new(VecDeque::new());
    let mut taken = VecDeque::new();
    let poisoned = |_| "the Mutex<VecDeque> is poisoned".to_string();
    flood(
        producers,
        per_producer,
        |values| {
            for value in values {
                queue.lock().map_err(poisoned)?.push_back(value);
            }
            Ok(())
        },
        || {},
        |tally, all_pushed| {
            std::mem::swap(&mut *queue.lock().map_err(poisoned)?, &mut taken);
            let count = taken.len();
            for value in taken.drain(..) {
                tally.take(value);
            }
            Ok(poll_step(count, all_pushed))
        },
    )
}

/// Our closable channel: the consumer blocks in `pop`; the last producer closes it.
fn channel_queue(producers: usize, per_producer: u64) -> Result<Duration, String> {
    let channel = Channel::unbounded();
    flood(
        producers,
        per_producer,
        |values| {
            for value in values {
                channel
                    .push(value, None)
                    .map_err(|error| format!("Channel::push: {error}"))?;
            }
            Ok(())
        },
        || channel.close(),
        |tally, _| match channel.pop(None) {
            Ok(value) => {
                tally.take(value);
                Ok(true)
            }
            Err(PopError::Closed) => Ok(false),
            Err(error) => Err(format!("Channel::pop: {error}")),
        },
    )
}

/// std's channel: each producer takes its own Sender; the receiver, blocking in `recv`, sees the
/// end when the last one is dropped.
fn std_queue(producers: usize, per_producer: u64) -> Result<Duration, String> {
    let (sender, receiver) = mpsc::channel();
    let senders = Mutex::new(vec![sender; producers]);
    flood(
        producers,
        per_producer,
        |values| {
            let sender = senders
                .lock()
                .map_err(|_| "the senders' Mutex is poisoned")?
                .pop()
                .ok_or("a producer found no Sender left")?;
            for value in values {
                sender
                    .send(value)
                    .map_err(|_| "mpsc::Sender::send: the receiver is gone")?;
            }
            Ok(())
        },
        || {},
        |tally, _| match receiver.recv() {
            Ok(value) => {
                tally.take(value);
                Ok(true)
            }
            Err(mpsc::RecvError) => Ok(false),
        },
    )
}

fn queues(
    options: &Options,
    producers: usize,
    rows: [&'static str; 2],
) -> Result<Vec<Row>, String> {
    let per_producer = options.items(1_000_000) / producers as u64;
    let total = per_producer * producers as u64;
    let sides: [QueueSide; 4] = [dispatcher_queue, channel_queue, std_queue, mutex_queue];
    let rounds = options.rounds();
    let [dispatcher, channel, std_mpsc, mutex] = alternate(
        rounds,
        sides.map(|side| move || side(producers, per_producer).map(|d| ns_per(d, total))),
    )?;
    let who = match producers {
        1 => format!("1 producer thread pushes {total} u64s"),
        n => format!("{n} producer threads push {per_producer} u64s each"),
    };
    let timed = format!(
        "{who}, 1 consumer thread takes them; ns per value from the start signal to the last \
         value taken"
    );
    let method = format!(
        "median of {rounds} rounds rotating the 4 sides; every value checked (whole, in order \
         per producer)"
    );
    Ok(vec![
        Row {
            name: rows[0],
            unit: "ns/item",
            threadkit: channel,
            builtin: std_mpsc,
            extra: format!(
                "{timed}: threadkit Channel (unbounded) push/pop vs std::sync::mpsc send/recv, both \
                 consumers blocking per value; in the same rounds Dispatcher {} and \
                 Mutex<VecDeque> {} ns/item; {method}",
                number(dispatcher),
                number(mutex)
            ),
        },
        Row {
            name: rows[1],
            unit: "ns/item",
            threadkit: dispatcher,
            builtin: mutex,
            extra: format!(
                "{timed}: threadkit Dispatcher push + drain vs a Mutex<VecDeque> (push_back under \
                 the lock; the consumer swaps the whole deque out), both consumers polling (take \
                 what is queued, yield_now when empty: the main thread's per-frame drain, in a \
                 loop; no Condvar); in the same rounds Channel {} and std::sync::mpsc {} \
                 ns/item; {method}",
                number(channel),
                number(std_mpsc)
            ),
        },
    ])
}

// ---- Blocking call -----------------------------------------------------------------------

/// A closure for the owner thread to run, as MainThreadDispatcher queues them.
type Job = Box<dyn FnOnce() + Send>;

/// Far longer than a round trip takes; reaching it fails the workload.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What call `i` computes on the owner thread.
fn answer(i: u64) -> u64 {
    i.wrapping_mul(3) + 1
}

fn check_answer(i: u64, got: u64) -> Result<(), String> {
    if got == answer(i) {
        Ok(())
    } else {
        Err(format!("call {i} returned {got}, expected {}", answer(i)))
    }
}

/// `calls` sequential calls through a Dispatcher with a oneshot each, as `call_blocking` makes
/// them: the job claims the call and completes it; the caller waits with a timeout. The owner
/// blocks while idle by selecting on the dispatcher's receiver, then drains.
fn dispatcher_calls(calls: u64) -> Result<Duration, String> {
    let queue = Dispatcher::<Job>::new();
    let stop = AtomicBool::new(false);
    let elapsed = thread::scope(|scope| {
        scope.spawn(|| {
            let mut ready = Select::new();
            ready.recv(queue.receiver());
            while !stop.load(Ordering::Acquire) {
                ready.ready();
                queue.drain(|job| job());
            }
        });
        let timed = (|| {
            let began = Instant::now();
            for i in 0..calls {
                let (runner, caller) = oneshot::<u64>();
                queue
                    .push(Box::new(move || {
                        if runner.claim() {
                            runner.complete(answer(i));
                        }
                    }))
                    .map_err(|error| format!("Dispatcher::push: {error}"))?;
                let got = caller
                    .wait(Some(CALL_TIMEOUT))
                    .map_err(|error| format!("call {i}: {error}"))?;
                check_answer(i, got)?;
            }
            Ok::<_, String>(began.elapsed())
        })();
        // Whatever happened, stop the owner: raise the flag, then wake it with an empty job.
        stop.store(true, Ordering::Release);
        let _ = queue.push(Box::new(|| {}));
        timed
    })?;
    let stats = queue.stats();
    if stats.dispatched != calls + 1 || stats.rejected != 0 || stats.dropped != 0 {
        return Err(format!(
            "the Dispatcher counted {} pushes, {} rejected, {} dropped for {calls} calls + 1 stop",
            stats.dispatched, stats.rejected, stats.dropped
        ));
    }
    Ok(elapsed)
}

/// The same with std only: each call sends its closure with a new reply channel's Sender on a
/// request channel; the owner blocks in `recv` and runs what it gets.
fn std_calls(calls: u64) -> Result<Duration, String> {
    let (requests, inbox) = mpsc::channel::<Job>();
    thread::scope(|scope| {
        scope.spawn(move || {
            for job in inbox {
                job();
            }
        });
        let timed = (|| {
            let began = Instant::now();
            for i in 0..calls {
                let (reply, replies) = mpsc::channel();
                requests
                    .send(Box::new(move || {
                        let _ = reply.send(answer(i));
                    }))
                    .map_err(|_| "mpsc::Sender::send: the owner thread is gone")?;
                let got = replies
                    .recv_timeout(CALL_TIMEOUT)
                    .map_err(|error| format!("call {i}: {error}"))?;
                check_answer(i, got)?;
            }
            Ok::<_, String>(began.elapsed())
        })();
        // Dropping the last Sender ends the owner's loop.
        drop(requests);
        timed
    })
}

fn blocking_calls(options: &Options) -> Result<Vec<Row>, String> {
    let calls = options.items(20_000);
    let rounds = options.rounds();
    let sides: [fn(u64) -> Result<Duration, String>; 2] = [dispatcher_calls, std_calls];
    let [threadkit, std] = alternate(
        rounds,
        sides.map(|side| move || side(calls).map(|d| ns_per(d, calls))),
    )?;
    Ok(vec![Row {
        name: "core_blocking_call",
        unit: "ns/round_trip",
        threadkit,
        builtin: std,
        extra: format!(
            "{calls} sequential calls from a caller thread to an owner thread that runs a closure \
             and hands its result back: threadkit oneshot Runner/Caller through a Dispatcher of \
             boxed closures (MainThreadDispatcher.call_blocking's path: push, claim, complete, \
             Caller::wait with a timeout; the owner waits in a crossbeam Select on the \
             Dispatcher's receiver, then drains) vs std::sync::mpsc (the closure sent on a \
             request channel with the Sender of a new reply channel, the owner blocking in recv, \
             the caller in recv_timeout); median of {rounds} alternating rounds; every result \
             checked"
        ),
    }])
}
