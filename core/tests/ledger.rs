//! The monthly tallies an audit keeps (specs/log.md §7.2) for every kind of sharing act, placed
//! one second either side of a quarter's end in China Standard Time (2026-06-30T23:59:59+08:00
//! and 2026-07-01T00:00:00+08:00), counted here from the acts as they are appended.

use tongban_core::cert::FieldName;
use tongban_core::codes::Code;
use tongban_core::log::entry::{Act, ShareOutcome};
use tongban_core::log::ledger::Period;
use tongban_core::testkit::sharing::{Signer, World};
use tongban_core::testkit::{DAY, T0, time};

type R = Result<(), Box<dyn std::error::Error>>;

/// 2026-07-01T00:00:00+08:00, the first second of the third quarter in Beijing.
const Q3: u64 = T0 + 180 * DAY + 16 * 3600;

fn given(expires: u64) -> Result<ShareOutcome, Box<dyn std::error::Error>> {
    Ok(ShareOutcome::Given {
        copy: [5; 32],
        expires: time(expires)?,
    })
}

#[test]
fn sharing_acts_are_counted_in_the_month_and_quarter_of_their_time_in_beijing() -> R {
    let mut w = World::new()?;
    let (jinan, agency) = (w.jinan().clone(), w.jinan_seal().info.agency.clone());
    let kid = w.jinan_seal().key.public().kid();
    let licence = w.licence.claims.id.clone();
    let permit = w.permit.claims.id.clone();
    let june = Q3 - 1;
    let share = |id: &tongban_core::ids::Identifier, outcome| Act::ShareAnswered {
        requester: jinan.clone(),
        agency: agency.clone(),
        seal: kid,
        id: id.clone(),
        request: [1; 32],
        outcome,
    };
    // June, the last second of the second quarter.
    w.append(june, share(&licence, given(june + 30 * DAY)?), Signer::Root)?;
    let refused = share(&permit, ShareOutcome::Refused(Code::ShareNotAuthorised));
    w.append(june, refused, Signer::Root)?;
    let proof = Act::ProofReceived {
        from: jinan.clone(),
        digest: [7; 32],
        id: None,
        code: Code::Ok,
        proof: [8; 32],
    };
    w.append(june, proof, Signer::Root)?;
    let code = [9; 32];
    let made = Act::PresentationCreated {
        agency: w.f.amr().info.agency.clone(),
        id: licence.clone(),
        code,
        fields: vec![FieldName::parse("holder.name").ok_or("field")?],
        expires: time(june + 300)?,
        uses: 1,
    };
    w.append(june, made, Signer::Root)?;
    // July, the first second of the third quarter.
    let answered =
        |id: Option<&tongban_core::ids::Identifier>, outcome| Act::PresentationAnswered {
            requester: jinan.clone(),
            agency: agency.clone(),
            seal: kid,
            code,
            id: id.cloned(),
            request: [2; 32],
            outcome,
        };
    w.append(
        Q3,
        answered(Some(&licence), given(Q3 + 30 * DAY)?),
        Signer::Root,
    )?;
    let used_up = answered(
        Some(&licence),
        ShareOutcome::Refused(Code::PresentationUsedUp),
    );
    w.append(Q3, used_up, Signer::Root)?;
    let received = Act::ShareReceived {
        provider: jinan.clone(),
        agency: w.f.amr().info.agency.clone(),
        id: licence.clone(),
        request: [3; 32],
        copy: [4; 32],
        expires: time(Q3 + 30 * DAY)?,
    };
    w.append(Q3, received, Signer::Root)?;
    let receipts = Act::Receipts {
        count: 10,
        root: [6; 32],
        cross_region: 4,
    };
    w.append(Q3, receipts, Signer::Root)?;

    let report = w.audit()?;
    assert!(report.is_clean(), "{:?}", report.findings);
    let ledger = &report.ledger;
    let june = ledger.period(Period::parse("2026-06")?);
    assert_eq!((june.copies_given, june.copies_given_cross_region), (1, 1));
    assert_eq!(june.refusals.get("SHARE_NOT_AUTHORISED"), Some(&1));
    assert_eq!((june.proofs_received, june.presentations_made), (1, 1));
    assert_eq!(june.presentations_resolved, 0);
    let july = ledger.period(Period::parse("2026-07")?);
    assert_eq!(
        (
            july.presentations_resolved,
            july.presentations_resolved_cross_region
        ),
        (1, 1)
    );
    assert_eq!(july.refusals.get("PRESENTATION_USED_UP"), Some(&1));
    assert_eq!(
        (july.copies_received, july.copies_received_cross_region),
        (1, 1)
    );
    assert_eq!(
        (july.verifications, july.verifications_cross_region),
        (10, 4)
    );
    assert_eq!(july.cross_region_share(), Some(5.0 / 11.0));
    assert_eq!(july.entries, 4);
    // The quarters: Q2 holds April's transfer out and June's four acts; Q3 July's four.
    let q2 = ledger.period(Period::parse("2026-Q2")?);
    assert_eq!(q2.status_changes.get("transferred out"), Some(&1));
    assert_eq!(
        (q2.entries, q2.copies_given, q2.presentations_resolved),
        (5, 1, 0)
    );
    let q3 = ledger.period(Period::parse("2026-Q3")?);
    assert_eq!(q3, july);
    assert_eq!(q3.first_index.map(|i| i + 3), q3.last_index);
    Ok(())
}
