//! A closable multi-producer multi-consumer channel: crossbeam's, plus a `close` that wakes
//! every blocked caller on both ends.
//!
//! A crossbeam channel disconnects when all its senders are dropped, and only then do blocked
//! receivers wake, after they took what was left. [`Channel`] owns the one long-lived sender
//! (behind a mutex, so `close` can drop it while everyone else only holds `&self`), and a push
//! clones it for the duration of the push. So after [`Channel::close`]:
//! - a pop blocked on an empty channel wakes once the last push in flight finished (its clone
//!   dropped) and the items it may have sent were taken: every push that returned `Ok` is popped
//!   before any pop reports [`PopError::Closed`];
//! - a push blocked on a full channel waits in a `Select` over its send and over a second,
//!   never-used channel whose only sender `close` drops too; that disconnection wakes it, and it
//!   gives its value back with [`PushError::Closed`] (dropping its clone, which in turn lets the
//!   pops finish);
//! - a push that starts later finds no sender and fails at once.
//!
//! A push racing with `close` may still succeed; it then counts as having happened before the
//! close, and its item is popped like any other.
//!
//! Besides bounded and unbounded channels there are rendezvous channels (capacity 0: a push
//! waits for a pop to take its value) and timers ([`Channel::after`]: one value that shows at a
//! given time). [`select`] pops from whichever of several channels has a value first.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use crate::interrupt::Interrupt;
use crate::sync::lot::RwLock;
use crossbeam_channel::{
    Receiver, RecvTimeoutError, Select, SendError, Sender, TryRecvError, TrySendError, bounded,
    unbounded,
};

/// A push that was refused; it gives the value back.
#[derive(PartialEq, Eq)]
pub enum PushError<T> {
    /// The channel was full ([`Channel::try_push`]).
    Full(T),
    /// The channel stayed full for the whole timeout.
    TimedOut(T),
    /// The channel was closed, before the push or while it waited for room.
    Closed(T),
    /// An [`Interrupt`] fired while the push waited for room.
    Interrupted(T),
}

impl<T> PushError<T> {
    /// The value that was not queued.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(value)
            | PushError::TimedOut(value)
            | PushError::Closed(value)
            | PushError::Interrupted(value) => value,
        }
    }
}

// By hand (as crossbeam does), so that `push(..).unwrap()` works for any value type.
impl<T> std::fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PushError::Full(_) => "Full(..)",
            PushError::TimedOut(_) => "TimedOut(..)",
            PushError::Closed(_) => "Closed(..)",
            PushError::Interrupted(_) => "Interrupted(..)",
        })
    }
}

impl<T> std::fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PushError::Full(_) => "the channel is full",
            PushError::TimedOut(_) => "the channel stayed full for the whole timeout",
            PushError::Closed(_) => "the channel is closed",
            PushError::Interrupted(_) => "the wait for room was interrupted",
        })
    }
}

impl<T> std::error::Error for PushError<T> {}

/// A pop that returned nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PopError {
    /// The channel was empty ([`Channel::try_pop`]); it may still get values.
    Empty,
    /// The channel stayed empty for the whole timeout.
    TimedOut,
    /// The channel is closed and every value pushed into it has been popped.
    Closed,
    /// An [`Interrupt`] fired while the pop waited.
    Interrupted,
}

impl std::fmt::Display for PopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PopError::Empty => "the channel is empty",
            PopError::TimedOut => "the channel stayed empty for the whole timeout",
            PopError::Closed => "the channel is closed and empty",
            PopError::Interrupted => "the wait for a value was interrupted",
        })
    }
}

impl std::error::Error for PopError {}

/// The senders that exist while the channel is open.
struct Open<T> {
    data: Sender<T>,
    /// Never sent on (nothing of type `Infallible` exists): dropping it is the close signal.
    _closing: Sender<Infallible>,
}

