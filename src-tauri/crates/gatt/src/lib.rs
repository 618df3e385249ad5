//! Bluetooth LE health-profile payloads → typed measurements.
//!
//! This is the only place in Vigil that looks at device bytes: everything
//! downstream sees [`Measurement`]s with an IEEE 11073-10101 (MDC) code, a
//! value that is either a number or an IEEE 11073-20601 special value, and a
//! UCUM unit. Decoding is pure (no I/O, no clock) and total: any input gives
//! `Ok` or a [`DecodeError`] naming the characteristic, the field and the byte
//! offset; it never panics.
//!
//! Specifications: Bluetooth SIG GATT Specification Supplement (GSS) and the
//! service specifications HRS, PLXS, HTS, BLS, WSS, GLS, DIS, BAS and CTS; IEEE
//! 11073-20601 Annex F for SFLOAT/FLOAT. Each profile module cites what it
//! implements.

use std::fmt;

use chrono::NaiveDateTime;
use serde::Serialize;
use vigil_model::{Mdc, Quality, Special, Value};

mod battery;
mod blood_pressure;
mod current_time;
mod datetime;
mod device_info;
pub mod encode;
mod glucose;
mod heart_rate;
pub mod num;
mod plx;
mod reader;
mod sim;
mod thermometer;
mod weight;

pub use num::{Float, Number};

use reader::Reader;

/// 128-bit UUID of Vigil's simulated respiration-rate characteristic.
///
/// There is no standard Bluetooth LE respiration-rate characteristic; this
/// vendor UUID is produced **only by Vigil's own simulator** (see
/// [`encode::resp_rate`]). No real device sends it. Payload: flags uint8
/// (must be 0) + SFLOAT breaths per minute.
pub const SIM_RESP_RATE: &str = "7f1d0001-5a5e-4c1b-9a1e-56494749c001";

/// Suffix of the Bluetooth Base UUID: `0000XXXX-0000-1000-8000-00805f9b34fb`
/// (Core Specification Vol 3, Part B §2.5.1).
const BASE_UUID_SUFFIX: &str = "-0000-1000-8000-00805f9b34fb";

/// The characteristics Vigil can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Characteristic {
    /// 0x2A37, Heart Rate Service.
    HeartRateMeasurement,
    /// 0x2A5E, Pulse Oximeter Service.
    PlxSpotCheckMeasurement,
    /// 0x2A5F, Pulse Oximeter Service.
    PlxContinuousMeasurement,
    /// 0x2A1C, Health Thermometer Service.
    TemperatureMeasurement,
    /// 0x2A1E, Health Thermometer Service.
    IntermediateTemperature,
    /// 0x2A35, Blood Pressure Service.
    BloodPressureMeasurement,
    /// 0x2A36, Blood Pressure Service.
    IntermediateCuffPressure,
    /// 0x2A9D, Weight Scale Service.
    WeightMeasurement,
    /// 0x2A18, Glucose Service.
    GlucoseMeasurement,
    /// 0x2A19, Battery Service.
    BatteryLevel,
    /// 0x2A29, Device Information Service.
    ManufacturerName,
    /// 0x2A24, Device Information Service.
    ModelNumber,
    /// 0x2A25, Device Information Service.
    SerialNumber,
    /// 0x2A27, Device Information Service.
    HardwareRevision,
    /// 0x2A26, Device Information Service.
    FirmwareRevision,
    /// 0x2A28, Device Information Service.
    SoftwareRevision,
    /// 0x2A23, Device Information Service.
    SystemId,
    /// 0x2A50, Device Information Service.
    PnpId,
    /// 0x2A2B, Current Time Service: the device's clock, not a measurement.
    CurrentTime,
    /// [`SIM_RESP_RATE`]: Vigil simulator only.
    SimRespRate,
}

