//! Script errors raised while ThreadKit runs user code, seen through a Godot `Logger`.
//!
//! Godot prints a GDScript runtime error and leaves the failing function as if it had returned
//! null (or its return type's default): the caller gets no error code. Since Godot 4.5 an
//! extension can register a `Logger`, which Godot calls synchronously, on the thread that raised
//! the error, before the failing function returns: `_err_print_error` (core/error/error_macros.cpp)
//! calls `OS::print_error`, whose composite logger calls the script loggers' `LoggerBind`
//! (core/core_bind.cpp), which calls each registered logger in turn. None of that takes a lock,
//! and adding or removing a logger is not synchronised with it either: ThreadKit registers its
//! logger once, on the main thread at start-up, before any of its threads exists, and removes it
//! when the extension is unloaded, after they are gone.
//!
//! While ThreadKit runs user code whose result it keeps (a task, an `update_value` Callable), it
//! marks the thread as watched, and the logger records the first script error raised there. It
//! only touches a thread-local, so concurrent errors on several threads never meet, and an error
//! raised on a thread nobody watches costs a thread-local read (after Godot's own formatting of
//! the error for every logger). Godot calls no logger at all while error printing is off
//! (`Engine.print_error_messages`).
//!
//! Only `ERROR_TYPE_SCRIPT` counts: a runtime error (and a failed `assert`) stops the
//! function, so what it returns is not its answer. `push_error`, `push_warning` and the engine's
//! own errors leave the function running to its end: its result is still the one it chose.
//! Godot reports runtime errors in debug builds (the editor, debug exports) only; a release
//! export leaves the function silently, as before.

// `log_error` has Godot's nine parameters; gdext moves a `gd_self` virtual method out of the
// trait impl, and an attribute on the method does not follow it.
#![allow(clippy::too_many_arguments)]

use std::cell::RefCell;
use std::fmt::Write;

use godot::classes::logger::ErrorType;
use godot::classes::{ILogger, Logger, Os, ScriptBacktrace};
use godot::prelude::*;

/// The most bytes kept of each piece of an error (its text, a function or file name), and
/// the most backtrace frames shown: a message built from a script error stays a few KB whatever
/// the script put in it.
const MAX_TEXT: usize = 400;
const MAX_NAME: usize = 120;
const MAX_FRAMES: usize = 8;

/// The first script error raised while a thread was watched, ready to show.
#[derive(Clone, Debug)]
pub struct ScriptError {
    /// The error and where it happened, then the script backtrace when Godot captured one.
    message: String,
}

impl ScriptError {
    /// The error's first line: its text and where it happened, without the backtrace.
    pub fn summary(&self) -> &str {
        self.message.lines().next().unwrap_or_default()
    }
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a watched thread saw.
#[derive(Default)]
struct Watch {
    first: Option<ScriptError>,
    /// Script errors after the first (usually its consequences, a null passed on).
    more: u32,
}

impl Watch {
    fn record(&mut self, error: impl FnOnce() -> ScriptError) {
        if self.first.is_none() {
            self.first = Some(error());
        } else {
            self.more += 1;
        }
    }

    fn into_error(self) -> Option<ScriptError> {
        let mut error = self.first?;
        if self.more > 0 {
            let _ = write!(
                error.message,
                "\n({} more script error(s) followed)",
                self.more
            );
        }
        Some(error)
    }
}

thread_local! {
    /// The innermost watch of this thread, if any.
    static WATCH: RefCell<Option<Watch>> = const { RefCell::new(None) };
    /// The registered logger, on the main thread, between `install` and `uninstall`.
    static INSTALLED: RefCell<Option<Gd<ScriptErrorWatch>>> = const { RefCell::new(None) };
}

/// Whether a script error caught by a nested watch also counts for the watch around it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    /// A task: what happens inside it is its own (a task run inline by a waiting task fails
    /// alone; the waiting one gets null and decides).
    Isolated,
    /// A Callable called for the code around it (`update_value`, `with_write`): an error there
    /// happened in that code too, so a task that ran it fails as well.
    Shared,
}

