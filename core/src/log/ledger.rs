//! Monthly tallies of a region's acts, for the reports operators and auditors read (月报、季报、
//! 年报; specs/log.md §7.2): what a replay counts, month by month, with the log range each month's
//! entries span, so any period's figures are sums of months and every figure can be traced to
//! the entries that make it. One tally per calendar month of the log's life: bounded memory
//! whatever the log's length.
//!
//! Months are those of China Standard Time (UTC+08:00, no daylight saving), the time the reports'
//! readers keep: an act at 2026-11-30T16:30Z belongs to December.

use std::collections::BTreeMap;
use std::fmt;

use crate::ids::RegionCode;
use crate::log::entry::{Act, LogEntry, ShareOutcome};
use crate::log::state::{Applied, Delta, Write};
use crate::status::{self, State, Succession};
use crate::values::Time;

/// The offset of the reports' clock from UTC: China Standard Time.
pub const UTC_OFFSET: u64 = 8 * 3600;

/// A calendar month of China Standard Time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: u32,
    /// 1 to 12.
    pub month: u8,
}

impl Month {
    /// The month `time` falls in, in China Standard Time.
    pub fn of(time: Time) -> Month {
        let local = Time::new(time.seconds().saturating_add(UTC_OFFSET)).unwrap_or(time);
        let text = local.to_rfc3339();
        Month {
            year: text[..4].parse().unwrap_or(0),
            month: text[5..7].parse().unwrap_or(1),
        }
    }

    pub fn new(year: u32, month: u8) -> Option<Month> {
        (1..=12).contains(&month).then_some(Month { year, month })
    }

    pub fn previous(self) -> Month {
        match self.month {
            1 => Month {
                year: self.year.saturating_sub(1),
                month: 12,
            },
            m => Month {
                year: self.year,
                month: m - 1,
            },
        }
    }

