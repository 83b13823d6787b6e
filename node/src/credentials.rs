//! API tokens: the operator's and one per agency, stored as BLAKE3 hashes, shown in the clear
//! only once, when made. Credentials are not log state (like keys, they must not be published):
//! a node on redb files keeps them in `credentials.json` (0600), rewritten atomically on each
//! change; a node on PostgreSQL in its schema (`tb_credentials`), so that every process of the
//! region knows every agency, and imports `credentials.json` (which `init` writes) at its first
//! start. Either way they are read once at start and kept in memory: only the sequencer
//! registers agencies, writing through to storage before it answers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use tongban_core::ids::Uscc;

use crate::home::write_durably;
use crate::keyfile::random;
use crate::log::PgDatabase;
use crate::storage::Storage;

mod pg;

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{0}")]
    Storage(String),
    #[error("agency {0} is already registered")]
    Exists(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Stored {
    operator: String,
    /// USCC → agency.
    agencies: BTreeMap<String, StoredAgency>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredAgency {
    name: String,
    token_hash: String,
}

/// Who a token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Operator,
    Agency { uscc: String, name: String },
}

/// A registered agency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Agency {
    pub uscc: String,
    pub name: String,
}

pub struct Credentials {
    backend: Backend,
    stored: RwLock<Stored>,
}

/// Where credentials are kept.
enum Backend {
    File(PathBuf),
    Postgres(Arc<PgDatabase>),
}

fn new_token() -> Result<String, CredentialError> {
    let bytes = random::<32>().map_err(|e| CredentialError::Storage(e.to_string()))?;
    Ok(format!("tb_{}", hex::encode(bytes)))
}

fn hash(token: &str) -> blake3::Hash {
    blake3::hash(token.as_bytes())
}

fn storage_error(e: impl std::fmt::Display) -> CredentialError {
    CredentialError::Storage(e.to_string())
}

fn read_file(path: &Path) -> Result<Stored, CredentialError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CredentialError::Storage(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| CredentialError::Storage(format!("{}: {e}", path.display())))
}

fn save_file(path: &Path, stored: &Stored) -> Result<(), CredentialError> {
    let text = serde_json::to_vec_pretty(stored).map_err(storage_error)?;
    write_durably(path, &text).map_err(storage_error)
}

impl Credentials {
    /// A new file with a fresh operator token; returns the token.
    pub fn create(path: &Path) -> Result<(Credentials, String), CredentialError> {
        let token = new_token()?;
        let stored = Stored {
            operator: hash(&token).to_hex().to_string(),
            agencies: BTreeMap::new(),
        };
        save_file(path, &stored)?;
        let credentials = Credentials {
            backend: Backend::File(path.to_owned()),
            stored: RwLock::new(stored),
        };
        Ok((credentials, token))
    }

