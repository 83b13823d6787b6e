//! The offline QR text of a certificate, `TB1:` + Base45(ZLIB(certificate)) (specs/presentation.md
//! §1): what a holder's phone shows and a counter's scanner reads. Decoding gives the certificate's
//! bytes; verifying them is [`cert::verify`](crate::cert::verify)'s.

#[cfg(feature = "render")]
pub mod symbol;

use std::io::Write;

use flate2::Compression;
use flate2::write::ZlibEncoder;

use crate::cert::{StatusSource, Verification, verify};
use crate::codes::{Code, Failure};
use crate::envelope::Kind;
use crate::trust::TrustStore;
use crate::values::Time;
use crate::zlib::{InflateError, inflate_whole};

/// The prefix: format version 1.
pub const PREFIX: &str = "TB1:";
/// The longest text: QR version 40's alphanumeric capacity at error correction level L.
pub const MAX_TEXT: usize = 4296;

/// RFC 9285's alphabet: the value of a character is its position.
const ALPHABET: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/// Why a certificate cannot be shown as one QR text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error(
        "the QR text would be {0} characters; at most {MAX_TEXT} fit one code: disclose fewer fields"
    )]
    TooLong(usize),
}

/// The QR text of `certificate` (its bytes as they are).
pub fn encode(certificate: &[u8]) -> Result<String, EncodeError> {
    let text = encode_unbounded(certificate);
    if text.len() > MAX_TEXT {
        return Err(EncodeError::TooLong(text.len()));
    }
    Ok(text)
}

/// The text without the length limit (the vectors' oversized cases).
pub(crate) fn encode_unbounded(bytes: &[u8]) -> String {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
    // Writing to a Vec cannot fail.
    let compressed = encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .unwrap_or_default();
    let mut text = String::with_capacity(PREFIX.len() + compressed.len().div_ceil(2) * 3);
    text.push_str(PREFIX);
    base45_encode(&compressed, &mut text);
    text
}

/// The certificate's bytes from a QR text, by the rules of specs/presentation.md §1 in order.
pub fn decode(text: &str) -> Result<Vec<u8>, Failure> {
    let text = text.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
    if text.len() > MAX_TEXT {
        return Err(Failure::new(
            Code::QrTooLarge,
            format!("{} characters; at most {MAX_TEXT}", text.len()),
        ));
    }
    let Some(body) = text.strip_prefix(PREFIX) else {
        return Err(Failure::new(
            Code::QrPrefix,
            "the text does not start with TB1:",
        ));
    };
    let compressed = base45_decode(body.as_bytes())?;
    inflate(&compressed)
}

/// Verifies what a reader was handed: a certificate's bytes, or its QR text (recognised by its
/// prefix), decoded first by the rules of specs/presentation.md §1.
pub fn verify_either(
    input: &[u8],
    trust: &TrustStore,
    status: &impl StatusSource,
    now: Time,
) -> Verification {
    if !is_qr_text(input) {
        return verify(input, trust, status, now);
    }
    // A QR text is ASCII; anything else in it is not Base45.
    let decoded = std::str::from_utf8(input)
        .map_err(|_| Failure::new(Code::QrEncoding, "the text is not ASCII"))
        .and_then(decode);
    match decoded {
        Ok(certificate) => verify(&certificate, trust, status, now),
        Err(failure) => Verification::refused(now, failure),
    }
}

/// Whether `text` looks like a QR text (its prefix, after white space): for readers that accept
/// a certificate file or its QR text alike.
pub fn is_qr_text(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .is_some_and(|at| bytes[at..].starts_with(PREFIX.as_bytes()))
}

pub(crate) fn base45_encode(bytes: &[u8], out: &mut String) {
    let mut push = |value: usize| out.push(char::from(ALPHABET[value]));
    for pair in bytes.chunks(2) {
        match *pair {
            [a, b] => {
                let n = usize::from(a) * 256 + usize::from(b);
                push(n % 45);
                push(n / 45 % 45);
                push(n / 45 / 45);
            }
            [a] => {
                let n = usize::from(a);
                push(n % 45);
                push(n / 45);
            }
            _ => {}
        }
    }
}

pub(crate) fn base45_decode(text: &[u8]) -> Result<Vec<u8>, Failure> {
    let bad = |what: String| Failure::new(Code::QrEncoding, what);
    if text.len() % 3 == 1 {
        return Err(bad(format!(
            "{} characters after the prefix: a length of 1 modulo 3 is not Base45",
            text.len()
        )));
    }
    let mut values = Vec::with_capacity(text.len());
    for (at, &c) in text.iter().enumerate() {
        match ALPHABET.iter().position(|&a| a == c) {
            Some(v) => values.push(v as u32),
            None => {
                return Err(bad(format!(
                    "character {at} after the prefix is not Base45"
                )));
            }
        }
    }
    let mut out = Vec::with_capacity(text.len() / 3 * 2 + 1);
    for (group, chunk) in values.chunks(3).enumerate() {
        let n = chunk.iter().rev().fold(0u32, |n, &v| n * 45 + v);
        match chunk.len() {
            3 if n <= 0xffff => out.extend_from_slice(&[(n >> 8) as u8, n as u8]),
            2 if n <= 0xff => out.push(n as u8),
            _ => {
                return Err(bad(format!(
                    "group {group} is {n}, too large for its bytes"
                )));
            }
        }
    }
    Ok(out)
}

