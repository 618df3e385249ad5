//! Alarms and NEWS2 wired into the data path.
//!
//! The pure engine (`vigil-alarms`) sees every reading and every change of a
//! device's state; this module turns device states into technical
//! conditions, feeds NEWS2 from readings and nurse entries, and hands the
//! resulting events to the screen (per-bed alarm state) and the encrypted
//! alarm log. Time is the pipeline's clock.
//!
//! Devices are named to the engine by the id their readings carry (what the
//! ward and the store use), so a device's technical condition invalidates
//! exactly that device's values; conditions are kept per (bed, device, kind)
//! so a device moved to another bed leaves nothing behind.

use crate::view::DeviceView;
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, BTreeSet};
use vigil_alarms::{
    AckTarget, AlarmEngine, AlarmEvent, BedAlarmState, BedSettings, News2, News2Input, Observed, SitePreset,
    TechnicalKind, ValidityWindows,
};
use vigil_model::{LinkState, Reading};

/// Battery below this is a low-battery technical alarm.
const LOW_BATTERY_PERCENT: u8 = 20;
/// How often NEWS2 is recomputed from the latest values (clock time).
const NEWS2_EVERY: Duration = Duration::seconds(30);

/// What a nurse may enter for NEWS2 (parameters devices do not measure).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
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

/// One bed's clinical settings as saved in the encrypted store (see
/// [`crate::persist`]): the engine's part, who set each patient-specific
/// limit and when, and the nurse's NEWS2 entries (each with who and when).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedBed {
    pub alarms: BedSettings,
    pub limits_set_by: BTreeMap<vigil_alarms::Parameter, (String, DateTime<Utc>)>,
    pub news2_entries: News2Input,
}

/// Where a NEWS2 parameter's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum News2Origin {
    /// A device reading.
    Measured,
    /// A nurse's entry.
    Entered,
}

/// One record of the NEWS2 log in the store (`Store::log_news2`; JSON there):
/// a score as it was computed, or a nurse's entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum News2Logged {
    Score {
        score: News2,
        /// What each parameter with a value was computed from.
        origins: BTreeMap<vigil_alarms::News2Param, News2Origin>,
    },
    Entry {
        entry: News2Entry,
        /// The signed-in user's account id (never a display name).
        by: String,
    },
}

/// What makes a stored NEWS2 score different from the last one stored:
/// total, each sub-score (a stale one by its last points, not its age,
/// which grows at every score), validity, scale and origins.
#[derive(Debug, Clone, PartialEq)]
struct News2Key {
    total: u8,
    scale: vigil_alarms::SpO2Scale,
    subs: Vec<(vigil_alarms::News2Param, u8, u8)>,
    complete: bool,
    origins: BTreeMap<vigil_alarms::News2Param, News2Origin>,
}

impl News2Key {
    fn of(n: &News2, origins: &BTreeMap<vigil_alarms::News2Param, News2Origin>) -> News2Key {
        use vigil_alarms::SubScore as S;
        News2Key {
            total: n.total,
            scale: n.scale,
            subs: n
                .parameters
                .iter()
                .map(|p| match p.score {
                    S::Scored { points } => (p.parameter, 0, points),
                    S::Missing => (p.parameter, 1, 0),
                    S::Stale { last_points, .. } => (p.parameter, 2, last_points),
                })
                .collect(),
            complete: n.complete,
            origins: origins.clone(),
        }
    }
}

/// Where each NEWS2 parameter with a value came from.
fn origins(input: &News2Input) -> BTreeMap<vigil_alarms::News2Param, News2Origin> {
    use vigil_alarms::News2Param as P;
    fn of<T>(o: &Option<Observed<T>>) -> Option<News2Origin> {
        o.as_ref().map(|o| match o.entered_by {
            Some(_) => News2Origin::Entered,
            None => News2Origin::Measured,
        })
    }
    [
        (P::RespirationRate, of(&input.respiration_rate)),
        (P::Spo2, of(&input.spo2)),
        (P::AirOrOxygen, of(&input.air_or_oxygen)),
        (P::Systolic, of(&input.systolic)),
        (P::Pulse, of(&input.pulse)),
        (P::Consciousness, of(&input.consciousness)),
        (P::Temperature, of(&input.temperature)),
    ]
    .into_iter()
    .filter_map(|(p, o)| Some((p, o?)))
    .collect()
}

