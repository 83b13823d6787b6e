//! specs/vectors/vectors.json: the file model, writing it from the generator, and running it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tongban_core::Code;
use tongban_core::cert::FieldValue;
use tongban_core::conformance::{run_bundle, run_certificate, run_copy, run_proof};
use tongban_core::ids::{RegionCode, Uscc};
use tongban_core::keys::KeyId;
use tongban_core::sharing::Party;
#[cfg(test)]
use tongban_core::testkit::vectors::VectorSet;

pub const FORMAT: &str = "tongban test vectors v4";

#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub struct VectorFile {
    pub format: String,
    pub keys: Vec<KeyEntry>,
    pub trust_bundle: String,
    /// Signed status lists and snapshots, by name.
    pub status_files: Vec<StatusFileEntry>,
    pub certificates: Vec<CertificateCase>,
    pub trust_bundles: Vec<BundleCase>,
    #[serde(default)]
    pub copies: Vec<CopyCase>,
    #[serde(default)]
    pub proofs: Vec<ProofCase>,
    /// The other suites' vectors (specs/vectors/README.md), each with its own federation.
    #[serde(default)]
    pub suites: Vec<SuiteVectors>,
}

/// One other suite's keys, bundle, status files and certificate cases.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub struct SuiteVectors {
    pub suite: String,
    pub keys: Vec<KeyEntry>,
    pub trust_bundle: String,
    pub status_files: Vec<StatusFileEntry>,
    pub certificates: Vec<CertificateCase>,
    pub log: LogCases,
}

/// A suite's log vectors (specs/log.md §2–§3): the tree's roots over the RFC 6962 test leaves,
/// two proofs, and signed notes with what a verifier must find.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub struct LogCases {
    /// Hex of each leaf.
    pub leaves: Vec<String>,
    /// Hex of the root of the first n leaves, n = 0, 1, …
    pub roots: Vec<String>,
    pub inclusion: PathCase,
    pub consistency: PathCase,
    pub log_vkey: String,
    pub witness_vkey: String,
    pub notes: Vec<NoteCase>,
}

/// An inclusion proof (`from` the leaf index) or a consistency proof (`from` the old size), to
/// the tree of `to` leaves.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub struct PathCase {
    pub from: u64,
    pub to: u64,
    pub proof: Vec<String>,
}

