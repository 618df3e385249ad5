//! A clinician's printed report (issue 15): what the store holds for one
//! admission, or for one bed over a range, gathered into a
//! `vigil_report::Report` (the pure crate lays it out as a PDF).
//!
//! Needs only a [`Store`], so `vigil report` works without a running
//! monitor. Everything shown is read through `Store::read_checked`, which
//! verifies each chunk of the range: a chunk that fails, and every silence
//! longer than [`GAP_FACTOR`] times a parameter's typical spacing, is stated
//! under "Data completeness" and in every footer, never silently left out.
//!
//! PHI: the patient's identity goes into the `Report` (printed in the PDF);
//! errors name beds, admission ids and times only.

use crate::alarming::{News2Entry, News2Logged, News2Origin, SavedBed};
use chrono::{DateTime, Duration, TimeDelta, Utc};
use chrono_tz::Tz;
use std::collections::BTreeMap;
use vigil_alarms::{AlarmEvent, AlarmEventKind, AlarmKind, News2, News2Param, Parameter, SitePreset};
use vigil_model::{AdmissionId, Mdc, Reading, Value};
use vigil_report as rpt;
use vigil_store::{Selection, Store, StoreError};

/// A silence longer than this many typical spacings is a gap.
pub const GAP_FACTOR: i32 = 3;
/// The longest range one report covers.
pub const MAX_SPAN: Duration = Duration::days(31);

/// What to report on.
#[derive(Debug, Clone)]
pub enum Scope {
    /// One stay, from admission to discharge (or `now` if still admitted).
    Admission(String),
    /// A bed over `[from, to]`, whoever was there; "No patient admitted"
    /// when nobody was.
    Bed {
        bed: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
}

#[derive(Debug, Clone)]
pub struct Request {
    pub scope: Scope,
    /// The end of a stay not yet discharged (the caller's clock).
    pub now: DateTime<Utc>,
    /// The ward's zone (`SiteConfig::time_zone`).
    pub tz: Tz,
    /// Title line, e.g. the site or ward name.
    pub ward: String,
    /// Who asked (printed in every footer).
    pub generated_by: String,
    /// The site's alarm preset: the limits band when the bed saved none.
    pub preset: SitePreset,
}

/// A gathered report and the raw readings behind it (for `--format csv`).
pub struct Built {
    pub report: rpt::Report,
    pub readings: Vec<Reading>,
    pub bed: String,
    pub admission: Option<AdmissionId>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no admission {0} in this store (vigil admissions lists them)")]
    UnknownAdmission(String),
    #[error("the report's range must end after it starts and span at most 31 days")]
    BadRange,
    #[error("bed {bed}: nothing stored from {from} to {to} (no readings, alarms or failed chunks)")]
    Empty {
        bed: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    #[error("bed {bed}: the range covers {n} admissions; report each one with --admission (vigil admissions lists them)")]
    SeveralAdmissions { bed: String, n: usize },
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ReportError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownAdmission(id) => ReportError::UnknownAdmission(id),
            e => ReportError::Store(e),
        }
    }
}

