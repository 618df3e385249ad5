//! National Early Warning Score 2 (Royal College of Physicians, 2017).
//!
//! Chart 1 of NEWS2 ("The NEWS scoring system") gives each of seven
//! parameters 0–3 points; the aggregate and the "any single parameter scoring
//! 3" rule give the clinical risk (Chart 3, thresholds and triggers) and the
//! response (Chart 4, clinical response):
//!
//! | risk | trigger | response |
//! |---|---|---|
//! | low | 0 | routine monitoring, minimum 12-hourly |
//! | low | 1–4 | registered nurse assesses; 4–6-hourly |
//! | low-medium | a single parameter scoring 3 (total < 5) | urgent ward-based response |
//! | medium | 5–6 | key threshold for urgent response |
//! | high | ≥ 7 | emergency response |
//!
//! **Binning decisions.** The chart is written in whole numbers (temperature
//! in tenths of a degree) and leaves gaps between its bands (RR 8 | 9,
//! 38.0 | 38.1 °C). A value in a gap is scored in the **more severe** of the
//! two bands around it (RR 8.5 → 3 points, not 1; 38.05 °C → 1 point; SpO2
//! 91.5 % → 3 points): an early-warning score must not round a patient into
//! a milder band. A value on the chart's resolution scores in its own band;
//! a tolerance of 1e-6 guards against binary representation (38.1 is stored
//! as 38.100000000000001).
//!
//! **SpO2 scale 2** is used only when a clinician set it ([`News2Input::spo2_scale`]);
//! otherwise scale 1. On scale 2 a saturation ≥ 93 % scores 0 on air and 1–3
//! on oxygen; if air/oxygen is missing or stale it is scored as on oxygen
//! (the higher score) — the score is flagged incomplete in that case anyway.
//!
//! **Missing and stale.** A parameter with no value is `Missing`; one older
//! than its validity window ([`ValidityWindows`]) is `Stale` and does not
//! count in the total (its last points are reported for information). A score
//! with a missing or stale parameter has `complete == false` and lists them:
//! its total is a lower bound, never to be shown as a full NEWS2.
//!
//! The score and its inputs are clinical data (PHI): screen and encrypted
//! store only.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use vigil_model::codes::ucum;
use vigil_model::{BedId, Mdc, Reading};

use crate::limits::{Parameter, Priority};

/// A value with when it was observed and, for nurse-entered values, by whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observed<T> {
    pub value: T,
    pub at: DateTime<Utc>,
    /// Staff id of the nurse who entered it; `None` for device readings.
    #[serde(default)]
    pub entered_by: Option<String>,
}

impl<T> Observed<T> {
    pub fn device(value: T, at: DateTime<Utc>) -> Observed<T> {
        Observed {
            value,
            at,
            entered_by: None,
        }
    }

    pub fn entered(value: T, at: DateTime<Utc>, user: &str) -> Observed<T> {
        Observed {
            value,
            at,
            entered_by: Some(user.to_owned()),
        }
    }
}

/// ACVPU: alert, new confusion, voice, pain, unresponsive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Consciousness {
    Alert,
    NewConfusion,
    Voice,
    Pain,
    Unresponsive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum AirOrOxygen {
    Air,
    Oxygen,
}

/// SpO2 scoring scale. Scale 2 (target 88–92 %, hypercapnic respiratory
/// failure) only when a clinician has set it for the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum SpO2Scale {
    #[default]
    Scale1,
    Scale2,
}

/// The latest value of each NEWS2 parameter.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct News2Input {
    /// /min.
    pub respiration_rate: Option<Observed<f64>>,
    /// %.
    pub spo2: Option<Observed<f64>>,
    /// Set by a clinician; `None` means scale 1. Never stale.
    pub spo2_scale: Option<Observed<SpO2Scale>>,
    pub air_or_oxygen: Option<Observed<AirOrOxygen>>,
    /// `mm[Hg]`.
    pub systolic: Option<Observed<f64>>,
    /// /min (ECG heart rate or pulse rate).
    pub pulse: Option<Observed<f64>>,
    pub consciousness: Option<Observed<Consciousness>>,
    /// °C.
    pub temperature: Option<Observed<f64>>,
}

