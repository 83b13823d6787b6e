//! The certificate's claims set (specs/certificate.md §2) and its decoding in the order of
//! specs/verification.md §2 step 9.

use std::fmt;

use ciborium::Value;

use crate::cbor::{self, Key, Strict};
use crate::codes::{Code, Failure};
use crate::encode::{bytes, entry, map, map_bytes, text, uint};
use crate::envelope::{BuildError, Kind, MAX_DISCLOSURES};
use crate::fields::{Bad, Fields};
use crate::ids::{Identifier, IssuerCode, RegionCode, Uscc};
use crate::status::Succession;
use crate::trust::status_list;
use crate::values::{ShortText, Time};

/// CWT claim keys (RFC 8392).
const ISS: i64 = 1;
const EXP: i64 = 4;
const NBF: i64 = 5;
const IAT: i64 = 6;
/// The draft-ietf-oauth-status-list `status` claim.
const STATUS: i64 = 65535;
/// The claims format version this build reads and writes.
pub const VERSION: u64 = 2;

/// Trust level after GB/T 36903 usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrustLevel {
    /// Produced by the issuer; usable directly.
    A,
    /// Checked against the original by staff.
    B,
    /// Uploaded by the user; the original must be checked.
    C,
    /// Made by the user under a promise.
    D,
}

impl TrustLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            TrustLevel::A => "A",
            TrustLevel::B => "B",
            TrustLevel::C => "C",
            TrustLevel::D => "D",
        }
    }

    pub fn parse(text: &str) -> Option<TrustLevel> {
        match text {
            "A" => Some(TrustLevel::A),
            "B" => Some(TrustLevel::B),
            "C" => Some(TrustLevel::C),
            "D" => Some(TrustLevel::D),
            _ => None,
        }
    }
}

impl fmt::Display for TrustLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The certificate this one succeeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Predecessor {
    pub id: Identifier,
    pub how: Succession,
}

/// A certificate's signed claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub id: Identifier,
    pub type_name: ShortText,
    pub agency: Uscc,
    pub agency_name: ShortText,
    pub region: RegionCode,
    pub issued: Time,
    pub valid_from: Time,
    /// `None`: no end date (长期有效).
    pub valid_until: Option<Time>,
    pub level: TrustLevel,
    pub promise_deadline: Option<Time>,
    pub predecessor: Option<Predecessor>,
    /// The certificate's index in its region's status list (specs/status.md §5).
    pub status_index: u32,
    /// Disclosure digests, sorted ascending and unique.
    pub digests: Vec<[u8; 32]>,
}

impl Claims {
    pub fn payload(&self) -> Result<Vec<u8>, BuildError> {
        self.check_values()
            .map_err(|b| BuildError::Invalid(b.detail))?;
        let mut entries = vec![
            entry(ISS, text(self.agency.as_str())),
            entry(NBF, uint(self.valid_from.seconds())),
            entry(IAT, uint(self.issued.seconds())),
            entry("v", uint(VERSION)),
            entry("id", text(self.id.as_str())),
            entry("tn", text(self.type_name.as_str())),
            entry("an", text(self.agency_name.as_str())),
            entry("rc", text(self.region.as_str())),
            entry("lvl", text(self.level.as_str())),
            entry(
                "sd",
                Value::Array(self.digests.iter().map(|d| bytes(d)).collect()),
            ),
            entry(
                STATUS,
                map(vec![entry(
                    "status_list",
                    map(vec![
                        entry("idx", uint(u64::from(self.status_index))),
                        entry("uri", text(&status_list::uri(&self.region))),
                    ])?,
                )])?,
            ),
        ];
        if let Some(exp) = self.valid_until {
            entries.push(entry(EXP, uint(exp.seconds())));
        }
        if let Some(pd) = self.promise_deadline {
            entries.push(entry("pd", uint(pd.seconds())));
        }
        if let Some(prev) = &self.predecessor {
            let prev = map(vec![
                entry("id", text(prev.id.as_str())),
                entry("op", uint(prev.how.code())),
            ])?;
            entries.push(entry("prev", prev));
        }
        map_bytes(entries)
    }

    /// Whether `digest` is one of the committed disclosure digests (step 10 asks for each
    /// disclosure).
    pub fn commits(&self, digest: &[u8; 32]) -> bool {
        self.digests
            .binary_search_by(|d| digest_order(d, digest))
            .is_ok()
    }

