//! Private programs from Debian's archive, for machines that have none: Godot, and Xvfb with
//! Mesa for `cargo xtask demo --screenshot`.
//!
//! Each bundle is a set of packages that apt-get resolves and downloads with a private
//! configuration (its own sources list naming suite sid, an empty dpkg status so it resolves the
//! whole library closure, its own cache and lists) in download-only mode, so nothing is installed
//! system-wide and no root-owned state changes. Each .deb is unpacked with `dpkg-deb -x` into the
//! bundle's root folder, and small launcher scripts start its programs through that folder's own
//! dynamic loader with that folder's libraries, so the host's (possibly older) libc is never
//! mixed in.

use std::ffi::OsStr;
use std::fs;
#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::workspace::{self, Result};

const SUITE: &str = "sid";
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// The first line after the shebang of every launcher, which also marks it as ours.
const LAUNCHER_MARK: &str = "unpacked privately by `cargo xtask`";

/// A set of packages unpacked together into one cached folder.
pub struct Bundle {
    /// The folder is `<name>-debian-sid` in the cache.
    pub name: &'static str,
    /// For messages: what the bundle provides.
    pub title: &'static str,
    pub packages: &'static [&'static str],
    /// The launcher that `finish` writes; its presence says the bundle is complete.
    pub launcher: &'static str,
}

/// The cache folder: `$THREADKIT_CACHE`, else `$XDG_CACHE_HOME/threadkit`, else
/// `~/.cache/threadkit`, else target/threadkit-cache.
fn cache_dir() -> PathBuf {
    let env = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("THREADKIT_CACHE")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("threadkit")))
        .or_else(|| env("HOME").map(|d| d.join(".cache/threadkit")))
        .unwrap_or_else(|| workspace::root().join("target/threadkit-cache"))
}

/// The launcher of the cached private Godot, provisioning it first when there is none.
pub fn private_godot() -> Result<PathBuf> {
    const GODOT: Bundle = Bundle {
        name: "godot",
        title: "Godot",
        packages: &["godot"],
        launcher: "godot",
    };
    let home = provisioned(&GODOT, &|staging| {
        staging.write_launcher("godot", "usr/bin/godot", &[], &[])
    })
    .map_err(|error| {
        format!(
            "no Godot found and none could be provisioned: {error}\n\
             Install Godot 4 and set GODOT=/path/to/godot (or put `godot` on PATH)."
        )
    })?;
    Ok(home.join(GODOT.launcher))
}

/// The folder of `bundle` in the cache, provisioned first when it is not complete; `finish`
/// writes the launchers (and whatever else the bundle needs) into the staging folder.
pub fn provisioned(bundle: &Bundle, finish: &dyn Fn(&Staging) -> Result<()>) -> Result<PathBuf> {
    let home = cache_dir().join(format!("{}-debian-{SUITE}", bundle.name));
    if !home.join(bundle.launcher).is_file() {
        provision(bundle, &home, finish)?;
    }
    Ok(home)
}

/// A bundle being provisioned: unpacked in `dir`/root, to be moved to `home` when complete.
pub struct Staging {
    dir: PathBuf,
    home: PathBuf,
}

impl Staging {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// Where `path`, inside the staging folder, will be once the bundle is in place.
    pub fn final_path(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.dir) {
            Ok(inside) if inside.as_os_str().is_empty() => self.home.clone(),
            Ok(inside) => self.home.join(inside),
            Err(_) => path.to_path_buf(),
        }
    }

    /// Writes the launcher `name` for `program` (a path inside the root). Each of `search_paths`
    /// is a colon-separated list variable (PATH, LIBGL_DRIVERS_PATH...) that the launcher puts
    /// the given folder in front of; `args` come before the caller's.
    pub fn write_launcher(
        &self,
        name: &str,
        program: &str,
        search_paths: &[(&str, PathBuf)],
        args: &[&OsStr],
    ) -> Result<()> {
        let root = self.root();
        let (loader, library_dirs) = loader_and_libraries(&root)?;
        let program = root.join(program);
        if !program.is_file() {
            return Err(format!("the unpacked packages hold no {}", program.display()).into());
        }
        let mut script = format!(
            "#!/bin/sh\n# {name} from Debian {SUITE}, {LAUNCHER_MARK}; runs on its own libraries.\n"
        );
        for (variable, folder) in search_paths {
            script += &format!(
                "{variable}={}\"${{{variable}:+:${variable}}}\"; export {variable}\n",
                quote(self.final_path(folder).as_os_str())
            );
        }
        script += &format!(
            "exec {} --library-path {} {}",
            quote(self.final_path(&loader).as_os_str()),
            quote(OsStr::new(&join_paths(
                library_dirs.iter().map(|dir| self.final_path(dir))
            ))),
            quote(self.final_path(&program).as_os_str())
        );
        for arg in args {
            script += " ";
            script += &quote(arg);
        }
        script += " \"$@\"\n";
        let path = self.dir.join(name);
        fs::write(&path, script)?;
        // Only Debian-family hosts provision; elsewhere xtask must still compile.
        #[cfg(unix)]
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        Ok(())
    }
}

