//! The log rules for sharing and transfers (specs/log.md §1, §7; specs/sharing.md §5.3), and the
//! statistics an audit derives from sharing entries.

use tongban_core::codes::Code;
use tongban_core::ids::{Identifier, RegionCode};
use tongban_core::keys::SecretKey;
use tongban_core::log::audit::{AuditInput, FindingCode, replay_many};
use tongban_core::log::entry::{Act, LogEntry, ShareOutcome};
use tongban_core::log::state::RegionState;
use tongban_core::status::{Operation, State, Termination};
use tongban_core::testkit::log::{SampleLog, transfer_pair};
use tongban_core::testkit::sharing::{Signer, World};
use tongban_core::testkit::{DAY, NOW, T0, time};

type R = Result<(), Box<dyn std::error::Error>>;

/// What `state` says to `act`, signed by `signer` of Fuyang (the state is left unchanged).
fn try_act(w: &World, state: &RegionState, act: Act, signer: Signer) -> Result<(), FindingCode> {
    let key = match signer {
        Signer::Root => &w.f.fuyang.root,
        Signer::Amr => &w.f.amr().key,
    };
    let entry = LogEntry {
        region: w.fuyang().clone(),
        at: time(NOW).unwrap_or_else(|e| panic!("{e}")),
        act,
    }
    .sign(key)
    .unwrap_or_else(|e| panic!("{e}"));
    let mut state = state.clone();
    state.apply(&entry).map(|_| ()).map_err(|r| r.code)
}

fn given(w: &World, id: &Identifier) -> Act {
    Act::ShareAnswered {
        requester: w.jinan().clone(),
        agency: w.jinan_seal().info.agency.clone(),
        seal: w.jinan_seal().key.public().kid(),
        id: id.clone(),
        request: [1; 32],
        outcome: ShareOutcome::Given {
            copy: [2; 32],
            expires: time(NOW + 30 * DAY).unwrap_or_else(|e| panic!("{e}")),
        },
    }
}

#[test]
fn a_copy_is_given_only_of_a_valid_certificate_of_the_log() -> R {
    let w = World::new()?;
    let s = &w.state;
    assert_eq!(
        try_act(&w, s, given(&w, &w.licence.claims.id), Signer::Root),
        Ok(())
    );
    // The transferred-out certificate, an identifier this log never issued, and a seal signing.
    assert_eq!(
        try_act(&w, s, given(&w, &w.moved.claims.id), Signer::Root),
        Err(FindingCode::ShareInvalid)
    );
    let unknown = w.f.draft(w.f.amr(), "2026999999")?.id;
    assert_eq!(
        try_act(&w, s, given(&w, &unknown), Signer::Root),
        Err(FindingCode::UnknownCertificate)
    );
    assert_eq!(
        try_act(&w, s, given(&w, &w.licence.claims.id), Signer::Amr),
        Err(FindingCode::EntrySignature)
    );
    // A refusal concerns no certificate of the log: any identifier may be refused.
    let refused = Act::ShareAnswered {
        requester: w.jinan().clone(),
        agency: w.jinan_seal().info.agency.clone(),
        seal: w.jinan_seal().key.public().kid(),
        id: unknown,
        request: [1; 32],
        outcome: ShareOutcome::Refused(Code::CertificateNotLogged),
    };
    assert_eq!(try_act(&w, s, refused, Signer::Root), Ok(()));
    Ok(())
}

