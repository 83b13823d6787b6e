//! Reading closed payload maps: every key is taken by name and type, and [`Fields::finish`] refuses
//! whatever is left, so an unknown claim can never pass unnoticed (specs/encoding.md §5).

use crate::cbor::{Key, RawKey, Reader};
use crate::codes::{Code, Failure};
use crate::keys::{KeyError, PublicKey};
use crate::values::{Time, is_short_text};

/// Why a payload field was refused. The caller supplies the code unless the check names a more
/// specific one (a weak key, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad {
    pub detail: String,
    pub code: Option<Code>,
}

impl Bad {
    pub fn new(detail: impl Into<String>) -> Bad {
        Bad {
            detail: detail.into(),
            code: None,
        }
    }

    pub fn with_code(code: Code, detail: impl Into<String>) -> Bad {
        Bad {
            detail: detail.into(),
            code: Some(code),
        }
    }

    /// The failure, with `default` unless a more specific code was named.
    pub fn into_failure(self, default: Code) -> Failure {
        Failure::new(self.code.unwrap_or(default), self.detail)
    }

    fn field(key: &Key<'_>, what: &str) -> Bad {
        match key {
            Key::Int(i) => Bad::new(format!("claim {i} {what}")),
            Key::Text(t) => Bad::new(format!("field \"{t}\" {what}")),
        }
    }

    fn raw_field(key: &RawKey<'_>, what: &str) -> Bad {
        match key {
            RawKey::Int(i) => Bad::field(&Key::Int(*i), what),
            RawKey::Text(t) => Bad::field(&Key::Text(&String::from_utf8_lossy(t)), what),
        }
    }
}

/// The entries of one map, taken one by one.
pub struct Fields<'a> {
    /// Taken entries first (`..taken`), then the rest in the order received. A reader that asks
    /// for keys in the encoding's order (specs/encoding.md §1 sorts them) finds each at once.
    entries: Vec<(RawKey<'a>, Reader<'a>)>,
    taken: usize,
}