/// Gathers the report (see the module docs).
pub async fn build(store: &Store, req: &Request) -> Result<Built, ReportError> {
    // Which bed, range and stay.
    let (bed, from, to, stay) = match &req.scope {
        Scope::Admission(id) => {
            let a = store.admission(id).await?;
            let to = a.discharged_at.unwrap_or(req.now).max(a.admitted_at);
            (a.bed.clone(), a.admitted_at, to, Some(a))
        }
        Scope::Bed { bed, from, to } => {
            if to <= from || *to - *from > MAX_SPAN {
                return Err(ReportError::BadRange);
            }
            // The patient shown is the one admitted in the range, if any;
            // two stays in one report would mix two patients' data.
            let overlapping: Vec<_> = store
                .admissions()
                .await?
                .into_iter()
                .filter(|a| &a.bed == bed && a.admitted_at <= *to && a.discharged_at.is_none_or(|d| d >= *from))
                .collect();
            if overlapping.len() > 1 {
                return Err(ReportError::SeveralAdmissions {
                    bed: bed.clone(),
                    n: overlapping.len(),
                });
            }
            let stay = match overlapping.first() {
                Some(a) => Some(store.admission(&a.id.0).await?),
                None => None,
            };
            (bed.clone(), *from, *to, stay)
        }
    };
    let sel = match &req.scope {
        Scope::Admission(id) => Selection::Admission(id),
        Scope::Bed { bed, .. } => Selection::Bed(bed),
    };
    let checked = store.read_checked(sel, from, to).await?;
    let alarm_log = store.alarm_log(Some(&bed), from, to).await?;
    let news2 = news2_history(store, sel, from, to).await?;
    if checked.readings.is_empty()
        && checked.failed.is_empty()
        && alarm_log.is_empty()
        && news2.scores.is_empty()
        && news2.entries.is_empty()
    {
        return Err(ReportError::Empty { bed, from, to });
    }
    let admission = stay.as_ref().map(|a| a.id.clone());
    let saved = saved_settings(store, &bed, admission.as_ref()).await;
    let events: Vec<AlarmEvent> = alarm_log
        .into_iter()
        .filter_map(|r| serde_json::from_value(r.event).ok())
        .collect();

    let limits = limits_of(&req.preset, stay.as_ref().map(|a| a.patient.category), saved.as_ref());
    let by_code = group_by_code(&checked.readings);
    let mut charts = Vec::new();
    let mut flow = Vec::new();
    let mut gaps = Vec::new();
    let mut device_changes = Vec::new();
    for (code, rs) in &by_code {
        let label = label_of(*code);
        let unit = rs.first().map(|r| r.unit.clone()).unwrap_or_default();
        let times: Vec<DateTime<Utc>> = rs.iter().map(|r| r.received).collect();
        let typical = typical_spacing(&times);
        for (a, b) in find_gaps(&times, typical) {
            gaps.push(rpt::Gap {
                series: format!("{label} ({bed})"),
                from: a,
                to: b,
            });
        }
        let samples: Vec<(DateTime<Utc>, f64)> = rs
            .iter()
            .filter_map(|r| match r.value {
                Value::Number(v) => Some((r.received, v)),
                Value::Special(_) => None,
            })
            .collect();
        let specials = rs
            .iter()
            .filter_map(|r| match r.value {
                Value::Special(s) => Some(rpt::Mark {
                    at: r.received,
                    label: s.as_str().to_string(),
                }),
                Value::Number(_) => None,
            })
            .collect();
        let parameter = Parameter::from_mdc(*code);
        // Which device measured this parameter when (the same rule as the
        // trend screen's marks): a step may be a new device, not the patient.
        let takeovers: Vec<(DateTime<Utc>, String)> = crate::trends::device_takeovers(rs.iter().map(|r| {
            let us = r.received.timestamp_micros();
            (us, us, r.device.as_str())
        }))
        .into_iter()
        .filter_map(|(us, d)| Some((DateTime::from_timestamp_micros(us)?, d)))
        .collect();
        let mut chart_marks = chart_events(&events, parameter);
        chart_marks.extend(takeovers.iter().skip(1).map(|(at, d)| rpt::Event {
            at: *at,
            kind: rpt::EventKind::DeviceChange,
            label: crate::trends::device_change_label(*code, d),
        }));
        chart_marks.sort_by_key(|e| e.at);
        if takeovers.len() > 1 {
            device_changes.push(rpt::DeviceChanges {
                parameter: label.clone(),
                devices: takeovers,
            });
        }
        charts.push(rpt::Chart {
            label: label.clone(),
            unit: unit.clone(),
            samples: samples.clone(),
            specials,
            limits: parameter.and_then(|p| limits.get(&p).copied()),
            events: chart_marks,
            expected_interval: typical,
        });
        flow.push(rpt::FlowInput { label, unit, samples });
    }
    let failed_chunks = checked
        .failed
        .iter()
        .map(|f| rpt::FailedChunk {
            series: match f.code {
                Some(c) => format!("{} ({bed}, series {})", label_of(c), f.series),
                None => format!("series {} ({bed})", f.series),
            },
            from: f.from,
            to: f.to,
            reason: f.reason.clone(),
        })
        .collect();
    let report = rpt::Report {
        header: rpt::Header {
            bed: bed.clone(),
            ward: req.ward.clone(),
            patient: stay.as_ref().map(|a| rpt::Patient {
                name: a.patient.display_name.clone(),
                mrn: a.patient.mrn.clone(),
                dob: a.patient.date_of_birth,
                category: category_label(a.patient.category).into(),
            }),
        },
        from,
        to,
        tz: req.tz,
        flowsheet: rpt::Flowsheet::build(from, to, req.tz, &flow).with_news2(from, to, &news2_scores(&news2), &news2_notes(&news2)),
        charts,
        alarms: alarm_rows(&events, req.tz),
        news2: news2_rows(&news2, req.tz),
        devices: devices(store, &bed, &checked.readings).await?,
        device_changes,
        completeness: rpt::Completeness {
            chunks_verified: checked.chunks_verified,
            failed_chunks,
            gaps,
        },
        generated_at: req.now,
        generated_by: req.generated_by.clone(),
    };
    Ok(Built {
        report,
        readings: checked.readings,
        bed,
        admission,
    })
}

