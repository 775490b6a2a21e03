//! Retention: which snapshots of a site a policy keeps, and why. The policy semantics are
//! restic's `forget` (keep-last, -hourly, -daily, -weekly, -monthly, -yearly, -within, including
//! restic 0.16's rule that keeps the oldest snapshot while a bucket still has room), applied per
//! site, plus sitesnap's own protections: pinned snapshots (checkpoints) are always kept, and
//! `pre-restore` / `pre-migrate` snapshots younger than seven days are kept. Every kept snapshot
//! carries its reasons ("daily 2026-11-20", "pinned", ...). These are pure functions of the
//! snapshot list, the policy, the clock and a time zone: this module never reads the catalogue
//! and never deletes anything.

use crate::catalog::SnapshotKind;
use crate::error::{Error, Result};
use crate::fsutil;
use chrono::{DateTime, Datelike, Days, Months, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

mod plan;
pub use plan::{
    PruneEntry, PrunePlan, PruneRequest, SiteNote, SitePlan, execute_prune, journal_holds,
    plan_prune,
};

/// How long `pre-restore` and `pre-migrate` snapshots are protected.
pub const PROTECT_DAYS: u64 = 7;

/// A calendar span for `--keep-within`: years, months, weeks, days, hours, written like
/// `1y2m`, `2w`, `7d`, `36h` (restic's syntax, plus `w` for weeks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    /// Years.
    pub years: u32,
    /// Months.
    pub months: u32,
    /// Weeks.
    pub weeks: u32,
    /// Days.
    pub days: u32,
    /// Hours.
    pub hours: u32,
}

impl Span {
    /// Parses `1y2m3w4d5h` (any non-empty subset, units in any order, each at most once).
    pub fn parse(s: &str) -> Result<Span> {
        let bad = |why: &str| {
            Error::Usage(format!(
                "invalid duration '{s}': {why} (use numbers with units y, m, w, d, h, e.g. 7d, 2w, 1y2m)"
            ))
        };
        let mut span = Span::default();
        let mut seen = String::new();
        let mut num = String::new();
        for c in s.trim().chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            if num.is_empty() {
                return Err(bad(&format!("'{c}' has no number before it")));
            }
            if seen.contains(c) {
                return Err(bad(&format!("unit '{c}' given twice")));
            }
            let n: u32 = num.parse().map_err(|_| bad("number too large"))?;
            match c {
                'y' => span.years = n,
                'm' => span.months = n,
                'w' => span.weeks = n,
                'd' => span.days = n,
                'h' => span.hours = n,
                _ => return Err(bad(&format!("unknown unit '{c}'"))),
            }
            seen.push(c);
            num.clear();
        }
        if !num.is_empty() {
            return Err(bad("a number needs a unit"));
        }
        if seen.is_empty() {
            return Err(bad("empty"));
        }
        if span.is_zero() {
            return Err(bad("it is zero"));
        }
        if span.checked_before(&fsutil::now()).is_none() {
            return Err(bad("it reaches beyond the calendar"));
        }
        Ok(span)
    }

    /// No unit is above 0.
    pub fn is_zero(&self) -> bool {
        *self == Span::default()
    }

    /// `t` minus this span, calendar-wise in `t`'s time zone (years and months first, then
    /// weeks and days, then hours, like Go's `AddDate` followed by `Add`). Month ends clamp
    /// (31 March minus 1m is 28/29 February). None when the result falls off the calendar.
    pub fn checked_before<Tz: TimeZone>(&self, t: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        let months = u32::try_from(self.years as u64 * 12 + self.months as u64).ok()?;
        let days = self.weeks as u64 * 7 + self.days as u64;
        t.clone()
            .checked_sub_months(Months::new(months))?
            .checked_sub_days(Days::new(days))?
            .checked_sub_signed(chrono::Duration::hours(self.hours as i64))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, u) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.weeks, 'w'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n > 0 {
                write!(f, "{n}{u}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Span::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A retention policy, stored per site as JSON (`sites.policy`) or given on the command line.
/// A count of 0 or an absent field means "no such rule".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Keep the N newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<u32>,
    /// Keep the newest of each of the last N hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hourly: Option<u32>,
    /// Keep the newest of each of the last N days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<u32>,
    /// Keep the newest of each of the last N ISO weeks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<u32>,
    /// Keep the newest of each of the last N months.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly: Option<u32>,
    /// Keep the newest of each of the last N years.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yearly: Option<u32>,
    /// Keep every snapshot within this span of the newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<Span>,
}

impl Policy {
    /// No rule keeps anything (restic would keep everything; sitesnap refuses such a policy).
    pub fn is_empty(&self) -> bool {
        self.counts().iter().all(|(n, _)| *n == 0) && self.within.is_none_or(|w| w.is_zero())
    }

    fn counts(&self) -> [(u32, Bucket); 6] {
        [
            (self.last.unwrap_or(0), Bucket::Last),
            (self.hourly.unwrap_or(0), Bucket::Hourly),
            (self.daily.unwrap_or(0), Bucket::Daily),
            (self.weekly.unwrap_or(0), Bucket::Weekly),
            (self.monthly.unwrap_or(0), Bucket::Monthly),
            (self.yearly.unwrap_or(0), Bucket::Yearly),
        ]
    }

    /// The policy as stored in the catalogue.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a policy serializes")
    }

    /// Reads a stored policy.
    pub fn from_json(s: &str) -> Result<Policy> {
        serde_json::from_str(s)
            .map_err(|e| Error::Corrupt(format!("stored retention policy '{s}' is invalid: {e}")))
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (n, b) in self.counts() {
            if n > 0 {
                parts.push(format!("{n} {}", b.name()));
            }
        }
        if let Some(w) = self.within.filter(|w| !w.is_zero()) {
            parts.push(format!("all within {w} of the newest"));
        }
        if parts.is_empty() {
            write!(f, "keep nothing by policy")
        } else {
            write!(f, "keep {}", parts.join(", "))
        }
    }
}

