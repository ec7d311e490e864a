//! `cargo xtask bench`: build (release), find or provision Godot, run the in-engine benchmarks
//! (godot_project/bench/run_bench.gd), then rust/core's own (rust/core/benches/core.rs, through
//! `cargo bench`), then print one table of both and write it to target/bench/results.json and
//! docs/benchmarks.md.
//!
//! Both runners print one line per row:
//! `BENCH name=N unit=U threadkit=X builtin=Y metric=M value=V target=T extra=free text`.
//! Values hold no spaces, `n/a` stands for a missing one, and `extra` runs to the end of the line,
//! so the line splits on spaces without a JSON parser. Targets are judged here, not in GDScript.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use serde_json::{Value, json};

use crate::build::{Profile, build_and_install};
use crate::date::UtcTime;
use crate::engine::{Outcome, Watch, import_project, watch};
use crate::flags;
use crate::godot::Godot;
use crate::workspace::{self, Result, godot_project_dir};

/// How the rows of rust/core/benches/core.rs begin.
const CORE_PREFIX: &str = "core_";

/// One workload's line, as printed by run_bench.gd or the core bench.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    name: String,
    unit: String,
    threadkit: Option<f64>,
    builtin: Option<f64>,
    metric: String,
    value: Option<f64>,
    target: String,
    extra: String,
}

impl Row {
    /// Whether `value` meets `target`: `None` when there is no target (or no value).
    fn meets_target(&self) -> Option<bool> {
        let value = self.value?;
        let (op, bound) = ["<=", ">=", "<", ">"]
            .iter()
            .find_map(|op| Some((*op, self.target.strip_prefix(op)?.parse::<f64>().ok()?)))?;
        Some(match op {
            "<=" => value <= bound,
            ">=" => value >= bound,
            "<" => value < bound,
            _ => value > bound,
        })
    }

    fn verdict(&self) -> &'static str {
        match self.meets_target() {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "-",
        }
    }
}

/// Parses `BENCH key=value ... extra=text`; `None` for any other line.
fn parse_bench_line(line: &str) -> Option<Result<Row, String>> {
    let rest = line.strip_prefix("BENCH ")?;
    let (fields, extra) = match rest.split_once(" extra=") {
        Some((fields, extra)) => (fields, extra.trim().to_string()),
        None => (rest, String::new()),
    };
    let mut row = Row {
        name: String::new(),
        unit: String::new(),
        threadkit: None,
        builtin: None,
        metric: String::new(),
        value: None,
        target: String::new(),
        extra,
    };
    for field in fields.split_whitespace() {
        let Some((key, value)) = field.split_once('=') else {
            return Some(Err(format!("field without '=': {field}")));
        };
        let text = if value == "n/a" { "" } else { value };
        let number = match text {
            "" => None,
            _ => match text.parse::<f64>() {
                Ok(n) if n.is_finite() => Some(n),
                _ if matches!(key, "threadkit" | "builtin" | "value") => {
                    return Some(Err(format!("{key}={value} is not a number")));
                }
                _ => None,
            },
        };
        match key {
            "name" => row.name = text.to_string(),
            "unit" => row.unit = text.to_string(),
            "metric" => row.metric = text.to_string(),
            "target" => row.target = text.to_string(),
            "threadkit" => row.threadkit = number,
            "builtin" => row.builtin = number,
            "value" => row.value = number,
            _ => return Some(Err(format!("unknown field {key}"))),
        }
    }
    if row.name.is_empty() {
        return Some(Err("no name".into()));
    }
    Some(Ok(row))
}

/// What the report says about where and how it ran.
struct Context {
    command: String,
    date: String,
    cpu: String,
    cores: usize,
    load_average: String,
    godot: String,
}

