//! Share requests (specs/sharing.md §4.1): an agency asks another region for chosen fields of a
//! certificate, for a purpose and a case, signed with one of its e-seals.

use ciborium::Value;

use crate::cbor::{self, Key};
use crate::cert::FieldName;
use crate::codes::{Code, Failure};
use crate::encode::{bytes, entry, map_bytes, text, uint};
use crate::envelope::{BuildError, Envelope, Kind, MAX_DISCLOSURES, seal};
use crate::fields::{Bad, Fields};
use crate::ids::{Identifier, RegionCode};
use crate::keys::SecretKey;
use crate::sharing::{Party, object_digest, same_region, seal_may_act};
use crate::trust::{SealEntry, TrustStore};
use crate::values::{ShortText, Time};

/// How far a request's time may be from the answering node's clock, in seconds.
pub const FRESHNESS: u64 = crate::cert::verify::SKEW;

/// What an agency asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareRequest {
    /// The region asked: the one that issued the certificate.
    pub to: RegionCode,
    pub id: Identifier,
    /// The fields wanted, sorted and unique.
    pub fields: Vec<FieldName>,
    /// The matter being handled (办理事项).
    pub purpose: ShortText,
    /// The requester's case id (办件编号).
    pub case: ShortText,
    pub at: Time,
    pub nonce: [u8; 16],
}

impl ShareRequest {
    fn check(&self) -> Result<(), Bad> {
        if !(1..=MAX_DISCLOSURES).contains(&self.fields.len()) {
            return Err(Bad::new("a request asks for 1 to 256 fields"));
        }
        if self
            .fields
            .windows(2)
            .any(|w| w[0].as_str() >= w[1].as_str())
        {
            return Err(Bad::new("requested fields must be sorted and unique"));
        }
        Ok(())
    }

    pub fn payload(&self) -> Result<Vec<u8>, BuildError> {
        self.check().map_err(|b| BuildError::Invalid(b.detail))?;
        let fields = self.fields.iter().map(|f| text(f.as_str())).collect();
        map_bytes(vec![
            entry("v", uint(1)),
            entry("to", text(self.to.as_str())),
            entry("id", text(self.id.as_str())),
            entry("f", Value::Array(fields)),
            entry("pp", text(self.purpose.as_str())),
            entry("cs", text(self.case.as_str())),
            entry("at", uint(self.at.seconds())),
            entry("n", bytes(&self.nonce)),
        ])
    }

    /// The request, signed with a seal key of the requesting agency.
    pub fn sign(&self, seal_key: &SecretKey) -> Result<Vec<u8>, BuildError> {
        seal(Kind::ShareRequest, seal_key, self.payload()?, &[])
    }

    /// Decodes a payload (its CBOR already checked).
    pub fn from_payload(payload: &[u8]) -> Result<ShareRequest, Bad> {
        let mut f = Fields::whole(payload)?;
        f.version_1()?;
        let to = f.text(Key::Text("to"))?;
        let id = f.text(Key::Text("id"))?;
        let fields = f.array(Key::Text("f"), "an array of texts", |r| r.text())?;
        let purpose = f.short_text(Key::Text("pp"))?;
        let case = f.short_text(Key::Text("cs"))?;
        let at = f.time(Key::Text("at"))?;
        let nonce = f.fixed::<16>(Key::Text("n"))?;
        f.finish()?;
        let request = ShareRequest {
            to: RegionCode::parse(to).map_err(|e| Bad::new(e.to_string()))?,
            id: Identifier::parse(id).map_err(|e| Bad::new(e.to_string()))?,
            fields: fields
                .into_iter()
                .map(|n| {
                    FieldName::parse(n)
                        .ok_or_else(|| Bad::new(format!("{n:?} is not a field name")))
                })
                .collect::<Result<_, _>>()?,
            purpose: ShortText::new(purpose).ok_or_else(|| Bad::new("purpose"))?,
            case: ShortText::new(case).ok_or_else(|| Bad::new("case id"))?,
            at,
            nonce,
        };
        request.check()?;
        Ok(request)
    }

