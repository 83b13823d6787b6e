//! Tongban CBOR: the strict acceptance check of specs/encoding.md §1 and a cursor over checked bytes.
//!
//! General CBOR libraries accept duplicate keys, indefinite lengths and long-form heads, and cannot say
//! which rule an input broke; the spec needs both the strictness and a deterministic first error, so
//! the verify path reads bytes here. Encoding uses ciborium and coset.

use arrayvec::ArrayVec;
use std::collections::BTreeSet;

mod strict;
pub use strict::Strict;

use crate::codes::{Code, Failure};

/// The deepest nesting accepted; the top-level item is depth 1.
pub const MAX_DEPTH: usize = 16;

/// Maps with more keys than this track duplicates in a tree instead of by linear scan, so that a
/// hostile map of many keys costs n·log n, not n².
const LINEAR_KEY_SCAN: usize = 16;

/// The tag of a COSE_Sign1 object.
pub const TAG_COSE_SIGN1: u64 = 18;

const MAJOR_UINT: u8 = 0;
const MAJOR_NINT: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const MAJOR_SIMPLE: u8 = 7;

/// Checks `input` against every rule of specs/encoding.md §1. `limit` is the object's size limit,
/// which bounds every length and count; `allow_top_tag` permits one tag on the top-level item.
pub fn check(input: &[u8], limit: u64, allow_top_tag: bool) -> Result<(), Failure> {
    let mut scanner = Scanner {
        buf: input,
        pos: 0,
        limit,
    };
    scanner.item(1, allow_top_tag)?;
    if scanner.pos != input.len() {
        return Err(scanner.fail(Code::CborTrailingBytes, "bytes after the top-level item"));
    }
    Ok(())
}

struct Head {
    major: u8,
    arg: u64,
}

struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
    limit: u64,
}

