//! The bulk verifier gives the single path's verdict and code for every input.

use tongban_core::bulk::{CompactStatus, Config, DigestCache, FastVerifier, Outcome, Scratch};
use tongban_core::cert::{self, Verdict};
use tongban_core::codes::Code;
use tongban_core::envelope::{Envelope, Kind, sig_structure};
use tongban_core::suite::Suite;
use tongban_core::testkit::NOW;
use tongban_core::testkit::bulk::{BulkSet, Mix, Sample, generate};
use tongban_core::testkit::raw::assemble;
use tongban_core::testkit::vectors;
use tongban_core::trust::{LoadedStatus, StatusSet, StatusSnapshot, TrustStore};
use tongban_core::values::Time;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn now(seconds: u64) -> Result<Time, String> {
    Time::new(seconds).ok_or_else(|| format!("time {seconds}"))
}

/// The trust store, the single path's status set and the bulk path's index for the status files
/// `files` (lists and snapshots).
fn load(
    bundle: &[u8],
    files: &[&[u8]],
) -> Result<(TrustStore, StatusSet, CompactStatus), Box<dyn std::error::Error>> {
    // Loaded whatever the time, so that the single path reports an expired bundle per
    // certificate (step 0) and the bulk path for the whole run.
    let trust = TrustStore::load_any_time(bundle, None)?;
    let mut table = StatusSet::default();
    let mut compact = CompactStatus::default();
    for bytes in files {
        let loaded = LoadedStatus::load(bytes, &trust)?;
        table.add(loaded.clone());
        match loaded {
            LoadedStatus::List(list) => compact.add_list(list),
            LoadedStatus::Snapshot(snapshot) => compact.add(snapshot),
        }
    }
    Ok((trust, table, compact))
}

/// The vectors' status files that load (some are made not to).
fn loadable(vectors: &vectors::VectorSet) -> Result<Vec<&[u8]>, Box<dyn std::error::Error>> {
    let trust = TrustStore::load_any_time(&vectors.bundle, None)?;
    Ok(vectors
        .status
        .iter()
        .map(|(_, b)| b.as_slice())
        .filter(|b| LoadedStatus::load(b, &trust).is_ok())
        .collect())
}

fn single(bytes: &[u8], trust: &TrustStore, table: &StatusSet, at: Time) -> Outcome {
    Outcome::of(cert::verify(bytes, trust, table, at))
}

/// Runs `certificates` through the threaded pipeline.
fn bulk(
    verifier: &FastVerifier,
    cache: Option<&DigestCache>,
    config: &Config,
    certificates: &[Vec<u8>],
) -> Result<(Vec<Outcome>, tongban_core::bulk::Summary), String> {
    let mut outcomes = Vec::new();
    let input = certificates
        .iter()
        .enumerate()
        .map(|(i, c)| Ok::<_, String>((i, c.clone())));
    let summary = tongban_core::bulk::pipeline::run(verifier, cache, config, input, |i, o| {
        if i != outcomes.len() {
            return Err(format!("outcome {i} out of order"));
        }
        outcomes.push(o);
        Ok(())
    })?;
    Ok((outcomes, summary))
}

fn set(count: u64, mix: &str, regions: usize) -> Result<BulkSet, Box<dyn std::error::Error>> {
    set_in(Suite::Ed25519, count, mix, regions)
}

fn set_in(
    suite: Suite,
    count: u64,
    mix: &str,
    regions: usize,
) -> Result<BulkSet, Box<dyn std::error::Error>> {
    Ok(generate(suite, count, &Mix::parse(mix)?, regions)?)
}

fn bytes_of(set: &BulkSet) -> Vec<Vec<u8>> {
    set.certificates.iter().map(|c| c.bytes.clone()).collect()
}

