//! A two-region world for the sharing tests and vectors: Fuyang's log with issued certificates (one
//! transferred out to Jinan), and helpers that answer proof requests and share requests the way a
//! node does (specs/sharing.md §3.2, §4.2), from the fixed test keys.

use crate::cbor::Key;
use crate::cert::{self, Draft, FieldName, Issued};
use crate::codes::Code;
use crate::encode::{bytes, entry, map_bytes, text as text_value, uint};
use crate::envelope::BuildError;
use crate::envelope::{Envelope, Kind, seal};
use crate::fields::Fields;
use crate::ids::RegionCode;
use crate::keys::SecretKey;
use crate::log::audit::{AuditInput, AuditReport, replay};
use crate::log::checkpoint::Checkpoint;
use crate::log::entry::{Act, LogEntry};
use crate::log::note::{NoteRole, NoteVerifier};
use crate::log::proof::MemoryTree;
use crate::log::receipt::Receipt;
use crate::log::state::RegionState;
use crate::log::verification::{VerificationReceipt, batch};
use crate::sharing::Party;
use crate::sharing::copy::CopyContents;
use crate::sharing::presentation::{PresentationCode, PresentationRequest};
use crate::sharing::proof::{ProofContents, answer_item};
use crate::sharing::request::ShareRequest;
use crate::status::{Operation, State, Termination};
use crate::testkit::{
    DAY, FOOD_PERMIT, NOW, SeededSalts, T0, TestFederation, TestSeal, identifier, key, text, time,
};
use crate::trust::{StatusEntry, StatusTable, TrustStore};
use crate::values::Time;

/// Fuyang's log origin in this world.
pub const ORIGIN: &str = "tongban.example/341200/log/1";

fn invalid(e: impl std::fmt::Display) -> BuildError {
    BuildError::Invalid(e.to_string())
}

/// A region log kept in memory with its tree and log key.
pub struct LogFixture {
    pub origin: String,
    pub key: SecretKey,
    pub entries: Vec<Vec<u8>>,
    tree: MemoryTree,
}

impl LogFixture {
    pub fn new(origin: &str, key_name: &str) -> Result<LogFixture, BuildError> {
        let key = key(key_name)?;
        Ok(LogFixture {
            origin: origin.to_owned(),
            tree: MemoryTree::new(key.suite()),
            key,
            entries: Vec::new(),
        })
    }

    pub fn append(&mut self, entry: Vec<u8>) -> Result<u64, BuildError> {
        self.tree.append(&entry).map_err(invalid)?;
        self.entries.push(entry);
        Ok(self.entries.len() as u64 - 1)
    }

    pub fn vkey(&self) -> Result<String, BuildError> {
        NoteVerifier::new(&self.origin, NoteRole::Log, self.key.public().clone())
            .map(|v| v.to_vkey())
            .map_err(invalid)
    }

    /// A checkpoint of the whole log, signed by the log key.
    pub fn checkpoint(&self) -> Result<String, BuildError> {
        let size = self.tree.size();
        Checkpoint {
            origin: self.origin.clone(),
            size,
            root: self.tree.root(size).map_err(invalid)?,
        }
        .sign(&self.origin, &self.key)
        .map_err(invalid)
    }

    /// The offline receipt of entry `index` against `checkpoint` (of the whole log).
    pub fn receipt(&self, index: u64, checkpoint: &str) -> Result<Receipt, BuildError> {
        let entry = self
            .entries
            .get(index as usize)
            .ok_or_else(|| invalid(format!("no entry {index}")))?;
        Ok(Receipt {
            entry: entry.clone(),
            index,
            proof: self
                .tree
                .inclusion_proof(index, self.tree.size())
                .map_err(invalid)?,
            checkpoint: checkpoint.to_owned(),
        })
    }
}

/// Fuyang answering Jinan, with everything the tests need.
pub struct World {
    pub f: TestFederation,
    pub bundle: Vec<u8>,
    /// The bundle, loaded at [`NOW`].
    pub trust: TrustStore,
    /// Business licence `2026000001`: Jinan's seal may ask for its fields.
    pub licence: Issued,
    /// Food permit `2026000002`: a type outside Jinan's sharing scope.
    pub permit: Issued,
    /// Business licence `2026000005`, transferred out to Jinan.
    pub moved: Issued,
    pub log: LogFixture,
    pub state: RegionState,
}