impl News2Input {
    /// Takes a device reading into the input if it is a NEWS2 parameter, a
    /// number (specials and values the device marked invalid never count), in a known unit, and not older than the
    /// value already held. Pulse comes from ECG heart rate, oximeter pulse
    /// rate or the NIBP pulse, whichever is latest. Returns whether it was used.
    pub fn apply_reading(&mut self, r: &Reading) -> bool {
        let Some(v) = r.value.number().filter(|v| v.is_finite() && r.usable()) else {
            return false;
        };
        let (slot, v) = match r.code {
            Mdc::RESP_RATE if r.unit == ucum::PER_MIN => (&mut self.respiration_rate, v),
            Mdc::PULS_OXIM_SAT_O2 if r.unit == ucum::PERCENT => (&mut self.spo2, v),
            Mdc::ECG_HEART_RATE | Mdc::PULS_OXIM_PULS_RATE | Mdc::PULS_RATE_NON_INV
                if r.unit == ucum::PER_MIN =>
            {
                (&mut self.pulse, v)
            }
            Mdc::PRESS_BLD_NONINV_SYS => match Parameter::NibpSystolic.normalise(v, &r.unit) {
                Some(v) => (&mut self.systolic, v),
                None => return false,
            },
            Mdc::TEMP_BODY => match Parameter::Temperature.normalise(v, &r.unit) {
                Some(v) => (&mut self.temperature, v),
                None => return false,
            },
            _ => return false,
        };
        if slot.as_ref().is_some_and(|o| o.at > r.received) {
            return false;
        }
        *slot = Some(Observed::device(v, r.received));
        true
    }
}

/// How long each parameter stays valid for scoring. Defaults: 5 min for the
/// continuously monitored RR, SpO2 and pulse; 1 h for NIBP; 4 h for
/// temperature, consciousness and air/oxygen (nurse observations).
/// JSON in seconds (`respiration_rate_s`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ValidityWindows {
    #[serde(rename = "respiration_rate_s", with = "crate::serde_secs")]
    pub respiration_rate: Duration,
    #[serde(rename = "spo2_s", with = "crate::serde_secs")]
    pub spo2: Duration,
    #[serde(rename = "air_or_oxygen_s", with = "crate::serde_secs")]
    pub air_or_oxygen: Duration,
    #[serde(rename = "systolic_s", with = "crate::serde_secs")]
    pub systolic: Duration,
    #[serde(rename = "pulse_s", with = "crate::serde_secs")]
    pub pulse: Duration,
    #[serde(rename = "consciousness_s", with = "crate::serde_secs")]
    pub consciousness: Duration,
    #[serde(rename = "temperature_s", with = "crate::serde_secs")]
    pub temperature: Duration,
}

impl Default for ValidityWindows {
    fn default() -> ValidityWindows {
        ValidityWindows {
            respiration_rate: Duration::minutes(5),
            spo2: Duration::minutes(5),
            air_or_oxygen: Duration::hours(4),
            systolic: Duration::hours(1),
            pulse: Duration::minutes(5),
            consciousness: Duration::hours(4),
            temperature: Duration::hours(4),
        }
    }
}

/// The seven NEWS2 parameters, in chart order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum News2Param {
    RespirationRate,
    Spo2,
    AirOrOxygen,
    Systolic,
    Pulse,
    Consciousness,
    Temperature,
}

/// One parameter's contribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case", tag = "status")]
#[ts(export)]
pub enum SubScore {
    Scored {
        points: u8,
    },
    Missing,
    /// Older than its validity window: not counted in the total.
    Stale {
        age_s: i64,
        last_points: u8,
    },
}

