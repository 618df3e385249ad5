//! The whole core data path on a real SQLite file: simulated GATT bytes →
//! decode → readings → encrypted store + live fan-out, at many times real speed.

mod alarming;
mod audit;
mod compaction;
mod corrupt;
mod faults;
mod files;
mod restart;
mod roles;
mod spill;
mod trends;
mod report;
mod review;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use vigil_core::view::WardUpdate;
use vigil_core::{AdmitRequest, Config, SimSettings, Vigil};
use vigil_devices::sim::Scenario;
use vigil_model::{LinkState, Mdc, ScaledClock, Source};
use vigil_store::{KeySource, SeriesQuery};

pub(crate) fn config(dir: &std::path::Path, scenario: Scenario, speed: f64) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        key: KeySource::passphrase("core-test-passphrase", "test"),
        clock: Arc::new(ScaledClock::new(Utc::now(), speed)),
        sim: SimSettings {
            scenario,
            beds: 4,
            seed: 7,
        },
        retention: Default::default(),
        low_disk_bytes: 0,
        site_files: Vec::new(),
        alarm_preset: Default::default(),
        devices: vigil_core::DeviceMode::Simulated,
        fhir: None,
        ble: Default::default(),
    }
}

async fn run_for(v: &Vigil, real: Duration) -> Vec<WardUpdate> {
    let mut updates = Vec::new();
    let _ = tokio::time::timeout(
        real,
        v.stream_updates(v.subscribe(), Duration::from_millis(100), |u| {
            updates.push(u);
            true
        }),
    )
    .await;
    updates
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_bytes_end_up_decrypted_and_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 60.0))
        .await
        .unwrap();
    let updates = run_for(&v, Duration::from_secs(3)).await;
    v.shutdown().await;
    // Counted after shutdown: readings keep arriving until the sources stop.
    assert_eq!(
        v.stats().get(&v.stats().readings),
        v.stats().get(&v.stats().stored),
        "every reading is stored at shutdown"
    );
    assert_eq!(v.stats().get(&v.stats().decode_errors), 0);

    // The screen got batched live readings and heartbeats.
    assert!(updates.len() >= 20, "only {} updates", updates.len());
    let live: usize = updates.iter().map(|u| u.readings.len()).sum();
    assert!(live > 100, "only {live} live readings");
    assert!(updates.iter().all(|u| u.now_ms > 0));

    // Reopen the store with the key: plausible, labelled, per-bed series.
    let store = vigil_store::Store::open(
        &dir.path().join("vigil.db"),
        &KeySource::passphrase("core-test-passphrase", "test"),
    )
    .await
    .unwrap();
    let q = SeriesQuery {
        bed: "bed-1".into(),
        code: Mdc::ECG_HEART_RATE,
        from: Utc::now() - chrono::Duration::hours(1),
        to: Utc::now() + chrono::Duration::hours(10),
    };
    let hr = store.query_series(&q).await.unwrap();
    assert!(hr.len() > 60, "bed-1 HR samples: {}", hr.len());
    for r in &hr {
        assert_eq!(r.source, Source::Simulated);
        assert_eq!(r.unit, "/min");
        let v = r.value.number().unwrap();
        assert!((40.0..=120.0).contains(&v), "stable HR {v}");
    }
    assert!(hr.windows(2).all(|w| w[0].received <= w[1].received));
    let latest = store.latest().await.unwrap();
    for code in [
        Mdc::ECG_HEART_RATE,
        Mdc::PULS_OXIM_SAT_O2,
        Mdc::RESP_RATE,
        Mdc::TEMP_BODY,
        Mdc::PRESS_BLD_NONINV_SYS,
    ] {
        assert!(
            latest.iter().any(|r| r.bed == "bed-4" && r.code == code),
            "no latest {code:?} for bed-4"
        );
    }
    // The thermometer's clock offset is recorded with its readings.
    assert!(latest
        .iter()
        .any(|r| r.code == Mdc::TEMP_BODY && r.device_time.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_belong_to_the_admission_they_were_taken_in() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 30.0))
        .await
        .unwrap();
    let adm = v
        .admit(AdmitRequest {
            bed: "bed-2".into(),
            display_name: "Ada Example".into(),
            mrn: "X-1".into(),
            date_of_birth: "1970-05-01".into(),
            category: "adult".into(),
        })
        .await
        .unwrap();
    run_for(&v, Duration::from_secs(2)).await;
    v.discharge("bed-2").await.unwrap();
    run_for(&v, Duration::from_secs(1)).await;
    let snap = v.snapshot();
    assert!(snap.beds.iter().all(|b| b.admission.is_none()));
    v.shutdown().await;

    let store = vigil_store::Store::open(
        &dir.path().join("vigil.db"),
        &KeySource::passphrase("core-test-passphrase", "test"),
    )
    .await
    .unwrap();
    let rs = store
        .query_range(
            Some("bed-2"),
            Utc::now() - chrono::Duration::hours(1),
            Utc::now() + chrono::Duration::hours(10),
        )
        .await
        .unwrap();
    let with = rs
        .iter()
        .filter(|r| r.admission.as_ref().map(|a| a.0.as_str()) == Some(adm.id.as_str()))
        .count();
    let without = rs.iter().filter(|r| r.admission.is_none()).count();
    assert!(with > 20, "admitted readings: {with}");
    assert!(without > 0, "readings after discharge belong to no admission");
    assert!(rs
        .iter()
        .all(|r| r.admission.is_none() || r.admission.as_ref().unwrap().0 == adm.id));

    // Errors are typed and readable.
    let err = v_err_unknown_bed(dir.path()).await;
    assert!(err.contains("unknown bed"), "{err}");
}

