//! `vigil replay`: a script of device events through the live data path.
//!
//! A script is a CSV file of timed lines (device connects, disconnects and
//! GATT notifications; nurse actions: admit, discharge, acknowledge, audio
//! pause, NEWS2 entries as `news2` with payload `parameter=value`). It goes through the **same** pipeline as live devices: the bytes
//! are decoded by `vigil-gatt`, the ward and the alarm engine see them, the
//! writer stores them encrypted and the alarm log records what happened. Only
//! the source and the clock differ:
//!
//! * **Source.** [`crate::DeviceMode::Replay`] starts no device source; the
//!   driver holds the pipeline's input, the [`Feed`]. Replayed bytes are not
//!   a patient's: every device is labelled [`Source::Simulated`], so no
//!   screen, export or upload takes them for real data.
//! * **Clock.** A [`ManualClock`] starts at a fixed instant and moves only to
//!   the script's times. The pipeline's once-a-second step (stale devices,
//!   alarm condition delays, audio-pause expiry, NEWS2 every 30 s) is driven
//!   too ([`crate::pipeline::Ticks::Driven`]): at every whole second of script time
//!   the driver sends a tick, then that second's lines. Before the clock
//!   moves on, and before each nurse action, it waits at a barrier until the
//!   pipeline has handled everything sent so far, so every step sees exactly
//!   the time it belongs to and the result never depends on the machine's
//!   speed. `--speed N` only adds sleeps between steps.
//!
//! The whole script is checked before anything is applied ([`parse`], then
//! [`Script::check_admissions`] against the store's admissions): a malformed
//! line is an error naming its line number, and nothing of the script is
//! stored. A payload the decoder rejects is *not* a script error: live
//! devices send those too, and the pipeline counts and drops them.
//!
//! Errors name lines, beds, devices, event and kind names, never payload
//! bytes (they are values).

use crate::pipeline::Control;
use crate::{AdmitRequest, CoreError, Vigil};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use vigil_devices::{DeviceDescriptor, DeviceEvent, DeviceKind};
use vigil_gatt::Characteristic;
use vigil_model::{Clock, LinkState, ManualClock, Source};
use vigil_store::PatientCategory;

/// A replay's clock starts here unless `--start` says otherwise, so that an
/// event's time minus this instant is its script time.
pub const DEFAULT_START: &str = "2026-01-01T00:00:00Z";

/// [`DEFAULT_START`] as a time.
pub fn default_start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(DEFAULT_START)
        .expect("DEFAULT_START is RFC 3339")
        .to_utc()
}

/// Who acknowledges and pauses in the alarm log.
pub const USER: &str = "replay";

/// The header every script starts with.
pub const HEADER: [&str; 7] = [
    "t_ms",
    "bed",
    "device",
    "kind",
    "event",
    "characteristic",
    "payload",
];

/// Script times are at most this far from the start. The driver steps
/// through every second (a tick and a barrier each), so a month takes a few
/// seconds; far larger times are typing errors.
const MAX_T_MS: u64 = 31 * 24 * 3600 * 1000;

/// The kinds a script names, and what the ward knows them as.
const KINDS: [(&str, DeviceKind); 6] = [
    ("hr-strap", DeviceKind::HeartRateStrap),
    ("oximeter", DeviceKind::PulseOximeter),
    ("thermometer", DeviceKind::Thermometer),
    ("bp-cuff", DeviceKind::BloodPressureCuff),
    ("scale", DeviceKind::WeightScale),
    ("glucose-meter", DeviceKind::GlucoseMeter),
];

/// One line of a script.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Line number in the file (1 is the header).
    pub line: u64,
    /// Milliseconds after the replay's start.
    pub t_ms: u64,
    pub bed: String,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Connect {
        device: String,
        kind: DeviceKind,
    },
    Disconnect {
        device: String,
    },
    Notify {
        device: String,
        characteristic: Characteristic,
        bytes: Vec<u8>,
    },
    Admit(PatientCategory),
    Discharge,
    /// Acknowledges the alarms the bed displays at that moment.
    Acknowledge,
    /// Pauses the bed's alarm audio.
    Pause,
    /// A nurse's NEWS2 entry (payload `parameter=value`, e.g. `consciousness=voice`).
    News2(crate::alarming::News2Entry),
}

