//! `cargo xtask demo`: build (release), find or provision Godot, run the demo scene. Without a
//! display (or with --headless) the scene runs every section, prints a summary and exits.
//! With --screenshot PATH it shows the demo under a virtual display with the OpenGL
//! compatibility renderer and saves a PNG of it.

use std::fs;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::build::{Profile, build_and_install};
use crate::display;
use crate::engine::{Watch, import_project, watch};
use crate::flags;
use crate::godot::Godot;
use crate::workspace::{Result, godot_project_dir};

/// The size of the virtual screen and of the demo window in a screenshot.
const SCREENSHOT_SIZE: (u32, u32) = (1280, 800);

pub fn run(options: flags::Demo) -> Result<ExitCode> {
    build_and_install(Profile::Release)?;
    let godot = Godot::locate()?;
    import_project(&godot, &godot_project_dir())?;
    if let Some(path) = &options.screenshot {
        return screenshot(&godot, path, options.tab.unwrap_or(0));
    }
    let headless = options.headless || !has_display();
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
    Ok(exit_code(&outcome))
}

fn exit_code(outcome: &crate::engine::Outcome) -> ExitCode {
    if outcome.succeeded() {
        ExitCode::SUCCESS
    } else {
        for problem in outcome.problems() {
            eprintln!("xtask demo: {problem}");
        }
        ExitCode::FAILURE
    }
}

/// Runs the demo under Xvfb until main.gd has saved the PNG (it quits by itself), then checks
/// the file.
fn screenshot(godot: &Godot, path: &Path, tab: u32) -> Result<ExitCode> {
    let path = std::path::absolute(path)?;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    // A stale file must not pass for this run's picture.
    if let Err(error) = fs::remove_file(&path)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        return Err(format!("cannot replace {}: {error}", path.display()).into());
    }
    let (width, height) = SCREENSHOT_SIZE;
    let display = display::start(width, height)?;
    let mut command = godot.command_with_libraries(
        &display.gl_library_dirs,
        [
            "--rendering-method",
            "gl_compatibility",
            "--rendering-driver",
            "opengl3",
            "--display-driver",
            "x11",
            // No sound card on a server; the demo makes no sound.
            "--audio-driver",
            "Dummy",
            "--resolution",
            &format!("{width}x{height}"),
            "--position",
            "0,0",
            "--",
        ],
    );
    command
        .arg(format!("--screenshot={}", path.display()))
        .arg(format!("--tab={tab}"))
        .env("DISPLAY", &display.name)
        .env_remove("WAYLAND_DISPLAY")
        // Xvfb has no GPU behind it: Mesa's llvmpipe renders.
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .env("GALLIUM_DRIVER", "llvmpipe");
    let outcome = watch(
        command,
        Watch {
            total: Duration::from_secs(300),
            per_test: Duration::from_secs(300),
            echo: true,
        },
    );
    drop(display);
    let outcome = outcome?;
    if !outcome.succeeded() {
        return Ok(exit_code(&outcome));
    }
    let bytes = fs::read(&path)
        .map_err(|error| format!("Godot exited but left no {}: {error}", path.display()))?;
    match png_size(&bytes) {
        Some(size) if size == SCREENSHOT_SIZE => {
            println!(
                "xtask demo: wrote {} ({width}x{height}, {} KiB)",
                path.display(),
                bytes.len() / 1024
            );
            Ok(ExitCode::SUCCESS)
        }
        Some((w, h)) => Err(format!(
            "{} is {w}x{h}, not the {width}x{height} window",
            path.display()
        )
        .into()),
        None => Err(format!("{} is not a PNG", path.display()).into()),
    }
}

/// Width and height from a PNG's header; `None` when `bytes` does not start like a PNG.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !bytes.starts_with(SIGNATURE) || bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    let number = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    Some((number(16)?, number(20)?))
}

fn has_display() -> bool {
    cfg!(any(windows, target_os = "macos"))
        || ["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_size_of_a_png() {
        let mut header = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        header.extend(1280u32.to_be_bytes());
        header.extend(800u32.to_be_bytes());
        assert_eq!(png_size(&header), Some((1280, 800)));
        assert_eq!(png_size(&header[..20]), None);
        assert_eq!(png_size(b"GIF89a"), None);
    }
}
