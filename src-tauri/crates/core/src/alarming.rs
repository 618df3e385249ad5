//! Alarms and NEWS2 wired into the data path.
//!
//! The pure engine (`vigil-alarms`) sees every reading and every change of a
//! device's state; this module turns device states into technical
//! conditions, feeds NEWS2 from readings and nurse entries, and hands the
//! resulting events to the screen (per-bed alarm state) and the encrypted
//! alarm log. Time is the pipeline's clock.

use crate::view::DeviceView;
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, BTreeSet};
use vigil_alarms::{
    AckTarget, AlarmEngine, AlarmEvent, BedAlarmState, News2, News2Input, Observed, SitePreset,
    TechnicalKind, ValidityWindows,
};
use vigil_model::{LinkState, Reading};

/// Battery below this is a low-battery technical alarm.
const LOW_BATTERY_PERCENT: u8 = 20;
/// How often NEWS2 is recomputed from the latest values (clock time).
const NEWS2_EVERY: Duration = Duration::seconds(30);

/// What a nurse may enter for NEWS2 (parameters devices do not measure).
#[derive(Debug, Clone, serde::Deserialize, ts_rs::TS)]
#[serde(tag = "parameter", content = "value", rename_all = "snake_case")]
#[ts(export)]
pub enum News2Entry {
    Consciousness(vigil_alarms::Consciousness),
    AirOrOxygen(vigil_alarms::AirOrOxygen),
    Spo2Scale(vigil_alarms::SpO2Scale),
    RespirationRate(f64),
    Temperature(f64),
    Systolic(f64),
}

pub struct Alarming {
    engine: AlarmEngine,
    news2: BTreeMap<String, News2Input>,
    validity: ValidityWindows,
    last_news2: Option<DateTime<Utc>>,
    /// Technical conditions currently raised, per (device, kind).
    technical: BTreeSet<(String, TechnicalKind)>,
    store_failing: bool,
}

/// What an alarm step produced.
#[derive(Default)]
pub struct Outcome {
    pub events: Vec<AlarmEvent>,
    /// Beds whose alarm state changed.
    pub beds: BTreeSet<String>,
    pub news2: Vec<(String, News2)>,
}

impl Outcome {
    fn add(&mut self, events: Vec<AlarmEvent>) {
        for e in &events {
            self.beds.insert(e.bed.clone());
        }
        self.events.extend(events);
    }
}

fn device_key(d: &DeviceView) -> String {
    format!("{} ({})", d.label, d.device)
}

impl Alarming {
    pub fn new(preset: SitePreset, now: DateTime<Utc>) -> Self {
        let mut engine = AlarmEngine::new(preset);
        // Ids never repeat across restarts: start after the start time in µs.
        engine.continue_ids_after(now.timestamp_micros().max(0) as u64);
        Alarming {
            engine,
            news2: BTreeMap::new(),
            validity: ValidityWindows::default(),
            last_news2: None,
            technical: BTreeSet::new(),
            store_failing: false,
        }
    }

    pub fn set_patient(&mut self, bed: &str, category: vigil_alarms::PatientCategory) {
        self.engine.set_patient(bed, category);
    }

    pub fn discharge(&mut self, bed: &str, now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        out.add(self.engine.discharge(bed, now));
        self.news2.remove(bed);
        out.beds.insert(bed.to_string());
        out
    }

    pub fn on_readings(&mut self, readings: &[Reading], now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        for r in readings {
            out.add(self.engine.on_reading(r, now));
            self.news2.entry(r.bed.clone()).or_default().apply_reading(r);
        }
        out
    }

    /// A device's state changed: raise or clear its technical conditions.
    pub fn on_device(&mut self, d: &DeviceView, now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        let key = device_key(d);
        let link_lost = match d.state {
            LinkState::Disconnected | LinkState::AdapterOff => true,
            // Trying to reconnect is not being back: a lost link stays an
            // alarm until it is up again (an out-of-range device spends most
            // of its time "connecting"). A first connect raises nothing.
            LinkState::Connecting => self
                .technical
                .contains(&(key.clone(), TechnicalKind::Disconnected)),
            LinkState::Connected | LinkState::Receiving | LinkState::Stale => false,
        };
        let conditions = [
            (TechnicalKind::SensorOff, d.technical.is_some()),
            (TechnicalKind::NoData, d.state == LinkState::Stale),
            (TechnicalKind::Disconnected, link_lost),
            (
                TechnicalKind::LowBattery,
                d.battery.is_some_and(|b| b < LOW_BATTERY_PERCENT),
            ),
        ];
        for (kind, active) in conditions {
            let slot = (key.clone(), kind);
            if active != self.technical.contains(&slot) {
                if active {
                    self.technical.insert(slot);
                } else {
                    self.technical.remove(&slot);
                }
                out.add(self.engine.on_technical(&d.bed, &key, kind, active, now));
            }
        }
        out
    }

