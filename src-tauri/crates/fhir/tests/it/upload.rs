//! Upload against the real Medplum server: exactly once, panels, special values, validation,
//! patient links.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;
use vigil_fhir::mapping::{self, BpParts, DeviceInfo, ObservationContext};
use vigil_fhir::{MemoryOutbox, Outbox, Syncer};
use vigil_model::{AdmissionId, Mdc, Special, SystemClock, Value};

use crate::support::*;

pub async fn linked_outbox(server: &TestServer, readings: &[vigil_model::Reading]) -> (MemoryOutbox, String) {
    let patient = server
        .create_patient("urn:oid:1.2.3.4", "MRN-1", "Testpatient")
        .await;
    let outbox = MemoryOutbox::new();
    outbox.link(AdmissionId(ADMISSION.into()), patient.clone());
    for r in readings {
        outbox.push(r.clone());
    }
    (outbox, patient)
}

pub fn syncer(server: &TestServer) -> Syncer<SystemClock> {
    Syncer::new(server.client(), fast_config(), Arc::new(SystemClock))
}

pub async fn drain(s: &mut Syncer<SystemClock>, outbox: &MemoryOutbox) -> vigil_fhir::PassReport {
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    let guard = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        c.cancel();
    });
    let r = s.drain(outbox, cancel).await.expect("drained within 60 s");
    guard.abort();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_readings_become_exactly_n_observations_and_a_repeat_adds_none() {
    let server = TestServer::start().await;
    let n = 1000;
    let readings = mixed_readings(n);
    let (outbox, _) = linked_outbox(&server, &readings).await;
    let mut s = syncer(&server);
    let t = Instant::now();
    let report = drain(&mut s, &outbox).await;
    let took = t.elapsed();
    eprintln!(
        "uploaded {n} Observations in {} bundles in {:.2} s: {:.0} Observations/s",
        report.bundles,
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    assert_eq!(report.acked, n as u64);
    assert_eq!(outbox.pending_len(), 0);
    assert_eq!(server.observations().await, n as u64);
    let client = server.client();
    assert_eq!(
        client
            .count(
                "Observation",
                &[(
                    "identifier",
                    &format!(
                        "urn:vigil:observation|{}",
                        mapping::observation_identifier(&readings[7])
                    )
                )]
            )
            .await
            .unwrap(),
        1
    );
    // Three sensor Devices and the gateway, each once.
    assert_eq!(server.stats().await["resources"]["Device"], 4);
    let st = s.status().borrow().clone();
    assert!(st.healthy);
    assert_eq!((st.pending, st.dead_letters, st.uploaded), (0, 0, n as u64));
    assert_eq!(st.last_error, None);

    // The same readings again (e.g. the outbox lost its acks): nothing new on the server,
    // and a fresh syncer finds the Devices too.
    let again = MemoryOutbox::new();
    again.link(AdmissionId(ADMISSION.into()), "Patient/whatever");
    for r in &readings {
        again.push(r.clone());
    }
    let mut s2 = syncer(&server);
    let report = drain(&mut s2, &again).await;
    assert_eq!(report.acked, n as u64);
    assert_eq!(server.observations().await, n as u64);
    assert_eq!(server.stats().await["resources"]["Device"], 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_the_same_batch_creates_nothing_new() {
    let server = TestServer::start().await;
    let client = server.client();
    let ctx = ObservationContext {
        subject: "Patient/p",
        device: "Device/d",
        gateway: "Device/g",
    };
    let resources: Vec<Json> = mixed_readings(30)
        .iter()
        .map(|r| mapping::observation(r, &ctx))
        .collect();
    let first = client.batch(&resources).await.unwrap();
    assert!(first
        .iter()
        .all(|r| matches!(r, vigil_fhir::bundle::EntryResult::Stored { created: true, .. })));
    let second = client.batch(&resources).await.unwrap();
    assert!(second
        .iter()
        .all(|r| matches!(r, vigil_fhir::bundle::EntryResult::Stored { created: false, .. })));
    assert_eq!(server.observations().await, 30);
    assert_eq!(client.count("Observation", &[]).await.unwrap(), 30);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blood_pressure_is_one_panel_with_three_components_on_the_server() {
    let server = TestServer::start().await;
    let mut readings = bp("cuff-1", t0(), 120.0, 80.0, 93.3);
    readings.push(reading(
        "cuff-1",
        Mdc::PULS_RATE_NON_INV,
        Value::Number(64.0),
        "/min",
        t0(),
    ));
    let (outbox, patient) = linked_outbox(&server, &readings).await;
    let mut s = syncer(&server);
    let report = drain(&mut s, &outbox).await;
    assert_eq!(report.acked, 4);
    assert_eq!(server.observations().await, 2, "one panel + one pulse rate");
    let client = server.client();
    let b = client
        .search("Observation", &[("code", "http://loinc.org|85354-9")])
        .await
        .unwrap();
    let entries = b["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let panel = &entries[0]["resource"];
    assert_eq!(panel["component"].as_array().unwrap().len(), 3);
    assert_eq!(panel["subject"]["reference"], patient.as_str());
    assert!(panel["device"]["reference"]
        .as_str()
        .unwrap()
        .starts_with("Device/"));
    let device = client
        .read(panel["device"]["reference"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(device["identifier"][0]["value"], "cuff-1");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_value_is_stored_with_data_absent_reason_and_no_value() {
    let server = TestServer::start().await;
    let readings = vec![
        reading(
            "oxi-1",
            Mdc::PULS_OXIM_SAT_O2,
            Value::Special(Special::NaN),
            "%",
            t0(),
        ),
        reading(
            "oxi-1",
            Mdc::PULS_OXIM_SAT_O2,
            Value::Special(Special::NRes),
            "%",
            t0() + chrono::Duration::seconds(1),
        ),
    ];
    let (outbox, _) = linked_outbox(&server, &readings).await;
    let report = drain(&mut syncer(&server), &outbox).await;
    assert_eq!(report.acked, 2);
    let client = server.client();
    let id = mapping::observation_identifier(&readings[0]);
    let b = client
        .search(
            "Observation",
            &[("identifier", &format!("urn:vigil:observation|{id}"))],
        )
        .await
        .unwrap();
    let o = &b["entry"][0]["resource"];
    assert!(o.get("valueQuantity").is_none());
    assert_eq!(o["dataAbsentReason"]["coding"][0]["code"], "not-a-number");
    assert_eq!(server.observations().await, 2);
    server.stop().await;
}

/// Everything Vigil sends passes Medplum's validator, including the vital-signs profile
/// each Observation claims (checked explicitly, besides the implicit check on create).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_resource_vigil_sends_passes_medplum_validation() {
    let server = TestServer::start().await;
    let ctx = ObservationContext {
        subject: "Patient/p",
        device: "Device/d",
        gateway: "Device/g",
    };
    let mut resources = Vec::new();
    for (code, v, unit) in [
        (Mdc::ECG_HEART_RATE, 72.0, "/min"),
        (Mdc::PULS_OXIM_PULS_RATE, 70.0, "/min"),
        (Mdc::PULS_RATE_NON_INV, 66.0, "/min"),
        (Mdc::PULS_OXIM_SAT_O2, 97.0, "%"),
        (Mdc::PULS_OXIM_PERF_REL, 3.5, "%"),
        (Mdc::TEMP_BODY, 36.6, "Cel"),
        (Mdc::TEMP_BODY, 98.1, "[degF]"),
        (Mdc::RESP_RATE, 16.0, "/min"),
        (Mdc::MASS_BODY_ACTUAL, 71.5, "kg"),
        (Mdc::CONC_GLU_CAPILLARY_WHOLEBLOOD, 5.4, "mmol/L"),
        (Mdc::PRESS_CUFF, 140.0, "mm[Hg]"),
    ] {
        resources.push(mapping::observation(
            &reading("d", code, Value::Number(v), unit, t0()),
            &ctx,
        ));
    }
    for s in [
        Special::NaN,
        Special::NRes,
        Special::PosInfinity,
        Special::NegInfinity,
        Special::Reserved,
    ] {
        resources.push(mapping::observation(
            &reading("d", Mdc::PULS_OXIM_SAT_O2, Value::Special(s), "%", t0()),
            &ctx,
        ));
    }
    let mut sim = reading("sim", Mdc::ECG_HEART_RATE, Value::Number(72.0), "/min", t0());
    sim.source = vigil_model::Source::Simulated;
    resources.push(mapping::observation(&sim, &ctx));
    let rs = bp("cuff", t0(), 120.0, 80.0, 93.0);
    resources.push(mapping::blood_pressure_panel(
        &BpParts {
            systolic: &rs[0],
            diastolic: &rs[1],
            mean: Some(&rs[2]),
        },
        &ctx,
    ));
    let mut rs2 = rs.clone();
    rs2[0].value = Value::Special(Special::NRes);
    resources.push(mapping::blood_pressure_panel(
        &BpParts {
            systolic: &rs2[0],
            diastolic: &rs2[1],
            mean: None,
        },
        &ctx,
    ));
    resources.push(mapping::device(&DeviceInfo {
        id: "AA:BB:CC:DD:EE:FF".into(),
        name: Some("Pulse oximeter".into()),
        system_id: Some("12-34-56-FF-FE-9A-BC-DE".into()),
        bluetooth_address: Some("AA:BB:CC:DD:EE:FF".into()),
        manufacturer: Some("Acme".into()),
        model: Some("OX-1".into()),
        serial: Some("SN1".into()),
        hardware_revision: Some("1".into()),
        firmware_revision: Some("2".into()),
        software_revision: Some("3".into()),
        specializations: vec![Mdc::DEV_SPEC_PROFILE_PULS_OXIM],
        time_sync: Some(Mdc::TIME_SYNC_NONE),
        simulated: true,
    }));
    // A device-clock reading and a measurement on its timeline.
    let clock = with_device_time(
        reading("d", Mdc::ATTR_TIME_ABS, Value::Number(5400.0), "s", t0()),
        (t0() + chrono::Duration::seconds(5400)).naive_utc(),
    );
    resources.push(mapping::coincident_time_stamp(&clock, &ctx));
    let mut sim_clock = clock.clone();
    sim_clock.source = vigil_model::Source::Simulated;
    resources.push(mapping::coincident_time_stamp(&sim_clock, &ctx));
    let mut glucose = mapping::observation(
        &with_device_time(
            reading(
                "d",
                Mdc::CONC_GLU_CAPILLARY_PLASMA,
                Value::Number(5.4),
                "mmol/L",
                t0(),
            ),
            (t0() + chrono::Duration::seconds(5400)).naive_utc(),
        ),
        &ctx,
    );
    mapping::add_coincident_time_stamp_reference(&mut glucose, "Observation/cts");
    resources.push(glucose);
    resources.push(mapping::device(&DeviceInfo::from_id("sim-hr-1")));
    resources.push(mapping::gateway_device(&gateway()));
    for r in &resources {
        let (status, oo) = server.validate(r).await;
        assert_eq!(status, 200, "{}\n{oo}", r);
    }
    // The validator does bite: the heartrate profile needs a subject.
    let mut bad = resources[0].clone();
    bad.as_object_mut().unwrap().remove("subject");
    let (status, oo) = server.validate(&bad).await;
    assert_eq!(status, 400, "{oo}");
    // And all of them are created for real.
    let results = server.client().batch(&resources).await.unwrap();
    assert!(results.iter().all(|r| r.is_stored()), "{results:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_entry_is_dead_lettered_with_the_outcome_and_the_rest_upload() {
    let server = TestServer::start().await;
    let mut readings = mixed_readings(20);
    // A unit that is not a valid FHIR code (surrounding spaces): Medplum's validator refuses.
    readings[5].unit = " bpm ".into();
    let (outbox, _) = linked_outbox(&server, &readings).await;
    let mut s = syncer(&server);
    let report = drain(&mut s, &outbox).await;
    assert_eq!((report.acked, report.dead_lettered), (19, 1));
    assert_eq!(server.observations().await, 19);
    let dead = outbox.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].seq, 6);
    assert!(dead[0].reason.starts_with("HTTP 400"), "{}", dead[0].reason);
    assert!(
        dead[0].reason.contains("Invalid code format"),
        "{}",
        dead[0].reason
    );
    let st = s.status().borrow().clone();
    assert_eq!((st.dead_letters, st.pending), (1, 0));
    assert!(st.healthy);

    // A server-side rule refusing one kind of Observation (fault switch): same handling.
    server
        .faults(serde_json::json!({ "rejectCodes": ["150364"] }))
        .await;
    let more: Vec<_> = mixed_readings(9)
        .into_iter()
        .map(|mut r| {
            r.received += chrono::Duration::hours(1);
            r
        })
        .collect();
    for r in &more {
        outbox.push(r.clone());
    }
    let report = drain(&mut s, &outbox).await;
    assert_eq!((report.acked, report.dead_lettered), (6, 3));
    assert!(outbox.dead_letters()[1].reason.contains("rejectCodes"));
    assert_eq!(server.observations().await, 25);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_wait_for_a_patient_link_then_upload() {
    let server = TestServer::start().await;
    let patient = server.create_patient("urn:oid:1.2.3.4", "MRN-9", "Later").await;
    let outbox = MemoryOutbox::new();
    let mut unlinked = mixed_readings(6);
    for r in unlinked.iter_mut().take(3) {
        r.admission = Some(AdmissionId("adm-2".into()));
    }
    outbox.link(AdmissionId(ADMISSION.into()), patient.clone());
    for r in &unlinked {
        outbox.push(r.clone());
    }
    let mut s = syncer(&server);
    let report = drain(&mut s, &outbox).await;
    assert_eq!((report.acked, report.waiting), (3, 3));
    let st = s.status().borrow().clone();
    assert_eq!((st.pending, st.waiting_for_patient), (3, 3));
    assert!(st.oldest_pending_age.is_some());
    assert_eq!(server.observations().await, 3);
    // The nurse links bed 1's second admission: the waiting readings go, with that subject.
    outbox.link(AdmissionId("adm-2".into()), patient.clone());
    let report = drain(&mut s, &outbox).await;
    assert_eq!((report.acked, report.waiting), (3, 0));
    assert_eq!(server.observations().await, 6);
    assert_eq!(outbox.stats().await.unwrap().pending, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_never_split_a_blood_pressure_measurement() {
    let server = TestServer::start().await;
    let mut readings = Vec::new();
    for i in 0..10 {
        let at = t0() + chrono::Duration::minutes(i);
        readings.push(reading(
            "hr",
            Mdc::ECG_HEART_RATE,
            Value::Number(70.0),
            "/min",
            at,
        ));
        readings.extend(bp("cuff", at, 120.0 + i as f64, 80.0, 93.0));
    }
    let (outbox, _) = linked_outbox(&server, &readings).await;
    let mut cfg = fast_config();
    cfg.batch_size = 6; // 4 readings per minute: windows end mid-measurement
    let mut s = Syncer::new(server.client(), cfg, Arc::new(SystemClock));
    let report = drain(&mut s, &outbox).await;
    assert_eq!(report.acked, 40);
    assert_eq!(server.observations().await, 20, "10 heart rates + 10 panels");
    let b = server
        .client()
        .search(
            "Observation",
            &[("code", "http://loinc.org|85354-9"), ("_count", "100")],
        )
        .await
        .unwrap();
    let panels = b["entry"].as_array().unwrap();
    assert_eq!(panels.len(), 10);
    assert!(panels
        .iter()
        .all(|p| p["resource"]["component"].as_array().unwrap().len() == 3));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_search_by_mrn() {
    let server = TestServer::start().await;
    let sys = "urn:oid:2.16.840.1.113883.19.5";
    let a = server.create_patient(sys, "MRN-100", "Alpha").await;
    server.create_patient(sys, "MRN-200", "Beta").await;
    server
        .create_patient("urn:oid:9.9.9", "MRN-100", "Other-system")
        .await;
    let client = server.client();
    let found = client.search_patient_by_mrn(sys, "MRN-100").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].reference, a);
    assert_eq!(found[0].mrn.as_deref(), Some("MRN-100"));
    assert_eq!(found[0].family.as_deref(), Some("Alpha"));
    assert_eq!(found[0].given, ["Test"]);
    assert_eq!(found[0].birth_date.as_deref(), Some("1950-02-03"));
    assert!(client
        .search_patient_by_mrn(sys, "MRN-999")
        .await
        .unwrap()
        .is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_loop_uploads_as_readings_arrive_and_stops_on_cancel() {
    let server = TestServer::start().await;
    let (outbox, _) = linked_outbox(&server, &[]).await;
    let outbox = Arc::new(outbox);
    let mut s = syncer(&server);
    let notify = s.notifier();
    let mut status = s.status();
    let cancel = CancellationToken::new();
    let task = {
        let (outbox, cancel) = (outbox.clone(), cancel.clone());
        tokio::spawn(async move { s.run(outbox.as_ref(), cancel).await })
    };
    let readings = mixed_readings(60);
    for chunk in readings.chunks(20) {
        for r in chunk {
            outbox.push(r.clone());
        }
        notify.notify_one();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::timeout(Duration::from_secs(30), status.wait_for(|s| s.uploaded == 60))
        .await
        .expect("uploaded within 30 s")
        .unwrap();
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("run returns on cancel")
        .unwrap();
    assert_eq!(server.observations().await, 60);
    server.stop().await;
}

/// A device-clock reading: the meter's clock read at `at` (gateway) showed `at + offset_s`.
fn clock_reading(device: &str, at: chrono::DateTime<chrono::Utc>, offset_s: i64) -> vigil_model::Reading {
    with_device_time(
        reading(
            device,
            Mdc::ATTR_TIME_ABS,
            Value::Number(offset_s as f64),
            "s",
            at,
        ),
        (at + chrono::Duration::seconds(offset_s)).naive_utc(),
    )
}

/// A stored glucose record measured at device time `dt`, placed on the gateway clock at `at`.
fn record(
    device: &str,
    dt: chrono::NaiveDateTime,
    at: chrono::DateTime<chrono::Utc>,
    v: f64,
) -> vigil_model::Reading {
    with_device_time(
        reading(
            device,
            Mdc::CONC_GLU_CAPILLARY_PLASMA,
            Value::Number(v),
            "mmol/L",
            at,
        ),
        dt,
    )
}

fn extension_refs(o: &Json) -> Vec<String> {
    o["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["url"] == mapping::COINCIDENT_TIME_STAMP_EXTENSION)
        .map(|e| e["valueReference"]["reference"].as_str().unwrap().to_string())
        .collect()
}

async fn by_identifier(server: &TestServer, r: &vigil_model::Reading) -> Json {
    let id = mapping::observation_identifier(r);
    let b = server
        .client()
        .search(
            "Observation",
            &[("identifier", &format!("urn:vigil:observation|{id}"))],
        )
        .await
        .unwrap();
    assert_eq!(b["entry"].as_array().map(Vec::len), Some(1), "{b}");
    b["entry"][0]["resource"].clone()
}

/// The PHD IG Coincident Time Stamp: a read of the meter's clock becomes one Observation
/// (device timeline → gateway timeline), and the records placed with its offset reference it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_reading_is_one_coincident_time_stamp_the_records_placed_with_it_reference() {
    let server = TestServer::start().await;
    const AHEAD_S: i64 = 5400;
    let read_at = t0() + chrono::Duration::hours(3);
    let clock = clock_reading("meter-1", read_at, AHEAD_S);
    let mut readings = vec![clock.clone()];
    // Stored records measured 2 h and 1 h before the read, on the meter's clock; placed
    // on the gateway clock with the offset.
    for (h, v) in [(2, 5.4), (1, 6.1)] {
        let at = read_at - chrono::Duration::hours(h);
        readings.push(record(
            "meter-1",
            (at + chrono::Duration::seconds(AHEAD_S)).naive_utc(),
            at,
            v,
        ));
    }
    // A record not placed with it (kept at its receipt time: the offset was unknown).
    let off_timeline = record(
        "meter-1",
        (t0() - chrono::Duration::hours(5)).naive_utc(),
        read_at,
        7.0,
    );
    readings.push(off_timeline.clone());
    // A value without a device time.
    let untimed = reading(
        "meter-1",
        Mdc::CONC_GLU_CAPILLARY_PLASMA,
        Value::Number(8.0),
        "mmol/L",
        read_at,
    );
    readings.push(untimed.clone());
    // Another device's value consistent with the offset: not this clock's timeline.
    let other = record(
        "meter-2",
        (read_at + chrono::Duration::seconds(AHEAD_S)).naive_utc(),
        read_at,
        9.0,
    );
    readings.push(other.clone());

    let (outbox, _) = linked_outbox(&server, &readings).await;
    let report = drain(&mut syncer(&server), &outbox).await;
    assert_eq!(report.acked, readings.len() as u64);
    assert_eq!(outbox.pending_len(), 0);
    assert_eq!(server.observations().await, readings.len() as u64);

    let client = server.client();
    let code = format!("urn:iso:std:iso:11073:10101|{}", Mdc::ATTR_TIME_ABS.0);
    assert_eq!(client.count("Observation", &[("code", &code)]).await.unwrap(), 1);
    let cts = by_identifier(&server, &clock).await;
    let cts_ref = format!("Observation/{}", cts["id"].as_str().unwrap());
    assert_eq!(cts["status"], "final");
    assert_eq!(cts["effectiveDateTime"], "2025-03-04T13:00:00.000Z");
    // The meter's clock as read, with the gateway's UTC offset (the tests run in UTC).
    let value = chrono::DateTime::parse_from_rfc3339(cts["valueDateTime"].as_str().unwrap()).unwrap();
    assert_eq!(value.naive_local(), clock.device_time.unwrap());
    let sensor = cts["subject"]["reference"].as_str().unwrap();
    let device = client.read(sensor).await.unwrap();
    assert_eq!(device["identifier"][0]["value"], "meter-1");
    let gw = client
        .read(cts["device"]["reference"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(gw["identifier"][0]["value"], gateway().id);
    assert!(cts.get("extension").is_none(), "no gateway extension on it");
    let (status, oo) = server.validate(&cts).await;
    assert_eq!(status, 200, "{oo}");

    for r in &readings[1..3] {
        let o = by_identifier(&server, r).await;
        assert_eq!(extension_refs(&o), vec![cts_ref.clone()], "{o}");
        assert_eq!(o["subject"]["reference"].as_str().unwrap()[..8], *"Patient/");
        let (status, oo) = server.validate(&o).await;
        assert_eq!(status, 200, "{oo}");
    }
    for r in [&off_timeline, &untimed, &other] {
        let o = by_identifier(&server, r).await;
        assert!(extension_refs(&o).is_empty(), "{o}");
    }

    // The same readings again (a fresh syncer, as after a restart): nothing new.
    let again = MemoryOutbox::new();
    again.link(AdmissionId(ADMISSION.into()), "Patient/whatever");
    for r in &readings {
        again.push(r.clone());
    }
    let report = drain(&mut syncer(&server), &again).await;
    assert_eq!(report.acked, readings.len() as u64);
    assert_eq!(server.observations().await, readings.len() as u64);
    assert_eq!(client.count("Observation", &[("code", &code)]).await.unwrap(), 1);
    server.stop().await;
}

/// After a syncer restart the device's clock is unknown until its next clock reading:
/// measurements go without the reference, then get the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_clock_reading_since_the_restart_measurements_have_no_reference() {
    let server = TestServer::start().await;
    let at = t0();
    let before = record(
        "meter-1",
        (at + chrono::Duration::seconds(60)).naive_utc(),
        at,
        5.0,
    );
    let (outbox, _) = linked_outbox(&server, std::slice::from_ref(&before)).await;
    let mut s = syncer(&server);
    drain(&mut s, &outbox).await;
    assert!(extension_refs(&by_identifier(&server, &before).await).is_empty());
    // The meter's clock is read: later values on its timeline reference it, even in a
    // later pass (the syncer remembers it).
    let later = at + chrono::Duration::minutes(10);
    let clock = clock_reading("meter-1", later, 60);
    outbox.push(clock.clone());
    drain(&mut s, &outbox).await;
    let live = record(
        "meter-1",
        (later + chrono::Duration::seconds(61)).naive_utc(),
        later + chrono::Duration::seconds(1),
        5.5,
    );
    outbox.push(live.clone());
    drain(&mut s, &outbox).await;
    let cts = by_identifier(&server, &clock).await;
    assert_eq!(
        extension_refs(&by_identifier(&server, &live).await),
        vec![format!("Observation/{}", cts["id"].as_str().unwrap())]
    );
    server.stop().await;
}

/// Issue 12, item 6: two Devices with the same identifier on the server (someone else
/// created a copy) make a conditional update answer 412. Uploads never stall on it: the
/// syncer finds them by identifier, uses the lowest id every time, and says so in its status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_with_one_identifier_never_stop_uploads() {
    let server = TestServer::start().await;
    let client = server.client();
    let copy = serde_json::json!({
        "resourceType": "Device",
        "identifier": [{ "system": "urn:vigil:device", "value": "oxi-1" }],
        "status": "active"
    });
    let mut ids = Vec::new();
    for _ in 0..2 {
        let created = client.create(&copy).await.unwrap();
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    ids.sort();
    let readings: Vec<_> = (0..30)
        .map(|i| {
            reading(
                "oxi-1",
                Mdc::PULS_OXIM_SAT_O2,
                Value::Number(95.0),
                "%",
                t0() + chrono::Duration::seconds(i),
            )
        })
        .collect();
    let (outbox, _) = linked_outbox(&server, &readings).await;
    let mut s = syncer(&server);
    let report = drain(&mut s, &outbox).await;
    assert_eq!(report.acked, 30, "uploads stalled on the duplicate Devices: {report:?} {:?}", s.status().borrow());
    assert_eq!(server.observations().await, 30);
    let st = s.status().borrow().clone();
    assert_eq!(st.duplicate_devices, 1, "{st:?}");
    assert!(st.healthy, "{st:?}");
    // Every Observation names the same (lowest-id) Device, now updated with Vigil's content.
    let o = by_identifier(&server, &readings[5]).await;
    assert_eq!(o["device"]["reference"], format!("Device/{}", ids[0]));
    let d = client.read(&format!("Device/{}", ids[0])).await.unwrap();
    assert!(d.get("deviceName").is_some() || d.get("type").is_some(), "not updated: {d}");
    assert_eq!(server.stats().await["resources"]["Device"], 3, "no third copy (plus the gateway)");
    server.stop().await;
}
