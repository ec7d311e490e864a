use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use godot::classes::IRefCounted;
use godot::prelude::*;
use threadkit_core::channel::{Channel, PopError, PushError};

use crate::send::SendVariant;

const CLASS: &str = "ThreadSafeQueue";

/// A first-in first-out queue that any number of threads push values into and pop values from:
/// a channel between threads, like Go's or Rust's.
///
/// [codeblock]
/// var jobs := ThreadSafeQueue.create(64)  # At most 64 values queued; 0 (the default): no limit.
/// var producer := Thread.new()
/// producer.start(func():
///     for path in paths:
///         jobs.push(path)  # Waits while 64 values are queued.
///     jobs.close())  # Done: the consumer takes what is left, then stops.
/// var consumer := Thread.new()
/// consumer.start(func():
///     while true:
///         var path = jobs.pop()  # Waits for a value.
///         if path == null:
///             break  # Closed, and every value has been popped.
///         process(path))
/// producer.wait_to_finish()
/// consumer.wait_to_finish()
/// [/codeblock]
/// [b]Null means "nothing".[/b] [code]null[/code] (and a freed object, which equals
/// [code]null[/code]) cannot be pushed: it is refused with an error. So a [code]null[/code] from
/// a pop always means no value: [method try_pop] found the queue empty, [method pop] with a
/// timeout waited in vain or found the queue closed and empty, and [method pop] without a timeout
/// returns [code]null[/code] only once the queue is closed and every value has been popped. To
/// send "nothing" as a value, wrap it in an Array or a Dictionary.
///
/// [b]Values are copies.[/b] Arrays, Dictionaries and Packed*Arrays (nested ones included) are
/// copied when pushed, so changing one after pushing it does not change what is popped, and the
/// popped value belongs to the thread that popped it. A Packed*Array's copy shares its buffer
/// until either side changes it, so even a large one costs nothing to push. Objects are not
/// copied: the popped value refers to the same object, and using it from several threads is up
/// to you.
///
/// [b]Closing.[/b] [method close] is how producers say they are done: later pushes return
/// [code]false[/code] (without an error, since a producer racing with shutdown is expected),
/// pushes waiting for room return [code]false[/code] at once, and pops still return the values
/// left before they report [code]null[/code].
///
/// Every method may be called from any thread. [method push] and [method pop] wait (without
/// spinning) when the queue is full or empty; on the main thread that freezes the game until
/// they return, so there use [method try_push], [method try_pop] or a short timeout.
///
/// [b]Freeing.[/b] A thread waiting in [method push] or [method pop] does not keep the queue
/// alive. When its last reference is dropped, the waiting threads wake: [method push] returns
/// [code]false[/code] and [method pop] [code]null[/code], each with an error. Call
/// [method close] first to end them without one.
#[derive(GodotClass)]
#[class(base = RefCounted, init)]
pub struct ThreadSafeQueue {
    /// `ThreadSafeQueue.new()` gives an unbounded queue, like `create()`. Shared with the calls
    /// that wait, so that none holds a bind of this object meanwhile.
    #[init(val = Arc::new(Shared::new(Channel::unbounded())))]
    shared: Arc<Shared>,
}

/// What waiting calls keep while the object itself may be freed.
struct Shared {
    channel: Channel<SendVariant>,
    /// Set when the object is freed, before the channel is closed, so woken waiters can tell
    /// a free from a `close()`.
    freed: AtomicBool,
}

impl Shared {
    fn new(channel: Channel<SendVariant>) -> Self {
        Self {
            channel,
            freed: AtomicBool::new(false),
        }
    }

    /// Reports a wait that a free ended.
    fn report_freed(&self, method: &str) {
        // A close() alone ends waits quietly; only a free is a mistake worth an error.
        if self.freed.load(Ordering::Acquire) {
            godot_error!(
                "{CLASS}.{method}: the queue was freed while waiting (its last reference was dropped); keep a reference to the queue while threads use it, and close() it to end their waits."
            );
        }
    }
}

impl Drop for ThreadSafeQueue {
    /// Wakes the threads still waiting: nothing could ever push or pop for them again.
    fn drop(&mut self) {
        self.shared.freed.store(true, Ordering::Release);
        self.shared.channel.close();
    }
}

