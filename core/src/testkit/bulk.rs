//! Large, realistic certificate sets for the bulk verifier (`tongban-verify gen`, the benches and
//! the tests): a federation of many regions, each with its own seals, and certificates of every
//! kind a province-wide sweep meets, mixed in given proportions. Everything derives from fixed
//! seeds and the certificate's index, so a set is the same on every machine and any part of it can
//! be made on its own (in parallel).

use std::fmt;

use crate::cert::{self, Draft, Holder, HolderIdType, TrustLevel};
use crate::envelope::BuildError;
use crate::ids::Identifier;
use crate::keys::SecretKey;
use crate::status::State;
use crate::suite::Suite;
use crate::testkit::{
    BUSINESS_LICENCE, DAY, NOW, SealSpec, SeededSalts, T0, TestRegion, YEAR, field, identifier,
    make_region, make_uscc, suite_key, text, time,
};
use crate::trust::{BundleContents, FederationRoot, StatusEntry, StatusSnapshot};

/// Prefecture-level divisions (GB/T 2260) the bulk federation's regions are named after.
const REGIONS: [(&str, &str); 16] = [
    ("341200", "阜阳市"),
    ("370100", "济南市"),
    ("110100", "北京市市辖区"),
    ("120100", "天津市市辖区"),
    ("310100", "上海市市辖区"),
    ("320100", "南京市"),
    ("330100", "杭州市"),
    ("340100", "合肥市"),
    ("350100", "福州市"),
    ("410100", "郑州市"),
    ("420100", "武汉市"),
    ("430100", "长沙市"),
    ("440100", "广州市"),
    ("500100", "重庆市市辖区"),
    ("510100", "成都市"),
    ("610100", "西安市"),
];

/// The region whose certificates are "foreign": its seals are not in the bundle.
const FOREIGN: (&str, &str) = ("530100", "昆明市");

/// Seals per region: certificates of one region are stamped by all of them in turn.
const SEALS_PER_REGION: usize = 2;

/// What a generated certificate is meant to be, and the code the verifier must give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sample {
    /// Verifies: `OK`.
    Valid,
    /// Listed as revoked (state 03) in its region's snapshot: `STATUS_REVOKED`.
    Revoked,
    /// Its validity ended before the reference time: `EXPIRED`.
    Expired,
    /// A committed digest altered after signing: `SIGNATURE_INVALID`.
    Tampered,
    /// Stamped by a seal of a region the bundle does not hold: `KID_UNKNOWN`.
    Foreign,
    /// Cut short: a `CBOR_*` code (`CBOR_TRUNCATED` almost always).
    Malformed,
}

