//! Gossip messages (specs/federation.md §4): what a node publishes on the federation's topic, and
//! the checks every node makes before it lets a message through to its peers. The node calls
//! [`check`] with the member whose node key authored the message (gossipsub signs each message
//! with its author's libp2p key, and the node resolves that key through the membership).

use ciborium::Value;

use crate::cbor::{self, Key};
use crate::encode::{bytes, entry, map_bytes, text, uint};
use crate::envelope::{BuildError, Kind};
use crate::federation::membership::{Member, Membership};
use crate::federation::{Reason, Refused, evidence, refuse};
use crate::fields::{Bad, Fields};
use crate::ids::RegionCode;
use crate::keys::PublicKey;
use crate::log::checkpoint;
use crate::log::note::NoteVerifier;
use crate::values::Time;

/// The largest gossip message, in bytes.
pub const MAX_GOSSIP: usize = 1 << 20;
/// A message published more than this many seconds ago is stale…
pub const MAX_AGE: u64 = 300;
/// …and one dated more than this many seconds ahead is refused too.
pub const MAX_SKEW: u64 = 60;
/// At most this many entries in one log message.
pub const MAX_ENTRIES: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Consecutive entries of the publisher's own log from index `first` (possibly none), and
    /// possibly its latest signed (cosigned) checkpoint.
    Log {
        first: u64,
        entries: Vec<Vec<u8>>,
        checkpoint: Option<Vec<u8>>,
    },
    /// Two checkpoints of `accused`'s log with one size and two roots.
    Evidence {
        accused: RegionCode,
        a: Vec<u8>,
        b: Vec<u8>,
    },
    /// A signed membership version.
    Membership { signed: Vec<u8> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gossip {
    /// The publisher's region: its node authored the message.
    pub region: RegionCode,
    pub at: Time,
    pub body: Body,
}

fn note_text(note: &[u8]) -> Result<Value, BuildError> {
    std::str::from_utf8(note)
        .map(text)
        .map_err(|_| BuildError::Invalid("a note is not UTF-8".into()))
}

impl Gossip {
    pub fn encode(&self) -> Result<Vec<u8>, BuildError> {
        let mut entries = vec![
            entry("v", uint(1)),
            entry("rc", text(self.region.as_str())),
            entry("at", uint(self.at.seconds())),
        ];
        match &self.body {
            Body::Log {
                first,
                entries: log,
                checkpoint,
            } => {
                entries.push(entry("t", text("log")));
                entries.push(entry("i", uint(*first)));
                entries.push(entry(
                    "e",
                    Value::Array(log.iter().map(|e| bytes(e)).collect()),
                ));
                if let Some(note) = checkpoint {
                    entries.push(entry("cp", note_text(note)?));
                }
            }
            Body::Evidence { accused, a, b } => {
                entries.push(entry("t", text("evidence")));
                entries.push(entry("of", text(accused.as_str())));
                entries.push(entry("a", note_text(a)?));
                entries.push(entry("b", note_text(b)?));
            }
            Body::Membership { signed } => {
                entries.push(entry("t", text("membership")));
                entries.push(entry("m", bytes(signed)));
            }
        }
        let encoded = map_bytes(entries)?;
        if encoded.len() > MAX_GOSSIP {
            return Err(BuildError::Invalid(format!(
                "gossip message of {} bytes; the limit is {MAX_GOSSIP}",
                encoded.len()
            )));
        }
        Ok(encoded)
    }

    /// Decodes a message: size, accepted CBOR, closed maps. No signature or membership checks.
    pub fn decode(bytes: &[u8]) -> Result<Gossip, Refused> {
        if bytes.len() > MAX_GOSSIP {
            return refuse(
                Reason::TooLarge,
                format!("{} bytes; the limit is {MAX_GOSSIP}", bytes.len()),
            );
        }
        cbor::check(bytes, MAX_GOSSIP as u64, false)
            .map_err(|f| Refused::new(Reason::Malformed, f.to_string()))?;
        read(bytes).map_err(|b| Refused::new(Reason::Malformed, b.detail))
    }
}

fn region(text: &str) -> Result<RegionCode, Bad> {
    RegionCode::parse(text).map_err(|e| Bad::new(e.to_string()))
}

fn read(bytes: &[u8]) -> Result<Gossip, Bad> {
    let mut f = Fields::whole(bytes)?;
    f.version_1()?;
    let kind = f.text(Key::Text("t"))?;
    let publisher = region(f.text(Key::Text("rc"))?)?;
    let at = f.time(Key::Text("at"))?;
    let note = |t: &str| t.as_bytes().to_vec();
    let body = match kind {
        "log" => {
            let first = f.uint(Key::Text("i"))?;
            let entries: Vec<Vec<u8>> =
                f.array(Key::Text("e"), "an array of byte strings", |r| {
                    r.bytes().map(<[u8]>::to_vec)
                })?;
            if entries.len() > MAX_ENTRIES
                || entries
                    .iter()
                    .any(|e| e.len() as u64 > Kind::LogEntry.size_limit())
            {
                return Err(Bad::new(format!(
                    "at most {MAX_ENTRIES} entries of at most 65,535 bytes"
                )));
            }
            first
                .checked_add(entries.len() as u64)
                .ok_or_else(|| Bad::new("index overflow"))?;
            Body::Log {
                first,
                entries,
                checkpoint: f.optional_text(Key::Text("cp"))?.map(note),
            }
        }
        "evidence" => Body::Evidence {
            accused: region(f.text(Key::Text("of"))?)?,
            a: note(f.text(Key::Text("a"))?),
            b: note(f.text(Key::Text("b"))?),
        },
        "membership" => Body::Membership {
            signed: f.bytes(Key::Text("m"))?.to_vec(),
        },
        other => return Err(Bad::new(format!("unknown message type {other:?}"))),
    };
    f.finish()?;
    Ok(Gossip {
        region: publisher,
        at,
        body,
    })
}

/// The verifiers of every member's witness: what a checkpoint's cosignatures are checked against.
pub fn witnesses(membership: &Membership) -> Result<Vec<NoteVerifier>, Refused> {
    membership
        .members
        .iter()
        .map(|m| m.witness_verifier(membership.name.as_str()))
        .collect()
}

/// Every check a node makes before forwarding a message authored by `publisher`'s node, except
/// those that need the publisher's replicated log (the order and signatures of log entries, which
/// [`crate::federation::replica`] decides): size, encoding, that the message speaks for the
/// author's own region, freshness, checkpoint signatures, evidence, membership signature.
pub fn check(
    bytes: &[u8],
    publisher: &Member,
    membership: &Membership,
    federation: &PublicKey,
    now: Time,
) -> Result<Gossip, Refused> {
    let gossip = Gossip::decode(bytes)?;
    if &gossip.region != publisher.region() {
        return refuse(
            Reason::NotMember,
            format!(
                "the node of {} published for region {}",
                publisher.region(),
                gossip.region
            ),
        );
    }
    let (at, now) = (gossip.at.seconds(), now.seconds());
    if at + MAX_AGE < now || at > now + MAX_SKEW {
        return refuse(Reason::Stale, format!("published at {at}, now is {now}"));
    }
    let name = membership.name.as_str();
    match &gossip.body {
        Body::Log {
            first,
            entries,
            checkpoint: Some(note),
        } => {
            let log = publisher.log_verifier(name)?;
            let head = checkpoint::open(note, &log, &witnesses(membership)?)
                .map_err(|e| Refused::new(Reason::CheckpointInvalid, e.to_string()))?;
            if head.checkpoint.size < first + entries.len() as u64 {
                return refuse(
                    Reason::CheckpointInvalid,
                    "the checkpoint is older than the entries it comes with",
                );
            }
        }
        Body::Log { .. } => {}
        Body::Evidence { accused, a, b } => {
            let member = membership.member(accused).ok_or_else(|| {
                Refused::new(
                    Reason::EvidenceInvalid,
                    format!("{accused} is not a member"),
                )
            })?;
            evidence::check(a, b, &member.log_verifier(name)?)?;
        }
        Body::Membership { signed } => {
            let received = Membership::open(signed, federation)?;
            if received.name != membership.name {
                return refuse(
                    Reason::MembershipInvalid,
                    "membership of another federation",
                );
            }
        }
    }
    Ok(gossip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::checkpoint::Checkpoint;
    use crate::testkit::federation::TestMembers;
    use crate::testkit::log::sample;
    use crate::testkit::time;

    const NOW: u64 = 1_800_000_000;

    fn setup() -> Result<(TestMembers, Membership), Box<dyn std::error::Error>> {
        let t = TestMembers::new(3)?;
        let m = Membership::open(&t.genesis(1)?, t.federation.public())?;
        Ok((t, m))
    }

    fn log_message(region: &RegionCode, at: u64) -> Result<Gossip, Box<dyn std::error::Error>> {
        let log = sample()?;
        Ok(Gossip {
            region: region.clone(),
            at: time(at)?,
            body: Body::Log {
                first: 0,
                entries: log.entries[..3].to_vec(),
                checkpoint: Some(log.checkpoint(3)?),
            },
        })
    }

    fn code(r: Result<Gossip, Refused>) -> Option<Reason> {
        r.err().map(|r| r.code)
    }

    #[test]
    fn a_good_message_passes_and_round_trips() -> Result<(), Box<dyn std::error::Error>> {
        let (t, m) = setup()?;
        let fuyang = &m.members[1];
        assert_eq!(fuyang.region().as_str(), "341200");
        let message = log_message(fuyang.region(), NOW)?;
        let bytes = message.encode()?;
        let checked = check(&bytes, fuyang, &m, t.federation.public(), time(NOW + 10)?)?;
        assert_eq!(checked, message);
        Ok(())
    }

    #[test]
    fn stale_future_and_impersonated_messages_are_refused() -> Result<(), Box<dyn std::error::Error>>
    {
        let (t, m) = setup()?;
        let fed = t.federation.public();
        let fuyang = &m.members[1];
        let bytes = log_message(fuyang.region(), NOW)?.encode()?;
        let now = |s| time(s);
        assert_eq!(
            code(check(&bytes, fuyang, &m, fed, now(NOW + MAX_AGE + 1)?)),
            Some(Reason::Stale)
        );
        assert_eq!(
            code(check(&bytes, fuyang, &m, fed, now(NOW - MAX_SKEW - 1)?)),
            Some(Reason::Stale)
        );
        // Another member's node publishing for 341200.
        assert_eq!(
            code(check(&bytes, &m.members[0], &m, fed, now(NOW)?)),
            Some(Reason::NotMember)
        );
        Ok(())
    }

    #[test]
    fn a_forged_checkpoint_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let (t, m) = setup()?;
        let fuyang = &m.members[1];
        let forged = Checkpoint {
            origin: "tongban.example/341200/log/1".into(),
            size: 3,
            root: [1; 32],
        }
        .sign("tongban.example/341200/log/1", &t.members[1].root)?;
        let mut message = log_message(fuyang.region(), NOW)?;
        if let Body::Log { checkpoint, .. } = &mut message.body {
            *checkpoint = Some(forged.into_bytes());
        }
        let refused = check(
            &message.encode()?,
            fuyang,
            &m,
            t.federation.public(),
            time(NOW)?,
        );
        assert_eq!(code(refused), Some(Reason::CheckpointInvalid));
        Ok(())
    }

    #[test]
    fn oversized_and_malformed_messages_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let (t, m) = setup()?;
        let fuyang = &m.members[1];
        let fed = t.federation.public();
        let message = Gossip {
            region: fuyang.region().clone(),
            at: time(NOW)?,
            body: Body::Log {
                first: 0,
                entries: vec![vec![0; 60_000]; 18],
                checkpoint: None,
            },
        };
        assert!(message.encode().is_err());
        let mut huge = vec![0u8; MAX_GOSSIP + 1];
        huge[0] = 0xa0;
        assert_eq!(
            code(check(&huge, fuyang, &m, fed, time(NOW)?)),
            Some(Reason::TooLarge)
        );
        let mut bytes = log_message(fuyang.region(), NOW)?.encode()?;
        bytes.push(0);
        assert_eq!(
            code(check(&bytes, fuyang, &m, fed, time(NOW)?)),
            Some(Reason::Malformed)
        );
        // An unknown key in the closed map.
        let extra = map_bytes(vec![
            entry("v", uint(1)),
            entry("t", text("membership")),
            entry("rc", text("341200")),
            entry("at", uint(NOW)),
            entry("m", bytes_value(m.bytes())),
            entry("x", uint(1)),
        ])?;
        assert_eq!(
            code(check(&extra, fuyang, &m, fed, time(NOW)?)),
            Some(Reason::Malformed)
        );
        Ok(())
    }

    fn bytes_value(b: &[u8]) -> Value {
        bytes(b)
    }

    #[test]
    fn evidence_and_membership_messages_are_checked() -> Result<(), Box<dyn std::error::Error>> {
        let (t, m) = setup()?;
        let fed = t.federation.public();
        let jinan = &m.members[2];
        let log = sample()?;
        let other = Checkpoint {
            origin: log.origin.clone(),
            size: 3,
            root: [2; 32],
        }
        .sign(&log.origin, &log.log_key)?;
        let evidence = |b: Vec<u8>| -> Result<Vec<u8>, BuildError> {
            Gossip {
                region: jinan.region().clone(),
                at: time(NOW)?,
                body: Body::Evidence {
                    accused: m.members[1].region().clone(),
                    a: log.checkpoint(3)?,
                    b,
                },
            }
            .encode()
        };
        check(&evidence(other.into_bytes())?, jinan, &m, fed, time(NOW)?)?;
        let not_evidence = evidence(log.checkpoint(3)?)?;
        assert_eq!(
            code(check(&not_evidence, jinan, &m, fed, time(NOW)?)),
            Some(Reason::EvidenceInvalid)
        );
        let forged = Gossip {
            region: jinan.region().clone(),
            at: time(NOW)?,
            // Signed by a region root instead of the federation root.
            body: Body::Membership {
                signed: crate::envelope::seal(
                    Kind::Membership,
                    &t.members[0].root,
                    t.contents(0)?.payload()?,
                    &[],
                )?,
            },
        };
        assert_eq!(
            code(check(&forged.encode()?, jinan, &m, fed, time(NOW)?)),
            Some(Reason::MembershipInvalid)
        );
        Ok(())
    }
}
