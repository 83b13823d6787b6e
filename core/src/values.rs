//! Value rules shared by every payload (specs/encoding.md §5).

/// The latest time a payload may carry: 9999-12-31T23:59:59Z.
pub const MAX_TIME: u64 = 253_402_300_799;
/// Longest short text, in bytes.
pub const MAX_SHORT_TEXT: usize = 256;

/// Seconds since the Unix epoch, within the range the spec allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Time(u64);

impl Time {
    pub fn new(seconds: u64) -> Option<Time> {
        (seconds <= MAX_TIME).then_some(Time(seconds))
    }

    pub fn seconds(self) -> u64 {
        self.0
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC).
    pub fn to_rfc3339(self) -> String {
        let (days, secs) = (self.0 / 86_400, self.0 % 86_400);
        let (year, month, day) = civil_from_days(days);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Whether `text` is a short text: 1–256 bytes, no control characters.
pub fn is_short_text(text: &str) -> bool {
    !text.is_empty() && text.len() <= MAX_SHORT_TEXT && !text.chars().any(char::is_control)
}

/// A short text (1–256 bytes of UTF-8 without control characters).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShortText(String);

impl ShortText {
    pub fn new(text: &str) -> Option<ShortText> {
        is_short_text(text).then(|| ShortText(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ShortText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_range() {
        assert!(Time::new(MAX_TIME).is_some());
        assert!(Time::new(MAX_TIME + 1).is_none());
    }

    #[test]
    fn rfc3339() {
        let t = |s| Time::new(s).map(Time::to_rfc3339);
        assert_eq!(t(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(t(1_767_225_600).as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(t(951_825_599).as_deref(), Some("2000-02-29T11:59:59Z"));
        assert_eq!(t(MAX_TIME).as_deref(), Some("9999-12-31T23:59:59Z"));
    }

    #[test]
    fn short_text_rules() {
        assert!(ShortText::new("阜阳市市场监督管理局").is_some());
        assert!(ShortText::new("").is_none());
        assert!(ShortText::new("a\nb").is_none());
        assert!(ShortText::new("a\u{7f}").is_none());
        assert!(ShortText::new(&"x".repeat(256)).is_some());
        assert!(ShortText::new(&"x".repeat(257)).is_none());
    }
}
