//! Calling a Callable with Godot's call error reported back instead of lost.
//!
//! `Callable::call` returns null both for a function that returned null and for a call Godot
//! refused (too few arguments, a missing method, a freed object), printing nothing in the latter
//! case when it runs on a worker. Going through the engine's `variant_call` entry point hands us
//! the call error, so a task that Godot could not call fails with a message instead of
//! "completing" with null.

use godot::prelude::*;
use godot::sys;

/// A `StringName` made once and kept for the whole run, as Godot's own `SNAME` does. Making one
/// takes Godot's global string-name lock, which workers and the main thread would otherwise
/// contend for on every call and every signal. Marked static, so Godot does not count it as
/// leaked at exit.
macro_rules! static_name {
    ($name:literal) => {{
        static NAME: std::sync::OnceLock<StringName> = std::sync::OnceLock::new();
        NAME.get_or_init(|| StringName::__cstr_with_static($name, true))
    }};
}
pub(crate) use static_name;

/// Calls `callable` with `args`; `Err` says why Godot could not make the call.
pub fn try_call(callable: &Callable, args: &[Variant]) -> Result<Variant, String> {
    let target = callable.to_variant();
    let method = static_name!(c"call");
    let args_sys: Vec<_> = args.iter().map(|arg| arg.var_sys()).collect();
    let mut error = sys::default_call_error();
    // `target`, `method` and every argument live for the whole call, and `error` is a valid
    // out-parameter. `variant_call` placement-constructs a nil Variant in the return slot before
    // calling, so the slot is initialised whatever happens, as `new_with_var_uninit` requires.
    // SAFETY: as above: live inputs, a valid out-parameter, an always-initialised return slot.
    let result = unsafe {
        Variant::new_with_var_uninit(|return_ptr| {
            sys::interface_fn!(variant_call)(
                sys::SysPtr::force_mut(target.var_sys()),
                method.string_sys(),
                args_sys.as_ptr(),
                args_sys.len() as i64,
                return_ptr,
                &mut error,
            )
        })
    };
    if error.error == sys::GDEXTENSION_CALL_OK {
        Ok(result)
    } else {
        Err(describe(&error, args.len()))
    }
}

fn describe(error: &sys::GDExtensionCallError, given: usize) -> String {
    match error.error {
        sys::GDEXTENSION_CALL_ERROR_INVALID_METHOD => {
            "Godot could not call it: the method does not exist".into()
        }
        sys::GDEXTENSION_CALL_ERROR_INVALID_ARGUMENT => format!(
            "Godot could not call it: argument {} has the wrong type",
            error.argument + 1
        ),
        sys::GDEXTENSION_CALL_ERROR_TOO_MANY_ARGUMENTS => format!(
            "Godot could not call it: it takes {} argument(s), it was given {given}",
            error.expected
        ),
        sys::GDEXTENSION_CALL_ERROR_TOO_FEW_ARGUMENTS => format!(
            "Godot could not call it: it needs {} argument(s), it was given {given}",
            error.expected
        ),
        sys::GDEXTENSION_CALL_ERROR_INSTANCE_IS_NULL => {
            "Godot could not call it: its object was freed".into()
        }
        other => format!("Godot could not call it (call error {other})"),
    }
}
