//! Delivery a hospital can trust, against the scripted loopback server ([`crate::mock`]):
//! redirects, `Retry-After`, refusals, poison entries, full windows.

use std::sync::Arc;
use std::time::Duration;

use ring::signature::{EcdsaKeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};
use vigil_fhir::{
    Auth, ClientConfig, Error, FhirClient, MemoryOutbox, SigningKey, SmartBackend, SyncError, Syncer,
};
use vigil_model::{AdmissionId, SystemClock};

use crate::mock::{Mock, Resp};
use crate::support::*;

fn linked(readings: &[vigil_model::Reading]) -> MemoryOutbox {
    let outbox = MemoryOutbox::new();
    outbox.link(AdmissionId(ADMISSION.into()), "Patient/p1");
    for r in readings {
        outbox.push(r.clone());
    }
    outbox
}

fn client(base: &str) -> Arc<FhirClient> {
    Arc::new(FhirClient::new(ClientConfig::new(base)).unwrap())
}

fn syncer(mock: &Mock) -> Syncer<SystemClock> {
    Syncer::new(client(&mock.base()), fast_config(), Arc::new(SystemClock))
}

/// Sends every request to `to` with a 307 (which keeps method and body).
fn redirect_all(from: &Mock, to: &Mock) {
    let target = format!("http://127.0.0.1:{}", to.port);
    from.on_request(move |r| {
        Some(Resp::new(307, serde_json::json!({})).header("location", &format!("{target}{}", r.path)))
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_never_followed_and_the_status_says_why() {
    let elsewhere = Mock::start().await;
    let server = Mock::start().await;
    redirect_all(&server, &elsewhere);
    let outbox = linked(&mixed_readings(5));
    let mut s = syncer(&server);
    let e = s.pass(&outbox).await.unwrap_err();
    assert!(
        matches!(e, SyncError::Fhir(Error::Redirect { status: 307, .. })),
        "{e}"
    );
    let st = s.status().borrow().clone();
    assert!(!st.healthy);
    let why = st.last_error.unwrap();
    assert!(why.contains("redirect") && why.contains("307"), "{why}");
    assert!(
        elsewhere.requests().is_empty(),
        "the plain-http target saw a request"
    );
    assert_eq!(outbox.pending_len(), 5);

    // The SMART token request: not followed either.
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
    let mut cfg = ClientConfig::new(server.base());
    cfg.auth = Auth::Smart(Arc::new(SmartBackend {
        token_url: format!("http://127.0.0.1:{}/auth/token", server.port)
            .parse()
            .unwrap(),
        client_id: "vigil-gw".into(),
        kid: None,
        key: SigningKey::es384_from_pkcs8(pkcs8.as_ref()).unwrap(),
        scope: "system/Observation.write".into(),
    }));
    let smart = FhirClient::new(cfg).unwrap();
    let e = smart.count("Observation", &[]).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Redirect {
                what: "token endpoint",
                status: 307
            }
        ),
        "{e}"
    );
    assert!(elsewhere.requests().is_empty(), "the token request was followed");
    assert!(server.requests().iter().any(|r| r.path == "/auth/token"));
}

/// Runs the syncer's loop for `d`.
async fn run_for(s: &mut Syncer<SystemClock>, outbox: &MemoryOutbox, d: Duration) {
    let cancel = tokio_util::sync::CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(d).await;
        c.cancel();
    });
    s.run(outbox, cancel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_of_zero_or_in_the_past_never_makes_a_hot_loop() {
    for retry_after in ["0", "Wed, 21 Oct 2015 07:28:00 GMT"] {
        let server = Mock::start().await;
        let ra = retry_after.to_string();
        server.on_request(move |_| {
            Some(Resp::new(429, crate::mock::outcome("throttled", "slow down")).header("retry-after", &ra))
        });
        let outbox = linked(&mixed_readings(5));
        let mut s = syncer(&server);
        run_for(&mut s, &outbox, Duration::from_secs(1)).await;
        // Backoff 50 ms doubling (jitter ≤ 50 %), floor 50 ms: a handful; a hot loop made
        // hundreds.
        let n = server.requests().len();
        assert!(
            (2..=12).contains(&n),
            "Retry-After {retry_after}: {n} requests in 1 s"
        );
        assert!(!s.status().borrow().healthy);
    }
}

/// Observation entries per batch request, in order.
fn observation_bundles(server: &Mock) -> Vec<usize> {
    server
        .requests()
        .iter()
        .filter_map(|r| r.body.as_ref())
        .filter(|b| b["entry"][0]["resource"]["resourceType"] == "Observation")
        .map(|b| b["entry"].as_array().unwrap().len())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_window_sends_as_many_readings_as_configured() {
    let server = Mock::start().await;
    let outbox = linked(&mixed_readings(30));
    let mut cfg = fast_config();
    cfg.batch_size = 10;
    let mut s = Syncer::new(client(&server.base()), cfg, Arc::new(SystemClock));
    let report = s.pass(&outbox).await.unwrap();
    assert_eq!(report.acked, 30);
    assert_eq!(observation_bundles(&server), [10, 10, 10]);
    assert_eq!(server.observations(), 30);
}
