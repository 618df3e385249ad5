//! What the screen sees: serialisable views of the ward. Their TypeScript
//! types are generated from these (ts-rs, `#[ts(export)]`) into
//! `ui/src/generated` by `cargo test`. Times are epoch milliseconds UTC so the
//! UI never parses dates on the hot path.

use serde::{Deserialize, Serialize};
use ts_rs::TS;
use vigil_model::{LinkState, Quality, Reading, Source, Special, Value};
use vigil_store::{Admission, PatientCategory};

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct AppInfo {
    pub version: &'static str,
    /// "simulated" | "real"
    pub mode: &'static str,
    pub scenario: Option<String>,
    pub key_source: String,
    pub data_dir: String,
    /// Set when the store was damaged at start: where it was moved aside
    /// (a new store records from then on; `vigil store salvage` copies back
    /// what still opens).
    pub store_recovered_from: Option<String>,
    /// Set when the store file is older than its last use (its counter is
    /// behind the mirror kept outside the data directory, issue 13 §4): it
    /// was rolled back to an older copy, so recent records may be missing.
    /// Says where the mirror is; no patient data.
    pub store_rolled_back: Option<String>,
    /// The site configuration files read, with their SHA-256 and what was taken from each
    /// (the About panel: an installer can tell which version is in use).
    pub site_files: Vec<crate::site::SiteFile>,
}

/// `Debug` leaves out name, MRN and date of birth.
#[derive(Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AdmissionView {
    pub id: String,
    pub display_name: String,
    pub mrn: String,
    pub date_of_birth: String,
    pub category: PatientCategory,
    pub admitted_at: String,
    /// The FHIR Patient this admission is linked to ("Patient/<id>"), if any.
    pub fhir_patient: Option<String>,
}

impl std::fmt::Debug for AdmissionView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmissionView")
            .field("id", &self.id)
            .field("category", &self.category)
            .field("admitted_at", &self.admitted_at)
            .field("fhir_patient", &self.fhir_patient)
            .finish_non_exhaustive()
    }
}

