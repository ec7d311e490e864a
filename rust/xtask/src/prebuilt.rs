//! `cargo xtask package --from DIR`: libraries built elsewhere (the release workflow's jobs, one
//! per platform). DIR holds, side by side, one file per `[libraries]` entry of
//! threadkit.gdextension, named as that entry's file is named (`libthreadkit.linux.release.x86_64.so`,
//! `threadkit.windows.debug.x86_64.dll`, `libthreadkit.macos.release.dylib`, ...). Each file must
//! be a library for its entry's platform, read from its header: ELF for Linux, PE for Windows,
//! Mach-O for macOS, for the entry's CPU, and universal (x86_64 and arm64) for a macOS entry,
//! which names no CPU; and as long as that header says (not a copy cut short).

use std::fs::{self, File};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::gdextension::Library;
use crate::workspace::Result;

/// Library files, as opposed to other files.
pub const LIBRARY_EXTENSIONS: [&str; 3] = [".so", ".dll", ".dylib"];

/// The libraries found in DIR, each with the entry that wants it, and what DIR also held that is
/// not packed.
#[derive(Debug)]
pub struct Prebuilt {
    pub libraries: Vec<(Library, PathBuf)>,
    /// Files and folders of DIR that are not libraries, left out (each named, for a warning).
    pub ignored: Vec<String>,
}

/// The file in `dir` for each of `libraries`; an error naming every entry whose file is missing
/// or not a library for its platform, and every library file that no entry names.
pub fn find(dir: &Path, libraries: &[Library]) -> Result<Prebuilt> {
    let listing = fs::read_dir(dir)
        .map_err(|error| format!("--from {}: cannot list it: {error}", dir.display()))?;
    let mut present = Vec::new();
    let mut ignored = Vec::new();
    for entry in listing {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_file() {
            present.push(name);
        } else {
            ignored.push(format!("{name}/"));
        }
    }
    present.sort();

    let mut problems = Vec::new();
    let mut found = Vec::new();
    let mut wanted: Vec<&str> = Vec::new();
    for library in libraries {
        let name = match library.project_path() {
            Ok(path) => file_name(path),
            Err(error) => {
                problems.push(error.to_string());
                continue;
            }
        };
        if let Some(other) = libraries.iter().find(|other| {
            other.path != library.path
                && other
                    .project_path()
                    .is_ok_and(|path| file_name(path) == name)
        }) {
            problems.push(format!(
                "threadkit.gdextension entries {} and {} name two files called {name}, which \
                 --from cannot tell apart",
                library.tags, other.tags
            ));
            continue;
        }
        wanted.push(name);
        let file = dir.join(name);
        if !present.iter().any(|present| present == name) {
            problems.push(format!(
                "{} {}: threadkit.gdextension entry {} wants it",
                file.display(),
                not_a_file(&file),
                library.tags
            ));
            continue;
        }
        match wrong_format(&library.tags, &head(&file)?) {
            Some(why) => problems.push(format!(
                "{} is {why}, but threadkit.gdextension entry {} is for {}",
                file.display(),
                library.tags,
                expected(&library.tags)
            )),
            None => match truncated(&file)? {
                Some(why) => problems.push(format!(
                    "{} is cut short ({why}): copy threadkit.gdextension entry {}'s library \
                     again, whole",
                    file.display(),
                    library.tags
                )),
                None => found.push((library.clone(), file)),
            },
        }
    }
    for name in present {
        if wanted.contains(&name.as_str()) {
            continue;
        }
        if LIBRARY_EXTENSIONS.iter().any(|ext| name.ends_with(ext)) {
            problems.push(format!(
                "{} is a library that no threadkit.gdextension entry names (rename it to the \
                 name of the entry it is for, or remove it)",
                dir.join(&name).display()
            ));
        } else {
            ignored.push(name);
        }
    }
    if !problems.is_empty() {
        return Err(format!(
            "--from {}: {} problem(s):\n  {}",
            dir.display(),
            problems.len(),
            problems.join("\n  ")
        )
        .into());
    }
    Ok(Prebuilt {
        libraries: found,
        ignored,
    })
}

