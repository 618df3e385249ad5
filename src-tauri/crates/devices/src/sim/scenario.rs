//! Scenarios and the scripted patient behind each simulated bed.
//!
//! A [`Patient`] is a pure function of simulated time: given seconds since the
//! start it returns the "true" vitals. Devices add their own small measurement
//! noise on top, so the HR strap and the oximeter agree on the patient but not
//! to the last beat, as real devices do.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::SourceError;

/// A scripted clinical situation the simulator plays out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// A mixed ward: one bed per interesting situation (the app's default).
    #[default]
    Ward,
    Stable,
    Deterioration,
    Desaturation,
    Fever,
    SensorOff,
    OutOfRange,
    LowBattery,
    SpecialValues,
}

impl Scenario {
    pub const ALL: &'static [Scenario] = &[
        Scenario::Ward,
        Scenario::Stable,
        Scenario::Deterioration,
        Scenario::Desaturation,
        Scenario::Fever,
        Scenario::SensorOff,
        Scenario::OutOfRange,
        Scenario::LowBattery,
        Scenario::SpecialValues,
    ];

    /// The kebab-case name used on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Ward => "ward",
            Scenario::Stable => "stable",
            Scenario::Deterioration => "deterioration",
            Scenario::Desaturation => "desaturation",
            Scenario::Fever => "fever",
            Scenario::SensorOff => "sensor-off",
            Scenario::OutOfRange => "out-of-range",
            Scenario::LowBattery => "low-battery",
            Scenario::SpecialValues => "special-values",
        }
    }

    /// One line for `--help`.
    pub fn describe(&self) -> &'static str {
        match self {
            Scenario::Ward => {
                "mixed ward: bed 1 stable, 2 deteriorating, 3 desaturating, 4 fever; further beds cycle stable/sensor-off/out-of-range/low-battery"
            }
            Scenario::Stable => "stable patients: HR ~72, SpO2 ~97-98%, RR ~14, 36.8 °C, BP ~120/80",
            Scenario::Deterioration => {
                "deterioration over ~20 min: HR 80→130, RR 16→28, SpO2 96→88%, systolic 125→90"
            }
            Scenario::Desaturation => "stable, with ~60 s SpO2 dips to ~82% every ~5 min",
            Scenario::Fever => "temperature climbs to ~39.5 °C over ~15 min, heart rate follows",
            Scenario::SensorOff => "HR strap loses skin contact for 30 s every ~3 min",
            Scenario::OutOfRange => "pulse oximeter goes out of range for ~45 s every ~4 min",
            Scenario::LowBattery => "device batteries start at ~15% and drain fast to ~3%",
            Scenario::SpecialValues => {
                "oximeter occasionally sends NaN SpO2 / NRes pulse rate, thermometer occasionally NaN"
            }
        }
    }

    pub fn from_name(name: &str) -> Result<Scenario, SourceError> {
        Scenario::ALL
            .iter()
            .copied()
            .find(|s| s.name() == name)
            .ok_or_else(|| SourceError::UnknownScenario(name.to_string()))
    }

    /// What bed `index` (0-based) plays: the ward mixes, every other scenario
    /// is the same for all beds.
    pub(crate) fn for_bed(self, index: usize) -> Scenario {
        const WARD_FIRST: [Scenario; 4] = [
            Scenario::Stable,
            Scenario::Deterioration,
            Scenario::Desaturation,
            Scenario::Fever,
        ];
        const WARD_CYCLE: [Scenario; 4] = [
            Scenario::Stable,
            Scenario::SensorOff,
            Scenario::OutOfRange,
            Scenario::LowBattery,
        ];
        match self {
            Scenario::Ward if index < WARD_FIRST.len() => WARD_FIRST[index],
            Scenario::Ward => WARD_CYCLE[(index - WARD_FIRST.len()) % WARD_CYCLE.len()],
            other => other,
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = SourceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::from_name(s)
    }
}

