//! One simulated bedside device: what it sends, and when.
//!
//! A device is driven by [`Job`]s from the ward's scheduler. Each job may emit
//! events and schedule further jobs; all values are functions of the job's
//! simulated time and the device's own RNG, never of how fast the host is.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use vigil_gatt::{encode, Characteristic};
use vigil_model::{BedId, DeviceId, LinkState, Source, Special, Value};

use super::scenario::{Patient, Scenario};
use crate::{DeviceDescriptor, DeviceEvent, DeviceKind};

/// The five devices every simulated bed has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    HeartRate,
    Oximeter,
    Respiration,
    Thermometer,
    BloodPressure,
}

impl Slot {
    pub const ALL: [Slot; 5] = [
        Slot::HeartRate,
        Slot::Oximeter,
        Slot::Respiration,
        Slot::Thermometer,
        Slot::BloodPressure,
    ];

    fn suffix(self) -> &'static str {
        match self {
            Slot::HeartRate => "hr",
            Slot::Oximeter => "spo2",
            Slot::Respiration => "resp",
            Slot::Thermometer => "temp",
            Slot::BloodPressure => "nibp",
        }
    }

    fn kind(self) -> DeviceKind {
        match self {
            Slot::HeartRate => DeviceKind::HeartRateStrap,
            Slot::Oximeter => DeviceKind::PulseOximeter,
            Slot::Respiration => DeviceKind::RespirationSensor,
            Slot::Thermometer => DeviceKind::Thermometer,
            Slot::BloodPressure => DeviceKind::BloodPressureCuff,
        }
    }

    /// How often the device sends a measurement.
    pub fn interval(self) -> Duration {
        Duration::from_secs(match self {
            Slot::HeartRate | Slot::Oximeter => 1,
            Slot::Respiration => 4,
            Slot::Thermometer => 60,
            Slot::BloodPressure => 5 * 60,
        })
    }
}

/// Something a device does at a scheduled simulated time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Job {
    /// Announce the device (first job of every device, all at start, so the
    /// whole ward is known before any data arrives).
    Attach,
    /// Start (re)connecting after an outage.
    Connecting,
    /// Link up: read the battery; on the first connect start the timers.
    Connected,
    /// Link lost (out-of-range scenario) until the given time.
    Disconnect { until: SimMs },
    /// Send one measurement.
    Measure,
    /// Send the battery level.
    Battery,
}

/// Milliseconds of simulated time since the ward started.
pub(crate) type SimMs = u64;

const BATTERY_EVERY_MS: SimMs = 60_000;
const CONNECT_TAKES_MS: SimMs = 1_500;
const BP_FIRST_MS: SimMs = 10_000;
const TEMP_FIRST_AFTER_CONNECT_MS: SimMs = 5_000;

pub(crate) struct SimDevice {
    bed: BedId,
    id: DeviceId,
    slot: Slot,
    patient: Patient,
    rng: ChaCha8Rng,
    /// When the device starts connecting, staggered so beds don't tick in unison.
    switch_on_ms: SimMs,
    battery: f64,
    /// Battery drain in percent per minute, and the level it stops at.
    drain_per_min: f64,
    battery_floor: f64,
    /// The device's own clock minus true time: thermometers and cuffs stamp
    /// readings with an unsynchronised clock, which the pipeline must notice.
    clock_offset: chrono::Duration,
    connected: bool,
    /// Timers (measure, battery) run from the first connect on; reconnects
    /// must not start a second set.
    timers_started: bool,
    /// Send `Receiving` with the first measurement after a (re)connect.
    announce_receiving: bool,
    /// HR strap beat model: when the next beat lands and its R-R interval.
    next_beat_s: f64,
    pending_rr_s: f64,
}

impl SimDevice {
    pub fn new(bed: BedId, slot: Slot, patient: Patient, mut rng: ChaCha8Rng) -> Self {
        let id = format!("sim-{bed}-{}", slot.suffix());
        let switch_on_ms = rng.gen_range(0..3_000);
        let (battery, drain_per_min, battery_floor) = if patient.scenario == Scenario::LowBattery {
            (rng.gen_range(14.0..16.0), rng.gen_range(0.4..0.6), 3.0)
        } else {
            // A ward shift barely dents a healthy battery: ~1-2 % an hour.
            (rng.gen_range(60.0..100.0), rng.gen_range(0.015..0.035), 5.0)
        };
        let magnitude = rng.gen_range(5..=300);
        let sign = if rng.gen_bool(0.5) { 1 } else { -1 };
        SimDevice {
            bed,
            id,
            slot,
            patient,
            rng,
            switch_on_ms,
            battery,
            drain_per_min,
            battery_floor,
            clock_offset: chrono::Duration::seconds(sign * magnitude),
            connected: false,
            timers_started: false,
            announce_receiving: false,
            next_beat_s: 0.0,
            pending_rr_s: 0.0,
        }
    }