impl World {
    pub fn new() -> Result<World, BuildError> {
        let f = TestFederation::standard()?;
        let bundle = f.bundle()?;
        let trust = TrustStore::load(&bundle, time(NOW)?, None).map_err(invalid)?;
        let amr = f.amr();
        let issue = |draft: &Draft, label: &str| {
            cert::issue(draft, &amr.info, &amr.key, &mut SeededSalts::new(label))
        };
        let licence = issue(&f.draft(amr, "2026000001")?, "sharing licence")?;
        let mut permit = f.draft(amr, "2026000002")?;
        permit.id = identifier(FOOD_PERMIT, &amr.info.agency, "2026000002")?;
        permit.type_name = text("食品经营许可证")?;
        let permit = issue(&permit, "sharing permit")?;
        let moved = issue(&f.draft(amr, "2026000005")?, "sharing moved")?;
        let root = f.fuyang.root.public().clone();
        let mut world = World {
            state: RegionState::new(f.fuyang.certificate.region.clone(), root),
            log: LogFixture::new(ORIGIN, "log 341200")?,
            f,
            bundle,
            trust,
            licence,
            permit,
            moved,
        };
        let registered = Act::SealRegistered {
            seal: world.f.amr().signed.clone(),
        };
        world.append(T0 + DAY, registered, Signer::Root)?;
        let seal = world.f.amr().key.public().kid();
        let acts: Vec<(u64, Act)> = [&world.licence, &world.permit, &world.moved]
            .into_iter()
            .map(|issued| {
                let act = Act::CertIssued {
                    id: issued.claims.id.clone(),
                    digest: issued.digest,
                    seal,
                    issued: issued.claims.issued,
                    operation: 1,
                    predecessor: None,
                    promise_deadline: None,
                    status_index: issued.claims.status_index,
                };
                (issued.claims.issued.seconds(), act)
            })
            .collect();
        for (at, act) in acts {
            world.append(at, act, Signer::Amr)?;
        }
        let out = Act::StatusChanged {
            id: world.moved.claims.id.clone(),
            operation: Operation::Terminate(Termination::TransferOut),
            to: State::TransferredOut,
            reason: None,
            destination: Some(world.jinan().clone()),
        };
        world.append(T0 + 111 * DAY, out, Signer::Amr)?;
        Ok(world)
    }

    pub fn fuyang(&self) -> &RegionCode {
        &self.f.fuyang.certificate.region
    }

    pub fn jinan(&self) -> &RegionCode {
        &self.f.jinan.certificate.region
    }

    /// Jinan's approval seal, whose scope covers business licences.
    pub fn jinan_seal(&self) -> &TestSeal {
        &self.f.jinan.seals[0]
    }

    /// The auditor's replay of everything appended, against the world's bundle.
    pub fn audit(&self) -> Result<AuditReport, BuildError> {
        let vkey = self.log.vkey()?;
        Ok(replay(&AuditInput {
            log_key: &vkey,
            trust_bundle: &self.bundle,
            entries: &self.log.entries,
            checkpoints: &[],
            hash_tiles: &[],
        }))
    }

    /// Signs `act` as of `at` and appends it to Fuyang's log, through the log's rules.
    pub fn append(&mut self, at: u64, act: Act, signer: Signer) -> Result<u64, BuildError> {
        let key = match signer {
            Signer::Root => &self.f.fuyang.root,
            Signer::Amr => &self.f.amr().key,
        };
        let entry = LogEntry {
            region: self.fuyang().clone(),
            at: time(at)?,
            act,
        }
        .sign(key)?;
        self.state.apply(&entry).map_err(invalid)?;
        self.log.append(entry)
    }

    /// Fuyang's live status, from its log.
    pub fn status(&self) -> StatusTable {
        let mut table = StatusTable::default();
        for (id, record) in self.state.certs() {
            let entry = StatusEntry {
                id: id.clone(),
                state: record.state,
                since: record.changed,
                note: None,
            };
            table.record(self.fuyang(), entry, record.changed);
        }
        table
    }

