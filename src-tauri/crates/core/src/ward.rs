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
//!
//! **Time.** A [`Reading`]'s `received` is when the value was measured, on
//! the gateway's clock. Device clocks are local and unsynchronised, so each
//! device's clock offset (device time − gateway time, whole seconds) is
//! learnt and shown:
//!
//! * a Current Time read (CTS 1.1 §3.1, 0x2A2B, read by the BLE source right
//!   after connecting) sets it: that is the device's clock now, which is what
//!   the offset means (the PHD IG's "coincident time stamp": a device time
//!   paired with the gateway time at which it was current). A device whose
//!   Current Time says "date unknown" has no offset. A read with a known time
//!   also becomes a device-clock [`Reading`] ([`Mdc::ATTR_TIME_ABS`]: value
//!   the offset in seconds, `device_time` the device's clock, `received` the
//!   gateway time of the read) that is stored and uploaded (as the PHD IG
//!   Coincident Time Stamp Observation) ahead of the records downloaded after
//!   it, but is never a value on the screen (no view, never the latest);
//! * a live measurement with a device time sets it only while no Current Time
//!   has been read since the device was attached (a time stamp taken at
//!   measurement and sent at once is a fair, if rougher, coincident pair);
//! * a stored record never does: its device time is when it was measured,
//!   hours or days before it arrives.
//!
//! A live value is placed at its receipt time. A stored record (it has a
//! sequence number) with a device time is placed at device time − offset,
//! read as UTC, and never later than its receipt; without a known offset it
//! keeps the receipt time, its age is unknown, and the pipeline logs that
//! once per device. A record's time decides whether it is fresh: it becomes
//! the bed's latest value only if nothing newer is there, and it counts as a
//! sign of life (last data, `Receiving`) only if its age is known and within
//! the device's staleness window. A record of unknown age is shown with a
//! zero staleness window: never as a live value.
//!
//! **Records out of range are refused** (issue 13 §1): a stored record whose
//! time on the gateway clock is more than [`RECORD_FUTURE_TOLERANCE`] ahead
//! of its receipt (a record "from the future" is a wrong clock or a forgery,
//! and would become the bed's latest value for as long as it lasts), or
//! older than the store's retention (it would be deleted at the next
//! retention pass, and a device re-sending years of records must not flood
//! the store), is dropped and counted. Without a known clock offset device
//! time is local time compared with UTC, so both bounds widen by
//! [`UNKNOWN_OFFSET_SLACK`] (any time zone). The records remembered per
//! device are bounded the same way: those older than retention are forgotten
//! (they would be refused anyway) and at most [`MAX_RECORDS_PER_DEVICE`] are
//! kept, the oldest going first (a meter holds about 1 000).
//!
//! **Trust** ([`crate::trust`]): [`Ward::foreign`] and [`Ward::admit`] decide,
//! before a payload is applied, whether the device may send it at all.

use crate::trust::{DeviceTrust, Identity};
use crate::view::{AdmissionView, BedView, DeviceInfoView, DeviceView, ReadingView, WardSnapshot};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
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
    /// Device time − gateway time, seconds (see the module docs, "Time").
    clock_offset_s: Option<i64>,
    /// A Current Time (0x2A2B) value was read since the device was attached:
    /// only such reads set the offset from then on.
    clock_read: bool,
    /// "Stored records placed at receipt time" was reported.
    unplaced_reported: bool,
    /// When its newest value was measured (gateway clock).
    last_data: Option<DateTime<Utc>>,
    /// When its link last came up (gateway clock): a device that connects and
    /// then sends nothing is aged from here.
    linked_at: Option<DateTime<Utc>>,
    /// When the watchdog first saw it attached: a device whose link never comes up is
    /// "disconnected" from [`NEVER_CONNECTED_AFTER`] on, once.
    attached_at: Option<DateTime<Utc>>,
    never_connected_reported: bool,
    info: DeviceInfoView,
    trust: DeviceTrust,
}

/// How long an assigned device may stay "connecting" without its link ever coming up before
/// it counts as disconnected (a technical alarm at its bed). A BLE connection, service
/// discovery included, takes a few seconds; a device that is off, out of range or not the
/// one assigned never gets there, and "connecting" forever must not look like a quiet bed.
pub const NEVER_CONNECTED_AFTER: Duration = Duration::from_secs(30);

