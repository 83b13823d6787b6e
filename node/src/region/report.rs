//! This region's figures for the current month (China Standard Time), live: core's ledger (the
//! code `tongban-verify audit report` counts with) over the month's entries of the durable log,
//! found by their time and read in order. Memory is one month's tally; time is proportional to
//! the month's entries, not the log's.

use tongban_core::log::entry::{Act, LogEntry};
use tongban_core::log::ledger::{Ledger, Month, Period, Tally};
use tongban_core::log::state::TIME_TOLERANCE;
use tongban_core::values::Time;

use super::Region;
use crate::log::LogError;
use crate::refusal::Refusal;

/// Entries read from the log at a time.
const CHUNK: u64 = 4096;

/// The figures last counted, kept so that a flood of requests counts the month once per log
/// size, not once per request.
pub(super) struct Counted {
    size: u64,
    month: Month,
    tally: Tally,
}

impl Region {
    /// The figures of the month `now` falls in, counted from this region's durable log; counted
    /// again only when the log has grown or the month turned (one count at a time).
    pub fn month_report(&self, now: Time) -> Result<(Month, Tally), Refusal> {
        let month = Month::of(now);
        let mut held = self.month_report.lock().map_err(|_| super::lock_failed())?;
        let size = self.log().size()?;
        if let Some(c) = held.as_ref().filter(|c| c.size == size && c.month == month) {
            return Ok((c.month, c.tally.clone()));
        }
        let tally = self.count_month(month, size)?;
        *held = Some(Counted {
            size,
            month,
            tally: tally.clone(),
        });
        Ok((month, tally))
    }

    /// Counts `month`'s entries among the log's first `size`.
    fn count_month(&self, month: Month, size: u64) -> Result<Tally, Refusal> {
        let start = month_start(month)?;
        let log = self.log();
        let from = start.seconds().saturating_sub(TIME_TOLERANCE);
        let first = first_at_or_after(size, from, |i| at_of(log, i))?;
        let trust = self.view()?.trust.clone();
        let mut ledger = Ledger::default();
        let mut index = first;
        while index < size {
            let end = (index + CHUNK).min(size);
            for bytes in log.entries(index..end)? {
                let (_, entry) = LogEntry::open(&bytes)
                    .map_err(|f| Refusal::internal(format!("entry {index}: {f}")))?;
                if Month::of(entry.at) == month {
                    let agency = match &entry.act {
                        Act::CertIssued { seal, .. } => {
                            trust.seal(seal).map(|s| s.info.agency.as_str().to_owned())
                        }
                        _ => None,
                    };
                    ledger.record_entry(index, &entry, agency.as_deref(), &self.code);
                }
                index += 1;
            }
        }
        Ok(ledger.period(Period::Month(month)))
    }
}

/// The first second of `month` in China Standard Time, as a time.
fn month_start(month: Month) -> Result<Time, Refusal> {
    // Days from 1970-01-01 to the first of the month (civil calendar), then back eight hours.
    let (y, m) = (i64::from(month.year), i64::from(month.month));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 - 8 * 3600;
    u64::try_from(seconds)
        .ok()
        .and_then(Time::new)
        .ok_or_else(|| Refusal::internal(format!("month {month} out of range")))
}

fn at_of(log: &crate::log::Log, index: u64) -> Result<u64, Refusal> {
    let bytes = log
        .entry(index)?
        .ok_or_else(|| Refusal::from(LogError::Corrupt(format!("entry {index} missing"))))?;
    let (_, entry) =
        LogEntry::open(&bytes).map_err(|f| Refusal::internal(format!("entry {index}: {f}")))?;
    Ok(entry.at.seconds())
}

/// The index from which every entry with `"at"` ≥ `from` + [`TIME_TOLERANCE`] lies: a binary
/// search that keeps "the entry before is earlier than `from`" and "the entry here is not", which
/// holds for any order of times; since no entry is more than the tolerance older than one
/// before it, no entry of the month comes before the index it returns.
fn first_at_or_after(
    size: u64,
    from: u64,
    mut at: impl FnMut(u64) -> Result<u64, Refusal>,
) -> Result<u64, Refusal> {
    let (mut lo, mut hi) = (0, size);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if at(mid)? >= from {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_starts_at_midnight_in_beijing() -> Result<(), Refusal> {
        // 2026-12-01T00:00+08:00 is 2026-11-30T16:00Z.
        let start = month_start(Month::new(2026, 12).ok_or_else(|| Refusal::internal("m"))?)?;
        assert_eq!(start.to_rfc3339(), "2026-11-30T16:00:00Z");
        assert_eq!(Month::of(start).to_string(), "2026-12");
        let before = Time::new(start.seconds() - 1).ok_or_else(|| Refusal::internal("t"))?;
        assert_eq!(Month::of(before).to_string(), "2026-11");
        let january = month_start(Month::new(2027, 1).ok_or_else(|| Refusal::internal("m"))?)?;
        assert_eq!(january.to_rfc3339(), "2026-12-31T16:00:00Z");
        Ok(())
    }

    #[test]
    fn the_search_never_skips_an_entry_of_the_month() -> Result<(), Refusal> {
        // Times a little out of order, as signers' clocks are (within the tolerance).
        let times = [100, 90, 400, 380, 700, 650, 1000, 990, 1290];
        for from in 0..1400 {
            let first = first_at_or_after(times.len() as u64, from, |i| Ok(times[i as usize]))?;
            let month_from = from + TIME_TOLERANCE;
            for (i, t) in times.iter().enumerate() {
                if *t >= month_from {
                    assert!(
                        i as u64 >= first,
                        "from {from}: entry {i} at {t} before {first}"
                    );
                }
            }
        }
        Ok(())
    }
}
