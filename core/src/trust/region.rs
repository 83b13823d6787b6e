//! Region root certificates (specs/trust.md §2).

use crate::cbor::Key;
use crate::encode::{bytes, entry, map_bytes, text, uint};
use crate::envelope::{BuildError, Kind, seal};
use crate::fields::{Bad, Fields};
use crate::ids::RegionCode;
use crate::keys::{PublicKey, SecretKey};
use crate::values::{ShortText, Time};

/// A region root key as the federation root certifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionRoot {
    pub region: RegionCode,
    pub name: ShortText,
    pub key: PublicKey,
    pub valid_from: Time,
    pub valid_until: Time,
}

impl RegionRoot {
    /// Whether the root may act at `time`.
    pub fn valid_at(&self, time: Time) -> bool {
        self.valid_from <= time && time < self.valid_until
    }

    pub fn payload(&self) -> Result<Vec<u8>, BuildError> {
        map_bytes(vec![
            entry("v", uint(1)),
            entry("rc", text(self.region.as_str())),
            entry("rn", text(self.name.as_str())),
            entry("pk", bytes(self.key.as_bytes())),
            entry("vf", uint(self.valid_from.seconds())),
            entry("vu", uint(self.valid_until.seconds())),
        ])
    }

    /// The region root certificate, signed by the federation root.
    pub fn certify(&self, federation: &SecretKey) -> Result<Vec<u8>, BuildError> {
        if self.valid_from >= self.valid_until {
            return Err(BuildError::Invalid(
                "valid_from must precede valid_until".into(),
            ));
        }
        seal(Kind::Region, federation, self.payload()?, &[])
    }

    pub fn from_payload(payload: &[u8]) -> Result<RegionRoot, Bad> {
        let mut fields = Fields::whole(payload)?;
        fields.version_1()?;
        let region = fields.text(Key::Text("rc"))?;
        let name = fields.short_text(Key::Text("rn"))?;
        let key = fields.public_key(Key::Text("pk"))?;
        let valid_from = fields.time(Key::Text("vf"))?;
        let valid_until = fields.time(Key::Text("vu"))?;
        fields.finish()?;
        let root = RegionRoot {
            region: RegionCode::parse(region).map_err(|e| Bad::new(e.to_string()))?,
            name: ShortText::new(name).ok_or_else(|| Bad::new("region name"))?,
            key,
            valid_from,
            valid_until,
        };
        if root.valid_from >= root.valid_until {
            return Err(Bad::new("region root validity is empty"));
        }
        Ok(root)
    }
}