async fn v_err_unknown_bed(dir: &std::path::Path) -> String {
    let v = Vigil::start(config(dir, Scenario::Stable, 1.0)).await.unwrap();
    let e = v
        .admit(AdmitRequest {
            bed: "bed-99".into(),
            display_name: "N".into(),
            mrn: "M".into(),
            date_of_birth: "1970-01-01".into(),
            category: "adult".into(),
        })
        .await
        .unwrap_err();
    v.shutdown().await;
    e.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensor_off_is_a_technical_condition_not_a_heart_rate() {
    let dir = tempfile::tempdir().unwrap();
    // Sensor-off: the strap loses contact for 30 s every ~3 min.
    let v = Vigil::start(config(dir.path(), Scenario::SensorOff, 100.0))
        .await
        .unwrap();
    let updates = run_for(&v, Duration::from_secs(6)).await;
    v.shutdown().await;
    let technical: Vec<_> = updates
        .iter()
        .flat_map(|u| &u.devices)
        .filter(|d| d.device.ends_with("-hr") && d.technical.as_deref() == Some("sensor contact lost"))
        .collect();
    assert!(!technical.is_empty(), "no technical condition raised");
    // No HR of 0 (what the strap sends without contact) ever reached the screen.
    for u in &updates {
        for r in &u.readings {
            if r.mdc == Mdc::ECG_HEART_RATE.0 {
                assert!(r.value.unwrap() > 20.0, "an untrusted HR reached the screen");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_out_of_range_goes_disconnected_then_receiving_again() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::OutOfRange, 200.0))
        .await
        .unwrap();
    let updates = run_for(&v, Duration::from_secs(5)).await;
    v.shutdown().await;
    let states: Vec<LinkState> = updates
        .iter()
        .flat_map(|u| &u.devices)
        .filter(|d| d.device == "sim-bed-1-spo2")
        .map(|d| d.state)
        .collect();
    let gone = states
        .iter()
        .position(|s| *s == LinkState::Disconnected)
        .expect("never disconnected");
    assert!(
        states[gone..].contains(&LinkState::Receiving),
        "never came back: {states:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_limit_raises_alarms_and_reverts_at_discharge() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 60.0))
        .await
        .unwrap();
    v.admit(AdmitRequest {
        bed: "bed-1".into(),
        display_name: "Limit Test".into(),
        mrn: "L-1".into(),
        date_of_birth: "1980-01-01".into(),
        category: "adult".into(),
    })
    .await
    .unwrap();
    // A stable HR of ~72 is above a patient-specific high limit of 50.
    v.set_limit("bed-1", "heart_rate", Some(30.0), Some(50.0), "RN")
        .await
        .unwrap();
    assert_eq!(
        v.set_limit("bed-1", "heart_rate", Some(90.0), Some(50.0), "RN")
            .await
            .unwrap_err()
            .code(),
        "bad_limit"
    );
    assert_eq!(
        v.set_limit("bed-1", "toast", None, None, "RN")
            .await
            .unwrap_err()
            .code(),
        "bad_limit"
    );
    let updates = run_for(&v, Duration::from_secs(3)).await;
    let hr_high = updates.iter().flat_map(|u| &u.alarms).any(|st| {
        st.bed == "bed-1"
            && st.active.iter().any(|a| {
                matches!(
                    &a.kind,
                    vigil_alarms::AlarmKind::Physiological {
                        parameter: vigil_alarms::Parameter::HeartRate,
                        ..
                    }
                )
            })
    });
    assert!(hr_high, "no HR alarm at the patient's limit");
    let limits = |v: &Vigil| {
        let snap = v.snapshot();
        let st = snap.alarms.iter().find(|a| a.bed == "bed-1").unwrap().clone();
        st.limits
            .into_iter()
            .find(|l| l.parameter == vigil_alarms::Parameter::HeartRate)
            .unwrap()
    };
    let l = limits(&v);
    assert!(l.patient_specific);
    assert_eq!(l.limit.high, Some(50.0));
    v.discharge("bed-1").await.unwrap();
    let l = limits(&v);
    assert!(!l.patient_specific, "the patient's limit outlived the discharge");
    assert_eq!(l.limit.high, Some(120.0));
    // Who changed the limit, and its reversion at discharge, are in the
    // (encrypted) alarm log; the refused changes are not.
    let changes = |log: &[vigil_store::AlarmRecord]| -> Vec<Option<String>> {
        log.iter()
            .filter(|r| r.event["event"]["type"] == "limit_changed")
            .map(|r| r.event["event"]["user"].as_str().map(str::to_owned))
            .collect()
    };
    let mut logged = Vec::new();
    for _ in 0..50 {
        logged = changes(&v.alarm_log(Some("bed-1"), 1).await.unwrap());
        if logged.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(logged, vec![Some("RN".to_string()), None]);
    v.shutdown().await;
}

/// A healthy start raises no "store failure" alarm, however the start-up
/// tasks happen to be scheduled (the watchdog used to read the writer's health
/// before the writer had started), and the screen's subscription, taken
/// before its snapshot, never leaves an ended alarm on screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_start_raises_no_store_failure_alarm() {
    use vigil_alarms::{AlarmKind, TechnicalKind};
    let store_failure = |a: &vigil_alarms::ActiveAlarm| {
        matches!(
            &a.kind,
            AlarmKind::Technical {
                kind: TechnicalKind::StoreFailure,
                ..
            }
        )
    };
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
            .await
            .unwrap();
        let rx = v.subscribe();
        let snap = v.snapshot();
        let mut updates = Vec::new();
        let _ = tokio::time::timeout(
            Duration::from_millis(1500),
            v.stream_updates(rx, Duration::from_millis(100), |u| {
                updates.push(u);
                true
            }),
        )
        .await;
        v.shutdown().await;
        let raised = snap
            .alarms
            .iter()
            .chain(updates.iter().flat_map(|u| &u.alarms))
            .flat_map(|b| &b.active)
            .any(store_failure);
        assert!(!raised, "round {round}: a store-failure alarm on a healthy start");
    }
}
mod news2;
mod replay;
mod discharge;

/// The screen's stream at a high rate (the soak's 240x, a fast replay): each
/// batch carries one view per device and link state, an unchanged alarm
/// state is never sent again, and still every alarm the engine starts
/// reaches the stream (liveness: folding must not cost an alarm).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_ward_streams_each_change_once_and_every_alarm() {
    use std::collections::{BTreeSet, HashMap};
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Ward, 240.0))
        .await
        .unwrap();
    let updates = run_for(&v, Duration::from_secs(4)).await;
    // Let the alarm log catch up with what the engine did, then read it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = v.alarm_log(None, 24).await.unwrap();
    v.shutdown().await;

    let mut last_sent: HashMap<&str, &vigil_alarms::BedAlarmState> = HashMap::new();
    let mut shown_ids = BTreeSet::new();
    let readings: usize = updates.iter().map(|u| u.readings.len()).sum();
    assert!(readings > 50, "only {readings} live readings");
    for u in &updates {
        // A device's views in one batch are its transitions only.
        let mut last_view: HashMap<&str, &vigil_core::view::DeviceView> = HashMap::new();
        for d in &u.devices {
            if let Some(prev) = last_view.insert(&d.device, d) {
                let same = (prev.state, &prev.bed, &prev.technical) == (d.state, &d.bed, &d.technical)
                    && prev.refused == d.refused;
                assert!(!same, "two views of one device in one state in a batch");
            }
        }
        for a in &u.alarms {
            assert_ne!(last_sent.get(a.bed.as_str()), Some(&a), "an unchanged alarm state sent again");
            last_sent.insert(&a.bed, a);
            shown_ids.extend(a.active.iter().map(|x| x.id));
        }
    }
    // 4 s of 100 ms ticks is 40 batches; what is sent beyond that is alarm
    // changes only (before: one per NEWS2 score and bed, ~30 a second).
    let urgent = updates.len().saturating_sub(45);
    // Alarms started while the stream ran (the log also has those started
    // before it subscribed and after it stopped).
    let (from, to) = (updates[0].now_ms, updates.last().unwrap().now_ms);
    let started: BTreeSet<u64> = log
        .iter()
        .filter(|r| (from..=to).contains(&r.at.timestamp_millis()))
        .filter(|r| r.event["event"]["type"] == "started")
        .filter_map(|r| r.event["id"].as_u64())
        .collect();
    assert!(!started.is_empty(), "the ward scenario started no alarm in {} updates", updates.len());
    let missing: Vec<_> = started.difference(&shown_ids).collect();
    assert!(missing.is_empty(), "alarms started but never streamed: {missing:?}");
    assert!(urgent <= 4 * started.len() + 20, "{} updates for {} alarms started", updates.len(), started.len());
}