impl Sample {
    pub const ALL: [Sample; 6] = [
        Sample::Valid,
        Sample::Revoked,
        Sample::Expired,
        Sample::Tampered,
        Sample::Foreign,
        Sample::Malformed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Sample::Valid => "valid",
            Sample::Revoked => "revoked",
            Sample::Expired => "expired",
            Sample::Tampered => "tampered",
            Sample::Foreign => "foreign",
            Sample::Malformed => "malformed",
        }
    }

    pub fn parse(name: &str) -> Option<Sample> {
        Sample::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Relative weights of each kind of certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mix {
    weights: Vec<(Sample, u32)>,
    total: u64,
}

impl Mix {
    /// Parses `valid=90,revoked=3,expired=3,tampered=2,foreign=1,malformed=1`; kinds left out
    /// weigh nothing.
    pub fn parse(text: &str) -> Result<Mix, String> {
        let mut weights = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected kind=weight"))?;
            let sample = Sample::parse(name.trim()).ok_or_else(|| {
                format!(
                    "{name:?} is not one of valid, revoked, expired, tampered, foreign, malformed"
                )
            })?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: weight must be a whole number"))?;
            if weights.iter().any(|(s, _)| *s == sample) {
                return Err(format!("{name:?} given twice"));
            }
            weights.push((sample, weight));
        }
        Mix::new(weights)
    }

    pub fn new(weights: Vec<(Sample, u32)>) -> Result<Mix, String> {
        let total = weights.iter().map(|(_, w)| u64::from(*w)).sum();
        if total == 0 {
            return Err("the weights add up to nothing".into());
        }
        Ok(Mix { weights, total })
    }

    /// Only valid certificates.
    pub fn valid() -> Mix {
        Mix {
            weights: vec![(Sample::Valid, 1)],
            total: 1,
        }
    }

    /// The kind of certificate number `index`: a weighted choice by a hash of the index, so the
    /// kinds are spread through the set rather than in runs.
    pub fn pick(&self, index: u64) -> Sample {
        let hash = blake3::derive_key("tongban v1 bulk mix", &index.to_be_bytes());
        let mut draw = u64::from_le_bytes([
            hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7],
        ]) % self.total;
        for &(sample, weight) in &self.weights {
            if draw < u64::from(weight) {
                return sample;
            }
            draw -= u64::from(weight);
        }
        Sample::Valid
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .weights
            .iter()
            .map(|(s, w)| format!("{s}={w}"))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// One generated certificate.
#[derive(Clone, Debug)]
pub struct Generated {
    pub index: u64,
    pub sample: Sample,
    pub bytes: Vec<u8>,
    /// Its region's position in [`BulkFederation::regions`] (`None` for foreign ones).
    pub region: Option<usize>,
    pub id: Identifier,
    /// Its index in its region's status list.
    pub status_index: u32,
}

/// Many regions with two seals each, all in one bundle, plus one region left out of it.
pub struct BulkFederation {
    pub federation: SecretKey,
    pub regions: Vec<TestRegion>,
    pub foreign: TestRegion,
}

fn seal_names(code: &str, name: &str) -> Vec<(String, String, String, String)> {
    (1..=SEALS_PER_REGION)
        .map(|n| {
            (
                format!("BULK-{code}-{n:02}"),
                format!("{name}行政审批服务局行政审批专用章{n}"),
                format!("{name}行政审批服务局"),
                format!("11{code}MB{:07}", n),
            )
        })
        .collect()
}

fn region(federation: &SecretKey, code: &str, name: &str) -> Result<TestRegion, BuildError> {
    let names = seal_names(code, name);
    let specs: Vec<SealSpec<'_>> = names
        .iter()
        .map(|(id, seal_name, agency_name, agency17)| SealSpec {
            id,
            name: seal_name,
            agency_name,
            agency17,
            valid_from: T0 - 30 * DAY,
            valid_until: T0 + 5 * YEAR,
            share_types: &[],
        })
        .collect();
    make_region(federation, code, name, &specs)
}

impl BulkFederation {
    /// The first `regions` regions (1 to 16) of the list, every key of `suite`.
    pub fn new(suite: Suite, regions: usize) -> Result<BulkFederation, BuildError> {
        if !(1..=REGIONS.len()).contains(&regions) {
            return Err(BuildError::Invalid(format!(
                "regions must be 1 to {}",
                REGIONS.len()
            )));
        }
        let federation = suite_key(suite, "federation root")?;
        let made = REGIONS[..regions]
            .iter()
            .map(|(code, name)| region(&federation, code, name))
            .collect::<Result<Vec<_>, _>>()?;
        // The foreign region is certified by a federation of its own.
        let elsewhere = suite_key(suite, "bulk foreign federation root")?;
        let foreign = region(&elsewhere, FOREIGN.0, FOREIGN.1)?;
        Ok(BulkFederation {
            federation,
            regions: made,
            foreign,
        })
    }

    /// The trust bundle: every region and seal, published by the federation root, valid from
    /// T0 + 180 days for two years (so [`NOW`] is inside it).
    pub fn bundle(&self) -> Result<Vec<u8>, BuildError> {
        BundleContents {
            version: 1,
            issued: time(T0 + 180 * DAY)?,
            expires: time(T0 + 2 * YEAR)?,
            federation: FederationRoot {
                name: text("Tongban test federation")?,
                key: self.federation.public().clone(),
            },
            regions: self.regions.iter().map(|r| r.signed.clone()).collect(),
            seals: self
                .regions
                .iter()
                .flat_map(|r| r.seals.iter().map(|s| s.signed.clone()))
                .collect(),
            revocations: vec![],
        }
        .sign(&self.federation)
    }

    /// Certificate number `index`, of kind `sample`.
    pub fn certificate(&self, index: u64, sample: Sample) -> Result<Generated, BuildError> {
        let region_at = (index % self.regions.len() as u64) as usize;
        let (region, home) = match sample {
            Sample::Foreign => (&self.foreign, None),
            _ => (&self.regions[region_at], Some(region_at)),
        };
        let seal =
            &region.seals[((index / self.regions.len() as u64) % SEALS_PER_REGION as u64) as usize];
        let serial = format!("B{index:012}");
        let id = identifier(BUSINESS_LICENCE, &seal.info.agency, &serial)?;
        let (issued, valid_until) = match sample {
            Sample::Expired => (T0 - 10 * DAY, T0 + 100 * DAY),
            _ => (
                T0 + (index % 150) * DAY,
                T0 + (index % 150) * DAY + 10 * YEAR,
            ),
        };
        let holder = make_uscc(&format!(
            "91{}MA{:07}",
            region.certificate.region.as_str(),
            index % 10_000_000
        ))?;
        let draft = Draft {
            id: id.clone(),
            type_name: text("营业执照")?,
            issued: time(issued)?,
            valid_from: time(issued)?,
            valid_until: Some(time(valid_until)?),
            level: TrustLevel::A,
            promise_deadline: None,
            predecessor: None,
            status_index: self.status_index(index),
            holder: Holder {
                name: text(&format!(
                    "{}通办示范{}号科技有限公司",
                    region.certificate.name, index
                ))?,
                id_type: HolderIdType::Uscc,
                id_number: holder.as_str().to_owned(),
            },
            licence: vec![
                (
                    field("licence.registered_capital")?,
                    cert::FieldValue::Text(format!("{}万元人民币", 10 + index % 990)),
                ),
                (
                    field("licence.legal_representative")?,
                    cert::FieldValue::Text("李明".into()),
                ),
                (
                    field("licence.business_scope")?,
                    cert::FieldValue::Text("软件开发；信息技术咨询服务".into()),
                ),
            ],
            decoys: 2,
        };
        let issued = cert::issue(
            &draft,
            &seal.info,
            &seal.key,
            &mut SeededSalts::new(&format!("bulk {index}")),
        )?;
        let mut bytes = issued.bytes;
        match sample {
            Sample::Tampered => {
                // Flip one bit of a committed digest: still well-formed CBOR, no longer what the
                // seal signed.
                let digest = issued
                    .claims
                    .digests
                    .first()
                    .ok_or_else(|| BuildError::Invalid("no digest".into()))?;
                let at = bytes
                    .windows(32)
                    .position(|w| w == digest)
                    .ok_or_else(|| BuildError::Invalid("digest not found".into()))?;
                bytes[at] ^= 0x01;
            }
            Sample::Malformed => {
                let keep = (index as usize * 7919) % bytes.len().max(1);
                bytes.truncate(keep);
            }
            _ => {}
        }
        Ok(Generated {
            index,
            sample,
            bytes,
            region: home,
            id,
            status_index: self.status_index(index),
        })
    }

    /// The status list index of certificate `index`: its rank among its region's.
    pub fn status_index(&self, index: u64) -> u32 {
        u32::try_from(index / self.regions.len() as u64).unwrap_or(u32::MAX)
    }

    /// One status list per region covering `count` certificates, `revoked` (region position,
    /// status index) at 0x01 and every other index valid.
    pub fn status_lists(
        &self,
        revoked: &[(usize, u32)],
        count: u64,
    ) -> Result<Vec<Vec<u8>>, BuildError> {
        let length = count.div_ceil(self.regions.len() as u64);
        self.regions
            .iter()
            .enumerate()
            .map(|(at, region)| {
                let mut flagged: Vec<u32> = revoked
                    .iter()
                    .filter(|(r, _)| *r == at)
                    .map(|(_, i)| *i)
                    .collect();
                flagged.sort_unstable();
                let mut writer = crate::trust::status_list::ListWriter::default();
                for i in 0..length {
                    let revoked = u32::try_from(i).is_ok_and(|i| flagged.binary_search(&i).is_ok());
                    writer.push(match revoked {
                        true => crate::status::ListStatus::State(State::Revoked),
                        false => crate::status::ListStatus::Valid,
                    })?;
                }
                let (_, list) = writer.finish()?;
                crate::trust::StatusListToken {
                    region: region.certificate.region.clone(),
                    version: 1,
                    issued: time(NOW - DAY)?,
                    expires: time(NOW + 30 * DAY)?,
                    ttl: 300,
                    list,
                }
                .sign(&region.root)
            })
            .collect()
    }

    /// One snapshot per region, listing `revoked` (region position, identifier) as state 03.
    pub fn snapshots(&self, revoked: &[(usize, Identifier)]) -> Result<Vec<Vec<u8>>, BuildError> {
        self.regions
            .iter()
            .enumerate()
            .map(|(at, region)| {
                let mut snapshot = StatusSnapshot {
                    region: region.certificate.region.clone(),
                    version: 1,
                    issued: time(NOW - DAY)?,
                    entries: revoked
                        .iter()
                        .filter(|(r, _)| *r == at)
                        .map(|(_, id)| {
                            Ok(StatusEntry {
                                id: id.clone(),
                                state: State::Revoked,
                                since: time(T0 + 150 * DAY)?,
                                note: None,
                            })
                        })
                        .collect::<Result<_, BuildError>>()?,
                    fulfilled: vec![],
                };
                snapshot.normalise();
                snapshot.sign(&region.root)
            })
            .collect()
    }
}

/// A whole set made in memory: for tests and benches (the CLI's `gen` streams to a file instead).
pub struct BulkSet {
    pub bundle: Vec<u8>,
    pub snapshots: Vec<Vec<u8>>,
    /// The same status as status lists, one per region.
    pub lists: Vec<Vec<u8>>,
    pub certificates: Vec<Generated>,
}

/// `count` certificates of `mix` from a federation of `regions` regions of `suite`.
pub fn generate(
    suite: Suite,
    count: u64,
    mix: &Mix,
    regions: usize,
) -> Result<BulkSet, BuildError> {
    let federation = BulkFederation::new(suite, regions)?;
    let certificates = (0..count)
        .map(|i| federation.certificate(i, mix.pick(i)))
        .collect::<Result<Vec<_>, _>>()?;
    let revoked: Vec<(usize, Identifier)> = certificates
        .iter()
        .filter(|c| c.sample == Sample::Revoked)
        .filter_map(|c| c.region.map(|r| (r, c.id.clone())))
        .collect();
    let revoked_indexes: Vec<(usize, u32)> = certificates
        .iter()
        .filter(|c| c.sample == Sample::Revoked)
        .filter_map(|c| c.region.map(|r| (r, c.status_index)))
        .collect();
    Ok(BulkSet {
        bundle: federation.bundle()?,
        snapshots: federation.snapshots(&revoked)?,
        lists: federation.status_lists(&revoked_indexes, count)?,
        certificates,
    })
}
