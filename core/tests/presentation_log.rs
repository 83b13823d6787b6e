//! Presentation codes in the log (specs/presentation.md §2, specs/log.md §1, §7): the rules that
//! make a code and spend its uses, the entries' format, an audit's statistics, and the copy that
//! answers a code.

use tongban_core::cert::FieldName;
use tongban_core::codes::Code;
use tongban_core::ids::Identifier;
use tongban_core::log::audit::FindingCode;
use tongban_core::log::entry::{Act, LogEntry, ShareOutcome};
use tongban_core::log::state::RegionState;
use tongban_core::sharing::copy::CopyRequest;
use tongban_core::sharing::{Party, PresentationCode, verify_copy};
use tongban_core::testkit::sharing::{PRESENTED_CODE, Signer, World, made_at};
use tongban_core::testkit::{DAY, NOW, time};
use tongban_core::trust::StatusTable;

type R = Result<(), Box<dyn std::error::Error>>;

fn name(n: &str) -> FieldName {
    FieldName::parse(n).unwrap_or_else(|| panic!("{n}"))
}

fn code_digest(w: &World) -> [u8; 32] {
    PresentationCode::parse(PRESENTED_CODE)
        .unwrap_or_else(|e| panic!("{e}"))
        .digest(w.trust.suite())
}

fn created(w: &World, id: &Identifier, at: u64, lifetime: u64, uses: u32) -> Act {
    Act::PresentationCreated {
        agency: w.f.amr().info.agency.clone(),
        id: id.clone(),
        code: code_digest(w),
        fields: vec![name("holder.name")],
        expires: time(at + lifetime).unwrap_or_else(|e| panic!("{e}")),
        uses,
    }
}

fn answered(w: &World, id: Option<&Identifier>, outcome: ShareOutcome) -> Act {
    Act::PresentationAnswered {
        requester: w.jinan().clone(),
        agency: w.jinan_seal().info.agency.clone(),
        seal: w.jinan_seal().key.public().kid(),
        code: code_digest(w),
        id: id.cloned(),
        request: [3; 32],
        outcome,
    }
}

fn given() -> ShareOutcome {
    ShareOutcome::Given {
        copy: [4; 32],
        expires: time(NOW + 30 * DAY).unwrap_or_else(|e| panic!("{e}")),
    }
}

/// What `state` says to `act` signed by `signer` at `at` (the state is left unchanged).
fn try_act(
    w: &World,
    state: &RegionState,
    at: u64,
    act: Act,
    signer: Signer,
) -> Result<(), FindingCode> {
    let key = match signer {
        Signer::Root => &w.f.fuyang.root,
        Signer::Amr => &w.f.amr().key,
    };
    let entry = LogEntry {
        region: w.fuyang().clone(),
        at: time(at).unwrap_or_else(|e| panic!("{e}")),
        act,
    }
    .sign(key)
    .unwrap_or_else(|e| panic!("{e}"));
    let mut state = state.clone();
    state.apply(&entry).map(|_| ()).map_err(|r| r.code)
}

#[test]
fn a_code_is_made_only_for_a_valid_certificate_within_the_limits() -> R {
    let w = World::new()?;
    let s = &w.state;
    let licence = &w.licence.claims.id;
    assert_eq!(
        try_act(&w, s, NOW, created(&w, licence, NOW, 300, 1), Signer::Root),
        Ok(())
    );
    let bad = [
        // Transferred out: not valid.
        created(&w, &w.moved.claims.id, NOW, 300, 1),
        // Longer than 30 minutes, already expired, no use, too many uses.
        created(&w, licence, NOW, 1_801, 1),
        created(&w, licence, NOW - 10, 0, 1),
        created(&w, licence, NOW, 300, 0),
        created(&w, licence, NOW, 300, 101),
    ];
    for act in bad {
        assert_eq!(
            try_act(&w, s, NOW, act, Signer::Root),
            Err(FindingCode::PresentationInvalid)
        );
    }
    // Only the region root makes a code.
    assert_eq!(
        try_act(&w, s, NOW, created(&w, licence, NOW, 300, 1), Signer::Amr),
        Err(FindingCode::EntrySignature)
    );
    let unknown = w.f.draft(w.f.amr(), "2026999999")?.id;
    assert_eq!(
        try_act(&w, s, NOW, created(&w, &unknown, NOW, 300, 1), Signer::Root),
        Err(FindingCode::UnknownCertificate)
    );
    Ok(())
}