impl Characteristic {
    /// Every characteristic, for listings and tests.
    pub const ALL: [Characteristic; 20] = [
        Characteristic::HeartRateMeasurement,
        Characteristic::PlxSpotCheckMeasurement,
        Characteristic::PlxContinuousMeasurement,
        Characteristic::TemperatureMeasurement,
        Characteristic::IntermediateTemperature,
        Characteristic::BloodPressureMeasurement,
        Characteristic::IntermediateCuffPressure,
        Characteristic::WeightMeasurement,
        Characteristic::GlucoseMeasurement,
        Characteristic::BatteryLevel,
        Characteristic::ManufacturerName,
        Characteristic::ModelNumber,
        Characteristic::SerialNumber,
        Characteristic::HardwareRevision,
        Characteristic::FirmwareRevision,
        Characteristic::SoftwareRevision,
        Characteristic::SystemId,
        Characteristic::PnpId,
        Characteristic::CurrentTime,
        Characteristic::SimRespRate,
    ];

    /// The 16-bit assigned number; `None` for the vendor characteristic.
    pub fn uuid16(&self) -> Option<u16> {
        use Characteristic::*;
        Some(match self {
            HeartRateMeasurement => 0x2A37,
            PlxSpotCheckMeasurement => 0x2A5E,
            PlxContinuousMeasurement => 0x2A5F,
            TemperatureMeasurement => 0x2A1C,
            IntermediateTemperature => 0x2A1E,
            BloodPressureMeasurement => 0x2A35,
            IntermediateCuffPressure => 0x2A36,
            WeightMeasurement => 0x2A9D,
            GlucoseMeasurement => 0x2A18,
            BatteryLevel => 0x2A19,
            ManufacturerName => 0x2A29,
            ModelNumber => 0x2A24,
            SerialNumber => 0x2A25,
            HardwareRevision => 0x2A27,
            FirmwareRevision => 0x2A26,
            SoftwareRevision => 0x2A28,
            SystemId => 0x2A23,
            PnpId => 0x2A50,
            CurrentTime => 0x2A2B,
            SimRespRate => return None,
        })
    }

    /// The characteristic with this 16-bit assigned number, if Vigil knows it.
    pub fn from_uuid16(uuid: u16) -> Option<Characteristic> {
        Characteristic::ALL.into_iter().find(|c| c.uuid16() == Some(uuid))
    }

    /// The name the Bluetooth SIG gives it (or Vigil's, for the vendor one).
    pub fn name(&self) -> &'static str {
        use Characteristic::*;
        match self {
            HeartRateMeasurement => "Heart Rate Measurement",
            PlxSpotCheckMeasurement => "PLX Spot-Check Measurement",
            PlxContinuousMeasurement => "PLX Continuous Measurement",
            TemperatureMeasurement => "Temperature Measurement",
            IntermediateTemperature => "Intermediate Temperature",
            BloodPressureMeasurement => "Blood Pressure Measurement",
            IntermediateCuffPressure => "Intermediate Cuff Pressure",
            WeightMeasurement => "Weight Measurement",
            GlucoseMeasurement => "Glucose Measurement",
            BatteryLevel => "Battery Level",
            ManufacturerName => "Manufacturer Name String",
            ModelNumber => "Model Number String",
            SerialNumber => "Serial Number String",
            HardwareRevision => "Hardware Revision String",
            FirmwareRevision => "Firmware Revision String",
            SoftwareRevision => "Software Revision String",
            SystemId => "System ID",
            PnpId => "PnP ID",
            CurrentTime => "Current Time",
            SimRespRate => "Vigil simulated respiration rate",
        }
    }

    /// "2a37" for a 16-bit characteristic, the full lowercase UUID otherwise.
    pub fn short_id(&self) -> String {
        match self.uuid16() {
            Some(u) => format!("{u:04x}"),
            None => SIM_RESP_RATE.to_string(),
        }
    }

    /// The full lowercase 128-bit UUID.
    pub fn uuid128(&self) -> String {
        match self.uuid16() {
            Some(u) => format!("0000{u:04x}{BASE_UUID_SUFFIX}"),
            None => SIM_RESP_RATE.to_string(),
        }
    }

    /// "2a37 (Heart Rate Measurement)": how errors name the characteristic.
    pub fn label(&self) -> String {
        format!("{} ({})", self.short_id(), self.name())
    }

    /// Accepts "2A37", "2a37", "0x2A37", the 128-bit Base-UUID form
    /// "00002a37-0000-1000-8000-00805f9b34fb" (any case) and [`SIM_RESP_RATE`].
    pub fn from_uuid_str(s: &str) -> Result<Characteristic, DecodeError> {
        let unknown = || DecodeError::UnknownCharacteristic(s.to_string());
        let t = s.trim().to_ascii_lowercase();
        if t == SIM_RESP_RATE {
            return Ok(Characteristic::SimRespRate);
        }
        let short = t.strip_prefix("0x").unwrap_or(&t);
        let hex16 = if short.len() == 4 {
            short
        } else if let Some(head) = t.strip_suffix(BASE_UUID_SUFFIX) {
            head.strip_prefix("0000")
                .filter(|h| h.len() == 4)
                .ok_or_else(unknown)?
        } else {
            return Err(unknown());
        };
        if !hex16.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(unknown());
        }
        let uuid = u16::from_str_radix(hex16, 16).map_err(|_| unknown())?;
        Characteristic::from_uuid16(uuid).ok_or_else(unknown)
    }
}