impl Device {
    fn view(&self) -> DeviceView {
        DeviceView {
            bed: self.desc.bed.clone(),
            device: self.desc.device.clone(),
            kind: self.desc.kind,
            label: crate::view::KindLabel(self.desc.kind.label()),
            state: self.state,
            battery: self.battery,
            technical: self.technical.clone(),
            source: self.desc.source,
            clock_offset_s: self.clock_offset_s,
            last_data_ms: self.last_data.map(|t| t.timestamp_millis()),
            expected_interval_ms: self.desc.expected_interval.as_millis() as u64,
            info: self.info.clone(),
            bonded: self.trust.bonded,
            refused: self.trust.shown_refusal(),
            foreign_values: self.trust.foreign,
            refused_values: self.trust.refused,
            identity_pinned: self.trust.pin.is_some(),
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
    /// Set once per device, on the first stored record placed at its receipt
    /// time because the device's clock offset is unknown (for the log).
    pub placed_at_receipt: bool,
    /// A stored record refused for its time (see the module docs).
    pub rejected_record: Option<RecordRejection>,
}

/// Why a stored record was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordRejection {
    /// Its time is ahead of its receipt by more than the tolerance.
    Future,
    /// Older than the store keeps readings.
    OlderThanRetention,
}

/// How far ahead of its receipt a stored record's time may be (device
/// clocks drift between Current Time reads; times are to the second).
pub const RECORD_FUTURE_TOLERANCE: TimeDelta = TimeDelta::minutes(5);

/// Without a known clock offset a record's device time (local wall time) is
/// compared with UTC: the bounds widen by the largest time-zone offset.
pub const UNKNOWN_OFFSET_SLACK: TimeDelta = TimeDelta::hours(14);

/// Most stored records remembered per device (seen in this run, and found
/// in the store at start, each): a glucose meter holds about 1 000.
pub const MAX_RECORDS_PER_DEVICE: usize = 10_000;

/// Whether a stored record's time is acceptable (see the module docs).
fn record_out_of_range(
    device_time: Option<NaiveDateTime>,
    offset_s: Option<i64>,
    received: DateTime<Utc>,
    window: TimeDelta,
) -> Option<RecordRejection> {
    let t = device_time?;
    let (at, slack) = match offset_s.and_then(TimeDelta::try_seconds) {
        Some(off) => (t.checked_sub_signed(off)?, TimeDelta::zero()),
        None => (t, UNKNOWN_OFFSET_SLACK),
    };
    let received = received.naive_utc();
    if at > received + RECORD_FUTURE_TOLERANCE + slack {
        Some(RecordRejection::Future)
    } else if at < received - window - slack {
        Some(RecordRejection::OlderThanRetention)
    } else {
        None
    }
}

/// Device time − gateway time in whole seconds, rounded to the nearest (a
/// Current Time read carries fractions; truncating would bias the offset by
/// the read's latency).
fn clock_offset_s(device_time: NaiveDateTime, gateway: DateTime<Utc>) -> i64 {
    let ms = (device_time - gateway.naive_utc()).num_milliseconds();
    (ms + 500).div_euclid(1000)
}

/// A stored record's time on the gateway clock: its device time corrected by
/// the device's clock offset, as UTC, no later than it arrived.
fn place(device_time: NaiveDateTime, offset_s: i64, received: DateTime<Utc>) -> DateTime<Utc> {
    TimeDelta::try_seconds(offset_s)
        .and_then(|off| device_time.checked_sub_signed(off))
        .map_or(received, |t| t.and_utc().min(received))
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
    /// Taken in this run: (device time, sequence number), oldest first.
    seen: BTreeSet<(Option<NaiveDateTime>, u16)>,
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
    /// Remembers the record; false if it was taken before. Forgets records
    /// with a device time before `forget_before` (older than anything that
    /// is still accepted) and the oldest beyond [`MAX_RECORDS_PER_DEVICE`].
    fn take(&mut self, decoded: &Decoded, sequence: u16, forget_before: NaiveDateTime) -> bool {
        let in_store = decoded.device_time.is_some_and(|t| {
            decoded
                .measurements
                .first()
                .is_some_and(|m| self.stored.contains(&stored_key(t, m.code(), &m.value())))
        });
        let new = !in_store && self.seen.insert((decoded.device_time, sequence));
        if self
            .seen
            .first()
            .is_some_and(|(t, _)| t.is_some_and(|t| t < forget_before))
        {
            self.seen.retain(|(t, _)| t.is_none_or(|t| t >= forget_before));
        }
        if self.stored.first().is_some_and(|(t, _, _)| *t < forget_before) {
            self.stored.retain(|(t, _, _)| *t >= forget_before);
        }
        bound(&mut self.seen);
        bound(&mut self.stored);
        new
    }

    fn len(&self) -> usize {
        self.seen.len() + self.stored.len()
    }
}

/// Drops the oldest entries beyond [`MAX_RECORDS_PER_DEVICE`].
fn bound<T: Ord>(set: &mut BTreeSet<T>) {
    while set.len() > MAX_RECORDS_PER_DEVICE {
        set.pop_first();
    }
}

pub struct Ward {
    /// Admission id → linked FHIR Patient reference.
    links: BTreeMap<String, String>,
    beds: BTreeMap<BedId, Option<Admission>>,
    devices: BTreeMap<DeviceId, Device>,
    latest: BTreeMap<(BedId, Mdc), ReadingView>,
    /// Per device (kept across detach/attach: a meter moved to another bed
    /// still re-sends its old records).
    records: BTreeMap<DeviceId, Records>,
    /// How long the store keeps readings: older stored records are refused.
    record_window: TimeDelta,
    /// Identities pinned with assignments (from the store at start), by device.
    pins: BTreeMap<DeviceId, Identity>,
    /// Pins made since last taken, to be saved ([`crate::trust::save_pins`]).
    new_pins: Vec<(DeviceId, Identity)>,
    /// The site's `ble.require_bonded`.
    require_bonded: bool,
}

impl Default for Ward {
    fn default() -> Self {
        Ward {
            links: BTreeMap::new(),
            beds: BTreeMap::new(),
            devices: BTreeMap::new(),
            latest: BTreeMap::new(),
            records: BTreeMap::new(),
            record_window: crate::maintenance::Retention::default().0,
            pins: BTreeMap::new(),
            new_pins: Vec::new(),
            require_bonded: false,
        }
    }
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

    /// The bed's current admission, if a patient is admitted.
    pub fn admission_of(&self, bed: &str) -> Option<vigil_model::AdmissionId> {
        self.beds.get(bed)?.as_ref().map(|a| a.id.clone())
    }

    /// Admits or discharges. A discharge clears the bed's values: they are
    /// the leaving patient's (or older), and wrong-patient data at the bedside
    /// is a safety problem; values measured from then on show again. An
    /// admission keeps the values measured with no patient admitted (the
    /// sensors a nurse put on the patient being admitted, seen a moment ago).
    pub fn set_admission(&mut self, bed: &str, admission: Option<Admission>) {
        let new = admission.as_ref().map(|a| a.id.clone());
        let old = self
            .beds
            .insert(bed.to_string(), admission)
            .flatten()
            .map(|a| a.id);
        if old.is_some() && old != new {
            self.latest.retain(|(b, _), _| b != bed);
        }
    }

    /// The beds in the order a nurse counts them (bed-2 before bed-10).
    pub fn beds(&self) -> Vec<BedView> {
        let mut beds: Vec<_> = self.beds.iter().collect();
        beds.sort_by(|(a, _), (b, _)| bed_order(a).cmp(&bed_order(b)));
        beds.into_iter()
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
        let trust = DeviceTrust {
            real: desc.source == vigil_model::Source::Real,
            require_bonded: self.require_bonded,
            pin: self.pins.get(&desc.device).cloned(),
            ..DeviceTrust::default()
        };
        let dev = Device {
            trust,
            desc,
            state: LinkState::Connecting,
            battery: None,
            technical: None,
            clock_offset_s: None,
            clock_read: false,
            unplaced_reported: false,
            last_data: None,
            linked_at: None,
            attached_at: None,
            never_connected_reported: false,
            info: DeviceInfoView::default(),
        };
        let view = dev.view();
        self.devices.insert(view.device.clone(), dev);
        view
    }

    /// The bed and last view of a device attached elsewhere than `bed` (it
    /// is being moved): its alarms at the old bed must go with it.
    pub fn attached_elsewhere(&self, device: &str, bed: &str) -> Option<DeviceView> {
        self.devices
            .get(device)
            .filter(|d| d.desc.bed != bed)
            .map(|d| d.view())
    }

    /// How long a value from `device` is current (its staleness window).
    pub fn stale_window(&self, device: &str) -> Option<Duration> {
        self.devices
            .get(device)
            .map(|d| stale_after(d.desc.expected_interval))
    }