    /// Steps 1–5 of specs/sharing.md §4.1: the request is well formed and signed by an e-seal of
    /// `trust`. Nothing here says the requester may have what it asks for: see
    /// [`OpenedRequest::authorise`].
    pub fn open(bytes: &[u8], trust: &TrustStore) -> Result<OpenedRequest, Failure> {
        open_sealed(bytes, trust, Kind::ShareRequest, ShareRequest::from_payload)
    }
}

/// Steps 1–5 of specs/sharing.md §4.1 for a request of `kind` signed by an agency's e-seal (a
/// share request, a presentation request): size and envelope, the seal in `trust`, its strict
/// signature, the payload's CBOR, then `decode` (`CLAIMS_INVALID`).
pub(crate) fn open_sealed<R>(
    bytes: &[u8],
    trust: &TrustStore,
    kind: Kind,
    decode: fn(&[u8]) -> Result<R, Bad>,
) -> Result<Opened<R>, Failure> {
    let envelope = Envelope::open(bytes, kind)?;
    let seal = crate::cert::find_seal(&envelope.kid, |kid| trust.seal(kid))?;
    envelope.verify(&seal.info.key)?;
    cbor::check(envelope.payload, kind.size_limit(), false)?;
    let request = decode(envelope.payload).map_err(|b| b.into_failure(Code::ClaimsInvalid))?;
    Ok(Opened {
        request,
        seal: seal.clone(),
        digest: object_digest(trust.suite(), bytes),
    })
}

/// A request whose seal signature verified: a share request ([`OpenedRequest`]) or a
/// presentation request.
#[derive(Clone, Debug)]
pub struct Opened<R> {
    pub request: R,
    /// The seal that signed it: it names the requesting agency and region, and its scope.
    pub seal: SealEntry,
    /// The request's object digest.
    pub digest: [u8; 32],
}

/// A share request whose seal signature verified.
pub type OpenedRequest = Opened<ShareRequest>;

impl<R> Opened<R> {
    /// The requesting agency: the seal's agency in the seal's region.
    pub fn requester(&self) -> Party {
        Party {
            region: self.seal.info.region.clone(),
            agency: self.seal.info.agency.clone(),
        }
    }

    /// Steps 6–8 of specs/sharing.md §4.1, shared by every request a seal signs: the request
    /// (naming `to`, made at `at`) is for region `here`, its seal could sign it, and it is fresh
    /// at `now`.
    pub(crate) fn authorise_sent(
        &self,
        to: &RegionCode,
        at: Time,
        here: &RegionCode,
        now: Time,
    ) -> Result<(), Failure> {
        same_region(to, here, "the request")?;
        seal_may_act(&self.seal, at)?;
        if now.seconds().abs_diff(at.seconds()) > FRESHNESS {
            return Err(Failure::new(
                Code::ShareRequestStale,
                format!(
                    "request made at {}, {} s from {}",
                    at.to_rfc3339(),
                    now.seconds().abs_diff(at.seconds()),
                    now.to_rfc3339()
                ),
            ));
        }
        Ok(())
    }
}

impl OpenedRequest {
    /// Steps 6–9 of specs/sharing.md §4.1: the request is for region `here`, its seal could sign
    /// it, it is fresh at `now`, and the seal's sharing scope covers the certificate's type.
    pub fn authorise(&self, here: &RegionCode, now: Time) -> Result<(), Failure> {
        let request = &self.request;
        self.authorise_sent(&request.to, request.at, here, now)?;
        let type_code = request.id.type_code();
        if !self.seal.info.may_request(type_code) {
            return Err(Failure::new(
                Code::ShareNotAuthorised,
                format!(
                    "seal {} of {} may not ask for certificates of type {}",
                    self.seal.info.id,
                    self.seal.info.agency_name,
                    type_code.as_str()
                ),
            ));
        }
        Ok(())
    }
}
