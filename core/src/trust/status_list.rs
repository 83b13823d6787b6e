//! Status lists (specs/status.md §5): a region's certificate status as an IETF Token Status List
//! (draft-ietf-oauth-status-list) in its CWT form, signed by the region root. Four bits per
//! certificate, at the status index its claims carry, zlib-compressed: a few hundred kilobytes
//! for millions of certificates, and a verifier that downloads the whole list tells no one which
//! certificate it checks.

use std::collections::HashMap;
use std::io::Write;

use flate2::Compression;
use flate2::write::ZlibEncoder;

use crate::zlib::InflateError;

use crate::cbor::Key;
use crate::codes::{Code, Failure};
use crate::encode::{bytes, entry, map, map_bytes, text, uint};
use crate::envelope::{BuildError, Kind, seal};
use crate::fields::{Bad, Fields};
use crate::ids::RegionCode;
use crate::keys::SecretKey;
use crate::status::ListStatus;
use crate::trust::TrustStore;
use crate::values::Time;

/// Bits per entry: the draft allows 1, 2, 4 or 8; four hold every Tongban value.
pub const BITS: u64 = 4;
/// CWT claim keys (RFC 8392, and the draft's registrations).
const SUB: i64 = 2;
const EXP: i64 = 4;
const IAT: i64 = 6;
const STATUS_LIST: i64 = 65533;
const TTL: i64 = 65534;
/// The most a verifier unpacks: 256 MiB, 2^29 certificates, more than any province issues. A
/// list that inflates beyond it is refused rather than allowed to take a verifier's memory.
pub const MAX_UNPACKED: u64 = 256 << 20;
/// The most entries a list may have: what [`MAX_UNPACKED`] bytes hold. An issuer gives no index
/// beyond it (a verifier could not load the list).
pub const MAX_ENTRIES: u64 = MAX_UNPACKED * 2;

/// The URI that names `region`'s status list, in its list's `sub` and in every certificate's
/// `status` claim.
pub fn uri(region: &RegionCode) -> String {
    format!("{URI_PREFIX}{region}")
}

const URI_PREFIX: &str = "urn:tongban:status:";

/// Whether `text` is [`uri`]`(region)`, without building it (a verifier asks once per
/// certificate).
pub fn is_uri_of(text: &str, region: &RegionCode) -> bool {
    text.strip_prefix(URI_PREFIX) == Some(region.as_str())
}

/// Packs list values as they come and compresses them on the fly: a node builds its list from
/// its state in one pass, holding only the compressed bytes.
pub struct ListWriter {
    encoder: ZlibEncoder<Vec<u8>>,
    /// Packed bytes waiting to be compressed.
    packed: Vec<u8>,
    /// The low half of a byte whose high half has not come yet.
    half: Option<u8>,
    count: u64,
}

impl Default for ListWriter {
    fn default() -> Self {
        ListWriter {
            encoder: ZlibEncoder::new(Vec::new(), Compression::default()),
            packed: Vec::with_capacity(1 << 16),
            half: None,
            count: 0,
        }
    }
}

impl ListWriter {
    /// Appends the status of the next index.
    pub fn push(&mut self, status: ListStatus) -> Result<(), BuildError> {
        let value = status.value();
        match self.half.take() {
            None => self.half = Some(value),
            Some(low) => {
                self.packed.push(low | (value << 4));
                if self.packed.len() == self.packed.capacity() {
                    self.flush()?;
                }
            }
        }
        self.count += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BuildError> {
        self.encoder
            .write_all(&self.packed)
            .map_err(|e| BuildError::Invalid(format!("compressing a status list: {e}")))?;
        self.packed.clear();
        Ok(())
    }

    /// The number of entries and the compressed list. An odd count ends in a valid entry (the
    /// draft's lists are whole bytes).
    pub fn finish(mut self) -> Result<(u64, Vec<u8>), BuildError> {
        if let Some(low) = self.half.take() {
            self.packed.push(low);
        }
        self.flush()?;
        let compressed = self
            .encoder
            .finish()
            .map_err(|e| BuildError::Invalid(format!("compressing a status list: {e}")))?;
        Ok((self.count, compressed))
    }
}

/// A status list as its region signs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusListToken {
    pub region: RegionCode,
    /// The size of the region's log when the list was made: a later state has a higher version.
    pub version: u64,
    pub issued: Time,
    /// After this the list is not to be used (the draft's `exp`).
    pub expires: Time,
    /// How long, in seconds, a verifier may keep the list before fetching it again (`ttl`).
    pub ttl: u64,
    /// The compressed list (`lst`), as [`ListWriter::finish`] makes it.
    pub list: Vec<u8>,
}

