//! FHIR upload end to end: the real core (simulated devices → encrypted store
//! → durable outbox → syncer) against a real FHIR server (Medplum, loopback),
//! including a SIGKILL in the middle of an upload.

#[allow(dead_code)]
#[path = "../../../fhir/tests/it/support.rs"]
mod support;

#[path = "../../../fhir/tests/it/mock.rs"]
mod mock;

mod delivery;
mod audit_events;

use chrono::Utc;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::TestServer;
use vigil_core::site::FhirSite;
use vigil_core::{AdmitRequest, Config, DeviceMode, SimSettings, Vigil};
use vigil_devices::sim::Scenario;
use vigil_model::{Mdc, ScaledClock};
use vigil_store::KeySource;

const MRN_SYSTEM: &str = "urn:oid:1.2.36.146.595.217.0.1";
const PASS: &str = "fhir-test-passphrase";

fn config(dir: &Path, base: &str) -> Config {
    config_with(dir, base, true)
}

fn config_with(dir: &Path, base: &str, allow_simulated: bool) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        key: KeySource::passphrase(PASS, "test"),
        clock: Arc::new(ScaledClock::new(Utc::now(), 20.0)),
        sim: SimSettings {
            scenario: Scenario::Stable,
            beds: 2,
            seed: 5,
        },
        retention: Default::default(),
        low_disk_bytes: 0,
        site_files: Vec::new(),
        alarm_preset: Default::default(),
        devices: DeviceMode::Simulated,
        fhir: Some(FhirSite {
            base_url: base.to_string(),
            mrn_system: MRN_SYSTEM.into(),
            bearer_token_env: None,
            smart: None,
            ca_bundle: None,
            site_ca_only: false,
            gateway_id: "test-gateway".into(),
            allow_simulated,
            outage_alarm_s: 900,
            dead_letter_alarm: 1,
        }),
        ble: Default::default(),
    }
}

fn admit(bed: &str, mrn: &str) -> AdmitRequest {
    AdmitRequest {
        bed: bed.into(),
        display_name: "Test Person".into(),
        mrn: mrn.into(),
        date_of_birth: "1961-02-03".into(),
        category: "adult".into(),
    }
}

/// Observations the server should hold for what the store holds: one per
/// reading of the admission, except that the three parts of a blood
/// pressure measurement make one panel.
async fn expected_observations(dir: &Path) -> u64 {
    let store = vigil_store::Store::open(&dir.join("vigil.db"), &KeySource::passphrase(PASS, "test"))
        .await
        .unwrap();
    let all = store
        .query_range(
            Some("bed-1"),
            Utc::now() - chrono::Duration::days(1),
            Utc::now() + chrono::Duration::days(30),
        )
        .await
        .unwrap();
    store.close().await;
    let admitted: Vec<_> = all.into_iter().filter(|r| r.admission.is_some()).collect();
    let bp = [
        Mdc::PRESS_BLD_NONINV_SYS,
        Mdc::PRESS_BLD_NONINV_DIA,
        Mdc::PRESS_BLD_NONINV_MEAN,
    ];
    let panels: BTreeSet<_> = admitted
        .iter()
        .filter(|r| bp.contains(&r.code))
        .map(|r| (r.device.clone(), r.received))
        .collect();
    (admitted.iter().filter(|r| !bp.contains(&r.code)).count() + panels.len()) as u64
}

