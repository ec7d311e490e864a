use std::sync::Arc;
use std::time::Duration;

use godot::prelude::*;
use threadkit_core::{DowngradeError, LockError, TrackedRwLock, UnlockError, UpgradeError};

use crate::coroutine;
use crate::held_locks::{self, Mode};
use crate::kept_call::{self, Failure};
use crate::problem::{self, Problem};
use crate::script_errors::Nesting;
use crate::thread_context::ThreadContext;

const CLASS: &str = "ReadWriteLock";

/// A reader-writer lock: many threads may read at once, a writer is alone.
///
/// Godot's [Mutex] lets one thread in at a time, even when every thread only reads. Guard data
/// that is read often and written rarely with this instead, and readers no longer wait for each
/// other. Writers are not starved: once a writer waits, new readers queue behind it.
///
/// Prefer [method with_read] and [method with_write]: they unlock whatever happens, and return
/// what the Callable returns.
/// ```gdscript
/// var lock := ReadWriteLock.new()
/// var scores := {}
///
/// func best_score() -> int:  # Any thread, many at once.
///     return lock.with_read(func(): return scores.values().max() if scores else 0)
///
/// func add_score(player: String, score: int) -> void:  # Any thread, one at a time.
///     lock.with_write(func(): scores[player] = score)
/// ```
/// The lock knows which thread holds what, so mistakes are reported instead of freezing the game:
/// - A thread that reads may read again (re-entrant), even while a writer waits; the writer may
///   lock again and may read under its own write lock.
/// - Asking for the write lock while holding a read lock on the same thread (an "upgrade") is
///   refused with an error: two threads doing it at once would wait for each other forever.
///   Release the read lock first, or take the write lock from the start.
/// - Unlocking what this thread does not hold (twice, or a lock another thread took) is refused
///   with an error and changes nothing: only the thread that locked may unlock.
///
/// Every lock must be undone by an unlock on the same thread; each unlock undoes one lock.
///
/// [b]Read, then maybe write.[/b] To check something and change it only if needed, without
/// letting another writer change it between the check and the change, take the upgradable read
/// lock: one thread at a time may hold it, beside plain readers (writers wait). [method upgrade]
/// turns it into the write lock once the plain readers are gone, with no other writer in
/// between; [method downgrade] turns a write lock back into a read lock at once.
/// ```gdscript
/// lock.upgradable_read_lock()
/// if not cache.has(key):   # Readers may read meanwhile.
///     lock.upgrade()       # Nobody changed the cache since the check.
///     cache[key] = compute(key)
///     lock.write_unlock()  # The upgraded lock is a write lock now.
/// else:
///     lock.upgradable_read_unlock()
/// ```
/// A plain read lock cannot be upgraded (two readers upgrading at once would wait for each other
/// forever): [method upgrade] refuses it with an error.
///
/// [b]Locks left held.[/b] A lock is never left held for good, which would keep every other
/// thread waiting forever:
/// - a lock an [AsyncTaskProcessor] task still holds when it ends (it stopped at an error, or
///   did not unlock) is released, with an error naming the task;
/// - a lock the main thread still holds when the next frame starts is released, with an error.
///   On the main thread a lock held into the next frame was either forgotten or held across an
///   [code]await[/code], which may never resume (its node freed) and, if it does, has kept other
///   threads out meanwhile. So on the main thread, unlock before the function awaits or returns.
///   The coroutine's later unlock then reports that nothing is held.
///
/// A [Thread] of your own keeps what it holds. A [param function] given to [method with_read] or
/// [method with_write] that is a coroutine is refused: its code after the await would run
/// without the lock.
///
/// [b]Freeing.[/b] A thread waiting for the lock does not keep it alive. When the last reference
/// goes (the lock is freed), locks still held can never be undone, so they are released, and
/// every thread still waiting wakes: its call returns [code]false[/code] (or null for
/// [method with_read] and [method with_write], without running the Callable), with an error. A
/// [method with_read] or [method with_write] already running its Callable finishes normally.
#[derive(GodotClass)]
#[class(base = RefCounted, init)]
pub struct ReadWriteLock {
    /// Shared with the calls that wait or run a Callable, so that none holds a bind of this
    /// object meanwhile: freeing it then never meets an active bind.
    lock: Arc<TrackedRwLock>,
}

