//! A one-pass reader of the common case: items in the shapes a format expects, read and held to
//! every rule of specs/encoding.md §1 at once.
//!
//! The verify path checks a payload with [`check`](super::check), then reads it again with
//! [`Reader`](super::Reader): two passes, and text checked for UTF-8 twice, because the first
//! error must be the one the rules' order names. For input that breaks no rule the order does not
//! matter, so a format can read its expected shape with [`Strict`] in one pass and fall back to
//! the two passes only when `Strict` gives up.
//!
//! `Strict` answers `None` at the first thing it does not expect, well formed or not; it never
//! says why. It accepts a subset of what `check` accepts: shortest-form heads, definite lengths,
//! valid UTF-8, no tags, no floats or simple values but `false` and `true`. What it does not
//! check itself is left to its caller and named on each method: the caller takes each key of a
//! map at most once (a format's readers take them in the encoder's order, which is all the fast
//! path is for), never nests deeper than [`MAX_DEPTH`], and ends with [`Strict::at_end`]; the
//! input is no longer than the object's size limit, so no length or count that fits in it can
//! exceed that limit.
//!
//! [`MAX_DEPTH`]: super::MAX_DEPTH

use super::{Key, MAJOR_ARRAY, MAJOR_BYTES, MAJOR_MAP, MAJOR_NINT, MAJOR_TEXT, MAJOR_UINT};

