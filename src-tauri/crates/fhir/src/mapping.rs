//! Vigil [`Reading`]s as FHIR R4 resources.
//!
//! Follows the HL7 Personal Health Device IG STU 2 (PHD IG 2.0.0, package hl7.fhir.uv.phd,
//! <http://hl7.org/fhir/uv/phd/STU2/>; one version throughout: its category code, identifier
//! type system and profiles) and the R4 vital-signs profiles
//! (<http://hl7.org/fhir/R4/observation-vitalsigns.html>):
//!
//! * `meta.profile` claims the PHD profile of every resource: `PhdNumericObservation`,
//!   `PhdCompoundNumericObservation` (blood-pressure panel), `PhdCoincidentTimeStampObservation`,
//!   `PhdDevice` and `PhgDevice` (a Device only when it has what the profile requires:
//!   manufacturer and model for a PHD, specialization and a version for both);
//!
//! * one `Observation` per measurement (PHD IG "Numeric Observation Profile"): `status` final,
//!   `category` vital-signs (when the code is a vital sign, i.e. has a LOINC code from the
//!   vital-signs table) plus the PHD category, `code` with the MDC code (system
//!   `urn:iso:std:iso:11073:10101`) and the LOINC code(s), `valueQuantity` with a UCUM code,
//!   `effectiveDateTime` in UTC, `subject`, `device`, and the gateway extension
//!   `http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice` (PHD IG "Base
//!   Observation Profile": "PHD Observation Gateway Device extension");
//! * special values (IEEE 11073-20601 NaN, NRes, ±INF, reserved) have no `value[x]` but a
//!   `dataAbsentReason` (PHD IG "FLOAT and SFLOAT" special-values table, R4 ValueSet
//!   `data-absent-reason`): NaN → `not-a-number`, +INF → `positive-infinity`, −INF →
//!   `negative-infinity`, NRes and reserved → `error`;
//! * blood pressure is one panel Observation (LOINC 85354-9 / MDC 150020, R4 `bp` profile)
//!   with components systolic 8480-6, diastolic 8462-4 and mean 8478-0 ([`group`] finds them);
//!   a panel in kPa keeps the device's unit and claims neither `bp` (which fixes mm[Hg]) nor
//!   the vital-signs category;
//! * `meta.profile` claims the R4 vital-signs profile that applies (`heartrate`, `oxygensat`,
//!   `bodytemp`, `resprate`, `bodyweight`, `bp`, else none) next to the PHD one, so a
//!   validating server checks the profile's slices and cardinalities;
//! * simulated readings carry `meta.security` HTEST (PHD IG measurement status "test-data" /
//!   "demo-data" mapping), so simulated data is never taken for real downstream either;
//! * every Observation has a deterministic `identifier` ([`observation_identifier`]) used for
//!   conditional create: re-sending is harmless. Its system stays `urn:vigil:observation`
//!   (the IG's `conditionalCreate` slice is optional, 0..1, and open slicing allows ours);
//!   changing it would let a reading already sent under the old key be created twice;
//! * category: `vital-signs` for a vital sign plus the PHD IG STU 2 category `phd`.
//!
//! Time: `effectiveDateTime` is the reading's time on the gateway's clock in UTC (the one
//! clock Vigil trusts), `Reading::received`: the receipt time for live values; for stored
//! records (glucose records downloaded after connecting) the device time corrected by the
//! device's clock offset, which the core learns from the device's Current Time (the PHD IG
//! coincident-time-stamp idea), or the receipt time while the offset is unknown. The device's
//! own time, when it sent one, is local and unsynchronised; it goes into the identifier (so a
//! device re-sending a stored record maps to the same identifier) but not into `effective`.
//! Each read of a device's clock (a [`Mdc::ATTR_TIME_ABS`] reading from the core) becomes a
//! PHD IG Coincident Time Stamp Observation ([`coincident_time_stamp`]): code MDC 67975
//! `MDC_ATTR_TIME_ABS`, `effectiveDateTime` the gateway time of the read (UTC),
//! `valueDateTime` the device's clock as read, `subject` the sensor's Device and `device` the
//! gateway's Device (no gateway extension, no patient). The device's clock has no time zone;
//! as the IG asks, the gateway adds its own: the UTC offset of the gateway's local time zone
//! (`chrono::Local`) at the instant of the read, so this one field depends on the host's time
//! zone setting. A measurement Observation whose time was placed on the gateway's timeline
//! with that clock reading (see the syncer) references it with the PHD IG
//! `CoincidentTimeStampReference` extension ([`add_coincident_time_stamp_reference`]).
//!
//! Devices: [`device`] builds the sensor's `Device` (PhdDevice: type MDC 65573, EUI-64 System
//! ID and Bluetooth address identifiers typed SYSID / BTMAC from
//! `http://terminology.hl7.org/CodeSystem/ContinuaDeviceIdentifiers`, manufacturer, model,
//! serial, versions typed MDC 531974/531975/531976, specialization MDC_DEV_SPEC_PROFILE_*,
//! the MDC_TIME_SYNC_PROTOCOL property) and [`gateway_device`] the Vigil gateway (PhgDevice,
//! type MDC 531981 `MDC_MOC_VMS_MDS_AHD`).
//! Both also carry `urn:vigil:device|<device id>`, the key for their conditional create.
//!
//! Everything here is a pure function of its inputs (and, for a Coincident Time Stamp's
//! `valueDateTime`, of the host's time zone): references to the Patient and the
//! Devices are supplied by the caller at upload time (see [`ObservationContext`]).