impl fmt::Display for Characteristic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

impl std::str::FromStr for Characteristic {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Characteristic::from_uuid_str(s)
    }
}

/// Why a payload could not be decoded. `characteristic` is the label
/// "2a37 (Heart Rate Measurement)"; offsets are 0-based byte positions in the
/// payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The payload ends inside (or before) a field the flags say is present.
    /// `offset` is where the field starts, `available` how many bytes were left.
    #[error("{characteristic}: payload ends at byte {} but field '{field}' at byte {offset} needs {needed} bytes", offset + available)]
    Truncated {
        characteristic: String,
        offset: usize,
        needed: usize,
        available: usize,
        field: &'static str,
    },
    /// Bytes left over after the last field the flags announce.
    #[error("{characteristic}: {extra} unexpected byte(s) after the last field, from byte {offset}")]
    TrailingBytes {
        characteristic: String,
        offset: usize,
        extra: usize,
    },
    /// A field holds a value the specification does not allow.
    #[error("{characteristic}: invalid value at byte {offset}: {reason}")]
    Invalid {
        characteristic: String,
        offset: usize,
        reason: String,
    },
    #[error("unknown characteristic '{0}' (expected e.g. 2A37, 0x2A37 or a 128-bit UUID)")]
    UnknownCharacteristic(String),
    #[error("bad hex: {0}")]
    BadHex(String),
}

/// Sensor contact as reported in the Heart Rate Measurement flags (HRS 1.0
/// §3.1.1.1 / GSS "Heart Rate Measurement", Sensor Contact Status bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorContact {
    /// The sensor has no contact detection (or not in this connection).
    NotSupported,
    /// Contact detection is supported and there is **no** skin contact: the
    /// heart-rate value must not be trusted; the pipeline raises a technical
    /// condition instead of trending or alarming on it.
    NotDetected,
    /// Contact detection is supported and the sensor is on the skin.
    Detected,
}

impl SensorContact {
    /// `false` only for [`SensorContact::NotDetected`].
    pub fn trustworthy(self) -> bool {
        self != SensorContact::NotDetected
    }
}

/// A Device Information Service value (DIS 1.1 §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceInfoField {
    ManufacturerName(String),
    ModelNumber(String),
    SerialNumber(String),
    HardwareRevision(String),
    FirmwareRevision(String),
    SoftwareRevision(String),
    /// System ID (0x2A23) as an EUI-64.
    SystemId {
        /// IEEE canonical form, OUI first: "12-34-56-FF-FE-9A-BC-DE".
        eui64: String,
        /// The 24-bit Organizationally Unique Identifier.
        oui: u32,
        /// The 40-bit manufacturer-defined identifier.
        manufacturer_identifier: u64,
    },
    /// PnP ID (0x2A50).
    PnpId {
        /// 1 = Bluetooth SIG company identifier, 2 = USB-IF vendor id.
        vendor_id_source: u8,
        vendor_id: u16,
        product_id: u16,
        product_version: u16,
    },
}

