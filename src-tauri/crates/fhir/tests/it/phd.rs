//! PHD IG (STU 2) and R4 vital-signs profile conformance of what Vigil uploads, checked by
//! the loopback server (Medplum's validator plus the profile rules it encodes as checks,
//! see tests/fhir-server/README.md).

use serde_json::{json, Value as Json};
use vigil_fhir::mapping::{self, BpParts, ObservationContext};

use crate::support::*;

const CTX: ObservationContext = ObservationContext {
    subject: "Patient/p",
    device: "Device/d",
    gateway: "Device/g",
};

fn kpa_panel() -> Json {
    let mut rs = bp("cuff", t0(), 16.0, 10.7, 12.4);
    for r in &mut rs {
        r.unit = "kPa".into();
    }
    mapping::blood_pressure_panel(
        &BpParts {
            systolic: &rs[0],
            diastolic: &rs[1],
            mean: Some(&rs[2]),
        },
        &CTX,
    )
}

fn profiles(o: &Json) -> Vec<String> {
    o["meta"]["profile"]
        .as_array()
        .map(|a| a.iter().map(|p| p.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// A cuff set to kPa: the R4 `bp` profile fixes mm[Hg], so the panel keeps the device's kPa
/// and claims neither `bp` nor the vital-signs category; the server checks the `bp` slices
/// (85354-9, 8480-6 and 8462-4 in mm[Hg]) of any panel that claims it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kpa_blood_pressure_panel_does_not_claim_the_bp_profile() {
    let server = TestServer::start().await;
    let o = kpa_panel();
    let bp_url = "http://hl7.org/fhir/StructureDefinition/bp".to_string();
    assert!(!profiles(&o).contains(&bp_url), "{o}");
    assert!(!o["category"].to_string().contains("vital-signs"), "{o}");
    assert_eq!(o["component"][0]["valueQuantity"]["code"], "kPa");
    let (status, oo) = server.validate(&o).await;
    assert_eq!(status, 200, "{o}\n{oo}");

    // Claiming `bp` with kPa is refused by the server's slice check.
    let mut claimed = o.clone();
    claimed["meta"]["profile"] = json!([bp_url]);
    let (status, oo) = server.validate(&claimed).await;
    assert_eq!(status, 400, "{oo}");
    assert!(oo.to_string().contains("mm[Hg]"), "{oo}");

    // An mm[Hg] panel claims `bp` and passes; without its diastolic it does not.
    let rs = bp("cuff", t0(), 120.0, 80.0, 93.0);
    let parts = BpParts {
        systolic: &rs[0],
        diastolic: &rs[1],
        mean: Some(&rs[2]),
    };
    let good = mapping::blood_pressure_panel(&parts, &CTX);
    assert!(profiles(&good).contains(&bp_url), "{good}");
    let (status, oo) = server.validate(&good).await;
    assert_eq!(status, 200, "{good}\n{oo}");
    let mut no_dia = good.clone();
    no_dia["component"].as_array_mut().unwrap().remove(1);
    let (status, oo) = server.validate(&no_dia).await;
    assert_eq!(status, 400, "{oo}");
    assert!(oo.to_string().contains("DiastolicBP"), "{oo}");
    server.stop().await;
}

/// Every kind of resource Vigil uploads claims its PHD IG STU 2 (2.0.0) profile (canonical
/// URLs from the IG source, github.com/HL7/phd input/fsh) and passes the profile's rules as
/// the server checks them; resources in the STU 1 (1.1.0) shape are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_claim_phd_stu2_profiles_and_pass_their_rules() {
    use vigil_model::{Mdc, Special, Value};
    let server = TestServer::start().await;
    let phd = "http://hl7.org/fhir/uv/phd/StructureDefinition/";
    let hr = mapping::observation(
        &reading("d", Mdc::ECG_HEART_RATE, Value::Number(72.0), "/min", t0()),
        &CTX,
    );
    let nan = mapping::observation(
        &reading(
            "d",
            Mdc::PULS_OXIM_SAT_O2,
            Value::Special(Special::NaN),
            "%",
            t0(),
        ),
        &CTX,
    );
    let rs = bp("cuff", t0(), 120.0, 80.0, 93.0);
    let panel = mapping::blood_pressure_panel(
        &BpParts {
            systolic: &rs[0],
            diastolic: &rs[1],
            mean: Some(&rs[2]),
        },
        &CTX,
    );
    let clock = reading("d", Mdc::ATTR_TIME_ABS, Value::Number(60.0), "s", t0());
    let cts = mapping::coincident_time_stamp(&clock, &CTX);
    let device = mapping::device(&vigil_fhir::DeviceInfo {
        id: "00:E5:DE:AD:77:C3".into(),
        system_id: Some("FE-ED-AB-EE-DE-AD-77-C3".into()),
        bluetooth_address: Some("00:E5:DE:AD:77:C3".into()),
        manufacturer: Some("Acme".into()),
        model: Some("OX-1".into()),
        firmware_revision: Some("2.1".into()),
        specializations: vec![Mdc::DEV_SPEC_PROFILE_PULS_OXIM],
        time_sync: Some(Mdc::TIME_SYNC_NONE),
        ..Default::default()
    });
    let gw = mapping::gateway_device(&gateway());
    for (r, profile) in [
        (&hr, "PhdNumericObservation"),
        (&nan, "PhdNumericObservation"),
        (&panel, "PhdCompoundNumericObservation"),
        (&cts, "PhdCoincidentTimeStampObservation"),
        (&device, "PhdDevice"),
        (&gw, "PhgDevice"),
    ] {
        assert!(profiles(r).contains(&format!("{phd}{profile}")), "{profile}: {r}");
        let (status, oo) = server.validate(r).await;
        assert_eq!(status, 200, "{r}\n{oo}");
    }
    assert_eq!(
        device["identifier"][1]["type"]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/ContinuaDeviceIdentifiers"
    );

    // STU 1 shapes are refused: the 1.1.0 category code, the 1.1.0 identifier-type system,
    // a PhdDevice without its specialization, a second gateway extension.
    let mut old_cat = hr.clone();
    old_cat["category"][1]["coding"][0]["code"] = json!("phd-observation");
    let mut old_id = device.clone();
    old_id["identifier"][1]["type"]["coding"][0]["system"] =
        json!("http://hl7.org/fhir/uv/phd/CodeSystem/ContinuaDeviceIdentifiers");
    let mut no_spec = device.clone();
    no_spec.as_object_mut().unwrap().remove("specialization");
    let mut two_gw = hr.clone();
    let ext = two_gw["extension"][0].clone();
    two_gw["extension"].as_array_mut().unwrap().push(ext);
    for bad in [old_cat, old_id, no_spec, two_gw] {
        let (status, oo) = server.validate(&bad).await;
        assert_eq!(status, 400, "{bad}\n{oo}");
    }
    server.stop().await;
}

/// The Device Information arrives after a sensor's first readings: the Device is stored by
/// conditional update, so the richer content replaces the first one (one Device, now a
/// PhdDevice) instead of conditional create keeping the empty one for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_is_updated_when_its_information_grows() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use vigil_fhir::{DeviceInfo, Syncer};
    use vigil_model::{Mdc, SystemClock, Value};

    let server = TestServer::start().await;
    let addr = "00:E5:DE:AD:77:C3";
    let first: Vec<_> = (0..3)
        .map(|i| {
            reading(
                addr,
                Mdc::PULS_OXIM_SAT_O2,
                Value::Number(97.0),
                "%",
                t0() + chrono::Duration::seconds(i),
            )
        })
        .collect();
    let (outbox, _) = crate::upload::linked_outbox(&server, &first).await;
    let informed = Arc::new(AtomicBool::new(false));
    let mut cfg = fast_config();
    let flag = informed.clone();
    cfg.devices = Arc::new(move |id: &str| {
        let mut i = DeviceInfo::from_id(id);
        i.bluetooth_address = Some(id.into());
        i.specializations = vec![Mdc::DEV_SPEC_PROFILE_PULS_OXIM];
        i.time_sync = Some(Mdc::TIME_SYNC_NONE);
        if flag.load(Ordering::SeqCst) {
            i.system_id = Some("FE-ED-AB-EE-DE-AD-77-C3".into());
            i.manufacturer = Some("Acme".into());
            i.model = Some("OX-1".into());
            i.serial = Some("SN-1".into());
            i.firmware_revision = Some("2.1".into());
        }
        i
    });
    let mut s = Syncer::new(server.client(), cfg, Arc::new(SystemClock));
    crate::upload::drain(&mut s, &outbox).await;
    informed.store(true, Ordering::SeqCst);
    outbox.push(reading(
        addr,
        Mdc::PULS_OXIM_SAT_O2,
        Value::Number(96.0),
        "%",
        t0() + chrono::Duration::seconds(10),
    ));
    crate::upload::drain(&mut s, &outbox).await;

    let client = server.client();
    let found = client
        .search("Device", &[("identifier", &format!("urn:vigil:device|{addr}"))])
        .await
        .unwrap();
    let entries = found["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{found}");
    let d = &entries[0]["resource"];
    assert_eq!(d["manufacturer"], "Acme", "{d}");
    assert_eq!(d["modelNumber"], "OX-1");
    assert_eq!(d["serialNumber"], "SN-1");
    assert_eq!(
        profiles(d),
        ["http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice"]
    );
    // Both Observations reference that one Device.
    let obs = client.search("Observation", &[("_count", "50")]).await.unwrap();
    let id = format!("Device/{}", d["id"].as_str().unwrap());
    for e in obs["entry"].as_array().unwrap() {
        assert_eq!(e["resource"]["device"]["reference"], id.as_str());
    }
    server.stop().await;
}

