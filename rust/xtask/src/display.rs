//! A virtual X display for screenshots: Xvfb from PATH, else a private one with Mesa from Debian's
//! archive (see provision.rs), on the first free display number from :99 up.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::provision::{self, Bundle, Staging};
use crate::workspace::{self, Result};

/// Display numbers tried, from the first up; a busy one is skipped.
const FIRST_DISPLAY: u32 = 99;
const ATTEMPTS: u32 = 20;
/// How long Xvfb may take to accept connections.
const START_LIMIT: Duration = Duration::from_secs(60);

/// Xvfb, Mesa's software GL for its GLX and for the private Godot, and the keyboard compiler and
/// data it needs to start.
const XVFB: Bundle = Bundle {
    name: "xvfb",
    title: "Xvfb and Mesa",
    packages: &[
        "xvfb",
        "x11-xkb-utils",
        "xkb-data",
        "libgl1-mesa-dri",
        "libglx-mesa0",
    ],
    launcher: "Xvfb",
};

/// A running Xvfb; dropping it stops it.
pub struct VirtualDisplay {
    xvfb: Child,
    /// For `DISPLAY`, e.g. `:99`.
    pub name: String,
    /// Mesa's GL for a private Godot (which has none of its own); empty for the host's Xvfb, whose
    /// machine has its GL installed beside it.
    pub gl_library_dirs: Vec<PathBuf>,
}

impl Drop for VirtualDisplay {
    fn drop(&mut self) {
        let _ = self.xvfb.kill();
        let _ = self.xvfb.wait();
    }
}

/// Starts Xvfb with one screen of `width` x `height` at 24 bits, and waits until it accepts
/// connections.
pub fn start(width: u32, height: u32) -> Result<VirtualDisplay> {
    let (program, gl_library_dirs) = match which::which("Xvfb").ok() {
        Some(program) => (program, Vec::new()),
        None => {
            let home = provision::provisioned(&XVFB, &finish_xvfb)
                .map_err(|error| format!("no Xvfb found and none could be provisioned: {error}"))?;
            let libraries = provision::library_dirs(&home)?;
            (home.join(XVFB.launcher), libraries)
        }
    };
    let log = workspace::root().join("target/xvfb.log");
    fs::create_dir_all(log.parent().expect("target/ has a parent"))?;
    let mut number = FIRST_DISPLAY;
    for _ in 0..ATTEMPTS {
        number = first_free_display(number, display_in_use);
        let name = format!(":{number}");
        let mut xvfb = Command::new(&program)
            .arg(&name)
            .args(["-screen", "0", &format!("{width}x{height}x24")])
            // -displayfd: Xvfb writes the display number to its stdout once clients can connect.
            // -terminate: it exits when its last client does, even if xtask is gone by then.
            .args(["-nolisten", "tcp", "-terminate", "-displayfd", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log)?)
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", program.display()))?;
        let ready = first_line(xvfb.stdout.take().expect("piped"));
        match ready.recv_timeout(START_LIMIT) {
            Ok(line) if parse_display_number(&line) == Some(number) => {
                println!(
                    "xtask: started Xvfb on {name} ({}; log in {})",
                    program.display(),
                    log.display()
                );
                return Ok(VirtualDisplay {
                    xvfb,
                    name,
                    gl_library_dirs,
                });
            }
            _ => {
                let _ = xvfb.kill();
                let _ = xvfb.wait();
                let text = fs::read_to_string(&log).unwrap_or_default();
                // Another server took the number between the check and the start (or holds it
                // where its files cannot be seen, as in another /tmp): try the next.
                let taken = ["already active", "Cannot establish any listening sockets"];
                if !taken.iter().any(|message| text.contains(message)) {
                    return Err(format!(
                        "Xvfb did not start on {name}; its log ({}) ends:\n{}",
                        log.display(),
                        tail(&text, 15)
                    )
                    .into());
                }
                number += 1;
            }
        }
    }
    Err(format!("no free X display from :{FIRST_DISPLAY} to :{number}").into())
}

/// The first display number from `from` up that `in_use` does not claim.
fn first_free_display(from: u32, in_use: impl Fn(u32) -> bool) -> u32 {
    (from..)
        .find(|&n| !in_use(n))
        .expect("some display number is free")
}