    fn quarter(self) -> u8 {
        (self.month - 1) / 3 + 1
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// A reporting period: a month, a quarter or a year, of China Standard Time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Month(Month),
    Quarter { year: u32, quarter: u8 },
    Year(u32),
}

impl Period {
    /// `2026-11`, `2026-Q4` or `2026`.
    pub fn parse(text: &str) -> Result<Period, String> {
        let bad = || format!("{text:?} is not a period: write 2026-11, 2026-Q4 or 2026");
        let year = |y: &str| {
            (y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
                .then(|| y.parse::<u32>().ok())
                .flatten()
                .filter(|y| *y >= 1970)
                .ok_or_else(bad)
        };
        match text.split_once('-') {
            None => Ok(Period::Year(year(text)?)),
            Some((y, q)) if q.len() == 2 && q.starts_with('Q') => {
                let quarter = q[1..].parse::<u8>().map_err(|_| bad())?;
                if !(1..=4).contains(&quarter) {
                    return Err(bad());
                }
                Ok(Period::Quarter {
                    year: year(y)?,
                    quarter,
                })
            }
            Some((y, m)) if m.len() == 2 => {
                let month = m.parse::<u8>().map_err(|_| bad())?;
                Month::new(year(y)?, month)
                    .map(Period::Month)
                    .ok_or_else(bad)
            }
            Some(_) => Err(bad()),
        }
    }

    /// The months the period holds, in order.
    pub fn months(self) -> Vec<Month> {
        let range = |year, from: u8, to: u8| (from..=to).map(move |month| Month { year, month });
        match self {
            Period::Month(m) => vec![m],
            Period::Quarter { year, quarter } => {
                range(year, quarter * 3 - 2, quarter * 3).collect()
            }
            Period::Year(year) => range(year, 1, 12).collect(),
        }
    }

    pub fn contains(self, month: Month) -> bool {
        match self {
            Period::Month(m) => m == month,
            Period::Quarter { year, quarter } => month.year == year && month.quarter() == quarter,
            Period::Year(year) => month.year == year,
        }
    }

    /// The period just before (环比).
    pub fn previous(self) -> Period {
        match self {
            Period::Month(m) => Period::Month(m.previous()),
            Period::Quarter { year, quarter: 1 } => Period::Quarter {
                year: year.saturating_sub(1),
                quarter: 4,
            },
            Period::Quarter { year, quarter } => Period::Quarter {
                year,
                quarter: quarter - 1,
            },
            Period::Year(year) => Period::Year(year.saturating_sub(1)),
        }
    }

    /// The same period a year before (同比).
    pub fn year_before(self) -> Period {
        match self {
            Period::Month(m) => Period::Month(Month {
                year: m.year.saturating_sub(1),
                month: m.month,
            }),
            Period::Quarter { year, quarter } => Period::Quarter {
                year: year.saturating_sub(1),
                quarter,
            },
            Period::Year(year) => Period::Year(year.saturating_sub(1)),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Month(m) => m.fmt(f),
            Period::Quarter { year, quarter } => write!(f, "{year:04}-Q{quarter}"),
            Period::Year(year) => write!(f, "{year:04}"),
        }
    }
}

/// What one region did in a month or a period: the figures of a report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Certificates issued (every issuing operation), by type code and by agency (USCC).
    pub issued: u64,
    pub issued_by_type: BTreeMap<String, u64>,
    pub issued_by_agency: BTreeMap<String, u64>,
    /// Of those: renewals (op 02), changes (op 09), transfers in (op 08), promise-based (告知承诺).
    pub renewed: u64,
    pub changed: u64,
    pub transferred_in: u64,
    pub promise_based: u64,
    /// Status changes by resulting state, and promises that lapsed (the node's own revocation).
    pub status_changes: BTreeMap<String, u64>,
    pub promises_lapsed: u64,
    pub promises_fulfilled: u64,
    /// Verifications this region's node gave (receipt batches), and of those for other regions.
    pub verifications: u64,
    pub verifications_cross_region: u64,
    /// Verification proofs this region received from others.
    pub proofs_received: u64,
    /// Purpose-bound copies given, and of those to other regions; copies received, and from others.
    pub copies_given: u64,
    pub copies_given_cross_region: u64,
    pub copies_received: u64,
    pub copies_received_cross_region: u64,
    /// Presentation codes made, and resolved (of those for other regions).
    pub presentations_made: u64,
    pub presentations_resolved: u64,
    pub presentations_resolved_cross_region: u64,
    /// Authenticated share and presentation requests refused, by code.
    pub refusals: BTreeMap<String, u64>,
    /// The entries of the month or period: how many, and the first and last log index.
    pub entries: u64,
    pub first_index: Option<u64>,
    pub last_index: Option<u64>,
}

fn add_map(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

impl Tally {
    /// Adds `other` to this tally (the months of a period, or the regions of a federation).
    pub fn add(&mut self, other: &Tally) {
        self.issued += other.issued;
        add_map(&mut self.issued_by_type, &other.issued_by_type);
        add_map(&mut self.issued_by_agency, &other.issued_by_agency);
        self.renewed += other.renewed;
        self.changed += other.changed;
        self.transferred_in += other.transferred_in;
        self.promise_based += other.promise_based;
        add_map(&mut self.status_changes, &other.status_changes);
        self.promises_lapsed += other.promises_lapsed;
        self.promises_fulfilled += other.promises_fulfilled;
        self.verifications = self.verifications.saturating_add(other.verifications);
        self.verifications_cross_region = self
            .verifications_cross_region
            .saturating_add(other.verifications_cross_region);
        self.proofs_received += other.proofs_received;
        self.copies_given += other.copies_given;
        self.copies_given_cross_region += other.copies_given_cross_region;
        self.copies_received += other.copies_received;
        self.copies_received_cross_region += other.copies_received_cross_region;
        self.presentations_made += other.presentations_made;
        self.presentations_resolved += other.presentations_resolved;
        self.presentations_resolved_cross_region += other.presentations_resolved_cross_region;
        add_map(&mut self.refusals, &other.refusals);
        self.entries += other.entries;
        self.first_index = match (self.first_index, other.first_index) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_index = self.last_index.max(other.last_index);
    }

    /// What this region handled for other regions, of all it handled for anyone: verifications
    /// given, copies given and presentation codes resolved (跨省通办 share). `None` when it
    /// handled nothing.
    pub fn cross_region_share(&self) -> Option<f64> {
        let all = self.verifications + self.copies_given + self.presentations_resolved;
        let cross = self.verifications_cross_region
            + self.copies_given_cross_region
            + self.presentations_resolved_cross_region;
        (all > 0).then(|| cross as f64 / all as f64)
    }

    /// Every figure as (name, value), maps flattened as `name:key`, the cross-region share last
    /// when there is one: what tables, spreadsheets and pages show.
    pub fn figures(&self) -> Vec<(String, f64)> {
        let mut out = vec![];
        let mut put = |name: &str, v: u64| out.push((name.to_owned(), v as f64));
        put("issued", self.issued);
        put("renewed", self.renewed);
        put("changed", self.changed);
        put("transferred_in", self.transferred_in);
        put("promise_based", self.promise_based);
        put("promises_lapsed", self.promises_lapsed);
        put("promises_fulfilled", self.promises_fulfilled);
        put("verifications", self.verifications);
        put(
            "verifications_cross_region",
            self.verifications_cross_region,
        );
        put("proofs_received", self.proofs_received);
        put("copies_given", self.copies_given);
        put("copies_given_cross_region", self.copies_given_cross_region);
        put("copies_received", self.copies_received);
        put(
            "copies_received_cross_region",
            self.copies_received_cross_region,
        );
        put("presentations_made", self.presentations_made);
        put("presentations_resolved", self.presentations_resolved);
        put(
            "presentations_resolved_cross_region",
            self.presentations_resolved_cross_region,
        );
        put("entries", self.entries);
        for (prefix, map) in [
            ("issued_by_type", &self.issued_by_type),
            ("issued_by_agency", &self.issued_by_agency),
            ("status_changes", &self.status_changes),
            ("refusals", &self.refusals),
        ] {
            for (k, v) in map {
                out.push((format!("{prefix}:{k}"), *v as f64));
            }
        }
        if let Some(share) = self.cross_region_share() {
            out.push(("cross_region_share".to_owned(), share));
        }
        out
    }

    /// Counts `entry`, at `index` of `region`'s log; `agency` is the issuing agency's USCC of an
    /// issuance (the stamping seal's).
    fn record(&mut self, index: u64, entry: &LogEntry, agency: Option<&str>, region: &RegionCode) {
        self.entries += 1;
        self.first_index = Some(self.first_index.map_or(index, |i| i.min(index)));
        self.last_index = self.last_index.max(Some(index));
        match &entry.act {
            Act::CertIssued {
                id,
                operation,
                promise_deadline,
                ..
            } => {
                self.issued += 1;
                *self
                    .issued_by_type
                    .entry(id.type_code().as_str().to_owned())
                    .or_default() += 1;
                if let Some(agency) = agency {
                    *self.issued_by_agency.entry(agency.to_owned()).or_default() += 1;
                }
                match Succession::from_code(*operation) {
                    Some(Succession::Renew) => self.renewed += 1,
                    Some(Succession::Change) => self.changed += 1,
                    Some(Succession::TransferIn) => self.transferred_in += 1,
                    None => {}
                }
                if promise_deadline.is_some() {
                    self.promise_based += 1;
                }
            }
            Act::StatusChanged { to, reason, .. } => {
                *self.status_changes.entry(to.name().to_owned()).or_default() += 1;
                let lapsed = reason.as_ref().map(|r| r.as_str()) == Some(status::PROMISE_LAPSED);
                if lapsed && *to == State::Revoked {
                    self.promises_lapsed += 1;
                }
            }
            Act::PromiseFulfilled { .. } => self.promises_fulfilled += 1,
            Act::Receipts {
                count,
                cross_region,
                ..
            } => {
                self.verifications = self.verifications.saturating_add(*count);
                self.verifications_cross_region = self
                    .verifications_cross_region
                    .saturating_add(*cross_region);
            }
            Act::ProofReceived { .. } => self.proofs_received += 1,
            Act::ShareAnswered {
                requester, outcome, ..
            } => self.answered(outcome, requester != region, |t| {
                (&mut t.copies_given, &mut t.copies_given_cross_region)
            }),
            Act::ShareReceived { provider, .. } => {
                self.copies_received += 1;
                self.copies_received_cross_region += u64::from(provider != region);
            }
            Act::PresentationCreated { .. } => self.presentations_made += 1,
            Act::PresentationAnswered {
                requester, outcome, ..
            } => self.answered(outcome, requester != region, |t| {
                (
                    &mut t.presentations_resolved,
                    &mut t.presentations_resolved_cross_region,
                )
            }),
            Act::SealRegistered { .. } | Act::SealRevoked { .. } => {}
        }
    }
}

impl Tally {
    /// An answer to a share or presentation request: a copy given counts in the two figures
    /// `given` picks (all, and for other regions when `cross`), a refusal by its code.
    fn answered(
        &mut self,
        outcome: &ShareOutcome,
        cross: bool,
        given: fn(&mut Tally) -> (&mut u64, &mut u64),
    ) {
        match outcome {
            ShareOutcome::Given { .. } => {
                let (all, for_others) = given(self);
                *all += 1;
                *for_others += u64::from(cross);
            }
            ShareOutcome::Refused(code) => {
                *self.refusals.entry(code.as_str().to_owned()).or_default() += 1;
            }
        }
    }
}

/// A region's tallies, month by month.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    months: BTreeMap<Month, Tally>,
}

impl Ledger {
    /// Counts the entry at `index` of `region`'s log, applied with `delta`, in the month of its
    /// `"at"`.
    pub fn record(&mut self, index: u64, applied: &Applied, delta: &Delta, region: &RegionCode) {
        let agency = match &applied.entry.act {
            Act::CertIssued { id, .. } => delta.writes.iter().find_map(|w| match w {
                Write::Cert { id: w, record } if w == id => Some(record.agency.as_str()),
                _ => None,
            }),
            _ => None,
        };
        self.record_entry(index, &applied.entry, agency, region);
    }

