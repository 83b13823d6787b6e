//! Purpose-bound copies (加注件, specs/sharing.md §4.3–4.4): the chosen fields of a certificate,
//! given by its region to one agency for one purpose and case until a time, signed by the region
//! root around the certificate itself and the request that asked for it.

use std::collections::BTreeSet;

use crate::cbor::Key;
use crate::cert::{
    self, FieldName, Inspection, StatusSource, Verdict, Verification, inspect, present,
};
use crate::codes::{Code, Failure};
use crate::encode::{bytes, entry, map_bytes, text, uint};
use crate::envelope::{BuildError, Envelope, Kind, seal};
use crate::fields::{Bad, Fields};
use crate::ids::Identifier;
use crate::ids::RegionCode;
use crate::keys::{KeyId, SecretKey};
use crate::sharing::presentation::{OpenedPresentation, PresentationRequest};
use crate::sharing::request::{OpenedRequest, ShareRequest};
use crate::sharing::{Party, object_digest, open_region_signed, same_region};
use crate::trust::TrustStore;
use crate::values::{ShortText, Time};

/// The longest a copy may be valid: 90 days.
pub const MAX_LIFETIME: u64 = 90 * 86_400;

/// What a copy holds, before the region root signs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyContents {
    /// The providing region.
    pub region: RegionCode,
    /// The share request, exactly as received.
    pub request: Vec<u8>,
    /// The certificate with exactly the requested disclosures.
    pub certificate: Vec<u8>,
    pub issued: Time,
    pub expires: Time,
}

impl CopyContents {
    /// A copy of `stored` (a certificate with all its disclosures) carrying only `fields`.
    pub fn of(
        region: RegionCode,
        request: Vec<u8>,
        stored: &[u8],
        fields: &[FieldName],
        issued: Time,
        expires: Time,
    ) -> Result<CopyContents, BuildError> {
        let certificate = present(stored, |name| fields.contains(name))
            .map_err(|f| BuildError::Invalid(f.to_string()))?;
        Ok(CopyContents {
            region,
            request,
            certificate,
            issued,
            expires,
        })
    }

    fn check(&self) -> Result<(), Bad> {
        if self.expires <= self.issued {
            return Err(Bad::new("a copy must expire after it is made"));
        }
        if self.expires.seconds() - self.issued.seconds() > MAX_LIFETIME {
            return Err(Bad::new("a copy may be valid for at most 90 days"));
        }
        Ok(())
    }

    pub fn payload(&self) -> Result<Vec<u8>, BuildError> {
        self.check().map_err(|b| BuildError::Invalid(b.detail))?;
        map_bytes(vec![
            entry("v", uint(1)),
            entry("rc", text(self.region.as_str())),
            entry("req", bytes(&self.request)),
            entry("cert", bytes(&self.certificate)),
            entry("iat", uint(self.issued.seconds())),
            entry("exp", uint(self.expires.seconds())),
        ])
    }

    /// The copy, signed by the providing region's root.
    pub fn sign(&self, region_root: &SecretKey) -> Result<Vec<u8>, BuildError> {
        seal(Kind::Copy, region_root, self.payload()?, &[])
    }
}

/// Step 5 of specs/sharing.md §4.2: every field in `fields` is among the disclosures attached to
/// `stored`.
pub fn check_fields_available(stored: &[u8], fields: &[FieldName]) -> Result<(), Failure> {
    let envelope = Envelope::open(stored, Kind::Certificate)?;
    let mut present = BTreeSet::new();
    for bytes in &envelope.disclosures {
        let (name, _) = crate::cert::Disclosure::read_borrowed(bytes)?;
        present.insert(name);
    }
    match fields.iter().find(|f| !present.contains(f.as_str())) {
        None => Ok(()),
        Some(missing) => Err(Failure::new(
            Code::ShareFieldUnavailable,
            format!("the certificate has no field {missing}"),
        )),
    }
}

