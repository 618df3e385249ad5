//! Server faults: down, 5xx, 429 + Retry-After, slow, connection dropped after commit.
//! Whatever happens, the server ends with exactly one Observation per reading.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;
use vigil_fhir::{ClientConfig, FhirClient, MemoryOutbox, Syncer};
use vigil_model::{AdmissionId, SystemClock};

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