impl SubScore {
    /// Points counted in the total (0 for missing and stale).
    pub fn points(self) -> u8 {
        match self {
            SubScore::Scored { points } => points,
            _ => 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ParamScore {
    pub parameter: News2Param,
    pub score: SubScore,
}

/// Clinical risk (NEWS2 Chart 3). Ordered `Low < LowMedium < Medium < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export, rename = "News2Risk")]
pub enum Risk {
    Low,
    LowMedium,
    Medium,
    High,
}

impl Risk {
    /// Risk from the aggregate and the single-3 rule: ≥ 7 high, 5–6 medium,
    /// otherwise a single 3 makes it low-medium, otherwise low.
    pub fn classify(total: u8, any_single_3: bool) -> Risk {
        match total {
            7.. => Risk::High,
            5..=6 => Risk::Medium,
            _ if any_single_3 => Risk::LowMedium,
            _ => Risk::Low,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::LowMedium => "low-medium",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

/// Clinical response text (NEWS2 Chart 4, abridged).
pub fn response(total: u8, risk: Risk) -> &'static str {
    match risk {
        Risk::High => "High: emergency response",
        Risk::Medium => "Medium: key threshold for urgent response",
        Risk::LowMedium => "Low-medium: urgent ward-based response",
        Risk::Low if total == 0 => "Routine monitoring (minimum 12-hourly)",
        Risk::Low => "Low: inform registered nurse; 4–6 hourly",
    }
}

/// A NEWS2 score at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct News2 {
    pub at: DateTime<Utc>,
    pub scale: SpO2Scale,
    /// All seven parameters in chart order.
    pub parameters: Vec<ParamScore>,
    /// Sum of the scored (fresh) parameters.
    pub total: u8,
    pub any_single_3: bool,
    pub risk: Risk,
    pub response: String,
    /// No parameter missing or stale.
    pub complete: bool,
    pub missing_parameters: Vec<News2Param>,
    pub stale_parameters: Vec<News2Param>,
}

impl News2 {
    pub fn sub(&self, p: News2Param) -> SubScore {
        self.parameters
            .iter()
            .find(|s| s.parameter == p)
            .map(|s| s.score)
            .unwrap_or(SubScore::Missing)
    }
}

/// The chart positions (whole `1/scale` units) on either side of `v`: the
/// same twice when `v` is on the chart's resolution (see module docs).
fn around(v: f64, scale: f64) -> [i64; 2] {
    // `as` saturates for out-of-range values; inputs are finite.
    let x = v * scale;
    [(x + 1e-6).floor() as i64, (x - 1e-6).ceil() as i64]
}

/// Points of `v` on a chart of resolution `1/scale`: the more severe band
/// when `v` falls between two (see module docs).
fn points(v: f64, scale: f64, chart: impl Fn(i64) -> u8) -> u8 {
    around(v, scale).into_iter().map(chart).max().unwrap_or(0)
}

pub fn score_respiration_rate(v: f64) -> u8 {
    points(v, 1.0, |x| match x {
        ..=8 => 3,
        9..=11 => 1,
        12..=20 => 0,
        21..=24 => 2,
        25.. => 3,
    })
}

/// SpO2 points. `air_or_oxygen` matters only on scale 2 at ≥ 93 %; `None`
/// (unknown) is scored as oxygen there (see module docs).
pub fn score_spo2(v: f64, scale: SpO2Scale, air_or_oxygen: Option<AirOrOxygen>) -> u8 {
    points(v, 1.0, |s| match scale {
        SpO2Scale::Scale1 => match s {
            ..=91 => 3,
            92..=93 => 2,
            94..=95 => 1,
            96.. => 0,
        },
        SpO2Scale::Scale2 => match (s, air_or_oxygen) {
            (..=83, _) => 3,
            (84..=85, _) => 2,
            (86..=87, _) => 1,
            (88..=92, _) => 0,
            (93.., Some(AirOrOxygen::Air)) => 0,
            (93..=94, _) => 1,
            (95..=96, _) => 2,
            (97.., _) => 3,
        },
    })
}

pub fn score_air_or_oxygen(v: AirOrOxygen) -> u8 {
    match v {
        AirOrOxygen::Air => 0,
        AirOrOxygen::Oxygen => 2,
    }
}

pub fn score_systolic(v: f64) -> u8 {
    points(v, 1.0, |x| match x {
        ..=90 => 3,
        91..=100 => 2,
        101..=110 => 1,
        111..=219 => 0,
        220.. => 3,
    })
}

pub fn score_pulse(v: f64) -> u8 {
    points(v, 1.0, |x| match x {
        ..=40 => 3,
        41..=50 => 1,
        51..=90 => 0,
        91..=110 => 1,
        111..=130 => 2,
        131.. => 3,
    })
}

pub fn score_consciousness(v: Consciousness) -> u8 {
    match v {
        Consciousness::Alert => 0,
        _ => 3,
    }
}

/// Temperature points on the chart's 0.1 °C resolution.
pub fn score_temperature(v: f64) -> u8 {
    points(v, 10.0, |x| match x {
        ..=350 => 3,
        351..=360 => 1,
        361..=380 => 0,
        381..=390 => 1,
        391.. => 2,
    })
}

/// Scores `input` at `now`. See the module docs for missing/stale handling.
pub fn score(input: &News2Input, now: DateTime<Utc>, validity: &ValidityWindows) -> News2 {
    let scale = input.spo2_scale.as_ref().map(|o| o.value).unwrap_or_default();
    let fresh = |at: DateTime<Utc>, window: Duration| now - at <= window;
    let oxygen_known = input
        .air_or_oxygen
        .as_ref()
        .filter(|o| fresh(o.at, validity.air_or_oxygen))
        .map(|o| o.value);

    fn sub<T: Copy>(
        o: &Option<Observed<T>>,
        now: DateTime<Utc>,
        window: Duration,
        f: impl Fn(T) -> u8,
    ) -> SubScore {
        match o {
            None => SubScore::Missing,
            Some(o) => {
                let points = f(o.value);
                let age = now - o.at;
                if age > window {
                    SubScore::Stale {
                        age_s: age.num_seconds(),
                        last_points: points,
                    }
                } else {
                    SubScore::Scored { points }
                }
            }
        }
    }
    let finite = |o: &Option<Observed<f64>>| o.clone().filter(|o| o.value.is_finite());

    let parameters = vec![
        ParamScore {
            parameter: News2Param::RespirationRate,
            score: sub(
                &finite(&input.respiration_rate),
                now,
                validity.respiration_rate,
                score_respiration_rate,
            ),
        },
        ParamScore {
            parameter: News2Param::Spo2,
            score: sub(&finite(&input.spo2), now, validity.spo2, |v| {
                score_spo2(v, scale, oxygen_known)
            }),
        },
        ParamScore {
            parameter: News2Param::AirOrOxygen,
            score: sub(
                &input.air_or_oxygen,
                now,
                validity.air_or_oxygen,
                score_air_or_oxygen,
            ),
        },
        ParamScore {
            parameter: News2Param::Systolic,
            score: sub(&finite(&input.systolic), now, validity.systolic, score_systolic),
        },
        ParamScore {
            parameter: News2Param::Pulse,
            score: sub(&finite(&input.pulse), now, validity.pulse, score_pulse),
        },
        ParamScore {
            parameter: News2Param::Consciousness,
            score: sub(
                &input.consciousness,
                now,
                validity.consciousness,
                score_consciousness,
            ),
        },
        ParamScore {
            parameter: News2Param::Temperature,
            score: sub(
                &finite(&input.temperature),
                now,
                validity.temperature,
                score_temperature,
            ),
        },
    ];
    let total: u8 = parameters.iter().map(|p| p.score.points()).sum();
    let any_single_3 = parameters.iter().any(|p| p.score.points() == 3);
    let missing_parameters: Vec<News2Param> = parameters
        .iter()
        .filter(|p| p.score == SubScore::Missing)
        .map(|p| p.parameter)
        .collect();
    let stale_parameters: Vec<News2Param> = parameters
        .iter()
        .filter(|p| matches!(p.score, SubScore::Stale { .. }))
        .map(|p| p.parameter)
        .collect();
    let risk = Risk::classify(total, any_single_3);
    News2 {
        at: now,
        scale,
        parameters,
        total,
        any_single_3,
        risk,
        response: response(total, risk).to_owned(),
        complete: missing_parameters.is_empty() && stale_parameters.is_empty(),
        missing_parameters,
        stale_parameters,
    }
}

/// Which alarm priority a NEWS2 risk band raises (site-configurable; `None`
/// = no alarm for that band). Default: low-medium → medium, medium →
/// medium, high → high; the low band never alarms. Low-medium is a single
/// parameter scoring 3, for which NEWS2 asks an *urgent* ward-based response:
/// IEC 60601-1-8's "prompt response" (medium), not mere awareness (low).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct News2Priorities {
    pub low_medium: Option<Priority>,
    pub medium: Option<Priority>,
    pub high: Option<Priority>,
}

impl Default for News2Priorities {
    fn default() -> News2Priorities {
        News2Priorities {
            low_medium: Some(Priority::Medium),
            medium: Some(Priority::Medium),
            high: Some(Priority::High),
        }
    }
}

impl News2Priorities {
    pub fn for_risk(&self, r: Risk) -> Option<Priority> {
        match r {
            Risk::Low => None,
            Risk::LowMedium => self.low_medium,
            Risk::Medium => self.medium,
            Risk::High => self.high,
        }
    }
}

/// The risk band before and after one recorded score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskChange {
    pub previous: Option<Risk>,
    pub current: Risk,
}

impl RiskChange {
    /// The band rose (a first score counts as a rise from nothing above low).
    pub fn rose(&self) -> bool {
        match self.previous {
            None => self.current > Risk::Low,
            Some(p) => self.current > p,
        }
    }
}

/// Score history per bed (bounded, oldest dropped first). The engine's
/// [`crate::AlarmEngine::on_news2`] records into one and turns band rises
/// into alarms; it can also be used on its own.
#[derive(Debug, Clone)]
pub struct News2Tracker {
    capacity: usize,
    beds: BTreeMap<BedId, VecDeque<News2>>,
}

impl Default for News2Tracker {
    /// 288 scores per bed (24 h at one score every 5 minutes).
    fn default() -> News2Tracker {
        News2Tracker::new(288)
    }
}

impl News2Tracker {
    pub fn new(capacity: usize) -> News2Tracker {
        News2Tracker {
            capacity: capacity.max(1),
            beds: BTreeMap::new(),
        }
    }

    pub fn record(&mut self, bed: &str, score: News2) -> RiskChange {
        let h = self.beds.entry(bed.to_owned()).or_default();
        let previous = h.back().map(|s| s.risk);
        let current = score.risk;
        h.push_back(score);
        while h.len() > self.capacity {
            h.pop_front();
        }
        RiskChange { previous, current }
    }

    /// Oldest first.
    pub fn history(&self, bed: &str) -> impl Iterator<Item = &News2> {
        self.beds.get(bed).into_iter().flatten()
    }

    pub fn latest(&self, bed: &str) -> Option<&News2> {
        self.beds.get(bed).and_then(|h| h.back())
    }

    pub fn clear(&mut self, bed: &str) {
        self.beds.remove(bed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_between_bands_score_in_the_more_severe_one() {
        assert_eq!(around(38.1, 10.0), [381, 381]);
        assert_eq!(around(38.05, 10.0), [380, 381]);
        assert_eq!(around(20.0, 1.0), [20, 20]);
        assert_eq!(around(0.0, 1.0), [0, 0]);
        assert_eq!(score_respiration_rate(8.5), 3);
        assert_eq!(score_respiration_rate(20.5), 2);
        assert_eq!(score_temperature(38.05), 1);
        assert_eq!(score_temperature(36.05), 1);
        assert_eq!(score_spo2(91.5, SpO2Scale::Scale1, None), 3);
        assert_eq!(score_pulse(50.5), 1);
        assert_eq!(score_systolic(110.5), 1);
    }

    #[test]
    fn tracker_is_bounded_and_reports_rises() {
        let mut t = News2Tracker::new(2);
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let mk = |total: u8| News2 {
            at: now,
            scale: SpO2Scale::Scale1,
            parameters: vec![],
            total,
            any_single_3: false,
            risk: Risk::classify(total, false),
            response: String::new(),
            complete: true,
            missing_parameters: vec![],
            stale_parameters: vec![],
        };
        assert!(!t.record("b", mk(0)).rose());
        assert!(t.record("b", mk(5)).rose());
        assert!(!t.record("b", mk(6)).rose());
        assert!(t.record("b", mk(7)).rose());
        assert_eq!(t.history("b").map(|s| s.total).collect::<Vec<_>>(), vec![6, 7]);
        t.clear("b");
        assert!(t.latest("b").is_none());
    }
}