    /// Fuyang answers a proof request from `requester` at `at` (specs/sharing.md §3.2): the
    /// receipt item is logged in a batch of one.
    pub fn answer_proof(
        &mut self,
        certificate: &[u8],
        requester: &RegionCode,
        nonce: [u8; 16],
        at: u64,
    ) -> Result<Vec<u8>, BuildError> {
        let now = time(at)?;
        let verification = cert::verify(certificate, &self.trust, &self.status(), now);
        let record = verification
            .claims
            .as_ref()
            .and_then(|c| self.state.cert(c.id.as_str()))
            .cloned();
        let request = crate::sharing::ProofRequest {
            certificate: certificate.to_vec(),
            nonce,
        };
        let item = answer_item(
            self.trust.suite(),
            self.fuyang(),
            &request,
            &verification,
            record.as_ref(),
            requester,
            now,
        );
        let receipt = self.log_receipt(item.encode()?, requester != self.fuyang(), at)?;
        let checkpoint = self.log.checkpoint()?;
        let logged = record.filter(|r| Some(r.digest) == verification.digest);
        let issuance = logged
            .as_ref()
            .map(|r| self.log.receipt(r.issued_at_index, &checkpoint))
            .transpose()?;
        let status = match (&logged, &item.id) {
            (Some(record), Some(id)) => self
                .latest_status(id.as_str())
                .filter(|(_, to)| *to == record.state)
                .map(|(index, _)| self.log.receipt(index, &checkpoint))
                .transpose()?,
            _ => None,
        };
        ProofContents {
            region: self.fuyang().clone(),
            receipt,
            log_key: self.log.vkey()?,
            issuance,
            status,
        }
        .sign(&self.f.fuyang.root)
    }

    /// Logs a receipts batch of the one encoded item in Fuyang's log at `at` and returns the
    /// item's encoded receipt.
    fn log_receipt(
        &mut self,
        item_bytes: Vec<u8>,
        cross_region: bool,
        at: u64,
    ) -> Result<Vec<u8>, BuildError> {
        let tree = batch(
            crate::suite::Suite::Ed25519,
            std::slice::from_ref(&item_bytes),
        )
        .map_err(invalid)?;
        let receipts = Act::Receipts {
            count: 1,
            root: tree.root,
            cross_region: u64::from(cross_region),
        };
        let log_index = self.append(at, receipts, Signer::Root)?;
        VerificationReceipt {
            item: item_bytes,
            index: 0,
            path: tree.paths.into_iter().next().unwrap_or_default(),
            entry: self
                .log
                .entries
                .get(log_index as usize)
                .cloned()
                .ok_or_else(|| invalid("the receipts entry"))?,
            log_index,
        }
        .encode()
    }

    /// A proof that `issued` is valid and logged, whose issuance receipt is for the entry at
    /// `issuance` of Fuyang's log, whatever that entry is (the log rules are not applied to it:
    /// for proofs whose logged evidence is broken).
    pub fn prove_logged(
        &mut self,
        issued: &Issued,
        issuance: u64,
        requester: &RegionCode,
        nonce: [u8; 16],
        at: u64,
    ) -> Result<Vec<u8>, BuildError> {
        let item = crate::log::verification::ReceiptItem {
            region: self.fuyang().clone(),
            at: time(at)?,
            digest: issued.digest,
            id: Some(issued.claims.id.clone()),
            valid: true,
            code: Code::Ok,
            state: Some(State::Valid),
            requester: Some(requester.clone()),
            nonce: Some(nonce),
        };
        let receipt = self.log_receipt(item.encode()?, true, at)?;
        let checkpoint = self.log.checkpoint()?;
        ProofContents {
            region: self.fuyang().clone(),
            receipt,
            log_key: self.log.vkey()?,
            issuance: Some(self.log.receipt(issuance, &checkpoint)?),
            status: None,
        }
        .sign(&self.f.fuyang.root)
    }

    /// The latest `cert.status` entry of `id`: its index and resulting state.
    pub fn latest_status(&self, id: &str) -> Option<(u64, State)> {
        self.log
            .entries
            .iter()
            .enumerate()
            .rev()
            .find_map(|(index, bytes)| match LogEntry::open(bytes).ok()?.1.act {
                Act::StatusChanged { id: ref i, to, .. } if i.as_str() == id => {
                    Some((index as u64, to))
                }
                _ => None,
            })
    }

