//! Every refusal of specs/sharing.md, each from an object that differs from a valid one in one way.

use super::*;
use crate::cert::{self, Draft, StatusView};
use crate::keys::SecretKey;
use crate::log::checkpoint;
use crate::log::note::{NoteRole, NoteVerifier};
use crate::log::verification::VerificationReceipt;
use crate::status::State;
use crate::testkit::sharing::{World, made_at, proof_parts, sign_proof_unchecked};
use crate::testkit::{DAY, NOW, SeededSalts, key, make_uscc, succeed, time};
use crate::trust::StatusTable;

type R = Result<(), Box<dyn std::error::Error>>;

const LICENCE_FIELDS: &[&str] = &["holder.name", "licence.registered_capital"];

fn jinan_agency(w: &World) -> Party {
    Party {
        region: w.jinan().clone(),
        agency: w.jinan_seal().info.agency.clone(),
    }
}

/// A copy of the licence for Jinan's approval bureau, made an hour ago, valid 30 days.
fn licence_copy(w: &World) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let request = w.request(
        w.jinan_seal(),
        w.fuyang(),
        &w.licence.claims.id,
        LICENCE_FIELDS,
        made_at(),
    )?;
    Ok(w.copy(&request, &w.licence, made_at(), 30)?)
}

fn copy_code(w: &World, copy: &[u8], now: u64, presenter: &Party) -> Code {
    let now = time(now).unwrap_or_else(|e| panic!("{e}"));
    verify_copy(copy, &w.trust, &StatusTable::default(), now, presenter).code
}

#[test]
fn a_copy_verifies_for_its_recipient_with_exactly_the_requested_fields() -> R {
    let w = World::new()?;
    let copy = licence_copy(&w)?;
    let result = verify_copy(
        &copy,
        &w.trust,
        &StatusTable::default(),
        time(NOW)?,
        &jinan_agency(&w),
    );
    assert_eq!(result.code, Code::Ok, "{}", result.detail);
    assert!(result.is_valid());
    assert_eq!(result.provider.as_ref(), Some(w.fuyang()));
    let inner = result.certificate.ok_or("the certificate was verified")?;
    let names: Vec<&str> = inner.disclosed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 2);
    for name in LICENCE_FIELDS {
        assert!(names.contains(name), "{name} disclosed");
    }
    let request = result.request.ok_or("the request decoded")?;
    assert_eq!(request.purpose().as_str(), "企业跨省迁移登记");
    assert_eq!(result.recipient.map(|r| r.0), Some(jinan_agency(&w)));
    // The inspection shows the same without any trust.
    let inspection = inspect_copy(&copy)?;
    assert_eq!(inspection.region, *w.fuyang());
    assert_eq!(inspection.request?.id(), Some(&w.licence.claims.id));
    Ok(())
}

#[test]
fn a_copy_presented_by_another_party_is_refused() -> R {
    let w = World::new()?;
    let copy = licence_copy(&w)?;
    let other_agency = Party {
        region: w.jinan().clone(),
        agency: make_uscc("11370100MB0000009")?,
    };
    let other_region = Party {
        region: w.fuyang().clone(),
        agency: w.jinan_seal().info.agency.clone(),
    };
    for presenter in [other_agency, other_region] {
        assert_eq!(
            copy_code(&w, &copy, NOW, &presenter),
            Code::CopyWrongRecipient
        );
    }
    Ok(())
}

#[test]
fn a_copy_is_refused_from_its_expiry_on() -> R {
    let w = World::new()?;
    let copy = licence_copy(&w)?;
    let expiry = made_at() + 30 * DAY;
    let me = jinan_agency(&w);
    assert_eq!(copy_code(&w, &copy, expiry - 1, &me), Code::Ok);
    assert_eq!(copy_code(&w, &copy, expiry, &me), Code::CopyExpired);
    // Made in the future (beyond the clock tolerance).
    assert_eq!(
        copy_code(&w, &copy, made_at() - 301, &me),
        Code::IssuedInFuture
    );
    Ok(())
}

