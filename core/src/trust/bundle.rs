//! Trust bundles: building one, and loading one into a [`TrustStore`] (specs/trust.md §5).

use std::collections::{HashMap, HashSet};

use ciborium::Value;

use crate::cbor::{self, Key};
use crate::codes::{Code, Failure};
use crate::encode::{bytes, entry, map, map_bytes, text, uint};
use crate::envelope::{BuildError, Envelope, Kind, seal};
use crate::fields::{Bad, Fields};
use crate::ids::RegionCode;
use crate::keys::{KeyId, PublicKey, SecretKey};
use crate::trust::{RegionRoot, SealInfo, SealRevocation};
use crate::values::{ShortText, Time};

/// The federation root: the trust anchor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederationRoot {
    pub name: ShortText,
    pub key: PublicKey,
}

/// What a bundle holds, before it is signed.
#[derive(Clone, Debug)]
pub struct BundleContents {
    pub version: u64,
    pub issued: Time,
    pub expires: Time,
    pub federation: FederationRoot,
    /// Signed region root certificates.
    pub regions: Vec<Vec<u8>>,
    /// Signed e-seals.
    pub seals: Vec<Vec<u8>>,
    /// Signed seal revocations.
    pub revocations: Vec<Vec<u8>>,
}

impl BundleContents {
    pub fn payload(&self) -> Result<Vec<u8>, BuildError> {
        let list = |items: &[Vec<u8>]| Value::Array(items.iter().map(|i| bytes(i)).collect());
        map_bytes(vec![
            entry("v", uint(1)),
            entry("ver", uint(self.version)),
            entry("iat", uint(self.issued.seconds())),
            entry("exp", uint(self.expires.seconds())),
            entry(
                "fed",
                map(vec![
                    entry("name", text(self.federation.name.as_str())),
                    entry("pk", bytes(self.federation.key.as_bytes())),
                ])?,
            ),
            entry("regions", list(&self.regions)),
            entry("seals", list(&self.seals)),
            entry("revocations", list(&self.revocations)),
        ])
    }

    /// The bundle, signed by `publisher` (the federation root or a region root in the bundle).
    pub fn sign(&self, publisher: &SecretKey) -> Result<Vec<u8>, BuildError> {
        if self.issued >= self.expires {
            return Err(BuildError::Invalid(
                "bundle must expire after it is issued".into(),
            ));
        }
        seal(Kind::TrustBundle, publisher, self.payload()?, &[])
    }
}

/// A seal as the trust store knows it.
#[derive(Clone, Debug)]
pub struct SealEntry {
    pub info: SealInfo,
    pub revocation: Option<SealRevocation>,
}

/// A loaded, fully checked trust bundle: the table a verifier looks seals up in.
#[derive(Clone, Debug)]
pub struct TrustStore {
    pub version: u64,
    pub issued: Time,
    pub expires: Time,
    pub federation: FederationRoot,
    /// Key id of the key that signed the bundle.
    pub publisher: KeyId,
    regions: Vec<RegionRoot>,
    seals: HashMap<KeyId, SealEntry>,
}

fn invalid(detail: impl Into<String>) -> Failure {
    Failure::new(Code::TrustBundleInvalid, detail)
}

/// Opens and verifies a nested signed object of the bundle.
fn open_element<'a>(
    bytes: &'a [u8],
    kind: Kind,
    what: &str,
    signer: impl FnOnce(KeyId) -> Option<&'a PublicKey>,
) -> Result<Envelope<'a>, Failure> {
    let envelope = Envelope::open(bytes, kind).map_err(|f| invalid(format!("{what}: {f}")))?;
    let key = signer(envelope.kid)
        .ok_or_else(|| invalid(format!("{what}: signed by unknown key {}", envelope.kid)))?;
    envelope
        .verify(key)
        .map_err(|f| invalid(format!("{what}: {f}")))?;
    cbor::check(envelope.payload, kind.size_limit(), false)
        .map_err(|f| invalid(format!("{what} payload: {f}")))?;
    Ok(envelope)
}

fn decode<T>(what: &str, result: Result<T, Bad>) -> Result<T, Failure> {
    result.map_err(|b| {
        let mut failure = b.into_failure(Code::TrustBundleInvalid);
        failure.detail = format!("{what}: {}", failure.detail);
        failure
    })
}

struct RawBundle<'a> {
    version: u64,
    issued: Time,
    expires: Time,
    federation: FederationRoot,
    regions: Vec<&'a [u8]>,
    seals: Vec<&'a [u8]>,
    revocations: Vec<&'a [u8]>,
}

