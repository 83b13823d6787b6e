//! A fixed-seed test federation: keys, regions, agencies and seals that the test vectors, the CLI's
//! tests, the benches and the generators share. Never use these keys for anything real: their seeds
//! are published in specs/vectors/.

pub mod bulk;
pub mod federation;
pub mod log;
pub mod qr;
pub mod raw;
pub mod sharing;
pub mod vectors;

use crate::cert::{Draft, Holder, HolderIdType, SaltSource, TrustLevel};
use crate::envelope::BuildError;
use crate::ids::{Identifier, IssuerCode, RegionCode, TypeCode, Uscc, uscc};
use crate::keys::SecretKey;
use crate::status::{State, Succession};
use crate::suite::Suite;
use crate::trust::{
    BundleContents, FederationRoot, MediaType, Picture, RegionRoot, SealId, SealInfo,
    SealRevocation, SealType, StatusEntry, StatusSnapshot,
};
use crate::values::{ShortText, Time};

/// 2026-01-01T00:00:00Z, the test federation's reference time.
pub const T0: u64 = 1_767_225_600;
pub const DAY: u64 = 86_400;
pub const YEAR: u64 = 365 * DAY;
/// The "now" most vectors are verified at: 2026-07-25.
pub const NOW: u64 = T0 + 205 * DAY;
/// Business licence (营业执照) type code used in the vectors.
pub const BUSINESS_LICENCE: &str = "11100000000013338W001";
/// Food business permit (食品经营许可证) type code used in the vectors.
pub const FOOD_PERMIT: &str = "11100000000013338W011";

/// BLAKE3 context that turns a test key's name into its seed.
pub const SEED_CONTEXT: &str = "tongban v1 test seed";

/// The seed of the test key called `name`: BLAKE3-derive_key("tongban v1 test seed", name).
pub fn seed(name: &str) -> [u8; 32] {
    blake3::derive_key(SEED_CONTEXT, name.as_bytes())
}

/// The test key called `name`.
pub fn key(name: &str) -> Result<SecretKey, BuildError> {
    SecretKey::from_seed(&seed(name)).map_err(|e| BuildError::Invalid(format!("{name}: {e}")))
}

/// The name of the test key `name` in `suite`: itself for Ed25519, `"sm2 " + name` for SM2, so
/// that no seed serves both algorithms.
pub fn key_name(suite: Suite, name: &str) -> String {
    match suite {
        Suite::Ed25519 => name.to_owned(),
        Suite::Sm2 => format!("sm2 {name}"),
    }
}

/// The test key called `name` in `suite`: made from the seed of [`key_name`].
pub fn suite_key(suite: Suite, name: &str) -> Result<SecretKey, BuildError> {
    let name = key_name(suite, name);
    SecretKey::from_suite_seed(suite, &seed(&name))
        .map_err(|e| BuildError::Invalid(format!("{name}: {e}")))
}

pub fn time(seconds: u64) -> Result<Time, BuildError> {
    Time::new(seconds).ok_or_else(|| BuildError::Invalid(format!("time {seconds}")))
}

pub fn text(value: &str) -> Result<ShortText, BuildError> {
    ShortText::new(value).ok_or_else(|| BuildError::Invalid(format!("short text {value:?}")))
}

/// A USCC made from its first 17 characters and the computed check character.
pub fn make_uscc(first17: &str) -> Result<Uscc, BuildError> {
    let check = uscc::check_char(first17).map_err(|e| BuildError::Invalid(e.to_string()))?;
    Uscc::parse(&format!("{first17}{check}")).map_err(|e| BuildError::Invalid(e.to_string()))
}

pub fn region_code(code: &str) -> Result<RegionCode, BuildError> {
    RegionCode::parse(code).map_err(|e| BuildError::Invalid(e.to_string()))
}

/// An identifier of type `type_code` issued by `agency`, with the check character computed.
pub fn identifier(type_code: &str, agency: &Uscc, serial: &str) -> Result<Identifier, BuildError> {
    let type_code = TypeCode::parse(type_code).map_err(|e| BuildError::Invalid(e.to_string()))?;
    Identifier::new(type_code, IssuerCode::Uscc(agency.clone()), serial, "001")
        .map_err(|e| BuildError::Invalid(e.to_string()))
}

