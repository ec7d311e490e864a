//! Reading addons/threadkit/threadkit.gdextension: which library file Godot loads on which
//! platform. The build installs to, and the package ships, exactly the names it lists.

use std::env::consts::{ARCH, OS};
use std::path::PathBuf;

use crate::workspace::{self, Result};

/// The addon folder as Godot projects see it, and as the package lays it out.
pub const ADDON_DIR: &str = "addons/threadkit";

/// One entry of the `[libraries]` section, e.g. `linux.debug.x86_64 = "res://…/lib….so"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Library {
    /// The feature tags, e.g. `linux.debug.x86_64`.
    pub tags: String,
    /// Where Godot looks for the file, a `res://` path.
    pub path: String,
}

impl Library {
    /// The path relative to the project root (`res://x` -> `x`), which is also the path inside
    /// the package; an error unless the file lies in the addon folder, since only that folder
    /// travels with the addon.
    pub fn project_path(&self) -> Result<&str> {
        self.path
            .strip_prefix("res://")
            .filter(|path| {
                path.strip_prefix(ADDON_DIR)
                    .is_some_and(|rest| rest.starts_with('/'))
            })
            .ok_or_else(|| {
                format!(
                    "threadkit.gdextension: {} points at {}, outside res://{ADDON_DIR}/",
                    self.tags, self.path
                )
                .into()
            })
    }

    pub fn is_debug(&self) -> bool {
        self.tags.split('.').any(|tag| tag == "debug")
    }
}

/// The entries of the `[libraries]` section, in file order.
pub fn parse_libraries(text: &str) -> Vec<Library> {
    let mut in_libraries = false;
    let mut libraries = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            in_libraries = line == "[libraries]";
        } else if in_libraries && let Some((tags, path)) = line.split_once('=') {
            libraries.push(Library {
                tags: tags.trim().to_string(),
                path: path.trim().trim_matches('"').to_string(),
            });
        }
    }
    libraries
}

/// An operating system and CPU architecture, named as Godot's feature tags name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: &'static str,
    pub arch: &'static str,
}

impl Platform {
    /// The platform xtask runs on, which is the one it builds for.
    pub fn host() -> Result<Platform> {
        let os = match OS {
            "linux" | "windows" | "macos" => OS,
            other => return Err(format!("ThreadKit has no library entry for {other}").into()),
        };
        let arch = match ARCH {
            "x86_64" => "x86_64",
            "aarch64" => "arm64",
            other => {
                return Err(format!("ThreadKit has no library entry for the {other} CPU").into());
            }
        };
        Ok(Platform { os, arch })
    }

    /// Whether Godot running here may load `library`: each of its tags names this OS, this
    /// architecture, or a build type (macOS entries name no architecture: universal binaries).
    pub fn loads(&self, library: &Library) -> bool {
        library
            .tags
            .split('.')
            .all(|tag| tag == self.os || tag == self.arch || tag == "debug" || tag == "release")
    }

    /// The entries this platform loads, debug and release: an error when there is none.
    pub fn libraries(&self, all: &[Library]) -> Result<Vec<Library>> {
        let own: Vec<Library> = all.iter().filter(|l| self.loads(l)).cloned().collect();
        if own.is_empty() {
            return Err(format!("threadkit.gdextension has no library entry for {self}").into());
        }
        Ok(own)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.os, self.arch)
    }
}

/// threadkit.gdextension in the addon folder.
pub fn file() -> PathBuf {
    workspace::root()
        .join(ADDON_DIR)
        .join("threadkit.gdextension")
}

/// The entries of the addon's threadkit.gdextension.
pub fn read_libraries() -> Result<Vec<Library>> {
    let file = file();
    let text = std::fs::read_to_string(&file)
        .map_err(|error| format!("cannot read {}: {error}", file.display()))?;
    Ok(parse_libraries(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINUX_X86_64: Platform = Platform {
        os: "linux",
        arch: "x86_64",
    };

    fn library(tags: &str, path: &str) -> Library {
        Library {
            tags: tags.into(),
            path: path.into(),
        }
    }

    #[test]
    fn reads_only_the_libraries_section() {
        let text = "\
; a comment = not an entry
[configuration]
entry_symbol = \"threadkit_init\"

[libraries]
linux.debug.x86_64 = \"res://addons/threadkit/bin/a.so\"
  ; indented comment
macos.release=\"res://addons/threadkit/bin/b.dylib\"

[dependencies]
linux.debug.x86_64 = {}
";
        assert_eq!(
            parse_libraries(text),
            [
                library("linux.debug.x86_64", "res://addons/threadkit/bin/a.so"),
                library("macos.release", "res://addons/threadkit/bin/b.dylib"),
            ]
        );
    }

    #[test]
    fn a_platform_loads_entries_for_its_os_and_architecture() {
        let linux_debug = library("linux.debug.x86_64", "");
        let linux_any_build = library("linux.x86_64", "");
        let linux_arm = library("linux.release.arm64", "");
        let windows = library("windows.debug.x86_64", "");
        let macos = library("macos.debug", "");
        assert!(LINUX_X86_64.loads(&linux_debug));
        assert!(LINUX_X86_64.loads(&linux_any_build));
        assert!(!LINUX_X86_64.loads(&linux_arm));
        assert!(!LINUX_X86_64.loads(&windows));
        assert!(!LINUX_X86_64.loads(&macos));
        let mac = Platform {
            os: "macos",
            arch: "arm64",
        };
        assert!(mac.loads(&macos));
        assert!(!mac.loads(&linux_arm));
    }

    #[test]
    fn a_platform_without_entries_is_an_error() {
        let all = [library(
            "linux.debug.x86_64",
            "res://addons/threadkit/bin/a.so",
        )];
        let windows = Platform {
            os: "windows",
            arch: "x86_64",
        };
        let error = windows.libraries(&all).unwrap_err().to_string();
        assert!(error.contains("windows-x86_64"), "{error}");
        assert_eq!(LINUX_X86_64.libraries(&all).unwrap(), all);
    }

    #[test]
    fn only_paths_inside_the_addon_folder_are_packaged() {
        let inside = library("linux.debug.x86_64", "res://addons/threadkit/bin/a.so");
        assert_eq!(inside.project_path().unwrap(), "addons/threadkit/bin/a.so");
        for outside in [
            "res://bin/a.so",
            "res://addons/threadkit_old/a.so",
            "/usr/lib/a.so",
        ] {
            let error = library("linux.debug.x86_64", outside)
                .project_path()
                .unwrap_err()
                .to_string();
            assert!(error.contains(outside), "{error}");
        }
    }

    #[test]
    fn the_addon_lists_a_debug_and_a_release_library_for_linux_x86_64() {
        let own = LINUX_X86_64.libraries(&read_libraries().unwrap()).unwrap();
        let debug: Vec<bool> = own.iter().map(Library::is_debug).collect();
        assert_eq!(debug, [true, false], "{own:?}");
        for library in &own {
            assert!(library.project_path().is_ok(), "{library:?}");
        }
    }
}