use chrono::{NaiveDateTime, Offset, SecondsFormat, TimeZone};
use ring::digest;
use serde_json::{json, Map, Value as Json};
use vigil_model::{Mdc, Quality, Reading, Source, Special, Status, Value};

pub const MDC_SYSTEM: &str = "urn:iso:std:iso:11073:10101";
pub const LOINC_SYSTEM: &str = "http://loinc.org";
pub const UCUM_SYSTEM: &str = "http://unitsofmeasure.org";
/// System of the deterministic Observation identifier.
pub const OBSERVATION_ID_SYSTEM: &str = "urn:vigil:observation";
/// System of Vigil's own device id (Bluetooth address or simulator id) on a Device.
pub const DEVICE_ID_SYSTEM: &str = "urn:vigil:device";
/// IEEE EUI-64 System ID (PHD IG "System Identifier").
pub const EUI64_SYSTEM: &str = "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680";
/// Bluetooth EUI-48 transport address (PHD IG "System Identifier", transport table).
pub const BLUETOOTH_SYSTEM: &str = "http://hl7.org/fhir/sid/eui-48/bluetooth";
pub const GATEWAY_EXTENSION: &str = "http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice";
/// PHD IG extension by which a measurement references the Coincident Time Stamp Observation
/// of the device timeline its time stamp belongs to.
pub const COINCIDENT_TIME_STAMP_EXTENSION: &str =
    "http://hl7.org/fhir/uv/phd/StructureDefinition/CoincidentTimeStampReference";
/// PHD IG profile of the Coincident Time Stamp Observation.
pub const COINCIDENT_TIME_STAMP_PROFILE: &str =
    "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdCoincidentTimeStampObservation";
pub const DATA_ABSENT_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";
/// The PoCD measurement-status code system the PHD IG's `MsmtStatusInterpretation` slice fixes.
pub const MEASUREMENT_STATUS_SYSTEM: &str = "http://hl7.org/fhir/uv/pocd/CodeSystem/measurement-status";
const CATEGORY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const PHD_CATEGORY_SYSTEM: &str = "http://hl7.org/fhir/uv/phd/CodeSystem/PhdObservationCategories";
/// PHD IG STU 2 PhdBaseObservation: the category slice PHD-Observation is fixed to `phd`.
const PHD_CATEGORY_CODE: &str = "phd";
/// PHD IG STU 2 (PhdDevice, PhgDevice identifier slices): the identifier type system.
const CONTINUA_ID_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/ContinuaDeviceIdentifiers";
/// Canonical URLs of the PHD IG STU 2 (hl7.fhir.uv.phd 2.0.0) profiles Vigil claims.
pub const PHD_NUMERIC_PROFILE: &str = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdNumericObservation";
pub const PHD_COMPOUND_NUMERIC_PROFILE: &str =
    "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdCompoundNumericObservation";
pub const PHD_DEVICE_PROFILE: &str = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice";
pub const PHG_DEVICE_PROFILE: &str = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhgDevice";
const ACT_REASON_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const VS_PROFILE: &str = "http://hl7.org/fhir/StructureDefinition/";

/// LOINC 2708-6 "Oxygen saturation in Arterial blood": the code the R4 `oxygensat` profile
/// requires next to 59408-5 (by pulse oximetry).
const LOINC_SPO2_ARTERIAL: &str = "2708-6";
/// LOINC 8867-4 "Heart rate": required by the R4 `heartrate` profile; more specific codes
/// (8889-8, by pulse oximetry) go alongside it.
const LOINC_HEART_RATE: &str = "8867-4";

/// References supplied at upload time (the mapping itself knows no server ids).
#[derive(Debug, Clone, Copy)]
pub struct ObservationContext<'a> {
    /// e.g. `Patient/123`: the patient the bed's admission is linked to.
    pub subject: &'a str,
    /// e.g. `Device/abc`: the sensor that measured.
    pub device: &'a str,
    /// e.g. `Device/def`: the Vigil gateway (PHD IG gateway extension).
    pub gateway: &'a str,
}

