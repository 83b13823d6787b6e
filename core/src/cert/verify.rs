//! Verifying an e-certificate: specs/verification.md §2, step by step.

use crate::cert::claims::Claims;
use crate::cert::disclosure::{self, Disclosure, FieldName, FieldValue, FieldValueRef};
use crate::codes::{Code, Failure};
use crate::envelope::{Envelope, Kind};
use crate::keys::KeyId;
use crate::status::{ListStatus, State};
use crate::trust::{ListLookup, Lookup, SealEntry, StatusLists, StatusTable, TrustStore};
use crate::values::{ShortText, Time};

/// Clock tolerance for an issue time in the future, in seconds.
pub const SKEW: u64 = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Valid,
    Invalid,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
        }
    }
}

/// What the verifier knows of the certificate's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusView {
    /// No status snapshot of the issuing region is held.
    Unknown,
    /// Listed in no entry of the region's snapshot taken at `as_of`.
    Valid { as_of: Time },
    Listed {
        state: State,
        /// When it entered the state, where the source says (snapshots do, lists do not).
        since: Option<Time>,
        note: Option<ShortText>,
        as_of: Time,
    },
}

impl StatusView {
    /// When the status data behind the view was made.
    pub fn as_of(&self) -> Option<Time> {
        match self {
            StatusView::Unknown => None,
            StatusView::Valid { as_of } | StatusView::Listed { as_of, .. } => Some(*as_of),
        }
    }
}

/// The result of verifying one certificate (specs/verification.md §1).
#[derive(Clone, Debug)]
pub struct Verification {
    pub verdict: Verdict,
    pub code: Code,
    /// For people; not stable.
    pub detail: String,
    pub kid: Option<KeyId>,
    /// Certificate digest, once the envelope is well formed.
    pub digest: Option<[u8; 32]>,
    /// The seal's id and name, once the kid is known.
    pub seal: Option<(String, String)>,
    /// The claims, once they decoded (step 9), also when a later step fails.
    pub claims: Option<Claims>,
    /// Whether the disclosures passed step 10 (`disclosed` and `undisclosed` are known).
    pub disclosures_checked: bool,
    /// Disclosed fields that passed step 10, in received order.
    pub disclosed: Vec<(FieldName, FieldValue)>,
    /// Committed digests that no disclosure opened (undisclosed fields and decoys).
    pub undisclosed: usize,
    pub status: StatusView,
    /// The time the certificate was verified for: how old the status behind it was is
    /// `checked_at − status.as_of()`.
    pub checked_at: Time,
}

impl Verification {
    fn new(checked_at: Time) -> Self {
        Verification {
            checked_at,
            verdict: Verdict::Invalid,
            code: Code::Ok,
            detail: String::new(),
            kid: None,
            digest: None,
            seal: None,
            claims: None,
            disclosures_checked: false,
            disclosed: Vec::new(),
            undisclosed: 0,
            status: StatusView::Unknown,
        }
    }

    /// The result for input refused before it was a certificate to verify (an offline QR text
    /// that does not decode, specs/presentation.md §1).
    pub fn refused(checked_at: Time, failure: Failure) -> Verification {
        let mut result = Verification::new(checked_at);
        result.settle(Err(failure));
        result
    }

    pub fn is_valid(&self) -> bool {
        self.verdict == Verdict::Valid
    }

    /// How old, in seconds, the status data behind the verdict was; `None` when none was held.
    pub fn status_age(&self) -> Option<u64> {
        self.status
            .as_of()
            .map(|as_of| self.checked_at.seconds().saturating_sub(as_of.seconds()))
    }
}

/// Verifies `bytes` against `trust` and `status` at time `now`.
pub fn verify(
    bytes: &[u8],
    trust: &TrustStore,
    status: &impl StatusSource,
    now: Time,
) -> Verification {
    let mut result = Verification::new(now);
    let outcome = run(bytes, trust, status, now, &mut result);
    result.settle(outcome);
    result
}

/// Steps 9–16 for a certificate whose envelope passed steps 1–6, whose seal was found (step 7) and
/// whose signature verified under that seal's key (step 8). This is the second half of [`verify`],
/// shared with the bulk verifier, which checks step 8 in batches; step 0 is the caller's. The
/// verdict, code, claims and status are [`verify`]'s; the disclosed fields are checked but not
/// kept (`disclosed` stays empty), nor are the digest and seal names filled in.
pub fn verify_signed(
    envelope: &Envelope<'_>,
    seal: &SealEntry,
    status: &impl StatusSource,
    now: Time,
) -> Verification {
    let mut result = Verification::new(now);
    result.kid = Some(envelope.kid);
    let outcome = finish(envelope, seal, status, now, Fields::Skip, &mut result);
    result.settle(outcome);
    result
}

