//! Request/response messages between two members' nodes (specs/federation.md §5): catch-up by log
//! index with a proof against a signed checkpoint, witnessing, membership history, and carrying
//! the cross-region acts of specs/sharing.md (verification proofs and share requests).

use ciborium::Value;

use crate::cbor::{self, Key};
use crate::encode::{bytes, entry, map_bytes, text, uint};
use crate::envelope::{BuildError, Kind};
use crate::federation::{Reason, Refused, refuse};
use crate::fields::{Bad, Fields};
use crate::ids::RegionCode;
use crate::log::proof::MAX_PROOF;

/// Largest request, in bytes: room for a proof request (at most 65,600 bytes, sharing.md §3.1)
/// or a share request (at most 65,536) with the message's own keys.
pub const MAX_REQUEST: usize = 72 * 1024;
/// Largest response, in bytes.
pub const MAX_RESPONSE: usize = 8 << 20;
/// A catch-up response carries at most this many entries…
pub const MAX_CATCH_UP_ENTRIES: usize = 4096;
/// …and at most this many bytes of entries.
pub const MAX_CATCH_UP_BYTES: usize = 4 << 20;
/// At most this many membership versions in one answer.
pub const MAX_VERSIONS: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Entries of `region`'s log from index `from`.
    Entries { region: RegionCode, from: u64 },
    /// A C2SP tlog-witness add-checkpoint body (witness.rs).
    Cosign { body: Vec<u8> },
    /// Membership versions after `since`.
    Membership { since: u64 },
    /// `region`'s latest status snapshot (trust.md §6), signed by its root.
    Snapshot { region: RegionCode },
    /// `region`'s latest status list (status.md §5), signed by its root.
    StatusList { region: RegionCode },
    /// A proof request (sharing.md §3.1) for the asked node's region to answer; the asking
    /// region is the one whose node sent it.
    Proof { request: Vec<u8> },
    /// A signed share request (sharing.md §4.1), exactly as the requesting agency's seal signed it.
    Share { request: Vec<u8> },
    /// A transfer request (sharing.md §5.2): a proof request (§3.1) for a certificate the asked
    /// region transferred out to the sender's, which it accepts before it answers with the proof.
    Transfer { request: Vec<u8> },
    /// A signed presentation request (presentation.md §2.3), exactly as the resolving agency's
    /// seal signed it; answered like a share request.
    Presentation { request: Vec<u8> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Entries `[first, first + entries.len())` and a signed checkpoint of size at least their
    /// end, with the consistency proof from their end to its size.
    Entries {
        first: u64,
        entries: Vec<Vec<u8>>,
        checkpoint: Vec<u8>,
        proof: Vec<[u8; 32]>,
    },
    /// The witness's cosignature line(s).
    Cosigned { lines: String },
    /// The witness holds another size for the origin.
    Conflict { size: u64 },
    /// Signed membership versions, oldest first.
    Memberships { versions: Vec<Vec<u8>> },
    /// A signed status snapshot.
    Snapshot { snapshot: Vec<u8> },
    /// A signed status list.
    StatusList { list: Vec<u8> },
    /// A verification proof (sharing.md §3.3).
    Proof { proof: Vec<u8> },
    /// A purpose-bound copy (sharing.md §4.3), whose `share.answered` entry is durable at
    /// `log_index` of the provider's log.
    Copy { copy: Vec<u8>, log_index: u64 },
    /// An authenticated share request refused with a sharing code; the refusal is logged at
    /// `log_index` of the provider's log (sharing.md §4.2).
    Declined {
        code: String,
        detail: String,
        log_index: u64,
    },
    /// Refused, with a stable code.
    Refused { code: String, detail: String },
}

fn malformed(b: Bad) -> Refused {
    Refused::new(Reason::Malformed, b.detail)
}

fn checked(bytes: &[u8], limit: usize) -> Result<Fields<'_>, Refused> {
    if bytes.len() > limit {
        return refuse(
            Reason::TooLarge,
            format!("{} bytes; the limit is {limit}", bytes.len()),
        );
    }
    cbor::check(bytes, limit as u64, false)
        .map_err(|f| Refused::new(Reason::Malformed, f.to_string()))?;
    let mut fields = Fields::whole(bytes).map_err(malformed)?;
    fields.version_1().map_err(malformed)?;
    Ok(fields)
}