/// The LOINC codings for a code in a unit: the vital-signs LOINC code and the extra ones the
/// R4 profiles require or allow next to it; for glucose the term of its sample type and unit
/// ([`vigil_model::codes::glucose_loinc`]).
pub fn loinc_codes(code: Mdc, unit: &str) -> Vec<&'static str> {
    match code {
        Mdc::PULS_OXIM_SAT_O2 => vec!["59408-5", LOINC_SPO2_ARTERIAL],
        Mdc::PULS_OXIM_PULS_RATE => vec![LOINC_HEART_RATE, "8889-8"],
        c => c
            .loinc()
            .or_else(|| vigil_model::codes::glucose_loinc(c, unit))
            .into_iter()
            .collect(),
    }
}

/// A blood pressure in another unit than mm[Hg] (a cuff set to kPa): the R4 `bp` profile
/// fixes its components' unit to mm[Hg] (observation-vitalsigns.html, "bp"), so such a panel
/// neither claims it nor presents itself as a vital sign. It keeps the unit the device
/// measured in (PHD IG: the value as the PHD reported it; converting would also round it).
fn pressure_not_in_mm_hg(code: Mdc, unit: &str) -> bool {
    matches!(
        code,
        Mdc::PRESS_BLD_NONINV
            | Mdc::PRESS_BLD_NONINV_SYS
            | Mdc::PRESS_BLD_NONINV_DIA
            | Mdc::PRESS_BLD_NONINV_MEAN
    ) && unit != vigil_model::codes::ucum::MM_HG
}

/// Whether an Observation with this code and unit is a vital sign (R4 vital-signs table).
pub fn is_vital_sign(code: Mdc, unit: &str) -> bool {
    code.loinc().is_some() && !pressure_not_in_mm_hg(code, unit)
}

/// The R4 vital-signs profile an Observation with this code, in this unit, conforms to.
pub fn vital_signs_profile(code: Mdc, unit: &str) -> Option<&'static str> {
    if !is_vital_sign(code, unit) {
        return None;
    }
    Some(match code.loinc()? {
        "8867-4" | "8889-8" => "heartrate",
        "59408-5" => "oxygensat",
        "8310-5" => "bodytemp",
        "9279-1" => "resprate",
        "29463-7" => "bodyweight",
        // `bodyheight` binds its unit to UCUM body lengths (cm, [in_i]); a height in m is
        // sent in cm (see [`observation`]).
        "8302-2" if matches!(unit, "cm" | "[in_i]") => "bodyheight",
        "39156-5" if unit == "kg/m2" => "bmi",
        "85354-9" => "bp",
        _ => return None,
    })
}

/// `dataAbsentReason` code for an IEEE 11073-20601 special value (PHD IG special-values table).
pub fn data_absent_reason(special: Special) -> &'static str {
    match special {
        Special::NaN => "not-a-number",
        Special::PosInfinity => "positive-infinity",
        Special::NegInfinity => "negative-infinity",
        Special::NRes | Special::Reserved => "error",
    }
}

fn data_absent_display(code: &str) -> &'static str {
    match code {
        "not-a-number" => "Not a Number (NaN)",
        "positive-infinity" => "Positive Infinity (PINF)",
        "negative-infinity" => "Negative Infinity (NINF)",
        _ => "Error",
    }
}

fn code_concept(code: Mdc, unit: &str) -> Json {
    let mut coding = vec![json!({ "system": MDC_SYSTEM, "code": code.0.to_string() })];
    coding.extend(
        loinc_codes(code, unit)
            .into_iter()
            .map(|l| json!({ "system": LOINC_SYSTEM, "code": l })),
    );
    let mut cc = json!({ "coding": coding });
    if code.label() != "other" {
        cc["text"] = json!(code.label());
    }
    cc
}

/// `valueQuantity` or `dataAbsentReason` for a value. A number that is not finite (never
/// expected from the decoder) is treated like the matching special value: FHIR decimals
/// cannot carry it.
fn put_value(target: &mut Map<String, Json>, value: Value, unit: &str) {
    let special = match value {
        Value::Number(v) if v.is_finite() => {
            target.insert(
                "valueQuantity".into(),
                json!({ "value": v, "unit": unit, "system": UCUM_SYSTEM, "code": unit }),
            );
            return;
        }
        Value::Number(v) if v.is_nan() => Special::NaN,
        Value::Number(v) if v > 0.0 => Special::PosInfinity,
        Value::Number(_) => Special::NegInfinity,
        Value::Special(s) => s,
    };
    let code = data_absent_reason(special);
    target.insert(
        "dataAbsentReason".into(),
        json!({ "coding": [{ "system": DATA_ABSENT_SYSTEM, "code": code, "display": data_absent_display(code) }] }),
    );
}