/// Readings per parameter, in code order; the device-clock readings
/// (an offset, never a vital sign) are left out.
fn group_by_code(readings: &[Reading]) -> BTreeMap<Mdc, Vec<&Reading>> {
    let mut out: BTreeMap<Mdc, Vec<&Reading>> = BTreeMap::new();
    for r in readings.iter().filter(|r| r.code != Mdc::ATTR_TIME_ABS) {
        out.entry(r.code).or_default().push(r);
    }
    out
}

fn label_of(code: Mdc) -> String {
    match code.label() {
        "other" => format!("MDC {}", code.0),
        l => l.to_string(),
    }
}

fn category_label(c: vigil_store::PatientCategory) -> &'static str {
    match c {
        vigil_store::PatientCategory::Adult => "Adult",
        vigil_store::PatientCategory::Paediatric => "Paediatric",
        vigil_store::PatientCategory::Neonatal => "Neonatal",
    }
}

/// The median spacing of a parameter's readings (zero with fewer than two):
/// the cadence the device kept, whatever kind it is.
pub fn typical_spacing(times: &[DateTime<Utc>]) -> TimeDelta {
    let mut steps: Vec<TimeDelta> = times.windows(2).map(|w| w[1] - w[0]).filter(|d| *d > TimeDelta::zero()).collect();
    steps.sort_unstable();
    steps.get(steps.len() / 2).copied().unwrap_or_default()
}

/// Silences longer than [`GAP_FACTOR`] × `typical`, as (last before, first after).
pub fn find_gaps(times: &[DateTime<Utc>], typical: TimeDelta) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    if typical <= TimeDelta::zero() {
        return Vec::new();
    }
    times
        .windows(2)
        .filter(|w| w[1] - w[0] > typical * GAP_FACTOR)
        .map(|w| (w[0], w[1]))
        .collect()
}

/// The bed's saved clinical settings, when they belong to this stay.
async fn saved_settings(store: &Store, bed: &str, admission: Option<&AdmissionId>) -> Option<SavedBed> {
    let rows = store.bed_settings_of(&[bed.to_string()]).await.ok()?;
    let row = rows.into_iter().find(|r| r.bed == bed && r.admission.as_ref() == admission)?;
    serde_json::from_value(row.settings.ok()?).ok()
}