fn utf8(bytes: &[u8]) -> Result<Value, BuildError> {
    std::str::from_utf8(bytes)
        .map(text)
        .map_err(|_| BuildError::Invalid("not UTF-8".into()))
}

impl Request {
    pub fn encode(&self) -> Result<Vec<u8>, BuildError> {
        let mut e = vec![entry("v", uint(1))];
        match self {
            Request::Entries { region, from } => {
                e.push(entry("t", text("entries")));
                e.push(entry("rc", text(region.as_str())));
                e.push(entry("from", uint(*from)));
            }
            Request::Cosign { body } => {
                e.push(entry("t", text("cosign")));
                e.push(entry("body", utf8(body)?));
            }
            Request::Membership { since } => {
                e.push(entry("t", text("membership")));
                e.push(entry("since", uint(*since)));
            }
            Request::Snapshot { region } => {
                e.push(entry("t", text("snapshot")));
                e.push(entry("rc", text(region.as_str())));
            }
            Request::StatusList { region } => {
                e.push(entry("t", text("status-list")));
                e.push(entry("rc", text(region.as_str())));
            }
            Request::Proof { request } => {
                e.push(entry("t", text("proof")));
                e.push(entry("rq", bytes(request)));
            }
            Request::Share { request } => {
                e.push(entry("t", text("share")));
                e.push(entry("rq", bytes(request)));
            }
            Request::Transfer { request } => {
                e.push(entry("t", text("transfer")));
                e.push(entry("rq", bytes(request)));
            }
            Request::Presentation { request } => {
                e.push(entry("t", text("presentation")));
                e.push(entry("rq", bytes(request)));
            }
        }
        let encoded = map_bytes(e)?;
        if encoded.len() > MAX_REQUEST {
            return Err(BuildError::Invalid("request over the size limit".into()));
        }
        Ok(encoded)
    }

    pub fn decode(bytes: &[u8]) -> Result<Request, Refused> {
        let mut f = checked(bytes, MAX_REQUEST)?;
        let request = match f.text(Key::Text("t")).map_err(malformed)? {
            "entries" => Request::Entries {
                region: RegionCode::parse(f.text(Key::Text("rc")).map_err(malformed)?)
                    .map_err(|e| Refused::new(Reason::Malformed, e.to_string()))?,
                from: f.uint(Key::Text("from")).map_err(malformed)?,
            },
            "cosign" => Request::Cosign {
                body: f
                    .text(Key::Text("body"))
                    .map_err(malformed)?
                    .as_bytes()
                    .to_vec(),
            },
            "membership" => Request::Membership {
                since: f.uint(Key::Text("since")).map_err(malformed)?,
            },
            "snapshot" => Request::Snapshot {
                region: RegionCode::parse(f.text(Key::Text("rc")).map_err(malformed)?)
                    .map_err(|e| Refused::new(Reason::Malformed, e.to_string()))?,
            },
            "status-list" => Request::StatusList {
                region: RegionCode::parse(f.text(Key::Text("rc")).map_err(malformed)?)
                    .map_err(|e| Refused::new(Reason::Malformed, e.to_string()))?,
            },
            "proof" => Request::Proof {
                request: f.bytes(Key::Text("rq")).map_err(malformed)?.to_vec(),
            },
            "share" => Request::Share {
                request: f.bytes(Key::Text("rq")).map_err(malformed)?.to_vec(),
            },
            "transfer" => Request::Transfer {
                request: f.bytes(Key::Text("rq")).map_err(malformed)?.to_vec(),
            },
            "presentation" => Request::Presentation {
                request: f.bytes(Key::Text("rq")).map_err(malformed)?.to_vec(),
            },
            other => return refuse(Reason::Malformed, format!("unknown request {other:?}")),
        };
        f.finish().map_err(malformed)?;
        Ok(request)
    }
}

/// A refusal's detail as an answer carries it: at most 256 characters.
pub fn bounded_detail(detail: &str) -> String {
    detail.chars().take(256).collect()
}