/// The library folders of a provisioned bundle (for another private program that needs them).
pub fn library_dirs(home: &Path) -> Result<Vec<PathBuf>> {
    Ok(loader_and_libraries(&home.join("root"))?.1)
}

/// How `launcher` runs, with `extra_library_dirs` searched after its own libraries, when it is a
/// launcher that xtask wrote; `None` for any other program.
pub fn command_with_libraries(launcher: &Path, extra_library_dirs: &[PathBuf]) -> Option<Command> {
    let text = fs::read_to_string(launcher).ok()?;
    if !text
        .lines()
        .nth(1)
        .is_some_and(|l| l.contains(LAUNCHER_MARK))
    {
        return None;
    }
    let home = launcher.parent()?;
    let program = home.join("root/usr/bin").join(launcher.file_name()?);
    let (loader, mut library_dirs) = loader_and_libraries(&home.join("root")).ok()?;
    library_dirs.extend(extra_library_dirs.iter().cloned());
    let mut command = Command::new(loader);
    command
        .arg("--library-path")
        .arg(join_paths(library_dirs))
        .arg(program);
    Some(command)
}

fn provision(bundle: &Bundle, home: &Path, finish: &dyn Fn(&Staging) -> Result<()>) -> Result<()> {
    let started = Instant::now();
    if !Path::new("/etc/debian_version").exists() || which::which("apt-get").is_err() {
        return Err("this is not a Debian-family machine with apt-get".into());
    }
    if which::which("dpkg-deb").is_err() {
        return Err("dpkg-deb is missing".into());
    }
    if !Path::new(KEYRING).is_file() {
        return Err(format!("{KEYRING} is missing (package debian-archive-keyring)").into());
    }
    let mirror = debian_mirror()?;
    println!(
        "xtask: provisioning {} from Debian {SUITE} ({}) into {}: reading the archive's package \
         index first (apt-get prints what it fetched)",
        bundle.title,
        bundle.packages.join(" "),
        home.display()
    );

    // Work in a fresh staging folder and rename it into place at the end, so an interrupted or
    // concurrent run never leaves a half-unpacked bundle that looks complete.
    let parent = home.parent().ok_or("cache folder has no parent")?;
    fs::create_dir_all(parent)?;
    let staging = Staging {
        dir: parent.join(format!(".{}-staging-{}", bundle.name, std::process::id())),
        home: home.to_path_buf(),
    };
    let _ = fs::remove_dir_all(&staging.dir);
    let apt = staging.dir.join("apt");
    for dir in [
        "etc/sources.list.d",
        "etc/preferences.d",
        "etc/apt.conf.d",
        "lists/partial",
        "cache/archives/partial",
    ] {
        fs::create_dir_all(apt.join(dir))?;
    }
    fs::write(apt.join("status"), "")?;
    fs::write(
        apt.join("etc/sources.list"),
        format!("deb [signed-by={KEYRING}] {mirror} {SUITE} main\n"),
    )?;
    let config = apt.join("apt.conf");
    fs::write(&config, apt_config(&apt))?;

    let apt_get = |args: &[&str]| {
        let mut command = Command::new("apt-get");
        command
            .env("APT_CONFIG", &config)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["-q", "-y"])
            .args(args);
        command
    };
    let failed = |args: &[&str], status| format!("apt-get {} failed ({status})", args.join(" "));
    let update = ["update"];
    let status = apt_get(&update).status()?;
    if !status.success() {
        return Err(failed(&update, status).into());
    }
    let install = [
        &["install", "--download-only", "--no-install-recommends"][..],
        bundle.packages,
    ]
    .concat();
    // The same resolution, listing each .deb with its size instead of fetching it.
    let listing = [&install[..], &["--print-uris", "-qq"]].concat();
    let output = apt_get(&listing).output()?;
    if !output.status.success() {
        return Err(format!(
            "{}: {}",
            failed(&listing, output.status),
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    let download = Download::from_print_uris(&String::from_utf8_lossy(&output.stdout))?;
    println!(
        "xtask: {}",
        download.announce(bundle.title, bundle.packages[0], home)
    );
    let status = apt_get(&install).status()?;
    if !status.success() {
        return Err(failed(&install, status).into());
    }

    let root = staging.root();
    fs::create_dir_all(&root)?;
    let mut debs = 0;
    for entry in fs::read_dir(apt.join("cache/archives"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "deb") {
            let status = Command::new("dpkg-deb")
                .arg("-x")
                .arg(&path)
                .arg(&root)
                .status()?;
            if !status.success() {
                return Err(format!("dpkg-deb -x {} failed", path.display()).into());
            }
            debs += 1;
        }
    }
    fs::remove_dir_all(&apt)?; // The .debs are unpacked; keep the cache small.

    finish(&staging)?;
    match fs::rename(&staging.dir, home) {
        Ok(()) => {}
        // Another run finished first: keep its copy.
        Err(_) if home.join(bundle.launcher).is_file() => fs::remove_dir_all(&staging.dir)?,
        Err(error) => return Err(error.into()),
    }
    println!(
        "xtask: provisioned {} ({debs} packages, {}) in {:.1} s; to reuse it elsewhere: {}",
        bundle.title,
        megabytes(download.bytes()),
        started.elapsed().as_secs_f64(),
        home.join(bundle.launcher).display()
    );
    Ok(())
}

/// What apt is about to download for a bundle.
#[derive(Debug, PartialEq)]
struct Download {
    /// Each .deb's file name and size in bytes, in apt's order.
    debs: Vec<(String, u64)>,
}

impl Download {
    /// Reads `apt-get install --print-uris -qq` output: a line `'URI' FILE SIZE HASH` per .deb.
    fn from_print_uris(text: &str) -> Result<Self> {
        let mut debs = Vec::new();
        for line in text.lines().filter(|line| line.starts_with('\'')) {
            let mut fields = line.split_whitespace().skip(1);
            let (Some(file), Some(size)) = (fields.next(), fields.next()) else {
                return Err(
                    format!("apt-get --print-uris printed an unexpected line: {line}").into(),
                );
            };
            let size = size.parse().map_err(|_| {
                format!("apt-get --print-uris printed a size that is not a number: {line}")
            })?;
            debs.push((file.to_owned(), size));
        }
        if debs.is_empty() {
            return Err("apt-get --print-uris listed no package to download".into());
        }
        Ok(Self { debs })
    }

    fn bytes(&self) -> u64 {
        self.debs.iter().map(|(_, size)| size).sum()
    }

    /// The Debian version of `package` (`4.6.3+ds-3`), from its file name
    /// (`<package>_<version>_<arch>.deb`, an epoch's colon written `%3a`).
    fn version_of(&self, package: &str) -> Option<String> {
        let prefix = format!("{package}_");
        self.debs.iter().find_map(|(file, _)| {
            let (version, _arch) = file.strip_prefix(&prefix)?.rsplit_once('_')?;
            Some(version.replace("%3a", ":"))
        })
    }

    /// The line said before the download: what, from where, how many packages, how much, where
    /// to.
    fn announce(&self, title: &str, main_package: &str, home: &Path) -> String {
        let version = self
            .version_of(main_package)
            .map_or_else(String::new, |version| {
                format!(" ({main_package} {version})")
            });
        let count = self.debs.len();
        format!(
            "provisioning {title} from Debian {SUITE}{version}: {count} package{}, {} to download \
             into {}",
            if count == 1 { "" } else { "s" },
            megabytes(self.bytes()),
            home.display()
        )
    }
}

/// A size as apt writes it: decimal megabytes with one decimal, kilobytes below one megabyte.
fn megabytes(bytes: u64) -> String {
    if bytes < 1_000_000 {
        format!("{} kB", bytes.div_ceil(1000))
    } else {
        format!("{:.1} MB", bytes as f64 / 1e6)
    }
}

/// An apt configuration that reads and writes only below `apt`.
fn apt_config(apt: &Path) -> String {
    let d = apt.display();
    format!(
        r#"Dir::Etc "{d}/etc/";
Dir::Etc::Parts "{d}/etc/apt.conf.d/";
Dir::Etc::TrustedParts "/etc/apt/trusted.gpg.d/";
Dir::State "{d}/";
Dir::State::Lists "{d}/lists/";
Dir::State::status "{d}/status";
Dir::Cache "{d}/cache/";
Dir::Log "{d}/log/";
APT::Install-Recommends "false";
APT::Get::AllowUnauthenticated "false";
Debug::NoLocking "true";
// The files live in a private folder that apt's unprivileged download user cannot enter.
APT::Sandbox::User "root";
Acquire::Languages "none";
// sid's Release file can outlive its Valid-Until on a mirror that is not refreshed daily.
Acquire::Check-Valid-Until "false";
"#
    )
}

/// The Debian archive this machine's apt already uses (so no host is hard-coded here), or
/// `$THREADKIT_DEBIAN_MIRROR`.
fn debian_mirror() -> Result<String> {
    if let Some(mirror) = std::env::var("THREADKIT_DEBIAN_MIRROR")
        .ok()
        .filter(|m| !m.is_empty())
    {
        return Ok(mirror);
    }
    let mut texts: Vec<String> = fs::read_to_string("/etc/apt/sources.list")
        .into_iter()
        .collect();
    if let Ok(entries) = fs::read_dir("/etc/apt/sources.list.d") {
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.to_string_lossy();
            if name.ends_with(".list") || name.ends_with(".sources") {
                texts.extend(fs::read_to_string(&path).ok());
            }
        }
    }
    texts
        .iter()
        .flat_map(|text| archive_uris(text))
        .find(|uri| uri.trim_end_matches('/').ends_with("/debian"))
        .ok_or_else(|| {
            "this machine's apt sources name no Debian archive (a URI ending in /debian); \
             set THREADKIT_DEBIAN_MIRROR to one"
                .into()
        })
}

/// URIs in a sources file, one-line (`deb [opts] URI suite ...`) or deb822 (`URIs: ...`) style.
fn archive_uris(text: &str) -> Vec<String> {
    let mut uris = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("URIs:") {
            uris.extend(rest.split_whitespace().map(String::from));
        } else if let Some(rest) = line.strip_prefix("deb ") {
            let rest = match rest.trim_start().strip_prefix('[') {
                Some(options) => options.split_once(']').map_or("", |(_, r)| r),
                None => rest,
            };
            uris.extend(rest.split_whitespace().next().map(String::from));
        }
    }
    uris
}