/// A parsed, checked script.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Script {
    pub steps: Vec<Step>,
}

/// What is wrong with a line. No payload bytes, no values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("not valid CSV ({0})")]
    Csv(String),
    #[error("the script is empty: expected the header {}", HEADER.join(","))]
    Empty,
    #[error("expected the header {}", HEADER.join(","))]
    Header,
    #[error("expected {expected} fields, found {0}", expected = HEADER.len())]
    Fields(usize),
    #[error("time '{0}' is not a whole number of milliseconds")]
    BadTime(String),
    #[error("time {0} ms is more than 31 days after the start")]
    TimeTooLate(u64),
    #[error("time {t} ms is before the previous line's {previous} ms: times must not decrease")]
    TimeDecreases { t: u64, previous: u64 },
    #[error("bed '{bed}' is not a bed of this workstation ({beds}; see --beds)")]
    UnknownBed { bed: String, beds: String },
    #[error(
        "unknown event '{0}': expected connect, disconnect, notify, admit, discharge, acknowledge, pause or news2"
    )]
    UnknownEvent(String),
    #[error("unknown device kind '{0}': expected hr-strap, oximeter, thermometer, bp-cuff, scale or glucose-meter")]
    UnknownKind(String),
    #[error("'{0}' needs a device and its kind")]
    NoDevice(&'static str),
    #[error("'{0}' is about a bed: device and kind must be empty")]
    BedEventWithDevice(&'static str),
    #[error("'{0}' takes no characteristic")]
    UnexpectedCharacteristic(&'static str),
    #[error("'{0}' takes no payload")]
    UnexpectedPayload(&'static str),
    #[error("unknown characteristic '{0}': expected a 16-bit UUID Vigil decodes, as `vigil decode` takes")]
    UnknownCharacteristic(String),
    #[error("notify needs a payload (hex bytes)")]
    NoPayload,
    #[error("the payload is not hex bytes")]
    BadHex,
    /// (The payload is not quoted: it is a value.)
    #[error("news2 needs parameter=value: consciousness=alert|new_confusion|voice|pain|unresponsive, air_or_oxygen=air|oxygen, spo2_scale=scale1|scale2, respiration_rate=N, temperature=N (°C) or systolic=N (mmHg)")]
    BadNews2Entry,
    #[error("unknown patient category '{0}': expected adult, paediatric or neonatal")]
    BadCategory(String),
    #[error("device '{0}' is already connected")]
    AlreadyConnected(String),
    #[error("device '{0}' is not connected (connect it first)")]
    NotConnected(String),
    #[error("device '{device}' was connected as {kind} at {bed}")]
    OtherDevice {
        device: String,
        bed: String,
        kind: &'static str,
    },
    #[error("{0} already has a patient admitted (discharge first)")]
    Occupied(String),
    #[error("{0} has no patient to discharge")]
    NoPatient(String),
}

/// A malformed line: `line 7: unknown event 'notfy'`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct ScriptError {
    pub line: u64,
    pub problem: Problem,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// A nurse action the core refused (the script was checked, so this is
    /// the store failing, not the script).
    #[error("line {line}: {source}")]
    Action { line: u64, source: CoreError },
    #[error("the pipeline stopped: the store writer is gone")]
    PipelineStopped,
}

fn kind_name(kind: DeviceKind) -> &'static str {
    KINDS.iter().find(|(_, k)| *k == kind).map_or("?", |(n, _)| n)
}

/// Parses and checks a whole script: CSV shape, header, times, beds (one
/// of `beds`), events, kinds, characteristics, hex payloads, and that
/// devices connect before they notify or disconnect. Admissions are
/// checked separately ([`Script::check_admissions`]): they depend on the
/// store.
pub fn parse(text: &str, beds: &[String]) -> Result<Script, ScriptError> {
    let err = |line: u64, problem| ScriptError { line, problem };
    // Line by line, so that line numbers count comments and blank lines (the
    // csv reader's do not); a field may still be quoted, within its line.
    let mut lines = text
        .strip_prefix('\u{feff}') // a byte-order mark, as spreadsheets write
        .unwrap_or(text)
        .lines()
        .zip(1u64..)
        .filter(|(l, _)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(l, n)| fields(l).map(|f| (n, f)).map_err(|e| err(n, e)));

    match lines.next() {
        None => return Err(err(1, Problem::Empty)),
        Some(r) => {
            let (n, f) = r?;
            if f.iter().ne(HEADER) {
                return Err(err(n, Problem::Header));
            }
        }
    }

    let mut steps = Vec::new();
    let mut previous = 0;
    // Device → (bed, kind, connected), to check the devices' lifecycle.
    let mut devices: BTreeMap<String, (String, DeviceKind, bool)> = BTreeMap::new();
    for r in lines {
        let (line, r) = r?;
        let e = |problem| err(line, problem);
        if r.len() != HEADER.len() {
            return Err(e(Problem::Fields(r.len())));
        }
        let [t, bed, device, kind, event, characteristic, payload] = std::array::from_fn(|i| r[i].as_str());

        let t_ms: u64 = t.parse().map_err(|_| e(Problem::BadTime(t.to_string())))?;
        if t_ms > MAX_T_MS {
            return Err(e(Problem::TimeTooLate(t_ms)));
        }
        if t_ms < previous {
            return Err(e(Problem::TimeDecreases { t: t_ms, previous }));
        }
        previous = t_ms;
        if !beds.iter().any(|b| b == bed) {
            let known = match (beds.first(), beds.last()) {
                (Some(a), Some(b)) if a != b => format!("{a} to {b}"),
                (Some(a), _) => a.clone(),
                _ => "none".into(),
            };
            return Err(e(Problem::UnknownBed {
                bed: bed.to_string(),
                beds: known,
            }));
        }

        let event: &'static str = match event {
            "connect" => "connect",
            "disconnect" => "disconnect",
            "notify" => "notify",
            "admit" => "admit",
            "discharge" => "discharge",
            "acknowledge" => "acknowledge",
            "pause" => "pause",
            "news2" => "news2",
            other => return Err(e(Problem::UnknownEvent(other.to_string()))),
        };
        let device_event = matches!(event, "connect" | "disconnect" | "notify");
        if device_event && (device.is_empty() || kind.is_empty()) {
            return Err(e(Problem::NoDevice(event)));
        }
        let names_a_device = !device.is_empty() || !kind.is_empty();
        if !device_event && names_a_device {
            return Err(e(Problem::BedEventWithDevice(event)));
        }
        if event != "notify" && !characteristic.is_empty() {
            return Err(e(Problem::UnexpectedCharacteristic(event)));
        }
        if !matches!(event, "notify" | "admit" | "news2") && !payload.is_empty() {
            return Err(e(Problem::UnexpectedPayload(event)));
        }

        let action = if device_event {
            let kind = KINDS
                .iter()
                .find(|(n, _)| *n == kind)
                .map(|(_, k)| *k)
                .ok_or_else(|| e(Problem::UnknownKind(kind.to_string())))?;
            let known = devices.get(device).cloned();
            // A device must be connected (here, as this kind) to send or drop.
            let connected_here = |known: &Option<(String, DeviceKind, bool)>| match known {
                Some((b, k, true)) if b == bed && *k == kind => Ok(()),
                Some((b, k, true)) => Err(e(Problem::OtherDevice {
                    device: device.to_string(),
                    bed: b.clone(),
                    kind: kind_name(*k),
                })),
                _ => Err(e(Problem::NotConnected(device.to_string()))),
            };
            match event {
                "connect" => {
                    if matches!(known, Some((_, _, true))) {
                        return Err(e(Problem::AlreadyConnected(device.to_string())));
                    }
                    devices.insert(device.to_string(), (bed.to_string(), kind, true));
                    Action::Connect {
                        device: device.to_string(),
                        kind,
                    }
                }
                "disconnect" => {
                    connected_here(&known)?;
                    devices.insert(device.to_string(), (bed.to_string(), kind, false));
                    Action::Disconnect {
                        device: device.to_string(),
                    }
                }
                _ => {
                    let characteristic = Characteristic::from_uuid_str(characteristic)
                        .map_err(|_| e(Problem::UnknownCharacteristic(characteristic.to_string())))?;
                    if payload.is_empty() {
                        return Err(e(Problem::NoPayload));
                    }
                    // parse_hex's own error quotes the payload: a value.
                    let bytes = vigil_gatt::parse_hex(payload).map_err(|_| e(Problem::BadHex))?;
                    connected_here(&known)?;
                    Action::Notify {
                        device: device.to_string(),
                        characteristic,
                        bytes,
                    }
                }
            }
        } else {
            match event {
                "admit" => Action::Admit(match payload {
                    "adult" => PatientCategory::Adult,
                    "paediatric" => PatientCategory::Paediatric,
                    "neonatal" => PatientCategory::Neonatal,
                    other => return Err(e(Problem::BadCategory(other.to_string()))),
                }),
                "discharge" => Action::Discharge,
                "acknowledge" => Action::Acknowledge,
                "news2" => Action::News2(news2_entry(payload).ok_or_else(|| e(Problem::BadNews2Entry))?),
                _ => Action::Pause,
            }
        };
        steps.push(Step {
            line,
            t_ms,
            bed: bed.to_string(),
            action,
        });
    }
    Ok(Script { steps })
}