pub struct Alarming {
    engine: AlarmEngine,
    /// Per bed: the last NEWS2 score sent to the store's log, and when.
    news2_logged: BTreeMap<String, (News2Key, DateTime<Utc>)>,
    news2: BTreeMap<String, News2Input>,
    validity: ValidityWindows,
    last_news2: Option<DateTime<Utc>>,
    /// Device technical conditions currently raised, per (bed, device, kind).
    technical: BTreeSet<(String, String, TechnicalKind)>,
    /// Workstation-wide conditions raised at every bed (store, alarm log, sound).
    workstation: BTreeSet<TechnicalKind>,
    /// Who set each bed's patient-specific limits, and when.
    limits_set_by: BTreeMap<String, BTreeMap<vigil_alarms::Parameter, (String, DateTime<Utc>)>>,
    /// Beds whose saved settings are out of date.
    dirty: BTreeSet<String>,
}

/// What an alarm step produced.
#[derive(Default)]
pub struct Outcome {
    pub events: Vec<AlarmEvent>,
    /// Beds whose alarm state changed.
    pub beds: BTreeSet<String>,
    pub news2: Vec<(String, News2)>,
    /// For the store's NEWS2 log (bed, time, record): scores that changed
    /// (or the first of a clock hour) and nurse entries.
    pub news2_log: Vec<(String, DateTime<Utc>, News2Logged)>,
}

impl Outcome {
    fn add(&mut self, events: Vec<AlarmEvent>) {
        for e in &events {
            self.beds.insert(e.bed.clone());
        }
        self.events.extend(events);
    }
}

/// What names a workstation-wide condition in its message.
fn workstation_source(kind: TechnicalKind) -> &'static str {
    match kind {
        TechnicalKind::StoreFailure => "encrypted store",
        TechnicalKind::AlarmLogFailure => "alarm log",
        TechnicalKind::AuditFailure => "audit trail",
        TechnicalKind::DeliveryFailure => "FHIR upload",
        TechnicalKind::LowDisk => "data disk",
        _ => "workstation",
    }
}

impl Alarming {
    pub fn new(preset: SitePreset, now: DateTime<Utc>) -> Self {
        let mut engine = AlarmEngine::new(preset);
        // Ids never repeat across restarts: start after the start time in µs.
        engine.continue_ids_after(now.timestamp_micros().max(0) as u64);
        Alarming {
            engine,
            news2_logged: BTreeMap::new(),
            news2: BTreeMap::new(),
            validity: ValidityWindows::default(),
            last_news2: None,
            technical: BTreeSet::new(),
            workstation: BTreeSet::new(),
            limits_set_by: BTreeMap::new(),
            dirty: BTreeSet::new(),
        }
    }

    pub fn set_patient(&mut self, bed: &str, category: vigil_alarms::PatientCategory) {
        self.engine.set_patient(bed, category);
        // A new stay's first score is stored whatever the last one was.
        self.news2_logged.remove(bed);
        self.dirty.insert(bed.to_string());
    }

    pub fn discharge(&mut self, bed: &str, now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        out.add(self.engine.discharge(bed, now));
        self.news2.remove(bed);
        self.news2_logged.remove(bed);
        self.limits_set_by.remove(bed);
        out.beds.insert(bed.to_string());
        self.dirty.insert(bed.to_string());
        out
    }

    /// What must survive a restart at `bed` (see [`SavedBed`]).
    pub fn saved(&self, bed: &str) -> SavedBed {
        let entered = |i: &News2Input| News2Input {
            respiration_rate: i.respiration_rate.clone().filter(|o| o.entered_by.is_some()),
            spo2: None,
            spo2_scale: i.spo2_scale.clone(),
            air_or_oxygen: i.air_or_oxygen.clone(),
            systolic: i.systolic.clone().filter(|o| o.entered_by.is_some()),
            pulse: None,
            consciousness: i.consciousness.clone(),
            temperature: i.temperature.clone().filter(|o| o.entered_by.is_some()),
        };
        SavedBed {
            alarms: self.engine.settings(bed),
            limits_set_by: self.limits_set_by.get(bed).cloned().unwrap_or_default(),
            news2_entries: self.news2.get(bed).map(entered).unwrap_or_default(),
        }
    }

