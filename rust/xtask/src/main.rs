//! `cargo xtask <command>`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! - `demo`: build the extension (release), find or provision Godot, run the demo scene; with
//!   `--screenshot PATH`, save a PNG of it rendered under a virtual display.
//! - `test`: Rust tests, loom model tests, the in-engine GDScript tests, then the package smoke
//!   test.
//! - `package`: build (release) and zip addons/threadkit for this platform, then smoke-test the zip
//!   in a new project.
//! - `bench`: build (release), run the in-engine benchmarks and rust/core's, write their table.
//! - `godot [ARGS]`: run the Godot that the other commands use, in godot_project/.

mod bench;
mod build;
mod demo;
mod display;
mod engine;
mod gdextension;
mod godot;
mod package;
mod provision;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

pub type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  demo [--headless]                   build (release), find or provision Godot, run the demo scene
  demo --screenshot PATH [--tab N]    the same, shown under a virtual display (Xvfb) with the
                                      OpenGL compatibility renderer; saves tab N (from 0, default
                                      0) as a PNG at PATH
  test [--engine-only] [--filter TEXT] Rust tests, loom model tests, in-engine GDScript tests and
                                      the package smoke test (a zip of the dev build, unzipped
                                      into a new, empty project that runs a GDScript using the
                                      addon); --filter TEXT runs the in-engine tests whose name
                                      contains TEXT, and the smoke test if TEXT is in its name,
                                      package.smoke_test
  package [--out PATH]                build (release, without debug info) and zip addons/threadkit
                                      with the library for this platform under every name that
                                      threadkit.gdextension gives it here; default PATH
                                      target/package/threadkit-VERSION-OS-ARCH.zip; print its
                                      files, then smoke-test it in a new, empty project
  bench [--quick] [--filter TEXT]     build (release), run the in-engine benchmarks (ThreadKit vs
                                      Godot's built-ins) and rust/core's (vs std); print the table, write
                                      target/bench/results.json and docs/benchmarks.md
  godot [ARGS...]                     run the Godot the other commands use, in godot_project/

Godot is taken from $GODOT, else godot4/godot on PATH, else a private copy that xtask
provisions from Debian's archive into $THREADKIT_CACHE (default ~/.cache/threadkit).
Xvfb likewise: Xvfb on PATH, else a private copy with Mesa's software GL from the same archive.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => ("", &[][..]),
    };
    let outcome = match command {
        "demo" => demo::run(rest),
        "test" => test::run(rest),
        "bench" => bench::run(rest),
        "package" => package::run(rest),
        "godot" => godot::run_passthrough(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask {command}: error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (this crate lives in rust/xtask).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

pub fn godot_project_dir() -> PathBuf {
    workspace_root().join("godot_project")
}