/// The patient's "true" vitals at one instant, before device noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Vitals {
    pub hr: f64,
    pub spo2: f64,
    pub resp: f64,
    pub temp: f64,
    pub sys: f64,
    pub dia: f64,
}

/// Deterioration runs its course over this many seconds, then plateaus.
const DETERIORATION_S: f64 = 20.0 * 60.0;
/// Fever reaches its peak after this many seconds.
const FEVER_RISE_S: f64 = 15.0 * 60.0;
const FEVER_PEAK_C: f64 = 39.5;
/// Desaturation episodes: one every period, lasting `DESAT_LEN_S`.
const DESAT_PERIOD_S: f64 = 5.0 * 60.0;
const DESAT_LEN_S: f64 = 60.0;
const DESAT_NADIR: f64 = 82.0;
/// Sensor-off: contact lost for `CONTACT_LOST_S` every period.
const CONTACT_PERIOD_S: f64 = 3.0 * 60.0;
const CONTACT_LOST_S: f64 = 30.0;
/// Out-of-range: the oximeter is gone for `OUTAGE_S` every period.
const OUTAGE_PERIOD_S: f64 = 4.0 * 60.0;
const OUTAGE_S: f64 = 45.0;

/// One bed's scripted patient: a scenario plus per-bed baseline variation
/// (so four "stable" beds don't show identical numbers).
#[derive(Debug, Clone)]
pub(crate) struct Patient {
    pub scenario: Scenario,
    base: Vitals,
    /// Where in its period each recurring event (desaturation, contact loss,
    /// outage) starts for this bed, so beds don't all dip in lock-step.
    phase_s: f64,
}

impl Patient {
    pub fn new(scenario: Scenario, rng: &mut ChaCha8Rng) -> Self {
        let base = Vitals {
            hr: rng.gen_range(68.0..76.0),
            spo2: rng.gen_range(97.0..98.2),
            resp: rng.gen_range(13.0..15.0),
            temp: rng.gen_range(36.6..37.0),
            sys: rng.gen_range(115.0..125.0),
            dia: rng.gen_range(76.0..84.0),
        };
        // Start the first recurring event within the first two minutes: early
        // enough that a short demo shows it.
        let phase_s = rng.gen_range(60.0..120.0);
        Patient {
            scenario,
            base,
            phase_s,
        }
    }

    pub fn vitals(&self, t: f64) -> Vitals {
        let b = self.base;
        match self.scenario {
            Scenario::Deterioration => {
                let p = (t / DETERIORATION_S).clamp(0.0, 1.0);
                let jitter = b.hr - 72.0; // keep the per-bed variation, small
                Vitals {
                    hr: 80.0 + 50.0 * p + jitter / 2.0,
                    spo2: 96.0 - 8.0 * p,
                    resp: 16.0 + 12.0 * p,
                    temp: b.temp + 0.7 * p,
                    sys: 125.0 - 35.0 * p,
                    dia: 80.0 - 18.0 * p,
                }
            }
            Scenario::Desaturation => {
                let depth = self.desaturation_depth(t);
                Vitals {
                    spo2: b.spo2 + (DESAT_NADIR - b.spo2) * depth,
                    // Hypoxaemia drives a modest tachycardia.
                    hr: b.hr + 10.0 * depth,
                    ..b
                }
            }
            Scenario::Fever => {
                let p = (t / FEVER_RISE_S).clamp(0.0, 1.0);
                let temp = b.temp + (FEVER_PEAK_C - b.temp) * p;
                let rise = temp - b.temp;
                // Roughly +10 bpm and +2 breaths/min per degree.
                Vitals {
                    temp,
                    hr: b.hr + 10.0 * rise,
                    resp: b.resp + 2.0 * rise,
                    ..b
                }
            }
            _ => b,
        }
    }

