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
    fn short_text_rules() {
        assert!(ShortText::new("阜阳市市场监督管理局").is_some());
        assert!(ShortText::new("").is_none());
        assert!(ShortText::new("a\nb").is_none());
        assert!(ShortText::new("a\u{7f}").is_none());
        assert!(ShortText::new(&"x".repeat(256)).is_some());
        assert!(ShortText::new(&"x".repeat(257)).is_none());
    }
}
