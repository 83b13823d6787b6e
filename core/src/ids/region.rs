//! Administrative division code (行政区划代码), GB/T 2260.

use std::fmt;
use std::str::FromStr;

use arrayvec::ArrayString;

use super::{IdError, inline};

/// First and last province-level prefixes (北京 11 … 澳门 82). Checking only
/// the range rather than a full table keeps us correct when the ministry adds
/// or renames divisions, which it does most years.
const PROVINCE_MIN: u8 = 11;
const PROVINCE_MAX: u8 = 82;

/// A six-digit division code whose province prefix is in range.
///
/// Province-level (`340000`), prefecture-level (`341200`) and county-level
/// codes are all accepted.
///
/// Held inline (compares, hashes and prints as its text).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct RegionCode(ArrayString<6>);

impl RegionCode {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let bytes = s.as_bytes();
        let province = match bytes {
            [a, b, _, _, _, _] if bytes.iter().all(u8::is_ascii_digit) => {
                (a - b'0') * 10 + (b - b'0')
            }
            _ => return Err(IdError::Region("expected exactly 6 digits")),
        };
        if !(PROVINCE_MIN..=PROVINCE_MAX).contains(&province) {
            return Err(IdError::Region("province prefix outside 11..=82"));
        }
        inline(s, IdError::Region("expected exactly 6 digits")).map(Self)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RegionCode {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for RegionCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn real_codes_parse() {
        for code in [
            "341200", "370100", "321300", "340700", "340000", "110000", "820000",
        ] {
            let parsed = RegionCode::parse(code).unwrap();
            assert_eq!(parsed.as_str(), code);
            assert_eq!(parsed.to_string(), code);
            assert_eq!(code.parse::<RegionCode>().unwrap(), parsed);
        }
    }

    #[test]
    fn province_prefix_bounds() {
        assert!(RegionCode::parse("110101").is_ok());
        assert!(RegionCode::parse("829999").is_ok());
        for bad in ["000000", "100000", "109999", "830000", "990000"] {
            assert_eq!(
                RegionCode::parse(bad),
                Err(IdError::Region("province prefix outside 11..=82")),
                "{bad}"
            );
        }
    }

    #[test]
    fn non_digits_and_bad_lengths_are_rejected() {
        for bad in [
            "", "34120", "3412000", "34120A", " 41200", "34-200", "３41200", "341２0",
        ] {
            assert!(RegionCode::parse(bad).is_err(), "{bad:?}");
        }
    }
}