/// The payload, borrowed from the received bytes.
struct RawCopy<'a> {
    region: RegionCode,
    request: &'a [u8],
    certificate: &'a [u8],
    issued: Time,
    expires: Time,
}

fn read(payload: &[u8]) -> Result<RawCopy<'_>, Bad> {
    let mut f = Fields::whole(payload)?;
    f.version_1()?;
    let region = f.text(Key::Text("rc"))?;
    let request = f.bytes(Key::Text("req"))?;
    let certificate = f.bytes(Key::Text("cert"))?;
    let issued = f.time(Key::Text("iat"))?;
    let expires = f.time(Key::Text("exp"))?;
    f.finish()?;
    let copy = RawCopy {
        region: RegionCode::parse(region).map_err(|e| Bad::new(e.to_string()))?,
        request,
        certificate,
        issued,
        expires,
    };
    if copy.expires <= copy.issued || copy.expires.seconds() - copy.issued.seconds() > MAX_LIFETIME
    {
        return Err(Bad::new("\"exp\" must follow \"iat\" by at most 90 days"));
    }
    Ok(copy)
}

/// The result of verifying a copy (specs/sharing.md §4.4). Fields fill in as the steps pass.
#[derive(Clone, Debug)]
pub struct CopyVerification {
    pub verdict: Verdict,
    pub code: Code,
    /// For people; not stable.
    pub detail: String,
    /// The copy's object digest.
    pub digest: [u8; 32],
    /// The providing region, once the root's signature verified.
    pub provider: Option<RegionCode>,
    pub issued: Option<Time>,
    pub expires: Option<Time>,
    /// The request and its recipient (with the agency's name), once the request opened.
    pub request: Option<CopyRequest>,
    pub recipient: Option<(Party, ShortText)>,
    /// The request's object digest.
    pub request_digest: Option<[u8; 32]>,
    /// The certificate's own verification, once it was reached (step 10).
    pub certificate: Option<Verification>,
}

impl CopyVerification {
    pub fn is_valid(&self) -> bool {
        self.verdict == Verdict::Valid
    }

    /// The certificate the copy is of: the one its share request named, or for a presentation
    /// request the one its certificate's claims name.
    pub fn id(&self) -> Option<&Identifier> {
        self.request.as_ref().and_then(CopyRequest::id).or_else(|| {
            let certificate = self.certificate.as_ref()?;
            certificate.claims.as_ref().map(|c| &c.id)
        })
    }
}

/// Verifies a copy presented by `presenter` (specs/sharing.md §4.4).
pub fn verify_copy(
    bytes: &[u8],
    trust: &TrustStore,
    status: &impl StatusSource,
    now: Time,
    presenter: &Party,
) -> CopyVerification {
    let mut out = CopyVerification {
        verdict: Verdict::Invalid,
        code: Code::Ok,
        detail: String::new(),
        digest: object_digest(trust.suite(), bytes),
        provider: None,
        issued: None,
        expires: None,
        request: None,
        recipient: None,
        request_digest: None,
        certificate: None,
    };
    match run(bytes, trust, status, now, presenter, &mut out) {
        Ok(()) => {
            out.verdict = Verdict::Valid;
            out.code = Code::Ok;
            out.detail = "every check passed".into();
        }
        Err(failure) => {
            out.code = failure.code;
            out.detail = failure.detail;
        }
    }
    out
}

