//! The conformance vectors of specs/vectors/: every case is generated here from fixed seeds, so the
//! committed JSON can be checked to reproduce byte for byte.

use ciborium::Value;

use crate::cert::{Draft, FieldValue, Issued, issue, present};
use crate::codes::Code;
use crate::envelope::{BuildError, Kind};
use crate::ids::{Identifier, IssuerCode, RegionCode, TypeCode};
use crate::keys::{KeyId, SecretKey};
use crate::status::Succession;
use crate::suite::Suite;
use crate::testkit::raw::{self, Parts, edit_map, ikey, remove, set, tkey};
use crate::testkit::{
    DAY, FOOD_PERMIT, NOW, SeededSalts, T0, TestFederation, TestSeal, YEAR, field, identifier, key,
    seed, succeed, time,
};

type Entries = Vec<(Value, Value)>;

/// A named test key with its seed.
pub struct NamedKey {
    pub name: String,
    pub role: &'static str,
    pub seed: [u8; 32],
    /// The public key's encoding: 32 bytes (Ed25519) or 65 (SM2).
    pub public: Vec<u8>,
    pub kid: KeyId,
}

/// One certificate verification case.
pub struct CertCase {
    pub name: &'static str,
    pub description: &'static str,
    /// Names of the status files (lists or snapshots) to load.
    pub status: Vec<&'static str>,
    pub now: u64,
    pub bytes: Vec<u8>,
    pub code: Code,
    /// For valid cases: the disclosed fields, in order.
    pub disclosed: Vec<(String, FieldValue)>,
}

/// One trust bundle loading case.
pub struct BundleCase {
    pub name: &'static str,
    pub description: &'static str,
    pub bytes: Vec<u8>,
    pub now: u64,
    pub pinned: Option<KeyId>,
    pub code: Code,
}

/// The vectors of a suite other than `ed25519` (specs/vectors/README.md): the same test
/// federation with every key in that suite, its bundle and snapshots, and certificate cases that
/// exercise what the suite changes (signatures, key ids, digests, the algorithm header).
pub struct SuiteSet {
    pub suite: Suite,
    pub keys: Vec<NamedKey>,
    pub bundle: Vec<u8>,
    pub status: Vec<(&'static str, Vec<u8>)>,
    pub certificates: Vec<CertCase>,
    /// The suite's log: tree, proofs and signed notes (specs/log.md §2–§3).
    pub log: LogVectors,
}

/// A suite's log vectors: the roots of the RFC 6962 test leaves in the suite's tree hash, two
/// proofs, and a checkpoint signed by a log key and cosigned by a witness, with notes that must
/// not verify.
pub struct LogVectors {
    /// The eight RFC 6962 test leaves (certificate-transparency-go's merkle test data).
    pub leaves: Vec<Vec<u8>>,
    /// The root of the first n leaves, n = 0..=8.
    pub roots: Vec<[u8; 32]>,
    /// Inclusion proof of leaf 5 in the tree of 8, and consistency proof from 2 to 5.
    pub inclusion: Vec<[u8; 32]>,
    pub consistency: Vec<[u8; 32]>,
    pub log_vkey: String,
    pub witness_vkey: String,
    /// (name, note, what a verifier must find): `ok`, `log-signature` (the log's signature
    /// fails) or `cosignature` (the witness's fails).
    pub notes: Vec<(&'static str, String, &'static str)>,
}

/// The test leaves' index and sizes the proofs are for.
pub const INCLUSION_AT: (u64, u64) = (5, 8);
pub const CONSISTENCY_FROM: (u64, u64) = (2, 5);

/// The RFC 6962 test leaves.
const RFC6962_LEAVES: [&[u8]; 8] = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
];

fn log_vectors(suite: Suite) -> Result<LogVectors, BuildError> {
    use crate::log::checkpoint::{Checkpoint, add_signatures, cosign};
    use crate::log::note::{Note, NoteRole, NoteVerifier};
    use crate::log::proof::MemoryTree;
    let invalid = |e: &dyn std::fmt::Display| BuildError::Invalid(e.to_string());
    let leaves: Vec<Vec<u8>> = RFC6962_LEAVES.iter().map(|l| l.to_vec()).collect();
    let mut tree = MemoryTree::new(suite);
    for leaf in &leaves {
        tree.append(leaf).map_err(|e| invalid(&e))?;
    }
    let roots = (0..=8)
        .map(|n| tree.root(n).map_err(|e| invalid(&e)))
        .collect::<Result<_, _>>()?;
    let origin = "tongban.example/341200/log/1";
    let witness_name = "tongban.example/370100/witness";
    let log_key = crate::testkit::suite_key(suite, "log 341200")?;
    let witness_key = crate::testkit::suite_key(suite, "witness 370100")?;
    let log = NoteVerifier::new(origin, NoteRole::Log, log_key.public().clone())
        .map_err(|e| invalid(&e))?;
    let witness = NoteVerifier::new(
        witness_name,
        NoteRole::Witness,
        witness_key.public().clone(),
    )
    .map_err(|e| invalid(&e))?;
    let checkpoint = Checkpoint {
        origin: origin.into(),
        size: 8,
        root: tree.root(8).map_err(|e| invalid(&e))?,
    };
    let signed = checkpoint.sign(origin, &log_key).map_err(|e| invalid(&e))?;
    let cosignature = cosign(
        &checkpoint.body(),
        1_796_000_000,
        witness_name,
        &witness_key,
    )
    .map_err(|e| invalid(&e))?;
    let cosigned = add_signatures(signed.as_bytes(), &[cosignature]).map_err(|e| invalid(&e))?;
    let mut other_root = Note::parse(cosigned.as_bytes()).map_err(|e| invalid(&e))?;
    other_root.text = Checkpoint {
        root: roots_at(&tree, 7)?,
        ..checkpoint.clone()
    }
    .body();
    let mut other_time = Note::parse(cosigned.as_bytes()).map_err(|e| invalid(&e))?;
    if let Some(line) = other_time.signatures.get_mut(1) {
        line.body[7] ^= 1;
    }
    Ok(LogVectors {
        leaves,
        roots,
        inclusion: tree
            .inclusion_proof(INCLUSION_AT.0, INCLUSION_AT.1)
            .map_err(|e| invalid(&e))?,
        consistency: tree
            .consistency_proof(CONSISTENCY_FROM.0, CONSISTENCY_FROM.1)
            .map_err(|e| invalid(&e))?,
        log_vkey: log.to_vkey(),
        witness_vkey: witness.to_vkey(),
        notes: vec![
            ("checkpoint-cosigned", cosigned, "ok"),
            (
                "checkpoint-root-replaced",
                other_root.to_text(),
                "log-signature",
            ),
            (
                "checkpoint-cosignature-time-altered",
                other_time.to_text(),
                "cosignature",
            ),
        ],
    })
}

fn roots_at(tree: &crate::log::proof::MemoryTree, size: u64) -> Result<[u8; 32], BuildError> {
    tree.root(size)
        .map_err(|e| BuildError::Invalid(e.to_string()))
}

