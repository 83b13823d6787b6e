//! `tongban-verify copy …` and `tongban-verify proof …`: purpose-bound copies (加注件) and
//! cross-region verification proofs (核验回执), verified offline (specs/sharing.md §3.4, §4.4) or
//! decoded for reading.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::Subcommand;
use serde_json::{Value, json};
use tongban_core::envelope::Kind;
use tongban_core::ids::{RegionCode, Uscc};
use tongban_core::log::entry::Act;
use tongban_core::log::note::NoteVerifier;
use tongban_core::log::verification::ReceiptItem;
use tongban_core::sharing::copy::{CopyRequest, CopyVerification};
use tongban_core::sharing::proof::{ProofInspection, inspect_proof};
use tongban_core::sharing::{
    Party, ProofExpectation, VerifiedProof, inspect_copy, verify_copy, verify_proof,
};
use tongban_core::values::Time;

use crate::cli::{EXIT_INVALID, emit, read_capped};
use crate::report;
use crate::trust::TrustArgs;

#[derive(Subcommand)]
pub enum CopyCommand {
    /// Verify a purpose-bound copy as presented by an agency (exit 0 valid, 1 invalid).
    Verify {
        /// The copy file (the COSE_Sign1 bytes).
        file: PathBuf,
        #[command(flatten)]
        trust: TrustArgs,
        /// Status lists (or status snapshots) of the issuing regions, one per region: the newest of
        /// each region counts, and a list before a snapshot.
        #[arg(long = "status")]
        status: Vec<PathBuf>,
        /// The presenting agency, `<region code>:<USCC>`: the copy is valid only for its recipient.
        #[arg(long)]
        recipient: String,
        #[arg(long)]
        json: bool,
    },
    /// Show a copy's contents without verifying it.
    Inspect {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum ProofCommand {
    /// Verify a verification proof (exit 0 when authentic and the certificate was valid, 1 when
    /// not authentic or the certificate was invalid).
    Verify {
        /// The proof file (the COSE_Sign1 bytes).
        file: PathBuf,
        #[command(flatten)]
        trust: TrustArgs,
        /// The region that asked for the proof.
        #[arg(long)]
        requester: String,
        /// The nonce it sent (32 hex digits), when known.
        #[arg(long)]
        nonce: Option<String>,
        /// A witness's cosigner key, `<name>+<hex id>+<base64>` (repeatable).
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// How many of the witnesses must have cosigned the proof's checkpoint.
        #[arg(long, default_value_t = 0)]
        quorum: usize,
        #[arg(long)]
        json: bool,
    },
    /// Show a proof's contents without verifying it.
    Inspect {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    }
}

fn time(t: Time) -> String {
    t.to_rfc3339()
}

/// `<region code>:<USCC>`.
fn party(text: &str) -> Result<Party> {
    let (region, agency) = text
        .split_once(':')
        .ok_or_else(|| anyhow!("--recipient must be <region code>:<USCC>"))?;
    Ok(Party {
        region: RegionCode::parse(region).map_err(|e| anyhow!("--recipient: {e}"))?,
        agency: Uscc::parse(agency).map_err(|e| anyhow!("--recipient: {e}"))?,
    })
}

pub fn copy(command: &CopyCommand) -> Result<ExitCode> {
    match command {
        CopyCommand::Verify {
            file,
            trust,
            status,
            recipient,
            json,
        } => copy_verify(file, trust, status, recipient, *json),
        CopyCommand::Inspect { file, json } => copy_inspect(file, *json),
    }
}

fn copy_verify(
    file: &Path,
    trust: &TrustArgs,
    status: &[PathBuf],
    recipient: &str,
    json: bool,
) -> Result<ExitCode> {
    let presenter = party(recipient)?;
    let (store, now) = trust.load()?;
    let status = crate::status::load_all(status, &store)?;
    let result = verify_copy(
        &read_capped(file, Kind::Copy.size_limit())?,
        &store,
        &status,
        now,
        &presenter,
    );
    if json {
        emit(&format!("{:#}\n", copy_json(&result)))?;
    } else {
        emit(&copy_text(&result))?;
    }
    Ok(exit(result.is_valid()))
}

fn copy_json(v: &CopyVerification) -> Value {
    json!({
        "verdict": v.verdict.as_str(),
        "code": v.code.as_str(),
        "message": v.code.about(),
        "detail": v.detail,
        "digest": hex::encode(v.digest),
        "provider": v.provider.as_ref().map(|r| r.as_str().to_owned()),
        "issued": v.issued.map(Time::seconds),
        "expires": v.expires.map(Time::seconds),
        "recipient": v.recipient.as_ref().map(|(p, name)| json!({
            "region": p.region.as_str(), "agency": p.agency.as_str(), "agency_name": name.as_str(),
        })),
        "request": v.request.as_ref().map(|r| {
            let mut request = request_json(r);
            request["digest"] = json!(v.request_digest.map(hex::encode));
            request
        }),
        "certificate": v.certificate.as_ref().map(report::verification_json),
    })
}

/// A copy's request: a share request names the certificate and fields, a presentation request
/// the digest of the holder's code (the certificate and fields are in the copy).
fn request_json(request: &CopyRequest) -> Value {
    match request {
        CopyRequest::Share(r) => json!({
            "kind": "share",
            "to": r.to.as_str(),
            "identifier": r.id.as_str(),
            "fields": r.fields.iter().map(|f| f.as_str().to_owned()).collect::<Vec<_>>(),
            "purpose": r.purpose.as_str(),
            "case": r.case.as_str(),
            "at": r.at.seconds(),
        }),
        CopyRequest::Presentation(r) => json!({
            "kind": "presentation",
            "to": r.to.as_str(),
            "code_digest": hex::encode(r.code),
            "purpose": r.purpose.as_str(),
            "case": r.case.as_str(),
            "at": r.at.seconds(),
        }),
    }
}

fn copy_text(v: &CopyVerification) -> String {
    let mut out = report::verdict_line(
        v.is_valid(),
        "purpose-bound copy (加注件), every check passed",
        v.code,
        &v.detail,
    );
    let mut table = Vec::new();
    if let Some(provider) = &v.provider {
        table.push(("provided by", format!("region {provider}")));
    }
    if let Some((party, name)) = &v.recipient {
        table.push((
            "for",
            format!("{name} ({}), region {}", party.agency, party.region),
        ));
    }
    if let Some(request) = &v.request {
        table.push(("purpose", request.purpose().as_str().to_owned()));
        table.push(("case", request.case().as_str().to_owned()));
        if let CopyRequest::Presentation(_) = request {
            table.push((
                "asked by",
                "a holder's presentation code (亮证码)".to_owned(),
            ));
        }
    }
    if let Some(id) = v.id() {
        table.push(("certificate", id.as_str().to_owned()));
    }
    if let (Some(issued), Some(expires)) = (v.issued, v.expires) {
        table.push(("valid", format!("{} → {}", time(issued), time(expires))));
    }
    table.push(("digest", hex::encode(v.digest)));
    out.push_str(&report::table(&table));
    if let Some(certificate) = &v.certificate {
        out.push_str("the certificate inside:\n");
        out.push_str(&report::verification_text(certificate));
    }
    out
}

fn copy_inspect(file: &Path, json: bool) -> Result<ExitCode> {
    let i = inspect_copy(&read_capped(file, Kind::Copy.size_limit())?)
        .map_err(|f| anyhow!("{}: {f}", file.display()))?;
    if json {
        let value = json!({
            "verified": false,
            "kid": i.kid.to_hex(),
            "digest": hex::encode(i.digest),
            "provider": i.region.as_str(),
            "issued": i.issued.seconds(),
            "expires": i.expires.seconds(),
            "request_kid": i.request_kid.as_ref().map(|k| k.to_hex()).ok(),
            "request": match &i.request {
                Ok(r) => request_json(r),
                Err(f) => json!({"error": f.code.as_str(), "detail": f.detail}),
            },
            "certificate": match &i.certificate {
                Ok(c) => report::inspection_json(c),
                Err(f) => json!({"error": f.code.as_str(), "detail": f.detail}),
            },
        });
        emit(&format!("{value:#}\n"))?;
    } else {
        let mut out = String::from(
            "NOT VERIFIED — decoded for reading only; run `tongban-verify copy verify` to check it\n",
        );
        let mut table = vec![
            ("provided by", format!("region {}", i.region)),
            ("root kid", i.kid.to_hex()),
            ("valid", format!("{} → {}", time(i.issued), time(i.expires))),
            ("digest", hex::encode(i.digest)),
        ];
        match &i.request {
            Ok(r) => {
                table.push(("purpose", r.purpose().as_str().to_owned()));
                table.push(("case", r.case().as_str().to_owned()));
                table.push((
                    "fields asked",
                    match r {
                        CopyRequest::Share(r) => r
                            .fields
                            .iter()
                            .map(|f| f.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        CopyRequest::Presentation(_) => "those the holder's code shows".to_owned(),
                    },
                ));
            }
            Err(f) => table.push(("request", format!("undecodable: {f}"))),
        }
        out.push_str(&report::table(&table));
        match &i.certificate {
            Ok(c) => {
                out.push_str("the certificate inside:\n");
                out.push_str(&report::inspection_text(c));
            }
            Err(f) => out.push_str(&format!("  certificate undecodable: {f}\n")),
        }
        emit(&out)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn proof(command: &ProofCommand) -> Result<ExitCode> {
    match command {
        ProofCommand::Verify {
            file,
            trust,
            requester,
            nonce,
            witnesses,
            quorum,
            json,
        } => {
            let requester =
                RegionCode::parse(requester).map_err(|e| anyhow!("--requester: {e}"))?;
            let nonce = nonce
                .as_deref()
                .map(|n| {
                    hex::decode(n)
                        .ok()
                        .and_then(|b| <[u8; 16]>::try_from(b).ok())
                        .ok_or_else(|| anyhow!("--nonce must be 32 hex digits"))
                })
                .transpose()?;
            let witnesses = witnesses
                .iter()
                .map(|w| NoteVerifier::parse(w).map_err(|e| anyhow!("--witness {w}: {e}")))
                .collect::<Result<Vec<_>>>()?;
            let (store, now) = trust.load()?;
            let expect = ProofExpectation {
                requester: &requester,
                nonce,
                witnesses: &witnesses,
                quorum: *quorum,
            };
            let outcome = verify_proof(
                &read_capped(file, Kind::VerificationProof.size_limit())?,
                &store,
                now,
                &expect,
            );
            let ok = outcome.as_ref().is_ok_and(|p| p.item.valid);
            let out = match (&outcome, *json) {
                (Ok(p), true) => format!("{:#}\n", proof_json(p)),
                (Ok(p), false) => proof_text(p),
                (Err(f), true) => format!(
                    "{:#}\n",
                    json!({"authentic": false, "code": f.code.as_str(), "message": f.code.about(), "detail": f.detail})
                ),
                (Err(f), false) => format!(
                    "NOT AUTHENTIC — {}: {}\n  why: {}\n",
                    f.code,
                    f.code.about(),
                    f.detail
                ),
            };
            emit(&out)?;
            Ok(exit(ok))
        }
        ProofCommand::Inspect { file, json } => {
            let i = inspect_proof(&read_capped(file, Kind::VerificationProof.size_limit())?)
                .map_err(|f| anyhow!("{}: {f}", file.display()))?;
            emit(&if *json {
                format!("{:#}\n", inspection_json(&i))
            } else {
                inspection_text(&i)
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn item_json(item: &ReceiptItem) -> Value {
    json!({
        "region": item.region.as_str(),
        "at": item.at.seconds(),
        "digest": hex::encode(item.digest),
        "identifier": item.id.as_ref().map(|i| i.as_str().to_owned()),
        "verdict": if item.valid { "valid" } else { "invalid" },
        "code": item.code.as_str(),
        "state": item.state.map(|s| s.code()),
        "requester": item.requester.as_ref().map(|r| r.as_str().to_owned()),
        "nonce": item.nonce.map(hex::encode),
    })
}

fn proof_json(p: &VerifiedProof) -> Value {
    let entry = |e: &Option<tongban_core::sharing::proof::LoggedEntry>| {
        e.as_ref()
            .map(|l| json!({"index": l.index, "type": l.entry.act.type_name()}))
    };
    json!({
        "authentic": true,
        "code": "OK",
        "digest": hex::encode(p.digest),
        "region": p.region.as_str(),
        "answer": item_json(&p.item),
        "receipts_entry": p.receipts_index,
        "origin": p.origin,
        "checkpoint": p.checkpoint.as_ref().map(|c| json!({
            "size": c.checkpoint.size,
            "cosigned_by": c.cosigned_by.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        })),
        "issuance": entry(&p.issuance),
        "status": entry(&p.status),
        "transferred_to": p.transferred_to().map(|r| r.as_str().to_owned()),
    })
}

fn proof_text(p: &VerifiedProof) -> String {
    let item = &p.item;
    let mut out = format!(
        "AUTHENTIC — region {} answered {} ({}) at {}\n",
        p.region,
        item.code,
        if item.valid { "valid" } else { "invalid" },
        time(item.at)
    );
    let mut table = vec![(
        "asked by",
        item.requester
            .as_ref()
            .map_or("—".into(), |r| r.to_string()),
    )];
    if let Some(id) = &item.id {
        table.push(("certificate", id.as_str().to_owned()));
    }
    table.push(("digest", hex::encode(item.digest)));
    if let Some(state) = item.state {
        table.push(("state in its log", state.to_string()));
    }
    match &p.issuance {
        Some(issued) => table.push((
            "issuance",
            format!("entry {} of {}", issued.index, p.origin),
        )),
        None => table.push(("issuance", "no log evidence".into())),
    }
    if let Some(status) = &p.status
        && let Act::StatusChanged { to, .. } = &status.entry.act
    {
        let whither = p
            .transferred_to()
            .map(|r| format!(", to region {r}"))
            .unwrap_or_default();
        table.push((
            "status entry",
            format!("entry {}: {to}{whither}", status.index),
        ));
    }
    if let Some(c) = &p.checkpoint {
        let names: Vec<&str> = c.cosigned_by.iter().map(|(n, _)| n.as_str()).collect();
        table.push((
            "checkpoint",
            format!(
                "size {}, cosigned by {}",
                c.checkpoint.size,
                if names.is_empty() {
                    "no known witness".into()
                } else {
                    names.join(", ")
                }
            ),
        ));
    }
    table.push(("logged in", format!("receipts entry {}", p.receipts_index)));
    out.push_str(&report::table(&table));
    out
}

fn inspection_json(i: &ProofInspection) -> Value {
    json!({
        "verified": false,
        "kid": i.kid.to_hex(),
        "digest": hex::encode(i.digest),
        "region": i.region.as_str(),
        "answer": match &i.item { Ok(item) => item_json(item), Err(f) => json!({"error": f.code.as_str(), "detail": f.detail}) },
        "log_key": i.log_key,
        "issuance_index": i.issuance_index,
        "status_index": i.status_index,
    })
}

fn inspection_text(i: &ProofInspection) -> String {
    let mut out = String::from(
        "NOT VERIFIED — decoded for reading only; run `tongban-verify proof verify` to check it\n",
    );
    let mut table = vec![
        ("answered by", format!("region {}", i.region)),
        ("root kid", i.kid.to_hex()),
        ("log key", i.log_key.clone()),
        ("digest", hex::encode(i.digest)),
    ];
    match &i.item {
        Ok(item) => {
            table.push(("answer", format!("{} at {}", item.code, time(item.at))));
            if let Some(id) = &item.id {
                table.push(("certificate", id.as_str().to_owned()));
            }
        }
        Err(f) => table.push(("answer", format!("undecodable: {f}"))),
    }
    let index = |i: Option<u64>| i.map_or("—".into(), |i| format!("entry {i}"));
    table.push(("issuance", index(i.issuance_index)));
    table.push(("status entry", index(i.status_index)));
    out.push_str(&report::table(&table));
    out
}