/// A first-in first-out channel any number of threads push to and pop from, through `&self`.
/// Bounded (pushes wait while it is full) or unbounded; see the module documentation for
/// [`Channel::close`].
pub struct Channel<T> {
    /// `None` once closed. Held only long enough to clone the data sender, never while blocking.
    /// Pushes try to send under the read lock (never blocking there); `close` takes the write lock.
    open: RwLock<Option<Open<T>>>,
    data: Receiver<T>,
    /// Disconnects (and so wakes a `Select` on it) when `close` drops the sender in `open`.
    closing: Receiver<Infallible>,
    /// A timer's ([`Channel::after`]) one value stays out of sight until then.
    hidden_until: Option<Instant>,
}

impl<T> Channel<T> {
    /// A channel without a size limit: pushes never wait.
    pub fn unbounded() -> Self {
        Self::with(unbounded())
    }

    /// A channel holding at most `capacity` values (its buffer is allocated now).
    ///
    /// # Panics
    /// If `capacity` is 0: for a channel that holds nothing, where every push waits for a pop,
    /// ask for it by name with [`Channel::rendezvous`].
    pub fn bounded(capacity: usize) -> Self {
        assert!(
            capacity > 0,
            "Channel::bounded: the capacity must be at least 1"
        );
        Self::with(bounded(capacity))
    }

    fn with((data_tx, data): (Sender<T>, Receiver<T>)) -> Self {
        let (closing_tx, closing) = bounded(0);
        Self {
            open: RwLock::new(Some(Open {
                data: data_tx,
                _closing: closing_tx,
            })),
            data,
            closing,
            hidden_until: None,
        }
    }

    /// A channel without room (capacity 0): a push hands its value straight to a pop, so it
    /// waits until a pop takes it, and [`Channel::try_push`] succeeds only while a pop waits.
    /// It never holds a value, so `len` is 0 and `drain` takes nothing.
    pub fn rendezvous() -> Self {
        Self::with(bounded(0))
    }

    /// A timer: a channel closed from the start that holds one value, `value`, which no pop sees
    /// before `delay` has passed. A pop waiting on it takes the value when the time comes; later
    /// pops report [`PopError::Closed`]. For [`select`] with a deadline.
    pub fn after(delay: Duration, value: T) -> Self {
        let (data_tx, data) = bounded(1);
        data_tx
            .send(value)
            .unwrap_or_else(|_| unreachable!("a fresh channel with room and a receiver"));
        let (_, closing) = bounded(0);
        Self {
            open: RwLock::new(None),
            data,
            closing,
            hidden_until: Some(Instant::now() + delay),
        }
    }

    /// While a timer's value is hidden: the moment it shows.
    fn hidden(&self) -> Option<Instant> {
        self.hidden_until.filter(|&at| Instant::now() < at)
    }

    /// Queues `value`, waiting while the channel is full: up to `timeout`, or for as long as it
    /// takes with `None`. A [`Channel::close`] ends the wait.
    pub fn push(&self, value: T, timeout: Option<Duration>) -> Result<(), PushError<T>> {
        self.push_interruptible(value, timeout, &[])
    }

    /// Like [`Channel::push`], and also gives the value back with [`PushError::Interrupted`]
    /// once one of `interrupts` fired while it waited for room.
    pub fn push_interruptible(
        &self,
        value: T,
        timeout: Option<Duration>,
        interrupts: &[&Interrupt],
    ) -> Result<(), PushError<T>> {
        // The common case, and every push into an unbounded channel, needs no `Select` and no
        // sender of its own.
        let value = match self.try_push(value) {
            Err(PushError::Full(value)) => value,
            done => return done,
        };
        // Waiting for room: with a sender of our own, so `close` is not kept waiting for the lock.
        let Some(sender) = self.sender() else {
            return Err(PushError::Closed(value));
        };
        let mut select = Select::new();
        let send = select.send(&sender);
        let closing = select.recv(&self.closing);
        for interrupt in interrupts {
            select.recv(interrupt.receiver());
        }
        let ready = match timeout {
            None => select.select(),
            Some(timeout) => match select.select_timeout(timeout) {
                Ok(ready) => ready,
                Err(_) => return Err(PushError::TimedOut(value)),
            },
        };
        if ready.index() == send {
            // Disconnected cannot happen: `self` holds the receiver.
            ready
                .send(&sender, value)
                .map_err(|SendError(value)| PushError::Closed(value))
        } else if ready.index() == closing {
            // The closing channel never carries a value; it became ready by disconnecting.
            let _ = ready.recv(&self.closing);
            Err(PushError::Closed(value))
        } else {
            // Likewise, an interrupt's channel.
            let index = ready.index() - closing - 1;
            let _ = ready.recv(interrupts[index].receiver());
            Err(PushError::Interrupted(value))
        }
    }