    /// Counts an entry that passed its log's rules already (a node's own durable entries),
    /// `agency` being the issuing agency of an issuance (the stamping seal's USCC).
    pub fn record_entry(
        &mut self,
        index: u64,
        entry: &LogEntry,
        agency: Option<&str>,
        region: &RegionCode,
    ) {
        self.months
            .entry(Month::of(entry.at))
            .or_default()
            .record(index, entry, agency, region);
    }

    /// The sum of the period's months.
    pub fn period(&self, period: Period) -> Tally {
        let mut tally = Tally::default();
        for (_, month) in self.months.iter().filter(|(m, _)| period.contains(**m)) {
            tally.add(month);
        }
        tally
    }

    /// Adds another region's tallies, month by month (a federation's). Log ranges are each
    /// region's own: the sum keeps none.
    pub fn merge(&mut self, other: &Ledger) {
        for (month, tally) in &other.months {
            let into = self.months.entry(*month).or_default();
            into.add(tally);
            into.first_index = None;
            into.last_index = None;
        }
    }

    /// Every month with an entry, in order.
    pub fn months(&self) -> impl Iterator<Item = (&Month, &Tally)> {
        self.months.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339_utc: (u64, u64, u64, u64)) -> Time {
        // (year, month, day, hour) in UTC, by days from the test kit's 2026-01-01.
        let (y, m, d, h) = rfc3339_utc;
        let days_before_month = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        assert_eq!(y, 2026);
        let day = days_before_month[(m - 1) as usize] + d - 1;
        Time::new(crate::testkit::T0 + day * 86_400 + h * 3600).unwrap_or_else(|| panic!())
    }

