//! A fixed-seed federation of a few members for the federation's tests: the standard test
//! federation root, the name `tongban.example` (so the sample log of [`super::log`] is member
//! 341200's log), and per member a region root, log, node and witness key derived from names.

use crate::envelope::BuildError;
use crate::federation::{Member, MembershipContents};
use crate::keys::SecretKey;
use crate::suite::Suite;
use crate::testkit::{T0, key, make_region, suite_key, text, time};

pub const NAME: &str = "tongban.example";
/// Region codes of the members, in order.
pub const REGIONS: [&str; 6] = ["341200", "370100", "110000", "310000", "440300", "500000"];

/// One member and its private keys.
pub struct TestMember {
    pub member: Member,
    pub root: SecretKey,
    pub node: SecretKey,
    pub witness: SecretKey,
    pub log: SecretKey,
}

/// The member for region `code`, certified by `federation`.
pub fn member_keys(federation: &SecretKey, code: &str) -> Result<TestMember, BuildError> {
    let region = make_region(federation, code, &format!("region {code}"), &[])?;
    let (node, witness, log) = (
        key(&format!("node {code}"))?,
        key(&format!("witness {code}"))?,
        key(&format!("log {code}"))?,
    );
    Ok(TestMember {
        member: Member {
            certificate: region.signed,
            root: region.certificate,
            node_key: node.public().clone(),
            witness_key: witness.public().clone(),
            log_key: log.public().clone(),
            log_generation: 1,
            addresses: vec![format!("/ip4/127.0.0.1/tcp/{}", 4000 + code.len())],
        },
        root: region.root,
        node,
        witness,
        log,
    })
}

/// The first `n` members of [`REGIONS`] under the standard federation root.
pub struct TestMembers {
    pub federation: SecretKey,
    pub members: Vec<TestMember>,
}

impl TestMembers {
    pub fn new(n: usize) -> Result<TestMembers, BuildError> {
        TestMembers::of(Suite::Ed25519, n)
    }

    /// The first `n` members under the federation root of `suite`: their region roots are of
    /// that suite; node, witness and log keys stay Ed25519 (libp2p identities and signed notes).
    pub fn of(suite: Suite, n: usize) -> Result<TestMembers, BuildError> {
        let federation = suite_key(suite, "federation root")?;
        let members = REGIONS
            .iter()
            .take(n)
            .map(|code| member_keys(&federation, code))
            .collect::<Result<_, _>>()?;
        Ok(TestMembers {
            federation,
            members,
        })
    }

    /// Version 1 with `quorum`.
    pub fn contents(&self, quorum: u64) -> Result<MembershipContents, BuildError> {
        Ok(MembershipContents {
            name: text(NAME)?,
            version: 1,
            previous: None,
            issued: time(T0)?,
            quorum,
            members: self.members.iter().map(|m| m.member.clone()).collect(),
        })
    }

    /// Version 1, signed.
    pub fn genesis(&self, quorum: u64) -> Result<Vec<u8>, BuildError> {
        self.contents(quorum)?.sign(&self.federation)
    }
}
