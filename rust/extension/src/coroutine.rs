//! Recognising a coroutine by what it returned, and stopping it there.
//!
//! A GDScript function containing `await` returns at its first `await` that has to wait, handing
//! its caller a `GDScriptFunctionState` instead of a result; the rest of the function runs later,
//! when the awaited signal fires, on whichever thread emits it. For a task or a Callable run under
//! a lock that is never what the caller meant: ThreadKit refuses it, and stops it. The state is
//! kept alive by its connection to the awaited signal (Godot binds the state to it), so dropping
//! the returned reference is not enough: ThreadKit disconnects it first, and then the state is
//! freed with the caller's reference and the rest of the function never runs. (Godot 4.6 does not
//! free the local variables of a coroutine that never finishes, refused or not: what they
//! reference stays alive until exit.)

use godot::prelude::*;

use crate::call::static_name;
use crate::lookup::{Held, class_of, held_object};

/// Whether `value` is what a coroutine returns at an `await` (a `GDScriptFunctionState`).
///
/// A task may return a node the main thread is freeing right now, so the object is first looked
/// up by id (see `lookup::held_object`). The extension interface names a GDScriptFunctionState
/// by its nearest exposed class, RefCounted; only such an object, which `value` keeps alive with
/// its reference, is asked for its real class.
pub fn is_coroutine_state(value: &Variant) -> bool {
    matches!(held_object(value), Held::Object(id)
        if class_of(id).is_some_and(|class| class == *static_name!(c"RefCounted")))
        && value
            .try_to::<Gd<Object>>()
            .is_ok_and(|object| object.is_class("GDScriptFunctionState"))
}

/// Stops the coroutine that returned `state` (see [`is_coroutine_state`]) at its `await`: its
/// connection to what it awaits is removed, so that it is freed when the caller drops `state`.
/// A coroutine it awaits in turn (`await other()`) is a call of its own, left to finish when its
/// signal comes.
pub fn stop(state: &Variant) {
    let Ok(state) = state.try_to::<Gd<Object>>() else {
        return;
    };
    for connection in state.get_incoming_connections().iter_shared() {
        let signal = connection
            .get("signal")
            .and_then(|s| s.try_to::<Signal>().ok());
        let callable = connection
            .get("callable")
            .and_then(|c| c.try_to::<Callable>().ok());
        if let (Some(signal), Some(callable)) = (signal, callable)
            && signal.is_connected(&callable)
        {
            signal.disconnect(&callable);
        }
    }
}

/// What to do instead, for the end of an error message.
pub const HINT: &str = "remove the await from it (await before or after the call instead; in a task, wait with wait_for_task() or a ThreadSafeQueue)";
