//! API tokens: the operator's and one per agency, stored as BLAKE3 hashes in `credentials.json`
//! (0600), shown in the clear only once, when made. Credentials are not log state (like keys, they
//! must not be published), so they live in their own file, rewritten atomically on each change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use tongban_core::ids::Uscc;

use crate::home::write_durably;
use crate::keyfile::random;

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
    path: PathBuf,
    stored: RwLock<Stored>,
}

fn new_token() -> Result<String, CredentialError> {
    let bytes = random::<32>().map_err(|e| CredentialError::Storage(e.to_string()))?;
    Ok(format!("tb_{}", hex::encode(bytes)))
}

fn hash(token: &str) -> blake3::Hash {
    blake3::hash(token.as_bytes())
}

impl Credentials {
    /// A new file with a fresh operator token; returns the token.
    pub fn create(path: &Path) -> Result<(Credentials, String), CredentialError> {
        let token = new_token()?;
        let stored = Stored {
            operator: hash(&token).to_hex().to_string(),
            agencies: BTreeMap::new(),
        };
        let credentials = Credentials {
            path: path.to_owned(),
            stored: RwLock::new(stored),
        };
        credentials.save(&credentials.read()?)?;
        Ok((credentials, token))
    }

    pub fn open(path: &Path) -> Result<Credentials, CredentialError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CredentialError::Storage(format!("{}: {e}", path.display())))?;
        let stored: Stored = serde_json::from_str(&text)
            .map_err(|e| CredentialError::Storage(format!("{}: {e}", path.display())))?;
        Ok(Credentials {
            path: path.to_owned(),
            stored: RwLock::new(stored),
        })
    }

    fn read(&self) -> Result<Stored, CredentialError> {
        self.stored
            .read()
            .map(|s| s.clone())
            .map_err(|_| CredentialError::Storage("credentials lock poisoned".into()))
    }

    fn save(&self, stored: &Stored) -> Result<(), CredentialError> {
        let text = serde_json::to_vec_pretty(stored)
            .map_err(|e| CredentialError::Storage(e.to_string()))?;
        write_durably(&self.path, &text).map_err(|e| CredentialError::Storage(e.to_string()))
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
        let mut next = stored.clone();
        next.agencies.insert(
            uscc.as_str().to_owned(),
            StoredAgency {
                name: name.to_owned(),
                token_hash: hash(&token).to_hex().to_string(),
            },
        );
        self.save(&next)?;
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
