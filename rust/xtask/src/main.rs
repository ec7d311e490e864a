//! `cargo xtask <command>`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! - `demo`: build the extension (release), find or provision Godot, run the demo scene; with
//!   `--screenshot PATH`, save a PNG of it rendered under a virtual display.
//! - `test`: rustfmt and clippy checks, actionlint on the workflows (when installed), Rust tests,
//!   loom model tests, the in-engine GDScript tests, then the package smoke test.
//! - `package`: build (release) and zip addons/threadkit for this platform, then smoke-test the zip
//!   in a new project; with `--from DIR`, zip the libraries of every platform built elsewhere.
//! - `bench`: build (release), run the in-engine benchmarks and rust/core's, write their table.
//! - `godot [ARGS]`: run the Godot that the other commands use, in godot_project/.
//!
//! `cargo xtask --help` and `cargo xtask <command> --help` list the options (flags.rs).

mod bench;
mod build;
mod date;
mod demo;
mod display;
mod engine;
mod flags;
mod gdextension;
mod godot;
mod package;
mod prebuilt;
mod provision;
mod test;
mod workflows;
mod workspace;

use std::process::ExitCode;

use flags::{Command, Exit};

fn main() -> ExitCode {
    let command = match flags::parse(std::env::args_os().skip(1).collect()) {
        Ok(command) => command,
        Err(Exit::Help(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(Exit::Usage(message)) => {
            eprintln!("{message}");
            return ExitCode::from(Exit::USAGE_CODE);
        }
    };
    let (name, outcome) = match command {
        Command::Demo(options) => ("demo", demo::run(options)),
        Command::Test(options) => ("test", test::run(options)),
        Command::Bench(options) => ("bench", bench::run(options)),
        Command::Package(options) => ("package", package::run(options)),
        Command::Godot(args) => ("godot", godot::run_passthrough(&args)),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask {name}: error: {error}");
            ExitCode::FAILURE
        }
    }
}
