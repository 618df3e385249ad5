//! Delivery a hospital can trust, against the scripted loopback server ([`crate::mock`]):
//! redirects, `Retry-After`, refusals, poison entries, full windows.

use std::sync::Arc;
use std::time::Duration;

use ring::signature::{EcdsaKeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};
use vigil_fhir::{
    Auth, ClientConfig, Error, FhirClient, MemoryOutbox, SigningKey, SmartBackend, SyncError, Syncer,
};
use vigil_model::{AdmissionId, SystemClock};

use crate::mock::{outcome, Mock, Resp};
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

/// A SMART Backend Services client (a fresh ES384 key) whose token endpoint is the mock's
/// `/auth/token`.
fn smart_client(server: &Mock) -> FhirClient {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
    let mut cfg = ClientConfig::new(server.base());
    cfg.auth = Auth::Smart(Arc::new(SmartBackend {
        token_url: format!("http://127.0.0.1:{}/auth/token", server.port)
            .parse()
            .unwrap(),
        client_id: "vigil-gw".into(),
        kid: "test-kid".into(),
        key: SigningKey::es384_from_pkcs8(pkcs8.as_ref()).unwrap(),
        scope: "system/Observation.write".into(),
    }));
    FhirClient::new(cfg).unwrap()
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
    let smart = smart_client(&server);
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

fn is_observation(r: &serde_json::Value) -> bool {
    r["resourceType"] == "Observation"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_level_authorisation_or_configuration_refusal_is_retried_not_dead_lettered() {
    for status in [401u16, 403, 404, 409] {
        let server = Mock::start().await;
        server
            .on_entry(move |r| is_observation(r).then(|| (status, outcome("forbidden", "no write access"))));
        let outbox = linked(&mixed_readings(30));
        let mut s = syncer(&server);
        let e = s.pass(&outbox).await.unwrap_err();
        assert!(
            matches!(e, SyncError::NotAccepted { entries: 30, status: st, .. } if st == status),
            "{e}"
        );
        assert!(outbox.dead_letters().is_empty(), "HTTP {status}: dead-lettered");
        assert_eq!(outbox.pending_len(), 30);
        let st = s.status().borrow().clone();
        assert!(!st.healthy);
        assert_eq!(st.dead_letters, 0);
        let why = st.last_error.unwrap();
        assert!(
            why.contains(&format!("HTTP {status}")) && why.contains("authorisation or configuration"),
            "{why}"
        );
        // Fixed on the server: everything goes.
        server.clear_faults();
        assert_eq!(s.pass(&outbox).await.unwrap().acked, 30);
        assert!(s.status().borrow().healthy);
        assert_eq!(server.observations(), 30);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_refused_the_same_way_is_one_configuration_error_not_n_dead_letters() {
    // Entry by entry in the batch-response …
    let server = Mock::start().await;
    server.on_entry(|r| is_observation(r).then(|| (422, outcome("processing", "profile required"))));
    let outbox = linked(&mixed_readings(30));
    let mut s = syncer(&server);
    let e = s.pass(&outbox).await.unwrap_err();
    assert!(
        matches!(
            e,
            SyncError::AllRefused {
                entries: 30,
                status: 422,
                ..
            }
        ),
        "{e}"
    );
    assert!(outbox.dead_letters().is_empty());
    let st = s.status().borrow().clone();
    assert!(!st.healthy);
    assert!(st.last_error.unwrap().contains("refused all 30 entries"));

    // … and a whole-Bundle 400 that bisection takes down to every single entry.
    let server = Mock::start().await;
    server.on_request(|r| {
        let b = r.body.as_ref()?;
        is_observation(&b["entry"][0]["resource"]).then(|| Resp::new(400, outcome("invalid", "bad bundle")))
    });
    let outbox = linked(&mixed_readings(12));
    let mut s = syncer(&server);
    let e = s.pass(&outbox).await.unwrap_err();
    assert!(
        matches!(
            e,
            SyncError::AllRefused {
                entries: 12,
                status: 400,
                ..
            }
        ),
        "{e}"
    );
    assert!(outbox.dead_letters().is_empty());
    assert_eq!(outbox.pending_len(), 12);
}

/// A value no other test reading has.
const MARKED: f64 = 177.7;

fn marked(r: &serde_json::Value) -> bool {
    r["valueQuantity"]["value"].as_f64() == Some(MARKED)
}

fn with_marked(n: usize, at: usize) -> Vec<vigil_model::Reading> {
    let mut rs = mixed_readings(n);
    rs[at].value = vigil_model::Value::Number(MARKED);
    rs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_shows_in_the_status_with_a_reason_free_of_patient_data() {
    let server = Mock::start().await;
    server.on_entry(|r| {
        marked(r).then(|| {
            (
                422,
                outcome("value", &format!("value {MARKED} out of range for MRN-4711")),
            )
        })
    });
    let outbox = linked(&with_marked(20, 7));
    let mut s = syncer(&server);
    let report = s.pass(&outbox).await.unwrap();
    assert_eq!((report.acked, report.dead_lettered), (19, 1));
    let st = s.status().borrow().clone();
    assert_eq!(st.dead_letters, 1);
    let why = st.last_set_aside.unwrap();
    assert_eq!(why, "HTTP 422 (error value)");
    assert!(!why.contains("177") && !why.contains("MRN"), "{why}");
    // The full reason stays with the dead letter, for authorised users.
    assert!(outbox.dead_letters()[0].reason.contains("MRN-4711"));
}

fn poison_config() -> vigil_fhir::SyncConfig {
    let mut cfg = fast_config();
    cfg.batch_size = 10;
    cfg.max_attempts = 3;
    cfg
}

/// Passes until one succeeds (at most `max`); how many it took.
async fn passes_until_ok(s: &mut Syncer<SystemClock>, outbox: &MemoryOutbox, max: usize) -> usize {
    for n in 1..=max {
        if s.pass(outbox).await.is_ok() {
            return n;
        }
    }
    panic!("no successful pass in {max}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_entry_is_parked_after_max_attempts_and_the_rest_flows() {
    // The server fails the entry itself (5xx in the batch-response) …
    let server = Mock::start().await;
    server.on_entry(|r| marked(r).then(|| (500, outcome("exception", "NullPointerException"))));
    let outbox = linked(&with_marked(50, 13));
    let mut s = Syncer::new(client(&server.base()), poison_config(), Arc::new(SystemClock));
    assert_eq!(passes_until_ok(&mut s, &outbox, 10).await, 3);
    assert_eq!(server.observations(), 49);
    assert_eq!(outbox.pending_len(), 0);
    let dead = outbox.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].kind, vigil_fhir::SetAsideKind::Parked);
    assert_eq!(dead[0].reading.value, vigil_model::Value::Number(MARKED));
    let st = s.status().borrow().clone();
    assert_eq!((st.parked, st.dead_letters), (1, 0));
    assert!(st.healthy);
    assert_eq!(
        st.last_set_aside.as_deref(),
        Some("HTTP 500 (error exception) after 3 attempts")
    );

    // … or the whole Bundle that holds it: bisected once it is one failure from the limit.
    let server = Mock::start().await;
    server.on_request(|r| {
        let entries = r.body.as_ref()?["entry"].as_array()?.clone();
        entries
            .iter()
            .any(|e| marked(&e["resource"]))
            .then(|| Resp::new(500, outcome("exception", "crashed")))
    });
    let outbox = linked(&with_marked(50, 13));
    let mut s = Syncer::new(client(&server.base()), poison_config(), Arc::new(SystemClock));
    assert_eq!(passes_until_ok(&mut s, &outbox, 10).await, 3);
    assert_eq!(server.observations(), 49);
    let dead = outbox.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reading.value, vigil_model::Value::Number(MARKED));
    assert_eq!(s.status().borrow().parked, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_parks_nothing() {
    let server = Mock::start().await;
    server.on_request(|_| Some(Resp::new(500, outcome("exception", "down"))));
    let outbox = linked(&mixed_readings(30));
    let mut s = Syncer::new(client(&server.base()), poison_config(), Arc::new(SystemClock));
    for _ in 0..6 {
        assert!(s.pass(&outbox).await.is_err());
    }
    assert!(outbox.dead_letters().is_empty());
    assert_eq!(outbox.pending_len(), 30);
    server.clear_faults();
    assert_eq!(s.pass(&outbox).await.unwrap().acked, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeued_dead_letters_reach_the_server_exactly_once() {
    let server = Mock::start().await;
    server.on_entry(|r| marked(r).then(|| (422, outcome("value", "refused"))));
    let mut readings = mixed_readings(30);
    for i in [3, 11, 20] {
        readings[i].value = vigil_model::Value::Number(MARKED);
        readings[i].received += chrono::Duration::milliseconds(1);
    }
    let outbox = linked(&readings);
    let mut s = syncer(&server);
    s.pass(&outbox).await.unwrap();
    assert_eq!(outbox.dead_letters().len(), 3);
    server.clear_faults();
    assert_eq!(outbox.requeue(None), 3);
    assert_eq!(s.pass(&outbox).await.unwrap().acked, 3);
    s.pass(&outbox).await.unwrap();
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 30);
    assert!(accepted.values().all(|&n| n == 1), "{accepted:?}");
    let st = s.status().borrow().clone();
    assert_eq!((st.dead_letters, st.pending), (0, 0));
}

/// Issue 13 §6: a server (or something posing as one on the network path) cannot make the
/// uploader hold unbounded memory, nor stop it with a token lifetime that overflows the clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_answer_is_refused_and_nothing_is_lost() {
    let server = Mock::start().await;
    let pad = "x".repeat(vigil_fhir::client::MAX_BODY + 1);
    server.on_request(move |r| {
        (r.method == "POST").then(|| {
            Resp::new(
                200,
                serde_json::json!({ "resourceType": "Bundle", "type": "batch-response", "entry": [], "pad": pad }),
            )
        })
    });
    let outbox = linked(&mixed_readings(5));
    let mut s = syncer(&server);
    let e = s.pass(&outbox).await.unwrap_err();
    assert!(e.to_string().contains("larger than 8 MiB"), "{e}");
    let st = s.status().borrow().clone();
    assert!(!st.healthy);
    assert!(st.last_error.unwrap().contains("larger than"));
    assert_eq!(outbox.pending_len(), 5, "nothing acked on an answer not read");

    // The server answers normally again: each reading once (conditional create).
    server.clear_faults();
    s.pass(&outbox).await.unwrap();
    assert_eq!(outbox.pending_len(), 0);
    assert_eq!(server.observations(), 5);
    assert!(server.accepted().values().all(|&n| n <= 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_or_zero_token_lifetime_neither_panics_nor_hammers_the_token_endpoint() {
    for expires_in in [serde_json::json!(u64::MAX), serde_json::json!(0), serde_json::json!(1e300)] {
        let server = Mock::start().await;
        let lifetime = expires_in.clone();
        server.on_request(move |r| {
            (r.path == "/auth/token").then(|| {
                Resp::new(
                    200,
                    serde_json::json!({ "access_token": "t0k3n", "token_type": "bearer", "expires_in": lifetime }),
                )
            })
        });
        let client = Arc::new(smart_client(&server));
        let mut s = Syncer::new(client.clone(), fast_config(), Arc::new(SystemClock));
        let outbox = linked(&mixed_readings(4));
        s.pass(&outbox).await.unwrap();
        for r in mixed_readings(4).into_iter().map(|mut r| {
            r.received += chrono::Duration::seconds(60);
            r
        }) {
            outbox.push(r);
        }
        s.pass(&outbox).await.unwrap();
        assert_eq!(outbox.pending_len(), 0, "expires_in {expires_in}");
        // A lifetime of 0 is taken as MIN_TOKEN_TTL (2 s): not a new token per request.
        let most = if expires_in == 0 { 2 } else { 1 };
        assert!(
            (1..=most).contains(&client.tokens_fetched()),
            "expires_in {expires_in}: {} tokens for two passes",
            client.tokens_fetched()
        );
    }
}