    /// A share request from `seal` for `fields` of `id`, made at `at`.
    pub fn request(
        &self,
        seal: &TestSeal,
        to: &RegionCode,
        id: &crate::ids::Identifier,
        fields: &[&str],
        at: u64,
    ) -> Result<Vec<u8>, BuildError> {
        let mut names = fields
            .iter()
            .map(|n| FieldName::parse(n).ok_or_else(|| invalid(n)))
            .collect::<Result<Vec<_>, _>>()?;
        names.sort();
        ShareRequest {
            to: to.clone(),
            id: id.clone(),
            fields: names,
            purpose: text("企业跨省迁移登记")?,
            case: text("JN-2026-000123")?,
            at: time(at)?,
            nonce: *blake3::hash(format!("nonce {at} {fields:?}").as_bytes())
                .as_bytes()
                .first_chunk::<16>()
                .ok_or_else(|| invalid("nonce"))?,
        }
        .sign(&seal.key)
    }

    /// A presentation request from `seal` for the code `code` of region `to`, made at `at`.
    pub fn presentation_request(
        &self,
        seal: &TestSeal,
        to: &RegionCode,
        code: &str,
        at: u64,
    ) -> Result<Vec<u8>, BuildError> {
        let code = PresentationCode::parse(code).map_err(invalid)?;
        PresentationRequest {
            to: to.clone(),
            code: code.digest(self.trust.suite()),
            purpose: text("亮证核验：企业开户")?,
            case: text("JN-2026-000456")?,
            at: time(at)?,
            nonce: *blake3::hash(format!("presentation nonce {at}").as_bytes())
                .as_bytes()
                .first_chunk::<16>()
                .ok_or_else(|| invalid("nonce"))?,
        }
        .sign(&seal.key)
    }

    /// Fuyang's copy of `fields` of `stored` answering the presentation request `request`,
    /// made at `issued`, valid for `days`.
    pub fn presentation_copy(
        &self,
        request: &[u8],
        stored: &Issued,
        fields: &[&str],
        issued: u64,
        days: u64,
    ) -> Result<Vec<u8>, BuildError> {
        let names = fields
            .iter()
            .map(|n| FieldName::parse(n).ok_or_else(|| invalid(n)))
            .collect::<Result<Vec<_>, _>>()?;
        CopyContents::of(
            self.fuyang().clone(),
            request.to_vec(),
            &stored.bytes,
            &names,
            time(issued)?,
            time(issued + days * DAY)?,
        )?
        .sign(&self.f.fuyang.root)
    }

    /// Fuyang's copy of `stored` for `request`, made at `issued`, valid for `days`.
    pub fn copy(
        &self,
        request: &[u8],
        stored: &Issued,
        issued: u64,
        days: u64,
    ) -> Result<Vec<u8>, BuildError> {
        let opened = ShareRequest::open(request, &self.trust).map_err(invalid)?;
        CopyContents::of(
            self.fuyang().clone(),
            request.to_vec(),
            &stored.bytes,
            &opened.request.fields,
            time(issued)?,
            time(issued + days * DAY)?,
        )?
        .sign(&self.f.fuyang.root)
    }
}

/// The parts of a signed proof, read without any check: to make broken proofs from valid ones.
pub fn proof_parts(proof: &[u8]) -> Result<ProofContents, BuildError> {
    let envelope = Envelope::open(proof, Kind::VerificationProof).map_err(invalid)?;
    let mut f = Fields::whole(envelope.payload).map_err(|b| invalid(b.detail))?;
    let bad = |b: crate::fields::Bad| invalid(b.detail);
    let receipt = |t: Option<&str>| t.map(|t| Receipt::parse(t).map_err(invalid)).transpose();
    Ok(ProofContents {
        region: RegionCode::parse(f.text(Key::Text("rc")).map_err(bad)?).map_err(invalid)?,
        receipt: f.bytes(Key::Text("r")).map_err(bad)?.to_vec(),
        log_key: f.text(Key::Text("lk")).map_err(bad)?.to_owned(),
        issuance: receipt(
            f.optional_text(Key::Text("ip"))
                .map_err(|b| invalid(b.detail))?,
        )?,
        status: receipt(
            f.optional_text(Key::Text("sp"))
                .map_err(|b| invalid(b.detail))?,
        )?,
    })
}