/// Waits until the outbox is empty and stays so for over a second: readings received before
/// a discharge may still sit in the writer's backlog (it commits every 0.5 s, more slowly on a
/// loaded machine) and reach the outbox just after a first empty look.
async fn wait_drained(v: &Vigil) {
    let mut empty_since: Option<std::time::Instant> = None;
    for _ in 0..600 {
        let drained = v.sync_status().await.is_some_and(|s| s.pending == 0 && s.healthy);
        match (drained, empty_since) {
            (false, _) => empty_since = None,
            (true, None) => empty_since = Some(std::time::Instant::now()),
            (true, Some(t)) if t.elapsed() > Duration::from_millis(1500) => return,
            (true, Some(_)) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the outbox did not drain: {:?}", v.sync_status().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_upload_exactly_once_after_admission_by_mrn() {
    let server = TestServer::start().await;
    let patient = server.create_patient(MRN_SYSTEM, "MRN-77001", "Example").await;
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), &server.base())).await.unwrap();
    v.admit(admit("bed-1", "MRN-77001")).await.unwrap();
    // Readings taken before the bed is linked wait in the outbox…
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(server.observations().await, 0);
    let st = v.sync_status().await.unwrap();
    assert!(st.pending > 0, "{st:?}");

    // …the nurse finds the patient by MRN and links the bed…
    let found = v.find_patient("MRN-77001").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].reference, patient);
    assert!(v.find_patient("NO-SUCH-MRN").await.unwrap().is_empty());
    v.link_patient("bed-1", &found[0].reference).await.unwrap();
    let snap = v.snapshot();
    let bed = snap.beds.iter().find(|b| b.bed == "bed-1").unwrap();
    assert_eq!(
        bed.admission.as_ref().unwrap().fhir_patient.as_deref(),
        Some(patient.as_str())
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    // …and after discharge nothing more is queued; the backlog drains.
    v.discharge("bed-1").await.unwrap();
    wait_drained(&v).await;
    v.shutdown().await;

    let expected = expected_observations(dir.path()).await;
    if server.observations().await != expected {
        let b = server
            .client()
            .search("Observation", &[("_count", "1000")])
            .await
            .unwrap();
        let mut by: std::collections::BTreeMap<String, (usize, BTreeSet<String>)> = Default::default();
        for e in b["entry"].as_array().unwrap() {
            let r = &e["resource"];
            let code = r["code"]["coding"][0]["code"].as_str().unwrap_or("").to_string();
            let ent = by.entry(code).or_default();
            ent.0 += 1;
            ent.1
                .insert(r["identifier"][0]["value"].as_str().unwrap_or("").to_string());
        }
        eprintln!(
            "server by code (count, distinct identifiers): {:?}",
            by.iter().map(|(k, v)| (k, v.0, v.1.len())).collect::<Vec<_>>()
        );
    }
    assert!(expected > 50, "too few readings: {expected}");
    assert_eq!(
        server.observations().await,
        expected,
        "one Observation per stored reading"
    );

    // The Devices carry what the core knows (PHD IG STU 2 PhdDevice / PhgDevice content):
    // each simulated sensor labelled test data, with its MDC specialization and the
    // time-synchronisation property; the gateway as a PhgDevice under its site identity.
    let devices = server
        .client()
        .search("Device", &[("_count", "100")])
        .await
        .unwrap();
    let mut sensors = 0;
    for e in devices["entry"].as_array().unwrap() {
        let d = &e["resource"];
        let mdc = |v: &serde_json::Value| v["coding"][0]["code"].as_str().unwrap_or("").to_string();
        if mdc(&d["type"]) == "531981" {
            assert_eq!(d["identifier"][0]["value"], "test-gateway", "{d}");
            assert_eq!(
                d["meta"]["profile"][0], "http://hl7.org/fhir/uv/phd/StructureDefinition/PhgDevice",
                "{d}"
            );
            continue;
        }
        sensors += 1;
        assert_eq!(d["meta"]["security"][0]["code"], "HTEST", "{d}");
        assert!(
            mdc(&d["specialization"][0]["systemType"]).starts_with("5283")
                || mdc(&d["specialization"][0]["systemType"]).starts_with("5285"),
            "{d}"
        );
        assert_eq!(mdc(&d["property"][0]["type"]), "68220", "{d}");
        assert_eq!(mdc(&d["property"][0]["valueCode"][0]), "532224", "{d}");
    }
    assert!(sensors > 0);
    server.stop().await;
}

/// Without `fhir.allow_simulated` a server never receives a simulated reading: the outbox
/// drains and nothing is uploaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_readings_are_not_sent_unless_the_site_allows_them() {
    let server = TestServer::start().await;
    server.create_patient(MRN_SYSTEM, "MRN-77003", "Example").await;
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config_with(dir.path(), &server.base(), false))
        .await
        .unwrap();
    v.admit(admit("bed-1", "MRN-77003")).await.unwrap();
    let found = v.find_patient("MRN-77003").await.unwrap();
    v.link_patient("bed-1", &found[0].reference).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    v.discharge("bed-1").await.unwrap();
    wait_drained(&v).await;
    v.shutdown().await;
    assert!(
        expected_observations(dir.path()).await > 0,
        "readings were stored"
    );
    assert_eq!(server.observations().await, 0);
    let stats = server.stats().await;
    assert_eq!(stats["resources"]["Device"], 0, "{stats}");
    server.stop().await;
}

/// Every workstation left at the default `gateway_id` would share one gateway Device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_refuses_the_default_gateway_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), "http://127.0.0.1:9/fhir/R4");
    cfg.fhir.as_mut().unwrap().gateway_id = vigil_core::site::DEFAULT_GATEWAY_ID.into();
    let e = Vigil::start(cfg).await.err().expect("refused");
    assert!(e.to_string().contains("gateway_id"), "{e}");
}

