//! Alarm configuration: priorities, parameters, limits, condition delays and
//! per-category site presets.
//!
//! IEC 60601-1-8 (ed. 2.x) references:
//! - §6.1.2 alarm condition priority (high / medium / low) — [`Priority`];
//! - §6.3.2 visual alarm signals, Table 3 (colour, flashing frequency 1.4–2.8 Hz
//!   for high and 0.4–0.8 Hz for medium, duty cycle 20–60 %, low steady) —
//!   [`Priority::signal`];
//! - §6.4 disclosure of alarm system delays — [`Limit::delay`] is the alarm
//!   condition delay (persistence) and is part of the configuration, so it can
//!   be disclosed next to the limits;
//! - §6.5 alarm presets (default, site-configurable, per patient category) —
//!   [`SitePreset`];
//! - §6.6 alarm limits (shown beside each numeric) — [`LimitSet`].
//!
//! The numbers in [`SitePreset::standard`] are **site-configurable presets**
//! modelled on defaults common on commercial monitors, **not clinical advice**:
//! an installer overrides them with [`SitePreset::from_json`] and a clinician
//! per patient through the engine.

use std::collections::BTreeMap;
use std::fmt;

use chrono::Duration;
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use vigil_model::codes::ucum;
use vigil_model::Mdc;

use crate::news2::News2Priorities;

/// Alarm condition priority, IEC 60601-1-8 §6.1.2: high = immediate response
/// required, medium = prompt response, low = awareness. Ordered `Low < Medium < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Priority {
    Low,
    Medium,
    High,
}

/// Colour of an alarm indicator (IEC 60601-1-8 §6.3.2.2, Table 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Colour {
    Red,
    Yellow,
    Cyan,
}

/// How the screen draws an alarm of one priority.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, TS)]
#[ts(export, rename = "AlarmSignal")]
pub struct Signal {
    pub colour: Colour,
    /// Flashing frequency; `None` = steady (constant on).
    pub flash_hz: Option<f64>,
    /// Fraction of each period the indicator is on (1.0 when steady).
    pub duty: f64,
}