/// Everything in specs/vectors/vectors.json.
pub struct VectorSet {
    pub keys: Vec<NamedKey>,
    /// The trust bundle every certificate case is verified with.
    pub bundle: Vec<u8>,
    /// Signed status files by name: snapshots named by their region code, status lists by
    /// region code and `-list` (and what makes a variant, for lists that must not load).
    pub status: Vec<(&'static str, Vec<u8>)>,
    pub certificates: Vec<CertCase>,
    pub bundles: Vec<BundleCase>,
    /// Purpose-bound copies and verification proofs (specs/sharing.md).
    pub copies: Vec<crate::testkit::sharing::CopyCase>,
    pub proofs: Vec<crate::testkit::sharing::ProofCase>,
    /// The other suites' sets.
    pub suites: Vec<SuiteSet>,
}

fn named(name: String, role: &'static str, key: &SecretKey) -> NamedKey {
    NamedKey {
        seed: seed(&name),
        public: key.public().as_bytes().to_vec(),
        kid: key.public().kid(),
        name,
        role,
    }
}

fn keys(f: &TestFederation) -> Vec<NamedKey> {
    let suite = f.federation.suite();
    let name = |n: String| crate::testkit::key_name(suite, &n);
    let mut keys = vec![named(
        name("federation root".into()),
        "federation root",
        &f.federation,
    )];
    for region in [&f.fuyang, &f.jinan] {
        let code = region.certificate.region.as_str();
        keys.push(named(
            name(format!("region {code} root")),
            "region root",
            &region.root,
        ));
        for seal in &region.seals {
            keys.push(named(
                name(format!("seal {code} {}", seal.info.id)),
                "e-seal",
                &seal.key,
            ));
        }
    }
    keys
}

struct Maker {
    cases: Vec<CertCase>,
}

impl Maker {
    fn issue(&self, seal: &TestSeal, draft: &Draft, label: &str) -> Result<Issued, BuildError> {
        issue(draft, &seal.info, &seal.key, &mut SeededSalts::new(label))
    }

    fn push(&mut self, name: &'static str, description: &'static str, bytes: Vec<u8>, code: Code) {
        self.push_at(
            name,
            description,
            bytes,
            code,
            NOW,
            vec!["341200", "370100"],
        );
    }

    fn push_at(
        &mut self,
        name: &'static str,
        description: &'static str,
        bytes: Vec<u8>,
        code: Code,
        now: u64,
        status: Vec<&'static str>,
    ) {
        self.cases.push(CertCase {
            name,
            description,
            status,
            now,
            bytes,
            code,
            disclosed: Vec::new(),
        });
    }

    /// A valid case; the expected disclosures are those attached to `bytes`.
    fn valid(
        &mut self,
        name: &'static str,
        description: &'static str,
        issued: &Issued,
        bytes: Vec<u8>,
    ) -> Result<(), BuildError> {
        let parts = Parts::of(&bytes, Kind::Certificate)?;
        let disclosed = parts
            .disclosures
            .iter()
            .map(|d| {
                issued
                    .disclosures
                    .iter()
                    .find(|i| &i.bytes == d)
                    .map(|i| (i.name.as_str().to_owned(), i.value.clone()))
                    .ok_or_else(|| BuildError::Invalid("disclosure not issued".into()))
            })
            .collect::<Result<_, _>>()?;
        self.push(name, description, bytes, Code::Ok);
        if let Some(case) = self.cases.last_mut() {
            case.disclosed = disclosed;
        }
        Ok(())
    }
}

fn keep(names: &'static [&'static str]) -> impl FnMut(&crate::cert::FieldName) -> bool {
    move |n| names.contains(&n.as_str())
}

