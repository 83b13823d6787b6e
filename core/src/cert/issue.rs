//! Issuing certificates (specs/certificate.md §5) and presenting them with fewer disclosures.

use std::collections::HashSet;

use crate::cbor;
use crate::cert::claims::{Claims, Predecessor, TrustLevel};
use crate::cert::disclosure::{
    self, Disclosure, FieldName, FieldValue, HOLDER_ID_NUMBER, HOLDER_ID_TYPE, HOLDER_NAME,
    HolderIdType,
};
use crate::codes::Failure;
use crate::envelope::{BuildError, Envelope, Kind, LABEL_DISCLOSURES, MAX_DISCLOSURES, seal};
use crate::ids::Identifier;
use crate::keys::SecretKey;
use crate::trust::SealInfo;
use crate::values::{ShortText, Time};

/// Where salts come from. Production callers pass a CSPRNG; the test vectors pass a seeded stream so
/// that the vector bytes reproduce. (The core does no I/O, so it cannot read the OS's randomness.)
pub trait SaltSource {
    fn salt(&mut self) -> [u8; 16];
}

impl<F: FnMut() -> [u8; 16]> SaltSource for F {
    fn salt(&mut self) -> [u8; 16] {
        self()
    }
}

/// The certificate's holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub name: ShortText,
    pub id_type: HolderIdType,
    pub id_number: String,
}

/// Everything about a certificate that its issuer chooses; the agency and region come from the seal.
#[derive(Clone, Debug)]
pub struct Draft {
    pub id: Identifier,
    pub type_name: ShortText,
    pub issued: Time,
    pub valid_from: Time,
    pub valid_until: Option<Time>,
    pub level: TrustLevel,
    pub promise_deadline: Option<Time>,
    pub predecessor: Option<Predecessor>,
    /// The index in the region's status list the issuer gave it (specs/status.md §5).
    pub status_index: u32,
    pub holder: Holder,
    pub licence: Vec<(FieldName, FieldValue)>,
    /// Decoy digests to hide the number of fields.
    pub decoys: usize,
}

/// An issued certificate.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate with every disclosure attached.
    pub bytes: Vec<u8>,
    /// The certificate digest (specs/encoding.md §4).
    pub digest: [u8; 32],
    pub claims: Claims,
    pub disclosures: Vec<Disclosure>,
}

fn holder_fields(holder: &Holder) -> Result<Vec<(FieldName, FieldValue)>, BuildError> {
    if !holder.id_type.accepts(&holder.id_number) {
        return Err(BuildError::Invalid(format!(
            "holder id number is not a valid {}",
            holder.id_type.as_str()
        )));
    }
    let name = |n: &str| FieldName::parse(n).ok_or_else(|| BuildError::Invalid(n.to_owned()));
    Ok(vec![
        (
            name(HOLDER_NAME)?,
            FieldValue::Text(holder.name.as_str().to_owned()),
        ),
        (
            name(HOLDER_ID_TYPE)?,
            FieldValue::Text(holder.id_type.as_str().to_owned()),
        ),
        (
            name(HOLDER_ID_NUMBER)?,
            FieldValue::Text(holder.id_number.clone()),
        ),
    ])
}

/// Issues `draft`, stamped with the seal `seal` whose private key is `key`.
pub fn issue(
    draft: &Draft,
    seal_info: &SealInfo,
    key: &SecretKey,
    salts: &mut impl SaltSource,
) -> Result<Issued, BuildError> {
    if key.public() != &seal_info.key {
        return Err(BuildError::Invalid("the key is not the seal's".into()));
    }
    let mut fields = holder_fields(&draft.holder)?;
    for (name, value) in &draft.licence {
        if !name.as_str().starts_with(disclosure::LICENCE_PREFIX) {
            return Err(BuildError::Invalid(format!(
                "{name} is not a licence field"
            )));
        }
        fields.push((name.clone(), value.clone()));
    }
    let mut names = HashSet::new();
    if !fields.iter().all(|(name, _)| names.insert(name.clone())) {
        return Err(BuildError::Invalid("a field appears twice".into()));
    }
    if fields.len() + draft.decoys > MAX_DISCLOSURES {
        return Err(BuildError::Invalid(
            "more than 256 fields and decoys".into(),
        ));
    }
    let mut disclosures = fields
        .into_iter()
        .map(|(name, value)| Disclosure::new(key.suite(), salts.salt(), name, value))
        .collect::<Result<Vec<_>, _>>()?;
    disclosures.sort_by_key(|d| d.digest);
    let mut digests: Vec<[u8; 32]> = disclosures.iter().map(|d| d.digest).collect();
    for _ in 0..draft.decoys {
        digests.push(disclosure::digest(
            key.suite(),
            &[salts.salt(), salts.salt()].concat(),
        ));
    }
    digests.sort();
    let claims = Claims {
        id: draft.id.clone(),
        type_name: draft.type_name.clone(),
        agency: seal_info.agency.clone(),
        agency_name: seal_info.agency_name.clone(),
        region: seal_info.region.clone(),
        issued: draft.issued,
        valid_from: draft.valid_from,
        valid_until: draft.valid_until,
        level: draft.level,
        promise_deadline: draft.promise_deadline,
        predecessor: draft.predecessor.clone(),
        status_index: draft.status_index,
        digests,
    };
    let attached: Vec<Vec<u8>> = disclosures.iter().map(|d| d.bytes.clone()).collect();
    let bytes = seal(Kind::Certificate, key, claims.payload()?, &attached)?;
    let digest = Envelope::open(&bytes, Kind::Certificate)
        .map_err(|f| BuildError::Cose(f.to_string()))?
        .digest();
    Ok(Issued {
        bytes,
        digest,
        claims,
        disclosures,
    })
}

/// The same certificate with only the disclosures whose field `keep` accepts. The protected header,
/// payload and signature are copied byte for byte, so the seal's signature still holds.
pub fn present(
    certificate: &[u8],
    mut keep: impl FnMut(&FieldName) -> bool,
) -> Result<Vec<u8>, Failure> {
    let envelope = Envelope::open(certificate, Kind::Certificate)?;
    let mut kept = Vec::new();
    for bytes in &envelope.disclosures {
        if keep(&Disclosure::open(envelope.suite, bytes)?.name) {
            kept.push(*bytes);
        }
    }
    let mut out = Vec::with_capacity(certificate.len());
    out.extend_from_slice(&[0xd2, 0x84]);
    cbor::write_bytes(&mut out, envelope.protected);
    if kept.is_empty() {
        out.push(0xa0);
    } else {
        out.push(0xa1);
        cbor::write_head(&mut out, 1, (-1 - LABEL_DISCLOSURES) as u64);
        cbor::write_head(&mut out, 4, kept.len() as u64);
        for bytes in kept {
            cbor::write_bytes(&mut out, bytes);
        }
    }
    cbor::write_bytes(&mut out, envelope.payload);
    cbor::write_bytes(&mut out, &envelope.signature);
    Ok(out)
}