impl Drop for ReadWriteLock {
    /// Nobody can unlock what is still held once the object is gone; release it, so waiters wake.
    fn drop(&mut self) {
        self.lock.abandon();
    }
}

#[godot_api]
impl IRefCounted for ReadWriteLock {
    fn to_string(&self) -> GString {
        GString::from(&format!(
            "ReadWriteLock(readers={}, writer={})",
            self.lock.reader_threads(),
            self.lock.is_write_locked()
        ))
    }
}

#[godot_api]
impl ReadWriteLock {
    /// Takes a read lock, waiting while a writer holds (or waits for) the lock. Returns
    /// [code]true[/code], or [code]false[/code] with an error if the lock is freed while this
    /// waits. Undo it with [method read_unlock].
    #[func(gd_self)]
    pub fn read_lock(this: Gd<Self>) -> bool {
        let lock = Self::shared(this);
        lock_read("read_lock", &lock, None) && held(&lock, Mode::Read, "read_lock")
    }

    /// Releases one read lock this thread holds. Returns [code]false[/code], with an error, when
    /// this thread holds none.
    #[func]
    pub fn read_unlock(&self) -> bool {
        unlock_read("read_unlock", &self.lock)
    }

    /// Takes the write lock, waiting until no other thread reads or writes. Returns
    /// [code]false[/code], with an error, when this thread holds a read lock (see the class
    /// description) or the lock is freed while this waits. Undo it with [method write_unlock].
    #[func(gd_self)]
    pub fn write_lock(this: Gd<Self>) -> bool {
        let lock = Self::shared(this);
        lock_write("write_lock", &lock, None) && held(&lock, Mode::Write, "write_lock")
    }

    /// Releases one write lock this thread holds. Returns [code]false[/code], with an error, when
    /// this thread does not hold the write lock, or still holds read locks it took under it.
    #[func]
    pub fn write_unlock(&self) -> bool {
        unlock_write("write_unlock", &self.lock)
    }

    /// Takes a read lock if it can within [param timeout_ms] milliseconds (0: only if it is free
    /// now). Returns whether it did.
    #[func(gd_self)]
    pub fn try_read_lock(this: Gd<Self>, #[opt(default = 0)] timeout_ms: i64) -> bool {
        let lock = Self::shared(this);
        Self::timeout("try_read_lock", timeout_ms)
            .is_some_and(|t| lock_read("try_read_lock", &lock, Some(t)))
            && held(&lock, Mode::Read, "try_read_lock")
    }

    /// Takes the write lock if it can within [param timeout_ms] milliseconds (0: only if it is
    /// free now). Returns whether it did.
    #[func(gd_self)]
    pub fn try_write_lock(this: Gd<Self>, #[opt(default = 0)] timeout_ms: i64) -> bool {
        let lock = Self::shared(this);
        Self::timeout("try_write_lock", timeout_ms)
            .is_some_and(|t| lock_write("try_write_lock", &lock, Some(t)))
            && held(&lock, Mode::Write, "try_write_lock")
    }

    /// Calls [param function] holding a read lock and returns what it returns; the lock is released
    /// afterwards whatever happens. If Godot cannot call [param function] the error says why and
    /// null is returned; a [param function] that stops at a script error returns null (inside a
    /// task, the task fails too), and one that is a coroutine (uses [code]await[/code]) is
    /// stopped at its await: null, with an error. [param function] may call this lock's methods
    /// (another [method with_read], for example), and may drop the last reference to it: the lock
    /// is freed when the last call using it returns.
    #[func(gd_self)]
    pub fn with_read(this: Gd<Self>, function: Callable) -> Variant {
        let lock = Self::shared(this);
        if !Self::callable_ok("with_read", &function) || !lock_read("with_read", &lock, None) {
            return Variant::nil();
        }
        let result = Self::call("with_read", &function);
        unlock_read("with_read", &lock);
        result
    }

    /// Calls [param function] holding the write lock and returns what it returns; the lock is
    /// released afterwards whatever happens (a script error and a coroutine are handled as for
    /// [method with_read]). Refused (null, with an error) when this thread holds a read lock.
    /// [param function] may call this lock's methods (read under its own write lock, for example),
    /// and may drop the last reference to it, as for [method with_read].
    #[func(gd_self)]
    pub fn with_write(this: Gd<Self>, function: Callable) -> Variant {
        let lock = Self::shared(this);
        if !Self::callable_ok("with_write", &function) || !lock_write("with_write", &lock, None) {
            return Variant::nil();
        }
        let result = Self::call("with_write", &function);
        unlock_write("with_write", &lock);
        result
    }