#[test]
fn a_tampered_copy_fails_its_signature() -> R {
    let w = World::new()?;
    let copy = licence_copy(&w)?;
    let me = jinan_agency(&w);
    // A byte of a disclosed value ("1000万元人民币" → another amount) inside the signed payload.
    let needle = "1000万元人民币".as_bytes();
    let at = copy
        .windows(needle.len())
        .position(|w| w == needle)
        .ok_or("the disclosed value is in the copy")?;
    let mut tampered = copy.clone();
    tampered[at] = b'9';
    assert_eq!(copy_code(&w, &tampered, NOW, &me), Code::SignatureInvalid);
    let mut signature = copy.clone();
    let last = signature.len() - 1;
    signature[last] ^= 1;
    assert_eq!(copy_code(&w, &signature, NOW, &me), Code::SignatureInvalid);
    Ok(())
}

#[test]
fn a_copy_signed_by_the_wrong_key_or_for_the_wrong_region_is_refused() -> R {
    let w = World::new()?;
    let request = w.request(
        w.jinan_seal(),
        w.fuyang(),
        &w.licence.claims.id,
        LICENCE_FIELDS,
        made_at(),
    )?;
    let contents = CopyContents::of(
        w.fuyang().clone(),
        request.clone(),
        &w.licence.bytes,
        &ShareRequest::open(&request, &w.trust)?.request.fields,
        time(made_at())?,
        time(made_at() + 30 * DAY)?,
    )?;
    let me = jinan_agency(&w);
    // Signed by a seal (not a region root).
    let by_seal = contents.sign(&w.f.amr().key)?;
    assert_eq!(copy_code(&w, &by_seal, NOW, &me), Code::KidUnknown);
    // Signed by Jinan's root while claiming to be Fuyang's copy.
    let by_jinan = contents.sign(&w.f.jinan.root)?;
    assert_eq!(copy_code(&w, &by_jinan, NOW, &me), Code::RegionMismatch);
    // Fuyang's copy of a request addressed to Jinan.
    let elsewhere = w.request(
        w.jinan_seal(),
        w.jinan(),
        &w.licence.claims.id,
        LICENCE_FIELDS,
        made_at(),
    )?;
    let misrouted = w.copy(&elsewhere, &w.licence, made_at(), 30)?;
    assert_eq!(copy_code(&w, &misrouted, NOW, &me), Code::RegionMismatch);
    Ok(())
}

#[test]
fn a_copy_for_an_unauthorised_agency_is_refused() -> R {
    let w = World::new()?;
    // FY-DATA-01 has no sharing scope; Jinan's seal covers business licences, not food permits.
    let data = &w.f.fuyang.seals[3];
    let cases = [
        (
            data,
            &w.licence,
            Party {
                region: w.fuyang().clone(),
                agency: data.info.agency.clone(),
            },
        ),
        (w.jinan_seal(), &w.permit, jinan_agency(&w)),
    ];
    for (seal, stored, presenter) in cases {
        let request = w.request(
            seal,
            w.fuyang(),
            &stored.claims.id,
            LICENCE_FIELDS[..1].as_ref(),
            made_at(),
        )?;
        let opened = ShareRequest::open(&request, &w.trust)?;
        let refused = opened.authorise(w.fuyang(), time(made_at())?);
        assert_eq!(refused.map_err(|f| f.code), Err(Code::ShareNotAuthorised));
        let copy = w.copy(&request, stored, made_at(), 30)?;
        assert_eq!(
            copy_code(&w, &copy, NOW, &presenter),
            Code::ShareNotAuthorised
        );
    }
    Ok(())
}

