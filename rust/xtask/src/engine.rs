//! Running Godot under watch: its output is echoed and scanned for engine-level failures, and a
//! run that hangs is killed after a bounded time, naming the test that was running.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::gdextension::ADDON_DIR;
use crate::godot::Godot;
use crate::workspace::{self, Result};

/// Output that fails a run whatever the exit code says.
const FAILURE_MARKERS: [&str; 3] = ["SCRIPT ERROR", "Error loading extension", "leaked at exit"];

/// How a watched Godot run ended.
pub struct Outcome {
    /// `None` when xtask killed it.
    pub status: Option<ExitStatus>,
    /// Lines that contain one of [`FAILURE_MARKERS`].
    pub failure_lines: Vec<String>,
    /// Set when the run was killed: why, and the test that was running, if any.
    pub hang: Option<String>,
    /// Every line of stdout, for callers that parse results.
    pub stdout: Vec<String>,
    /// Every line of stderr (where Godot prints errors and warnings).
    pub stderr: Vec<String>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| s.success()) && self.failure_lines.is_empty()
    }

    /// Everything that went wrong, one line each, for the final report.
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self.hang.iter().cloned().collect();
        if let Some(status) = self.status.filter(|s| !s.success()) {
            problems.push(format!("Godot exited with {status}"));
        }
        problems.extend(
            self.failure_lines
                .iter()
                .map(|l| format!("Godot printed: {l}")),
        );
        problems
    }
}

pub struct Watch {
    /// The whole run.
    pub total: Duration,
    /// One test (from its `RUN name` line until its `PASS`/`FAIL` line).
    pub per_test: Duration,
    /// Echo Godot's output as it comes (otherwise only failure lines are kept, for the report).
    pub echo: bool,
}

/// Runs `command`, echoing its output, until it exits or a limit is reached.
pub fn watch(mut command: Command, limits: Watch) -> Result<Outcome> {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let (lines_tx, lines) = mpsc::channel::<(bool, String)>();
    let readers = [
        forward_lines(child.stdout.take().expect("piped"), true, lines_tx.clone()),
        forward_lines(child.stderr.take().expect("piped"), false, lines_tx),
    ];

    let mut outcome = Outcome {
        status: None,
        failure_lines: Vec::new(),
        hang: None,
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    let mut current_test: Option<(String, Instant)> = None;
    loop {
        let now = Instant::now();
        let mut deadline = started + limits.total;
        if let Some(test_deadline) = current_test
            .as_ref()
            .and_then(|(_, since)| since.checked_add(limits.per_test))
        {
            deadline = deadline.min(test_deadline);
        }
        match lines.recv_timeout(deadline.saturating_duration_since(now)) {
            Ok((is_stdout, line)) => {
                if limits.echo && is_stdout {
                    println!("{line}");
                } else if limits.echo {
                    eprintln!("{line}");
                }
                if FAILURE_MARKERS.iter().any(|m| line.contains(m)) {
                    outcome.failure_lines.push(line.clone());
                }
                if is_stdout {
                    if let Some(name) = line.strip_prefix("RUN ") {
                        current_test = Some((name.to_string(), Instant::now()));
                    } else if line.starts_with("PASS ") || line.starts_with("FAIL ") {
                        current_test = None;
                    }
                    outcome.stdout.push(line);
                } else {
                    outcome.stderr.push(line);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                outcome.hang = Some(match &current_test {
                    Some((name, since)) => format!(
                        "killed Godot: test {name} ran for {:.0} s (limit {} s)",
                        since.elapsed().as_secs_f64(),
                        limits.per_test.as_secs()
                    ),
                    None => format!(
                        "killed Godot: the run took over {} s and was not inside a test",
                        limits.total.as_secs()
                    ),
                });
                break;
            }
        }
    }
    let status = child.wait()?;
    for reader in readers {
        let _ = reader.join();
    }
    if outcome.hang.is_none() {
        outcome.status = Some(status);
    }
    Ok(outcome)
}

fn forward_lines(
    stream: impl Read + Send + 'static,
    is_stdout: bool,
    lines: mpsc::Sender<(bool, String)>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buffer = Vec::new();
        // Lines are read as bytes: Godot may print text that is not valid UTF-8.
        while reader.read_until(b'\n', &mut buffer).unwrap_or(0) > 0 {
            let line = String::from_utf8_lossy(&buffer).trim_end().to_string();
            buffer.clear();
            if lines.send((is_stdout, line)).is_err() {
                break;
            }
        }
    })
}

/// `godot --headless --import` on the project in `project_dir`: registers the extension and
/// imports resources, once per checkout and again whenever files change; scripts run with `-s`
/// need it.
///
/// The project's extension is listed in `.godot/extension_list.cfg` first (see
/// [`list_extension`]), so that even a first import exits 0.
pub fn import_project(godot: &Godot, project_dir: &Path) -> Result<()> {
    let name = project_dir
        .strip_prefix(workspace::root())
        .unwrap_or(project_dir)
        .display();
    let started = Instant::now();
    list_extension(project_dir)?;
    let outcome = watch(
        godot.command_in(project_dir, ["--headless", "--import"]),
        Watch {
            total: Duration::from_secs(300),
            per_test: Duration::MAX,
            echo: false,
        },
    )?;
    if !outcome.succeeded() {
        return Err(format!(
            "importing {name} failed:\n  {}",
            outcome.problems().join("\n  ")
        )
        .into());
    }
    println!(
        "xtask: imported {name} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes `.godot/extension_list.cfg` naming ThreadKit's .gdextension when the project has none
/// yet (a fresh checkout), as the README's Limits tell users to.
///
/// Godot 4.5-4.6 crashes (SIGSEGV, exit 134) at the exit of a headless import whose file scan
/// discovers a GDExtension that registers classes, any such extension (a one-class gdext library
/// crashes at the same instruction): the discovery makes the editor regenerate its help, which
/// queues the extension part as a deferred call; the import quits first, frees the help, and the
/// call still runs on it (godotengine/godot#111048). An extension already listed is loaded at
/// start-up instead: the scan discovers nothing and the import exits 0.
pub fn list_extension(project_dir: &Path) -> Result<()> {
    let list = project_dir.join(".godot/extension_list.cfg");
    if list.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(project_dir.join(".godot"))?;
    std::fs::write(list, format!("res://{ADDON_DIR}/threadkit.gdextension\n"))?;
    Ok(())
}