impl Priority {
    /// Visual alarm signal per IEC 60601-1-8 §6.3.2.2 Table 3:
    /// high = red flashing 1.4–2.8 Hz (we use 2.0 Hz), medium = yellow
    /// flashing 0.4–0.8 Hz (we use 0.6 Hz), both with a 20–60 % duty cycle
    /// (we use 50 %); low = cyan (or yellow), constant on. Priority is also
    /// given as text on screen, never by colour alone.
    pub fn signal(self) -> Signal {
        match self {
            Priority::High => Signal {
                colour: Colour::Red,
                flash_hz: Some(2.0),
                duty: 0.5,
            },
            Priority::Medium => Signal {
                colour: Colour::Yellow,
                flash_hz: Some(0.6),
                duty: 0.5,
            },
            Priority::Low => Signal {
                colour: Colour::Cyan,
                flash_hz: None,
                duty: 1.0,
            },
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A physiological parameter with alarm limits. Heart rate from ECG and pulse
/// rate from the oximeter are separate parameters with separate limits, as on
/// bedside monitors (the oximeter's pulse can differ from the ECG rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export, rename = "AlarmParameter")]
pub enum Parameter {
    /// MDC_ECG_HEART_RATE 147842.
    HeartRate,
    /// MDC_PULS_OXIM_PULS_RATE 149530.
    PulseRate,
    /// MDC_PULS_OXIM_SAT_O2 150456.
    Spo2,
    /// MDC_RESP_RATE 151562.
    RespRate,
    /// MDC_PRESS_BLD_NONINV_SYS 150021.
    NibpSystolic,
    /// MDC_PRESS_BLD_NONINV_DIA 150022.
    NibpDiastolic,
    /// MDC_PRESS_BLD_NONINV_MEAN 150023.
    NibpMean,
    /// MDC_TEMP_BODY 150364.
    Temperature,
}

impl Parameter {
    pub const ALL: [Parameter; 8] = [
        Parameter::HeartRate,
        Parameter::PulseRate,
        Parameter::Spo2,
        Parameter::RespRate,
        Parameter::NibpSystolic,
        Parameter::NibpDiastolic,
        Parameter::NibpMean,
        Parameter::Temperature,
    ];

    pub fn from_mdc(code: Mdc) -> Option<Parameter> {
        Some(match code {
            Mdc::ECG_HEART_RATE => Parameter::HeartRate,
            Mdc::PULS_OXIM_PULS_RATE => Parameter::PulseRate,
            Mdc::PULS_OXIM_SAT_O2 => Parameter::Spo2,
            Mdc::RESP_RATE => Parameter::RespRate,
            Mdc::PRESS_BLD_NONINV_SYS => Parameter::NibpSystolic,
            Mdc::PRESS_BLD_NONINV_DIA => Parameter::NibpDiastolic,
            Mdc::PRESS_BLD_NONINV_MEAN => Parameter::NibpMean,
            Mdc::TEMP_BODY => Parameter::Temperature,
            _ => return None,
        })
    }

    pub fn mdc(self) -> Mdc {
        match self {
            Parameter::HeartRate => Mdc::ECG_HEART_RATE,
            Parameter::PulseRate => Mdc::PULS_OXIM_PULS_RATE,
            Parameter::Spo2 => Mdc::PULS_OXIM_SAT_O2,
            Parameter::RespRate => Mdc::RESP_RATE,
            Parameter::NibpSystolic => Mdc::PRESS_BLD_NONINV_SYS,
            Parameter::NibpDiastolic => Mdc::PRESS_BLD_NONINV_DIA,
            Parameter::NibpMean => Mdc::PRESS_BLD_NONINV_MEAN,
            Parameter::Temperature => Mdc::TEMP_BODY,
        }
    }

    /// Short screen label ("HR", "SpO2", ...).
    pub fn label(self) -> &'static str {
        match self {
            Parameter::HeartRate => "HR",
            Parameter::PulseRate => "Pulse",
            Parameter::Spo2 => "SpO2",
            Parameter::RespRate => "RR",
            Parameter::NibpSystolic => "NIBP sys",
            Parameter::NibpDiastolic => "NIBP dia",
            Parameter::NibpMean => "NIBP mean",
            Parameter::Temperature => "Temp",
        }
    }

    /// The UCUM unit limits are expressed in.
    pub fn unit(self) -> &'static str {
        match self {
            Parameter::HeartRate | Parameter::PulseRate | Parameter::RespRate => ucum::PER_MIN,
            Parameter::Spo2 => ucum::PERCENT,
            Parameter::NibpSystolic | Parameter::NibpDiastolic | Parameter::NibpMean => ucum::MM_HG,
            Parameter::Temperature => ucum::CEL,
        }
    }

    /// The unit as printed on screen.
    pub fn display_unit(self) -> &'static str {
        match self {
            Parameter::HeartRate | Parameter::PulseRate | Parameter::RespRate => "/min",
            Parameter::Spo2 => "%",
            Parameter::NibpSystolic | Parameter::NibpDiastolic | Parameter::NibpMean => "mmHg",
            Parameter::Temperature => "°C",
        }
    }

    /// Converts a reported value to this parameter's limit unit. Known
    /// alternatives (°F for temperature, kPa for blood pressure) are converted;
    /// any other unit gives `None` and the value is not compared with limits
    /// (comparing 98.6 °F against 39.0 °C would be worse than no comparison).
    pub fn normalise(self, value: f64, unit: &str) -> Option<f64> {
        if !value.is_finite() {
            return None;
        }
        if unit == self.unit() {
            return Some(value);
        }
        match (self, unit) {
            (Parameter::Temperature, ucum::DEG_F) => Some((value - 32.0) * 5.0 / 9.0),
            (Parameter::NibpSystolic | Parameter::NibpDiastolic | Parameter::NibpMean, ucum::KPA) => {
                Some(value * 7.500_615_75)
            }
            _ => None,
        }
    }

