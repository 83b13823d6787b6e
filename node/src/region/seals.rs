//! Seals: registration, revocation and rotation by the region root, and the seal keys this
//! node holds.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use tongban_core::codes::Code;
use tongban_core::ids::TypeCode;
use tongban_core::keys::{KeyId, SecretKey};
use tongban_core::log::entry::{Act, LogEntry};
use tongban_core::log::state::SealRecord;
use tongban_core::trust::{MediaType, Picture, SealId, SealInfo, SealRevocation, SealType};
use tongban_core::values::{ShortText, Time};

use crate::keyfile::{self};
use crate::refusal::{Kind, Refusal};

use super::{OpenError, Region, Role, SignedSeals, now};

/// A seal rotation, as the operator asks for it.
#[derive(Clone, Debug)]
pub struct Rotation {
    /// The seal to replace.
    pub old: KeyId,
    /// The new seal's id (unique in the region, as every seal's).
    pub id: SealId,
    /// The new seal's validity; absent: from now, until the old seal's end.
    pub valid_from: Option<Time>,
    pub valid_until: Option<Time>,
    /// From when the old seal is revoked; absent: the second after the rotation.
    pub revoke_from: Option<Time>,
    pub reason: ShortText,
}

/// What a rotation logged.
#[derive(Clone, Debug)]
pub struct Rotated {
    pub seal: SealInfo,
    pub registered_at: u64,
    pub revoked_from: Time,
    pub revoked_at: u64,
}

/// A new seal, as the operator asks for it.
#[derive(Clone, Debug)]
pub struct SealSpec {
    pub agency: tongban_core::ids::Uscc,
    pub agency_name: ShortText,
    pub id: SealId,
    pub seal_type: SealType,
    pub name: ShortText,
    pub valid_from: Option<Time>,
    pub valid_until: Time,
    pub picture: Vec<u8>,
    pub media_type: MediaType,
    /// The sharing scope (specs/trust.md §3 `"ct"`), sorted and unique; empty: none.
    pub share_types: Vec<TypeCode>,
}

impl Region {
    /// Creates a seal for a registered agency: its key file first (durable), then the logged,
    /// root-signed seal.
    pub fn create_seal(&self, spec: SealSpec) -> Result<(SealInfo, u64), Refusal> {
        let now = now()?;
        let key = keyfile::generate(self.suite()).map_err(|e| Refusal::internal(e.to_string()))?;
        let info = SealInfo {
            id: spec.id,
            seal_type: spec.seal_type,
            name: spec.name,
            agency_name: spec.agency_name,
            agency: spec.agency,
            region: self.code.clone(),
            key: key.public().clone(),
            created: now,
            valid_from: spec.valid_from.unwrap_or(now),
            valid_until: spec.valid_until,
            picture: Picture::of(self.suite(), &spec.picture, spec.media_type),
            share_types: spec.share_types,
        };
        if info.valid_from >= info.valid_until {
            return Err(Refusal::invalid("valid_from must precede valid_until"));
        }
        let signed = info
            .sign(&self.root)
            .map_err(|e| Refusal::invalid(e.to_string()))?;
        let mut seq = self.sequencer()?;
        if seq.seals.values().any(|s| s.info.id == info.id) {
            return Err(Refusal::new(
                Kind::Conflict,
                "SEAL_EXISTS",
                format!("a seal with id {} exists", info.id),
            ));
        }
        keyfile::write(
            &self
                .seal_dir
                .join(format!("{}.key", info.key.kid().to_hex())),
            &key,
        )
        .map_err(|e| Refusal::internal(e.to_string()))?;
        seq.seal_keys.insert(info.key.kid(), Arc::new(key));
        let index = self.act(seq, Act::SealRegistered { seal: signed }, &self.root)?;
        Ok((info, index))
    }

    /// Revokes a seal from `from`: certificates it stamped at or after `from` become invalid.
    pub fn revoke_seal(&self, kid: KeyId, from: Time, reason: ShortText) -> Result<u64, Refusal> {
        let seq = self.sequencer()?;
        live_seal(&seq.seals, &kid)?;
        let revocation = self.revocation(kid, from, reason)?;
        self.act(seq, Act::SealRevoked { revocation }, &self.root)
    }

    fn revocation(&self, kid: KeyId, from: Time, reason: ShortText) -> Result<Vec<u8>, Refusal> {
        SealRevocation {
            region: self.code.clone(),
            seal: kid,
            revoked_from: from,
            reason,
        }
        .sign(&self.root)
        .map_err(|e| Refusal::internal(e.to_string()))
    }

