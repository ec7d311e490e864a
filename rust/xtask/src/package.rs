//! `cargo xtask package`: a zip of addons/threadkit, with the library built for this platform,
//! that drops into any Godot 4 project; and its smoke test, which unzips it into a new, empty
//! project and runs a GDScript there.
//!
//! Every library entry of threadkit.gdextension that Godot on this platform may load (the
//! "debug" one, which editors and debug exports load, and the "release" one, for release exports)
//! gets the same built file, so the packaged .gdextension is the repository's, unchanged.
//!
//! `--from DIR` packs libraries built elsewhere instead, one for every entry (see prebuilt.rs):
//! the release zip, with every platform, that the release workflow assembles.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::build::{Profile, build};
use crate::date::UtcTime;
use crate::engine::{Watch, import_project, watch};
use crate::flags;
use crate::gdextension::{
    ADDON_DIR, Icon, Library, Platform, parse_icons, parse_libraries, read_icons, read_libraries,
};
use crate::godot::Godot;
use crate::prebuilt::{self, LIBRARY_EXTENSIONS};
use crate::workspace::{self, Result};

/// The script the smoke test runs in the new project.
const SMOKE_TEST: &str = include_str!("smoke_test.gd");
/// What the smoke test prints when every check held.
const SMOKE_OK: &str = "SMOKE OK";

/// `cargo xtask package [--out PATH] [--from DIR]`: build (release, without debug info) or take
/// the libraries in DIR, zip, list the zip, then smoke-test it.
pub fn run(options: flags::Package) -> Result<ExitCode> {
    let package = match &options.from {
        None => {
            let out = match options.out {
                Some(path) => std::path::absolute(path)?,
                None => default_zip(Profile::Package)?,
            };
            create(Profile::Package, &out)?
        }
        Some(dir) => {
            let out = match options.out {
                Some(path) => std::path::absolute(path)?,
                None => release_zip(),
            };
            create_from(dir, &out)?
        }
    };
    println!(
        "xtask: packaged {} ({}), containing:",
        package.zip.display(),
        size(fs::metadata(&package.zip)?.len())
    );
    for (name, bytes) in &package.files {
        println!("  {name:<60} {:>9}", size(*bytes));
    }
    smoke_test_unless_skipped(options.no_smoke, &package.zip, Godot::locate)?;
    Ok(ExitCode::SUCCESS)
}

/// The smoke test of `zip`, or with `no_smoke` a line saying it was skipped; only the smoke test
/// calls `locate`, which may provision (download) Godot.
fn smoke_test_unless_skipped(
    no_smoke: bool,
    zip: &Path,
    locate: impl FnOnce() -> Result<Godot>,
) -> Result<()> {
    if no_smoke {
        // Before Godot is looked for: finding none would provision (download) one.
        println!("xtask: smoke test skipped (--no-smoke)");
        return Ok(());
    }
    match Platform::host() {
        Ok(_) => smoke_test(&locate()?, zip),
        // Only with --from: the build needs a supported host.
        Err(why) => {
            println!("xtask: smoke test skipped: {why}, so no library here runs");
            Ok(())
        }
    }
}

/// A zip that was written, and the files in it with their sizes.
#[derive(Debug)]
pub struct Package {
    pub zip: PathBuf,
    pub files: Vec<(String, u64)>,
}

/// target/package/threadkit-<version>-<os>-<arch>.zip, with `-dev` for an unoptimised build.
pub fn default_zip(profile: Profile) -> Result<PathBuf> {
    let suffix = if profile == Profile::Dev { "-dev" } else { "" };
    Ok(workspace::root().join("target/package").join(format!(
        "threadkit-{}-{}{suffix}.zip",
        env!("CARGO_PKG_VERSION"),
        Platform::host()?
    )))
}

/// target/package/threadkit-<version>.zip: the zip of every platform's library.
pub fn release_zip() -> PathBuf {
    workspace::root()
        .join("target/package")
        .join(format!("threadkit-{}.zip", env!("CARGO_PKG_VERSION")))
}

/// Builds the extension with `profile` and writes the package to `out`.
pub fn create(profile: Profile, out: &Path) -> Result<Package> {
    let platform = Platform::host()?;
    let libraries = platform.libraries(&read_libraries()?)?;
    let built = build(profile)?;
    let sources: Vec<(Library, PathBuf)> = libraries
        .into_iter()
        .map(|library| (library, built.clone()))
        .collect();
    assemble(&sources, out)
}