#[test]
fn requests_are_refused_in_the_order_of_the_spec() -> R {
    let w = World::new()?;
    let id = &w.licence.claims.id;
    let request = w.request(w.jinan_seal(), w.fuyang(), id, LICENCE_FIELDS, made_at())?;
    let opened = ShareRequest::open(&request, &w.trust)?;
    assert_eq!(opened.requester(), jinan_agency(&w));
    assert!(opened.authorise(w.fuyang(), time(made_at() + 300)?).is_ok());
    let code = |r: Result<(), crate::codes::Failure>| r.map_err(|f| f.code);
    assert_eq!(
        code(opened.authorise(w.jinan(), time(made_at())?)),
        Err(Code::RegionMismatch)
    );
    assert_eq!(
        code(opened.authorise(w.fuyang(), time(made_at() + 301)?)),
        Err(Code::ShareRequestStale)
    );
    assert_eq!(
        code(opened.authorise(w.fuyang(), time(made_at() - 301)?)),
        Err(Code::ShareRequestStale)
    );
    // Signed by a key the bundle does not know, or with a broken signature.
    let stranger = SecretKey::from_seed(&[42; 32])?;
    let unknown = ShareRequest::open(&opened.request.sign(&stranger)?, &w.trust);
    assert_eq!(
        unknown.map(|_| ()).map_err(|f| f.code),
        Err(Code::KidUnknown)
    );
    let mut broken = request.clone();
    let last = broken.len() - 1;
    broken[last] ^= 1;
    let broken = ShareRequest::open(&broken, &w.trust);
    assert_eq!(
        broken.map(|_| ()).map_err(|f| f.code),
        Err(Code::SignatureInvalid)
    );
    // A revoked seal (FY-AMR-02, revoked from T0 + 100 days) cannot ask after its revocation.
    let revoked = &w.f.fuyang.seals[2];
    let late = ShareRequest::open(
        &w.request(revoked, w.fuyang(), id, LICENCE_FIELDS, made_at())?,
        &w.trust,
    )?;
    assert_eq!(
        code(late.authorise(w.fuyang(), time(made_at())?)),
        Err(Code::SealRevoked)
    );
    // A field the certificate does not have.
    assert_eq!(
        code(copy::check_fields_available(
            &w.licence.bytes,
            &[crate::testkit::field("licence.not_there")?]
        )),
        Err(Code::ShareFieldUnavailable)
    );
    assert!(copy::check_fields_available(&w.licence.bytes, &opened.request.fields).is_ok());
    Ok(())
}

#[test]
fn a_copy_whose_certificate_is_not_what_was_asked_is_refused() -> R {
    let w = World::new()?;
    let me = jinan_agency(&w);
    let request = w.request(
        w.jinan_seal(),
        w.fuyang(),
        &w.licence.claims.id,
        LICENCE_FIELDS,
        made_at(),
    )?;
    let build = |stored: &[u8], fields: &[&str]| -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let fields = fields
            .iter()
            .map(|f| crate::testkit::field(f))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CopyContents::of(
            w.fuyang().clone(),
            request.clone(),
            stored,
            &fields,
            time(made_at())?,
            time(made_at() + 30 * DAY)?,
        )?
        .sign(&w.f.fuyang.root)?)
    };
    // One field more than asked, one fewer, another certificate.
    let more = build(
        &w.licence.bytes,
        &[
            "holder.name",
            "holder.id_number",
            "licence.registered_capital",
        ],
    )?;
    assert_eq!(copy_code(&w, &more, NOW, &me), Code::CopyMismatch);
    let fewer = build(&w.licence.bytes, &["holder.name"])?;
    assert_eq!(copy_code(&w, &fewer, NOW, &me), Code::CopyMismatch);
    let other = build(&w.moved.bytes, LICENCE_FIELDS)?;
    assert_eq!(copy_code(&w, &other, NOW, &me), Code::CopyMismatch);
    // A disclosure the certificate never committed to, attached by the provider.
    let mut forged = w.licence.bytes.clone();
    let needle = "1000万元人民币".as_bytes();
    let at = forged
        .windows(needle.len())
        .position(|w| w == needle)
        .ok_or("value present")?;
    forged[at] = b'9';
    let forged = build(&forged, LICENCE_FIELDS)?;
    assert_eq!(copy_code(&w, &forged, NOW, &me), Code::DisclosureMismatch);
    Ok(())
}