#[test]
fn every_conformance_vector_gets_the_single_paths_code() -> TestResult {
    let vectors = vectors::generate()?;
    let mut checked = 0;
    for case in &vectors.certificates {
        let files: Vec<&[u8]> = case
            .status
            .iter()
            .filter_map(|name| vectors.status.iter().find(|(n, _)| n == name))
            .map(|(_, b)| b.as_slice())
            .collect();
        let at = now(case.now)?;
        let (trust, table, compact) = match load(&vectors.bundle, &files) {
            Ok(loaded) => loaded,
            // A status file made not to load: the run stops before any certificate.
            Err(e) => {
                assert_eq!(case.code, Code::StatusListInvalid, "{}: {e}", case.name);
                checked += 1;
                continue;
            }
        };
        let expected = single(&case.bytes, &trust, &table, at);
        assert_eq!(expected.code, case.code, "{}: single path", case.name);
        match FastVerifier::new(&trust, compact, at) {
            Ok(verifier) => {
                let mut out = Vec::new();
                verifier.verify_batch(&[&case.bytes], None, &mut Scratch::default(), &mut out);
                assert_eq!(out, vec![expected], "{}", case.name);
            }
            // Step 0 is checked once per run: the whole run fails with the same code.
            Err(failure) => assert_eq!(failure.code, expected.code, "{}", case.name),
        }
        checked += 1;
    }
    assert_eq!(checked, vectors.certificates.len());
    assert!(checked > 60, "{checked}");
    Ok(())
}

/// The sm2 suite's vectors: no seal of it is batched; every signature is checked on its own
/// through the key's tables, and each case gets the single path's code, alone, and all of them in
/// one run.
#[test]
fn sm2_certificates_get_the_single_paths_code() -> TestResult {
    let vectors = vectors::generate()?;
    let suite = vectors
        .suites
        .iter()
        .find(|s| s.suite == tongban_core::suite::Suite::Sm2)
        .ok_or("no sm2 vectors")?;
    let files: Vec<&[u8]> = suite.status.iter().map(|(_, b)| b.as_slice()).collect();
    let (trust, table, compact) = load(&suite.bundle, &files)?;
    let mut all = Vec::new();
    let mut expected_all = Vec::new();
    for case in &suite.certificates {
        let at = now(case.now)?;
        let expected = single(&case.bytes, &trust, &table, at);
        assert_eq!(expected.code, case.code, "{}: single path", case.name);
        let verifier = FastVerifier::new(&trust, compact.clone(), at)?;
        assert!(verifier.seals().iter().all(|s| !s.batchable()));
        let mut out = Vec::new();
        verifier.verify_batch(&[&case.bytes], None, &mut Scratch::default(), &mut out);
        assert_eq!(out, vec![expected.clone()], "{}", case.name);
        all.push(case.bytes.clone());
        expected_all.push(expected);
    }
    let at = now(suite.certificates[0].now)?;
    assert!(
        suite
            .certificates
            .iter()
            .all(|c| c.now == suite.certificates[0].now)
    );
    let verifier = FastVerifier::new(&trust, compact, at)?;
    let (outcomes, _) = bulk(&verifier, None, &Config::new(2), &all)?;
    assert_eq!(outcomes, expected_all);
    assert!(expected_all.iter().any(|o| o.code == Code::Ok));
    assert!(
        expected_all
            .iter()
            .any(|o| o.code == Code::SignatureInvalid)
    );
    Ok(())
}

#[test]
fn all_vectors_in_one_batch_match_too() -> TestResult {
    // The vectors at the common reference time, batched together: the invalid ones must not
    // disturb the verdicts of their neighbours.
    let vectors = vectors::generate()?;
    let at = now(NOW)?;
    let (trust, table, compact) = load(&vectors.bundle, &loadable(&vectors)?)?;
    let verifier = FastVerifier::new(&trust, compact, at)?;
    let certificates: Vec<&[u8]> = vectors
        .certificates
        .iter()
        .map(|c| c.bytes.as_slice())
        .collect();
    let mut out = Vec::new();
    let mut scratch = Scratch::default();
    verifier.verify_batch(&certificates, None, &mut scratch, &mut out);
    for (bytes, outcome) in certificates.iter().zip(&out) {
        assert_eq!(outcome, &single(bytes, &trust, &table, at));
    }
    assert!(out.iter().any(|o| o.code == Code::SignatureInvalid));
    assert!(out.iter().any(|o| o.code == Code::Ok));
    Ok(())
}