/// A checkpoint note and what opening it with the log and witness keys finds: `ok`,
/// `log-signature` or `cosignature`.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub struct NoteCase {
    pub name: String,
    pub note: String,
    pub expect: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub struct Presenter {
    pub region: String,
    pub agency: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub struct CopyCase {
    pub name: String,
    pub description: String,
    pub now: u64,
    pub status: Vec<String>,
    pub presenter: Presenter,
    pub copy: String,
    pub expect: CopyExpectation,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub struct CopyExpectation {
    pub verdict: String,
    pub code: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub struct ProofCase {
    pub name: String,
    pub description: String,
    pub now: u64,
    pub requester: String,
    pub nonce: Option<String>,
    pub proof: String,
    pub expect: ProofExpectation,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub struct ProofExpectation {
    /// The code of verifying the proof.
    pub code: String,
    /// The code the proof reports for the certificate, when the proof is authentic.
    pub answer: Option<String>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub struct KeyEntry {
    pub name: String,
    pub role: String,
    pub seed: String,
    pub public: String,
    pub kid: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub struct StatusFileEntry {
    pub name: String,
    /// A status list or a status snapshot, told apart by its `typ`.
    pub bytes: String,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub struct CertificateCase {
    pub name: String,
    pub description: String,
    pub now: u64,
    pub status: Vec<String>,
    pub certificate: String,
    pub expect: Expectation,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub struct Expectation {
    pub verdict: String,
    pub code: String,
    /// The identifier reported once the claims decoded (verification.md §1), else null.
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disclosed: Vec<DisclosedField>,
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
pub struct DisclosedField {
    pub name: String,
    pub value: serde_json::Value,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub struct BundleCase {
    pub name: String,
    pub description: String,
    pub now: u64,
    pub pinned_federation_kid: Option<String>,
    pub bundle: String,
    pub expect: BundleExpectation,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
pub struct BundleExpectation {
    pub code: String,
}

pub fn field_json(value: &FieldValue) -> serde_json::Value {
    match value {
        FieldValue::Text(t) => serde_json::Value::String(t.clone()),
        FieldValue::Int(i) => serde_json::Value::from(*i),
        FieldValue::Bool(b) => serde_json::Value::Bool(*b),
    }
}

fn verdict_of(code: Code) -> &'static str {
    if code == Code::Ok { "valid" } else { "invalid" }
}

impl VectorFile {
    /// The file the generator's set becomes (only the tests write it).
    #[cfg(test)]
    pub fn from_set(set: &VectorSet) -> VectorFile {
        VectorFile {
            format: FORMAT.into(),
            keys: key_entries(&set.keys),
            trust_bundle: hex::encode(&set.bundle),
            status_files: status_entries(&set.status),
            certificates: certificate_entries(&set.certificates),
            trust_bundles: set
                .bundles
                .iter()
                .map(|b| BundleCase {
                    name: b.name.into(),
                    description: b.description.into(),
                    now: b.now,
                    pinned_federation_kid: b.pinned.map(KeyId::to_hex),
                    bundle: hex::encode(&b.bytes),
                    expect: BundleExpectation {
                        code: b.code.as_str().into(),
                    },
                })
                .collect(),
            copies: set
                .copies
                .iter()
                .map(|c| CopyCase {
                    name: c.name.into(),
                    description: c.description.into(),
                    now: c.now,
                    status: c.status.iter().map(|s| (*s).into()).collect(),
                    presenter: Presenter {
                        region: c.presenter.region.as_str().into(),
                        agency: c.presenter.agency.as_str().into(),
                    },
                    copy: hex::encode(&c.bytes),
                    expect: CopyExpectation {
                        verdict: verdict_of(c.code).into(),
                        code: c.code.as_str().into(),
                    },
                })
                .collect(),
            proofs: set
                .proofs
                .iter()
                .map(|p| ProofCase {
                    name: p.name.into(),
                    description: p.description.into(),
                    now: p.now,
                    requester: p.requester.as_str().into(),
                    nonce: p.nonce.map(hex::encode),
                    proof: hex::encode(&p.bytes),
                    expect: ProofExpectation {
                        code: p.code.as_str().into(),
                        answer: p.answer.map(|a| a.as_str().into()),
                    },
                })
                .collect(),
            suites: set
                .suites
                .iter()
                .map(|s| SuiteVectors {
                    suite: s.suite.name().into(),
                    keys: key_entries(&s.keys),
                    trust_bundle: hex::encode(&s.bundle),
                    status_files: status_entries(&s.status),
                    certificates: certificate_entries(&s.certificates),
                    log: log_entries(&s.log),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
fn log_entries(log: &tongban_core::testkit::vectors::LogVectors) -> LogCases {
    use tongban_core::testkit::vectors::{CONSISTENCY_FROM, INCLUSION_AT};
    let hexes = |hashes: &[[u8; 32]]| hashes.iter().map(hex::encode).collect();
    LogCases {
        leaves: log.leaves.iter().map(hex::encode).collect(),
        roots: hexes(&log.roots),
        inclusion: PathCase {
            from: INCLUSION_AT.0,
            to: INCLUSION_AT.1,
            proof: hexes(&log.inclusion),
        },
        consistency: PathCase {
            from: CONSISTENCY_FROM.0,
            to: CONSISTENCY_FROM.1,
            proof: hexes(&log.consistency),
        },
        log_vkey: log.log_vkey.clone(),
        witness_vkey: log.witness_vkey.clone(),
        notes: log
            .notes
            .iter()
            .map(|(name, note, expect)| NoteCase {
                name: (*name).into(),
                note: note.clone(),
                expect: (*expect).into(),
            })
            .collect(),
    }
}

#[cfg(test)]
fn key_entries(keys: &[tongban_core::testkit::vectors::NamedKey]) -> Vec<KeyEntry> {
    keys.iter()
        .map(|k| KeyEntry {
            name: k.name.clone(),
            role: k.role.into(),
            seed: hex::encode(k.seed),
            public: hex::encode(&k.public),
            kid: k.kid.to_hex(),
        })
        .collect()
}

#[cfg(test)]
fn status_entries(files: &[(&str, Vec<u8>)]) -> Vec<StatusFileEntry> {
    files
        .iter()
        .map(|(name, bytes)| StatusFileEntry {
            name: (*name).into(),
            bytes: hex::encode(bytes),
        })
        .collect()
}

#[cfg(test)]
fn certificate_entries(cases: &[tongban_core::testkit::vectors::CertCase]) -> Vec<CertificateCase> {
    cases
        .iter()
        .map(|c| CertificateCase {
            name: c.name.into(),
            description: c.description.into(),
            now: c.now,
            status: c.status.iter().map(|s| (*s).into()).collect(),
            certificate: hex::encode(&c.bytes),
            expect: Expectation {
                verdict: verdict_of(c.code).into(),
                code: c.code.as_str().into(),
                id: tongban_core::testkit::vectors::reported_id(&c.bytes, c.code),
                disclosed: c
                    .disclosed
                    .iter()
                    .map(|(name, value)| DisclosedField {
                        name: name.clone(),
                        value: field_json(value),
                    })
                    .collect(),
            },
        })
        .collect()
}

fn hashes(what: &str, hexes: &[String]) -> Result<Vec<[u8; 32]>> {
    hexes
        .iter()
        .map(|h| {
            <[u8; 32]>::try_from(unhex(what, h)?)
                .ok()
                .with_context(|| format!("{what}: a hash is not 32 bytes"))
        })
        .collect()
}

/// A suite's log cases: each root recomputed, both proofs, each note opened. Each is one case.
fn run_log(suite: &str, log: &LogCases, outcome: &mut Outcome) -> Result<()> {
    use tongban_core::log::checkpoint;
    use tongban_core::log::note::{NoteError, NoteVerifier};
    use tongban_core::log::proof::{MemoryTree, leaf_hash, verify_consistency, verify_inclusion};
    let suite = tongban_core::suite::Suite::parse(suite)
        .with_context(|| format!("unknown suite {suite:?}"))?;
    let mut check = |ok: bool, what: String| match ok {
        true => outcome.passed += 1,
        false => outcome.failures.push(format!("{suite} log: {what}")),
    };
    let leaves: Vec<Vec<u8>> = log
        .leaves
        .iter()
        .map(|l| unhex("log leaf", l))
        .collect::<Result<_>>()?;
    let roots = hashes("log roots", &log.roots)?;
    let mut tree = MemoryTree::new(suite);
    for (n, root) in roots.iter().enumerate() {
        check(
            tree.root(n as u64).ok() == Some(*root),
            format!("root of {n} leaves"),
        );
        if let Some(leaf) = leaves.get(n) {
            tree.append(leaf).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    let root_of = |n: u64| roots.get(n as usize).copied().unwrap_or_default();
    let path = &log.inclusion;
    let leaf = leaves
        .get(path.from as usize)
        .with_context(|| "the inclusion proof's leaf is not among the leaves")?;
    check(
        verify_inclusion(
            suite,
            leaf_hash(suite, leaf),
            path.from,
            path.to,
            root_of(path.to),
            &hashes("inclusion proof", &path.proof)?,
        ),
        "inclusion proof".into(),
    );
    let path = &log.consistency;
    check(
        verify_consistency(
            suite,
            path.from,
            root_of(path.from),
            path.to,
            root_of(path.to),
            &hashes("consistency proof", &path.proof)?,
        ),
        "consistency proof".into(),
    );
    let log_key = NoteVerifier::parse(&log.log_vkey).context("log_vkey")?;
    let witness = NoteVerifier::parse(&log.witness_vkey).context("witness_vkey")?;
    for case in &log.notes {
        let found = match checkpoint::open(
            case.note.as_bytes(),
            &log_key,
            std::slice::from_ref(&witness),
        ) {
            Ok(v) if v.cosigned_by.len() == 1 => "ok",
            Ok(_) => "not cosigned",
            Err(NoteError::BadSignature(name)) if name == witness.name => "cosignature",
            Err(NoteError::BadSignature(_)) => "log-signature",
            Err(_) => "malformed",
        };
        check(
            found == case.expect,
            format!("{}: found {found}, expected {}", case.name, case.expect),
        );
    }
    Ok(())
}

/// The cases a suite's log vectors count.
pub fn log_case_count(log: &LogCases) -> usize {
    log.roots.len() + 2 + log.notes.len()
}

/// The outcome of running a vector file.
pub struct Outcome {
    pub passed: usize,
    pub failures: Vec<String>,
}

fn unhex(what: &str, text: &str) -> Result<Vec<u8>> {
    hex::decode(text).with_context(|| format!("{what}: not hex"))
}

/// Runs every case of `file` through tongban-core.
pub fn run(file: &VectorFile) -> Result<Outcome> {
    if file.format != FORMAT {
        bail!("unknown vector format {:?}", file.format);
    }
    let bundle = unhex("trust_bundle", &file.trust_bundle)?;
    let status = status_files(&file.status_files)?;
    let status_refs: Vec<(&str, &[u8])> = status.iter().map(|(r, b)| (*r, b.as_slice())).collect();
    let copy_files = file
        .copies
        .iter()
        .flat_map(|c| c.status.iter().map(move |n| (&c.name, n)));
    check_named(&file.certificates, copy_files, &status_refs)?;
    let mut outcome = Outcome {
        passed: 0,
        failures: Vec::new(),
    };
    run_certificates(&bundle, &status_refs, &file.certificates, &mut outcome)?;
    for suite in &file.suites {
        let bundle = unhex("trust_bundle", &suite.trust_bundle)?;
        let status = status_files(&suite.status_files)?;
        let refs: Vec<(&str, &[u8])> = status.iter().map(|(r, b)| (*r, b.as_slice())).collect();
        check_named(&suite.certificates, std::iter::empty(), &refs)?;
        run_certificates(&bundle, &refs, &suite.certificates, &mut outcome)?;
        run_log(&suite.suite, &suite.log, &mut outcome)?;
    }
    for case in &file.trust_bundles {
        let bytes = unhex(&case.name, &case.bundle)?;
        let pinned = match &case.pinned_federation_kid {
            None => None,
            Some(kid) => Some(
                KeyId::from_slice(&unhex(&case.name, kid)?)
                    .with_context(|| format!("{}: kid is not 16 bytes", case.name))?,
            ),
        };
        let code = run_bundle(&bytes, case.now, pinned);
        if code.as_str() == case.expect.code {
            outcome.passed += 1;
        } else {
            outcome.failures.push(format!(
                "{}: got {code}, expected {}",
                case.name, case.expect.code
            ));
        }
    }
    for case in &file.copies {
        let bytes = unhex(&case.name, &case.copy)?;
        let names: Vec<&str> = case.status.iter().map(String::as_str).collect();
        let presenter = Party {
            region: RegionCode::parse(&case.presenter.region)
                .with_context(|| format!("{}: presenter region", case.name))?,
            agency: Uscc::parse(&case.presenter.agency)
                .with_context(|| format!("{}: presenter agency", case.name))?,
        };
        let code = run_copy(&bundle, &status_refs, &names, case.now, &presenter, &bytes);
        if code.as_str() == case.expect.code && verdict_of(code) == case.expect.verdict {
            outcome.passed += 1;
        } else {
            outcome.failures.push(format!(
                "{}: got {code}, expected {}",
                case.name, case.expect.code
            ));
        }
    }
    for case in &file.proofs {
        let bytes = unhex(&case.name, &case.proof)?;
        let requester = RegionCode::parse(&case.requester)
            .with_context(|| format!("{}: requester", case.name))?;
        let nonce = match &case.nonce {
            None => None,
            Some(nonce) => Some(
                <[u8; 16]>::try_from(unhex(&case.name, nonce)?)
                    .ok()
                    .with_context(|| format!("{}: nonce is not 16 bytes", case.name))?,
            ),
        };
        let (code, answer) = run_proof(&bundle, case.now, &requester, nonce, &bytes);
        let answer = answer.map(|a| a.as_str().to_owned());
        if code.as_str() == case.expect.code && answer == case.expect.answer {
            outcome.passed += 1;
        } else {
            outcome.failures.push(format!(
                "{}: got {code} (answer {answer:?}), expected {} (answer {:?})",
                case.name, case.expect.code, case.expect.answer
            ));
        }
    }
    Ok(outcome)
}

fn status_files(files: &[StatusFileEntry]) -> Result<Vec<(&str, Vec<u8>)>> {
    files
        .iter()
        .map(|s| Ok((s.name.as_str(), unhex(&s.name, &s.bytes)?)))
        .collect()
}

/// A case naming a file the set lacks is a broken vector file, not a loading failure.
fn check_named<'a>(
    certificates: &'a [CertificateCase],
    others: impl Iterator<Item = (&'a String, &'a String)>,
    files: &[(&str, &[u8])],
) -> Result<()> {
    let named = certificates
        .iter()
        .flat_map(|c| c.status.iter().map(move |n| (&c.name, n)))
        .chain(others);
    for (case, name) in named {
        if !files.iter().any(|(n, _)| n == name) {
            bail!("case {case} names status file {name:?}, which the vectors do not hold");
        }
    }
    Ok(())
}

/// Runs certificate cases against a bundle and status files, counting into `outcome`.
fn run_certificates(
    bundle: &[u8],
    status_refs: &[(&str, &[u8])],
    cases: &[CertificateCase],
    outcome: &mut Outcome,
) -> Result<()> {
    for case in cases {
        let bytes = unhex(&case.name, &case.certificate)?;
        let names: Vec<&str> = case.status.iter().map(String::as_str).collect();
        let (code, disclosed, id) =
            match run_certificate(bundle, status_refs, &names, case.now, &bytes) {
                Ok(v) => (
                    v.code,
                    v.disclosed
                        .iter()
                        .map(|(n, v)| DisclosedField {
                            name: n.as_str().into(),
                            value: field_json(v),
                        })
                        .collect(),
                    v.claims.map(|c| c.id.as_str().to_owned()),
                ),
                Err(f) => (f.code, Vec::new(), None),
            };
        if code.as_str() != case.expect.code || verdict_of(code) != case.expect.verdict {
            outcome.failures.push(format!(
                "{}: got {code}, expected {}",
                case.name, case.expect.code
            ));
        } else if id != case.expect.id {
            outcome.failures.push(format!(
                "{}: reported id {id:?}, expected {:?}",
                case.name, case.expect.id
            ));
        } else if code == Code::Ok && disclosed != case.expect.disclosed {
            outcome
                .failures
                .push(format!("{}: disclosed fields differ", case.name));
        } else {
            outcome.passed += 1;
        }
    }
    Ok(())
}

/// Writes the vectors as files: `bundle.tbt`, `status-<region>.tbs`, `certificates/<case>.tbc`,
/// `copies/<case>.tbcopy`, `proofs/<case>.tbproof`. Returns how many files were written.
pub fn export(file: &VectorFile, dir: &Path) -> Result<usize> {
    let certificates = dir.join("certificates");
    let (copies, proofs) = (dir.join("copies"), dir.join("proofs"));
    for folder in [&certificates, &copies, &proofs] {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
    }
    let mut written = 0;
    let mut write = |path: PathBuf, text: &str| -> Result<()> {
        std::fs::write(&path, unhex(&path.display().to_string(), text)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        written += 1;
        Ok(())
    };
    write(dir.join("bundle.tbt"), &file.trust_bundle)?;
    for status in &file.status_files {
        // Named as `fetch` names them: `.tbs` for a snapshot, `.tsl` for a list (or what is
        // meant to be one).
        let bytes = unhex(&status.name, &status.bytes)?;
        let snapshot = tongban_core::envelope::Envelope::open(
            &bytes,
            tongban_core::envelope::Kind::StatusSnapshot,
        )
        .is_ok();
        let extension = if snapshot { "tbs" } else { "tsl" };
        write(
            dir.join(format!("status-{}.{extension}", status.name)),
            &status.bytes,
        )?;
    }
    for case in &file.certificates {
        write(
            certificates.join(format!("{}.tbc", case.name)),
            &case.certificate,
        )?;
    }
    for case in &file.copies {
        write(copies.join(format!("{}.tbcopy", case.name)), &case.copy)?;
    }
    for case in &file.proofs {
        write(proofs.join(format!("{}.tbproof", case.name)), &case.proof)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/vectors/vectors.json");

    /// Generation reproduces the committed vectors byte for byte. Set TONGBAN_WRITE_VECTORS=1 to
    /// rewrite the file after an intended format change (and say so in the commit).
    #[test]
    fn committed_vectors_are_reproduced() -> Result<()> {
        let set = tongban_core::testkit::vectors::generate()?;
        reproduces(COMMITTED, &VectorFile::from_set(&set))
    }

    /// The committed file at `path` is `generated`, pretty-printed; TONGBAN_WRITE_VECTORS=1
    /// writes it first.
    fn reproduces(path: &str, generated: &impl serde::Serialize) -> Result<()> {
        let mut text = serde_json::to_string_pretty(generated)?;
        text.push('\n');
        if std::env::var_os("TONGBAN_WRITE_VECTORS").is_some() {
            std::fs::write(path, &text)?;
        }
        let committed = std::fs::read_to_string(path)
            .with_context(|| format!("{path} missing: run with TONGBAN_WRITE_VECTORS=1"))?;
        assert!(
            committed == text,
            "{path} differs from what the generator makes"
        );
        Ok(())
    }

    const COMMITTED_QR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/vectors/qr.json");

    /// specs/vectors/qr.json (specs/presentation.md §1) is reproduced from the vectors' full
    /// business licence, and every case reads as it says.
    #[test]
    fn committed_qr_vectors_are_reproduced_and_pass() -> Result<()> {
        let set = tongban_core::testkit::vectors::generate()?;
        let full = set
            .certificates
            .iter()
            .find(|c| c.name == "valid-full-disclosure")
            .context("no valid-full-disclosure vector")?;
        let cases =
            tongban_core::testkit::qr::cases(&full.bytes, ["holder.name", "holder.id_number"])
                .map_err(|f| anyhow::anyhow!("{f}"))?;
        let json = serde_json::json!({
            "spec": "specs/presentation.md §1",
            "cases": cases.iter().map(|c| {
                let mut case = serde_json::json!({
                    "name": c.name,
                    "description": c.description,
                    "text": c.text,
                });
                match &c.expect {
                    Ok(bytes) => case["certificate"] = hex::encode(bytes).into(),
                    Err(code) => case["code"] = code.as_str().into(),
                }
                case
            }).collect::<Vec<_>>(),
        });
        reproduces(COMMITTED_QR, &json)?;
        for case in &cases {
            let got = tongban_core::qr::decode(&case.text).map_err(|f| f.code);
            assert_eq!(got, case.expect, "{}", case.name);
        }
        Ok(())
    }

    #[test]
    fn committed_vectors_pass() -> Result<()> {
        let file: VectorFile = serde_json::from_str(&std::fs::read_to_string(COMMITTED)?)?;
        let outcome = run(&file)?;
        assert!(
            outcome.failures.is_empty(),
            "{}",
            outcome.failures.join("\n")
        );
        assert_eq!(
            outcome.passed,
            file.certificates.len()
                + file.trust_bundles.len()
                + file.copies.len()
                + file.proofs.len()
                + file
                    .suites
                    .iter()
                    .map(|s| s.certificates.len() + log_case_count(&s.log))
                    .sum::<usize>()
        );
        assert!(!file.copies.is_empty() && !file.proofs.is_empty());
        assert!(
            file.suites
                .iter()
                .any(|s| s.suite == "sm2" && !s.certificates.is_empty())
        );
        Ok(())
    }

    #[test]
    fn a_wrong_expectation_is_reported() -> Result<()> {
        let mut file: VectorFile = serde_json::from_str(&std::fs::read_to_string(COMMITTED)?)?;
        file.certificates[0].expect.code = "EXPIRED".into();
        let outcome = run(&file)?;
        assert_eq!(outcome.failures.len(), 1);
        Ok(())
    }
}
