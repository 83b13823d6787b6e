//! Holder-consented presentation codes (亮证码, specs/presentation.md §2): an agency acting for a
//! holder asks its region for a short-lived code that shows chosen fields of one certificate;
//! staff at any member region resolve the code with a presentation request signed by their
//! agency's seal, and the holding region answers with a purpose-bound copy (sharing.md §4.3).
//!
//! The code is a bearer secret for a few minutes: logs and requests name it only by its digest.

use std::fmt;

use crate::cbor::Key;
use crate::cert::FieldName;
use crate::codes::{Code, Failure};
use crate::encode::{bytes, entry, map_bytes, text, uint};
use crate::envelope::{BuildError, Kind, MAX_DISCLOSURES, seal};
use crate::fields::{Bad, Fields};
use crate::ids::{Identifier, RegionCode, Uscc};
use crate::keys::SecretKey;
use crate::sharing::request::{Opened, open_sealed};
use crate::suite::Suite;
use crate::trust::TrustStore;
use crate::values::{ShortText, Time};

/// How long a code lives when the holder's agency does not say, in seconds.
pub const DEFAULT_LIFETIME: u64 = 300;
/// The shortest and longest life a code may be given, in seconds.
pub const MIN_LIFETIME: u64 = 10;
pub const MAX_LIFETIME: u64 = 1_800;
/// The most times one code may be resolved.
pub const MAX_USES: u32 = 100;
/// What a QR code holds before the code, so a scanner's text is told apart from an offline
/// certificate (`TB1:`).
pub const QR_PREFIX: &str = "TBP1:";
/// Code characters after the region: 50 bits of the node's randomness.
pub const SECRET_CHARS: usize = 10;
/// Crockford's base 32: no I, L, O or U, so a code read out or typed is not misread.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// The longest text a reader looks at (a URL with the code in its fragment).
const MAX_TEXT: usize = 512;

/// A presentation code: the region that made it and the secret part.
#[derive(Clone, PartialEq, Eq)]
pub struct PresentationCode {
    region: RegionCode,
    secret: [u8; SECRET_CHARS],
}

impl fmt::Debug for PresentationCode {
    /// The secret stays out of logs and panics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PresentationCode({}-*****-*****)", self.region)
    }
}

fn malformed(detail: impl Into<String>) -> Failure {
    Failure::new(Code::PresentationMalformed, detail)
}

impl PresentationCode {
    /// A code of `region` from 7 random bytes (their first 50 bits).
    pub fn from_random(region: RegionCode, random: [u8; 7]) -> PresentationCode {
        let mut wide = [0u8; 8];
        wide[1..].copy_from_slice(&random);
        let bits = u64::from_be_bytes(wide) >> 6;
        let mut secret = [0u8; SECRET_CHARS];
        for (i, c) in secret.iter_mut().enumerate() {
            *c = ALPHABET[((bits >> (5 * (SECRET_CHARS - 1 - i))) & 31) as usize];
        }
        PresentationCode { region, secret }
    }

    /// Reads a code as a person types it or a scanner gives it (specs/presentation.md §2.1):
    /// white space at both ends removed; the bare code, `TBP1:` and the code, or a URL whose
    /// fragment is `TBP1:` and the code; hyphens and spaces inside ignored; letters in either
    /// case, O read as 0 and I or L as 1.
    pub fn parse(text: &str) -> Result<PresentationCode, Failure> {
        if text.len() > MAX_TEXT {
            return Err(malformed(format!("{} characters", text.len())));
        }
        let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
        let text = match text.rfind(QR_PREFIX) {
            Some(at) if at == 0 || text[..at].ends_with('#') => &text[at + QR_PREFIX.len()..],
            _ => text,
        };
        let chars: Vec<u8> = text.bytes().filter(|b| *b != b'-' && *b != b' ').collect();
        if chars.len() != 6 + SECRET_CHARS {
            return Err(malformed(
                "a code is a 6-digit region code and 10 code characters",
            ));
        }
        let (region, rest) = chars.split_at(6);
        let region = std::str::from_utf8(region)
            .ok()
            .and_then(|r| RegionCode::parse(r).ok())
            .ok_or_else(|| malformed("the code does not start with a region code"))?;
        let mut secret = [0u8; SECRET_CHARS];
        for (out, b) in secret.iter_mut().zip(rest) {
            let c = match b.to_ascii_uppercase() {
                b'O' => b'0',
                b'I' | b'L' => b'1',
                c => c,
            };
            if !ALPHABET.contains(&c) {
                return Err(malformed(format!(
                    "{:?} is not a code character",
                    char::from(*b)
                )));
            }
            *out = c;
        }
        Ok(PresentationCode { region, secret })
    }

