//! The ward as the pipeline knows it: beds and their admissions, devices and
//! their link state, the latest reading per bed and code.
//!
//! Pure state, no I/O and no clock of its own: the pipeline passes `now` in.
//! This is where the invariant "a stale value is never shown as live" is
//! decided for device state, and where decoded GATT values become
//! [`Reading`]s bound to the bed's current admission.

use crate::view::{AdmissionView, BedView, DeviceView, ReadingView, WardSnapshot};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;
use vigil_devices::DeviceDescriptor;
use vigil_gatt::{Decoded, SensorContact};
use vigil_model::{BedId, DeviceId, LinkState, Mdc, Reading};
use vigil_store::Admission;

/// How long after its expected interval a value becomes stale: one more
/// interval, and never less than 5 s, so one late packet does not flicker
/// the screen but a lost device shows within seconds.
pub fn stale_after(expected: Duration) -> Duration {
    expected + expected.max(Duration::from_secs(5))
}

struct Device {
    desc: DeviceDescriptor,
    state: LinkState,
    battery: Option<u8>,
    technical: Option<String>,
    clock_offset_s: Option<i64>,
    last_data: Option<DateTime<Utc>>,
}

impl Device {
    fn view(&self) -> DeviceView {
        DeviceView {
            bed: self.desc.bed.clone(),
            device: self.desc.device.clone(),
            kind: self.desc.kind,
            label: self.desc.kind.label(),
            state: self.state,
            battery: self.battery,
            technical: self.technical.clone(),
            source: self.desc.source,
            clock_offset_s: self.clock_offset_s,
            last_data_ms: self.last_data.map(|t| t.timestamp_millis()),
            expected_interval_ms: self.desc.expected_interval.as_millis() as u64,
        }
    }

    fn stale_after_ms(&self) -> u64 {
        stale_after(self.desc.expected_interval).as_millis() as u64
    }
}

/// What one decoded payload changed.
#[derive(Debug, Default)]
pub struct Applied {
    pub readings: Vec<Reading>,
    pub views: Vec<ReadingView>,
    pub device: Option<DeviceView>,
}

#[derive(Default)]
pub struct Ward {
    beds: BTreeMap<BedId, Option<Admission>>,
    devices: BTreeMap<DeviceId, Device>,
    latest: BTreeMap<(BedId, Mdc), ReadingView>,
}

impl Ward {
    pub fn new(beds: impl IntoIterator<Item = BedId>, admissions: Vec<Admission>) -> Self {
        let mut w = Ward::default();
        for b in beds {
            w.beds.insert(b, None);
        }
        for a in admissions {
            w.beds.insert(a.bed.clone(), Some(a));
        }
        w
    }

    pub fn has_bed(&self, bed: &str) -> bool {
        self.beds.contains_key(bed)
    }

    pub fn set_admission(&mut self, bed: &str, admission: Option<Admission>) {
        self.beds.insert(bed.to_string(), admission);
    }

    pub fn beds(&self) -> Vec<BedView> {
        self.beds
            .iter()
            .map(|(bed, adm)| BedView {
                bed: bed.clone(),
                label: bed_label(bed),
                admission: adm.as_ref().map(AdmissionView::from),
            })
            .collect()
    }

    /// A device joined a bed.
    pub fn attach(&mut self, desc: DeviceDescriptor) -> DeviceView {
        self.beds.entry(desc.bed.clone()).or_insert(None);
        let dev = Device {
            desc,
            state: LinkState::Connecting,
            battery: None,
            technical: None,
            clock_offset_s: None,
            last_data: None,
        };
        let view = dev.view();
        self.devices.insert(view.device.clone(), dev);
        view
    }

    /// A device was removed from its bed.
    pub fn detach(&mut self, device: &str) {
        self.devices.remove(device);
    }

    /// The link changed. Returns the new view if anything changed.
    pub fn link(&mut self, device: &str, state: LinkState) -> Option<DeviceView> {
        let d = self.devices.get_mut(device)?;
        if d.state == state {
            return None;
        }
        d.state = state;
        Some(d.view())
    }

