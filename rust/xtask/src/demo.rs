//! `cargo xtask demo`: build (release), find or provision Godot, run the demo scene. Without a
//! display (or with --headless) the scene runs every section, prints a summary and exits.

use std::process::ExitCode;
use std::time::Duration;

use crate::Result;
use crate::build::{Profile, build_and_install};
use crate::engine::{Watch, import_project, watch};
use crate::godot::Godot;

pub fn run(args: &[String]) -> Result<ExitCode> {
    let mut headless = !has_display();
    for arg in args {
        match arg.as_str() {
            "--headless" => headless = true,
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    build_and_install(Profile::Release)?;
    let godot = Godot::locate()?;
    import_project(&godot)?;
    let args: &[&str] = if headless { &["--headless"] } else { &[] };
    let outcome = watch(
        godot.command(args),
        Watch {
            // Headless the demo finishes by itself; interactive it runs until the window closes.
            total: Duration::from_secs(if headless { 600 } else { 7 * 24 * 3600 }),
            per_test: Duration::from_secs(300),
            echo: true,
        },
    )?;
    if outcome.succeeded() {
        Ok(ExitCode::SUCCESS)
    } else {
        for problem in outcome.problems() {
            eprintln!("xtask demo: {problem}");
        }
        Ok(ExitCode::FAILURE)
    }
}

fn has_display() -> bool {
    cfg!(any(windows, target_os = "macos"))
        || ["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}
