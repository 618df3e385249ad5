//! Vigil's alarm system: readings and a clock in, alarm events out.
//!
//! Pure logic: no I/O, no async, no wall clock. Every entry point takes
//! `now: DateTime<Utc>` from the caller's [`vigil_model::Clock`], so the same
//! engine runs live, at `--speed N`, and in tests.
//!
//! - [`limits`]: alarm limits, priorities and condition delays per parameter;
//!   per-category site presets loadable from JSON (IEC 60601-1-8 §6.5, §6.6).
//! - [`engine`]: the per-bed IEC 60601-1-8 alarm state machine (condition
//!   delays, latching, acknowledgement, time-limited audio pause with
//!   priority break-through, technical alarms).
//! - [`news2`]: the Royal College of Physicians NEWS2 (2017) score and a
//!   per-bed tracker whose risk-band rises become alarms in the engine.
//!
//! **PHI.** Alarm messages and the `value` fields of events carry measured
//! values ("SpO2 low 86 % < 90 %"). They are for the screen and the encrypted
//! alarm log only, never for `tracing` logs, errors or files in the clear
//! (ARCHITECTURE.md invariant 5). Ids, beds, devices, kinds and priorities
//! are not PHI.

pub mod engine;
pub mod limits;
pub mod news2;
mod serde_secs;

pub use engine::{
    AckTarget, ActiveAlarm, AlarmEngine, AlarmError, AlarmEvent, AlarmEventKind, AlarmKind, AudioState,
    BedAlarmState, BedSettings, Direction, EndReason, ParameterLimit, RearmReason, ResumeReason,
};
pub use limits::{
    Colour, Limit, LimitError, LimitSet, Parameter, PatientCategory, PresetError, Priority, Signal,
    SitePreset, TechnicalKind,
};
pub use news2::{
    AirOrOxygen, Consciousness, News2, News2Input, News2Param, News2Priorities, News2Tracker, Observed,
    ParamScore, Risk, RiskChange, SpO2Scale, SubScore, ValidityWindows,
};