    /// Whether the certificate is within its validity at `now`.
    pub fn valid_at(&self, now: Time) -> bool {
        self.valid_from <= now && self.valid_until.is_none_or(|exp| now < exp)
    }

    /// The cross-claim rules of step 9e that typed values cannot express on their own.
    fn check_values(&self) -> Result<(), Bad> {
        if !(1..=MAX_DISCLOSURES).contains(&self.digests.len()) {
            return Err(Bad::new("\"sd\" must hold 1 to 256 digests"));
        }
        if self
            .digests
            .windows(2)
            .any(|w| digest_order(&w[0], &w[1]).is_ge())
        {
            return Err(Bad::new("\"sd\" must be sorted ascending and unique"));
        }
        if self.valid_until.is_some_and(|exp| exp <= self.valid_from) {
            return Err(Bad::new("validity end must follow its start"));
        }
        if self.promise_deadline.is_some_and(|pd| pd <= self.issued) {
            return Err(Bad::new("promise deadline must follow the issue time"));
        }
        if let Some(prev) = &self.predecessor
            && prev.id == self.id
        {
            return Err(Bad::new("a certificate cannot succeed itself"));
        }
        let issuer_ok = match self.id.issuer() {
            IssuerCode::Uscc(u) => *u == self.agency,
            IssuerCode::Region(r) => *r == self.region,
        };
        if !issuer_ok {
            return Err(Bad::new(
                "identifier's issuer is neither the agency nor the region",
            ));
        }
        Ok(())
    }

    /// Decodes a payload whose signature has verified: step 9 of specs/verification.md §2.
    pub fn decode(payload: &[u8]) -> Result<Claims, Failure> {
        // 9a and 9b in one pass for claims as issuers encode them; anything else is checked and
        // read the long way, which names the first rule broken.
        let raw = match RawClaims::read_strict(payload) {
            Some(raw) => raw,
            None => {
                // 9a
                cbor::check(payload, Kind::Certificate.size_limit(), false)?;
                // 9b
                RawClaims::read(payload).map_err(|b| b.into_failure(Code::ClaimsInvalid))?
            }
        };
        // 9c
        let id = Identifier::parse(raw.id)
            .map_err(|e| Failure::new(Code::IdentifierInvalid, e.to_string()))?;
        let prev_id = raw
            .prev
            .map(|(prev, _)| Identifier::parse(prev))
            .transpose()
            .map_err(|e| Failure::new(Code::IdentifierInvalid, format!("predecessor: {e}")))?;
        // 9d
        let agency =
            Uscc::parse(raw.iss).map_err(|e| Failure::new(Code::UsccInvalid, e.to_string()))?;
        // 9e
        raw.finish(id, prev_id, agency)
            .map_err(|b| b.into_failure(Code::ClaimsInvalid))
    }
}

/// The bytewise order of digests (`Ord` on the arrays), decided by their first eight bytes
/// unless those are equal: step 10 compares each disclosure's digest against several, and only
/// the last comparison of a lookup that finds it, against itself, reaches `memcmp`.
fn digest_order(a: &[u8; 32], b: &[u8; 32]) -> std::cmp::Ordering {
    let prefix =
        |d: &[u8; 32]| u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
    prefix(a).cmp(&prefix(b)).then_with(|| a.cmp(b))
}