fn read_payload(payload: &[u8]) -> Result<RawBundle<'_>, Bad> {
    let mut fields = Fields::whole(payload)?;
    fields.version_1()?;
    let version = fields.uint(Key::Text("ver"))?;
    let issued = fields.time(Key::Text("iat"))?;
    let expires = fields.time(Key::Text("exp"))?;
    let mut fed = fields.map(Key::Text("fed"))?;
    let name = fed.short_text(Key::Text("name"))?;
    let key = fed.public_key(Key::Text("pk"))?;
    fed.finish()?;
    let regions = fields.array(Key::Text("regions"), "an array of byte strings", |r| {
        r.bytes()
    })?;
    let seals = fields.array(Key::Text("seals"), "an array of byte strings", |r| {
        r.bytes()
    })?;
    let revocations = fields.array(Key::Text("revocations"), "an array of byte strings", |r| {
        r.bytes()
    })?;
    fields.finish()?;
    if issued >= expires {
        return Err(Bad::new("bundle expires before it is issued"));
    }
    Ok(RawBundle {
        version,
        issued,
        expires,
        federation: FederationRoot {
            name: ShortText::new(name).ok_or_else(|| Bad::new("federation name"))?,
            key,
        },
        regions,
        seals,
        revocations,
    })
}

impl TrustStore {
    /// Loads `bundle` at time `now` (specs/trust.md §5.1). `pinned` is the federation root's kid
    /// when the operator pins it.
    pub fn load(bundle: &[u8], now: Time, pinned: Option<KeyId>) -> Result<TrustStore, Failure> {
        let store = TrustStore::load_any_time(bundle, pinned)?;
        // 9: freshness.
        store.check_fresh(now)?;
        Ok(store)
    }

    /// Steps 1–8 without the expiry check: for auditors replaying history, where the question is what
    /// the bundle certified, not whether it may still be used today.
    pub fn load_any_time(bundle: &[u8], pinned: Option<KeyId>) -> Result<TrustStore, Failure> {
        // 1–2: envelope and payload.
        let envelope = Envelope::open(bundle, Kind::TrustBundle).map_err(|f| match f.code {
            Code::TooLarge => f,
            _ => invalid(f.to_string()),
        })?;
        cbor::check(envelope.payload, Kind::TrustBundle.size_limit(), false)
            .map_err(|f| invalid(format!("payload: {f}")))?;
        let raw = decode("bundle", read_payload(envelope.payload))?;
        // 3: the anchor.
        let fed_kid = raw.federation.key.kid();
        if let Some(pinned) = pinned
            && pinned != fed_kid
        {
            return Err(Failure::new(
                Code::TrustBundleUntrusted,
                format!("federation root {fed_kid} is not the pinned {pinned}"),
            ));
        }
        // 4: region roots.
        let mut regions: Vec<RegionRoot> = Vec::with_capacity(raw.regions.len());
        for (i, bytes) in raw.regions.iter().enumerate() {
            let what = format!("region certificate {i}");
            let fed_key = &raw.federation.key;
            let envelope = open_element(bytes, Kind::Region, &what, |kid| {
                (kid == fed_kid).then_some(fed_key)
            })?;
            let root = decode(&what, RegionRoot::from_payload(envelope.payload))?;
            if regions.iter().any(|r| r.region == root.region) {
                return Err(invalid(format!("{what}: region {} twice", root.region)));
            }
            regions.push(root);
        }
        // 5: the bundle's own signature.
        let publisher = if envelope.kid == fed_kid {
            &raw.federation.key
        } else {
            &root_of(&regions, envelope.kid)?.key
        };
        envelope
            .verify(publisher)
            .map_err(|f| invalid(format!("bundle: {f}")))?;
        let publisher = publisher.kid();
        // 6: every seal on its own.
        let mut infos: Vec<SealInfo> = Vec::with_capacity(raw.seals.len());
        for (i, bytes) in raw.seals.iter().enumerate() {
            let what = format!("seal {i}");
            let envelope = open_element(bytes, Kind::Seal, &what, |kid| {
                regions.iter().find(|r| r.key.kid() == kid).map(|r| &r.key)
            })?;
            let info = decode(&what, SealInfo::from_payload(envelope.payload))?;
            let root = root_of(&regions, envelope.kid)?;
            if info.region != root.region {
                return Err(invalid(format!(
                    "{what}: region {} signed by the root of {}",
                    info.region, root.region
                )));
            }
            if !root.valid_at(info.created) {
                return Err(invalid(format!(
                    "{what}: created outside its region root's validity"
                )));
            }
            infos.push(info);
        }
        // 7: one suite (the federation root's), unique keys and seal ids, once every seal passed
        // step 6.
        let suite = raw.federation.key.suite();
        let keys = regions
            .iter()
            .map(|r| &r.key)
            .chain(infos.iter().map(|i| &i.key));
        if let Some(other) = keys.into_iter().find(|k| k.suite() != suite) {
            return Err(invalid(format!(
                "key {} is an {} key in an {suite} federation",
                other.kid(),
                other.suite()
            )));
        }
        let mut kids: HashSet<KeyId> = HashSet::from([fed_kid]);
        for root in &regions {
            if !kids.insert(root.key.kid()) {
                return Err(invalid("a key serves two roles"));
            }
        }
        let mut seal_ids = HashSet::new();
        let mut seals: HashMap<KeyId, SealEntry> = HashMap::with_capacity(infos.len());
        for (i, info) in infos.into_iter().enumerate() {
            if !kids.insert(info.key.kid()) {
                return Err(invalid(format!("seal {i}: key id already in use")));
            }
            if !seal_ids.insert((info.region.clone(), info.id.clone())) {
                return Err(invalid(format!(
                    "seal {i}: seal id {} twice in region",
                    info.id
                )));
            }
            seals.insert(
                info.key.kid(),
                SealEntry {
                    info,
                    revocation: None,
                },
            );
        }
        // 8: revocations.
        for (i, bytes) in raw.revocations.iter().enumerate() {
            let what = format!("revocation {i}");
            let envelope = open_element(bytes, Kind::SealRevocation, &what, |kid| {
                regions.iter().find(|r| r.key.kid() == kid).map(|r| &r.key)
            })?;
            let revocation = decode(&what, SealRevocation::from_payload(envelope.payload))?;
            let root = root_of(&regions, envelope.kid)?;
            let seal = seals
                .get_mut(&revocation.seal)
                .filter(|s| s.info.region == root.region && revocation.region == root.region)
                .ok_or_else(|| invalid(format!("{what}: no such seal in the signer's region")))?;
            if seal.revocation.is_some() {
                return Err(invalid(format!("{what}: seal revoked twice")));
            }
            seal.revocation = Some(revocation);
        }
        Ok(TrustStore {
            version: raw.version,
            issued: raw.issued,
            expires: raw.expires,
            federation: raw.federation,
            publisher,
            regions,
            seals,
        })
    }

