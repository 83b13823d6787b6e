//! Two region nodes of one federation, in one process, through the service functions the
//! federation transport calls (specs/sharing.md): verification proofs, purpose-bound copies and a
//! transfer, each logged on both sides and replayed by an auditor afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use tongban_core::cert::Claims;

use tongban_core::cert::verify::{StatusSource, StatusView};
use tongban_core::cert::{FieldName, Holder, HolderIdType, TrustLevel, present};
use tongban_core::codes::Code;
use tongban_core::ids::{Identifier, RegionCode, TypeCode, Uscc};
use tongban_core::keys::KeyId;
use tongban_core::log::audit::{AuditInput, replay_many};
use tongban_core::log::entry::{Act, LogEntry, ShareOutcome};
use tongban_core::sharing::{ProofExpectation, ProofRequest, verify_proof};
use tongban_core::status::State;
use tongban_core::suite::Suite;
use tongban_core::trust::{
    BundleContents, FederationRoot, MediaType, SealId, SealType, StatusEntry, StatusTable,
    TrustStore,
};
use tongban_core::values::{ShortText, Time};
use tongban_node::config::HttpConfig;
use tongban_node::home::{Home, InitOptions, init};
use tongban_node::keyfile;
use tongban_node::receipts::Receipts;
use tongban_node::refusal::Refusal;
use tongban_node::region::{
    CertificateSpec, EvidencePolicy, Lineage, PeerStatus, PeerVerifier, Region, SealSpec,
    ShareAnswer, ShareAsk, now,
};

const FUYANG_AMR: &str = "11341200MB0000001F";
const JINAN_APPROVAL: &str = "11370100MB0000003G";
const JINAN_OTHER: &str = "11370100MB00000093";
const BUSINESS_LICENCE: &str = "11100000000013338W001";
const HOLDER_USCC: &str = "91341200MA2T00001L";

struct Node {
    region: Arc<Region>,
    receipts: Receipts,
}

fn open(dir: &Path, code: &str, name: &str, federation_key: &Path) -> Node {
    let home = Home::new(dir);
    init(
        &home,
        &InitOptions {
            region: code,
            name,
            federation_name: "tongban.test",
            federation_key: Some(federation_key),
            suite: keyfile::read(federation_key).unwrap().suite(),
            http: HttpConfig::default(),
            now: now().unwrap(),
        },
    )
    .unwrap();
    let region = Arc::new(Region::open(&home).unwrap());
    let receipts = Receipts::start(region.clone()).unwrap();
    Node { region, receipts }
}

