//! The page's exports against the spec's vectors: every certificate case whose status data are
//! status lists (or none) gives the vector's code through the same calls the page makes, and so
//! does every offline QR text.

use serde_json::Value;

use super::*;

type R = Result<(), Box<dyn std::error::Error>>;

fn vectors(name: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let path = format!("{}/../specs/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    Ok(serde_json::from_slice(&std::fs::read(path)?)?)
}

fn put(bytes: &[u8]) {
    INPUT.with_borrow_mut(|input| *input = bytes.to_vec());
}

fn output() -> Value {
    OUTPUT.with_borrow(|out| serde_json::from_slice(out).unwrap_or(Value::Null))
}

fn unhex(value: &Value) -> Vec<u8> {
    hex::decode(value.as_str().unwrap_or_default()).unwrap_or_default()
}

/// Loads the vectors' trust bundle and the named status lists at `now`.
fn load(v: &Value, now: f64, lists: &[&str]) -> R {
    put(&unhex(&v["trust_bundle"]));
    if set_trust(now) != 1 {
        return Err(format!("the bundle: {}", output()).into());
    }
    for name in lists {
        let file = v["status_files"]
            .as_array()
            .and_then(|files| files.iter().find(|f| f["name"] == *name))
            .ok_or("a status file")?;
        put(&unhex(&file["bytes"]));
        if add_status_list() != 1 {
            return Err(format!("{name}: {}", output()).into());
        }
    }
    Ok(())
}

#[test]
fn every_certificate_vector_checked_with_status_lists_gives_its_code() -> R {
    let v = vectors("vectors.json")?;
    let mut checked = 0;
    for case in v["certificates"].as_array().ok_or("certificates")? {
        let names: Vec<&str> = case["status"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        // Snapshots are the command line's; the page holds lists. A list that does not load is
        // its own vector's point (STATUS_LIST_INVALID), tested by the loader.
        let now = case["now"].as_f64().ok_or("now")?;
        if !names.iter().all(|n| n.ends_with("-list")) || load(&v, now, &names).is_err() {
            continue;
        }
        put(&unhex(&case["certificate"]));
        let valid = verify(now);
        let answer = output();
        assert_eq!(answer["code"], case["expect"]["code"], "{}", case["name"]);
        assert_eq!(valid, 1, "an answer for {}", case["name"]);
        if case["expect"]["code"] == "OK" {
            assert_eq!(answer["verdict"], "valid");
            assert_eq!(answer["claims"]["id"], case["expect"]["id"]);
        }
        checked += 1;
    }
    // The vectors check status through snapshots mostly; these are the list and no-status cases.
    assert!(checked >= 5, "{checked} cases");
    Ok(())
}

#[test]
fn offline_qr_texts_verify_or_give_their_codes() -> R {
    let v = vectors("vectors.json")?;
    let qr = vectors("qr.json")?;
    let now = v["certificates"][0]["now"].as_f64().ok_or("now")?;
    load(&v, now, &["341200-list", "370100-list"])?;
    for case in qr["cases"].as_array().ok_or("cases")? {
        let text = case["text"].as_str().ok_or("text")?;
        put(format!("{text}\r\n").as_bytes());
        verify_text(now);
        let answer = output();
        let decoded = decode_qr();
        match case["code"].as_str() {
            Some(code) => {
                assert_eq!(answer["code"], code, "{}", case["name"]);
                assert_eq!((decoded, output()["code"].as_str()), (0, Some(code)));
            }
            None => {
                assert_eq!(answer["verdict"], "valid", "{}: {answer}", case["name"]);
                assert_eq!(decoded, 1);
                assert_eq!(output()["certificate"], case["certificate"]);
            }
        }
    }
    Ok(())
}

#[test]
fn a_pinned_federation_refuses_another_and_nothing_verifies_without_trust() -> R {
    let v = vectors("vectors.json")?;
    let now = v["certificates"][0]["now"].as_f64().ok_or("now")?;
    HELD.with_borrow_mut(|held| *held = Held::default());
    put(&unhex(&v["certificates"][0]["certificate"]));
    assert_eq!(verify(now), 0);
    assert_eq!(output()["code"], "TRUST_BUNDLE_INVALID");
    load(&v, now, &[])?;
    let federation = output()["federation"].as_str().ok_or("kid")?.to_owned();
    put(b"00112233445566778899aabbccddeeff");
    assert_eq!(pin_federation(), 1);
    put(&unhex(&v["trust_bundle"]));
    assert_eq!(set_trust(now), 0);
    assert_eq!(output()["code"], "TRUST_BUNDLE_UNTRUSTED");
    put(federation.as_bytes());
    assert_eq!(pin_federation(), 1);
    put(&unhex(&v["trust_bundle"]));
    assert_eq!(set_trust(now), 1);
    // A clock the page cannot trust, and an input over the limit.
    assert_eq!(set_trust(f64::NAN), 0);
    assert!(input(MAX_INPUT + 1).is_null());
    assert!(!input(10).is_null());
    Ok(())
}

#[test]
fn presentation_codes_are_read_as_people_type_them() {
    put(b"  tbp1:341200-7kq9m-2xdpt\n");
    // The prefix is case-sensitive: lower case is not it, so the text is no code.
    assert_eq!(presentation_code(), 0);
    assert_eq!(output()["code"], "PRESENTATION_MALFORMED");
    put(b"https://node.example/verify#TBP1:341200-7kq9m-2xdpt");
    assert_eq!(presentation_code(), 1);
    assert_eq!(output()["code"], "341200-7KQ9M-2XDPT");
    assert_eq!(output()["region"], "341200");
}