/// What is at `path`, which is not a file: a folder, a symbolic link that leads nowhere, or
/// nothing (`is missing`). A folder or a broken link named like a library is easy to make (an
/// artifact unpacked into a folder of its name, a link into a build tree that is gone), and
/// "missing" would send its maker looking for a file that `ls` shows.
fn not_a_file(path: &Path) -> String {
    match fs::symlink_metadata(path) {
        Err(_) => "is missing".into(),
        Ok(metadata) if metadata.is_symlink() => match fs::read_link(path) {
            Ok(target) => format!(
                "is a symbolic link to {}, which is not a file",
                target.display()
            ),
            Err(_) => "is a symbolic link that cannot be read".into(),
        },
        Ok(metadata) if metadata.is_dir() => "is a folder, not a file".into(),
        Ok(_) => "is not a regular file".into(),
    }
}

/// `addons/threadkit/bin/x.so` -> `x.so`.
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The start of `file`: enough for any of the headers [`binary`] reads.
fn head(file: &Path) -> Result<Vec<u8>> {
    let mut head = Vec::with_capacity(4096);
    File::open(file)
        .and_then(|file| file.take(4096).read_to_end(&mut head))
        .map_err(|error| format!("reading {}: {error}", file.display()))?;
    Ok(head)
}

/// Why `file` is shorter than its own header says (a copy or download that stopped part way),
/// or None.
fn truncated(file: &Path) -> Result<Option<String>> {
    let length = fs::metadata(file)
        .map_err(|error| format!("reading {}: {error}", file.display()))?
        .len();
    Ok(declared_length(&head(file)?)
        .filter(|needed| length < *needed)
        .map(|needed| format!("{length} bytes, where its header places data up to byte {needed}")))
}

/// The least length of a library file, from what its header places where: the ELF program and
/// section header tables (the latter at the very end of a linked library), the end of the PE
/// sections' data, the end of each slice of a universal Mach-O file. None when the header does
/// not say (or is not one of these).
fn declared_length(head: &[u8]) -> Option<u64> {
    // Universal Mach-O headers are big-endian, PE little-endian, ELF as EI_DATA says.
    let big_endian = match head.get(..4)? {
        [0xca, 0xfe, 0xba, 0xbe | 0xbf] => true,
        [0x7f, b'E', b'L', b'F'] => head.get(5) == Some(&2),
        _ => false,
    };
    // The unsigned number of `size` bytes at `at`.
    let number = |at: usize, size: usize| -> Option<u64> {
        let bytes = head.get(at..at + size)?;
        let in_order: Box<dyn Iterator<Item = &u8>> = if big_endian {
            Box::new(bytes.iter())
        } else {
            Box::new(bytes.iter().rev())
        };
        Some(in_order.fold(0, |value, byte| (value << 8) | u64::from(*byte)))
    };
    let table_end =
        |offset: u64, count: u64, size: u64| offset.checked_add(count.checked_mul(size)?);
    match head.get(..4)? {
        // 64-bit ELF only: ThreadKit's libraries are.
        [0x7f, b'E', b'L', b'F'] if head.get(4) == Some(&2) => {
            let programs = table_end(number(0x20, 8)?, number(0x38, 2)?, number(0x36, 2)?)?;
            let sections = table_end(number(0x28, 8)?, number(0x3c, 2)?, number(0x3a, 2)?)?;
            Some(programs.max(sections))
        }
        [b'M', b'Z', ..] => {
            let pe = usize::try_from(number(0x3c, 4)?).ok()?;
            if head.get(pe..pe + 4)? != b"PE\0\0" {
                return None;
            }
            let sections = usize::try_from(number(pe + 6, 2)?).ok()?;
            let table = pe + 24 + usize::try_from(number(pe + 20, 2)?).ok()?;
            (0..sections)
                .map(|index| {
                    let entry = table + index * 40;
                    table_end(number(entry + 20, 4)?, 1, number(entry + 16, 4)?)
                })
                .try_fold(0, |end, section| Some(end.max(section?)))
        }
        [0xca, 0xfe, 0xba, magic @ (0xbe | 0xbf)] => {
            let wide = *magic == 0xbf;
            let record = if wide { 32 } else { 20 };
            let field = if wide { 8 } else { 4 };
            let count = usize::try_from(number(4, 4)?).ok()?.min(16);
            (0..count)
                .map(|index| {
                    let slice = 8 + index * record + 8;
                    table_end(number(slice, field)?, 1, number(slice + field, field)?)
                })
                .try_fold(0, |end, slice| Some(end.max(slice?)))
        }
        _ => None,
    }
}