#[test]
fn mixed_sets_match_the_single_path_on_any_thread_count() -> TestResult {
    mixed_set_matches_the_single_path(Suite::Ed25519, 3000)
}

/// SM2 signatures are decided together (one inversion shared by many), tampered ones among
/// them: each gets the single path's code, on any thread count and batch size.
#[test]
fn mixed_sm2_sets_match_the_single_path_on_any_thread_count() -> TestResult {
    mixed_set_matches_the_single_path(Suite::Sm2, 400)
}

fn mixed_set_matches_the_single_path(suite: Suite, count: u64) -> TestResult {
    let set = set_in(
        suite,
        count,
        "valid=70,revoked=6,expired=6,tampered=6,foreign=6,malformed=6",
        16,
    )?;
    let at = now(NOW)?;
    // Status from the regions' lists (the other tests here use snapshots).
    let lists: Vec<&[u8]> = set.lists.iter().map(Vec::as_slice).collect();
    let (trust, table, compact) = load(&set.bundle, &lists)?;
    let certificates = bytes_of(&set);
    let expected: Vec<Outcome> = certificates
        .iter()
        .map(|c| single(c, &trust, &table, at))
        .collect();
    // Every kind is there and gets the code it was made for.
    for generated in &set.certificates {
        let code = expected[generated.index as usize].code;
        let fits = match generated.sample {
            Sample::Valid => code == Code::Ok,
            Sample::Revoked => code == Code::StatusRevoked,
            Sample::Expired => code == Code::Expired,
            Sample::Tampered => code == Code::SignatureInvalid,
            Sample::Foreign => code == Code::KidUnknown,
            Sample::Malformed => code.as_str().starts_with("CBOR_"),
        };
        assert!(fits, "{} made {:?}", generated.sample, code);
    }
    let verifier = FastVerifier::new(&trust, compact, at)?;
    // Many workers on few cores, as on a large machine: each holds a batch at once, and they
    // finish out of order for the writer to put back.
    for (threads, batch_size) in [(1, 256), (2, 64), (3, 7), (2, 1), (16, 5), (64, 1)] {
        let config = Config {
            batch_size,
            ..Config::new(threads)
        };
        let (outcomes, summary) = bulk(&verifier, None, &config, &certificates)?;
        assert_eq!(
            outcomes, expected,
            "{threads} threads, batches of {batch_size}"
        );
        assert_eq!(summary.certificates, count);
    }
    Ok(())
}

#[test]
fn one_forged_signature_among_thousands_is_found() -> TestResult {
    let set = set(4000, "valid=1", 16)?;
    let at = now(NOW)?;
    let (trust, table, compact) = load(&set.bundle, &[])?;
    let mut certificates = bytes_of(&set);
    // A real signature by the right seal key, over other bytes: it passes every cheap screen
    // and enters a batch like any other.
    let federation = tongban_core::testkit::bulk::BulkFederation::new(Suite::Ed25519, 16)?;
    let victim = 2711;
    let envelope = Envelope::open(&certificates[victim], Kind::Certificate)?;
    let seal = federation
        .regions
        .iter()
        .flat_map(|r| r.seals.iter())
        .find(|s| s.info.key.kid() == envelope.kid)
        .ok_or("seal of the victim")?;
    let mut other = sig_structure(envelope.protected, envelope.payload);
    other.push(0);
    let forged_signature = seal.key.sign(&other);
    let mut unprotected = Vec::new();
    tongban_core::cbor::write_head(&mut unprotected, 5, 0);
    let forged = assemble(
        Some(18),
        envelope.protected,
        &unprotected,
        envelope.payload,
        &forged_signature,
    );
    assert_eq!(
        single(&forged, &trust, &table, at).code,
        Code::SignatureInvalid
    );
    certificates[victim] = forged;
    let verifier = FastVerifier::new(&trust, compact, at)?;
    let (outcomes, summary) = bulk(&verifier, None, &Config::new(2), &certificates)?;
    for (i, outcome) in outcomes.iter().enumerate() {
        let code = if i == victim {
            Code::SignatureInvalid
        } else {
            Code::Ok
        };
        assert_eq!(outcome.code, code, "certificate {i}");
    }
    let stats = summary.signatures;
    // One batch failed; halving it found the forgery with a handful of strict checks.
    assert!(stats.batch_failures >= 1, "{stats:?}");
    assert!(stats.strict < 8, "{stats:?}");
    assert_eq!(stats.batched + stats.strict, 4000, "{stats:?}");
    Ok(())
}

