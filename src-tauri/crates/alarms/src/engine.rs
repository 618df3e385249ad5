//! The IEC 60601-1-8 alarm state machine, one per bed.
//!
//! Inputs are readings, technical conditions, NEWS2 scores, clock ticks and
//! operator actions, each with the caller's `now`; outputs are
//! [`AlarmEvent`]s (for the screen, the central station and the encrypted
//! alarm log, IEC 60601-1-8 §6.12) and a [`BedAlarmState`] snapshot.
//!
//! # Behaviour
//!
//! **Conditions.** A physiological condition exists while the latest numeric
//! value of a parameter is strictly beyond a limit (`v < low`, `v > high`; at
//! the limit is in range). Low and high are separate conditions. Only
//! `Value::Number` counts: a special value (NaN, NRes, ±INF), and a number the
//! device itself marked invalid (`Quality::Invalid`: sensor disconnected,
//! strip error, …), is never compared with a limit. It is **unknown, not in range**: it neither starts,
//! cancels nor ends a condition (oximeters send invalid samples exactly when
//! perfusion is poor, so a NaN must never silence a desaturation). A
//! parameter that has sent only special values for the preset's
//! `no_valid_value` time is a technical alarm ([`TechnicalKind::NoValidMeasurement`],
//! "SpO2 — no valid measurement"); while it stands, alarms of that parameter
//! show no current value (the old number is not current). Values in another
//! unit are converted (°F, kPa) or, if unknown, ignored. A reading measured
//! before the parameter's newest one (a late packet) changes nothing.
//!
//! **Current values.** A valid value is current for its staleness window
//! (passed with the reading: the device's expected interval plus slack). A
//! value past its window neither begins nor ends a condition (e.g. after a
//! limit change), but a condition it already began still completes its delay:
//! only a valid in-range value, or the device's loss (sensor off, no data,
//! disconnected — a technical alarm then replaces it), cancels it.
//!
//! **Condition delay** (§6.4.1). The value must stay beyond the limit for the
//! limit's `delay` (measured with the engine's `now`) before the alarm starts;
//! a valid value back in range resets it. Starts happen on the reading or
//! tick at which the delay has elapsed. Delay 0 starts on the reading itself.
//!
//! **Priority and escalation.** A condition starts at the limit's priority,
//! or [`Priority::High`] if the value is beyond the critical limit. While it
//! lasts, crossing the critical limit escalates it to high
//! ([`AlarmEventKind::Escalated`]); priority never falls during a condition.
//!
//! **Ending and latching** (§6.10). When the condition ends, a non-latching
//! alarm ends ([`AlarmEventKind::Ended`]). A high-priority alarm that has not
//! been acknowledged *latches* ([`AlarmEventKind::Latched`]): it stays shown
//! (visual latching; its sound stops with the condition) until acknowledged,
//! then ends. `Ended` means "no longer shown" and happens at most once per
//! alarm id; ids are unique per condition and never reused. When the same
//! condition comes back while its alarm is still latched, the new alarm (of
//! no lower priority) takes its place ([`EndReason::Recurred`]) and counts the
//! unacknowledged episodes ([`ActiveAlarm::recurred`]): one entry per
//! condition, however often it recurs unattended.
//!
//! **Acknowledge** (§6.8, "acknowledged"). An acknowledgement names the
//! alarms the nurse saw ([`AckTarget::Ids`]): an alarm that started after the
//! screen was drawn is never acknowledged by it. Acknowledging an alarm whose
//! condition still exists silences its audio; it stays shown and ends
//! normally when the condition ends (no latch, someone has responded). The
//! acknowledgement is **bounded**: it expires after the preset's
//! `ack_reminder` while the condition persists, and it is withdrawn at once
//! when the condition worsens — escalation, a physiological value a further
//! [`Parameter::rearm_step`] beyond the value acknowledged, or any rise of the
//! NEWS2 total ([`AlarmEventKind::Rearmed`]). Acknowledging a latched alarm
//! ends it. Acknowledging an already-acknowledged alarm does nothing.
//!
//! **Audio paused** (§6.8). Per bed, time-limited (the preset's
//! `audio_pause`, default 2 min): alarms stay shown but are silent until the
//! pause expires, is cancelled, or is broken through. Expiry is checked on
//! every call and by [`AlarmEngine::tick`]; a pause is never extended except
//! by a new explicit operator pause. A new condition, or an escalation,
//! breaks through and ends the pause when it is of high priority, or of a
//! priority higher than every alarm that was *audible* when the pause began
//! (acknowledged and latched alarms, which did not sound, do not count: an
//! acknowledged high "store failing" must not hold back a new desaturation).
//!
//! **Technical alarms** (sensor off, no data, disconnected, low battery,
//! store or delivery failure) start immediately when reported active (the
//! reporter's watchdog is the delay) with the preset's priority, and end when
//! reported inactive. Each report of sensor off / no data / disconnected also
//! invalidates the device's measurements: pending conditions from it are cancelled and its
//! active physiological alarms end (reason `measurement_invalid`; a
//! high-priority one latches): the technical alarm replaces them. While such
//! a condition stands, readings from that device are not alarmed on. The
//! caller identifies a device by the same id its readings carry.
//!
//! **Limits.** Each bed has a category (beds never set are `adult`) whose
//! preset limits apply unless a patient-specific override is set.
//! [`AlarmEngine::discharge`] removes overrides, ends every physiological and
//! NEWS2 alarm, cancels any pause and forgets NEWS2 history; the category
//! stays. Technical alarms whose condition still exists stay: a device that
//! is still disconnected is still disconnected for the next patient. After a limit or
//! category change, the parameter is re-evaluated with its latest value at
//! the next [`AlarmEngine::tick`] or reading.
//!
//! **PHI.** [`AlarmEvent::message`], [`ActiveAlarm::message`] and the value
//! fields carry measured values: they are for the screen and the encrypted
//! alarm log, never for `tracing` logs or errors.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use vigil_model::{BedId, DeviceId, Reading};

use crate::limits::{
    Limit, LimitError, LimitSet, Parameter, PatientCategory, Priority, Signal, SitePreset, TechnicalKind,
};
use crate::news2::{News2, News2Tracker};

/// Which side of the limits a physiological condition is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Direction {
    Low,
    High,
}

impl Direction {
    fn beyond(self, v: f64, limit: f64) -> bool {
        match self {
            Direction::Low => v < limit,
            Direction::High => v > limit,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Direction::Low => "low",
            Direction::High => "high",
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Direction::Low => "<",
            Direction::High => ">",
        }
    }
}

