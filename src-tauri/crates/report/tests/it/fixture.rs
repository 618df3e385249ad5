//! A report with known values: Europe/London across the spring clock change
//! (2026-03-29 01:00 UTC), a 90-minute gap in HR and SpO2, specials, events,
//! enough alarms to fill more than a page, and one chunk that failed verification.

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::London;
use vigil_report::*;

pub const NAME: &str = "O'Brien & Sons, Mary-Jane";
pub const MRN: &str = "MRN-0048213";
pub const SERIAL: &str = "SN-PX-77120";

pub fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

pub fn from() -> DateTime<Utc> {
    utc(2026, 3, 28, 18, 0)
}
pub fn to() -> DateTime<Utc> {
    utc(2026, 3, 29, 12, 0)
}
/// HR and SpO2 are silent in [GAP_FROM, GAP_TO).
pub fn gap_from() -> DateTime<Utc> {
    utc(2026, 3, 29, 4, 0)
}
pub fn gap_to() -> DateTime<Utc> {
    utc(2026, 3, 29, 5, 30)
}

/// One sample a minute over the range except in the gap; `f(minutes since from)`.
pub fn minutely(f: impl Fn(i64) -> f64) -> Vec<(DateTime<Utc>, f64)> {
    let mut out = Vec::new();
    let mut t = from();
    while t < to() {
        if !(t >= gap_from() && t < gap_to()) {
            out.push((t, f((t - from()).num_minutes())));
        }
        t += TimeDelta::minutes(1);
    }
    out
}

/// HR = 60 + the UTC hour's index in the range, so each hour's median is known.
pub fn hr() -> Vec<(DateTime<Utc>, f64)> {
    minutely(|m| 60.0 + (m / 60) as f64)
}

pub fn spo2() -> Vec<(DateTime<Utc>, f64)> {
    minutely(|m| if m % 90 < 5 { 88.0 } else { 96.0 })
}

pub fn charts() -> Vec<Chart> {
    vec![
        Chart {
            label: "HR".into(),
            unit: "/min".into(),
            samples: hr(),
            specials: vec![],
            limits: Some(Limits {
                low: Some(50.0),
                high: Some(120.0),
            }),
            events: vec![
                Event {
                    at: utc(2026, 3, 28, 21, 0),
                    kind: EventKind::NurseEntry,
                    label: "obs".into(),
                },
                Event {
                    at: gap_to(),
                    kind: EventKind::DeviceChange,
                    label: "reconnected".into(),
                },
            ],
            expected_interval: TimeDelta::minutes(1),
        },
        Chart {
            label: "SpO2".into(),
            unit: "%".into(),
            samples: spo2(),
            specials: vec![
                Mark {
                    at: utc(2026, 3, 29, 2, 10),
                    label: "NaN".into(),
                },
                Mark {
                    at: utc(2026, 3, 29, 7, 45),
                    label: "NRes".into(),
                },
            ],
            limits: Some(Limits {
                low: Some(90.0),
                high: None,
            }),
            events: vec![
                Event {
                    at: utc(2026, 3, 29, 3, 0),
                    kind: EventKind::Alarm,
                    label: "SpO2 low".into(),
                },
                Event {
                    at: utc(2026, 3, 29, 3, 32),
                    kind: EventKind::DeviceChange,
                    label: "SpO2: device changed to ble-<b>spare</b>&".into(),
                },
            ],
            expected_interval: TimeDelta::minutes(1),
        },
        Chart {
            label: "Temp".into(),
            unit: "Cel".into(),
            samples: (0..5)
                .map(|i| (from() + TimeDelta::hours(4 * i), 36.8 + 0.1 * i as f64))
                .collect(),
            specials: vec![],
            limits: Some(Limits {
                low: Some(36.0),
                high: Some(38.0),
            }),
            events: vec![Event {
                at: utc(2026, 3, 29, 6, 0),
                kind: EventKind::News2,
                label: "NEWS2 3".into(),
            }],
            expected_interval: TimeDelta::hours(4),
        },
    ]
}

/// NEWS2 parts in chart order: (label, points, stale, entered); points `None`: missing.
fn parts(p: [(Option<u8>, bool, bool); 7]) -> Vec<News2Part> {
    ["RR", "SpO2", "air", "BP", "HR", "ACVPU", "T"]
        .iter()
        .zip(p)
        .map(|(label, (points, stale, entered))| News2Part {
            label: (*label).into(),
            points,
            stale,
            entered,
        })
        .collect()
}

const S: (Option<u8>, bool, bool) = (Some(0), false, false);

/// The hour the NEWS2 cells are checked in: 06:00 UTC, 07:00 BST on the
/// day the clocks went forward.
pub fn news2_hour() -> DateTime<Utc> {
    utc(2026, 3, 29, 6, 0)
}

