//! Citizen identity number (公民身份号码), GB 11643-1999.

use std::fmt;
use std::str::FromStr;

use super::IdError;

/// 2^(17−i) mod 11 for positions 1..=17 (ISO 7064 MOD 11-2).
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

const LEN: usize = 18;

/// Birth years outside this window are almost certainly typos, and bounding
/// them keeps the leap-year arithmetic trivially correct.
const YEAR_MIN: u32 = 1900;
const YEAR_MAX: u32 = 2100;

/// An 18-character resident identity number with a valid birth date and
/// check character.
///
/// This is personal data: avoid logging it (including via `Debug`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ResidentId {
    id: String,
    birth: (u16, u8, u8),
}

fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Check character over 17 ASCII digits; 10 is written as uppercase 'X'.
fn check_byte(first17: &[u8]) -> Option<u8> {
    if first17.len() != LEN - 1 {
        return None;
    }
    let mut sum = 0u32;
    for (&b, &w) in first17.iter().zip(WEIGHTS.iter()) {
        if !b.is_ascii_digit() {
            return None;
        }
        sum += u32::from(b - b'0') * w;
    }
    match (12 - sum % 11) % 11 {
        10 => Some(b'X'),
        // Always < 10 here, so the narrowing cannot lose information.
        d => u8::try_from(d).ok().map(|d| b'0' + d),
    }
}

impl ResidentId {
    /// Parses an 18-character number. A lowercase 'x' check character is
    /// rejected rather than upper-cased, so the stored value is canonical.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let bytes = s.as_bytes();
        if bytes.len() != LEN {
            return Err(IdError::ResidentId("expected exactly 18 characters"));
        }
        let (body, last) = bytes.split_at(LEN - 1);
        if !body.iter().all(u8::is_ascii_digit) {
            return Err(IdError::ResidentId("first 17 characters must be digits"));
        }
        let (year, month, day) =
            birth_date(body).ok_or(IdError::ResidentId("birth date is not a real date"))?;
        if !(YEAR_MIN..=YEAR_MAX).contains(&year) {
            return Err(IdError::ResidentId("birth year outside 1900..=2100"));
        }
        if month == 0 || day == 0 || day > days_in_month(year, month) {
            return Err(IdError::ResidentId("birth date is not a real date"));
        }
        let birth = match (u16::try_from(year), u8::try_from(month), u8::try_from(day)) {
            (Ok(y), Ok(m), Ok(d)) => (y, m, d),
            _ => return Err(IdError::ResidentId("birth date is not a real date")),
        };
        let expected =
            check_byte(body).ok_or(IdError::ResidentId("first 17 characters must be digits"))?;
        match last.first() {
            Some(&b) if b == expected => Ok(Self {
                id: s.to_owned(),
                birth,
            }),
            Some(b'x') => Err(IdError::ResidentId("check character must be uppercase X")),
            _ => Err(IdError::ResidentId("check character mismatch")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The six-digit division code of the issuing county. Not validated as a
    /// `RegionCode`, because numbers issued under since-abolished divisions
    /// remain valid for life.
    pub fn region_digits(&self) -> &str {
        self.id.get(0..6).unwrap_or_default()
    }

    /// Birth date as (year, month, day), already validated.
    pub fn birth_date(&self) -> (u16, u8, u8) {
        self.birth
    }
}

fn birth_date(bytes: &[u8]) -> Option<(u32, u32, u32)> {
    let date = bytes.get(6..14)?;
    Some((
        digits(date.get(0..4)?)?,
        digits(date.get(4..6)?)?,
        digits(date.get(6..8)?)?,
    ))
}

impl fmt::Display for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl FromStr for ResidentId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for ResidentId {
    fn as_ref(&self) -> &str {
        &self.id
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const SAMPLE: &str = "11010519491231002X";

    /// Builds a checksum-valid number so date tests fail only on the date.
    fn with_check(first17: &str) -> String {
        let c = check_byte(first17.as_bytes()).unwrap();
        format!("{first17}{}", char::from(c))
    }

    #[test]
    fn standard_example_parses() {
        let id = ResidentId::parse(SAMPLE).unwrap();
        assert_eq!(id.as_str(), SAMPLE);
        assert_eq!(id.to_string(), SAMPLE);
        assert_eq!(SAMPLE.parse::<ResidentId>().unwrap(), id);
        assert_eq!(id.birth_date(), (1949, 12, 31));
        assert_eq!(id.region_digits(), "110105");
    }

    #[test]
    fn numeric_check_digit() {
        // Worked by hand: weighted sum 248, 248 mod 11 = 6, (12 − 6) mod 11 = 6.
        assert_eq!(with_check("44030419900307125"), "440304199003071256");
        assert!(ResidentId::parse("440304199003071256").is_ok());
        // Weighted sum 254, 254 mod 11 = 1, (12 − 1) mod 11 = 0.
        assert!(ResidentId::parse("440304199003071280").is_ok());
        // Weighted sum 244, 244 mod 11 = 2, (12 − 2) mod 11 = 10 → 'X'.
        assert!(ResidentId::parse("44030419900307123X").is_ok());
    }

    #[test]
    fn lowercase_x_is_rejected() {
        assert_eq!(
            ResidentId::parse("11010519491231002x"),
            Err(IdError::ResidentId("check character must be uppercase X"))
        );
    }

    #[test]
    fn every_single_substitution_is_rejected() {
        let original = SAMPLE.as_bytes();
        for pos in 0..LEN {
            for b in b"0123456789Xx"
                .iter()
                .copied()
                .filter(|&b| b != original[pos])
            {
                let mut mutated = original.to_vec();
                mutated[pos] = b;
                let s = String::from_utf8(mutated).unwrap();
                assert!(ResidentId::parse(&s).is_err(), "accepted {s}");
            }
        }
    }

    #[test]
    fn leap_days() {
        assert!(ResidentId::parse(&with_check("11010520000229001")).is_ok());
        assert!(ResidentId::parse(&with_check("11010520240229001")).is_ok());
        for not_leap in [
            "11010519000229001",
            "11010521000229001",
            "11010520230229001",
        ] {
            assert_eq!(
                ResidentId::parse(&with_check(not_leap)),
                Err(IdError::ResidentId("birth date is not a real date")),
                "{not_leap}"
            );
        }
    }

    #[test]
    fn impossible_dates_are_rejected() {
        for bad in [
            "11010519490001001", // month 0
            "11010519491301001", // month 13
            "11010519490100001", // day 0
            "11010519490132001", // day 32
            "11010519490431001", // April has 30 days
        ] {
            assert_eq!(
                ResidentId::parse(&with_check(bad)),
                Err(IdError::ResidentId("birth date is not a real date")),
                "{bad}"
            );
        }
    }

    #[test]
    fn year_bounds() {
        assert!(ResidentId::parse(&with_check("11010519000101001")).is_ok());
        assert!(ResidentId::parse(&with_check("11010521001231001")).is_ok());
        for bad in ["11010518991231001", "11010521010101001"] {
            assert_eq!(
                ResidentId::parse(&with_check(bad)),
                Err(IdError::ResidentId("birth year outside 1900..=2100"))
            );
        }
    }

    #[test]
    fn malformed_input_is_rejected() {
        for bad in [
            "",
            "11010519491231002",
            "11010519491231002XX",
            "1101051949123100AX",
            "X10105194912310021",
            "11010519491231002é",
            "１1010519491231002X",
        ] {
            assert!(ResidentId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