/// The device's measurement status on an Observation (or a panel's components), as the PHD
/// IG STU 2 maps it (Base Observation notes, "Measurement Status"):
/// * invalid: no value, `dataAbsentReason` `error` — `not-performed` when the device said
///   the measurement is unavailable (PLXS "measurement unavailable");
/// * questionable: `interpretation` `questionable`; calibrating: `calibration-ongoing`;
///   an early estimate or a measurement still under way: `early-indication` and `status`
///   `preliminary` (the profile allows final or preliminary only);
/// * the device's own words for the bits it set go in a `note` (no patient data).
fn put_status(o: &mut Map<String, Json>, components: Option<&mut Vec<Json>>, s: &Status) {
    if s.is_empty() {
        return;
    }
    if s.quality == Quality::Invalid {
        let code = if s.flags.iter().any(|f| f == "measurement unavailable") {
            "not-performed"
        } else {
            "error"
        };
        let dar = json!({ "coding": [{ "system": DATA_ABSENT_SYSTEM, "code": code, "display": if code == "error" { "Error" } else { "Not Performed" } }] });
        let targets: Vec<&mut Map<String, Json>> = match components {
            Some(cs) => cs.iter_mut().filter_map(|c| c.as_object_mut()).collect(),
            None => vec![o as &mut Map<String, Json>],
        };
        for t in targets {
            t.remove("valueQuantity");
            t.insert("dataAbsentReason".into(), dar.clone());
        }
    } else {
        let mut codes = Vec::new();
        for f in &s.flags {
            let code = match f.as_str() {
                "calibration ongoing" => "calibration-ongoing",
                "early estimated data" | "measurement ongoing" => "early-indication",
                _ => continue,
            };
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        if s.quality == Quality::Questionable && codes.is_empty() {
            codes.push("questionable");
        }
        if codes.contains(&"early-indication") {
            o.insert("status".into(), json!("preliminary"));
        }
        if !codes.is_empty() {
            o.insert(
                "interpretation".into(),
                Json::Array(
                    codes
                        .into_iter()
                        .map(|c| json!({ "coding": [{ "system": MEASUREMENT_STATUS_SYSTEM, "code": c }] }))
                        .collect(),
                ),
            );
        }
    }
    if !s.flags.is_empty() {
        o.insert(
            "note".into(),
            json!([{ "text": format!("Device status: {}", s.flags.join("; ")) }]),
        );
    }
}

fn base_observation(
    code: Mdc,
    source: Source,
    identifier: String,
    effective: &Reading,
    ctx: &ObservationContext,
    phd_profile: &str,
) -> Map<String, Json> {
    let mut meta = Map::new();
    let mut profiles = vec![json!(phd_profile)];
    if let Some(p) = vital_signs_profile(code, &effective.unit) {
        profiles.push(json!(format!("{VS_PROFILE}{p}")));
    }
    meta.insert("profile".into(), Json::Array(profiles));
    if source == Source::Simulated {
        meta.insert(
            "security".into(),
            json!([{ "system": ACT_REASON_SYSTEM, "code": "HTEST", "display": "test health data" }]),
        );
    }
    let mut category = Vec::new();
    if is_vital_sign(code, &effective.unit) {
        category.push(json!({ "coding": [{ "system": CATEGORY_SYSTEM, "code": "vital-signs" }] }));
    }
    category.push(json!({ "coding": [{ "system": PHD_CATEGORY_SYSTEM, "code": PHD_CATEGORY_CODE }] }));
    let mut o = Map::new();
    o.insert("resourceType".into(), json!("Observation"));
    if !meta.is_empty() {
        o.insert("meta".into(), Json::Object(meta));
    }
    o.insert(
        "extension".into(),
        json!([{ "url": GATEWAY_EXTENSION, "valueReference": { "reference": ctx.gateway } }]),
    );
    o.insert(
        "identifier".into(),
        json!([{ "system": OBSERVATION_ID_SYSTEM, "value": identifier }]),
    );
    o.insert("status".into(), json!("final"));
    o.insert("category".into(), Json::Array(category));
    o.insert("code".into(), code_concept(code, &effective.unit));
    o.insert("subject".into(), json!({ "reference": ctx.subject }));
    o.insert(
        "effectiveDateTime".into(),
        json!(effective.received.to_rfc3339_opts(SecondsFormat::Millis, true)),
    );
    o.insert("device".into(), json!({ "reference": ctx.device }));
    o
}

/// One Observation for one reading (not for blood-pressure components that belong to a
/// panel: use [`group`] and [`blood_pressure_panel`]).
pub fn observation(reading: &Reading, ctx: &ObservationContext) -> Json {
    let id = observation_identifier(reading);
    let scaled = height_in_cm(reading);
    let reading = scaled.as_ref().unwrap_or(reading);
    let mut o = base_observation(
        reading.code,
        reading.source,
        id,
        reading,
        ctx,
        PHD_NUMERIC_PROFILE,
    );
    put_value(&mut o, reading.value, &reading.unit);
    put_status(&mut o, None, &reading.status);
    Json::Object(o)
}

/// A body height in m as the same length in cm (the R4 `bodyheight` profile's units are cm
/// and [in_i]): a change of scale only, rounded to 0.1 µm so binary floating point adds no
/// digits (1.755 × 100 is 175.49999999999997). The identifier stays the reading's own.
fn height_in_cm(r: &Reading) -> Option<Reading> {
    if r.code != Mdc::LEN_BODY_ACTUAL || r.unit != vigil_model::codes::ucum::M {
        return None;
    }
    let mut cm = r.clone();
    cm.unit = "cm".into();
    if let Value::Number(m) = r.value {
        cm.value = Value::Number((m * 100.0 * 1e5).round() / 1e5);
    }
    Some(cm)
}

/// The PHD IG Coincident Time Stamp Observation for a device-clock reading (code
/// [`Mdc::ATTR_TIME_ABS`], value the offset device − gateway in seconds, `device_time` the
/// device's clock, `received` the gateway time of the read; see the module docs, "Time").
/// `ctx.device` (the sensor) becomes the `subject` and `ctx.gateway` the `device`;
/// `ctx.subject` (the patient) is not used: the IG's subject is the sensor. The identifier is
/// [`observation_identifier`] (device, code, device time, value, unit), so a re-sent clock
/// reading finds its Observation.
pub fn coincident_time_stamp(reading: &Reading, ctx: &ObservationContext) -> Json {
    let mut meta = Map::new();
    meta.insert("profile".into(), json!([COINCIDENT_TIME_STAMP_PROFILE]));
    if reading.source == Source::Simulated {
        meta.insert(
            "security".into(),
            json!([{ "system": ACT_REASON_SYSTEM, "code": "HTEST", "display": "test health data" }]),
        );
    }
    // The device's clock as read; reconstructed from the offset if the reading lacks it.
    let device_time = reading.device_time.or_else(|| {
        let off = reading.value.number().filter(|v| v.is_finite())?;
        let off = chrono::TimeDelta::try_milliseconds((off * 1000.0).round() as i64)?;
        reading.received.naive_utc().checked_add_signed(off)
    });
    let mut o = Map::new();
    o.insert("resourceType".into(), json!("Observation"));
    o.insert("meta".into(), Json::Object(meta));
    o.insert(
        "identifier".into(),
        json!([{ "system": OBSERVATION_ID_SYSTEM, "value": observation_identifier(reading) }]),
    );
    o.insert("status".into(), json!("final"));
    o.insert(
        "code".into(),
        json!({ "coding": [{ "system": MDC_SYSTEM, "code": Mdc::ATTR_TIME_ABS.0.to_string() }], "text": "Absolute time" }),
    );
    o.insert("subject".into(), json!({ "reference": ctx.device }));
    o.insert(
        "effectiveDateTime".into(),
        json!(reading.received.to_rfc3339_opts(SecondsFormat::Millis, true)),
    );
    // The gateway's own UTC offset at the instant of the read (PHD IG: the PHG adds its
    // offset when the PHD's clock has none).
    let zone = chrono::Local
        .offset_from_utc_datetime(&reading.received.naive_utc())
        .fix();
    match device_time.and_then(|t| zone.from_local_datetime(&t).single()) {
        Some(v) => {
            o.insert(
                "valueDateTime".into(),
                json!(v.to_rfc3339_opts(SecondsFormat::Millis, false)),
            );
        }
        // PHD IG STU 2 PhdCoincidentTimeStampObservation: a time fault is the TimeFault
        // slice, data-absent-reason `unknown`.
        None => {
            o.insert(
                "dataAbsentReason".into(),
                json!({ "coding": [{ "system": DATA_ABSENT_SYSTEM, "code": "unknown", "display": "Unknown" }] }),
            );
        }
    }
    o.insert("device".into(), json!({ "reference": ctx.gateway }));
    Json::Object(o)
}

/// Adds the PHD IG `CoincidentTimeStampReference` extension (`Observation/<id>` of the
/// Coincident Time Stamp Observation) to a measurement Observation.
pub fn add_coincident_time_stamp_reference(observation: &mut Json, reference: &str) {
    let ext = json!({ "url": COINCIDENT_TIME_STAMP_EXTENSION, "valueReference": { "reference": reference } });
    match observation.get_mut("extension").and_then(Json::as_array_mut) {
        Some(list) => list.push(ext),
        None => observation["extension"] = json!([ext]),
    }
}

/// The readings of one blood-pressure measurement.
#[derive(Debug, Clone, Copy)]
pub struct BpParts<'a> {
    pub systolic: &'a Reading,
    pub diastolic: &'a Reading,
    pub mean: Option<&'a Reading>,
}