/// Adds `L` (the Ed25519 group order) to the scalar `S` of a signature: the same signature value
/// modulo `L`, which a strict verifier must refuse.
fn non_canonical(signature: &[u8]) -> Vec<u8> {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut out = signature.to_vec();
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(out[32 + i]) + u16::from(L[i]) + carry;
        out[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    out
}

fn certificate_cases(f: &TestFederation) -> Result<Vec<CertCase>, BuildError> {
    let mut m = Maker { cases: Vec::new() };
    let amr = f.amr();
    let old = &f.fuyang.seals[1];
    let amr2 = &f.fuyang.seals[2];
    let data = &f.fuyang.seals[3];
    let jinan = &f.jinan.seals[0];
    let main_draft = f.draft(amr, "2026000001")?;
    let main = m.issue(amr, &main_draft, "main")?;
    let parts = Parts::of(&main.bytes, Kind::Certificate)?;

    // ---- valid ----
    m.valid(
        "valid-full-disclosure",
        "business licence with all six fields disclosed",
        &main,
        main.bytes.clone(),
    )?;
    m.valid(
        "valid-no-disclosures",
        "the same certificate with every disclosure removed",
        &main,
        present(&main.bytes, |_| false).map_err(|e| BuildError::Invalid(e.to_string()))?,
    )?;
    m.valid(
        "valid-holder-name-only",
        "the same certificate disclosing only holder.name",
        &main,
        present(&main.bytes, keep(&["holder.name"]))
            .map_err(|e| BuildError::Invalid(e.to_string()))?,
    )?;
    let mut d = f.draft(amr, "2026000004")?;
    d.decoys = 5;
    let issued = m.issue(amr, &d, "decoys")?;
    m.valid(
        "valid-with-decoys",
        "five decoy digests hide the number of fields",
        &issued,
        issued.bytes.clone(),
    )?;
    let mut d = f.draft(amr, "2026000005")?;
    d.valid_until = None;
    let issued = m.issue(amr, &d, "no-end")?;
    m.valid(
        "valid-no-end-date",
        "no exp claim: valid without end (长期有效)",
        &issued,
        issued.bytes.clone(),
    )?;
    let mut d = f.draft(amr, "2026000006")?;
    d.promise_deadline = Some(time(NOW + 30 * DAY)?);
    d.level = crate::cert::TrustLevel::D;
    let issued = m.issue(amr, &d, "promise-open")?;
    m.valid(
        "valid-promise-before-deadline",
        "告知承诺 certificate before its promise deadline",
        &issued,
        issued.bytes.clone(),
    )?;
    let mut d = f.draft(amr, "2026000007")?;
    d.promise_deadline = Some(time(NOW - 10 * DAY)?);
    let fulfilled = m.issue(amr, &d, "promise-kept")?;
    m.valid(
        "valid-promise-fulfilled",
        "deadline passed, fulfilment listed in the Fuyang snapshot",
        &fulfilled,
        fulfilled.bytes.clone(),
    )?;
    let mut d = f.draft(amr, "2026000008")?;
    succeed(&mut d, &main.claims.id, Succession::Renew);
    let issued = m.issue(amr, &d, "renewal")?;
    m.valid(
        "valid-renewal",
        "renewal (op 02) linked to its predecessor",
        &issued,
        issued.bytes.clone(),
    )?;
    let mut d = f.draft(jinan, "2026100001")?;
    succeed(&mut d, &main.claims.id, Succession::TransferIn);
    let issued = m.issue(jinan, &d, "transfer-in")?;
    m.valid(
        "valid-transfer-in",
        "Jinan successor of a Fuyang certificate transferred in (op 08)",
        &issued,
        issued.bytes.clone(),
    )?;
    let mut d = f.draft(amr, "2026000010")?;
    let type_code = TypeCode::parse(FOOD_PERMIT).map_err(|e| BuildError::Invalid(e.to_string()))?;
    let region = RegionCode::parse("341200").map_err(|e| BuildError::Invalid(e.to_string()))?;
    d.id = Identifier::new(type_code, IssuerCode::Region(region), "2026000010", "001")
        .map_err(|e| BuildError::Invalid(e.to_string()))?;
    let issued = m.issue(amr, &d, "region-issuer")?;
    m.valid(
        "valid-region-code-issuer",
        "identifier whose issuer part is the region code",
        &issued,
        issued.bytes.clone(),
    )?;
    let d = f.draft(amr2, "2026000011")?;
    let issued = m.issue(amr2, &d, "before-revocation")?;
    m.valid(
        "valid-stamped-before-seal-revocation",
        "seal revoked from T0+100d; stamped at T0+10d",
        &issued,
        issued.bytes.clone(),
    )?;
    let mut d = f.draft(amr, "2026000012")?;
    d.licence
        .push((field("licence.employees")?, FieldValue::Int(42)));
    d.licence
        .push((field("licence.foreign_invested")?, FieldValue::Bool(false)));
    let issued = m.issue(amr, &d, "typed")?;
    m.valid(
        "valid-integer-and-boolean-fields",
        "licence fields of integer and boolean type",
        &issued,
        issued.bytes.clone(),
    )?;
    let d = f.draft(data, "2026000013")?;
    let issued = m.issue(data, &d, "other-agency")?;
    m.valid(
        "valid-second-agency",
        "issued by another Fuyang agency with its own seal",
        &issued,
        issued.bytes.clone(),
    )?;
    let d = f.draft(amr, "2026000014")?;
    let issued = m.issue(amr, &d, "status-unknown")?;
    m.valid(
        "valid-status-unknown",
        "verified without any status snapshot: status unknown",
        &issued,
        issued.bytes.clone(),
    )?;
    if let Some(case) = m.cases.last_mut() {
        case.status.clear();
    }

    // ---- envelope and CBOR ----
    m.push("empty-input", "zero bytes", vec![], Code::CborTruncated);
    let mut b = main.bytes.clone();
    b.pop();
    m.push("truncated", "last byte removed", b, Code::CborTruncated);
    let mut b = main.bytes.clone();
    b.push(0x00);
    m.push(
        "trailing-bytes",
        "one byte after the envelope",
        b,
        Code::CborTrailingBytes,
    );
    let mut b = main.bytes.clone();
    b.resize(65_537, 0);
    m.push("too-large", "65,537 bytes", b, Code::TooLarge);
    let mut b = vec![0xd2, 0x9f];
    b.extend_from_slice(&main.bytes[2..]);
    b.push(0xff);
    m.push(
        "indefinite-array",
        "the COSE array with indefinite length",
        b,
        Code::CborIndefiniteLength,
    );
    let mut b = vec![0xd2, 0x98, 0x04];
    b.extend_from_slice(&main.bytes[2..]);
    m.push(
        "non-minimal-array-head",
        "array count 4 written in two bytes",
        b,
        Code::CborNonMinimal,
    );
    let mut b = vec![0xd2, 0x84];
    crate::cbor::write_bytes(&mut b, &parts.protected);
    b.extend_from_slice(&raw::unprotected(&parts.disclosures));
    b.extend_from_slice(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    b.extend_from_slice(&parts.payload);
    m.push(
        "absurd-length",
        "payload length 2^64-1",
        b,
        Code::CborLimitExceeded,
    );
    let mut unprot = raw::unprotected(&parts.disclosures);
    unprot[0] = 0xa2;
    unprot.extend_from_slice(&raw::unprotected(&parts.disclosures[..1])[1..]);
    let b = raw::assemble(
        Some(18),
        &parts.protected,
        &unprot,
        &parts.payload,
        &parts.signature,
    );
    m.push(
        "duplicate-key-unprotected",
        "label -65537 twice in the unprotected header",
        b,
        Code::CborDuplicateKey,
    );
    let b = raw::assemble(
        Some(17),
        &parts.protected,
        &raw::unprotected(&parts.disclosures),
        &parts.payload,
        &parts.signature,
    );
    m.push(
        "wrong-tag-mac0",
        "tagged 17 (COSE_Mac0) instead of 18",
        b,
        Code::CoseWrongTag,
    );
    let b = raw::assemble(
        None,
        &parts.protected,
        &raw::unprotected(&parts.disclosures),
        &parts.payload,
        &parts.signature,
    );
    m.push("untagged", "no COSE_Sign1 tag", b, Code::CoseWrongTag);
    let mut b = vec![0xd2, 0x83];
    crate::cbor::write_bytes(&mut b, &parts.protected);
    b.push(0xa0);
    crate::cbor::write_bytes(&mut b, &parts.payload);
    m.push(
        "array-of-three",
        "signature missing",
        b,
        Code::CoseMalformed,
    );
    let b = raw::assemble(
        Some(18),
        &parts.protected,
        &raw::unprotected(&parts.disclosures),
        &parts.payload,
        &parts.signature[..63],
    );
    m.push(
        "short-signature",
        "63-byte signature",
        b,
        Code::CoseMalformed,
    );

    // ---- headers ----
    let kid = amr.key.public().kid().0;
    let typ = Kind::Certificate.typ();
    let resign = |protected: Vec<u8>, key: &SecretKey| {
        let mut p = parts.clone();
        p.protected = protected;
        p.resign(key)
    };
    m.push(
        "wrong-alg-es256",
        "alg -7 (ES256)",
        resign(raw::protected(-7, &kid, typ)?, &amr.key),
        Code::AlgUnsupported,
    );
    let protected = crate::envelope::encode(&Value::Map(vec![
        (ikey(4), Value::Bytes(kid.to_vec())),
        (ikey(16), Value::Text(typ.into())),
    ]))?;
    m.push(
        "alg-missing",
        "protected header without alg",
        resign(protected, &amr.key),
        Code::HeaderInvalid,
    );
    let protected = crate::envelope::encode(&Value::Map(vec![
        (ikey(1), ikey(-8)),
        (ikey(3), Value::Text("application/cwt".into())),
        (ikey(4), Value::Bytes(kid.to_vec())),
        (ikey(16), Value::Text(typ.into())),
    ]))?;
    m.push(
        "extra-protected-label",
        "content type (3) in the protected header",
        resign(protected, &amr.key),
        Code::HeaderInvalid,
    );
    m.push(
        "short-kid",
        "8-byte kid",
        resign(raw::protected(-8, &kid[..8], typ)?, &amr.key),
        Code::HeaderInvalid,
    );
    m.push(
        "wrong-typ",
        "typ of an e-seal",
        resign(raw::protected(-8, &kid, Kind::Seal.typ())?, &amr.key),
        Code::WrongType,
    );
    m.push(
        "seal-as-certificate",
        "an e-seal object presented as a certificate",
        amr.signed.clone(),
        Code::WrongType,
    );
    let mut protected_ok = vec![0xa3, 0x01, 0x38, 0x07, 0x04];
    crate::cbor::write_bytes(&mut protected_ok, &kid);
    protected_ok.push(0x10);
    let mut typ_item = Vec::new();
    crate::cbor::write_head(&mut typ_item, 3, typ.len() as u64);
    typ_item.extend_from_slice(typ.as_bytes());
    protected_ok.extend_from_slice(&typ_item);
    m.push(
        "non-minimal-alg",
        "alg -8 written as 0x38 0x07",
        resign(protected_ok, &amr.key),
        Code::CborNonMinimal,
    );
    let b = raw::assemble(
        Some(18),
        &parts.protected,
        &[0xa1, 0x03, 0x61, 0x78],
        &parts.payload,
        &parts.signature,
    );
    m.push(
        "unprotected-other-label",
        "unprotected header with label 3",
        b,
        Code::HeaderInvalid,
    );
    let b = raw::assemble(
        Some(18),
        &parts.protected,
        &[0xa1, 0x3a, 0x00, 0x01, 0x00, 0x00, 0x80],
        &parts.payload,
        &parts.signature,
    );
    m.push(
        "disclosures-empty-array",
        "disclosure label with an empty array",
        b,
        Code::HeaderInvalid,
    );

    // ---- key and signature ----
    m.push(
        "unknown-kid",
        "kid of no seal in the bundle",
        resign(raw::protected(-8, &[0x5a; 16], typ)?, &amr.key),
        Code::KidUnknown,
    );
    m.push(
        "kid-of-other-seal",
        "kid of FY-DATA-01, signed by FY-AMR-01",
        resign(
            raw::protected(-8, &data.key.public().kid().0, typ)?,
            &amr.key,
        ),
        Code::SignatureInvalid,
    );
    let mut p = parts.clone();
    if let Some(last) = p.payload.last_mut() {
        *last = b'B';
    }
    m.push(
        "tampered-payload",
        "trust level A changed to B after signing",
        p.assemble(),
        Code::SignatureInvalid,
    );
    let mut p = parts.clone();
    p.signature = non_canonical(&parts.signature);
    m.push(
        "non-canonical-signature",
        "S replaced by S + L",
        p.assemble(),
        Code::SignatureInvalid,
    );

    // ---- claims ----
    let edited = |edit: &dyn Fn(&mut Entries)| -> Result<Vec<u8>, BuildError> {
        let mut p = parts.clone();
        p.payload = edit_map(&parts.payload, |e| edit(e))?;
        Ok(p.resign(&amr.key))
    };
    let mut bad_id = main.claims.id.as_str().to_owned();
    let check = bad_id.pop().unwrap_or('0');
    bad_id.push(if check == '0' { '1' } else { '0' });
    m.push(
        "bad-identifier-check",
        "identifier check character wrong",
        edited(&|e| set(e, tkey("id"), Value::Text(bad_id.clone())))?,
        Code::IdentifierInvalid,
    );
    m.push(
        "bad-predecessor-identifier",
        "prev.id with a wrong check character",
        edited(&|e| {
            set(
                e,
                tkey("prev"),
                Value::Map(vec![
                    (tkey("id"), Value::Text(bad_id.clone())),
                    (tkey("op"), Value::Integer(2.into())),
                ]),
            )
        })?,
        Code::IdentifierInvalid,
    );
    let mut bad_uscc = amr.info.agency.as_str().to_owned();
    let last = bad_uscc.pop().unwrap_or('0');
    bad_uscc.push(if last == '1' { '2' } else { '1' });
    m.push(
        "bad-uscc",
        "iss with a wrong USCC check character",
        edited(&|e| set(e, ikey(1), Value::Text(bad_uscc.clone())))?,
        Code::UsccInvalid,
    );
    // verification.md step 9: every value check (e) comes after the identifier and USCC checks
    // (c, d): a digest of 31 bytes or an over-long short text is not a type error.
    m.push(
        "short-digest-and-bad-identifier",
        "an sd digest of 31 bytes and a wrong identifier check character: the identifier (9c) is judged first",
        edited(&|e| {
            set(e, tkey("id"), Value::Text(bad_id.clone()));
            if let Some((_, Value::Array(digests))) =
                e.iter_mut().find(|(k, _)| *k == tkey("sd"))
                && let Some(Value::Bytes(first)) = digests.first_mut()
            {
                first.truncate(31);
            }
        })?,
        Code::IdentifierInvalid,
    );
    m.push(
        "long-type-name-and-bad-uscc",
        "a type name of 257 bytes and a wrong USCC check character: the USCC (9d) is judged first",
        edited(&|e| {
            set(e, tkey("tn"), Value::Text("x".repeat(257)));
            set(e, ikey(1), Value::Text(bad_uscc.clone()));
        })?,
        Code::UsccInvalid,
    );
    // trust.md §1: a region code is any six digits with a first pair from 11 to 82.
    m.push(
        "region-code-unlisted-province",
        "region 190000 (no province 19 in GB/T 2260, yet a region code): the claims pass, the seal's region differs",
        edited(&|e| {
            set(e, tkey("rc"), Value::Text("190000".into()));
            set(e, ikey(65535), status_claim(Value::Integer(1.into()), "190000"));
        })?,
        Code::SealRegionMismatch,
    );
    m.push(
        "region-code-out-of-range",
        "region 830000: its first two digits are above 82",
        edited(&|e| set(e, tkey("rc"), Value::Text("830000".into())))?,
        Code::ClaimsInvalid,
    );
    m.push(
        "unknown-claim",
        "an extra claim \"x\"",
        edited(&|e| set(e, tkey("x"), Value::Integer(1.into())))?,
        Code::ClaimsInvalid,
    );
    m.push(
        "version-1",
        "\"v\": 1, the format before status lists",
        edited(&|e| set(e, tkey("v"), Value::Integer(1.into())))?,
        Code::ClaimsInvalid,
    );
    m.push(
        "version-3",
        "\"v\": 3",
        edited(&|e| set(e, tkey("v"), Value::Integer(3.into())))?,
        Code::ClaimsInvalid,
    );
    m.push(
        "missing-status-claim",
        "no status claim (65535)",
        edited(&|e| remove(e, &ikey(65535)))?,
        Code::ClaimsInvalid,
    );
    m.push(
        "status-index-beyond-32-bits",
        "status_list idx 2^32",
        edited(&|e| {
            set(
                e,
                ikey(65535),
                status_claim(Value::Integer((1u64 << 32).into()), "341200"),
            )
        })?,
        Code::ClaimsInvalid,
    );
    m.push(
        "status-uri-of-other-region",
        "status_list uri names Jinan's list",
        edited(&|e| {
            set(
                e,
                ikey(65535),
                status_claim(Value::Integer(1.into()), "370100"),
            )
        })?,
        Code::ClaimsInvalid,
    );
    m.push(
        "missing-iss",
        "no iss claim",
        edited(&|e| remove(e, &ikey(1)))?,
        Code::ClaimsInvalid,
    );
    m.push(
        "trust-level-e",
        "lvl \"E\"",
        edited(&|e| set(e, tkey("lvl"), Value::Text("E".into())))?,
        Code::ClaimsInvalid,
    );
    m.push(
        "digests-unsorted",
        "\"sd\" in descending order",
        edited(&|e| {
            if let Some((_, Value::Array(sd))) = e.iter_mut().find(|(k, _)| *k == tkey("sd")) {
                sd.reverse();
            }
        })?,
        Code::ClaimsInvalid,
    );
    m.push(
        "expiry-before-start",
        "exp before nbf",
        edited(&|e| set(e, ikey(4), Value::Integer((T0 + DAY).into())))?,
        Code::ClaimsInvalid,
    );
    m.push(
        "float-in-payload",
        "iat as a float",
        edited(&|e| set(e, ikey(6), Value::Float(1.5)))?,
        Code::CborUnsupported,
    );
    let mut p = parts.clone();
    let extra = [0x63, b'l', b'v', b'l', 0x61, b'A'];
    p.payload[0] += 1;
    p.payload.extend_from_slice(&extra);
    m.push(
        "duplicate-key-payload",
        "\"lvl\" twice in the signed payload",
        p.resign(&amr.key),
        Code::CborDuplicateKey,
    );
    let mut p = parts.clone();
    p.payload[0] = 0xbf;
    p.payload.push(0xff);
    m.push(
        "indefinite-map-payload",
        "signed payload map of indefinite length",
        p.resign(&amr.key),
        Code::CborIndefiniteLength,
    );

    // ---- disclosures ----
    let mut p = parts.clone();
    p.disclosures[0][2] ^= 0x01;
    m.push(
        "tampered-disclosure-salt",
        "one salt byte of a disclosure changed",
        p.assemble(),
        Code::DisclosureMismatch,
    );
    m.push(
        "tampered-disclosure-value",
        "holder.name replaced, salt kept",
        holder_name_replaced(&main, &parts, Suite::Ed25519)?,
        Code::DisclosureMismatch,
    );
    let mut p = parts.clone();
    p.disclosures[1] = vec![0x01];
    m.push(
        "disclosure-malformed",
        "a disclosure that is the integer 1",
        p.assemble(),
        Code::DisclosureMalformed,
    );
    let mut p = parts.clone();
    p.disclosures.push(p.disclosures[0].clone());
    m.push(
        "disclosure-duplicate",
        "the same disclosure twice",
        p.assemble(),
        Code::DisclosureDuplicate,
    );

    // ---- seals ----
    let mut p = parts.clone();
    p.protected = raw::protected(-8, &jinan.key.public().kid().0, typ)?;
    m.push(
        "seal-of-another-region",
        "a Fuyang certificate stamped with a Jinan seal",
        p.resign(&jinan.key),
        Code::SealRegionMismatch,
    );
    let mut p = parts.clone();
    p.protected = raw::protected(-8, &data.key.public().kid().0, typ)?;
    m.push(
        "issuer-mismatch",
        "an AMR certificate stamped with the data bureau's seal",
        p.resign(&data.key),
        Code::IssuerMismatch,
    );
    let d = f.draft(old, "2026000020")?;
    let issued = m.issue(old, &d, "old-seal")?;
    m.push(
        "seal-expired-at-stamping",
        "stamped after the seal's validity ended",
        issued.bytes,
        Code::SealExpired,
    );
    let mut d = f.draft(amr, "2026000021")?;
    d.issued = time(T0 - 60 * DAY)?;
    d.valid_from = d.issued;
    let issued = m.issue(amr, &d, "early")?;
    m.push(
        "seal-not-yet-valid",
        "stamped before the seal's validity began",
        issued.bytes,
        Code::SealNotYetValid,
    );
    let mut d = f.draft(amr2, "2026000022")?;
    d.issued = time(T0 + 120 * DAY)?;
    d.valid_from = d.issued;
    let issued = m.issue(amr2, &d, "after-revocation")?;
    m.push(
        "seal-revoked",
        "stamped after the seal's revocation time",
        issued.bytes,
        Code::SealRevoked,
    );

    // ---- time ----
    let mut d = f.draft(amr, "2026000030")?;
    d.issued = time(NOW + 3600)?;
    d.valid_from = d.issued;
    let issued = m.issue(amr, &d, "future")?;
    m.push(
        "issued-in-future",
        "iat one hour after now",
        issued.bytes,
        Code::IssuedInFuture,
    );
    let mut d = f.draft(amr, "2026000031")?;
    d.valid_from = time(NOW + 10 * DAY)?;
    let issued = m.issue(amr, &d, "not-yet")?;
    m.push(
        "not-yet-valid",
        "nbf ten days after now",
        issued.bytes,
        Code::NotYetValid,
    );
    let mut d = f.draft(amr, "2026000032")?;
    d.valid_until = Some(time(NOW - DAY)?);
    let issued = m.issue(amr, &d, "expired")?;
    m.push(
        "expired",
        "exp one day before now",
        issued.bytes,
        Code::Expired,
    );
    m.push_at(
        "expired-later",
        "the full certificate verified eleven years on, bundle still fresh",
        main.bytes.clone(),
        Code::Expired,
        T0 + 10 * DAY + 10 * YEAR,
        vec![],
    );
    if let Some(case) = m.cases.last_mut() {
        case.code = Code::TrustBundleExpired;
        case.description = "verified after the trust bundle expired: the bundle cannot be used";
    }

    // ---- status ----
    let d = f.draft(amr, "2026000040")?;
    let revoked = m.issue(amr, &d, "revoked")?;
    m.push(
        "status-revoked",
        "listed as 03 revoked in the Fuyang snapshot",
        revoked.bytes.clone(),
        Code::StatusRevoked,
    );
    let d = f.draft(amr, "2026000041")?;
    let suspended = m.issue(amr, &d, "suspended")?;
    m.push(
        "status-suspended",
        "listed as 02 suspended in the Fuyang snapshot",
        suspended.bytes.clone(),
        Code::StatusSuspended,
    );
    let mut d = f.draft(amr, "2026000042")?;
    d.promise_deadline = Some(time(NOW - 10 * DAY)?);
    let broken = m.issue(amr, &d, "promise-broken")?;
    m.push(
        "promise-lapsed",
        "promise deadline passed, no fulfilment recorded",
        broken.bytes.clone(),
        Code::PromiseLapsed,
    );
    let d = f.draft(amr, "2026000200")?;
    let beyond = m.issue(amr, &d, "beyond")?;
    m.cases.push(CertCase {
        name: "promise-lapsed-without-status",
        description: "the fulfilled certificate, verified without snapshots: fulfilment unknown",
        status: vec![],
        now: NOW,
        bytes: fulfilled.bytes.clone(),
        code: Code::PromiseLapsed,
        disclosed: vec![],
    });

    // ---- status lists (status.md §5) ----
    let lists = vec![FUYANG_LIST, "370100-list"];
    let cases: [(&'static str, &'static str, &Issued, Code, Vec<&'static str>); 7] = [
        (
            "list-revoked",
            "index 40 holds 0x01 (revoked) in the Fuyang status list",
            &revoked,
            Code::StatusRevoked,
            lists.clone(),
        ),
        (
            "list-suspended",
            "index 41 holds 0x02 (suspended) in the Fuyang status list",
            &suspended,
            Code::StatusSuspended,
            lists.clone(),
        ),
        (
            "list-promise-open-lapsed",
            "index 42 holds 0x03 (promise not fulfilled) and its deadline has passed",
            &broken,
            Code::PromiseLapsed,
            lists.clone(),
        ),
        (
            "list-promise-fulfilled",
            "deadline passed, index 7 holds 0x00: the promise was fulfilled",
            &fulfilled,
            Code::Ok,
            lists.clone(),
        ),
        (
            "list-over-snapshot",
            "a list (ver 43) says valid where the snapshot says suspended: a list decides before a snapshot",
            &suspended,
            Code::Ok,
            vec!["341200", "341200-list-cleared"],
        ),
        (
            "list-beyond-its-length",
            "index 200 is past the end of a list of 64: status unknown",
            &beyond,
            Code::Ok,
            lists.clone(),
        ),
        (
            "list-expired",
            "the list's exp has passed: it is not used, and the revoked certificate's status is unknown",
            &revoked,
            Code::Ok,
            vec!["341200-list-expired"],
        ),
    ];
    for (name, description, issued, code, status) in cases {
        match code {
            Code::Ok => m.valid(name, description, issued, issued.bytes.clone())?,
            _ => m.push(name, description, issued.bytes.clone(), code),
        }
        if let Some(case) = m.cases.last_mut() {
            case.status = status;
        }
    }
    for (name, file, description) in [
        (
            "list-reserved-value",
            "341200-list-reserved",
            "index 3 holds 0x05, a value the format reserves",
        ),
        (
            "list-two-bits",
            "341200-list-bits-2",
            "a list of 2 bits per entry",
        ),
        (
            "list-wrong-uri",
            "341200-list-wrong-sub",
            "sub names another region's list",
        ),
        (
            "list-signed-by-other-root",
            "341200-list-jinan-signed",
            "a Fuyang list signed by Jinan's root",
        ),
        (
            "list-not-zlib",
            "341200-list-not-zlib",
            "lst is not a zlib stream",
        ),
        (
            "list-bytes-after-the-stream",
            "341200-list-trailing-bytes",
            "lst is a whole zlib stream followed by a second one",
        ),
    ] {
        m.push(
            name,
            description,
            revoked.bytes.clone(),
            Code::StatusListInvalid,
        );
        if let Some(case) = m.cases.last_mut() {
            case.status = vec![file];
        }
    }
    Ok(m.cases)
}

/// A certificate's status claim: `{"status_list": {"idx": idx, "uri": <region's list>}}`.
fn status_claim(idx: Value, region: &str) -> Value {
    Value::Map(vec![(
        tkey("status_list"),
        Value::Map(vec![
            (tkey("idx"), idx),
            (
                tkey("uri"),
                Value::Text(format!("urn:tongban:status:{region}")),
            ),
        ]),
    )])
}

/// The name of Fuyang's status list among the vectors' status files.
const FUYANG_LIST: &str = "341200-list";

/// A CBOR map entry.
type Entry = (ciborium::Value, ciborium::Value);

/// A status list of `length` entries, valid but for `entries`, as `root` signs it; `edit`
/// changes the payload's CBOR value before signing (for lists that must not load).
fn status_list(
    region: &crate::ids::RegionCode,
    root: &SecretKey,
    length: u32,
    entries: &[(u32, u8)],
    expires: u64,
    edit: &dyn Fn(&mut Vec<Entry>),
) -> Result<Vec<u8>, BuildError> {
    use crate::trust::StatusListToken;
    let mut packed = vec![0u8; length.div_ceil(2) as usize];
    for &(index, value) in entries {
        let byte = packed
            .get_mut(index as usize / 2)
            .ok_or_else(|| BuildError::Invalid(format!("index {index} beyond {length}")))?;
        *byte |= if index.is_multiple_of(2) {
            value
        } else {
            value << 4
        };
    }
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut encoder, &packed)
        .map_err(|e| BuildError::Invalid(e.to_string()))?;
    let list = encoder
        .finish()
        .map_err(|e| BuildError::Invalid(e.to_string()))?;
    let token = StatusListToken {
        region: region.clone(),
        version: 42,
        issued: time(NOW - DAY)?,
        expires: time(expires)?,
        ttl: 300,
        list,
    };
    let payload = token.payload()?;
    let value: ciborium::Value = ciborium::from_reader(payload.as_slice())
        .map_err(|e| BuildError::Invalid(e.to_string()))?;
    let ciborium::Value::Map(mut entries) = value else {
        return Err(BuildError::Invalid("payload is not a map".into()));
    };
    edit(&mut entries);
    let payload = crate::encode::map_bytes(entries)?;
    crate::envelope::seal(crate::envelope::Kind::StatusList, root, payload, &[])
}

/// The status lists of the vectors: Fuyang's, which agrees with its snapshot; Jinan's, empty;
/// and Fuyang variants that must and must not load.
fn status_lists(f: &TestFederation) -> Result<Vec<(&'static str, Vec<u8>)>, BuildError> {
    use crate::encode::{entry, text, uint};
    let fuyang = &f.fuyang.certificate.region;
    let root = &f.fuyang.root;
    let listed = [(40, 0x01), (41, 0x02), (42, 0x03)];
    let later = NOW + DAY;
    let replace = |key: ciborium::Value, value: ciborium::Value| {
        move |entries: &mut Vec<Entry>| {
            for (k, v) in entries.iter_mut() {
                if *k == key {
                    *v = value.clone();
                }
            }
        }
    };
    let inner = |bits: u64, lst: Vec<u8>| {
        crate::encode::map(vec![
            entry("bits", uint(bits)),
            entry("lst", crate::encode::bytes(&lst)),
        ])
    };
    // Fuyang's lists are 64 entries long; `edit` changes the payload before it is signed.
    let fy = |entries: &[(u32, u8)], expires: u64, edit: &dyn Fn(&mut Vec<Entry>)| {
        status_list(fuyang, root, 64, entries, expires, edit)
    };
    let status_list_of = |value: ciborium::Value| replace(ciborium::Value::from(65533), value);
    // The zlib stream of nothing, under a list of 2 bits.
    let two_bits = inner(2, vec![0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])?;
    let not_zlib = inner(4, vec![1, 2, 3, 4])?;
    let other_sub = replace(ciborium::Value::from(2), text("urn:tongban:status:370100"));
    // A later state of the log (ver 43) in which nothing is listed any more.
    let newer = replace(text("ver"), uint(43));
    // A whole stream of 32 valid entries, then a second stream.
    let zlib = |raw: &[u8]| -> Result<Vec<u8>, BuildError> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, raw).map_err(|e| BuildError::Invalid(e.to_string()))?;
        e.finish().map_err(|e| BuildError::Invalid(e.to_string()))
    };
    let mut followed = zlib(&[0; 32])?;
    followed.extend(zlib(&[0x11; 32])?);
    let trailing = inner(4, followed)?;
    let jinan = &f.jinan.certificate.region;
    Ok(vec![
        (FUYANG_LIST, fy(&listed, later, &|_| {})?),
        (
            "370100-list",
            status_list(jinan, &f.jinan.root, 16, &[], later, &|_| {})?,
        ),
        ("341200-list-cleared", fy(&[], later, &newer)?),
        ("341200-list-expired", fy(&listed, NOW - 1, &|_| {})?),
        ("341200-list-reserved", fy(&[(3, 0x05)], later, &|_| {})?),
        (
            "341200-list-bits-2",
            fy(&[], later, &status_list_of(two_bits))?,
        ),
        ("341200-list-wrong-sub", fy(&[], later, &other_sub)?),
        (
            "341200-list-jinan-signed",
            status_list(fuyang, &f.jinan.root, 64, &listed, later, &|_| {})?,
        ),
        (
            "341200-list-not-zlib",
            fy(&[], later, &status_list_of(not_zlib))?,
        ),
        (
            "341200-list-trailing-bytes",
            fy(&[], later, &status_list_of(trailing))?,
        ),
    ])
}