/// A script's NEWS2 entry, `parameter=value`, as the screen sends it.
fn news2_entry(payload: &str) -> Option<crate::alarming::News2Entry> {
    let (parameter, value) = payload.split_once('=')?;
    let value = match value.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => serde_json::json!(v),
        Ok(_) => return None,
        Err(_) => serde_json::json!(value.trim()),
    };
    serde_json::from_value(serde_json::json!({"parameter": parameter.trim(), "value": value})).ok()
}

/// One line's fields, trimmed.
fn fields(line: &str) -> Result<Vec<String>, Problem> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(line.as_bytes());
    match reader.records().next() {
        Some(Ok(r)) => Ok(r.iter().map(String::from).collect()),
        Some(Err(e)) => Err(Problem::Csv(e.to_string())),
        None => Ok(Vec::new()),
    }
}

impl Script {
    /// Checks admits and discharges against the beds `admitted` at the start
    /// (from the store): no admit to an occupied bed, no discharge of an
    /// empty one. Run before anything is applied.
    pub fn check_admissions(&self, admitted: &BTreeSet<String>) -> Result<(), ScriptError> {
        let mut admitted = admitted.clone();
        for s in &self.steps {
            let problem = match s.action {
                Action::Admit(_) if !admitted.insert(s.bed.clone()) => Problem::Occupied(s.bed.clone()),
                Action::Discharge if !admitted.remove(&s.bed) => Problem::NoPatient(s.bed.clone()),
                _ => continue,
            };
            return Err(ScriptError {
                line: s.line,
                problem,
            });
        }
        Ok(())
    }

