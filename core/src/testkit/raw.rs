//! Low-level builders for deliberately broken objects: the invalid test vectors need envelopes that
//! the normal builders refuse to make.

use ciborium::Value;

use crate::cbor;
use crate::envelope::{BuildError, Envelope, Kind, LABEL_DISCLOSURES, encode, sig_structure};
use crate::keys::SecretKey;

/// A protected header `{1: alg, 4: kid, 16: typ}`.
pub fn protected(alg: i64, kid: &[u8], typ: &str) -> Result<Vec<u8>, BuildError> {
    encode(&Value::Map(vec![
        (Value::Integer(1.into()), Value::Integer(alg.into())),
        (Value::Integer(4.into()), Value::Bytes(kid.to_vec())),
        (Value::Integer(16.into()), Value::Text(typ.to_owned())),
    ]))
}

/// An unprotected header carrying `disclosures` (empty map when there are none).
pub fn unprotected(disclosures: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    if disclosures.is_empty() {
        out.push(0xa0);
        return out;
    }
    out.push(0xa1);
    cbor::write_head(&mut out, 1, (-1 - LABEL_DISCLOSURES) as u64);
    cbor::write_head(&mut out, 4, disclosures.len() as u64);
    for d in disclosures {
        cbor::write_bytes(&mut out, d);
    }
    out
}

/// Assembles an envelope from parts, with an optional tag, without any check.
pub fn assemble(
    tag: Option<u64>,
    protected: &[u8],
    unprotected: &[u8],
    payload: &[u8],
    signature: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(tag) = tag {
        cbor::write_head(&mut out, 6, tag);
    }
    out.push(0x84);
    cbor::write_bytes(&mut out, protected);
    out.extend_from_slice(unprotected);
    cbor::write_bytes(&mut out, payload);
    cbor::write_bytes(&mut out, signature);
    out
}

/// Signs the Sig_structure of `protected` and `payload` and assembles a tagged envelope.
pub fn sign1(protected: &[u8], unprotected: &[u8], payload: &[u8], signer: &SecretKey) -> Vec<u8> {
    let signature = signer.sign(&sig_structure(protected, payload));
    assemble(Some(18), protected, unprotected, payload, &signature)
}

/// An envelope's parts, owned, for editing.
#[derive(Clone, Debug)]
pub struct Parts {
    pub protected: Vec<u8>,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
    pub disclosures: Vec<Vec<u8>>,
}

impl Parts {
    pub fn of(bytes: &[u8], kind: Kind) -> Result<Parts, BuildError> {
        let envelope =
            Envelope::open(bytes, kind).map_err(|f| BuildError::Invalid(f.to_string()))?;
        Ok(Parts {
            protected: envelope.protected.to_vec(),
            payload: envelope.payload.to_vec(),
            signature: envelope.signature.to_vec(),
            disclosures: envelope.disclosures.iter().map(|d| d.to_vec()).collect(),
        })
    }

    /// Reassembles, keeping the signature as it is.
    pub fn assemble(&self) -> Vec<u8> {
        assemble(
            Some(18),
            &self.protected,
            &unprotected(&self.disclosures),
            &self.payload,
            &self.signature,
        )
    }

    /// Reassembles with a fresh signature by `signer` over the (edited) parts.
    pub fn resign(&self, signer: &SecretKey) -> Vec<u8> {
        sign1(
            &self.protected,
            &unprotected(&self.disclosures),
            &self.payload,
            signer,
        )
    }
}

/// Decodes a payload map for editing (entries in order) and re-encodes the edited map.
pub fn edit_map(
    payload: &[u8],
    edit: impl FnOnce(&mut Vec<(Value, Value)>),
) -> Result<Vec<u8>, BuildError> {
    let value: Value =
        ciborium::from_reader(payload).map_err(|e| BuildError::Invalid(e.to_string()))?;
    let Value::Map(mut entries) = value else {
        return Err(BuildError::Invalid("payload is not a map".into()));
    };
    edit(&mut entries);
    encode(&Value::Map(entries))
}

/// Replaces the value of text key `key` (appending it when absent).
pub fn set(entries: &mut Vec<(Value, Value)>, key: Value, value: Value) {
    match entries.iter_mut().find(|(k, _)| *k == key) {
        Some(entry) => entry.1 = value,
        None => entries.push((key, value)),
    }
}

pub fn remove(entries: &mut Vec<(Value, Value)>, key: &Value) {
    entries.retain(|(k, _)| k != key);
}

pub fn tkey(key: &str) -> Value {
    Value::Text(key.to_owned())
}

pub fn ikey(key: i64) -> Value {
    Value::Integer(key.into())
}