pub fn run(options: flags::Bench) -> Result<ExitCode> {
    let flags::Bench { quick, filter } = options;
    let mut command = "cargo xtask bench".to_string();
    if quick {
        command.push_str(" --quick");
    }
    if let Some(filter) = &filter {
        command.push_str(&format!(" --filter {filter}"));
    }

    build_and_install(Profile::Release)?;
    let godot = Godot::locate()?;
    import_project(&godot, &godot_project_dir())?;
    // Read before the run, so the report shows how busy the machine already was.
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());

    let mut godot_args = vec![
        "--headless".to_string(),
        "-s".into(),
        "res://bench/run_bench.gd".into(),
        "--".into(),
    ];
    if let Some(filter) = &filter {
        godot_args.push(format!("--filter={filter}"));
    }
    if quick {
        godot_args.push("--quick".into());
    }
    println!("xtask: running the benchmarks ({command})");
    let outcome = watch(
        godot.command(&godot_args),
        Watch {
            // A full run takes about a minute; these only stop a hang within the 10 minutes.
            total: Duration::from_secs(480),
            per_test: Duration::from_secs(240),
            echo: true,
        },
    )?;

    let mut problems = outcome.problems();
    let (mut rows, failures) = read_results(&outcome.stdout);
    problems.extend(failures);

    println!("xtask: running the core benchmarks");
    let core = watch(
        core_bench_command(quick, filter.as_deref()),
        Watch {
            // Under a minute with the build; these only stop a hang.
            total: Duration::from_secs(240),
            per_test: Duration::from_secs(120),
            echo: true,
        },
    )?;
    problems.extend(cargo_problems(&core));
    let (core_rows, failures) = read_results(&core.stdout);
    rows.extend(core_rows);
    problems.extend(failures);

    problems.extend(nothing_ran(&rows, &problems, filter.as_deref()));
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("xtask bench: {problem}");
        }
        eprintln!(
            "xtask bench: failed; docs/benchmarks.md and results.json were left as they were"
        );
        return Ok(ExitCode::FAILURE);
    }

    let context = Context {
        command,
        date: UtcTime::now().to_string(),
        cpu: cpu_model(),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average,
        godot: godot_version(&godot),
    };
    println!("\n{}", text_table(&rows));
    let root = workspace::root();
    let json = root.join("target/bench/results.json");
    write_file(&json, &results_json(&context, &rows))?;
    let markdown = root.join("docs/benchmarks.md");
    write_file(&markdown, &markdown_report(&context, &rows))?;
    println!("xtask: wrote {} and {}", rel(&json), rel(&markdown));
    let missed: Vec<&str> = rows
        .iter()
        .filter(|r| r.meets_target() == Some(false))
        .map(|r| r.name.as_str())
        .collect();
    if !missed.is_empty() {
        // Reported, not failed: a target is a goal for the design, and this machine may be busy.
        println!("xtask: targets missed: {}", missed.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// The rows and the failures in a runner's output (run_bench.gd's or the core bench's).
fn read_results(stdout: &[String]) -> (Vec<Row>, Vec<String>) {
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for line in stdout {
        if line.starts_with("FAIL ") {
            problems.push(line.clone()); // A workload whose results were wrong.
        }
        match parse_bench_line(line) {
            Some(Ok(row)) => rows.push(row),
            Some(Err(error)) => problems.push(format!("unreadable line ({error}): {line}")),
            None => {}
        }
    }
    (rows, problems)
}

/// Why a run that went well otherwise has nothing to report: a filter that matched no row of
/// either runner, or runners that printed nothing.
fn nothing_ran(rows: &[Row], problems: &[String], filter: Option<&str>) -> Option<String> {
    if !rows.is_empty() || !problems.is_empty() {
        return None;
    }
    Some(match filter {
        Some(filter) => format!("no workload's name contains '{filter}'"),
        None => "the runners printed no BENCH line".into(),
    })
}

/// The arguments of `cargo bench` for rust/core's benchmarks (release, the `bench` profile).
fn core_bench_args(quick: bool, filter: Option<&str>) -> Vec<String> {
    let mut args: Vec<String> = [
        "bench",
        "--package",
        "threadkit-core",
        "--bench",
        "core",
        "--",
    ]
    .map(String::from)
    .into();
    if quick {
        args.push("--quick".into());
    }
    if let Some(filter) = filter {
        args.push(format!("--filter={filter}"));
    }
    args
}

fn core_bench_command(quick: bool, filter: Option<&str>) -> Command {
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(workspace::root())
        .args(core_bench_args(quick, filter));
    cargo
}

/// What went wrong with the `cargo bench` run itself, in its own words (`Outcome::problems`
/// speaks of Godot).
fn cargo_problems(outcome: &Outcome) -> Vec<String> {
    let mut problems: Vec<String> = outcome
        .hang
        .iter()
        .map(|hang| {
            let why = hang.strip_prefix("killed Godot: ").unwrap_or(hang);
            format!("killed cargo bench (core benchmarks): {why}")
        })
        .collect();
    if let Some(status) = outcome.status.filter(|s| !s.success()) {
        problems.push(format!(
            "cargo bench (core benchmarks) exited with {status}"
        ));
    }
    problems
}

fn rel(path: &Path) -> String {
    let root = workspace::root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)?;
    Ok(())
}

fn number(value: Option<f64>) -> String {
    match value {
        None => "n/a".into(),
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
    }
}

/// The table's cells, header first: the same for the terminal and the markdown.
fn cells(rows: &[Row]) -> Vec<[String; 7]> {
    let mut table = vec![
        [
            "workload",
            "unit",
            "ThreadKit",
            "built-in",
            "result",
            "target",
            "verdict",
        ]
        .map(String::from),
    ];
    for row in rows {
        let result = match (row.metric.as_str(), row.value) {
            (_, None) => "n/a".to_string(),
            ("", Some(value)) => number(Some(value)),
            (metric, Some(value)) => {
                format!("{} {}", metric.replace('_', " "), number(Some(value)))
            }
        };
        table.push([
            row.name.clone(),
            row.unit.clone(),
            number(row.threadkit),
            number(row.builtin),
            result,
            if row.target.is_empty() {
                "-".into()
            } else {
                row.target.clone()
            },
            row.verdict().into(),
        ]);
    }
    table
}

fn text_table(rows: &[Row]) -> String {
    let table = cells(rows);
    let widths: Vec<usize> = (0..7)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, cells) in table.iter().enumerate() {
        let line: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            // Names left-aligned, numbers right-aligned.
            .map(|(c, (cell, &w))| {
                if c < 2 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
        if i == 0 {
            let _ = writeln!(out, "{}", "-".repeat(widths.iter().sum::<usize>() + 2 * 6));
        }
    }
    for row in rows {
        let _ = writeln!(out, "{}: {}", row.name, row.extra);
    }
    out
}

fn markdown_report(context: &Context, rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "The last run of `{}`, written by it. Each workload runs ThreadKit and the Godot built-in it \
         replaces in the same process, alternating, over several rounds; the numbers are medians. \
         A ratio is ThreadKit / built-in (below 1: ThreadKit is faster); the verdict compares the \
         result with the issue's target, and a missed target is reported, not failed (wrong results \
         fail the run). Timings on a shared or busy machine are noisy: compare ratios from one run \
         rather than absolute numbers across runs.\n",
        context.command
    );
    if rows.iter().any(|row| row.name.starts_with(CORE_PREFIX)) {
        let _ = writeln!(
            out,
            "The `core_` rows time rust/core itself, without Godot (`cargo bench -p threadkit-core \
         --bench core`, run by the same command; optimised), against what a Rust program would \
         use instead: `std::sync::mpsc` or a `Mutex<VecDeque>`, in the built-in column. The issue \
         sets no target for them.\n"
        );
    }
    let _ = writeln!(out, "- Date: {}", context.date);
    let _ = writeln!(
        out,
        "- Machine: {}, {} cores (load average before the run: {})",
        context.cpu, context.cores, context.load_average
    );
    let _ = writeln!(out, "- Godot: {} (headless)", context.godot);
    let _ = writeln!(out, "- ThreadKit: release build");
    let _ = writeln!(out, "- Reproduce: `{}`\n", context.command);
    for (i, cells) in cells(rows).iter().enumerate() {
        let _ = writeln!(out, "| {} |", cells.join(" | "));
        if i == 0 {
            let _ = writeln!(out, "|{}", "---|".repeat(7));
        }
    }
    let _ = writeln!(out, "\nWhat each line measured:\n");
    for row in rows {
        let _ = writeln!(out, "- **{}**: {}", row.name, row.extra);
    }
    out
}

/// target/bench/results.json: the context and every row, with `null` for a missing value.
fn results_json(context: &Context, rows: &[Row]) -> String {
    fn text(value: &str) -> Option<&str> {
        (!value.is_empty()).then_some(value)
    }
    let workloads: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "name": row.name,
                "unit": text(&row.unit),
                "threadkit": row.threadkit,
                "builtin": row.builtin,
                "metric": text(&row.metric),
                "value": row.value,
                "target": text(&row.target),
                "target_met": row.meets_target(),
                "notes": row.extra,
            })
        })
        .collect();
    let report = json!({
        "command": context.command,
        "date": context.date,
        "machine": {
            "cpu": context.cpu,
            "cores": context.cores,
            "load_average": context.load_average,
        },
        "godot": context.godot,
        "workloads": workloads,
    });
    let mut out = serde_json::to_string_pretty(&report).expect("a JSON value always serializes");
    out.push('\n');
    out
}