/// What an alarm is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case", tag = "type")]
#[ts(export)]
pub enum AlarmKind {
    Physiological {
        parameter: Parameter,
        direction: Direction,
    },
    Technical {
        device: DeviceId,
        kind: TechnicalKind,
        /// The parameter concerned ([`TechnicalKind::NoValidMeasurement`]).
        parameter: Option<Parameter>,
    },
    /// The NEWS2 risk band rose to one with an alarm priority.
    News2,
}

impl AlarmKind {
    /// A short title without values ("SpO2 low", "strap-1 sensor off", "NEWS2").
    pub fn title(&self) -> String {
        match self {
            AlarmKind::Physiological { parameter, direction } => {
                format!("{} {}", parameter.label(), direction.as_str())
            }
            AlarmKind::Technical {
                parameter: Some(p),
                kind,
                ..
            } => format!("{} \u{2014} {}", p.label(), kind.describe()),
            AlarmKind::Technical { device, kind, .. } => format!("{device} {}", kind.describe()),
            AlarmKind::News2 => "NEWS2".into(),
        }
    }
}

/// Why an alarm stopped being shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum EndReason {
    /// The condition ended (non-latching or already acknowledged).
    ConditionEnded,
    /// A latched alarm was acknowledged.
    Acknowledged,
    /// The device's measurement became invalid (sensor off, no data, disconnected).
    MeasurementInvalid,
    Discharged,
    /// Latched and unacknowledged when its condition came back: the new alarm, which
    /// sounds, takes its place and counts it ([`ActiveAlarm::recurred`]).
    Recurred,
}

/// Why a bed's audio pause ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case", tag = "type")]
#[ts(export)]
pub enum ResumeReason {
    Expired,
    /// A condition of higher priority than the paused ones started or escalated.
    Breakthrough {
        alarm: u64,
        priority: Priority,
    },
    Operator {
        user: String,
    },
    Discharged,
}

/// Why an acknowledged alarm sounds again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case", tag = "type")]
#[ts(export)]
pub enum RearmReason {
    /// The condition has persisted for the preset's `ack_reminder` since it was acknowledged.
    Reminder,
    /// The condition worsened since it was acknowledged (value, or NEWS2 total).
    Worsened { from: Option<f64>, to: Option<f64> },
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case", tag = "type")]
#[ts(export)]
pub enum AlarmEventKind {
    /// Alarm signal generation began. `limit` is the limit crossed (the
    /// critical limit if it started beyond it).
    Started {
        value: Option<f64>,
        limit: Option<f64>,
    },
    /// Priority rose (to `priority` of the event) from `from`.
    Escalated {
        from: Priority,
        value: Option<f64>,
        limit: Option<f64>,
    },
    /// The condition ended but the alarm stays shown until acknowledged.
    Latched,
    /// The alarm is no longer shown. At most once per id.
    Ended {
        reason: EndReason,
    },
    Acknowledged {
        user: String,
    },
    /// An acknowledgement was withdrawn while the condition persists: the
    /// alarm is audible again.
    Rearmed {
        reason: RearmReason,
    },
    /// Bed-level (no id/kind/priority).
    AudioPaused {
        user: String,
        until: DateTime<Utc>,
    },
    /// Bed-level (no id/kind/priority).
    AudioResumed {
        reason: ResumeReason,
    },
    /// Bed-level: a patient-specific limit was set or cleared by `user`, or
    /// (`user` None) reverted to the category preset at discharge. `from` and
    /// `to` are the limits in force before and after (None = no limit).
    /// Alarm settings are safety-relevant: who changed them, and when, is
    /// logged with the alarms they govern.
    LimitChanged {
        parameter: Parameter,
        from: Option<Limit>,
        to: Option<Limit>,
        user: Option<String>,
    },
}

/// One alarm event. `id`, `kind` and `priority` are `None` only for the
/// bed-level audio events. `message` may contain measured values (PHI).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AlarmEvent {
    pub id: Option<u64>,
    pub bed: BedId,
    pub kind: Option<AlarmKind>,
    pub priority: Option<Priority>,
    pub event: AlarmEventKind,
    pub at: DateTime<Utc>,
    pub message: String,
}

/// Which alarms an acknowledgement applies to. There is no "all": the
/// operator acknowledges what the screen showed, so the caller names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckTarget {
    /// These alarms, those of them still shown; the others are skipped (they
    /// ended meanwhile). "Acknowledge all" sends the ids it displayed.
    Ids(Vec<u64>),
    /// One alarm, which must be shown ([`AlarmError::UnknownAlarm`] if not).
    Alarm(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlarmError {
    #[error("bed {bed}: no alarm {id} is shown")]
    UnknownAlarm { bed: BedId, id: u64 },
}

/// One alarm as shown on screen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ActiveAlarm {
    pub id: u64,
    pub kind: AlarmKind,
    pub priority: Priority,
    pub since: DateTime<Utc>,
    /// Latest value beyond the limit (NEWS2: the total), PHI.
    pub value: Option<f64>,
    pub limit: Option<f64>,
    /// The condition has ended; shown until acknowledged.
    pub latched: bool,
    pub acknowledged: bool,
    /// Who acknowledged it (the name recorded in the alarm log; "<user> (central)" when it
    /// came from a central station over the feed). Absent in settings saved before it existed.
    #[serde(default)]
    pub acknowledged_by: Option<String>,
    /// Sounding now: condition present, not acknowledged, audio not paused.
    pub audible: bool,
    pub message: String,
    pub signal: Signal,
    /// Earlier episodes of this condition that latched and were never acknowledged before
    /// it came back (this alarm took their place); 0 for a first episode.
    #[serde(default)]
    pub recurred: u32,
    /// When the first of those unacknowledged episodes began (with `recurred` > 0).
    #[serde(default)]
    #[ts(as = "Option<String>")]
    pub recurring_since: Option<DateTime<Utc>>,
}

/// A bed's audio inactivation state (always visible, IEC 60601-1-8 §6.8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case", tag = "state")]
#[ts(export)]
pub enum AudioState {
    Normal,
    /// `remaining_s` is rounded up: 0 only once expired.
    Paused {
        until: DateTime<Utc>,
        remaining_s: i64,
        by: String,
    },
}

/// A parameter's limits as shown beside its numeric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ParameterLimit {
    pub parameter: Parameter,
    pub label: String,
    pub unit: String,
    pub limit: Limit,
    /// Set for this patient (reverts at discharge) rather than the category preset.
    pub patient_specific: bool,
}

