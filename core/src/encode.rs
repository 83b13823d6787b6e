//! Building payload maps in the deterministic order the spec asks producers to use.

use ciborium::Value;

use crate::envelope::{BuildError, encode};

/// A text-keyed or integer-keyed map entry.
pub fn entry(key: impl Into<MapKey>, value: Value) -> (Value, Value) {
    (key.into().0, value)
}

/// A map key.
pub struct MapKey(Value);

impl From<&str> for MapKey {
    fn from(key: &str) -> Self {
        MapKey(Value::Text(key.to_owned()))
    }
}

impl From<i64> for MapKey {
    fn from(key: i64) -> Self {
        MapKey(Value::Integer(key.into()))
    }
}

pub fn text(value: &str) -> Value {
    Value::Text(value.to_owned())
}

pub fn uint(value: u64) -> Value {
    Value::Integer(value.into())
}

pub fn bytes(value: &[u8]) -> Value {
    Value::Bytes(value.to_vec())
}

/// A map value with its entries in bytewise order of their encoded keys (RFC 8949 §4.2.1).
pub fn map(mut entries: Vec<(Value, Value)>) -> Result<Value, BuildError> {
    let mut keyed = Vec::with_capacity(entries.len());
    for (key, value) in entries.drain(..) {
        keyed.push((encode(&key)?, key, value));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Value::Map(
        keyed.into_iter().map(|(_, k, v)| (k, v)).collect(),
    ))
}

/// The encoded bytes of such a map.
pub fn map_bytes(entries: Vec<(Value, Value)>) -> Result<Vec<u8>, BuildError> {
    encode(&map(entries)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sorted_by_encoding() -> Result<(), BuildError> {
        let bytes = map_bytes(vec![
            entry("lvl", uint(0)),
            entry("v", uint(0)),
            entry(6, uint(0)),
            entry("an", uint(0)),
            entry(1, uint(0)),
            entry(-8, uint(0)),
        ])?;
        // 1, 6, -8 (0x27), "v", "an", "lvl"
        assert_eq!(
            bytes,
            [
                0xa6, 0x01, 0x00, 0x06, 0x00, 0x27, 0x00, 0x61, b'v', 0x00, 0x62, b'a', b'n', 0x00,
                0x63, b'l', b'v', b'l', 0x00
            ]
        );
        Ok(())
    }
}