impl StatusListToken {
    fn check(&self) -> Result<(), Bad> {
        if self.expires <= self.issued {
            return Err(Bad::new("a status list must expire after it is issued"));
        }
        if self.ttl == 0 {
            return Err(Bad::new("a status list's ttl must be positive"));
        }
        Ok(())
    }

    pub fn payload(&self) -> Result<Vec<u8>, BuildError> {
        self.check().map_err(|b| BuildError::Invalid(b.detail))?;
        map_bytes(vec![
            entry(SUB, text(&uri(&self.region))),
            entry(EXP, uint(self.expires.seconds())),
            entry(IAT, uint(self.issued.seconds())),
            entry(TTL, uint(self.ttl)),
            entry(
                STATUS_LIST,
                map(vec![
                    entry("bits", uint(BITS)),
                    entry("lst", bytes(&self.list)),
                ])?,
            ),
            entry("v", uint(1)),
            entry("rc", text(self.region.as_str())),
            entry("ver", uint(self.version)),
        ])
    }

    /// The list, signed by the region root.
    pub fn sign(&self, region_root: &SecretKey) -> Result<Vec<u8>, BuildError> {
        seal(Kind::StatusList, region_root, self.payload()?, &[])
    }
}

/// A verified status list, unpacked: half a byte per certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusList {
    pub region: RegionCode,
    pub version: u64,
    pub issued: Time,
    pub expires: Time,
    pub ttl: u64,
    packed: Vec<u8>,
    /// BLAKE3 of the signed payload: tells two lists apart (the bulk verifier's cache context).
    fingerprint: [u8; 32],
}

impl StatusList {
    /// Loads a signed list, checking it against the trust store's region roots.
    pub fn load(bytes: &[u8], trust: &TrustStore) -> Result<StatusList, Failure> {
        let invalid = |detail: String| Failure::new(Code::StatusListInvalid, detail);
        let (payload, root) =
            trust.open_region_signed(bytes, Kind::StatusList, Code::StatusListInvalid)?;
        let list = StatusList::from_payload(payload).map_err(|b| invalid(b.detail))?;
        if list.region != root.region {
            return Err(invalid(format!(
                "status list of {} signed by the root of {}",
                list.region, root.region
            )));
        }
        Ok(list)
    }

    /// Decodes and unpacks a payload (its signature checked by the caller).
    pub fn from_payload(payload: &[u8]) -> Result<StatusList, Bad> {
        let mut f = Fields::whole(payload)?;
        f.version_1()?;
        let sub = f.text(Key::Int(SUB))?;
        let expires = f.time(Key::Int(EXP))?;
        let issued = f.time(Key::Int(IAT))?;
        let ttl = f.uint(Key::Int(TTL))?;
        let mut inner = f.map(Key::Int(STATUS_LIST))?;
        let bits = inner.uint(Key::Text("bits"))?;
        let lst = inner.bytes(Key::Text("lst"))?;
        inner.finish()?;
        let region =
            RegionCode::parse(f.text(Key::Text("rc"))?).map_err(|e| Bad::new(e.to_string()))?;
        let version = f.uint(Key::Text("ver"))?;
        f.finish()?;
        if bits != BITS {
            return Err(Bad::new(format!(
                "{bits} bits per entry; Tongban lists use 4"
            )));
        }
        if sub != uri(&region) {
            return Err(Bad::new(format!(
                "sub {sub:?} does not name the list of {region}"
            )));
        }
        let packed = unpack(lst)?;
        let token = StatusListToken {
            region,
            version,
            issued,
            expires,
            ttl,
            list: Vec::new(),
        };
        token.check()?;
        Ok(StatusList {
            region: token.region,
            version,
            issued,
            expires,
            ttl,
            packed,
            fingerprint: *blake3::hash(payload).as_bytes(),
        })
    }