/// Encodes and signs `contents` without the producer's checks (which refuse some broken proofs).
pub fn sign_proof_unchecked(
    contents: &ProofContents,
    key: &SecretKey,
) -> Result<Vec<u8>, BuildError> {
    let mut entries = vec![
        entry("v", uint(1)),
        entry("rc", text_value(contents.region.as_str())),
        entry("r", bytes(&contents.receipt)),
        entry("lk", text_value(&contents.log_key)),
    ];
    if let Some(issuance) = &contents.issuance {
        entries.push(entry("ip", text_value(&issuance.to_text())));
    }
    if let Some(status) = &contents.status {
        entries.push(entry("sp", text_value(&status.to_text())));
    }
    seal(Kind::VerificationProof, key, map_bytes(entries)?, &[])
}

/// Which Fuyang key signs an appended entry.
#[derive(Clone, Copy, Debug)]
pub enum Signer {
    Root,
    Amr,
}

/// The time most sharing objects are made at: an hour before [`NOW`].
pub fn made_at() -> u64 {
    NOW - 3600
}

/// A time in range, for tests.
pub fn at(seconds: u64) -> Result<Time, BuildError> {
    time(seconds)
}

/// One purpose-bound copy case of the vectors (specs/vectors/README.md).
pub struct CopyCase {
    pub name: &'static str,
    pub description: &'static str,
    pub now: u64,
    /// Names of the status files to load.
    pub status: Vec<&'static str>,
    pub presenter: Party,
    pub bytes: Vec<u8>,
    pub code: Code,
}

/// One verification proof case of the vectors.
pub struct ProofCase {
    pub name: &'static str,
    pub description: &'static str,
    pub now: u64,
    pub requester: RegionCode,
    pub nonce: Option<[u8; 16]>,
    pub bytes: Vec<u8>,
    /// The code of verifying the proof.
    pub code: Code,
    /// For authentic proofs: the code the proof reports for the certificate.
    pub answer: Option<Code>,
}

const ASKED: &[&str] = &["holder.name", "licence.registered_capital"];

