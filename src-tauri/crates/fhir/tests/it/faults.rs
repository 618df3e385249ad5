//! Server faults: down, 5xx, 429 + Retry-After, slow, connection dropped after commit, a
//! sensor or gateway Device the server refuses. Whatever happens, the server ends with
//! exactly one Observation per reading it took, and what it refused is dead-lettered.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;
use vigil_fhir::{mapping, ClientConfig, DeviceInfo, FhirClient, MemoryOutbox, SyncError, Syncer};
use vigil_model::{AdmissionId, Mdc, Reading, SystemClock, Value};

use crate::support::*;
use crate::upload::{drain, linked_outbox, syncer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_at_start_then_up() {
    let port = free_port();
    let client =
        Arc::new(FhirClient::new(ClientConfig::new(format!("http://127.0.0.1:{port}/fhir/R4"))).unwrap());
    let outbox = Arc::new(MemoryOutbox::new());
    outbox.link(AdmissionId(ADMISSION.into()), "Patient/p-1");
    for r in mixed_readings(50) {
        outbox.push(r);
    }
    let mut s = Syncer::new(client, fast_config(), Arc::new(SystemClock));
    let mut status = s.status();
    let cancel = CancellationToken::new();
    let task = {
        let (o, c) = (outbox.clone(), cancel.clone());
        tokio::spawn(async move { s.run(o.as_ref(), c).await })
    };
    // Nothing listens: the syncer reports a network error and keeps trying.
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.consecutive_failures >= 2),
    )
    .await
    .unwrap()
    .unwrap();
    let st = status.borrow().clone();
    assert!(!st.healthy);
    assert_eq!(st.last_error.as_deref(), Some("network error: connect"));
    assert_eq!(outbox.pending_len(), 50);
    let server = TestServer::start_on(port).await;
    tokio::time::timeout(
        Duration::from_secs(30),
        status.wait_for(|s| s.uploaded == 50 && s.healthy),
    )
    .await
    .expect("uploaded once the server is up")
    .unwrap();
    cancel.cancel();
    task.await.unwrap();
    assert_eq!(server.observations().await, 50);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_goes_down_for_a_while() {
    let server = TestServer::start().await;
    let (outbox, _) = linked_outbox(&server, &mixed_readings(40)).await;
    server.faults(json!({ "downMs": 1200 })).await;
    let t = Instant::now();
    let mut s = syncer(&server);
    let report = drain(&mut s, &outbox).await;
    assert!(t.elapsed() >= Duration::from_millis(1100));
    assert_eq!(report.acked, 40);
    assert!(server.stats().await["refused"].as_u64().unwrap() >= 1);
    assert_eq!(server.observations().await, 40);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried() {
    let server = TestServer::start().await;
    let (outbox, _) = linked_outbox(&server, &mixed_readings(40)).await;
    server.faults(json!({ "fail500": 3 })).await;
    let mut s = syncer(&server);
    let report = drain(&mut s, &outbox).await;
    assert_eq!(report.acked, 40);
    let stats = server.stats().await;
    assert_eq!(stats["byStatus"]["500"], 3);
    assert_eq!(server.observations().await, 40);
    assert!(s.status().borrow().healthy);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_waits_for_retry_after() {
    let server = TestServer::start().await;
    let (outbox, _) = linked_outbox(&server, &mixed_readings(40)).await;
    // Backoff alone would retry after ≤ 50 ms; Retry-After says 1 s, twice.
    server.faults(json!({ "throttle": 2, "retryAfter": 1 })).await;
    let mut s = syncer(&server);
    let t = Instant::now();
    let report = drain(&mut s, &outbox).await;
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(2000),
        "Retry-After honoured: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(report.acked, 40);
    assert_eq!(server.stats().await["byStatus"]["429"], 2);
    assert_eq!(server.observations().await, 40);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_server_and_client_timeouts() {
    let server = TestServer::start().await;
    let (outbox, _) = linked_outbox(&server, &mixed_readings(30)).await;
    server.faults(json!({ "delayMs": 400 })).await;
    // Slow but within the timeout: fine.
    let report = drain(&mut syncer(&server), &outbox).await;
    assert_eq!(report.acked, 30);
    // A client that gives up after 150 ms: timeouts until the server is fast again.
    let outbox2 = MemoryOutbox::new();
    outbox2.link(AdmissionId(ADMISSION.into()), "Patient/p");
    for mut r in mixed_readings(30) {
        r.received += chrono::Duration::hours(2);
        outbox2.push(r);
    }
    let mut cfg = ClientConfig::new(server.base());
    cfg.timeout = Duration::from_millis(150);
    let mut s = Syncer::new(
        Arc::new(FhirClient::new(cfg).unwrap()),
        fast_config(),
        Arc::new(SystemClock),
    );
    let cancel = CancellationToken::new();
    let clear = {
        let port = server.port;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap()
                .post(format!("http://127.0.0.1:{port}/$admin/faults"))
                .json(&json!({ "clear": true }))
                .send()
                .await
                .unwrap();
        })
    };
    let mut status = s.status();
    let report = s.drain(&outbox2, cancel).await.unwrap();
    clear.await.unwrap();
    assert_eq!(report.acked, 30);
    assert!(status.borrow_and_update().healthy);
    assert_eq!(server.observations().await, 60);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_dropped_after_commit_is_retried_without_duplicates() {
    let server = TestServer::start().await;
    let n = 120;
    let readings = mixed_readings(n);
    let (outbox, _) = linked_outbox(&server, &readings[..3]).await;
    let mut cfg = fast_config();
    cfg.batch_size = 50;
    let mut s = Syncer::new(server.client(), cfg, Arc::new(SystemClock));
    // The Devices exist now, so the next POSTs are Observation Bundles.
    drain(&mut s, &outbox).await;
    for r in &readings[3..] {
        outbox.push(r.clone());
    }
    // The next two Bundle POSTs are committed, then the socket is closed without a response:
    // the first Bundle is lost twice (created, then found) before its third try answers.
    server.faults(json!({ "dropAfterCommit": 2 })).await;
    let report = drain(&mut s, &outbox).await;
    assert_eq!(report.acked, n as u64 - 3);
    let stats = server.stats().await;
    assert_eq!(stats["dropped"], 2);
    assert_eq!(
        server.observations().await,
        n as u64,
        "exactly once despite lost responses"
    );
    assert_eq!(stats["resources"]["Device"], 4);
    server.stop().await;
}

/// What a sensor with a broken Device Information Service reports: a control character in
/// its manufacturer name, which FHIR strings may not hold (Medplum: "Invalid string
/// format" at Device.manufacturer). `fixed` = it has since been repaired.
fn lookup_with_bad_device(bad: &'static str, fixed: Arc<AtomicBool>) -> vigil_fhir::sync::DeviceLookup {
    Arc::new(move |id: &str| {
        let mut info = DeviceInfo::from_id(id);
        if id == bad && !fixed.load(Ordering::SeqCst) {
            info.manufacturer = Some("Acme\u{1}".into());
        }
        info
    })
}

async fn observations_with_identifier(server: &TestServer, r: &Reading) -> u64 {
    let id = format!("urn:vigil:observation|{}", mapping::observation_identifier(r));
    server
        .client()
        .count("Observation", &[("identifier", &id)])
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_sensor_device_dead_letters_its_readings_and_the_rest_flows() {
    let server = TestServer::start().await;
    let at = |i: i64| t0() + chrono::Duration::seconds(i);
    let hr = |i: i64| {
        reading(
            "hr-strap-1",
            Mdc::ECG_HEART_RATE,
            Value::Number(60.0 + i as f64),
            "/min",
            at(i),
        )
    };
    let oxi = |i: i64| {
        reading(
            "oxi-bad",
            Mdc::PULS_OXIM_SAT_O2,
            Value::Number(90.0 + i as f64),
            "%",
            at(i),
        )
    };
    let mut readings = Vec::new();
    for i in 0..10 {
        readings.push(hr(i));
        readings.push(oxi(i));
    }
    let (outbox, _) = linked_outbox(&server, &readings).await;
    let fixed = Arc::new(AtomicBool::new(false));
    let mut cfg = fast_config();
    cfg.devices = lookup_with_bad_device("oxi-bad", fixed.clone());
    let clock = Arc::new(ManualClock::new(t0()));
    let mut s = Syncer::new(server.client(), cfg, clock.clone());
    let status = s.status();

    // One pass ends without an error: the refused Device does not hold the queue.
    let report = s.pass(&outbox).await.expect("the pass completes");
    assert_eq!((report.acked, report.dead_lettered), (10, 10));
    assert_eq!(outbox.pending_len(), 0);
    for r in readings.iter().filter(|r| r.device == "hr-strap-1") {
        assert_eq!(observations_with_identifier(&server, r).await, 1);
    }
    assert_eq!(server.observations().await, 10);
    assert_eq!(
        server.stats().await["resources"]["Device"],
        2,
        "gateway + hr-strap-1"
    );
    let dead = outbox.dead_letters();
    assert_eq!(dead.len(), 10);
    for d in &dead {
        assert_eq!(d.reading.device, "oxi-bad");
        assert!(
            d.reason
                .starts_with("Device rejected: HTTP 400: error structure at Device.manufacturer"),
            "{}",
            d.reason
        );
        assert!(d.reason.contains("Invalid string format"), "{}", d.reason);
    }
    {
        let st = status.borrow();
        assert!(st.healthy);
        assert_eq!(st.last_error, None);
        assert_eq!((st.pending, st.dead_letters, st.uploaded), (0, 10, 10));
    }

    // Within the remember window: the Device is not POSTed again; only the Observation
    // Bundle of the good sensor goes out.
    clock.advance(Duration::from_secs(4 * 60));
    for i in 10..15 {
        outbox.push(hr(i));
        outbox.push(oxi(i));
    }
    let bundles = server.stats().await["bundles"].as_u64().unwrap();
    let report = s.pass(&outbox).await.unwrap();
    assert_eq!((report.acked, report.dead_lettered, report.bundles), (5, 5, 1));
    assert_eq!(server.stats().await["bundles"].as_u64().unwrap(), bundles + 1);
    assert_eq!(outbox.dead_letters().len(), 15);
    assert_eq!(server.observations().await, 15);

    // Only the refused sensor's readings: still nothing POSTed.
    outbox.push(oxi(15));
    let report = s.pass(&outbox).await.unwrap();
    assert_eq!((report.acked, report.dead_lettered, report.bundles), (0, 1, 0));
    assert_eq!(server.stats().await["bundles"].as_u64().unwrap(), bundles + 1);

    // After the window the Device is tried again; repaired, it is taken and its new
    // readings flow (the dead letters stay where an authorised user can see them).
    clock.advance(Duration::from_secs(2 * 60));
    fixed.store(true, Ordering::SeqCst);
    for i in 16..20 {
        outbox.push(oxi(i));
    }
    let report = s.pass(&outbox).await.unwrap();
    assert_eq!((report.acked, report.dead_lettered), (4, 0));
    assert_eq!(
        server.stats().await["bundles"].as_u64().unwrap(),
        bundles + 3,
        "Device + Observations"
    );
    assert_eq!(server.stats().await["resources"]["Device"], 3);
    assert_eq!(server.observations().await, 19);
    assert_eq!(outbox.dead_letters().len(), 16);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_device_is_posted_again_after_the_remember_window() {
    let server = TestServer::start().await;
    let (outbox, _) = linked_outbox(
        &server,
        &[reading(
            "oxi-bad",
            Mdc::PULS_OXIM_SAT_O2,
            Value::Number(95.0),
            "%",
            t0(),
        )],
    )
    .await;
    let mut cfg = fast_config();
    cfg.devices = lookup_with_bad_device("oxi-bad", Arc::new(AtomicBool::new(false)));
    let clock = Arc::new(ManualClock::new(t0()));
    let mut s = Syncer::new(server.client(), cfg, clock.clone());
    // Gateway Device, then the refused sensor Device.
    let report = s.pass(&outbox).await.unwrap();
    assert_eq!((report.dead_lettered, report.bundles), (1, 0));
    let bundles = || async { server.stats().await["bundles"].as_u64().unwrap() };
    assert_eq!(bundles().await, 2);
    // Still refused after the window: POSTed once more, then remembered again.
    clock.advance(Duration::from_secs(5 * 60));
    outbox.push(reading(
        "oxi-bad",
        Mdc::PULS_OXIM_SAT_O2,
        Value::Number(96.0),
        "%",
        t0(),
    ));
    assert_eq!(s.pass(&outbox).await.unwrap().dead_lettered, 1);
    assert_eq!(bundles().await, 3);
    outbox.push(reading(
        "oxi-bad",
        Mdc::PULS_OXIM_SAT_O2,
        Value::Number(97.0),
        "%",
        t0(),
    ));
    assert_eq!(s.pass(&outbox).await.unwrap().dead_lettered, 1);
    assert_eq!(bundles().await, 3);
    assert_eq!(outbox.dead_letters().len(), 3);
    assert_eq!(server.stats().await["resources"]["Device"], 1, "the gateway only");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_gateway_device_is_a_retried_configuration_error() {
    let server = TestServer::start().await;
    let (outbox, _) = linked_outbox(&server, &mixed_readings(6)).await;
    let mut cfg = fast_config();
    cfg.gateway.manufacturer = Some("Vigil\u{1}".into());
    let mut s = Syncer::new(server.client(), cfg, Arc::new(SystemClock));
    let mut status = s.status();
    let err = s.pass(&outbox).await.unwrap_err();
    assert!(
        matches!(err, SyncError::GatewayDeviceRejected { status: 400, .. }),
        "{err:?}"
    );
    // Display (what logs get) has issue codes and paths only, no OperationOutcome text.
    assert_eq!(
        err.to_string(),
        "gateway Device rejected by the FHIR server: HTTP 400 (error structure at Device.manufacturer)"
    );
    // Retried like any configuration error, with the why on the status line.
    let outbox = Arc::new(outbox);
    let cancel = CancellationToken::new();
    let task = {
        let (o, c) = (outbox.clone(), cancel.clone());
        tokio::spawn(async move { s.run(o.as_ref(), c).await })
    };
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.consecutive_failures >= 3),
    )
    .await
    .expect("retried with backoff")
    .unwrap();
    cancel.cancel();
    task.await.unwrap();
    let st = status.borrow().clone();
    assert!(!st.healthy);
    assert_eq!(
        st.last_error.as_deref(),
        Some(
            "gateway Device rejected by the FHIR server: HTTP 400: \
             error structure at Device.manufacturer: Invalid string format"
        )
    );
    // Nothing dead-lettered, nothing sent: it all waits for a Device the server takes.
    assert_eq!(outbox.pending_len(), 6);
    assert!(outbox.dead_letters().is_empty());
    assert_eq!(server.stats().await["resources"]["Device"], 0);
    assert_eq!(server.observations().await, 0);
    server.stop().await;
}
