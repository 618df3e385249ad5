//! The store's outbox under the syncer, against the scripted loopback server
//! (fhir tests' `mock`): the waiting-for-patient count, a restart after a
//! reading was dead-lettered, and re-queued dead letters reaching the server
//! exactly once.

use crate::mock::{outcome, Mock};
use chrono::{NaiveDate, Utc};
use std::path::Path;
use std::sync::Arc;
use vigil_core::sync::StoreOutbox;
use vigil_fhir::{ClientConfig, FhirClient, SyncConfig, Syncer};
use vigil_model::{AdmissionId, Mdc, Reading, Source, SystemClock, Value};
use vigil_store::{KeySource, Patient, PatientCategory, Store};

const MARKED: f64 = 177.7;

fn marked(r: &serde_json::Value) -> bool {
    r["valueQuantity"]["value"].as_f64() == Some(MARKED)
}

async fn store(dir: &Path) -> Store {
    let s = Store::open(&dir.join("vigil.db"), &KeySource::passphrase("delivery", "test"))
        .await
        .unwrap();
    s.set_outbox_enabled(true);
    s
}

async fn admit(s: &Store, bed: &str) -> AdmissionId {
    let p = Patient {
        display_name: "Test Person".into(),
        mrn: format!("MRN-{bed}"),
        date_of_birth: NaiveDate::from_ymd_opt(1950, 3, 14).unwrap(),
        category: PatientCategory::Adult,
    };
    s.admit(bed, p, Utc::now()).await.unwrap().id
}

/// One append (one outbox row) of `values` as heart rates one second apart.
async fn append(s: &Store, adm: &AdmissionId, bed: &str, values: &[f64]) {
    let t0 = Utc::now();
    let rs: Vec<Reading> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Reading {
            bed: bed.into(),
            admission: Some(adm.clone()),
            device: format!("hr-{bed}"),
            code: Mdc::ECG_HEART_RATE,
            value: Value::Number(*v),
            unit: "/min".into(),
            device_time: None,
            received: t0 + chrono::Duration::seconds(i as i64),
            source: Source::Real,
            status: Default::default(),
        })
        .collect();
    s.append(&rs).await.unwrap();
}

fn syncer(server: &Mock) -> Syncer<SystemClock> {
    let client = Arc::new(FhirClient::new(ClientConfig::new(server.base())).unwrap());
    let mut cfg = SyncConfig::new(vigil_fhir::DeviceInfo::from_id("gw"));
    cfg.min_retry_wait = std::time::Duration::from_millis(10);
    Syncer::new(client, cfg, Arc::new(SystemClock))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waiting_for_patient_count_survives_the_end_of_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path()).await;
    let linked = admit(&s, "bed-1").await;
    let unlinked = admit(&s, "bed-2").await;
    s.link_patient(&linked, "Patient/p1").await.unwrap();
    append(&s, &linked, "bed-1", &[60.0, 61.0, 62.0]).await;
    append(&s, &unlinked, "bed-2", &[70.0, 71.0, 72.0, 73.0, 74.0]).await;
    let server = Mock::start().await;
    let outbox = StoreOutbox::new(s.clone());
    let mut sync = syncer(&server);
    let report = sync.pass(&outbox).await.unwrap();
    assert_eq!((report.acked, report.waiting), (3, 5));
    let st = sync.status().borrow().clone();
    assert_eq!((st.pending, st.waiting_for_patient), (5, 5));
    // Linked later: they go, and nothing waits any more.
    s.link_patient(&unlinked, "Patient/p2").await.unwrap();
    outbox.forget_links();
    assert_eq!(sync.pass(&outbox).await.unwrap().acked, 5);
    let st = sync.status().borrow().clone();
    assert_eq!((st.pending, st.waiting_for_patient), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_never_resends_nor_doubles_a_dead_letter_and_a_requeue_delivers_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path()).await;
    let adm = admit(&s, "bed-1").await;
    s.link_patient(&adm, "Patient/p1").await.unwrap();
    append(&s, &adm, "bed-1", &[60.0, 61.0, MARKED, 63.0]).await;
    let server = Mock::start().await;
    // The marked reading is refused; the rest of its row fails for now.
    server.on_entry(|r| {
        if marked(r) {
            Some((422, outcome("value", "refused")))
        } else {
            (r["resourceType"] == "Observation").then(|| (503, outcome("transient", "busy")))
        }
    });
    {
        let outbox = StoreOutbox::new(s.clone());
        let mut sync = syncer(&server);
        assert!(sync.pass(&outbox).await.is_err());
        assert_eq!(s.dead_letters().await.unwrap().len(), 1);
    }
    // Restart (a new outbox and syncer: nothing in memory), the server now takes
    // the others but would still refuse the marked one.
    let sent_before = server.requests().len();
    server.on_entry(|r| marked(r).then(|| (422, outcome("value", "refused"))));
    let outbox = StoreOutbox::new(s.clone());
    let mut sync = syncer(&server);
    assert_eq!(sync.pass(&outbox).await.unwrap().acked, 3);
    let resent = server.requests()[sent_before..]
        .iter()
        .filter_map(|r| r.body.as_ref())
        .flat_map(|b| b["entry"].as_array().cloned().unwrap_or_default())
        .filter(|e| marked(&e["resource"]))
        .count();
    assert_eq!(resent, 0, "a dead-lettered reading was sent again");
    assert_eq!(s.dead_letters().await.unwrap().len(), 1);
    assert_eq!(s.outbox_status().await.unwrap().pending_readings, 0);
    let st = sync.status().borrow().clone();
    assert_eq!((st.dead_letters, st.pending), (1, 0));
    assert_eq!(st.last_set_aside.as_deref(), Some("HTTP 422 (error value)"));

    // Fixed on the server, re-queued: it goes, once.
    server.clear_faults();
    assert_eq!(s.requeue_dead_letters(None).await.unwrap(), 1);
    assert_eq!(sync.pass(&outbox).await.unwrap().acked, 1);
    sync.pass(&outbox).await.unwrap();
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 4);
    assert!(accepted.values().all(|&n| n == 1), "{accepted:?}");
    let st = sync.status().borrow().clone();
    assert_eq!((st.dead_letters, st.pending), (0, 0));
}