    /// Replaces a seal: a new seal for the same agency (a new key, its file durable first, with
    /// the old seal's type, name and picture) is registered and the old one revoked from
    /// `rotation.revoke_from` (default: the next second), as two entries of one log submission, so both are
    /// durable or neither is. The new seal is registered first: the agency is never without one.
    pub fn rotate_seal(&self, rotation: Rotation) -> Result<Rotated, Refusal> {
        let now = now()?;
        let key = keyfile::generate(self.suite()).map_err(|e| Refusal::internal(e.to_string()))?;
        let mut seq = self.sequencer()?;
        let old = live_seal(&seq.seals, &rotation.old)?.info.clone();
        if seq.seals.values().any(|s| s.info.id == rotation.id) {
            return Err(Refusal::new(
                Kind::Conflict,
                "SEAL_EXISTS",
                format!("a seal with id {} exists", rotation.id),
            ));
        }
        let info = SealInfo {
            id: rotation.id,
            seal_type: old.seal_type,
            name: old.name.clone(),
            agency_name: old.agency_name.clone(),
            agency: old.agency.clone(),
            region: self.code.clone(),
            key: key.public().clone(),
            created: now,
            valid_from: rotation.valid_from.unwrap_or(now),
            valid_until: rotation.valid_until.unwrap_or(old.valid_until),
            picture: old.picture.clone(),
            // The agency may ask other regions for what it could ask for before.
            share_types: old.share_types.clone(),
        };
        if info.valid_from >= info.valid_until {
            return Err(Refusal::invalid(
                "valid_from must precede valid_until (the old seal's, when absent)",
            ));
        }
        let signed = info
            .sign(&self.root)
            .map_err(|e| Refusal::invalid(e.to_string()))?;
        // By default the old seal is revoked from the next second: every certificate it stamped
        // up to now (times are whole seconds) stays valid, and it stamps no more, since this node
        // issues with no seal that has a revocation on record (`issue`).
        let revoked_from = match rotation.revoke_from {
            Some(from) => from,
            None => Time::new(now.seconds() + 1)
                .ok_or_else(|| Refusal::internal("the clock is at the end of the time range"))?,
        };
        let revocation = self.revocation(rotation.old, revoked_from, rotation.reason)?;
        let entry = |act| {
            LogEntry {
                region: self.code.clone(),
                at: now,
                act,
            }
            .sign(&self.root)
            .map_err(|e| Refusal::internal(e.to_string()))
        };
        let register = entry(Act::SealRegistered { seal: signed })?;
        let revoke = entry(Act::SealRevoked { revocation })?;
        let kid = info.key.kid();
        keyfile::write(&self.seal_dir.join(format!("{}.key", kid.to_hex())), &key)
            .map_err(|e| Refusal::internal(e.to_string()))?;
        seq.seal_keys.insert(kid, Arc::new(key));
        let registered = seq.apply_own(&self.log, register, self.root.public())?;
        let revoked = match seq.apply_own(&self.log, revoke, self.root.public()) {
            Ok(revoked) => revoked,
            Err(mut refusal) => {
                // Not expected (the old seal was checked live above, under this lock); the new
                // seal is already in the state, so it is logged alone to keep state and log one.
                let (index, pending) = self.log_applied(&mut seq, vec![registered], Vec::new())?;
                drop(seq);
                self.durable(index, pending)?;
                refusal.detail = format!(
                    "the new seal {kid} is registered (entry {index}) but the old one is not revoked: {}",
                    refusal.detail
                );
                return Err(refusal);
            }
        };
        let (index, pending) = self.log_applied(&mut seq, vec![registered, revoked], Vec::new())?;
        drop(seq);
        let index = self.durable(index, pending)?;
        Ok(Rotated {
            seal: info,
            registered_at: index,
            revoked_from,
            revoked_at: index + 1,
        })
    }

    /// The signed seals and seal revocations this region's durable log registered.
    pub fn signed_seals(&self) -> Result<SignedSeals, Refusal> {
        let seals = self.view()?.seals.clone();
        Ok((seals.signed(), seals.revocations()))
    }

    /// The seals registered in this region's durable log, by id.
    pub fn seals(&self) -> Result<Vec<(SealInfo, Option<Time>)>, Refusal> {
        let seals = self.view()?.seals.clone();
        let mut listed: Vec<_> = seals
            .0
            .iter()
            .map(|s| (s.info.clone(), s.revoked_from))
            .collect();
        listed.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        Ok(listed)
    }
}