/// Writes the package of the libraries in `dir` (built elsewhere, one per entry of
/// threadkit.gdextension; see prebuilt.rs) to `out`, and checks that the zip has every entry's
/// file. Builds nothing.
pub fn create_from(dir: &Path, out: &Path) -> Result<Package> {
    let libraries = read_libraries()?;
    let found = prebuilt::find(dir, &libraries)?;
    for name in &found.ignored {
        println!(
            "xtask: warning: {} is not a library; left out",
            dir.join(name).display()
        );
    }
    let package = assemble(&found.libraries, out)?;
    let names: Vec<String> = package.files.iter().map(|(name, _)| name.clone()).collect();
    let problems = library_problems(&names, &libraries, None);
    if !problems.is_empty() {
        return Err(format!("{}: {}", out.display(), problems.join("; ")).into());
    }
    Ok(package)
}

/// Writes the package of `libraries` (each entry with the file to pack for it) to `out`.
fn assemble(libraries: &[(Library, PathBuf)], out: &Path) -> Result<Package> {
    let root = workspace::root();
    let addon = root.join(ADDON_DIR);
    // The icons' `.import` files travel with them: they hold the editor settings the icons
    // need (scale with the editor, recolour for a light theme).
    let addon_files = files_under(&addon)?
        .into_iter()
        .filter(|name| !name.starts_with("bin/"))
        .collect::<Vec<_>>();
    let packed: Vec<String> = addon_files
        .iter()
        .map(|file| format!("{ADDON_DIR}/{file}"))
        .collect();
    let problems = icon_problems(&packed, &read_icons()?);
    if !problems.is_empty() {
        return Err(problems.join("; ").into());
    }
    let entries = contents(libraries, &addon_files, &licenses(&root)?, &root)?;
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent)?;
    }
    let files = write_zip(&entries, out)?;
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

