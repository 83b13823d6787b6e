//! Holder-consented presentation codes over HTTP (specs/presentation.md §2): an agency acting for
//! a holder makes one; staff of any member region resolve one through their own node, which asks
//! the code's region over the federation and logs the copy it receives.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tongban_core::cert::FieldName;
use tongban_core::sharing::{PresentationCode, PresentationTerms};

use super::input::{self, Body};
use super::share::{copy_created, federation_for};
use super::{Agency, App, blocking};
use crate::federation::Shared;
use crate::refusal::{Kind, Refusal};
use crate::region::{PresentationAsk, ShareAnswer};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MakeBody {
    /// The certificate, of this region.
    id: String,
    /// The fields the code shows (1 to 256 field names).
    fields: Vec<String>,
    /// Seconds, 10 to 1,800; 300 when absent.
    lifetime_seconds: Option<u64>,
    /// How many times the code may be resolved, 1 to 100; once when absent.
    uses: Option<u32>,
}

fn field_names(fields: &[String]) -> Result<Vec<FieldName>, Refusal> {
    if fields.len() > tongban_core::envelope::MAX_DISCLOSURES {
        return Err(Refusal::invalid("fields: 1 to 256 field names"));
    }
    fields
        .iter()
        .map(|f| {
            FieldName::parse(f)
                .ok_or_else(|| Refusal::invalid(format!("fields: {f:?} is not a field name")))
        })
        .collect()
}

/// `POST /v1/presentations`: the calling agency, acting for the holder, makes a code that shows
/// chosen fields of one of this region's certificates for a few minutes (specs/presentation.md
/// §2.2). The answer holds the code to read out, the text and SVG of its QR code, and its
/// `presentation.created` entry.
pub async fn make(
    State(app): State<App>,
    Agency(agency): Agency,
    Body(body): Body<MakeBody>,
) -> Result<(StatusCode, Json<Value>), Refusal> {
    let terms = PresentationTerms::new(
        input::identifier(&body.id)?,
        field_names(&body.fields)?,
        body.lifetime_seconds,
        body.uses,
    )
    .map_err(|b| Refusal::invalid(b.detail))?;
    let region = app.region.clone();
    let made = blocking(move || region.make_presentation(&agency, terms)).await?;
    // The QR links this node's page with the code when the node knows its public address.
    let url = app
        .region
        .config
        .http
        .public_url
        .as_ref()
        .map(|base| base.page(&made.code.qr_text()));
    let qr_text = url.clone().unwrap_or_else(|| made.code.qr_text());
    let qr_svg = tongban_core::qr::symbol::Symbol::new(&qr_text)
        .map_err(|e| Refusal::internal(e.to_string()))?
        .svg();
    let mut body = json!({
        "code": made.code.text(),
        "qr_text": qr_text,
        "qr_svg": qr_svg,
        "expires": made.expires.seconds(),
        "uses": made.uses,
        "log_index": made.log_index,
    });
    if let Some(url) = url {
        body["url"] = json!(url);
    }
    Ok((StatusCode::CREATED, Json(body)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// The code as read out, typed or scanned (`TBP1:` and the code, or a URL ending in it).
    code: String,
    /// The matter being handled (办理事项) and the case id (办件编号).
    purpose: String,
    case: String,
    /// Key id of the seal to sign the request with (32 hex digits); absent: the agency's most
    /// recent usable seal whose key this node holds.
    seal: Option<String>,
}

/// `POST /v1/presentations/resolve`: staff of the calling agency resolve a holder's code
/// (specs/presentation.md §2.4). The code's region answers with a purpose-bound copy of the
/// fields the holder chose, for this agency; it is verified and logged here as received.
pub async fn resolve(
    State(app): State<App>,
    Agency(agency): Agency,
    Body(body): Body<ResolveBody>,
) -> Result<(StatusCode, Json<Value>), Refusal> {
    let ask = PresentationAsk {
        seal: body
            .seal
            .as_deref()
            .map(|s| input::kid("seal", s))
            .transpose()?,
        code: PresentationCode::parse(&body.code)
            .map_err(|f| Refusal::code(Kind::Invalid, f.code, f.detail))?,
        purpose: input::short_text("purpose", &body.purpose)?,
        case: input::short_text("case", &body.case)?,
    };
    let to = ask.code.region().clone();
    let region = app.region.clone();
    let signer = agency.clone();
    let request = blocking(move || region.presentation_request(&signer, &ask)).await?;
    let (copy, answered) = if &to == app.region.code() {
        let region = app.region.clone();
        let answer = blocking(move || {
            let trust = region.view()?.trust.clone();
            region.answer_presentation_request(&request, &trust, region.code())
        })
        .await?;
        match answer {
            ShareAnswer::Given { copy, log_index } => (copy, log_index),
            ShareAnswer::Refused { failure, log_index } => {
                return Err(Refusal::code(
                    Kind::of_sharing(failure.code),
                    failure.code,
                    failure.detail,
                )
                .logged_at(log_index));
            }
        }
    } else {
        match federation_for(&app, &to)?
            .ask_presentation(&to, request)
            .await?
        {
            Shared::Copy { copy, log_index } => (copy, log_index),
            Shared::Declined(refusal) => return Err(refusal),
        }
    };
    let app = app.clone();
    let (verification, received, copy) = blocking(move || {
        let trust = app.cross_region_trust()?;
        let (verification, received) = app.region.record_copy_received(&copy, &trust, &agency)?;
        Ok((verification, received, copy))
    })
    .await?;
    Ok(copy_created(&copy, &verification, answered, received))
}