impl Verification {
    /// Turns a verdict invalid for a check made after verification.md §2 (a node's transfer
    /// rules, specs/sharing.md §5.5).
    pub fn fail(&mut self, failure: Failure) {
        self.settle(Err(failure));
    }

    fn settle(&mut self, outcome: Result<(), Failure>) {
        match outcome {
            Ok(()) => {
                self.verdict = Verdict::Valid;
                self.code = Code::Ok;
                self.detail = "every check passed".into();
            }
            Err(failure) => {
                self.verdict = Verdict::Invalid;
                self.code = failure.code;
                self.detail = failure.detail;
            }
        }
    }
}

/// Step 7: the seal whose key id the protected header names, looked up by `lookup` (the trust
/// store's table, or the bulk verifier's table prepared from it).
pub fn find_seal<T>(kid: &KeyId, lookup: impl FnOnce(&KeyId) -> Option<T>) -> Result<T, Failure> {
    lookup(kid)
        .ok_or_else(|| Failure::new(Code::KidUnknown, format!("no e-seal with key id {kid}")))
}

fn run(
    bytes: &[u8],
    trust: &TrustStore,
    status: &impl StatusSource,
    now: Time,
    out: &mut Verification,
) -> Result<(), Failure> {
    // 0
    trust.check_fresh(now)?;
    // 1–6
    let envelope = Envelope::open(bytes, Kind::Certificate)?;
    out.kid = Some(envelope.kid);
    out.digest = Some(envelope.digest());
    // 7
    let seal = find_seal(&envelope.kid, |kid| trust.seal(kid))?;
    out.seal = Some((
        seal.info.id.as_str().to_owned(),
        seal.info.name.as_str().to_owned(),
    ));
    // 8
    envelope.verify(&seal.info.key)?;
    finish(&envelope, seal, status, now, Fields::Record, out)
}

/// Whether a verification keeps the disclosed fields (the single path reports them; the bulk
/// path reports only verdict, code and identifier, and skips copying them).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fields {
    Record,
    Skip,
}

/// Steps 9–15, once the signature holds.
fn finish(
    envelope: &Envelope<'_>,
    seal: &SealEntry,
    status: &impl StatusSource,
    now: Time,
    fields: Fields,
    out: &mut Verification,
) -> Result<(), Failure> {
    // 9: the claims are reported from here on, whatever a later step finds.
    let claims = out.claims.insert(Claims::decode(envelope.payload)?);
    // 10
    let disclosed = check_disclosures(envelope, claims)?;
    out.disclosures_checked = true;
    out.undisclosed = claims.digests.len() - disclosed.len();
    if fields == Fields::Record {
        out.disclosed = disclosed
            .into_iter()
            .filter_map(|(name, value)| FieldName::parse(name).map(|n| (n, value.to_owned())))
            .collect();
    }
    // 11–13
    check_seal(claims, seal)?;
    check_validity(claims, now)?;
    // 14–15
    check_status(claims, status, now, &mut out.status)
}

/// What a verifier knows of certificates' states: the status lists or snapshots it holds, in
/// whatever structure (the single path's [`StatusLists`] and [`StatusTable`], the bulk
/// verifier's compact index, a node's own state). All answer these two questions, and
/// [`check_status`] turns the answers into the code of steps 14–15.
pub trait StatusSource {
    /// The certificate's state in the status data held of its region, as of `now`.
    fn view(&self, claims: &Claims, now: Time) -> StatusView;
    /// Whether the same data records the promise of a promise-based certificate as fulfilled.
    fn promise_fulfilled(&self, claims: &Claims, now: Time) -> bool;
}

impl StatusSource for StatusTable {
    fn view(&self, claims: &Claims, _: Time) -> StatusView {
        match self.lookup(&claims.region, claims.id.as_str()) {
            Lookup::Unknown => StatusView::Unknown,
            Lookup::Valid { as_of } => StatusView::Valid { as_of },
            Lookup::Listed { entry, as_of } => StatusView::Listed {
                state: entry.state,
                since: Some(entry.since),
                note: entry.note.clone(),
                as_of,
            },
        }
    }

