//! Short descriptions of user values, for error messages.
//!
//! An error names the value it is about by type and size, never by its whole contents: formatting
//! a 50 MB PackedByteArray into a message took seconds and gigabytes, and printed a 157 MB line.
//! Objects are named by class and instance id, never through their string form, which may be user
//! code (a script's `_to_string()`) that must not run on a worker from inside an error.

use godot::prelude::*;

use crate::lookup::{Held, class_of, held_object};

/// Strings up to this many characters are quoted whole; longer ones by their start only.
const SHORT_TEXT: usize = 40;

/// `value` for a message, e.g. `null`, `int 7`, `String "player"`, `String "aaaa…" (90000
/// characters)`, `PackedByteArray of 50000000 elements`, `Dictionary of 2 entries`,
/// `Node2D object #1234`, `freed object`, `Vector2 (1.0, 2.0)`.
pub(crate) fn value(value: &Variant) -> String {
    let kind = type_name(value.get_type());
    match value.get_type() {
        VariantType::NIL => "null".into(),
        VariantType::STRING | VariantType::STRING_NAME | VariantType::NODE_PATH => {
            // A String comes out sharing its buffer, so even a huge one is not copied.
            let string = value.try_to_relaxed::<GString>().unwrap_or_default();
            format!("{kind} {}", text(&string))
        }
        VariantType::ARRAY | VariantType::DICTIONARY => {
            let unit = if value.get_type() == VariantType::ARRAY {
                "elements"
            } else {
                "entries"
            };
            format!("{kind} of {} {unit}", value.call("size", &[]))
        }
        VariantType::OBJECT => match held_object(value) {
            Held::Object(id) => match class_of(id) {
                Some(class) => format!("{class} object #{id}"),
                None => "freed object".into(),
            },
            _ => "freed object".into(),
        },
        // Callables and Signals print their target, which is an object's string form.
        VariantType::CALLABLE | VariantType::SIGNAL | VariantType::RID => kind,
        other if is_packed_array(other) => {
            format!("{kind} of {} elements", value.call("size", &[]))
        }
        // Numbers, bools and math types: short, whatever their value.
        _ => format!("{kind} {}", value.stringify()),
    }
}

/// `text` quoted, cut to its first characters when it is long: `"player"`, or
/// `"aaaa…" (90000 characters)`.
pub(crate) fn text(text: &GString) -> String {
    let chars = text.chars();
    if chars.len() <= SHORT_TEXT {
        format!("\"{text}\"")
    } else {
        let start: String = chars[..SHORT_TEXT].iter().collect();
        format!("\"{start}…\" ({} characters)", chars.len())
    }
}

/// Godot's name of a Variant type (`int`, `String`, `PackedByteArray`), as GDScript spells it.
pub(crate) fn type_name(kind: VariantType) -> String {
    godot::global::type_string(kind.ord() as i64).to_string()
}

/// Whether `kind` is one of the Packed*Array types (shared by reference in Godot 4).
pub(crate) fn is_packed_array(kind: VariantType) -> bool {
    matches!(
        kind,
        VariantType::PACKED_BYTE_ARRAY
            | VariantType::PACKED_INT32_ARRAY
            | VariantType::PACKED_INT64_ARRAY
            | VariantType::PACKED_FLOAT32_ARRAY
            | VariantType::PACKED_FLOAT64_ARRAY
            | VariantType::PACKED_STRING_ARRAY
            | VariantType::PACKED_VECTOR2_ARRAY
            | VariantType::PACKED_VECTOR3_ARRAY
            | VariantType::PACKED_COLOR_ARRAY
            | VariantType::PACKED_VECTOR4_ARRAY
    )
}