fn run(
    bytes: &[u8],
    trust: &TrustStore,
    status: &impl StatusSource,
    now: Time,
    presenter: &Party,
    out: &mut CopyVerification,
) -> Result<(), Failure> {
    // 0
    trust.check_fresh(now)?;
    // 1–4, and the payload's CBOR
    let (envelope, root) = open_region_signed(bytes, Kind::Copy, trust)?;
    // 5
    let copy = read(envelope.payload).map_err(|b| b.into_failure(Code::ClaimsInvalid))?;
    out.issued = Some(copy.issued);
    out.expires = Some(copy.expires);
    // 6
    same_region(&copy.region, &root.region, "the copy")?;
    out.provider = Some(copy.region.clone());
    // 7
    let in_request = |mut f: Failure| {
        f.detail = format!("the copy's request: {}", f.detail);
        f
    };
    let opened = AnyRequest::open(copy.request, trust).map_err(in_request)?;
    let (requester, agency_name, digest) = opened.signer();
    out.request = Some(opened.contents());
    out.request_digest = Some(digest);
    out.recipient = Some((requester.clone(), agency_name));
    opened
        .authorise(&copy.region, copy.issued)
        .map_err(in_request)?;
    // 8
    if copy.issued.seconds() > now.seconds().saturating_add(crate::cert::verify::SKEW) {
        return Err(Failure::new(
            Code::IssuedInFuture,
            "the copy was made in the future",
        ));
    }
    if now >= copy.expires {
        return Err(Failure::new(
            Code::CopyExpired,
            format!("the copy expired at {}", copy.expires.to_rfc3339()),
        ));
    }
    // 9
    let recipient = requester;
    if *presenter != recipient {
        return Err(Failure::new(
            Code::CopyWrongRecipient,
            format!("the copy is for {recipient}, presented by {presenter}"),
        ));
    }
    // 10
    let verification = cert::verify(copy.certificate, trust, status, now);
    // 11
    let matches = matches_request(&verification, &opened, &copy.region);
    let code = verification.code;
    let detail = verification.detail.clone();
    out.certificate = Some(verification);
    matches?;
    // 12
    if code != Code::Ok {
        return Err(Failure::new(code, format!("the certificate: {detail}")));
    }
    Ok(())
}

/// The request a copy answers (its `"req"`, specs/sharing.md §4.3): an agency's share request,
/// or its presentation request for a holder's code (presentation.md §2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CopyRequest {
    Share(ShareRequest),
    Presentation(PresentationRequest),
}

impl CopyRequest {
    /// The matter being handled.
    pub fn purpose(&self) -> &ShortText {
        match self {
            CopyRequest::Share(r) => &r.purpose,
            CopyRequest::Presentation(r) => &r.purpose,
        }
    }

    /// The requester's case id.
    pub fn case(&self) -> &ShortText {
        match self {
            CopyRequest::Share(r) => &r.case,
            CopyRequest::Presentation(r) => &r.case,
        }
    }

    /// The certificate asked for: a share request names it; a presentation request names a code,
    /// and the holder's region chose the certificate.
    pub fn id(&self) -> Option<&Identifier> {
        match self {
            CopyRequest::Share(r) => Some(&r.id),
            CopyRequest::Presentation(_) => None,
        }
    }
}

/// A copy's request, opened by the rules of its `typ`.
enum AnyRequest {
    Share(OpenedRequest),
    Presentation(OpenedPresentation),
}

impl AnyRequest {
    /// Step 7's opening: a presentation request when the envelope's `typ` says so, else a share
    /// request (whose steps give every other envelope its code, `WRONG_TYPE` included). The
    /// checks before the `typ` are the same for both, so their codes do not depend on the order.
    fn open(bytes: &[u8], trust: &TrustStore) -> Result<AnyRequest, Failure> {
        match PresentationRequest::open(bytes, trust) {
            Ok(opened) => Ok(AnyRequest::Presentation(opened)),
            Err(f) if f.code == Code::WrongType => {
                ShareRequest::open(bytes, trust).map(AnyRequest::Share)
            }
            Err(f) => Err(f),
        }
    }

    /// The requesting agency, its name and the request's object digest.
    fn signer(&self) -> (Party, ShortText, [u8; 32]) {
        match self {
            AnyRequest::Share(o) => (o.requester(), o.seal.info.agency_name.clone(), o.digest),
            AnyRequest::Presentation(o) => {
                (o.requester(), o.seal.info.agency_name.clone(), o.digest)
            }
        }
    }

