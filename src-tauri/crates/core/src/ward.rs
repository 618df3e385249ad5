//! The ward as the pipeline knows it: beds and their admissions, devices and
//! their link state, the latest reading per bed and code.
//!
//! Pure state, no I/O and no clock of its own: the pipeline passes `now` in.
//! This is where the invariant "a stale value is never shown as live" is
//! decided for device state, and where decoded GATT values become
//! [`Reading`]s bound to the bed's current admission.
//!
//! **Stored records are taken once.** A glucose meter answers every "report
//! all stored records" (sent on each connect) with *all* its records, so each
//! reconnect re-sends what was already received. A record carries a sequence
//! number; the ward remembers, per device, the (sequence, device time) pairs
//! it has taken and drops a record seen before (counted, never stored twice).
//! The device time is part of the key because sequence numbers wrap and
//! restart after a meter reset. At start the ward is seeded from the store
//! ([`Ward::seed_records`]): the store keeps no sequence numbers, so a record
//! stored before a restart is recognised by device, device time, code and
//! value instead (the same sample, to the second).

use crate::view::{AdmissionView, BedView, DeviceInfoView, DeviceView, ReadingView, WardSnapshot};
use chrono::{DateTime, NaiveDateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
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
    info: DeviceInfoView,
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
            info: self.info.clone(),
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
    /// A stored record already taken (re-sent on a reconnect): nothing applied.
    pub duplicate: bool,
}

/// The measurement codes of stored records (glucose, GLS: one per sample type),
/// what [`Ward::seed_records`] needs read back from the store.
pub const RECORD_CODES: [Mdc; 10] = [
    Mdc::CONC_GLU_CAPILLARY_WHOLEBLOOD,
    Mdc::CONC_GLU_CAPILLARY_PLASMA,
    Mdc::CONC_GLU_VENOUS_WHOLEBLOOD,
    Mdc::CONC_GLU_VENOUS_PLASMA,
    Mdc::CONC_GLU_ARTERIAL_WHOLEBLOOD,
    Mdc::CONC_GLU_ARTERIAL_PLASMA,
    Mdc::CONC_GLU_UNDETERMINED_WHOLEBLOOD,
    Mdc::CONC_GLU_UNDETERMINED_PLASMA,
    Mdc::CONC_GLU_ISF,
    Mdc::CONC_GLU_CONTROL,
];

/// The stored records a device has delivered (see the module docs).
#[derive(Default)]
struct Records {
    /// Taken in this run: (sequence number, device time).
    seen: BTreeSet<(u16, Option<NaiveDateTime>)>,
    /// Found in the store at start (it keeps no sequence numbers).
    stored: BTreeSet<StoredKey>,
}

/// A stored record's reading: device time, code, value (`Debug` of `Value`
/// is exact: f64 prints its shortest round-trip form).
type StoredKey = (NaiveDateTime, Mdc, String);

fn stored_key(t: NaiveDateTime, code: Mdc, value: &vigil_model::Value) -> StoredKey {
    (t, code, format!("{value:?}"))
}

impl Records {
    /// Remembers the record; false if it was taken before.
    fn take(&mut self, decoded: &Decoded, sequence: u16) -> bool {
        let in_store = decoded.device_time.is_some_and(|t| {
            decoded
                .measurements
                .first()
                .is_some_and(|m| self.stored.contains(&stored_key(t, m.code(), &m.value())))
        });
        !in_store && self.seen.insert((sequence, decoded.device_time))
    }
}

#[derive(Default)]
pub struct Ward {
    /// Admission id → linked FHIR Patient reference.
    links: BTreeMap<String, String>,
    beds: BTreeMap<BedId, Option<Admission>>,
    devices: BTreeMap<DeviceId, Device>,
    latest: BTreeMap<(BedId, Mdc), ReadingView>,
    /// Per device (kept across detach/attach: a meter moved to another bed
    /// still re-sends its old records).
    records: BTreeMap<DeviceId, Records>,
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

