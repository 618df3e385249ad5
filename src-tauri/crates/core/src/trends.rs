//! Trends for a clinician reviewing a bed (issue 15): its parameters over a
//! time range on one time axis, with alarm and NEWS2 events (scores and nurse
//! entries, from the store's NEWS2 log) marked.
//!
//! A long range is answered from the store's sealed per-chunk summaries
//! (`Store::trend`: a 7-day view of 1 Hz data opens a few thousand summaries,
//! not 600 000 samples); a range of at most [`RAW_SPAN`] from the raw samples,
//! so zooming in shows every value and every special value. Either way a gap
//! stays a gap: the line is broken (a `null` point) where the spacing jumps
//! well beyond the series' own typical spacing ([`with_gaps`]), never joined
//! across a device that was off.

use crate::{CoreError, Vigil};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use vigil_model::{Mdc, Value};

/// Ranges up to this long come from the raw samples (7 200 samples of a 1 Hz series).
pub const RAW_SPAN: Duration = Duration::hours(2);
/// The most points one series returns (a screen is narrower than that).
pub const MAX_POINTS: u32 = 2_000;
/// The most parameters one request may ask for.
pub const MAX_CODES: usize = 16;
/// The longest range one request may ask for.
pub const MAX_SPAN: Duration = Duration::days(31);
/// A break in a series is a spacing this many times its typical one.
pub const GAP_FACTOR: i64 = 3;

/// What the screen asks for.
#[derive(Debug, Clone, Deserialize, TS)]
#[ts(export)]
pub struct TrendRequest {
    pub bed: String,
    /// A past (or current) admission reviewed by id: its bed is used and the
    /// range is kept inside its stay ([`Vigil::within_stay`]), so the next
    /// patient at that bed never shows.
    #[serde(default)]
    #[ts(optional)]
    pub admission: Option<String>,
    /// MDC codes of the parameters, drawn on one time axis.
    pub codes: Vec<u32>,
    #[ts(type = "string")]
    pub from: DateTime<Utc>,
    #[ts(type = "string")]
    pub to: DateTime<Utc>,
    /// Points wanted per series over the range (about the chart's width in pixels).
    pub points: u32,
}

/// One parameter's line: parallel arrays (the chart library's shape), times in
/// ms since the epoch; a `null` value is a break in the line.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct TrendSeries {
    pub code: u32,
    /// UCUM unit of the values ("" when the range holds none).
    pub unit: String,
    /// True: every sample; false: per-bucket mean with min and max.
    pub raw: bool,
    pub t: Vec<f64>,
    pub value: Vec<Option<f64>>,
    pub min: Vec<Option<f64>>,
    pub max: Vec<Option<f64>>,
    /// Times (ms) the device sent a special value (NaN, NRes, out of range): marked, not drawn as numbers.
    pub special: Vec<f64>,
}

/// An event on the time axis.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct TrendMark {
    pub t: f64,
    /// "alarm" (an alarm started or escalated), "news2" (the score changed),
    /// "news2_entry" (a nurse entered a NEWS2 parameter), "technical",
    /// "device_change" (a parameter's readings now come from another device:
    /// a step in the line may be the device, not the patient).
    pub kind: String,
    /// "high", "medium", "low" for alarms; null otherwise.
    pub priority: Option<String>,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct TrendView {
    pub bed: String,
    #[ts(type = "string")]
    pub from: DateTime<Utc>,
    #[ts(type = "string")]
    pub to: DateTime<Utc>,
    pub series: Vec<TrendSeries>,
    pub marks: Vec<TrendMark>,
}

/// One point before gaps are marked: time (µs), value, min, max.
type Point = (i64, f64, f64, f64);
/// A point's (value, min, max), as in [`Point`] after its time.
type Band = (f64, f64, f64);

/// Inserts a break (`None`) between two points further apart than
/// [`GAP_FACTOR`] times the series' typical (median) spacing — and at least
/// `min_gap_us` — so a device that was off for a while is drawn as a gap,
/// while a spot measurement every 15 minutes is still one line.
pub fn with_gaps(points: &[Point], min_gap_us: i64) -> Vec<(i64, Option<Band>)> {
    let mut steps: Vec<i64> = points.windows(2).map(|w| w[1].0 - w[0].0).collect();
    steps.sort_unstable();
    let typical = steps.get(steps.len() / 2).copied().unwrap_or(0);
    let limit = (typical * GAP_FACTOR).max(min_gap_us);
    let mut out = Vec::with_capacity(points.len() + 8);
    for (i, p) in points.iter().enumerate() {
        if i > 0 && p.0 - points[i - 1].0 > limit {
            // The break sits between the two points.
            out.push(((points[i - 1].0 + p.0) / 2, None));
        }
        out.push((p.0, Some((p.1, p.2, p.3))));
    }
    out
}

