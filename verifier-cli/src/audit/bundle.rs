//! Audit bundle directories (specs/log.md §6), streamed: the `entries` file is read one entry at
//! a time and each checkpoint file when its turn comes (in size order), so a bundle of any size
//! is audited in bounded memory. Every file is read with a bound: a file larger than what it may
//! hold is refused without being read whole.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use tongban_core::envelope::Kind;
use tongban_core::log::audit::note_size;
use tongban_core::log::auditor::{Finished, LogAudit};
use tongban_core::log::note::MAX_NOTE;

use super::node::MAX_VKEY;
use super::store::DiskStore;
use crate::cli::{read_bounded, read_capped};

/// The files of a bundle.
pub struct Bundle {
    pub dir: PathBuf,
}

impl Bundle {
    pub fn log_key(&self) -> Result<String> {
        String::from_utf8(read_bounded(&self.dir.join("log.vkey"), MAX_VKEY)?)
            .context("log.vkey is not text")
    }

    pub fn trust_bundle(&self) -> Result<Vec<u8>> {
        read_capped(&self.dir.join("trust.tbt"), Kind::TrustBundle.size_limit())
    }

    /// The checkpoint files, in the order of the sizes they state (unreadable ones first: they
    /// are reported and go no further).
    fn checkpoints(&self) -> Result<Vec<(Option<u64>, PathBuf)>> {
        let folder = self.dir.join("checkpoints");
        let listing = std::fs::read_dir(&folder)
            .with_context(|| format!("cannot list {}", folder.display()))?;
        let mut files = Vec::new();
        for file in listing {
            let path = file?.path();
            if path.extension().is_some_and(|e| e == "checkpoint") {
                files.push((note_size(&read_capped(&path, MAX_NOTE as u64)?), path));
            }
        }
        files.sort();
        Ok(files)
    }

    fn entries(&self) -> Result<Entries> {
        let path = self.dir.join("entries");
        let file = File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Entries {
            reader: BufReader::with_capacity(1 << 20, file),
            path,
        })
    }
}

/// The `entries` file, one length-prefixed entry at a time.
struct Entries {
    reader: BufReader<File>,
    path: PathBuf,
}

impl Entries {
    /// The next entry; `None` at the end of the file.
    fn next_entry(&mut self) -> Result<Option<Vec<u8>>> {
        let mut length = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.reader.read(&mut length[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(self.malformed("ends inside a length")),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot read {}", self.path.display()));
                }
            }
        }
        let length = u32::from_be_bytes(length) as u64;
        if length > Kind::LogEntry.size_limit() {
            return Err(self.malformed("an entry longer than an entry's limit"));
        }
        let mut entry = vec![0u8; usize::try_from(length)?];
        self.reader
            .read_exact(&mut entry)
            .map_err(|_| self.malformed("ends inside an entry"))?;
        Ok(Some(entry))
    }

    fn malformed(&self, why: &str) -> anyhow::Error {
        anyhow!(
            "{}: not length-prefixed entries ({why})",
            self.path.display()
        )
    }
}

/// Audits the bundle in `dir`, whose key and trust bundle the caller read and checked.
pub fn audit(
    bundle: &Bundle,
    log_key: &str,
    trust: &[u8],
    (store, batch, progress): (DiskStore, Option<[u8; 32]>, &super::Progress),
) -> Result<Finished<DiskStore>> {
    let mut audit = LogAudit::with_store(log_key, trust, false, store);
    if let Some(key) = batch {
        audit = audit.batched(key);
    }
    if !audit.is_open() {
        return Ok(audit.finish());
    }
    let mut entries = bundle.entries()?;
    let mut feed_to = |audit: &mut LogAudit<DiskStore>, size: u64| -> Result<()> {
        while audit.size() < size {
            match entries.next_entry()? {
                Some(entry) => {
                    audit.entry(entry);
                    progress.entry();
                }
                None => break,
            }
        }
        Ok(())
    };
    for (_, path) in bundle.checkpoints()? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let note = read_capped(&path, MAX_NOTE as u64)?;
        if let Some(size) = audit.checkpoint(&name, &note) {
            feed_to(&mut audit, size)?;
        }
    }
    feed_to(&mut audit, u64::MAX)?;
    Ok(audit.finish())
}

/// Writes an audit bundle, streaming: the key and bundle at once, checkpoints one file each, and
/// the entries appended as they come (to a temporary name, given its own once complete).
pub struct Writer {
    dir: PathBuf,
    entries: BufWriter<File>,
    written: u64,
    checkpoints: u64,
}

impl Writer {
    /// Starts a bundle in `dir`, which must not exist or be empty, so that no checkpoint of
    /// another log is mixed in.
    pub fn create(dir: &Path, log_key: &str, trust: &[u8]) -> Result<Writer> {
        if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
            return Err(anyhow!(
                "{} is not empty: export into a new directory",
                dir.display()
            ));
        }
        let checkpoints = dir.join("checkpoints");
        std::fs::create_dir_all(&checkpoints)
            .with_context(|| format!("cannot create {}", checkpoints.display()))?;
        write(
            &dir.join("log.vkey"),
            format!("{}\n", log_key.trim_end()).as_bytes(),
        )?;
        write(&dir.join("trust.tbt"), trust)?;
        let partial = dir.join("entries.partial");
        let file = File::create(&partial)
            .with_context(|| format!("cannot write {}", partial.display()))?;
        Ok(Writer {
            dir: dir.to_owned(),
            entries: BufWriter::with_capacity(1 << 20, file),
            written: 0,
            checkpoints: 0,
        })
    }

    pub fn checkpoint(&mut self, size: u64, note: &[u8]) -> Result<()> {
        self.named_checkpoint(&format!("{size:020}.checkpoint"), note)
    }

    pub fn named_checkpoint(&mut self, name: &str, note: &[u8]) -> Result<()> {
        write(&self.dir.join("checkpoints").join(name), note)?;
        self.checkpoints += 1;
        Ok(())
    }

    pub fn entry(&mut self, entry: &[u8]) -> Result<()> {
        let length = u32::try_from(entry.len()).context("an entry over 4 GiB")?;
        self.entries
            .write_all(&length.to_be_bytes())
            .and_then(|()| self.entries.write_all(entry))
            .context("cannot write the entries")?;
        self.written += 1;
        Ok(())
    }

    pub fn entries(&self) -> u64 {
        self.written
    }

    /// Completes the bundle: (entries, checkpoints) written.
    pub fn finish(self) -> Result<(u64, u64)> {
        let file = self
            .entries
            .into_inner()
            .map_err(|e| anyhow!("cannot write the entries: {e}"))?;
        file.sync_all().context("cannot write the entries")?;
        std::fs::rename(self.dir.join("entries.partial"), self.dir.join("entries"))
            .context("cannot name the entries file")?;
        Ok((self.written, self.checkpoints))
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}