/// The identifiers the Fuyang snapshot lists: revoked, suspended, and the fulfilled promise.
fn snapshot_ids(f: &TestFederation) -> Result<[Identifier; 3], BuildError> {
    let agency = &f.amr().info.agency;
    Ok([
        identifier(crate::testkit::BUSINESS_LICENCE, agency, "2026000040")?,
        identifier(crate::testkit::BUSINESS_LICENCE, agency, "2026000041")?,
        identifier(crate::testkit::BUSINESS_LICENCE, agency, "2026000007")?,
    ])
}

/// `issued` (split into `parts`) with its holder.name disclosure replaced by another name under
/// the same salt, digested in `suite`: a disclosure its claims do not commit.
fn holder_name_replaced(
    issued: &Issued,
    parts: &Parts,
    suite: Suite,
) -> Result<Vec<u8>, BuildError> {
    let holder = issued
        .disclosures
        .iter()
        .position(|d| d.name.as_str() == "holder.name")
        .unwrap_or(0);
    let mut p = parts.clone();
    let salt: [u8; 16] = p.disclosures[holder][2..18].try_into().unwrap_or([0; 16]);
    p.disclosures[holder] = crate::cert::Disclosure::new(
        suite,
        salt,
        field("holder.name")?,
        FieldValue::Text("冒名顶替有限公司".into()),
    )?
    .bytes;
    Ok(p.assemble())
}

