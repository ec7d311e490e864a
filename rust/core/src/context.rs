//! Per-thread context: the name a thread gave itself, for messages and `ThreadContext`.
//!
//! Thread-local, so naming a thread costs no lock and dies with the thread.

use std::cell::RefCell;

use crate::sync::thread_local;

thread_local! {
    // Not a `const { }` initialiser: loom's `thread_local!` does not accept one.
    #[allow(clippy::missing_const_for_thread_local)]
    static NAME: RefCell<Option<String>> = RefCell::new(None);
}

/// Names the calling thread (replacing an earlier name).
pub fn set_thread_name(name: &str) {
    NAME.with(|n| *n.borrow_mut() = Some(name.to_owned()));
}

/// The name the calling thread set with [`set_thread_name`], if any.
pub fn thread_name() -> Option<String> {
    NAME.with(|n| n.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_per_thread() {
        set_thread_name("loader");
        assert_eq!(thread_name().as_deref(), Some("loader"));
        std::thread::spawn(|| assert_eq!(thread_name(), None))
            .join()
            .unwrap();
        set_thread_name("saver");
        assert_eq!(thread_name().as_deref(), Some("saver"));
    }
}