#[test]
fn transfers_follow_the_rules_of_one_log() -> R {
    let w = World::new()?;
    let s = &w.state;
    let issued = |id: &Identifier, operation, predecessor: Option<&Identifier>| Act::CertIssued {
        id: id.clone(),
        digest: [3; 32],
        seal: w.f.amr().key.public().kid(),
        issued: time(NOW).unwrap_or_else(|e| panic!("{e}")),
        operation,
        predecessor: predecessor.cloned(),
        promise_deadline: None,
        status_index: tongban_core::testkit::status_index_of(id.serial()),
    };
    let new_id = w.f.draft(w.f.amr(), "2026000100")?.id;
    let elsewhere = w.f.draft(w.jinan_seal(), "2026000200")?.id;
    // A transfer in of another region's certificate is fine once; of this log's own, never.
    assert_eq!(
        try_act(&w, s, issued(&new_id, 8, Some(&elsewhere)), Signer::Amr),
        Ok(())
    );
    assert_eq!(
        try_act(
            &w,
            s,
            issued(&new_id, 8, Some(&w.moved.claims.id)),
            Signer::Amr
        ),
        Err(FindingCode::TransitionNotAllowed)
    );
    let mut once = s.clone();
    let entry = LogEntry {
        region: w.fuyang().clone(),
        at: time(NOW)?,
        act: issued(&new_id, 8, Some(&elsewhere)),
    }
    .sign(&w.f.amr().key)?;
    once.apply(&entry)?;
    let again = w.f.draft(w.f.amr(), "2026000101")?.id;
    assert_eq!(
        try_act(&w, &once, issued(&again, 8, Some(&elsewhere)), Signer::Amr),
        Err(FindingCode::TransitionNotAllowed)
    );
    // A renewal names a predecessor of this log.
    assert_eq!(
        try_act(&w, s, issued(&new_id, 2, Some(&elsewhere)), Signer::Amr),
        Err(FindingCode::UnknownCertificate)
    );
    // A transfer out names another region.
    let out = |destination| Act::StatusChanged {
        id: w.licence.claims.id.clone(),
        operation: Operation::Terminate(Termination::TransferOut),
        to: State::TransferredOut,
        reason: None,
        destination: Some(destination),
    };
    assert_eq!(try_act(&w, s, out(w.jinan().clone()), Signer::Amr), Ok(()));
    assert_eq!(
        try_act(&w, s, out(w.fuyang().clone()), Signer::Amr),
        Err(FindingCode::TransitionNotAllowed)
    );
    Ok(())
}

#[test]
fn a_cancelled_transfer_is_no_longer_on_its_way() -> R {
    let mut w = World::new()?;
    assert_eq!(
        w.state.transfers_out().get(w.moved.claims.id.as_str()),
        Some(w.jinan())
    );
    let cancel = Act::StatusChanged {
        id: w.moved.claims.id.clone(),
        operation: Operation::CancelTransferOut,
        to: State::Valid,
        reason: None,
        destination: None,
    };
    w.append(T0 + 120 * DAY, cancel, Signer::Amr)?;
    assert!(w.state.transfers_out().is_empty());
    Ok(())
}

fn input(log: &SampleLog) -> AuditInput<'_> {
    AuditInput {
        log_key: &log.vkey,
        trust_bundle: &log.trust_bundle,
        entries: &log.entries,
        checkpoints: &log.checkpoints,
        hash_tiles: &[],
    }
}

#[test]
fn an_accepted_transfer_cannot_be_cancelled() -> R {
    let (mut fuyang, jinan) = transfer_pair(true)?;
    let moved = w_id(&fuyang)?;
    let f = tongban_core::testkit::TestFederation::standard()?;
    let cancel = LogEntry {
        region: f.fuyang.certificate.region.clone(),
        at: time(T0 + 120 * DAY)?,
        act: Act::StatusChanged {
            id: moved,
            operation: Operation::CancelTransferOut,
            to: State::Valid,
            reason: None,
            destination: None,
        },
    }
    .sign(&f.amr().key)?;
    fuyang.entries.push(cancel);
    let at = fuyang.entries.len() as u64 - 1;
    fuyang.checkpoints.clear();
    let reports = replay_many(&[input(&fuyang), input(&jinan)]);
    let finding = reports[0].findings.first().ok_or("a finding")?;
    assert_eq!(
        (finding.code, finding.entry),
        (FindingCode::TransitionNotAllowed, Some(at))
    );
    // Replayed up to the refused entry, Fuyang's log still shows the transfer accepted.
    assert!(reports[1].is_clean(), "{:?}", reports[1].findings);
    Ok(())
}

#[test]
fn a_transfer_in_the_origin_did_not_accept_is_found() -> R {
    let (mut fuyang, jinan) = transfer_pair(true)?;
    // Without the acceptance, the transfer out could still be cancelled: taking it in breaks
    // the rule.
    fuyang.entries.pop();
    fuyang.checkpoints.clear();
    let reports = replay_many(&[input(&fuyang), input(&jinan)]);
    assert!(reports[0].is_clean(), "{:?}", reports[0].findings);
    let finding = reports[1].findings.first().ok_or("a finding")?;
    assert_eq!(
        (finding.code, finding.entry),
        (FindingCode::TransferUnmatched, Some(1))
    );
    Ok(())
}