#[derive(Clone)]
pub struct Strict<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Strict<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Strict { buf, pos: 0 }
    }

    /// Whether every byte was read: the caller's last question, as `check` refuses trailing bytes.
    pub fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn major(&self) -> Option<u8> {
        self.buf.get(self.pos).map(|initial| initial >> 5)
    }

    /// A head of `major` in shortest form; its argument. Moves nothing when it answers `None`.
    fn head(&mut self, major: u8) -> Option<u64> {
        let initial = *self.buf.get(self.pos)?;
        if initial >> 5 != major {
            return None;
        }
        let info = initial & 0x1f;
        let (width, floor) = match info {
            0..=23 => {
                self.pos += 1;
                return Some(u64::from(info));
            }
            24 => (1, 24),
            25 => (2, 1 << 8),
            26 => (4, 1 << 16),
            27 => (8, 1 << 32),
            // Reserved values and indefinite lengths.
            _ => return None,
        };
        let start = self.pos + 1;
        let bytes = self.buf.get(start..start.checked_add(width)?)?;
        let arg = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        if arg < floor {
            return None;
        }
        self.pos = start + width;
        Some(arg)
    }

    /// Moves nothing when it answers `None`.
    fn slice(&mut self, len: u64) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(usize::try_from(len).ok()?)?;
        let slice = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }

    /// Runs `read`; if it answers `None`, the cursor is where it was (a failed read of one type
    /// leaves the item for a read of another).
    fn atomically<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let at = self.pos;
        let value = read(self);
        if value.is_none() {
            self.pos = at;
        }
        value
    }

    pub fn uint(&mut self) -> Option<u64> {
        self.head(MAJOR_UINT)
    }

    /// Any integer that fits an i64.
    pub fn int(&mut self) -> Option<i64> {
        self.atomically(|s| match s.major()? {
            MAJOR_UINT => i64::try_from(s.head(MAJOR_UINT)?).ok(),
            MAJOR_NINT => Some(-1 - i64::try_from(s.head(MAJOR_NINT)?).ok()?),
            _ => None,
        })
    }

    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        self.atomically(|s| {
            let len = s.head(MAJOR_BYTES)?;
            s.slice(len)
        })
    }

    pub fn text(&mut self) -> Option<&'a str> {
        self.atomically(|s| {
            let len = s.head(MAJOR_TEXT)?;
            std::str::from_utf8(s.slice(len)?).ok()
        })
    }

    pub fn bool(&mut self) -> Option<bool> {
        let value = match self.buf.get(self.pos)? {
            0xf4 => false,
            0xf5 => true,
            _ => return None,
        };
        self.pos += 1;
        Some(value)
    }

    /// An array's element count. No element is read: the caller reads them.
    pub fn array(&mut self) -> Option<u64> {
        self.head(MAJOR_ARRAY)
    }

    /// A map's entry count. No entry is read: the caller reads them, keys in ascending order.
    pub fn map(&mut self) -> Option<u64> {
        self.head(MAJOR_MAP)
    }

    /// Takes the next map key if it is `key` (a non-negative integer or a text); otherwise
    /// moves nothing and answers false. Heads are shortest form, so a key that matches is encoded
    /// as the encoder encodes it.
    pub fn key(&mut self, key: Key<'_>) -> bool {
        self.atomically(|s| {
            let matched = match key {
                Key::Int(i) => u64::try_from(i).ok().is_some_and(|i| s.uint() == Some(i)),
                Key::Text(t) => s
                    .head(MAJOR_TEXT)
                    .and_then(|len| s.slice(len))
                    .is_some_and(|k| k == t.as_bytes()),
            };
            matched.then_some(())
        })
        .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::Code;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
            .collect()
    }

    /// Reads one item of any type `Strict` knows, as a caller that expects it would.
    fn read_any(s: &mut Strict<'_>) -> Option<()> {
        match s.major()? {
            MAJOR_UINT | MAJOR_NINT => s.int().map(|_| ()).or_else(|| s.uint().map(|_| ())),
            MAJOR_BYTES => s.bytes().map(|_| ()),
            MAJOR_TEXT => s.text().map(|_| ()),
            MAJOR_ARRAY => (0..s.array()?).try_for_each(|_| read_any(s)),
            7 => s.bool().map(|_| ()),
            _ => None,
        }
    }

    #[test]
    fn reads_what_check_accepts_in_shortest_form() {
        for (input, expected) in [
            ("00", Some(())),
            ("17", Some(())),
            ("1818", Some(())),
            ("190100", Some(())),
            ("3a7fffffff", Some(())),
            ("1bffffffffffffffff", Some(())),
            ("4401020304", Some(())),
            ("6568656c6c6f", Some(())),
            ("f4", Some(())),
            ("f5", Some(())),
            ("8301426869f5", Some(())),
        ] {
            let bytes = hex(input);
            let mut s = Strict::new(&bytes);
            assert_eq!(
                read_any(&mut s).filter(|()| s.at_end()),
                expected,
                "{input}"
            );
            assert!(
                super::super::check(&bytes, 1 << 20, false).is_ok(),
                "{input}"
            );
        }
    }

    /// Everything `check` refuses, `Strict` refuses too (here with the rule each breaks).
    #[test]
    fn refuses_whatever_check_refuses() {
        for (input, code) in [
            ("1817", Code::CborNonMinimal),
            ("190017", Code::CborNonMinimal),
            ("1a0000ffff", Code::CborNonMinimal),
            ("1b00000000ffffffff", Code::CborNonMinimal),
            ("1c", Code::CborMalformed),
            ("5f41ff", Code::CborIndefiniteLength),
            ("62c328", Code::CborMalformed),
            ("6568656c6c", Code::CborTruncated),
            ("f7", Code::CborUnsupported),
            ("f93c00", Code::CborUnsupported),
            ("c100", Code::CborUnsupported),
            ("0001", Code::CborTrailingBytes),
        ] {
            let bytes = hex(input);
            let refused = super::super::check(&bytes, 1 << 20, false)
                .err()
                .map(|f| f.code);
            let mut s = Strict::new(&bytes);
            let read = read_any(&mut s).filter(|()| s.at_end());
            assert_eq!(refused, Some(code), "{input}");
            assert_eq!(read, None, "{input}");
        }
    }

    #[test]
    fn a_failed_read_leaves_the_item_in_place() {
        // A text that is not UTF-8, then an integer: the failed text read moves nothing.
        let bytes = hex("62c32801");
        let mut s = Strict::new(&bytes);
        assert_eq!(s.text(), None);
        assert_eq!(s.int(), None);
        assert_eq!(s.bytes(), None);
        assert_eq!(s.bool(), None);
        assert_eq!(s.array(), None);
        assert!(!s.key(Key::Text("x")));
        assert_eq!(s.pos, 0);
    }

    #[test]
    fn a_key_that_does_not_match_is_left_in_place() {
        let bytes = hex("a2016276310a");
        let mut s = Strict::new(&bytes);
        assert_eq!(s.map(), Some(2));
        assert!(!s.key(Key::Int(4)));
        assert!(!s.key(Key::Text("v")));
        assert!(s.key(Key::Int(1)));
        assert!(!s.key(Key::Text("v2")));
        assert_eq!(s.text(), Some("v1"));
        assert!(!s.key(Key::Int(-1)));
        assert_eq!(s.uint(), Some(10));
        assert!(s.at_end());
    }
}
