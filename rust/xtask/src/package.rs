//! `cargo xtask package`: a zip of addons/threadkit, with the library built for this platform,
//! that drops into any Godot 4 project; and its smoke test, which unzips it into a new, empty
//! project and runs a GDScript there.
//!
//! Every library entry of threadkit.gdextension that Godot on this platform may load (the
//! "debug" one, which editors and debug exports load, and the "release" one, for release exports)
//! gets the same built file, so the packaged .gdextension is the repository's, unchanged.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use crate::build::{Profile, build};
use crate::engine::{Watch, import_project, watch};
use crate::gdextension::{ADDON_DIR, Library, Platform, parse_libraries, read_libraries};
use crate::godot::{Godot, find_on_path};
use crate::{Result, workspace_root};

/// The script the smoke test runs in the new project.
const SMOKE_TEST: &str = include_str!("smoke_test.gd");
/// What the smoke test prints when every check held.
const SMOKE_OK: &str = "SMOKE OK";
/// Library files, as opposed to the addon's other files.
const LIBRARY_EXTENSIONS: [&str; 3] = [".so", ".dll", ".dylib"];

/// `cargo xtask package [--out PATH]`: build (release, without debug info), zip, list the zip,
/// then smoke-test it.
pub fn run(args: &[String]) -> Result<ExitCode> {
    let mut out = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out = Some(PathBuf::from(args.next().ok_or("--out needs a path")?)),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let out = match out {
        Some(path) => std::path::absolute(path)?,
        None => default_zip(Profile::Package)?,
    };
    let package = create(Profile::Package, &out)?;
    println!(
        "xtask: packaged {} ({}), containing:",
        package.zip.display(),
        size(fs::metadata(&package.zip)?.len())
    );
    for (name, bytes) in &package.files {
        println!("  {name:<60} {:>9}", size(*bytes));
    }
    smoke_test(&Godot::locate()?, &package.zip)?;
    Ok(ExitCode::SUCCESS)
}

/// A zip that was written, and the files in it with their sizes.
pub struct Package {
    pub zip: PathBuf,
    pub files: Vec<(String, u64)>,
}

/// target/package/threadkit-<version>-<os>-<arch>.zip, with `-dev` for an unoptimised build.
pub fn default_zip(profile: Profile) -> Result<PathBuf> {
    let suffix = if profile == Profile::Dev { "-dev" } else { "" };
    Ok(workspace_root().join("target/package").join(format!(
        "threadkit-{}-{}{suffix}.zip",
        env!("CARGO_PKG_VERSION"),
        Platform::host()?
    )))
}

/// Builds the extension with `profile` and writes the package to `out`.
pub fn create(profile: Profile, out: &Path) -> Result<Package> {
    let platform = Platform::host()?;
    let libraries = platform.libraries(&read_libraries()?)?;
    let built = build(profile)?;
    let root = workspace_root();
    let addon = root.join(ADDON_DIR);
    let addon_files = files_under(&addon)?
        .into_iter()
        .filter(|name| !name.starts_with("bin/"))
        .collect::<Vec<_>>();
    let entries = contents(&libraries, &addon_files, &licenses(&root)?, &root, &built)?;

    // The zip is made from a staging copy, so that it holds exactly `entries`.
    let stage = root.join("target/package/stage");
    if stage.exists() {
        fs::remove_dir_all(&stage)?;
    }
    let mut files = Vec::new();
    for entry in &entries {
        let staged = stage.join(&entry.name);
        fs::create_dir_all(staged.parent().expect("entries lie in the addon folder"))?;
        fs::copy(&entry.source, &staged)
            .map_err(|error| format!("copying {}: {error}", entry.source.display()))?;
        files.push((entry.name.clone(), fs::metadata(&staged)?.len()));
    }
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent)?;
    }
    let names: Vec<&str> = entries.iter().map(|entry| entry.name.as_str()).collect();
    write_zip(&stage, &names, out)?;
    fs::remove_dir_all(&stage)?;
    Ok(Package {
        zip: out.to_path_buf(),
        files,
    })
}

/// A file of the package: its path in the zip, and the file it is copied from.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    name: String,
    source: PathBuf,
}

