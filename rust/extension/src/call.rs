//! Calling a Callable with Godot's call error reported back instead of lost.
//!
//! `Callable::call` returns null both for a function that returned null and for a call Godot
//! refused (too few arguments, a missing method, a freed object), printing nothing in the latter
//! case when it runs on a worker. Going through the engine's `variant_call` entry point hands us
//! the call error, so a task that Godot could not call fails with a message instead of
//! "completing" with null.

use godot::classes::ClassDb;
use godot::prelude::*;
use godot::sys;

use crate::describe;
use crate::lookup::{Held, class_of, held_object, live_object};

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
    call_variant(&callable.to_variant(), static_name!(c"call"), args)
        .map_err(|error| describe(callable, &error, args))
}

/// Calls `method` on `target` through Godot's Variant call; `Err` holds Godot's call error.
///
/// For an object, unlike a method of gdext's `Gd`, it does not check the object's liveness again
/// after the call (a check that panics when another thread frees the object meanwhile): callers
/// pass an object they have just looked up by id, and use it as Godot's own code would.
pub(crate) fn call_variant(
    target: &Variant,
    method: &StringName,
    args: &[Variant],
) -> Result<Variant, sys::GDExtensionCallError> {
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
        Err(error)
    }
}

/// Why Godot refused to call `callable` with `args`, naming types and sizes, never values.
fn describe(callable: &Callable, error: &sys::GDExtensionCallError, args: &[Variant]) -> String {
    let given = args.len();
    match error.error {
        sys::GDEXTENSION_CALL_ERROR_INVALID_METHOD => {
            "Godot could not call it: the method does not exist".into()
        }
        sys::GDEXTENSION_CALL_ERROR_INVALID_ARGUMENT => {
            let index = error.argument.max(0) as usize;
            let expected = VariantType::from_sys(error.expected as sys::GDExtensionVariantType);
            Call::of(callable, args).wrong_type(index, Some(expected))
        }
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
        // A code Godot does not define: a GDExtension method failed with a code of its own
        // (godot-rust's is 1337), most often because it could not convert an argument. Its
        // declared parameters tell which one; it printed its own error too.
        _ => {
            let call = Call::of(callable, args);
            match call.first_mismatch() {
                Some(index) => call.wrong_type(index, None),
                None => "Godot could not call it: the extension method it calls failed (its own error, printed just before, says why)".into(),
            }
        }
    }
}

/// A refused call: the arguments as the target received them, and what its method declares.
struct Call {
    /// The caller's arguments (minus those `unbind()` drops), then the bound ones.
    arguments: Vec<Variant>,
    /// Name, type and class of each declared parameter; empty when the method info is not at
    /// hand (a lambda, a static method, a freed object).
    parameters: Vec<(GString, VariantType, GString)>,
}

impl Call {
    /// Read only when a call failed: the method list is built on demand, too slow for every call.
    fn of(callable: &Callable, args: &[Variant]) -> Self {
        let target = callable.to_variant();
        let unbound = call_variant(&target, static_name!(c"get_unbound_arguments_count"), &[])
            .ok()
            .and_then(|count| usize::try_from(count.to::<i64>()).ok())
            .unwrap_or(0);
        let mut arguments = args[..args.len().saturating_sub(unbound)].to_vec();
        if let Some(bound) = call_variant(&target, static_name!(c"get_bound_arguments"), &[])
            .ok()
            .and_then(|bound| bound.try_to::<VarArray>().ok())
        {
            arguments.extend(bound.iter_shared());
        }
        let parameters = callable
            .object_id()
            .zip(callable.method_name())
            .map(|(id, method)| declared_parameters(id, &method))
            .unwrap_or_default();
        Self {
            arguments,
            parameters,
        }
    }

    /// The first argument of a type its parameter cannot take, by Godot's strict conversion rules
    /// (those godot-rust applies).
    fn first_mismatch(&self) -> Option<usize> {
        self.arguments
            .iter()
            .zip(&self.parameters)
            .position(|(argument, (_, declared, _))| {
                let given = argument.get_type();
                *declared != VariantType::NIL
                    && given != *declared
                    && !can_convert_strict(given, *declared)
            })
    }