    /// A device was removed from its bed; returns its last view.
    pub fn detach(&mut self, device: &str) -> Option<DeviceView> {
        self.devices.remove(device).map(|d| d.view())
    }

    /// The link changed at `at`. Returns the new view if anything changed.
    pub fn link(&mut self, device: &str, state: LinkState, at: DateTime<Utc>) -> Option<DeviceView> {
        let d = self.devices.get_mut(device)?;
        if d.state == state {
            return None;
        }
        if state == LinkState::Connected {
            d.linked_at = Some(at);
            d.trust.begin_session();
        }
        d.state = state;
        Some(d.view())
    }

    /// How long the store keeps readings (stored records older than this are refused).
    pub fn set_record_window(&mut self, retention: TimeDelta) {
        self.record_window = retention;
    }

    /// The site's `ble.require_bonded`.
    pub fn set_require_bonded(&mut self, on: bool) {
        self.require_bonded = on;
        for d in self.devices.values_mut() {
            d.trust.require_bonded = on;
        }
    }

    /// An identity pinned with a device's assignment (from the store, at start).
    pub fn set_pin(&mut self, device: &str, pin: Identity) {
        if let Some(d) = self.devices.get_mut(device) {
            d.trust.pin = Some(pin.clone());
        }
        self.pins.insert(device.to_string(), pin);
    }

    /// Pins made by first connections since last taken, to be saved.
    pub fn take_new_pins(&mut self) -> Vec<(DeviceId, Identity)> {
        std::mem::take(&mut self.new_pins)
    }

    /// A nurse assigned the device (again): whatever identity it has now is
    /// accepted. If its link is up and its identity was read on it, that
    /// identity is pinned at once; otherwise the pin is cleared and the next
    /// connection pins. Returns the pin to save and the device's new view.
    pub fn accept_identity(&mut self, device: &str) -> (Option<Identity>, Option<DeviceView>) {
        let Some(d) = self.devices.get_mut(device) else {
            self.pins.remove(device);
            return (None, None);
        };
        let up = matches!(
            d.state,
            LinkState::Connected | LinkState::Receiving | LinkState::Stale
        );
        let before = d.view();
        d.trust.identity_changed = false;
        d.trust.pin = (up && d.trust.checked && !d.trust.seen.is_empty()).then(|| d.trust.seen.clone());
        match &d.trust.pin {
            Some(p) => self.pins.insert(device.to_string(), p.clone()),
            None => self.pins.remove(device),
        };
        self.new_pins.retain(|(dev, _)| dev != device);
        let after = d.view();
        (d.trust.pin.clone(), (after != before).then_some(after))
    }

    /// The link's security as the platform reports it. Returns the new view if anything changed.
    pub fn security(&mut self, device: &str, bonded: Option<bool>) -> Option<DeviceView> {
        let d = self.devices.get_mut(device)?;
        let before = d.view();
        d.trust.bonded = bonded;
        d.trust.security_known = true;
        let after = d.view();
        (after != before).then_some(after)
    }

    /// Counts a value the device may not send as its assigned kind (see
    /// [`crate::trust`]): `Some(view)` when `characteristic` is outside its
    /// kind's profile (the payload is then dropped, undecoded), `None` to go on.
    pub fn foreign(
        &mut self,
        device: &str,
        characteristic: Option<vigil_gatt::Characteristic>,
    ) -> Option<DeviceView> {
        let d = self.devices.get_mut(device)?;
        if characteristic.is_some_and(|ch| vigil_devices::accepts(d.desc.kind, ch)) {
            return None;
        }
        d.trust.foreign += 1;
        Some(d.view())
    }

    /// Whether a decoded payload from `device` is taken ([`crate::trust`]):
    /// Device Information always (it is how the device says who it is, and
    /// it is shown); anything else only from a device whose identity
    /// matches its pin and whose link the site's policy accepts. The first
    /// value of a connection checks (or first pins) the identity.
    pub fn admit(&mut self, device: &str, decoded: &Decoded) -> Admit {
        let Some(d) = self.devices.get_mut(device) else {
            return Admit::default();
        };
        let before = d.view();
        let mut out = Admit::default();
        if let Some(field) = &decoded.info {
            use vigil_gatt::DeviceInfoField as F;
            match field {
                F::SerialNumber(v) => d.trust.seen.serial = Some(v.clone()),
                F::SystemId { eui64, .. } => d.trust.seen.system_id = Some(eui64.clone()),
                _ => {}
            }
            return out;
        }
        if let Some(pin) = d.trust.check_identity() {
            self.pins.insert(device.to_string(), pin.clone());
            self.new_pins.push((device.to_string(), pin));
        }
        if let Some(why) = d.trust.refusal() {
            d.trust.refused += 1;
            out.refused = Some(why);
        }
        let after = d.view();
        out.device = (after != before).then_some(after);
        out
    }