    /// How far a condition must worsen beyond the value at which it was
    /// acknowledged before it sounds again (the acknowledgement covered what
    /// the nurse saw, not a deterioration since). Roughly one clinically
    /// meaningful step of each parameter.
    pub fn rearm_step(self) -> f64 {
        match self {
            Parameter::HeartRate | Parameter::PulseRate => 10.0,
            Parameter::Spo2 => 3.0,
            Parameter::RespRate => 5.0,
            Parameter::NibpSystolic => 15.0,
            Parameter::NibpDiastolic | Parameter::NibpMean => 10.0,
            Parameter::Temperature => 0.5,
        }
    }

    /// How long a value is current when the caller does not know its
    /// device's interval: continuous parameters a few seconds, spot
    /// measurements (NIBP, temperature) 15 minutes.
    pub fn default_stale_after(self) -> Duration {
        match self {
            Parameter::HeartRate | Parameter::PulseRate | Parameter::Spo2 | Parameter::RespRate => {
                Duration::seconds(10)
            }
            _ => Duration::minutes(15),
        }
    }

    /// Formats a value in this parameter's usual resolution (temperature to
    /// 0.1 °C, the others to whole units unless fractional).
    pub fn format_value(self, v: f64) -> String {
        match self {
            Parameter::Temperature => format!("{v:.1}"),
            _ if (v - v.round()).abs() < 1e-9 => format!("{v:.0}"),
            _ => format!("{v:.1}"),
        }
    }
}

/// Alarm limits for one parameter (IEC 60601-1-8 §6.6).
///
/// A value alarms when strictly beyond a limit (`v < low` or `v > high`); a
/// value equal to a limit is in range. `critical_low`/`critical_high` are
/// second, outer limits: a condition beyond them has priority
/// [`Priority::High`] (escalation, see the engine). A `None` limit is off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, TS)]
#[ts(export, rename = "AlarmLimit")]
pub struct Limit {
    #[serde(default)]
    pub low: Option<f64>,
    #[serde(default)]
    pub high: Option<f64>,
    #[serde(default)]
    pub critical_low: Option<f64>,
    #[serde(default)]
    pub critical_high: Option<f64>,
    #[serde(default = "medium")]
    pub priority_low: Priority,
    #[serde(default = "medium")]
    pub priority_high: Priority,
    /// Alarm condition delay (IEC 60601-1-8 §6.4.1): how long the value must
    /// stay beyond the limit before the alarm starts. JSON: `delay_s`.
    #[serde(rename = "delay_s", with = "crate::serde_secs", default = "Duration::zero")]
    #[ts(type = "number")]
    pub delay: Duration,
}

fn medium() -> Priority {
    Priority::Medium
}

/// An invalid limit (never carries a measured value, only the configuration).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitError {
    #[error("{0:?}: low limit {1} is not below high limit {2}")]
    LowNotBelowHigh(Parameter, f64, f64),
    #[error("{0:?}: critical low {1} is above low limit {2}")]
    CriticalLowAboveLow(Parameter, f64, f64),
    #[error("{0:?}: critical high {1} is below high limit {2}")]
    CriticalHighBelowHigh(Parameter, f64, f64),
    #[error("{0:?}: limits must be finite numbers")]
    NotFinite(Parameter),
    #[error("{0:?}: delay must be between 0 and 24 h")]
    BadDelay(Parameter),
}

impl Limit {
    /// A limit pair with medium priority on both sides and no critical limits.
    pub fn new(low: Option<f64>, high: Option<f64>, delay: Duration) -> Limit {
        Limit {
            low,
            high,
            critical_low: None,
            critical_high: None,
            priority_low: Priority::Medium,
            priority_high: Priority::Medium,
            delay,
        }
    }

    /// No alarm for this parameter.
    pub fn off() -> Limit {
        Limit::new(None, None, Duration::zero())
    }