    pub fn descriptor(&self) -> DeviceDescriptor {
        DeviceDescriptor {
            bed: self.bed.clone(),
            device: self.id.clone(),
            kind: self.slot.kind(),
            source: Source::Simulated,
            expected_interval: self.slot.interval(),
        }
    }

    /// Run `job` at simulated time `at`; `now` stamps the events. Emitted
    /// events go to `out`, follow-up jobs to `next`.
    pub fn handle(
        &mut self,
        job: Job,
        at: SimMs,
        now: DateTime<Utc>,
        out: &mut Vec<DeviceEvent>,
        next: &mut Vec<(SimMs, Job)>,
    ) {
        match job {
            Job::Attach => {
                out.push(DeviceEvent::Attached(self.descriptor()));
                next.push((at + self.switch_on_ms, Job::Connecting));
            }
            Job::Connecting => {
                out.push(self.link(LinkState::Connecting, now));
                next.push((
                    at + CONNECT_TAKES_MS + self.rng.gen_range(0..1_000),
                    Job::Connected,
                ));
            }
            Job::Connected => {
                self.connected = true;
                self.announce_receiving = true;
                out.push(self.link(LinkState::Connected, now));
                // Real gateways read the battery right after connecting.
                out.push(self.battery_payload(now));
                if !self.timers_started {
                    self.timers_started = true;
                    next.push((self.first_measurement(at), Job::Measure));
                    next.push((at + BATTERY_EVERY_MS, Job::Battery));
                }
                if self.slot == Slot::Oximeter {
                    if let Some((start, end)) = self.patient.next_outage(secs(at)) {
                        next.push((ms(start).max(at + 1), Job::Disconnect { until: ms(end) }));
                    }
                }
            }
            Job::Disconnect { until } => {
                self.connected = false;
                out.push(self.link(LinkState::Disconnected, now));
                next.push((until.max(at + 1), Job::Connecting));
            }
            Job::Measure => {
                // The timer keeps its rhythm while the link is down, and the
                // value is made anyway, so the RNG stream and the beat model
                // don't depend on link history; it is just not sent.
                next.push((at + self.slot.interval().as_millis() as SimMs, Job::Measure));
                let payload = self.measurement(at, now);
                if self.connected {
                    if self.announce_receiving {
                        self.announce_receiving = false;
                        out.push(self.link(LinkState::Receiving, now));
                    }
                    out.push(payload);
                }
            }
            Job::Battery => {
                next.push((at + BATTERY_EVERY_MS, Job::Battery));
                self.battery = (self.battery - self.drain_per_min).max(self.battery_floor);
                if self.connected {
                    out.push(self.battery_payload(now));
                }
            }
        }
    }

    fn first_measurement(&self, connected_at: SimMs) -> SimMs {
        match self.slot {
            // The cuff inflates ~10 s after the monitor is switched on.
            Slot::BloodPressure => BP_FIRST_MS.max(connected_at + 1_000),
            Slot::Thermometer => connected_at + TEMP_FIRST_AFTER_CONNECT_MS,
            _ => connected_at + self.slot.interval().as_millis() as SimMs,
        }
    }

    fn link(&self, state: LinkState, at: DateTime<Utc>) -> DeviceEvent {
        DeviceEvent::Link {
            device: self.id.clone(),
            state,
            at,
        }
    }

    fn payload(
        &self,
        characteristic: Characteristic,
        bytes: Vec<u8>,
        received: DateTime<Utc>,
    ) -> DeviceEvent {
        DeviceEvent::Payload {
            device: self.id.clone(),
            characteristic,
            bytes,
            received,
        }
    }

    fn battery_payload(&self, now: DateTime<Utc>) -> DeviceEvent {
        let pct = self.battery.round().clamp(0.0, 100.0) as u8;
        self.payload(Characteristic::BatteryLevel, encode::battery(pct), now)
    }

    /// The device's own (wrong) idea of the time, to the second as GATT
    /// Date Time carries it.
    fn device_time(&self, now: DateTime<Utc>) -> NaiveDateTime {
        let t = (now + self.clock_offset).naive_utc();
        t.with_nanosecond(0).unwrap_or(t)
    }

