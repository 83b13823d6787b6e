//! tongban-core for the verification page (web/page): the browser verifies a certificate, or the
//! offline QR text of one (specs/presentation.md §1), against the trust bundle and status lists it
//! cached, with the same code every other verifier runs (specs/verification.md §2). Nothing is
//! sent anywhere: the page hands bytes in and reads a verdict out.
//!
//! The interface is a handful of plain exports, no wasm-bindgen: the page asks [`input`] for a
//! buffer of the size it needs, writes its bytes there, calls a function, and reads the JSON
//! answer at [`output_ptr`] for [`output_len`] bytes. This module owns every byte of memory
//! involved; the exports are safe code.
// `#[unsafe(no_mangle)]` on the exports, so the .wasm names them: no unsafe block anywhere.
#![allow(unsafe_code)]

use std::cell::RefCell;

use serde_json::{Value, json};
use tongban_core::cert::verify::{StatusView, Verification};
use tongban_core::cert::{Claims, FieldValue};
use tongban_core::codes::{Code, Failure};
use tongban_core::keys::KeyId;
use tongban_core::qr;
use tongban_core::sharing::PresentationCode;
use tongban_core::trust::{StatusList, StatusLists, TrustStore};
use tongban_core::values::Time;

/// The most bytes one input may have: a trust bundle's limit (encoding.md §5), above a
/// certificate's and a status list's of a city.
pub const MAX_INPUT: usize = 16 << 20;

/// What the page has handed in so far.
#[derive(Default)]
struct Held {
    trust: Option<TrustStore>,
    /// The federation root the page pinned when it first loaded a bundle.
    pinned: Option<KeyId>,
    lists: StatusLists,
}

thread_local! {
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static OUTPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static HELD: RefCell<Held> = RefCell::new(Held::default());
}

/// A buffer of `len` bytes for the next input; returns where the page writes them (null when
/// `len` is over [`MAX_INPUT`]).
#[unsafe(no_mangle)]
pub extern "C" fn input(len: usize) -> *mut u8 {
    if len > MAX_INPUT {
        return std::ptr::null_mut();
    }
    INPUT.with_borrow_mut(|buffer| {
        buffer.clear();
        buffer.resize(len, 0);
        buffer.as_mut_ptr()
    })
}

/// Where the last answer's JSON starts.
#[unsafe(no_mangle)]
pub extern "C" fn output_ptr() -> *const u8 {
    OUTPUT.with_borrow(|out| out.as_ptr())
}

/// How long the last answer's JSON is.
#[unsafe(no_mangle)]
pub extern "C" fn output_len() -> usize {
    OUTPUT.with_borrow(Vec::len)
}

/// Runs `f` on the input and keeps its answer as the output; 1 when it succeeded, else 0.
fn answer(f: impl FnOnce(&[u8]) -> Result<Value, Value>) -> u32 {
    let (ok, value) = match INPUT.with_borrow(|input| f(input)) {
        Ok(value) => (1, value),
        Err(value) => (0, value),
    };
    OUTPUT.with_borrow_mut(|out| {
        out.clear();
        // A Value always serialises.
        let _ = serde_json::to_writer(&mut *out, &value);
    });
    ok
}

fn failure_json(f: &Failure) -> Value {
    json!({"code": f.code.as_str(), "message": f.code.about(), "detail": f.detail})
}

/// Whole seconds since 1970 from the page's clock (`Date.now() / 1000`).
fn time(now: f64) -> Result<Time, Value> {
    let refused = || {
        failure_json(&Failure::new(
            Code::TrustBundleInvalid,
            format!("the device's clock reads {now}"),
        ))
    };
    if !(0.0..9.0e15).contains(&now) {
        return Err(refused());
    }
    Time::new(now as u64).ok_or_else(refused)
}

