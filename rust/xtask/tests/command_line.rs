//! The xtask binary's command line as a user meets it: exit codes, and where help and errors go.
//! Only lines that stop before any work runs.

use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("the xtask binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn an_unknown_option_is_a_clear_error_with_exit_code_2() {
    for command in ["demo", "test", "bench", "package"] {
        let output = xtask(&[command, "--no-such-option"]);
        assert_eq!(output.status.code(), Some(2), "{command}");
        assert_eq!(text(&output.stdout), "", "{command}");
        let stderr = text(&output.stderr);
        assert_eq!(
            stderr,
            format!(
                "xtask {command}: unexpected flag: `--no-such-option`\n\
                 see `cargo xtask {command} --help` for its options\n"
            )
        );
    }
}

#[test]
fn a_missing_or_unknown_command_is_an_error_with_exit_code_2() {
    let output = xtask(&[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).starts_with("usage: cargo xtask <command>"));
    let output = xtask(&["deploy"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("unknown command `deploy`"));
}

#[test]
fn help_goes_to_stdout_with_exit_code_0() {
    let all = xtask(&["--help"]);
    assert_eq!(all.status.code(), Some(0));
    let all = text(&all.stdout);
    for (command, option) in [
        ("demo", "--screenshot <path>"),
        ("test", "--engine-only"),
        ("bench", "--quick"),
        ("package", "--out <path>"),
    ] {
        let output = xtask(&[command, "--help"]);
        assert_eq!(output.status.code(), Some(0), "{command}");
        assert_eq!(text(&output.stderr), "", "{command}");
        let help = text(&output.stdout);
        assert!(
            help.starts_with(&format!("cargo xtask {command}\n")),
            "{help}"
        );
        assert!(help.contains(option), "{help}");
        assert!(all.contains(option), "{all}");
    }
}