/// A bundle case loaded at [`NOW`], pinning no federation key.
fn bundle_case(
    name: &'static str,
    description: &'static str,
    bytes: Vec<u8>,
    code: Code,
) -> BundleCase {
    BundleCase {
        name,
        description,
        bytes,
        now: NOW,
        pinned: None,
        code,
    }
}

fn bundle_cases(f: &TestFederation, bundle: &[u8]) -> Result<Vec<BundleCase>, BuildError> {
    let case = bundle_case;
    let contents = f.contents()?;
    let mut cases = vec![case(
        "bundle-valid",
        "the standard bundle, published by Fuyang",
        bundle.to_vec(),
        Code::Ok,
    )];
    cases.push(case(
        "bundle-by-federation-root",
        "the same contents signed by the federation root",
        contents.sign(&f.federation)?,
        Code::Ok,
    ));
    let mut expired = case(
        "bundle-expired",
        "loaded at its expiry time",
        bundle.to_vec(),
        Code::TrustBundleExpired,
    );
    expired.now = contents.expires.seconds();
    cases.push(expired);
    let mut pinned = case(
        "bundle-pinned-match",
        "federation root pinned by kid",
        bundle.to_vec(),
        Code::Ok,
    );
    pinned.pinned = Some(f.federation.public().kid());
    cases.push(pinned);
    let mut other = case(
        "bundle-pinned-other-root",
        "a different federation root is pinned",
        bundle.to_vec(),
        Code::TrustBundleUntrusted,
    );
    other.pinned = Some(key("another federation")?.public().kid());
    cases.push(other);
    let mut p = Parts::of(bundle, Kind::TrustBundle)?;
    p.signature[0] ^= 1;
    cases.push(case(
        "bundle-signature-invalid",
        "bundle signature altered",
        p.assemble(),
        Code::TrustBundleInvalid,
    ));
    cases.push(case(
        "bundle-signed-by-seal",
        "bundle signed by an e-seal key",
        contents.sign(&f.amr().key)?,
        Code::TrustBundleInvalid,
    ));
    let mut c = contents.clone();
    let mut region = Parts::of(&c.regions[1], Kind::Region)?;
    if let Some(last) = region.payload.last_mut() {
        *last ^= 1;
    }
    c.regions[1] = region.assemble();
    cases.push(case(
        "bundle-tampered-region",
        "a region certificate altered after signing",
        c.sign(&f.fuyang.root)?,
        Code::TrustBundleInvalid,
    ));
    let mut c = contents.clone();
    let seal = Parts::of(&f.amr().signed, Kind::Seal)?;
    let mut moved = seal.clone();
    moved.protected = raw::protected(-8, &f.jinan.root.public().kid().0, Kind::Seal.typ())?;
    c.seals[0] = moved.resign(&f.jinan.root);
    cases.push(case(
        "bundle-seal-signed-by-other-region",
        "a Fuyang seal signed by Jinan's root",
        c.sign(&f.fuyang.root)?,
        Code::TrustBundleInvalid,
    ));
    let mut c = contents.clone();
    let mut weak = seal.clone();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    weak.payload = edit_map(&seal.payload, |e| {
        set(e, tkey("pk"), Value::Bytes(identity.to_vec()))
    })?;
    c.seals[0] = weak.resign(&f.fuyang.root);
    cases.push(case(
        "bundle-weak-seal-key",
        "a seal whose key is the identity point",
        c.sign(&f.fuyang.root)?,
        Code::WeakKey,
    ));
    let mut c = contents.clone();
    c.regions.push(c.regions[0].clone());
    cases.push(case(
        "bundle-duplicate-region",
        "region 341200 certified twice",
        c.sign(&f.fuyang.root)?,
        Code::TrustBundleInvalid,
    ));
    let mut c = contents.clone();
    c.seals.retain(|s| s != &f.fuyang.seals[2].signed);
    cases.push(case(
        "bundle-revocation-of-unknown-seal",
        "revocation for a seal not in the bundle",
        c.sign(&f.fuyang.root)?,
        Code::TrustBundleInvalid,
    ));
    let mut c = contents.clone();
    c.seals.push(c.seals[0].clone());
    cases.push(case(
        "bundle-duplicate-seal",
        "the same seal twice",
        c.sign(&f.fuyang.root)?,
        Code::TrustBundleInvalid,
    ));
    // Step 7 (uniqueness) comes after step 6 for every seal: a duplicate before a weak seal is
    // still WEAK_KEY.
    let weak_seal = weak.resign(&f.fuyang.root);
    let mut c = contents.clone();
    c.seals.push(c.seals[0].clone());
    c.seals.push(weak_seal);
    cases.push(case(
        "bundle-duplicate-seal-then-weak-key",
        "the same seal twice, then a seal whose key is the identity point: every seal's step 6 comes before step 7",
        c.sign(&f.fuyang.root)?,
        Code::WeakKey,
    ));
    // Keys that are no acceptable encoding (encoding.md §2.2): invalid, not weak, even when they
    // would decompress to a small-order point.
    let mut non_canonical_identity = [0xffu8; 32];
    non_canonical_identity[0] = 0xee;
    non_canonical_identity[31] = 0x7f;
    let mut signed_identity = [0u8; 32];
    signed_identity[0] = 1;
    signed_identity[31] = 0x80;
    let off_curve = (2u8..=255)
        .map(|y| {
            let mut b = [0u8; 32];
            b[0] = y;
            b
        })
        .find(|b| {
            crate::keys::PublicKey::from_bytes(b) == Err(crate::keys::KeyError::Invalid)
                && !ed25519_on_curve(b)
        })
        .ok_or_else(|| BuildError::Invalid("no off-curve y below 256".into()))?;
    for (name, description, pk) in [
        (
            "bundle-non-canonical-identity-seal-key",
            "a seal key encoding y = p + 1 (the identity once reduced): not canonical",
            non_canonical_identity,
        ),
        (
            "bundle-signed-identity-seal-key",
            "a seal key encoding the identity with the sign bit set (x = 0): not canonical",
            signed_identity,
        ),
        (
            "bundle-off-curve-seal-key",
            "a seal key whose y gives no curve point",
            off_curve,
        ),
    ] {
        let mut bad = seal.clone();
        bad.payload = edit_map(&seal.payload, |e| {
            set(e, tkey("pk"), Value::Bytes(pk.to_vec()))
        })?;
        let mut c = contents.clone();
        c.seals[0] = bad.resign(&f.fuyang.root);
        cases.push(case(
            name,
            description,
            c.sign(&f.fuyang.root)?,
            Code::TrustBundleInvalid,
        ));
    }
    Ok(cases)
}

