//! Every generated vector gives its expected code; enough cases of each kind exist.

use tongban_core::Code;
use tongban_core::testkit::vectors::{generate, run_bundle, run_certificate};

#[test]
fn every_certificate_case_gives_its_code() -> Result<(), Box<dyn std::error::Error>> {
    let set = generate()?;
    let files: Vec<(&str, &[u8])> = set.status.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let mut failures = Vec::new();
    for case in &set.certificates {
        // A name without a file would fail to load and pass a case that expects a load failure.
        for name in &case.status {
            assert!(
                files.iter().any(|(n, _)| n == name),
                "{}: no status file {name}",
                case.name
            );
        }
        let (code, disclosed) =
            match run_certificate(&set.bundle, &files, &case.status, case.now, &case.bytes) {
                Ok(v) => (
                    v.code,
                    v.disclosed
                        .iter()
                        .map(|(n, v)| (n.as_str().to_owned(), v.clone()))
                        .collect(),
                ),
                Err(f) => (f.code, Vec::new()),
            };
        if code != case.code {
            failures.push(format!("{}: got {code}, expected {}", case.name, case.code));
        } else if case.code == Code::Ok && disclosed != case.disclosed {
            failures.push(format!(
                "{}: disclosed {disclosed:?}, expected {:?}",
                case.name, case.disclosed
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[test]
fn every_bundle_case_gives_its_code() -> Result<(), Box<dyn std::error::Error>> {
    let set = generate()?;
    for case in &set.bundles {
        assert_eq!(
            run_bundle(&case.bytes, case.now, case.pinned),
            case.code,
            "{}",
            case.name
        );
    }
    Ok(())
}

#[test]
fn enough_cases_of_each_kind() -> Result<(), Box<dyn std::error::Error>> {
    let set = generate()?;
    let valid = set
        .certificates
        .iter()
        .filter(|c| c.code == Code::Ok)
        .count();
    let invalid = set.certificates.len() - valid;
    assert!(valid >= 10, "{valid} valid cases");
    assert!(invalid >= 30, "{invalid} invalid cases");
    let names: std::collections::HashSet<_> = set
        .certificates
        .iter()
        .map(|c| c.name)
        .chain(set.bundles.iter().map(|c| c.name))
        .collect();
    assert_eq!(
        names.len(),
        set.certificates.len() + set.bundles.len(),
        "case names must be unique"
    );
    Ok(())
}

#[test]
fn generation_is_deterministic() -> Result<(), Box<dyn std::error::Error>> {
    let (a, b) = (generate()?, generate()?);
    assert_eq!(a.bundle, b.bundle);
    for (x, y) in a.certificates.iter().zip(&b.certificates) {
        assert_eq!(x.bytes, y.bytes, "{}", x.name);
    }
    Ok(())
}
