//! Finding the Godot binary: `$GODOT`, else `godot4`/`godot` on PATH, else a cached or freshly
//! provisioned private copy (see provision.rs).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use crate::workspace::{Result, godot_project_dir};
use crate::{gdextension, provision};

pub struct Godot {
    pub program: PathBuf,
    pub version: Version,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Version {
    /// Parses the start of `godot --version` output, e.g. `4.6.3.stable.debian4.6.3+ds-3`.
    pub fn parse(text: &str) -> Option<Version> {
        let mut numbers = text.trim().split(['.', '-', ' ']).map(str::parse::<u32>);
        let major = numbers.next()?.ok()?;
        let minor = numbers.next()?.ok()?;
        let patch = numbers.next().and_then(|n| n.ok()).unwrap_or(0);
        Some(Version {
            major,
            minor,
            patch,
        })
    }
}

impl Godot {
    /// Finds a usable Godot, provisioning one if there is none, and says which it took.
    pub fn locate() -> Result<Godot> {
        let minimum = minimum_version()?;
        let godot = Self::find(minimum)?;
        println!(
            "xtask: using Godot {} at {}",
            godot.version,
            godot.program.display()
        );
        Ok(godot)
    }

    fn find(minimum: Version) -> Result<Godot> {
        if let Some(path) = std::env::var_os("GODOT").filter(|p| !p.is_empty()) {
            let godot = Self::probe(Path::new(&path)).ok_or_else(|| {
                format!(
                    "$GODOT={} does not run `--version`; point $GODOT at a Godot {minimum}+ binary",
                    Path::new(&path).display()
                )
            })?;
            if godot.version < minimum {
                return Err(format!(
                    "$GODOT is Godot {}, ThreadKit needs {minimum} or newer",
                    godot.version
                )
                .into());
            }
            return Ok(godot);
        }
        for name in ["godot4", "godot"] {
            if let Some(godot) = which::which(name).ok().and_then(|p| Self::probe(&p)) {
                if godot.version >= minimum {
                    return Ok(godot);
                }
                println!(
                    "xtask: skipping {} (Godot {}, older than {minimum})",
                    godot.program.display(),
                    godot.version
                );
            }
        }
        let launcher = provision::private_godot()?;
        Self::probe(&launcher).ok_or_else(|| {
            format!(
                "the provisioned Godot at {} does not start; delete that folder to provision \
                 it again, or set $GODOT to a Godot {minimum}+ binary",
                launcher.display()
            )
            .into()
        })
    }

    /// Runs `program --version`; `None` when it does not run or print a version.
    fn probe(program: &Path) -> Option<Godot> {
        let output = Command::new(program).arg("--version").output().ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let version = text.lines().find_map(Version::parse)?;
        Some(Godot {
            program: program.to_path_buf(),
            version,
        })
    }

    /// A command running this Godot on godot_project/.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command_in(&godot_project_dir(), args)
    }

    /// A command running this Godot on the project in `project_dir`.
    pub fn command_in<I, S>(&self, project_dir: &Path, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(&self.program);
        command.arg("--path").arg(project_dir).args(args);
        command
    }

    /// Like [`Godot::command`], with `library_dirs` searched after the private Godot's own
    /// libraries (a Godot not provisioned by xtask finds the host's libraries as usual).
    pub fn command_with_libraries<I, S>(&self, library_dirs: &[PathBuf], args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = provision::command_with_libraries(&self.program, library_dirs)
            .unwrap_or_else(|| Command::new(&self.program));
        command.arg("--path").arg(godot_project_dir()).args(args);
        command
    }
}

/// `compatibility_minimum` from threadkit.gdextension: one source for the oldest Godot we load in.
pub fn minimum_version() -> Result<Version> {
    let file = gdextension::file();
    let text = std::fs::read_to_string(&file)?;
    text.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(key, _)| key.trim() == "compatibility_minimum")
        .and_then(|(_, value)| Version::parse(value.trim().trim_matches('"')))
        .ok_or_else(|| format!("no compatibility_minimum in {}", file.display()).into())
}

/// `cargo xtask godot ARGS`: run that Godot on the project, for example `--editor`.
pub fn run_passthrough(args: &[OsString]) -> Result<ExitCode> {
    let godot = Godot::locate()?;
    let status = godot.command(args).status()?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_godot_version_strings() {
        let v = Version::parse("4.6.3.stable.debian4.6.3+ds-3").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (4, 6, 3));
        let v = Version::parse("4.3.stable.official.77dcf97d8").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (4, 3, 0));
        assert_eq!(Version::parse("Godot Engine"), None);
    }

    #[test]
    fn minimum_version_comes_from_the_gdextension_file() {
        let v = minimum_version().unwrap();
        assert_eq!(v.major, 4);
        assert!(v.minor >= 5, "the script-error Logger needs Godot 4.5");
    }

    /// The extension is built against one Godot API (gdext's `api-4-N` feature); it loads in that
    /// Godot and later ones only, so the .gdextension must not claim an older one.
    #[test]
    fn minimum_version_is_the_api_the_extension_is_built_against() {
        let v = minimum_version().unwrap();
        let manifest =
            std::fs::read_to_string(crate::workspace::root().join("Cargo.toml")).unwrap();
        let feature = format!("\"api-{}-{}\"", v.major, v.minor);
        assert!(
            manifest.contains(&feature),
            "Cargo.toml's godot dependency should have the feature {feature}, as compatibility_minimum is {}.{}",
            v.major,
            v.minor
        );
    }
}