    /// How many threads hold a read lock right now, the thread holding the upgradable read lock
    /// included (for diagnostics: it may change at once). A writer's reads under its own write
    /// lock do not count: it is not a reader but the writer.
    #[func]
    pub fn get_reader_count(&self) -> i64 {
        self.lock.reader_threads() as i64
    }

    /// Whether some thread holds the write lock right now (for diagnostics). An upgradable read
    /// lock is not a write lock until [method upgrade] returns.
    #[func]
    pub fn is_write_locked(&self) -> bool {
        self.lock.is_write_locked()
    }

    /// Whether some thread holds the upgradable read lock right now (for diagnostics).
    #[func]
    pub fn is_upgradable_locked(&self) -> bool {
        self.lock.is_upgradable_locked()
    }

    /// Takes the upgradable read lock: it reads beside plain readers, while writers and other
    /// upgradable readers wait; [method upgrade] can turn it into the write lock. Waits while a
    /// writer or another upgradable reader holds the lock. The same thread may take it again
    /// (re-entrant), and may read under it. Returns [code]true[/code], or [code]false[/code]
    /// with an error when this thread holds a plain read lock (its upgrade would wait for its own
    /// read), holds the write lock, or the lock is freed while this waits. Undo it with
    /// [method upgradable_read_unlock], or [method upgrade] it and then [method write_unlock].
    #[func(gd_self)]
    pub fn upgradable_read_lock(this: Gd<Self>) -> bool {
        let lock = Self::shared(this);
        lock_upgradable("upgradable_read_lock", &lock, None)
            && held(&lock, Mode::Upgradable, "upgradable_read_lock")
    }

    /// Takes the upgradable read lock if it can within [param timeout_ms] milliseconds (0: only
    /// if it is free now). Returns whether it did.
    #[func(gd_self)]
    pub fn try_upgradable_read_lock(this: Gd<Self>, #[opt(default = 0)] timeout_ms: i64) -> bool {
        let lock = Self::shared(this);
        let method = "try_upgradable_read_lock";
        Self::timeout(method, timeout_ms).is_some_and(|t| lock_upgradable(method, &lock, Some(t)))
            && held(&lock, Mode::Upgradable, method)
    }

    /// Releases one upgradable read lock this thread holds. Returns [code]false[/code], with an
    /// error, when this thread holds none, or still holds read locks it took under it.
    #[func]
    pub fn upgradable_read_unlock(&self) -> bool {
        self.lock
            .unlock_upgradable()
            .map_err(|e| Self::report_unlock("upgradable_read_unlock", "upgradable_read", e))
            .is_ok()
    }

    /// Turns this thread's upgradable read lock into the write lock, waiting until the plain
    /// readers have left. No other writer can get in between, so what this thread read under
    /// the upgradable lock is still current when this returns [code]true[/code]. Undo it with
    /// [method write_unlock] (or [method downgrade] it); read locks this thread took under the
    /// upgradable lock are kept, under the write lock. Returns [code]false[/code] with an error
    /// when this thread holds no upgradable read lock (a plain [method read_lock] cannot be
    /// upgraded), or when the lock is freed while this waits.
    #[func(gd_self)]
    pub fn upgrade(this: Gd<Self>) -> bool {
        let lock = Self::shared(this);
        upgrade("upgrade", &lock, None)
    }

    /// Like [method upgrade], giving up after [param timeout_ms] milliseconds (0: only if no
    /// plain reader holds the lock now). Returns whether it upgraded; if not, this thread still
    /// holds its upgradable read lock.
    #[func(gd_self)]
    pub fn try_upgrade(this: Gd<Self>, #[opt(default = 0)] timeout_ms: i64) -> bool {
        let lock = Self::shared(this);
        Self::timeout("try_upgrade", timeout_ms)
            .is_some_and(|t| upgrade("try_upgrade", &lock, Some(t)))
    }