/// Pins the federation root whose key id the input holds (32 hex digits): [`set_trust`] then
/// refuses a bundle of another federation (`TRUST_BUNDLE_UNTRUSTED`).
#[unsafe(no_mangle)]
pub extern "C" fn pin_federation() -> u32 {
    answer(|input| {
        let kid = std::str::from_utf8(input)
            .ok()
            .and_then(|t| KeyId::from_hex(t.trim()))
            .ok_or_else(|| json!({"code": "INVALID_REQUEST", "detail": "not 32 hex digits"}))?;
        HELD.with_borrow_mut(|held| held.pinned = Some(kid));
        Ok(json!({"pinned": kid.to_hex()}))
    })
}

/// Loads the input as the trust bundle (trust.md §5) at time `now`: the seals and region roots
/// every later verification uses. Status lists held are dropped (they were checked against the
/// bundle before).
#[unsafe(no_mangle)]
pub extern "C" fn set_trust(now: f64) -> u32 {
    answer(|input| {
        let now = time(now)?;
        let pinned = HELD.with_borrow(|held| held.pinned);
        let trust = TrustStore::load(input, now, pinned).map_err(|f| failure_json(&f))?;
        let described = trust_json(&trust);
        HELD.with_borrow_mut(|held| {
            held.trust = Some(trust);
            held.lists = StatusLists::default();
        });
        Ok(described)
    })
}

fn trust_json(trust: &TrustStore) -> Value {
    json!({
        "version": trust.version,
        "issued": trust.issued.seconds(),
        "expires": trust.expires.seconds(),
        "federation": trust.federation.key.kid().to_hex(),
        "regions": trust.regions().iter().map(|r| json!({
            "code": r.region.as_str(), "name": r.name.as_str(),
        })).collect::<Vec<_>>(),
    })
}

/// Adds the input as a region's status list (status.md §5), checked against the trust bundle.
#[unsafe(no_mangle)]
pub extern "C" fn add_status_list() -> u32 {
    answer(|input| {
        HELD.with_borrow_mut(|held| {
            let trust = held.trust.as_ref().ok_or_else(no_trust)?;
            let list = StatusList::load(input, trust).map_err(|f| failure_json(&f))?;
            let described = json!({
                "region": list.region.as_str(), "version": list.version,
                "issued": list.issued.seconds(), "expires": list.expires.seconds(),
                "ttl": list.ttl,
            });
            held.lists.add(list);
            Ok(described)
        })
    })
}

fn no_trust() -> Value {
    json!({"code": "TRUST_BUNDLE_INVALID", "detail": "no trust bundle is loaded"})
}

/// Verifies the input at `now`: a certificate's bytes, or its offline QR text. The answer is the
/// verification (specs/verification.md §1) with the claims and disclosed fields.
#[unsafe(no_mangle)]
pub extern "C" fn verify(now: f64) -> u32 {
    answer(|input| {
        let now = time(now)?;
        HELD.with_borrow(|held| {
            let trust = held.trust.as_ref().ok_or_else(no_trust)?;
            let verification = qr::verify_either(input, trust, &held.lists, now);
            Ok(verification_json(&verification))
        })
    })
}

/// Verifies the input at `now` as text a scanner, a camera or a person gave: an offline QR
/// text, read by the rules of specs/presentation.md §1 in order (`QR_PREFIX` for any other
/// text), then verified.
#[unsafe(no_mangle)]
pub extern "C" fn verify_text(now: f64) -> u32 {
    answer(|input| {
        let now = time(now)?;
        HELD.with_borrow(|held| {
            let trust = held.trust.as_ref().ok_or_else(no_trust)?;
            let verification = match std::str::from_utf8(input) {
                Err(_) => Verification::refused(
                    now,
                    Failure::new(Code::QrEncoding, "the text is not ASCII"),
                ),
                Ok(text) => match qr::decode(text) {
                    Ok(certificate) => {
                        tongban_core::cert::verify(&certificate, trust, &held.lists, now)
                    }
                    Err(failure) => Verification::refused(now, failure),
                },
            };
            Ok(verification_json(&verification))
        })
    })
}

