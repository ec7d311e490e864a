//! The command line, `cargo xtask <command> [options]`: one xflags grammar per command, so that
//! `cargo xtask <command> --help` shows that command alone, and `cargo xtask --help` all of them.
//! Every option may be written `--name value` or `--name=value`.

use std::ffi::OsString;
use std::path::PathBuf;

xflags::xflags! {
    /// Build (release), find or provision Godot, run the demo scene: in its window when there is
    /// a display, else headless (every section, a summary table, exit 0 when every check holds).
    cmd demo {
        /// Run headless even when there is a display.
        optional --headless
        /// Show the demo under a virtual display (Xvfb) with the OpenGL compatibility renderer
        /// and save a PNG of it at PATH.
        optional --screenshot path: PathBuf
        /// The tab the screenshot shows, from 0 (default 0).
        optional --tab n: u32
    }
}

xflags::xflags! {
    /// rustfmt and clippy checks, actionlint on .github/workflows (SKIP, counted neither way,
    /// without an actionlint on PATH), Rust tests, loom model tests, in-engine GDScript tests,
    /// the checks that need a Godot process of their own, and the package smoke test (a zip of
    /// the dev build, unzipped into a new, empty project that runs a GDScript using the addon);
    /// ends with one line, `N passed, N failed`.
    cmd test {
        /// Skip the Rust side (rustfmt, clippy, Rust and loom tests): only the Godot tests.
        optional --engine-only
        /// Run only the in-engine tests and process checks whose name contains TEXT, and the
        /// package smoke test if TEXT is in its name, package.smoke_test.
        optional --filter text: String
    }
}

xflags::xflags! {
    /// Build (release), run the in-engine benchmarks (ThreadKit vs Godot's built-ins) and
    /// rust/core's (vs std); print the table, write target/bench/results.json and
    /// docs/benchmarks.md.
    cmd bench {
        /// Smaller workloads and fewer rounds: a quick look rather than figures to publish.
        optional --quick
        /// Run only the workloads whose name contains TEXT.
        optional --filter text: String
    }
}

xflags::xflags! {
    /// Build (release, without debug info) and zip addons/threadkit with the library for this
    /// platform under every name that threadkit.gdextension gives it here; print its files, then
    /// smoke-test it in a new, empty project.
    cmd package {
        /// Where to write the zip (default target/package/threadkit-VERSION-OS-ARCH.zip, or
        /// threadkit-VERSION.zip with --from).
        optional --out path: PathBuf
        /// Build nothing: zip the libraries in DIR, built elsewhere, one file for every
        /// platform's entry of threadkit.gdextension, named as the entry names it (e.g.
        /// libthreadkit.linux.release.x86_64.so, threadkit.windows.debug.x86_64.dll,
        /// libthreadkit.macos.release.dylib, universal). Fails naming each missing file and the
        /// entry that wants it, each library that is not for its entry's platform, and each
        /// library no entry names. The smoke test runs this host's library.
        optional --from dir: PathBuf
        /// Only write the zip: skip its smoke test, which needs Godot (and may download it).
        optional --no-smoke
    }
}

/// `godot`, whose arguments all go to Godot (`--help` included), is not an xflags grammar.
const GODOT_HELP: &str = "\
godot [ARGS...]
  Run the Godot the other commands use, in godot_project/, with ARGS (all of them go to Godot,
  e.g. --editor).";

const ABOUT: &str = "\
usage: cargo xtask <command> [options]
       cargo xtask <command> --help";

const WHICH_GODOT: &str = "\
Godot is taken from $GODOT, else godot4/godot on PATH, else a private copy that xtask
provisions from Debian's archive into $THREADKIT_CACHE (default ~/.cache/threadkit).
Xvfb likewise: Xvfb on PATH, else a private copy with Mesa's software GL from the same archive.";

/// A command line that parsed.
#[derive(Debug)]
pub enum Command {
    Demo(Demo),
    Test(Test),
    Bench(Bench),
    Package(Package),
    /// The arguments for Godot.
    Godot(Vec<OsString>),
}

/// A command line that is not run: help was asked for, or the line is wrong.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// Printed on stdout; exit code 0.
    Help(String),
    /// Printed on stderr; exit code 2.
    Usage(String),
}

