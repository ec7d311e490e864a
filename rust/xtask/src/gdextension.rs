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
        inside_addon(&self.path).ok_or_else(|| {
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
    section(text, "[libraries]")
        .map(|(tags, path)| Library { tags, path })
        .collect()
}

/// One entry of the `[icons]` section, e.g. `TaskHandle = "res://…/icons/TaskHandle.svg"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Icon {
    /// The class the editor shows it for.
    pub class: String,
    /// A `res://` path.
    pub path: String,
}

impl Icon {
    /// The path relative to the project root, which is also the path inside the package; an
    /// error unless the file lies in the addon folder, since only that folder travels with it.
    pub fn project_path(&self) -> Result<&str> {
        inside_addon(&self.path).ok_or_else(|| {
            format!(
                "threadkit.gdextension: the icon of {} is {}, outside res://{ADDON_DIR}/",
                self.class, self.path
            )
            .into()
        })
    }
}

/// The entries of the `[icons]` section, in file order.
pub fn parse_icons(text: &str) -> Vec<Icon> {
    section(text, "[icons]")
        .map(|(class, path)| Icon { class, path })
        .collect()
}

/// `res://addons/threadkit/x` -> `addons/threadkit/x`; None for a path outside the addon folder.
fn inside_addon(path: &str) -> Option<&str> {
    path.strip_prefix("res://").filter(|path| {
        path.strip_prefix(ADDON_DIR)
            .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// The `key = "value"` lines of the section headed `header`, in file order, quotes removed.
fn section<'a>(text: &'a str, header: &'a str) -> impl Iterator<Item = (String, String)> + 'a {
    let mut inside = false;
    text.lines().map(str::trim).filter_map(move |line| {
        if line.is_empty() || line.starts_with(';') {
            return None;
        }
        if line.starts_with('[') {
            inside = line == header;
            return None;
        }
        let (key, value) = line.split_once('=').filter(|_| inside)?;
        Some((
            key.trim().to_string(),
            value.trim().trim_matches('"').to_string(),
        ))
    })
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

/// The library entries of the addon's threadkit.gdextension.
pub fn read_libraries() -> Result<Vec<Library>> {
    Ok(parse_libraries(&read()?))
}

/// The icon entries of the addon's threadkit.gdextension.
pub fn read_icons() -> Result<Vec<Icon>> {
    Ok(parse_icons(&read()?))
}

fn read() -> Result<String> {
    let file = file();
    std::fs::read_to_string(&file)
        .map_err(|error| format!("cannot read {}: {error}", file.display()).into())
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

    /// The classes the addon's library registers and Godot shows: every `#[class(...)]` of
    /// rust/extension/src but the `internal` ones and those of modules only test builds compile.
    fn registered_classes() -> Vec<String> {
        let src = workspace::root().join("rust/extension/src");
        let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
        let lines: Vec<&str> = lib.lines().map(str::trim).collect();
        let test_only: Vec<String> = lines
            .windows(2)
            .filter(|pair| pair[0].starts_with("#[cfg(feature = \"test-probes\")]"))
            .filter_map(|pair| pair[1].strip_prefix("mod "))
            .map(|module| module.trim_end_matches(';').to_string())
            .collect();
        let mut classes = Vec::new();
        let mut pending = vec![src.clone()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let module = path.strip_prefix(&src).unwrap().components().next();
                let module = module.unwrap().as_os_str().to_string_lossy();
                if test_only.contains(&module.trim_end_matches(".rs").to_string()) {
                    continue;
                }
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let mut lines = text.lines().map(str::trim);
                while let Some(line) = lines.next() {
                    if !line.starts_with("#[class(") || line.contains("internal") {
                        continue;
                    }
                    let name = lines
                        .find_map(|l| l.split_once("struct ").map(|(_, rest)| rest))
                        .and_then(|rest| rest.split([' ', '{', ';', '(']).next())
                        .unwrap();
                    classes.push(name.to_string());
                }
            }
        }
        classes.sort();
        classes
    }

    /// The value of `name="..."` in the `<svg ...>` start tag of `svg`, if any.
    fn svg_attribute<'a>(svg: &'a str, name: &str) -> Option<&'a str> {
        let start = svg.find("<svg")?;
        let tag = &svg[start..start + svg[start..].find('>')?];
        let key = format!(" {name}=\"");
        let value = &tag[tag.find(&key)? + key.len()..];
        Some(&value[..value.find('"')?])
    }

    #[test]
    fn reads_the_icons_section() {
        let text = "[libraries]\nlinux.x86_64 = \"res://addons/threadkit/bin/a.so\"\n\
                    [icons]\n; a comment\nTaskHandle = \"res://addons/threadkit/icons/T.svg\"\n";
        let icons = parse_icons(text);
        assert_eq!(
            icons,
            [Icon {
                class: "TaskHandle".into(),
                path: "res://addons/threadkit/icons/T.svg".into(),
            }]
        );
        assert_eq!(
            icons[0].project_path().unwrap(),
            "addons/threadkit/icons/T.svg"
        );
        assert_eq!(parse_libraries(text).len(), 1);
    }

    #[test]
    fn finds_the_registered_classes() {
        let classes = registered_classes();
        for class in ["AsyncTaskProcessor", "TaskHandle", "ThreadSafetyTester"] {
            assert!(classes.iter().any(|c| c == class), "{classes:?}");
        }
        for hidden in ["ThreadSwitch", "ThreadKitTestProbe"] {
            assert!(!classes.iter().any(|c| c == hidden), "{classes:?}");
        }
    }

    #[test]
    fn every_registered_class_has_a_16_by_16_svg_icon() {
        let icons = read_icons().unwrap();
        let classes = registered_classes();
        let listed: Vec<&str> = icons.iter().map(|icon| icon.class.as_str()).collect();
        assert_eq!(
            listed
                .iter()
                .copied()
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            listed.len(),
            "an icon listed twice: {listed:?}"
        );
        for class in &classes {
            let icon = icons
                .iter()
                .find(|icon| &icon.class == class)
                .unwrap_or_else(|| {
                    panic!("threadkit.gdextension [icons] has no entry for {class}")
                });
            let file = workspace::root().join(icon.project_path().unwrap());
            let svg = std::fs::read_to_string(&file)
                .unwrap_or_else(|error| panic!("{class}: {}: {error}", file.display()));
            assert!(svg.trim_end().ends_with("</svg>"), "{class}: not an SVG");
            assert_eq!(svg_attribute(&svg, "viewBox"), Some("0 0 16 16"), "{class}");
            assert_eq!(svg_attribute(&svg, "width"), Some("16"), "{class}");
            assert_eq!(svg_attribute(&svg, "height"), Some("16"), "{class}");
            // Committed, as Godot's guide says of `.import` files, for the editor icon settings.
            let import = file.with_extension("svg.import");
            let import = std::fs::read_to_string(&import)
                .unwrap_or_else(|error| panic!("{class}: {}: {error}", import.display()));
            for setting in [
                "editor/scale_with_editor_scale=true",
                "editor/convert_colors_with_editor_theme=true",
            ] {
                assert!(
                    import.lines().any(|l| l == setting),
                    "{class}: no {setting}"
                );
            }
        }
        for class in listed {
            assert!(
                classes.iter().any(|c| c == class),
                "an icon for no class: {class}"
            );
        }
    }
}