impl Response {
    /// The answer's type, as the wire names it (for messages about an unexpected one).
    pub fn kind(&self) -> &'static str {
        match self {
            Response::Entries { .. } => "entries",
            Response::Cosigned { .. } => "cosigned",
            Response::Conflict { .. } => "conflict",
            Response::Memberships { .. } => "memberships",
            Response::Snapshot { .. } => "snapshot",
            Response::StatusList { .. } => "status-list",
            Response::Proof { .. } => "proof",
            Response::Copy { .. } => "copy",
            Response::Declined { .. } => "declined",
            Response::Refused { .. } => "refused",
        }
    }

    pub fn refused(refusal: &Refused) -> Response {
        Response::Refused {
            code: refusal.code.as_str().to_owned(),
            detail: bounded_detail(&refusal.detail),
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, BuildError> {
        let mut e = vec![entry("v", uint(1))];
        match self {
            Response::Entries {
                first,
                entries,
                checkpoint,
                proof,
            } => {
                e.push(entry("t", text("entries")));
                e.push(entry("i", uint(*first)));
                e.push(entry(
                    "e",
                    Value::Array(entries.iter().map(|x| bytes(x)).collect()),
                ));
                e.push(entry("cp", utf8(checkpoint)?));
                e.push(entry(
                    "proof",
                    Value::Array(proof.iter().map(|h| bytes(h)).collect()),
                ));
            }
            Response::Cosigned { lines } => {
                e.push(entry("t", text("cosigned")));
                e.push(entry("sig", text(lines)));
            }
            Response::Conflict { size } => {
                e.push(entry("t", text("conflict")));
                e.push(entry("size", uint(*size)));
            }
            Response::Memberships { versions } => {
                e.push(entry("t", text("memberships")));
                e.push(entry(
                    "m",
                    Value::Array(versions.iter().map(|x| bytes(x)).collect()),
                ));
            }
            Response::Snapshot { snapshot } => {
                e.push(entry("t", text("snapshot")));
                e.push(entry("st", bytes(snapshot)));
            }
            Response::StatusList { list } => {
                e.push(entry("t", text("status-list")));
                e.push(entry("sl", bytes(list)));
            }
            Response::Proof { proof } => {
                e.push(entry("t", text("proof")));
                e.push(entry("p", bytes(proof)));
            }
            Response::Copy { copy, log_index } => {
                e.push(entry("t", text("copy")));
                e.push(entry("copy", bytes(copy)));
                e.push(entry("li", uint(*log_index)));
            }
            Response::Declined {
                code,
                detail,
                log_index,
            } => {
                e.push(entry("t", text("declined")));
                e.push(entry("code", text(code)));
                e.push(entry("detail", text(detail)));
                e.push(entry("li", uint(*log_index)));
            }
            Response::Refused { code, detail } => {
                e.push(entry("t", text("refused")));
                e.push(entry("code", text(code)));
                e.push(entry("detail", text(detail)));
            }
        }
        let encoded = map_bytes(e)?;
        if encoded.len() > MAX_RESPONSE {
            return Err(BuildError::Invalid("response over the size limit".into()));
        }
        Ok(encoded)
    }

    pub fn decode(bytes: &[u8]) -> Result<Response, Refused> {
        let mut f = checked(bytes, MAX_RESPONSE)?;
        let byte_strings = |r: &mut cbor::Reader<'_>| r.bytes().map(<[u8]>::to_vec);
        let response = match f.text(Key::Text("t")).map_err(malformed)? {
            "entries" => {
                let entries = f
                    .array(Key::Text("e"), "an array of byte strings", byte_strings)
                    .map_err(malformed)?;
                let proof = f
                    .array(Key::Text("proof"), "an array of hashes", |r| {
                        r.bytes().and_then(|h| <[u8; 32]>::try_from(h).ok())
                    })
                    .map_err(malformed)?;
                if entries.len() > MAX_CATCH_UP_ENTRIES
                    || entries
                        .iter()
                        .any(|e| e.len() as u64 > Kind::LogEntry.size_limit())
                    || proof.len() > MAX_PROOF
                {
                    return refuse(Reason::Malformed, "too many entries or proof hashes");
                }
                Response::Entries {
                    first: f.uint(Key::Text("i")).map_err(malformed)?,
                    entries,
                    checkpoint: f
                        .text(Key::Text("cp"))
                        .map_err(malformed)?
                        .as_bytes()
                        .to_vec(),
                    proof,
                }
            }
            "cosigned" => Response::Cosigned {
                lines: f.text(Key::Text("sig")).map_err(malformed)?.to_owned(),
            },
            "conflict" => Response::Conflict {
                size: f.uint(Key::Text("size")).map_err(malformed)?,
            },
            "memberships" => {
                let versions = f
                    .array(Key::Text("m"), "an array of byte strings", byte_strings)
                    .map_err(malformed)?;
                if versions.len() > MAX_VERSIONS {
                    return refuse(Reason::Malformed, "too many membership versions");
                }
                Response::Memberships { versions }
            }
            "snapshot" => Response::Snapshot {
                snapshot: f.bytes(Key::Text("st")).map_err(malformed)?.to_vec(),
            },
            "status-list" => Response::StatusList {
                list: f.bytes(Key::Text("sl")).map_err(malformed)?.to_vec(),
            },
            "proof" => Response::Proof {
                proof: f.bytes(Key::Text("p")).map_err(malformed)?.to_vec(),
            },
            "copy" => Response::Copy {
                copy: f.bytes(Key::Text("copy")).map_err(malformed)?.to_vec(),
                log_index: f.uint(Key::Text("li")).map_err(malformed)?,
            },
            "declined" => Response::Declined {
                code: f.text(Key::Text("code")).map_err(malformed)?.to_owned(),
                detail: f.text(Key::Text("detail")).map_err(malformed)?.to_owned(),
                log_index: f.uint(Key::Text("li")).map_err(malformed)?,
            },
            "refused" => Response::Refused {
                code: f.text(Key::Text("code")).map_err(malformed)?.to_owned(),
                detail: f.text(Key::Text("detail")).map_err(malformed)?.to_owned(),
            },
            other => return refuse(Reason::Malformed, format!("unknown response {other:?}")),
        };
        f.finish().map_err(malformed)?;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::region_code;

    #[test]
    fn messages_round_trip_and_are_closed() -> Result<(), Box<dyn std::error::Error>> {
        let requests = [
            Request::Entries {
                region: region_code("341200")?,
                from: 7,
            },
            Request::Cosign {
                body: b"old 0\n\nnote".to_vec(),
            },
            Request::Membership { since: 2 },
            Request::Snapshot {
                region: region_code("370100")?,
            },
            Request::StatusList {
                region: region_code("370100")?,
            },
            Request::Proof {
                request: vec![0xa0; 65_600],
            },
            Request::Share {
                request: vec![0xd2, 0x84],
            },
            Request::Transfer {
                request: vec![0xa1; 300],
            },
            Request::Presentation {
                request: vec![0xd2, 0x84, 0x40],
            },
        ];
        for request in requests {
            assert_eq!(Request::decode(&request.encode()?)?, request);
        }
        let responses = [
            Response::Entries {
                first: 3,
                entries: vec![vec![1, 2]],
                checkpoint: b"cp\n".to_vec(),
                proof: vec![[4; 32]],
            },
            Response::Cosigned {
                lines: "— w AAAA\n".into(),
            },
            Response::Conflict { size: 9 },
            Response::Memberships {
                versions: vec![vec![0xa0]],
            },
            Response::Proof {
                proof: vec![0xd2; 3],
            },
            Response::StatusList {
                list: vec![0xd2; 4],
            },
            Response::Copy {
                copy: vec![0xd2; 5],
                log_index: 12,
            },
            Response::Declined {
                code: "SHARE_NOT_AUTHORISED".into(),
                detail: "type 111".into(),
                log_index: 13,
            },
            Response::Refused {
                code: "LOG_GAP".into(),
                detail: "x".into(),
            },
        ];
        for response in responses {
            assert_eq!(Response::decode(&response.encode()?)?, response);
        }
        let extra = map_bytes(vec![
            entry("v", uint(1)),
            entry("t", text("membership")),
            entry("since", uint(1)),
            entry("more", uint(1)),
        ])?;
        assert_eq!(
            Request::decode(&extra).err().map(|r| r.code),
            Some(Reason::Malformed)
        );
        let huge = vec![0u8; MAX_REQUEST + 1];
        assert_eq!(
            Request::decode(&huge).err().map(|r| r.code),
            Some(Reason::TooLarge)
        );
        Ok(())
    }
}