#[test]
fn a_copy_of_a_certificate_revoked_since_is_refused() -> R {
    let w = World::new()?;
    let copy = licence_copy(&w)?;
    let snapshot = w.f.fuyang_snapshot(
        &w.licence.claims.id,
        &w.permit.claims.id,
        &w.moved.claims.id,
    )?;
    let mut table = StatusTable::default();
    table.add(crate::trust::StatusSnapshot::load(&snapshot, &w.trust)?);
    let result = verify_copy(&copy, &w.trust, &table, time(NOW)?, &jinan_agency(&w));
    assert_eq!(result.code, Code::StatusRevoked);
    Ok(())
}

#[test]
fn a_copy_may_live_at_most_ninety_days() -> R {
    let w = World::new()?;
    let request = w.request(
        w.jinan_seal(),
        w.fuyang(),
        &w.licence.claims.id,
        LICENCE_FIELDS,
        made_at(),
    )?;
    assert!(w.copy(&request, &w.licence, made_at(), 90).is_ok());
    assert!(w.copy(&request, &w.licence, made_at(), 91).is_err());
    Ok(())
}

fn expect<'a>(requester: &'a crate::ids::RegionCode, nonce: [u8; 16]) -> ProofExpectation<'a> {
    ProofExpectation {
        requester,
        nonce: Some(nonce),
        witnesses: &[],
        quorum: 0,
    }
}

fn bare(certificate: &[u8]) -> Vec<u8> {
    cert::present(certificate, |_| false).unwrap_or_else(|f| panic!("{f}"))
}

#[test]
fn a_proof_of_a_valid_certificate_carries_its_issuance() -> R {
    let mut w = World::new()?;
    let jinan = w.jinan().clone();
    let nonce = [7; 16];
    let proof = w.answer_proof(&bare(&w.licence.bytes), &jinan, nonce, NOW)?;
    let verified = verify_proof(&proof, &w.trust, time(NOW)?, &expect(&jinan, nonce))?;
    assert_eq!(verified.item.code, Code::Ok);
    assert_eq!(verified.item.state, Some(State::Valid));
    assert_eq!(verified.item.digest, w.licence.digest);
    assert_eq!(verified.region, *w.fuyang());
    assert_eq!(verified.issuance.as_ref().map(|i| i.index), Some(1));
    assert!(verified.status.is_none());
    assert_eq!(verified.digest, object_digest(w.trust.suite(), &proof));
    assert_eq!(proof::inspect_proof(&proof)?.region, *w.fuyang());
    // The receipts entry that logged the answer counts it as given to another region.
    let logged = w.log.entries.last().ok_or("logged")?;
    let (_, entry) = crate::log::entry::LogEntry::open(logged)?;
    assert!(matches!(
        entry.act,
        crate::log::entry::Act::Receipts {
            cross_region: 1,
            ..
        }
    ));
    Ok(())
}

#[test]
fn a_proof_is_bound_to_its_requester_and_nonce() -> R {
    let mut w = World::new()?;
    let jinan = w.jinan().clone();
    let proof = w.answer_proof(&bare(&w.licence.bytes), &jinan, [7; 16], NOW)?;
    let code = |e: &ProofExpectation<'_>| {
        verify_proof(
            &proof,
            &w.trust,
            time(NOW).unwrap_or_else(|e| panic!("{e}")),
            e,
        )
        .map(|_| ())
        .map_err(|f| f.code)
    };
    assert_eq!(code(&expect(&jinan, [8; 16])), Err(Code::ProofMismatch));
    assert_eq!(code(&expect(w.fuyang(), [7; 16])), Err(Code::ProofMismatch));
    let without_nonce = ProofExpectation {
        nonce: None,
        ..expect(&jinan, [0; 16])
    };
    assert_eq!(code(&without_nonce), Ok(()));
    let mut flipped = proof.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let flipped = verify_proof(&flipped, &w.trust, time(NOW)?, &expect(&jinan, [7; 16]));
    assert_eq!(
        flipped.map(|_| ()).map_err(|f| f.code),
        Err(Code::SignatureInvalid)
    );
    Ok(())
}