    /// Puts a bed's saved settings back (at start, before any reading).
    pub fn restore(&mut self, bed: &str, saved: SavedBed) {
        self.engine.restore(bed, saved.alarms);
        self.limits_set_by.insert(bed.to_string(), saved.limits_set_by);
        self.news2.insert(bed.to_string(), saved.news2_entries);
    }

    /// A bed's saved settings could not be restored: say so at the bed. The
    /// condition is raised and cleared at once, so (high priority) it stays
    /// shown, latched, until a nurse acknowledges it.
    pub fn settings_not_restored(&mut self, bed: &str, now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        let kind = TechnicalKind::SettingsNotRestored;
        out.add(self.engine.on_technical(bed, "saved settings", kind, true, now));
        out.add(self.engine.on_technical(bed, "saved settings", kind, false, now));
        self.dirty.insert(bed.to_string());
        out
    }

    /// At start the store was damaged, moved aside and replaced: say so at
    /// every bed. Raised and cleared at once (like
    /// [`Self::settings_not_restored`]), so it stays shown, latched, until a
    /// nurse acknowledges it; monitoring goes on.
    pub fn recording_unavailable(&mut self, beds: &[String], now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        let kind = TechnicalKind::RecordingUnavailable;
        for bed in beds {
            out.add(self.engine.on_technical(bed, "store", kind, true, now));
            out.add(self.engine.on_technical(bed, "store", kind, false, now));
        }
        out
    }