/// The copy cases: a valid copy, and one case per refusal of specs/sharing.md §4.4.
pub fn copy_cases() -> Result<Vec<CopyCase>, BuildError> {
    let w = World::new()?;
    let me = Party {
        region: w.jinan().clone(),
        agency: w.jinan_seal().info.agency.clone(),
    };
    let made = made_at();
    let request = |seal: &TestSeal, to: &RegionCode, id: &crate::ids::Identifier| {
        w.request(seal, to, id, ASKED, made)
    };
    let licence_request = request(w.jinan_seal(), w.fuyang(), &w.licence.claims.id)?;
    let valid = w.copy(&licence_request, &w.licence, made, 30)?;
    let case = |name, description, now, presenter: &Party, bytes: Vec<u8>, code| CopyCase {
        name,
        description,
        now,
        status: Vec::new(),
        presenter: presenter.clone(),
        bytes,
        code,
    };
    let mut cases = vec![
        case(
            "copy-valid",
            "a copy of two fields of a business licence, presented by its recipient",
            NOW,
            &me,
            valid.clone(),
            Code::Ok,
        ),
        case(
            "copy-expired",
            "the same copy at its expiry",
            made + 30 * DAY,
            &me,
            valid.clone(),
            Code::CopyExpired,
        ),
        case(
            "copy-wrong-recipient",
            "the same copy presented by another agency of the recipient's region",
            NOW,
            &Party {
                region: w.jinan().clone(),
                agency: crate::testkit::make_uscc("11370100MB0000009")?,
            },
            valid.clone(),
            Code::CopyWrongRecipient,
        ),
    ];
    // The provider attaches a disclosure the certificate never committed to: the certificate's
    // own step 10 refuses it (not COPY_MISMATCH, although its claims are reported).
    let mut forged = w.licence.clone();
    let needle = "1000万元人民币".as_bytes();
    let at = forged
        .bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .ok_or_else(|| invalid("the disclosed value"))?;
    forged.bytes[at] = b'9';
    cases.push(case(
        "copy-forged-disclosure",
        "the provider attached a disclosure the certificate does not commit to",
        NOW,
        &me,
        w.copy(&licence_request, &forged, made, 30)?,
        Code::DisclosureMismatch,
    ));
    // A copy may be 262,144 bytes, but the request inside it keeps its own limit (sharing.md §1).
    let oversized = CopyContents::of(
        w.fuyang().clone(),
        vec![0xa0; 70_000],
        &w.licence.bytes,
        &ShareRequest::open(&licence_request, &w.trust)
            .map_err(invalid)?
            .request
            .fields,
        time(made)?,
        time(made + 30 * DAY)?,
    )?
    .sign(&w.f.fuyang.root)?;
    cases.push(case(
        "copy-request-over-its-limit",
        "a copy carrying a 70,000-byte request: within the copy's limit, over the request's own",
        NOW,
        &me,
        oversized,
        Code::TooLarge,
    ));
    let mut tampered = valid.clone();
    let at = tampered
        .windows(needle.len())
        .position(|w| w == needle)
        .ok_or_else(|| invalid("the disclosed value"))?;
    tampered[at] = b'9';
    cases.push(case(
        "copy-tampered-field",
        "a disclosed value changed inside the copy",
        NOW,
        &me,
        tampered,
        Code::SignatureInvalid,
    ));
    let permit_request = request(w.jinan_seal(), w.fuyang(), &w.permit.claims.id)?;
    cases.push(case(
        "copy-unauthorised-agency",
        "a copy of a food permit for an agency whose seal's sharing scope covers business licences only",
        NOW,
        &me,
        w.copy(&permit_request, &w.permit, made, 30)?,
        Code::ShareNotAuthorised,
    ));
    let contents = CopyContents::of(
        w.fuyang().clone(),
        licence_request.clone(),
        &w.licence.bytes,
        &ShareRequest::open(&licence_request, &w.trust)
            .map_err(invalid)?
            .request
            .fields,
        time(made)?,
        time(made + 30 * DAY)?,
    )?;
    cases.push(case(
        "copy-wrong-region",
        "a copy claiming to be Fuyang's, signed by Jinan's region root",
        NOW,
        &me,
        contents.sign(&w.f.jinan.root)?,
        Code::RegionMismatch,
    ));
    let mut more = contents.clone();
    more.certificate = cert::present(&w.licence.bytes, |n| {
        [
            "holder.name",
            "holder.id_number",
            "licence.registered_capital",
        ]
        .contains(&n.as_str())
    })
    .map_err(invalid)?;
    cases.push(case(
        "copy-extra-field",
        "a copy disclosing a field that was not requested",
        NOW,
        &me,
        more.sign(&w.f.fuyang.root)?,
        Code::CopyMismatch,
    ));
    // A copy of a certificate the Fuyang snapshot lists as revoked.
    let amr = w.f.amr();
    let revoked = cert::issue(
        &w.f.draft(amr, "2026000040")?,
        &amr.info,
        &amr.key,
        &mut SeededSalts::new("sharing revoked"),
    )?;
    let revoked_request = request(w.jinan_seal(), w.fuyang(), &revoked.claims.id)?;
    cases.push(CopyCase {
        status: vec!["341200"],
        ..case(
            "copy-certificate-revoked",
            "a copy whose certificate the Fuyang status snapshot lists as revoked",
            NOW,
            &me,
            w.copy(&revoked_request, &revoked, made, 30)?,
            Code::StatusRevoked,
        )
    });
    // A holder's presentation code resolved by Jinan's staff (presentation.md §2): the holder
    // chose the certificate and fields, so the seal's sharing scope (business licences only)
    // does not limit it.
    let shown = w.presentation_request(w.jinan_seal(), w.fuyang(), PRESENTED_CODE, made)?;
    cases.push(case(
        "copy-presentation-valid",
        "a copy answering a presentation code: a food permit, outside the resolving seal's sharing scope",
        NOW,
        &me,
        w.presentation_copy(&shown, &w.permit, &["holder.name"], made, 30)?,
        Code::Ok,
    ));
    cases.push(case(
        "copy-presentation-stale",
        "a copy made more than 300 s after the presentation request it answers",
        NOW,
        &me,
        w.presentation_copy(&shown, &w.permit, &["holder.name"], made + 301, 30)?,
        Code::ShareRequestStale,
    ));
    Ok(cases)
}

