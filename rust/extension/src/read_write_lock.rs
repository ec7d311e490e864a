use std::time::Duration;

use godot::prelude::*;
use threadkit_core::{LockError, TrackedRwLock, UnlockError};

use crate::call::try_call;
use crate::thread_context::ThreadContext;

/// A reader-writer lock: many threads may read at once, a writer is alone.
///
/// Godot's [Mutex] lets one thread in at a time, even when every thread only reads. Guard data
/// that is read often and written rarely with this instead, and readers no longer wait for each
/// other. Writers are not starved: once a writer waits, new readers queue behind it.
///
/// Prefer [method with_read] and [method with_write]: they unlock whatever happens, and return
/// what the Callable returns.
/// [codeblock]
/// var lock := ReadWriteLock.new()
/// var scores := {}
///
/// func best_score() -> int:  # Any thread, many at once.
///     return lock.with_read(func(): return scores.values().max() if scores else 0)
///
/// func add_score(player: String, score: int) -> void:  # Any thread, one at a time.
///     lock.with_write(func(): scores[player] = score)
/// [/codeblock]
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
#[derive(GodotClass)]
#[class(base = RefCounted, init)]
pub struct ReadWriteLock {
    lock: TrackedRwLock,
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
    /// [code]true[/code] (a read lock is never refused). Undo it with [method read_unlock].
    #[func]
    pub fn read_lock(&self) -> bool {
        self.lock_read(None)
    }

    /// Releases one read lock this thread holds. Returns [code]false[/code], with an error, when
    /// this thread holds none.
    #[func]
    pub fn read_unlock(&self) -> bool {
        self.unlock_read("read_unlock")
    }

    /// Takes the write lock, waiting until no other thread reads or writes. Returns
    /// [code]false[/code], with an error, when this thread holds a read lock (see the class
    /// description). Undo it with [method write_unlock].
    #[func]
    pub fn write_lock(&self) -> bool {
        self.lock_write("write_lock", None)
    }

    /// Releases one write lock this thread holds. Returns [code]false[/code], with an error, when
    /// this thread does not hold the write lock, or still holds read locks it took under it.
    #[func]
    pub fn write_unlock(&self) -> bool {
        self.unlock_write("write_unlock")
    }

    /// Takes a read lock if it can within [param timeout_ms] milliseconds (0: only if it is free
    /// now). Returns whether it did.
    #[func]
    pub fn try_read_lock(&self, #[opt(default = 0)] timeout_ms: i64) -> bool {
        Self::timeout("try_read_lock", timeout_ms).is_some_and(|t| self.lock_read(Some(t)))
    }

    /// Takes the write lock if it can within [param timeout_ms] milliseconds (0: only if it is
    /// free now). Returns whether it did.
    #[func]
    pub fn try_write_lock(&self, #[opt(default = 0)] timeout_ms: i64) -> bool {
        Self::timeout("try_write_lock", timeout_ms)
            .is_some_and(|t| self.lock_write("try_write_lock", Some(t)))
    }

    /// Calls [param fn] holding a read lock and returns what it returns; the lock is released
    /// afterwards whatever happens. If Godot cannot call [param fn] the error says why and null is
    /// returned.
    #[func]
    pub fn with_read(&self, r#fn: Callable) -> Variant {
        if !Self::callable_ok("with_read", &r#fn) || !self.lock_read(None) {
            return Variant::nil();
        }
        let result = Self::call("with_read", &r#fn);
        self.unlock_read("with_read");
        result
    }

    /// Calls [param fn] holding the write lock and returns what it returns; the lock is released
    /// afterwards whatever happens. Refused (null, with an error) when this thread holds a read
    /// lock.
    #[func]
    pub fn with_write(&self, r#fn: Callable) -> Variant {
        if !Self::callable_ok("with_write", &r#fn) || !self.lock_write("with_write", None) {
            return Variant::nil();
        }
        let result = Self::call("with_write", &r#fn);
        self.unlock_write("with_write");
        result
    }

    /// How many threads hold a read lock right now (for diagnostics: it may change at once).
    #[func]
    pub fn get_reader_count(&self) -> i64 {
        self.lock.reader_threads() as i64
    }

    /// Whether some thread holds the write lock right now (for diagnostics).
    #[func]
    pub fn is_write_locked(&self) -> bool {
        self.lock.is_write_locked()
    }
}

impl ReadWriteLock {
    /// A read lock is never refused; it can only time out.
    fn lock_read(&self, timeout: Option<Duration>) -> bool {
        self.lock.lock_read(timeout).is_ok()
    }

    fn lock_write(&self, method: &str, timeout: Option<Duration>) -> bool {
        match self.lock.lock_write(timeout) {
            Ok(()) => true,
            Err(LockError::TimedOut) => false,
            Err(LockError::UpgradeRefused) => {
                godot_error!(
                    "ReadWriteLock.{method}: {} holds a read lock, and waiting for the write lock would wait for itself (two threads doing it would deadlock). Call read_unlock() first, or take the write lock from the start.",
                    ThreadContext::thread_name()
                );
                false
            }
        }
    }

    fn unlock_read(&self, method: &str) -> bool {
        self.lock
            .unlock_read()
            .map_err(|e| Self::report_unlock(method, "read", e))
            .is_ok()
    }

    fn unlock_write(&self, method: &str) -> bool {
        self.lock
            .unlock_write()
            .map_err(|e| Self::report_unlock(method, "write", e))
            .is_ok()
    }

    fn report_unlock(method: &str, mode: &str, error: UnlockError) {
        let thread = ThreadContext::thread_name();
        match error {
            UnlockError::NotHeld => godot_error!(
                "ReadWriteLock.{method}: no {mode} lock is held, so there is nothing to unlock; each {mode}_unlock() must follow a {mode}_lock() on the same thread."
            ),
            UnlockError::HeldByOtherThread => godot_error!(
                "ReadWriteLock.{method}: {thread} holds no {mode} lock; another thread does, and only the thread that locked may unlock. Unlock on the thread that called {mode}_lock()."
            ),
            UnlockError::ReadsStillHeld => godot_error!(
                "ReadWriteLock.{method}: {thread} still holds read locks it took while writing; call read_unlock() for them first (unlock in the reverse order of locking)."
            ),
        }
    }

    fn timeout(method: &str, timeout_ms: i64) -> Option<Duration> {
        if timeout_ms < 0 {
            godot_error!(
                "ReadWriteLock.{method}: timeout_ms must be 0 or more (got {timeout_ms}); use {} to wait as long as it takes.",
                method.trim_start_matches("try_")
            );
            return None;
        }
        Some(Duration::from_millis(timeout_ms as u64))
    }

    fn callable_ok(method: &str, callable: &Callable) -> bool {
        let ok = callable.is_valid();
        if !ok {
            godot_error!(
                "ReadWriteLock.{method}: the Callable is not valid (null, or its object was freed); pass a function to run under the lock."
            );
        }
        ok
    }

    fn call(method: &str, callable: &Callable) -> Variant {
        try_call(callable, &[]).unwrap_or_else(|why| {
            godot_error!("ReadWriteLock.{method}: {why}; the lock was released.");
            Variant::nil()
        })
    }
}