/// What the package holds: each library file under its entry's path; the addon's own files
/// (named relative to the addon folder); and the repository's license files (named relative to
/// `root`), which go into the addon folder so they travel with it. Sorted by path; where two
/// share a path, the library wins over a stale addon file, and the addon's file over a license
/// file.
fn contents(
    libraries: &[(Library, PathBuf)],
    addon_files: &[String],
    licenses: &[String],
    root: &Path,
) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for (library, file) in libraries {
        entries.push(Entry {
            name: library.project_path()?.to_string(),
            source: file.clone(),
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
/// entry for `platform` (for any platform when None) whose file is missing, or a library file no
/// entry names.
fn library_problems(
    files: &[String],
    libraries: &[Library],
    platform: Option<Platform>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for library in libraries
        .iter()
        .filter(|l| platform.is_none_or(|p| p.loads(l)))
    {
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

/// The icon entries of a .gdextension whose file the package's `files` lack, each named.
fn icon_problems(files: &[String], icons: &[Icon]) -> Vec<String> {
    let mut problems = Vec::new();
    for icon in icons {
        match icon.project_path() {
            Ok(path) if files.iter().any(|file| file == path) => {}
            Ok(path) => problems.push(format!(
                "threadkit.gdextension: the icon of {} is {path}, which the package lacks",
                icon.class
            )),
            Err(error) => problems.push(error.to_string()),
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

/// Writes `entries` into a new zip at `out`, deflated, each with its source file's modification
/// time (in UTC) and permissions; returns each entry's name and size.
fn write_zip(entries: &[Entry], out: &Path) -> Result<Vec<(String, u64)>> {
    let mut zip = ZipWriter::new(BufWriter::new(File::create(out)?));
    let mut files = Vec::new();
    for entry in entries {
        let mut source = File::open(&entry.source)
            .map_err(|error| format!("reading {}: {error}", entry.source.display()))?;
        zip.start_file(entry.name.as_str(), file_options(&source.metadata()?))?;
        let bytes = io::copy(&mut source, &mut zip)?;
        files.push((entry.name.clone(), bytes));
    }
    zip.finish()?.flush()?;
    Ok(files)
}

fn file_options(metadata: &fs::Metadata) -> SimpleFileOptions {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(zip_time(
            metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        ));
    #[cfg(unix)]
    let options = {
        use std::os::unix::fs::PermissionsExt;
        options.unix_permissions(metadata.permissions().mode())
    };
    options
}

/// `time` in a zip's format, which holds the years 1980 to 2107 to two seconds; a time outside
/// them becomes 1980-01-01.
fn zip_time(time: SystemTime) -> zip::DateTime {
    let utc = UtcTime::of(time);
    let narrow = |n: u32| u8::try_from(n).unwrap_or(u8::MAX);
    u16::try_from(utc.year)
        .ok()
        .and_then(|year| {
            zip::DateTime::from_date_and_time(
                year,
                narrow(utc.month),
                narrow(utc.day),
                narrow(utc.hour),
                narrow(utc.minute),
                narrow(utc.second),
            )
            .ok()
        })
        .unwrap_or_default()
}

/// Unpacks `zip` into `dir`.
fn unzip(zip: &Path, dir: &Path) -> Result<()> {
    let archive = File::open(zip).map_err(|error| format!("opening {}: {error}", zip.display()))?;
    ZipArchive::new(BufReader::new(archive))
        .and_then(|mut archive| archive.extract(dir))
        .map_err(|error| format!("unzipping {}: {error}", zip.display()).into())
}

/// Unzips `zip` into a brand-new project (a project.godot and nothing else) under
/// target/package/smoke, checks its files against its .gdextension, imports the project and runs
/// smoke_test.gd there. Any failure is an error that says what went wrong.
pub fn smoke_test(godot: &Godot, zip: &Path) -> Result<()> {
    let started = Instant::now();
    let project = workspace::root().join("target/package/smoke");
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
    let mut problems = library_problems(&files, &parse_libraries(&text), Some(Platform::host()?));
    problems.extend(icon_problems(&files, &parse_icons(&text)));
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
    #[test]
    fn no_smoke_never_looks_for_godot() {
        let looked = std::cell::Cell::new(false);
        let result = super::smoke_test_unless_skipped(true, std::path::Path::new("x.zip"), || {
            looked.set(true);
            Err("looked for Godot".into())
        });
        assert!(result.is_ok());
        assert!(
            !looked.get(),
            "--no-smoke looked for (and could have downloaded) Godot"
        );
        let result = super::smoke_test_unless_skipped(false, std::path::Path::new("x.zip"), || {
            looked.set(true);
            Err("looked for Godot".into())
        });
        assert!(
            looked.get() && result.is_err(),
            "the smoke test looks for Godot"
        );
    }

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

    /// Each of `libraries` with the one file `built`, as [`create`] packs them.
    fn built_as(libraries: &[Library], built: &Path) -> Vec<(Library, PathBuf)> {
        libraries
            .iter()
            .map(|library| (library.clone(), built.to_path_buf()))
            .collect()
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
            &built_as(&libraries, built),
            &strings(&["threadkit.gdextension", "README.md", "icons/icon.svg"]),
            &strings(&["LICENSE"]),
            root,
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
            &built_as(&[shared.clone(), shared], built),
            &strings(&["LICENSE", "bin/lib.so"]),
            &strings(&["LICENSE"]),
            root,
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
        let libraries = built_as(&[outside], Path::new("/b.so"));
        assert!(contents(&libraries, &[], &[], Path::new("/")).is_err());
    }

    #[test]
    fn the_repositorys_package_has_every_library_its_gdextension_names_for_linux_x86_64() {
        let libraries = read_libraries().unwrap();
        let own = LINUX_X86_64.libraries(&libraries).unwrap();
        let entries = contents(
            &built_as(&own, Path::new("/built.so")),
            &strings(&["threadkit.gdextension"]),
            &[],
            Path::new("/repo"),
        )
        .unwrap();
        let names: Vec<String> = entries.into_iter().map(|e| e.name).collect();
        assert_eq!(
            library_problems(&names, &libraries, Some(LINUX_X86_64)),
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
        assert!(library_problems(&complete, &libraries, Some(LINUX_X86_64)).is_empty());

        let wrong = strings(&["addons/threadkit/bin/a.so", "addons/threadkit/bin/old.so"]);
        let problems = library_problems(&wrong, &libraries, Some(LINUX_X86_64));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("linux.release.x86_64"), "{problems:?}");
        assert!(problems[1].contains("bin/old.so"), "{problems:?}");

        // Every platform's entries: the Windows one lacks its file too.
        let problems = library_problems(&complete, &libraries, None);
        assert_eq!(
            problems,
            [
                "threadkit.gdextension entry windows.debug.x86_64 names addons/threadkit/bin/c.dll, \
              which the package lacks"
            ]
        );
    }

    /// `--from`: a folder with a library for every entry of the repository's .gdextension
    /// gives a zip with each of them at its entry's path, byte for byte, beside the addon's
    /// files; no build.
    #[test]
    fn packs_the_libraries_of_a_folder_under_every_entry_of_every_platform() {
        use std::io::Read as _;

        let dir = workspace::root().join("target/xtask-test-package-from");
        let _ = fs::remove_dir_all(&dir);
        let libraries_dir = dir.join("libraries");
        fs::create_dir_all(&libraries_dir).unwrap();
        let libraries = read_libraries().unwrap();
        let mut expected = Vec::new();
        for (index, library) in libraries.iter().enumerate() {
            let path = library.project_path().unwrap();
            let mut bytes = prebuilt::fake::for_tags(&library.tags);
            // A different file for each entry, so a mix-up shows.
            bytes.extend(format!("entry {index}").as_bytes());
            fs::write(libraries_dir.join(path.rsplit('/').next().unwrap()), &bytes).unwrap();
            expected.push((path.to_string(), bytes));
        }
        fs::write(libraries_dir.join("build.log"), "not packed").unwrap();
        let out = dir.join("threadkit.zip");
        let package = create_from(&libraries_dir, &out).unwrap();

        let mut archive = ZipArchive::new(File::open(&out).unwrap()).unwrap();
        for (path, bytes) in &expected {
            let mut packed = Vec::new();
            archive
                .by_name(path)
                .unwrap_or_else(|_| panic!("the zip lacks {path}"))
                .read_to_end(&mut packed)
                .unwrap();
            assert_eq!(&packed, bytes, "{path}");
        }
        let names: Vec<&str> = package
            .files
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        let packed_libraries = names
            .iter()
            .filter(|name| LIBRARY_EXTENSIONS.iter().any(|ext| name.ends_with(ext)))
            .count();
        assert_eq!(packed_libraries, libraries.len(), "{names:?}");
        assert!(libraries.len() >= 8, "{libraries:?}");
        assert!(names.contains(&"addons/threadkit/threadkit.gdextension"));
        assert!(!names.iter().any(|name| name.ends_with("build.log")));

        // One entry's file gone: no zip, and the error names the file and the entry.
        let (gone, _) = &expected[expected.len() - 1];
        let gone_name = gone.rsplit('/').next().unwrap();
        fs::remove_file(libraries_dir.join(gone_name)).unwrap();
        fs::remove_file(&out).unwrap();
        let error = create_from(&libraries_dir, &out).unwrap_err().to_string();
        let tags = &libraries[libraries.len() - 1].tags;
        assert!(
            error.contains(&format!(
                "{} is missing: threadkit.gdextension entry {tags} wants it",
                libraries_dir.join(gone_name).display()
            )),
            "{error}"
        );
        assert!(!out.exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_icon_file_is_named() {
        let icon = |class: &str, path: &str| Icon {
            class: class.into(),
            path: path.into(),
        };
        let icons = [
            icon("TaskHandle", "res://addons/threadkit/icons/TaskHandle.svg"),
            icon(
                "ThreadLocal",
                "res://addons/threadkit/icons/ThreadLocal.svg",
            ),
            icon("AtomicCounter", "res://icons/AtomicCounter.svg"),
        ];
        let files = strings(&["addons/threadkit/icons/TaskHandle.svg"]);
        let problems = icon_problems(&files, &icons);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("ThreadLocal")
                && problems[0].contains("addons/threadkit/icons/ThreadLocal.svg"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("AtomicCounter") && problems[1].contains("outside"),
            "{problems:?}"
        );
        assert!(icon_problems(&files, &icons[..1]).is_empty());
    }

    #[test]
    fn the_repositorys_addon_has_every_icon_its_gdextension_names() {
        let addon = workspace::root().join(ADDON_DIR);
        let files: Vec<String> = files_under(&addon)
            .unwrap()
            .into_iter()
            .map(|file| format!("{ADDON_DIR}/{file}"))
            .collect();
        let icons = read_icons().unwrap();
        assert!(!icons.is_empty());
        assert_eq!(icon_problems(&files, &icons), [] as [String; 0]);
    }

    #[test]
    fn lists_files_recursively_without_hidden_ones() {
        let dir = workspace::root().join("target/xtask-test-files-under");
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

    /// The zip holds exactly the entries, in order, deflated, with their contents, permissions
    /// and times; the zip crate reads it back and unpacks it as the smoke test does.
    #[cfg(unix)]
    #[test]
    fn writes_a_zip_that_reads_back_entry_by_entry() {
        use std::io::Read as _;
        use std::os::unix::fs::PermissionsExt;

        let dir = workspace::root().join("target/xtask-test-zip");
        let _ = fs::remove_dir_all(&dir);
        let sources = dir.join("sources");
        fs::create_dir_all(&sources).unwrap();
        let library = sources.join("built.so");
        // Large and repetitive, like a library: deflate must shrink it.
        fs::write(&library, b"\x7fELF library ".repeat(50_000)).unwrap();
        fs::set_permissions(&library, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(sources.join("threadkit.gdextension"), "[configuration]\n").unwrap();
        fs::write(sources.join("empty"), "").unwrap();
        let entry = |name: &str, source: &str| Entry {
            name: name.into(),
            source: sources.join(source),
        };
        let entries = [
            entry("addons/threadkit/LICENSE", "empty"),
            entry("addons/threadkit/bin/lib.debug.so", "built.so"),
            entry("addons/threadkit/bin/lib.release.so", "built.so"),
            entry(
                "addons/threadkit/threadkit.gdextension",
                "threadkit.gdextension",
            ),
        ];
        let out = dir.join("package.zip");
        fs::write(
            &out,
            "an older, longer file that the new zip must replace whole",
        )
        .unwrap();
        let files = write_zip(&entries, &out).unwrap();
        let sizes: Vec<(&str, u64)> = files.iter().map(|(n, s)| (n.as_str(), *s)).collect();
        assert_eq!(
            sizes,
            [
                ("addons/threadkit/LICENSE", 0),
                ("addons/threadkit/bin/lib.debug.so", 650_000),
                ("addons/threadkit/bin/lib.release.so", 650_000),
                ("addons/threadkit/threadkit.gdextension", 16),
            ]
        );
        assert!(fs::metadata(&out).unwrap().len() < 100_000, "deflated");

        let mut archive = ZipArchive::new(File::open(&out).unwrap()).unwrap();
        let names: Vec<&str> = (0..archive.len())
            .filter_map(|index| archive.name_for_index(index))
            .collect();
        let expected: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, expected);
        for (index, entry) in entries.iter().enumerate() {
            let mut file = archive.by_index(index).unwrap();
            assert_eq!(file.compression(), CompressionMethod::Deflated);
            let mut contents = Vec::new();
            file.read_to_end(&mut contents).unwrap();
            assert_eq!(contents, fs::read(&entry.source).unwrap(), "{}", entry.name);
            let metadata = fs::metadata(&entry.source).unwrap();
            assert_eq!(
                file.unix_mode().map(|mode| mode & 0o777),
                Some(metadata.permissions().mode() & 0o777),
                "{}",
                entry.name
            );
            assert_eq!(
                file.last_modified(),
                Some(zip_time(metadata.modified().unwrap())),
                "{}",
                entry.name
            );
        }
        drop(archive);

        let unpacked = dir.join("unpacked");
        unzip(&out, &unpacked).unwrap();
        for entry in &entries {
            assert_eq!(
                fs::read(unpacked.join(&entry.name)).unwrap(),
                fs::read(&entry.source).unwrap()
            );
        }
        let library = fs::metadata(unpacked.join("addons/threadkit/bin/lib.release.so")).unwrap();
        assert_eq!(library.permissions().mode() & 0o777, 0o755);
        assert!(unzip(&sources.join("empty"), &dir.join("nothing")).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn converts_times_to_the_zip_format() {
        use std::time::Duration;
        // 2024-02-29 23:59:58 UTC.
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(19_782 * 86_400 + 86_398);
        assert_eq!(
            zip_time(time),
            zip::DateTime::from_date_and_time(2024, 2, 29, 23, 59, 58).unwrap()
        );
        assert_eq!(zip_time(SystemTime::UNIX_EPOCH), zip::DateTime::default());
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
        assert!(release.starts_with(workspace::root().join("target/package")));
    }
}