/// The blood-pressure panel (R4 `bp` profile; PHD IG compound numeric): one Observation
/// with a component per pressure. A special value in a component gives that component a
/// `dataAbsentReason` (vs-3).
pub fn blood_pressure_panel(parts: &BpParts, ctx: &ObservationContext) -> Json {
    let first = parts.systolic;
    let mut o = base_observation(
        Mdc::PRESS_BLD_NONINV,
        first.source,
        panel_identifier(parts),
        first,
        ctx,
        PHD_COMPOUND_NUMERIC_PROFILE,
    );
    let mut components = Vec::new();
    for r in [Some(parts.systolic), Some(parts.diastolic), parts.mean]
        .into_iter()
        .flatten()
    {
        let mut c = Map::new();
        c.insert("code".into(), code_concept(r.code, &r.unit));
        put_value(&mut c, r.value, &r.unit);
        components.push(Json::Object(c));
    }
    // One cuff measurement, one status (the parts come from one payload).
    put_status(&mut o, Some(&mut components), &first.status);
    o.insert("component".into(), Json::Array(components));
    Json::Object(o)
}

/// What to upload for a run of readings: each item is one Observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Group {
    /// Index of a reading uploaded on its own.
    Single(usize),
    /// Indices of the systolic, diastolic and (optional) mean readings of one measurement.
    BloodPressure {
        systolic: usize,
        diastolic: usize,
        mean: Option<usize>,
    },
}