/// A counted retention rule (`--keep-last`, `--keep-hourly`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// The N newest snapshots.
    Last,
    /// The newest of each hour.
    Hourly,
    /// The newest of each day.
    Daily,
    /// The newest of each ISO week.
    Weekly,
    /// The newest of each month.
    Monthly,
    /// The newest of each year.
    Yearly,
}

impl Bucket {
    /// The rule's name as used in reasons and policy text (`daily`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Last => "last",
            Bucket::Hourly => "hourly",
            Bucket::Daily => "daily",
            Bucket::Weekly => "weekly",
            Bucket::Monthly => "monthly",
            Bucket::Yearly => "yearly",
        }
    }

    /// The bucket value of a snapshot (restic's ymdh, ymd, ISO yw, ym, y; `nr` for last) and
    /// its label for reasons.
    fn of<Tz: TimeZone>(self, t: &DateTime<Tz>, nr: usize) -> (i64, String) {
        let (y, m, d, h) = (t.year() as i64, t.month() as i64, t.day() as i64, t.hour());
        match self {
            Bucket::Last => (nr as i64, format!("#{}", nr + 1)),
            Bucket::Hourly => (
                y * 1_000_000 + m * 10_000 + d * 100 + h as i64,
                format!("{y:04}-{m:02}-{d:02} {h:02}h"),
            ),
            Bucket::Daily => (y * 10_000 + m * 100 + d, format!("{y:04}-{m:02}-{d:02}")),
            Bucket::Weekly => {
                let w = t.iso_week();
                (
                    w.year() as i64 * 100 + w.week() as i64,
                    format!("{:04}-W{:02}", w.year(), w.week()),
                )
            }
            Bucket::Monthly => (y * 100 + m, format!("{y:04}-{m:02}")),
            Bucket::Yearly => (y, format!("{y:04}")),
        }
    }
}