/// Salts drawn from a BLAKE3 stream keyed by a label, so that issuing is reproducible.
pub struct SeededSalts(blake3::OutputReader);

impl SeededSalts {
    pub fn new(label: &str) -> SeededSalts {
        let mut hasher = blake3::Hasher::new_derive_key("tongban v1 test salts");
        hasher.update(label.as_bytes());
        SeededSalts(hasher.finalize_xof())
    }
}

impl SaltSource for SeededSalts {
    fn salt(&mut self) -> [u8; 16] {
        let mut salt = [0u8; 16];
        self.0.fill(&mut salt);
        salt
    }
}

/// One seal and its private key.
pub struct TestSeal {
    pub key: SecretKey,
    pub info: SealInfo,
    pub signed: Vec<u8>,
}

/// One region: its root and seals.
pub struct TestRegion {
    pub root: SecretKey,
    pub certificate: RegionRoot,
    pub signed: Vec<u8>,
    pub seals: Vec<TestSeal>,
}

/// The test federation of specs/vectors/README.md.
pub struct TestFederation {
    pub federation: SecretKey,
    pub fuyang: TestRegion,
    pub jinan: TestRegion,
    /// Revocation of the Fuyang seal `FY-AMR-02` from T0 + 100 days.
    pub revocation: Vec<u8>,
    pub revoked_from: Time,
}

/// A seal valid from 30 days before T0 for five years: what most test seals are.
pub(crate) fn current<'a>(
    id: &'a str,
    name: &'a str,
    agency_name: &'a str,
    agency17: &'a str,
) -> SealSpec<'a> {
    SealSpec {
        id,
        name,
        agency_name,
        agency17,
        valid_from: T0 - 30 * DAY,
        valid_until: T0 + 5 * YEAR,
        share_types: &[],
    }
}

pub(crate) struct SealSpec<'a> {
    pub(crate) id: &'a str,
    pub(crate) name: &'a str,
    pub(crate) agency_name: &'a str,
    pub(crate) agency17: &'a str,
    pub(crate) valid_from: u64,
    pub(crate) valid_until: u64,
    /// Type codes of the seal's sharing scope (specs/sharing.md §2).
    pub(crate) share_types: &'a [&'a str],
}