    /// Symmetric noise in ±`amp` (triangular: small deviations are likelier).
    fn noise(&mut self, amp: f64) -> f64 {
        (self.rng.gen::<f64>() - self.rng.gen::<f64>()) * amp
    }

    fn measurement(&mut self, at: SimMs, now: DateTime<Utc>) -> DeviceEvent {
        let t = secs(at);
        let v = self.patient.vitals(t);
        match self.slot {
            Slot::HeartRate => {
                // Slow wander (breathing, posture) plus beat-to-beat noise.
                let hr = (v.hr + 1.5 * (t / 47.0).sin() + self.noise(1.5)).max(20.0);
                let rr = self.beats_until(t, hr);
                let bytes = if self.patient.hr_contact(t) {
                    encode::heart_rate(hr.round() as u16, Some(true), &rr)
                } else {
                    // No skin contact: no beats are detected, the strap says so
                    // and reports 0 - the pipeline must not treat it as asystole.
                    encode::heart_rate(0, Some(false), &[])
                };
                self.payload(Characteristic::HeartRateMeasurement, bytes, now)
            }
            Slot::Oximeter => {
                let spo2 = (v.spo2 + self.noise(1.0)).round().min(100.0);
                let pr = (v.hr + 1.5 * (t / 47.0).sin() + self.noise(2.0)).round();
                let special = self.patient.scenario == Scenario::SpecialValues && self.rng.gen_bool(0.03);
                let (spo2, pr) = if special {
                    // A finger moving on the probe: no valid saturation, PR unresolvable.
                    (Value::Special(Special::NaN), Value::Special(Special::NRes))
                } else {
                    (Value::Number(spo2), Value::Number(pr))
                };
                self.payload(
                    Characteristic::PlxContinuousMeasurement,
                    encode::plx_continuous(spo2, pr, None),
                    now,
                )
            }
            Slot::Respiration => {
                let rr = (v.resp + self.noise(1.2)).round().max(4.0);
                self.payload(
                    Characteristic::SimRespRate,
                    encode::resp_rate(Value::Number(rr)),
                    now,
                )
            }
            Slot::Thermometer => {
                let special = self.patient.scenario == Scenario::SpecialValues && self.rng.gen_bool(0.2);
                let temp = if special {
                    Value::Special(Special::NaN)
                } else {
                    Value::Number(((v.temp + self.noise(0.08)) * 10.0).round() / 10.0)
                };
                // Temperature type 2 = "Body (general)".
                let bytes = encode::temperature(temp, Some(self.device_time(now)), Some(2));
                self.payload(Characteristic::TemperatureMeasurement, bytes, now)
            }
            Slot::BloodPressure => {
                let sys = (v.sys + self.noise(4.0)).round();
                let dia = (v.dia + self.noise(3.0)).round();
                let map = (dia + (sys - dia) / 3.0).round();
                let pulse = (v.hr + self.noise(2.0)).round();
                let bytes = encode::blood_pressure(
                    Value::Number(sys),
                    Value::Number(dia),
                    Value::Number(map),
                    Some(self.device_time(now)),
                    Some(Value::Number(pulse)),
                );
                self.payload(Characteristic::BloodPressureMeasurement, bytes, now)
            }
        }
    }

    /// R-R intervals (1/1024 s) of the beats since the last notification, so
    /// the intervals always agree with the heart rate being reported. Beats
    /// during contact loss are dropped, as a strap would miss them.
    fn beats_until(&mut self, t: f64, hr: f64) -> Vec<u16> {
        if self.next_beat_s == 0.0 {
            self.pending_rr_s = 60.0 / hr;
            self.next_beat_s = t - 1.0 + self.pending_rr_s;
        }
        let contact = self.patient.hr_contact(t);
        let mut rr = Vec::new();
        while self.next_beat_s <= t {
            if contact {
                rr.push((self.pending_rr_s * 1024.0).round() as u16);
            }
            // ~2 % beat-to-beat variability.
            self.pending_rr_s = 60.0 / hr * (1.0 + self.noise(0.02));
            self.next_beat_s += self.pending_rr_s;
        }
        rr
    }
}

fn secs(at: SimMs) -> f64 {
    at as f64 / 1000.0
}

fn ms(secs: f64) -> SimMs {
    (secs * 1000.0).round() as SimMs
}