#[test]
fn a_transferred_certificate_is_proven_with_its_transfer_entry() -> R {
    let mut w = World::new()?;
    let jinan = w.jinan().clone();
    let proof = w.answer_proof(&bare(&w.moved.bytes), &jinan, [1; 16], NOW)?;
    let verified = verify_proof(&proof, &w.trust, time(NOW)?, &expect(&jinan, [1; 16]))?;
    assert_eq!(verified.item.code, Code::StatusTransferredOut);
    assert_eq!(verified.item.state, Some(State::TransferredOut));
    assert_eq!(verified.transferred_to(), Some(&jinan));

    // Jinan's successor: its link to the predecessor, from each kind of evidence.
    let seal = w.jinan_seal();
    let mut draft: Draft = w.f.draft(seal, "2026100005")?;
    succeed(
        &mut draft,
        &w.moved.claims.id,
        crate::status::Succession::TransferIn,
    );
    draft.issued = time(NOW - DAY)?;
    draft.valid_from = draft.issued;
    let successor = cert::issue(&draft, &seal.info, &seal.key, &mut SeededSalts::new("s"))?;
    let checked = cert::verify(
        &successor.bytes,
        &w.trust,
        &StatusTable::default(),
        time(NOW)?,
    );
    assert!(checked.is_valid(), "{}", checked.detail);
    assert_eq!(
        assess(&checked, PredecessorEvidence::Proof(&verified)),
        Some(Link::Confirmed)
    );
    let out = StatusView::Listed {
        state: State::TransferredOut,
        since: Some(time(NOW)?),
        note: None,
        as_of: time(NOW)?,
    };
    assert_eq!(
        assess(&checked, PredecessorEvidence::Status(&out)),
        Some(Link::Consistent)
    );
    let valid = StatusView::Valid { as_of: time(NOW)? };
    assert_eq!(
        assess(&checked, PredecessorEvidence::Status(&valid)),
        Some(Link::Contradicted)
    );
    assert_eq!(
        assess(&checked, PredecessorEvidence::None),
        Some(Link::Unknown)
    );
    // A proof that the licence is still valid in Fuyang contradicts the transfer.
    let other = w.answer_proof(&bare(&w.licence.bytes), &jinan, [2; 16], NOW)?;
    let mut still_valid = verify_proof(&other, &w.trust, time(NOW)?, &expect(&jinan, [2; 16]))?;
    still_valid.item.id = Some(w.moved.claims.id.clone());
    assert_eq!(
        assess(&checked, PredecessorEvidence::Proof(&still_valid)),
        Some(Link::Contradicted)
    );
    // A certificate that is not a transfer in has no link to assess.
    let plain = cert::verify(
        &w.licence.bytes,
        &w.trust,
        &StatusTable::default(),
        time(NOW)?,
    );
    assert_eq!(assess(&plain, PredecessorEvidence::None), None);

    // A node's rules (§5.5): the successor only once the predecessor is known transferred out,
    // the predecessor never once it is.
    let predecessor = w.moved.claims.id.clone();
    let settled = |v: &crate::cert::Verification, known: &[&crate::ids::Identifier]| {
        let mut v = v.clone();
        crate::sharing::transfer::settle(&mut v, |id| known.contains(&id));
        v.code
    };
    assert_eq!(settled(&checked, &[]), Code::TransferUnconfirmed);
    assert_eq!(settled(&checked, &[&predecessor]), Code::Ok);
    assert_eq!(settled(&plain, &[]), Code::Ok);
    assert_eq!(
        settled(&plain, &[&w.licence.claims.id]),
        Code::StatusTransferredOut
    );
    // An invalid certificate stays as it was.
    let mut broken = plain.clone();
    broken.fail(crate::codes::Failure::new(Code::Expired, "x"));
    assert_eq!(settled(&broken, &[&w.licence.claims.id]), Code::Expired);
    Ok(())
}

