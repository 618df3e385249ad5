//! The vocabulary every Vigil crate speaks.
//!
//! A [`Reading`] is the one normalised record on the data path: after the GATT
//! decoder, nothing downstream (store, alarms, screen, feed, FHIR) ever sees
//! device bytes again. Codes are IEEE 11073-10101 MDC nomenclature codes,
//! units are UCUM codes (<https://ucum.org>), times are UTC.

pub mod clock;
pub mod codes;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

pub use clock::{Clock, ManualClock, ScaledClock, SystemClock};
pub use codes::Mdc;

/// A value as a device reported it: a number, or one of the IEEE 11073-20601
/// special values that must never be treated as a number (never trended,
/// never alarmed on, sent to FHIR as `dataAbsentReason`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase", tag = "kind", content = "value")]
#[ts(export, rename = "ReadingValue")]
pub enum Value {
    Number(f64),
    Special(Special),
}

impl Value {
    pub fn number(self) -> Option<f64> {
        match self {
            Value::Number(v) => Some(v),
            Value::Special(_) => None,
        }
    }
}

/// IEEE 11073-20601 §F.7 reserved values of SFLOAT/FLOAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[ts(export)]
pub enum Special {
    #[serde(rename = "nan")]
    NaN,
    #[serde(rename = "nres")]
    NRes,
    #[serde(rename = "+inf")]
    PosInfinity,
    #[serde(rename = "-inf")]
    NegInfinity,
    #[serde(rename = "reserved")]
    Reserved,
}

impl Special {
    pub fn as_str(self) -> &'static str {
        match self {
            Special::NaN => "nan",
            Special::NRes => "nres",
            Special::PosInfinity => "+inf",
            Special::NegInfinity => "-inf",
            Special::Reserved => "reserved",
        }
    }
}

/// How far the device itself trusts a measured value, from the status bits it
/// sent with it (BLS Measurement Status, GLS Sensor Status Annunciation, PLXS
/// Measurement / Device and Sensor Status, WSS "measurement unsuccessful").
/// Ordered: the worst bit of a payload decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum Quality {
    /// No status bit casts doubt on the value.
    #[default]
    Valid,
    /// The device flagged the value as doubtful (body movement, cuff too
    /// loose, low perfusion, …): shown and stored with the flag, uploaded
    /// with an interpretation; alarms still use it.
    Questionable,
    /// The device says the value is not a measurement of the patient (sensor
    /// malfunction, strip error, sensor disconnected, …): never shown as
    /// digits, never alarmed on, uploaded without a value (`dataAbsentReason`).
    Invalid,
}

/// The device's status for one reading: its verdict and the status bits that
/// were set, by their names in the Bluetooth specification.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[ts(export, rename = "ReadingStatus")]
pub struct Status {
    pub quality: Quality,
    /// e.g. "cuff too loose"; empty when the device set no status bit.
    pub flags: Vec<String>,
}

impl Status {
    pub fn is_empty(&self) -> bool {
        self.quality == Quality::Valid && self.flags.is_empty()
    }
}

/// Where a reading came from. Simulated data is labelled at the source and the
/// label travels with every reading into the store and onto the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum Source {
    Real,
    Simulated,
}

/// A bed is a place on the ward ("bed-3"); not patient data.
pub type BedId = String;
/// A device id is stable per physical sensor (Bluetooth address or a simulator id).
pub type DeviceId = String;

/// Opaque id of one admission (one patient stay in one bed). Readings refer to
/// it; who the patient is lives in the separately sealed patient vault.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(transparent)]
pub struct AdmissionId(pub String);

/// The one normalised record on Vigil's data path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export, rename = "StoredReading")]
pub struct Reading {
    pub bed: BedId,
    /// The admission the reading belongs to; `None` when the bed is empty.
    #[ts(as = "Option<String>")]
    pub admission: Option<AdmissionId>,
    pub device: DeviceId,
    /// IEEE 11073-10101 code, e.g. 147842 for heart rate.
    #[ts(as = "u32")]
    pub code: Mdc,
    pub value: Value,
    /// UCUM code, e.g. "/min", "%", "Cel", "mm[Hg]".
    pub unit: String,
    /// The device's own timestamp when it sent one (device-local, unsynchronised).
    pub device_time: Option<NaiveDateTime>,
    /// When the value was measured, on the gateway's clock (UTC): the receipt
    /// time for live values; for stored records (e.g. glucose records
    /// downloaded after connecting) the device time corrected by the device's
    /// clock offset, never later than the receipt, or the receipt time while
    /// that offset is unknown. The time axis of the store, trend, screen,
    /// export and FHIR `effectiveDateTime`.
    pub received: DateTime<Utc>,
    pub source: Source,
    /// The device's status bits sent with the value (none for most readings).
    #[serde(default, skip_serializing_if = "Status::is_empty")]
    #[ts(as = "Option<Status>", optional)]
    pub status: Status,
}

impl Reading {
    /// Whether the value may be used as a measurement of the patient: a
    /// number the device did not mark invalid.
    pub fn usable(&self) -> bool {
        matches!(self.value, Value::Number(_)) && self.status.quality != Quality::Invalid
    }
}

/// Link state of a device as the nurse sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum LinkState {
    Connecting,
    Connected,
    Receiving,
    Stale,
    Disconnected,
    AdapterOff,
}

/// What a nurse needs to know about one device at one bed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub bed: BedId,
    pub device: DeviceId,
    /// What it is ("Heart rate strap", "Pulse oximeter", ...).
    pub kind: String,
    pub state: LinkState,
    pub battery: Option<u8>,
    /// Set when the sensor reports a technical condition (e.g. no skin contact).
    pub technical: Option<String>,
    pub source: Source,
    /// Device clock minus gateway clock in seconds, when the device sent a time.
    pub clock_offset_s: Option<i64>,
    pub last_data: Option<DateTime<Utc>>,
}
