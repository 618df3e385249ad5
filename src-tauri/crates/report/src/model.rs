//! The report's input: plain data, already read and decrypted by the caller.
//! Nothing here touches a store or a clock; every time is UTC.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::flowsheet::Flowsheet;

/// Everything one printed report shows. Its `Debug` shows only the bed,
/// range and counts: the rest is clinical data and stays out of logs.
#[derive(Clone)]
pub struct Report {
    pub header: Header,
    /// The reported range, `[from, to)`.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The ward's zone: axis labels, flowsheet hours and local times use it.
    pub tz: Tz,
    /// Drawn as stacked panels on one shared time axis.
    pub charts: Vec<Chart>,
    pub flowsheet: Flowsheet,
    pub alarms: Vec<AlarmRow>,
    pub news2: Vec<News2Row>,
    pub devices: Vec<DeviceRow>,
    /// Parameters measured by more than one device in the range, each with
    /// the devices in the order they took over (printed under Devices).
    pub device_changes: Vec<DeviceChanges>,
    pub completeness: Completeness,
    pub generated_at: DateTime<Utc>,
    /// The signed-in user who asked for the report (printed in every footer).
    pub generated_by: String,
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report")
            .field("bed", &self.header.bed)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("tz", &self.tz)
            .field("charts", &self.charts.len())
            .field("flowsheet_rows", &self.flowsheet.rows.len())
            .field("alarms", &self.alarms.len())
            .field("news2", &self.news2.len())
            .field("devices", &self.devices.len())
            .finish_non_exhaustive()
    }
}

/// The first page's header.
#[derive(Debug, Clone)]
pub struct Header {
    /// Bed label, e.g. "Bed 3".
    pub bed: String,
    /// Ward or site name, printed as the report's title line.
    pub ward: String,
    /// `None`: nobody was admitted to the bed in the range ("no patient admitted").
    pub patient: Option<Patient>,
}

/// Patient identity. Printed in the PDF (that is its purpose) but kept out
/// of `Debug`, so a logged `Report` or error never carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Patient {
    pub name: String,
    pub mrn: String,
    pub dob: NaiveDate,
    /// Alarm-limit category, e.g. "Adult".
    pub category: String,
}

impl std::fmt::Debug for Patient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Patient { <redacted> }")
    }
}

/// One parameter's trend. Several charts share one time axis.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Parameter label, e.g. "SpO2".
    pub label: String,
    /// UCUM unit code, e.g. "%", "/min", "mm[Hg]".
    pub unit: String,
    /// Numeric samples in time order (unordered input is sorted before drawing).
    pub samples: Vec<(DateTime<Utc>, f64)>,
    /// Times the device sent a special value instead of a number (NaN, NRes, ...).
    pub specials: Vec<Mark>,
    pub limits: Option<Limits>,
    /// Alarms, NEWS2 scores, nurse entries, device changes.
    pub events: Vec<Event>,
    /// How often the device normally sends. A silence longer than
    /// [`crate::chart::GAP_FACTOR`] intervals is drawn as a gap, never joined
    /// (zero splits every pair: unknown cadence is never guessed as joined).
    pub expected_interval: TimeDelta,
}

/// A time with a short label (a special value: "NaN", "NRes", "+INF").
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub at: DateTime<Utc>,
    pub label: String,
}

/// An alarm-limit band; either side may be absent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub low: Option<f64>,
    pub high: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Alarm,
    News2,
    NurseEntry,
    DeviceChange,
}

/// A vertical marker on a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    /// Short: it is printed on the chart ("SpO2 low", "NEWS2 5", "probe changed").
    pub label: String,
}

/// One line of the alarm log.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRow {
    pub at: DateTime<Utc>,
    /// "high", "medium", "low", "technical".
    pub priority: String,
    /// What happened, e.g. "SpO2 low 86 % < 90 %".
    pub message: String,
    /// How it ended, e.g. "acknowledged by RN Lee 10:32"; empty if still active.
    pub outcome: String,
}

/// One NEWS2 score, or a nurse's NEWS2 entry.
#[derive(Debug, Clone, PartialEq)]
pub struct News2Row {
    pub at: DateTime<Utc>,
    /// The total as shown: "5", "≥ 3" for an incomplete score (a lower
    /// bound), "–" for a nurse's entry.
    pub score: String,
    /// "low", "low-medium", "medium", "high"; "entry" for a nurse's entry.
    pub risk: String,
    /// Sub-scores in words, e.g. "RR 2 · SpO2 1 · BP 0 · HR 1 · T 0 · ACVPU 0 · air 0",
    /// or what was entered and by whom.
    pub parts: String,
}

/// A device used at the bed in the range.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRow {
    /// "pulse oximeter", "BP cuff", ...
    pub kind: String,
    /// Bluetooth address.
    pub address: String,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
}

/// Which device measured a parameter when: "SpO2: device X from 14:05,
/// device Y from 14:32". A step in a trend may be the device, not the patient.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceChanges {
    /// The parameter's label, e.g. "SpO2".
    pub parameter: String,
    /// (from, device id as the app shows it), oldest first.
    pub devices: Vec<(DateTime<Utc>, String)>,
}

/// Whether the data in the range is whole and verified. Printed in words in
/// its own section and summarised in every footer: a gap or a chunk that
/// failed verification is stated, never silently left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completeness {
    /// Stored chunks in the range that passed verification.
    pub chunks_verified: u64,
    pub failed_chunks: Vec<FailedChunk>,
    pub gaps: Vec<Gap>,
}

/// A stored chunk whose seal did not verify; its readings are not shown.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedChunk {
    /// Series label, e.g. "SpO2 (Bed 3 oximeter)".
    pub series: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Why, in words ("authentication tag mismatch"). Never patient data.
    pub reason: String,
}

/// A silence in a series (disconnected, sensor off, gateway down).
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    pub series: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Completeness {
    /// True when every chunk verified and nothing is missing.
    pub fn is_complete(&self) -> bool {
        self.failed_chunks.is_empty() && self.gaps.is_empty()
    }

    /// The one-line statement printed in every footer.
    pub fn summary(&self) -> String {
        if self.is_complete() && self.chunks_verified == 0 {
            // Nothing stored is not the same as complete: say so plainly.
            "No stored data in this range: nothing to verify, no failures.".to_string()
        } else if self.is_complete() {
            format!(
                "Data complete and verified: {} stored chunk(s) passed verification, no gaps.",
                self.chunks_verified
            )
        } else {
            format!(
                "Data INCOMPLETE: {} gap(s), {} chunk(s) failed verification (listed under Data completeness); {} chunk(s) verified.",
                self.gaps.len(),
                self.failed_chunks.len(),
                self.chunks_verified
            )
        }
    }
}