/// A display whose lock file or socket exists belongs to a running (or crashed) server.
fn display_in_use(number: u32) -> bool {
    Path::new(&format!("/tmp/.X{number}-lock")).exists()
        || Path::new(&format!("/tmp/.X11-unix/X{number}")).exists()
}

/// What Xvfb writes to its -displayfd: the display number and a newline.
fn parse_display_number(line: &str) -> Option<u32> {
    line.trim().parse().ok()
}

/// The first line `stream` gives, on a channel (nothing is sent if it closes without one).
fn first_line(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        if BufReader::new(stream).read_line(&mut line).unwrap_or(0) > 0 {
            let _ = sender.send(line);
        }
    });
    receiver
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Launchers for the private Xvfb and its keyboard compiler.
///
/// Xvfb runs `xkbcomp` from a folder compiled into it (/usr/bin, which has none here) and
/// has no option or variable to change that. Its binary holds that folder as one string, which
/// is blanked here: an empty folder makes Xvfb run plain `xkbcomp`, which its shell finds on the
/// PATH that the Xvfb launcher starts with the bundle's folder (where the xkbcomp launcher is).
/// The keyboard data comes from the bundle through -xkbdir, and the GLX extension's software
/// renderer through LIBGL_DRIVERS_PATH, which Xvfb reads.
fn finish_xvfb(staging: &Staging) -> Result<()> {
    let root = staging.root();
    let xvfb = root.join("usr/bin/Xvfb");
    let binary = fs::read(&xvfb)?;
    let patched = blank_string(&binary, b"/usr/bin").ok_or(
        "the unpacked Xvfb does not hold its xkbcomp folder (/usr/bin) exactly once, so it \
         cannot be pointed at the private xkbcomp",
    )?;
    fs::write(&xvfb, patched)?;
    staging.write_launcher("xkbcomp", "usr/bin/xkbcomp", &[], &[])?;
    let dri = provision::find_file(&root, "swrast_dri.so")
        .and_then(|driver| driver.parent().map(Path::to_path_buf))
        .ok_or("the unpacked Mesa has no swrast_dri.so")?;
    let xkb = root.join("usr/share/X11/xkb");
    let xkb = staging.final_path(&xkb);
    staging.write_launcher(
        XVFB.launcher,
        "usr/bin/Xvfb",
        &[
            ("PATH", staging.dir().to_path_buf()),
            ("LIBGL_DRIVERS_PATH", dri),
        ],
        &[OsStr::new("-xkbdir"), xkb.as_os_str()],
    )
}

/// `binary` with the one NUL-terminated string `text` overwritten with NULs; `None` unless it
/// holds exactly one such string (a longer string ending in `text` does not count).
fn blank_string(binary: &[u8], text: &[u8]) -> Option<Vec<u8>> {
    let needle = [&[0], text, &[0]].concat();
    let mut found = binary
        .windows(needle.len())
        .enumerate()
        .filter(|(_, window)| *window == needle.as_slice())
        .map(|(at, _)| at + 1);
    let at = found.next()?;
    if found.next().is_some() {
        return None;
    }
    let mut patched = binary.to_vec();
    patched[at..at + text.len()].fill(0);
    Some(patched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_display_numbers_in_use() {
        assert_eq!(first_free_display(99, |_| false), 99);
        assert_eq!(first_free_display(99, |n| n < 102), 102);
    }

    #[test]
    fn reads_the_display_number_xvfb_reports() {
        assert_eq!(parse_display_number("99\n"), Some(99));
        assert_eq!(parse_display_number(""), None);
        assert_eq!(parse_display_number("(EE) Fatal server error"), None);
    }

    #[test]
    fn blanks_exactly_one_standalone_string() {
        let binary = b"\0-xkbdir\0/usr/bin\0/usr/share/X11/xkb\0";
        assert_eq!(
            blank_string(binary, b"/usr/bin").unwrap(),
            b"\0-xkbdir\0\0\0\0\0\0\0\0\0\0/usr/share/X11/xkb\0"
        );
        // Only as the end of a longer string: not the one.
        assert_eq!(blank_string(b"\0/opt/usr/bin\0", b"/usr/bin"), None);
        // Twice: ambiguous.
        assert_eq!(blank_string(b"\0/usr/bin\0/usr/bin\0", b"/usr/bin"), None);
    }
}