impl<'a> Fields<'a> {
    /// The map that is the whole of `bytes`.
    pub fn whole(bytes: &'a [u8]) -> Result<Fields<'a>, Bad> {
        let mut reader = Reader::new(bytes);
        let fields = Fields::next(&mut reader)?;
        if !reader.at_end() {
            return Err(Bad::new("bytes after the map"));
        }
        Ok(fields)
    }

    /// The map at the reader's position; the reader moves past it.
    pub fn next(reader: &mut Reader<'a>) -> Result<Fields<'a>, Bad> {
        let count = reader.map().ok_or_else(|| Bad::new("not a map"))?;
        let mut entries = Vec::with_capacity(count.min(32) as usize);
        for _ in 0..count {
            let key = reader
                .raw_key()
                .ok_or_else(|| Bad::new("map key neither integer nor text"))?;
            let value = reader.clone();
            reader
                .skip()
                .ok_or_else(|| Bad::new("malformed map value"))?;
            entries.push((key, value));
        }
        Ok(Fields { entries, taken: 0 })
    }

    /// The entries not taken yet.
    fn rest(&self) -> &[(RawKey<'a>, Reader<'a>)] {
        self.entries.get(self.taken..).unwrap_or_default()
    }

    fn has(&self, key: Key<'a>) -> bool {
        self.rest().iter().any(|(k, _)| k.is(key))
    }

    fn take(&mut self, key: Key<'a>) -> Option<Reader<'a>> {
        let at = self.taken + self.rest().iter().position(|(k, _)| k.is(key))?;
        self.entries.swap(self.taken, at);
        let reader = self.entries.get(self.taken)?.1.clone();
        self.taken += 1;
        Some(reader)
    }

    fn required<T>(
        &mut self,
        key: Key<'a>,
        what: &str,
        read: impl FnOnce(&mut Reader<'a>) -> Option<T>,
    ) -> Result<T, Bad> {
        let mut reader = self.take(key).ok_or_else(|| Bad::field(&key, "missing"))?;
        read(&mut reader).ok_or_else(|| Bad::field(&key, &format!("is not {what}")))
    }

    fn optional<T>(
        &mut self,
        key: Key<'a>,
        what: &str,
        read: impl FnOnce(&mut Reader<'a>) -> Option<T>,
    ) -> Result<Option<T>, Bad> {
        if self.has(key) {
            self.required(key, what, read).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn text(&mut self, key: Key<'a>) -> Result<&'a str, Bad> {
        self.required(key, "a text string", Reader::text)
    }

    pub fn optional_text(&mut self, key: Key<'a>) -> Result<Option<&'a str>, Bad> {
        self.optional(key, "a text string", Reader::text)
    }

    pub fn short_text(&mut self, key: Key<'a>) -> Result<&'a str, Bad> {
        self.required(key, "a short text", |r| {
            r.text().filter(|t| is_short_text(t))
        })
    }

    pub fn uint(&mut self, key: Key<'a>) -> Result<u64, Bad> {
        self.required(key, "an unsigned integer", Reader::uint)
    }

    pub fn optional_uint(&mut self, key: Key<'a>) -> Result<Option<u64>, Bad> {
        self.optional(key, "an unsigned integer", Reader::uint)
    }

    pub fn bytes(&mut self, key: Key<'a>) -> Result<&'a [u8], Bad> {
        self.required(key, "a byte string", Reader::bytes)
    }

    pub fn fixed<const N: usize>(&mut self, key: Key<'a>) -> Result<[u8; N], Bad> {
        self.required(key, &format!("a {N}-byte string"), |r| {
            r.bytes().and_then(|b| b.try_into().ok())
        })
    }

    pub fn optional_fixed<const N: usize>(&mut self, key: Key<'a>) -> Result<Option<[u8; N]>, Bad> {
        self.optional(key, &format!("a {N}-byte string"), |r| {
            r.bytes().and_then(|b| b.try_into().ok())
        })
    }

    pub fn bool(&mut self, key: Key<'a>) -> Result<bool, Bad> {
        self.required(key, "a boolean", Reader::bool)
    }

    /// A public key; a weak one is named as such (`WEAK_KEY`).
    pub fn public_key(&mut self, key: Key<'a>) -> Result<PublicKey, Bad> {
        let bytes = self.bytes(key)?;
        PublicKey::from_bytes(bytes).map_err(|e| match e {
            KeyError::Weak => Bad::with_code(Code::WeakKey, format!("{}: {e}", describe(&key))),
            KeyError::Invalid | KeyError::Sm2Scalar => Bad::new(format!("{}: {e}", describe(&key))),
        })
    }

    pub fn time(&mut self, key: Key<'a>) -> Result<Time, Bad> {
        self.required(key, "a time", |r| r.uint().and_then(Time::new))
    }

    pub fn optional_time(&mut self, key: Key<'a>) -> Result<Option<Time>, Bad> {
        self.optional(key, "a time", |r| r.uint().and_then(Time::new))
    }

    /// A nested map.
    pub fn map(&mut self, key: Key<'a>) -> Result<Fields<'a>, Bad> {
        let mut reader = self.take(key).ok_or_else(|| Bad::field(&key, "missing"))?;
        Fields::next(&mut reader).map_err(|_| Bad::field(&key, "is not a map"))
    }

    pub fn optional_map(&mut self, key: Key<'a>) -> Result<Option<Fields<'a>>, Bad> {
        if self.has(key) {
            self.map(key).map(Some)
        } else {
            Ok(None)
        }
    }

    /// An array whose every element `read` accepts.
    pub fn array<T>(
        &mut self,
        key: Key<'a>,
        what: &str,
        mut read: impl FnMut(&mut Reader<'a>) -> Option<T>,
    ) -> Result<Vec<T>, Bad> {
        self.required(key, what, |r| {
            let count = r.array()?;
            let mut items = Vec::with_capacity(count.min(1024) as usize);
            for _ in 0..count {
                items.push(read(r)?);
            }
            Some(items)
        })
    }

    /// An optional array whose every element `read` accepts.
    pub fn optional_array<T>(
        &mut self,
        key: Key<'a>,
        what: &str,
        read: impl FnMut(&mut Reader<'a>) -> Option<T>,
    ) -> Result<Option<Vec<T>>, Bad> {
        if self.has(key) {
            self.array(key, what, read).map(Some)
        } else {
            Ok(None)
        }
    }

    /// `"v"` must be 1: the only version this implementation knows.
    pub fn version_1(&mut self) -> Result<(), Bad> {
        self.version(1)
    }

    /// Reads `"v"`, which must be `expected`.
    pub fn version(&mut self, expected: u64) -> Result<(), Bad> {
        match self.uint(Key::Text("v"))? {
            v if v == expected => Ok(()),
            other => Err(Bad::new(format!("unsupported version {other}"))),
        }
    }

    /// Refuses keys nobody took.
    pub fn finish(self) -> Result<(), Bad> {
        match self.rest().first() {
            None => Ok(()),
            Some((key, _)) => Err(Bad::raw_field(key, "is not allowed here")),
        }
    }
}

fn describe(key: &Key<'_>) -> String {
    match key {
        Key::Int(i) => format!("claim {i}"),
        Key::Text(t) => format!("field \"{t}\""),
    }
}