#[test]
fn a_transfer_is_accepted_once_for_its_destination_only() -> R {
    let (fuyang, _) = transfer_pair(true)?;
    let moved = w_id(&fuyang)?;
    let f = tongban_core::testkit::TestFederation::standard()?;
    let accept =
        |destination: &str, signer: &SecretKey| -> Result<Vec<u8>, Box<dyn std::error::Error>> {
            Ok(LogEntry {
                region: f.fuyang.certificate.region.clone(),
                at: time(T0 + 120 * DAY)?,
                act: Act::StatusChanged {
                    id: moved.clone(),
                    operation: Operation::AcceptTransfer,
                    to: State::TransferredOut,
                    reason: None,
                    destination: Some(RegionCode::parse(destination)?),
                },
            }
            .sign(signer)?)
        };
    let root = tongban_core::testkit::key("region 341200 root")?;
    let mut state = RegionState::new(f.fuyang.certificate.region.clone(), root.public().clone());
    let (last, before) = fuyang.entries.split_last().ok_or("entries")?;
    for entry in before {
        state.apply(entry)?;
    }
    // Not by the agency's seal, not for another region than the transfer out named.
    let refused = |entry: Vec<u8>, state: &mut RegionState| {
        state.apply(&entry).map(|_| ()).map_err(|r| r.code)
    };
    assert_eq!(
        refused(accept("370100", &f.amr().key)?, &mut state),
        Err(FindingCode::EntrySignature)
    );
    assert_eq!(
        refused(accept("110000", &root)?, &mut state),
        Err(FindingCode::TransitionNotAllowed)
    );
    state.apply(last)?;
    assert_eq!(
        refused(accept("370100", &root)?, &mut state),
        Err(FindingCode::TransitionNotAllowed)
    );
    Ok(())
}

fn w_id(fuyang: &SampleLog) -> Result<Identifier, Box<dyn std::error::Error>> {
    let last = fuyang.entries.last().ok_or("entries")?;
    match LogEntry::open(last)?.1.act {
        Act::StatusChanged { id, .. } => Ok(id),
        _ => Err("the pair ends with the transfer out and its acceptance".into()),
    }
}

#[test]
fn a_predecessor_taken_in_twice_is_found() -> R {
    let (fuyang, jinan) = transfer_pair(true)?;
    let (_, twice) = transfer_pair(true)?;
    let reports = replay_many(&[input(&fuyang), input(&jinan), input(&twice)]);
    assert!(reports[0].is_clean() && reports[1].is_clean());
    let finding = reports[2].findings.first().ok_or("a finding")?;
    assert_eq!(finding.code, FindingCode::TransferUnmatched);
    Ok(())
}

#[test]
fn sharing_entries_are_counted() -> R {
    let mut w = World::new()?;
    w.append(NOW, given(&w, &w.licence.claims.id), Signer::Root)?;
    let refused = Act::ShareAnswered {
        requester: w.jinan().clone(),
        agency: w.jinan_seal().info.agency.clone(),
        seal: w.jinan_seal().key.public().kid(),
        id: w.permit.claims.id.clone(),
        request: [4; 32],
        outcome: ShareOutcome::Refused(Code::ShareNotAuthorised),
    };
    w.append(NOW, refused, Signer::Root)?;
    let received = Act::ShareReceived {
        provider: w.jinan().clone(),
        agency: w.f.amr().info.agency.clone(),
        id: w.f.draft(w.jinan_seal(), "2026100001")?.id,
        request: [5; 32],
        copy: [6; 32],
        expires: time(NOW + DAY)?,
    };
    w.append(NOW, received, Signer::Root)?;
    let proof = Act::ProofReceived {
        from: w.jinan().clone(),
        digest: [7; 32],
        id: None,
        code: Code::Ok,
        proof: [8; 32],
    };
    w.append(NOW, proof, Signer::Root)?;
    let report = w.audit()?;
    assert!(report.is_clean(), "{:?}", report.findings);
    let s = &report.statistics;
    assert_eq!((s.shares_given, s.shares_given_cross_region), (1, 1));
    assert_eq!(s.shares_refused.get("SHARE_NOT_AUTHORISED"), Some(&1));
    assert_eq!((s.copies_received, s.copies_received_cross_region), (1, 1));
    assert_eq!(s.proofs_received, 1);
    Ok(())
}