    pub fn with_critical(mut self, critical_low: Option<f64>, critical_high: Option<f64>) -> Limit {
        self.critical_low = critical_low;
        self.critical_high = critical_high;
        self
    }

    pub fn with_priorities(mut self, low: Priority, high: Priority) -> Limit {
        self.priority_low = low;
        self.priority_high = high;
        self
    }

    pub fn validate(&self, p: Parameter) -> Result<(), LimitError> {
        let all = [self.low, self.high, self.critical_low, self.critical_high];
        if all.iter().flatten().any(|v| !v.is_finite()) {
            return Err(LimitError::NotFinite(p));
        }
        if self.delay < Duration::zero() || self.delay > Duration::hours(24) {
            return Err(LimitError::BadDelay(p));
        }
        if let (Some(l), Some(h)) = (self.low, self.high) {
            if l >= h {
                return Err(LimitError::LowNotBelowHigh(p, l, h));
            }
        }
        if let (Some(c), Some(l)) = (self.critical_low, self.low) {
            if c > l {
                return Err(LimitError::CriticalLowAboveLow(p, c, l));
            }
        }
        if let (Some(c), Some(h)) = (self.critical_high, self.high) {
            if c < h {
                return Err(LimitError::CriticalHighBelowHigh(p, c, h));
            }
        }
        Ok(())
    }

    /// The outer (alarm) low limit: `low`, or `critical_low` alone when only that is set.
    pub fn effective_low(&self) -> Option<f64> {
        self.low.or(self.critical_low)
    }

    pub fn effective_high(&self) -> Option<f64> {
        self.high.or(self.critical_high)
    }
}

/// Limits for every parameter of one patient category (or one patient).
/// A parameter absent from the set has no alarm limits.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LimitSet(pub BTreeMap<Parameter, Limit>);

impl LimitSet {
    pub fn get(&self, p: Parameter) -> Option<&Limit> {
        self.0.get(&p)
    }

    pub fn set(&mut self, p: Parameter, l: Limit) {
        self.0.insert(p, l);
    }

    pub fn validate(&self) -> Result<(), LimitError> {
        self.0.iter().try_for_each(|(p, l)| l.validate(*p))
    }
}

/// Patient category for default limits (IEC 60601-1-8 §6.5 presets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export, rename = "AlarmPatientCategory")]
pub enum PatientCategory {
    #[default]
    Adult,
    Paediatric,
    Neonatal,
}

/// A technical alarm condition (IEC 60601-1-8 §3: technical alarm condition;
/// "INOP" on many monitors). Silence is never "all is well": losing a sensor,
/// a data feed, storage or alarm delivery is itself an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum TechnicalKind {
    /// The sensor reports it is off the patient (no skin contact, probe off).
    SensorOff,
    /// Data-age watchdog: no data from the device for longer than expected.
    NoData,
    /// The device link is lost.
    Disconnected,
    LowBattery,
    /// Recording interrupted: readings cannot be written to the encrypted
    /// store (raised at the first failed write, cleared once the readings
    /// held meanwhile have been written).
    StoreFailure,
    /// An alarm or observation could not be delivered (central station, FHIR)
    /// — IEC 60601-1-8 §6.11.2: a failed delivery is a technical alarm at the source.
    DeliveryFailure,
    /// A parameter has sent only special values (NaN, NRes, ±INF) for longer
    /// than the preset's `no_valid_value` time: it can no longer be alarmed on.
    NoValidMeasurement,
    /// The workstation cannot sound alarms (audio locked, window hidden): the
    /// nurse must know the monitor is mute (IEC 60601-1-8 §6.3.3: an alarm
    /// signal that cannot be generated is a technical alarm condition).
    AudioUnavailable,
    /// The encrypted alarm log cannot be written: the record of alarms and
    /// operator actions (IEC 60601-1-8 §6.12) is at risk.
    AlarmLogFailure,
    /// The signed audit trail cannot be written (issue 14): who did what is held in
    /// memory and retried, and lost beyond its bound or at shutdown.
    AuditFailure,
    /// At start, the bed's saved clinical settings (patient-specific limits,
    /// NEWS2 entries, latched alarms) could not be restored: the bed runs on
    /// the category preset until someone checks them. Raised and cleared at
    /// once, so at high priority it stays shown (latched) until acknowledged.
    SettingsNotRestored,
    /// At start the encrypted store was damaged: it was moved aside and a
    /// new one started, so what was recorded before is not in the record
    /// until someone salvages it (`vigil store salvage`). Monitoring goes on.
    /// Raised and cleared at once: latched until acknowledged.
    RecordingUnavailable,
    /// Free space where the store lives is below the site's threshold: a
    /// warning before the disk is full and recording stops.
    LowDisk,
    /// A Bluetooth device reconnected with another identity (Device
    /// Information serial number or System ID) than the one pinned when it
    /// was assigned: its data is refused until a nurse assigns it again.
    IdentityChanged,
    /// The site requires bonded Bluetooth links and this device's link is
    /// not bonded (or its bonding cannot be read): its data is refused.
    NotBonded,
}