    fn promise_fulfilled(&self, claims: &Claims, _: Time) -> bool {
        StatusTable::promise_fulfilled(self, &claims.region, claims.id.as_str())
    }
}

impl StatusSource for StatusLists {
    fn view(&self, claims: &Claims, now: Time) -> StatusView {
        match self.lookup(&claims.region, claims.status_index, now) {
            ListLookup::Unknown | ListLookup::Beyond { .. } => StatusView::Unknown,
            ListLookup::Found { status, as_of } => match status {
                ListStatus::Valid | ListStatus::PromiseOpen => StatusView::Valid { as_of },
                ListStatus::State(state) => StatusView::Listed {
                    state,
                    since: None,
                    note: None,
                    as_of,
                },
            },
        }
    }

    fn promise_fulfilled(&self, claims: &Claims, now: Time) -> bool {
        matches!(
            self.lookup(&claims.region, claims.status_index, now),
            ListLookup::Found {
                status: ListStatus::Valid,
                ..
            }
        )
    }
}

/// Two sources of status asked in turn: the second answers for regions the first holds nothing
/// of (a node's own log first, then what the federation replicated of other regions; a
/// verifier's status lists first, then its snapshots).
pub struct Layered<'a, A: StatusSource + ?Sized, B: StatusSource + ?Sized>(pub &'a A, pub &'a B);

impl<A: StatusSource + ?Sized, B: StatusSource + ?Sized> StatusSource for Layered<'_, A, B> {
    fn view(&self, claims: &Claims, now: Time) -> StatusView {
        match self.0.view(claims, now) {
            StatusView::Unknown => self.1.view(claims, now),
            known => known,
        }
    }

    /// Answered by the source whose view counts, so the two answers never mix.
    fn promise_fulfilled(&self, claims: &Claims, now: Time) -> bool {
        match self.0.view(claims, now) {
            StatusView::Unknown => self.1.promise_fulfilled(claims, now),
            _ => self.0.promise_fulfilled(claims, now),
        }
    }
}