/// What retention needs to know about one snapshot.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Snapshot id.
    pub id: String,
    /// When it was taken.
    pub time: DateTime<Utc>,
    /// Snapshot kind (`pre-restore` and `pre-migrate` are protected while young).
    pub kind: SnapshotKind,
    /// Pinned snapshots are always kept.
    pub pinned: bool,
    /// A reason from outside the policy to keep it (e.g. an unfinished restore needs it).
    pub hold: Option<String>,
}

/// Why a snapshot is kept. Shown (and serialized) as text such as `pinned`,
/// `daily 2026-11-20` or `pre-restore younger than 7 days`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The snapshot is pinned (a checkpoint).
    Pinned,
    /// A `pre-restore` / `pre-migrate` snapshot younger than [`PROTECT_DAYS`]; holds its kind.
    Protected(SnapshotKind),
    /// A reason from outside the policy (e.g. an unfinished restore needs it).
    Held(String),
    /// Taken within this span of the site's newest snapshot.
    Within(Span),
    /// The newest snapshot of a bucket (`oldest`: the oldest snapshot, kept while the rule still
    /// had room); `label` names the bucket (`2026-11-20`, `#1`, ...).
    Rule {
        /// The rule that keeps it.
        bucket: Bucket,
        /// The bucket's label.
        label: String,
        /// Kept as the oldest snapshot while the rule had room (restic 0.16).
        oldest: bool,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Pinned => write!(f, "pinned"),
            Reason::Protected(kind) => write!(f, "{kind} younger than {PROTECT_DAYS} days"),
            Reason::Held(why) => write!(f, "{why}"),
            Reason::Within(w) => write!(f, "within {w}"),
            Reason::Rule {
                bucket,
                label,
                oldest,
            } => {
                let pre = if *oldest { "oldest " } else { "" };
                write!(f, "{pre}{} {label}", bucket.name())
            }
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.to_string().as_str() == *other
    }
}

/// The decision for one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The snapshot id.
    pub id: String,
    /// Kept (at least one reason) or forgotten.
    pub keep: bool,
    /// Why it is kept; empty when it is forgotten.
    pub reasons: Vec<Reason>,
}