impl TechnicalKind {
    pub const ALL: [TechnicalKind; 15] = [
        TechnicalKind::SensorOff,
        TechnicalKind::NoData,
        TechnicalKind::Disconnected,
        TechnicalKind::LowBattery,
        TechnicalKind::StoreFailure,
        TechnicalKind::DeliveryFailure,
        TechnicalKind::NoValidMeasurement,
        TechnicalKind::AudioUnavailable,
        TechnicalKind::AlarmLogFailure,
        TechnicalKind::AuditFailure,
        TechnicalKind::SettingsNotRestored,
        TechnicalKind::RecordingUnavailable,
        TechnicalKind::LowDisk,
        TechnicalKind::IdentityChanged,
        TechnicalKind::NotBonded,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            TechnicalKind::SensorOff => "sensor off",
            TechnicalKind::NoData => "no data",
            TechnicalKind::Disconnected => "disconnected",
            TechnicalKind::LowBattery => "low battery",
            TechnicalKind::StoreFailure => "recording interrupted",
            TechnicalKind::DeliveryFailure => "alarm/data delivery failure",
            TechnicalKind::NoValidMeasurement => "no valid measurement",
            TechnicalKind::AudioUnavailable => "ALARM SOUND UNAVAILABLE",
            TechnicalKind::AlarmLogFailure => "alarm log failure",
            TechnicalKind::AuditFailure => "audit trail failure",
            TechnicalKind::SettingsNotRestored => {
                "clinical settings not restored: check limits and NEWS2 entries"
            }
            TechnicalKind::RecordingUnavailable => {
                "recording unavailable: the store was damaged and moved aside; a new one was started"
            }
            TechnicalKind::LowDisk => "low disk space: recording stops when the disk is full",
            TechnicalKind::IdentityChanged => {
                "device identity changed: data refused until the device is assigned again"
            }
            TechnicalKind::NotBonded => "Bluetooth link not bonded: data refused (site policy)",
        }
    }

    /// Conditions under which the device's measurements can no longer be trusted.
    pub fn invalidates_measurements(self) -> bool {
        matches!(
            self,
            TechnicalKind::SensorOff
                | TechnicalKind::NoData
                | TechnicalKind::Disconnected
                | TechnicalKind::IdentityChanged
                | TechnicalKind::NotBonded
        )
    }

    /// Default priority: loss of a measurement is medium (prompt response),
    /// low battery low, losing storage high (the record is at risk), delivery
    /// failure medium. A mute monitor is high: every other alarm at the bed
    /// may go unheard until someone acts.
    pub fn default_priority(self) -> Priority {
        match self {
            TechnicalKind::SensorOff
            | TechnicalKind::NoData
            | TechnicalKind::Disconnected
            | TechnicalKind::NoValidMeasurement => Priority::Medium,
            TechnicalKind::LowBattery => Priority::Low,
            // Data from a device that may not be the one at the bed.
            TechnicalKind::IdentityChanged | TechnicalKind::NotBonded => Priority::High,
            TechnicalKind::StoreFailure
            | TechnicalKind::AudioUnavailable
            | TechnicalKind::SettingsNotRestored
            | TechnicalKind::RecordingUnavailable => Priority::High,
            TechnicalKind::DeliveryFailure
            | TechnicalKind::AlarmLogFailure
            | TechnicalKind::AuditFailure
            | TechnicalKind::LowDisk => {
                Priority::Medium
            }
        }
    }
}