    /// Turns one decoded payload into readings for the device's bed.
    pub fn apply(&mut self, device: &str, decoded: &Decoded, received: DateTime<Utc>) -> Applied {
        let mut out = Applied::default();
        let Some(d) = self.devices.get_mut(device) else {
            return out;
        };
        if let Some(seq) = decoded.sequence {
            let window = self.record_window;
            if let Some(why) = record_out_of_range(decoded.device_time, d.clock_offset_s, received, window) {
                out.rejected_record = Some(why);
                return out;
            }
            let forget_before = received.naive_utc() - window - UNKNOWN_OFFSET_SLACK;
            let records = self.records.entry(device.to_string()).or_default();
            if !records.take(decoded, seq, forget_before) {
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
            d.info.apply(field);
        }
        // Device clocks are local and unsynchronised: learn how far off this
        // one is (see the module docs, "Time").
        let stored = decoded.sequence.is_some();
        if decoded.is_current_time() {
            d.clock_read = true;
            d.clock_offset_s = decoded.device_time.map(|dt| clock_offset_s(dt, received));
            // The device-clock reading itself (PHD IG Coincident Time Stamp): stored and
            // uploaded, in order before what the device sends after it; never a value on
            // the screen, so no view and no latest value.
            if let (Some(dt), Some(off)) = (decoded.device_time, d.clock_offset_s) {
                out.readings.push(Reading {
                    bed: d.desc.bed.clone(),
                    admission: admission.clone(),
                    device: d.desc.device.clone(),
                    code: Mdc::ATTR_TIME_ABS,
                    value: vigil_model::Value::Number(off as f64),
                    unit: vigil_model::codes::ucum::S.to_string(),
                    device_time: Some(dt),
                    received,
                    source: d.desc.source,
                    status: Default::default(),
                });
            }
        } else if let Some(dt) = decoded.device_time.filter(|_| !stored && !d.clock_read) {
            d.clock_offset_s = Some(clock_offset_s(dt, received));
        }
        // When the values were measured, on the gateway clock; `None` for a
        // stored record whose age is unknown (placed at receipt time).
        let measured = match (stored, decoded.device_time, d.clock_offset_s) {
            (false, _, _) => Some(received),
            (true, Some(dt), Some(off)) => Some(place(dt, off, received)),
            (true, _, _) => None,
        };
        let at = measured.unwrap_or(received);
        if measured.is_none()
            && decoded.device_time.is_some()
            && !decoded.measurements.is_empty()
            && !d.unplaced_reported
        {
            d.unplaced_reported = true;
            out.placed_at_receipt = true;
        }
        // A heart-rate strap that reports "contact supported, not detected" is
        // a technical condition: its number is not a heart rate and must not
        // be stored, trended or shown as one.
        let untrusted = decoded.sensor_contact == Some(SensorContact::NotDetected);
        // Only a measurement says anything about contact: a battery level or
        // Device Information read in between must not clear the condition.
        if untrusted || !decoded.measurements.is_empty() {
            d.technical = untrusted.then(|| "sensor contact lost".to_string());
        }

        if let (Some(t), false) = (measured, decoded.measurements.is_empty()) {
            d.last_data = Some(d.last_data.map_or(t, |l| l.max(t)));
            // A live value is fresh; a stored record only if measured within
            // the staleness window (an old record must not make a stale
            // device look live).
            let age = (received - t).to_std().unwrap_or_default();
            if age <= stale_after(d.desc.expected_interval) {
                d.state = LinkState::Receiving;
            }
        }
        // A value of unknown age is never shown as live.
        let view_stale_after_ms = if measured.is_some() { d.stale_after_ms() } else { 0 };
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
                    received: at,
                    source: d.desc.source,
                    status: vigil_model::Status {
                        quality: decoded.quality,
                        flags: decoded.status.clone(),
                    },
                };
                let view = ReadingView::new(&r, view_stale_after_ms);
                // The newest value is the bed's latest: a record placed in the
                // past does not replace a newer one.
                let key = (r.bed.clone(), r.code);
                if self
                    .latest
                    .get(&key)
                    .is_none_or(|l| l.received_ms <= view.received_ms)
                {
                    self.latest.insert(key, view.clone());
                }
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
    /// Every device with a link up is aged from the later of its last data
    /// and its (re)connection: one that connects and never sends is "no
    /// data", not "connected" forever.
    pub fn watchdog(&mut self, now: DateTime<Utc>) -> Vec<DeviceView> {
        let mut changed = Vec::new();
        for d in self.devices.values_mut() {
            let attached = *d.attached_at.get_or_insert(now);
            if d.linked_at.is_none()
                && !d.never_connected_reported
                && d.state == LinkState::Connecting
                && (now - attached).to_std().unwrap_or_default() > NEVER_CONNECTED_AFTER
            {
                d.never_connected_reported = true;
                d.state = LinkState::Disconnected;
                changed.push(d.view());
                continue;
            }
            let since = d.last_data.max(d.linked_at);
            let overdue = match since {
                Some(t) => (now - t).to_std().unwrap_or_default() > stale_after(d.desc.expected_interval),
                None => false,
            };
            if overdue && matches!(d.state, LinkState::Receiving | LinkState::Connected) {
                d.state = LinkState::Stale;
                changed.push(d.view());
            }
        }
        changed
    }

    /// What the ward knows about an attached device for its FHIR Device: kind, source and
    /// the Device Information it sent.
    pub fn device_identity(
        &self,
        device: &str,
    ) -> Option<(vigil_devices::DeviceKind, vigil_model::Source, DeviceInfoView)> {
        self.devices
            .get(device)
            .map(|d| (d.desc.kind, d.desc.source, d.info.clone()))
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
        for r in self.records.values_mut() {
            bound(&mut r.stored);
        }
    }

    /// Stored records remembered for de-duplication, all devices (bounded:
    /// see the module docs).
    pub fn remembered_records(&self) -> usize {
        self.records.values().map(Records::len).sum()
    }

    /// Seeds the latest values from the store at start-up (so a restart shows
    /// the last known values — as stale, since their age says so), from
    /// [`vigil_store::Store::latest_by_admission`]. A bed restores only what
    /// it showed before the restart, never a discharged patient's values:
    ///
    /// * a bed with a patient admitted: that stay's values only;
    /// * an empty bed: values measured with no patient admitted, after the
    ///   bed's last stay ended (newer than any stay's reading there) and within
    ///   [`RESTORE_UNADMITTED`] of `now`. A nurse restarting the monitor beside
    ///   a sensor already on someone not yet admitted sees what was there a
    ///   moment ago; older values belong to nobody the bed can name and are
    ///   of no use at the bedside.
    pub fn seed_latest(&mut self, readings: Vec<Reading>, default_interval: Duration, now: DateTime<Utc>) {
        // The newest reading of any stay, per bed: an empty bed's values
        // must be newer (measured after that stay's discharge).
        let mut last_stay: BTreeMap<BedId, DateTime<Utc>> = BTreeMap::new();
        for r in readings.iter().filter(|r| r.admission.is_some()) {
            let t = last_stay.entry(r.bed.clone()).or_insert(r.received);
            *t = (*t).max(r.received);
        }
        for r in readings {
            // A device-clock reading is not a value to show.
            let Some(current) = self.beds.get(&r.bed) else {
                continue;
            };
            if r.code == Mdc::ATTR_TIME_ABS {
                continue;
            }
            let shown = match (current, &r.admission) {
                (Some(a), Some(of)) => a.id == *of,
                (None, None) => {
                    now - r.received <= RESTORE_UNADMITTED
                        && last_stay.get(&r.bed).is_none_or(|t| r.received > *t)
                }
                _ => false,
            };
            if !shown {
                continue;
            }
            let stale = self
                .devices
                .get(&r.device)
                .map(|d| d.stale_after_ms())
                .unwrap_or(stale_after(default_interval).as_millis() as u64);
            let view = ReadingView::new(&r, stale);
            let key = (r.bed.clone(), r.code);
            if self
                .latest
                .get(&key)
                .is_none_or(|l| l.received_ms <= view.received_ms)
            {
                self.latest.insert(key, view);
            }
        }
    }
}

/// How old a value measured with no patient admitted may be and still be
/// restored at an empty bed after a restart (see [`Ward::seed_latest`]).
pub const RESTORE_UNADMITTED: TimeDelta = TimeDelta::minutes(10);

/// What [`Ward::admit`] decided.
#[derive(Debug, Default)]
pub struct Admit {
    /// Refused, and why (counted on the device).
    pub refused: Option<crate::trust::Refusal>,
    /// The device's view, when the check changed it (a pin, a refusal).
    pub device: Option<DeviceView>,
}

/// Sort key of a bed id: its text, then its trailing number as a number.
fn bed_order(bed: &str) -> (&str, u64, &str) {
    let digits = bed.len() - bed.bytes().rev().take_while(u8::is_ascii_digit).count();
    let (stem, n) = bed.split_at(digits);
    (stem, n.parse().unwrap_or(u64::MAX), bed)
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
        record_at(seq, local(7, minute, 0), mg_dl)
    }