/// The certificate inside the input's offline QR text (specs/presentation.md §1), in hex: for
/// the page to send it to its node when staff chose to verify there.
#[unsafe(no_mangle)]
pub extern "C" fn decode_qr() -> u32 {
    answer(|input| {
        let text = std::str::from_utf8(input)
            .map_err(|_| failure_json(&Failure::new(Code::QrEncoding, "the text is not ASCII")))?;
        let certificate = qr::decode(text).map_err(|f| failure_json(&f))?;
        Ok(json!({"certificate": hex::encode(certificate)}))
    })
}

/// Reads the input as a presentation code (specs/presentation.md §2.1): its canonical text and
/// region, or `PRESENTATION_MALFORMED`. The page sends a code to its node to resolve; nothing
/// here can.
#[unsafe(no_mangle)]
pub extern "C" fn presentation_code() -> u32 {
    answer(|input| {
        let text = std::str::from_utf8(input)
            .map_err(|_| failure_json(&Failure::new(Code::PresentationMalformed, "not text")))?;
        let code = PresentationCode::parse(text).map_err(|f| failure_json(&f))?;
        Ok(json!({"code": code.text(), "region": code.region().as_str()}))
    })
}

fn field_json(value: &FieldValue) -> Value {
    match value {
        FieldValue::Text(t) => json!(t),
        FieldValue::Int(i) => json!(i),
        FieldValue::Bool(b) => json!(b),
    }
}

fn claims_json(c: &Claims) -> Value {
    json!({
        "id": c.id.as_str(),
        "type_name": c.type_name.as_str(),
        "agency": c.agency.as_str(),
        "agency_name": c.agency_name.as_str(),
        "region": c.region.as_str(),
        "issued": c.issued.seconds(),
        "valid_from": c.valid_from.seconds(),
        "valid_until": c.valid_until.map(Time::seconds),
        "level": c.level.as_str(),
        "promise_deadline": c.promise_deadline.map(Time::seconds),
    })
}

fn status_json(v: &Verification) -> Value {
    let age = v.status_age();
    match &v.status {
        StatusView::Unknown => json!({"known": false}),
        StatusView::Valid { as_of } => {
            json!({"known": true, "state": 1, "name": "valid", "as_of": as_of.seconds(), "age": age})
        }
        StatusView::Listed {
            state, note, as_of, ..
        } => json!({
            "known": true, "state": state.code(), "name": state.name(),
            "reason": note.as_ref().map(|n| n.as_str().to_owned()),
            "as_of": as_of.seconds(), "age": age,
        }),
    }
}

/// The verification as the page shows it.
pub fn verification_json(v: &Verification) -> Value {
    json!({
        "verdict": v.verdict.as_str(),
        "code": v.code.as_str(),
        "message": v.code.about(),
        "detail": v.detail,
        "seal": v.seal.as_ref().map(|(id, name)| json!({"id": id, "name": name})),
        "claims": v.claims.as_ref().map(claims_json),
        "disclosed": v.disclosed.iter().map(|(n, value)| json!({
            "name": n.as_str(), "value": field_json(value),
        })).collect::<Vec<_>>(),
        "undisclosed": v.undisclosed,
        "digest": v.digest.map(hex::encode),
        "status": status_json(v),
        "checked_at": v.checked_at.seconds(),
    })
}

/// getrandom 0.2 (asked by the SM2 crate's key generation) has no source of randomness on
/// wasm32-unknown-unknown; verifying never draws any, so the page's source refuses.
#[cfg(target_arch = "wasm32")]
mod no_randomness {
    fn refuse(_: &mut [u8]) -> Result<(), getrandom02::Error> {
        Err(getrandom02::Error::UNSUPPORTED)
    }
    getrandom02::register_custom_getrandom!(refuse);
}

#[cfg(test)]
mod tests;