/// A site's alarm presets (IEC 60601-1-8 §6.5): default limits per patient
/// category, technical alarm priorities, audio-pause duration and the NEWS2
/// alarm mapping. Site-configurable presets, not clinical advice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SitePreset {
    pub name: String,
    pub adult: LimitSet,
    pub paediatric: LimitSet,
    pub neonatal: LimitSet,
    /// Priority of each technical alarm kind.
    pub technical: BTreeMap<TechnicalKind, Priority>,
    /// Audio paused duration (IEC 60601-1-8 §6.8: time-limited). JSON: `audio_pause_s`.
    #[serde(rename = "audio_pause_s", with = "crate::serde_secs")]
    pub audio_pause: Duration,
    pub news2: News2Priorities,
    /// How long a parameter may send only special values before it is a
    /// [`TechnicalKind::NoValidMeasurement`] alarm. JSON: `no_valid_value_s`.
    #[serde(
        rename = "no_valid_value_s",
        with = "crate::serde_secs",
        default = "default_no_valid_value"
    )]
    pub no_valid_value: Duration,
    /// An acknowledgement of a condition that persists expires after this
    /// (the alarm sounds again as a reminder). JSON: `ack_reminder_s`.
    #[serde(
        rename = "ack_reminder_s",
        with = "crate::serde_secs",
        default = "default_ack_reminder"
    )]
    pub ack_reminder: Duration,
}

fn default_no_valid_value() -> Duration {
    Duration::seconds(10)
}

fn default_ack_reminder() -> Duration {
    Duration::minutes(10)
}

/// Partial site configuration: everything optional, merged over [`SitePreset::standard`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetOverlay {
    name: Option<String>,
    #[serde(default)]
    adult: BTreeMap<Parameter, Limit>,
    #[serde(default)]
    paediatric: BTreeMap<Parameter, Limit>,
    #[serde(default)]
    neonatal: BTreeMap<Parameter, Limit>,
    #[serde(default)]
    technical: BTreeMap<TechnicalKind, Priority>,
    audio_pause_s: Option<f64>,
    news2: Option<News2Priorities>,
    no_valid_value_s: Option<f64>,
    ack_reminder_s: Option<f64>,
}

/// A site configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PresetError {
    #[error("site preset JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("site preset: {0}")]
    Limit(#[from] LimitError),
    #[error("site preset: audio pause must be 1 s to 15 min")]
    AudioPause,
    #[error("site preset: no_valid_value_s must be 1 s to 5 min")]
    NoValidValue,
    #[error("site preset: ack_reminder_s must be 1 min to 60 min")]
    AckReminder,
}

impl Default for SitePreset {
    fn default() -> SitePreset {
        SitePreset::standard()
    }
}