    /// The region that made the code: the one that resolves it.
    pub fn region(&self) -> &RegionCode {
        &self.region
    }

    /// The code as shown and read out: `340100-7KQ9M-2XDPT`.
    pub fn text(&self) -> String {
        let secret = String::from_utf8_lossy(&self.secret);
        let (a, b) = secret.split_at(SECRET_CHARS / 2);
        format!("{}-{a}-{b}", self.region)
    }

    /// What the QR code holds when no page address is configured: `TBP1:` and the code.
    pub fn qr_text(&self) -> String {
        format!("{QR_PREFIX}{}", self.text())
    }

    /// The code's digest, by which logs and requests name it: the federation suite's hash of
    /// [`PresentationCode::text`].
    pub fn digest(&self, suite: Suite) -> [u8; 32] {
        suite.digest(self.text().as_bytes())
    }
}

/// What an agency asks for when its staff resolve a code (specs/presentation.md §2.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentationRequest {
    /// The region asked: the code's.
    pub to: RegionCode,
    /// The code's digest ([`PresentationCode::digest`]).
    pub code: [u8; 32],
    /// The matter being handled (办理事项).
    pub purpose: ShortText,
    /// The resolving agency's case id (办件编号).
    pub case: ShortText,
    pub at: Time,
    pub nonce: [u8; 16],
}

/// A presentation request whose seal signature verified.
pub type OpenedPresentation = Opened<PresentationRequest>;

impl PresentationRequest {
    pub fn payload(&self) -> Result<Vec<u8>, BuildError> {
        map_bytes(vec![
            entry("v", uint(1)),
            entry("to", text(self.to.as_str())),
            entry("pc", bytes(&self.code)),
            entry("pp", text(self.purpose.as_str())),
            entry("cs", text(self.case.as_str())),
            entry("at", uint(self.at.seconds())),
            entry("n", bytes(&self.nonce)),
        ])
    }

    /// The request, signed with a seal key of the resolving agency.
    pub fn sign(&self, seal_key: &SecretKey) -> Result<Vec<u8>, BuildError> {
        seal(Kind::PresentationRequest, seal_key, self.payload()?, &[])
    }

    /// Decodes a payload (its CBOR already checked).
    pub fn from_payload(payload: &[u8]) -> Result<PresentationRequest, Bad> {
        let mut f = Fields::whole(payload)?;
        f.version_1()?;
        let to = f.text(Key::Text("to"))?;
        let code = f.fixed::<32>(Key::Text("pc"))?;
        let purpose = f.short_text(Key::Text("pp"))?;
        let case = f.short_text(Key::Text("cs"))?;
        let at = f.time(Key::Text("at"))?;
        let nonce = f.fixed::<16>(Key::Text("n"))?;
        f.finish()?;
        Ok(PresentationRequest {
            to: RegionCode::parse(to).map_err(|e| Bad::new(e.to_string()))?,
            code,
            purpose: ShortText::new(purpose).ok_or_else(|| Bad::new("purpose"))?,
            case: ShortText::new(case).ok_or_else(|| Bad::new("case id"))?,
            at,
            nonce,
        })
    }

    /// Steps 1–5 of specs/sharing.md §4.1 with this object's `typ`.
    pub fn open(bytes: &[u8], trust: &TrustStore) -> Result<OpenedPresentation, Failure> {
        open_sealed(
            bytes,
            trust,
            Kind::PresentationRequest,
            PresentationRequest::from_payload,
        )
    }
}

impl OpenedPresentation {
    /// Steps 6–8 of specs/sharing.md §4.1 for region `here` at `now`. No sharing scope is asked
    /// of the seal (step 9): the holder's consent, recorded in `here`'s log when the code was
    /// made, authorises what the code shows.
    pub fn authorise(&self, here: &RegionCode, now: Time) -> Result<(), Failure> {
        self.authorise_sent(&self.request.to, self.request.at, here, now)
    }
}