/// Limit bands per parameter: the bed's patient-specific limits over the
/// site preset of the patient's category (none when nobody was admitted).
fn limits_of(
    preset: &SitePreset,
    category: Option<vigil_store::PatientCategory>,
    saved: Option<&SavedBed>,
) -> BTreeMap<Parameter, rpt::Limits> {
    use vigil_alarms::PatientCategory as C;
    let category = match (saved, category) {
        (Some(s), _) => s.alarms.category,
        (None, Some(vigil_store::PatientCategory::Adult)) => C::Adult,
        (None, Some(vigil_store::PatientCategory::Paediatric)) => C::Paediatric,
        (None, Some(vigil_store::PatientCategory::Neonatal)) => C::Neonatal,
        (None, None) => return BTreeMap::new(),
    };
    let mut out = BTreeMap::new();
    for p in Parameter::ALL {
        let l = saved
            .and_then(|s| s.alarms.overrides.get(&p))
            .or_else(|| preset.limits_for(category).get(p));
        if let Some(l) = l {
            out.insert(p, rpt::Limits { low: l.low, high: l.high });
        }
    }
    out
}

/// A stored NEWS2 score and what each parameter was computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct News2Scored {
    pub score: News2,
    pub origins: BTreeMap<News2Param, News2Origin>,
}

/// A nurse's NEWS2 entry as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NurseEntry {
    pub at: DateTime<Utc>,
    pub entry: News2Entry,
    /// The user's account id.
    pub by: String,
}

/// NEWS2 of a stay or of a bed over a range, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct News2History {
    /// Stored when the score changed, and at least once per clock hour.
    pub scores: Vec<News2Scored>,
    pub entries: Vec<NurseEntry>,
    /// Records that opened but are not a NEWS2 record this version reads.
    pub unreadable: usize,
}

/// NEWS2 scores and nurse entries of `sel` in `[from, to]`. The one place
/// reports (and the flowsheet) take NEWS2 from: the store's NEWS2 log, so a
/// past admission has its history after any restart, and an admission's is
/// found by its own tag, never the next patient's at the same bed. A record
/// that fails verification is an error (a report never shows less than was
/// recorded without saying so).
pub async fn news2_history(
    store: &Store,
    sel: Selection<'_>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<News2History, StoreError> {
    let mut h = News2History::default();
    for r in store.news2_log(sel, from, to).await? {
        match serde_json::from_value::<News2Logged>(r.record) {
            Ok(News2Logged::Score { score, origins }) => h.scores.push(News2Scored { score, origins }),
            Ok(News2Logged::Entry { entry, by }) => h.entries.push(NurseEntry { at: r.at, entry, by }),
            Err(_) => h.unreadable += 1,
        }
    }
    if h.unreadable > 0 {
        // Counts only: the records are clinical data.
        tracing::warn!(records = h.unreadable, "NEWS2 records in a form this version does not read");
    }
    Ok(h)
}

fn param_name(p: News2Param) -> &'static str {
    use vigil_alarms::News2Param as P;
    match p {
        P::RespirationRate => "RR",
        P::Spo2 => "SpO2",
        P::AirOrOxygen => "air",
        P::Systolic => "BP",
        P::Pulse => "HR",
        P::Consciousness => "ACVPU",
        P::Temperature => "T",
    }
}

/// A nurse's entry in words: "ACVPU voice", "T 38.4 °C".
pub fn entry_text(e: &News2Entry) -> String {
    match e {
        News2Entry::Consciousness(c) => format!("ACVPU {}", snake_word(c)),
        News2Entry::AirOrOxygen(a) => format!("air/oxygen {}", snake_word(a)),
        News2Entry::Spo2Scale(s) => format!("SpO2 {}", snake_word(s).replace("scale", "scale ")),
        News2Entry::RespirationRate(v) => format!("RR {v} /min"),
        News2Entry::Temperature(v) => format!("T {v} °C"),
        News2Entry::Systolic(v) => format!("BP systolic {v} mmHg"),
    }
}

