//! `cargo xtask test`: the rustfmt and clippy checks, actionlint on the workflows (skipped, and
//! said so, without actionlint), every Rust test, the loom model tests, the in-engine GDScript
//! tests, then the checks that need a Godot process of their own (quitting, hot reload) and the
//! package smoke test, closing with one line `N passed, N failed` over all of them (a skipped check
//! is in neither).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::build::{PROBE_CLASS, Profile, build_and_install, build_test_probes, has_test_probes};
use crate::engine::{Watch, import_project, watch};
use crate::flags;
use crate::gdextension::ADDON_DIR;
use crate::godot::Godot;
use crate::package;
use crate::workflows::{self, ACTIONLINT_CHECK, Verdict};
use crate::workspace::{self, Result, godot_project_dir};

/// The package smoke test's name, which `--filter` matches like an in-engine test's.
const PACKAGE_SMOKE_TEST: &str = "package.smoke_test";
/// The fresh-import check's name, matched by `--filter` the same way.
const FRESH_IMPORTS_TEST: &str = "package.fresh_imports";

#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
    problems: Vec<String>,
    /// Checks not run, each with why: repeated before the summary.
    skipped: Vec<String>,
}

impl Tally {
    fn fail(&mut self, problem: String) {
        self.failed += 1;
        self.problems.push(problem);
    }
}

pub fn run(options: flags::Test) -> Result<ExitCode> {
    let flags::Test {
        engine_only,
        filter,
    } = options;
    let started = Instant::now();
    let mut tally = Tally::default();
    if !engine_only {
        for check in CARGO_CHECKS {
            cargo_check(&check, &mut tally);
        }
        actionlint_check(&mut tally);
        cargo_tests("Rust tests", &["test", "--workspace"], &[], &mut tally)?;
        let loom_target = workspace::root().join("target/loom");
        let rustflags = format!(
            "{} --cfg loom",
            std::env::var("RUSTFLAGS").unwrap_or_default()
        );
        let loom_target = loom_target.to_string_lossy();
        let loom_env = [
            ("RUSTFLAGS", rustflags.trim()),
            ("CARGO_TARGET_DIR", &*loom_target),
            ("LOOM_MAX_PREEMPTIONS", "3"),
        ];
        cargo_tests(
            "loom model tests",
            &[
                "test",
                "--package",
                "threadkit-core",
                "--test",
                "loom",
                "--test",
                "loom_dispatch",
                "--test",
                "loom_shared",
                "--test",
                "loom_pool",
                "--release",
            ],
            &loom_env,
            &mut tally,
        )?;
        cargo_tests(
            "loom model tests of the instance cell",
            &[
                "test",
                "--package",
                "godot-cell",
                "--test",
                "loom",
                "--release",
            ],
            &loom_env,
            &mut tally,
        )?;
    }
    engine_tests(filter.as_deref(), &mut tally)?;
    if filter
        .as_deref()
        .is_none_or(|filter| PACKAGE_SMOKE_TEST.contains(filter))
    {
        package_smoke_test(&mut tally);
    }
    if filter
        .as_deref()
        .is_none_or(|filter| FRESH_IMPORTS_TEST.contains(filter))
    {
        fresh_imports_test(&mut tally);
    }

    println!(
        "\nxtask test finished in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    for skipped in &tally.skipped {
        println!("SKIPPED: {skipped}");
    }
    for problem in &tally.problems {
        println!("FAILED: {problem}");
    }
    println!("{} passed, {} failed", tally.passed, tally.failed);
    Ok(if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A whole-workspace cargo command that passes or fails as one check, like a process check.
struct CargoCheck {
    name: &'static str,
    args: &'static [&'static str],
}

const CARGO_CHECKS: [CargoCheck; 2] = [
    CargoCheck {
        name: "cargo.fmt",
        args: &["fmt", "--all", "--", "--check"],
    },
    CargoCheck {
        name: "cargo.clippy",
        args: &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    },
];

/// Runs `check`, echoing it: one test, `PASS name` when cargo exits 0, else `FAIL name: ...`.
fn cargo_check(check: &CargoCheck, tally: &mut Tally) {
    let command = format!("cargo {}", check.args.join(" "));
    println!("\nxtask: {}: {command}", check.name);
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(workspace::root())
        .args(check.args)
        .status();
    match status {
        Ok(status) if status.success() => {
            println!("PASS {}", check.name);
            tally.passed += 1;
        }
        outcome => {
            let why = match outcome {
                Ok(status) => format!("`{command}` exited with {status} (see its output above)"),
                Err(error) => format!("cannot run `{command}`: {error}"),
            };
            println!("FAIL {}: {why}", check.name);
            tally.fail(format!("{}: {why}", check.name));
        }
    }
}

/// actionlint on .github/workflows/: `PASS`, `FAIL` with its output, or, when no `actionlint` is
/// on PATH, `SKIP` (neither passed nor failed).
fn actionlint_check(tally: &mut Tally) {
    println!("\nxtask: {ACTIONLINT_CHECK}: actionlint on .github/workflows/");
    let verdict = match workflows::files() {
        Ok(files) => workflows::actionlint(which::which("actionlint").ok().as_deref(), &files),
        Err(error) => Verdict::Fail(error.to_string()),
    };
    match verdict {
        Verdict::Pass => {
            println!("PASS {ACTIONLINT_CHECK}");
            tally.passed += 1;
        }
        Verdict::Fail(why) => {
            println!("FAIL {ACTIONLINT_CHECK}: {why}");
            tally.fail(format!("{ACTIONLINT_CHECK}: {why}"));
        }
        Verdict::Skip(why) => {
            println!("SKIP {ACTIONLINT_CHECK}: {why}");
            tally.skipped.push(format!("{ACTIONLINT_CHECK}: {why}"));
        }
    }
}

/// Runs a cargo test command, echoing it and adding up its `test result:` lines.
fn cargo_tests(stage: &str, args: &[&str], env: &[(&str, &str)], tally: &mut Tally) -> Result<()> {
    println!("\nxtask: {stage}: cargo {}", args.join(" "));
    let mut child = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(workspace::root())
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()?;
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        println!("{line}");
        if let Some((p, f)) = parse_cargo_result(&line) {
            passed += p;
            failed += f;
        }
    }
    let status = child.wait()?;
    tally.passed += passed;
    tally.failed += failed;
    if failed > 0 {
        tally.problems.push(format!("{stage}: {failed} failed"));
    } else if !status.success() {
        tally.fail(format!(
            "{stage}: cargo exited with {status} (did it build?)"
        ));
    }
    Ok(())
}