impl Scanner<'_> {
    fn fail(&self, code: Code, what: &str) -> Failure {
        Failure::new(code, format!("{what} at byte {}", self.pos))
    }

    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    /// Reads one head, applying rules 1–7 of the table in order.
    fn head(&mut self) -> Result<Head, Failure> {
        let Some(&initial) = self.buf.get(self.pos) else {
            return Err(self.fail(Code::CborTruncated, "input ends before an item"));
        };
        let major = initial >> 5;
        let info = initial & 0x1f;
        if initial == 0xff {
            return Err(self.fail(Code::CborMalformed, "break outside an indefinite item"));
        }
        if major == MAJOR_SIMPLE {
            if matches!(initial, 0xf4..=0xf6) {
                self.pos += 1;
                return Ok(Head {
                    major,
                    arg: u64::from(info),
                });
            }
            return Err(self.fail(Code::CborUnsupported, "float or simple value"));
        }
        if (28..=30).contains(&info) {
            return Err(self.fail(Code::CborMalformed, "reserved additional information"));
        }
        if info == 31 {
            return Err(if major <= MAJOR_NINT || major == MAJOR_TAG {
                self.fail(Code::CborMalformed, "additional information 31")
            } else {
                self.fail(Code::CborIndefiniteLength, "indefinite length")
            });
        }
        let (width, floor) = match info {
            0..=23 => (0, 0),
            24 => (1, 24),
            25 => (2, 1 << 8),
            26 => (4, 1 << 16),
            _ => (8, 1 << 32),
        };
        let start = self.pos + 1;
        let Some(bytes) = self.buf.get(start..start + width) else {
            return Err(self.fail(Code::CborTruncated, "input ends inside a head"));
        };
        let arg = if width == 0 {
            u64::from(info)
        } else {
            bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
        };
        if arg < floor {
            return Err(self.fail(Code::CborNonMinimal, "head not in shortest form"));
        }
        self.pos = start + width;
        Ok(Head { major, arg })
    }

    fn item(&mut self, depth: usize, tag_allowed: bool) -> Result<(), Failure> {
        let at = self.pos;
        let head = self.head()?;
        match head.major {
            MAJOR_UINT | MAJOR_NINT | MAJOR_SIMPLE => Ok(()),
            MAJOR_TAG => {
                if !tag_allowed {
                    self.pos = at;
                    return Err(self.fail(Code::CborUnsupported, "tag not allowed here"));
                }
                self.item(depth, false)
            }
            MAJOR_BYTES | MAJOR_TEXT => self.string(head, at),
            _ => self.container(head, at, depth),
        }
    }

    fn string(&mut self, head: Head, at: usize) -> Result<(), Failure> {
        if head.arg > self.limit {
            self.pos = at;
            return Err(self.fail(Code::CborLimitExceeded, "string longer than the size limit"));
        }
        if head.arg > self.remaining() {
            self.pos = at;
            return Err(self.fail(Code::CborTruncated, "string runs past the end"));
        }
        let end = self.pos + head.arg as usize;
        if head.major == MAJOR_TEXT && !is_utf8(&self.buf[self.pos..end]) {
            self.pos = at;
            return Err(self.fail(Code::CborMalformed, "text string not UTF-8"));
        }
        self.pos = end;
        Ok(())
    }

    fn container(&mut self, head: Head, at: usize, depth: usize) -> Result<(), Failure> {
        if depth > MAX_DEPTH {
            self.pos = at;
            return Err(self.fail(Code::CborLimitExceeded, "nesting deeper than 16"));
        }
        if head.arg > self.limit {
            self.pos = at;
            return Err(self.fail(Code::CborLimitExceeded, "count beyond the size limit"));
        }
        let is_map = head.major == MAJOR_MAP;
        let needed = if is_map {
            head.arg.saturating_mul(2)
        } else {
            head.arg
        };
        if needed > self.remaining() {
            self.pos = at;
            return Err(self.fail(Code::CborTruncated, "count exceeds the bytes left"));
        }
        if !is_map {
            for _ in 0..head.arg {
                self.item(depth + 1, false)?;
            }
            return Ok(());
        }
        let mut keys = KeySet::default();
        for _ in 0..head.arg {
            let key_at = self.pos;
            let key_head = self.head()?;
            match key_head.major {
                MAJOR_UINT | MAJOR_NINT => {}
                MAJOR_TEXT => self.string(key_head, key_at)?,
                _ => {
                    self.pos = key_at;
                    return Err(
                        self.fail(Code::CborUnsupported, "map key neither integer nor text")
                    );
                }
            }
            let key = &self.buf[key_at..self.pos];
            if !keys.insert(key) {
                self.pos = key_at;
                return Err(self.fail(Code::CborDuplicateKey, "map key repeated"));
            }
            self.item(depth + 1, false)?;
        }
        Ok(())
    }
}

/// Rule 13. Most text is ASCII, which a word-at-a-time check settles faster than the full
/// decoder.
fn is_utf8(bytes: &[u8]) -> bool {
    bytes.is_ascii() || std::str::from_utf8(bytes).is_ok()
}

/// The keys seen in one map; returns false on a repeat.
#[derive(Default)]
struct KeySet<'a> {
    few: Vec<&'a [u8]>,
    many: BTreeSet<&'a [u8]>,
    /// Whether every key so far came after the one before it (bytewise), as producers are asked
    /// to order them: a key after the last is then new without a search.
    ascending: bool,
}

impl<'a> KeySet<'a> {
    fn insert(&mut self, key: &'a [u8]) -> bool {
        match self.few.last() {
            None => self.ascending = true,
            Some(&last) if self.ascending && self.many.is_empty() => {
                if key > last {
                    self.few.push(key);
                    return true;
                }
                self.ascending = false;
            }
            Some(_) => {}
        }
        if self.few.len() < LINEAR_KEY_SCAN {
            if self.few.contains(&key) {
                return false;
            }
            self.few.push(key);
            return true;
        }
        if self.many.is_empty() {
            self.many.extend(self.few.iter().copied());
        }
        self.many.insert(key)
    }
}

/// A map key as Tongban formats use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key<'a> {
    Int(i64),
    Text(&'a str),
}

/// A map key as received: an integer, or a text key's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawKey<'a> {
    Int(i64),
    Text(&'a [u8]),
}

impl RawKey<'_> {
    pub fn is(&self, key: Key<'_>) -> bool {
        match (*self, key) {
            (RawKey::Int(a), Key::Int(b)) => a == b,
            (RawKey::Text(a), Key::Text(b)) => a == b.as_bytes(),
            _ => false,
        }
    }
}