#[test]
fn forged_and_foreign_certificates_get_no_log_evidence() -> R {
    let mut w = World::new()?;
    let jinan = w.jinan().clone();
    // The same identifier stamped again with the same seal: valid on its own, not in the log.
    let amr = w.f.amr();
    let forged = cert::issue(
        &w.f.draft(amr, "2026000001")?,
        &amr.info,
        &amr.key,
        &mut SeededSalts::new("forgery"),
    )?;
    let proof = w.answer_proof(&bare(&forged.bytes), &jinan, [3; 16], NOW)?;
    let verified = verify_proof(&proof, &w.trust, time(NOW)?, &expect(&jinan, [3; 16]))?;
    assert_eq!(verified.item.code, Code::CertificateNotLogged);
    assert!(verified.issuance.is_none() && verified.item.state.is_none());
    // A Jinan certificate asked of Fuyang.
    let seal = w.jinan_seal();
    let mut draft = w.f.draft(seal, "2026100001")?;
    draft.issued = time(NOW - DAY)?;
    let foreign = cert::issue(&draft, &seal.info, &seal.key, &mut SeededSalts::new("j"))?;
    let proof = w.answer_proof(&foreign.bytes, &jinan, [4; 16], NOW)?;
    let verified = verify_proof(&proof, &w.trust, time(NOW)?, &expect(&jinan, [4; 16]))?;
    assert_eq!(verified.item.code, Code::RegionMismatch);
    // Garbage: answered, named by its hash.
    let proof = w.answer_proof(b"not a certificate", &jinan, [5; 16], NOW)?;
    let verified = verify_proof(&proof, &w.trust, time(NOW)?, &expect(&jinan, [5; 16]))?;
    assert_eq!(verified.item.code, Code::CborTrailingBytes);
    assert_eq!(
        verified.item.digest,
        object_digest(w.trust.suite(), b"not a certificate")
    );
    Ok(())
}

/// A proof re-signed by Fuyang's root with one part replaced.
fn resigned(
    w: &World,
    proof: &[u8],
    change: impl FnOnce(&mut ProofContents),
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut contents = proof_parts(proof)?;
    change(&mut contents);
    Ok(sign_proof_unchecked(&contents, &w.f.fuyang.root)?)
}

#[test]
fn a_proof_whose_log_evidence_does_not_hold_is_refused() -> R {
    let mut w = World::new()?;
    let jinan = w.jinan().clone();
    let proof = w.answer_proof(&bare(&w.moved.bytes), &jinan, [6; 16], NOW)?;
    let code = |bytes: &[u8]| {
        verify_proof(
            bytes,
            &w.trust,
            time(NOW).unwrap_or_else(|e| panic!("{e}")),
            &expect(&jinan, [6; 16]),
        )
        .map(|_| ())
        .map_err(|f| f.code)
    };
    assert_eq!(code(&proof), Ok(()));
    // Another log key: the checkpoint no longer verifies.
    let other = NoteVerifier::new(
        ORIGIN_FY,
        NoteRole::Log,
        key("another log")?.public().clone(),
    )?;
    let rekeyed = resigned(&w, &proof, |c| c.log_key = other.to_vkey())?;
    assert_eq!(code(&rekeyed), Err(Code::LogProofInvalid));
    // The log key of another region's origin.
    let foreign = NoteVerifier::new(
        "tongban.example/370100/log/1",
        NoteRole::Log,
        w.log.key.public().clone(),
    )?;
    let foreign = resigned(&w, &proof, |c| c.log_key = foreign.to_vkey())?;
    assert_eq!(code(&foreign), Err(Code::LogProofInvalid));
    // A status receipt without the issuance receipt; an issuance receipt of another entry.
    let orphan = resigned(&w, &proof, |c| c.issuance = None)?;
    assert_eq!(code(&orphan), Err(Code::ProofMismatch));
    let checkpoint = w.log.checkpoint()?;
    let wrong = w.log.receipt(1, &checkpoint)?;
    let swapped = resigned(&w, &proof, |c| {
        c.issuance = Some(wrong.clone());
        c.status = None;
    })?;
    assert_eq!(code(&swapped), Err(Code::ProofMismatch));
    // A proof signed by Jinan's root that claims to be Fuyang's.
    let envelope =
        crate::envelope::Envelope::open(&proof, crate::envelope::Kind::VerificationProof)?;
    let by_jinan = crate::envelope::seal(
        crate::envelope::Kind::VerificationProof,
        &w.f.jinan.root,
        envelope.payload.to_vec(),
        &[],
    )?;
    assert_eq!(code(&by_jinan), Err(Code::RegionMismatch));
    // The receipt of another region's batch inside a Fuyang proof.
    let receipt = VerificationReceipt::decode(&proof_parts(&proof)?.receipt)?;
    let mut shifted = receipt.clone();
    shifted.index += 1;
    let shifted = resigned(&w, &proof, |c| {
        c.receipt = shifted.encode().unwrap_or_default()
    })?;
    assert_eq!(code(&shifted), Err(Code::SignatureInvalid));
    Ok(())
}

