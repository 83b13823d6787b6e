//! Status: an agency's status operations and promises, the node's lapse job, and the signed
//! status snapshot.

use std::sync::Arc;

use tongban_core::ids::{Identifier, RegionCode};
use tongban_core::keys::SecretKey;
use tongban_core::log::entry::Act;
use tongban_core::log::state::{CertRecord, SealRecord, StateRead};
use tongban_core::status::{self, Operation, State, Termination};
use tongban_core::trust::{StatusEntry, StatusSnapshot};
use tongban_core::values::{ShortText, Time};

use crate::refusal::{Kind, Refusal};

use super::{PROMISE_LAPSED, Region, Sequencer, check_owner, now, state, view};

/// Promises lapsed per run of the lapse job, so that one run never holds a list of a whole
/// region's promises.
const LAPSE_BATCH: usize = 10_000;

impl Region {
    /// A key of `agency` to sign its acts on `id` with.
    fn agency_key(
        &self,
        seq: &mut Sequencer,
        agency: &str,
        id: &Identifier,
    ) -> Result<(Arc<SecretKey>, CertRecord), Refusal> {
        let cert = seq
            .cert(&self.log, id)?
            .ok_or_else(|| Refusal::not_found(id.as_str()))?;
        check_owner(&cert, agency)?;
        // The stamping seal if the node holds it and it is not revoked, else another unrevoked
        // seal of the agency the node holds (the one that replaced it, after a rotation), else
        // any held seal of the agency: the log accepts a status act signed by any of them.
        let held = |seal: &SealRecord| seq.seal_keys.get(&seal.info.key.kid());
        let agency_seals = || {
            seq.seals
                .values()
                .filter(move |s| s.info.agency.as_str() == agency)
        };
        let stamping = seq.seals.get(&cert.seal);
        let key = stamping
            .filter(|s| s.revoked_from.is_none())
            .and_then(held)
            .or_else(|| {
                agency_seals()
                    .filter(|s| s.revoked_from.is_none())
                    .find_map(held)
            })
            .or_else(|| stamping.and_then(held))
            .or_else(|| agency_seals().find_map(held))
            .cloned()
            .ok_or_else(|| {
                Refusal::new(
                    Kind::Conflict,
                    "SEAL_KEY_MISSING",
                    "this node holds no seal key of the agency",
                )
            })?;
        Ok((key, cert))
    }

    /// A status operation by the issuing agency.
    pub fn change_status(
        &self,
        agency: &str,
        id: &Identifier,
        operation: Operation,
        reason: Option<ShortText>,
    ) -> Result<(State, u64), Refusal> {
        self.status_act(agency, id, operation, reason, None)
    }

    /// A status operation; `destination` is the receiving region of a transfer out.
    pub(super) fn status_act(
        &self,
        agency: &str,
        id: &Identifier,
        operation: Operation,
        reason: Option<ShortText>,
        destination: Option<RegionCode>,
    ) -> Result<(State, u64), Refusal> {
        let mut seq = self.sequencer()?;
        let (key, cert) = self.agency_key(&mut seq, agency, id)?;
        let to = status::transition(cert.state, operation)
            .map_err(|f| Refusal::new(Kind::Conflict, "TRANSITION_NOT_ALLOWED", f.detail))?;
        if to == State::Other && reason.is_none() {
            return Err(Refusal::invalid("state 99 (other) needs a reason"));
        }
        let act = Act::StatusChanged {
            id: id.clone(),
            operation,
            to,
            reason,
            destination,
        };
        Ok((to, self.act(seq, act, &key)?))
    }

    /// Records that a promise-based certificate's promise was kept.
    pub fn fulfil(&self, agency: &str, id: &Identifier) -> Result<u64, Refusal> {
        let mut seq = self.sequencer()?;
        let (key, _) = self.agency_key(&mut seq, agency, id)?;
        self.act(seq, Act::PromiseFulfilled { id: id.clone() }, &key)
    }

    /// The node's own act: every promise whose deadline has passed unfulfilled lapses (operation 05
    /// → revoked, reason `promise_lapsed`). Returns how many lapsed.
    pub fn lapse_promises(&self) -> Result<usize, Refusal> {
        let now = now()?;
        let due = self.due_promises(now)?;
        let reason = ShortText::new(PROMISE_LAPSED).ok_or_else(|| Refusal::internal("reason"))?;
        let mut lapsed = 0;
        for id in due {
            let mut seq = self.sequencer()?;
            let open = seq.cert(&self.log, &id)?.is_some_and(|c| {
                !c.promise_fulfilled
                    && !c.state.is_terminal()
                    && c.promise_deadline.is_some_and(|d| d <= now)
            });
            if !open {
                continue;
            }
            let act = Act::StatusChanged {
                id,
                operation: Operation::Terminate(Termination::Revoke),
                to: State::Revoked,
                reason: Some(reason.clone()),
                destination: None,
            };
            self.act(seq, act, &self.root)?;
            lapsed += 1;
        }
        Ok(lapsed)
    }

    /// Open promises whose deadline is at or before `now`, at most [`LAPSE_BATCH`] of them (the
    /// next run takes the rest), from the durable state's promise rows.
    fn due_promises(&self, now: Time) -> Result<Vec<Identifier>, Refusal> {
        let after = Time::new(now.seconds() + 1).unwrap_or(now);
        let mut due = Vec::new();
        let mut bad = None;
        self.log.state()?.scan(state::PROMISE, &[], |key, _| {
            match state::lapsed_promise(key, after) {
                None => false,
                Some(Ok(id)) => {
                    due.push(id);
                    due.len() < LAPSE_BATCH
                }
                Some(Err(e)) => {
                    bad = Some(e);
                    false
                }
            }
        })?;
        match bad {
            Some(e) => Err(e.into()),
            None => Ok(due),
        }
    }

    /// This region's status snapshot, signed now.
    pub fn status_snapshot(&self) -> Result<Vec<u8>, Refusal> {
        let now = now()?;
        let state = self.log.state()?;
        let mut snapshot = StatusSnapshot {
            region: self.code.clone(),
            // The durable log this state reflects, not the sequencer's one commit ahead.
            version: state.size(),
            issued: now,
            entries: Vec::new(),
            fulfilled: Vec::new(),
        };
        // Only the listed rows: the certificates not valid or with a fulfilled promise.
        let mut listed = Vec::new();
        state.scan(state::LISTED, &[], |key, _| {
            listed.push(key.to_vec());
            true
        })?;
        let mut bad = None;
        let rows = state::Rows(&state);
        for key in listed {
            let id = std::str::from_utf8(&key)
                .ok()
                .and_then(|id| Identifier::parse(id).ok());
            let record = match &id {
                Some(id) => rows.cert(id)?,
                None => None,
            };
            let (Some(id), Some(record)) = (id, record) else {
                bad = Some(Refusal::internal(format!(
                    "listed state row {:?} names no certificate",
                    String::from_utf8_lossy(&key)
                )));
                break;
            };
            if record.promise_fulfilled {
                snapshot.fulfilled.push(id.clone());
            }
            if record.state != State::Valid {
                snapshot.entries.push(StatusEntry {
                    note: view::status_note(&record),
                    id,
                    state: record.state,
                    since: record.changed,
                });
            }
        }
        if let Some(bad) = bad {
            return Err(bad);
        }
        drop(state);
        snapshot.normalise();
        snapshot
            .sign(&self.root)
            .map_err(|e| Refusal::internal(e.to_string()))
    }
}