/// Height and BMI are vital signs (R4 vital-signs table: 8302-2 Body height, profile
/// `bodyheight`, units cm or [in_i]; 39156-5 Body mass index, profile `bmi`, kg/m2): a height
/// in m goes out in cm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn height_and_bmi_carry_loinc_and_their_vital_signs_profiles() {
    use vigil_model::{Mdc, Value};
    let server = TestServer::start().await;
    let h = mapping::observation(
        &reading("scale", Mdc::LEN_BODY_ACTUAL, Value::Number(1.755), "m", t0()),
        &CTX,
    );
    assert!(h["code"]["coding"].to_string().contains("\"8302-2\""), "{h}");
    assert!(
        profiles(&h).contains(&"http://hl7.org/fhir/StructureDefinition/bodyheight".to_string()),
        "{h}"
    );
    assert_eq!(h["valueQuantity"]["value"], 175.5);
    assert_eq!(h["valueQuantity"]["code"], "cm");
    let inches = mapping::observation(
        &reading("scale", Mdc::LEN_BODY_ACTUAL, Value::Number(69.0), "[in_i]", t0()),
        &CTX,
    );
    assert_eq!(inches["valueQuantity"]["code"], "[in_i]");
    let bmi = mapping::observation(
        &reading(
            "scale",
            Mdc::RATIO_MASS_BODY_LEN_SQ,
            Value::Number(23.4),
            "kg/m2",
            t0(),
        ),
        &CTX,
    );
    assert!(bmi["code"]["coding"].to_string().contains("\"39156-5\""), "{bmi}");
    assert!(
        profiles(&bmi).contains(&"http://hl7.org/fhir/StructureDefinition/bmi".to_string()),
        "{bmi}"
    );
    for o in [&h, &inches, &bmi] {
        assert!(o["category"].to_string().contains("vital-signs"), "{o}");
        let (status, oo) = server.validate(o).await;
        assert_eq!(status, 200, "{o}\n{oo}");
    }
    server.stop().await;
}