/// One clinical value: MDC code, number or special value, UCUM unit.
///
/// JSON: `{"mdc":147842,"value":72.0,"unit":"/min"}`; a special value is
/// `{"mdc":150456,"value":null,"special":"nan","unit":"%"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    /// IEEE 11073-10101 context-free code (see [`vigil_model::Mdc`]).
    pub mdc: u32,
    /// The number; `None` when the device sent a special value.
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub special: Option<Special>,
    /// UCUM code.
    pub unit: &'static str,
    /// Decimal exponent of the resolution the device reported (−1 for 36.6),
    /// to display the precision it meant; omitted when 0 (whole numbers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exponent: Option<i8>,
    /// Set on values that are not the primary reading, e.g. "fast" / "slow"
    /// averaged SpO2 from a PLX Continuous Measurement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<&'static str>,
}

impl Measurement {
    /// A number or a special value, for the rest of Vigil.
    pub fn value(&self) -> Value {
        match (self.special, self.value) {
            (Some(s), _) => Value::Special(s),
            (None, Some(v)) => Value::Number(v),
            (None, None) => Value::Special(Special::NaN),
        }
    }

    pub fn code(&self) -> Mdc {
        Mdc(self.mdc)
    }

    pub(crate) fn from_number(code: Mdc, n: Number, unit: &'static str) -> Self {
        match n {
            Number::Finite(f) => Measurement {
                mdc: code.0,
                value: Some(f.to_f64()),
                special: None,
                unit,
                exponent: (f.exponent != 0).then_some(f.exponent),
                qualifier: None,
            },
            Number::Special(s) => Measurement {
                mdc: code.0,
                value: None,
                special: Some(s),
                unit,
                exponent: None,
                qualifier: None,
            },
        }
    }

    pub(crate) fn fixed(code: Mdc, mantissa: i32, exponent: i8, unit: &'static str) -> Self {
        Measurement::from_number(code, Number::Finite(Float::new(mantissa, exponent)), unit)
    }

    pub(crate) fn with_qualifier(mut self, q: &'static str) -> Self {
        self.qualifier = Some(q);
        self
    }
}

/// Everything Vigil takes from one characteristic value.
///
/// `serde_json::to_string` gives the CLI contract: it starts
/// `{"characteristic":"2a37","measurements":[...]`; the optional fields below
/// appear only when set.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Decoded {
    /// [`Characteristic::short_id`], e.g. "2a37".
    pub characteristic: String,
    /// The primary clinical values (may be empty, e.g. for Battery Level).
    pub measurements: Vec<Measurement>,
    /// Extra values the device sent alongside (PLX fast/slow averages);
    /// each carries a `qualifier`. Not for alarms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secondary: Vec<Measurement>,
    /// The device's own timestamp (local, unsynchronised) as it sent it; for
    /// glucose: base time + time offset; for Current Time (0x2A2B): the
    /// device's clock as read, to 1/256 s (see [`Decoded::is_current_time`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_time: Option<NaiveDateTime>,
    /// Heart Rate Measurement only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensor_contact: Option<SensorContact>,
    /// Heart Rate Measurement RR intervals in seconds (sent in 1/1024 s).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rr_intervals_s: Vec<f64>,
    /// Heart Rate Measurement cumulative energy expended, kJ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub energy_expended_kj: Option<u16>,
    /// Human-readable status bits that were set, e.g. "cuff too loose".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<String>,
    /// What the status bits say about the measurements of this payload
    /// (the worst of them); omitted when valid.
    #[serde(skip_serializing_if = "is_valid")]
    pub quality: Quality,
    /// A glucose result measured on control solution, not on the patient
    /// (GLS Type 0xA): never a patient value.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub control_solution: bool,
    /// Glucose record sequence number (makes re-reads idempotent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u16>,
    /// Glucose time offset from base time, minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_offset_min: Option<i16>,
    /// Multi-user devices (BLS, WSS); 255 means "unknown user".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<u8>,
    /// Measurement site: temperature type or glucose sample location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<&'static str>,
    /// Battery Level, %.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battery_percent: Option<u8>,
    /// Device Information Service value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<DeviceInfoField>,
    /// True for [`SIM_RESP_RATE`], which only Vigil's simulator produces.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub simulated: bool,
}