/// The stored scores as the flowsheet takes them: each parameter's points
/// (a stale one's last points, marked), and whether a nurse entered it.
pub fn news2_scores(h: &News2History) -> Vec<rpt::News2Score> {
    use vigil_alarms::{Risk, SubScore};
    h.scores
        .iter()
        .map(|s| {
            let n = &s.score;
            rpt::News2Score {
                at: n.at,
                total: n.total,
                complete: n.complete,
                risk: match n.risk {
                    Risk::Low => rpt::News2Risk::Low,
                    Risk::LowMedium => rpt::News2Risk::LowMedium,
                    Risk::Medium => rpt::News2Risk::Medium,
                    Risk::High => rpt::News2Risk::High,
                },
                parts: n
                    .parameters
                    .iter()
                    .map(|p| {
                        let (points, stale) = match p.score {
                            SubScore::Scored { points } => (Some(points), false),
                            SubScore::Missing => (None, false),
                            SubScore::Stale { last_points, .. } => (Some(last_points), true),
                        };
                        rpt::News2Part {
                            label: param_name(p.parameter).into(),
                            points,
                            stale,
                            entered: s.origins.get(&p.parameter) == Some(&News2Origin::Entered),
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The nurse entries as the flowsheet takes them.
pub fn news2_notes(h: &News2History) -> Vec<rpt::News2Note> {
    h.entries
        .iter()
        .map(|e| rpt::News2Note { at: e.at, text: entry_text(&e.entry), by: e.by.clone() })
        .collect()
}

/// One row per stored score (an incomplete one as "≥ N": a lower bound;
/// entered sub-scores marked) and per nurse entry, oldest first.
fn news2_rows(h: &News2History, _tz: Tz) -> Vec<rpt::News2Row> {
    let mut rows: Vec<rpt::News2Row> = h
        .scores
        .iter()
        .map(|s| {
            let n = &s.score;
            let entered = |p| {
                if s.origins.get(&p) == Some(&News2Origin::Entered) {
                    " (entered)"
                } else {
                    ""
                }
            };
            rpt::News2Row {
                at: n.at,
                score: if n.complete {
                    n.total.to_string()
                } else {
                    format!("\u{2265} {}", n.total)
                },
                risk: snake_word(&n.risk),
                parts: n
                    .parameters
                    .iter()
                    .map(|p| match p.score {
                        vigil_alarms::SubScore::Scored { points } => {
                            format!("{} {points}{}", param_name(p.parameter), entered(p.parameter))
                        }
                        vigil_alarms::SubScore::Missing => format!("{} –", param_name(p.parameter)),
                        vigil_alarms::SubScore::Stale { last_points, .. } => {
                            format!("{} ({last_points}, stale)", param_name(p.parameter))
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" · "),
            }
        })
        .collect();
    rows.extend(h.entries.iter().map(|e| rpt::News2Row {
        at: e.at,
        score: "–".into(),
        risk: "entry".into(),
        parts: format!("entered: {} (by {})", entry_text(&e.entry), e.by),
    }));
    // An entry before the score it changed (same time).
    rows.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| (a.risk != "entry").cmp(&(b.risk != "entry"))));
    rows
}

/// A serde snake_case enum as words ("low_medium" → "low-medium").
fn snake_word<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', "-")))
        .unwrap_or_default()
}

/// Alarm starts and escalations of `parameter` (or of the bed, for alarms
/// tied to no parameter) as chart markers.
fn chart_events(events: &[AlarmEvent], parameter: Option<Parameter>) -> Vec<rpt::Event> {
    events
        .iter()
        .filter(|e| matches!(e.event, AlarmEventKind::Started { .. } | AlarmEventKind::Escalated { .. }))
        .filter(|e| {
            let of = match &e.kind {
                Some(AlarmKind::Physiological { parameter: p, .. }) => Some(*p),
                Some(AlarmKind::Technical { parameter: p, .. }) => *p,
                _ => None,
            };
            parameter.is_some() && of == parameter
        })
        .map(|e| rpt::Event {
            at: e.at,
            kind: rpt::EventKind::Alarm,
            label: e.message.clone(),
        })
        .collect()
}

/// One row per alarm: when it started, its priority, what it was, and how it
/// ended (acknowledged by whom, ended, or still active at the range's end).
fn alarm_rows(events: &[AlarmEvent], tz: Tz) -> Vec<rpt::AlarmRow> {
    let mut rows: Vec<rpt::AlarmRow> = Vec::new();
    let mut by_id: BTreeMap<u64, usize> = BTreeMap::new();
    for e in events {
        let Some(id) = e.id else { continue };
        match &e.event {
            AlarmEventKind::Started { .. } => {
                let technical = matches!(e.kind, Some(AlarmKind::Technical { .. }));
                by_id.insert(id, rows.len());
                rows.push(rpt::AlarmRow {
                    at: e.at,
                    priority: if technical {
                        format!("technical {}", e.priority.map(|p| snake_word(&p)).unwrap_or_default())
                    } else {
                        e.priority.map(|p| snake_word(&p)).unwrap_or_default()
                    },
                    message: e.message.clone(),
                    outcome: String::new(),
                });
            }
            kind => {
                let Some(&i) = by_id.get(&id) else { continue };
                // Local time, like the rest of the report.
                let at = e.at.with_timezone(&tz).format("%H:%M:%S %Z");
                let note = match kind {
                    AlarmEventKind::Escalated { .. } => {
                        format!("escalated to {} {at}", e.priority.map(|p| snake_word(&p)).unwrap_or_default())
                    }
                    AlarmEventKind::Acknowledged { user } => format!("acknowledged by {user} {at}"),
                    AlarmEventKind::Latched => format!("latched {at}"),
                    AlarmEventKind::Ended { reason } => format!("ended ({}) {at}", snake_word(reason)),
                    AlarmEventKind::Rearmed { .. } => format!("re-armed {at}"),
                    _ => continue,
                };
                let o = &mut rows[i].outcome;
                if !o.is_empty() {
                    o.push_str("; ");
                }
                o.push_str(&note);
            }
        }
    }
    rows
}

/// Devices at the bed: those assigned to it and those whose readings are in
/// the report, with the serial the device registry pinned.
async fn devices(store: &Store, bed: &str, readings: &[Reading]) -> Result<Vec<rpt::DeviceRow>, StoreError> {
    let mut rows: BTreeMap<String, rpt::DeviceRow> = BTreeMap::new();
    for d in store.devices().await?.into_iter().filter(|d| d.bed == bed) {
        let info = d.info.unwrap_or_default();
        let text = |k: &str| info.get(k).and_then(|v| v.as_str()).map(String::from);
        let serial = crate::trust::pin_from_json(&info).and_then(|p| p.serial).or_else(|| text("serial"));
        rows.insert(
            d.address.clone(),
            rpt::DeviceRow {
                kind: d.kind,
                address: d.address,
                manufacturer: text("manufacturer"),
                model: text("model"),
                serial,
            },
        );
    }
    for r in readings {
        rows.entry(r.device.clone()).or_insert_with(|| rpt::DeviceRow {
            kind: "not assigned now".into(),
            address: r.device.clone(),
            manufacturer: None,
            model: None,
            serial: None,
        });
    }
    Ok(rows.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 29, 0, 0, 0).unwrap() + Duration::seconds(s)
    }

    #[test]
    fn a_silence_of_more_than_three_typical_spacings_is_a_gap() {
        let mut times: Vec<_> = (0..60).map(|s| at(s * 5)).collect();
        times.extend((0..60).map(|s| at(1000 + s * 5)));
        let typical = typical_spacing(&times);
        assert_eq!(typical, TimeDelta::seconds(5));
        assert_eq!(find_gaps(&times, typical), vec![(at(295), at(1000))]);
        // Spot checks every 15 min with jitter are no gap.
        let spot: Vec<_> = (0..10).map(|i| at(i * 900 + (i % 3) * 30)).collect();
        assert!(find_gaps(&spot, typical_spacing(&spot)).is_empty());
        assert!(find_gaps(&[at(0)], typical_spacing(&[at(0)])).is_empty());
    }
}
