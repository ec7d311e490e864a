//! What every step shares: where the workspace and its Godot project are, and the result type
//! whose error is shown to the user as its message. A leaf module, so that no step module imports
//! the crate root (which imports them).

use std::path::PathBuf;

pub type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// The workspace root (this crate lives in rust/xtask).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

pub fn godot_project_dir() -> PathBuf {
    root().join("godot_project")
}
