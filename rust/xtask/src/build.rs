//! Building the extension and putting it where threadkit.gdextension says Godot will find it.

use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use crate::gdextension::{Platform, read_libraries};
use crate::workspace::{self, Result};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Unoptimised, with debug assertions, gdext's strict safeguards and the test probes: for
    /// tests.
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
        // The tests drive the Rust API through a test-only class.
        Profile::Dev => cargo.args([
            "build",
            "--package",
            "threadkit",
            "--features",
            "test-probes",
        ]),
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
