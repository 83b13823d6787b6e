//! E-seals (电子印章), after GB/T 38540 SESeal (specs/trust.md §3).

use std::fmt;

use ciborium::Value;

use crate::cbor::Key;
use crate::encode::{bytes, entry, map, map_bytes, text, uint};
use crate::envelope::{BuildError, Kind, seal};
use crate::fields::{Bad, Fields};
use crate::ids::{RegionCode, TypeCode, Uscc};
use crate::keys::{PublicKey, SecretKey};
use crate::suite::Suite;
use crate::values::{ShortText, Time};

/// Largest seal picture, in bytes.
pub const MAX_PICTURE_SIZE: u64 = 16 << 20;
/// Most certificate types one seal's sharing scope may list.
pub const MAX_SHARE_TYPES: usize = 64;

/// A seal id (esID): 1–64 characters of `[0-9A-Za-z-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SealId(String);

impl SealId {
    pub fn parse(id: &str) -> Option<SealId> {
        let ok = (1..=64).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        ok.then(|| SealId(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SealId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($variant,)* }

        impl $name {
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)* _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// Seal types.
    SealType {
        Official => "official",
        Approval => "approval",
        Licence => "licence",
        Business => "business",
        Other => "other",
    }
}

text_enum! {
    /// Media types a seal picture may have.
    MediaType {
        Png => "image/png",
        Svg => "image/svg+xml",
        Jpeg => "image/jpeg",
        Ofd => "application/ofd",
    }
}

/// The seal picture, bound by its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Picture {
    pub digest: [u8; 32],
    pub media_type: MediaType,
    pub size: u64,
}

impl Picture {
    /// The binding for the picture file `image`, digested in the seal's `suite` (encoding.md §4).
    pub fn of(suite: Suite, image: &[u8], media_type: MediaType) -> Picture {
        Picture {
            digest: suite.digest(image),
            media_type,
            size: image.len() as u64,
        }
    }
}

/// The seal information the region root signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealInfo {
    pub id: SealId,
    pub seal_type: SealType,
    pub name: ShortText,
    pub agency_name: ShortText,
    pub agency: Uscc,
    pub region: RegionCode,
    pub key: PublicKey,
    pub created: Time,
    pub valid_from: Time,
    pub valid_until: Time,
    pub picture: Picture,
    /// Sharing scope (用证范围, `"ct"`): the certificate types whose fields the agency may request
    /// from other regions with this seal (specs/sharing.md §2). Sorted, unique; empty: none.
    pub share_types: Vec<TypeCode>,
}

impl SealInfo {
    /// Whether the seal's sharing scope covers certificates of `type_code`.
    pub fn may_request(&self, type_code: &TypeCode) -> bool {
        self.share_types.binary_search(type_code).is_ok()
    }

    /// Whether the seal may stamp at `time` (revocation aside).
    pub fn valid_at(&self, time: Time) -> bool {
        self.valid_from <= time && time < self.valid_until
    }

    pub fn payload(&self) -> Result<Vec<u8>, BuildError> {
        let picture = map(vec![
            entry("d", bytes(&self.picture.digest)),
            entry("mt", text(self.picture.media_type.as_str())),
            entry("sz", uint(self.picture.size)),
        ])?;
        let mut entries = vec![
            entry("v", uint(1)),
            entry("sid", text(self.id.as_str())),
            entry("st", text(self.seal_type.as_str())),
            entry("sn", text(self.name.as_str())),
            entry("an", text(self.agency_name.as_str())),
            entry("au", text(self.agency.as_str())),
            entry("rc", text(self.region.as_str())),
            entry("pk", bytes(self.key.as_bytes())),
            entry("cd", uint(self.created.seconds())),
            entry("vf", uint(self.valid_from.seconds())),
            entry("vu", uint(self.valid_until.seconds())),
            entry("pic", picture),
        ];
        if !self.share_types.is_empty() {
            let types = self.share_types.iter().map(|t| text(t.as_str())).collect();
            entries.push(entry("ct", Value::Array(types)));
        }
        map_bytes(entries)
    }