/// Step 10. A disclosure repeats an earlier one if it has the same name; the same digest means the
/// same bytes, so the same name too, and needs no check of its own. At most 256 disclosures travel
/// with a certificate, so earlier names are looked up by scanning: cheaper than hashing for the
/// handful a certificate usually carries. Returns the opened fields, borrowed from the received
/// bytes.
fn check_disclosures<'a>(
    envelope: &Envelope<'a>,
    claims: &Claims,
) -> Result<Vec<(&'a str, FieldValueRef<'a>)>, Failure> {
    let mut opened: Vec<(&str, FieldValueRef<'_>)> = Vec::with_capacity(envelope.disclosures.len());
    for (i, bytes) in envelope.disclosures.iter().enumerate() {
        let (name, value) = Disclosure::read_borrowed(bytes).map_err(|mut f| {
            f.detail = format!("disclosure {i}: {}", f.detail);
            f
        })?;
        let digest = disclosure::digest(envelope.suite, bytes);
        if !claims.commits(&digest) {
            return Err(Failure::new(
                Code::DisclosureMismatch,
                format!("disclosure {i} ({name}) is not committed"),
            ));
        }
        if opened.iter().any(|(n, _)| *n == name) {
            return Err(Failure::new(
                Code::DisclosureDuplicate,
                format!("disclosure {i} ({name}) repeats an earlier one"),
            ));
        }
        opened.push((name, value));
    }
    Ok(opened)
}

fn check_seal(claims: &Claims, seal: &SealEntry) -> Result<(), Failure> {
    let info = &seal.info;
    if claims.region != info.region {
        return Err(Failure::new(
            Code::SealRegionMismatch,
            format!(
                "certificate of region {} stamped by a seal of {}",
                claims.region, info.region
            ),
        ));
    }
    if claims.agency != info.agency || claims.agency_name != info.agency_name {
        return Err(Failure::new(
            Code::IssuerMismatch,
            format!(
                "issued by {} ({}), seal of {} ({})",
                claims.agency_name, claims.agency, info.agency_name, info.agency
            ),
        ));
    }
    let stamped = claims.issued;
    if stamped < info.valid_from {
        return Err(Failure::new(
            Code::SealNotYetValid,
            "stamped before the seal's validity",
        ));
    }
    if stamped >= info.valid_until {
        return Err(Failure::new(
            Code::SealExpired,
            "stamped after the seal's validity",
        ));
    }
    if let Some(revocation) = &seal.revocation
        && stamped >= revocation.revoked_from
    {
        return Err(Failure::new(
            Code::SealRevoked,
            format!(
                "stamped at {}, seal revoked from {} ({})",
                stamped.seconds(),
                revocation.revoked_from.seconds(),
                revocation.reason
            ),
        ));
    }
    Ok(())
}

fn check_validity(claims: &Claims, now: Time) -> Result<(), Failure> {
    if claims.issued.seconds() > now.seconds().saturating_add(SKEW) {
        return Err(Failure::new(
            Code::IssuedInFuture,
            "issue time is in the future",
        ));
    }
    if now < claims.valid_from {
        return Err(Failure::new(Code::NotYetValid, "validity has not started"));
    }
    if claims.valid_until.is_some_and(|exp| now >= exp) {
        return Err(Failure::new(Code::Expired, "validity has ended"));
    }
    Ok(())
}

fn check_status(
    claims: &Claims,
    status: &impl StatusSource,
    now: Time,
    view: &mut StatusView,
) -> Result<(), Failure> {
    *view = status.view(claims, now);
    if let StatusView::Listed { state, .. } = view {
        return Err(Failure::new(
            state.verification_code(),
            format!("the region's status data lists the certificate as {state}"),
        ));
    }
    if let Some(deadline) = claims.promise_deadline
        && now >= deadline
        && !status.promise_fulfilled(claims, now)
    {
        return Err(Failure::new(
            Code::PromiseLapsed,
            "promise deadline passed with no recorded fulfilment",
        ));
    }
    Ok(())
}

/// A certificate decoded without trust, for people (`tongban-verify inspect`). Nothing here is
/// verified: the signature is not checked.
#[derive(Clone, Debug)]
pub struct Inspection {
    pub kid: KeyId,
    pub digest: [u8; 32],
    pub claims: Result<Claims, Failure>,
    /// Each attached disclosure, and whether its digest is committed in the claims.
    pub disclosures: Vec<(Result<Disclosure, Failure>, bool)>,
}

/// Decodes a certificate for display without verifying it.
pub fn inspect(bytes: &[u8]) -> Result<Inspection, Failure> {
    let envelope = Envelope::open(bytes, Kind::Certificate)?;
    let claims = Claims::decode(envelope.payload);
    let disclosures = envelope
        .disclosures
        .iter()
        .map(|bytes| {
            let opened = Disclosure::open(envelope.suite, bytes);
            let committed = match (&opened, &claims) {
                (Ok(d), Ok(c)) => c.commits(&d.digest),
                _ => false,
            };
            (opened, committed)
        })
        .collect();
    Ok(Inspection {
        kid: envelope.kid,
        digest: envelope.digest(),
        claims,
        disclosures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::RegionCode;
    use crate::testkit::region_code;

    /// Knows one region, where every certificate is valid and `.2` says the promises.
    struct One(RegionCode, Time, bool);

    impl StatusSource for One {
        fn view(&self, claims: &Claims, _: Time) -> StatusView {
            if claims.region == self.0 {
                StatusView::Valid { as_of: self.1 }
            } else {
                StatusView::Unknown
            }
        }

        fn promise_fulfilled(&self, claims: &Claims, _: Time) -> bool {
            claims.region == self.0 && self.2
        }
    }

    #[test]
    fn layered_asks_the_second_source_only_for_regions_the_first_does_not_know()
    -> Result<(), Box<dyn std::error::Error>> {
        let (a, b, c) = (
            region_code("341200")?,
            region_code("370100")?,
            region_code("321300")?,
        );
        let at = Time::new(1_784_937_600).ok_or("time")?;
        let own = One(a.clone(), at, false);
        let peers = One(b.clone(), at, true);
        let layered = Layered(&own, &peers);
        let f = crate::testkit::TestFederation::standard()?;
        let issued = crate::cert::issue(
            &f.draft(f.amr(), "2026000001")?,
            &f.amr().info,
            &f.amr().key,
            &mut crate::testkit::SeededSalts::new("x"),
        )?;
        let of = |region: &RegionCode| Claims {
            region: region.clone(),
            ..issued.claims.clone()
        };
        assert!(matches!(
            layered.view(&of(&a), at),
            StatusView::Valid { .. }
        ));
        assert!(matches!(
            layered.view(&of(&b), at),
            StatusView::Valid { .. }
        ));
        assert_eq!(layered.view(&of(&c), at), StatusView::Unknown);
        assert!(!layered.promise_fulfilled(&of(&a), at));
        assert!(layered.promise_fulfilled(&of(&b), at));
        Ok(())
    }
}
