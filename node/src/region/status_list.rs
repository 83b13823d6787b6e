//! The region's status list (specs/status.md §5), made from the durable state's status slots in
//! one pass and signed by the region root; kept and served again while it is fresh enough, so a
//! flood of fetches costs one build a second at most.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tongban_core::trust::StatusListToken;
use tongban_core::trust::status_list::{ListWriter, MAX_ENTRIES};
use tongban_core::values::Time;

use super::{Region, now, state};
use crate::log::LogError;
use crate::refusal::Refusal;

/// How long, in seconds, a verifier may keep a list before fetching it again (its `ttl`).
pub const TTL: u64 = 300;
/// How long a list may be used at all (its `exp` after its `iat`): a day, so an office that loses
/// its network keeps checking status through a working day, and says how old the list is.
pub const VALIDITY: u64 = 86_400;
/// A list is made again at most this often, however the state changes.
const REBUILD_AFTER: Duration = Duration::from_secs(1);
/// And at least this often, so its `iat` never falls far behind.
const REFRESH_AFTER: Duration = Duration::from_secs(TTL / 2);

/// A signed list and what it was made from.
pub(super) struct MadeList {
    bytes: Arc<Vec<u8>>,
    /// The state size it reflects.
    version: u64,
    made: Instant,
}

impl Region {
    /// The next status list index, or a refusal once every 32-bit index is given out.
    pub(super) fn take_status_index(&self) -> Result<u32, Refusal> {
        let index = self.next_status_index.fetch_add(1, Ordering::Relaxed);
        u32::try_from(index)
            .ok()
            .filter(|i| u64::from(*i) < MAX_ENTRIES)
            .ok_or_else(|| {
                Refusal::internal(format!(
                    "the region's status list is full: {MAX_ENTRIES} indexes (what a verifier \
                     unpacks) are given out"
                ))
            })
    }

    /// This region's status list, signed: the one held while it reflects the durable state (or
    /// was made less than a second ago) and is not due for refresh; else a new one.
    pub fn status_list(&self) -> Result<Arc<Vec<u8>>, Refusal> {
        // One build at a time: whoever waits here takes the list the build before them made.
        let mut held = self.status_list.lock().map_err(|_| super::lock_failed())?;
        let size = self.log.size()?;
        if let Some(list) = held.as_ref() {
            let age = list.made.elapsed();
            let current = list.version == size || age < REBUILD_AFTER;
            if current && age < REFRESH_AFTER {
                return Ok(list.bytes.clone());
            }
        }
        let made = self.make_status_list()?;
        let bytes = made.bytes.clone();
        *held = Some(made);
        Ok(bytes)
    }

    fn make_status_list(&self) -> Result<MadeList, Refusal> {
        // Read before the state: the list says no more than the log held at its `iat`.
        let issued = now()?;
        let snapshot = self.log.state()?;
        let length = state::status_list_length(&snapshot)?;
        let mut writer = ListWriter::default();
        let mut failed = None;
        state::status_list_values(&snapshot, length, |status| {
            writer.push(status).map_err(|e| {
                failed = Some(e.to_string());
                LogError::Corrupt("the status list could not be written".into())
            })
        })
        .map_err(|e| match failed.take() {
            Some(detail) => Refusal::internal(detail),
            None => Refusal::from(e),
        })?;
        let (_, list) = writer
            .finish()
            .map_err(|e| Refusal::internal(e.to_string()))?;
        let token = StatusListToken {
            region: self.code.clone(),
            // The durable log this state reflects.
            version: snapshot.size(),
            issued,
            expires: Time::new(issued.seconds() + VALIDITY)
                .ok_or_else(|| Refusal::internal("list expiry beyond the time range"))?,
            ttl: TTL,
            list,
        };
        drop(snapshot);
        let bytes = token
            .sign(&self.root)
            .map_err(|e| Refusal::internal(e.to_string()))?;
        Ok(MadeList {
            bytes: Arc::new(bytes),
            version: token.version,
            made: Instant::now(),
        })
    }
}