    /// Queues `value` if there is room now.
    pub fn try_push(&self, value: T) -> Result<(), PushError<T>> {
        let open = self.open.read();
        let Some(open) = open.as_ref() else {
            return Err(PushError::Closed(value));
        };
        open.data.try_send(value).map_err(|error| match error {
            TrySendError::Full(value) => PushError::Full(value),
            TrySendError::Disconnected(value) => PushError::Closed(value),
        })
    }

    /// A clone of the data sender, or `None` once closed. The clone keeps the channel connected
    /// until this push is over, which is what makes pops see its value before `Closed`.
    fn sender(&self) -> Option<Sender<T>> {
        self.open.read().as_ref().map(|open| open.data.clone())
    }

    /// Takes the oldest value, waiting while the channel is empty: up to `timeout`, or for as
    /// long as it takes with `None`. Once closed, it still returns what is left, then
    /// [`PopError::Closed`].
    pub fn pop(&self, timeout: Option<Duration>) -> Result<T, PopError> {
        self.pop_interruptible(timeout, &[])
    }

    /// Like [`Channel::pop`], and also ends with [`PopError::Interrupted`] once one of
    /// `interrupts` fired while it waited. A value queued already is returned first.
    pub fn pop_interruptible(
        &self,
        timeout: Option<Duration>,
        interrupts: &[&Interrupt],
    ) -> Result<T, PopError> {
        if self.hidden().is_some() {
            return select(&[self], timeout, interrupts)
                .map(|(_, value)| value)
                .map_err(|error| match error {
                    SelectError::TimedOut => PopError::TimedOut,
                    SelectError::Closed => PopError::Closed,
                    SelectError::Interrupted => PopError::Interrupted,
                });
        }
        if !interrupts.is_empty() {
            match self.try_pop() {
                Err(PopError::Empty) => {}
                done => return done,
            }
            let mut select = Select::new();
            let data = select.recv(&self.data);
            for interrupt in interrupts {
                select.recv(interrupt.receiver());
            }
            let ready = match timeout {
                None => select.select(),
                Some(timeout) => select
                    .select_timeout(timeout)
                    .map_err(|_| PopError::TimedOut)?,
            };
            return if ready.index() == data {
                ready.recv(&self.data).map_err(|_| PopError::Closed)
            } else {
                let index = ready.index() - data - 1;
                let _ = ready.recv(interrupts[index].receiver());
                Err(PopError::Interrupted)
            };
        }
        match timeout {
            None => self.data.recv().map_err(|_| PopError::Closed),
            Some(timeout) => self
                .data
                .recv_timeout(timeout)
                .map_err(|error| match error {
                    RecvTimeoutError::Timeout => PopError::TimedOut,
                    RecvTimeoutError::Disconnected => PopError::Closed,
                }),
        }
    }

    /// Takes the oldest value if there is one now.
    pub fn try_pop(&self) -> Result<T, PopError> {
        if self.hidden().is_some() {
            return Err(PopError::Empty);
        }
        self.data.try_recv().map_err(|error| match error {
            TryRecvError::Empty => PopError::Empty,
            TryRecvError::Disconnected => PopError::Closed,
        })
    }

    /// Takes the values queued now, oldest first. Values pushed meanwhile are left for later,
    /// so a busy channel cannot keep it going forever; concurrent pops may take some first.
    pub fn drain(&self) -> Vec<T> {
        let queued = self.len();
        self.data.try_iter().take(queued).collect()
    }