#[test]
fn batches_mix_seals_of_many_regions() -> TestResult {
    let set = set(1024, "valid=1", 16)?;
    let at = now(NOW)?;
    let (trust, _, compact) = load(&set.bundle, &[])?;
    let verifier = FastVerifier::new(&trust, compact, at)?;
    assert_eq!(verifier.seals().len(), 32);
    let certificates = bytes_of(&set);
    let slices: Vec<&[u8]> = certificates.iter().map(Vec::as_slice).collect();
    let kids: std::collections::HashSet<_> = slices
        .iter()
        .map(|c| Envelope::open(c, Kind::Certificate).map(|e| e.kid))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        kids.len(),
        32,
        "one batch holds certificates of all 32 seals"
    );
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    verifier.verify_batch(&slices, None, &mut scratch, &mut out);
    assert!(out.iter().all(|o| o.verdict == Verdict::Valid));
    assert_eq!(scratch.stats.batched, 1024);
    assert_eq!(scratch.stats.batch_calls, 1);
    assert_eq!(scratch.stats.strict, 0);
    Ok(())
}

#[test]
fn signatures_the_screen_refuses_go_one_by_one() -> TestResult {
    let set = set(64, "valid=1", 4)?;
    let at = now(NOW)?;
    let (trust, table, compact) = load(&set.bundle, &[])?;
    let mut certificates = bytes_of(&set);
    // S + L: the same scalar mod L, so a batch would accept it; strict verification must not.
    let envelope = Envelope::open(&certificates[5], Kind::Certificate)?;
    let mut signature = envelope.signature;
    let l = curve25519_dalek_order();
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(signature[32 + i]) + u16::from(l[i]) + carry;
        signature[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    let malleated = assemble(
        Some(18),
        envelope.protected,
        &[0xa0],
        envelope.payload,
        &signature,
    );
    assert_eq!(
        single(&malleated, &trust, &table, at).code,
        Code::SignatureInvalid
    );
    certificates[5] = malleated;
    let verifier = FastVerifier::new(&trust, compact, at)?;
    let slices: Vec<&[u8]> = certificates.iter().map(Vec::as_slice).collect();
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    verifier.verify_batch(&slices, None, &mut scratch, &mut out);
    for (i, outcome) in out.iter().enumerate() {
        assert_eq!(
            outcome,
            &single(&certificates[i], &trust, &table, at),
            "{i}"
        );
    }
    assert_eq!(scratch.stats.strict, 1);
    assert_eq!(scratch.stats.batch_failures, 0);
    Ok(())
}

/// The group order L, little-endian.
fn curve25519_dalek_order() -> [u8; 32] {
    let mut l = [0u8; 32];
    l[..16].copy_from_slice(&0x14de_f9de_a2f7_9cd6_5812_631a_5cf5_d3edu128.to_le_bytes());
    l[31] = 0x10;
    l
}

#[test]
fn a_weak_seal_key_never_enters_the_table() -> TestResult {
    let vectors = vectors::generate()?;
    let case = vectors
        .bundles
        .iter()
        .find(|b| b.name == "bundle-weak-seal-key")
        .ok_or("weak key case")?;
    let refused = TrustStore::load(&case.bytes, now(case.now)?, None).err();
    assert_eq!(refused.map(|f| f.code), Some(Code::WeakKey));
    // And every key in a table that did load is screened batchable.
    let set = set(1, "valid=1", 16)?;
    let trust = TrustStore::load(&set.bundle, now(NOW)?, None)?;
    let verifier = FastVerifier::new(&trust, CompactStatus::default(), now(NOW)?)?;
    assert!(
        verifier
            .seals()
            .iter()
            .all(|s| s.batch_key.is_some_and(|k| !k.is_weak()) && s.batchable())
    );
    Ok(())
}

#[test]
fn the_cache_never_changes_a_verdict() -> TestResult {
    let set = set(
        600,
        "valid=80,revoked=5,expired=5,tampered=5,malformed=5",
        8,
    )?;
    let at = now(NOW)?;
    let snapshots: Vec<&[u8]> = set.snapshots.iter().map(Vec::as_slice).collect();
    let (trust, table, compact) = load(&set.bundle, &snapshots)?;
    // Every certificate three times, interleaved, so repeats meet in and across batches.
    let mut certificates = bytes_of(&set);
    let once = certificates.clone();
    certificates.extend(once.iter().rev().cloned());
    certificates.extend(once.iter().cloned());
    let expected: Vec<Outcome> = certificates
        .iter()
        .map(|c| single(c, &trust, &table, at))
        .collect();
    let cache = DigestCache::new(10_000);
    let verifier = FastVerifier::new(&trust, compact, at)?;
    let config = Config {
        batch_size: 64,
        ..Config::new(2)
    };
    let (outcomes, summary) = bulk(&verifier, Some(&cache), &config, &certificates)?;
    assert_eq!(outcomes, expected);
    // At most 5 batches of 64 are in flight, so at least the third round (1,200 certificates
    // after the first) is answered from the cache; the second partly, depending on timing.
    assert!(summary.signatures.cached >= 600, "{:?}", summary.signatures);
    assert!(summary.signatures.batched + summary.signatures.strict <= 1200);
    // A new status snapshot revokes a certificate that was valid: the cache must not answer OK.
    let target = set
        .certificates
        .iter()
        .find(|c| c.sample == Sample::Valid)
        .ok_or("a valid certificate")?;
    let federation = tongban_core::testkit::bulk::BulkFederation::new(Suite::Ed25519, 8)?;
    let region = target.region.ok_or("home region")?;
    let mut revoked: Vec<_> = set
        .certificates
        .iter()
        .filter(|c| c.sample == Sample::Revoked)
        .filter_map(|c| c.region.map(|r| (r, c.id.clone())))
        .collect();
    revoked.push((region, target.id.clone()));
    let mut newer = federation.snapshots(&revoked)?;
    // Version 2 supersedes version 1.
    let mut snapshot = StatusSnapshot::load(&newer[region], &trust)?;
    snapshot.version = 2;
    newer[region] = snapshot.sign(&federation.regions[region].root)?;
    let new_snapshots: Vec<&[u8]> = snapshots
        .iter()
        .copied()
        .chain(std::iter::once(newer[region].as_slice()))
        .collect();
    let (trust, table, compact) = load(&set.bundle, &new_snapshots)?;
    let verifier = FastVerifier::new(&trust, compact, at)?;
    let (outcomes, _) = bulk(&verifier, Some(&cache), &Config::new(2), &certificates)?;
    let expected: Vec<Outcome> = certificates
        .iter()
        .map(|c| single(c, &trust, &table, at))
        .collect();
    assert_eq!(outcomes, expected);
    assert_eq!(
        outcomes[target.index as usize].code,
        Code::StatusRevoked,
        "the cache answered from before the snapshot"
    );
    // A later time (the bundle changes nothing, the clock does): valid certificates stay valid,
    // and none is answered from the old context.
    let later = now(NOW + 1)?;
    let (trust, table, compact) = load(&set.bundle, &new_snapshots)?;
    let verifier = FastVerifier::new(&trust, compact, later)?;
    let before = cache.counts().0;
    let (outcomes, _) = bulk(&verifier, Some(&cache), &Config::new(1), &once)?;
    assert_eq!(cache.counts().0, before, "no hits across contexts");
    for (bytes, outcome) in once.iter().zip(&outcomes) {
        assert_eq!(outcome, &single(bytes, &trust, &table, later));
    }
    Ok(())
}

#[test]
fn a_changed_trust_bundle_empties_the_cache() -> TestResult {
    let at = now(NOW)?;
    let big = set(64, "valid=1", 4)?;
    let (trust, _, compact) = load(&big.bundle, &[])?;
    let cache = DigestCache::new(1000);
    let verifier = FastVerifier::new(&trust, compact, at)?;
    let certificates = bytes_of(&big);
    let (outcomes, _) = bulk(&verifier, Some(&cache), &Config::new(1), &certificates)?;
    assert!(outcomes.iter().all(|o| o.code == Code::Ok));
    // A bundle of only the first two regions: certificates of the others become KID_UNKNOWN.
    let small = set(1, "valid=1", 2)?;
    let (trust, table, compact) = load(&small.bundle, &[])?;
    let verifier = FastVerifier::new(&trust, compact, at)?;
    let (outcomes, _) = bulk(&verifier, Some(&cache), &Config::new(1), &certificates)?;
    for (bytes, outcome) in certificates.iter().zip(&outcomes) {
        assert_eq!(outcome, &single(bytes, &trust, &table, at));
    }
    assert!(outcomes.iter().any(|o| o.code == Code::KidUnknown));
    Ok(())
}

#[test]
fn compact_status_answers_as_the_status_table() -> TestResult {
    use tongban_core::cert::StatusSource;
    let vectors = vectors::generate()?;
    let (_, table, compact) = load(&vectors.bundle, &loadable(&vectors)?)?;
    let mut asked = 0;
    for case in &vectors.certificates {
        let Ok(inspection) = cert::inspect(&case.bytes) else {
            continue;
        };
        let Ok(claims) = inspection.claims else {
            continue;
        };
        let now = tongban_core::values::Time::new(tongban_core::testkit::NOW).ok_or("time")?;
        assert_eq!(
            StatusSource::view(&table, &claims, now),
            compact.view(&claims, now)
        );
        assert_eq!(
            StatusSource::promise_fulfilled(&table, &claims, now),
            compact.promise_fulfilled(&claims, now)
        );
        asked += 1;
    }
    assert!(asked > 20);
    assert!(compact.listed() >= 2);
    Ok(())
}

#[test]
fn input_errors_stop_the_run_after_what_was_read() -> TestResult {
    let set = set(40, "valid=1", 2)?;
    let at = now(NOW)?;
    let (trust, _, compact) = load(&set.bundle, &[])?;
    let verifier = FastVerifier::new(&trust, compact, at)?;
    let input = set.certificates.iter().enumerate().map(|(i, c)| {
        if i == 30 {
            Err(format!("record {i} unreadable"))
        } else {
            Ok((i, c.bytes.clone()))
        }
    });
    let config = Config {
        batch_size: 8,
        ..Config::new(2)
    };
    let mut seen = Vec::new();
    let result = tongban_core::bulk::pipeline::run(&verifier, None, &config, input, |i, o| {
        seen.push((i, o.code));
        Ok(())
    });
    assert_eq!(result.err(), Some("record 30 unreadable".to_owned()));
    assert_eq!(seen.len(), 30);
    assert!(
        seen.iter()
            .enumerate()
            .all(|(n, (i, c))| n == *i && *c == Code::Ok)
    );
    Ok(())
}

/// A signature whose `R` carries a torsion point of order 2, made by the holder of the seal's key
/// (specs/bulk.md §4.4): `R = r·B + T`, `S = r + k·a` with `k = H(R ‖ A ‖ M)`. Strict verification
/// refuses it; the batch equation accepts it whenever its random coefficient is even.
fn torsion_signature(key: &tongban_core::keys::SecretKey, message: &[u8], nonce: u32) -> [u8; 64] {
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use curve25519_dalek::scalar::Scalar;
    use sha2::{Digest, Sha512};

    let expanded = Sha512::digest(key.seed());
    let mut a_bytes = [0u8; 32];
    a_bytes.copy_from_slice(&expanded[..32]);
    a_bytes[0] &= 248;
    a_bytes[31] &= 127;
    a_bytes[31] |= 64;
    let a = Scalar::from_bytes_mod_order(a_bytes);
    let r = Scalar::from_bytes_mod_order_wide(&Sha512::digest(nonce.to_be_bytes()).into());
    let big_r = (ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[4]).compress();
    let mut hasher = Sha512::new();
    hasher.update(big_r.as_bytes());
    hasher.update(key.public().as_bytes());
    hasher.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&hasher.finalize().into());
    let s = r + k * a;
    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(big_r.as_bytes());
    signature[32..].copy_from_slice(s.as_bytes());
    signature
}