impl Group {
    /// Indices of the readings this group covers.
    pub fn indices(&self) -> Vec<usize> {
        match *self {
            Group::Single(i) => vec![i],
            Group::BloodPressure {
                systolic,
                diastolic,
                mean,
            } => [Some(systolic), Some(diastolic), mean]
                .into_iter()
                .flatten()
                .collect(),
        }
    }
}

fn time_key(r: &Reading) -> String {
    match r.device_time {
        Some(t) => format!("d:{}", naive(t)),
        None => format!("r:{}", r.received.to_rfc3339_opts(SecondsFormat::Nanos, true)),
    }
}

fn naive(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.f").to_string()
}

/// Groups readings into Observations, keeping the input order (a group sits where its first
/// reading was). Systolic, diastolic and mean readings from the same device with the same
/// time (device time if sent, else receive time) and unit become one blood-pressure panel;
/// a panel needs both systolic and diastolic, otherwise its readings go out one by one.
pub fn group(readings: &[&Reading]) -> Vec<Group> {
    let bp_slot = |c: Mdc| match c {
        Mdc::PRESS_BLD_NONINV_SYS => Some(0),
        Mdc::PRESS_BLD_NONINV_DIA => Some(1),
        Mdc::PRESS_BLD_NONINV_MEAN => Some(2),
        _ => None,
    };
    // (device, time, unit) and the [sys, dia, mean] reading indices of each panel.
    type Panel<'r> = ((&'r str, String, &'r str), [Option<usize>; 3]);
    let mut panels: Vec<Panel> = Vec::new();
    let mut order: Vec<(usize, Option<usize>)> = Vec::new(); // (reading index, panel index)
    for (i, r) in readings.iter().enumerate() {
        let Some(slot) = bp_slot(r.code) else {
            order.push((i, None));
            continue;
        };
        let key = (r.device.as_str(), time_key(r), r.unit.as_str());
        let found = panels.iter().position(|(k, s)| *k == key && s[slot].is_none());
        match found {
            Some(p) => panels[p].1[slot] = Some(i),
            None => {
                let mut s = [None; 3];
                s[slot] = Some(i);
                panels.push((key, s));
                order.push((i, Some(panels.len() - 1)));
            }
        }
    }
    let mut out = Vec::new();
    for (i, panel) in order {
        match panel {
            None => out.push(Group::Single(i)),
            Some(p) => match panels[p].1 {
                [Some(systolic), Some(diastolic), mean] => out.push(Group::BloodPressure {
                    systolic,
                    diastolic,
                    mean,
                }),
                slots => out.extend(slots.into_iter().flatten().map(Group::Single)),
            },
        }
    }
    out
}

fn value_key(v: Value) -> String {
    match v {
        Value::Number(n) => format!("{n}"),
        Value::Special(s) => s.as_str().to_string(),
    }
}

fn sha256_hex(s: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, s.as_bytes()))
}