/// The presentation code of the vectors' presentation copies.
pub const PRESENTED_CODE: &str = "341200-7KQ9M-2XDPT";

/// The proof cases: authentic proofs with three answers, and one case per refusal of
/// specs/sharing.md §3.4 that a proof alone can show.
pub fn proof_cases() -> Result<Vec<ProofCase>, BuildError> {
    let mut w = World::new()?;
    let jinan = w.jinan().clone();
    let strip = |bytes: &[u8]| cert::present(bytes, |_| false).map_err(invalid);
    let nonce = [0x5a; 16];
    let licence = strip(&w.licence.bytes)?;
    let valid = w.answer_proof(&licence, &jinan, nonce, NOW)?;
    let moved = strip(&w.moved.bytes)?;
    let transferred = w.answer_proof(&moved, &jinan, nonce, NOW)?;
    // Fuyang's node accepts Jinan's transfer in (specs/sharing.md §5.2): what Jinan needs.
    w.append(
        NOW,
        Act::StatusChanged {
            id: w.moved.claims.id.clone(),
            operation: crate::status::Operation::AcceptTransfer,
            to: crate::status::State::TransferredOut,
            reason: None,
            destination: Some(jinan.clone()),
        },
        Signer::Root,
    )?;
    let accepted = w.answer_proof(&moved, &jinan, nonce, NOW)?;
    let amr = w.f.amr();
    let forged = cert::issue(
        &w.f.draft(amr, "2026000001")?,
        &amr.info,
        &amr.key,
        &mut SeededSalts::new("sharing forgery"),
    )?;
    let not_logged = w.answer_proof(&strip(&forged.bytes)?, &jinan, nonce, NOW)?;
    // Issuance entries in the log that the log rules would refuse (written past them): a proof
    // relying on one is not evidence of anything.
    let logged_badly = |w: &mut World, serial: &str, signer: &SecretKey, flip: bool| {
        let amr = w.f.amr();
        let issued = cert::issue(
            &w.f.draft(amr, serial)?,
            &amr.info,
            &amr.key,
            &mut SeededSalts::new(serial),
        )?;
        let entry = LogEntry {
            region: w.fuyang().clone(),
            at: time(NOW)?,
            act: Act::CertIssued {
                id: issued.claims.id.clone(),
                digest: issued.digest,
                seal: amr.key.public().kid(),
                issued: issued.claims.issued,
                operation: 1,
                predecessor: None,
                promise_deadline: None,
                status_index: issued.claims.status_index,
            },
        }
        .sign(signer)?;
        let mut parts = crate::testkit::raw::Parts::of(&entry, Kind::LogEntry)?;
        if flip {
            parts.signature[40] ^= 1;
        }
        let index = w.log.append(parts.assemble())?;
        w.prove_logged(&issued, index, &jinan, nonce, NOW)
    };
    // A receipt whose entry is a log entry of the region root, but not a receipts entry; and one
    // whose entry another key signed (log.md §8 steps 4 and 6).
    let with_receipt_entry = |entry: Vec<u8>| -> Result<Vec<u8>, BuildError> {
        let mut parts = proof_parts(&valid)?;
        let mut receipt = VerificationReceipt::decode(&parts.receipt).map_err(invalid)?;
        receipt.entry = entry;
        parts.receipt = receipt.encode()?;
        sign_proof_unchecked(&parts, &w.f.fuyang.root)
    };
    let root_entry = w
        .log
        .entries
        .first()
        .cloned()
        .ok_or_else(|| invalid("no entry"))?;
    let not_receipts = with_receipt_entry(root_entry)?;
    let seal_entry = w
        .log
        .entries
        .iter()
        .find(|e| {
            matches!(
                LogEntry::open(e),
                Ok((
                    _,
                    LogEntry {
                        act: Act::CertIssued { .. },
                        ..
                    }
                ))
            )
        })
        .cloned()
        .ok_or_else(|| invalid("no issuance"))?;
    let by_seal = with_receipt_entry(seal_entry)?;
    let amr_key = SecretKey::from_seed(w.f.amr().key.seed()).map_err(invalid)?;
    let other_seal = SecretKey::from_seed(w.f.fuyang.seals[1].key.seed()).map_err(invalid)?;
    let broken_entry = logged_badly(&mut w, "2026000091", &amr_key, true)?;
    let wrong_signer = logged_badly(&mut w, "2026000092", &other_seal, false)?;
    let case = |name, description, requester: &RegionCode, nonce, bytes: Vec<u8>, code, answer| {
        ProofCase {
            name,
            description,
            now: NOW,
            requester: requester.clone(),
            nonce,
            bytes,
            code,
            answer,
        }
    };
    let mut tampered = valid.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let mut parts = proof_parts(&valid)?;
    let other_log = NoteVerifier::new(ORIGIN, NoteRole::Log, key("another log")?.public().clone())
        .map_err(invalid)?;
    parts.log_key = other_log.to_vkey();
    let rekeyed = sign_proof_unchecked(&parts, &w.f.fuyang.root)?;
    let by_jinan = sign_proof_unchecked(&proof_parts(&valid)?, &w.f.jinan.root)?;
    Ok(vec![
        case(
            "proof-valid",
            "Fuyang vouches for its business licence, with the issuance entry's receipt",
            &jinan,
            Some(nonce),
            valid.clone(),
            Code::Ok,
            Some(Code::Ok),
        ),
        case(
            "proof-transferred-out",
            "Fuyang reports a licence transferred out to Jinan, with the transfer entry's receipt",
            &jinan,
            Some(nonce),
            transferred,
            Code::Ok,
            Some(Code::StatusTransferredOut),
        ),
        case(
            "proof-transfer-accepted",
            "Fuyang reports the licence transferred out to Jinan with the transfer accepted (op 11), the acceptance's receipt as status evidence",
            &jinan,
            Some(nonce),
            accepted,
            Code::Ok,
            Some(Code::StatusTransferredOut),
        ),
        case(
            "proof-not-logged",
            "a certificate stamped with a valid seal that Fuyang's log never recorded",
            &jinan,
            Some(nonce),
            not_logged,
            Code::Ok,
            Some(Code::CertificateNotLogged),
        ),
        case(
            "proof-wrong-nonce",
            "the valid proof checked against another nonce",
            &jinan,
            Some([0xa5; 16]),
            valid.clone(),
            Code::ProofMismatch,
            None,
        ),
        case(
            "proof-wrong-requester",
            "the valid proof presented as an answer to Fuyang itself",
            w.fuyang(),
            Some(nonce),
            valid.clone(),
            Code::ProofMismatch,
            None,
        ),
        case(
            "proof-tampered",
            "the valid proof with a flipped signature bit",
            &jinan,
            Some(nonce),
            tampered,
            Code::SignatureInvalid,
            None,
        ),
        case(
            "proof-other-log-key",
            "a proof whose log key is not the one that signed its checkpoint",
            &jinan,
            Some(nonce),
            rekeyed,
            Code::LogProofInvalid,
            None,
        ),
        case(
            "proof-wrong-region",
            "Fuyang's proof re-signed by Jinan's region root",
            &jinan,
            Some(nonce),
            by_jinan,
            Code::RegionMismatch,
            None,
        ),
        case(
            "proof-receipt-not-a-receipts-entry",
            "the receipt's batch entry is a seal registration signed by Fuyang's root",
            &jinan,
            Some(nonce),
            not_receipts,
            Code::ClaimsInvalid,
            None,
        ),
        case(
            "proof-receipt-entry-not-by-root",
            "the receipt's batch entry is an issuance signed by a seal, not by the region root",
            &jinan,
            Some(nonce),
            by_seal,
            Code::KidUnknown,
            None,
        ),
        case(
            "proof-issuance-entry-bad-signature",
            "the issuance entry in the log proves the certificate, but its seal's signature is broken",
            &jinan,
            Some(nonce),
            broken_entry,
            Code::LogProofInvalid,
            None,
        ),
        case(
            "proof-issuance-entry-signed-by-another-seal",
            "the issuance entry names FY-AMR-01 as its seal but is signed by another Fuyang seal",
            &jinan,
            Some(nonce),
            wrong_signer,
            Code::LogProofInvalid,
            None,
        ),
    ])
}

pub use crate::conformance::{run_copy, run_proof};