    /// Turns one decoded payload into readings for the device's bed.
    pub fn apply(&mut self, device: &str, decoded: &Decoded, received: DateTime<Utc>) -> Applied {
        let mut out = Applied::default();
        let Some(d) = self.devices.get_mut(device) else {
            return out;
        };
        let before = d.view();
        let admission = self
            .beds
            .get(&d.desc.bed)
            .and_then(|a| a.as_ref())
            .map(|a| a.id.clone());

        if let Some(b) = decoded.battery_percent {
            d.battery = Some(b);
        }
        if let Some(dt) = decoded.device_time {
            // Device clocks are local and unsynchronised: record how far off
            // this one is (device minus gateway, seconds).
            d.clock_offset_s = Some((dt - received.naive_utc()).num_seconds());
        }
        // A heart-rate strap that reports "contact supported, not detected" is
        // a technical condition: its number is not a heart rate and must not
        // be stored, trended or shown as one.
        let untrusted = decoded.sensor_contact == Some(SensorContact::NotDetected);
        d.technical = untrusted.then(|| "sensor contact lost".to_string());

        if !decoded.measurements.is_empty() {
            d.last_data = Some(received);
            d.state = LinkState::Receiving;
        }
        if !untrusted {
            for m in &decoded.measurements {
                let r = Reading {
                    bed: d.desc.bed.clone(),
                    admission: admission.clone(),
                    device: d.desc.device.clone(),
                    code: m.code(),
                    value: m.value(),
                    unit: m.unit.to_string(),
                    device_time: decoded.device_time,
                    received,
                    source: d.desc.source,
                };
                let view = ReadingView::new(&r, d.stale_after_ms());
                self.latest.insert((r.bed.clone(), r.code), view.clone());
                out.views.push(view);
                out.readings.push(r);
            }
        }
        let after = d.view();
        if after != before {
            out.device = Some(after);
        }
        out
    }

    /// Marks devices whose data is overdue as stale. Returns what changed.
    pub fn watchdog(&mut self, now: DateTime<Utc>) -> Vec<DeviceView> {
        let mut changed = Vec::new();
        for d in self.devices.values_mut() {
            let overdue = match d.last_data {
                Some(t) => (now - t).to_std().unwrap_or_default() > stale_after(d.desc.expected_interval),
                None => false,
            };
            if overdue && d.state == LinkState::Receiving {
                d.state = LinkState::Stale;
                changed.push(d.view());
            }
        }
        changed
    }

    pub fn snapshot(&self, now: DateTime<Utc>) -> WardSnapshot {
        WardSnapshot {
            now_ms: now.timestamp_millis(),
            beds: self.beds(),
            devices: self.devices.values().map(Device::view).collect(),
            latest: self.latest.values().cloned().collect(),
            // Filled in by the caller, which owns the alarm engine.
            alarms: Vec::new(),
            news2: Vec::new(),
        }
    }

    pub fn device_counts(&self) -> (usize, usize) {
        let receiving = self
            .devices
            .values()
            .filter(|d| d.state == LinkState::Receiving)
            .count();
        (self.devices.len(), receiving)
    }

    /// Seeds the latest values from the store at start-up (so a restart shows
    /// the last known values — as stale, since their age says so).
    pub fn seed_latest(&mut self, readings: Vec<Reading>, default_interval: Duration) {
        for r in readings {
            if !self.beds.contains_key(&r.bed) {
                continue;
            }
            let stale = self
                .devices
                .get(&r.device)
                .map(|d| d.stale_after_ms())
                .unwrap_or(stale_after(default_interval).as_millis() as u64);
            self.latest
                .insert((r.bed.clone(), r.code), ReadingView::new(&r, stale));
        }
    }
}

/// "bed-3" → "Bed 3".
pub fn bed_label(bed: &str) -> String {
    match bed.strip_prefix("bed-") {
        Some(n) => format!("Bed {n}"),
        None => bed.to_string(),
    }
}
