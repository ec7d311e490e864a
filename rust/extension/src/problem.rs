//! The one way ThreadKit reports a mistake to Godot: bad input or a failure, naming the class and
//! method it happened in, what went wrong and, where there is one, the fix.

use godot::global::{PrintLevel, PrintRecord, PrintSource, print_custom};

/// A problem to report from `class`.`method` (or from `class` alone, for one that no call of the
/// user's caused, such as a failed task). Its message reads `Class.method: what` (then `; fix`
/// when given); `what` may carry its own fix when the sentence needs another shape.
pub(crate) struct Problem<'a> {
    class: &'a str,
    method: Option<&'a str>,
    what: String,
    fix: Option<String>,
}

impl<'a> Problem<'a> {
    /// A problem in `class`.`method`.
    pub(crate) fn new(class: &'a str, method: &'a str, what: impl Into<String>) -> Self {
        Self {
            class,
            method: Some(method),
            what: what.into(),
            fix: None,
        }
    }

    /// A problem of `class` not tied to one of its methods.
    pub(crate) fn of(class: &'a str, what: impl Into<String>) -> Self {
        Self {
            class,
            method: None,
            what: what.into(),
            fix: None,
        }
    }

    /// Adds how to fix it.
    pub(crate) fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// The whole message.
    pub(crate) fn message(&self) -> String {
        let mut message = match self.method {
            Some(method) => format!("{}.{method}: {}", self.class, self.what),
            None => format!("{}: {}", self.class, self.what),
        };
        if let Some(fix) = &self.fix {
            message.push_str("; ");
            message.push_str(fix);
        }
        message
    }

    /// Pushes it to Godot as an error (the debugger's Errors tab, the output), located at the
    /// line that reported it.
    #[track_caller]
    pub(crate) fn report(self) {
        self.push(PrintLevel::Error);
    }

    /// Pushes it to Godot as a warning, located at the line that reported it.
    #[track_caller]
    pub(crate) fn warn(self) {
        self.push(PrintLevel::Warn);
    }

    /// Godot's "at:" line names the class and method, then the caller's file and line (through
    /// `#[track_caller]`), not this file, which every problem passes through.
    #[track_caller]
    fn push(self, level: PrintLevel) {
        let function = match self.method {
            Some(method) => format!("{}.{method}", self.class),
            None => self.class.to_string(),
        };
        let location = std::panic::Location::caller();
        print_custom(PrintRecord {
            level,
            message: &self.message(),
            rationale: None,
            source: Some(PrintSource::from_location(location, &function)),
            editor_notify: false,
        });
    }
}

/// The one rule for a millisecond timeout argument: 0 or more is that many milliseconds; -1 is
/// no limit (`Ok(None)`) where `forever` allows it; any other value is reported as an error
/// naming `class`.`method`, and `Err` returned. `forever` is `Err(name)` for a method that must
/// not wait without limit, `name` being the method that does (`read_lock` for
/// `try_read_lock`).
#[track_caller]
pub(crate) fn timeout_ms(
    class: &str,
    method: &str,
    timeout_ms: i64,
    forever: Result<(), &str>,
) -> Result<Option<std::time::Duration>, ()> {
    match (timeout_ms, forever) {
        (0.., _) | (-1, Ok(())) => Ok(limit(timeout_ms)),
        (_, Ok(())) => {
            Problem::new(
                class,
                method,
                format!("timeout_ms {timeout_ms} is not valid"),
            )
            .fix("pass milliseconds (0 or more), or -1 to wait as long as it takes.")
            .report();
            Err(())
        }
        (_, Err(instead)) => {
            Problem::new(
                class,
                method,
                format!("timeout_ms must be 0 or more (got {timeout_ms})"),
            )
            .fix(format!("use {instead}() to wait as long as it takes."))
            .report();
            Err(())
        }
    }
}

/// The wait a millisecond timeout stands for: that many milliseconds, or no limit (`None`) for a
/// negative one. For values the rule above accepted, or a setting whose documented negative means
/// no limit (`stop_timeout_msec`).
pub(crate) fn limit(timeout_ms: i64) -> Option<std::time::Duration> {
    u64::try_from(timeout_ms)
        .ok()
        .map(std::time::Duration::from_millis)
}
