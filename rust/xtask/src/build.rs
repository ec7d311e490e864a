//! Building the extension and putting it where threadkit.gdextension says Godot will find it.

use std::env::consts::{ARCH, DLL_PREFIX, DLL_SUFFIX, OS};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use crate::{Result, workspace_root};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Unoptimised, with debug assertions, gdext's strict safeguards and the test probes: for
    /// tests.
    Dev,
    /// Optimised: for the demo and benchmarks.
    Release,
}

/// Builds the `threadkit` cdylib with `profile` and installs it into addons/threadkit/bin/.
pub fn build_and_install(profile: Profile) -> Result<PathBuf> {
    let started = Instant::now();
    let root = workspace_root();
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(&root)
        .args(["build", "--package", "threadkit"]);
    match profile {
        // The tests drive the Rust API through a test-only class.
        Profile::Dev => cargo.args(["--features", "test-probes"]),
        Profile::Release => cargo.arg("--release"),
    };
    let status = cargo.status()?;
    if !status.success() {
        return Err(format!("building the extension failed ({status})").into());
    }
    let dir = if profile == Profile::Release {
        "release"
    } else {
        "debug"
    };
    let built = root
        .join("target")
        .join(dir)
        .join(format!("{DLL_PREFIX}threadkit{DLL_SUFFIX}"));
    let installed = root
        .join("addons/threadkit/bin")
        .join(editor_library_name()?);
    // Copy then rename, so a Godot that still has the old library mapped keeps a valid file.
    let staging = installed.with_extension("partial");
    std::fs::copy(&built, &staging)?;
    std::fs::rename(&staging, &installed)?;
    println!(
        "xtask: built the extension ({}) in {:.1} s -> {}",
        dir,
        started.elapsed().as_secs_f64(),
        installed
            .strip_prefix(&root)
            .unwrap_or(&installed)
            .display()
    );
    Ok(installed)
}

/// The file name of the "debug" library entry in threadkit.gdextension for this platform.
///
/// Godot editor binaries, Debian's included, load the "debug" entries; so the demo and the
/// benchmarks put their optimised build there too, and release exports use the "release" entries.
fn editor_library_name() -> Result<String> {
    let arch = match ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "arm64",
        other => return Err(format!("no library entry for the {other} architecture").into()),
    };
    Ok(match OS {
        "linux" => format!("libthreadkit.linux.debug.{arch}.so"),
        "windows" => format!("threadkit.windows.debug.{arch}.dll"),
        "macos" => "libthreadkit.macos.debug.dylib".to_string(),
        other => return Err(format!("no library entry for {other}").into()),
    })
}