    fn contents(&self) -> CopyRequest {
        match self {
            AnyRequest::Share(o) => CopyRequest::Share(o.request.clone()),
            AnyRequest::Presentation(o) => CopyRequest::Presentation(o.request.clone()),
        }
    }

    /// Steps 6–9 of sharing.md §4.1 for a share request; 6–8 for a presentation request.
    fn authorise(&self, here: &RegionCode, at: Time) -> Result<(), Failure> {
        match self {
            AnyRequest::Share(o) => o.authorise(here, at),
            AnyRequest::Presentation(o) => o.authorise(here, at),
        }
    }
}

/// Step 11: the certificate is of the copy's region and, for a share request, the one requested
/// with exactly the requested fields disclosed. A presentation request names no certificate or
/// fields: the holder chose them, and the providing region signed the copy for them.
fn matches_request(
    verification: &Verification,
    request: &AnyRequest,
    region: &RegionCode,
) -> Result<(), Failure> {
    // Only a certificate that passed steps 9 and 10 there can be compared with the request.
    let Some(claims) = verification
        .claims
        .as_ref()
        .filter(|_| verification.disclosures_checked)
    else {
        return Ok(());
    };
    let mismatch = |detail: String| Err(Failure::new(Code::CopyMismatch, detail));
    if let AnyRequest::Share(opened) = request
        && claims.id != opened.request.id
    {
        return mismatch(format!(
            "the copy holds {}, the request asked for {}",
            claims.id, opened.request.id
        ));
    }
    if claims.region != *region {
        return mismatch(format!(
            "a certificate of region {} in a copy of region {region}",
            claims.region
        ));
    }
    let AnyRequest::Share(opened) = request else {
        return Ok(());
    };
    let disclosed: BTreeSet<&str> = verification
        .disclosed
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    let requested: BTreeSet<&str> = opened
        .request
        .fields
        .iter()
        .map(FieldName::as_str)
        .collect();
    if disclosed != requested {
        return mismatch(format!("disclosed {disclosed:?}, requested {requested:?}"));
    }
    Ok(())
}

/// A copy decoded without trust, for people (`tongban-verify copy inspect`). Nothing is verified.
#[derive(Clone, Debug)]
pub struct CopyInspection {
    /// Key id of the signing region root.
    pub kid: KeyId,
    pub digest: [u8; 32],
    pub region: RegionCode,
    pub issued: Time,
    pub expires: Time,
    /// The request's signing seal's kid and its contents, if they decode.
    pub request_kid: Result<KeyId, Failure>,
    pub request: Result<CopyRequest, Failure>,
    pub certificate: Result<Inspection, Failure>,
}

/// Decodes a copy for display without verifying it.
pub fn inspect_copy(bytes: &[u8]) -> Result<CopyInspection, Failure> {
    let envelope = Envelope::open(bytes, Kind::Copy)?;
    crate::cbor::check(envelope.payload, Kind::Copy.size_limit(), false)?;
    let copy = read(envelope.payload).map_err(|b| b.into_failure(Code::ClaimsInvalid))?;
    let request_envelope = match Envelope::open(copy.request, Kind::PresentationRequest) {
        Err(f) if f.code == Code::WrongType => Envelope::open(copy.request, Kind::ShareRequest),
        opened => opened,
    };
    let request = request_envelope.clone().and_then(|e| {
        crate::cbor::check(e.payload, e.kind.size_limit(), false)?;
        let decoded = match e.kind {
            Kind::PresentationRequest => {
                PresentationRequest::from_payload(e.payload).map(CopyRequest::Presentation)
            }
            _ => ShareRequest::from_payload(e.payload).map(CopyRequest::Share),
        };
        decoded.map_err(|b| b.into_failure(Code::ClaimsInvalid))
    });
    Ok(CopyInspection {
        kid: envelope.kid,
        digest: object_digest(envelope.suite, bytes),
        region: copy.region,
        issued: copy.issued,
        expires: copy.expires,
        request_kid: request_envelope.map(|e| e.kid),
        request,
        certificate: inspect(copy.certificate),
    })
}
