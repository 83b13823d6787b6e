//! The membership (specs/federation.md §2): which regions form the federation, with each member's
//! keys and addresses, signed by the federation root. A new version names the digest of the one it
//! replaces, so every node holds one linear history and never silently accepts a fork.

use std::collections::HashSet;

use ciborium::Value;

use crate::cbor::{self, Key};
use crate::encode::{bytes, entry, map, map_bytes, text, uint};
use crate::envelope::{BuildError, Envelope, Kind, seal};
use crate::federation::{Reason, Refused, refuse};
use crate::fields::{Bad, Fields};
use crate::ids::RegionCode;
use crate::keys::{KeyId, PublicKey, SecretKey};
use crate::log::note::{NoteRole, NoteVerifier};
use crate::trust::RegionRoot;
use crate::values::{ShortText, Time};

/// At most this many members.
pub const MAX_MEMBERS: usize = 256;
/// At most this many addresses per member, each at most [`MAX_ADDRESS`] bytes.
pub const MAX_ADDRESSES: usize = 8;
pub const MAX_ADDRESS: usize = 256;

/// One region of the federation and the keys its node uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The region root certificate (trust.md §2), signed by the federation root, as received.
    pub certificate: Vec<u8>,
    /// What the certificate says.
    pub root: RegionRoot,
    /// The node's libp2p identity.
    pub node_key: PublicKey,
    /// The key of the node's witness (cosignature/v1).
    pub witness_key: PublicKey,
    /// The region's log key and generation: the log's origin is `<fed>/<rc>/log/<generation>`.
    pub log_key: PublicKey,
    pub log_generation: u64,
    /// libp2p multiaddrs where the node listens (without `/p2p/`), as text.
    pub addresses: Vec<String>,
}

impl Member {
    pub fn region(&self) -> &RegionCode {
        &self.root.region
    }

    /// The origin of the member's log (log.md §3).
    pub fn origin(&self, federation: &str) -> String {
        format!(
            "{federation}/{}/log/{}",
            self.root.region.as_str(),
            self.log_generation
        )
    }

    /// The C2SP note verifier of the member's log.
    pub fn log_verifier(&self, federation: &str) -> Result<NoteVerifier, Refused> {
        NoteVerifier::new(
            &self.origin(federation),
            NoteRole::Log,
            self.log_key.clone(),
        )
        .map_err(|e| Refused::new(Reason::MembershipInvalid, e.to_string()))
    }

    /// The name the member's witness signs cosignatures under.
    pub fn witness_name(&self, federation: &str) -> String {
        format!("{federation}/{}/witness", self.root.region.as_str())
    }

    pub fn witness_verifier(&self, federation: &str) -> Result<NoteVerifier, Refused> {
        NoteVerifier::new(
            &self.witness_name(federation),
            NoteRole::Witness,
            self.witness_key.clone(),
        )
        .map_err(|e| Refused::new(Reason::MembershipInvalid, e.to_string()))
    }

    fn value(&self) -> Result<Value, BuildError> {
        map(vec![
            entry("cert", bytes(&self.certificate)),
            entry("nk", bytes(self.node_key.as_bytes())),
            entry("wk", bytes(self.witness_key.as_bytes())),
            entry("lk", bytes(self.log_key.as_bytes())),
            entry("lg", uint(self.log_generation)),
            entry(
                "ad",
                Value::Array(self.addresses.iter().map(|a| text(a)).collect()),
            ),
        ])
    }
}

/// A membership version before it is signed.
#[derive(Clone, Debug)]
pub struct MembershipContents {
    pub name: ShortText,
    pub version: u64,
    /// The suite hash (BLAKE3 or SM3) of the previous version's signed bytes; `None` exactly for
    /// version 1.
    pub previous: Option<[u8; 32]>,
    pub issued: Time,
    /// Cosignatures from other members' witnesses a checkpoint needs before it is published.
    pub quorum: u64,
    pub members: Vec<Member>,
}

impl MembershipContents {
    pub fn payload(&self) -> Result<Vec<u8>, BuildError> {
        let mut members = self.members.clone();
        members.sort_by(|a, b| a.region().cmp(b.region()));
        let mut entries = vec![
            entry("v", uint(1)),
            entry("fed", text(self.name.as_str())),
            entry("ver", uint(self.version)),
            entry("iat", uint(self.issued.seconds())),
            entry("q", uint(self.quorum)),
            entry(
                "m",
                Value::Array(
                    members
                        .iter()
                        .map(Member::value)
                        .collect::<Result<_, _>>()?,
                ),
            ),
        ];
        if let Some(previous) = &self.previous {
            entries.push(entry("prev", bytes(previous)));
        }
        map_bytes(entries)
    }