    /// A stored glucose record measured at device time `t`.
    fn record_at(seq: u16, t: NaiveDateTime, mg_dl: f64) -> Decoded {
        let bytes = encode::glucose_mg_dl(seq, t, Value::Number(mg_dl));
        vigil_gatt::decode(Characteristic::GlucoseMeasurement, &bytes).unwrap()
    }

    /// 1 May 2026 as a device clock shows it.
    fn local(h: u32, m: u32, s: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 5, 1)
            .unwrap()
            .and_hms_opt(h, m, s)
            .unwrap()
    }

    /// 1 May 2026 on the gateway clock.
    fn utc(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        local(h, m, s).and_utc()
    }

    /// The device's Current Time (0x2A2B) read back: its clock shows `t`.
    fn clock(t: NaiveDateTime) -> Decoded {
        vigil_gatt::decode(Characteristic::CurrentTime, &encode::current_time(t, 0)).unwrap()
    }

    /// A live measurement with the device's time stamp (no sequence number).
    fn live(t: NaiveDateTime) -> Decoded {
        let bytes = encode::temperature(Value::Number(36.6), Some(t), None);
        vigil_gatt::decode(Characteristic::TemperatureMeasurement, &bytes).unwrap()
    }

    fn device(w: &Ward, now: DateTime<Utc>) -> DeviceView {
        w.snapshot(now).devices.remove(0)
    }

    fn latest_glucose(w: &Ward, now: DateTime<Utc>) -> ReadingView {
        let code = Mdc::CONC_GLU_CAPILLARY_WHOLEBLOOD.0;
        w.snapshot(now)
            .latest
            .into_iter()
            .find(|r| r.mdc == code)
            .unwrap()
    }

    /// Issue 12, item 3: the oximeter's status bits travel with its values:
    /// stored on the reading, and a value it marks invalid never reaches the
    /// screen as digits.
    #[test]
    fn the_devices_status_travels_with_its_readings_and_invalid_is_never_digits() {
        let mut w = Ward::new(["bed-1".to_string()], vec![]);
        w.attach(DeviceDescriptor {
            bed: "bed-1".into(),
            device: "ble-oxi".into(),
            kind: DeviceKind::PulseOximeter,
            source: Source::Real,
            expected_interval: Duration::from_secs(1),
        });
        let now = utc(14, 0, 0);
        let plx = |hex: &str| {
            let bytes: Vec<u8> = hex.split(' ').map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
            vigil_gatt::decode(Characteristic::PlxContinuousMeasurement, &bytes).unwrap()
        };
        // 97 % / 72 /min with "measurement unavailable" and "sensor disconnected".
        let a = w.apply("ble-oxi", &plx("0C 61 00 48 00 00 20 00 80 00"), now);
        assert_eq!(a.readings.len(), 2);
        for r in &a.readings {
            assert_eq!(r.status.quality, vigil_model::Quality::Invalid);
            assert_eq!(r.status.flags, vec!["measurement unavailable", "sensor disconnected"]);
            assert!(!r.usable());
        }
        assert!(a.views.iter().all(|v| v.value.is_none()), "an invalid value reached the screen as digits");
        // Low perfusion only: the number, flagged questionable.
        let a = w.apply("ble-oxi", &plx("08 5B 00 48 00 20 00 00"), now);
        let spo2 = a.views.iter().find(|v| v.mdc == Mdc::PULS_OXIM_SAT_O2.0).unwrap();
        assert_eq!(spo2.value, Some(91.0));
        assert_eq!(spo2.quality, vigil_model::Quality::Questionable);
        assert_eq!(spo2.flags, vec!["low perfusion detected"]);
        // No status bits: nothing extra on the reading.
        let a = w.apply("ble-oxi", &plx("00 61 00 48 00"), now);
        assert!(a.readings.iter().all(|r| r.status.is_empty()));
    }

    #[test]
    fn the_clock_offset_comes_from_current_time_then_live_times_never_records() {
        let mut w = meter();
        let now = utc(14, 0, 0);
        // No Current Time yet: a live time stamp gives the offset.
        w.apply("ble-meter", &live(local(14, 1, 0)), now);
        assert_eq!(device(&w, now).clock_offset_s, Some(60));
        // A stored record never does (measured hours ago).
        w.apply("ble-meter", &record(1, 30, 95.0), now);
        assert_eq!(device(&w, now).clock_offset_s, Some(60));
        // Current Time is authoritative, to the nearest second (it carries
        // fractions: 15:29:59.75 read at 14:00:00 is +5400 s, not +5399).
        let read = local(15, 29, 59) + TimeDelta::milliseconds(750);
        let applied = w.apply("ble-meter", &clock(read), now);
        assert_eq!(applied.readings.len(), 1, "the device-clock reading");
        assert!(applied.views.is_empty());
        assert_eq!(device(&w, now).clock_offset_s, Some(5400));
        // From then on live time stamps and records leave it alone.
        w.apply("ble-meter", &live(local(14, 2, 0)), utc(14, 1, 0));
        w.apply("ble-meter", &record(2, 40, 110.0), utc(14, 1, 0));
        assert_eq!(device(&w, now).clock_offset_s, Some(5400));
        // A later read updates it; a clock that says "date unknown" clears it.
        w.apply("ble-meter", &clock(local(14, 0, 10)), utc(14, 2, 0));
        assert_eq!(device(&w, now).clock_offset_s, Some(-110));
        let unset = vigil_gatt::decode(Characteristic::CurrentTime, &[0; 10]).unwrap();
        let a = w.apply("ble-meter", &unset, utc(14, 3, 0));
        assert!(a.readings.is_empty(), "no device time: no device-clock reading");
        assert_eq!(device(&w, now).clock_offset_s, None);
        w.apply("ble-meter", &live(local(14, 4, 0)), utc(14, 3, 0));
        assert_eq!(
            device(&w, now).clock_offset_s,
            None,
            "a clock was read: live stamps stay out"
        );
    }