impl SitePreset {
    /// Vigil's built-in presets. Site-configurable presets modelled on common
    /// monitor defaults (adult: HR 50–120, SpO2 ≥ 90, RR 8–30, systolic
    /// 90–160, temperature 36.0–39.0), **not clinical advice**.
    ///
    /// Condition delays: HR/pulse 10 s (IEC 60601-2-27 expects a heart-rate
    /// alarm within about 10 s), SpO2 10 s, RR 10 s; NIBP and temperature 0 s
    /// (spot measurements: each value is a completed measurement).
    pub fn standard() -> SitePreset {
        let s = Duration::seconds;
        let (med, low) = (Priority::Medium, Priority::Low);
        let lim = |l: f64, h: f64, cl: f64, ch: f64, d: i64| {
            Limit::new(Some(l), Some(h), s(d)).with_critical(Some(cl), Some(ch))
        };
        let spo2 = |l: f64, cl: f64, h: Option<f64>| Limit {
            low: Some(l),
            high: h,
            critical_low: Some(cl),
            critical_high: None,
            priority_low: med,
            // A high SpO2 limit (neonates: hyperoxia) is an awareness alarm.
            priority_high: low,
            delay: s(10),
        };
        // Temperature low is medium, not an awareness alarm: a falling
        // temperature (hypothermia, sepsis in the old and the young) needs a
        // prompt response, and NEWS2 scores ≤ 35.0 °C as 3 (a single-3 red flag).
        let temp = |l: f64, h: f64| Limit::new(Some(l), Some(h), s(0)).with_priorities(med, med);
        let set = |v: Vec<(Parameter, Limit)>| LimitSet(v.into_iter().collect());
        use Parameter::*;
        let adult = set(vec![
            (HeartRate, lim(50.0, 120.0, 40.0, 150.0, 10)),
            (PulseRate, lim(50.0, 120.0, 40.0, 150.0, 10)),
            (Spo2, spo2(90.0, 85.0, None)),
            (RespRate, lim(8.0, 30.0, 5.0, 40.0, 10)),
            (NibpSystolic, lim(90.0, 160.0, 70.0, 200.0, 0)),
            (NibpDiastolic, Limit::new(Some(50.0), Some(90.0), s(0))),
            (NibpMean, lim(60.0, 110.0, 50.0, 130.0, 0)),
            (Temperature, temp(36.0, 39.0)),
        ]);
        // Paediatric (roughly 1–12 years): one broad preset; sites refine by age band.
        let paediatric = set(vec![
            (HeartRate, lim(60.0, 160.0, 50.0, 180.0, 10)),
            (PulseRate, lim(60.0, 160.0, 50.0, 180.0, 10)),
            (Spo2, spo2(90.0, 85.0, None)),
            (RespRate, lim(12.0, 40.0, 8.0, 50.0, 10)),
            (NibpSystolic, lim(75.0, 120.0, 60.0, 140.0, 0)),
            (NibpDiastolic, Limit::new(Some(35.0), Some(70.0), s(0))),
            (NibpMean, lim(50.0, 90.0, 40.0, 110.0, 0)),
            (Temperature, temp(36.0, 39.0)),
        ]);
        // Neonatal: a high SpO2 limit guards against hyperoxia.
        let neonatal = set(vec![
            (HeartRate, lim(100.0, 200.0, 80.0, 220.0, 10)),
            (PulseRate, lim(100.0, 200.0, 80.0, 220.0, 10)),
            (Spo2, spo2(88.0, 80.0, Some(98.0))),
            (RespRate, lim(25.0, 70.0, 15.0, 90.0, 10)),
            (NibpSystolic, lim(50.0, 90.0, 40.0, 105.0, 0)),
            (NibpDiastolic, Limit::new(Some(30.0), Some(70.0), s(0))),
            (NibpMean, lim(35.0, 60.0, 30.0, 75.0, 0)),
            (Temperature, temp(36.0, 38.0)),
        ]);
        SitePreset {
            name: "vigil-standard".into(),
            adult,
            paediatric,
            neonatal,
            technical: TechnicalKind::ALL
                .iter()
                .map(|k| (*k, k.default_priority()))
                .collect(),
            audio_pause: Duration::minutes(2),
            news2: News2Priorities::default(),
            no_valid_value: default_no_valid_value(),
            ack_reminder: default_ack_reminder(),
        }
    }