impl From<&Admission> for AdmissionView {
    fn from(a: &Admission) -> Self {
        AdmissionView {
            id: a.id.0.clone(),
            display_name: a.patient.display_name.clone(),
            mrn: a.patient.mrn.clone(),
            date_of_birth: a.patient.date_of_birth.to_string(),
            category: a.patient.category,
            admitted_at: a.admitted_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            fhir_patient: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct BedView {
    pub bed: String,
    pub label: String,
    pub admission: Option<AdmissionView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DeviceView {
    pub bed: String,
    pub device: String,
    pub kind: vigil_devices::DeviceKind,
    #[ts(type = "string")]
    pub label: KindLabel,
    pub state: LinkState,
    pub battery: Option<u8>,
    pub technical: Option<String>,
    pub source: Source,
    pub clock_offset_s: Option<i64>,
    pub last_data_ms: Option<i64>,
    pub expected_interval_ms: u64,
    /// Device Information Service (manufacturer, model, serial, firmware …), as read.
    pub info: DeviceInfoView,
    /// Link security as the platform reports it: `false` is shown as "not
    /// bonded"; `None` is unknown (simulated, not yet connected, or a
    /// platform that does not say). See `core::trust`.
    pub bonded: Option<bool>,
    /// Why its data is refused, if it is (a technical alarm at the bed says so too).
    pub refused: Option<crate::trust::Refusal>,
    /// Values it sent outside its assigned kind's profile: dropped, counted.
    pub foreign_values: u64,
    /// Values refused for a [`crate::trust::Refusal`].
    pub refused_values: u64,
    /// Its serial number / System ID is pinned with its assignment.
    pub identity_pinned: bool,
}

/// A device kind's label, as shown. Its own type so a view read back (an MQTT mirror, a
/// feed client) keeps the kind's static label: serde would take a plain `&'static str`
/// field as borrowed from the input, and no view holding a `DeviceView` could then be read
/// from a buffer. A label this build does not know reads as "Device".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindLabel(pub &'static str);

impl std::fmt::Display for KindLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for KindLabel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for KindLabel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use vigil_devices::DeviceKind as K;
        let s = String::deserialize(d)?;
        Ok(KindLabel(
            [
                K::HeartRateStrap,
                K::PulseOximeter,
                K::Thermometer,
                K::BloodPressureCuff,
                K::WeightScale,
                K::GlucoseMeter,
                K::RespirationSensor,
            ]
            .into_iter()
            .map(K::label)
            .find(|l| *l == s)
            .unwrap_or("Device"),
        ))
    }
}

/// What the device said about itself (Device Information Service, DIS 1.1).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DeviceInfoView {
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub hardware: Option<String>,
    pub firmware: Option<String>,
    pub software: Option<String>,
    /// IEEE EUI-64 from System ID.
    pub system_id: Option<String>,
}

impl DeviceInfoView {
    /// Takes one Device Information value (DIS 1.1 §3) read from the device.
    pub fn apply(&mut self, field: &vigil_gatt::DeviceInfoField) {
        use vigil_gatt::DeviceInfoField as F;
        match field {
            F::ManufacturerName(v) => self.manufacturer = Some(v.clone()),
            F::ModelNumber(v) => self.model = Some(v.clone()),
            F::SerialNumber(v) => self.serial = Some(v.clone()),
            F::HardwareRevision(v) => self.hardware = Some(v.clone()),
            F::FirmwareRevision(v) => self.firmware = Some(v.clone()),
            F::SoftwareRevision(v) => self.software = Some(v.clone()),
            F::SystemId { eui64, .. } => self.system_id = Some(eui64.clone()),
            F::PnpId { .. } => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ReadingView {
    pub bed: String,
    pub device: String,
    pub mdc: u32,
    pub value: Option<f64>,
    pub special: Option<Special>,
    pub unit: String,
    pub received_ms: i64,
    pub device_time: Option<String>,
    pub stale_after_ms: u64,
    pub source: Source,
    /// The device's verdict on the value: a value it marked invalid carries no
    /// number here (never digits on the screen); a questionable one is shown
    /// with its flags.
    pub quality: Quality,
    /// Status bits the device set, by their names in the specification.
    pub flags: Vec<String>,
    /// The stay the value was measured in (opaque admission id), `None` when
    /// no patient was admitted. A bed shows values of its current stay (and
    /// values with none), never an earlier patient's.
    pub admission: Option<String>,
}

impl ReadingView {
    pub fn new(r: &Reading, stale_after_ms: u64) -> Self {
        let (value, special) = match r.value {
            Value::Number(_) if r.status.quality == Quality::Invalid => (None, None),
            Value::Number(v) => (Some(v), None),
            Value::Special(s) => (None, Some(s)),
        };
        ReadingView {
            bed: r.bed.clone(),
            device: r.device.clone(),
            mdc: r.code.0,
            value,
            special,
            unit: r.unit.clone(),
            received_ms: r.received.timestamp_millis(),
            device_time: r.device_time.map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string()),
            stale_after_ms,
            source: r.source,
            quality: r.status.quality,
            flags: r.status.flags.clone(),
            admission: r.admission.as_ref().map(|a| a.0.clone()),
        }
    }
}

/// A bed's NEWS2 score (the engine's `News2`, with the bed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct News2View {
    pub bed: String,
    pub score: vigil_alarms::News2,
}

/// Full state of the ward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct WardSnapshot {
    pub now_ms: i64,
    pub beds: Vec<BedView>,
    pub devices: Vec<DeviceView>,
    pub latest: Vec<ReadingView>,
    pub alarms: Vec<vigil_alarms::BedAlarmState>,
    pub news2: Vec<News2View>,
}

/// A batch of live changes for the screen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, TS)]
#[ts(export)]
pub struct WardUpdate {
    pub now_ms: i64,
    pub readings: Vec<ReadingView>,
    pub devices: Vec<DeviceView>,
    pub beds: Option<Vec<BedView>>,
    /// Full alarm state of every bed whose alarms changed.
    pub alarms: Vec<vigil_alarms::BedAlarmState>,
    pub news2: Vec<News2View>,
}

/// One change on the live fan-out.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    Reading(ReadingView),
    Device(DeviceView),
    Beds(Vec<BedView>),
    Alarms(vigil_alarms::BedAlarmState),
    News2(News2View),
}

/// What Vigil is for, in the About panel (issue 16). Kept short and careful: the site's
/// validation decides whether Vigil's alarms are the ward's alarms of record.
pub const INTENDED_USE: &str = "Vigil shows vital signs from bedside devices and raises alarms to support \
trained clinical staff; it does not replace clinical judgement, and it is not an alarm system of record \
unless this site has validated it as one.";

/// Where the software bill of materials is, in the About panel.
pub const SBOM_LOCATION: &str = "vigil-sbom.cdx.json (CycloneDX), shipped beside the installer; \
`./dev sbom` produces it from the source";

/// The About panel: which build this is, what it is for, its licence and SBOM, and the
/// update setup (issue 16).
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct AboutView {
    pub version: String,
    /// The commit the build came from (12 hex digits, or "unknown").
    pub commit: String,
    /// YYYY-MM-DD (UTC, or SOURCE_DATE_EPOCH's).
    pub build_date: String,
    pub intended_use: String,
    pub licence: String,
    pub sbom: String,
    pub update: crate::update::UpdateSetup,
}