/// The keys in `dir` of the seals `state` registered. A seal's key file is written (durably,
/// under a temporary name first) before its registration is logged, so a crash between the two
/// leaves a key the log does not hold: it is passed over, and never stops a start. A leftover
/// temporary file is removed by a sequencer only: a standby shares the directory with the live
/// sequencer, whose temporary may be a key it is writing this moment. A key of a registered seal
/// that does not read, or is another key than the seal's, stops the start: the operator must see
/// it.
pub(super) fn seal_keys(
    dir: &Path,
    seals: &HashMap<KeyId, SealRecord>,
    role: Role,
) -> Result<HashMap<KeyId, Arc<SecretKey>>, OpenError> {
    let fail = |e: &dyn std::fmt::Display| OpenError::Setup(format!("{}: {e}", dir.display()));
    let mut keys = HashMap::new();
    for entry in std::fs::read_dir(dir).map_err(|e| fail(&e))? {
        let path = entry.map_err(|e| fail(&e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(keyfile::TEMPORARY) {
            if role == Role::Reader {
                continue;
            }
            // A key being written when the node stopped, never given its name: nothing uses it,
            // and a secret is not left lying about.
            std::fs::remove_file(&path).map_err(|e| fail(&e))?;
            tracing::info!(file = %path.display(), "removed a key file left half-made by a crash");
            continue;
        }
        let registered = name
            .strip_suffix(".key")
            .and_then(KeyId::from_hex)
            .filter(|kid| seals.contains_key(kid));
        let Some(kid) = registered else {
            tracing::warn!(file = %path.display(), "not the key of a seal the log registered; passed over");
            continue;
        };
        let key = keyfile::read(&path).map_err(|e| OpenError::Setup(e.to_string()))?;
        if key.public().kid() != kid {
            return Err(OpenError::Setup(format!(
                "{} holds the key {}, not the seal's",
                path.display(),
                key.public().kid()
            )));
        }
        keys.insert(kid, Arc::new(key));
    }
    Ok(keys)
}

/// A registered seal that is not revoked yet: `404 KID_UNKNOWN` or `409 SEAL_ALREADY_REVOKED`
/// otherwise (a seal is revoked once; the log would refuse a second revocation as
/// `SEAL_INVALID`, which would not tell the operator what happened).
fn live_seal<'a>(
    seals: &'a HashMap<KeyId, SealRecord>,
    kid: &KeyId,
) -> Result<&'a SealRecord, Refusal> {
    let seal = seals
        .get(kid)
        .ok_or_else(|| Refusal::code(Kind::NotFound, Code::KidUnknown, kid.to_string()))?;
    match seal.revoked_from {
        None => Ok(seal),
        Some(from) => Err(Refusal::new(
            Kind::Conflict,
            "SEAL_ALREADY_REVOKED",
            format!("seal {kid} is revoked from {}", from.to_rfc3339()),
        )),
    }
}

/// This node stamps nothing with a seal that has a revocation on record, even one that takes
/// effect later (a rotated seal's, by default the second after the rotation): the revocation's
/// time says which certificates it stamped stay valid, not that it may go on stamping.
pub(super) fn refuse_revoked(seal: &SealRecord) -> Result<(), Refusal> {
    match seal.revoked_from {
        None => Ok(()),
        Some(from) => Err(Refusal::new(
            Kind::Conflict,
            "SEAL_NOT_VALID_AT_ISSUE",
            format!(
                "seal {} is revoked from {}; issue with another seal of the agency",
                seal.info.id,
                from.to_rfc3339()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sequencer_removes_a_temporary_key_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let temporary = dir
            .path()
            .join(format!("{}.key{}", "cd".repeat(16), keyfile::TEMPORARY));
        std::fs::write(&temporary, "being written")?;
        // A standby shares the directory with the live sequencer, which may be writing it.
        let keys = seal_keys(dir.path(), &HashMap::new(), Role::Reader)?;
        assert!(keys.is_empty());
        assert!(
            temporary.exists(),
            "a standby removed the sequencer's key being written"
        );
        // The sequencer is the only writer: what it finds at its start a crash left.
        seal_keys(dir.path(), &HashMap::new(), Role::Sequencer)?;
        assert!(!temporary.exists());
        Ok(())
    }
}