/// The child half of the SIGKILL test: runs the core until killed, or with
/// VIGIL_FHIR_FINAL set, discharges and drains the outbox, then exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    let (Ok(dir), Ok(base)) = (
        std::env::var("VIGIL_FHIR_CHILD_DIR"),
        std::env::var("VIGIL_FHIR_CHILD_BASE"),
    ) else {
        return;
    };
    let v = Vigil::start(config(Path::new(&dir), &base)).await.unwrap();
    if std::env::var("VIGIL_FHIR_FINAL").is_ok() {
        v.discharge("bed-1").await.unwrap();
        wait_drained(&v).await;
        v.shutdown().await;
        return;
    }
    if v.snapshot().beds.iter().all(|b| b.admission.is_none()) {
        v.admit(admit("bed-1", "MRN-77002")).await.unwrap();
        let found = v.find_patient("MRN-77002").await.unwrap();
        v.link_patient("bed-1", &found[0].reference).await.unwrap();
    }
    println!("running");
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_upload_then_restart_still_exactly_once() {
    if std::env::var("VIGIL_FHIR_CHILD_DIR").is_ok() {
        return;
    }
    let server = TestServer::start().await;
    server.create_patient(MRN_SYSTEM, "MRN-77002", "Example").await;
    // A slow server: every upload is in flight when the kill comes.
    server.faults(serde_json::json!({"delayMs": 400})).await;
    let dir = tempfile::tempdir().unwrap();
    let (dir_s, base) = (dir.path().to_path_buf(), server.base());
    let run = move |fin: bool| {
        let mut c = std::process::Command::new(std::env::current_exe().unwrap());
        c.args(["--exact", "child", "--nocapture"])
            .env("VIGIL_FHIR_CHILD_DIR", &dir_s)
            .env("VIGIL_FHIR_CHILD_BASE", &base)
            .stderr(std::process::Stdio::null());
        if fin {
            c.env("VIGIL_FHIR_FINAL", "1");
        }
        c
    };
    for kill_after in [5000u64, 4200] {
        let mut child = run(false).stdout(std::process::Stdio::null()).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(kill_after)).await;
        child.kill().unwrap(); // SIGKILL, mid-upload
        child.wait().unwrap();
    }
    let uploaded_before = server.observations().await;
    assert!(uploaded_before > 0, "nothing was uploaded before the kills");
    server.faults(serde_json::json!({"clear": true})).await;
    let status = tokio::task::spawn_blocking(move || run(true).status().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "the final run failed: {status:?}");

    let expected = expected_observations(dir.path()).await;
    assert!(expected > uploaded_before, "the kills should have left a backlog");
    assert_eq!(
        server.observations().await,
        expected,
        "exactly one Observation per stored reading"
    );
    server.stop().await;
}

/// Issue 11, item 2 ("same for the outbox"): while the store refuses writes
/// (new readings and their outbox rows roll back together) and refuses to
/// remove uploaded rows from the outbox, the upload neither loses nor
/// doubles anything; once the store heals, every reading held meanwhile is
/// recorded, queued and uploaded, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_mid_upload_loses_and_doubles_nothing() {
    let server = TestServer::start().await;
    server.create_patient(MRN_SYSTEM, "MRN-77003", "Example").await;
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), &server.base())).await.unwrap();
    v.admit(admit("bed-1", "MRN-77003")).await.unwrap();
    let found = v.find_patient("MRN-77003").await.unwrap();
    v.link_patient("bed-1", &found[0].reference).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = server.observations().await;
    assert!(before > 0, "nothing uploaded before the fault");

    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("vigil.db"));
    let db = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    // Deletes refused first, until an upload has happened under it: the outbox
    // may well be empty at the moment of the fault (a pass just drained it), and
    // the rows that matter are those uploaded while their removal fails.
    sqlx::query("CREATE TRIGGER fault_outbox BEFORE DELETE ON outbox BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
        .execute(&db)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while server.observations().await <= before {
        assert!(tokio::time::Instant::now() < deadline, "nothing uploaded while the outbox refused deletes");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sqlx::query("CREATE TRIGGER fault_chunks BEFORE INSERT ON chunks BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full'); END")
        .execute(&db)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(v.stats().store_failing.load(std::sync::atomic::Ordering::Relaxed));
    let st = v.sync_status().await.unwrap();
    assert!(st.pending > 0, "uploaded rows vanished while the outbox refused deletes: {st:?}");
    for stmt in ["DROP TRIGGER fault_chunks", "DROP TRIGGER fault_outbox"] {
        sqlx::query(stmt).execute(&db).await.unwrap();
    }
    db.close().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    v.discharge("bed-1").await.unwrap();
    wait_drained(&v).await;
    v.shutdown().await;
    let s = v.stats();
    assert_eq!(s.get(&s.readings), s.get(&s.stored), "a reading held during the fault was not recorded");
    let expected = expected_observations(dir.path()).await;
    assert_eq!(
        server.observations().await,
        expected,
        "exactly one Observation per stored reading after the store fault"
    );
    server.stop().await;
}

/// Issue 13 §6: the webview cannot point a bed's readings at any patient record: the link
/// must be to a Patient the server returns for the admission's own MRN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bed_links_only_to_a_patient_found_by_its_admissions_mrn() {
    let server = TestServer::start().await;
    let own = server.create_patient(MRN_SYSTEM, "MRN-77021", "Example").await;
    let other = server.create_patient(MRN_SYSTEM, "MRN-77022", "Other").await;
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), &server.base())).await.unwrap();
    v.admit(admit("bed-1", "MRN-77021")).await.unwrap();
    for bad in [other.as_str(), "Patient/does-not-exist", "Patient/../Observation/1", "Observation/1"] {
        let e = v.link_patient("bed-1", bad).await.unwrap_err();
        assert!(
            matches!(e, vigil_core::CoreError::NotFoundByMrn(_) | vigil_core::CoreError::Invalid(_)),
            "{bad}: {e}"
        );
    }
    v.link_patient("bed-1", &own).await.unwrap();
    v.shutdown().await;
    server.stop().await;
}