    /// The credentials of a node whose logs are in `storage`, from `path` (`credentials.json`)
    /// on redb files; on PostgreSQL from the database, after importing `path` if it is still
    /// there (then renamed `credentials.json.imported`).
    pub fn open(path: &Path, storage: &Storage) -> Result<Credentials, CredentialError> {
        let (backend, stored) = match storage {
            Storage::Files(_) => (Backend::File(path.to_owned()), read_file(path)?),
            Storage::Postgres(db) => {
                if path.exists() {
                    pg::import(db, &read_file(path)?)?;
                    // The import repeats harmlessly: a stop before this rename is no harm, nor
                    // another process of the node renaming it first.
                    match std::fs::rename(path, path.with_extension("json.imported")) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(CredentialError::Storage(format!(
                                "{}: {e}",
                                path.display()
                            )));
                        }
                    }
                    tracing::warn!(from = %path.display(), "credentials imported into the database");
                }
                (Backend::Postgres(db.clone()), pg::read(db)?)
            }
        };
        Ok(Credentials {
            backend,
            stored: RwLock::new(stored),
        })
    }

    /// Reads the credentials again from the database (a standby following its sequencer, which
    /// registers agencies); a file is only ever written by this process, so nothing to do.
    pub fn reload(&self) -> Result<(), CredentialError> {
        let Backend::Postgres(db) = &self.backend else {
            return Ok(());
        };
        let fresh = pg::read(db)?;
        *self
            .stored
            .write()
            .map_err(|_| CredentialError::Storage("credentials lock poisoned".into()))? = fresh;
        Ok(())
    }

    /// Whose token this is, if anyone's. Compares hashes in constant time.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        let presented = hash(token);
        let stored = self.stored.read().ok()?;
        let matches = |hex: &str| blake3::Hash::from_hex(hex).is_ok_and(|h| h == presented);
        if matches(&stored.operator) {
            return Some(Principal::Operator);
        }
        stored
            .agencies
            .iter()
            .find(|(_, a)| matches(&a.token_hash))
            .map(|(uscc, a)| Principal::Agency {
                uscc: uscc.clone(),
                name: a.name.clone(),
            })
    }

    /// Registers an agency and returns its token, durable before it is returned.
    pub fn register(&self, uscc: &Uscc, name: &str) -> Result<String, CredentialError> {
        let mut stored = self
            .stored
            .write()
            .map_err(|_| CredentialError::Storage("credentials lock poisoned".into()))?;
        if stored.agencies.contains_key(uscc.as_str()) {
            return Err(CredentialError::Exists(uscc.as_str().to_owned()));
        }
        let token = new_token()?;
        let agency = StoredAgency {
            name: name.to_owned(),
            token_hash: hash(&token).to_hex().to_string(),
        };
        let mut next = stored.clone();
        next.agencies
            .insert(uscc.as_str().to_owned(), agency.clone());
        match &self.backend {
            Backend::File(path) => save_file(path, &next)?,
            Backend::Postgres(db) => pg::register(db, uscc.as_str(), &agency)?,
        }
        *stored = next;
        Ok(token)
    }

    pub fn agency(&self, uscc: &str) -> Option<Agency> {
        let stored = self.stored.read().ok()?;
        stored.agencies.get(uscc).map(|a| Agency {
            uscc: uscc.to_owned(),
            name: a.name.clone(),
        })
    }

    pub fn agencies(&self) -> Vec<Agency> {
        self.stored.read().map_or_else(
            |_| Vec::new(),
            |s| {
                s.agencies
                    .iter()
                    .map(|(uscc, a)| Agency {
                        uscc: uscc.clone(),
                        name: a.name.clone(),
                    })
                    .collect()
            },
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::home::Home;

    fn uscc(text: &str) -> Uscc {
        Uscc::parse(text).unwrap()
    }

    /// Credentials made by `init` in `dir`, opened on the tests' storage, and their operator
    /// token.
    fn made(dir: &Path) -> (Storage, String) {
        let path = dir.join("credentials.json");
        let (_, operator) = Credentials::create(&path).unwrap();
        (crate::storage::test_storage(dir), operator)
    }

    #[test]
    fn an_agency_registered_once_is_known_after_a_restart_and_not_registered_twice() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, operator) = made(dir.path());
        let path = Home::new(dir.path()).credentials();
        let first = Credentials::open(&path, &storage).unwrap();
        assert_eq!(first.authenticate(&operator), Some(Principal::Operator));
        let token = first
            .register(&uscc("11341200MB0000001F"), "市场监督管理局")
            .unwrap();
        // Another process of the node (or this one restarted): the same credentials.
        let second = Credentials::open(&path, &storage).unwrap();
        assert_eq!(second.authenticate(&operator), Some(Principal::Operator));
        assert_eq!(
            second.authenticate(&token),
            Some(Principal::Agency {
                uscc: "11341200MB0000001F".into(),
                name: "市场监督管理局".into()
            })
        );
        assert!(second.authenticate("tb_nothing").is_none());
        for credentials in [&first, &second] {
            let again = credentials.register(&uscc("11341200MB0000001F"), "又一个");
            assert!(
                matches!(again, Err(CredentialError::Exists(_))),
                "{again:?}"
            );
        }
    }

    #[test]
    fn credentials_json_is_imported_into_a_database_once_and_a_foreign_one_refused() {
        let Some(config) = crate::storage::test_postgres() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let path = home.credentials();
        let (file, operator) = Credentials::create(&path).unwrap();
        let token = file
            .register(&uscc("11341200MB0000001F"), "市场监督管理局")
            .unwrap();
        let kept = std::fs::read(&path).unwrap();
        let storage =
            Storage::open(&home, &crate::config::StorageConfig::Postgres(config)).unwrap();
        let imported = Credentials::open(&path, &storage).unwrap();
        assert!(!path.exists());
        assert_eq!(imported.authenticate(&operator), Some(Principal::Operator));
        assert!(imported.authenticate(&token).is_some());
        // Stopped before the rename: the same file again changes nothing.
        std::fs::write(&path, &kept).unwrap();
        let again = Credentials::open(&path, &storage).unwrap();
        assert_eq!(again.agencies().len(), 1);
        assert!(!path.exists());
        // Another node's file is refused and left where it is.
        Credentials::create(&path).unwrap();
        let refused = Credentials::open(&path, &storage).err().unwrap();
        assert!(
            refused.to_string().contains("another operator token"),
            "{refused}"
        );
        assert!(path.exists());
    }
}