/// Deterministic Observation identifier value: hex SHA-256 of the device id, the MDC code,
/// the device time (or, when the device sent none, the receive time), the value and the
/// unit. The PHD IG ("PHD Observation Identifier") builds it from device, time stamp, type,
/// value and unit for the same reason: the same measurement sent twice (a retry, a device
/// re-sending stored records) gives the same identifier, and two different measurements
/// within one device-clock second do not collide and silently merge.
pub fn observation_identifier(r: &Reading) -> String {
    sha256_hex(&format!(
        "vigil-obs-v1|{}|{}|{}|{}|{}",
        r.device,
        r.code.0,
        time_key(r),
        value_key(r.value),
        r.unit
    ))
}

/// Deterministic identifier of a blood-pressure panel (same rule over its components).
pub fn panel_identifier(p: &BpParts) -> String {
    let mut s = format!(
        "vigil-bp-v1|{}|{}|{}",
        p.systolic.device,
        Mdc::PRESS_BLD_NONINV.0,
        time_key(p.systolic)
    );
    for r in [Some(p.systolic), Some(p.diastolic), p.mean]
        .into_iter()
        .flatten()
    {
        s.push_str(&format!("|{}={}{}", r.code.0, value_key(r.value), r.unit));
    }
    sha256_hex(&s)
}

/// What Vigil knows about a device (Device Information Service and transport).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceInfo {
    /// Vigil's device id (Bluetooth address or simulator id).
    pub id: String,
    /// What it is ("Pulse oximeter"); becomes the user-friendly device name.
    pub name: Option<String>,
    /// EUI-64 System ID formatted as the PHD IG asks: `FE-ED-AB-EE-DE-AD-77-C3`.
    pub system_id: Option<String>,
    /// Bluetooth address (`00:E5:DE:AD:77:C3` or `00-E5-...`).
    pub bluetooth_address: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub hardware_revision: Option<String>,
    pub firmware_revision: Option<String>,
    pub software_revision: Option<String>,
    /// MDC specialization codes (PHD IG ValueSet DeviceTypes11073MDC), e.g.
    /// [`Mdc::DEV_SPEC_PROFILE_PULS_OXIM`]; a gateway lists those it serves.
    pub specializations: Vec<Mdc>,
    /// How its clock is synchronised (PHD IG ValueSet MDCTimeSyncMethods), e.g.
    /// [`Mdc::TIME_SYNC_NONE`].
    pub time_sync: Option<Mdc>,
    pub simulated: bool,
}

impl DeviceInfo {
    /// A device known only by its id.
    pub fn from_id(id: &str) -> Self {
        DeviceInfo {
            id: id.to_string(),
            ..Default::default()
        }
    }
}

/// A Bluetooth address in the PHD IG form (`00-E5-DE-AD-77-C3`), if it is one.
pub fn format_bluetooth_address(a: &str) -> Option<String> {
    let hexits: String = a.chars().filter(|c| !matches!(c, ':' | '-')).collect();
    if hexits.len() != 12 || !hexits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let up = hexits.to_ascii_uppercase();
    Some(
        (0..6)
            .map(|i| &up[2 * i..2 * i + 2])
            .collect::<Vec<_>>()
            .join("-"),
    )
}

fn typed_identifier(system: &str, value: &str, type_code: &str) -> Json {
    json!({
        "type": { "coding": [{ "system": CONTINUA_ID_SYSTEM, "code": type_code }] },
        "system": system,
        "value": value
    })
}

/// Which PHD IG profile a Device claims.
#[derive(Clone, Copy, PartialEq)]
enum DeviceProfile {
    Phd,
    Phg,
}