    /// Beds whose settings changed since they were last taken, with what to save.
    pub fn take_dirty(&mut self) -> Vec<(String, SavedBed)> {
        std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|bed| {
                let s = self.saved(&bed);
                (bed, s)
            })
            .collect()
    }

    /// Marks beds to be saved again (their save failed).
    pub fn mark_dirty(&mut self, beds: impl IntoIterator<Item = String>) {
        self.dirty.extend(beds);
    }

    /// Beds whose saved settings an outcome changed: latched, ended or
    /// acknowledged alarms, limit changes.
    fn touch(&mut self, out: &Outcome) {
        use vigil_alarms::AlarmEventKind as E;
        for e in &out.events {
            if matches!(
                e.event,
                E::Latched | E::Ended { .. } | E::Acknowledged { .. } | E::LimitChanged { .. }
            ) {
                self.dirty.insert(e.bed.clone());
            }
        }
    }

    /// Readings, each current for `window(reading)` (its device's staleness window).
    pub fn on_readings(
        &mut self,
        readings: &[Reading],
        window: impl Fn(&Reading) -> Duration,
        now: DateTime<Utc>,
    ) -> Outcome {
        let mut out = Outcome::default();
        for r in readings {
            out.add(self.engine.on_reading_within(r, window(r), now));
            self.news2.entry(r.bed.clone()).or_default().apply_reading(r);
        }
        self.touch(&out);
        out
    }

    /// A device's state changed: raise or clear its technical conditions.
    pub fn on_device(&mut self, d: &DeviceView, now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        let slot = |kind| (d.bed.clone(), d.device.clone(), kind);
        let link_lost = match d.state {
            LinkState::Disconnected | LinkState::AdapterOff => true,
            // Trying to reconnect, or a link without data, is not being back:
            // a lost link stays an alarm until data flows again (an
            // out-of-range device spends most of its time "connecting"). A
            // first connect raises nothing.
            LinkState::Connecting | LinkState::Connected | LinkState::Stale => {
                self.technical.contains(&slot(TechnicalKind::Disconnected))
            }
            LinkState::Receiving => false,
        };
        let conditions = [
            (TechnicalKind::SensorOff, d.technical.is_some()),
            (TechnicalKind::NoData, d.state == LinkState::Stale),
            (TechnicalKind::Disconnected, link_lost),
            (
                TechnicalKind::LowBattery,
                d.battery.is_some_and(|b| b < LOW_BATTERY_PERCENT),
            ),
            // Its data is refused (`core::trust`): the bed must know.
            (
                TechnicalKind::IdentityChanged,
                d.refused == Some(crate::trust::Refusal::IdentityChanged),
            ),
            (
                TechnicalKind::NotBonded,
                d.refused == Some(crate::trust::Refusal::NotBonded),
            ),
        ];
        for (kind, active) in conditions {
            let slot = slot(kind);
            if active != self.technical.contains(&slot) {
                if active {
                    self.technical.insert(slot);
                } else {
                    self.technical.remove(&slot);
                }
                out.add(self.engine.on_technical_labelled(
                    &d.bed,
                    &d.device,
                    &format!("{} ({})", d.label, d.device),
                    kind,
                    active,
                    now,
                ));
            }
        }
        self.touch(&out);
        out
    }

    /// A device left the bed of `d` (removed, or moved to another bed): its
    /// technical conditions there end, and what it measured there no longer counts.
    pub fn forget_device(&mut self, d: &DeviceView, now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        self.technical
            .retain(|(bed, device, _)| !(*bed == d.bed && *device == d.device));
        out.add(self.engine.forget_device(&d.bed, &d.device, now));
        out.beds.insert(d.bed.clone());
        self.touch(&out);
        out
    }

    /// A workstation-wide condition (the store refuses writes, the alarm log
    /// cannot be written, alarms cannot be sounded) began (`ok == false`) or
    /// ended: a technical alarm at every bed.
    pub fn workstation_health(
        &mut self,
        kind: TechnicalKind,
        ok: bool,
        beds: &[String],
        now: DateTime<Utc>,
    ) -> Outcome {
        let mut out = Outcome::default();
        if ok != self.workstation.contains(&kind) {
            return out;
        }
        if ok {
            self.workstation.remove(&kind);
        } else {
            self.workstation.insert(kind);
        }
        for bed in beds {
            out.add(
                self.engine
                    .on_technical(bed, workstation_source(kind), kind, !ok, now),
            );
        }
        self.touch(&out);
        out
    }

    /// The store stopped (or resumed) accepting readings: a technical alarm at every bed.
    pub fn store_health(&mut self, ok: bool, beds: &[String], now: DateTime<Utc>) -> Outcome {
        self.workstation_health(TechnicalKind::StoreFailure, ok, beds, now)
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
        self.touch(&out);
        out
    }

    fn score(&mut self, bed: &str, now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        let input = self.news2.entry(bed.to_string()).or_default();
        let score = vigil_alarms::news2::score(input, now, &self.validity);
        let origins = origins(input);
        // Stored when it changed, and at least once per UTC clock hour while
        // unchanged: scores come every 30 s, so every hour (local hours too,
        // zones being whole, half or quarter hours off UTC) of a flowsheet
        // has one. A bed with nothing measured or entered has no score to keep.
        let key = News2Key::of(&score, &origins);
        let hour = |t: DateTime<Utc>| t.timestamp().div_euclid(3600);
        let due = match self.news2_logged.get(bed) {
            Some((k, at)) => *k != key || hour(*at) != hour(now) || now < *at,
            None => true,
        };
        if due && !origins.is_empty() {
            self.news2_logged.insert(bed.to_string(), (key, now));
            out.news2_log.push((
                bed.to_string(),
                now,
                News2Logged::Score {
                    score: score.clone(),
                    origins,
                },
            ));
        }
        out.news2.push((bed.to_string(), score.clone()));
        out.add(self.engine.on_news2(bed, score, now));
        out.beds.insert(bed.to_string());
        // The NEWS2 history grew.
        self.dirty.insert(bed.to_string());
        out
    }

    /// A nurse entered a NEWS2 parameter; the score is recomputed at once.
    pub fn enter(&mut self, bed: &str, entry: News2Entry, user: &str, now: DateTime<Utc>) -> Outcome {
        let logged = News2Logged::Entry {
            entry: entry.clone(),
            by: user.to_string(),
        };
        let input = self.news2.entry(bed.to_string()).or_default();
        match entry {
            News2Entry::Consciousness(v) => input.consciousness = Some(Observed::entered(v, now, user)),
            News2Entry::AirOrOxygen(v) => input.air_or_oxygen = Some(Observed::entered(v, now, user)),
            News2Entry::Spo2Scale(v) => input.spo2_scale = Some(Observed::entered(v, now, user)),
            News2Entry::RespirationRate(v) => input.respiration_rate = Some(Observed::entered(v, now, user)),
            News2Entry::Temperature(v) => input.temperature = Some(Observed::entered(v, now, user)),
            News2Entry::Systolic(v) => input.systolic = Some(Observed::entered(v, now, user)),
        }
        let mut out = Outcome::default();
        out.news2_log.push((bed.to_string(), now, logged));
        out.merge(self.score(bed, now));
        out
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
        self.limits_set_by
            .entry(bed.to_string())
            .or_default()
            .insert(param, (user.to_string(), now));
        self.touch(&out);
        Ok(out)
    }

    pub fn pause_audio(&mut self, bed: &str, user: &str, now: DateTime<Utc>) -> Outcome {
        let mut out = Outcome::default();
        out.add(self.engine.pause_audio(bed, user, now));
        out.beds.insert(bed.to_string());
        out
    }

    /// Acknowledges the alarms the operator saw (their ids); those that
    /// ended meanwhile are skipped, and nothing newer is touched.
    pub fn acknowledge(
        &mut self,
        bed: &str,
        alarms: &[u64],
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, vigil_alarms::AlarmError> {
        let mut out = Outcome::default();
        out.add(
            self.engine
                .acknowledge(bed, AckTarget::Ids(alarms.to_vec()), user, now)?,
        );
        out.beds.insert(bed.to_string());
        self.touch(&out);
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
        self.news2_log.extend(o.news2_log);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn stored(out: &Outcome) -> Vec<(DateTime<Utc>, &'static str)> {
        out.news2_log
            .iter()
            .map(|(_, at, r)| {
                (
                    *at,
                    match r {
                        News2Logged::Score { .. } => "score",
                        News2Logged::Entry { .. } => "entry",
                    },
                )
            })
            .collect()
    }

    /// A flowsheet hour must never be blank while a score existed, and a
    /// change must never wait: the log keeps every change, every entry, and
    /// the first score of each clock hour while unchanged — not every 30 s score.
    #[test]
    fn the_news2_log_keeps_changes_entries_and_one_score_per_clock_hour() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 29, 10, 20, 0).unwrap();
        let beds = vec!["bed-1".to_string()];
        let mut a = Alarming::new(SitePreset::standard(), t0);
        // An empty bed: nothing measured or entered, nothing to keep.
        assert!(a.tick(&beds, t0).news2_log.is_empty());
        let mut log = stored(&a.enter("bed-1", News2Entry::Consciousness(vigil_alarms::Consciousness::Alert), "rn-1", t0));
        assert_eq!(log, [(t0, "entry"), (t0, "score")]);
        // 2 h 40 min of unchanged scores every 30 s (ACVPU stays valid 4 h).
        for i in 1..=320 {
            log.extend(stored(&a.tick(&beds, t0 + Duration::seconds(30 * i))));
        }
        let hour = |h, m| Utc.with_ymd_and_hms(2026, 3, 29, h, m, 0).unwrap();
        assert_eq!(log[2..], [(hour(11, 0), "score"), (hour(12, 0), "score"), (hour(13, 0), "score")]);
        // A changed sub-score is kept at once, with its origin.
        let now = t0 + Duration::seconds(30 * 320 + 10);
        let out = a.enter("bed-1", News2Entry::Consciousness(vigil_alarms::Consciousness::Voice), "rn-1", now);
        assert_eq!(stored(&out), [(now, "entry"), (now, "score")]);
        match &out.news2_log[1].2 {
            News2Logged::Score { score, origins } => {
                assert_eq!(score.total, 3);
                assert_eq!(origins.get(&vigil_alarms::News2Param::Consciousness), Some(&News2Origin::Entered));
            }
            other => panic!("{other:?}"),
        }
        match &out.news2_log[0].2 {
            News2Logged::Entry { by, .. } => assert_eq!(by, "rn-1"),
            other => panic!("{other:?}"),
        }
        // Discharge: the next stay's first score is kept whatever it is.
        a.discharge("bed-1", now);
        let out = a.enter("bed-1", News2Entry::Consciousness(vigil_alarms::Consciousness::Voice), "rn-2", now + Duration::seconds(1));
        assert_eq!(stored(&out).len(), 2);
    }
}
