//! The live batch: what one [`WardUpdate`] gathers between two sends.
//!
//! Every reading goes out (a screen shows the newest, a central station may
//! want each). Device views are folded: of a device's views within a batch
//! with the same link state, bed, technical condition and refusal only the
//! last is kept (its figures: battery, last data, counts), so each transition
//! (connecting, connected, receiving) is still sent, in order.
//!
//! Alarm changes go out at once (the screen must show an alarm without
//! waiting for the tick), but only when something a nurse acts on changed:
//! an alarm started, ended, escalated, was acknowledged or silenced, a limit
//! moved. A state identical to the one this subscriber last got is not sent
//! again, and a change of only the measured value quoted by an active alarm
//! (or a pause's seconds left) rides with the next tick, at most one tick
//! later.
//!
//! Why it matters: every NEWS2 score sent its bed's unchanged alarm state at
//! once and every payload a device view, so at 240x with 16 beds the stream
//! carried ~130 messages and 4.4 MB a second, all parsed by the webview and
//! queued for every central station (issue 16's soak).

use std::collections::HashMap;

use vigil_alarms::{AudioState, BedAlarmState};

use crate::view::{DeviceView, ReadingView, WardUpdate};

/// A [`WardUpdate`] being gathered, where each device's last view sits in
/// it, and what this subscriber was last sent of each bed's alarms.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub update: WardUpdate,
    device_at: HashMap<String, usize>,
    /// Each bed's alarm state as this subscriber was last sent it.
    sent: HashMap<String, BedAlarmState>,
}

impl Batch {
    pub fn reading(&mut self, r: ReadingView) {
        self.update.readings.push(r);
    }

    /// Adds a device's view, or replaces the batch's last view of it when
    /// only its figures moved (battery, last data, counts). A change of
    /// link state, bed, technical condition or refusal is kept as a step of
    /// its own: the screen applies them in order and ends where the device is,
    /// and a subscriber still sees each transition (connecting, connected,
    /// receiving).
    pub fn device(&mut self, d: DeviceView) {
        if let Some(&i) = self.device_at.get(&d.device) {
            let last = &self.update.devices[i];
            if last.state == d.state
                && last.bed == d.bed
                && last.technical == d.technical
                && last.refused == d.refused
            {
                self.update.devices[i] = d;
                return;
            }
        }
        self.device_at.insert(d.device.clone(), self.update.devices.len());
        self.update.devices.push(d);
    }

    /// Takes a bed's alarm state; true when it must be sent now.
    pub fn alarms(&mut self, a: BedAlarmState) -> bool {
        let pending = self.update.alarms.iter().position(|x| x.bed == a.bed);
        let last = self.sent.get(&a.bed);
        if pending.is_none() && last == Some(&a) {
            return false;
        }
        let urgent = last.is_none_or(|l| urgent_change(l, &a));
        match pending {
            Some(i) => self.update.alarms[i] = a,
            None => self.update.alarms.push(a),
        }
        urgent
    }

    /// Starts over from a full picture (a subscriber that fell behind).
    pub fn replace(&mut self, update: WardUpdate) {
        self.device_at.clear();
        self.update = update;
        for (i, d) in self.update.devices.iter().enumerate() {
            self.device_at.insert(d.device.clone(), i);
        }
    }

    /// The batch to send, stamped `now_ms`; the next one starts empty.
    pub fn take(&mut self, now_ms: i64) -> WardUpdate {
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
    use vigil_alarms::PatientCategory;

    fn state(bed: &str, audio: AudioState) -> BedAlarmState {
        BedAlarmState {
            bed: bed.into(),
            category: PatientCategory::default(),
            active: Vec::new(),
            audio,
            highest: None,
            sounding: None,
            limits: Vec::new(),
        }
    }

    #[test]
    fn an_unchanged_alarm_state_is_not_sent_again_and_a_countdown_waits_for_the_tick() {
        let mut b = Batch::default();
        assert!(
            b.alarms(state("bed-1", AudioState::Normal)),
            "first state: at once"
        );
        b.take(1);
        assert!(
            !b.alarms(state("bed-1", AudioState::Normal)),
            "unchanged: not again"
        );
        assert!(b.take(2).alarms.is_empty());
        let paused = |s| AudioState::Paused {
            until: chrono::DateTime::UNIX_EPOCH,
            remaining_s: s,
            by: "nurse".into(),
        };
        assert!(b.alarms(state("bed-1", paused(120))), "paused: at once");
        b.take(3);
        assert!(
            !b.alarms(state("bed-1", paused(119))),
            "a second less: with the tick"
        );
        let u = b.take(4);
        assert_eq!(u.alarms.len(), 1, "but sent with it");
        assert!(b.alarms(state("bed-1", AudioState::Normal)), "resumed: at once");
    }
}