    /// The last line's time: how long the script runs.
    pub fn duration_ms(&self) -> u64 {
        self.steps.last().map_or(0, |s| s.t_ms)
    }
}

/// The pipeline's input in [`crate::DeviceMode::Replay`]: device events, ticks
/// and barriers, in the order sent (see [`Control`]). Dropping it
/// ends the pipeline.
pub struct Feed {
    events: mpsc::Sender<DeviceEvent>,
    control: mpsc::Sender<Control>,
}

impl Feed {
    pub(crate) fn new(events: mpsc::Sender<DeviceEvent>, control: mpsc::Sender<Control>) -> Self {
        Feed { events, control }
    }

    /// Sends a device event (awaited when the pipeline is busy, as live
    /// sources are).
    pub async fn send(&self, ev: DeviceEvent) -> Result<(), ReplayError> {
        self.events
            .send(ev)
            .await
            .map_err(|_| ReplayError::PipelineStopped)
    }

    /// Runs the pipeline's once-a-second step at the clock's time.
    pub async fn tick(&self) -> Result<(), ReplayError> {
        self.control
            .send(Control::Tick)
            .await
            .map_err(|_| ReplayError::PipelineStopped)
    }

    /// Returns once the pipeline has handled everything sent before.
    pub async fn barrier(&self) -> Result<(), ReplayError> {
        let (done, handled) = oneshot::channel();
        self.control
            .send(Control::Barrier(done))
            .await
            .map_err(|_| ReplayError::PipelineStopped)?;
        handled.await.map_err(|_| ReplayError::PipelineStopped)
    }
}