    fn wrong_type(&self, index: usize, expected: Option<VariantType>) -> String {
        let parameter = self.parameters.get(index);
        let takes = match parameter {
            Some((_, kind, class)) if *kind == VariantType::OBJECT && !class.is_empty() => {
                class.to_string()
            }
            Some((_, kind, _)) => describe::type_name(*kind),
            None => expected.map_or_else(|| "another type".into(), describe::type_name),
        };
        let given = self
            .arguments
            .get(index)
            .map_or_else(|| "nothing".into(), argument_kind);
        let who = match parameter {
            Some((name, ..)) if !name.is_empty() => format!("parameter {}", describe::text(name)),
            _ => "it".into(),
        };
        format!(
            "Godot could not call it: argument {} has the wrong type: {who} takes {takes}, it was given {given}",
            index + 1
        )
    }
}

/// The declared parameters of `method` on the object `id`: from its script's method list, or
/// from ClassDB for an engine or extension method. The object itself is only asked for its
/// script, one short call (a call locks the object, see `lookup::class_of`), only on this error
/// path, and a node only on the main thread: on a worker, a node's script methods go unnamed.
fn declared_parameters(
    id: InstanceId,
    method: &StringName,
) -> Vec<(GString, VariantType, GString)> {
    let Some(class) = class_of(id) else {
        return Vec::new();
    };
    // Godot lets only the main thread ask a node in the tree for anything, its script included.
    let may_ask =
        godot::init::is_main_thread() || !ClassDb::singleton().is_parent_class(&class, "Node");
    let script = may_ask
        .then(|| call_variant(&live_object(id), static_name!(c"get_script"), &[]).ok())
        .flatten()
        .filter(|script| !script.is_nil());
    let script_methods = script.and_then(|script| {
        call_variant(&script, static_name!(c"get_script_method_list"), &[]).ok()
    });
    let class_methods = || {
        ClassDb::singleton()
            .class_get_method_list(&class)
            .to_variant()
    };
    let wanted = method.to_variant();
    let info = dictionaries(script_methods)
        .into_iter()
        .find(|info| info.get("name") == Some(wanted.clone()))
        .or_else(|| {
            dictionaries(Some(class_methods()))
                .into_iter()
                .find(|info| info.get("name") == Some(wanted.clone()))
        });
    let Some(info) = info else {
        return Vec::new();
    };
    dictionaries(info.get("args"))
        .iter()
        .map(|parameter| {
            let text = |key: &str| {
                parameter
                    .get(key)
                    .and_then(|value| value.try_to_relaxed::<GString>().ok())
                    .unwrap_or_default()
            };
            let kind = parameter
                .get("type")
                .and_then(|kind| kind.try_to::<i64>().ok())
                .map_or(VariantType::NIL, |kind| {
                    VariantType::from_sys(kind as sys::GDExtensionVariantType)
                });
            (text("name"), kind, text("class_name"))
        })
        .collect()
}

/// The Dictionaries of a method list (an Array[Dictionary]) or of a method's "args" (an Array).
fn dictionaries(list: Option<Variant>) -> Vec<VarDictionary> {
    let Some(list) = list else {
        return Vec::new();
    };
    match list.try_to::<Array<VarDictionary>>() {
        Ok(typed) => typed.iter_shared().collect(),
        Err(_) => list.try_to::<VarArray>().map_or_else(
            |_| Vec::new(),
            |plain| {
                plain
                    .iter_shared()
                    .filter_map(|entry| entry.try_to().ok())
                    .collect()
            },
        ),
    }
}

/// What an argument is, for a message: its type, or an object's class.
fn argument_kind(argument: &Variant) -> String {
    match held_object(argument) {
        Held::Object(id) => class_of(id).map_or_else(|| "a freed object".into(), |c| c.to_string()),
        Held::Freed => "a freed object".into(),
        Held::Null | Held::Other(_) => describe::type_name(argument.get_type()),
    }
}

fn can_convert_strict(from: VariantType, to: VariantType) -> bool {
    // SAFETY: a pure lookup in Godot's conversion table, for any two variant types.
    unsafe { sys::interface_fn!(variant_can_convert_strict)(from.sys(), to.sys()) != 0 }
}

/// Runs `f`, turning a panic into its message: the one place ThreadKit's binding catches a
/// panic, so that a panicking job or continuation neither unwinds into Godot nor stops the
/// work queued after it.
pub(crate) fn catch_panic<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|panic| threadkit_core::panic_message(&*panic))
}