#[godot_api]
impl IRefCounted for ThreadSafeQueue {
    fn to_string(&self) -> GString {
        let capacity = self.shared.channel.capacity().map_or_else(
            || String::from("unbounded"),
            |capacity| capacity.to_string(),
        );
        let state = if self.shared.channel.is_closed() {
            "closed"
        } else {
            "open"
        };
        GString::from(&format!(
            "ThreadSafeQueue({}/{capacity}, {state})",
            self.shared.channel.len()
        ))
    }
}

#[godot_api]
impl ThreadSafeQueue {
    /// The largest capacity [method create] accepts (2^24). A bounded queue allocates room for
    /// all its values when it is created; for more, use an unbounded queue (capacity 0).
    // Written out: `#[godot_api]` cannot parse a shift here.
    #[constant]
    pub const MAX_CAPACITY: i64 = 16_777_216;

    /// A new queue holding at most [param capacity] values ([method push] waits while it is full),
    /// or any number with 0 (the default, the same as [code]ThreadSafeQueue.new()[/code]).
    /// Returns [code]null[/code] with an error for a negative capacity or one above
    /// [constant MAX_CAPACITY].
    #[func]
    pub fn create(#[opt(default = 0)] capacity: i64) -> Option<Gd<Self>> {
        let channel = match capacity {
            0 => Channel::unbounded(),
            1..=Self::MAX_CAPACITY => Channel::bounded(capacity as usize),
            _ if capacity < 0 => {
                godot_error!(
                    "{CLASS}.create: capacity {capacity} is negative; pass the most values the queue may hold, or 0 for no limit."
                );
                return None;
            }
            _ => {
                godot_error!(
                    "{CLASS}.create: capacity {capacity} is above the limit of {} (ThreadSafeQueue.MAX_CAPACITY), because a bounded queue allocates room for all its values up front; pass a smaller capacity, or 0 for no limit.",
                    Self::MAX_CAPACITY
                );
                return None;
            }
        };
        Some(Gd::from_object(Self {
            shared: Arc::new(Shared::new(channel)),
        }))
    }

    /// Adds a copy of [param value] at the back of the queue and returns [code]true[/code].
    /// While the queue is full, waits for a pop to make room: up to [param timeout_ms]
    /// milliseconds, or for as long as it takes with -1 (the default). Returns
    /// [code]false[/code] if it timed out or the queue is closed (then the value is not queued),
    /// or, with an error, if the queue is freed while this waits. Also [code]false[/code], at
    /// once, when the game quits or, inside an [AsyncTaskProcessor] task, when the task is
    /// cancelled. [code]null[/code] is refused with an error (see the class description).
    #[func(gd_self)]
    pub fn push(this: Gd<Self>, value: Variant, #[opt(default = -1)] timeout_ms: i64) -> bool {
        let shared = Self::shared(this);
        let Ok(timeout) = parse_timeout("push", timeout_ms) else {
            return false;
        };
        let Some(value) = queueable("push", value) else {
            return false;
        };
        let pushed = crate::shutdown::interruptible(|interrupts| {
            shared
                .channel
                .push_interruptible(value, timeout, interrupts)
        });
        match pushed {
            Ok(()) => true,
            Err(PushError::Closed(_)) => {
                shared.report_freed("push");
                false
            }
            Err(_) => false,
        }
    }

    /// Adds a copy of [param value] if there is room now, without waiting. Returns
    /// [code]false[/code] if the queue is full or closed. [code]null[/code] is refused with an
    /// error.
    #[func]
    pub fn try_push(&self, value: Variant) -> bool {
        let Some(value) = queueable("try_push", value) else {
            return false;
        };
        self.shared.channel.try_push(value).is_ok()
    }