    /// A device left its bed: its technical conditions end with it.
    pub fn forget_device(&mut self, d: &DeviceView, now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        let key = device_key(d);
        let raised: Vec<_> = self
            .technical
            .iter()
            .filter(|(k, _)| *k == key)
            .cloned()
            .collect();
        for slot in raised {
            self.technical.remove(&slot);
            out.add(self.engine.on_technical(&d.bed, &key, slot.1, false, now));
        }
        out
    }

    /// The store stopped (or resumed) accepting readings: a technical alarm at every bed.
    pub fn store_health(&mut self, ok: bool, beds: &[String], now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        if ok != self.store_failing {
            return out;
        }
        self.store_failing = !ok;
        for bed in beds {
            out.add(
                self.engine
                    .on_technical(bed, "encrypted store", TechnicalKind::StoreFailure, !ok, now),
            );
        }
        out
    }

    /// Condition delays, pause expiry, and NEWS2 every 30 s.
    pub fn tick(&mut self, beds: &[String], now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        out.add(self.engine.tick(now));
        if self.last_news2.is_none_or(|t| now - t >= NEWS2_EVERY) {
            self.last_news2 = Some(now);
            for bed in beds {
                out.merge(self.score(bed, now));
            }
        }
        out
    }

    fn score(&mut self, bed: &str, now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        let input = self.news2.entry(bed.to_string()).or_default();
        let score = vigil_alarms::news2::score(input, now, &self.validity);
        out.news2.push((bed.to_string(), score.clone()));
        out.add(self.engine.on_news2(bed, score, now));
        out.beds.insert(bed.to_string());
        out
    }

    /// A nurse entered a NEWS2 parameter; the score is recomputed at once.
    pub fn enter(&mut self, bed: &str, entry: News2Entry, user: &str, now: DateTime<Utc>) -> Outcome {
        let input = self.news2.entry(bed.to_string()).or_default();
        match entry {
            News2Entry::Consciousness(v) => input.consciousness = Some(Observed::entered(v, now, user)),
            News2Entry::AirOrOxygen(v) => input.air_or_oxygen = Some(Observed::entered(v, now, user)),
            News2Entry::Spo2Scale(v) => input.spo2_scale = Some(Observed::entered(v, now, user)),
            News2Entry::RespirationRate(v) => input.respiration_rate = Some(Observed::entered(v, now, user)),
            News2Entry::Temperature(v) => input.temperature = Some(Observed::entered(v, now, user)),
            News2Entry::Systolic(v) => input.systolic = Some(Observed::entered(v, now, user)),
        }
        self.score(bed, now)
    }

    /// A patient-specific low/high limit (reverts at discharge). Critical
    /// limits, priorities and delays stay as the preset sets them, except that
    /// a critical limit the new limit would cross is dropped.
    pub fn set_limit(
        &mut self,
        bed: &str,
        param: vigil_alarms::Parameter,
        low: Option<f64>,
        high: Option<f64>,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, vigil_alarms::LimitError> {
        let mut limit = self
            .engine
            .limit(bed, param)
            .unwrap_or_else(vigil_alarms::Limit::off);
        limit.low = low;
        limit.high = high;
        if let (Some(c), Some(l)) = (limit.critical_low, low) {
            if c >= l {
                limit.critical_low = None;
            }
        }
        if let (Some(c), Some(h)) = (limit.critical_high, high) {
            if c <= h {
                limit.critical_high = None;
            }
        }
        let mut out = Outcome::default();
        out.add(self.engine.set_limit(bed, param, limit, user, now)?);
        out.add(self.engine.tick(now));
        out.beds.insert(bed.to_string());
        Ok(out)
    }

    pub fn pause_audio(&mut self, bed: &str, user: &str, now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        out.add(self.engine.pause_audio(bed, user, now));
        out.beds.insert(bed.to_string());
        out
    }

    pub fn acknowledge(
        &mut self,
        bed: &str,
        alarm: Option<u64>,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, vigil_alarms::AlarmError> {
        let target = alarm.map(AckTarget::Alarm).unwrap_or(AckTarget::All);
        let mut out = Outcome::default();
        out.add(self.engine.acknowledge(bed, target, user, now)?);
        out.beds.insert(bed.to_string());
        Ok(out)
    }

    pub fn state(&self, bed: &str, now: DateTime<Utc>) -> BedAlarmState {
        self.engine.state(bed, now)
    }

    pub fn news2_latest(&self, bed: &str) -> Option<&News2> {
        self.engine.news2_history().latest(bed)
    }

    pub fn news2_history(&self, bed: &str) -> Vec<News2> {
        self.engine.news2_history().history(bed).cloned().collect()
    }
}

impl Outcome {
    pub fn merge(&mut self, o: Outcome) {
        self.events.extend(o.events);
        self.beds.extend(o.beds);
        self.news2.extend(o.news2);
    }
}