pub(crate) fn make_region(
    federation: &SecretKey,
    code: &str,
    name: &str,
    seals: &[SealSpec<'_>],
) -> Result<TestRegion, BuildError> {
    let suite = federation.suite();
    let root = suite_key(suite, &format!("region {code} root"))?;
    let certificate = RegionRoot {
        region: region_code(code)?,
        name: text(name)?,
        key: root.public().clone(),
        valid_from: time(T0 - 5 * YEAR)?,
        valid_until: time(T0 + 10 * YEAR)?,
    };
    let signed = certificate.certify(federation)?;
    let mut made = Vec::new();
    for spec in seals {
        let seal_key = suite_key(suite, &format!("seal {code} {}", spec.id))?;
        let picture = format!("seal picture of {}", spec.id);
        let info = SealInfo {
            id: SealId::parse(spec.id).ok_or_else(|| BuildError::Invalid(spec.id.into()))?,
            seal_type: SealType::Approval,
            name: text(spec.name)?,
            agency_name: text(spec.agency_name)?,
            agency: make_uscc(spec.agency17)?,
            region: certificate.region.clone(),
            key: seal_key.public().clone(),
            created: time(spec.valid_from)?,
            valid_from: time(spec.valid_from)?,
            valid_until: time(spec.valid_until)?,
            picture: Picture::of(suite, picture.as_bytes(), MediaType::Png),
            share_types: spec
                .share_types
                .iter()
                .map(|t| TypeCode::parse(t).map_err(|e| BuildError::Invalid(e.to_string())))
                .collect::<Result<_, _>>()?,
        };
        let signed = info.sign(&root)?;
        made.push(TestSeal {
            key: seal_key,
            info,
            signed,
        });
    }
    Ok(TestRegion {
        root,
        certificate,
        signed,
        seals: made,
    })
}

pub const FUYANG_AMR: &str = "阜阳市市场监督管理局";
pub const FUYANG_DATA: &str = "阜阳市数据资源管理局";
pub const JINAN_APPROVAL: &str = "济南市行政审批服务局";

impl TestFederation {
    pub fn standard() -> Result<TestFederation, BuildError> {
        TestFederation::of(Suite::Ed25519)
    }

    /// The test federation with every key in `suite`.
    pub fn of(suite: Suite) -> Result<TestFederation, BuildError> {
        let federation = suite_key(suite, "federation root")?;
        let fuyang = make_region(
            &federation,
            "341200",
            "阜阳市",
            &[
                current(
                    "FY-AMR-01",
                    "阜阳市市场监督管理局行政审批专用章",
                    FUYANG_AMR,
                    "11341200MB0000001",
                ),
                SealSpec {
                    id: "FY-AMR-OLD",
                    name: "阜阳市市场监督管理局行政审批专用章（旧）",
                    agency_name: FUYANG_AMR,
                    agency17: "11341200MB0000001",
                    valid_from: T0 - 3 * YEAR,
                    valid_until: T0 - YEAR,
                    share_types: &[],
                },
                current(
                    "FY-AMR-02",
                    "阜阳市市场监督管理局证照专用章",
                    FUYANG_AMR,
                    "11341200MB0000001",
                ),
                current(
                    "FY-DATA-01",
                    "阜阳市数据资源管理局行政审批专用章",
                    FUYANG_DATA,
                    "11341200MB0000002",
                ),
            ],
        )?;
        let jinan = make_region(
            &federation,
            "370100",
            "济南市",
            &[SealSpec {
                // Jinan's approval bureau may ask other regions for business licences' fields.
                share_types: &[BUSINESS_LICENCE],
                ..current(
                    "JN-SP-01",
                    "济南市行政审批服务局行政审批专用章",
                    JINAN_APPROVAL,
                    "11370100MB0000003",
                )
            }],
        )?;
        let revoked_from = time(T0 + 100 * DAY)?;
        let revocation = SealRevocation {
            region: fuyang.certificate.region.clone(),
            seal: fuyang.seals[2].info.key.kid(),
            revoked_from,
            reason: text("key compromise")?,
        }
        .sign(&fuyang.root)?;
        Ok(TestFederation {
            federation,
            fuyang,
            jinan,
            revocation,
            revoked_from,
        })
    }

    pub fn federation_root(&self) -> Result<FederationRoot, BuildError> {
        Ok(FederationRoot {
            name: text("Tongban test federation")?,
            key: self.federation.public().clone(),
        })
    }

    /// The bundle's contents: both regions, every seal, the one revocation.
    pub fn contents(&self) -> Result<BundleContents, BuildError> {
        let seals = [&self.fuyang, &self.jinan]
            .iter()
            .flat_map(|r| r.seals.iter().map(|s| s.signed.clone()))
            .collect();
        Ok(BundleContents {
            version: 7,
            issued: time(T0 + 180 * DAY)?,
            expires: time(T0 + 2 * YEAR)?,
            federation: self.federation_root()?,
            regions: vec![self.fuyang.signed.clone(), self.jinan.signed.clone()],
            seals,
            revocations: vec![self.revocation.clone()],
        })
    }

    /// The standard trust bundle, published by Fuyang's region root.
    pub fn bundle(&self) -> Result<Vec<u8>, BuildError> {
        self.contents()?.sign(&self.fuyang.root)
    }

    /// The Fuyang seal `FY-AMR-01`, the one most vectors are stamped with.
    pub fn amr(&self) -> &TestSeal {
        &self.fuyang.seals[0]
    }

    /// A business licence draft for a company, issued by the seal's agency at T0 + 10 days.
    pub fn draft(&self, seal: &TestSeal, serial: &str) -> Result<Draft, BuildError> {
        let holder_uscc = make_uscc("91341200MA2N00001")?;
        Ok(Draft {
            id: identifier(BUSINESS_LICENCE, &seal.info.agency, serial)?,
            type_name: text("营业执照")?,
            issued: time(T0 + 10 * DAY)?,
            valid_from: time(T0 + 10 * DAY)?,
            valid_until: Some(time(T0 + 10 * DAY + 10 * YEAR)?),
            level: TrustLevel::A,
            promise_deadline: None,
            predecessor: None,
            status_index: status_index_of(serial),
            holder: Holder {
                name: text("阜阳市通办示范科技有限公司")?,
                id_type: HolderIdType::Uscc,
                id_number: holder_uscc.as_str().to_owned(),
            },
            licence: vec![
                (
                    field("licence.registered_capital")?,
                    crate::cert::FieldValue::Text("1000万元人民币".into()),
                ),
                (
                    field("licence.legal_representative")?,
                    crate::cert::FieldValue::Text("李明".into()),
                ),
                (
                    field("licence.business_scope")?,
                    crate::cert::FieldValue::Text("软件开发；信息技术咨询服务".into()),
                ),
            ],
            decoys: 0,
        })
    }

    /// The Fuyang status snapshot: one revoked and one suspended certificate, one fulfilled promise.
    pub fn fuyang_snapshot(
        &self,
        revoked: &Identifier,
        suspended: &Identifier,
        fulfilled: &Identifier,
    ) -> Result<Vec<u8>, BuildError> {
        let mut snapshot = StatusSnapshot {
            region: self.fuyang.certificate.region.clone(),
            version: 42,
            issued: time(NOW - DAY)?,
            entries: vec![
                StatusEntry {
                    id: revoked.clone(),
                    state: State::Revoked,
                    since: time(T0 + 150 * DAY)?,
                    note: None,
                },
                StatusEntry {
                    id: suspended.clone(),
                    state: State::Suspended,
                    since: time(T0 + 160 * DAY)?,
                    note: None,
                },
            ],
            fulfilled: vec![fulfilled.clone()],
        };
        snapshot.normalise();
        snapshot.sign(&self.fuyang.root)
    }

    /// Jinan's snapshot: nothing listed.
    pub fn jinan_snapshot(&self) -> Result<Vec<u8>, BuildError> {
        StatusSnapshot {
            region: self.jinan.certificate.region.clone(),
            version: 3,
            issued: time(NOW - DAY)?,
            entries: vec![],
            fulfilled: vec![],
        }
        .sign(&self.jinan.root)
    }
}

pub fn field(name: &str) -> Result<crate::cert::FieldName, BuildError> {
    crate::cert::FieldName::parse(name).ok_or_else(|| BuildError::Invalid(name.to_owned()))
}

/// Turns a draft into a successor of `predecessor`.
pub fn succeed(draft: &mut Draft, predecessor: &Identifier, how: Succession) {
    draft.predecessor = Some(crate::cert::Predecessor {
        id: predecessor.clone(),
        how,
    });
}

/// A fixture's status list index, from its serial's digits: fixtures of one region have distinct
/// serials, so they get distinct indexes, and the same serial always the same one.
pub fn status_index_of(serial: &str) -> u32 {
    serial
        .bytes()
        .filter(u8::is_ascii_digit)
        .fold(0u32, |n, d| {
            n.wrapping_mul(10).wrapping_add(u32::from(d - b'0'))
        })
        % 1_000_000
}

/// `bytes` with one byte changed (`how` 0), inserted (1) or removed (2) at `at` (taken modulo the
/// length), or cut short there (3 and beyond): the mutations property tests feed a reader that
/// must refuse, or read alike, whatever it is given.
pub fn mutate(mut bytes: Vec<u8>, at: usize, byte: u8, how: u8) -> Vec<u8> {
    let at = at % (bytes.len() + 1);
    match how {
        0 if at < bytes.len() => bytes[at] = byte,
        1 => bytes.insert(at, byte),
        2 if at < bytes.len() => {
            bytes.remove(at);
        }
        _ => bytes.truncate(at),
    }
    bytes
}