/// Whether the 32 bytes decompress to a curve point at all (canonical or not).
fn ed25519_on_curve(bytes: &[u8; 32]) -> bool {
    curve25519_dalek::edwards::CompressedEdwardsY(*bytes)
        .decompress()
        .is_some()
}

/// Generates every vector.
pub fn generate() -> Result<VectorSet, BuildError> {
    let f = TestFederation::standard()?;
    let bundle = f.bundle()?;
    let [revoked, suspended, fulfilled] = snapshot_ids(&f)?;
    let mut status = vec![
        (
            "341200",
            f.fuyang_snapshot(&revoked, &suspended, &fulfilled)?,
        ),
        ("370100", f.jinan_snapshot()?),
    ];
    status.extend(status_lists(&f)?);
    let sm2 = TestFederation::of(Suite::Sm2)?;
    let mut bundles = bundle_cases(&f, &bundle)?;
    bundles.extend(suite_bundle_cases(&f, &sm2)?);
    Ok(VectorSet {
        keys: keys(&f),
        certificates: certificate_cases(&f)?,
        bundles,
        suites: vec![suite_set(&sm2)?],
        copies: crate::testkit::sharing::copy_cases()?,
        proofs: crate::testkit::sharing::proof_cases()?,
        bundle,
        status,
    })
}