/// Recorded scores: at 22:00 UTC an incomplete one (BP missing, HR stale);
/// in the checked hour a 3 with a single 3 (low-medium risk, BP entered by a
/// nurse), then a 4 of low risk: the flowsheet shows the 3, the higher
/// clinical response (RCP NEWS2 2017, chart 2), with its own parts.
pub fn news2_scores() -> Vec<News2Score> {
    vec![
        News2Score {
            at: utc(2026, 3, 28, 22, 0),
            total: 1,
            complete: false,
            risk: News2Risk::Low,
            parts: parts([
                S,
                (Some(1), false, false),
                S,
                (None, false, false),
                (Some(1), true, false),
                S,
                S,
            ]),
        },
        News2Score {
            at: news2_hour() + TimeDelta::minutes(5),
            total: 3,
            complete: true,
            risk: News2Risk::LowMedium,
            parts: parts([
                S,
                (Some(3), false, false),
                S,
                (Some(0), false, true),
                S,
                (Some(0), false, true),
                S,
            ]),
        },
        News2Score {
            at: news2_hour() + TimeDelta::minutes(40),
            total: 4,
            complete: true,
            risk: News2Risk::Low,
            parts: parts([
                (Some(1), false, false),
                (Some(2), false, false),
                S,
                S,
                (Some(1), false, false),
                S,
                S,
            ]),
        },
    ]
}

pub fn news2_notes() -> Vec<News2Note> {
    vec![
        News2Note {
            at: news2_hour() + TimeDelta::minutes(2),
            text: "BP systolic 118 mmHg".into(),
            by: "rn.okafor".into(),
        },
        News2Note {
            at: news2_hour() + TimeDelta::minutes(3),
            text: "ACVPU alert".into(),
            by: "rn.okafor".into(),
        },
    ]
}

pub fn report() -> Report {
    let charts = charts();
    let inputs: Vec<FlowInput> = charts
        .iter()
        .map(|c| FlowInput {
            label: c.label.clone(),
            unit: c.unit.clone(),
            samples: c.samples.clone(),
        })
        .collect();
    let alarms = (0..70)
        .map(|i| AlarmRow {
            at: from() + TimeDelta::minutes(13 * i),
            priority: if i % 3 == 0 { "high" } else { "medium" }.into(),
            message: format!("SpO2 low {} % < 90 %", 80 + i % 9),
            outcome: if i % 2 == 0 {
                "acknowledged by RN Okafor".into()
            } else {
                "ended: condition cleared".into()
            },
        })
        .collect();
    Report {
        header: Header {
            bed: "Bed 3".into(),
            ward: "Ward 7B, St Elsewhere".into(),
            patient: Some(Patient {
                name: NAME.into(),
                mrn: MRN.into(),
                dob: NaiveDate::from_ymd_opt(1948, 2, 29).unwrap(),
                category: "Adult".into(),
            }),
        },
        from: from(),
        to: to(),
        tz: London,
        flowsheet: Flowsheet::build(from(), to(), London, &inputs).with_news2(
            from(),
            to(),
            &news2_scores(),
            &news2_notes(),
        ),
        charts,
        alarms,
        news2: vec![
            News2Row {
                at: utc(2026, 3, 28, 22, 0),
                score: "1".into(),
                risk: "low".into(),
                parts: "RR 0 · SpO2 1 · HR 0".into(),
            },
            News2Row {
                at: utc(2026, 3, 29, 6, 5),
                score: "3".into(),
                risk: "low-medium".into(),
                parts: "RR 0 · SpO2 3 · air 0 · BP 0 (entered) · HR 0 · ACVPU 0 (entered) · T 0".into(),
            },
            News2Row {
                at: utc(2026, 3, 29, 6, 40),
                score: "4".into(),
                risk: "low".into(),
                parts: "RR 1 · SpO2 2 · air 0 · BP 0 · HR 1 · ACVPU 0 · T 0".into(),
            },
        ],
        devices: vec![
            DeviceRow {
                kind: "pulse oximeter".into(),
                address: "C4:7C:8D:6A:11:02".into(),
                manufacturer: Some("Nonin".into()),
                model: Some("3230".into()),
                serial: Some(SERIAL.into()),
            },
            DeviceRow {
                kind: "thermometer".into(),
                address: "A0:11:22:33:44:55".into(),
                manufacturer: None,
                model: None,
                serial: None,
            },
        ],
        device_changes: vec![DeviceChanges {
            parameter: "SpO2".into(),
            // A BLE peer names itself: markup in its id is text.
            devices: vec![
                (from(), "ble-C4:7C:8D:6A:11:02".into()),
                (utc(2026, 3, 29, 3, 32), "ble-<b>spare</b>&".into()),
            ],
        }],
        completeness: Completeness {
            chunks_verified: 41,
            failed_chunks: vec![FailedChunk {
                series: "SpO2".into(),
                from: utc(2026, 3, 29, 9, 0),
                to: utc(2026, 3, 29, 9, 10),
                reason: "authentication tag mismatch".into(),
            }],
            gaps: vec![Gap {
                series: "HR, SpO2".into(),
                from: gap_from(),
                to: gap_to(),
            }],
        },
        generated_at: utc(2026, 3, 29, 12, 5),
        generated_by: "RN Okafor".into(),
    }
}

/// A report for an empty bed with no samples at all.
pub fn empty_report() -> Report {
    let mut r = report();
    r.header.patient = None;
    for c in &mut r.charts {
        c.samples.clear();
        c.specials.clear();
        c.events.clear();
    }
    r.flowsheet = Flowsheet::build(from(), to(), London, &[]);
    r.alarms.clear();
    r.news2.clear();
    r.devices.clear();
    r.device_changes.clear();
    r.completeness = Completeness {
        chunks_verified: 0,
        failed_chunks: vec![],
        gaps: vec![],
    };
    r
}