    /// How many entries the list holds (twice its bytes).
    pub fn len(&self) -> u64 {
        self.packed.len() as u64 * 2
    }

    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }

    /// The status at `index`; `None` beyond the list (a certificate issued after it was made).
    pub fn get(&self, index: u32) -> Option<ListStatus> {
        let byte = *self.packed.get(index as usize / 2)?;
        let value = if index.is_multiple_of(2) {
            byte & 0x0F
        } else {
            byte >> 4
        };
        // Every value was checked when the list was unpacked.
        ListStatus::from_value(value)
    }

    /// Whether the list may still be used at `now` (before its `exp`).
    pub fn usable_at(&self, now: Time) -> bool {
        now < self.expires
    }

    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// How many entries hold each value, by value: for people (`tongban-verify inspect`).
    pub fn counts(&self) -> [u64; 16] {
        let mut counts = [0u64; 16];
        for byte in &self.packed {
            counts[usize::from(byte & 0x0F)] += 1;
            counts[usize::from(byte >> 4)] += 1;
        }
        counts
    }
}

/// Inflates `lst`, refusing more than [`MAX_UNPACKED`] bytes and any value the format reserves.
fn unpack(lst: &[u8]) -> Result<Vec<u8>, Bad> {
    // The stream must end the bytes, so that one signed list has one reading.
    let mut packed = crate::zlib::inflate_whole(lst, MAX_UNPACKED).map_err(|e| match e {
        InflateError::Trailing => Bad::new("bytes follow the ZLIB stream of lst"),
        other => Bad::new(format!("lst {other}")),
    })?;
    let reserved = |v: u8| ListStatus::from_value(v).is_none();
    for (at, byte) in packed.iter().enumerate() {
        for (half, value) in [(0, byte & 0x0F), (1, byte >> 4)] {
            if reserved(value) {
                return Err(Bad::new(format!(
                    "entry {} holds the reserved value {value:#04x}",
                    at * 2 + half
                )));
            }
        }
    }
    packed.shrink_to_fit();
    Ok(packed)
}

/// What a verifier's lists say of one certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListLookup {
    /// No list of the region is held, or the one held has expired.
    Unknown,
    /// The list held predates the certificate's index.
    Beyond {
        as_of: Time,
    },
    Found {
        status: ListStatus,
        as_of: Time,
    },
}

/// The lists a verifier holds, one per region: the highest version wins, and of two with the
/// same version the later signed (so the order lists are loaded in does not matter).
#[derive(Clone, Debug, Default)]
pub struct StatusLists {
    regions: HashMap<RegionCode, StatusList>,
}

impl StatusLists {
    pub fn add(&mut self, list: StatusList) {
        let newer = self
            .regions
            .get(&list.region)
            .is_none_or(|held| (list.version, list.issued) > (held.version, held.issued));
        if newer {
            self.regions.insert(list.region.clone(), list);
        }
    }

    pub fn get(&self, region: &RegionCode) -> Option<&StatusList> {
        self.regions.get(region)
    }