/// The set of `f`'s suite (sm2, the only other one, which the case names say): a few
/// certificates of each kind of failure the suite changes.
fn suite_set(f: &TestFederation) -> Result<SuiteSet, BuildError> {
    let [revoked, suspended, fulfilled] = snapshot_ids(f)?;
    let status = vec![
        (
            "341200",
            f.fuyang_snapshot(&revoked, &suspended, &fulfilled)?,
        ),
        ("370100", f.jinan_snapshot()?),
    ];
    let suite = f.federation.suite();
    let mut m = Maker { cases: Vec::new() };
    let amr = f.amr();
    let main = m.issue(amr, &f.draft(amr, "2026000001")?, "main")?;
    m.valid(
        "sm2-valid-full-disclosure",
        "business licence with all six fields disclosed, sealed in the suite",
        &main,
        main.bytes.clone(),
    )?;
    m.valid(
        "sm2-valid-holder-name-only",
        "the same certificate disclosing only holder.name",
        &main,
        present(&main.bytes, keep(&["holder.name"]))
            .map_err(|e| BuildError::Invalid(e.to_string()))?,
    )?;
    let parts = Parts::of(&main.bytes, Kind::Certificate)?;
    let mut p = parts.clone();
    p.signature[10] ^= 0x01;
    m.push(
        "sm2-signature-altered",
        "one bit of r flipped",
        p.assemble(),
        Code::SignatureInvalid,
    );
    let mut p = parts.clone();
    p.signature[32..].fill(0);
    m.push(
        "sm2-signature-s-zero",
        "s = 0, outside [1, n - 1]",
        p.assemble(),
        Code::SignatureInvalid,
    );
    let mut p = parts.clone();
    p.payload[20] ^= 0x01;
    m.push(
        "sm2-payload-altered",
        "one payload bit flipped after signing",
        p.assemble(),
        Code::SignatureInvalid,
    );
    m.push(
        "sm2-tampered-disclosure-value",
        "holder.name replaced, salt kept: its digest is not committed",
        holder_name_replaced(&main, &parts, suite)?,
        Code::DisclosureMismatch,
    );
    let kid = amr.key.public().kid().0;
    let typ = Kind::Certificate.typ();
    let mut p = parts.clone();
    p.protected = raw::protected(-8, &kid, typ)?;
    m.push(
        "sm2-header-names-eddsa",
        "signed by the seal's key over a header naming EdDSA: the key is of another suite",
        p.resign(&amr.key),
        Code::AlgUnsupported,
    );
    let mut p = parts.clone();
    p.protected = raw::protected(-7, &kid, typ)?;
    m.push(
        "sm2-header-names-es256",
        "alg -7 (ES256): neither suite",
        p.resign(&amr.key),
        Code::AlgUnsupported,
    );
    Ok(SuiteSet {
        suite,
        keys: keys(f),
        bundle: f.bundle()?,
        status,
        certificates: m.cases,
        log: log_vectors(suite)?,
    })
}

