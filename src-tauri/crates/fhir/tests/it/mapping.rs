//! Mapping, bundle, backoff and error-text tests: no server.

use std::time::Duration;

use chrono::{NaiveDate, Offset, TimeZone};
use rand::SeedableRng;
use serde_json::{json, Value as Json};
use vigil_fhir::bundle::{self, EntryResult};
use vigil_fhir::client::parse_retry_after;
use vigil_fhir::mapping::{self, BpParts, DeviceInfo, Group, ObservationContext};
use vigil_fhir::{Backoff, Error, Outcome, PatientSummary};
use vigil_model::{Mdc, Source, Special, Value};

use crate::support::*;

const CTX: ObservationContext = ObservationContext {
    subject: "Patient/p1",
    device: "Device/d1",
    gateway: "Device/g1",
};

fn codings(o: &Json) -> Vec<(String, String)> {
    o["code"]["coding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["system"].as_str().unwrap().to_string(),
                c["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn heart_rate_observation_follows_phd_ig_and_vital_signs() {
    let r = reading("hr-1", Mdc::ECG_HEART_RATE, Value::Number(72.0), "/min", t0());
    let o = mapping::observation(&r, &CTX);
    assert_eq!(o["resourceType"], "Observation");
    assert_eq!(o["status"], "final");
    assert_eq!(
        o["meta"]["profile"],
        json!([
            "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdNumericObservation",
            "http://hl7.org/fhir/StructureDefinition/heartrate"
        ])
    );
    let cats: Vec<&str> = o["category"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["coding"][0]["code"].as_str().unwrap())
        .collect();
    // PHD IG STU 2 PhdBaseObservation: the PHD category code is `phd`.
    assert_eq!(cats, ["vital-signs", "phd"]);
    assert_eq!(
        o["category"][0]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/observation-category"
    );
    let c = codings(&o);
    assert!(c.contains(&("urn:iso:std:iso:11073:10101".into(), "147842".into())));
    assert!(c.contains(&("http://loinc.org".into(), "8867-4".into())));
    assert_eq!(
        o["valueQuantity"],
        json!({ "value": 72.0, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min" })
    );
    assert_eq!(o["effectiveDateTime"], "2025-03-04T10:00:00.000Z");
    assert_eq!(o["subject"]["reference"], "Patient/p1");
    assert_eq!(o["device"]["reference"], "Device/d1");
    assert_eq!(
        o["extension"],
        json!([{ "url": "http://hl7.org/fhir/StructureDefinition/observation-gatewayDevice",
                 "valueReference": { "reference": "Device/g1" } }])
    );
    assert_eq!(o["identifier"][0]["system"], "urn:vigil:observation");
    assert_eq!(o["identifier"][0]["value"], mapping::observation_identifier(&r));
    assert!(o.get("dataAbsentReason").is_none());
    assert!(o.get("meta").unwrap().get("security").is_none());
}

#[test]
fn a_device_clock_reading_is_a_phd_coincident_time_stamp() {
    let device_time = NaiveDate::from_ymd_opt(2025, 3, 4)
        .unwrap()
        .and_hms_milli_opt(11, 30, 0, 250)
        .unwrap();
    let r = with_device_time(
        reading("meter-1", Mdc::ATTR_TIME_ABS, Value::Number(5400.0), "s", t0()),
        device_time,
    );
    let o = mapping::coincident_time_stamp(&r, &CTX);
    assert_eq!(o["resourceType"], "Observation");
    assert_eq!(o["meta"]["profile"][0], mapping::COINCIDENT_TIME_STAMP_PROFILE);
    assert_eq!(o["status"], "final");
    assert_eq!(
        codings(&o),
        vec![("urn:iso:std:iso:11073:10101".to_string(), "67975".to_string())]
    );
    // The IG's subject is the sensor, its device the gateway; no patient, no gateway
    // extension, no vital-signs category.
    assert_eq!(o["subject"]["reference"], "Device/d1");
    assert_eq!(o["device"]["reference"], "Device/g1");
    for absent in [
        "extension",
        "category",
        "valueQuantity",
        "derivedFrom",
        "hasMember",
    ] {
        assert!(o.get(absent).is_none(), "{absent}: {o}");
    }
    assert_eq!(o["effectiveDateTime"], "2025-03-04T10:00:00.000Z");
    // The device's clock as read, with the gateway's own UTC offset at that instant.
    let v = chrono::DateTime::parse_from_rfc3339(o["valueDateTime"].as_str().unwrap()).unwrap();
    assert_eq!(v.naive_local(), device_time);
    let zone = chrono::Local.offset_from_utc_datetime(&t0().naive_utc()).fix();
    assert_eq!(*v.offset(), zone);
    // Deterministic identifier, distinct from a measurement's at the same time.
    assert_eq!(o["identifier"][0]["system"], "urn:vigil:observation");
    assert_eq!(o["identifier"][0]["value"], mapping::observation_identifier(&r));
    let mut m = r.clone();
    m.code = Mdc::CONC_GLU_CAPILLARY_PLASMA;
    assert_ne!(
        mapping::observation_identifier(&m),
        mapping::observation_identifier(&r)
    );
    // A measurement on its timeline references it, next to the gateway extension.
    let mut obs = mapping::observation(&m, &CTX);
    mapping::add_coincident_time_stamp_reference(&mut obs, "Observation/cts-1");
    assert_eq!(obs["extension"].as_array().unwrap().len(), 2);
    assert_eq!(
        obs["extension"][1],
        json!({
            "url": "http://hl7.org/fhir/uv/phd/StructureDefinition/CoincidentTimeStampReference",
            "valueReference": { "reference": "Observation/cts-1" }
        })
    );
}

#[test]
fn spo2_and_oximeter_pulse_carry_the_codes_the_profiles_require() {
    let spo2 = mapping::observation(
        &reading("o", Mdc::PULS_OXIM_SAT_O2, Value::Number(97.0), "%", t0()),
        &CTX,
    );
    let c = codings(&spo2);
    assert!(c.contains(&("http://loinc.org".into(), "59408-5".into())));
    assert!(c.contains(&("http://loinc.org".into(), "2708-6".into())));
    assert_eq!(
        spo2["meta"]["profile"][1],
        "http://hl7.org/fhir/StructureDefinition/oxygensat"
    );
    let pr = mapping::observation(
        &reading("o", Mdc::PULS_OXIM_PULS_RATE, Value::Number(70.0), "/min", t0()),
        &CTX,
    );
    let c = codings(&pr);
    assert!(c.contains(&("http://loinc.org".into(), "8867-4".into())));
    assert!(c.contains(&("http://loinc.org".into(), "8889-8".into())));
    assert!(c.contains(&("urn:iso:std:iso:11073:10101".into(), "149530".into())));
    // No LOINC vital sign: no vital-signs category, only the PHD profile claimed.
    let pi = mapping::observation(
        &reading("o", Mdc::PULS_OXIM_PERF_REL, Value::Number(3.1), "%", t0()),
        &CTX,
    );
    assert_eq!(pi["meta"]["profile"], json!([mapping::PHD_NUMERIC_PROFILE]));
    assert_eq!(pi["category"].as_array().unwrap().len(), 1);
    assert_eq!(pi["category"][0]["coding"][0]["code"], "phd");
}

#[test]
fn special_values_become_data_absent_reason_without_value() {
    let cases = [
        (Value::Special(Special::NaN), "not-a-number"),
        (Value::Special(Special::NRes), "error"),
        (Value::Special(Special::PosInfinity), "positive-infinity"),
        (Value::Special(Special::NegInfinity), "negative-infinity"),
        (Value::Special(Special::Reserved), "error"),
        (Value::Number(f64::NAN), "not-a-number"),
        (Value::Number(f64::INFINITY), "positive-infinity"),
        (Value::Number(f64::NEG_INFINITY), "negative-infinity"),
    ];
    for (v, code) in cases {
        let o = mapping::observation(&reading("o", Mdc::PULS_OXIM_SAT_O2, v, "%", t0()), &CTX);
        assert!(o.get("valueQuantity").is_none(), "{v:?}");
        assert_eq!(o["dataAbsentReason"]["coding"][0]["code"], code, "{v:?}");
        assert_eq!(
            o["dataAbsentReason"]["coding"][0]["system"],
            "http://terminology.hl7.org/CodeSystem/data-absent-reason"
        );
    }
}

#[test]
fn identifier_is_a_pure_function_of_device_code_time_value() {
    let r = reading("hr-1", Mdc::ECG_HEART_RATE, Value::Number(72.0), "/min", t0());
    let id = mapping::observation_identifier(&r);
    assert_eq!(id.len(), 64);
    assert!(id
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    // Pinned: changing the rule would re-upload everything as new Observations.
    assert_eq!(
        id,
        "5c1dd1ae03b2186c0030bea2c0b25a4d265cb9212eab315caa5e0024eff93487"
    );
    assert_eq!(id, mapping::observation_identifier(&r.clone()));
    let mut other = r.clone();
    other.bed = "bed-9".into();
    other.source = Source::Simulated;
    assert_eq!(
        mapping::observation_identifier(&other),
        id,
        "bed and source are not identity"
    );
    for changed in [
        {
            let mut x = r.clone();
            x.device = "hr-2".into();
            x
        },
        {
            let mut x = r.clone();
            x.code = Mdc::PULS_RATE_NON_INV;
            x
        },
        {
            let mut x = r.clone();
            x.received += chrono::Duration::milliseconds(1);
            x
        },
        {
            let mut x = r.clone();
            x.value = Value::Number(73.0);
            x
        },
        {
            let mut x = r.clone();
            x.value = Value::Special(Special::NaN);
            x
        },
    ] {
        assert_ne!(mapping::observation_identifier(&changed), id);
    }
    // With a device time, the receive time does not matter: a re-sent stored record
    // (received again later) is the same measurement.
    let dt = NaiveDate::from_ymd_opt(2025, 3, 4)
        .unwrap()
        .and_hms_opt(9, 59, 58)
        .unwrap();
    let a = with_device_time(r.clone(), dt);
    let mut b = a.clone();
    b.received += chrono::Duration::hours(3);
    assert_eq!(
        mapping::observation_identifier(&a),
        mapping::observation_identifier(&b)
    );
    assert_ne!(mapping::observation_identifier(&a), id);
}

#[test]
fn blood_pressure_readings_group_into_panels_in_order() {
    let at = t0();
    let mut rs = vec![reading(
        "hr",
        Mdc::ECG_HEART_RATE,
        Value::Number(70.0),
        "/min",
        at,
    )];
    rs.extend(bp("cuff", at, 120.0, 80.0, 93.0));
    rs.push(reading(
        "hr",
        Mdc::ECG_HEART_RATE,
        Value::Number(71.0),
        "/min",
        at,
    ));
    rs.extend(bp("cuff", at + chrono::Duration::seconds(60), 130.0, 85.0, 100.0));
    // A lone systolic (no diastolic at that time) cannot be a bp panel.
    rs.push(bp("cuff", at + chrono::Duration::seconds(120), 110.0, 0.0, 0.0).remove(0));
    let refs: Vec<_> = rs.iter().collect();
    let g = mapping::group(&refs);
    assert_eq!(
        g,
        vec![
            Group::Single(0),
            Group::BloodPressure {
                systolic: 1,
                diastolic: 2,
                mean: Some(3)
            },
            Group::Single(4),
            Group::BloodPressure {
                systolic: 5,
                diastolic: 6,
                mean: Some(7)
            },
            Group::Single(8),
        ]
    );
    // Two cuffs at the same time stay apart; order within a measurement does not matter.
    let mut two = bp("cuff-a", at, 120.0, 80.0, 93.0);
    let mut b = bp("cuff-b", at, 140.0, 90.0, 107.0);
    b.reverse();
    two.extend(b);
    let refs: Vec<_> = two.iter().collect();
    assert_eq!(
        mapping::group(&refs),
        vec![
            Group::BloodPressure {
                systolic: 0,
                diastolic: 1,
                mean: Some(2)
            },
            Group::BloodPressure {
                systolic: 5,
                diastolic: 4,
                mean: Some(3)
            },
        ]
    );
}

#[test]
fn blood_pressure_panel_has_three_components() {
    let rs = bp("cuff", t0(), 120.0, 80.0, 93.3);
    let mut rs2 = rs.clone();
    rs2[2].value = Value::Special(Special::NaN);
    let parts = BpParts {
        systolic: &rs[0],
        diastolic: &rs[1],
        mean: Some(&rs[2]),
    };
    let o = mapping::blood_pressure_panel(&parts, &CTX);
    assert_eq!(
        o["meta"]["profile"],
        json!([
            "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdCompoundNumericObservation",
            "http://hl7.org/fhir/StructureDefinition/bp"
        ])
    );
    let c = codings(&o);
    assert!(c.contains(&("http://loinc.org".into(), "85354-9".into())));
    assert!(c.contains(&("urn:iso:std:iso:11073:10101".into(), "150020".into())));
    assert!(o.get("valueQuantity").is_none());
    let comps = o["component"].as_array().unwrap();
    assert_eq!(comps.len(), 3);
    let loinc: Vec<&str> = comps
        .iter()
        .map(|c| {
            c["code"]["coding"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["system"] == "http://loinc.org")
                .unwrap()["code"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(loinc, ["8480-6", "8462-4", "8478-0"]);
    assert_eq!(comps[0]["valueQuantity"]["value"], 120.0);
    assert_eq!(comps[0]["valueQuantity"]["code"], "mm[Hg]");
    // A special value in one component: that component gets a dataAbsentReason.
    let parts2 = BpParts {
        systolic: &rs2[0],
        diastolic: &rs2[1],
        mean: Some(&rs2[2]),
    };
    let o2 = mapping::blood_pressure_panel(&parts2, &CTX);
    assert!(o2["component"][2].get("valueQuantity").is_none());
    assert_eq!(
        o2["component"][2]["dataAbsentReason"]["coding"][0]["code"],
        "not-a-number"
    );
    assert_ne!(o2["identifier"][0]["value"], o["identifier"][0]["value"]);
    assert_eq!(
        mapping::panel_identifier(&parts),
        mapping::panel_identifier(&parts.clone())
    );
}

#[test]
fn simulated_readings_and_devices_are_labelled_test_data() {
    let mut r = reading("sim-hr", Mdc::ECG_HEART_RATE, Value::Number(72.0), "/min", t0());
    r.source = Source::Simulated;
    let o = mapping::observation(&r, &CTX);
    assert_eq!(o["meta"]["security"][0]["code"], "HTEST");
    let d = mapping::device(&DeviceInfo {
        simulated: true,
        ..DeviceInfo::from_id("sim-hr")
    });
    assert_eq!(d["meta"]["security"][0]["code"], "HTEST");
}

#[test]
fn devices_carry_phd_identifiers_and_versions() {
    let info = DeviceInfo {
        id: "AA:BB:CC:DD:EE:FF".into(),
        name: Some("Pulse oximeter".into()),
        system_id: Some("12-34-56-FF-FE-9A-BC-DE".into()),
        bluetooth_address: Some("aa:bb:cc:dd:ee:ff".into()),
        manufacturer: Some("Acme".into()),
        model: Some("OX-1".into()),
        serial: Some("SN1".into()),
        hardware_revision: Some("1.0".into()),
        firmware_revision: Some("2.1".into()),
        software_revision: None,
        specializations: vec![Mdc::DEV_SPEC_PROFILE_PULS_OXIM],
        time_sync: Some(Mdc::TIME_SYNC_NONE),
        simulated: false,
    };
    let d = mapping::device(&info);
    let ids = d["identifier"].as_array().unwrap();
    assert_eq!(
        ids[0],
        json!({ "system": "urn:vigil:device", "value": "AA:BB:CC:DD:EE:FF" })
    );
    assert_eq!(ids[1]["system"], "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680");
    assert_eq!(ids[1]["value"], "12-34-56-FF-FE-9A-BC-DE");
    assert_eq!(ids[1]["type"]["coding"][0]["code"], "SYSID");
    assert_eq!(ids[2]["system"], "http://hl7.org/fhir/sid/eui-48/bluetooth");
    assert_eq!(ids[2]["value"], "AA-BB-CC-DD-EE-FF");
    assert_eq!(ids[2]["type"]["coding"][0]["code"], "BTMAC");
    assert_eq!(d["manufacturer"], "Acme");
    assert_eq!(d["modelNumber"], "OX-1");
    assert_eq!(d["serialNumber"], "SN1");
    assert_eq!(d["type"]["coding"][0]["code"], "65573");
    let versions: Vec<(&str, &str)> = d["version"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["type"]["coding"][0]["code"].as_str().unwrap(),
                v["value"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(versions, [("531974", "1.0"), ("531976", "2.1")]);
    assert_eq!(d["deviceName"][0]["type"], "user-friendly-name");
    let g = mapping::gateway_device(&gateway());
    assert_eq!(g["type"]["coding"][0]["code"], "531981");
    assert_eq!(mapping::format_bluetooth_address("sim-hr-1"), None);
    assert_eq!(
        mapping::if_none_exist(&g).unwrap(),
        "identifier=urn%3Avigil%3Adevice|vigil-gateway-test"
    );
}

#[test]
fn batch_bundle_is_conditional_creates() {
    let r = reading("hr-1", Mdc::ECG_HEART_RATE, Value::Number(72.0), "/min", t0());
    let o = mapping::observation(&r, &CTX);
    let b = bundle::batch(&[o.clone(), o]);
    assert_eq!(b["type"], "batch");
    let e = &b["entry"][0];
    assert_eq!(e["request"]["method"], "POST");
    assert_eq!(e["request"]["url"], "Observation");
    assert_eq!(
        e["request"]["ifNoneExist"],
        format!(
            "identifier=urn%3Avigil%3Aobservation|{}",
            mapping::observation_identifier(&r)
        )
    );
    assert_eq!(b["entry"].as_array().unwrap().len(), 2);
}

#[test]
fn batch_response_entries_are_classified() {
    let oo = json!({ "resourceType": "OperationOutcome",
        "issue": [{ "severity": "error", "code": "structure", "details": { "text": "Invalid code format" },
                    "diagnostics": "value ' bpm '", "expression": ["Observation.value[x].code"] }] });
    let resp = json!({ "resourceType": "Bundle", "type": "batch-response", "entry": [
        { "response": { "status": "201 Created", "location": "Observation/1/_history/1" } },
        { "response": { "status": "200", "location": "Observation/2" } },
        { "response": { "status": "400", "outcome": oo } },
        { "response": { "status": "503" } },
        { "response": { "status": "429" } },
        { "response": { "status": "412" } },
        { "response": {} },
    ]});
    let r = bundle::parse_batch_response(&resp, 7).unwrap();
    assert_eq!(
        r[0],
        EntryResult::Stored {
            created: true,
            location: Some("Observation/1/_history/1".into())
        }
    );
    assert_eq!(
        r[1],
        EntryResult::Stored {
            created: false,
            location: Some("Observation/2".into())
        }
    );
    let EntryResult::Rejected {
        status: 400,
        outcome: Some(o),
    } = &r[2]
    else {
        panic!("{:?}", r[2])
    };
    assert!(o.full_text().contains("Invalid code format"));
    assert!(o.full_text().contains("' bpm '"));
    assert_eq!(o.to_string(), "error structure at Observation.value[x].code");
    assert!(matches!(
        r[3],
        EntryResult::Retry {
            status: Some(503),
            ..
        }
    ));
    assert!(matches!(
        r[4],
        EntryResult::Retry {
            status: Some(429),
            ..
        }
    ));
    assert!(r[5].is_stored());
    assert!(matches!(r[6], EntryResult::Retry { status: None, .. }));
    assert!(bundle::parse_batch_response(&resp, 6).is_err());
    assert!(bundle::parse_batch_response(&json!({ "resourceType": "OperationOutcome" }), 0).is_err());
    assert_eq!(
        bundle::reference_from_location("http://x/fhir/Device/abc/_history/2", "Device").as_deref(),
        Some("Device/abc")
    );
}

#[test]
fn backoff_grows_caps_and_jitters() {
    let b = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(2),
        multiplier: 2.0,
        jitter: 0.0,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let d: Vec<u128> = (0..7).map(|a| b.delay(a, &mut rng).as_millis()).collect();
    assert_eq!(d, [100, 200, 400, 800, 1600, 2000, 2000]);
    let j = Backoff { jitter: 1.0, ..b };
    for a in 0..50 {
        let d = j.delay(a % 8, &mut rng);
        assert!(d <= b.delay(a % 8, &mut rng));
    }
    assert_eq!(b.delay(u32::MAX, &mut rng), Duration::from_secs(2));
}

#[test]
fn retry_after_seconds_and_http_date() {
    assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
    assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
    let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).format("%a, %d %b %Y %H:%M:%S GMT");
    let d = parse_retry_after(&later.to_string()).unwrap();
    assert!(
        d > Duration::from_secs(25) && d <= Duration::from_secs(30),
        "{d:?}"
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after("soon"), None);
}

#[test]
fn errors_and_summaries_keep_identity_and_values_out_of_text() {
    let o = Outcome::from_json(&json!({ "resourceType": "OperationOutcome", "issue": [
        { "severity": "error", "code": "invalid", "diagnostics": "MRN 123456 Jane Doe" }] }))
    .unwrap();
    let e = Error::Http {
        status: 400,
        retry_after: None,
        outcome: Some(o.clone()),
    };
    assert_eq!(e.to_string(), "HTTP 400 (error invalid)");
    assert!(!format!("{e:?}").contains("123456"));
    assert!(o.full_text().contains("123456"), "kept for the dead-letter list");
    let long = Outcome::from_json(&json!({ "resourceType": "OperationOutcome", "issue": [
        { "severity": "error", "code": "invalid", "diagnostics": "x".repeat(10_000) }] }))
    .unwrap();
    assert!(long.full_text().len() <= vigil_fhir::error::MAX_OUTCOME_TEXT + 4);
    let p = PatientSummary {
        reference: "Patient/7".into(),
        mrn: Some("123456".into()),
        family: Some("Doe".into()),
        ..Default::default()
    };
    let dbg = format!("{p:?}");
    assert!(!dbg.contains("123456") && !dbg.contains("Doe"), "{dbg}");
    let s = vigil_fhir::Secret::new("tok-secret");
    assert!(!format!("{s:?}").contains("tok-secret"));
}

#[test]
fn client_refuses_plain_http_off_loopback_and_bad_ca_bundles() {
    use vigil_fhir::{ClientConfig, FhirClient};
    let e = FhirClient::new(ClientConfig::new("http://fhir.example.org/R4")).unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    assert!(FhirClient::new(ClientConfig::new("https://fhir.example.org/R4")).is_ok());
    assert!(FhirClient::new(ClientConfig::new("http://127.0.0.1:9/fhir")).is_ok());
    assert!(FhirClient::new(ClientConfig::new("http://[::1]:9/fhir")).is_ok());
    let mut c = ClientConfig::new("https://fhir.example.org/R4");
    c.ca_bundle_pem = Some(b"not a certificate".to_vec());
    assert!(matches!(FhirClient::new(c), Err(Error::Config(_))));
}

#[test]
fn client_assertion_is_a_signed_es384_jwt() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use ring::signature::{
        EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P384_SHA384_FIXED, ECDSA_P384_SHA384_FIXED_SIGNING,
    };
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
    let public = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let smart = vigil_fhir::SmartBackend {
        token_url: "https://auth.example.org/token".parse().unwrap(),
        client_id: "vigil-gw-1".into(),
        kid: "k1".into(),
        key: vigil_fhir::SigningKey::es384_from_pkcs8(pkcs8.as_ref()).unwrap(),
        scope: "system/Observation.write".into(),
    };
    let jwt = smart.assertion(1_700_000_000).unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Json = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Json = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header, json!({ "alg": "ES384", "typ": "JWT", "kid": "k1" }));
    assert_eq!(claims["iss"], "vigil-gw-1");
    assert_eq!(claims["sub"], "vigil-gw-1");
    assert_eq!(claims["aud"], "https://auth.example.org/token");
    assert!(claims["exp"].as_i64().unwrap() - 1_700_000_000 <= 300);
    assert_eq!(claims["jti"].as_str().unwrap().len(), 32);
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, &public)
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .expect("signature verifies");
    let again = smart.assertion(1_700_000_000).unwrap();
    assert_ne!(
        jwt.split('.').nth(1),
        again.split('.').nth(1),
        "fresh jti each time"
    );
    assert!(!format!("{smart:?}").contains("BEGIN"));
}

/// Glucose carries its MDC code (IEEE 11073-10417; the PHD IG STU 2 examples use 160184 and
/// 160368) and the LOINC term of its sample type and unit (see
/// `vigil_model::codes::glucose_loinc`); glucose is not a vital sign (no vital-signs
/// category or profile).
#[test]
fn glucose_observation_carries_mdc_and_the_loinc_term_of_its_sample_and_unit() {
    for (code, unit, mdc, loinc) in [
        (
            Mdc::CONC_GLU_CAPILLARY_WHOLEBLOOD,
            "mg/dL",
            "160184",
            Some("41653-7"),
        ),
        (
            Mdc::CONC_GLU_CAPILLARY_WHOLEBLOOD,
            "mmol/L",
            "160184",
            Some("14743-9"),
        ),
        (
            Mdc::CONC_GLU_UNDETERMINED_WHOLEBLOOD,
            "mg/dL",
            "160364",
            Some("2339-0"),
        ),
        (
            Mdc::CONC_GLU_UNDETERMINED_WHOLEBLOOD,
            "mmol/L",
            "160364",
            Some("15074-8"),
        ),
        (
            Mdc::CONC_GLU_UNDETERMINED_PLASMA,
            "mg/dL",
            "160368",
            Some("2345-7"),
        ),
        (Mdc::CONC_GLU_VENOUS_PLASMA, "mmol/L", "160196", Some("14749-6")),
        (Mdc::CONC_GLU_CONTROL, "mg/dL", "160208", None),
    ] {
        let o = mapping::observation(&reading("meter", code, Value::Number(5.0), unit, t0()), &CTX);
        let mut want = vec![("urn:iso:std:iso:11073:10101".to_string(), mdc.to_string())];
        want.extend(loinc.map(|l| ("http://loinc.org".to_string(), l.to_string())));
        assert_eq!(codings(&o), want, "{code:?} {unit}");
        let cats = o["category"].to_string();
        assert!(!cats.contains("vital-signs"), "{cats}");
    }
}
