//! The live batch: what one [`WardUpdate`] gathers between two sends.
//!
//! A screen (and a central station's feed) shows each bed's newest value of a
//! parameter; of the readings of one parameter that arrive within a batch's
//! 250 ms, only the newest can ever be drawn. So a batch keeps the newest
//! reading per bed, parameter and stay, not every reading: the rule the
//! screen applies (`ui/src/state.ts` `putReading`: a value of another stay is
//! not shown, an older one never replaces a newer one, a tie goes to the later
//! one) gives the same picture from the kept readings as from all of them.
//!
//! Device views likewise: the newest per device (the screen keeps only that).
//!
//! Alarm changes go out at once (the screen must show an alarm without
//! waiting for the tick) — but only when something a nurse acts on changed:
//! an alarm started, ended, escalated, was acknowledged or silenced, a limit
//! moved. A state identical to the one this subscriber last got is not sent
//! again, and a change of only the measured value quoted by an active alarm
//! (or a pause's seconds left) rides with the next tick.
//!
//! Why it matters: at a high rate (a fast replay, `--speed 240`, a ward of
//! chatty devices) a batch held thousands of readings and device views the
//! screen parsed and threw away, and every NEWS2 score sent the bed's
//! unchanged alarm state at once: ~130 messages and 4 MB a second for 16 beds
//! at 240x; the webview's memory grew with that churn (issue 16's soak).
//! Every reading is still stored, uploaded and published (MQTT) in full: this
//! is only the live view.

use std::collections::HashMap;

use vigil_alarms::{AudioState, BedAlarmState};

use crate::view::{DeviceView, ReadingView, WardUpdate};

/// Bed, parameter (MDC code) and stay: one slot of a batch.
type Slot = (String, u32, Option<String>);

/// A [`WardUpdate`] being gathered, with where each slot's reading sits.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub update: WardUpdate,
    newest: HashMap<Slot, usize>,
    device_at: HashMap<String, usize>,
    /// Each bed's alarm state as this subscriber was last sent it.
    sent: HashMap<String, BedAlarmState>,
}

impl Batch {
    /// Adds a reading, or replaces its slot's reading if it is at least as new.
    pub fn reading(&mut self, r: ReadingView) {
        let slot = (r.bed.clone(), r.mdc, r.admission.clone());
        match self.newest.get(&slot) {
            Some(&i) => {
                if r.received_ms >= self.update.readings[i].received_ms {
                    self.update.readings[i] = r;
                }
            }
            None => {
                self.newest.insert(slot, self.update.readings.len());
                self.update.readings.push(r);
            }
        }
    }

    /// Adds a device's view, or replaces the one the batch holds for it
    /// (a device is at one bed at a time: its last view says where).
    pub fn device(&mut self, d: DeviceView) {
        match self.device_at.get(&d.device) {
            Some(&i) => self.update.devices[i] = d,
            None => {
                self.device_at.insert(d.device.clone(), self.update.devices.len());
                self.update.devices.push(d);
            }
        }
    }

    /// Takes a bed's alarm state; true when it must be sent now.
    pub fn alarms(&mut self, a: BedAlarmState) -> bool {
        let pending = self.update.alarms.iter().position(|x| x.bed == a.bed);
        let last = self.sent.get(&a.bed);
        if pending.is_none() && last == Some(&a) {
            return false;
        }
        let urgent = last.map_or(true, |l| urgent_change(l, &a));
        match pending {
            Some(i) => self.update.alarms[i] = a,
            None => self.update.alarms.push(a),
        }
        urgent
    }

    /// Starts over from a full picture (a subscriber that fell behind).
    pub fn replace(&mut self, update: WardUpdate) {
        self.newest.clear();
        self.device_at.clear();
        self.update = update;
        for (i, r) in self.update.readings.iter().enumerate() {
            self.newest.insert((r.bed.clone(), r.mdc, r.admission.clone()), i);
        }
        for (i, d) in self.update.devices.iter().enumerate() {
            self.device_at.insert(d.device.clone(), i);
        }
    }

    /// The batch to send, stamped `now_ms`; the next one starts empty.
    pub fn take(&mut self, now_ms: i64) -> WardUpdate {
        self.newest.clear();
        self.device_at.clear();
        for a in &self.update.alarms {
            self.sent.insert(a.bed.clone(), a.clone());
        }
        self.update.now_ms = now_ms;
        std::mem::take(&mut self.update)
    }
}

