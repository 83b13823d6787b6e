//! `tongban-node federation …` (specs/federation.md §7): a member's description for the
//! federation's operator, and signing membership versions with the federation root key.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use tongban_core::envelope::{Envelope, Kind};
use tongban_core::federation::{Member, Membership, MembershipContents};
use tongban_core::keys::PublicKey;
use tongban_core::trust::RegionRoot;
use tongban_core::values::{ShortText, Time};

use crate::home::{Home, load, write_durably};
use crate::keyfile;

/// What the federation's operator needs of a member, as JSON.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberFile {
    pub region: String,
    /// The region root certificate, standard base64.
    pub region_certificate: String,
    pub node_key: String,
    pub witness_key: String,
    pub log_key: String,
    pub log_generation: u64,
    pub addresses: Vec<String>,
    /// For people: the node's libp2p PeerId.
    pub peer_id: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(String);

fn fail(e: impl std::fmt::Display) -> CliError {
    CliError(e.to_string())
}

/// The member description of the node in `home` (creating its witness key if an older `init`
/// did not).
pub fn member(home: &Home, addresses: Vec<String>) -> Result<MemberFile, CliError> {
    let loaded = load(home).map_err(fail)?;
    let suite = loaded.federation_key.suite();
    if !home.witness_key().exists() {
        let key = keyfile::generate(suite).map_err(fail)?;
        keyfile::write(&home.witness_key(), &key).map_err(fail)?;
    }
    for address in &addresses {
        address
            .parse::<libp2p::Multiaddr>()
            .map_err(|e| fail(format!("address {address:?}: {e}")))?;
    }
    let witness = keyfile::read(&home.witness_key()).map_err(fail)?;
    if witness.suite() != suite {
        return Err(fail(format!(
            "{}: a witness key of the {} suite in a {suite} federation",
            home.witness_key().display(),
            witness.suite()
        )));
    }
    let node = loaded.node_key.public();
    Ok(MemberFile {
        region: loaded.region.to_string(),
        region_certificate: B64.encode(&loaded.region_cert),
        node_key: hex::encode(node.as_bytes()),
        witness_key: hex::encode(witness.public().as_bytes()),
        log_key: hex::encode(loaded.log_key.public().as_bytes()),
        log_generation: loaded.config.log.generation,
        addresses,
        peer_id: super::swarm::peer_id(node.as_bytes())
            .map_err(fail)?
            .to_string(),
    })
}

fn key(field: &str, text: &str) -> Result<PublicKey, CliError> {
    hex::decode(text)
        .ok()
        .and_then(|b| PublicKey::from_bytes(&b).ok())
        .ok_or_else(|| fail(format!("{field}: not an Ed25519 key in hex")))
}

fn read_member(path: &Path) -> Result<Member, CliError> {
    let text = std::fs::read(path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
    let file: MemberFile =
        serde_json::from_slice(&text).map_err(|e| fail(format!("{}: {e}", path.display())))?;
    let certificate = B64.decode(&file.region_certificate).map_err(|_| {
        fail(format!(
            "{}: region_certificate is not base64",
            path.display()
        ))
    })?;
    let envelope = Envelope::open(&certificate, Kind::Region).map_err(fail)?;
    let root = RegionRoot::from_payload(envelope.payload).map_err(|b| fail(b.detail))?;
    Ok(Member {
        certificate,
        root,
        node_key: key("node_key", &file.node_key)?,
        witness_key: key("witness_key", &file.witness_key)?,
        log_key: key("log_key", &file.log_key)?,
        log_generation: file.log_generation,
        addresses: file.addresses,
    })
}

fn now() -> Result<Time, CliError> {
    crate::region::now().map_err(fail)
}

/// Signs `contents` with the federation root key in `key_file` and writes it to `out`.
fn sign_to(
    contents: &MembershipContents,
    key_file: &Path,
    out: &Path,
) -> Result<Membership, CliError> {
    let key = keyfile::read(key_file).map_err(fail)?;
    let signed = contents.sign(&key).map_err(fail)?;
    write_durably(out, &signed).map_err(fail)?;
    Membership::open(&signed, key.public()).map_err(fail)
}

pub fn genesis(
    key_file: &Path,
    name: &str,
    quorum: u64,
    members: &[PathBuf],
    out: &Path,
) -> Result<Membership, CliError> {
    let contents = MembershipContents {
        name: ShortText::new(name).ok_or_else(|| fail("--name is not a short text"))?,
        version: 1,
        previous: None,
        issued: now()?,
        quorum,
        members: members
            .iter()
            .map(|p| read_member(p))
            .collect::<Result<_, _>>()?,
    };
    sign_to(&contents, key_file, out)
}

/// The next version of `current` with members added (or replaced, for the same region) and
/// removed, and optionally another quorum.
pub fn next(
    key_file: &Path,
    current: &Path,
    add: &[PathBuf],
    remove: &[String],
    quorum: Option<u64>,
    out: &Path,
) -> Result<Membership, CliError> {
    let key = keyfile::read(key_file).map_err(fail)?;
    let bytes = std::fs::read(current).map_err(|e| fail(format!("{}: {e}", current.display())))?;
    let held = Membership::open(&bytes, key.public()).map_err(fail)?;
    let mut members = held.members.clone();
    for region in remove {
        let before = members.len();
        members.retain(|m| m.region().as_str() != region);
        if members.len() == before {
            return Err(fail(format!("region {region} is not a member")));
        }
    }
    for path in add {
        let member = read_member(path)?;
        members.retain(|m| m.region() != member.region());
        members.push(member);
    }
    let contents = MembershipContents {
        name: held.name.clone(),
        version: held.version + 1,
        previous: Some(held.digest()),
        issued: now()?,
        quorum: quorum.unwrap_or(held.quorum),
        members,
    };
    sign_to(&contents, key_file, out)
}