fn series_from(code: Mdc, unit: String, raw: bool, points: &[Point], special: Vec<f64>, min_gap_us: i64) -> TrendSeries {
    let mut s = TrendSeries {
        code: code.0,
        unit,
        raw,
        t: Vec::new(),
        value: Vec::new(),
        min: Vec::new(),
        max: Vec::new(),
        special,
    };
    for (t, v) in with_gaps(points, min_gap_us) {
        s.t.push(t as f64 / 1000.0);
        s.value.push(v.map(|v| v.0));
        s.min.push(v.map(|v| v.1));
        s.max.push(v.map(|v| v.2));
    }
    s
}

/// Every `n`-th of `points` at most `max` (raw samples of a long range would
/// be more than a screen can show); the first and last are kept.
fn thin(points: Vec<Point>, max: usize) -> Vec<Point> {
    if points.len() <= max || max < 2 {
        return points;
    }
    let step = points.len().div_ceil(max);
    let last = *points.last().unwrap();
    let mut out: Vec<Point> = points.into_iter().step_by(step).collect();
    if out.last() != Some(&last) {
        out.push(last);
    }
    out
}

/// When each device took over a parameter, oldest first: the first device
/// of the range, then every device whose readings start while the one
/// before it has stopped (a probe swapped, a cuff replaced, and swapped
/// back). `spans` are (first µs, last µs, device) in time order: readings
/// (first = last) or stored chunks. A second device sending beside the
/// current one takes over when it first appears (the line mixes two
/// devices from there) but the two are not marked at every alternation.
pub fn device_takeovers<'a>(spans: impl IntoIterator<Item = (i64, i64, &'a str)>) -> Vec<(i64, String)> {
    use std::collections::{HashMap, HashSet};
    let spans: Vec<(i64, i64, &str)> = spans.into_iter().collect();
    // The last time each device sent anything in the range.
    let mut last: HashMap<&str, i64> = HashMap::new();
    for &(_, t1, d) in &spans {
        let e = last.entry(d).or_insert(t1);
        *e = (*e).max(t1);
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let mut current: Option<&str> = None;
    let mut out = Vec::new();
    for &(t0, _, d) in &spans {
        let takes_over = match current {
            None => true,
            Some(c) if c == d => false,
            // New in the range, or the current device has sent its last.
            Some(c) => !seen.contains(d) || last[c] < t0,
        };
        seen.insert(d);
        if takes_over {
            current = Some(d);
            out.push((t0, d.to_string()));
        }
    }
    out
}

/// The label of a device-change mark: the parameter and the device id the
/// app shows in its device table. A device id comes from an untrusted BLE
/// peer: it is plain text here and set as text (never markup) by the
/// screen and the report.
pub fn device_change_label(code: Mdc, device: &str) -> String {
    let param = match code.label() {
        "other" => format!("MDC {}", code.0),
        l => l.to_string(),
    };
    format!("{param}: device changed to {device}")
}

impl Vigil {
    /// A bed's trend (see the module docs). The caller has checked the session.
    pub async fn trend(&self, req: &TrendRequest) -> Result<TrendView, CoreError> {
        if let Some(id) = &req.admission {
            let (bed, from, to) = self.within_stay(id, req.from, req.to).await?;
            if to <= from {
                // Outside the stay: nothing of this patient to show.
                return Ok(TrendView { bed, from: req.from, to: req.to, series: Vec::new(), marks: Vec::new() });
            }
            let inside = TrendRequest { bed, admission: None, from, to, ..req.clone() };
            return Box::pin(self.trend(&inside)).await;
        }
        let bad = |field: &'static str, reason: &str| {
            CoreError::Invalid(crate::input::InvalidInput {
                field,
                reason: reason.to_string(),
            })
        };
        if req.to <= req.from || req.to - req.from > MAX_SPAN {
            return Err(bad("trend range", "'from' before 'to', at most 31 days"));
        }
        if req.codes.is_empty() || req.codes.len() > MAX_CODES {
            return Err(bad("trend parameters", "1 to 16"));
        }
        let points = req.points.clamp(10, MAX_POINTS) as usize;
        let raw = req.to - req.from <= RAW_SPAN;
        let mut series = Vec::new();
        let mut device_marks = Vec::new();
        for &code in &req.codes {
            let code = Mdc(code);
            if raw {
                let readings = self
                    .store
                    .query_series(&vigil_store::SeriesQuery {
                        bed: req.bed.clone(),
                        code,
                        from: req.from,
                        to: req.to,
                    })
                    .await?;
                let unit = readings.first().map(|r| r.unit.clone()).unwrap_or_default();
                let changes = device_takeovers(readings.iter().map(|r| {
                    let us = r.received.timestamp_micros();
                    (us, us, r.device.as_str())
                }));
                device_marks.extend(changes.into_iter().skip(1).map(|(us, d)| (code, us, d)));
                let mut special = Vec::new();
                let mut pts = Vec::with_capacity(readings.len());
                for r in &readings {
                    let us = r.received.timestamp_micros();
                    match r.value {
                        Value::Number(v) => pts.push((us, v, v, v)),
                        Value::Special(_) => special.push(us as f64 / 1000.0),
                    }
                }
                series.push(series_from(code, unit, true, &thin(pts, points), special, 0));
            } else {
                let buckets = self.store.trend(&req.bed, code, req.from, req.to, points).await?;
                let width = buckets.first().map(|b| (b.end - b.start).num_microseconds().unwrap_or(0)).unwrap_or(0);
                let pts: Vec<Point> = buckets
                    .iter()
                    .filter_map(|b| {
                        let mid = b.start.timestamp_micros() + (b.end - b.start).num_microseconds()? / 2;
                        Some((mid, b.mean?, b.min?, b.max?))
                    })
                    .collect();
                // Summaries carry no device or unit: the series descriptors
                // of the range's chunks do (no chunk opened). A series is
                // per device, so a new one starting here is a device change.
                let sources = self.store.chunk_sources(&req.bed, code, req.from, req.to).await?;
                let unit = sources.last().map(|c| c.unit.clone()).unwrap_or_default();
                let changes = device_takeovers(sources.iter().map(|c| {
                    (c.from.timestamp_micros(), c.to.timestamp_micros(), c.device.as_str())
                }));
                let from_us = req.from.timestamp_micros();
                device_marks.extend(changes.into_iter().skip(1).map(|(us, d)| (code, us.max(from_us), d)));
                // A bucket apart is no gap: the line breaks only where whole buckets are empty.
                series.push(series_from(code, unit, false, &pts, Vec::new(), width + 1));
            }
        }
        let mut marks = self.trend_marks(&req.bed, req.from, req.to).await?;
        marks.extend(device_marks.into_iter().map(|(code, us, device)| TrendMark {
            t: us as f64 / 1000.0,
            kind: "device_change".into(),
            priority: None,
            label: device_change_label(code, &device),
        }));
        marks.sort_by(|a, b| a.t.total_cmp(&b.t));
        Ok(TrendView {
            bed: req.bed.clone(),
            from: req.from,
            to: req.to,
            series,
            marks,
        })
    }

    /// Alarm starts and escalations from the alarm log, and NEWS2 scores.
    async fn trend_marks(&self, bed: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<TrendMark>, CoreError> {
        use vigil_alarms::{AlarmEvent, AlarmEventKind, AlarmKind};
        let mut marks = Vec::new();
        for rec in self.store.alarm_log(Some(bed), from, to).await? {
            let Ok(e) = serde_json::from_value::<AlarmEvent>(rec.event) else {
                continue;
            };
            if !matches!(e.event, AlarmEventKind::Started { .. } | AlarmEventKind::Escalated { .. }) {
                continue;
            }
            let technical = matches!(e.kind, Some(AlarmKind::Technical { .. }));
            marks.push(TrendMark {
                t: e.at.timestamp_millis() as f64,
                kind: if technical { "technical" } else { "alarm" }.into(),
                priority: e
                    .priority
                    .and_then(|p| serde_json::to_value(p).ok())
                    .and_then(|v| v.as_str().map(String::from)),
                label: e.message,
            });
        }
        // NEWS2 from the store's NEWS2 log (past admissions too, after any
        // restart): a mark where the total (or its completeness) changes,
        // and one per nurse entry.
        let h = crate::report::news2_history(&self.store, vigil_store::Selection::Bed(bed), from, to).await?;
        let mut last: Option<(u8, bool)> = None;
        for s in &h.scores {
            let n = &s.score;
            if last.replace((n.total, n.complete)) == Some((n.total, n.complete)) {
                continue;
            }
            marks.push(TrendMark {
                t: n.at.timestamp_millis() as f64,
                kind: "news2".into(),
                priority: None,
                label: format!("NEWS2 {}{}", if n.complete { "" } else { "\u{2265} " }, n.total),
            });
        }
        for e in &h.entries {
            marks.push(TrendMark {
                t: e.at.timestamp_millis() as f64,
                kind: "news2_entry".into(),
                priority: None,
                label: format!("Entered: {}", crate::report::entry_text(&e.entry)),
            });
        }
        marks.sort_by(|a, b| a.t.total_cmp(&b.t));
        Ok(marks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t_s: i64, v: f64) -> Point {
        (t_s * 1_000_000, v, v, v)
    }

    #[test]
    fn a_device_that_was_off_leaves_a_gap_not_a_line() {
        // 1 Hz, then 10 minutes without data, then 1 Hz again.
        let mut pts: Vec<Point> = (0..60).map(|s| p(s, 70.0)).collect();
        pts.extend((660..720).map(|s| p(s, 90.0)));
        let out = with_gaps(&pts, 0);
        let breaks: Vec<_> = out.iter().filter(|(_, v)| v.is_none()).collect();
        assert_eq!(breaks.len(), 1, "one gap");
        assert!(breaks[0].0 > 59_000_000 && breaks[0].0 < 660_000_000);
        assert_eq!(out.len(), pts.len() + 1, "every point kept");
    }

    #[test]
    fn regular_spot_measurements_are_one_line() {
        // NIBP every 15 minutes with a little jitter: never broken.
        let pts: Vec<Point> = (0..20).map(|i| p(i * 900 + (i % 3) * 20, 120.0)).collect();
        assert!(with_gaps(&pts, 0).iter().all(|(_, v)| v.is_some()));
    }

    #[test]
    fn a_lone_point_or_none_is_fine() {
        assert!(with_gaps(&[], 0).is_empty());
        assert_eq!(with_gaps(&[p(5, 1.0)], 0).len(), 1);
    }

    fn takeovers(spans: &[(i64, i64, &'static str)]) -> Vec<(i64, String)> {
        device_takeovers(spans.iter().copied())
    }

    #[test]
    fn a_probe_swapped_and_swapped_back_is_two_changes() {
        let one_hz = |from: i64, to: i64, d: &'static str| (from..to).map(move |s| (s, s, d));
        let spans: Vec<_> = one_hz(0, 100, "a").chain(one_hz(130, 200, "b")).chain(one_hz(260, 300, "a")).collect();
        assert_eq!(takeovers(&spans), vec![(0, "a".into()), (130, "b".into()), (260, "a".into())]);
    }

    #[test]
    fn two_devices_sending_side_by_side_are_marked_once_not_at_every_sample() {
        // b joins a at 50 and both send until 100; then b alone.
        let mut spans: Vec<(i64, i64, &'static str)> = (0..100).map(|s| (s * 10, s * 10, "a")).collect();
        spans.extend((5..200).map(|s| (s * 10 + 5, s * 10 + 5, "b")));
        spans.sort();
        assert_eq!(takeovers(&spans), vec![(0, "a".into()), (55, "b".into())]);
    }

    #[test]
    fn stored_chunks_of_one_device_are_no_change() {
        assert_eq!(takeovers(&[(0, 600, "a"), (600, 1200, "a")]), vec![(0, "a".into())]);
        assert!(takeovers(&[]).is_empty());
    }

    #[test]
    fn thinning_keeps_first_and_last() {
        let pts: Vec<Point> = (0..7200).map(|s| p(s, s as f64)).collect();
        let t = thin(pts, 1000);
        assert!(t.len() <= 1001);
        assert_eq!(t.first().unwrap().0, 0);
        assert_eq!(t.last().unwrap().0, 7199 * 1_000_000);
    }
}