    /// The e-seal, signed by the root of the seal's region.
    pub fn sign(&self, region_root: &SecretKey) -> Result<Vec<u8>, BuildError> {
        self.check().map_err(|b| BuildError::Invalid(b.detail))?;
        seal(Kind::Seal, region_root, self.payload()?, &[])
    }

    fn check(&self) -> Result<(), Bad> {
        if self.valid_from >= self.valid_until {
            return Err(Bad::new("seal validity is empty"));
        }
        if !(1..=MAX_PICTURE_SIZE).contains(&self.picture.size) {
            return Err(Bad::new("picture size out of range"));
        }
        if self.share_types.len() > MAX_SHARE_TYPES {
            return Err(Bad::new(
                "more than 64 certificate types in the sharing scope",
            ));
        }
        // Bytewise order of the codes' text: TypeCode orders by its text first.
        if self
            .share_types
            .windows(2)
            .any(|w| w[0].as_str() >= w[1].as_str())
        {
            return Err(Bad::new("sharing scope must be sorted and unique"));
        }
        Ok(())
    }

    pub fn from_payload(payload: &[u8]) -> Result<SealInfo, Bad> {
        let mut fields = Fields::whole(payload)?;
        fields.version_1()?;
        let id = fields.text(Key::Text("sid"))?;
        let seal_type = fields.text(Key::Text("st"))?;
        let name = fields.short_text(Key::Text("sn"))?;
        let agency_name = fields.short_text(Key::Text("an"))?;
        let agency = fields.text(Key::Text("au"))?;
        let region = fields.text(Key::Text("rc"))?;
        let key = fields.public_key(Key::Text("pk"))?;
        let created = fields.time(Key::Text("cd"))?;
        let valid_from = fields.time(Key::Text("vf"))?;
        let valid_until = fields.time(Key::Text("vu"))?;
        let mut picture = fields.map(Key::Text("pic"))?;
        let share_types =
            fields.optional_array(Key::Text("ct"), "an array of texts", |r| r.text())?;
        fields.finish()?;
        let share_types = match share_types {
            None => Vec::new(),
            Some(types) if types.is_empty() => {
                return Err(Bad::new("an empty sharing scope must be left out"));
            }
            Some(types) => types
                .into_iter()
                .map(|t| TypeCode::parse(t).map_err(|e| Bad::new(format!("sharing scope: {e}"))))
                .collect::<Result<Vec<_>, _>>()?,
        };
        let digest = picture.fixed::<32>(Key::Text("d"))?;
        let media_type = picture.text(Key::Text("mt"))?;
        let size = picture.uint(Key::Text("sz"))?;
        picture.finish()?;
        let info = SealInfo {
            id: SealId::parse(id).ok_or_else(|| Bad::new("seal id"))?,
            seal_type: SealType::parse(seal_type).ok_or_else(|| Bad::new("seal type"))?,
            name: ShortText::new(name).ok_or_else(|| Bad::new("seal name"))?,
            agency_name: ShortText::new(agency_name).ok_or_else(|| Bad::new("agency name"))?,
            agency: Uscc::parse(agency).map_err(|e| Bad::new(e.to_string()))?,
            region: RegionCode::parse(region).map_err(|e| Bad::new(e.to_string()))?,
            key,
            created,
            valid_from,
            valid_until,
            picture: Picture {
                digest,
                media_type: MediaType::parse(media_type)
                    .ok_or_else(|| Bad::new("picture media type"))?,
                size,
            },
            share_types,
        };
        info.check()?;
        Ok(info)
    }
}

impl From<SealType> for Value {
    fn from(seal_type: SealType) -> Value {
        Value::Text(seal_type.as_str().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_is_bound_by_its_suites_hash() {
        let image = b"\x89PNG seal picture";
        let ed = Picture::of(Suite::Ed25519, image, MediaType::Png);
        assert_eq!(ed.digest, *blake3::hash(image).as_bytes());
        let sm2 = Picture::of(Suite::Sm2, image, MediaType::Png);
        use sm3::Digest;
        let expected: [u8; 32] = sm3::Sm3::digest(image).into();
        assert_eq!(sm2.digest, expected);
        assert_eq!(
            (sm2.size, sm2.media_type),
            (image.len() as u64, MediaType::Png)
        );
    }
}