/// The unpacked dynamic loader, and every folder of the unpacked tree that holds libraries
/// (shallowest first, so the standard folders win).
fn loader_and_libraries(root: &Path) -> Result<(PathBuf, Vec<PathBuf>)> {
    let loader = find_files(root, &|name| {
        name.starts_with("ld-linux") && name.contains(".so")
    })
    .into_iter()
    .next()
    .ok_or("the unpacked packages hold no ld-linux dynamic loader")?;
    let mut library_dirs: Vec<PathBuf> =
        find_files(root, &|name| name.ends_with(".so") || name.contains(".so."))
            .into_iter()
            .filter_map(|file| file.parent().map(Path::to_path_buf))
            .collect();
    library_dirs.sort_by_key(|dir| (dir.components().count(), dir.clone()));
    library_dirs.dedup();
    Ok((loader, library_dirs))
}

fn join_paths(dirs: impl IntoIterator<Item = PathBuf>) -> String {
    dirs.into_iter()
        .map(|dir| dir.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// `text` as one single-quoted shell word.
fn quote(text: &OsStr) -> String {
    format!("'{}'", text.to_string_lossy().replace('\'', r"'\''"))
}

/// The first file called `name` below `dir`.
pub fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    find_files(dir, &|file| file == name).into_iter().next()
}

fn find_files(dir: &Path, wanted: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            found.extend(find_files(&path, wanted));
        } else if wanted(&entry.file_name().to_string_lossy()) {
            found.push(path);
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRINT_URIS: &str = "\
'http://deb.debian.org/debian/pool/main/g/godot/godot_4.6.3%2bds-3_amd64.deb' godot_4.6.3+ds-3_amd64.deb 38611448 SHA256:0a1b
'http://deb.debian.org/debian/pool/main/g/glibc/libc6_2.41-12_amd64.deb' libc6_2.41-12_amd64.deb 2852100 SHA256:2c3d
'http://deb.debian.org/debian/pool/main/x/xorg-server/xvfb_21.1.16-1_amd64.deb' xvfb_2%3a21.1.16-1_amd64.deb 3000000 SHA256:4e5f
";

    #[test]
    fn the_download_is_counted_and_summed_from_print_uris() {
        let download = Download::from_print_uris(PRINT_URIS).unwrap();
        assert_eq!(download.debs.len(), 3);
        assert_eq!(download.bytes(), 38_611_448 + 2_852_100 + 3_000_000);
        assert_eq!(download.version_of("godot").as_deref(), Some("4.6.3+ds-3"));
        assert_eq!(download.version_of("xvfb").as_deref(), Some("2:21.1.16-1"));
        assert_eq!(
            download.version_of("libc"),
            None,
            "a name's prefix is not the name"
        );
        assert_eq!(
            download.announce(
                "Godot",
                "godot",
                Path::new("/home/me/.cache/threadkit/godot-debian-sid")
            ),
            "provisioning Godot from Debian sid (godot 4.6.3+ds-3): 3 packages, 44.5 MB to \
             download into /home/me/.cache/threadkit/godot-debian-sid"
        );
        let one = Download::from_print_uris(PRINT_URIS.lines().nth(1).unwrap()).unwrap();
        assert_eq!(
            one.announce("C library", "missing", Path::new("/c")),
            "provisioning C library from Debian sid: 1 package, 2.9 MB to download into /c"
        );
    }

    #[test]
    fn print_uris_without_packages_or_with_a_bad_size_is_an_error() {
        // apt-get's other output (notices) starts otherwise and is skipped.
        let error = Download::from_print_uris("Reading package lists...\n").unwrap_err();
        assert!(error.to_string().contains("listed no package"), "{error}");
        let error =
            Download::from_print_uris("'http://x/a.deb' a_1_all.deb big SHA256:0\n").unwrap_err();
        assert!(error.to_string().contains("not a number"), "{error}");
        let error = Download::from_print_uris("'http://x/a.deb'\n").unwrap_err();
        assert!(error.to_string().contains("unexpected line"), "{error}");
    }

    #[test]
    fn sizes_read_as_apt_writes_them() {
        assert_eq!(megabytes(0), "0 kB");
        assert_eq!(megabytes(1), "1 kB");
        assert_eq!(megabytes(999_999), "1000 kB");
        assert_eq!(megabytes(1_000_000), "1.0 MB");
        assert_eq!(megabytes(41_249_999), "41.2 MB");
        assert_eq!(megabytes(1_234_567_890), "1234.6 MB");
    }

    #[test]
    fn reads_uris_from_both_sources_formats() {
        let one_line = "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\ndeb http://other.example/debian-security bookworm-security main\n";
        assert_eq!(
            archive_uris(one_line),
            [
                "http://mirror.example/debian",
                "http://other.example/debian-security"
            ]
        );
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n";
        assert_eq!(archive_uris(deb822), ["http://mirror.example/debian"]);
    }

    /// A bundle made of the host's own loader and printenv: its launcher must run printenv
    /// through that loader, with the launcher's variables and arguments before the caller's.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[test]
    fn launchers_run_programs_through_the_bundled_loader() {
        let dir = std::env::temp_dir().join(format!("threadkit-launcher-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        // Quotes in the paths exercise the launcher's quoting.
        let staging = Staging {
            dir: dir.join("it's staging"),
            home: dir.join("it's home"),
        };
        let root = staging.root();
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        fs::create_dir_all(root.join("usr/bin")).unwrap();
        fs::copy(
            "/lib64/ld-linux-x86-64.so.2",
            root.join("usr/lib/ld-linux-x86-64.so.2"),
        )
        .unwrap();
        fs::copy("/usr/bin/printenv", root.join("usr/bin/printenv")).unwrap();
        staging
            .write_launcher(
                "printenv",
                "usr/bin/printenv",
                &[("TK_LIST", staging.dir().join("sub"))],
                &[OsStr::new("TK_LIST")],
            )
            .unwrap();
        fs::rename(staging.dir(), &staging.home).unwrap();
        let launcher = staging.home.join("printenv");
        let run = |command: &mut Command| {
            let output = command.env("TK_OTHER", "other").output().unwrap();
            String::from_utf8(output.stdout).unwrap()
        };
        let sub = staging.home.join("sub").display().to_string();
        assert_eq!(
            run(Command::new(&launcher)
                .arg("TK_OTHER")
                .env_remove("TK_LIST")),
            format!("{sub}\nother\n")
        );
        assert_eq!(
            run(Command::new(&launcher).env("TK_LIST", "/before")),
            format!("{sub}:/before\n")
        );
        // Run directly, without the launcher (and so without its variable).
        let mut direct = command_with_libraries(&launcher, &[]).unwrap();
        assert_eq!(run(direct.arg("TK_OTHER")), "other\n");
        assert!(command_with_libraries(Path::new("/usr/bin/printenv"), &[]).is_none());
        fs::remove_dir_all(&dir).unwrap();
    }
}