const ORIGIN_FY: &str = crate::testkit::sharing::ORIGIN;

#[test]
fn a_quorum_counts_known_witnesses_only() -> R {
    let mut w = World::new()?;
    let jinan = w.jinan().clone();
    let proof = w.answer_proof(&bare(&w.licence.bytes), &jinan, [9; 16], NOW)?;
    let witness_key = key("witness 370100")?;
    let witness = NoteVerifier::new(
        "tongban.example/370100/witness",
        NoteRole::Witness,
        witness_key.public().clone(),
    )?;
    let quorum = |bytes: &[u8], witnesses: &[NoteVerifier]| {
        let e = ProofExpectation {
            requester: &jinan,
            nonce: Some([9; 16]),
            witnesses,
            quorum: 1,
        };
        verify_proof(
            bytes,
            &w.trust,
            time(NOW).unwrap_or_else(|e| panic!("{e}")),
            &e,
        )
        .map(|v| v.checkpoint.map(|c| c.cosigned_by.len()))
        .map_err(|f| f.code)
    };
    assert_eq!(
        quorum(&proof, std::slice::from_ref(&witness)),
        Err(Code::LogProofInvalid)
    );
    // The witness cosigns the checkpoint; the proof carries the cosigned note.
    let cosigned = resigned(&w, &proof, |c| {
        if let Some(issuance) = c.issuance.as_mut() {
            let body = crate::log::note::Note::parse(issuance.checkpoint.as_bytes())
                .map(|n| n.text)
                .unwrap_or_default();
            if let Ok(line) = checkpoint::cosign(&body, NOW, &witness.name, &witness_key)
                && let Ok(note) =
                    checkpoint::add_signatures(issuance.checkpoint.as_bytes(), &[line])
            {
                issuance.checkpoint = note;
            }
        }
    })?;
    assert_eq!(
        quorum(&cosigned, std::slice::from_ref(&witness)),
        Ok(Some(1))
    );
    assert_eq!(quorum(&cosigned, &[]), Err(Code::LogProofInvalid));
    Ok(())
}

#[test]
fn proof_requests_round_trip_and_refuse_what_they_must() -> R {
    let request = ProofRequest {
        certificate: vec![1, 2, 3],
        nonce: [4; 16],
    };
    assert_eq!(ProofRequest::decode(&request.encode()?)?, request);
    let huge = vec![0u8; proof::MAX_REQUEST as usize + 1];
    assert_eq!(
        ProofRequest::decode(&huge).map_err(|f| f.code),
        Err(Code::TooLarge)
    );
    let extra = crate::encode::map_bytes(vec![
        crate::encode::entry("v", crate::encode::uint(1)),
        crate::encode::entry("cert", crate::encode::bytes(&[1])),
        crate::encode::entry("n", crate::encode::bytes(&[0; 16])),
        crate::encode::entry("x", crate::encode::uint(1)),
    ])?;
    assert_eq!(
        ProofRequest::decode(&extra).map_err(|f| f.code),
        Err(Code::ClaimsInvalid)
    );
    Ok(())
}