    #[test]
    fn months_are_china_standard_time() {
        // 2026-11-30 15:59 UTC is 23:59 in Beijing; 16:00 UTC is midnight, December.
        let before =
            Time::new(at((2026, 11, 30, 15)).seconds() + 59 * 60).unwrap_or_else(|| panic!());
        assert_eq!(Month::of(before).to_string(), "2026-11");
        assert_eq!(Month::of(at((2026, 11, 30, 16))).to_string(), "2026-12");
    }

    #[test]
    fn periods_parse_and_step() -> Result<(), String> {
        let q4 = Period::parse("2026-Q4")?;
        assert_eq!(q4.months().len(), 3);
        assert_eq!(q4.previous().to_string(), "2026-Q3");
        assert_eq!(q4.year_before().to_string(), "2025-Q4");
        assert_eq!(Period::parse("2026-01")?.previous().to_string(), "2025-12");
        assert_eq!(Period::parse("2026-Q1")?.previous().to_string(), "2025-Q4");
        assert_eq!(Period::parse("2026")?.months().len(), 12);
        assert!(q4.contains(Month {
            year: 2026,
            month: 12
        }));
        assert!(!q4.contains(Month {
            year: 2026,
            month: 9
        }));
        for bad in [
            "2026-13", "2026-Q5", "2026-Q0", "26-11", "2026-1", "", "2026/11", "1969",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
        Ok(())
    }
}