    /// Loads a site configuration: any subset of the fields of a serialised
    /// `SitePreset`, merged over [`SitePreset::standard`] parameter by
    /// parameter (a parameter given replaces that parameter's limit; `{}`
    /// turns that parameter's alarms off). The result is validated.
    ///
    /// ```json
    /// { "name": "ward 7", "audio_pause_s": 60,
    ///   "adult": { "spo2": { "low": 92, "critical_low": 88, "delay_s": 15 } },
    ///   "technical": { "low_battery": "medium" } }
    /// ```
    pub fn from_json(json: &str) -> Result<SitePreset, PresetError> {
        let o: PresetOverlay = serde_json::from_str(json)?;
        let mut p = SitePreset::standard();
        if let Some(n) = o.name {
            p.name = n;
        }
        p.adult.0.extend(o.adult);
        p.paediatric.0.extend(o.paediatric);
        p.neonatal.0.extend(o.neonatal);
        p.technical.extend(o.technical);
        if let Some(s) = o.audio_pause_s {
            p.audio_pause = crate::serde_secs::from_secs(s).ok_or(PresetError::AudioPause)?;
        }
        if let Some(n) = o.news2 {
            p.news2 = n;
        }
        if let Some(s) = o.no_valid_value_s {
            p.no_valid_value = crate::serde_secs::from_secs(s).ok_or(PresetError::NoValidValue)?;
        }
        if let Some(s) = o.ack_reminder_s {
            p.ack_reminder = crate::serde_secs::from_secs(s).ok_or(PresetError::AckReminder)?;
        }
        p.validate()?;
        Ok(p)
    }

    pub fn validate(&self) -> Result<(), PresetError> {
        self.adult.validate()?;
        self.paediatric.validate()?;
        self.neonatal.validate()?;
        if self.audio_pause < Duration::seconds(1) || self.audio_pause > Duration::minutes(15) {
            return Err(PresetError::AudioPause);
        }
        if self.no_valid_value < Duration::seconds(1) || self.no_valid_value > Duration::minutes(5) {
            return Err(PresetError::NoValidValue);
        }
        if self.ack_reminder < Duration::minutes(1) || self.ack_reminder > Duration::minutes(60) {
            return Err(PresetError::AckReminder);
        }
        Ok(())
    }

    pub fn limits_for(&self, c: PatientCategory) -> &LimitSet {
        match c {
            PatientCategory::Adult => &self.adult,
            PatientCategory::Paediatric => &self.paediatric,
            PatientCategory::Neonatal => &self.neonatal,
        }
    }

    pub fn technical_priority(&self, k: TechnicalKind) -> Priority {
        self.technical
            .get(&k)
            .copied()
            .unwrap_or_else(|| k.default_priority())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_preset_is_valid_and_round_trips() {
        let p = SitePreset::standard();
        p.validate().unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(SitePreset::from_json(&json).unwrap(), p);
    }

    #[test]
    fn every_parameter_maps_to_and_from_its_code() {
        for p in Parameter::ALL {
            assert_eq!(Parameter::from_mdc(p.mdc()), Some(p));
        }
        assert_eq!(Parameter::from_mdc(Mdc::PULS_OXIM_PERF_REL), None);
    }

    #[test]
    fn units_convert() {
        let t = Parameter::Temperature.normalise(98.6, ucum::DEG_F).unwrap();
        assert!((t - 37.0).abs() < 1e-9);
        let s = Parameter::NibpSystolic.normalise(16.0, ucum::KPA).unwrap();
        assert!((s - 120.0).abs() < 0.01);
        assert_eq!(Parameter::Spo2.normalise(95.0, "1"), None);
        assert_eq!(Parameter::Spo2.normalise(f64::NAN, "%"), None);
    }

    #[test]
    fn signals_follow_table_3() {
        let h = Priority::High.signal();
        assert_eq!(h.colour, Colour::Red);
        assert!((1.4..=2.8).contains(&h.flash_hz.unwrap()) && (0.2..=0.6).contains(&h.duty));
        let m = Priority::Medium.signal();
        assert_eq!(m.colour, Colour::Yellow);
        assert!((0.4..=0.8).contains(&m.flash_hz.unwrap()) && (0.2..=0.6).contains(&m.duty));
        assert_eq!(Priority::Low.signal().flash_hz, None);
        assert!(Priority::Low < Priority::Medium && Priority::Medium < Priority::High);
    }
}
