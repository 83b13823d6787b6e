//! Unified Social Credit Code (统一社会信用代码), GB 32100-2015.

use std::fmt;
use std::str::FromStr;

use arrayvec::ArrayString;

use super::{IdError, inline};

/// The GB 32100 alphabet; a character's value is its index here. I, O, Z, S
/// and V are left out because they are easily confused with digits.
pub(crate) const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Weights are 3^i mod 31 for positions 1..=17.
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

const LEN: usize = 18;

fn value(b: u8) -> Option<u32> {
    ALPHABET
        .iter()
        .position(|&a| a == b)
        .and_then(|p| u32::try_from(p).ok())
}

fn char_error(b: u8) -> IdError {
    // Lowercase gets its own reason because it is the likeliest honest
    // mistake, and we deliberately refuse to fix it silently.
    if b.is_ascii_lowercase() {
        IdError::Uscc("lowercase letters are not allowed")
    } else {
        IdError::Uscc("character outside the GB 32100 alphabet")
    }
}

/// Computes the 18th (check) character for the first 17 characters of a
/// code. Meant for generators and test fixtures.
pub fn check_char(first17: &str) -> Result<char, IdError> {
    check_byte(first17.as_bytes()).map(char::from)
}

fn check_byte(first17: &[u8]) -> Result<u8, IdError> {
    if first17.len() != LEN - 1 {
        return Err(IdError::Uscc("expected 17 characters before the check"));
    }
    let mut sum = 0u32;
    for (&b, &w) in first17.iter().zip(WEIGHTS.iter()) {
        sum += value(b).ok_or_else(|| char_error(b))? * w;
    }
    // 31 − (sum mod 31) lies in 1..=31 and 31 stands for 0, hence the outer mod.
    let check = (31 - sum % 31) % 31;
    usize::try_from(check)
        .ok()
        .and_then(|i| ALPHABET.get(i).copied())
        .ok_or(IdError::Uscc("check value out of range"))
}

/// A checksum-valid 18-character Unified Social Credit Code.
///
/// Held inline (compares, hashes and prints as its text).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Uscc(ArrayString<LEN>);

impl Uscc {
    /// Parses an uppercase code and verifies its check character.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let bytes = s.as_bytes();
        if bytes.len() != LEN {
            return Err(IdError::Uscc("expected exactly 18 characters"));
        }
        let (body, last) = bytes.split_at(LEN - 1);
        let expected = check_byte(body)?;
        match last.first() {
            Some(&b) if b == expected => {
                inline(s, IdError::Uscc("expected exactly 18 characters")).map(Self)
            }
            Some(&b) if value(b).is_none() => Err(char_error(b)),
            _ => Err(IdError::Uscc("check character mismatch")),
        }
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for Uscc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Uscc {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Uscc {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const VALID: &[&str] = &[
        "91350100M000100Y43",
        "11100000000013338W",
        "11430000006122244L",
        "9144030071526726XG",
        "91330100716105852F",
        "914403001922038216",
    ];

    #[test]
    fn known_valid_codes_parse() {
        for code in VALID {
            let parsed = Uscc::parse(code).unwrap();
            assert_eq!(parsed.as_str(), *code);
            assert_eq!(parsed.to_string(), *code);
            assert_eq!(code.parse::<Uscc>().unwrap(), parsed);
        }
    }

    #[test]
    fn check_char_matches_known_codes() {
        for code in VALID {
            let want = code.chars().last().unwrap();
            assert_eq!(check_char(&code[..17]).unwrap(), want, "{code}");
        }
    }

    #[test]
    fn check_value_31_maps_to_zero() {
        // Sum 0 gives 31 − 0 = 31, which must be written as '0'.
        assert_eq!(check_char("00000000000000000").unwrap(), '0');
        assert!(Uscc::parse("000000000000000000").is_ok());
    }

    #[test]
    fn every_single_substitution_is_rejected() {
        for code in VALID {
            let original = code.as_bytes();
            for pos in 0..LEN {
                for b in (0u8..=127).filter(|&b| b != original[pos]) {
                    let mut mutated = original.to_vec();
                    mutated[pos] = b;
                    let s = String::from_utf8(mutated).unwrap();
                    assert!(
                        Uscc::parse(&s).is_err(),
                        "accepted {s:?} (from {code}, pos {pos})"
                    );
                }
            }
        }
    }

    #[test]
    fn bad_lengths_are_rejected() {
        let code = VALID[0];
        for len in 0..LEN {
            assert!(Uscc::parse(&code[..len]).is_err());
        }
        assert!(Uscc::parse(&format!("{code}0")).is_err());
        assert_eq!(
            check_char("9135010"),
            Err(IdError::Uscc("expected 17 characters before the check"))
        );
    }

    #[test]
    fn forbidden_letters_are_rejected() {
        for bad in ['I', 'O', 'Z', 'S', 'V'] {
            let first17 = format!("9135010{bad}M00010000");
            assert_eq!(
                check_char(&first17),
                Err(IdError::Uscc("character outside the GB 32100 alphabet"))
            );
        }
        // Forbidden letter in the check position itself.
        assert!(Uscc::parse("91350100M000100Y4O").is_err());
    }

    #[test]
    fn lowercase_is_rejected_not_normalised() {
        assert_eq!(
            Uscc::parse("91350100m000100Y43"),
            Err(IdError::Uscc("lowercase letters are not allowed"))
        );
        assert_eq!(
            Uscc::parse("9144030071526726Xg"),
            Err(IdError::Uscc("lowercase letters are not allowed"))
        );
    }

    #[test]
    fn non_ascii_is_rejected_without_panicking() {
        // 'é' is two bytes, so byte length is 18 while a naive char split
        // would land mid-character.
        assert!(Uscc::parse("91350100M000100Yé").is_err());
        assert!(Uscc::parse("9135010０M000100Y4").is_err());
        assert!(check_char("91350100M000100é").is_err());
    }
}