/// The clinical settings of one bed that outlive a restart: the patient
/// category, patient-specific limits, latched alarms and the NEWS2 history.
/// (Conditions that still exist come back from live data.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BedSettings {
    pub category: PatientCategory,
    pub overrides: BTreeMap<Parameter, Limit>,
    /// Alarms whose condition ended but which stay shown until acknowledged.
    pub latched: Vec<ActiveAlarm>,
    pub news2_history: Vec<News2>,
}

/// Everything the screen needs about one bed's alarms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct BedAlarmState {
    pub bed: BedId,
    pub category: PatientCategory,
    /// Highest priority first, then oldest first.
    pub active: Vec<ActiveAlarm>,
    pub audio: AudioState,
    /// Highest priority shown (including latched).
    pub highest: Option<Priority>,
    /// Highest priority of the audible alarms: what the speaker plays.
    pub sounding: Option<Priority>,
    pub limits: Vec<ParameterLimit>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Phys(Parameter, Direction),
    Tech(DeviceId, TechnicalKind),
    /// [`TechnicalKind::NoValidMeasurement`] of one parameter.
    Invalid(Parameter),
    News2,
}

#[derive(Debug, Clone)]
struct Alarm {
    id: u64,
    key: Key,
    kind: AlarmKind,
    priority: Priority,
    since: DateTime<Utc>,
    value: Option<f64>,
    limit: Option<f64>,
    condition_active: bool,
    acknowledged: bool,
    /// When, and at which value (physiological: the value; NEWS2: the total),
    /// it was acknowledged: the reminder and re-arm start from there.
    acked: Option<(DateTime<Utc>, Option<f64>)>,
    /// Who acknowledged it (while acknowledged).
    acked_by: Option<String>,
    message: String,
    /// Source device of a physiological alarm.
    device: Option<DeviceId>,
    /// Unacknowledged episodes it replaced, and when the first began (see [`Bed::start`]).
    recurred: u32,
    recurring_since: Option<DateTime<Utc>>,
}

/// What the engine knows of one parameter's latest readings.
#[derive(Debug, Clone)]
struct Last {
    /// The device that sent the newest reading.
    device: DeviceId,
    /// The newest valid value (limit unit) and when it was measured.
    valid: Option<(f64, DateTime<Utc>)>,
    /// Since when (engine time) only special values have come; `None` once a valid value came.
    invalid_since: Option<DateTime<Utc>>,
    /// When the newest reading of any kind was measured: older ones are late.
    newest: DateTime<Utc>,
    /// How long a value stays current.
    stale_after: Duration,
}

impl Last {
    /// The valid value, and whether it is still current at `now`.
    fn value(&self, now: DateTime<Utc>) -> Option<(f64, bool)> {
        self.valid.map(|(v, at)| (v, now - at <= self.stale_after))
    }
}

#[derive(Debug, Clone)]
struct Pause {
    until: DateTime<Utc>,
    by: String,
    /// Highest priority of the alarms audible when the pause began.
    ceiling: Option<Priority>,
}

#[derive(Debug, Clone)]
struct Bed {
    id: BedId,
    category: PatientCategory,
    overrides: BTreeMap<Parameter, Limit>,
    last: BTreeMap<Parameter, Last>,
    /// Start of the current excursion of each not-yet-alarmed condition.
    pending: BTreeMap<(Parameter, Direction), DateTime<Utc>>,
    /// Parameters whose limits changed since their last evaluation.
    dirty: BTreeSet<Parameter>,
    /// Shown alarms in start order.
    alarms: Vec<Alarm>,
    pause: Option<Pause>,
}

/// Collects events for one bed during one call.
struct Out<'a> {
    bed: &'a str,
    now: DateTime<Utc>,
    events: &'a mut Vec<AlarmEvent>,
}

impl Out<'_> {
    fn alarm(&mut self, a: &Alarm, event: AlarmEventKind, message: String) {
        self.events.push(AlarmEvent {
            id: Some(a.id),
            bed: self.bed.to_owned(),
            kind: Some(a.kind.clone()),
            priority: Some(a.priority),
            event,
            at: self.now,
            message,
        });
    }

    fn limit_changed(
        &mut self,
        parameter: Parameter,
        from: Option<Limit>,
        to: Option<Limit>,
        user: Option<&str>,
    ) {
        let bounds = |l: Option<Limit>| match l {
            Some(l) => format!(
                "{}\u{2013}{}",
                l.low
                    .map(|v| parameter.format_value(v))
                    .unwrap_or_else(|| "off".into()),
                l.high
                    .map(|v| parameter.format_value(v))
                    .unwrap_or_else(|| "off".into()),
            ),
            None => "off".into(),
        };
        let (range, was) = (bounds(to), bounds(from));
        let message = match user {
            Some(u) => format!("{} limits {range} (were {was}) set by {u}", parameter.label()),
            None => format!(
                "{} limits back to {range} (were {was}): discharged",
                parameter.label()
            ),
        };
        self.bed_level(
            AlarmEventKind::LimitChanged {
                parameter,
                from,
                to,
                user: user.map(str::to_owned),
            },
            message,
        );
    }

    fn bed_level(&mut self, event: AlarmEventKind, message: String) {
        self.events.push(AlarmEvent {
            id: None,
            bed: self.bed.to_owned(),
            kind: None,
            priority: None,
            event,
            at: self.now,
            message,
        });
    }
}

fn phys_message(p: Parameter, d: Direction, v: f64, limit: f64, critical: bool) -> String {
    let u = p.display_unit();
    format!(
        "{} {} {} {u} {} {} {u}{}",
        p.label(),
        d.as_str(),
        p.format_value(v),
        d.symbol(),
        p.format_value(limit),
        if critical { " (critical)" } else { "" }
    )
}

fn news2_message(s: &News2) -> String {
    let mut m = format!("NEWS2 {} ({} risk): {}", s.total, s.risk.as_str(), s.response);
    if !s.complete {
        let n = s.missing_parameters.len() + s.stale_parameters.len();
        m.push_str(&format!(" [incomplete: {n} parameter(s) missing or stale]"));
    }
    m
}

impl Bed {
    fn new(id: &str) -> Bed {
        Bed {
            id: id.to_owned(),
            category: PatientCategory::default(),
            overrides: BTreeMap::new(),
            last: BTreeMap::new(),
            pending: BTreeMap::new(),
            dirty: BTreeSet::new(),
            alarms: Vec::new(),
            pause: None,
        }
    }

    fn limit(&self, preset: &SitePreset, p: Parameter) -> Option<Limit> {
        self.overrides
            .get(&p)
            .or_else(|| preset.limits_for(self.category).get(p))
            .copied()
    }

    fn active_index(&self, key: &Key) -> Option<usize> {
        self.alarms
            .iter()
            .position(|a| a.condition_active && &a.key == key)
    }

