//! Calling user code whose result ThreadKit keeps (a task's result, a value `update_value`
//! stores, what `with_write` returns): a call that did not produce a real result says so, instead
//! of passing null (or a coroutine's state) on as the answer.

use godot::prelude::*;

use crate::call::try_call;
use crate::coroutine::{self, is_coroutine_state};
use crate::script_errors::{self, Nesting, ScriptError};

/// Why a call produced no result.
pub enum Failure {
    /// Godot could not make the call (freed object, missing method, wrong arguments).
    NotCalled(String),
    /// The code stopped at a script error (see `script_errors`).
    ScriptError(ScriptError),
    /// The function is a coroutine: it returned at an `await`. Its state was dropped, so the rest
    /// of it never runs.
    Coroutine,
}

/// Calls `callable` with `args`, watching this thread for script errors (see [`Nesting`]).
pub fn call(callable: &Callable, args: &[Variant], nesting: Nesting) -> Result<Variant, Failure> {
    let (result, error) = script_errors::watch(nesting, || try_call(callable, args));
    let value = result.map_err(Failure::NotCalled)?;
    if let Some(error) = error {
        return Err(Failure::ScriptError(error));
    }
    if is_coroutine_state(&value) {
        coroutine::stop(&value);
        return Err(Failure::Coroutine);
    }
    Ok(value)
}