/// The operating system of a library format, and the CPUs its code is for.
#[derive(Debug, PartialEq, Eq)]
struct Binary {
    os: &'static str,
    cpus: Vec<String>,
}

/// The tags' OS and CPU in words: `linux x86_64`, `macos (universal: x86_64 and arm64)`.
fn expected(tags: &str) -> String {
    match (os_of(tags), cpu_of(tags)) {
        (Some(os), Some(cpu)) => format!("{os} {cpu}"),
        (Some("macos"), None) => "macos (universal: x86_64 and arm64)".into(),
        (os, _) => os.unwrap_or(tags).into(),
    }
}

fn os_of(tags: &str) -> Option<&'static str> {
    ["linux", "windows", "macos"]
        .into_iter()
        .find(|os| tags.split('.').any(|tag| tag == *os))
}

fn cpu_of(tags: &str) -> Option<&'static str> {
    ["x86_64", "arm64"]
        .into_iter()
        .find(|cpu| tags.split('.').any(|tag| tag == *cpu))
}

/// What is wrong with a library whose file starts with `head` for the entry with `tags`, in
/// words (`an ELF library for arm64`); None when it suits the entry, or the entry names a
/// platform this check does not know.
fn wrong_format(tags: &str, head: &[u8]) -> Option<String> {
    let os = os_of(tags)?;
    let Some(binary) = binary(head) else {
        return Some("not a library (no ELF, PE or Mach-O header)".into());
    };
    let fits = binary.os == os
        && match cpu_of(tags) {
            Some(cpu) => binary.cpus == [cpu],
            // Godot loads the same macOS entry on both CPUs.
            None if os == "macos" => ["x86_64", "arm64"]
                .iter()
                .all(|cpu| binary.cpus.iter().any(|has| has == cpu)),
            None => true,
        };
    if fits {
        return None;
    }
    let format = match binary.os {
        "linux" => "an ELF library",
        "windows" => "a Windows (PE) library",
        _ if binary.cpus.len() > 1 => "a universal Mach-O library",
        _ => "a Mach-O library",
    };
    Some(format!("{format} for {}", binary.cpus.join(" and ")))
}

/// The format and CPUs of a library from its first bytes; None for none of ELF, PE or Mach-O.
/// A CPU this check does not know is named by its number.
fn binary(head: &[u8]) -> Option<Binary> {
    let u16_le = |at: usize| Some(u16::from_le_bytes(head.get(at..at + 2)?.try_into().ok()?));
    let u32_le = |at: usize| Some(u32::from_le_bytes(head.get(at..at + 4)?.try_into().ok()?));
    let u32_be = |at: usize| Some(u32::from_be_bytes(head.get(at..at + 4)?.try_into().ok()?));
    let name = |cpu: Option<&str>, number: u32| {
        cpu.map_or_else(|| format!("CPU {number:#x}"), str::to_string)
    };
    let macho_cpu = |cpu: u32| {
        let known = match cpu {
            0x0100_0007 => Some("x86_64"),
            0x0100_000c => Some("arm64"),
            _ => None,
        };
        name(known, cpu)
    };
    match head.get(..4)? {
        [0x7f, b'E', b'L', b'F'] => {
            // e_machine, in the byte order EI_DATA gives.
            let machine = match head.get(5)? {
                2 => u16::from_be_bytes(head.get(18..20)?.try_into().ok()?),
                _ => u16_le(18)?,
            };
            let cpu = match machine {
                62 => Some("x86_64"),
                183 => Some("arm64"),
                _ => None,
            };
            Some(Binary {
                os: "linux",
                cpus: vec![name(cpu, machine.into())],
            })
        }
        [b'M', b'Z', ..] => {
            let pe = usize::try_from(u32_le(0x3c)?).ok()?;
            if head.get(pe..pe + 4)? != b"PE\0\0" {
                return None;
            }
            let machine = u16_le(pe + 4)?;
            let cpu = match machine {
                0x8664 => Some("x86_64"),
                0xaa64 => Some("arm64"),
                _ => None,
            };
            Some(Binary {
                os: "windows",
                cpus: vec![name(cpu, machine.into())],
            })
        }
        // A thin 64-bit Mach-O file, little-endian.
        [0xcf, 0xfa, 0xed, 0xfe] => Some(Binary {
            os: "macos",
            cpus: vec![macho_cpu(u32_le(4)?)],
        }),
        // A universal ("fat") file: a count, then one record per CPU (20 or 32 bytes).
        [0xca, 0xfe, 0xba, magic @ (0xbe | 0xbf)] => {
            let record = if *magic == 0xbe { 20 } else { 32 };
            let count = usize::try_from(u32_be(4)?).ok()?;
            let cpus = (0..count.min(16))
                .map(|index| u32_be(8 + index * record).map(macho_cpu))
                .collect::<Option<Vec<_>>>()?;
            Some(Binary { os: "macos", cpus })
        }
        _ => None,
    }
}