/// What the package holds: `built` under every path of `libraries`; the addon's own files (named
/// relative to the addon folder); and the repository's license files (named relative to `root`),
/// which go into the addon folder so they travel with it. Sorted by path; where two share a path,
/// the library wins over a stale addon file, and the addon's file over a license file.
fn contents(
    libraries: &[Library],
    addon_files: &[String],
    licenses: &[String],
    root: &Path,
    built: &Path,
) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for library in libraries {
        entries.push(Entry {
            name: library.project_path()?.to_string(),
            source: built.to_path_buf(),
        });
    }
    for (files, from) in [(addon_files, root.join(ADDON_DIR)), (licenses, root.into())] {
        entries.extend(files.iter().map(|file| Entry {
            name: format!("{ADDON_DIR}/{file}"),
            source: from.join(file),
        }));
    }
    let mut unique: Vec<Entry> = Vec::new();
    for entry in entries {
        if !unique.iter().any(|kept| kept.name == entry.name) {
            unique.push(entry);
        }
    }
    unique.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(unique)
}

/// What is wrong between a package's `files` and the library entries of its .gdextension: an
/// entry for `platform` whose file is missing, or a library file no entry names.
fn library_problems(files: &[String], libraries: &[Library], platform: Platform) -> Vec<String> {
    let mut problems = Vec::new();
    for library in libraries.iter().filter(|l| platform.loads(l)) {
        match library.project_path() {
            Ok(path) if files.iter().any(|file| file == path) => {}
            Ok(path) => problems.push(format!(
                "threadkit.gdextension entry {} names {path}, which the package lacks",
                library.tags
            )),
            Err(error) => problems.push(error.to_string()),
        }
    }
    for file in files {
        let is_library = LIBRARY_EXTENSIONS.iter().any(|ext| file.ends_with(ext));
        let named = libraries
            .iter()
            .any(|l| l.project_path().is_ok_and(|path| path == file));
        if is_library && !named {
            problems.push(format!(
                "{file} is in the package but no threadkit.gdextension entry names it"
            ));
        }
    }
    problems
}