    #[test]
    fn a_clock_read_is_a_device_clock_reading_stored_but_never_shown() {
        let mut w = meter();
        let now = utc(14, 0, 0);
        let read = local(15, 30, 0) + TimeDelta::milliseconds(250);
        let a = w.apply("ble-meter", &clock(read), now);
        assert!(a.views.is_empty(), "not a value on the screen");
        assert_eq!(
            a.readings,
            vec![Reading {
                bed: "bed-1".into(),
                admission: None,
                device: "ble-meter".into(),
                code: Mdc::ATTR_TIME_ABS,
                value: Value::Number(5400.0),
                unit: "s".into(),
                device_time: Some(read),
                received: now,
                source: Source::Real,
                status: Default::default(),
            }]
        );
        // Nothing shown, not a sign of life.
        let snap = w.snapshot(now);
        assert!(snap.latest.is_empty());
        assert_eq!(snap.devices[0].last_data_ms, None);
        // Nor after a restart, seeded from the store.
        let mut w2 = meter();
        w2.seed_latest(a.readings.clone(), Duration::from_secs(1), now);
        assert!(w2.snapshot(now).latest.is_empty());
        // The records downloaded after it come after it, placed with its offset.
        let r = w.apply("ble-meter", &record(1, 30, 95.0), now);
        let rec = &r.readings[0];
        let offset = (rec.device_time.unwrap() - rec.received.naive_utc()).num_seconds();
        assert_eq!(offset, 5400);
    }

    #[test]
    fn a_stored_record_is_placed_at_device_time_minus_the_offset() {
        let mut w = meter();
        let now = utc(14, 0, 0);
        w.link("ble-meter", LinkState::Connected, now);
        // The meter's clock is 1 h 30 min ahead of the gateway's.
        w.apply("ble-meter", &clock(local(15, 30, 0)), now);
        let a = w.apply("ble-meter", &record(1, 30, 95.0), now);
        assert!(!a.placed_at_receipt);
        let r = &a.readings[0];
        // Measured 07:30 on the meter = 06:00 UTC; its own time kept as sent.
        assert_eq!(r.received, utc(6, 0, 0));
        assert_eq!(r.device_time, Some(local(7, 30, 0)));
        assert_eq!(a.views[0].received_ms, utc(6, 0, 0).timestamp_millis());
        // Its age is known: the usual staleness window, and it is old.
        assert_eq!(a.views[0].stale_after_ms, 2 * 3600 * 1000);
        // A time stamp a little ahead of the device clock (set back
        // meanwhile, within the tolerance) is no later than its receipt.
        let a = w.apply("ble-meter", &record_at(2, local(15, 32, 0), 101.0), now);
        assert_eq!(a.readings[0].received, now);
    }

    #[test]
    fn without_an_offset_a_record_keeps_its_receipt_time_and_is_not_live() {
        let mut w = meter();
        let now = utc(14, 0, 0);
        w.link("ble-meter", LinkState::Connected, now);
        let a = w.apply("ble-meter", &record(1, 30, 95.0), now);
        assert!(a.placed_at_receipt, "reported the first time");
        assert_eq!(a.readings[0].received, now);
        assert_eq!(a.views[0].stale_after_ms, 0, "age unknown: never shown as live");
        let b = w.apply("ble-meter", &record(2, 40, 110.0), now);
        assert!(!b.placed_at_receipt, "reported once per device");
        let d = device(&w, now);
        assert_eq!(
            (d.state, d.last_data_ms, d.clock_offset_s),
            (LinkState::Connected, None, None)
        );
    }

    #[test]
    fn a_record_placed_in_the_past_is_not_the_latest_over_a_newer_value() {
        let mut w = meter();
        let now = utc(14, 0, 0);
        w.link("ble-meter", LinkState::Connected, now);
        // The meter's clock is right (offset 0).
        w.apply("ble-meter", &clock(local(14, 0, 0)), now);
        w.apply("ble-meter", &record_at(2, local(13, 30, 0), 120.0), now);
        assert_eq!(latest_glucose(&w, now).value, Some(120.0));
        // Measured half an hour ago: within the window, a sign of life.
        let d = device(&w, now);
        assert_eq!(
            (d.state, d.last_data_ms),
            (LinkState::Receiving, Some(utc(13, 30, 0).timestamp_millis()))
        );
        // An older record arrives after it: stored and sent, not the latest,
        // and the device's last data stays the newer time.
        let older = w.apply("ble-meter", &record_at(1, local(9, 0, 0), 95.0), now);
        assert_eq!(older.readings.len(), 1);
        assert_eq!(latest_glucose(&w, now).value, Some(120.0));
        assert_eq!(
            device(&w, now).last_data_ms,
            Some(utc(13, 30, 0).timestamp_millis())
        );
    }

    #[test]
    fn an_old_record_does_not_make_a_stale_device_look_live() {
        let mut w = meter();
        w.link("ble-meter", LinkState::Connected, utc(9, 55, 0));
        w.apply("ble-meter", &clock(local(10, 0, 0)), utc(10, 0, 0));
        w.apply("ble-meter", &record_at(1, local(9, 50, 0), 95.0), utc(10, 0, 0));
        assert_eq!(device(&w, utc(10, 0, 0)).state, LinkState::Receiving);
        // Nothing new for longer than the window (2 h): stale.
        assert_eq!(w.watchdog(utc(12, 0, 0)).len(), 1);
        assert_eq!(device(&w, utc(12, 0, 0)).state, LinkState::Stale);
        // A record measured before that arrives now: stored, still stale.
        let a = w.apply("ble-meter", &record_at(2, local(9, 55, 0), 97.0), utc(12, 0, 0));
        assert_eq!(a.readings[0].received, utc(9, 55, 0));
        let d = device(&w, utc(12, 0, 0));
        assert_eq!(
            (d.state, d.last_data_ms),
            (LinkState::Stale, Some(utc(9, 55, 0).timestamp_millis()))
        );
        assert!(w.watchdog(utc(12, 0, 1)).is_empty());
        // A fresh one (5 min old) is a sign of life.
        w.apply("ble-meter", &record_at(3, local(11, 55, 0), 99.0), utc(12, 0, 0));
        assert_eq!(device(&w, utc(12, 0, 0)).state, LinkState::Receiving);
    }

