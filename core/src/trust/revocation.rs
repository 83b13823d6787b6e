//! Seal revocations (specs/trust.md §4).

use crate::cbor::Key;
use crate::encode::{bytes, entry, map_bytes, text, uint};
use crate::envelope::{BuildError, Kind, seal};
use crate::fields::{Bad, Fields};
use crate::ids::RegionCode;
use crate::keys::{KeyId, SecretKey};
use crate::values::{ShortText, Time};

/// A region root's statement that a seal may not stamp from `revoked_from` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealRevocation {
    pub region: RegionCode,
    pub seal: KeyId,
    pub revoked_from: Time,
    pub reason: ShortText,
}

impl SealRevocation {
    pub fn payload(&self) -> Result<Vec<u8>, BuildError> {
        map_bytes(vec![
            entry("v", uint(1)),
            entry("rc", text(self.region.as_str())),
            entry("sk", bytes(&self.seal.0)),
            entry("ra", uint(self.revoked_from.seconds())),
            entry("rsn", text(self.reason.as_str())),
        ])
    }

    pub fn sign(&self, region_root: &SecretKey) -> Result<Vec<u8>, BuildError> {
        seal(Kind::SealRevocation, region_root, self.payload()?, &[])
    }

    pub fn from_payload(payload: &[u8]) -> Result<SealRevocation, Bad> {
        let mut fields = Fields::whole(payload)?;
        fields.version_1()?;
        let region = fields.text(Key::Text("rc"))?;
        let seal = fields.fixed::<16>(Key::Text("sk"))?;
        let revoked_from = fields.time(Key::Text("ra"))?;
        let reason = fields.short_text(Key::Text("rsn"))?;
        fields.finish()?;
        Ok(SealRevocation {
            region: RegionCode::parse(region).map_err(|e| Bad::new(e.to_string()))?,
            seal: KeyId(seal),
            revoked_from,
            reason: ShortText::new(reason).ok_or_else(|| Bad::new("reason"))?,
        })
    }
}