impl Exit {
    pub const USAGE_CODE: u8 = 2;
}

/// Parses the arguments after `cargo xtask`.
pub fn parse(args: Vec<OsString>) -> Result<Command, Exit> {
    let mut args = args.into_iter();
    let Some(name) = args.next() else {
        return Err(Exit::Usage(help()));
    };
    let rest: Vec<OsString> = args.collect();
    let name = name.to_string_lossy().into_owned();
    match name.as_str() {
        "godot" => return Ok(Command::Godot(rest)),
        "help" | "--help" | "-h" => return Err(Exit::Help(help())),
        _ => {}
    }
    let options = split_inline_values(rest);
    let parsed = match name.as_str() {
        "demo" => Demo::from_vec(options)
            .and_then(Demo::validate)
            .map(Command::Demo),
        "test" => Test::from_vec(options).map(Command::Test),
        "bench" => Bench::from_vec(options).map(Command::Bench),
        "package" => Package::from_vec(options).map(Command::Package),
        _ => {
            return Err(Exit::Usage(format!(
                "xtask: unknown command `{name}`; the commands are demo, test, bench, package and \
                 godot (see `cargo xtask --help`)"
            )));
        }
    };
    parsed.map_err(|error| {
        if error.is_help() {
            Exit::Help(format!("cargo xtask {error}"))
        } else {
            Exit::Usage(format!(
                "xtask {name}: {error}\nsee `cargo xtask {name} --help` for its options"
            ))
        }
    })
}

/// Every command's help, for `cargo xtask --help`.
pub fn help() -> String {
    [
        ABOUT,
        Demo::HELP_,
        Test::HELP_,
        Bench::HELP_,
        Package::HELP_,
        GODOT_HELP,
        WHICH_GODOT,
    ]
    .map(str::trim_end)
    .join("\n\n")
}

impl Demo {
    /// The rules between options that the grammar cannot say.
    fn validate(self) -> xflags::Result<Demo> {
        if self.headless && self.screenshot.is_some() {
            return Err(xflags::Error::new(
                "--screenshot needs the demo window; it cannot be --headless",
            ));
        }
        if self.tab.unwrap_or(0) != 0 && self.screenshot.is_none() {
            return Err(xflags::Error::new(
                "--tab chooses the tab of a --screenshot",
            ));
        }
        Ok(self)
    }
}