/// Issue 12, item 3: the device's measurement status reaches the record as the PHD IG STU 2
/// maps it (Base Observation notes, "Measurement Status"), and every shape passes the test
/// server's PHD and `bp` rules.
#[tokio::test]
async fn measurement_status_maps_to_data_absent_reason_and_interpretation() {
    use vigil_model::{Mdc, Quality, Status, Value};
    let server = TestServer::start().await;
    let with = |mut r: vigil_model::Reading, q: Quality, flags: &[&str]| {
        r.status = Status {
            quality: q,
            flags: flags.iter().map(|f| f.to_string()).collect(),
        };
        r
    };
    let spo2 = || reading("d", Mdc::PULS_OXIM_SAT_O2, Value::Number(97.0), "%", t0());

    // Invalid: no number reaches the record, whatever the device sent.
    let o = mapping::observation(&with(spo2(), Quality::Invalid, &["sensor disconnected"]), &CTX);
    assert!(o.get("valueQuantity").is_none(), "{o}");
    assert_eq!(o["dataAbsentReason"]["coding"][0]["code"], "error");
    assert_eq!(o["status"], "final");
    assert_eq!(o["note"][0]["text"], "Device status: sensor disconnected");
    assert_eq!(server.validate(&o).await.0, 200, "{o}");
    // Not available: not-performed.
    let o = mapping::observation(&with(spo2(), Quality::Invalid, &["measurement unavailable"]), &CTX);
    assert_eq!(o["dataAbsentReason"]["coding"][0]["code"], "not-performed");
    assert_eq!(server.validate(&o).await.0, 200, "{o}");
    // Questionable: the value, with the interpretation.
    let o = mapping::observation(&with(spo2(), Quality::Questionable, &["low perfusion detected"]), &CTX);
    assert_eq!(o["valueQuantity"]["value"], 97.0);
    assert_eq!(o["interpretation"][0]["coding"][0]["system"], mapping::MEASUREMENT_STATUS_SYSTEM);
    assert_eq!(o["interpretation"][0]["coding"][0]["code"], "questionable");
    assert_eq!(server.validate(&o).await.0, 200, "{o}");
    // An early estimate: preliminary.
    let o = mapping::observation(&with(spo2(), Quality::Questionable, &["early estimated data"]), &CTX);
    assert_eq!(o["status"], "preliminary");
    assert_eq!(o["interpretation"][0]["coding"][0]["code"], "early-indication");
    assert_eq!(server.validate(&o).await.0, 200, "{o}");
    // No status bits: nothing added.
    let o = mapping::observation(&spo2(), &CTX);
    assert!(o.get("interpretation").is_none() && o.get("note").is_none() && o.get("dataAbsentReason").is_none());

    // A cuff reading taken with a loose cuff: questionable panel; a failed one: every
    // component without a value.
    let flag_all = |rs: Vec<vigil_model::Reading>, q: Quality, f: &[&str]| -> Vec<vigil_model::Reading> {
        rs.into_iter().map(|r| with(r, q, f)).collect()
    };
    let rs = flag_all(bp("cuff", t0(), 120.0, 80.0, 93.0), Quality::Questionable, &["cuff too loose"]);
    let p = mapping::blood_pressure_panel(&BpParts { systolic: &rs[0], diastolic: &rs[1], mean: Some(&rs[2]) }, &CTX);
    assert_eq!(p["interpretation"][0]["coding"][0]["code"], "questionable");
    assert_eq!(p["component"][0]["valueQuantity"]["value"], 120.0);
    assert_eq!(server.validate(&p).await.0, 200, "{p}");
    let rs = flag_all(bp("cuff", t0(), 120.0, 80.0, 93.0), Quality::Invalid, &["improper measurement position"]);
    let p = mapping::blood_pressure_panel(&BpParts { systolic: &rs[0], diastolic: &rs[1], mean: Some(&rs[2]) }, &CTX);
    for c in p["component"].as_array().unwrap() {
        assert!(c.get("valueQuantity").is_none(), "{p}");
        assert_eq!(c["dataAbsentReason"]["coding"][0]["code"], "error");
    }
    assert_eq!(server.validate(&p).await.0, 200, "{p}");
    server.stop().await;
}