/// What a holder's agency asks its region to show (specs/presentation.md §2.2), checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentationTerms {
    pub id: Identifier,
    /// Sorted, unique, 1 to 256.
    pub fields: Vec<FieldName>,
    /// Seconds, [`MIN_LIFETIME`] to [`MAX_LIFETIME`].
    pub lifetime: u64,
    /// 1 to [`MAX_USES`].
    pub uses: u32,
}

impl PresentationTerms {
    /// Sorts and deduplicates `fields` and checks the bounds; `None` takes the defaults (5
    /// minutes, one use).
    pub fn new(
        id: Identifier,
        mut fields: Vec<FieldName>,
        lifetime: Option<u64>,
        uses: Option<u32>,
    ) -> Result<PresentationTerms, Bad> {
        fields.sort();
        fields.dedup();
        if !(1..=MAX_DISCLOSURES).contains(&fields.len()) {
            return Err(Bad::new("a presentation shows 1 to 256 fields"));
        }
        let lifetime = lifetime.unwrap_or(DEFAULT_LIFETIME);
        if !(MIN_LIFETIME..=MAX_LIFETIME).contains(&lifetime) {
            return Err(Bad::new(format!(
                "a code lives {MIN_LIFETIME} to {MAX_LIFETIME} seconds"
            )));
        }
        let uses = uses.unwrap_or(1);
        if !(1..=MAX_USES).contains(&uses) {
            return Err(Bad::new(format!("a code is used 1 to {MAX_USES} times")));
        }
        Ok(PresentationTerms {
            id,
            fields,
            lifetime,
            uses,
        })
    }
}

/// A presentation as its region's state holds it, under its code's digest: made by a
/// `presentation.created` entry, its `used` counted up by each `presentation.answered` that gave
/// a copy (specs/log.md §1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentationRecord {
    /// The agency that made it for the holder.
    pub agency: Uscc,
    pub id: Identifier,
    pub fields: Vec<FieldName>,
    pub expires: Time,
    pub uses: u32,
    pub used: u32,
}

impl PresentationRecord {
    /// Whether the code may be resolved once more at `now`: `PRESENTATION_EXPIRED` at or after
    /// its expiry, else `PRESENTATION_USED_UP` once every use is spent.
    pub fn redeemable(&self, now: Time) -> Result<(), Failure> {
        if now >= self.expires {
            return Err(Failure::new(
                Code::PresentationExpired,
                format!("the code expired at {}", self.expires.to_rfc3339()),
            ));
        }
        if self.used >= self.uses {
            return Err(Failure::new(
                Code::PresentationUsedUp,
                format!("the code was resolved {} of {} times", self.used, self.uses),
            ));
        }
        Ok(())
    }

    /// The record as a store keeps it: a CBOR array.
    pub fn encode(&self) -> Vec<u8> {
        use crate::cbor::{write_head, write_text, write_uint};
        let mut out = Vec::with_capacity(96 + 24 * self.fields.len());
        write_head(&mut out, 4, 6);
        write_text(&mut out, self.agency.as_str());
        write_text(&mut out, self.id.as_str());
        write_head(&mut out, 4, self.fields.len() as u64);
        for field in &self.fields {
            write_text(&mut out, field.as_str());
        }
        write_uint(&mut out, self.expires.seconds());
        write_uint(&mut out, u64::from(self.uses));
        write_uint(&mut out, u64::from(self.used));
        out
    }