    /// The membership signed by the federation root; refused unless it opens as a valid one.
    pub fn sign(&self, federation: &SecretKey) -> Result<Vec<u8>, BuildError> {
        let signed = seal(Kind::Membership, federation, self.payload()?, &[])?;
        Membership::open(&signed, federation.public())
            .map_err(|r| BuildError::Invalid(r.to_string()))?;
        Ok(signed)
    }
}

/// A verified membership version.
#[derive(Clone, Debug)]
pub struct Membership {
    pub name: ShortText,
    pub version: u64,
    pub previous: Option<[u8; 32]>,
    pub issued: Time,
    pub quorum: u64,
    /// Sorted by region code.
    pub members: Vec<Member>,
    bytes: Vec<u8>,
    digest: [u8; 32],
}

/// How a received membership relates to the one held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Succession {
    /// The same version, byte for byte.
    Same,
    /// The next version: it replaces the held one.
    Next,
    /// Older than the one held: nothing to do.
    Older,
}

fn invalid(detail: impl Into<String>) -> Refused {
    Refused::new(Reason::MembershipInvalid, detail)
}

fn bad(what: &str) -> impl FnOnce(Bad) -> Refused + '_ {
    move |b| invalid(format!("{what}: {}", b.detail))
}

impl Membership {
    /// Opens a signed membership and checks every rule of specs/federation.md §2.2 against the
    /// federation root `federation`.
    pub fn open(signed: &[u8], federation: &PublicKey) -> Result<Membership, Refused> {
        let limit = Kind::Membership.size_limit();
        if signed.len() as u64 > limit {
            return refuse(
                Reason::TooLarge,
                format!("{} bytes; a membership is at most {limit}", signed.len()),
            );
        }
        let envelope =
            Envelope::open(signed, Kind::Membership).map_err(|f| invalid(f.to_string()))?;
        if envelope.kid != federation.kid() {
            return Err(invalid(format!(
                "signed by {}, not the federation root {}",
                envelope.kid,
                federation.kid()
            )));
        }
        envelope
            .verify(federation)
            .map_err(|f| invalid(f.to_string()))?;
        cbor::check(envelope.payload, limit, false).map_err(|f| invalid(f.to_string()))?;
        let mut fields = Fields::whole(envelope.payload).map_err(bad("payload"))?;
        fields.version_1().map_err(bad("payload"))?;
        let name = fields
            .short_text(Key::Text("fed"))
            .map_err(bad("payload"))?;
        let version = fields.uint(Key::Text("ver")).map_err(bad("payload"))?;
        let previous = fields
            .optional_fixed::<32>(Key::Text("prev"))
            .map_err(bad("payload"))?;
        let issued = fields.time(Key::Text("iat")).map_err(bad("payload"))?;
        let quorum = fields.uint(Key::Text("q")).map_err(bad("payload"))?;
        let raw_members = fields
            .array(Key::Text("m"), "an array of member maps", |r| r.skip())
            .map_err(bad("payload"))?;
        fields.finish().map_err(bad("payload"))?;
        if version == 0 || (version == 1) != previous.is_none() {
            return Err(invalid(
                "version must be at least 1, and \"prev\" present exactly when it is above 1",
            ));
        }
        if raw_members.is_empty() || raw_members.len() > MAX_MEMBERS {
            return Err(invalid(format!("1 to {MAX_MEMBERS} members")));
        }
        let mut members = Vec::with_capacity(raw_members.len());
        let mut kids: HashSet<KeyId> = HashSet::from([federation.kid()]);
        for (i, raw) in raw_members.iter().enumerate() {
            let member = read_member(raw, federation)
                .map_err(|r| invalid(format!("member {i}: {}", r.detail)))?;
            if let Some(previous) = members.last().map(|m: &Member| m.region().clone())
                && previous.as_str() >= member.region().as_str()
            {
                return Err(invalid(format!(
                    "member {i}: members must be sorted by region code, each once"
                )));
            }
            for key in [
                &member.root.key,
                &member.node_key,
                &member.witness_key,
                &member.log_key,
            ] {
                if !kids.insert(key.kid()) {
                    return Err(invalid(format!(
                        "member {i}: key {} serves two roles",
                        key.kid()
                    )));
                }
            }
            members.push(member);
        }
        if quorum >= members.len() as u64 && quorum > 0 {
            return Err(invalid(format!(
                "quorum {quorum} needs more witnesses than the {} other members",
                members.len() - 1
            )));
        }
        Ok(Membership {
            name: ShortText::new(name).ok_or_else(|| invalid("federation name"))?,
            version,
            previous,
            issued,
            quorum,
            members,
            // The federation's suite hash (encoding.md §2.3): BLAKE3 or SM3.
            digest: federation.suite().digest(signed),
            bytes: signed.to_vec(),
        })
    }