    /// Turns this thread's write lock into a read lock at once: no writer gets in between, and
    /// waiting readers may go on. Undo it with [method read_unlock]; read locks taken under the
    /// write lock stay, as read locks. Returns [code]false[/code], with an error, when this thread
    /// does not hold the write lock, or holds it more than once (only the last can become a
    /// read lock).
    #[func]
    pub fn downgrade(&self) -> bool {
        match self.lock.downgrade() {
            Ok(()) => held(&self.lock, Mode::Read, "downgrade"),
            Err(DowngradeError::NotHeld) => {
                Problem::new(
                    CLASS,
                    "downgrade",
                    format!(
                        "{} does not hold the write lock, so there is nothing to turn into a read lock; call write_lock() (or upgrade()) first, on this thread.",
                        ThreadContext::thread_name(),
                    ),
                )
                .report();
                false
            }
            Err(DowngradeError::Reentered) => {
                Problem::new(
                    CLASS,
                    "downgrade",
                    format!(
                        "{} took the write lock {} times; only the last one can become a read lock, so call write_unlock() for the others first.",
                        ThreadContext::thread_name(),
                        self.lock.writes_held(),
                    ),
                )
                .report();
                false
            }
        }
    }
}

impl ReadWriteLock {
    /// The lock, taken out under a bind that ends at once, and the caller's reference dropped:
    /// what follows may wait or run user code, and must neither keep the object alive (a waiter
    /// would then keep the lock it waits for from being freed) nor be bound when it is freed.
    fn shared(this: Gd<Self>) -> Arc<TrackedRwLock> {
        // Edition 2024 drops a tail expression's temporaries (the bind guard) before the
        // parameters, so the bind ends before `this` goes.
        this.bind().lock.clone()
    }

    fn report_unlock(method: &str, mode: &str, error: UnlockError) {
        let thread = ThreadContext::thread_name();
        match error {
            UnlockError::NotHeld => {
                Problem::new(
                    CLASS,
                    method,
                    format!(
                        "no {mode} lock is held, so there is nothing to unlock; each {mode}_unlock() must follow a {mode}_lock() on the same thread."
                    ),
                )
                .report();
            }
            UnlockError::HeldByOtherThread => {
                Problem::new(
                    CLASS,
                    method,
                    format!(
                        "{thread} holds no {mode} lock; another thread does, and only the thread that locked may unlock. Unlock on the thread that called {mode}_lock()."
                    ),
                )
                .report();
            }
            UnlockError::ReadsStillHeld => {
                let held = if mode == "write" {
                    "writing"
                } else {
                    "holding the upgradable read lock"
                };
                Problem::new(
                    CLASS,
                    method,
                    format!(
                        "{thread} still holds read locks it took while {held}; call read_unlock() for them first (unlock in the reverse order of locking)."
                    ),
                )
                .report();
            }
        }
    }

    fn timeout(method: &str, timeout_ms: i64) -> Option<Duration> {
        let forever = method.trim_start_matches("try_");
        // `Err(forever)`: -1 is refused too, so a try_ method never waits without limit.
        problem::timeout_ms(CLASS, method, timeout_ms, Err(forever))
            .ok()
            .flatten()
    }

    fn callable_ok(method: &str, callable: &Callable) -> bool {
        let ok = callable.is_valid();
        if !ok {
            Problem::new(
                CLASS,
                method,
                "the Callable is not valid (null, or its object was freed); pass a function to run under the lock.",
            )
            .report();
        }
        ok
    }

    /// Calls the Callable of `with_*`; null when it produced no result. A script error was
    /// printed by Godot already; it also fails the task this runs in, if any.
    fn call(method: &str, callable: &Callable) -> Variant {
        match kept_call::call(callable, &[], Nesting::Shared) {
            Ok(result) => result,
            Err(Failure::NotCalled(why)) => {
                Problem::new(CLASS, method, format!("{why}; the lock was released.")).report();
                Variant::nil()
            }
            Err(Failure::ScriptError(_)) => Variant::nil(),
            Err(Failure::Coroutine) => {
                Problem::new(
                    CLASS,
                    method,
                    format!(
                        "the Callable is a coroutine (it uses await): the code after its first await would have run later without the lock, so it was stopped there, the lock released and null returned. To fix it, {}.",
                        coroutine::HINT,
                    ),
                )
                .report();
                Variant::nil()
            }
        }
    }
}

/// A read lock is refused only when the lock was freed meanwhile; otherwise it can only time out.
fn lock_read(method: &str, lock: &TrackedRwLock, timeout: Option<Duration>) -> bool {
    match lock.lock_read(timeout) {
        Ok(()) => true,
        Err(LockError::Abandoned) => report_freed(method),
        Err(LockError::TimedOut | LockError::UpgradeRefused | LockError::WriteHeld) => false,
    }
}