fn uscc(text: &str) -> Uscc {
    Uscc::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn text(t: &str) -> ShortText {
    ShortText::new(t).unwrap()
}

/// Registers `agency` and gives it a seal (with `share_types` as its sharing scope).
fn seal(node: &Node, agency: &str, id: &str, share_types: &[&str]) -> KeyId {
    node.region
        .credentials
        .register(&uscc(agency), &format!("机构{id}"))
        .unwrap();
    let (info, _) = node
        .region
        .create_seal(SealSpec {
            agency: uscc(agency),
            agency_name: text(&format!("机构{id}")),
            id: SealId::parse(id).unwrap(),
            seal_type: SealType::Approval,
            name: text("行政审批专用章"),
            valid_from: None,
            valid_until: Time::new(2_000_000_000).unwrap(),
            picture: b"png".to_vec(),
            media_type: MediaType::Png,
            share_types: share_types
                .iter()
                .map(|t| TypeCode::parse(t).unwrap())
                .collect(),
        })
        .unwrap();
    info.key.kid()
}

fn spec(seal: KeyId) -> CertificateSpec {
    CertificateSpec {
        seal,
        type_name: text("营业执照"),
        valid_from: None,
        valid_until: None,
        level: TrustLevel::A,
        promise_deadline: None,
        holder: Holder {
            name: text("阜阳市通办示范科技有限公司"),
            id_type: HolderIdType::Uscc,
            id_number: HOLDER_USCC.into(),
        },
        licence: vec![(
            FieldName::parse("licence.registered_capital").unwrap(),
            tongban_core::cert::FieldValue::Text("1000万元人民币".into()),
        )],
        decoys: 2,
    }
}

/// The federation's trust: both regions' roots and seals, signed by the federation root.
fn federation(key: &Path, nodes: &[&Node]) -> TrustStore {
    let root = keyfile::read(key).unwrap();
    let (mut regions, mut seals, mut revocations) = (Vec::new(), Vec::new(), Vec::new());
    for node in nodes {
        let elements = node.region.trust_elements().unwrap();
        regions.push(elements.region_certificate);
        seals.extend(elements.seals);
        revocations.extend(elements.revocations);
    }
    let now = now().unwrap();
    let bundle = BundleContents {
        version: 1,
        issued: now,
        expires: Time::new(now.seconds() + 3600).unwrap(),
        federation: FederationRoot {
            name: text("tongban.test"),
            key: root.public().clone(),
        },
        regions,
        seals,
        revocations,
    }
    .sign(&root)
    .unwrap();
    TrustStore::load(&bundle, now, Some(root.public().kid())).unwrap()
}

fn entry_at(node: &Node, index: u64) -> LogEntry {
    LogEntry::open(&node.region.log().entry(index).unwrap().unwrap())
        .unwrap()
        .1
}

fn code(region: &str) -> RegionCode {
    RegionCode::parse(region).unwrap()
}

struct World {
    _dir: tempfile::TempDir,
    key: std::path::PathBuf,
    fuyang: Node,
    jinan: Node,
    trust: TrustStore,
    /// Fuyang's AMR seal; Jinan's approval seal (scope: business licences) and another agency's
    /// seal without a scope.
    amr: KeyId,
    approval: KeyId,
    unscoped: KeyId,
}

fn world(suite: Suite) -> World {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("federation-root.key");
    keyfile::write(&key, &keyfile::generate(suite).unwrap()).unwrap();
    let fuyang = open(&dir.path().join("fuyang"), "341200", "阜阳市", &key);
    let jinan = open(&dir.path().join("jinan"), "370100", "济南市", &key);
    let amr = seal(&fuyang, FUYANG_AMR, "FY-AMR-1", &[]);
    let approval = seal(&jinan, JINAN_APPROVAL, "JN-SP-1", &[BUSINESS_LICENCE]);
    let unscoped = seal(&jinan, JINAN_OTHER, "JN-OTHER-1", &[]);
    let trust = federation(&key, &[&fuyang, &jinan]);
    World {
        _dir: dir,
        key,
        fuyang,
        jinan,
        trust,
        amr,
        approval,
        unscoped,
    }
}

/// What a node whose replicas lag far behind knows: every region's seals, and of their status
/// only what it is told.
struct Lagging {
    trust: TrustStore,
    status: Arc<std::sync::RwLock<StatusTable>>,
}

/// What the lagging peer knows, read when asked.
struct LaggingStatus(Arc<std::sync::RwLock<StatusTable>>);

impl StatusSource for LaggingStatus {
    fn view(&self, claims: &Claims, now: Time) -> StatusView {
        self.0.read().unwrap().view(claims, now)
    }

    fn promise_fulfilled(&self, claims: &Claims, now: Time) -> bool {
        StatusSource::promise_fulfilled(&*self.0.read().unwrap(), claims, now)
    }
}

impl PeerStatus for LaggingStatus {
    fn transferred_out(&self, id: &Identifier) -> bool {
        self.0.read().unwrap().listed_state(id.as_str()) == Some(State::TransferredOut)
    }

    fn failed(&self) -> Result<(), Refusal> {
        Ok(())
    }
}

impl Lagging {
    fn new(w: &World) -> Lagging {
        Lagging {
            trust: federation(&w.key, &[&w.fuyang, &w.jinan]),
            status: Default::default(),
        }
    }

    fn learn(&self, region: &RegionCode, id: &Identifier, state: State) {
        let since = now().unwrap();
        let entry = StatusEntry {
            id: id.clone(),
            state,
            since,
            note: None,
        };
        self.status.write().unwrap().record(region, entry, since);
    }
}

impl PeerVerifier for Lagging {
    fn verify(&self, bytes: &[u8], now: Time) -> Result<tongban_core::cert::Verification, Refusal> {
        Ok(tongban_core::cert::verify(
            bytes,
            &self.trust,
            &*self.status.read().unwrap(),
            now,
        ))
    }

    fn status(&self, _now: Time) -> Result<Box<dyn PeerStatus>, Refusal> {
        Ok(Box::new(LaggingStatus(self.status.clone())))
    }
}

fn issue(w: &World, serial: &str) -> (Identifier, Vec<u8>) {
    let issued = w
        .fuyang
        .region
        .issue(
            FUYANG_AMR,
            Lineage::New {
                type_code: TypeCode::parse(BUSINESS_LICENCE).unwrap(),
                serial: serial.into(),
            },
            spec(w.amr),
        )
        .unwrap();
    (issued.id, issued.bytes)
}

/// Jinan asks Fuyang for a proof of `certificate` (its disclosures stripped).
async fn ask_proof(w: &World, certificate: &[u8], nonce: [u8; 16]) -> Vec<u8> {
    ask_proof_raw(w, &present(certificate, |_| false).unwrap(), nonce).await
}

async fn ask_proof_raw(w: &World, certificate: &[u8], nonce: [u8; 16]) -> Vec<u8> {
    let request = ProofRequest {
        certificate: certificate.to_vec(),
        nonce,
    }
    .encode()
    .unwrap();
    w.fuyang
        .region
        .answer_verification_request(&w.fuyang.receipts, w.jinan.region.code(), &request, None)
        .await
        .unwrap()
}

fn audit(nodes: &[&Node]) -> Vec<tongban_core::log::audit::AuditReport> {
    let logs: Vec<(String, Vec<Vec<u8>>, Vec<u8>)> = nodes
        .iter()
        .map(|n| {
            let size = n.region.log().size().unwrap();
            let bundle = n.region.view().unwrap().bundle.as_ref().clone();
            (
                n.region.log_vkey().unwrap(),
                n.region.log().entries(0..size).unwrap(),
                bundle,
            )
        })
        .collect();
    let inputs: Vec<AuditInput<'_>> = logs
        .iter()
        .map(|(vkey, entries, bundle)| AuditInput {
            log_key: vkey,
            trust_bundle: bundle,
            entries,
            checkpoints: &[],
            hash_tiles: &[],
        })
        .collect();
    replay_many(&inputs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_is_answered_logged_on_both_sides_and_verifies_offline() {
    for suite in Suite::ALL {
        a_proof_is_answered_logged_on_both_sides_and_verifies_offline_in(suite).await;
    }
}

async fn a_proof_is_answered_logged_on_both_sides_and_verifies_offline_in(suite: Suite) {
    let w = world(suite);
    let (id, bytes) = issue(&w, "2026000001");
    let nonce = [7; 16];
    let proof = ask_proof(&w, &bytes, nonce).await;
    let expect = ProofExpectation {
        requester: w.jinan.region.code(),
        nonce: Some(nonce),
        witnesses: &[],
        quorum: 0,
    };
    let verified = verify_proof(&proof, &w.trust, now().unwrap(), &expect).unwrap();
    assert_eq!(verified.item.code, Code::Ok);
    assert_eq!(verified.item.id.as_ref(), Some(&id));
    assert_eq!(verified.item.state, Some(State::Valid));
    assert!(verified.issuance.is_some());
    // Fuyang logged the answer in a receipt batch, counted as given to another region.
    let batch = entry_at(&w.fuyang, verified.receipts_index);
    assert!(matches!(
        batch.act,
        Act::Receipts {
            cross_region: 1,
            ..
        }
    ));
    // Jinan logs the evidence; a wrong nonce or a tampered proof is refused and not logged.
    let policy = EvidencePolicy {
        nonce: Some(nonce),
        ..EvidencePolicy::default()
    };
    let (_, index) = w
        .jinan
        .region
        .record_verification_evidence(&proof, &w.trust, &policy)
        .unwrap();
    let Act::ProofReceived { from, code, .. } = entry_at(&w.jinan, index).act else {
        panic!("a proof.received entry")
    };
    assert_eq!((from, code), (code_of("341200"), Code::Ok));
    let size = w.jinan.region.log().size().unwrap();
    let other = EvidencePolicy {
        nonce: Some([8; 16]),
        ..EvidencePolicy::default()
    };
    let refused = w
        .jinan
        .region
        .record_verification_evidence(&proof, &w.trust, &other)
        .unwrap_err();
    assert_eq!(refused.code, "PROOF_MISMATCH");
    let mut tampered = proof.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let refused = w
        .jinan
        .region
        .record_verification_evidence(&tampered, &w.trust, &policy)
        .unwrap_err();
    assert_eq!(refused.code, "SIGNATURE_INVALID");
    assert_eq!(w.jinan.region.log().size().unwrap(), size);
    // A certificate Fuyang never logged gets an answer without log evidence.
    let proof = ask_proof_raw(&w, b"\xa0", [9; 16]).await;
    let expect = ProofExpectation {
        nonce: Some([9; 16]),
        ..expect
    };
    let verified = verify_proof(&proof, &w.trust, now().unwrap(), &expect).unwrap();
    assert_eq!(verified.item.code, Code::CoseWrongTag);
    assert!(verified.issuance.is_none());
    for report in audit(&[&w.fuyang, &w.jinan]) {
        assert!(report.is_clean(), "{:?}", report.findings);
    }
}

fn code_of(region: &str) -> RegionCode {
    code(region)
}

fn ask(w: &World, seal: KeyId, id: &Identifier, fields: &[&str]) -> ShareAsk {
    ShareAsk {
        seal,
        to: w.fuyang.region.code().clone(),
        id: id.clone(),
        fields: fields
            .iter()
            .map(|f| FieldName::parse(f).unwrap())
            .collect(),
        purpose: text("企业跨省迁移登记"),
        case: text("JN-2026-000123"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_is_given_to_an_authorised_agency_and_refusals_are_logged() {
    for suite in Suite::ALL {
        a_copy_is_given_to_an_authorised_agency_and_refusals_are_logged_in(suite).await;
    }
}

async fn a_copy_is_given_to_an_authorised_agency_and_refusals_are_logged_in(suite: Suite) {
    let w = world(suite);
    let (id, _) = issue(&w, "2026000002");
    let fields = ["holder.name", "licence.registered_capital"];
    let request = w
        .jinan
        .region
        .share_request(JINAN_APPROVAL, ask(&w, w.approval, &id, &fields))
        .unwrap();
    let ShareAnswer::Given { copy, log_index } = w
        .fuyang
        .region
        .answer_share_request(&request, &w.trust, w.jinan.region.code())
        .unwrap()
    else {
        panic!("the authorised agency gets its copy")
    };
    let Act::ShareAnswered {
        requester, outcome, ..
    } = entry_at(&w.fuyang, log_index).act
    else {
        panic!("a share.answered entry")
    };
    assert_eq!(requester, code("370100"));
    assert!(matches!(outcome, ShareOutcome::Given { .. }));
    // The recipient records it; nobody else may.
    let (verification, received) = w
        .jinan
        .region
        .record_copy_received(&copy, &w.trust, JINAN_APPROVAL)
        .unwrap();
    assert_eq!(verification.code, Code::Ok);
    let names: Vec<String> = verification
        .certificate
        .unwrap()
        .disclosed
        .iter()
        .map(|(n, _)| n.as_str().to_owned())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(matches!(
        entry_at(&w.jinan, received).act,
        Act::ShareReceived { .. }
    ));
    let wrong = w
        .jinan
        .region
        .record_copy_received(&copy, &w.trust, JINAN_OTHER)
        .unwrap_err();
    assert_eq!(wrong.code, "COPY_WRONG_RECIPIENT");

    // An agency whose seal has no sharing scope: refused, and the refusal is in Fuyang's log.
    let request = w
        .jinan
        .region
        .share_request(JINAN_OTHER, ask(&w, w.unscoped, &id, &fields))
        .unwrap();
    let ShareAnswer::Refused { failure, log_index } = w
        .fuyang
        .region
        .answer_share_request(&request, &w.trust, w.jinan.region.code())
        .unwrap()
    else {
        panic!("refused")
    };
    assert_eq!(failure.code, Code::ShareNotAuthorised);
    let Act::ShareAnswered {
        outcome, agency, ..
    } = entry_at(&w.fuyang, log_index).act
    else {
        panic!("a share.answered entry")
    };
    assert_eq!(outcome, ShareOutcome::Refused(Code::ShareNotAuthorised));
    assert_eq!(agency.as_str(), JINAN_OTHER);
    // A field the certificate does not have; an identifier Fuyang never issued.
    let request = w
        .jinan
        .region
        .share_request(
            JINAN_APPROVAL,
            ask(&w, w.approval, &id, &["licence.not_there"]),
        )
        .unwrap();
    let answer = w
        .fuyang
        .region
        .answer_share_request(&request, &w.trust, w.jinan.region.code())
        .unwrap();
    assert!(
        matches!(answer, ShareAnswer::Refused { ref failure, .. } if failure.code == Code::ShareFieldUnavailable)
    );
    let unknown = Identifier::new(
        TypeCode::parse(BUSINESS_LICENCE).unwrap(),
        tongban_core::ids::IssuerCode::Uscc(uscc(FUYANG_AMR)),
        "2026999999",
        "001",
    )
    .unwrap();
    let request = w
        .jinan
        .region
        .share_request(JINAN_APPROVAL, ask(&w, w.approval, &unknown, &fields))
        .unwrap();
    let answer = w
        .fuyang
        .region
        .answer_share_request(&request, &w.trust, w.jinan.region.code())
        .unwrap();
    assert!(
        matches!(answer, ShareAnswer::Refused { ref failure, .. } if failure.code == Code::CertificateNotLogged)
    );
    // A request nobody can authenticate is refused and not logged.
    let size = w.fuyang.region.log().size().unwrap();
    let mut forged = request.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let refused = w
        .fuyang
        .region
        .answer_share_request(&forged, &w.trust, w.jinan.region.code())
        .unwrap_err();
    assert_eq!(refused.code, "SIGNATURE_INVALID");
    assert_eq!(w.fuyang.region.log().size().unwrap(), size);
    // A genuine request relayed by another region's node: the copy would go to that node.
    let refused = w
        .fuyang
        .region
        .answer_share_request(&request, &w.trust, &code("110000"))
        .unwrap_err();
    assert_eq!(refused.code, "REGION_MISMATCH");
    assert_eq!(w.fuyang.region.log().size().unwrap(), size);
    // Only the seal's own agency may sign with it.
    let refused = w
        .jinan
        .region
        .share_request(JINAN_OTHER, ask(&w, w.approval, &id, &fields))
        .unwrap_err();
    assert_eq!(refused.code, "FORBIDDEN");
    let reports = audit(&[&w.fuyang, &w.jinan]);
    for report in &reports {
        assert!(report.is_clean(), "{:?}", report.findings);
    }
    let s = &reports[0].statistics;
    assert_eq!((s.shares_given, s.shares_given_cross_region), (1, 1));
    assert_eq!(s.shares_refused.values().sum::<u64>(), 3);
    assert_eq!(reports[1].statistics.copies_received_cross_region, 1);
}

/// Jinan asks Fuyang to accept the transfer of `certificate` (specs/sharing.md §5.2).
async fn ask_transfer(w: &World, certificate: &[u8], nonce: [u8; 16]) -> Vec<u8> {
    let request = ProofRequest {
        certificate: present(certificate, |_| false).unwrap(),
        nonce,
    }
    .encode()
    .unwrap();
    w.fuyang
        .region
        .answer_transfer_request(&w.fuyang.receipts, w.jinan.region.code(), &request, None)
        .await
        .unwrap()
}

/// Jinan takes `certificate` in with Fuyang's answer to its transfer request.
fn take_in(
    w: &World,
    certificate: &[u8],
    serial: &str,
    proof: &[u8],
    nonce: [u8; 16],
) -> Result<tongban_node::region::IssuedCertificate, Refusal> {
    let prepared = w.jinan.region.prepare_transfer_in(
        JINAN_APPROVAL,
        certificate,
        serial.into(),
        spec(w.approval),
    )?;
    let policy = EvidencePolicy {
        nonce: Some(nonce),
        ..EvidencePolicy::default()
    };
    w.jinan
        .region
        .complete_transfer_in(prepared, proof, &w.trust, &policy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_is_transferred_out_and_in_and_both_logs_agree() {
    for suite in Suite::ALL {
        a_certificate_is_transferred_out_and_in_and_both_logs_agree_in(suite).await;
    }
}

async fn a_certificate_is_transferred_out_and_in_and_both_logs_agree_in(suite: Suite) {
    let w = world(suite);
    let (id, bytes) = issue(&w, "2026000003");
    let jinan = w.jinan.region.code().clone();
    // Not transferred yet: Fuyang accepts nothing, and Jinan cannot take it in.
    let proof = ask_transfer(&w, &bytes, [1; 16]).await;
    let refused = take_in(&w, &bytes, "2026100003", &proof, [1; 16]).unwrap_err();
    assert_eq!(refused.code, "TRANSFER_NOT_CONFIRMED");
    // Transferred out to itself: refused; to Jinan: state 06.
    let own = w
        .fuyang
        .region
        .transfer_out(FUYANG_AMR, &id, code("341200"), None)
        .unwrap_err();
    assert_eq!(own.code, "REGION_MISMATCH");
    let (state, _) = w
        .fuyang
        .region
        .transfer_out(FUYANG_AMR, &id, jinan.clone(), Some(text("企业迁址")))
        .unwrap();
    assert_eq!(state, State::TransferredOut);
    // A plain proof of the transfer out is not an acceptance: Fuyang could still cancel.
    let plain = ask_proof(&w, &bytes, [2; 16]).await;
    let refused = take_in(&w, &bytes, "2026100003", &plain, [2; 16]).unwrap_err();
    assert_eq!(refused.code, "TRANSFER_NOT_CONFIRMED");
    // Asked to accept, Fuyang logs the acceptance (operation 11) and proves it.
    let proof = ask_transfer(&w, &bytes, [3; 16]).await;
    // Another nonce than the one Jinan sent: refused.
    let refused = take_in(&w, &bytes, "2026100003", &proof, [4; 16]).unwrap_err();
    assert_eq!(refused.code, "PROOF_MISMATCH");
    let issued = take_in(&w, &bytes, "2026100003", &proof, [3; 16]).unwrap();
    assert_eq!(issued.id.type_code().as_str(), BUSINESS_LICENCE);
    assert_eq!(issued.id.issuer().as_str(), JINAN_APPROVAL);
    let Act::CertIssued {
        operation,
        predecessor,
        ..
    } = entry_at(&w.jinan, issued.log_index).act
    else {
        panic!("cert.issued")
    };
    assert_eq!((operation, predecessor), (8, Some(id.clone())));
    assert!(matches!(
        entry_at(&w.jinan, issued.log_index - 1).act,
        Act::ProofReceived {
            code: Code::StatusTransferredOut,
            ..
        }
    ));
    // Fuyang can no longer take the transfer back.
    let cancel = w
        .fuyang
        .region
        .change_status(
            FUYANG_AMR,
            &id,
            tongban_core::status::Operation::CancelTransferOut,
            None,
        )
        .unwrap_err();
    assert_eq!(cancel.code, "TRANSITION_NOT_ALLOWED");
    // Asked again, Fuyang accepts nothing new and proves the same acceptance.
    let size = w.fuyang.region.log().size().unwrap();
    let again = ask_transfer(&w, &bytes, [5; 16]).await;
    let added: Vec<Act> = (size..w.fuyang.region.log().size().unwrap())
        .map(|i| entry_at(&w.fuyang, i).act)
        .collect();
    assert!(
        added.iter().all(|a| matches!(a, Act::Receipts { .. })),
        "{added:?}"
    );
    // The same predecessor twice: refused before anything is logged.
    let size = w.jinan.region.log().size().unwrap();
    let twice = w
        .jinan
        .region
        .prepare_transfer_in(
            JINAN_APPROVAL,
            &bytes,
            "2026100004".into(),
            spec(w.approval),
        )
        .err()
        .unwrap();
    assert_eq!(twice.code, "TRANSITION_NOT_ALLOWED");
    assert_eq!(w.jinan.region.log().size().unwrap(), size);
    let proven = verify_proof(
        &again,
        &w.trust,
        now().unwrap(),
        &ProofExpectation {
            requester: &jinan,
            nonce: Some([5; 16]),
            witnesses: &[],
            quorum: 0,
        },
    )
    .unwrap();
    assert_eq!(proven.accepted_for(), Some(&jinan));

    // Jinan's replica of Fuyang may lag: Jinan's own log says it took the predecessor in.
    let lagging = Arc::new(Lagging::new(&w));
    w.jinan.region.attach_peers(lagging.clone());
    let verified = |node: &Node, bytes: &[u8]| node.region.verify(bytes).unwrap().0.code;
    assert_eq!(verified(&w.jinan, &bytes), Code::StatusTransferredOut);
    assert_eq!(verified(&w.jinan, &issued.bytes), Code::Ok);
    // A third region that knows both regions' seals and nothing yet of Fuyang's transfer: the
    // predecessor looks valid there, so the successor is not.
    let suqian = open(&w._dir.path().join("suqian"), "321300", "宿迁市", &w.key);
    suqian.region.attach_peers(lagging.clone());
    assert_eq!(verified(&suqian, &bytes), Code::Ok);
    assert_eq!(verified(&suqian, &issued.bytes), Code::TransferUnconfirmed);
    // Once it learns the predecessor left Fuyang, the successor is valid and the predecessor not.
    lagging.learn(&code("341200"), &id, State::TransferredOut);
    assert_eq!(verified(&suqian, &bytes), Code::StatusTransferredOut);
    assert_eq!(verified(&suqian, &issued.bytes), Code::Ok);
    for report in audit(&[&w.fuyang, &w.jinan]) {
        assert!(report.is_clean(), "{:?}", report.findings);
    }
}