    /// Records that an admission is linked to a FHIR Patient.
    pub fn set_link(&mut self, admission: &str, patient_ref: &str) {
        self.links.insert(admission.to_string(), patient_ref.to_string());
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
                admission: adm.as_ref().map(|a| AdmissionView {
                    fhir_patient: self.links.get(&a.id.0).cloned(),
                    ..AdmissionView::from(a)
                }),
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
            info: DeviceInfoView::default(),
        };
        let view = dev.view();
        self.devices.insert(view.device.clone(), dev);
        view
    }

    /// A device was removed from its bed; returns its last view.
    pub fn detach(&mut self, device: &str) -> Option<DeviceView> {
        self.devices.remove(device).map(|d| d.view())
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
        if let Some(seq) = decoded.sequence {
            let records = self.records.entry(device.to_string()).or_default();
            if !records.take(decoded, seq) {
                // Old data re-sent: not a new value, not a sign of life.
                out.duplicate = true;
                return out;
            }
        }
        let before = d.view();
        let admission = self
            .beds
            .get(&d.desc.bed)
            .and_then(|a| a.as_ref())
            .map(|a| a.id.clone());

        if let Some(b) = decoded.battery_percent {
            d.battery = Some(b);
        }
        if let Some(field) = &decoded.info {
            use vigil_gatt::DeviceInfoField as F;
            let i = &mut d.info;
            match field {
                F::ManufacturerName(v) => i.manufacturer = Some(v.clone()),
                F::ModelNumber(v) => i.model = Some(v.clone()),
                F::SerialNumber(v) => i.serial = Some(v.clone()),
                F::HardwareRevision(v) => i.hardware = Some(v.clone()),
                F::FirmwareRevision(v) => i.firmware = Some(v.clone()),
                F::SoftwareRevision(v) => i.software = Some(v.clone()),
                F::SystemId { eui64, .. } => i.system_id = Some(eui64.clone()),
                F::PnpId { .. } => {}
            }
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

    /// Seeds the record de-duplication from stored record readings (any of
    /// [`RECORD_CODES`]) so that a restart does not store a meter's records
    /// again when it re-sends them.
    pub fn seed_records(&mut self, readings: impl IntoIterator<Item = Reading>) {
        for r in readings {
            if let Some(t) = r.device_time {
                let key = stored_key(t, r.code, &r.value);
                self.records.entry(r.device).or_default().stored.insert(key);
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_devices::DeviceKind;
    use vigil_gatt::{encode, Characteristic};
    use vigil_model::{Source, Value};

    fn meter() -> Ward {
        let mut w = Ward::new(["bed-1".to_string()], vec![]);
        w.attach(DeviceDescriptor {
            bed: "bed-1".into(),
            device: "ble-meter".into(),
            kind: DeviceKind::GlucoseMeter,
            source: Source::Real,
            expected_interval: Duration::from_secs(3600),
        });
        w
    }

    fn record(seq: u16, minute: u32, mg_dl: f64) -> Decoded {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 5, 1)
            .unwrap()
            .and_hms_opt(7, minute, 0)
            .unwrap();
        let bytes = encode::glucose_mg_dl(seq, t, Value::Number(mg_dl));
        vigil_gatt::decode(Characteristic::GlucoseMeasurement, &bytes).unwrap()
    }

    #[test]
    fn a_stored_record_is_taken_once() {
        let mut w = meter();
        let now = Utc::now();
        let first = w.apply("ble-meter", &record(1, 30, 95.0), now);
        assert_eq!((first.readings.len(), first.duplicate), (1, false));
        // Re-sent on the next connect: dropped.
        let again = w.apply("ble-meter", &record(1, 30, 95.0), now);
        assert!(again.duplicate && again.readings.is_empty() && again.views.is_empty());
        // Same number after a meter reset (another time): a new record.
        assert_eq!(w.apply("ble-meter", &record(1, 45, 101.0), now).readings.len(), 1);
    }

    #[test]
    fn records_in_the_store_are_not_taken_again_after_a_restart() {
        let now = Utc::now();
        let stored = meter().apply("ble-meter", &record(7, 30, 95.0), now).readings;
        let mut w = meter();
        w.seed_records(stored);
        assert!(w.apply("ble-meter", &record(7, 30, 95.0), now).duplicate);
        // Same time, other value: another sample, taken.
        let other = w.apply("ble-meter", &record(8, 30, 96.0), now);
        assert_eq!((other.readings.len(), other.duplicate), (1, false));
    }
}
