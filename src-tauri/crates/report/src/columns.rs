//! Flowsheet columns: one per hour of the ward's local clock.
//!
//! Columns are found by walking UTC instants, not by adding local hours, so a
//! day when the clocks change has 23 or 25 columns and the repeated hour in
//! autumn is two columns told apart by their zone abbreviation/offset.

use chrono::{DateTime, Offset, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;

/// One local hour, `[start, end)` in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Local start, "01:00".
    pub time: String,
    /// Local date, "2026-10-25".
    pub date: String,
    /// Zone abbreviation at the start, "BST"/"GMT" ("+0530" where the zone has none).
    pub zone: String,
}

impl Column {
    /// "01:00 BST": distinct even in the repeated autumn hour.
    pub fn label(&self) -> String {
        format!("{} {}", self.time, self.zone)
    }
}

// Every zone in use today has offsets in whole quarter hours, so local hour
// boundaries fall on UTC quarter hours.
const STEP: TimeDelta = TimeDelta::minutes(15);

fn is_local_hour_start(t: DateTime<Utc>, tz: Tz) -> bool {
    let l = t.with_timezone(&tz);
    l.minute() == 0 && l.second() == 0 && l.nanosecond() == 0
}

fn floor_quarter(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp().div_euclid(900) * 900;
    DateTime::from_timestamp(secs, 0).unwrap_or(t)
}

/// The start of the local hour containing `t`.
pub fn local_hour_floor(t: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let mut c = floor_quarter(t);
    // At most 4 steps for quarter-hour offsets; bounded in case of odd historical offsets.
    for _ in 0..8 {
        if is_local_hour_start(c, tz) {
            return c;
        }
        c -= STEP;
    }
    floor_quarter(t)
}

/// The next local hour start strictly after `t`.
pub fn next_local_hour(t: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let mut c = floor_quarter(t) + STEP;
    for _ in 0..8 {
        if is_local_hour_start(c, tz) {
            return c;
        }
        c += STEP;
    }
    floor_quarter(t) + TimeDelta::hours(1)
}

fn zone_label(t: DateTime<Utc>, tz: Tz) -> String {
    let l = t.with_timezone(&tz);
    let abbr = l.format("%Z").to_string();
    if abbr.chars().any(|c| c.is_ascii_alphabetic()) {
        abbr
    } else {
        let secs = l.offset().fix().local_minus_utc();
        format!(
            "{}{:02}{:02}",
            if secs < 0 { '-' } else { '+' },
            secs.abs() / 3600,
            secs.abs() % 3600 / 60
        )
    }
}

/// One column per local hour overlapping `[from, to)`; empty when `to <= from`.
pub fn hourly_columns(from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz) -> Vec<Column> {
    let mut out = Vec::new();
    if to <= from {
        return out;
    }
    let mut start = local_hour_floor(from, tz);
    while start < to {
        let end = next_local_hour(start, tz);
        let l = start.with_timezone(&tz);
        out.push(Column {
            start,
            end,
            time: l.format("%H:%M").to_string(),
            date: l.format("%Y-%m-%d").to_string(),
            zone: zone_label(start, tz),
        });
        start = end;
    }
    out
}