    /// The signed bytes, as received.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The federation suite's hash of the signed bytes: what the next version names as `"prev"`.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    pub fn member(&self, region: &RegionCode) -> Option<&Member> {
        self.members.iter().find(|m| m.region() == region)
    }

    /// The member whose node key is `key` (32 bytes).
    pub fn member_by_node(&self, key: &[u8]) -> Option<&Member> {
        self.members.iter().find(|m| m.node_key.as_bytes() == key)
    }

    /// Whether `self` (received) may replace `held` (specs/federation.md §2.3).
    pub fn succeeds(&self, held: &Membership) -> Result<Succession, Refused> {
        if self.name != held.name {
            return refuse(
                Reason::MembershipInvalid,
                format!(
                    "membership of federation {}, not {}",
                    self.name.as_str(),
                    held.name.as_str()
                ),
            );
        }
        match self.version {
            v if v == held.version && self.digest == held.digest => Ok(Succession::Same),
            v if v == held.version => refuse(
                Reason::MembershipFork,
                format!("two different memberships of version {v}"),
            ),
            v if v < held.version => Ok(Succession::Older),
            v if v == held.version + 1 && self.previous == Some(held.digest) => {
                Ok(Succession::Next)
            }
            v if v == held.version + 1 => refuse(
                Reason::MembershipFork,
                format!(
                    "version {v} does not name the held version {} as its predecessor",
                    held.version
                ),
            ),
            v => refuse(
                Reason::MembershipNotExtending,
                format!("version {v} skips versions after the held {}", held.version),
            ),
        }
    }
}