    /// How many values are queued.
    pub fn len(&self) -> usize {
        if self.hidden().is_some() {
            return 0;
        }
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a push would wait now: the channel holds its capacity (a rendezvous channel is
    /// always full: a push waits for a pop). Never for an unbounded one.
    pub fn is_full(&self) -> bool {
        self.data.is_full()
    }

    /// The most values it holds; `None` when unbounded, `Some(0)` for a rendezvous channel.
    pub fn capacity(&self) -> Option<usize> {
        self.data.capacity()
    }

    /// Refuses further pushes and wakes every blocked caller: pushes waiting for room fail with
    /// [`PushError::Closed`], and pops waiting for a value return [`PopError::Closed`] once the
    /// values left are taken. Closing twice does nothing more.
    pub fn close(&self) {
        // Taken under the lock, dropped after it: dropping the senders wakes the waiters.
        let open = self.open.write().take();
        drop(open);
    }

    pub fn is_closed(&self) -> bool {
        self.open.read().is_none()
    }
}

/// Why [`select`] returned no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectError {
    /// Every channel stayed empty for the whole timeout.
    TimedOut,
    /// Every channel is closed and empty (or none was given).
    Closed,
    /// An [`Interrupt`] fired while it waited.
    Interrupted,
}

impl std::fmt::Display for SelectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SelectError::TimedOut => "every channel stayed empty for the whole timeout",
            SelectError::Closed => "every channel is closed and empty",
            SelectError::Interrupted => "the wait for a value was interrupted",
        })
    }
}

impl std::error::Error for SelectError {}

/// Pops from whichever of `channels` has a value first and returns its index with the value,
/// waiting up to `timeout` (`None`: as long as it takes) or until one of `interrupts` fires.
/// When several have a value, one of them is chosen at random (crossbeam's `Select`), so a busy
/// channel cannot starve the others. Closed channels take part until their last value is popped;
/// once every channel is closed and empty, it returns [`SelectError::Closed`].
pub fn select<T>(
    channels: &[&Channel<T>],
    timeout: Option<Duration>,
    interrupts: &[&Interrupt],
) -> Result<(usize, T), SelectError> {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    // Channels found closed and empty drop out; a select over what is left starts again.
    let mut finished = vec![false; channels.len()];
    loop {
        // A timer whose value is still hidden takes part through a timer channel of its own,
        // which wakes this select when the value shows.
        let timers: Vec<Option<Receiver<Instant>>> = channels
            .iter()
            .map(|channel| channel.hidden().map(crossbeam_channel::at))
            .collect();
        let mut select = Select::new();
        let mut arms = Vec::with_capacity(channels.len());
        for (index, channel) in channels.iter().enumerate() {
            if finished[index] {
                continue;
            }
            let arm = match &timers[index] {
                Some(timer) => select.recv(timer),
                None => select.recv(&channel.data),
            };
            arms.push((arm, index));
        }
        if arms.is_empty() {
            return Err(SelectError::Closed);
        }
        let first_interrupt = arms.len();
        for interrupt in interrupts {
            select.recv(interrupt.receiver());
        }
        let ready = match deadline {
            None => select.select(),
            Some(deadline) => select
                .select_deadline(deadline)
                .map_err(|_| SelectError::TimedOut)?,
        };
        let arm = ready.index();
        if arm >= first_interrupt {
            // An interrupt's channel never carries a value; it became ready by disconnecting.
            let _ = ready.recv(interrupts[arm - first_interrupt].receiver());
            return Err(SelectError::Interrupted);
        }
        let index = arms[arm].1;
        if let Some(timer) = &timers[index] {
            // The value shows now; the next round takes it (or another thread got it first).
            let _ = ready.recv(timer);
            continue;
        }
        match ready.recv(&channels[index].data) {
            Ok(value) => return Ok((index, value)),
            Err(_) => finished[index] = true,
        }
    }
}