/// The repository's license files (LICENSE, LICENSE-MIT, LICENSE.md, ...), if it has any.
fn licenses(root: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("LICENSE") && entry.file_type()?.is_file() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// The files under `dir`, recursively, as `/`-separated paths relative to it, sorted; hidden
/// files and folders (.gitkeep and the like) are left out.
fn files_under(dir: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((folder, prefix)) = pending.pop() {
        for entry in fs::read_dir(&folder)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let relative = format!("{prefix}{name}");
            // Follows symbolic links, as copying them does.
            if entry.path().is_dir() {
                pending.push((entry.path(), format!("{relative}/")));
            } else {
                files.push(relative);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Zips `files` (paths relative to `stage`) into `out` with the `zip` program, else Python's
/// zipfile module.
fn write_zip(stage: &Path, files: &[&str], out: &Path) -> Result<()> {
    if out.exists() {
        // `zip` would add to an existing archive.
        fs::remove_file(out)?;
    }
    let mut command = if let Some(zip) = find_on_path("zip") {
        let mut command = Command::new(zip);
        command.args(["-X", "-q"]).arg(out);
        command
    } else if let Some(python) = find_on_path("python3") {
        let mut command = Command::new(python);
        command
            .arg("-c")
            .arg(
                "import sys, zipfile\n\
                 with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as archive:\n\
                 \x20   for name in sys.argv[2:]:\n\
                 \x20       archive.write(name)",
            )
            .arg(out);
        command
    } else {
        return Err("making a zip needs the `zip` program or `python3`; install either".into());
    };
    command.current_dir(stage).args(files);
    run_tool(command, "zipping the package")
}

/// Unpacks `zip` into `dir` with the `unzip` program, else Python's zipfile module.
fn unzip(zip: &Path, dir: &Path) -> Result<()> {
    let command = if let Some(unzip) = find_on_path("unzip") {
        let mut command = Command::new(unzip);
        command.arg("-q").arg(zip).arg("-d").arg(dir);
        command
    } else if let Some(python) = find_on_path("python3") {
        let mut command = Command::new(python);
        command
            .arg("-c")
            .arg("import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])")
            .arg(zip)
            .arg(dir);
        command
    } else {
        return Err(
            "unpacking a zip needs the `unzip` program or `python3`; install either".into(),
        );
    };
    run_tool(command, "unzipping the package")
}

fn run_tool(mut command: Command, what: &str) -> Result<()> {
    let status = command
        .status()
        .map_err(|error| format!("{what}: cannot run {:?}: {error}", command.get_program()))?;
    if !status.success() {
        return Err(format!("{what}: {:?} exited with {status}", command.get_program()).into());
    }
    Ok(())
}

/// Unzips `zip` into a brand-new project (a project.godot and nothing else) under
/// target/package/smoke, checks its files against its .gdextension, imports the project and runs
/// smoke_test.gd there. Any failure is an error that says what went wrong.
pub fn smoke_test(godot: &Godot, zip: &Path) -> Result<()> {
    let started = Instant::now();
    let project = workspace_root().join("target/package/smoke");
    if project.exists() {
        fs::remove_dir_all(&project)?;
    }
    fs::create_dir_all(&project)?;
    fs::write(
        project.join("project.godot"),
        "config_version=5\n\n[application]\n\nconfig/name=\"ThreadKit package smoke test\"\n",
    )?;
    unzip(zip, &project)?;

    let gdextension = project.join(ADDON_DIR).join("threadkit.gdextension");
    let text = fs::read_to_string(&gdextension).map_err(|error| {
        format!("the package has no {ADDON_DIR}/threadkit.gdextension: {error}")
    })?;
    let files: Vec<String> = files_under(&project.join(ADDON_DIR))?
        .into_iter()
        .map(|file| format!("{ADDON_DIR}/{file}"))
        .collect();
    let problems = library_problems(&files, &parse_libraries(&text), Platform::host()?);
    if !problems.is_empty() {
        return Err(problems.join("; ").into());
    }

    import_project(godot, &project)?;
    fs::write(project.join("smoke_test.gd"), SMOKE_TEST)?;
    let outcome = watch(
        godot.command_in(&project, ["--headless", "-s", "res://smoke_test.gd"]),
        Watch {
            total: Duration::from_secs(120),
            per_test: Duration::MAX,
            echo: true,
        },
    )?;
    let mut problems = outcome.problems();
    if !outcome.stdout.iter().any(|line| line == SMOKE_OK) {
        problems.push(format!("smoke_test.gd did not print {SMOKE_OK}"));
    }
    if !problems.is_empty() {
        return Err(problems.join("; ").into());
    }
    println!(
        "xtask: the package works in a new project ({}), smoke test in {:.1} s",
        project.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `20 B`, `2.7 kB`, `5.6 MB`.
fn size(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        _ => format!("{:.1} MB", bytes as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINUX_X86_64: Platform = Platform {
        os: "linux",
        arch: "x86_64",
    };

    fn library(tags: &str, file: &str) -> Library {
        Library {
            tags: tags.into(),
            path: format!("res://{ADDON_DIR}/bin/{file}"),
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn packs_the_built_library_under_every_entry_and_the_addon_files() {
        let root = Path::new("/repo");
        let built = Path::new("/repo/target/release/libthreadkit.so");
        let libraries = [
            library("linux.debug.x86_64", "lib.debug.so"),
            library("linux.release.x86_64", "lib.release.so"),
        ];
        let entries = contents(
            &libraries,
            &strings(&["threadkit.gdextension", "README.md", "icons/icon.svg"]),
            &strings(&["LICENSE"]),
            root,
            built,
        )
        .unwrap();
        let expected = [
            ("addons/threadkit/LICENSE", "/repo/LICENSE"),
            (
                "addons/threadkit/README.md",
                "/repo/addons/threadkit/README.md",
            ),
            ("addons/threadkit/bin/lib.debug.so", built.to_str().unwrap()),
            (
                "addons/threadkit/bin/lib.release.so",
                built.to_str().unwrap(),
            ),
            (
                "addons/threadkit/icons/icon.svg",
                "/repo/addons/threadkit/icons/icon.svg",
            ),
            (
                "addons/threadkit/threadkit.gdextension",
                "/repo/addons/threadkit/threadkit.gdextension",
            ),
        ]
        .map(|(name, source)| Entry {
            name: name.into(),
            source: source.into(),
        });
        assert_eq!(entries, expected);
    }

    #[test]
    fn one_file_per_path_the_library_first() {
        let root = Path::new("/repo");
        let built = Path::new("/built.so");
        let shared = library("linux.x86_64", "lib.so");
        let entries = contents(
            &[shared.clone(), shared],
            &strings(&["LICENSE", "bin/lib.so"]),
            &strings(&["LICENSE"]),
            root,
            built,
        )
        .unwrap();
        let sources: Vec<(&str, &Path)> = entries
            .iter()
            .map(|e| (e.name.as_str(), e.source.as_path()))
            .collect();
        assert_eq!(
            sources,
            [
                (
                    "addons/threadkit/LICENSE",
                    Path::new("/repo/addons/threadkit/LICENSE")
                ),
                ("addons/threadkit/bin/lib.so", built),
            ]
        );
    }

    #[test]
    fn a_library_outside_the_addon_cannot_be_packed() {
        let outside = Library {
            tags: "linux.x86_64".into(),
            path: "res://bin/lib.so".into(),
        };
        assert!(contents(&[outside], &[], &[], Path::new("/"), Path::new("/b.so")).is_err());
    }

    #[test]
    fn the_repositorys_package_has_every_library_its_gdextension_names_for_linux_x86_64() {
        let libraries = read_libraries().unwrap();
        let own = LINUX_X86_64.libraries(&libraries).unwrap();
        let entries = contents(
            &own,
            &strings(&["threadkit.gdextension"]),
            &[],
            Path::new("/repo"),
            Path::new("/built.so"),
        )
        .unwrap();
        let names: Vec<String> = entries.into_iter().map(|e| e.name).collect();
        assert_eq!(
            library_problems(&names, &libraries, LINUX_X86_64),
            [] as [String; 0]
        );
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn finds_missing_and_unnamed_libraries() {
        let libraries = [
            library("linux.debug.x86_64", "a.so"),
            library("linux.release.x86_64", "b.so"),
            library("windows.debug.x86_64", "c.dll"),
        ];
        let complete = strings(&[
            "addons/threadkit/README.md",
            "addons/threadkit/bin/a.so",
            "addons/threadkit/bin/b.so",
        ]);
        assert!(library_problems(&complete, &libraries, LINUX_X86_64).is_empty());

        let wrong = strings(&["addons/threadkit/bin/a.so", "addons/threadkit/bin/old.so"]);
        let problems = library_problems(&wrong, &libraries, LINUX_X86_64);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("linux.release.x86_64"), "{problems:?}");
        assert!(problems[1].contains("bin/old.so"), "{problems:?}");
    }

    #[test]
    fn lists_files_recursively_without_hidden_ones() {
        let dir = workspace_root().join("target/xtask-test-files-under");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).unwrap();
        fs::create_dir_all(dir.join(".hidden")).unwrap();
        for file in ["b.txt", "a.txt", "bin/x.so", "bin/.gitkeep", ".hidden/y"] {
            fs::write(dir.join(file), "").unwrap();
        }
        assert_eq!(
            files_under(&dir).unwrap(),
            strings(&["a.txt", "b.txt", "bin/x.so"])
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writes_sizes_in_readable_units() {
        assert_eq!(size(20), "20 B");
        assert_eq!(size(2_732), "2.7 kB");
        assert_eq!(size(5_583_896), "5.6 MB");
    }

    #[test]
    fn names_the_zip_after_version_and_platform() {
        let release = default_zip(Profile::Package).unwrap();
        let dev = default_zip(Profile::Dev).unwrap();
        let platform = Platform::host().unwrap();
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            release.file_name().unwrap().to_str().unwrap(),
            format!("threadkit-{version}-{platform}.zip")
        );
        assert_eq!(
            dev.file_name().unwrap().to_str().unwrap(),
            format!("threadkit-{version}-{platform}-dev.zip")
        );
        assert!(release.starts_with(workspace_root().join("target/package")));
    }
}
