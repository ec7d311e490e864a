//! Building the extension and putting it where threadkit.gdextension says Godot will find it.

use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::gdextension::{Platform, read_libraries};
use crate::workspace::{self, Result};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Unoptimised, with debug assertions and gdext's strict safeguards: for tests (whose
    /// probes are built apart, see [`build_test_probes`]).
    Dev,
    /// Optimised, with line tables for backtraces: for the demo and benchmarks.
    Release,
    /// Optimised, without debug info (a tenth of the size): what the release package ships.
    Package,
}

impl Profile {
    fn describe(self) -> &'static str {
        match self {
            Profile::Dev => "debug",
            Profile::Release => "release",
            Profile::Package => "release, without debug info",
        }
    }
}

/// Builds the `threadkit` cdylib with `profile`; returns the library's path under target/.
pub fn build(profile: Profile) -> Result<PathBuf> {
    let started = Instant::now();
    let root = workspace::root();
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo.current_dir(&root);
    match profile {
        Profile::Dev => cargo.args(["build", "--package", "threadkit"]),
        Profile::Release => cargo.args(["build", "--package", "threadkit", "--release"]),
        // Stripping is a link option of the library alone, passed through `cargo rustc`, so the
        // dependencies built for `Release` are reused (a profile setting would rebuild them all).
        Profile::Package => cargo.args([
            "rustc",
            "--package",
            "threadkit",
            "--lib",
            "--release",
            "--",
            "-C",
            "strip=debuginfo",
        ]),
    };
    let status = cargo.status()?;
    if !status.success() {
        return Err(format!("building the extension failed ({status})").into());
    }
    let dir = if profile == Profile::Dev {
        "debug"
    } else {
        "release"
    };
    let built = root
        .join("target")
        .join(dir)
        .join(format!("{DLL_PREFIX}threadkit{DLL_SUFFIX}"));
    println!(
        "xtask: built the extension ({}) in {:.1} s",
        profile.describe(),
        started.elapsed().as_secs_f64(),
    );
    Ok(built)
}

/// Builds the `threadkit` cdylib with `profile` and installs it into addons/threadkit/bin/.
pub fn build_and_install(profile: Profile) -> Result<PathBuf> {
    let built = build(profile)?;
    let root = workspace::root();
    let installed = root.join(editor_library()?);
    // Copy then rename, so a Godot that still has the old library mapped keeps a valid file.
    let staging = installed.with_extension("partial");
    std::fs::copy(&built, &staging)?;
    std::fs::rename(&staging, &installed)?;
    println!(
        "xtask: installed it as {}",
        installed
            .strip_prefix(&root)
            .unwrap_or(&installed)
            .display()
    );
    Ok(installed)
}

/// The project path of this platform's "debug" library entry in threadkit.gdextension.
///
/// Godot editor binaries, Debian's included, load the "debug" entries; so the demo and the
/// benchmarks put their optimised build there too, and release exports use the "release" entries.
fn editor_library() -> Result<String> {
    let platform = Platform::host()?;
    let debug = platform
        .libraries(&read_libraries()?)?
        .into_iter()
        .find(|library| library.is_debug())
        .ok_or_else(|| {
            format!("threadkit.gdextension has no debug library entry for {platform}")
        })?;
    Ok(debug.project_path()?.to_string())
}

/// The name of the test-only class that the `test-probes` feature adds.
pub const PROBE_CLASS: &str = "ThreadKitTestProbe";

/// The in-engine tests' build of the library: with the `test-probes` feature (a class the tests
/// drive the Rust API with), copied to target/test-probes/ beside a .gdextension of its own,
/// which the tests load instead of the addon's. So the probes never reach addons/threadkit/bin,
/// where a user could copy them from. Returns that .gdextension's path. Build it before the
/// `Dev` build, which then leaves target/debug/ as the package smoke test expects.
pub fn build_test_probes() -> Result<PathBuf> {
    let root = workspace::root();
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&root)
        .args([
            "build",
            "--package",
            "threadkit",
            "--features",
            "test-probes",
        ])
        .status()?;
    if !status.success() {
        return Err(
            format!("building the extension with its test probes failed ({status})").into(),
        );
    }
    let dir = root.join("target").join("test-probes");
    std::fs::create_dir_all(&dir)?;
    let library = dir.join(format!("{DLL_PREFIX}threadkit_probes{DLL_SUFFIX}"));
    let built = root
        .join("target")
        .join("debug")
        .join(format!("{DLL_PREFIX}threadkit{DLL_SUFFIX}"));
    std::fs::copy(built, &library)?;
    let platform = Platform::host()?;
    let tags = platform
        .libraries(&read_libraries()?)?
        .into_iter()
        .find(|library| library.is_debug())
        .ok_or_else(|| format!("threadkit.gdextension has no debug library entry for {platform}"))?
        .tags;
    let gdextension = dir.join("threadkit_tests.gdextension");
    std::fs::write(
        &gdextension,
        format!(
            "; Written by `cargo xtask test`: the library with its test probes, for the in-engine tests.\n\
             [configuration]\nentry_symbol = \"threadkit_init\"\ncompatibility_minimum = 4.5\n\n\
             [libraries]\n{tags} = {}\n",
            config_string(&library)
        ),
    )?;
    println!("xtask: built the extension with its test probes into target/test-probes/");
    Ok(gdextension)
}

/// `path` as a quoted string of Godot's config files, whose `\` starts an escape: a Windows
/// path's separators are doubled, where they would otherwise read as `\t` and the like.
fn config_string(path: &Path) -> String {
    let text = path.display().to_string();
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Whether the library file at `path` contains the test-only probe class.
pub fn has_test_probes(path: &Path) -> Result<bool> {
    let bytes = std::fs::read(path)?;
    let name = PROBE_CLASS.as_bytes();
    Ok(bytes.windows(name.len()).any(|window| window == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_in_a_gdextension_are_escaped_config_strings() {
        assert_eq!(
            config_string(Path::new("/repo/target/test-probes/libthreadkit_probes.so")),
            r#""/repo/target/test-probes/libthreadkit_probes.so""#
        );
        assert_eq!(
            config_string(Path::new(
                r#"D:\a\threadkit\target\test-probes\say "hi".dll"#
            )),
            r#""D:\\a\\threadkit\\target\\test-probes\\say \"hi\".dll""#
        );
    }
}