/// A cursor over bytes that [`check`] accepted. Every read returns `None` when the next item is not
/// of the requested type (or, on unchecked input, is malformed): it never panics.
#[derive(Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn peek_head(&self) -> Option<(u8, u64, usize)> {
        let initial = *self.buf.get(self.pos)?;
        let (major, info) = (initial >> 5, initial & 0x1f);
        let width = match info {
            0..=23 => return Some((major, u64::from(info), 1)),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            _ => return None,
        };
        let bytes = self.buf.get(self.pos + 1..self.pos + 1 + width)?;
        let arg = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        Some((major, arg, 1 + width))
    }

    fn take_head(&mut self, want: u8) -> Option<u64> {
        let (major, arg, len) = self.peek_head()?;
        if major != want {
            return None;
        }
        self.pos += len;
        Some(arg)
    }

    fn take_slice(&mut self, len: u64) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(usize::try_from(len).ok()?)?;
        let slice = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }

    /// The tag number, if the next item is tagged.
    pub fn tag(&mut self) -> Option<u64> {
        self.take_head(MAJOR_TAG)
    }

    pub fn uint(&mut self) -> Option<u64> {
        self.take_head(MAJOR_UINT)
    }

    /// Any integer that fits an i64.
    pub fn int(&mut self) -> Option<i64> {
        let (major, arg, len) = self.peek_head()?;
        let value = match major {
            MAJOR_UINT => i64::try_from(arg).ok()?,
            MAJOR_NINT => -1 - i64::try_from(arg).ok()?,
            _ => return None,
        };
        self.pos += len;
        Some(value)
    }

    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.take_head(MAJOR_BYTES)?;
        self.take_slice(len)
    }

    pub fn text(&mut self) -> Option<&'a str> {
        let len = self.take_head(MAJOR_TEXT)?;
        std::str::from_utf8(self.take_slice(len)?).ok()
    }

    pub fn bool(&mut self) -> Option<bool> {
        match self.buf.get(self.pos)? {
            0xf4 => {
                self.pos += 1;
                Some(false)
            }
            0xf5 => {
                self.pos += 1;
                Some(true)
            }
            _ => None,
        }
    }

    /// The element count of an array.
    pub fn array(&mut self) -> Option<u64> {
        self.take_head(MAJOR_ARRAY)
    }

    /// The entry count of a map.
    pub fn map(&mut self) -> Option<u64> {
        self.take_head(MAJOR_MAP)
    }

    /// A map key: an integer or a text string.
    pub fn key(&mut self) -> Option<Key<'a>> {
        match self.peek_head()?.0 {
            MAJOR_TEXT => self.text().map(Key::Text),
            _ => self.int().map(Key::Int),
        }
    }

    /// A map key with a text key's bytes left as they are: compared with the [`Key`]s a reader
    /// asks for, it needs no UTF-8 check of its own ([`check`] made one).
    pub fn raw_key(&mut self) -> Option<RawKey<'a>> {
        match self.peek_head()?.0 {
            MAJOR_TEXT => {
                let len = self.take_head(MAJOR_TEXT)?;
                self.take_slice(len).map(RawKey::Text)
            }
            _ => self.int().map(RawKey::Int),
        }
    }

    /// Whether the next item is a map.
    pub fn next_is_map(&self) -> bool {
        self.peek_head()
            .is_some_and(|(major, _, _)| major == MAJOR_MAP)
    }

    /// Skips one whole item, returning its bytes. `depth` bounds recursion on unchecked input.
    pub fn skip(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        self.skip_at(1)?;
        self.buf.get(start..self.pos)
    }

    fn skip_at(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH + 1 {
            return None;
        }
        let (major, arg, len) = self.peek_head()?;
        self.pos += len;
        match major {
            MAJOR_BYTES | MAJOR_TEXT => self.take_slice(arg).map(|_| ()),
            MAJOR_ARRAY | MAJOR_MAP => {
                let items = if major == MAJOR_MAP {
                    arg.checked_mul(2)?
                } else {
                    arg
                };
                for _ in 0..items {
                    self.skip_at(depth + 1)?;
                }
                Some(())
            }
            MAJOR_TAG => self.skip_at(depth),
            _ => Some(()),
        }
    }
}

