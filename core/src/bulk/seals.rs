//! The seal table: prepared once per trust bundle, looked up by kid once per certificate.

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;

use crate::bulk::screen::{KeyClass, classify_key};
use crate::codes::{Code, Failure};
use crate::keys::KeyId;
use crate::trust::{SealEntry, TrustStore};

/// One seal, with what the fast path needs precomputed.
#[derive(Clone, Debug)]
pub struct PreparedSeal {
    pub entry: SealEntry,
    /// The decompressed key (decompression costs microseconds: once per seal, not per
    /// certificate) when the seal's signatures may be batched (specs/bulk.md §4): an Ed25519 key
    /// that passed the screen. None: each signature is checked on its own, by `verify_strict` (an
    /// Ed25519 key with a torsion component; an SM2 key, through its tables).
    pub batch_key: Option<VerifyingKey>,
    /// Its position in the table (0 to len − 1): lets the batch equation gather a seal's terms
    /// without hashing its kid.
    pub slot: usize,
}

/// Every e-seal of a trust bundle, by key id. A weak key never enters it.
#[derive(Clone, Debug)]
pub struct SealTable {
    seals: HashMap<KeyId, PreparedSeal>,
}

impl PreparedSeal {
    /// Whether its signatures may be batched.
    pub fn batchable(&self) -> bool {
        self.batch_key.is_some()
    }
}

impl SealTable {
    /// Prepares the table from a loaded trust store. The store already refused weak keys when it
    /// loaded the bundle (`WEAK_KEY`); the screen runs again here so that the batch path's safety
    /// does not rest on a check made elsewhere.
    pub fn prepare(trust: &TrustStore) -> Result<SealTable, Failure> {
        let mut seals = HashMap::new();
        for (slot, entry) in trust.seals().enumerate() {
            seals.insert(entry.info.key.kid(), prepare_seal(entry.clone(), slot)?);
        }
        Ok(SealTable { seals })
    }

    pub fn get(&self, kid: &KeyId) -> Option<&PreparedSeal> {
        self.seals.get(kid)
    }

    pub fn len(&self) -> usize {
        self.seals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seals.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &PreparedSeal> {
        self.seals.values()
    }
}

/// Screens one seal's key: weak keys are refused with `WEAK_KEY`. An SM2 key is never batched:
/// its signatures are checked one by one (through the key's tables, which every clone of the key
/// shares).
pub fn prepare_seal(entry: SealEntry, slot: usize) -> Result<PreparedSeal, Failure> {
    let batch_key = match entry.info.key.ed25519_key() {
        None => None,
        Some(&key) => match classify_key(&key) {
            KeyClass::Weak => {
                return Err(Failure::new(
                    Code::WeakKey,
                    format!("seal {} has a small-order key", entry.info.id),
                ));
            }
            KeyClass::StrictOnly => None,
            KeyClass::Batchable => Some(key),
        },
    };
    Ok(PreparedSeal {
        entry,
        batch_key,
        slot,
    })
}
