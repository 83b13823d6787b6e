//! Holder-consented presentation codes (亮证码, specs/presentation.md §2) at the node: made for an
//! agency acting for a holder, resolved for staff of any member region. The rules of the code's
//! life (expiry, uses) are core's, checked here under the sequencer lock and again by the log's
//! rules when the answer is applied, so two staff resolving a one-use code at once get one copy
//! and one `PRESENTATION_USED_UP`.

use tongban_core::codes::{Code, Failure};
use tongban_core::ids::{RegionCode, Uscc};
use tongban_core::keys::KeyId;
use tongban_core::log::entry::{Act, ShareOutcome};
use tongban_core::log::state::StateRead;
use tongban_core::sharing::copy::check_fields_available;
use tongban_core::sharing::{
    PresentationCode, PresentationRecord, PresentationRequest, PresentationTerms,
};
use tongban_core::trust::TrustStore;
use tongban_core::values::{ShortText, Time};

use super::share::{ShareAnswer, delivered_by_own_region, unopened};
use super::{Region, now};
use crate::keyfile::random;
use crate::refusal::{Kind, Refusal};

/// A code made for a holder.
#[derive(Debug)]
pub struct MadePresentation {
    pub code: PresentationCode,
    pub expires: Time,
    pub uses: u32,
    /// The `presentation.created` entry.
    pub log_index: u64,
}

/// What staff ask when they resolve a code.
#[derive(Clone, Debug)]
pub struct PresentationAsk {
    /// The seal to sign the request with; `None`: the agency's most recent usable one.
    pub seal: Option<KeyId>,
    pub code: PresentationCode,
    pub purpose: ShortText,
    pub case: ShortText,
}

fn refusal(failure: Failure) -> Refusal {
    Refusal::code(Kind::of_sharing(failure.code), failure.code, failure.detail)
}

impl Region {
    /// Makes a code for `agency` (acting for the holder) that shows `terms.fields` of
    /// `terms.id` (specs/presentation.md §2.2): a certificate of this region's log, valid now,
    /// that carries those fields. Logged before the code is handed out.
    pub fn make_presentation(
        &self,
        agency: &str,
        terms: PresentationTerms,
    ) -> Result<MadePresentation, Refusal> {
        let agency = Uscc::parse(agency).map_err(|e| Refusal::invalid(e.to_string()))?;
        let now = now()?;
        let stored = match self.stored_valid(&terms.id, now)? {
            None => {
                return Err(Refusal::code(
                    Kind::NotFound,
                    Code::CertificateNotLogged,
                    format!("this region's log holds no certificate {}", terms.id),
                ));
            }
            Some(Err(failure)) => return Err(refusal(failure)),
            Some(Ok(stored)) => stored,
        };
        check_fields_available(&stored, &terms.fields).map_err(refusal)?;
        let random = random::<7>().map_err(|e| Refusal::internal(e.to_string()))?;
        let code = PresentationCode::from_random(self.code.clone(), random);
        let expires = Time::new(now.seconds() + terms.lifetime)
            .ok_or_else(|| Refusal::internal("code expiry beyond the time range"))?;
        // The log's rules refuse it if the certificate's state changed since it was verified.
        let seq = self.sequencer()?;
        let log_index = self.act(
            seq,
            Act::PresentationCreated {
                agency,
                id: terms.id,
                code: code.digest(self.suite()),
                fields: terms.fields,
                expires,
                uses: terms.uses,
            },
            &self.root,
        )?;
        Ok(MadePresentation {
            code,
            expires,
            uses: terms.uses,
            log_index,
        })
    }

    /// A presentation request of this region's `agency`, signed with its seal (presentation.md
    /// §2.3), for the region that made the code.
    pub fn presentation_request(
        &self,
        agency: &str,
        ask: &PresentationAsk,
    ) -> Result<Vec<u8>, Refusal> {
        let key = self.agency_seal_key(agency, ask.seal)?;
        PresentationRequest {
            to: ask.code.region().clone(),
            code: ask.code.digest(self.suite()),
            purpose: ask.purpose.clone(),
            case: ask.case.clone(),
            at: now()?,
            nonce: random::<16>().map_err(|e| Refusal::internal(e.to_string()))?,
        }
        .sign(&key)
        .map_err(|e| Refusal::invalid(e.to_string()))
    }

    /// Answers a presentation request that region `sender`'s node delivered (specs/presentation.md
    /// §2.4). A request that is not authentic, or that another region's node relays, is refused
    /// unlogged (`Err`); every other one is answered and logged, under the sequencer lock from
    /// reading the code's record to logging the answer, so no use is spent twice.
    pub fn answer_presentation_request(
        &self,
        request: &[u8],
        federation: &TrustStore,
        sender: &RegionCode,
    ) -> Result<ShareAnswer, Refusal> {
        let opened = PresentationRequest::open(request, federation).map_err(unopened)?;
        let requester = opened.requester();
        delivered_by_own_region(&requester, sender)?;
        let code = opened.request.code;
        let mut seq = self.sequencer()?;
        // Taken under the lock: no entry with a later time can come between this check and the
        // answer's entry.
        let now = now()?;
        let record = seq.read(&self.log, |state| state.presentation(&code))?;
        let answer = match &record {
            None => Err(Failure::new(
                Code::PresentationUnknown,
                "this region made no presentation with this code",
            )),
            Some(record) => match opened.authorise(&self.code, now) {
                Err(failure) => Err(failure),
                Ok(()) => self.presented_copy(record, request, now)?,
            },
        };
        let (outcome, result) = match answer {
            Ok((copy, expires)) => (
                ShareOutcome::Given {
                    copy: tongban_core::sharing::object_digest(self.suite(), &copy),
                    expires,
                },
                Ok(copy),
            ),
            Err(failure) => (ShareOutcome::Refused(failure.code), Err(failure)),
        };
        // Logged at the instant the code was checked at: the rules see the same expiry.
        let log_index = self.act_at(
            seq,
            Act::PresentationAnswered {
                requester: requester.region,
                agency: requester.agency,
                seal: opened.seal.info.key.kid(),
                code,
                id: record.map(|r| r.id),
                request: opened.digest,
                outcome,
            },
            &self.root,
            now,
        )?;
        Ok(match result {
            Ok(copy) => ShareAnswer::Given { copy, log_index },
            Err(failure) => ShareAnswer::Refused { failure, log_index },
        })
    }

    /// Steps 3–5 of specs/presentation.md §2.4 for a code this region made: still redeemable,
    /// its certificate valid now; the copy of the chosen fields and its expiry, or the refusal to
    /// log. The outer error is the node's own failure.
    fn presented_copy(
        &self,
        record: &PresentationRecord,
        request: &[u8],
        now: Time,
    ) -> Result<Result<(Vec<u8>, Time), Failure>, Refusal> {
        if let Err(failure) = record.redeemable(now) {
            return Ok(Err(failure));
        }
        let stored = match self.stored_valid(&record.id, now)? {
            None => {
                return Err(Refusal::internal(
                    "a presentation of a certificate not logged",
                ));
            }
            Some(Err(failure)) => return Ok(Err(failure)),
            Some(Ok(stored)) => stored,
        };
        Ok(Ok(self.sign_copy(request, &stored, &record.fields, now)?))
    }
}