/// Appends a shortest-form head.
pub fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    out.extend_from_slice(&encode_head(major, arg));
}

/// The shortest-form head of a byte string of `len` bytes, on its own: for a hash that takes an
/// item in pieces.
pub fn bytes_head(len: usize) -> ArrayVec<u8, 9> {
    encode_head(MAJOR_BYTES, len as u64)
}

fn encode_head(major: u8, arg: u64) -> ArrayVec<u8, 9> {
    let (info, width) = match arg {
        0..=23 => (arg as u8, 0),
        24..=0xff => (24, 1),
        0x100..=0xffff => (25, 2),
        0x1_0000..=0xffff_ffff => (26, 4),
        _ => (27, 8),
    };
    let mut bytes = [0u8; 9];
    bytes[0] = major << 5 | info;
    bytes[1..=width].copy_from_slice(&arg.to_be_bytes()[8 - width..]);
    let mut head = ArrayVec::from(bytes);
    head.truncate(1 + width);
    head
}

/// Appends a byte string.
pub fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_head(out, MAJOR_BYTES, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends an unsigned integer.
pub fn write_uint(out: &mut Vec<u8>, v: u64) {
    write_head(out, MAJOR_UINT, v);
}

/// Appends a text string.
pub fn write_text(out: &mut Vec<u8>, s: &str) {
    write_head(out, MAJOR_TEXT, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

pub fn write_bool(out: &mut Vec<u8>, b: bool) {
    out.push(if b { 0xf5 } else { 0xf4 });
}

/// Appends an optional value as an array of none or one item (the records stores keep).
pub fn write_option<T>(out: &mut Vec<u8>, v: Option<T>, each: impl FnOnce(&mut Vec<u8>, T)) {
    match v {
        None => write_head(out, MAJOR_ARRAY, 0),
        Some(v) => {
            write_head(out, MAJOR_ARRAY, 1);
            each(out, v);
        }
    }
}

/// Reads what [`write_option`] wrote.
pub fn read_option<'a, T>(
    r: &mut Reader<'a>,
    each: impl FnOnce(&mut Reader<'a>) -> Option<T>,
) -> Option<Option<T>> {
    match r.array()? {
        0 => Some(None),
        1 => each(r).map(Some),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(hex_input: &str) -> Code {
        let bytes = hex(hex_input);
        match check(&bytes, 65_536, true) {
            Ok(()) => Code::Ok,
            Err(failure) => failure.code,
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
            .collect()
    }

    #[test]
    fn accepts_well_formed_items() {
        for ok in [
            "00",
            "17",
            "1818",
            "190100",
            "1a00010000",
            "1b0000000100000000",
            "20",
            "3818",
            "40",
            "4100",
            "60",
            "6161",
            "80",
            "820102",
            "a0",
            "a201020304",
            "a2616101616202",
            "f4",
            "f5",
            "f6",
            "d28100",
        ] {
            assert_eq!(code(ok), Code::Ok, "{ok}");
        }
    }

    #[test]
    fn each_rule_gives_its_code() {
        let cases = [
            ("", Code::CborTruncated),
            ("18", Code::CborTruncated),
            ("19ff", Code::CborTruncated),
            ("ff", Code::CborMalformed),
            ("f7", Code::CborUnsupported),
            ("f93c00", Code::CborUnsupported),
            ("fb3ff0000000000000", Code::CborUnsupported),
            ("e0", Code::CborUnsupported),
            ("1c", Code::CborMalformed),
            ("1f", Code::CborMalformed),
            ("df", Code::CborMalformed),
            ("5f4100ff", Code::CborIndefiniteLength),
            ("9fff", Code::CborIndefiniteLength),
            ("bfff", Code::CborIndefiniteLength),
            ("1805", Code::CborNonMinimal),
            ("1900ff", Code::CborNonMinimal),
            ("1a0000ffff", Code::CborNonMinimal),
            ("1b00000000ffffffff", Code::CborNonMinimal),
            ("5800", Code::CborNonMinimal),
            ("81c000", Code::CborUnsupported),
            ("81d800", Code::CborNonMinimal),
            ("d2d200", Code::CborUnsupported),
            ("5b7fffffffffffffff", Code::CborLimitExceeded),
            ("9b7fffffffffffffff", Code::CborLimitExceeded),
            ("4201", Code::CborTruncated),
            ("830102", Code::CborTruncated),
            ("a201", Code::CborTruncated),
            ("62c328", Code::CborMalformed),
            ("a201020103", Code::CborDuplicateKey),
            ("a261610161610a", Code::CborDuplicateKey),
            ("a1410001", Code::CborUnsupported),
            ("a18001", Code::CborUnsupported),
            ("0000", Code::CborTrailingBytes),
        ];
        for (input, want) in cases {
            assert_eq!(code(input), want, "{input}");
        }
    }

    #[test]
    fn depth_is_bounded() {
        let ok: Vec<u8> = std::iter::repeat_n(0x81, 15).chain([0x00]).collect();
        assert!(check(&ok, 100, false).is_ok());
        let deep: Vec<u8> = std::iter::repeat_n(0x81, 17).chain([0x00]).collect();
        assert_eq!(
            check(&deep, 100, false).map_err(|f| f.code),
            Err(Code::CborLimitExceeded)
        );
    }

    #[test]
    fn first_error_by_offset_wins() {
        // A duplicate key comes before an indefinite-length value later in the map.
        assert_eq!(code("a301020103600a"), Code::CborDuplicateKey);
        assert_eq!(code("a301020304055fff"), Code::CborIndefiniteLength);
        // A count that cannot fit is reported at its head, before any element.
        assert_eq!(code("a30102010360"), Code::CborTruncated);
    }

    #[test]
    fn repeats_are_found_whatever_the_key_order() {
        // Keys in ascending order, then out of order: a repeat is found on the short and the
        // long path, and a map out of order without repeats is accepted.
        let map_of = |keys: &[u64]| {
            let mut map = vec![];
            write_head(&mut map, MAJOR_MAP, keys.len() as u64);
            for &k in keys {
                write_head(&mut map, MAJOR_UINT, k);
                map.push(0);
            }
            check(&map, 1000, false).map_err(|f| f.code)
        };
        let duplicate = Err(Code::CborDuplicateKey);
        assert_eq!(map_of(&[1, 2, 3, 1]), duplicate);
        assert_eq!(map_of(&[1, 2, 3, 3]), duplicate);
        assert_eq!(map_of(&[3, 1, 2, 1]), duplicate);
        assert_eq!(map_of(&[3, 1, 2, 4]), Ok(()));
        let ascending: Vec<u64> = (0..30).collect();
        assert_eq!(map_of(&ascending), Ok(()));
        for repeat in [0, 15, 16, 29] {
            let mut keys = ascending.clone();
            keys.push(repeat);
            assert_eq!(map_of(&keys), duplicate, "{repeat}");
            keys.pop();
            keys.extend([31, 30, repeat]);
            assert_eq!(map_of(&keys), duplicate, "{repeat}");
        }
    }

    #[test]
    fn many_keys_detect_duplicates() {
        let mut map = vec![];
        write_head(&mut map, MAJOR_MAP, 40);
        for i in 0..39u64 {
            write_head(&mut map, MAJOR_UINT, i);
            map.push(0);
        }
        write_head(&mut map, MAJOR_UINT, 7);
        map.push(0);
        assert_eq!(
            check(&map, 1000, false).map_err(|f| f.code),
            Err(Code::CborDuplicateKey)
        );
    }

    #[test]
    fn head_writer_is_shortest_and_reader_reads_it() {
        for value in [
            0u64,
            23,
            24,
            255,
            256,
            65_535,
            65_536,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut out = vec![];
            write_head(&mut out, MAJOR_UINT, value);
            assert!(check(&out, u64::MAX, false).is_ok());
            assert_eq!(Reader::new(&out).uint(), Some(value));
        }
    }

    #[test]
    fn reader_never_panics_on_garbage() {
        let mut reader = Reader::new(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(reader.bytes(), None);
        let mut reader = Reader::new(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(reader.skip(), None);
    }
}