/// Whether `next` differs from `last` in more than the values its active
/// alarms quote and a pause's countdown. Compared on copies with those
/// blanked, so a field added later counts as urgent until said otherwise.
fn urgent_change(last: &BedAlarmState, next: &BedAlarmState) -> bool {
    fn blanked(s: &BedAlarmState) -> BedAlarmState {
        let mut s = s.clone();
        for a in &mut s.active {
            a.value = None;
            a.message.clear();
        }
        if let AudioState::Paused { remaining_s, .. } = &mut s.audio {
            *remaining_s = 0;
        }
        s
    }
    blanked(last) != blanked(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use vigil_model::{Quality, Source};

    fn reading(bed: u8, mdc: u32, stay: Option<u8>, received_ms: i64, value: f64) -> ReadingView {
        ReadingView {
            bed: format!("bed-{bed}"),
            device: "dev".into(),
            mdc,
            value: Some(value),
            special: None,
            unit: "/min".into(),
            received_ms,
            device_time: None,
            stale_after_ms: 5000,
            source: Source::Simulated,
            quality: Quality::Valid,
            flags: Vec::new(),
            admission: stay.map(|s| format!("stay-{s}")),
        }
    }

    /// The screen's rule (`ui/src/state.ts` `putReading`), applied in order:
    /// what each bed shows per parameter, given each bed's current stay.
    fn shown(
        readings: &[ReadingView],
        stays: &BTreeMap<String, Option<String>>,
    ) -> BTreeMap<(String, u32), (i64, Option<f64>)> {
        let mut out = BTreeMap::new();
        for r in readings {
            let stay = stays.get(&r.bed).cloned().flatten();
            if r.admission.is_some() && r.admission != stay {
                continue;
            }
            let k = (r.bed.clone(), r.mdc);
            let newer = out.get(&k).map_or(true, |&(t, _)| r.received_ms >= t);
            if newer {
                out.insert(k, (r.received_ms, r.value));
            }
        }
        out
    }

    proptest! {
        /// Whatever the screen would have drawn from every reading of a
        /// batch, it draws from the batch's kept readings, whichever stay
        /// each bed ends with (including a discharge mid-batch) and with
        /// readings out of order. Values are distinct, so the check is of
        /// *which* reading is shown, not only its time.
        #[test]
        fn the_screen_shows_the_same_from_the_kept_readings(
            events in prop::collection::vec((0u8..3, 0u32..3, prop::option::of(0u8..2), 0i64..40), 0..200),
            stays in prop::collection::vec(prop::option::of(0u8..2), 3),
        ) {
            let all: Vec<ReadingView> = events
                .iter()
                .enumerate()
                .map(|(i, &(b, m, s, t))| reading(b, m, s, t, i as f64))
                .collect();
            let mut batch = Batch::default();
            for r in all.iter().cloned() {
                batch.reading(r);
            }
            let kept = batch.take(1).readings;
            let stays: BTreeMap<String, Option<String>> = stays
                .iter()
                .enumerate()
                .map(|(b, s)| (format!("bed-{b}"), s.map(|s| format!("stay-{s}"))))
                .collect();
            // Ties across stays (two stays' values at the same millisecond)
            // may resolve either way; a value's time is what must match.
            let times = |m: BTreeMap<(String, u32), (i64, Option<f64>)>| {
                m.into_iter().map(|(k, (t, _))| (k, t)).collect::<BTreeMap<_, _>>()
            };
            prop_assert_eq!(times(shown(&kept, &stays)), times(shown(&all, &stays)));
            // Within one stay, exactly the reading the screen would show.
            for r in &kept {
                let same: Vec<&ReadingView> = all
                    .iter()
                    .filter(|a| a.bed == r.bed && a.mdc == r.mdc && a.admission == r.admission)
                    .collect();
                let newest = same.iter().map(|a| a.received_ms).max().unwrap();
                let last_newest = same.iter().rev().find(|a| a.received_ms == newest).unwrap();
                prop_assert_eq!(r.value, last_newest.value);
            }
            prop_assert!(kept.len() <= 3 * 3 * 3);
        }
    }

    #[test]
    fn a_fast_stream_of_one_parameter_is_one_reading_per_batch() {
        let mut batch = Batch::default();
        for t in 0..1000 {
            batch.reading(reading(1, 1, Some(1), t, t as f64));
        }
        batch.reading(reading(1, 1, Some(1), 10, -1.0)); // late, older: not shown
        let u = batch.take(5);
        assert_eq!(u.now_ms, 5);
        assert_eq!(u.readings.len(), 1);
        assert_eq!(u.readings[0].value, Some(999.0));
        // The next batch starts empty: nothing carried over.
        assert!(batch.take(6).readings.is_empty());
    }

    #[test]
    fn a_resync_keeps_coalescing_against_the_snapshot() {
        let mut batch = Batch::default();
        batch.replace(WardUpdate {
            readings: vec![reading(1, 1, None, 100, 1.0)],
            ..Default::default()
        });
        batch.reading(reading(1, 1, None, 90, 2.0));
        batch.reading(reading(1, 1, None, 110, 3.0));
        let u = batch.take(0);
        assert_eq!(u.readings.len(), 1);
        assert_eq!(u.readings[0].value, Some(3.0));
    }
}