/// Moves script time: barrier, optional real-time pacing, clock.
struct Driver<'a> {
    feed: Feed,
    clock: &'a ManualClock,
    start: DateTime<Utc>,
    now_ms: u64,
    /// `--speed N`: (when the replay started, N).
    pace: Option<(tokio::time::Instant, f64)>,
}

impl Driver<'_> {
    async fn advance(&mut self, to_ms: u64) -> Result<(), ReplayError> {
        if to_ms == self.now_ms {
            return Ok(());
        }
        // What happened at the old time is handled at the old time.
        self.feed.barrier().await?;
        if let Some((started, speed)) = self.pace {
            tokio::time::sleep_until(started + Duration::from_millis(to_ms).div_f64(speed)).await;
        }
        self.clock
            .set(self.start + chrono::Duration::milliseconds(to_ms as i64));
        self.now_ms = to_ms;
        Ok(())
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// Synthetic identity for a replayed admission: only the category matters
/// (it chooses the alarm limits). The date of birth is fixed and in the past.
fn admit_request(bed: &str, category: PatientCategory) -> AdmitRequest {
    let (category, born) = match category {
        PatientCategory::Adult => ("adult", "1970-01-01"),
        PatientCategory::Paediatric => ("paediatric", "2018-01-01"),
        PatientCategory::Neonatal => ("neonatal", "2025-12-31"),
    };
    AdmitRequest {
        bed: bed.to_string(),
        display_name: format!("Replay patient {bed}"),
        mrn: format!("REPLAY-{bed}"),
        date_of_birth: born.to_string(),
        category: category.to_string(),
    }
}

/// Acknowledges the alarms `bed` displays now, as a nurse at the screen would.
async fn acknowledge_displayed(vigil: &Vigil, bed: &str) -> Result<(), CoreError> {
    let displayed: Vec<u64> = vigil
        .snapshot()
        .alarms
        .into_iter()
        .filter(|s| s.bed == bed)
        .flat_map(|s| s.active.into_iter().map(|a| a.id))
        .collect();
    vigil.acknowledge(bed, &displayed, USER).await?;
    Ok(())
}

/// Replays a checked script through `vigil` (started in
/// [`crate::DeviceMode::Replay`] with `clock` as its clock), then waits until
/// the pipeline has handled every line and lets the feed go. Script time 0 is
/// the clock's time when this starts. `speed`: `None` as fast as possible,
/// `Some(1.0)` real time. Returns the number of lines applied.
pub async fn run(
    vigil: &Vigil,
    feed: Feed,
    clock: &ManualClock,
    script: &Script,
    speed: Option<f64>,
) -> Result<usize, ReplayError> {
    let mut d = Driver {
        feed,
        clock,
        start: clock.now(),
        now_ms: 0,
        pace: speed.map(|s| (tokio::time::Instant::now(), s)),
    };
    // Devices the ward knows, with the bed and kind they were attached as.
    let mut attached: BTreeMap<String, (String, DeviceKind)> = BTreeMap::new();
    let mut next_tick_ms = 0;
    for step in &script.steps {
        // Each whole second up to this line's time: the tick first, then
        // that second's lines.
        while next_tick_ms <= step.t_ms {
            d.advance(next_tick_ms).await?;
            d.feed.tick().await?;
            next_tick_ms += 1000;
        }
        d.advance(step.t_ms).await?;
        let action_err = |source| ReplayError::Action {
            line: step.line,
            source,
        };
        match &step.action {
            Action::Connect { device, kind } => {
                let place = (step.bed.clone(), *kind);
                if attached.get(device) != Some(&place) {
                    // New here (or moved to another bed): as an assigned
                    // device appears, with its kind's expected interval.
                    d.feed
                        .send(DeviceEvent::Attached(DeviceDescriptor {
                            bed: step.bed.clone(),
                            device: device.clone(),
                            kind: *kind,
                            source: Source::Simulated,
                            expected_interval: vigil_devices::ble::expected_interval(*kind),
                        }))
                        .await?;
                    attached.insert(device.clone(), place);
                }
                d.feed.send(link(device, LinkState::Connected, d.now())).await?;
            }
            Action::Disconnect { device } => {
                d.feed
                    .send(link(device, LinkState::Disconnected, d.now()))
                    .await?;
            }
            Action::Notify {
                device,
                characteristic,
                bytes,
            } => {
                d.feed
                    .send(DeviceEvent::Payload {
                        device: device.clone(),
                        characteristic: *characteristic,
                        bytes: bytes.clone(),
                        received: d.now(),
                    })
                    .await?;
            }
            // Nurse actions see the ward as it is at this moment.
            Action::Admit(category) => {
                d.feed.barrier().await?;
                vigil
                    .admit(admit_request(&step.bed, *category))
                    .await
                    .map_err(action_err)?;
            }
            Action::Discharge => {
                d.feed.barrier().await?;
                vigil.discharge(&step.bed).await.map_err(action_err)?;
            }
            Action::Acknowledge => {
                d.feed.barrier().await?;
                acknowledge_displayed(vigil, &step.bed)
                    .await
                    .map_err(action_err)?;
            }
            Action::Pause => {
                d.feed.barrier().await?;
                vigil.pause_audio(&step.bed, USER).await.map_err(action_err)?;
            }
            Action::News2(entry) => {
                d.feed.barrier().await?;
                vigil
                    .enter_news2(&step.bed, entry.clone(), USER)
                    .await
                    .map_err(action_err)?;
            }
        }
    }
    // Everything handled: its readings are with the writer and its alarm
    // events with the alarm log, which `Vigil::shutdown` then commits.
    d.feed.barrier().await?;
    Ok(script.steps.len())
}

fn link(device: &str, state: LinkState, at: DateTime<Utc>) -> DeviceEvent {
    DeviceEvent::Link {
        device: device.to_string(),
        state,
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beds() -> Vec<String> {
        (1..=4).map(|i| format!("bed-{i}")).collect()
    }

    const HEAD: &str = "t_ms,bed,device,kind,event,characteristic,payload\n";

    fn fails(body: &str) -> ScriptError {
        parse(&format!("{HEAD}{body}"), &beds()).unwrap_err()
    }

    #[test]
    fn a_well_formed_script_parses_with_its_line_numbers() {
        let s = parse(
            &format!(
                "\u{feff}{HEAD}# an oximeter\n\n0,bed-1,oxi-1,oximeter,connect,,\n\
                 1000, bed-1 ,oxi-1,oximeter,notify,2A5F,00 61 00 48 00\n\
                 1000,bed-1,,,admit,,neonatal\n2000,bed-1,,,acknowledge,,\n\
                 2000,bed-1,,,pause,,\n3000,bed-1,oxi-1,oximeter,disconnect,,\n\
                 3000,bed-1,,,discharge,,\n"
            ),
            &beds(),
        )
        .unwrap();
        assert_eq!(s.steps.len(), 7);
        assert_eq!(s.steps[0].line, 4, "comment and blank lines count");
        assert_eq!(
            s.steps[1].action,
            Action::Notify {
                device: "oxi-1".into(),
                characteristic: Characteristic::from_uuid_str("2A5F").unwrap(),
                bytes: vec![0, 0x61, 0, 0x48, 0],
            }
        );
        assert_eq!(s.steps[1].bed, "bed-1", "fields are trimmed");
        assert_eq!(s.steps[2].action, Action::Admit(PatientCategory::Neonatal));
        assert_eq!(s.duration_ms(), 3000);
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let c = "0,bed-1,oxi-1,oximeter,connect,,\n";
        let cases: Vec<(String, u64, &str)> = vec![
            (
                format!("{c}1000,bed-1,oxi-1,oximeter,notfy,,"),
                3,
                "unknown event 'notfy'",
            ),
            (
                format!("{c}1000,bed-1,oxi-1,oximeter,notify,2A5F,00 zz"),
                3,
                "not hex",
            ),
            (
                format!("{c}1000,bed-1,oxi-1,oximeter,notify,2A5F,"),
                3,
                "needs a payload",
            ),
            (
                format!("{c}1000,bed-1,oxi-1,oximeter,notify,2A99,00"),
                3,
                "unknown characteristic",
            ),
            (format!("{c}1000,bed-1,oxi-1"), 3, "expected 7 fields, found 3"),
            (
                format!("1000,{}", &c[2..]) + "500,bed-1,,,pause,,",
                3,
                "before the previous",
            ),
            (format!("{c}x,bed-1,,,pause,,"), 3, "milliseconds"),
            ("0,bed-9,,,pause,,".into(), 2, "bed-1 to bed-4"),
            (
                "0,bed-1,oxi-1,pump,connect,,".into(),
                2,
                "unknown device kind 'pump'",
            ),
            ("0,bed-1,oxi-1,oximeter,notify,2A5F,00".into(), 2, "not connected"),
            (
                format!("{c}1,bed-1,oxi-1,oximeter,connect,,"),
                3,
                "already connected",
            ),
            (
                format!("{c}1,bed-2,oxi-1,oximeter,disconnect,,"),
                3,
                "connected as oximeter at bed-1",
            ),
            ("0,bed-1,,,admit,,elderly".into(), 2, "unknown patient category"),
            (
                "0,bed-1,oxi-1,oximeter,pause,,".into(),
                2,
                "device and kind must be empty",
            ),
            (
                "0,bed-1,oxi-1,oximeter,connect,2A5F,".into(),
                2,
                "takes no characteristic",
            ),
            ("0,bed-1,,,discharge,,x".into(), 2, "takes no payload"),
            ("0,bed-1,,,news2,,".into(), 2, "news2 needs parameter=value"),
            ("0,bed-1,,,news2,,temperature=NaN".into(), 2, "news2 needs parameter=value"),
            ("0,bed-1,,,news2,,mood=happy".into(), 2, "news2 needs parameter=value"),
            ("99999999999999,bed-1,,,pause,,".into(), 2, "31 days"),
            ("0,bed-1,,\"unterminated,pause,,".into(), 2, "fields"),
        ];
        for (body, line, want) in cases {
            let e = fails(&body);
            assert_eq!(e.line, line, "{body}: {e}");
            assert!(e.to_string().contains(want), "{body}: {e}");
        }
        let e = parse("t_ms,bed\n", &beds()).unwrap_err();
        assert_eq!((e.line, e.problem), (1, Problem::Header));
        assert_eq!(parse("# nothing\n", &beds()).unwrap_err().problem, Problem::Empty);
    }

    #[test]
    fn a_nurses_news2_entry_is_a_bed_line_and_its_value_is_never_quoted() {
        let s = parse(
            &format!("{HEAD}0,bed-1,,,news2,,consciousness=voice\n1000,bed-1,,,news2,,temperature = 38.4\n"),
            &beds(),
        )
        .unwrap();
        use crate::alarming::News2Entry as E;
        assert_eq!(s.steps[0].action, Action::News2(E::Consciousness(vigil_alarms::Consciousness::Voice)));
        assert_eq!(s.steps[1].action, Action::News2(E::Temperature(38.4)));
        let e = fails("0,bed-1,,,news2,,consciousness=drowsy");
        assert!(!e.to_string().contains("drowsy"), "{e}");
        let e = fails("0,bed-1,,,news2,,temperature=38.4x");
        assert!(!e.to_string().contains("38.4x"), "{e}");
    }

    #[test]
    fn errors_never_quote_payload_bytes() {
        let e = fails("0,bed-1,oxi-1,oximeter,connect,,\n1,bed-1,oxi-1,oximeter,notify,2A5F,00 5Q 00");
        assert!(!e.to_string().contains("5Q"), "{e}");
    }

    #[test]
    fn admissions_are_checked_against_the_store() {
        let s = parse(
            &format!("{HEAD}0,bed-1,,,admit,,adult\n5,bed-1,,,discharge,,\n6,bed-2,,,discharge,,\n"),
            &beds(),
        )
        .unwrap();
        let e = s.check_admissions(&BTreeSet::new()).unwrap_err();
        assert_eq!((e.line, e.problem), (4, Problem::NoPatient("bed-2".into())));
        let e = s
            .check_admissions(&["bed-1".to_string()].into_iter().collect())
            .unwrap_err();
        assert_eq!((e.line, e.problem), (2, Problem::Occupied("bed-1".into())));
        let ok = parse(&format!("{HEAD}0,bed-2,,,discharge,,\n"), &beds()).unwrap();
        assert!(ok
            .check_admissions(&["bed-2".to_string()].into_iter().collect())
            .is_ok());
    }
}