    /// Liveness: an assigned device whose link never comes up is a technical alarm at its
    /// bed, not "connecting" for ever (noticed at issue 11's close).
    #[test]
    fn a_device_that_never_connects_is_disconnected_and_alarmed() {
        let mut w = meter();
        let t0 = utc(10, 0, 0);
        assert!(w.watchdog(t0).is_empty(), "just attached: connecting");
        assert!(w.watchdog(t0 + chrono::Duration::seconds(30)).is_empty());
        let changed = w.watchdog(t0 + chrono::Duration::seconds(31));
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].state, LinkState::Disconnected);
        let mut alarming = crate::alarming::Alarming::new(Default::default(), t0);
        let out = alarming.on_device(&changed[0], t0 + chrono::Duration::seconds(31));
        assert!(
            out.events.iter().any(|e| e.message.contains("disconnected")),
            "no technical alarm: {:?}",
            out.events.iter().map(|e| &e.message).collect::<Vec<_>>()
        );
        // Reported once: the source retrying ("connecting") does not make it flap.
        w.link("ble-meter", LinkState::Connecting, t0 + chrono::Duration::seconds(40));
        assert!(w.watchdog(t0 + chrono::Duration::seconds(80)).is_empty());
        // A device that connects in time raises nothing.
        let mut w = meter();
        w.watchdog(t0);
        w.link("ble-meter", LinkState::Connected, t0 + chrono::Duration::seconds(5));
        assert!(w.watchdog(t0 + chrono::Duration::seconds(60)).is_empty());
    }

    #[test]
    fn a_device_that_connects_and_never_sends_goes_stale_from_its_connection() {
        let mut w = meter();
        // Connected at 10:00, then silent: stale once the window (2 h) has passed.
        w.link("ble-meter", LinkState::Connected, utc(10, 0, 0));
        assert!(w.watchdog(utc(11, 59, 0)).is_empty());
        let changed = w.watchdog(utc(12, 0, 1));
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].state, LinkState::Stale);
        // A reconnect after old data is aged from the reconnect, not the data.
        w.link("ble-meter", LinkState::Disconnected, utc(12, 5, 0));
        w.link("ble-meter", LinkState::Connected, utc(13, 0, 0));
        assert!(w.watchdog(utc(14, 59, 0)).is_empty());
        assert_eq!(w.watchdog(utc(15, 0, 1)).len(), 1);
    }

    #[test]
    fn beds_come_in_the_order_a_nurse_counts_them() {
        let ids = ["bed-10", "bed-2", "bed-1", "icu-3", "bed-16"].map(String::from);
        let w = Ward::new(ids, vec![]);
        let order: Vec<_> = w.beds().into_iter().map(|b| b.bed).collect();
        assert_eq!(order, ["bed-1", "bed-2", "bed-10", "bed-16", "icu-3"]);
    }

    #[test]
    fn a_battery_read_does_not_clear_sensor_contact_lost() {
        let mut w = Ward::new(["bed-1".to_string()], vec![]);
        w.attach(DeviceDescriptor {
            bed: "bed-1".into(),
            device: "strap".into(),
            kind: DeviceKind::HeartRateStrap,
            source: Source::Real,
            expected_interval: Duration::from_secs(1),
        });
        let hr = |bpm, contact| {
            let bytes = encode::heart_rate(bpm, Some(contact), &[]);
            vigil_gatt::decode(Characteristic::HeartRateMeasurement, &bytes).unwrap()
        };
        let battery = vigil_gatt::decode(Characteristic::BatteryLevel, &encode::battery(55)).unwrap();
        let technical = |w: &Ward| w.snapshot(utc(8, 0, 0)).devices[0].technical.clone();
        // Contact supported, not detected (HRS 1.0 §3.1.1.1 flags bits 1-2).
        w.apply("strap", &hr(0, false), utc(8, 0, 0));
        assert_eq!(technical(&w).as_deref(), Some("sensor contact lost"));
        w.apply("strap", &battery, utc(8, 0, 1));
        assert_eq!(
            technical(&w).as_deref(),
            Some("sensor contact lost"),
            "a battery level is not contact"
        );
        w.apply("strap", &hr(72, true), utc(8, 0, 2));
        assert_eq!(technical(&w), None);
    }

    #[test]
    fn a_stored_record_is_taken_once() {
        let mut w = meter();
        let now = utc(14, 0, 0);
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
        let now = utc(14, 0, 0);
        let stored = meter().apply("ble-meter", &record(7, 30, 95.0), now).readings;
        let mut w = meter();
        w.seed_records(stored);
        assert!(w.apply("ble-meter", &record(7, 30, 95.0), now).duplicate);
        // Same time, other value: another sample, taken.
        let other = w.apply("ble-meter", &record(8, 30, 96.0), now);
        assert_eq!((other.readings.len(), other.duplicate), (1, false));
    }

    /// Issue 13 §1: a record from the future (beyond the tolerance) or
    /// older than the store's retention is refused, counted by the caller.
    #[test]
    fn records_from_the_future_or_older_than_retention_are_refused() {
        let now = utc(14, 0, 0);
        // Offset unknown: device time is local, so the bounds allow any time zone.
        let mut w = meter();
        let ahead = |h| local(14, 0, 0) + TimeDelta::hours(h);
        assert_eq!(
            w.apply("ble-meter", &record_at(1, ahead(10), 90.0), now)
                .readings
                .len(),
            1
        );
        let a = w.apply("ble-meter", &record_at(2, ahead(20), 91.0), now);
        assert_eq!(a.rejected_record, Some(RecordRejection::Future));
        assert!(a.readings.is_empty() && a.views.is_empty());
        // The meter's clock is right (offset 0): 5 minutes of tolerance.
        w.apply("ble-meter", &clock(local(14, 0, 0)), now);
        let in_tolerance = w.apply("ble-meter", &record_at(3, local(14, 4, 0), 92.0), now);
        assert_eq!(
            (in_tolerance.readings.len(), in_tolerance.rejected_record),
            (1, None)
        );
        assert_eq!(
            in_tolerance.readings[0].received, now,
            "no later than its receipt"
        );
        let future = w.apply("ble-meter", &record_at(4, local(14, 6, 0), 93.0), now);
        assert_eq!(future.rejected_record, Some(RecordRejection::Future));
        // Retention (30 days by default, the store's): a day inside is taken, a day beyond is not.
        let days_ago = |d| local(14, 0, 0) - TimeDelta::days(d);
        assert_eq!(
            w.apply("ble-meter", &record_at(5, days_ago(29), 94.0), now)
                .readings
                .len(),
            1
        );
        let old = w.apply("ble-meter", &record_at(6, days_ago(31), 95.0), now);
        assert_eq!(old.rejected_record, Some(RecordRejection::OlderThanRetention));
        // The window follows the store's retention.
        w.set_record_window(TimeDelta::days(60));
        assert_eq!(
            w.apply("ble-meter", &record_at(7, days_ago(31), 95.0), now)
                .readings
                .len(),
            1
        );
        // A live value is never judged this way (no sequence number).
        w.apply("ble-meter", &live(local(14, 30, 0)), now);
    }

    /// Issue 13 §1: the records remembered per device are bounded: those
    /// older than retention are forgotten, and at most
    /// MAX_RECORDS_PER_DEVICE are kept (the oldest go first).
    #[test]
    fn the_records_remembered_per_device_are_bounded() {
        let mut w = meter();
        let now = utc(14, 0, 0);
        w.apply("ble-meter", &clock(local(14, 0, 0)), now);
        let n = MAX_RECORDS_PER_DEVICE + 50;
        for i in 0..n {
            let t = local(13, 0, 0) - TimeDelta::seconds((n - i) as i64);
            let a = w.apply("ble-meter", &record_at(i as u16, t, 100.0), now);
            assert_eq!(a.readings.len(), 1);
        }
        assert_eq!(w.remembered_records(), MAX_RECORDS_PER_DEVICE);
        // The newest are the ones remembered.
        let newest = local(13, 0, 0) - TimeDelta::seconds(1);
        assert!(
            w.apply("ble-meter", &record_at((n - 1) as u16, newest, 100.0), now)
                .duplicate
        );
        // Forty days later (a 30-day retention) all of them are forgotten.
        let later = now + TimeDelta::days(40);
        w.apply("ble-meter", &clock(local(14, 0, 0) + TimeDelta::days(40)), later);
        let fresh = w.apply(
            "ble-meter",
            &record_at(1, local(13, 0, 0) + TimeDelta::days(40), 99.0),
            later,
        );
        assert_eq!(fresh.readings.len(), 1);
        assert_eq!(w.remembered_records(), 1);
    }

    fn strap_with_dis(w: &mut Ward, now: DateTime<Utc>, serial: &str) {
        w.link("ble-strap", LinkState::Connected, now);
        let dis = vigil_gatt::decode(Characteristic::SerialNumber, serial.as_bytes()).unwrap();
        assert!(
            w.admit("ble-strap", &dis).refused.is_none(),
            "DIS is always taken"
        );
        w.apply("ble-strap", &dis, now);
    }

    fn heart_rate(bpm: u16) -> Decoded {
        vigil_gatt::decode(
            Characteristic::HeartRateMeasurement,
            &encode::heart_rate(bpm, Some(true), &[]),
        )
        .unwrap()
    }

    fn strap_ward() -> Ward {
        let mut w = Ward::new(["bed-1".to_string()], vec![]);
        w.attach(DeviceDescriptor {
            bed: "bed-1".into(),
            device: "ble-strap".into(),
            kind: DeviceKind::HeartRateStrap,
            source: Source::Real,
            expected_interval: Duration::from_secs(1),
        });
        w
    }

    /// Issue 13 §1: values outside the assigned kind's profile are counted
    /// on the device and never decoded; its own are taken.
    #[test]
    fn values_outside_the_assigned_profile_are_counted() {
        let mut w = strap_ward();
        assert!(w
            .foreign("ble-strap", Some(Characteristic::HeartRateMeasurement))
            .is_none());
        assert!(w
            .foreign("ble-strap", Some(Characteristic::BatteryLevel))
            .is_none());
        let v = w
            .foreign("ble-strap", Some(Characteristic::PlxContinuousMeasurement))
            .unwrap();
        assert_eq!(v.foreign_values, 1);
        // Reported by the BLE source (no characteristic Vigil decodes).
        assert_eq!(w.foreign("ble-strap", None).unwrap().foreign_values, 2);
        assert!(w.foreign("unknown", None).is_none());
    }

    /// Issue 13 §1: the first connection pins serial/System ID; a later one
    /// with another serial is refused with IdentityChanged until a nurse
    /// re-assigns (which accepts the identity now on the link).
    #[test]
    fn a_changed_identity_is_refused_until_reassigned() {
        let mut w = strap_ward();
        let now = utc(8, 0, 0);
        strap_with_dis(&mut w, now, "C0680226");
        let a = w.admit("ble-strap", &heart_rate(70));
        assert!(a.refused.is_none());
        assert!(a.device.unwrap().identity_pinned);
        let pins = w.take_new_pins();
        assert_eq!(pins.len(), 1);
        assert_eq!(pins[0].1.serial.as_deref(), Some("C0680226"));
        // Reconnect as someone else.
        w.link("ble-strap", LinkState::Disconnected, now);
        strap_with_dis(&mut w, now, "FAKE0001");
        let a = w.admit("ble-strap", &heart_rate(140));
        assert_eq!(a.refused, Some(crate::trust::Refusal::IdentityChanged));
        assert_eq!(
            a.device.unwrap().refused,
            Some(crate::trust::Refusal::IdentityChanged)
        );
        assert!(
            w.take_new_pins().is_empty(),
            "the pin is not replaced by the impostor"
        );
        // A nurse re-assigns: the identity on the link is accepted and pinned.
        let (pin, view) = w.accept_identity("ble-strap");
        assert_eq!(pin.unwrap().serial.as_deref(), Some("FAKE0001"));
        assert_eq!(view.unwrap().refused, None);
        assert!(w.admit("ble-strap", &heart_rate(71)).refused.is_none());
    }

    /// Issue 13 §1: under `require_bonded` an unbonded (or unknown) link's
    /// values are refused; without it they are taken and labelled.
    #[test]
    fn an_unbonded_link_is_refused_only_under_the_policy() {
        let mut w = strap_ward();
        let now = utc(8, 0, 0);
        w.link("ble-strap", LinkState::Connected, now);
        let v = w.security("ble-strap", Some(false)).unwrap();
        assert_eq!((v.bonded, v.refused), (Some(false), None));
        assert!(w.admit("ble-strap", &heart_rate(70)).refused.is_none());
        w.set_require_bonded(true);
        let a = w.admit("ble-strap", &heart_rate(70));
        assert_eq!(a.refused, Some(crate::trust::Refusal::NotBonded));
        let v = w.security("ble-strap", Some(true)).unwrap();
        assert_eq!((v.bonded, v.refused), (Some(true), None));
        assert!(w.admit("ble-strap", &heart_rate(70)).refused.is_none());
    }
}