    /// `TRUST_BUNDLE_EXPIRED` at or after the bundle's expiry.
    /// The federation's suite: its root key's (encoding.md §2.3).
    pub fn suite(&self) -> crate::suite::Suite {
        self.federation.key.suite()
    }

    pub fn check_fresh(&self, now: Time) -> Result<(), Failure> {
        if now >= self.expires {
            return Err(Failure::new(
                Code::TrustBundleExpired,
                format!("bundle expired at {}", self.expires.seconds()),
            ));
        }
        Ok(())
    }

    pub fn seal(&self, kid: &KeyId) -> Option<&SealEntry> {
        self.seals.get(kid)
    }

    pub fn seals(&self) -> impl Iterator<Item = &SealEntry> {
        self.seals.values()
    }

    pub fn region(&self, code: &RegionCode) -> Option<&RegionRoot> {
        self.regions.iter().find(|r| &r.region == code)
    }

    pub fn regions(&self) -> &[RegionRoot] {
        &self.regions
    }

    /// The region root whose key has this id.
    pub fn region_by_kid(&self, kid: &KeyId) -> Option<&RegionRoot> {
        self.regions.iter().find(|r| r.key.kid() == *kid)
    }

    /// Opens `bytes` as an object of `kind` signed by one of the store's region roots, and checks
    /// its signature and payload encoding: every failure is `code`. Returns the payload and the
    /// signer (the caller checks that the payload names the signer's region).
    pub fn open_region_signed<'a>(
        &self,
        bytes: &'a [u8],
        kind: Kind,
        code: Code,
    ) -> Result<(&'a [u8], &RegionRoot), Failure> {
        let invalid = |detail: String| Failure::new(code, detail);
        let envelope = Envelope::open(bytes, kind).map_err(|f| invalid(f.to_string()))?;
        let root = self
            .region_by_kid(&envelope.kid)
            .ok_or_else(|| invalid(format!("signed by unknown key {}", envelope.kid)))?;
        envelope
            .verify(&root.key)
            .map_err(|f| invalid(f.to_string()))?;
        cbor::check(envelope.payload, kind.size_limit(), false)
            .map_err(|f| invalid(format!("payload: {f}")))?;
        Ok((envelope.payload, root))
    }
}

fn root_of(regions: &[RegionRoot], kid: KeyId) -> Result<&RegionRoot, Failure> {
    regions
        .iter()
        .find(|r| r.key.kid() == kid)
        .ok_or_else(|| invalid(format!("no region root {kid}")))
}