fn read_member(raw: &[u8], federation: &PublicKey) -> Result<Member, Refused> {
    let mut fields = Fields::whole(raw).map_err(bad("member"))?;
    let certificate = fields.bytes(Key::Text("cert")).map_err(bad("member"))?;
    let node_key = fields
        .public_key(Key::Text("nk"))
        .map_err(bad("node key"))?;
    let witness_key = fields
        .public_key(Key::Text("wk"))
        .map_err(bad("witness key"))?;
    let log_key = fields.public_key(Key::Text("lk")).map_err(bad("log key"))?;
    let log_generation = fields.uint(Key::Text("lg")).map_err(bad("member"))?;
    let addresses = fields
        .array(Key::Text("ad"), "an array of texts", |r| r.text())
        .map_err(bad("member"))?;
    fields.finish().map_err(bad("member"))?;
    if log_generation == 0 {
        return Err(invalid("log generation 0"));
    }
    if addresses.len() > MAX_ADDRESSES
        || addresses
            .iter()
            .any(|a| a.is_empty() || a.len() > MAX_ADDRESS || !a.starts_with('/'))
    {
        return Err(invalid(format!(
            "at most {MAX_ADDRESSES} addresses, each a multiaddr of 1 to {MAX_ADDRESS} bytes"
        )));
    }
    let envelope = Envelope::open(certificate, Kind::Region)
        .map_err(|f| invalid(format!("region certificate: {f}")))?;
    if envelope.kid != federation.kid() {
        return Err(invalid(
            "region certificate not signed by the federation root",
        ));
    }
    envelope
        .verify(federation)
        .map_err(|f| invalid(format!("region certificate: {f}")))?;
    cbor::check(envelope.payload, Kind::Region.size_limit(), false)
        .map_err(|f| invalid(format!("region certificate: {f}")))?;
    let root = RegionRoot::from_payload(envelope.payload).map_err(bad("region certificate"))?;
    Ok(Member {
        certificate: certificate.to_vec(),
        root,
        node_key,
        witness_key,
        log_key,
        log_generation,
        addresses: addresses.into_iter().map(str::to_owned).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::federation::{TestMembers, member_keys};

    #[test]
    fn a_signed_membership_opens() -> Result<(), Box<dyn std::error::Error>> {
        let t = TestMembers::new(3)?;
        let signed = t.genesis(1)?;
        let m = Membership::open(&signed, t.federation.public())?;
        assert_eq!((m.version, m.quorum, m.members.len()), (1, 1, 3));
        assert!(m.members.windows(2).all(|w| w[0].region() < w[1].region()));
        let first = &m.members[0];
        assert_eq!(
            m.member_by_node(first.node_key.as_bytes())
                .map(Member::region),
            Some(first.region())
        );
        assert_eq!(
            first.origin("tongban.test"),
            format!("tongban.test/{}/log/1", first.region())
        );
        Ok(())
    }

    #[test]
    fn a_bad_signature_or_another_root_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let t = TestMembers::new(2)?;
        let mut signed = t.genesis(0)?;
        let other = SecretKey::from_seed(&[77; 32])?;
        let refused = Membership::open(&signed, other.public())
            .err()
            .map(|r| r.code);
        assert_eq!(refused, Some(Reason::MembershipInvalid));
        let last = signed.len() - 1;
        signed[last] ^= 1;
        let refused = Membership::open(&signed, t.federation.public()).err();
        assert_eq!(refused.map(|r| r.code), Some(Reason::MembershipInvalid));
        Ok(())
    }

    #[test]
    fn the_version_chain_is_enforced() -> Result<(), Box<dyn std::error::Error>> {
        let t = TestMembers::new(3)?;
        let key = t.federation.public();
        let v1 = Membership::open(&t.genesis(1)?, key)?;
        let mut next = t.contents(1)?;
        next.version = 2;
        next.previous = Some(v1.digest());
        next.members.pop();
        let v2 = Membership::open(&next.sign(&t.federation)?, key)?;
        assert_eq!(v2.succeeds(&v1)?, Succession::Next);
        assert_eq!(v1.succeeds(&v2)?, Succession::Older);
        assert_eq!(v1.succeeds(&v1)?, Succession::Same);
        // Version 2 naming another predecessor: a fork.
        next.previous = Some([9; 32]);
        let forked = Membership::open(&next.sign(&t.federation)?, key)?;
        assert_eq!(
            forked.succeeds(&v1).err().map(|r| r.code),
            Some(Reason::MembershipFork)
        );
        // Two different version 2s.
        assert_eq!(
            forked.succeeds(&v2).err().map(|r| r.code),
            Some(Reason::MembershipFork)
        );
        // Version 3 on top of version 1 skips one.
        next.version = 3;
        next.previous = Some(v2.digest());
        let v3 = Membership::open(&next.sign(&t.federation)?, key)?;
        assert_eq!(
            v3.succeeds(&v1).err().map(|r| r.code),
            Some(Reason::MembershipNotExtending)
        );
        assert_eq!(v3.succeeds(&v2)?, Succession::Next);
        // "prev" on version 1, or missing on version 2, is malformed.
        let mut wrong = t.contents(1)?;
        wrong.previous = Some([1; 32]);
        assert!(wrong.sign(&t.federation).is_err());
        Ok(())
    }

    #[test]
    fn an_sm2_federations_versions_are_chained_by_sm3() -> Result<(), Box<dyn std::error::Error>> {
        use crate::suite::Suite;
        use sm3::Digest;
        let t = TestMembers::of(Suite::Sm2, 3)?;
        let key = t.federation.public();
        let genesis = t.genesis(1)?;
        let v1 = Membership::open(&genesis, key)?;
        let sm3: [u8; 32] = sm3::Sm3::digest(&genesis).into();
        assert_eq!(v1.digest(), sm3);
        let mut next = t.contents(1)?;
        next.version = 2;
        next.previous = Some(v1.digest());
        let v2 = Membership::open(&next.sign(&t.federation)?, key)?;
        assert_eq!(v2.succeeds(&v1)?, Succession::Next);
        // Named by the other suite's hash, version 1 is another predecessor: a fork.
        next.previous = Some(*blake3::hash(&genesis).as_bytes());
        let named_by_blake3 = Membership::open(&next.sign(&t.federation)?, key)?;
        assert_eq!(
            named_by_blake3.succeeds(&v1).err().map(|r| r.code),
            Some(Reason::MembershipFork)
        );
        Ok(())
    }

    #[test]
    fn membership_rules() -> Result<(), Box<dyn std::error::Error>> {
        let t = TestMembers::new(2)?;
        // A quorum the other members cannot reach.
        let mut c = t.contents(2)?;
        assert!(c.sign(&t.federation).is_err());
        // One key in two roles.
        c = t.contents(1)?;
        c.members[1].witness_key = c.members[0].node_key.clone();
        assert!(c.sign(&t.federation).is_err());
        // A region twice.
        c = t.contents(0)?;
        let again = c.members[0].clone();
        c.members.push(again);
        assert!(c.sign(&t.federation).is_err());
        // A region certificate from another federation root.
        c = t.contents(0)?;
        let stranger = member_keys(&SecretKey::from_seed(&[78; 32])?, "370100")?;
        c.members[0].certificate = stranger.member.certificate;
        assert!(c.sign(&t.federation).is_err());
        // An address that is not a multiaddr.
        c = t.contents(0)?;
        c.members[0].addresses = vec!["127.0.0.1:4001".into()];
        assert!(c.sign(&t.federation).is_err());
        Ok(())
    }

    #[test]
    fn oversized_is_refused_before_parsing() -> Result<(), Box<dyn std::error::Error>> {
        let t = TestMembers::new(1)?;
        let huge = vec![0u8; Kind::Membership.size_limit() as usize + 1];
        let refused = Membership::open(&huge, t.federation.public()).err();
        assert_eq!(refused.map(|r| r.code), Some(Reason::TooLarge));
        Ok(())
    }
}