/// Applies `policy` to one site's snapshots. Calendar buckets (hour, day, ISO week, month,
/// year) are taken in `tz`; `now` is the clock (it decides which `pre-restore`/`pre-migrate`
/// snapshots are still protected, and snapshots dated after it do not count as the newest for
/// `within`). Returns one verdict per snapshot, newest first (ties: higher id first).
pub fn apply<Tz: TimeZone>(
    policy: &Policy,
    snaps: &[Candidate],
    now: DateTime<Utc>,
    tz: &Tz,
) -> Vec<Verdict> {
    let mut list: Vec<&Candidate> = snaps.iter().collect();
    list.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
    // restic: the newest snapshot that is not in the future.
    let latest = list
        .iter()
        .map(|c| c.time)
        .filter(|t| *t < now)
        .max()
        .unwrap_or(now);
    let within_cutoff = policy
        .within
        .filter(|w| !w.is_zero())
        // A span beyond the calendar keeps everything (parse refuses one; never keep nothing).
        .map(|w| {
            w.checked_before(&latest.with_timezone(tz))
                .map_or(DateTime::<Utc>::MIN_UTC, |t| t.with_timezone(&Utc))
        });
    let protect_cutoff = now - chrono::Duration::days(PROTECT_DAYS as i64);
    let mut buckets: Vec<(u32, Bucket, Option<i64>)> = policy
        .counts()
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, b)| (n, b, None))
        .collect();
    let n = list.len();
    let mut out = Vec::with_capacity(n);
    for (nr, c) in list.into_iter().enumerate() {
        let mut reasons = Vec::new();
        if c.pinned {
            reasons.push(Reason::Pinned);
        }
        if c.kind.is_protected() && c.time > protect_cutoff {
            reasons.push(Reason::Protected(c.kind));
        }
        if let Some(h) = &c.hold {
            reasons.push(Reason::Held(h.clone()));
        }
        if let (Some(cut), Some(w)) = (within_cutoff, policy.within)
            && c.time > cut
        {
            reasons.push(Reason::Within(w));
        }
        let local = c.time.with_timezone(tz);
        for (count, bucket, last) in buckets.iter_mut() {
            if *count == 0 {
                continue;
            }
            let (val, label) = bucket.of(&local, nr);
            let is_new = *last != Some(val);
            // restic 0.16: the oldest snapshot is kept while the bucket still has room.
            if is_new || nr == n - 1 {
                *last = Some(val);
                *count -= 1;
                reasons.push(Reason::Rule {
                    bucket: *bucket,
                    label,
                    oldest: !is_new,
                });
            }
        }
        out.push(Verdict {
            id: c.id.clone(),
            keep: !reasons.is_empty(),
            reasons,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn cand(id: &str, time: &str) -> Candidate {
        Candidate {
            id: id.into(),
            time: t(time),
            kind: SnapshotKind::Scheduled,
            pinned: false,
            hold: None,
        }
    }

    fn kept(v: &[Verdict]) -> Vec<&str> {
        let mut k: Vec<&str> = v.iter().filter(|v| v.keep).map(|v| v.id.as_str()).collect();
        k.sort();
        k
    }

    #[test]
    fn span_parse_and_display() {
        assert_eq!(
            Span::parse("7d").unwrap(),
            Span {
                days: 7,
                ..Span::default()
            }
        );
        assert_eq!(Span::parse("1y2m").unwrap().to_string(), "1y2m");
        assert_eq!(Span::parse("2w").unwrap().weeks, 2);
        assert_eq!(Span::parse("1y5m7d2h").unwrap().to_string(), "1y5m7d2h");
        for bad in ["", "7", "d", "7x", "1d2d", "0d", "-1d"] {
            assert!(Span::parse(bad).is_err(), "{bad} should not parse");
        }
        let p = Span::parse("1m").unwrap();
        assert_eq!(
            p.checked_before(&t("2026-03-31T10:00:00Z")).unwrap(),
            t("2026-02-28T10:00:00Z")
        );
        let p = Span::parse("2w1h").unwrap();
        assert_eq!(
            p.checked_before(&t("2026-03-15T10:00:00Z")).unwrap(),
            t("2026-03-01T09:00:00Z")
        );
    }

    #[test]
    fn policy_json_roundtrip() {
        let p = Policy {
            daily: Some(7),
            within: Some(Span::parse("2w").unwrap()),
            ..Policy::default()
        };
        let j = p.to_json();
        assert_eq!(j, r#"{"daily":7,"within":"2w"}"#);
        assert_eq!(Policy::from_json(&j).unwrap(), p);
        assert!(Policy::from_json(r#"{"dayly":7}"#).is_err());
        assert!(Policy::default().is_empty());
        assert!(
            Policy {
                last: Some(0),
                ..Policy::default()
            }
            .is_empty()
        );
        assert_eq!(p.to_string(), "keep 7 daily, all within 2w of the newest");
    }

    #[test]
    fn keep_last_counts_snapshots_not_days() {
        let s = [
            cand("a", "2026-01-01T01:00:00Z"),
            cand("b", "2026-01-01T02:00:00Z"),
            cand("c", "2026-01-01T03:00:00Z"),
        ];
        let p = Policy {
            last: Some(2),
            ..Policy::default()
        };
        let v = apply(&p, &s, t("2026-02-01T00:00:00Z"), &Utc);
        assert_eq!(kept(&v), ["b", "c"]);
        assert_eq!(v[0].id, "c");
        assert_eq!(v[0].reasons, ["last #1"]);
    }

    #[test]
    fn daily_keeps_newest_of_each_day_and_oldest_while_room() {
        let s = [
            cand("a", "2026-01-01T01:00:00Z"),
            cand("b", "2026-01-01T23:00:00Z"),
            cand("c", "2026-01-02T03:00:00Z"),
        ];
        let p = Policy {
            daily: Some(5),
            ..Policy::default()
        };
        let v = apply(&p, &s, t("2026-02-01T00:00:00Z"), &Utc);
        // b is the newest of Jan 1st; a is the oldest and the bucket still has room.
        assert_eq!(kept(&v), ["a", "b", "c"]);
        assert_eq!(v[2].reasons, ["oldest daily 2026-01-01"]);
        let p = Policy {
            daily: Some(2),
            ..Policy::default()
        };
        let v = apply(&p, &s, t("2026-02-01T00:00:00Z"), &Utc);
        assert_eq!(kept(&v), ["b", "c"]);
    }

    #[test]
    fn buckets_follow_the_time_zone() {
        // 23:30 UTC on Jan 1st is Jan 2nd in UTC+2: the two snapshots share a day there.
        let s = [
            cand("a", "2026-01-01T23:30:00Z"),
            cand("b", "2026-01-02T05:00:00Z"),
        ];
        let p = Policy {
            daily: Some(1),
            ..Policy::default()
        };
        let now = t("2026-02-01T00:00:00Z");
        let utc = apply(&p, &s, now, &Utc);
        assert_eq!(kept(&utc), ["b"]);
        let plus2 = chrono::FixedOffset::east_opt(2 * 3600).unwrap();
        let p2 = Policy {
            daily: Some(2),
            ..Policy::default()
        };
        // Two days in UTC, one day in UTC+2 (a is then kept only as the oldest).
        assert_eq!(apply(&p2, &s, now, &Utc)[1].reasons, ["daily 2026-01-01"]);
        assert_eq!(
            apply(&p2, &s, now, &plus2)[1].reasons,
            ["oldest daily 2026-01-02"]
        );
    }

    #[test]
    fn pinned_and_young_undo_points_are_kept() {
        let mut pin = cand("pin", "2025-01-01T00:00:00Z");
        pin.pinned = true;
        let mut young = cand("young", "2026-01-28T00:00:00Z");
        young.kind = SnapshotKind::PreRestore;
        let mut old = cand("old", "2026-01-20T00:00:00Z");
        old.kind = SnapshotKind::PreMigrate;
        let mut held = cand("held", "2025-06-01T00:00:00Z");
        held.hold = Some("needed by restore journal j1".into());
        let s = [pin, young, old, held, cand("new", "2026-01-31T00:00:00Z")];
        let p = Policy {
            last: Some(1),
            ..Policy::default()
        };
        let v = apply(&p, &s, t("2026-02-01T00:00:00Z"), &Utc);
        assert_eq!(kept(&v), ["held", "new", "pin", "young"]);
        let r = |id: &str| v.iter().find(|x| x.id == id).unwrap().reasons.clone();
        assert_eq!(r("pin"), ["pinned"]);
        assert_eq!(r("young"), ["pre-restore younger than 7 days"]);
        assert_eq!(r("held"), ["needed by restore journal j1"]);
        assert!(r("old").is_empty());
    }

    #[test]
    fn within_is_relative_to_the_newest_snapshot_not_in_the_future() {
        let s = [
            cand("a", "2026-01-01T00:00:00Z"),
            cand("b", "2026-01-05T00:00:00Z"),
            cand("c", "2026-01-10T00:00:00Z"),
            cand("future", "2027-01-01T00:00:00Z"),
        ];
        let p = Policy {
            within: Some(Span::parse("5d").unwrap()),
            ..Policy::default()
        };
        // Newest not in the future is c (Jan 10th): cutoff Jan 5th 00:00, strictly after.
        let v = apply(&p, &s, t("2026-06-01T00:00:00Z"), &Utc);
        assert_eq!(kept(&v), ["c", "future"]);
    }

    /// The hand-computed table (also driven through the binary in tests/retention.rs; the
    /// bucket of each snapshot is written next to it). "Now" is 2026-11-20 12:00 UTC.
    #[test]
    fn hand_computed_table() {
        let times = [
            ("s01", "2025-06-15T03:00:00Z"), // Sun, 2025-W24, 2025-06
            ("s02", "2025-12-31T03:00:00Z"), // Wed, ISO 2026-W01, 2025-12
            ("s03", "2026-01-15T03:00:00Z"), // 2026-W03, 2026-01
            ("C", "2026-02-10T10:00:00Z"),   // pinned checkpoint, 2026-W07, 2026-02
            ("s04", "2026-03-01T03:00:00Z"), // 2026-W09, 2026-03
            ("s05", "2026-09-30T03:00:00Z"), // 2026-W40, 2026-09
            ("s06", "2026-10-31T03:00:00Z"), // 2026-W44, 2026-10
            ("s07", "2026-11-02T03:00:00Z"), // Mon, W45
            ("s08", "2026-11-08T03:00:00Z"), // Sun, W45
            ("s09", "2026-11-09T03:00:00Z"), // Mon, W46
            ("s10", "2026-11-15T03:00:00Z"), // Sun, W46
            ("s11", "2026-11-16T03:00:00Z"), // Mon, W47
            ("s12", "2026-11-18T03:00:00Z"), // W47
            ("s13", "2026-11-19T03:00:00Z"), // W47
            ("s14", "2026-11-19T15:00:00Z"), // W47
            ("s15", "2026-11-20T03:00:00Z"), // W47, hour 03
            ("s16", "2026-11-20T03:30:00Z"), // W47, hour 03
        ];
        let snaps: Vec<Candidate> = times
            .iter()
            .map(|(id, t)| {
                let mut c = cand(id, t);
                c.pinned = *id == "C";
                c
            })
            .collect();
        let p = |f: &dyn Fn(&mut Policy)| {
            let mut p = Policy::default();
            f(&mut p);
            p
        };
        let w = |s: &str| Some(Span::parse(s).unwrap());
        let table: Vec<(Policy, Vec<&str>)> = vec![
            (p(&|p| p.last = Some(3)), vec!["C", "s14", "s15", "s16"]),
            (p(&|p| p.hourly = Some(3)), vec!["C", "s13", "s14", "s16"]),
            (
                p(&|p| p.daily = Some(4)),
                vec!["C", "s11", "s12", "s14", "s16"],
            ),
            (p(&|p| p.weekly = Some(3)), vec!["C", "s08", "s10", "s16"]),
            (
                p(&|p| p.monthly = Some(4)),
                vec!["C", "s04", "s05", "s06", "s16"],
            ),
            (
                p(&|p| p.monthly = Some(6)),
                vec!["C", "s03", "s04", "s05", "s06", "s16"],
            ),
            (p(&|p| p.yearly = Some(5)), vec!["C", "s01", "s02", "s16"]),
            (
                p(&|p| p.within = w("10d")),
                vec!["C", "s10", "s11", "s12", "s13", "s14", "s15", "s16"],
            ),
            (
                p(&|p| p.within = w("2w")),
                vec![
                    "C", "s08", "s09", "s10", "s11", "s12", "s13", "s14", "s15", "s16",
                ],
            ),
            (
                p(&|p| p.within = w("1y2m")),
                vec![
                    "C", "s02", "s03", "s04", "s05", "s06", "s07", "s08", "s09", "s10", "s11",
                    "s12", "s13", "s14", "s15", "s16",
                ],
            ),
            (
                p(&|p| {
                    p.last = Some(2);
                    p.daily = Some(3);
                    p.weekly = Some(2);
                    p.monthly = Some(3);
                }),
                vec!["C", "s05", "s06", "s10", "s12", "s14", "s15", "s16"],
            ),
        ];
        let now = t("2026-11-20T12:00:00Z");
        for (policy, want) in table {
            let v = apply(&policy, &snaps, now, &Utc);
            assert_eq!(kept(&v), want, "{policy}");
            assert_eq!(v.len(), snaps.len());
        }
    }
}