    /// What [`PresentationRecord::encode`] wrote; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<PresentationRecord> {
        let mut r = crate::cbor::Reader::new(bytes);
        (r.array()? == 6).then_some(())?;
        let agency = Uscc::parse(r.text()?).ok()?;
        let id = Identifier::parse(r.text()?).ok()?;
        let count = r.array()?;
        if count > MAX_DISCLOSURES as u64 {
            return None;
        }
        let fields = (0..count)
            .map(|_| FieldName::parse(r.text()?))
            .collect::<Option<Vec<_>>>()?;
        let expires = Time::new(r.uint()?)?;
        let uses = u32::try_from(r.uint()?).ok()?;
        let used = u32::try_from(r.uint()?).ok()?;
        r.at_end().then_some(PresentationRecord {
            agency,
            id,
            fields,
            expires,
            uses,
            used,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{BUSINESS_LICENCE, make_uscc};

    fn agency() -> Uscc {
        make_uscc("91341200MA2N0000X").unwrap_or_else(|e| panic!("{e}"))
    }

    fn licence() -> Identifier {
        crate::testkit::identifier(BUSINESS_LICENCE, &agency(), "000001")
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn region() -> RegionCode {
        RegionCode::parse("341200").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_code_reads_back_in_every_form_a_person_or_scanner_gives() {
        let code =
            PresentationCode::from_random(region(), [0xA5, 0x3C, 0x0F, 0xF0, 0x99, 0x12, 0x7E]);
        let shown = code.text();
        assert_eq!(shown.len(), 6 + 1 + 5 + 1 + 5);
        assert!(shown.starts_with("341200-"));
        let secret: String = shown[7..].replace('-', "");
        let forms = [
            shown.clone(),
            code.qr_text(),
            format!("https://zwfw.example.gov.cn/verify#{}\r\n", code.qr_text()),
            format!("  {}  ", shown.to_ascii_lowercase()),
            format!("341200 {} {}", &secret[..5], &secret[5..]),
        ];
        for form in forms {
            assert_eq!(PresentationCode::parse(&form), Ok(code.clone()), "{form:?}");
        }
        // Misread letters: O for 0, I and L for 1.
        let plain = PresentationCode::parse("341200-0110A-BCDEF").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(PresentationCode::parse("341200-OIL0A-bcdef"), Ok(plain));
    }

    #[test]
    fn a_malformed_code_is_refused_with_its_code() {
        for bad in [
            "",
            "341200-7KQ9M-2XDP",
            "341200-7KQ9M-2XDPTT",
            "34120X-7KQ9M-2XDPT",
            "341200-7KQ9M-2XDPU",
            "http://x/verify?TBP1:341200-7KQ9M-2XDPT",
            &"9".repeat(600),
        ] {
            let refused = PresentationCode::parse(bad).err().map(|f| f.code);
            assert_eq!(refused, Some(Code::PresentationMalformed), "{bad:?}");
        }
    }

    #[test]
    fn the_secret_stays_out_of_debug_output() {
        let code = PresentationCode::from_random(region(), [7; 7]);
        let secret = &code.text()[7..12];
        assert!(!format!("{code:?}").contains(secret));
    }

    #[test]
    fn terms_take_defaults_and_keep_bounds() {
        let id = licence();
        let name = |n: &str| FieldName::parse(n).unwrap_or_else(|| panic!("{n}"));
        let terms = PresentationTerms::new(
            id.clone(),
            vec![name("holder.name"), name("holder.name")],
            None,
            None,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            (terms.lifetime, terms.uses, terms.fields.len()),
            (300, 1, 1)
        );
        assert!(PresentationTerms::new(id.clone(), vec![], None, None).is_err());
        for (lifetime, uses) in [
            (Some(9), None),
            (Some(1801), None),
            (None, Some(0)),
            (None, Some(101)),
        ] {
            assert!(
                PresentationTerms::new(id.clone(), vec![name("holder.name")], lifetime, uses)
                    .is_err()
            );
        }
        assert!(
            PresentationTerms::new(id, vec![name("holder.name")], Some(1800), Some(100)).is_ok()
        );
    }

    #[test]
    fn a_record_is_redeemable_until_expired_or_used_up() {
        let record = PresentationRecord {
            agency: agency(),
            id: licence(),
            fields: vec![FieldName::parse("holder.name").unwrap_or_else(|| panic!())],
            expires: Time::new(1_000).unwrap_or_else(|| panic!()),
            uses: 2,
            used: 1,
        };
        assert_eq!(
            PresentationRecord::decode(&record.encode()),
            Some(record.clone())
        );
        let at = |s| Time::new(s).unwrap_or_else(|| panic!());
        assert!(record.redeemable(at(999)).is_ok());
        let code = |r: &PresentationRecord, t| r.redeemable(at(t)).err().map(|f| f.code);
        assert_eq!(code(&record, 1_000), Some(Code::PresentationExpired));
        let spent = PresentationRecord { used: 2, ..record };
        assert_eq!(code(&spent, 999), Some(Code::PresentationUsedUp));
        assert_eq!(code(&spent, 1_000), Some(Code::PresentationExpired));
    }
}
