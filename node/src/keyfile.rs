//! Private keys as files, mode 0600, written durably: an Ed25519 key as its 32-byte seed in hex,
//! an SM2 key as `sm2:` and its 32-byte private scalar in hex (specs/encoding.md §2.4). A node
//! refuses a key file that others can read, as ssh does.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use tongban_core::keys::SecretKey;
use tongban_core::suite::Suite;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is readable or writable by others (mode {mode:o}); run chmod 600 on it")]
    Exposed { path: PathBuf, mode: u32 },
    #[error("{path} does not hold a key: 64 hex digits (Ed25519) or sm2: and 64 hex digits")]
    Malformed { path: PathBuf },
    #[error("{path} holds a key this implementation refuses (weak or non-canonical)")]
    Refused { path: PathBuf },
    #[error("the system's random source failed: {0}")]
    Random(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// `N` bytes from the operating system's CSPRNG.
pub fn random<const N: usize>() -> Result<[u8; N], KeyFileError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| KeyFileError::Random(e.to_string()))?;
    Ok(out)
}

/// A new key of `suite` from the operating system's CSPRNG.
pub fn generate(suite: Suite) -> Result<SecretKey, KeyFileError> {
    loop {
        // A seed core refuses (an SM2 scalar outside [1, n-2], an Ed25519 key it deems weak) is
        // astronomically unlikely; draw again if so.
        if let Ok(key) = SecretKey::from_suite_seed(suite, &random::<32>()?) {
            return Ok(key);
        }
    }
}

/// What marks an SM2 key file; an Ed25519 key file has no prefix (and so reads as it always did).
const SM2_PREFIX: &str = "sm2:";

/// Writes `key` to a new file at `path` (never over an existing one) with mode 0600, through a
/// temporary name: a crash at any point leaves no file at `path` or the whole key, never a
/// partial one. Durable, directory entry included, when this returns.
pub fn write(path: &Path, key: &SecretKey) -> Result<(), KeyFileError> {
    let prefix = match key.suite() {
        Suite::Ed25519 => "",
        Suite::Sm2 => SM2_PREFIX,
    };
    let text = format!("{prefix}{}\n", hex::encode(key.seed()));
    write_file(path, text.as_bytes(), Replace::No)
}

/// Whether [`write_file`] may replace a file already at the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replace {
    Yes,
    No,
}

/// The suffix of the temporary name a file is written under before it takes its own.
pub const TEMPORARY: &str = ".tmp";

/// Writes a whole file, mode 0600: to `<path>.tmp` (a leftover of a crash is replaced), synced,
/// then given its name (renamed over an existing file, or linked where none may exist), and the
/// directory synced. A crash leaves the old file or the new one.
pub fn write_file(path: &Path, bytes: &[u8], replace: Replace) -> Result<(), KeyFileError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(TEMPORARY);
    let tmp = PathBuf::from(tmp);
    // A leftover is removed rather than truncated: opening keeps an existing file's mode, which
    // may let others read what is written next.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&tmp)(e)),
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io(&tmp))?;
    drop(file);
    match replace {
        Replace::Yes => std::fs::rename(&tmp, path).map_err(io(path))?,
        Replace::No => {
            // A hard link fails when the name exists, where a rename would replace it.
            let linked = std::fs::hard_link(&tmp, path).map_err(io(path));
            let removed = std::fs::remove_file(&tmp).map_err(io(&tmp));
            linked.and(removed)?;
        }
    }
    sync_dir(path)
}

/// Makes the directory entry of `path` durable (a new file's name survives a crash only then).
pub fn sync_dir(path: &Path) -> Result<(), KeyFileError> {
    // A bare file name's parent is the empty path: the current directory.
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Reads the key at `path`, refusing a file that group or others may access.
pub fn read(path: &Path) -> Result<SecretKey, KeyFileError> {
    let mode = std::fs::metadata(path).map_err(io(path))?.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Exposed {
            path: path.to_owned(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let text = text.trim();
    let (suite, text) = match text.strip_prefix(SM2_PREFIX) {
        Some(scalar) => (Suite::Sm2, scalar),
        None => (Suite::Ed25519, text),
    };
    let seed: [u8; 32] = hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| KeyFileError::Malformed {
            path: path.to_owned(),
        })?;
    SecretKey::from_suite_seed(suite, &seed).map_err(|_| KeyFileError::Refused {
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keys_of_both_suites_read_back_in_their_suite() {
        let dir = tempfile::tempdir().unwrap();
        for suite in Suite::ALL {
            let path = dir.path().join(format!("{suite}.key"));
            let key = generate(suite).unwrap();
            write(&path, &key).unwrap();
            let read = read(&path).unwrap();
            assert_eq!(read.suite(), suite);
            assert_eq!(read.public(), key.public());
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(text.starts_with("sm2:"), suite == Suite::Sm2);
        }
        // An SM2 scalar of zero is no key.
        let zero = dir.path().join("zero.key");
        write_file(
            &zero,
            format!("sm2:{}\n", "0".repeat(64)).as_bytes(),
            Replace::No,
        )
        .unwrap();
        assert!(matches!(read(&zero), Err(KeyFileError::Refused { .. })));
    }

    #[test]
    fn written_keys_are_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let key = generate(Suite::Ed25519).unwrap();
        write(&path, &key).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(read(&path).unwrap().public(), key.public());
        assert!(matches!(write(&path, &key), Err(KeyFileError::Io { .. })));
        // Nothing is left under the temporary name, and a leftover of a crash does not block.
        let tmp = dir.path().join("k.key.tmp");
        assert!(!tmp.exists());
        std::fs::write(&tmp, "partial").unwrap();
        let other = dir.path().join("o.key");
        std::fs::write(dir.path().join("o.key.tmp"), "").unwrap();
        write(&other, &key).unwrap();
        assert_eq!(read(&other).unwrap().public(), key.public());
    }

    #[test]
    fn a_key_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        write(&path, &generate(Suite::Ed25519).unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            read(&path),
            Err(KeyFileError::Exposed { mode: 0o644, .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(read(&path), Err(KeyFileError::Malformed { .. })));
    }
}