/// `--name=value` as `--name value`, the form xflags reads, so that every option takes both.
fn split_inline_values(args: Vec<OsString>) -> Vec<OsString> {
    let mut split = Vec::with_capacity(args.len());
    for arg in args {
        match arg
            .to_str()
            .and_then(|text| text.strip_prefix("--")?.split_once('='))
        {
            Some((name, value)) => split.extend([format!("--{name}").into(), value.into()]),
            None => split.push(arg),
        }
    }
    split
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &[&str]) -> Result<Command, Exit> {
        parse(line.iter().map(OsString::from).collect())
    }

    fn usage_error(line: &[&str]) -> String {
        match parse_line(line) {
            Err(Exit::Usage(message)) => message,
            other => panic!("{line:?} should be a usage error, not {other:?}"),
        }
    }

    fn help_of(line: &[&str]) -> String {
        match parse_line(line) {
            Err(Exit::Help(text)) => text,
            other => panic!("{line:?} should print help, not {other:?}"),
        }
    }

    #[test]
    fn parses_every_commands_options_in_both_spellings() {
        let Ok(Command::Test(test)) = parse_line(&["test", "--engine-only", "--filter", "counter"])
        else {
            panic!("test options")
        };
        assert!(test.engine_only);
        assert_eq!(test.filter.as_deref(), Some("counter"));
        let Ok(Command::Test(test)) = parse_line(&["test", "--filter=a=b"]) else {
            panic!("test --filter=")
        };
        assert_eq!(
            (test.engine_only, test.filter.as_deref()),
            (false, Some("a=b"))
        );

        let Ok(Command::Bench(bench)) = parse_line(&["bench", "--quick", "--filter=core_"]) else {
            panic!("bench options")
        };
        assert!(bench.quick);
        assert_eq!(bench.filter.as_deref(), Some("core_"));

        let Ok(Command::Package(package)) = parse_line(&["package", "--out", "x.zip"]) else {
            panic!("package options")
        };
        assert_eq!(package.out, Some(PathBuf::from("x.zip")));
        assert!(!package.no_smoke);
        let Ok(Command::Package(package)) = parse_line(&["package", "--no-smoke"]) else {
            panic!("package --no-smoke")
        };
        assert!(package.no_smoke);
        assert_eq!(package.from, None);
        let Ok(Command::Package(package)) = parse_line(&["package", "--from=libs", "--no-smoke"])
        else {
            panic!("package --from")
        };
        assert_eq!(package.from, Some(PathBuf::from("libs")));

        let Ok(Command::Demo(demo)) = parse_line(&["demo", "--screenshot", "shot.png", "--tab=2"])
        else {
            panic!("demo options")
        };
        assert_eq!(demo.screenshot, Some(PathBuf::from("shot.png")));
        assert_eq!(demo.tab, Some(2));
        let Ok(Command::Demo(demo)) = parse_line(&["demo", "--screenshot=a=b.png"]) else {
            panic!("demo --screenshot=")
        };
        assert_eq!(demo.screenshot, Some(PathBuf::from("a=b.png")));
        assert_eq!(demo.tab, None);
        let Ok(Command::Demo(demo)) = parse_line(&["demo", "--headless"]) else {
            panic!("demo --headless")
        };
        assert!(demo.headless);
    }

    #[test]
    fn godot_gets_every_argument_as_it_is() {
        let Ok(Command::Godot(args)) = parse_line(&["godot", "--editor", "--x=y", "--help"]) else {
            panic!("godot")
        };
        assert_eq!(args, ["--editor", "--x=y", "--help"]);
    }

    #[test]
    fn unknown_options_and_commands_are_usage_errors() {
        let message = usage_error(&["test", "--fast"]);
        assert!(
            message.contains("xtask test: unexpected flag: `--fast`"),
            "{message}"
        );
        assert!(message.contains("cargo xtask test --help"), "{message}");
        for line in [
            &["bench", "--filter"][..],
            &["package", "--out"],
            &["package", "--from"],
            &["package", "extra"],
            &["demo", "--screenshot"],
            &["demo", "--screenshot", "a.png", "--tab", "first"],
            &["demo", "--screenshot", "a.png", "--headless"],
            &["demo", "--tab", "1"],
            &["demo", "--headless=yes"],
            &["demo", "--fullscreen"],
            &["test", "--filter", "a", "--filter", "b"],
        ] {
            let message = usage_error(line);
            assert!(
                message.starts_with(&format!("xtask {}: ", line[0])),
                "{message}"
            );
        }
        let message = usage_error(&["deploy"]);
        assert!(message.contains("unknown command `deploy`"), "{message}");
        // No command at all: the whole help, as an error.
        assert_eq!(usage_error(&[]), help());
    }

    #[test]
    fn each_commands_help_lists_its_options() {
        let commands: [(&str, &[&str]); 4] = [
            ("demo", &["--headless", "--screenshot <path>", "--tab <n>"]),
            ("test", &["--engine-only", "--filter <text>"]),
            ("bench", &["--quick", "--filter <text>"]),
            ("package", &["--out <path>", "--from <dir>", "--no-smoke"]),
        ];
        let all = help_of(&["--help"]);
        assert_eq!(help_of(&["help"]), all);
        for (command, options) in commands {
            for asked in [[command, "--help"], [command, "-h"]] {
                let text = help_of(&asked);
                assert!(
                    text.starts_with(&format!("cargo xtask {command}\n")),
                    "{text}"
                );
                for option in options.iter().chain(&["-h, --help"]) {
                    assert!(
                        text.contains(&format!("    {option}\n")),
                        "{command}: {option}\n{text}"
                    );
                }
                assert!(all.contains(text.trim_start_matches("cargo xtask ").trim_end()));
            }
        }
        assert!(all.contains("godot [ARGS...]"));
        assert!(all.contains("$GODOT"));
    }
}
