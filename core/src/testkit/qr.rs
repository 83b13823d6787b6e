//! The offline QR text's vectors (specs/vectors/qr.json, specs/presentation.md §1): texts made
//! from a vector certificate, each with the bytes it decodes to or the code it fails with.

use crate::cert::disclosure::FieldName;
use crate::cert::present;
use crate::codes::{Code, Failure};
use crate::envelope::Kind;
use crate::qr::{self, MAX_TEXT, PREFIX};

/// One text and what reading it gives.
pub struct QrCase {
    pub name: &'static str,
    pub description: &'static str,
    pub text: String,
    pub expect: Result<Vec<u8>, Code>,
}

/// The cases, from `certificate` (a valid certificate with several disclosures) and `fields` (two
/// field names to keep in the smaller presentation).
pub fn cases(certificate: &[u8], fields: [&str; 2]) -> Result<Vec<QrCase>, Failure> {
    let two = present(certificate, |name: &FieldName| {
        fields.contains(&name.as_str())
    })?;
    let text =
        |bytes: &[u8]| qr::encode(bytes).map_err(|e| Failure::new(Code::QrTooLarge, e.to_string()));
    let full = text(certificate)?;
    let compressed = qr::base45_decode(&full.as_bytes()[PREFIX.len()..])?;
    let with = |bytes: &[u8]| {
        let mut text = PREFIX.to_owned();
        qr::base45_encode(bytes, &mut text);
        text
    };
    let mut adler = compressed.clone();
    if let Some(last) = adler.last_mut() {
        *last ^= 0x01;
    }
    let mut one_over = full.clone();
    while (one_over.len() - PREFIX.len()) % 3 != 1 {
        one_over.push('0');
    }
    let limit = Kind::Certificate.size_limit() as usize;
    let case = |name, description, text: String, expect| QrCase {
        name,
        description,
        text,
        expect,
    };
    Ok(vec![
        case(
            "full",
            "the certificate with all its disclosures",
            full.clone(),
            Ok(certificate.to_vec()),
        ),
        case(
            "two-fields",
            "the same certificate presenting two fields",
            text(&two)?,
            Ok(two),
        ),
        case(
            "scanner-line",
            "white space around the text, as a keyboard-wedge scanner types it",
            format!(" {full}\r\n"),
            Ok(certificate.to_vec()),
        ),
        case(
            "too-long",
            "4,297 characters",
            format!("{PREFIX}{}", "0".repeat(MAX_TEXT + 1 - PREFIX.len())),
            Err(Code::QrTooLarge),
        ),
        case(
            "lower-case-prefix",
            "tb1: is not TB1:",
            full.replacen(PREFIX, "tb1:", 1),
            Err(Code::QrPrefix),
        ),
        case(
            "no-prefix",
            "Base45 without the prefix",
            full[PREFIX.len()..].to_owned(),
            Err(Code::QrPrefix),
        ),
        case(
            "not-base45",
            "a lower-case letter after the prefix",
            format!("{full}a"),
            Err(Code::QrEncoding),
        ),
        case(
            "base45-length",
            "a body of 1 modulo 3 characters",
            one_over,
            Err(Code::QrEncoding),
        ),
        case(
            "base45-group",
            "a group of three worth 65,536",
            format!("{PREFIX}GGW"),
            Err(Code::QrEncoding),
        ),
        case(
            "zlib-cut",
            "the ZLIB stream without its last byte",
            with(&compressed[..compressed.len() - 1]),
            Err(Code::QrZlib),
        ),
        case(
            "zlib-trailing",
            "a byte after the ZLIB stream",
            with(&[&compressed[..], &[0]].concat()),
            Err(Code::QrZlib),
        ),
        case(
            "zlib-checksum",
            "the Adler-32 off by one bit",
            with(&adler),
            Err(Code::QrZlib),
        ),
        case(
            "zlib-empty",
            "nothing after the prefix",
            PREFIX.to_owned(),
            Err(Code::QrZlib),
        ),
        case(
            "inflates-too-large",
            "65,537 zero bytes: one past the certificate's size limit",
            qr::encode_unbounded(&vec![0; limit + 1]),
            Err(Code::TooLarge),
        ),
    ])
}