#[test]
fn each_copy_spends_a_use_until_none_is_left_or_the_code_expires() -> R {
    let mut w = World::new()?;
    let licence = w.licence.claims.id.clone();
    w.append(NOW, created(&w, &licence, NOW, 300, 2), Signer::Root)?;
    // A code made twice is refused.
    assert_eq!(
        try_act(
            &w,
            &w.state,
            NOW,
            created(&w, &licence, NOW, 300, 2),
            Signer::Root
        ),
        Err(FindingCode::PresentationInvalid)
    );
    // The answer must name the code's certificate.
    let other = w.permit.claims.id.clone();
    assert_eq!(
        try_act(
            &w,
            &w.state,
            NOW + 1,
            answered(&w, Some(&other), given()),
            Signer::Root
        ),
        Err(FindingCode::PresentationInvalid)
    );
    // At the expiry no copy may be given; refusals are facts and always allowed.
    assert_eq!(
        try_act(
            &w,
            &w.state,
            NOW + 300,
            answered(&w, Some(&licence), given()),
            Signer::Root
        ),
        Err(FindingCode::PresentationInvalid)
    );
    let expired = answered(
        &w,
        Some(&licence),
        ShareOutcome::Refused(Code::PresentationExpired),
    );
    assert_eq!(
        try_act(&w, &w.state, NOW + 300, expired, Signer::Root),
        Ok(())
    );
    w.append(NOW + 1, answered(&w, Some(&licence), given()), Signer::Root)?;
    w.append(NOW + 2, answered(&w, Some(&licence), given()), Signer::Root)?;
    assert_eq!(
        try_act(
            &w,
            &w.state,
            NOW + 3,
            answered(&w, Some(&licence), given()),
            Signer::Root
        ),
        Err(FindingCode::PresentationInvalid)
    );
    let used_up = answered(
        &w,
        Some(&licence),
        ShareOutcome::Refused(Code::PresentationUsedUp),
    );
    w.append(NOW + 3, used_up, Signer::Root)?;
    w.append(
        NOW + 4,
        answered(&w, None, ShareOutcome::Refused(Code::PresentationUnknown)),
        Signer::Root,
    )?;
    // The audit replays the same log and counts what happened.
    let report = w.audit()?;
    assert!(report.is_clean(), "{:?}", report.findings);
    let s = &report.statistics;
    assert_eq!(
        (
            s.presentations_made,
            s.presentations_resolved,
            s.presentations_resolved_cross_region
        ),
        (1, 2, 2)
    );
    assert_eq!(
        s.presentations_refused.get("PRESENTATION_USED_UP"),
        Some(&1)
    );
    assert_eq!(
        s.presentations_refused.get("PRESENTATION_UNKNOWN"),
        Some(&1)
    );
    Ok(())
}

#[test]
fn an_answer_names_the_certificate_exactly_when_the_code_is_known() -> R {
    let w = World::new()?;
    let sign = |act: Act| {
        LogEntry {
            region: w.fuyang().clone(),
            at: time(NOW)?,
            act,
        }
        .sign(&w.f.fuyang.root)
    };
    let licence = &w.licence.claims.id;
    let unknown_with_id = answered(
        &w,
        Some(licence),
        ShareOutcome::Refused(Code::PresentationUnknown),
    );
    assert!(sign(unknown_with_id).is_err());
    assert!(sign(answered(&w, None, given())).is_err());
    // Both entry types read back as written.
    for act in [
        created(&w, licence, NOW, 300, 3),
        answered(&w, Some(licence), given()),
        answered(&w, None, ShareOutcome::Refused(Code::PresentationUnknown)),
    ] {
        let bytes = sign(act.clone())?;
        assert_eq!(LogEntry::open(&bytes)?.1.act, act);
    }
    Ok(())
}

#[test]
fn a_copy_answering_a_code_names_the_certificate_its_holder_chose() -> R {
    let w = World::new()?;
    let jinan = Party {
        region: w.jinan().clone(),
        agency: w.jinan_seal().info.agency.clone(),
    };
    let request = w.presentation_request(w.jinan_seal(), w.fuyang(), PRESENTED_CODE, made_at())?;
    let copy = w.presentation_copy(&request, &w.permit, &["holder.name"], made_at(), 30)?;
    let result = verify_copy(&copy, &w.trust, &StatusTable::default(), time(NOW)?, &jinan);
    assert_eq!(result.code, Code::Ok, "{}", result.detail);
    assert_eq!(result.id(), Some(&w.permit.claims.id));
    assert!(matches!(result.request, Some(CopyRequest::Presentation(_))));
    // Any fields the holder chose: step 11 compares no field list for a presentation.
    let two = w.presentation_copy(
        &request,
        &w.permit,
        &["holder.name", "holder.id_number"],
        made_at(),
        30,
    )?;
    let result = verify_copy(&two, &w.trust, &StatusTable::default(), time(NOW)?, &jinan);
    assert_eq!(result.code, Code::Ok, "{}", result.detail);
    // Another agency cannot present it.
    let other = Party {
        region: w.jinan().clone(),
        agency: tongban_core::testkit::make_uscc("11370100MB0000009")?,
    };
    let result = verify_copy(&copy, &w.trust, &StatusTable::default(), time(NOW)?, &other);
    assert_eq!(result.code, Code::CopyWrongRecipient);
    Ok(())
}