fn lock_write(method: &str, lock: &TrackedRwLock, timeout: Option<Duration>) -> bool {
    match lock.lock_write(timeout) {
        Ok(()) => true,
        Err(LockError::TimedOut) => false,
        Err(LockError::Abandoned) => report_freed(method),
        Err(LockError::UpgradeRefused) if lock.upgradables_held() > 0 => {
            Problem::new(
                CLASS,
                method,
                format!(
                    "{} holds the upgradable read lock; call upgrade() to turn it into the write lock (no other writer gets in between).",
                    ThreadContext::thread_name(),
                ),
            )
            .report();
            false
        }
        Err(LockError::UpgradeRefused) => {
            Problem::new(
                CLASS,
                method,
                format!(
                    "{} holds a read lock, and waiting for the write lock would wait for itself (two threads doing it would deadlock). Call read_unlock() first, take the write lock from the start, or read with upgradable_read_lock() and upgrade().",
                    ThreadContext::thread_name(),
                ),
            )
            .report();
            false
        }
        Err(LockError::WriteHeld) => unreachable!("only upgradable locks are refused for it"),
    }
}

fn lock_upgradable(method: &str, lock: &TrackedRwLock, timeout: Option<Duration>) -> bool {
    match lock.lock_upgradable(timeout) {
        Ok(()) => true,
        Err(LockError::TimedOut) => false,
        Err(LockError::Abandoned) => report_freed(method),
        Err(LockError::UpgradeRefused) => {
            Problem::new(
                CLASS,
                method,
                format!(
                    "{} holds a read lock; an upgradable lock taken beside it could never be upgraded (upgrade() waits for every reader, this thread's own read included). Call read_unlock() first, or take upgradable_read_lock() instead of read_lock().",
                    ThreadContext::thread_name(),
                ),
            )
            .report();
            false
        }
        Err(LockError::WriteHeld) => {
            Problem::new(
                CLASS,
                method,
                format!(
                    "{} holds the write lock, which already allows reading; call read_lock() under it, or write_unlock() first.",
                    ThreadContext::thread_name(),
                ),
            )
            .report();
            false
        }
    }
}

fn upgrade(method: &'static str, lock: &Arc<TrackedRwLock>, timeout: Option<Duration>) -> bool {
    match lock.upgrade(timeout) {
        Ok(()) => held(lock, Mode::Write, method),
        Err(UpgradeError::TimedOut) => false,
        Err(UpgradeError::Abandoned) => report_freed(method),
        Err(UpgradeError::NotUpgradable) if lock.reads_held() > 0 => {
            Problem::new(
                CLASS,
                method,
                format!(
                    "{} holds a plain read lock, which cannot be upgraded (two readers upgrading at once would wait for each other forever); read with upgradable_read_lock() instead of read_lock() when you may need to write.",
                    ThreadContext::thread_name(),
                ),
            )
            .report();
            false
        }
        Err(UpgradeError::NotUpgradable) => {
            Problem::new(
                CLASS,
                method,
                format!(
                    "{} holds no upgradable read lock, so there is nothing to upgrade; call upgradable_read_lock() first, on this thread.",
                    ThreadContext::thread_name(),
                ),
            )
            .report();
            false
        }
    }
}

fn report_freed(method: &str) -> bool {
    Problem::new(
        CLASS,
        method,
        "the lock was freed while waiting (its last reference was dropped), so it was not taken; keep a reference to the lock for as long as threads use it.",
    )
    .report();
    false
}

fn unlock_read(method: &str, lock: &TrackedRwLock) -> bool {
    lock.unlock_read()
        .map_err(|e| ReadWriteLock::report_unlock(method, "read", e))
        .is_ok()
}

fn unlock_write(method: &str, lock: &TrackedRwLock) -> bool {
    lock.unlock_write()
        .map_err(|e| ReadWriteLock::report_unlock(method, "write", e))
        .is_ok()
}

/// Records a hold taken by a raw lock call (see `held_locks`); always `true`, for `&&` chains.
fn held(lock: &Arc<TrackedRwLock>, mode: Mode, method: &'static str) -> bool {
    held_locks::acquired(lock, mode, method);
    true
}