/// Headers of the kinds [`binary`] reads, for tests: the first bytes of real libraries, the
/// rest zeros.
#[cfg(test)]
pub mod fake {
    /// An ELF shared object (64-bit, little-endian) for `machine` (62 x86_64, 183 arm64).
    pub fn elf(machine: u16) -> Vec<u8> {
        let mut bytes = vec![0; 64];
        bytes[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1]);
        bytes[18..20].copy_from_slice(&machine.to_le_bytes());
        bytes
    }

    /// A PE DLL for `machine` (0x8664 x86_64, 0xaa64 arm64).
    pub fn pe(machine: u16) -> Vec<u8> {
        let mut bytes = vec![0; 0x200];
        bytes[..2].copy_from_slice(b"MZ");
        bytes[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        bytes[0x80..0x84].copy_from_slice(b"PE\0\0");
        bytes[0x84..0x86].copy_from_slice(&machine.to_le_bytes());
        bytes
    }

    pub const MACHO_X86_64: u32 = 0x0100_0007;
    pub const MACHO_ARM64: u32 = 0x0100_000c;

    /// A universal Mach-O file with one slice per CPU type, as `lipo -create` writes.
    pub fn universal(cpus: &[u32]) -> Vec<u8> {
        let mut bytes = vec![0xca, 0xfe, 0xba, 0xbe];
        bytes.extend((cpus.len() as u32).to_be_bytes());
        for cpu in cpus {
            bytes.extend(cpu.to_be_bytes());
            bytes.extend([0; 16]);
        }
        bytes
    }

    /// A thin 64-bit Mach-O file for one CPU type.
    pub fn thin(cpu: u32) -> Vec<u8> {
        let mut bytes = vec![0xcf, 0xfa, 0xed, 0xfe];
        bytes.extend(cpu.to_le_bytes());
        bytes.extend([0; 24]);
        bytes
    }

    /// A header that suits an entry with `tags`.
    pub fn for_tags(tags: &str) -> Vec<u8> {
        let tags: Vec<&str> = tags.split('.').collect();
        let arm = tags.contains(&"arm64");
        if tags.contains(&"windows") {
            pe(if arm { 0xaa64 } else { 0x8664 })
        } else if tags.contains(&"macos") {
            universal(&[MACHO_X86_64, MACHO_ARM64])
        } else {
            elf(if arm { 183 } else { 62 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::*;
    use super::*;
    use crate::gdextension::ADDON_DIR;
    use crate::workspace;

    fn library(tags: &str, file: &str) -> Library {
        Library {
            tags: tags.into(),
            path: format!("res://{ADDON_DIR}/bin/{file}"),
        }
    }

    /// A fresh, empty folder under target/ for one test.
    fn folder(name: &str) -> PathBuf {
        let dir = workspace::root().join("target").join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reads_the_format_and_cpus_of_a_library() {
        let linux = |cpu: &str| Binary {
            os: "linux",
            cpus: vec![cpu.into()],
        };
        assert_eq!(binary(&elf(62)), Some(linux("x86_64")));
        assert_eq!(binary(&elf(183)), Some(linux("arm64")));
        let mut big_endian = elf(0);
        big_endian[5] = 2;
        big_endian[18..20].copy_from_slice(&183u16.to_be_bytes());
        assert_eq!(binary(&big_endian), Some(linux("arm64")));
        assert_eq!(binary(&elf(3)).unwrap().cpus, ["CPU 0x3"]);
        assert_eq!(
            binary(&pe(0x8664)),
            Some(Binary {
                os: "windows",
                cpus: vec!["x86_64".into()]
            })
        );
        assert_eq!(
            binary(&universal(&[MACHO_X86_64, MACHO_ARM64])),
            Some(Binary {
                os: "macos",
                cpus: vec!["x86_64".into(), "arm64".into()]
            })
        );
        assert_eq!(binary(&thin(MACHO_ARM64)).unwrap().cpus, ["arm64"]);
        for not_a_library in [
            &b""[..],
            b"\x7fEL",
            b"#!/bin/sh\n",
            b"MZ",
            &universal(&[])[..6],
        ] {
            assert_eq!(binary(not_a_library), None, "{not_a_library:?}");
        }
    }

    #[test]
    fn a_library_must_suit_its_entrys_platform() {
        let both = universal(&[MACHO_X86_64, MACHO_ARM64]);
        for (tags, head) in [
            ("linux.release.x86_64", elf(62)),
            ("linux.debug.arm64", elf(183)),
            ("windows.release.x86_64", pe(0x8664)),
            ("macos.release", both.clone()),
            ("macos.release.arm64", thin(MACHO_ARM64)),
        ] {
            assert_eq!(wrong_format(tags, &head), None, "{tags}");
        }
        for (tags, head, why) in [
            ("linux.release.x86_64", elf(183), "an ELF library for arm64"),
            (
                "linux.release.arm64",
                pe(0xaa64),
                "a Windows (PE) library for arm64",
            ),
            (
                "windows.release.x86_64",
                elf(62),
                "an ELF library for x86_64",
            ),
            (
                "macos.release",
                thin(MACHO_ARM64),
                "a Mach-O library for arm64",
            ),
            (
                "macos.debug",
                universal(&[MACHO_ARM64, 7]),
                "a universal Mach-O library for arm64 and CPU 0x7",
            ),
            (
                "linux.debug.x86_64",
                b"not a library".to_vec(),
                "not a library (no ELF, PE or Mach-O header)",
            ),
        ] {
            assert_eq!(wrong_format(tags, &head).as_deref(), Some(why), "{tags}");
        }
        assert_eq!(
            expected("macos.debug"),
            "macos (universal: x86_64 and arm64)"
        );
        assert_eq!(expected("linux.debug.arm64"), "linux arm64");
    }

    #[test]
    fn finds_every_entrys_file_and_ignores_what_is_not_a_library() {
        let dir = folder("xtask-test-prebuilt-complete");
        let libraries = [
            library("linux.debug.x86_64", "lib.linux.debug.x86_64.so"),
            library("linux.release.x86_64", "lib.linux.release.x86_64.so"),
            library("windows.release.x86_64", "lib.windows.release.x86_64.dll"),
            library("macos.release", "lib.macos.release.dylib"),
        ];
        for (name, bytes) in [
            ("lib.linux.debug.x86_64.so", elf(62)),
            ("lib.linux.release.x86_64.so", elf(62)),
            ("lib.windows.release.x86_64.dll", pe(0x8664)),
            (
                "lib.macos.release.dylib",
                universal(&[MACHO_X86_64, MACHO_ARM64]),
            ),
            ("threadkit.pdb", b"debug symbols".to_vec()),
        ] {
            fs::write(dir.join(name), bytes).unwrap();
        }
        fs::create_dir(dir.join("logs")).unwrap();
        let prebuilt = find(&dir, &libraries).unwrap();
        let found: Vec<(&str, PathBuf)> = prebuilt
            .libraries
            .iter()
            .map(|(library, file)| (library.tags.as_str(), file.clone()))
            .collect();
        let expected: Vec<(&str, PathBuf)> = libraries
            .iter()
            .map(|l| {
                let path = l.project_path().unwrap();
                (l.tags.as_str(), dir.join(file_name(path)))
            })
            .collect();
        assert_eq!(found, expected);
        assert_eq!(prebuilt.ignored, ["logs/", "threadkit.pdb"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_each_missing_wrong_or_unnamed_file_and_the_entry_that_wants_it() {
        let dir = folder("xtask-test-prebuilt-problems");
        let libraries = [
            library("linux.debug.x86_64", "lib.linux.debug.x86_64.so"),
            library("linux.release.arm64", "lib.linux.release.arm64.so"),
            library("macos.release", "lib.macos.release.dylib"),
        ];
        fs::write(dir.join("lib.linux.debug.x86_64.so"), elf(62)).unwrap();
        // The x86_64 build under the arm64 name, and a library named as cargo names it.
        fs::write(dir.join("lib.linux.release.arm64.so"), elf(62)).unwrap();
        fs::write(dir.join("libthreadkit.dylib"), thin(MACHO_ARM64)).unwrap();
        let error = find(&dir, &libraries).unwrap_err().to_string();
        let at = |name: &str| dir.join(name).display().to_string();
        assert_eq!(
            error,
            format!(
                "--from {}: 3 problem(s):\n  \
                 {} is an ELF library for x86_64, but threadkit.gdextension entry \
                 linux.release.arm64 is for linux arm64\n  \
                 {} is missing: threadkit.gdextension entry macos.release wants it\n  \
                 {} is a library that no threadkit.gdextension entry names (rename it to the \
                 name of the entry it is for, or remove it)",
                dir.display(),
                at("lib.linux.release.arm64.so"),
                at("lib.macos.release.dylib"),
                at("libthreadkit.dylib"),
            )
        );

        let missing = dir.join("no-such-folder");
        let error = find(&missing, &libraries).unwrap_err().to_string();
        assert!(error.starts_with(&format!("--from {}: cannot list it", missing.display())));
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A folder or a dangling symbolic link under an entry's name is named for what it is, not
    /// reported missing: `ls` shows something there.
    #[cfg(unix)]
    #[test]
    fn a_folder_or_a_broken_link_under_an_entrys_name_is_named_for_what_it_is() {
        let dir = folder("xtask-test-prebuilt-not-files");
        let libraries = [
            library("linux.debug.x86_64", "lib.linux.debug.x86_64.so"),
            library("windows.release.x86_64", "lib.windows.release.x86_64.dll"),
            library("macos.release", "lib.macos.release.dylib"),
        ];
        // An artifact unpacked into a folder of its name, and a link into a build tree now gone.
        fs::create_dir(dir.join("lib.linux.debug.x86_64.so")).unwrap();
        fs::write(dir.join("lib.linux.debug.x86_64.so/lib.so"), elf(62)).unwrap();
        std::os::unix::fs::symlink(
            dir.join("gone/threadkit.dll"),
            dir.join("lib.windows.release.x86_64.dll"),
        )
        .unwrap();
        let error = find(&dir, &libraries).unwrap_err().to_string();
        let at = |name: &str| dir.join(name).display().to_string();
        assert_eq!(
            error,
            format!(
                "--from {}: 3 problem(s):\n  \
                 {} is a folder, not a file: threadkit.gdextension entry linux.debug.x86_64 \
                 wants it\n  \
                 {} is a symbolic link to {}, which is not a file: threadkit.gdextension entry \
                 windows.release.x86_64 wants it\n  \
                 {} is missing: threadkit.gdextension entry macos.release wants it",
                dir.display(),
                at("lib.linux.debug.x86_64.so"),
                at("lib.windows.release.x86_64.dll"),
                at("gone/threadkit.dll"),
                at("lib.macos.release.dylib"),
            )
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A library whose copy stopped part way has a whole header, so its format fits; its
    /// length does not fit what the header places in it.
    #[test]
    fn a_library_cut_short_is_named_with_its_entry() {
        // Two 64-byte section headers right after the ELF header: 192 bytes in all.
        let mut elf = elf(62);
        elf[0x28..0x30].copy_from_slice(&64u64.to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&2u16.to_le_bytes());
        // One section of 0x200 bytes at 0x200: 0x400 bytes in all.
        let mut pe = pe(0x8664);
        pe[0x86..0x88].copy_from_slice(&1u16.to_le_bytes());
        pe[0x98 + 16..0x98 + 20].copy_from_slice(&0x200u32.to_le_bytes());
        pe[0x98 + 20..0x98 + 24].copy_from_slice(&0x200u32.to_le_bytes());
        // Slices at 0x1000 (0x80 bytes) and 0x2000 (0x100 bytes): 0x2100 bytes in all.
        let mut fat = universal(&[MACHO_X86_64, MACHO_ARM64]);
        for (slice, offset, size) in [(0, 0x1000u32, 0x80u32), (1, 0x2000, 0x100)] {
            let at = 8 + slice * 20 + 8;
            fat[at..at + 4].copy_from_slice(&offset.to_be_bytes());
            fat[at + 4..at + 8].copy_from_slice(&size.to_be_bytes());
        }
        assert_eq!(declared_length(&elf), Some(192));
        assert_eq!(declared_length(&pe), Some(0x400));
        assert_eq!(declared_length(&fat), Some(0x2100));
        assert_eq!(declared_length(b"#!/bin/sh"), None);

        let dir = folder("xtask-test-prebuilt-cut-short");
        let libraries = [
            library("linux.debug.x86_64", "lib.linux.debug.x86_64.so"),
            library("windows.debug.x86_64", "lib.windows.debug.x86_64.dll"),
            library("macos.debug", "lib.macos.debug.dylib"),
        ];
        let names = libraries
            .each_ref()
            .map(|l| file_name(l.project_path().unwrap()));
        let whole = |mut bytes: Vec<u8>, length: usize| {
            bytes.resize(length, 0);
            bytes
        };
        for (name, bytes) in names.iter().zip([
            whole(elf.clone(), 192),
            whole(pe.clone(), 0x400),
            whole(fat.clone(), 0x2100),
        ]) {
            fs::write(dir.join(name), bytes).unwrap();
        }
        assert_eq!(find(&dir, &libraries).unwrap().libraries.len(), 3);

        // Cut short: each a byte short of its end, the ELF one to its header alone.
        for (name, bytes) in names
            .iter()
            .zip([elf, whole(pe, 0x3ff), whole(fat, 0x20ff)])
        {
            fs::write(dir.join(name), bytes).unwrap();
        }
        let error = find(&dir, &libraries).unwrap_err().to_string();
        let at = |name: &str| dir.join(name).display().to_string();
        assert_eq!(
            error,
            format!(
                "--from {}: 3 problem(s):\n  \
                 {} is cut short (64 bytes, where its header places data up to byte 192): copy \
                 threadkit.gdextension entry linux.debug.x86_64's library again, whole\n  \
                 {} is cut short (1023 bytes, where its header places data up to byte 1024): \
                 copy threadkit.gdextension entry windows.debug.x86_64's library again, whole\n  \
                 {} is cut short (8447 bytes, where its header places data up to byte 8448): \
                 copy threadkit.gdextension entry macos.debug's library again, whole",
                dir.display(),
                at(names[0]),
                at(names[1]),
                at(names[2]),
            )
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn two_entries_with_one_file_name_in_different_folders_are_refused() {
        let dir = folder("xtask-test-prebuilt-clash");
        let libraries = [
            library("linux.debug.x86_64", "debug/lib.so"),
            library("linux.release.x86_64", "release/lib.so"),
        ];
        fs::write(dir.join("lib.so"), elf(62)).unwrap();
        let error = find(&dir, &libraries).unwrap_err().to_string();
        assert!(
            error.contains(
                "linux.debug.x86_64 and linux.release.x86_64 name two files called lib.so"
            ),
            "{error}"
        );
        // One file under two entries with the same path is no clash.
        let same = [libraries[0].clone(), libraries[0].clone()];
        assert_eq!(find(&dir, &same).unwrap().libraries.len(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The names `find` looks for are the .gdextension's own: the repository's entries each
    /// want a distinct file of DIR.
    #[test]
    fn the_repositorys_entries_want_distinct_files() {
        let libraries = crate::gdextension::read_libraries().unwrap();
        let mut names: Vec<&str> = libraries
            .iter()
            .map(|l| file_name(l.project_path().unwrap()))
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), libraries.len(), "{names:?}");
    }
}