/// Bundle cases across suites: each suite's bundle loads; a key of the other suite in it does not.
fn suite_bundle_cases(
    ed: &TestFederation,
    sm2: &TestFederation,
) -> Result<Vec<BundleCase>, BuildError> {
    let case = bundle_case;
    // A seal of `into`'s first region whose key is `from`'s suite, signed by `into`'s root.
    let foreign_seal =
        |into: &TestFederation, from: &TestFederation| -> Result<Vec<u8>, BuildError> {
            let mut info = into.amr().info.clone();
            info.key = from.amr().key.public().clone();
            info.sign(&into.fuyang.root)
        };
    let mut cases = vec![case(
        "sm2-bundle-valid",
        "the test federation in the sm2 suite, published by Fuyang",
        sm2.bundle()?,
        Code::Ok,
    )];
    let mut c = sm2.contents()?;
    c.seals[0] = foreign_seal(sm2, ed)?;
    cases.push(case(
        "sm2-bundle-with-ed25519-seal",
        "an sm2 federation whose FY-AMR-01 seal holds an Ed25519 key",
        c.sign(&sm2.fuyang.root)?,
        Code::TrustBundleInvalid,
    ));
    let mut c = ed.contents()?;
    c.seals[0] = foreign_seal(ed, sm2)?;
    cases.push(case(
        "bundle-with-sm2-seal",
        "an ed25519 federation whose FY-AMR-01 seal holds an SM2 key",
        c.sign(&ed.fuyang.root)?,
        Code::TrustBundleInvalid,
    ));
    Ok(cases)
}

pub use crate::conformance::{run_bundle, run_certificate};

/// The identifier a verifier reports for a certificate case of code `code` (verification.md §1):
/// the claims' `"id"` once step 9 has passed, whatever fails later, else none. Read with
/// `inspect`, which verifies nothing, so it does not depend on the verifier under test.
pub fn reported_id(bytes: &[u8], code: Code) -> Option<String> {
    let before_claims = matches!(
        code,
        Code::TooLarge
            | Code::CborTruncated
            | Code::CborTrailingBytes
            | Code::CborIndefiniteLength
            | Code::CborNonMinimal
            | Code::CborDuplicateKey
            | Code::CborUnsupported
            | Code::CborLimitExceeded
            | Code::CborMalformed
            | Code::CoseWrongTag
            | Code::CoseMalformed
            | Code::HeaderInvalid
            | Code::AlgUnsupported
            | Code::WrongType
            | Code::KidUnknown
            | Code::SignatureInvalid
            | Code::ClaimsInvalid
            | Code::IdentifierInvalid
            | Code::UsccInvalid
            | Code::TrustBundleInvalid
            | Code::TrustBundleExpired
            | Code::TrustBundleUntrusted
            | Code::WeakKey
            | Code::StatusSnapshotInvalid
            | Code::StatusListInvalid
    );
    if before_claims {
        return None;
    }
    crate::cert::inspect(bytes)
        .ok()
        .and_then(|i| i.claims.ok())
        .map(|c| c.id.as_str().to_owned())
}