/// The certificate inside: one whole ZLIB stream, at most the certificate's size limit.
fn inflate(compressed: &[u8]) -> Result<Vec<u8>, Failure> {
    inflate_whole(compressed, Kind::Certificate.size_limit()).map_err(|e| match e {
        InflateError::TooLarge(limit) => Failure::new(
            Code::TooLarge,
            format!("the QR text inflates beyond {limit} bytes"),
        ),
        InflateError::Corrupt(_) | InflateError::Trailing => {
            Failure::new(Code::QrZlib, format!("not one whole ZLIB stream: {e}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> Option<Code> {
        decode(text).err().map(|f| f.code)
    }

    #[test]
    fn rfc_9285_examples() {
        for (bytes, text) in [
            (&b"AB"[..], "BB8"),
            (b"Hello!!", "%69 VD92EX0"),
            (b"base-45", "UJCLQE7W581"),
            (b"ietf!", "QED8WEX0"),
            (b"", ""),
        ] {
            let mut out = String::new();
            base45_encode(bytes, &mut out);
            assert_eq!(out, text);
            assert_eq!(base45_decode(text.as_bytes()).ok().as_deref(), Some(bytes));
        }
        // RFC 9285 §4.3: "GGW" is 65,535 + 1 and ":::" far more.
        assert!(base45_decode(b"GGW").is_err());
        assert!(base45_decode(b"FGW").is_ok());
        assert!(base45_decode(b":::").is_err());
        // A last pair: "U5" is 30 + 5·45 = 255, "U6" 300.
        assert_eq!(base45_decode(b"U5").ok(), Some(vec![255]));
        assert!(base45_decode(b"U6").is_err());
    }

    #[test]
    fn every_rule_in_order() {
        let text = encode(b"\xd2\x84certificate bytes").unwrap_or_default();
        assert!(text.starts_with("TB1:"));
        assert_eq!(
            decode(&text).ok().as_deref(),
            Some(&b"\xd2\x84certificate bytes"[..])
        );
        assert_eq!(
            decode(&format!(" \t{text}\r\n")).ok().as_deref(),
            Some(&b"\xd2\x84certificate bytes"[..])
        );
        assert_eq!(code(&"A".repeat(MAX_TEXT + 1)), Some(Code::QrTooLarge));
        assert_eq!(
            code(&text.replacen("TB1:", "tb1:", 1)),
            Some(Code::QrPrefix)
        );
        assert_eq!(code(&format!("{text}a")), Some(Code::QrEncoding));
        let mut one_over = text.clone();
        while (one_over.len() - PREFIX.len()) % 3 != 1 {
            one_over.push('0');
        }
        assert_eq!(code(&one_over), Some(Code::QrEncoding));
        let compressed = base45_decode(&text.as_bytes()[PREFIX.len()..]).unwrap_or_default();
        let with = |bytes: &[u8]| {
            let mut text = PREFIX.to_owned();
            base45_encode(bytes, &mut text);
            text
        };
        assert_eq!(
            code(&with(&[&compressed[..], b"\0"].concat())),
            Some(Code::QrZlib)
        );
        assert_eq!(
            code(&with(&compressed[..compressed.len() - 1])),
            Some(Code::QrZlib)
        );
        let mut wrong_sum = compressed.clone();
        if let Some(last) = wrong_sum.last_mut() {
            *last ^= 1;
        }
        assert_eq!(code(&with(&wrong_sum)), Some(Code::QrZlib));
        assert_eq!(code("TB1:"), Some(Code::QrZlib));
        let huge = encode_unbounded(&vec![0u8; Kind::Certificate.size_limit() as usize + 1]);
        assert_eq!(code(&huge), Some(Code::TooLarge));
        let largest = encode_unbounded(&vec![0u8; Kind::Certificate.size_limit() as usize]);
        assert_eq!(decode(&largest).map(|b| b.len()).ok(), Some(65_536));
        assert!(is_qr_text(b"\n TB1:0"));
        assert!(!is_qr_text(b"\xd2\x84"));
    }

    #[test]
    fn a_certificate_too_large_for_one_code_is_refused() {
        // Incompressible bytes: 3 characters per 2 bytes.
        let mut state = 0x9e37_79b9u32;
        let noise: Vec<u8> = (0..4000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state as u8
            })
            .collect();
        assert!(matches!(encode(&noise), Err(EncodeError::TooLong(n)) if n > MAX_TEXT));
    }
}