/// `test result: ok. 10 passed; 0 failed; ...` -> (10, 0)
fn parse_cargo_result(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("test result: ")?;
    let count = |word: &str| {
        rest.split(';').find_map(|part| {
            part.trim()
                .strip_suffix(word)?
                .trim()
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
    };
    Some((count(" passed")?, count(" failed")?))
}

/// `N passed, N failed` from the GDScript runner.
fn parse_summary(line: &str) -> Option<(u64, u64)> {
    let (passed, failed) = line.trim().split_once(", ")?;
    Some((
        passed.strip_suffix(" passed")?.parse().ok()?,
        failed.strip_suffix(" failed")?.parse().ok()?,
    ))
}

fn engine_tests(filter: Option<&str>, tally: &mut Tally) -> Result<()> {
    println!("\nxtask: in-engine tests");
    // The probes first: the `Dev` build after them is the one the package smoke test reuses.
    let setup = build_test_probes().and_then(|probes| {
        let installed = build_and_install(Profile::Dev)?;
        let godot = Godot::locate()?;
        import_project(&godot, &godot_project_dir())?;
        Ok((godot, probes, installed))
    });
    let (godot, probes, installed) = match setup {
        Ok(setup) => setup,
        Err(error) => {
            tally.fail(format!("in-engine tests could not start: {error}"));
            return Ok(());
        }
    };
    let mut args = vec![
        "--headless".to_string(),
        "-s".into(),
        "res://tests/run_tests.gd".into(),
    ];
    if let Some(filter) = filter {
        args.extend(["--".into(), format!("--filter={filter}")]);
    }
    // The run loads the test build (see `build_test_probes`) in place of the addon's: the list
    // of extensions Godot loads at start, which the import above wrote, names it until the run
    // ends.
    let list = godot_project_dir()
        .join(".godot")
        .join("extension_list.cfg");
    let addon_list = std::fs::read_to_string(&list)?;
    std::fs::write(&list, format!("{}\n", probes.display()))?;
    let run = watch(
        godot.command(&args),
        Watch {
            total: Duration::from_secs(600),
            per_test: Duration::from_secs(120),
            echo: true,
        },
    );
    std::fs::write(&list, addon_list)?;
    let mut outcome = run?;
    no_probes_in_addon(&installed, &probes, tally)?;
    // The runner's Logger sees every script error and fails the test that raised it unless the
    // test expected it (tests of script-error handling raise them on purpose), and fails the run
    // for one raised between tests: its verdict replaces this scan's.
    outcome
        .failure_lines
        .retain(|line| !line.contains("SCRIPT ERROR"));
    match outcome.stdout.iter().rev().find_map(|l| parse_summary(l)) {
        Some((passed, failed)) => {
            tally.passed += passed;
            tally.failed += failed;
            if failed > 0 {
                tally
                    .problems
                    .push(format!("in-engine tests: {failed} failed (see FAIL lines)"));
            }
        }
        None => tally.fail("in-engine tests: the runner did not print its summary".into()),
    }
    // The run as a whole is one more check: clean exit, no engine-level error, no hang.
    if outcome.succeeded() {
        tally.passed += 1;
    } else {
        tally.fail(format!("in-engine run: {}", outcome.problems().join("; ")));
    }
    for check in PROCESS_CHECKS {
        if filter.is_none_or(|filter| check.name.contains(filter)) {
            process_check(&godot, &check, tally)?;
        }
    }
    Ok(())
}

/// The library installed into addons/threadkit/bin (what a user copies) has no test probe, and
/// the test build has them (so this check can see them): one check.
fn no_probes_in_addon(installed: &Path, probes: &Path, tally: &mut Tally) -> Result<()> {
    let test_library = std::fs::read_to_string(probes)?
        .lines()
        .rev()
        .find_map(|line| line.split('"').nth(1).map(PathBuf::from))
        .ok_or("the test build's .gdextension names no library")?;
    match (has_test_probes(installed)?, has_test_probes(&test_library)?) {
        (false, true) => {
            println!("PASS addon.has_no_test_probes");
            tally.passed += 1;
        }
        (true, _) => tally.fail(format!(
            "addon.has_no_test_probes: {} contains {PROBE_CLASS}",
            installed.display()
        )),
        (false, false) => tally.fail(format!(
            "addon.has_no_test_probes: the test build {} lacks {PROBE_CLASS}, so the check sees nothing",
            test_library.display()
        )),
    }
    Ok(())
}

/// A check that needs a Godot process of its own: `godot_project/tests/process/<name>.gd`, run
/// with `-s`, prints `PASS <name>` once its own checks held; the check also needs Godot to exit
/// 0 within a minute with no crash and no failure marker.
struct ProcessCheck {
    name: &'static str,
    /// Run in the editor (`--editor`), the only place where Godot reloads extensions. The editor
    /// quitting from a script leaks editor objects at exit, so there "leaked at exit" is not
    /// looked for.
    editor: bool,
    /// Text that Godot's output must contain (a warning the check provokes).
    expect: &'static [&'static str],
}

const PROCESS_CHECKS: [ProcessCheck; 4] = [
    ProcessCheck {
        name: "quit_with_busy_workers",
        editor: false,
        expect: &[],
    },
    ProcessCheck {
        name: "quit_with_a_blind_task",
        editor: false,
        // The warning names the task by its id and method.
        expect: &["still waiting for 1 task(s)", "task 1: blind_work"],
    },
    ProcessCheck {
        name: "quit_with_blocked_waits",
        editor: false,
        expect: &[],
    },
    ProcessCheck {
        name: "hot_reload",
        editor: true,
        expect: &[],
    },
];

fn process_check(godot: &Godot, check: &ProcessCheck, tally: &mut Tally) -> Result<()> {
    let script = format!("res://tests/process/{}.gd", check.name);
    let mut args = vec!["--headless"];
    if check.editor {
        args.push("--editor");
    }
    args.extend(["-s", &script]);
    println!("\nxtask: process check: godot {}", args.join(" "));
    let outcome = watch(
        godot.command(&args),
        Watch {
            total: Duration::from_secs(60),
            per_test: Duration::MAX,
            echo: false,
        },
    )?;
    let pass = format!("PASS {}", check.name);
    let mut problems: Vec<String> = outcome.hang.iter().cloned().collect();
    if let Some(status) = outcome.status.filter(|status| !status.success()) {
        problems.push(format!("Godot exited with {status}"));
    }
    problems.extend(
        outcome
            .failure_lines
            .iter()
            .filter(|line| !(check.editor && line.contains("leaked at exit")))
            .map(|line| format!("Godot printed: {line}")),
    );
    for expected in check.expect {
        let mut lines = outcome.stdout.iter().chain(&outcome.stderr);
        if !lines.any(|line| line.contains(expected)) {
            problems.push(format!("Godot did not print \"{expected}\""));
        }
    }
    match outcome.stdout.iter().find(|line| line.contains(check.name)) {
        Some(line) if line.starts_with(&pass) => println!("{line}"),
        Some(line) => problems.push(line.clone()),
        None => problems.push(format!("it did not print {pass}")),
    }
    if problems.is_empty() {
        tally.passed += 1;
    } else {
        println!("FAIL {}: {}", check.name, problems.join("; "));
        tally.fail(format!("{}: {}", check.name, problems.join("; ")));
    }
    Ok(())
}

/// Packages the dev build and runs the package smoke test on it: one check.
///
/// The dev build, not the release one that `cargo xtask package` ships (and smoke-tests too): it
/// is the build the in-engine tests just made, so this costs no compilation, where an optimised
/// build of the extension and gdext takes minutes. The package layout, the .gdextension entries
/// and the loading in a new project, which this test is about, are the same for both; the dev
/// build adds gdext's strict safeguards and the test-only probe class, which the smoke test does
/// not use.
fn package_smoke_test(tally: &mut Tally) {
    println!("\nxtask: {PACKAGE_SMOKE_TEST}: the package (dev build) in a new, empty project");
    let started = Instant::now();
    let result = Godot::locate().and_then(|godot| {
        let zip = package::create(Profile::Dev, &package::default_zip(Profile::Dev)?)?.zip;
        package::smoke_test(&godot, &zip)
    });
    match result {
        Ok(()) => {
            println!(
                "PASS {PACKAGE_SMOKE_TEST} (packaged and tested in {:.0} s)",
                started.elapsed().as_secs_f64()
            );
            tally.passed += 1;
        }
        Err(error) => {
            println!("FAIL {PACKAGE_SMOKE_TEST}: {error}");
            tally.fail(format!("{PACKAGE_SMOKE_TEST}: {error}"));
        }
    }
}

/// Copies the package's addon (as the smoke test unzipped it) into a brand-new project and
/// imports it from scratch 5 times, a fresh `.godot` each time prepared as the README's Limits
/// say (see [`crate::engine::list_extension`]); every import must exit 0. Prints the exit codes.
fn fresh_imports_test(tally: &mut Tally) {
    const IMPORTS: usize = 5;
    println!("\nxtask: {FRESH_IMPORTS_TEST}: {IMPORTS} first imports of the package's addon");
    let project =
        std::env::temp_dir().join(format!("threadkit-fresh-import-{}", std::process::id()));
    let result = Godot::locate().and_then(|godot| {
        let addon = workspace::root()
            .join("target/package/smoke")
            .join(ADDON_DIR);
        if !addon.join("threadkit.gdextension").exists() {
            return Err(format!(
                "{} is missing: run the package smoke test first",
                addon.display()
            )
            .into());
        }
        let mut codes = Vec::new();
        for _ in 0..IMPORTS {
            if project.exists() {
                std::fs::remove_dir_all(&project)?;
            }
            copy_dir(&addon, &project.join(ADDON_DIR))?;
            std::fs::write(
                project.join("project.godot"),
                "config_version=5\n\n[application]\n\nconfig/name=\"ThreadKit fresh import\"\n",
            )?;
            crate::engine::list_extension(&project)?;
            let status = godot
                .command_in(&project, ["--headless", "--import"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            codes.push(
                status
                    .code()
                    .map_or_else(|| format!("{status}"), |code| code.to_string()),
            );
        }
        println!(
            "xtask: {FRESH_IMPORTS_TEST}: exit codes {}",
            codes.join(" ")
        );
        if codes.iter().all(|code| code == "0") {
            Ok(())
        } else {
            Err(format!(
                "a first import did not exit 0 (exit codes {})",
                codes.join(" ")
            )
            .into())
        }
    });
    if project.exists() {
        let _ = std::fs::remove_dir_all(&project);
    }
    match result {
        Ok(()) => {
            println!("PASS {FRESH_IMPORTS_TEST}");
            tally.passed += 1;
        }
        Err(error) => {
            println!("FAIL {FRESH_IMPORTS_TEST}: {error}");
            tally.fail(format!("{FRESH_IMPORTS_TEST}: {error}"));
        }
    }
}

/// Copies the directory `from` to `to`, recursively.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cargo_result_lines() {
        let ok = "test result: ok. 10 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.02s";
        assert_eq!(parse_cargo_result(ok), Some((10, 0)));
        let bad = "test result: FAILED. 9 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(parse_cargo_result(bad), Some((9, 1)));
        assert_eq!(parse_cargo_result("running 3 tests"), None);
    }

    #[test]
    fn parses_runner_summary() {
        assert_eq!(parse_summary("12 passed, 0 failed"), Some((12, 0)));
        assert_eq!(parse_summary("PASS counter.x"), None);
    }
}
