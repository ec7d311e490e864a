use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use godot::classes::IRefCounted;
use godot::prelude::*;
use threadkit_core::channel::{self, Channel, PopError, PushError};

use crate::describe;
use crate::problem::{self, Problem};
use crate::send::{Optional, SendVariant};

const CLASS: &str = "ThreadSafeQueue";

/// A first-in first-out queue that any number of threads push values into and pop values from:
/// a channel between threads, like Go's or Rust's.
///
/// ```gdscript
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
/// ```
/// [b]Null means "nothing".[/b] [code]null[/code] (and a freed object, which equals
/// [code]null[/code]) cannot be pushed: it is refused with an error. So a [code]null[/code] from
/// a pop always means no value: [method try_pop] found the queue empty, [method pop] with a
/// timeout waited in vain or found the queue closed and empty, and [method pop] without a timeout
/// returns [code]null[/code] only once the queue is closed and every value has been popped. To
/// send "nothing" as a value, wrap it in an Array or a Dictionary.
///
/// [b]Values are copies.[/b] Arrays, Dictionaries and Packed\*Arrays (nested ones included) are
/// copied when pushed, so changing one after pushing it does not change what is popped, and the
/// popped value belongs to the thread that popped it. A Packed\*Array's copy shares its buffer
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
/// [b]Iterating.[/b] [code]for value in queue:[/code] pops values as they come and ends once the
/// queue is closed and every value has been popped, like a Go [code]range[/code] over a channel.
/// Each step is a [method pop], so it waits while the queue is empty: on a queue nobody closes,
/// the loop never ends (on the main thread, the game freezes until the queue is closed or the
/// game quits). The loop holds a reference to the queue, so only [method close] ends it (or the
/// game quitting, or, inside an [AsyncTaskProcessor] task, the task's cancellation). Iterate on
/// the thread that consumes, and [method close] the queue when done.
/// ```gdscript
/// for path in jobs:  # Ends after close(), once every queued path was taken.
///     process(path)
/// ```
/// [b]Waiting on several queues.[/b] [method select] pops from whichever queue has a value first;
/// with [method after] as one of them, it doubles as a deadline. [method create_rendezvous] makes
/// a queue without room, where [method push] hands its value straight to a [method pop].
///
/// [b]Freeing.[/b] A thread waiting in [method push], [method pop] or [method select] does not
/// keep the queue alive. When its last reference is dropped, the waiting threads wake:
/// [method push] returns [code]false[/code] and [method pop] [code]null[/code], each with an
/// error. Call [method close] first to end them without one.
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

    fn is_freed(&self) -> bool {
        self.freed.load(Ordering::Acquire)
    }

    /// Reports a wait that a free ended.
    fn report_freed(&self, method: &str) {
        // A close() alone ends waits quietly; only a free is a mistake worth an error.
        if self.is_freed() {
            Problem::new(
                CLASS,
                method,
                "the queue was freed while waiting (its last reference was dropped); keep a reference to the queue while threads use it, and close() it to end their waits.",
            )
            .report();
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
        let capacity = match self.shared.channel.capacity() {
            None => String::from("unbounded"),
            Some(0) => String::from("rendezvous"),
            Some(capacity) => capacity.to_string(),
        };
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
    /// [constant MAX_CAPACITY]. For a queue without room, where [method push] waits for a
    /// [method pop] to take its value, use [method create_rendezvous].
    #[func]
    pub fn create(#[opt(default = 0)] capacity: i64) -> Option<Gd<Self>> {
        let channel = match capacity {
            0 => Channel::unbounded(),
            1..=Self::MAX_CAPACITY => Channel::bounded(capacity as usize),
            _ if capacity < 0 => {
                Problem::new(
                    CLASS,
                    "create",
                    format!(
                        "capacity {capacity} is negative; pass the most values the queue may hold, or 0 for no limit."
                    ),
                )
                .report();
                return None;
            }
            _ => {
                Problem::new(
                    CLASS,
                    "create",
                    format!(
                        "capacity {capacity} is above the limit of {} (ThreadSafeQueue.MAX_CAPACITY), because a bounded queue allocates room for all its values up front; pass a smaller capacity, or 0 for no limit.",
                        Self::MAX_CAPACITY,
                    ),
                )
                .report();
                return None;
            }
        };
        Some(Gd::from_object(Self {
            shared: Arc::new(Shared::new(channel)),
        }))
    }

    /// A new queue without room (capacity 0, a "rendezvous"): [method push] hands its value
    /// straight to a [method pop], so it returns [code]true[/code] only once a pop took the value
    /// (the producer knows its value was received), and [method try_push] succeeds only while a
    /// thread waits in [method pop] or [method select]. Such a queue never holds a value:
    /// [method size] is 0, [method drain] returns [code][][/code], [method is_full] is always
    /// [code]true[/code] and [method get_capacity] is 0. ([code]create(0)[/code] stays an
    /// unbounded queue.)
    #[func]
    pub fn create_rendezvous() -> Gd<Self> {
        Gd::from_object(Self {
            shared: Arc::new(Shared::new(Channel::rendezvous())),
        })
    }

    /// A queue that yields one value once [param delay_ms] milliseconds have passed: [param value],
    /// or [code]true[/code] when it is left out. Until then it looks empty; after its value was
    /// popped it is closed and empty. It is closed for pushes from the start
    /// ([method is_closed] is [code]true[/code]). Use it in [method select] as a deadline:
    /// ```gdscript
    /// var got := ThreadSafeQueue.select([results, ThreadSafeQueue.after(500, "late")])
    /// if got[1] == "late":
    ///     print("no result within half a second")
    /// ```
    /// (for a plain wait with a limit, [method pop] with a timeout is simpler). Returns
    /// [code]null[/code] with an error for a negative delay.
    #[func]
    pub fn after(
        delay_ms: i64,
        #[opt(default = Optional::null())] value: Optional<Variant>,
    ) -> Option<Gd<Self>> {
        let Ok(delay) = u64::try_from(delay_ms) else {
            Problem::new(
                CLASS,
                "after",
                format!(
                    "delay_ms {delay_ms} is negative; pass how many milliseconds (0 or more) until the queue yields its value."
                ),
            )
            .report();
            return None;
        };
        let value = match value.0 {
            value if value.is_nil() => true.to_variant(),
            value => value,
        };
        Some(Gd::from_object(Self {
            shared: Arc::new(Shared::new(Channel::after(
                Duration::from_millis(delay),
                SendVariant::detach(value),
            ))),
        }))
    }

    /// Pops one value from whichever of [param queues] (an Array of ThreadSafeQueues) has one
    /// first, and returns [code][index, value][/code], where [param index] is the queue's
    /// position in [param queues]. While all are empty, waits: up to [param timeout_ms]
    /// milliseconds, or for as long as it takes with -1 (the default). When several queues have
    /// a value, one of them is picked at random, so a busy queue cannot starve the others.
    /// A closed queue still gives its remaining values; once every queue is closed and empty,
    /// and on timeout, it returns [code][-1, null][/code]. Like [method pop], a wait also ends
    /// with [code][-1, null][/code] when the game quits or, inside an [AsyncTaskProcessor] task,
    /// when the task is cancelled; and a queue freed while this waits counts as closed (with an
    /// error). Bad input (not an Array of queues, or an empty one) returns
    /// [code][-1, null][/code] with an error.
    /// ```gdscript
    /// while true:
    ///     var got := ThreadSafeQueue.select([orders, cancellations])
    ///     match got[0]:
    ///         0: fill(got[1])
    ///         1: cancel(got[1])
    ///         -1: break  # Both closed and empty.
    /// ```
    #[func]
    pub fn select(queues: VarArray, #[opt(default = -1)] timeout_ms: i64) -> VarArray {
        let none = || varray![-1, &Variant::nil()];
        let Ok(timeout) = problem::timeout_ms(CLASS, "select", timeout_ms, Ok(())) else {
            return none();
        };
        let Some(shared) = Self::all_shared(&queues) else {
            return none();
        };
        let channels: Vec<&Channel<SendVariant>> =
            shared.iter().map(|shared| &shared.channel).collect();
        let selected = crate::shutdown::interruptible(|interrupts| {
            channel::select(&channels, timeout, interrupts)
        });
        // A queue freed while this waited dropped out as closed, whichever way the wait ended
        // (another queue's value included): the mistake is reported either way.
        if let Some(freed) = shared.iter().find(|shared| shared.is_freed()) {
            freed.report_freed("select");
        }
        match selected {
            Ok((index, value)) => varray![index as i64, &value.into_inner()],
            Err(_) => none(),
        }
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
        let Ok(timeout) = problem::timeout_ms(CLASS, "push", timeout_ms, Ok(())) else {
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
        let Ok(timeout) = problem::timeout_ms(CLASS, "pop", timeout_ms, Ok(())) else {
            return Variant::nil();
        };
        Self::pop_waiting(&shared, timeout, "pop").unwrap_or_default()
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

    /// Whether the queue holds as many values as it may, so that [method push] would wait now
    /// (always [code]true[/code] for [method create_rendezvous], never for an unbounded queue).
    /// Another thread may change that right after, as for [method size].
    #[func]
    pub fn is_full(&self) -> bool {
        self.shared.channel.is_full()
    }

    /// The most values the queue holds, as given to [method create]; 0 when unbounded, and for a
    /// [method create_rendezvous] queue, which holds none.
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

    /// Whether [method close] was called (always [code]true[/code] for an [method after] queue).
    #[func]
    pub fn is_closed(&self) -> bool {
        self.shared.channel.is_closed()
    }

    /// GDScript's iterator protocol, called by [code]for value in queue:[/code] (see the class
    /// description): pops the first value, waiting for it. Not meant to be called directly.
    #[func(gd_self, rename = _iter_init)]
    pub fn iter_init(this: Gd<Self>, state: VarArray) -> bool {
        Self::iter_step(this, state, "_iter_init")
    }

    /// GDScript's iterator protocol: pops the next value, waiting for it; the loop ends once the
    /// queue is closed and empty. Not meant to be called directly.
    #[func(gd_self, rename = _iter_next)]
    pub fn iter_next(this: Gd<Self>, state: VarArray) -> bool {
        Self::iter_step(this, state, "_iter_next")
    }

    /// GDScript's iterator protocol: the value the last step popped. Not meant to be called
    /// directly.
    #[func(rename = _iter_get)]
    pub fn iter_get(&self, state: Variant) -> Variant {
        state
    }
}

impl ThreadSafeQueue {
    /// One step of a `for` loop: pops as `pop()` does and keeps the value as the loop's state
    /// (GDScript hands the state back to `_iter_get`), or ends the loop.
    fn iter_step(this: Gd<Self>, mut state: VarArray, method: &str) -> bool {
        match Self::pop_waiting(&Self::shared(this), None, method) {
            Some(value) => {
                state.set(0, &value);
                true
            }
            None => false,
        }
    }

    /// Pops as `pop()` does, for `method`: `None` when the wait timed out or was interrupted, or
    /// the queue is closed and empty (reported if it was freed meanwhile).
    fn pop_waiting(shared: &Shared, timeout: Option<Duration>, method: &str) -> Option<Variant> {
        let popped = crate::shutdown::interruptible(|interrupts| {
            shared.channel.pop_interruptible(timeout, interrupts)
        });
        match popped {
            Ok(value) => Some(value.into_inner()),
            Err(error) => {
                if error == PopError::Closed {
                    shared.report_freed(method);
                }
                None
            }
        }
    }

    /// The shared states of `queues` for `select`, or `None` with an error for bad input.
    fn all_shared(queues: &VarArray) -> Option<Vec<Arc<Shared>>> {
        if queues.is_empty() {
            Problem::new(
                CLASS,
                "select",
                "the Array of queues is empty, so nothing could ever be selected; pass at least one ThreadSafeQueue.",
            )
            .report();
            return None;
        }
        queues
            .iter_shared()
            .enumerate()
            .map(|(index, queue)| match queue.try_to::<Gd<Self>>() {
                Ok(queue) => Some(Self::shared(queue)),
                Err(_) => {
                    Problem::new(
                        CLASS,
                        "select",
                        format!(
                            "queues[{index}] is {}, not a ThreadSafeQueue; pass an Array of ThreadSafeQueues.",
                            describe::value(&queue),
                        ),
                    )
                    .report();
                    None
                }
            })
            .collect()
    }

    /// The shared state, taken out under a bind that ends at once, and the caller's reference
    /// dropped: a waiting call must neither keep the queue alive (so freeing it can wake the
    /// call) nor be bound when it is freed.
    fn shared(this: Gd<Self>) -> Arc<Shared> {
        // Edition 2024 drops a tail expression's temporaries (the bind guard) before the
        // parameters, so the bind ends before `this` goes.
        this.bind().shared.clone()
    }
}

/// `value` copied for the queue, or `None` with an error for null, which pops use to mean
/// "nothing". A freed object equals null in GDScript, so it is refused too.
fn queueable(method: &str, value: Variant) -> Option<SendVariant> {
    if value == Variant::nil() {
        Problem::new(
            CLASS,
            method,
            "null cannot be queued, because pop() returns null to mean 'nothing' (a freed object counts as null); push a value, or close() the queue to signal the end.",
        )
        .report();
        return None;
    }
    Some(SendVariant::detach(value))
}
