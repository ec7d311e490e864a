//! The xtask binary's command line as a user meets it: exit codes, and where help and errors go.
//! Only lines that stop before any work runs, and `package --from` on fake library files (it
//! builds nothing, and `--no-smoke` keeps Godot out).

use std::fs;
use std::path::{Path, PathBuf};
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

/// The `[libraries]` entries of the repository's threadkit.gdextension: (tags, file name).
fn gdextension_libraries() -> Vec<(String, String)> {
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../addons/threadkit/threadkit.gdextension");
    let text = fs::read_to_string(file).unwrap();
    let mut inside = false;
    let mut libraries = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[libraries]";
        } else if let Some((tags, path)) = line.split_once('=').filter(|_| inside) {
            let path = path.trim().trim_matches('"');
            let name = path.rsplit('/').next().unwrap();
            libraries.push((tags.trim().to_string(), name.to_string()));
        }
    }
    libraries
}

/// The first bytes of a library for the entry with `tags`: ELF, PE or universal Mach-O.
fn library_header(tags: &str) -> Vec<u8> {
    let arm = tags.split('.').any(|tag| tag == "arm64");
    if tags.starts_with("windows") {
        let mut bytes = vec![0; 0x100];
        bytes[..2].copy_from_slice(b"MZ");
        bytes[0x3c] = 0x80;
        bytes[0x80..0x84].copy_from_slice(b"PE\0\0");
        let machine: u16 = if arm { 0xaa64 } else { 0x8664 };
        bytes[0x84..0x86].copy_from_slice(&machine.to_le_bytes());
        bytes
    } else if tags.starts_with("macos") {
        let mut bytes = vec![0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2];
        for cpu in [0x0100_0007u32, 0x0100_000c] {
            bytes.extend(cpu.to_be_bytes());
            bytes.extend([0; 16]);
        }
        bytes
    } else {
        let mut bytes = vec![0; 64];
        bytes[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1]);
        bytes[18] = if arm { 183 } else { 62 };
        bytes
    }
}

/// A fresh folder for one test, with a library file for every .gdextension entry but `leave_out`.
fn libraries_folder(test: &str, leave_out: Option<&str>) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("libraries")).unwrap();
    for (tags, name) in gdextension_libraries() {
        if leave_out != Some(tags.as_str()) {
            fs::write(dir.join("libraries").join(name), library_header(&tags)).unwrap();
        }
    }
    dir
}

/// `cargo xtask package --from DIR/libraries --out DIR/threadkit.zip --no-smoke`: the zip's path
/// and what the command did.
fn package_from(dir: &Path) -> (PathBuf, Output) {
    let zip = dir.join("threadkit.zip");
    let libraries = dir.join("libraries");
    let output = xtask(&[
        "package",
        "--from",
        libraries.to_str().unwrap(),
        "--out",
        zip.to_str().unwrap(),
        "--no-smoke",
    ]);
    (zip, output)
}

#[test]
fn package_from_a_folder_zips_every_platforms_library_without_building() {
    let dir = libraries_folder("package-from-complete", None);
    let (zip, output) = package_from(&dir);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(!stdout.contains("built the extension"), "{stdout}");
    assert!(
        stdout.contains("smoke test skipped (--no-smoke)"),
        "{stdout}"
    );
    let archive = zip::ZipArchive::new(fs::File::open(&zip).unwrap()).unwrap();
    let names: Vec<&str> = archive.file_names().collect();
    let entries = gdextension_libraries();
    assert!(entries.len() >= 8, "{entries:?}");
    for (tags, name) in entries {
        let path = format!("addons/threadkit/bin/{name}");
        assert!(
            names.contains(&path.as_str()),
            "{tags}: no {path} in {names:?}"
        );
        assert!(stdout.contains(&path), "{stdout}");
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn package_from_a_folder_missing_a_library_names_it_and_its_entry() {
    let dir = libraries_folder("package-from-missing", Some("windows.release.x86_64"));
    let (zip, output) = package_from(&dir);
    let libraries = dir.join("libraries");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        format!(
            "xtask package: error: --from {}: 1 problem(s):\n  {} is missing: \
             threadkit.gdextension entry windows.release.x86_64 wants it\n",
            libraries.display(),
            libraries
                .join("threadkit.windows.release.x86_64.dll")
                .display()
        )
    );
    assert!(!zip.exists());
    fs::remove_dir_all(&dir).unwrap();
}