    pub fn lists(&self) -> impl Iterator<Item = &StatusList> {
        self.regions.values()
    }

    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }

    pub fn lookup(&self, region: &RegionCode, index: u32, now: Time) -> ListLookup {
        match self.regions.get(region) {
            Some(list) if list.usable_at(now) => match list.get(index) {
                Some(status) => ListLookup::Found {
                    status,
                    as_of: list.issued,
                },
                None => ListLookup::Beyond { as_of: list.issued },
            },
            _ => ListLookup::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::State;

    type R = Result<(), Box<dyn std::error::Error>>;

    fn time(s: u64) -> Result<Time, &'static str> {
        Time::new(s).ok_or("time")
    }

    fn parse(payload: &[u8]) -> Result<StatusList, Box<dyn std::error::Error>> {
        Ok(StatusList::from_payload(payload).map_err(|b| b.detail)?)
    }

    #[test]
    fn a_uri_names_its_own_region_only() -> R {
        let (a, b) = (RegionCode::parse("310000")?, RegionCode::parse("320000")?);
        assert!(is_uri_of(&uri(&a), &a));
        assert!(!is_uri_of(&uri(&a), &b));
        for other in [
            "310000",
            "urn:tongban:status:",
            "urn:tongban:status:3100000",
            "urn:tongban:status:310000 ",
        ] {
            assert!(!is_uri_of(other, &a), "{other}");
        }
        Ok(())
    }

    fn token(list: Vec<u8>) -> Result<StatusListToken, Box<dyn std::error::Error>> {
        Ok(StatusListToken {
            region: RegionCode::parse("310000")?,
            version: 7,
            issued: time(1_700_000_000)?,
            expires: time(1_700_086_400)?,
            ttl: 300,
            list,
        })
    }

    #[test]
    fn a_list_reads_back_every_value_at_its_index() -> R {
        let values = [
            ListStatus::Valid,
            ListStatus::State(State::Revoked),
            ListStatus::PromiseOpen,
            ListStatus::State(State::Other),
            ListStatus::State(State::TransferredOut),
        ];
        let mut writer = ListWriter::default();
        for i in 0..200_001u32 {
            writer.push(values[i as usize % values.len()])?;
        }
        let (count, compressed) = writer.finish()?;
        assert_eq!(count, 200_001);
        let list = parse(&token(compressed)?.payload()?)?;
        // An odd count is padded with one valid entry.
        assert_eq!(list.len(), 200_002);
        for i in [0u32, 1, 2, 3, 4, 5, 99_999, 200_000] {
            assert_eq!(list.get(i), Some(values[i as usize % values.len()]), "{i}");
        }
        assert_eq!(list.get(200_001), Some(ListStatus::Valid));
        assert_eq!(list.get(200_002), None);
        Ok(())
    }

    #[test]
    fn the_packing_is_the_drafts_low_bits_first() -> R {
        let mut writer = ListWriter::default();
        writer.push(ListStatus::State(State::Revoked))?;
        writer.push(ListStatus::State(State::Suspended))?;
        writer.push(ListStatus::State(State::Other))?;
        let (_, compressed) = writer.finish()?;
        let raw = crate::zlib::inflate_whole(&compressed, 16)?;
        assert_eq!(raw, [0x21, 0x0F]);
        Ok(())
    }

    #[test]
    fn reserved_values_oversized_lists_and_wrong_names_are_refused() -> R {
        let compress = |raw: &[u8]| -> Result<Vec<u8>, std::io::Error> {
            let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
            e.write_all(raw)?;
            e.finish()
        };
        let reserved = token(compress(&[0x00, 0x40])?)?.payload()?;
        let e = StatusList::from_payload(&reserved)
            .err()
            .ok_or("accepted")?;
        assert!(
            e.detail.contains("entry 3 holds the reserved value 0x04"),
            "{}",
            e.detail
        );

        let mut two = compress(&[0x00])?;
        two.extend(compress(&[0x11])?);
        let e = StatusList::from_payload(&token(two)?.payload()?)
            .err()
            .ok_or("accepted")?;
        assert!(e.detail.contains("bytes follow"), "{}", e.detail);

        let whole = compress(&[0x11; 64])?;
        let cut = token(whole[..whole.len() - 3].to_vec())?.payload()?;
        assert!(StatusList::from_payload(&cut).is_err());

        let bomb = token(compress(&vec![0u8; MAX_UNPACKED as usize + 1])?)?.payload()?;
        let e = StatusList::from_payload(&bomb).err().ok_or("accepted")?;
        assert!(e.detail.contains("inflates beyond"), "{}", e.detail);

        let garbage = token(vec![1, 2, 3])?.payload()?;
        assert!(StatusList::from_payload(&garbage).is_err());

        let mut expired = token(compress(&[0])?)?;
        expired.expires = expired.issued;
        assert!(expired.payload().is_err());
        Ok(())
    }

    #[test]
    fn the_newest_list_wins_whatever_the_order() -> R {
        let make = |version: u64, issued: u64| -> Result<StatusList, Box<dyn std::error::Error>> {
            let mut writer = ListWriter::default();
            writer.push(ListStatus::State(State::Revoked))?;
            let (_, list) = writer.finish()?;
            let mut t = token(list)?;
            t.version = version;
            t.issued = time(issued)?;
            parse(&t.payload()?)
        };
        let older = make(5, 1_700_000_500)?;
        let newer = make(6, 1_700_000_100)?;
        for order in [[&older, &newer], [&newer, &older]] {
            let mut lists = StatusLists::default();
            for l in order {
                lists.add(l.clone());
            }
            let held = lists.get(&older.region).ok_or("none")?;
            assert_eq!(held.version, 6);
        }
        let mut lists = StatusLists::default();
        lists.add(newer.clone());
        let region = newer.region.clone();
        assert_eq!(
            lists.lookup(&region, 0, time(1_700_000_200)?),
            ListLookup::Found {
                status: ListStatus::State(State::Revoked),
                as_of: newer.issued
            }
        );
        assert_eq!(
            lists.lookup(&region, 2, time(1_700_000_200)?),
            ListLookup::Beyond {
                as_of: newer.issued
            }
        );
        // Past its exp, a list is not used.
        assert_eq!(lists.lookup(&region, 0, newer.expires), ListLookup::Unknown);
        Ok(())
    }
}
