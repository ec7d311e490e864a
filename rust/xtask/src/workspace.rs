//! What every step shares: where the workspace and its Godot project are, and the result type
//! whose error is shown to the user as its message. A leaf module, so that no step module imports
//! the crate root (which imports them).

use std::path::{Path, PathBuf};

pub type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// The workspace root (this crate lives in rust/xtask): two folders up, not canonicalized, which
/// on Windows would give a verbatim `\\?\` path to hand to Godot and its config files.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("rust/xtask lies two folders below the workspace root")
        .to_path_buf()
}

pub fn godot_project_dir() -> PathBuf {
    root().join("godot_project")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_workspace_as_godot_can_take_it() {
        let root = root();
        assert!(root.join("Cargo.toml").is_file(), "{}", root.display());
        assert!(godot_project_dir().join("project.godot").is_file());
        assert!(
            !root.to_string_lossy().starts_with(r"\\?\"),
            "{}",
            root.display()
        );
    }
}