    /// Removes and returns the value at the front of the queue. While the queue is empty, waits
    /// for a push: up to [param timeout_ms] milliseconds, or for as long as it takes with -1 (the
    /// default). Returns [code]null[/code] if it timed out, or if the queue is closed and empty:
    /// without a timeout, [code]null[/code] means the queue was closed and fully drained (or,
    /// with an error, freed while this waited). A wait also ends with [code]null[/code] when the
    /// game quits (no need to [method close] every queue first) and, inside an
    /// [AsyncTaskProcessor] task, when the task is cancelled (so stopping a processor never waits
    /// for a consumer task that pops forever).
    #[func(gd_self)]
    pub fn pop(this: Gd<Self>, #[opt(default = -1)] timeout_ms: i64) -> Variant {
        let shared = Self::shared(this);
        let Ok(timeout) = parse_timeout("pop", timeout_ms) else {
            return Variant::nil();
        };
        let popped = crate::shutdown::interruptible(|interrupts| {
            shared.channel.pop_interruptible(timeout, interrupts)
        });
        match popped {
            Ok(value) => value.into_inner(),
            Err(PopError::Closed) => {
                shared.report_freed("pop");
                Variant::nil()
            }
            Err(_) => Variant::nil(),
        }
    }

    /// Removes and returns the value at the front of the queue if there is one now, without
    /// waiting; [code]null[/code] if the queue is empty.
    #[func]
    pub fn try_pop(&self) -> Variant {
        self.shared
            .channel
            .try_pop()
            .map_or_else(|_| Variant::nil(), SendVariant::into_inner)
    }

    /// Removes and returns every value queued now, oldest first (an empty Array if there is
    /// none). Values pushed while it runs stay queued.
    #[func]
    pub fn drain(&self) -> VarArray {
        self.shared
            .channel
            .drain()
            .into_iter()
            .map(SendVariant::into_inner)
            .collect()
    }

    /// How many values are queued. Other threads may change that right after: to take a value
    /// only if there is one, call [method try_pop] rather than checking this first.
    #[func]
    pub fn size(&self) -> i64 {
        self.shared.channel.len() as i64
    }

    /// Whether no value is queued (see [method size] for why not to pop based on it).
    #[func]
    pub fn is_empty(&self) -> bool {
        self.shared.channel.is_empty()
    }

    /// The most values the queue holds, as given to [method create]; 0 when unbounded.
    #[func]
    pub fn get_capacity(&self) -> i64 {
        self.shared
            .channel
            .capacity()
            .map_or(0, |capacity| capacity as i64)
    }

    /// Closes the queue for pushes: later pushes return [code]false[/code], and pushes waiting
    /// for room return [code]false[/code] at once. Pops keep returning the values left, then
    /// [code]null[/code]; pops waiting on the empty queue return [code]null[/code] at once.
    /// Closing again does nothing; a queue cannot be reopened.
    #[func]
    pub fn close(&self) {
        self.shared.channel.close()
    }

    /// Whether [method close] was called.
    #[func]
    pub fn is_closed(&self) -> bool {
        self.shared.channel.is_closed()
    }
}

impl ThreadSafeQueue {
    /// The shared state, taken out under a bind that ends at once, and the caller's reference
    /// dropped: a waiting call must neither keep the queue alive (so freeing it can wake the
    /// call) nor be bound when it is freed.
    fn shared(this: Gd<Self>) -> Arc<Shared> {
        // Edition 2024 drops a tail expression's temporaries (the bind guard) before the
        // parameters, so the bind ends before `this` goes.
        this.bind().shared.clone()
    }
}

/// `timeout_ms` as a wait limit: `None` (no limit) for -1; an error for anything else below 0.
fn parse_timeout(method: &str, timeout_ms: i64) -> Result<Option<Duration>, ()> {
    match timeout_ms {
        -1 => Ok(None),
        0.. => Ok(Some(Duration::from_millis(timeout_ms as u64))),
        _ => {
            godot_error!(
                "{CLASS}.{method}: timeout_ms {timeout_ms} is not valid; pass milliseconds (0 or more), or -1 to wait as long as it takes."
            );
            Err(())
        }
    }
}

/// `value` copied for the queue, or `None` with an error for null, which pops use to mean
/// "nothing". A freed object equals null in GDScript, so it is refused too.
fn queueable(method: &str, value: Variant) -> Option<SendVariant> {
    if value == Variant::nil() {
        godot_error!(
            "{CLASS}.{method}: null cannot be queued, because pop() returns null to mean 'nothing' (a freed object counts as null); push a value, or close() the queue to signal the end."
        );
        return None;
    }
    Some(SendVariant::detach(value))
}