impl Decoded {
    fn new(ch: Characteristic) -> Self {
        Decoded {
            characteristic: ch.short_id(),
            ..Decoded::default()
        }
    }

    /// A Current Time (0x2A2B) value: `device_time` is what the device's
    /// clock showed when it was read (`None`: the clock is not set), not the
    /// time of a measurement.
    pub fn is_current_time(&self) -> bool {
        self.characteristic == Characteristic::CurrentTime.short_id()
    }
}

/// Decode one characteristic value. Never panics.
pub fn decode(ch: Characteristic, bytes: &[u8]) -> Result<Decoded, DecodeError> {
    use Characteristic::*;
    let mut r = Reader::new(ch, bytes);
    let mut out = Decoded::new(ch);
    match ch {
        HeartRateMeasurement => heart_rate::decode(&mut r, &mut out)?,
        PlxSpotCheckMeasurement => plx::decode_spot_check(&mut r, &mut out)?,
        PlxContinuousMeasurement => plx::decode_continuous(&mut r, &mut out)?,
        TemperatureMeasurement | IntermediateTemperature => thermometer::decode(&mut r, &mut out)?,
        BloodPressureMeasurement => blood_pressure::decode(&mut r, &mut out, false)?,
        IntermediateCuffPressure => blood_pressure::decode(&mut r, &mut out, true)?,
        WeightMeasurement => weight::decode(&mut r, &mut out)?,
        GlucoseMeasurement => glucose::decode(&mut r, &mut out)?,
        BatteryLevel => battery::decode(&mut r, &mut out)?,
        ManufacturerName | ModelNumber | SerialNumber | HardwareRevision | FirmwareRevision
        | SoftwareRevision => device_info::decode_string(ch, &mut r, &mut out)?,
        SystemId => device_info::decode_system_id(&mut r, &mut out)?,
        PnpId => device_info::decode_pnp_id(&mut r, &mut out)?,
        CurrentTime => current_time::decode(&mut r, &mut out)?,
        SimRespRate => sim::decode(&mut r, &mut out)?,
    }
    r.finish()?;
    Ok(out)
}

/// Parse hex such as "0048", "00 48", "00:48", "0x00 0x48" or "0x0048".
/// Whitespace, ':' '-' ',' separate freely; each token may carry "0x".
pub fn parse_hex(s: &str) -> Result<Vec<u8>, DecodeError> {
    let mut digits = String::with_capacity(s.len());
    for token in s.split(|c: char| c.is_whitespace() || matches!(c, ':' | '-' | ',')) {
        let token = token
            .strip_prefix("0x")
            .or_else(|| token.strip_prefix("0X"))
            .unwrap_or(token);
        if let Some(bad) = token.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(DecodeError::BadHex(format!(
                "'{bad}' is not a hex digit in \"{s}\""
            )));
        }
        digits.push_str(token);
    }
    if !digits.len().is_multiple_of(2) {
        return Err(DecodeError::BadHex(format!(
            "odd number of hex digits ({}) in \"{s}\"",
            digits.len()
        )));
    }
    digits
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| DecodeError::BadHex(format!("cannot parse \"{s}\"")))
        })
        .collect()
}

/// Push the names of the set bits of `bits` (bit index, name).
/// A status bit: its position, its name in the specification, and what it
/// says about the value sent with it.
fn is_valid(q: &Quality) -> bool {
    *q == Quality::Valid
}

pub(crate) type StatusBit = (u32, &'static str, Quality);

/// Adds the names of the set bits to `out.status`; the worst quality wins.
pub(crate) fn push_bits(out: &mut Decoded, bits: u32, table: &[StatusBit]) {
    for &(bit, name, q) in table {
        if bits & (1 << bit) != 0 {
            out.flag(name, q);
        }
    }
}

impl Decoded {
    /// Records a status the device set, and lowers the payload's quality to `q` if worse.
    pub(crate) fn flag(&mut self, name: &str, q: Quality) {
        self.status.push(name.to_string());
        self.quality = self.quality.max(q);
    }
}