/// The claims with only their CBOR types checked (step 9b).
#[derive(Debug, PartialEq, Eq)]
struct RawClaims<'a> {
    iss: &'a str,
    exp: Option<u64>,
    nbf: u64,
    iat: u64,
    id: &'a str,
    tn: &'a str,
    an: &'a str,
    rc: &'a str,
    lvl: &'a str,
    pd: Option<u64>,
    prev: Option<(&'a str, u64)>,
    sd: Vec<&'a [u8]>,
    /// The status claim's index and URI.
    status: (u64, &'a str),
}

impl<'a> RawClaims<'a> {
    fn read(payload: &'a [u8]) -> Result<RawClaims<'a>, Bad> {
        let mut f = Fields::whole(payload)?;
        f.version(VERSION)?;
        // The rest in the order the encoding sorts the keys (integers, then texts by length and
        // bytes), so that each is the next one (`Fields` finds it at once).
        let iss = f.text(Key::Int(ISS))?;
        let exp = f.optional_uint(Key::Int(EXP))?;
        let nbf = f.uint(Key::Int(NBF))?;
        let iat = f.uint(Key::Int(IAT))?;
        let status = {
            let mut status = f.map(Key::Int(STATUS))?;
            let mut list = status.map(Key::Text("status_list"))?;
            let reference = (list.uint(Key::Text("idx"))?, list.text(Key::Text("uri"))?);
            list.finish()?;
            status.finish()?;
            reference
        };
        let an = f.text(Key::Text("an"))?;
        let id = f.text(Key::Text("id"))?;
        let pd = f.optional_uint(Key::Text("pd"))?;
        let rc = f.text(Key::Text("rc"))?;
        let sd = f.array(Key::Text("sd"), "an array of byte strings", |r| r.bytes())?;
        let tn = f.text(Key::Text("tn"))?;
        let lvl = f.text(Key::Text("lvl"))?;
        let prev = match f.optional_map(Key::Text("prev"))? {
            None => None,
            Some(mut prev) => {
                let id = prev.text(Key::Text("id"))?;
                let op = prev.uint(Key::Text("op"))?;
                prev.finish()?;
                Some((id, op))
            }
        };
        f.finish()?;
        Ok(RawClaims {
            iss,
            exp,
            nbf,
            iat,
            id,
            tn,
            an,
            rc,
            lvl,
            pd,
            prev,
            sd,
            status,
        })
    }

    /// [`RawClaims::read`] and the strict CBOR check before it, in one pass ([`Strict`]), for
    /// claims whose keys come in the encoder's order: `None` for anything these two would refuse
    /// (and perhaps for more, which the caller then reads the long way).
    fn read_strict(payload: &'a [u8]) -> Option<RawClaims<'a>> {
        // Within the limit, no length or count that fits can exceed it (see `Strict`).
        if payload.len() as u64 > Kind::Certificate.size_limit() {
            return None;
        }
        let mut s = Strict::new(payload);
        let mut f = StrictMap::open(&mut s)?;
        let iss = f.value(Key::Int(ISS))?.text()?;
        let exp = f.optional(Key::Int(EXP), Strict::uint)?;
        let nbf = f.value(Key::Int(NBF))?.uint()?;
        let iat = f.value(Key::Int(IAT))?.uint()?;
        let status = {
            let mut status = StrictMap::open(f.value(Key::Int(STATUS))?)?;
            let mut list = StrictMap::open(status.value(Key::Text("status_list"))?)?;
            let idx = list.value(Key::Text("idx"))?.uint()?;
            let uri = list.value(Key::Text("uri"))?.text()?;
            list.done()?;
            status.done()?;
            (idx, uri)
        };
        if f.value(Key::Text("v"))?.uint()? != VERSION {
            return None;
        }
        let an = f.value(Key::Text("an"))?.text()?;
        let id = f.value(Key::Text("id"))?.text()?;
        let pd = f.optional(Key::Text("pd"), Strict::uint)?;
        let rc = f.value(Key::Text("rc"))?.text()?;
        let sd = {
            let s = f.value(Key::Text("sd"))?;
            let count = s.array()?;
            let mut sd = Vec::with_capacity(count.min(MAX_DISCLOSURES as u64) as usize);
            for _ in 0..count {
                sd.push(s.bytes()?);
            }
            sd
        };
        let tn = f.value(Key::Text("tn"))?.text()?;
        let lvl = f.value(Key::Text("lvl"))?.text()?;
        let prev = f.optional(Key::Text("prev"), |s| {
            let mut prev = StrictMap::open(s)?;
            let id = prev.value(Key::Text("id"))?.text()?;
            let op = prev.value(Key::Text("op"))?.uint()?;
            prev.done()?;
            Some((id, op))
        })?;
        f.done()?;
        s.at_end().then_some(RawClaims {
            iss,
            exp,
            nbf,
            iat,
            id,
            tn,
            an,
            rc,
            lvl,
            pd,
            prev,
            sd,
            status,
        })
    }

    fn finish(
        self,
        id: Identifier,
        prev_id: Option<Identifier>,
        agency: Uscc,
    ) -> Result<Claims, Bad> {
        let time = |what: &str, t: u64| {
            Time::new(t).ok_or_else(|| Bad::new(format!("{what} out of range")))
        };
        let short = |what: &str, t: &str| {
            ShortText::new(t).ok_or_else(|| Bad::new(format!("{what} is not a short text")))
        };
        let predecessor = match (prev_id, self.prev) {
            (Some(id), Some((_, op))) => Some(Predecessor {
                id,
                how: Succession::from_code(op)
                    .ok_or_else(|| Bad::new(format!("predecessor operation {op} unknown")))?,
            }),
            _ => None,
        };
        let digests = self
            .sd
            .iter()
            .map(|d| <[u8; 32]>::try_from(*d).map_err(|_| Bad::new("a digest is not 32 bytes")))
            .collect::<Result<Vec<_>, _>>()?;
        let region = RegionCode::parse(self.rc).map_err(|e| Bad::new(e.to_string()))?;
        let (index, list_uri) = self.status;
        let status_index = u32::try_from(index)
            .map_err(|_| Bad::new(format!("status index {index} beyond 2^32 - 1")))?;
        if !status_list::is_uri_of(list_uri, &region) {
            return Err(Bad::new(format!(
                "status list {list_uri:?} is not the one of region {region}"
            )));
        }
        let claims = Claims {
            id,
            type_name: short("type name", self.tn)?,
            agency,
            agency_name: short("agency name", self.an)?,
            region,
            issued: time("iat", self.iat)?,
            valid_from: time("nbf", self.nbf)?,
            valid_until: self.exp.map(|t| time("exp", t)).transpose()?,
            level: TrustLevel::parse(self.lvl)
                .ok_or_else(|| Bad::new(format!("trust level {:?} unknown", self.lvl)))?,
            promise_deadline: self.pd.map(|t| time("pd", t)).transpose()?,
            predecessor,
            status_index,
            digests,
        };
        claims.check_values()?;
        Ok(claims)
    }
}

/// The entries of one map read with [`Strict`], taken in the order the encoder writes keys: a key
/// out of that order, unknown or repeated is not the one asked for next, so the read gives up
/// there (or at [`StrictMap::done`], if it comes after every key asked for).
struct StrictMap<'s, 'a> {
    s: &'s mut Strict<'a>,
    left: u64,
}

impl<'s, 'a> StrictMap<'s, 'a> {
    fn open(s: &'s mut Strict<'a>) -> Option<StrictMap<'s, 'a>> {
        let left = s.map()?;
        Some(StrictMap { s, left })
    }

    /// The cursor at the value of `key` if `key` is the next entry's.
    fn value(&mut self, key: Key<'_>) -> Option<&mut Strict<'a>> {
        (self.left > 0 && self.s.key(key)).then(|| {
            self.left -= 1;
            &mut *self.s
        })
    }

    /// `Some(None)` if the next entry is not `key`'s; `None` if it is and `read` refuses it.
    fn optional<T>(
        &mut self,
        key: Key<'_>,
        read: impl FnOnce(&mut Strict<'a>) -> Option<T>,
    ) -> Option<Option<T>> {
        match self.value(key) {
            Some(s) => read(s).map(Some),
            None => Some(None),
        }
    }

    /// Whether every entry was taken.
    fn done(self) -> Option<()> {
        (self.left == 0).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{SeededSalts, TestFederation};
    use proptest::prelude::*;

    /// The long way: the strict check, then the reader by name.
    fn read_checked(payload: &[u8]) -> Option<RawClaims<'_>> {
        cbor::check(payload, Kind::Certificate.size_limit(), false).ok()?;
        RawClaims::read(payload).ok()
    }

    /// Payloads of claims with and without each optional claim (expiry, promise, predecessor).
    fn payloads() -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
        let f = TestFederation::standard()?;
        let issue = |serial: &str| -> Result<Claims, Box<dyn std::error::Error>> {
            let draft = f.draft(f.amr(), serial)?;
            let issued = crate::cert::issue(
                &draft,
                &f.amr().info,
                &f.amr().key,
                &mut SeededSalts::new(serial),
            )?;
            Ok(issued.claims)
        };
        let base = issue("2026000001")?;
        let earlier = issue("2026000002")?;
        let mut payloads = Vec::new();
        for variant in 0..8u8 {
            let mut claims = base.clone();
            claims.valid_until = (variant & 1 != 0)
                .then(|| Time::new(claims.valid_from.seconds() + 86_400))
                .flatten();
            claims.promise_deadline = (variant & 2 != 0)
                .then(|| Time::new(claims.issued.seconds() + 3_600))
                .flatten();
            claims.predecessor = (variant & 4 != 0).then(|| Predecessor {
                id: earlier.id.clone(),
                how: Succession::Change,
            });
            payloads.push(claims.payload()?);
        }
        Ok(payloads)
    }

    #[test]
    fn the_one_pass_read_takes_every_shape_an_issuer_writes()
    -> Result<(), Box<dyn std::error::Error>> {
        for payload in payloads()? {
            let strict = RawClaims::read_strict(&payload);
            assert!(strict.is_some());
            assert_eq!(strict, read_checked(&payload));
        }
        Ok(())
    }

    type R = Result<(), Box<dyn std::error::Error>>;

    /// `payload` encoded again with `change` made to its top-level entries, in the order
    /// `change` leaves them (ciborium writes a map's entries as given, heads in shortest form).
    fn reencoded(
        payload: &[u8],
        change: impl FnOnce(&mut Vec<(Value, Value)>),
    ) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let mut value: Value = ciborium::from_reader(payload)?;
        let Value::Map(entries) = &mut value else {
            return Err("not a map".into());
        };
        change(entries);
        let mut out = Vec::new();
        ciborium::into_writer(&value, &mut out)?;
        Ok(out)
    }

    /// encoding.md §1: a verifier must not require any key order. The one pass gives up on
    /// claims in another order; the long way reads them as it always did.
    #[test]
    fn claims_in_another_key_order_decode_alike() -> R {
        for payload in payloads()? {
            let reordered = reencoded(&payload, |entries| entries.reverse())?;
            assert_ne!(reordered, payload);
            assert_eq!(RawClaims::read_strict(&reordered), None);
            assert!(Claims::decode(&payload).is_ok());
            assert_eq!(Claims::decode(&reordered), Claims::decode(&payload));
        }
        Ok(())
    }

    /// What the one pass gives up on gets the long way's code.
    #[test]
    fn claims_the_one_pass_refuses_get_the_long_ways_code() -> R {
        let payload = payloads()?.swap_remove(0);
        let text = |t: &str| Value::Text(t.into());
        let int = |i: i64| Value::Integer(i.into());
        let mut cases = vec![
            // A version this build does not read.
            (
                reencoded(&payload, |entries| {
                    for (key, value) in entries.iter_mut() {
                        if *key == text("v") {
                            *value = int(3);
                        }
                    }
                })?,
                Code::ClaimsInvalid,
            ),
            // An unknown claim after the last known one.
            (
                reencoded(&payload, |entries| entries.push((text("zz"), int(1))))?,
                Code::ClaimsInvalid,
            ),
            // An expiry that is a negative integer (these claims have none).
            (
                reencoded(&payload, |entries| entries.insert(1, (int(EXP), int(-1))))?,
                Code::ClaimsInvalid,
            ),
        ];
        // The map's count one short of its entries: the last entry is bytes after the map.
        let mut short = payload.clone();
        assert!(
            matches!(short[0], 0xa1..=0xb7),
            "a map of fewer than 24 entries"
        );
        short[0] -= 1;
        cases.push((short, Code::CborTrailingBytes));
        for (bytes, code) in cases {
            assert_eq!(RawClaims::read_strict(&bytes), None);
            assert_eq!(Claims::decode(&bytes).err().map(|f| f.code), Some(code));
        }
        Ok(())
    }

    proptest! {
        /// The prefix-first order is the arrays' own, for digests that share a prefix of any
        /// length (several bytes differ after it, so a prefix read in the wrong byte order
        /// gives the wrong answer).
        #[test]
        fn digest_order_is_bytewise(
            a in any::<[u8; 32]>(),
            rest in any::<[u8; 32]>(),
            shared in 0..=32usize,
        ) {
            let mut b = a;
            b[shared..].copy_from_slice(&rest[shared..]);
            prop_assert_eq!(digest_order(&a, &b), a.cmp(&b));
            prop_assert_eq!(digest_order(&b, &a), b.cmp(&a));
        }

        /// Whatever the one-pass read accepts, the strict check and the reader by name accept
        /// and read alike: it may refuse more (then the long way decides), never less.
        #[test]
        fn the_one_pass_read_never_accepts_what_the_long_way_refuses(
            which in 0..8usize,
            at in any::<usize>(),
            byte in any::<u8>(),
            how in 0..4u8,
        ) {
            let payloads = payloads().map_err(|e| TestCaseError::fail(e.to_string()))?;
            let b = crate::testkit::mutate(payloads[which].clone(), at, byte, how);
            if let Some(strict) = RawClaims::read_strict(&b) {
                prop_assert_eq!(Some(strict), read_checked(&b));
            }
        }
    }
}