fn device_resource(info: &DeviceInfo, type_code: &str, type_text: &str, profile: DeviceProfile) -> Json {
    let mut identifiers = vec![json!({ "system": DEVICE_ID_SYSTEM, "value": info.id })];
    if let Some(s) = &info.system_id {
        identifiers.push(typed_identifier(EUI64_SYSTEM, s, "SYSID"));
    }
    let bt = info
        .bluetooth_address
        .as_deref()
        .and_then(format_bluetooth_address);
    if let Some(a) = bt {
        identifiers.push(typed_identifier(BLUETOOTH_SYSTEM, &a, "BTMAC"));
    }
    let nonempty = |s: &Option<String>| s.as_deref().filter(|s| !s.trim().is_empty()).map(str::to_string);
    let mut d = Map::new();
    d.insert("resourceType".into(), json!("Device"));
    let mut meta = Map::new();
    // The profile is claimed only when the Device has what it requires (PhdDevice:
    // manufacturer 1.., modelNumber 1.., specialization 1.., version 1..; PhgDevice:
    // specialization 1.., version 1..): a claim the server finds false would refuse the
    // Device, and with it the sensor's readings.
    let has_version = [
        &info.hardware_revision,
        &info.software_revision,
        &info.firmware_revision,
    ]
    .into_iter()
    .any(|v| nonempty(v).is_some());
    let conforms = !info.specializations.is_empty()
        && has_version
        && (profile == DeviceProfile::Phg
            || (nonempty(&info.manufacturer).is_some() && nonempty(&info.model).is_some()));
    if conforms {
        let url = match profile {
            DeviceProfile::Phd => PHD_DEVICE_PROFILE,
            DeviceProfile::Phg => PHG_DEVICE_PROFILE,
        };
        meta.insert("profile".into(), json!([url]));
    }
    if info.simulated {
        meta.insert(
            "security".into(),
            json!([{ "system": ACT_REASON_SYSTEM, "code": "HTEST", "display": "test health data" }]),
        );
    }
    if !meta.is_empty() {
        d.insert("meta".into(), Json::Object(meta));
    }
    d.insert("identifier".into(), Json::Array(identifiers));
    d.insert("status".into(), json!("active"));
    if let Some(m) = nonempty(&info.manufacturer) {
        d.insert("manufacturer".into(), json!(m));
    }
    if let Some(s) = nonempty(&info.serial) {
        d.insert("serialNumber".into(), json!(s));
    }
    if let Some(m) = nonempty(&info.model) {
        d.insert("modelNumber".into(), json!(m));
    }
    if let Some(n) = nonempty(&info.name) {
        d.insert(
            "deviceName".into(),
            json!([{ "name": n, "type": "user-friendly-name" }]),
        );
    }
    d.insert(
        "type".into(),
        json!({ "coding": [{ "system": MDC_SYSTEM, "code": type_code }], "text": type_text }),
    );
    let versions: Vec<Json> = [
        (&info.hardware_revision, "531974", "MDC_ID_PROD_SPEC_HW"),
        (&info.software_revision, "531975", "MDC_ID_PROD_SPEC_SW"),
        (&info.firmware_revision, "531976", "MDC_ID_PROD_SPEC_FW"),
    ]
    .into_iter()
    .filter_map(|(v, code, text)| {
        nonempty(v).map(|v| {
            json!({ "type": { "coding": [{ "system": MDC_SYSTEM, "code": code }], "text": text }, "value": v })
        })
    })
    .collect();
    if !info.specializations.is_empty() {
        // Specialization version "1": the PHD IG's own Bluetooth LE example Device
        // (phd-74E8FFFEFF051C00.001C05FFE874) reports version 1 for a transcoded BLE profile.
        let specs: Vec<Json> = info
            .specializations
            .iter()
            .map(|c| json!({ "systemType": { "coding": [{ "system": MDC_SYSTEM, "code": c.0.to_string() }] }, "version": "1" }))
            .collect();
        d.insert("specialization".into(), Json::Array(specs));
    }
    if !versions.is_empty() {
        d.insert("version".into(), Json::Array(versions));
    }
    if let Some(sync) = info.time_sync {
        // PhdDevice / PhgDevice property slice timeSyncProperty: type MDC_TIME_SYNC_PROTOCOL.
        d.insert(
            "property".into(),
            json!([{
                "type": { "coding": [{ "system": MDC_SYSTEM, "code": Mdc::TIME_SYNC_PROTOCOL.0.to_string() }] },
                "valueCode": [{ "coding": [{ "system": MDC_SYSTEM, "code": sync.0.to_string() }] }]
            }]),
        );
    }
    Json::Object(d)
}

/// The sensor's Device (PHD IG "PHD Device Profile", type MDC_MOC_VMS_MDS_SIMP 65573).
pub fn device(info: &DeviceInfo) -> Json {
    device_resource(
        info,
        "65573",
        "MDC_MOC_VMS_MDS_SIMP: Personal Health Device",
        DeviceProfile::Phd,
    )
}

/// The Vigil gateway's Device (PHD IG "PHG Device Profile", type MDC_MOC_VMS_MDS_AHD 531981).
pub fn gateway_device(info: &DeviceInfo) -> Json {
    device_resource(
        info,
        "531981",
        "MDC_MOC_VMS_MDS_AHD: Vigil gateway",
        DeviceProfile::Phg,
    )
}

/// The conditional-create search that finds a resource by its first identifier:
/// `identifier=system|value` (R4 http.html "Conditional create").
pub fn if_none_exist(resource: &Json) -> Option<String> {
    if resource.get("resourceType").and_then(Json::as_str) == Some("AuditEvent") {
        return crate::audit_event::audit_if_none_exist(resource);
    }
    let id = resource.get("identifier")?.get(0)?;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    Some(format!(
        "identifier={}|{}",
        enc(id.get("system")?.as_str()?),
        enc(id.get("value")?.as_str()?)
    ))
}