#[test]
fn exact_mode_closes_the_torsion_gap_the_batch_leaves_open() -> TestResult {
    let set = set(64, "valid=1", 2)?;
    let federation = tongban_core::testkit::bulk::BulkFederation::new(Suite::Ed25519, 2)?;
    let at = now(NOW)?;
    let (trust, table, _) = load(&set.bundle, &[])?;
    let mut certificates = bytes_of(&set);
    let envelope = Envelope::open(&certificates[7], Kind::Certificate)?;
    let seal = federation
        .regions
        .iter()
        .flat_map(|r| r.seals.iter())
        .find(|s| s.key.public().kid() == envelope.kid)
        .ok_or("the certificate's seal")?;
    let message = sig_structure(envelope.protected, envelope.payload);
    let tail = certificates[7].len() - 64;
    let craft = |nonce: u32| {
        let mut crafted = certificates[7].clone();
        crafted[tail..].copy_from_slice(&torsion_signature(&seal.key, &message, nonce));
        crafted
    };
    // The batch coefficients follow from the batch's contents (and the verifier's coefficient
    // key), so whether the batch path accepts is fixed for a given batch; a signer who can predict
    // them finds, within a few nonces, a signature it accepts (each nonce: probability 1/2).
    let verifier = FastVerifier::new(&trust, CompactStatus::default(), at)?;
    let crafted = (0..64)
        .map(craft)
        .find(|crafted| {
            let mut batch = certificates.clone();
            batch[7] = crafted.clone();
            let slices: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            let mut out = Vec::new();
            verifier.verify_batch(&slices, None, &mut Scratch::default(), &mut out);
            out[7].code == Code::Ok
        })
        .ok_or("the batch path never accepted a crafted signature")?;
    // The crafted signature is not a forgery by anyone else: the equation holds up to T.
    assert_eq!(
        single(&crafted, &trust, &table, at).code,
        Code::SignatureInvalid
    );
    certificates[7] = crafted;
    let slices: Vec<&[u8]> = certificates.iter().map(Vec::as_slice).collect();
    let expected: Vec<Outcome> = certificates
        .iter()
        .map(|c| single(c, &trust, &table, at))
        .collect();

    // Exact mode gives the single path's answer (it draws no coefficients, so one run shows it).
    let verifier = FastVerifier::new(&trust, CompactStatus::default(), at)?.exact(true);
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    verifier.verify_batch(&slices, None, &mut scratch, &mut out);
    assert_eq!(out, expected);
    assert_eq!(scratch.stats.batch_calls, 0);
    assert_eq!(scratch.stats.strict, 64);
    Ok(())
}