/// The CPU's model name from /proc/cpuinfo (Linux), or "unknown CPU".
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(key, _)| key.trim() == "model name")
                .map(|(_, value)| value.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The whole `godot --version` line (e.g. `4.6.3.stable.debian4.6.3+ds-3`), else the parsed one.
fn godot_version(godot: &Godot) -> String {
    std::process::Command::new(&godot.program)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find(|l| crate::godot::Version::parse(l).is_some())
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| godot.version.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: &str) -> Row {
        parse_bench_line(line).unwrap().unwrap()
    }

    #[test]
    fn parses_bench_lines() {
        let r = row(
            "BENCH name=counter unit=ns/increment threadkit=60.5 builtin=120 metric=ratio \
             value=0.50 target=<=0.5 extra=2 threads x 10 increments; exact",
        );
        assert_eq!(r.name, "counter");
        assert_eq!(r.unit, "ns/increment");
        assert_eq!(
            (r.threadkit, r.builtin, r.value),
            (Some(60.5), Some(120.0), Some(0.5))
        );
        assert_eq!(r.target, "<=0.5");
        assert_eq!(r.extra, "2 threads x 10 increments; exact");
        assert_eq!(r.meets_target(), Some(true));

        let floor = row(
            "BENCH name=floor unit=ns/call threadkit=n/a builtin=50 metric=n/a value=n/a target=n/a extra=x",
        );
        assert_eq!((floor.threadkit, floor.value), (None, None));
        assert_eq!(floor.meets_target(), None);
        assert_eq!(floor.verdict(), "-");

        assert!(parse_bench_line("RUN counter").is_none());
        assert!(
            parse_bench_line("BENCH name=x value=fast")
                .unwrap()
                .is_err()
        );
        assert!(
            parse_bench_line("BENCH name=x colour=red")
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn judges_targets() {
        let mut r =
            row("BENCH name=s unit=x threadkit=1 builtin=1 metric=speedup value=1.79 target=>=1.8");
        assert_eq!(r.meets_target(), Some(false));
        r.value = Some(1.8);
        assert_eq!(r.meets_target(), Some(true));
        r.target = "<1".into();
        assert_eq!(r.meets_target(), Some(false));
        r.value = Some(0.99);
        assert_eq!(r.meets_target(), Some(true));
        r.target = "fast".into();
        assert_eq!(r.meets_target(), None);
    }

    #[test]
    fn reads_rows_and_failures_from_a_runners_output() {
        let output = [
            "RUN core_queue_spsc",
            "BENCH name=core_queue_spsc_vs_std_mpsc unit=ns/item threadkit=60.7 builtin=29.9 \
             metric=ratio value=2.03 target=n/a extra=1 producer thread; values checked",
            "RUN core_blocking_call",
            "FAIL core_blocking_call: call 17: timed out",
            "BENCH name=broken value=fast",
            "core bench: 2 workloads, 1 failed, in 0.4 s",
        ]
        .map(String::from);
        let (rows, problems) = read_results(&output);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].name, "core_queue_spsc_vs_std_mpsc");
        assert_eq!((rows[0].value, rows[0].target.as_str()), (Some(2.03), ""));
        assert_eq!(rows[0].verdict(), "-");
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0], "FAIL core_blocking_call: call 17: timed out");
        assert!(problems[1].starts_with("unreadable line (value=fast is not a number)"));
    }

    #[test]
    fn reads_every_row_of_a_workload_with_several() {
        // run_bench.gd prints one line per row, named `<workload>_<suffix>`.
        let output = [
            "RUN per_call",
            "BENCH name=per_call_increment_1 unit=ns/call threadkit=20 builtin=40 metric=ratio \
             value=0.50 target=<=1.0 extra=1 thread x 10 calls",
            "BENCH name=per_call_increment_2 unit=ns/call threadkit=30 builtin=50 metric=ratio \
             value=0.60 target=<=0.5 extra=2 threads x 10 calls",
            "BENCH name=per_call_try_pop_2 unit=ns/call threadkit=9 builtin=10 metric=ratio \
             value=0.90 target=n/a extra=x",
        ]
        .map(String::from);
        let (rows, problems) = read_results(&output);
        assert!(problems.is_empty());
        let judged: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.verdict()))
            .collect();
        assert_eq!(
            judged,
            [
                ("per_call_increment_1", "met"),
                ("per_call_increment_2", "MISSED"),
                ("per_call_try_pop_2", "-"),
            ]
        );
    }

    #[test]
    fn a_filter_may_match_rows_of_either_runner_only() {
        let core_only = [row(
            "BENCH name=core_blocking_call unit=ns threadkit=1 builtin=2",
        )];
        assert_eq!(nothing_ran(&core_only, &[], Some("core")), None);
        let godot_only = [row("BENCH name=dispatch unit=ns threadkit=1 builtin=2")];
        assert_eq!(nothing_ran(&godot_only, &[], Some("dispatch")), None);
        assert_eq!(
            nothing_ran(&[], &[], Some("nothing")).as_deref(),
            Some("no workload's name contains 'nothing'")
        );
        assert!(nothing_ran(&[], &[], None).is_some());
        // A failure already explains the missing rows.
        assert_eq!(nothing_ran(&[], &["FAIL x: y".into()], Some("x")), None);
    }

    #[test]
    fn passes_quick_and_the_filter_to_the_core_bench() {
        let base = [
            "bench",
            "--package",
            "threadkit-core",
            "--bench",
            "core",
            "--",
        ];
        assert_eq!(core_bench_args(false, None), base);
        let mut both = base.map(String::from).to_vec();
        both.extend(["--quick".into(), "--filter=core_queue".into()]);
        assert_eq!(core_bench_args(true, Some("core_queue")), both);
    }

    #[cfg(unix)]
    #[test]
    fn names_cargo_bench_in_its_problems() {
        use std::os::unix::process::ExitStatusExt;
        let mut outcome = Outcome {
            status: Some(std::process::ExitStatus::from_raw(0)),
            failure_lines: Vec::new(),
            hang: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        assert!(cargo_problems(&outcome).is_empty());
        outcome.status = Some(std::process::ExitStatus::from_raw(1 << 8));
        assert_eq!(
            cargo_problems(&outcome),
            ["cargo bench (core benchmarks) exited with exit status: 1"]
        );
        outcome.status = None;
        outcome.hang =
            Some("killed Godot: test core_queue_spsc ran for 121 s (limit 120 s)".into());
        assert_eq!(
            cargo_problems(&outcome),
            [
                "killed cargo bench (core benchmarks): test core_queue_spsc ran for 121 s (limit 120 s)"
            ]
        );
    }

    #[test]
    fn explains_the_core_rows_only_when_there_are_some() {
        let context = Context {
            command: "cargo xtask bench".into(),
            date: "2026-01-01 00:00 UTC".into(),
            cpu: "cpu".into(),
            cores: 2,
            load_average: "0 0 0".into(),
            godot: "4.6".into(),
        };
        let godot = row("BENCH name=dispatch unit=ns threadkit=1 builtin=2 target=n/a extra=x");
        let core =
            row("BENCH name=core_blocking_call unit=ns threadkit=1 builtin=2 target=n/a extra=y");
        assert!(!markdown_report(&context, std::slice::from_ref(&godot)).contains("`core_` rows"));
        let both = [godot, core];
        let markdown = markdown_report(&context, &both);
        assert!(markdown.contains("`core_` rows"));
        assert!(markdown.contains("| core_blocking_call | ns | 1.00 | 2.00 | n/a | - | - |"));
        let json = results_json(&context, &both);
        assert!(json.contains("\"name\": \"core_blocking_call\""));
        assert!(json.contains("\"target\": null"));
    }

    /// results.json read back gives every row's fields as they were: numbers exactly, `null` for
    /// what is missing, text with quotes, backslashes, control characters and non-ASCII intact.
    #[test]
    fn results_json_reads_back_as_the_rows() {
        let context = Context {
            command: "cargo xtask bench --filter \"q\"".into(),
            date: "2026-01-01 00:00 UTC".into(),
            cpu: "Some CPU @ 2.0GHz".into(),
            cores: 2,
            load_average: "1.5 0.9 0.3".into(),
            godot: "4.6.3.stable".into(),
        };
        let mut tricky = row(
            "BENCH name=core_x unit=ns/item threadkit=0.1 builtin=1e-7 metric=ratio \
             value=1000000 target=<=0.5 extra=x",
        );
        tricky.extra = "a \"b\" \\ c\n\t\u{1} é ✓".into();
        let rows = [
            tricky,
            row(
                "BENCH name=floor unit=n/a threadkit=n/a builtin=50 metric=n/a value=n/a target=n/a",
            ),
        ];
        let json: Value = serde_json::from_str(&results_json(&context, &rows)).unwrap();
        assert_eq!(json["command"], context.command);
        assert_eq!(json["date"], context.date);
        assert_eq!(json["machine"]["cpu"], context.cpu);
        assert_eq!(json["machine"]["cores"], 2);
        assert_eq!(json["machine"]["load_average"], context.load_average);
        assert_eq!(json["godot"], context.godot);
        let workloads = json["workloads"].as_array().unwrap();
        assert_eq!(workloads.len(), rows.len());
        let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
        for (read, row) in workloads.iter().zip(&rows) {
            let back = Row {
                name: text(&read["name"]),
                unit: text(&read["unit"]),
                threadkit: read["threadkit"].as_f64(),
                builtin: read["builtin"].as_f64(),
                metric: text(&read["metric"]),
                value: read["value"].as_f64(),
                target: text(&read["target"]),
                extra: text(&read["notes"]),
            };
            assert_eq!(&back, row);
            assert_eq!(read["target_met"].as_bool(), row.meets_target());
        }
        // Missing values are null, not empty strings or zeros.
        let floor = &workloads[1];
        for key in [
            "unit",
            "threadkit",
            "metric",
            "value",
            "target",
            "target_met",
        ] {
            assert!(floor[key].is_null(), "{key}: {floor}");
        }
        assert_eq!(floor["notes"], "");
        assert_eq!(workloads[0]["target_met"], false);
    }
}