    fn index_of(&self, id: u64) -> Option<usize> {
        self.alarms.iter().position(|a| a.id == id)
    }

    fn expire(&mut self, out: &mut Out) {
        if self.pause.as_ref().is_some_and(|p| p.until <= out.now) {
            self.pause = None;
            out.bed_level(
                AlarmEventKind::AudioResumed {
                    reason: ResumeReason::Expired,
                },
                format!("Audio resumed at {}: pause expired", self.id),
            );
        }
    }

    /// A new or escalated condition ends an audio pause when it is high, or
    /// higher than everything that was audible when the pause began.
    fn breakthrough(&mut self, id: u64, priority: Priority, out: &mut Out) {
        if self
            .pause
            .as_ref()
            .is_some_and(|p| priority == Priority::High || Some(priority) > p.ceiling)
        {
            self.pause = None;
            out.bed_level(
                AlarmEventKind::AudioResumed {
                    reason: ResumeReason::Breakthrough { alarm: id, priority },
                },
                format!("Audio resumed at {}: new {priority}-priority alarm", self.id),
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn start(
        &mut self,
        next_id: &mut u64,
        key: Key,
        kind: AlarmKind,
        priority: Priority,
        value: Option<f64>,
        limit: Option<f64>,
        message: String,
        device: Option<DeviceId>,
        out: &mut Out,
    ) {
        let id = *next_id;
        *next_id += 1;
        // IEC 60601-1-8 §6.10 keeps a latched alarm shown until it is acknowledged; it
        // does not ask for one more entry per episode. A condition that comes back while
        // its last alarm is still latched (nobody has responded), as high, takes its place:
        // the latched one ends ("recurred", logged), the new one sounds and counts the
        // unacknowledged episodes before it and since when. Otherwise a desaturation
        // recurring every 5 min at an unattended bed stacks 288 latched alarms a day: a
        // list no nurse can read, and a screen that grows without end.
        let (mut recurred, mut recurring_since) = (0, None);
        if let Some(i) = self
            .alarms
            .iter()
            // Never by a lower priority: a latched critical episode is not to read as a
            // medium one. (Only high alarms latch, so this is a high episode.)
            .position(|a| !a.condition_active && !a.acknowledged && a.key == key && priority >= a.priority)
        {
            let old = self.alarms.remove(i);
            recurred = old.recurred + 1;
            recurring_since = Some(old.recurring_since.unwrap_or(old.since));
            let msg = format!("{}: recurred, shown as alarm {id}", old.kind.title());
            out.alarm(&old, AlarmEventKind::Ended { reason: EndReason::Recurred }, msg);
        }
        let a = Alarm {
            id,
            key,
            kind,
            priority,
            since: out.now,
            value,
            limit,
            condition_active: true,
            acknowledged: false,
            acked: None,
            acked_by: None,
            message: message.clone(),
            device,
            recurred,
            recurring_since,
        };
        out.alarm(&a, AlarmEventKind::Started { value, limit }, message);
        self.alarms.push(a);
        self.breakthrough(id, priority, out);
    }

    fn escalate(
        &mut self,
        i: usize,
        to: Priority,
        value: Option<f64>,
        limit: Option<f64>,
        message: String,
        out: &mut Out,
    ) {
        let a = &mut self.alarms[i];
        let from = a.priority;
        a.priority = to;
        a.value = value;
        a.limit = limit;
        a.acknowledged = false;
        a.acked = None;
        a.acked_by = None;
        a.message = message.clone();
        let id = a.id;
        out.alarm(
            &self.alarms[i],
            AlarmEventKind::Escalated { from, value, limit },
            message,
        );
        self.breakthrough(id, to, out);
    }

    fn end_condition(&mut self, i: usize, reason: EndReason, out: &mut Out) {
        let a = &mut self.alarms[i];
        a.condition_active = false;
        let title = a.kind.title();
        if a.priority == Priority::High && !a.acknowledged {
            let msg = format!("{title}: condition ended, latched until acknowledged");
            out.alarm(&self.alarms[i], AlarmEventKind::Latched, msg);
        } else {
            let a = self.alarms.remove(i);
            out.alarm(&a, AlarmEventKind::Ended { reason }, format!("{title} ended"));
        }
    }

    /// Withdraws the acknowledgement of alarm `i` (still present): it sounds again.
    fn rearm(&mut self, i: usize, reason: RearmReason, out: &mut Out) {
        let a = &mut self.alarms[i];
        a.acknowledged = false;
        a.acked = None;
        a.acked_by = None;
        let msg = match &reason {
            RearmReason::Reminder => format!("{}: still present after acknowledgement", a.kind.title()),
            RearmReason::Worsened { .. } => format!("{}: worse since acknowledged", a.kind.title()),
        };
        out.alarm(&self.alarms[i], AlarmEventKind::Rearmed { reason }, msg);
    }

    /// A standing sensor-off / no-data / disconnected condition of `device`:
    /// its readings are not to be alarmed on.
    fn device_invalid(&self, device: &str) -> bool {
        self.alarms.iter().any(|a| {
            a.condition_active
                && matches!(&a.key, Key::Tech(d, k) if d == device && k.invalidates_measurements())
        })
    }

    /// Re-evaluates one parameter's low and high conditions with its latest value.
    fn evaluate(&mut self, preset: &SitePreset, next_id: &mut u64, p: Parameter, out: &mut Out) {
        self.dirty.remove(&p);
        let Some(last) = self.last.get(&p).cloned() else {
            self.pending.retain(|(q, _), _| *q != p);
            return;
        };
        // Only special values so far: nothing is known, nothing changes.
        let Some((v, current)) = last.value(out.now) else {
            return;
        };
        let invalid = self.active_index(&Key::Invalid(p)).is_some();
        let limit = self.limit(preset, p).unwrap_or_else(Limit::off);
        for d in [Direction::Low, Direction::High] {
            let (bound, crit, prio) = match d {
                Direction::Low => (limit.effective_low(), limit.critical_low, limit.priority_low),
                Direction::High => (limit.effective_high(), limit.critical_high, limit.priority_high),
            };
            let beyond = bound.is_some_and(|b| d.beyond(v, b));
            let critical = crit.filter(|c| d.beyond(v, *c));
            let key = Key::Phys(p, d);
            if let Some(i) = self.active_index(&key) {
                self.pending.remove(&(p, d));
                if !current {
                    // A value past its window neither ends nor escalates.
                } else if !beyond {
                    self.end_condition(i, EndReason::ConditionEnded, out);
                } else if let (Some(c), true) = (critical, self.alarms[i].priority < Priority::High) {
                    let msg = phys_message(p, d, v, c, true);
                    self.escalate(i, Priority::High, Some(v), Some(c), msg, out);
                } else {
                    // Still beyond: show the value and the limit it is beyond now.
                    let a = &mut self.alarms[i];
                    let shown = critical.or(bound);
                    a.value = (!invalid).then_some(v);
                    a.limit = shown;
                    a.device = Some(last.device.clone());
                    if let Some(l) = shown {
                        a.message = phys_message(p, d, v, l, critical.is_some());
                    }
                    // Worse by a further step than when acknowledged: sound again.
                    let worse = |from: f64| match d {
                        Direction::Low => v <= from - p.rearm_step(),
                        Direction::High => v >= from + p.rearm_step(),
                    };
                    if let Some((_, Some(from))) = a.acked.filter(|_| a.acknowledged) {
                        if worse(from) {
                            let reason = RearmReason::Worsened {
                                from: Some(from),
                                to: Some(v),
                            };
                            self.rearm(i, reason, out);
                        }
                    }
                }
            } else if let (true, Some(b)) = (beyond, bound) {
                // A value past its window does not begin a condition, but one
                // it began still completes (only a valid in-range value, or the
                // device's loss, cancels it).
                if !current && !self.pending.contains_key(&(p, d)) {
                    continue;
                }
                let since = *self.pending.entry((p, d)).or_insert(out.now);
                if out.now - since >= limit.delay {
                    self.pending.remove(&(p, d));
                    let (priority, shown) = match critical {
                        Some(c) => (Priority::High, c),
                        None => (prio, b),
                    };
                    let msg = phys_message(p, d, v, shown, critical.is_some());
                    let kind = AlarmKind::Physiological {
                        parameter: p,
                        direction: d,
                    };
                    self.start(
                        next_id,
                        key,
                        kind,
                        priority,
                        (!invalid).then_some(v),
                        Some(shown),
                        msg,
                        Some(last.device.clone()),
                        out,
                    );
                }
            } else {
                self.pending.remove(&(p, d));
            }
        }
    }

    /// Raises "no valid measurement" for parameters that have sent only
    /// special values for `after`; their alarms stop showing the old value.
    fn check_invalid(&mut self, preset: &SitePreset, next_id: &mut u64, out: &mut Out) {
        let after = preset.no_valid_value;
        let due: Vec<(Parameter, DeviceId)> = self
            .last
            .iter()
            .filter(|(_, l)| l.invalid_since.is_some_and(|t| out.now - t >= after))
            .map(|(p, l)| (*p, l.device.clone()))
            .filter(|(p, _)| self.active_index(&Key::Invalid(*p)).is_none())
            .collect();
        for (p, device) in due {
            let kind = TechnicalKind::NoValidMeasurement;
            let k = AlarmKind::Technical {
                device: device.clone(),
                kind,
                parameter: Some(p),
            };
            let msg = format!(
                "{} at {}: {}",
                k.title(),
                self.id,
                "no valid value from the device"
            );
            let priority = preset.technical_priority(kind);
            self.start(next_id, Key::Invalid(p), k, priority, None, None, msg, None, out);
            for a in self.alarms.iter_mut() {
                if a.condition_active && matches!(a.key, Key::Phys(q, _) if q == p) {
                    a.value = None;
                    a.message = format!("{}: no valid value", a.kind.title());
                }
            }
        }
    }

    /// Acknowledgements that have run for the preset's reminder time expire.
    fn remind(&mut self, preset: &SitePreset, out: &mut Out) {
        while let Some(i) = self.alarms.iter().position(|a| {
            a.condition_active
                && a.acknowledged
                && a.acked.is_some_and(|(at, _)| out.now - at >= preset.ack_reminder)
        }) {
            self.rearm(i, RearmReason::Reminder, out);
        }
    }

    fn invalidate_device(&mut self, device: &str, out: &mut Out) {
        let params: Vec<Parameter> = self
            .last
            .iter()
            .filter(|(_, l)| l.device == device)
            .map(|(p, _)| *p)
            .collect();
        for p in params {
            self.last.remove(&p);
            self.pending.retain(|(q, _), _| *q != p);
            // The device's own technical alarm replaces "no valid measurement".
            if let Some(i) = self.active_index(&Key::Invalid(p)) {
                self.end_condition(i, EndReason::MeasurementInvalid, out);
            }
        }
        while let Some(i) = self.alarms.iter().position(|a| {
            a.condition_active && matches!(a.key, Key::Phys(..)) && a.device.as_deref() == Some(device)
        }) {
            self.end_condition(i, EndReason::MeasurementInvalid, out);
        }
    }

    fn highest_audible(&self) -> Option<Priority> {
        self.alarms
            .iter()
            .filter(|a| a.condition_active && !a.acknowledged)
            .map(|a| a.priority)
            .max()
    }
}

/// The alarm engine for a ward. See the module docs for the rules.
#[derive(Debug, Clone)]
pub struct AlarmEngine {
    preset: SitePreset,
    beds: BTreeMap<BedId, Bed>,
    next_id: u64,
    news2: News2Tracker,
}

impl AlarmEngine {
    pub fn new(preset: SitePreset) -> AlarmEngine {
        AlarmEngine {
            preset,
            beds: BTreeMap::new(),
            next_id: 1,
            news2: News2Tracker::default(),
        }
    }

    /// Continue alarm ids after `last` (e.g. the last id in the alarm log), so
    /// ids stay unique across restarts.
    pub fn continue_ids_after(&mut self, last: u64) {
        self.next_id = self.next_id.max(last.saturating_add(1));
    }

    pub fn preset(&self) -> &SitePreset {
        &self.preset
    }

    pub fn news2_history(&self) -> &News2Tracker {
        &self.news2
    }

    fn bed_mut(&mut self, bed: &str) -> &mut Bed {
        self.beds.entry(bed.to_owned()).or_insert_with(|| Bed::new(bed))
    }

    /// Sets the bed's patient category (its preset limits apply from the next evaluation).
    pub fn set_patient(&mut self, bed: &str, category: PatientCategory) {
        let b = self.bed_mut(bed);
        b.category = category;
        b.dirty.extend(Parameter::ALL);
    }

    pub fn category(&self, bed: &str) -> PatientCategory {
        self.beds.get(bed).map(|b| b.category).unwrap_or_default()
    }

    /// Patient-specific limit override (reverts at discharge).
    pub fn set_limit(
        &mut self,
        bed: &str,
        param: Parameter,
        limit: Limit,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<AlarmEvent>, LimitError> {
        limit.validate(param)?;
        let from = self.limit(bed, param);
        let b = self.bed_mut(bed);
        b.overrides.insert(param, limit);
        b.dirty.insert(param);
        let mut events = Vec::new();
        Out {
            bed,
            now,
            events: &mut events,
        }
        .limit_changed(param, from, Some(limit), Some(user));
        Ok(events)
    }

    /// Removes one patient-specific override (back to the category preset).
    pub fn clear_limit(
        &mut self,
        bed: &str,
        param: Parameter,
        user: &str,
        now: DateTime<Utc>,
    ) -> Vec<AlarmEvent> {
        let mut events = Vec::new();
        let from = self.limit(bed, param);
        let b = self.bed_mut(bed);
        if b.overrides.remove(&param).is_some() {
            b.dirty.insert(param);
            let to = self.limit(bed, param);
            Out {
                bed,
                now,
                events: &mut events,
            }
            .limit_changed(param, from, to, Some(user));
        }
        events
    }

    /// The limit in force for one parameter.
    pub fn limit(&self, bed: &str, param: Parameter) -> Option<Limit> {
        match self.beds.get(bed) {
            Some(b) => b.limit(&self.preset, param),
            None => self
                .preset
                .limits_for(PatientCategory::default())
                .get(param)
                .copied(),
        }
    }

    /// All limits in force at a bed (preset overlaid with overrides).
    pub fn limits(&self, bed: &str) -> LimitSet {
        let Some(b) = self.beds.get(bed) else {
            return self.preset.limits_for(PatientCategory::default()).clone();
        };
        let mut s = self.preset.limits_for(b.category).clone();
        s.0.extend(b.overrides.iter().map(|(p, l)| (*p, *l)));
        s
    }

    /// Discharge: physiological and NEWS2 alarms end (and latched ones of any
    /// kind), any pause is cancelled, overrides and NEWS2 history are
    /// forgotten, the category stays. Technical conditions that still exist
    /// stay shown: they are about the bed's equipment, not the patient.
    pub fn discharge(&mut self, bed: &str, now: DateTime<Utc>) -> Vec<AlarmEvent> {
        let mut events = Vec::new();
        self.news2.clear(bed);
        let Some(b) = self.beds.get_mut(bed) else {
            return events;
        };
        let mut out = Out {
            bed,
            now,
            events: &mut events,
        };
        let (stay, end): (Vec<Alarm>, Vec<Alarm>) = std::mem::take(&mut b.alarms)
            .into_iter()
            .partition(|a| a.condition_active && matches!(a.key, Key::Tech(..)));
        b.alarms = stay;
        for a in end {
            let msg = format!("{} ended: patient discharged", a.kind.title());
            out.alarm(
                &a,
                AlarmEventKind::Ended {
                    reason: EndReason::Discharged,
                },
                msg,
            );
        }
        if b.pause.take().is_some() {
            out.bed_level(
                AlarmEventKind::AudioResumed {
                    reason: ResumeReason::Discharged,
                },
                format!("Audio resumed at {bed}: discharged"),
            );
        }
        for (param, limit) in std::mem::take(&mut b.overrides) {
            let to = b.limit(&self.preset, param);
            out.limit_changed(param, Some(limit), to, None);
        }
        b.last.clear();
        b.pending.clear();
        b.dirty.clear();
        events
    }

    /// A reading from the pipeline, current for its parameter's default
    /// window ([`Parameter::default_stale_after`]).
    pub fn on_reading(&mut self, r: &Reading, now: DateTime<Utc>) -> Vec<AlarmEvent> {
        let window = Parameter::from_mdc(r.code).map_or(Duration::zero(), Parameter::default_stale_after);
        self.on_reading_within(r, window, now)
    }

    /// A reading whose value is current for `stale_after` after it was
    /// measured (its device's expected interval plus slack). Only alarmable
    /// parameters count; see the module docs for special values.
    pub fn on_reading_within(
        &mut self,
        r: &Reading,
        stale_after: Duration,
        now: DateTime<Utc>,
    ) -> Vec<AlarmEvent> {
        let mut events = Vec::new();
        let Some(p) = Parameter::from_mdc(r.code) else {
            return events;
        };
        let Self {
            preset,
            beds,
            next_id,
            ..
        } = self;
        let b = beds.entry(r.bed.clone()).or_insert_with(|| Bed::new(&r.bed));
        let mut out = Out {
            bed: &r.bed,
            now,
            events: &mut events,
        };
        b.expire(&mut out);
        if b.device_invalid(&r.device) {
            // Sensor off / no data / disconnected stands: its technical alarm
            // speaks for the device until the condition clears.
            return events;
        }
        if b.last.get(&p).is_some_and(|l| r.received < l.newest) {
            // Late: measured before what is already known.
            return events;
        }
        // A number the device marked invalid is no measurement: unknown, like a special.
        let value = r
            .value
            .number()
            .filter(|_| r.status.quality != vigil_model::Quality::Invalid)
            .map(|v| p.normalise(v, &r.unit));
        if let Some(None) = value {
            return events; // a number in a unit we cannot compare: ignored
        }
        let last = b.last.entry(p).or_insert_with(|| Last {
            device: r.device.clone(),
            valid: None,
            invalid_since: None,
            newest: r.received,
            stale_after,
        });
        last.device = r.device.clone();
        last.newest = r.received;
        last.stale_after = stale_after;
        match value.flatten() {
            Some(v) => {
                last.valid = Some((v, r.received));
                last.invalid_since = None;
                if let Some(i) = b.active_index(&Key::Invalid(p)) {
                    b.end_condition(i, EndReason::ConditionEnded, &mut out);
                }
                b.evaluate(preset, next_id, p, &mut out);
            }
            None => {
                // Special value: unknown, not in range. Pending conditions stay.
                last.invalid_since.get_or_insert(now);
                b.check_invalid(preset, next_id, &mut out);
            }
        }
        events
    }

    /// A technical condition raised (`active`) or cleared by a device source,
    /// the data-age watchdog, the store writer or the delivery path.
    pub fn on_technical(
        &mut self,
        bed: &str,
        device: &str,
        kind: TechnicalKind,
        active: bool,
        now: DateTime<Utc>,
    ) -> Vec<AlarmEvent> {
        self.on_technical_labelled(bed, device, device, kind, active, now)
    }

    /// [`AlarmEngine::on_technical`] with a name for the message ("Pulse
    /// oximeter (sim-bed-1-oxi)"); `device` is the id its readings carry.
    pub fn on_technical_labelled(
        &mut self,
        bed: &str,
        device: &str,
        label: &str,
        kind: TechnicalKind,
        active: bool,
        now: DateTime<Utc>,
    ) -> Vec<AlarmEvent> {
        let mut events = Vec::new();
        let Self {
            preset,
            beds,
            next_id,
            ..
        } = self;
        let b = beds.entry(bed.to_owned()).or_insert_with(|| Bed::new(bed));
        let mut out = Out {
            bed,
            now,
            events: &mut events,
        };
        b.expire(&mut out);
        let key = Key::Tech(device.to_owned(), kind);
        let existing = b.active_index(&key);
        match (active, existing) {
            (true, None) => {
                let priority = preset.technical_priority(kind);
                let msg = format!("{label} at {bed}: {}", kind.describe());
                let k = AlarmKind::Technical {
                    device: device.to_owned(),
                    kind,
                    parameter: None,
                };
                b.start(next_id, key, k, priority, None, None, msg, None, &mut out);
            }
            (false, Some(i)) => b.end_condition(i, EndReason::ConditionEnded, &mut out),
            _ => {}
        }
        // Every report of the condition (not only the first) invalidates what
        // the device measured before it.
        if active && kind.invalidates_measurements() {
            b.invalidate_device(device, &mut out);
        }
        events
    }

    /// A device left the bed (removed, or moved to another bed): its
    /// technical conditions here end and what it measured here is no longer
    /// current (its physiological alarms end as `measurement_invalid`).
    pub fn forget_device(&mut self, bed: &str, device: &str, now: DateTime<Utc>) -> Vec<AlarmEvent> {
        let mut events = Vec::new();
        let Some(b) = self.beds.get_mut(bed) else {
            return events;
        };
        let mut out = Out {
            bed,
            now,
            events: &mut events,
        };
        b.expire(&mut out);
        while let Some(i) = b
            .alarms
            .iter()
            .position(|a| a.condition_active && matches!(&a.key, Key::Tech(d, _) if d == device))
        {
            b.end_condition(i, EndReason::ConditionEnded, &mut out);
        }
        b.invalidate_device(device, &mut out);
        events
    }

    /// A new NEWS2 score for a bed: recorded in the history; a rise into a band
    /// with an alarm priority ([`crate::News2Priorities`]) starts a NEWS2 alarm,
    /// a further rise escalates it. It ends when a **complete** score falls into
    /// a band without an alarm (an incomplete score is a lower bound and
    /// cannot show that the patient improved); priority never falls meanwhile.
    pub fn on_news2(&mut self, bed: &str, score: News2, now: DateTime<Utc>) -> Vec<AlarmEvent> {
        let mut events = Vec::new();
        let change = self.news2.record(bed, score.clone());
        let Self {
            preset,
            beds,
            next_id,
            ..
        } = self;
        let b = beds.entry(bed.to_owned()).or_insert_with(|| Bed::new(bed));
        let mut out = Out {
            bed,
            now,
            events: &mut events,
        };
        b.expire(&mut out);
        let priority = preset.news2.for_risk(score.risk);
        let total = Some(f64::from(score.total));
        let msg = news2_message(&score);
        match (b.active_index(&Key::News2), priority) {
            (Some(i), Some(p)) if p > b.alarms[i].priority => b.escalate(i, p, total, None, msg, &mut out),
            (Some(i), None) if score.complete => b.end_condition(i, EndReason::ConditionEnded, &mut out),
            (Some(i), _) => {
                let a = &mut b.alarms[i];
                // The alarm shows the score that raised it. An incomplete score is a lower
                // bound: it can raise the shown value, never lower it (a "NEWS2 0" beside a
                // medium alarm would read as an improvement nobody measured).
                if score.complete || total >= a.value {
                    a.value = total;
                    a.message = msg;
                }
                // Any rise of the total withdraws an acknowledgement.
                if let Some((_, Some(from))) = a.acked.filter(|_| a.acknowledged) {
                    if total.is_some_and(|t| t > from) {
                        let reason = RearmReason::Worsened {
                            from: Some(from),
                            to: total,
                        };
                        b.rearm(i, reason, &mut out);
                    }
                }
            }
            (None, Some(p)) if change.rose() => b.start(
                next_id,
                Key::News2,
                AlarmKind::News2,
                p,
                total,
                None,
                msg,
                None,
                &mut out,
            ),
            (None, _) => {}
        }
        events
    }

    /// Advances time: audio pauses expire, condition delays elapse, changed
    /// limits are applied to the latest values.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<AlarmEvent> {
        let mut events = Vec::new();
        let Self {
            preset,
            beds,
            next_id,
            ..
        } = self;
        for (id, b) in beds.iter_mut() {
            let mut out = Out {
                bed: id,
                now,
                events: &mut events,
            };
            b.expire(&mut out);
            let mut params: BTreeSet<Parameter> = b.pending.keys().map(|(p, _)| *p).collect();
            params.extend(b.dirty.iter().copied());
            // Active alarms too: their value may have gone past its window.
            params.extend(b.alarms.iter().filter_map(|a| match a.key {
                Key::Phys(p, _) if a.condition_active => Some(p),
                _ => None,
            }));
            for p in params {
                b.evaluate(preset, next_id, p, &mut out);
            }
            b.check_invalid(preset, next_id, &mut out);
            b.remind(preset, &mut out);
        }
        events
    }

    /// Audio paused for the preset's duration (IEC 60601-1-8 §6.8). Allowed
    /// with no alarm present; pausing again restarts the pause from `now`.
    pub fn pause_audio(&mut self, bed: &str, user: &str, now: DateTime<Utc>) -> Vec<AlarmEvent> {
        let mut events = Vec::new();
        let duration = self.preset.audio_pause;
        let b = self.bed_mut(bed);
        let mut out = Out {
            bed,
            now,
            events: &mut events,
        };
        b.expire(&mut out);
        let until = now + duration;
        b.pause = Some(Pause {
            until,
            by: user.to_owned(),
            ceiling: b.highest_audible(),
        });
        out.bed_level(
            AlarmEventKind::AudioPaused {
                user: user.to_owned(),
                until,
            },
            format!("Audio paused at {bed} by {user} for {} s", duration.num_seconds()),
        );
        events
    }

    /// Ends an audio pause early.
    pub fn resume_audio(&mut self, bed: &str, user: &str, now: DateTime<Utc>) -> Vec<AlarmEvent> {
        let mut events = Vec::new();
        let b = self.bed_mut(bed);
        let mut out = Out {
            bed,
            now,
            events: &mut events,
        };
        b.expire(&mut out);
        if b.pause.take().is_some() {
            out.bed_level(
                AlarmEventKind::AudioResumed {
                    reason: ResumeReason::Operator {
                        user: user.to_owned(),
                    },
                },
                format!("Audio resumed at {bed} by {user}"),
            );
        }
        events
    }

    /// Acknowledges one alarm or all alarms at a bed (see module docs).
    pub fn acknowledge(
        &mut self,
        bed: &str,
        target: AckTarget,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<AlarmEvent>, AlarmError> {
        let mut events = Vec::new();
        let b = self.bed_mut(bed);
        let ids: Vec<u64> = match target {
            AckTarget::Ids(ids) => ids,
            AckTarget::Alarm(id) => match b.index_of(id) {
                Some(_) => vec![id],
                None => {
                    return Err(AlarmError::UnknownAlarm {
                        bed: bed.to_owned(),
                        id,
                    })
                }
            },
        };
        let mut out = Out {
            bed,
            now,
            events: &mut events,
        };
        b.expire(&mut out);
        for id in ids {
            let Some(i) = b.index_of(id) else { continue };
            let a = &mut b.alarms[i];
            let title = a.kind.title();
            if !a.condition_active {
                let a = b.alarms.remove(i);
                out.alarm(
                    &a,
                    AlarmEventKind::Acknowledged {
                        user: user.to_owned(),
                    },
                    format!("{title} acknowledged by {user}"),
                );
                out.alarm(
                    &a,
                    AlarmEventKind::Ended {
                        reason: EndReason::Acknowledged,
                    },
                    format!("{title} ended"),
                );
            } else if !a.acknowledged {
                a.acknowledged = true;
                a.acked = Some((now, a.value));
                a.acked_by = Some(user.to_owned());
                out.alarm(
                    &b.alarms[i],
                    AlarmEventKind::Acknowledged {
                        user: user.to_owned(),
                    },
                    format!("{title} acknowledged by {user}"),
                );
            }
        }
        Ok(events)
    }

    /// What of a bed's alarm state must survive a restart.
    pub fn settings(&self, bed: &str) -> BedSettings {
        let b = self.beds.get(bed);
        BedSettings {
            category: b.map(|b| b.category).unwrap_or_default(),
            overrides: b.map(|b| b.overrides.clone()).unwrap_or_default(),
            // (`now` only matters to the audio pause, not saved.)
            latched: self
                .state(bed, DateTime::<Utc>::MIN_UTC)
                .active
                .into_iter()
                .filter(|a| a.latched)
                .collect(),
            news2_history: self.news2.history(bed).cloned().collect(),
        }
    }

    /// Puts back what [`AlarmEngine::settings`] saved (at start, before any
    /// reading): limits apply from the next evaluation, latched alarms are
    /// shown again until acknowledged, the NEWS2 history continues. Alarm ids
    /// continue after the highest one restored.
    pub fn restore(&mut self, bed: &str, s: BedSettings) {
        for score in s.news2_history {
            self.news2.record(bed, score);
        }
        if let Some(max) = s.latched.iter().map(|l| l.id).max() {
            self.continue_ids_after(max);
        }
        let b = self.bed_mut(bed);
        b.category = s.category;
        b.overrides = s.overrides;
        b.dirty.extend(Parameter::ALL);
        for l in s.latched {
            if b.index_of(l.id).is_some() {
                continue;
            }
            b.alarms.push(Alarm {
                id: l.id,
                key: match &l.kind {
                    AlarmKind::Physiological { parameter, direction } => Key::Phys(*parameter, *direction),
                    AlarmKind::Technical {
                        parameter: Some(p), ..
                    } => Key::Invalid(*p),
                    AlarmKind::Technical { device, kind, .. } => Key::Tech(device.clone(), *kind),
                    AlarmKind::News2 => Key::News2,
                },
                kind: l.kind,
                priority: l.priority,
                since: l.since,
                value: l.value,
                limit: l.limit,
                condition_active: false,
                acknowledged: false,
                acked: None,
                acked_by: None,
                message: l.message,
                device: None,
                recurred: l.recurred,
                recurring_since: l.recurring_since,
            });
        }
    }

    /// Beds the engine knows.
    pub fn beds(&self) -> impl Iterator<Item = &str> {
        self.beds.keys().map(String::as_str)
    }

    /// A snapshot for the screen. Unknown beds give an empty adult state.
    pub fn state(&self, bed: &str, now: DateTime<Utc>) -> BedAlarmState {
        let fallback;
        let b = match self.beds.get(bed) {
            Some(b) => b,
            None => {
                fallback = Bed::new(bed);
                &fallback
            }
        };
        let pause = b.pause.as_ref().filter(|p| p.until > now);
        let audio = match pause {
            None => AudioState::Normal,
            Some(p) => {
                let ms = (p.until - now).num_milliseconds();
                AudioState::Paused {
                    until: p.until,
                    remaining_s: (ms + 999) / 1000,
                    by: p.by.clone(),
                }
            }
        };
        let mut active: Vec<ActiveAlarm> = b
            .alarms
            .iter()
            .map(|a| ActiveAlarm {
                id: a.id,
                kind: a.kind.clone(),
                priority: a.priority,
                since: a.since,
                value: a.value,
                limit: a.limit,
                latched: !a.condition_active,
                acknowledged: a.acknowledged,
                acknowledged_by: a.acked_by.clone().filter(|_| a.acknowledged),
                audible: a.condition_active && !a.acknowledged && pause.is_none(),
                message: a.message.clone(),
                signal: a.priority.signal(),
                recurred: a.recurred,
                recurring_since: a.recurring_since,
            })
            .collect();
        active.sort_by(|x, y| {
            y.priority
                .cmp(&x.priority)
                .then(x.since.cmp(&y.since))
                .then(x.id.cmp(&y.id))
        });
        let limits = self
            .limits(bed)
            .0
            .into_iter()
            .map(|(p, l)| ParameterLimit {
                parameter: p,
                label: p.label().to_owned(),
                unit: p.display_unit().to_owned(),
                limit: l,
                patient_specific: b.overrides.contains_key(&p),
            })
            .collect();
        BedAlarmState {
            bed: bed.to_owned(),
            category: b.category,
            highest: active.iter().map(|a| a.priority).max(),
            sounding: active.iter().filter(|a| a.audible).map(|a| a.priority).max(),
            active,
            audio,
            limits,
        }
    }

    /// Snapshots of every known bed.
    pub fn states(&self, now: DateTime<Utc>) -> Vec<BedAlarmState> {
        self.beds.keys().map(|b| self.state(b, now)).collect()
    }

    /// The audio pause duration in force.
    pub fn audio_pause_duration(&self) -> Duration {
        self.preset.audio_pause
    }
}