    /// 0 outside an episode, 1 at the nadir; ramps down and up over 15 s each.
    fn desaturation_depth(&self, t: f64) -> f64 {
        let Some(into) = in_period(t, self.phase_s, DESAT_PERIOD_S) else {
            return 0.0;
        };
        const RAMP: f64 = 15.0;
        if into >= DESAT_LEN_S {
            0.0
        } else if into < RAMP {
            into / RAMP
        } else if into > DESAT_LEN_S - RAMP {
            (DESAT_LEN_S - into) / RAMP
        } else {
            1.0
        }
    }

    /// Whether the HR strap has skin contact at `t`.
    pub fn hr_contact(&self, t: f64) -> bool {
        if self.scenario != Scenario::SensorOff {
            return true;
        }
        !matches!(in_period(t, self.phase_s, CONTACT_PERIOD_S), Some(into) if into < CONTACT_LOST_S)
    }

    /// For out-of-range: the next oximeter outage as (start, end) in seconds,
    /// the first one starting at or after `t`.
    pub fn next_outage(&self, t: f64) -> Option<(f64, f64)> {
        if self.scenario != Scenario::OutOfRange {
            return None;
        }
        let k = ((t - self.phase_s) / OUTAGE_PERIOD_S).ceil().max(0.0);
        let start = self.phase_s + k * OUTAGE_PERIOD_S;
        Some((start, start + OUTAGE_S))
    }
}

/// Seconds into the current period of a recurring event that first starts at
/// `phase`, or `None` before the first one.
fn in_period(t: f64, phase: f64, period: f64) -> Option<f64> {
    (t >= phase).then(|| (t - phase) % period)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn patient(s: Scenario) -> Patient {
        Patient::new(s, &mut ChaCha8Rng::seed_from_u64(7))
    }

    #[test]
    fn names_round_trip() {
        for s in Scenario::ALL {
            assert_eq!(s.name().parse::<Scenario>().unwrap(), *s);
            assert!(!s.describe().is_empty());
        }
        assert!(matches!(Scenario::from_name("nope"), Err(SourceError::UnknownScenario(n)) if n == "nope"));
    }

    #[test]
    fn ward_assigns_beds() {
        let beds: Vec<_> = (0..9).map(|i| Scenario::Ward.for_bed(i)).collect();
        use Scenario::*;
        assert_eq!(
            beds,
            [
                Stable,
                Deterioration,
                Desaturation,
                Fever,
                Stable,
                SensorOff,
                OutOfRange,
                LowBattery,
                Stable
            ]
        );
        assert_eq!(Fever.for_bed(5), Fever);
    }

    #[test]
    fn deterioration_and_fever_trends() {
        let p = patient(Scenario::Deterioration);
        let (a, b) = (p.vitals(0.0), p.vitals(1200.0));
        assert!(b.hr - a.hr > 45.0 && a.spo2 - b.spo2 > 7.0 && a.sys - b.sys > 30.0);
        let f = patient(Scenario::Fever);
        assert!((f.vitals(900.0).temp - 39.5).abs() < 1e-9);
        assert!(f.vitals(900.0).hr > f.vitals(0.0).hr + 20.0);
    }

    #[test]
    fn desaturation_episodes_recur() {
        let p = patient(Scenario::Desaturation);
        let lows = (0..900).filter(|&s| p.vitals(s as f64).spo2 < 85.0).count();
        // Three episodes in 15 min, each ~30 s below 85 %.
        assert!((60..=120).contains(&lows), "{lows}");
    }

    #[test]
    fn sensor_off_and_outages() {
        let p = patient(Scenario::SensorOff);
        let off = (0..600).filter(|&s| !p.hr_contact(s as f64)).count();
        assert!((60..=120).contains(&off), "{off}");
        let o = patient(Scenario::OutOfRange);
        let (s1, e1) = o.next_outage(0.0).unwrap();
        assert!((60.0..120.0).contains(&s1) && e1 - s1 == 45.0);
        assert_eq!(o.next_outage(e1).unwrap().0, s1 + 240.0);
        assert_eq!(o.next_outage(s1).unwrap().0, s1);
        assert!(patient(Scenario::Stable).next_outage(0.0).is_none());
    }
}