/// Runs `body` with this thread watched; returns its result and the first script error raised
/// meanwhile (on this thread).
pub fn watch<R>(nesting: Nesting, body: impl FnOnce() -> R) -> (R, Option<ScriptError>) {
    /// Puts the outer watch back, also if `body` unwinds.
    struct Scope(Option<Watch>);
    impl Drop for Scope {
        fn drop(&mut self) {
            WATCH.with(|watch| *watch.borrow_mut() = self.0.take());
        }
    }
    let scope = Scope(WATCH.with(|watch| watch.replace(Some(Watch::default()))));
    let result = body();
    let error = WATCH.with(|watch| watch.borrow_mut().take().and_then(Watch::into_error));
    drop(scope);
    if nesting == Nesting::Shared
        && let Some(error) = &error
    {
        WATCH.with(|watch| {
            if let Some(outer) = watch.borrow_mut().as_mut() {
                outer.record(|| error.clone());
            }
        });
    }
    (result, error)
}

/// Registers the logger with Godot. Main thread, at extension start-up, before any task runs.
pub fn install() {
    // gdext names an engine class on first use; converting the typed Array Godot passes to
    // `log_error` looks the name up by string first, after which naming the class panics
    // ("already-existing string"). Naming it here, first, avoids that.
    let _ = ScriptBacktrace::class_id();
    let logger = ScriptErrorWatch::new_gd();
    Os::singleton().add_logger(&logger);
    INSTALLED.with(|installed| *installed.borrow_mut() = Some(logger));
}

/// Removes the logger. Main thread, when the extension is unloaded (at exit, or a hot reload):
/// Godot would otherwise call into a library that is gone, and count the logger as leaked.
pub fn uninstall() {
    if let Some(logger) = INSTALLED.with(|installed| installed.borrow_mut().take()) {
        Os::singleton().remove_logger(&logger);
    }
}

/// ThreadKit's internal Logger: records the script errors raised on threads that ThreadKit
/// watches while it runs a task or a Callable whose result it keeps, so that such an error fails
/// the task (or leaves the stored value unchanged) instead of passing for a null result.
// `tool`: the logger is installed in the editor too, where `@tool` scripts run ThreadKit tasks.
#[derive(GodotClass)]
#[class(init, internal, tool, base = Logger)]
pub struct ScriptErrorWatch {
    base: Base<Logger>,
}

#[godot_api]
impl ILogger for ScriptErrorWatch {
    /// Called by Godot, on the thread that raised the error. Takes no borrow of the object:
    /// several threads may report errors at once.
    #[func(gd_self)]
    fn log_error(
        _this: Gd<Self>,
        function: GString,
        file: GString,
        line: i32,
        code: GString,
        rationale: GString,
        _editor_notify: bool,
        error_type: i32,
        script_backtraces: Array<Gd<ScriptBacktrace>>,
    ) {
        if error_type != ErrorType::SCRIPT.ord() {
            return;
        }
        WATCH.with(|watch| {
            // Never borrowed across a call into Godot, so this cannot fail; an error raised by
            // this code itself is not passed back to loggers by Godot either.
            let Ok(mut watch) = watch.try_borrow_mut() else {
                return;
            };
            if let Some(watch) = watch.as_mut() {
                watch.record(|| {
                    let text = if rationale.is_empty() {
                        code
                    } else {
                        rationale
                    };
                    describe(&text, &function, &file, line, &script_backtraces)
                });
            }
        });
    }
}

fn describe(
    text: &GString,
    function: &GString,
    file: &GString,
    line: i32,
    backtraces: &Array<Gd<ScriptBacktrace>>,
) -> ScriptError {
    let mut message = format!(
        "SCRIPT ERROR: {} (at {}:{line} in {})",
        clip(&text.to_string(), MAX_TEXT),
        clip(&file.to_string(), MAX_NAME),
        clip(&function.to_string(), MAX_NAME),
    );
    for backtrace in backtraces.iter_shared().filter(|b| !b.is_empty()) {
        let frames = backtrace.get_frame_count().max(0);
        let _ = write!(
            message,
            "\n{} backtrace (most recent call first):",
            clip(&backtrace.get_language_name().to_string(), MAX_NAME)
        );
        for index in 0..frames.min(MAX_FRAMES as i32) {
            let _ = write!(
                message,
                "\n    [{index}] {} ({}:{})",
                clip(&backtrace.get_frame_function(index).to_string(), MAX_NAME),
                clip(&backtrace.get_frame_file(index).to_string(), MAX_NAME),
                backtrace.get_frame_line(index)
            );
        }
        if frames > MAX_FRAMES as i32 {
            let _ = write!(
                message,
                "\n    ... {} more frame(s)",
                frames - MAX_FRAMES as i32
            );
        }
    }
    ScriptError { message }
}

/// `text`, cut to at most `max` bytes (on a character boundary) with an ellipsis when longer.
fn clip(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], text.len()).into()
}
