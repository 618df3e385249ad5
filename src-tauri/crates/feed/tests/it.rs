//! The live feed against a real `Vigil` (simulated ward at a scaled clock, encrypted store in
//! a temp dir) and real WebSocket clients (tokio-tungstenite) over loopback TCP, plain and TLS:
//! what a central station and an integration engine rely on (docs/feed.md).

use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use vigil_core::auth::{self, Role};
use vigil_core::{AdmitRequest, Config, SimSettings, Vigil};
use vigil_devices::sim::Scenario;
use vigil_feed::{Feed, FeedConfig, FeedError, TlsFiles};
use vigil_model::ScaledClock;
use vigil_store::{KeySource, Outcome, Store};

const TOKEN: &str = "test-feed-token-0123456789";
const PW: &str = "a long enough password";

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn core_config(dir: &Path, speed: f64) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        key: KeySource::passphrase("feed-test-passphrase", "test"),
        clock: Arc::new(ScaledClock::new(Utc::now(), speed)),
        sim: SimSettings {
            scenario: Scenario::Stable,
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

struct Rig {
    dir: tempfile::TempDir,
    vigil: Arc<Vigil>,
    feed: Feed,
}

async fn rig(tweak: impl FnOnce(&mut FeedConfig)) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let vigil = Arc::new(Vigil::start(core_config(dir.path(), 10.0)).await.unwrap());
    let mut cfg = FeedConfig::new("127.0.0.1:0", Some(TOKEN.into()), "VIGIL_FEED_TOKEN").unwrap();
    tweak(&mut cfg);
    let feed = Feed::start(vigil.clone(), cfg).await.unwrap();
    Rig { dir, vigil, feed }
}

impl Rig {
    fn url(&self, query: &str) -> String {
        format!("{}{query}", self.feed.url())
    }

    async fn connect(&self, query: &str) -> Ws {
        let mut req = self.url(query).into_client_request().unwrap();
        req.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
        );
        tokio_tungstenite::connect_async(req).await.expect("connect").0
    }

    async fn stop(self) -> tempfile::TempDir {
        self.vigil.shutdown().await;
        tokio::time::timeout(Duration::from_secs(5), self.feed.stopped())
            .await
            .expect("the feed stops with Vigil");
        self.dir
    }
}

/// The next JSON message (pings and pongs skipped), within 5 s.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("the connection is open")
            .expect("no socket error");
        match m {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Close(f) => panic!("closed: {f:?}"),
            _ => continue,
        }
    }
}

/// Reads until a message of `kind` (other messages are checked for seq by the caller's `seen`).
async fn until(ws: &mut Ws, kind: &str, seen: &mut Vec<u64>) -> Value {
    loop {
        let m = next(ws).await;
        seen.push(m["seq"].as_u64().unwrap());
        if m["type"] == kind {
            return m;
        }
    }
}

/// Reads until a message for which `wanted` holds, within `within` (each message's seq
/// goes to `seen`); panics with `what` when none comes in time.
async fn until_match(
    ws: &mut Ws,
    seen: &mut Vec<u64>,
    within: Duration,
    what: &str,
    mut wanted: impl FnMut(&Value) -> bool,
) -> Value {
    let t0 = Instant::now();
    loop {
        let m = next(ws).await;
        seen.push(m["seq"].as_u64().unwrap());
        if wanted(&m) {
            return m;
        }
        assert!(t0.elapsed() < within, "{what}");
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

fn beds_of(snapshot: &Value) -> Vec<String> {
    snapshot["ward"]["beds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["bed"].as_str().unwrap().to_string())
        .collect()
}

fn assert_consecutive(seen: &[u64]) {
    for w in seen.windows(2) {
        assert_eq!(w[1], w[0] + 1, "seq must go up by one: {seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gets_a_snapshot_then_live_updates_numbered_without_gaps() {
    let r = rig(|_| {}).await;
    let mut ws = r.connect("").await;
    let first = next(&mut ws).await;
    assert_eq!(first["type"], "snapshot");
    assert_eq!(first["seq"], 1);
    assert_eq!(first["schema"], 1);
    assert_eq!(first["station"]["version"], r.vigil.info().version);
    assert_eq!(beds_of(&first), ["bed-1", "bed-2", "bed-3", "bed-4"]);
    let mut seen = vec![1];
    let mut readings = 0;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        let m = next(&mut ws).await;
        assert_eq!(m["type"], "update");
        assert!(
            m["update"]["now_ms"].as_i64().unwrap() > 0,
            "heartbeat carries the core's time"
        );
        readings += m["update"]["readings"].as_array().unwrap().len();
        seen.push(m["seq"].as_u64().unwrap());
    }
    assert_consecutive(&seen);
    // 250 ms batches: about 4 a second (heartbeats even when nothing changed).
    assert!(seen.len() >= 9, "only {} messages in 3 s", seen.len());
    assert!(readings > 20, "only {readings} live readings");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sees_only_the_beds_it_chose() {
    let r = rig(|_| {}).await;
    let mut ws = r.connect("?beds=bed-2").await;
    let snap = next(&mut ws).await;
    assert_eq!(beds_of(&snap), ["bed-2"]);
    for key in ["devices", "latest", "alarms"] {
        assert!(
            snap["ward"][key]
                .as_array()
                .unwrap()
                .iter()
                .all(|x| x["bed"] == "bed-2"),
            "{key}"
        );
    }
    let mut n = 0;
    for _ in 0..8 {
        let m = next(&mut ws).await;
        for r in m["update"]["readings"].as_array().unwrap() {
            assert_eq!(r["bed"], "bed-2");
            n += 1;
        }
    }
    assert!(n > 0, "bed-2's readings arrive");
    // Changing the choice: a snapshot of the new beds, then only theirs.
    send(&mut ws, json!({"type": "subscribe", "beds": ["bed-3", "bed-4"]})).await;
    let mut seen = Vec::new();
    let snap = until(&mut ws, "snapshot", &mut seen).await;
    assert_eq!(beds_of(&snap), ["bed-3", "bed-4"]);
    for _ in 0..8 {
        let m = next(&mut ws).await;
        for r in m["update"]["readings"].as_array().unwrap() {
            assert!(r["bed"] == "bed-3" || r["bed"] == "bed-4", "{r}");
        }
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_or_resyncing_gives_a_fresh_snapshot() {
    let r = rig(|_| {}).await;
    let mut ws = r.connect("").await;
    let a = next(&mut ws).await;
    for _ in 0..4 {
        next(&mut ws).await;
    }
    // After a gap the client asks again: a snapshot, with the numbering going on.
    send(&mut ws, json!({"type": "resync"})).await;
    let mut seen = vec![];
    let s = until(&mut ws, "snapshot", &mut seen).await;
    assert!(s["seq"].as_u64().unwrap() > 5);
    assert!(
        s["ward"]["now_ms"].as_i64() > a["ward"]["now_ms"].as_i64(),
        "a fresh snapshot, not the first one"
    );
    ws.close(None).await.unwrap();
    // A new connection starts again at 1 with the values as they are now.
    let mut ws = r.connect("").await;
    let b = next(&mut ws).await;
    assert_eq!(
        (b["type"].as_str(), b["seq"].as_u64()),
        (Some("snapshot"), Some(1))
    );
    assert!(b["ward"]["now_ms"].as_i64() >= s["ward"]["now_ms"].as_i64());
    r.stop().await;
}

/// The HTTP status of a refused upgrade.
fn refused_status(e: WsError) -> u16 {
    match e {
        WsError::Http(resp) => resp.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_data_without_the_token() {
    let r = rig(|_| {}).await;
    // No token.
    let e = tokio_tungstenite::connect_async(r.url("")).await.unwrap_err();
    assert_eq!(refused_status(e), 401);
    // A wrong one, as a header and as a browser's subprotocol.
    let mut req = r.url("").into_client_request().unwrap();
    req.headers_mut().insert(
        "Authorization",
        HeaderValue::from_static("Bearer test-feed-token-0123456780"),
    );
    assert_eq!(
        refused_status(tokio_tungstenite::connect_async(req).await.unwrap_err()),
        401
    );
    let mut req = r.url("").into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("vigil.feed.v1, bearer.wrong-token-0123456789"),
    );
    assert_eq!(
        refused_status(tokio_tungstenite::connect_async(req).await.unwrap_err()),
        401
    );
    // Another path.
    let mut req = r
        .feed
        .url()
        .replace("/feed", "/other")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
    );
    assert_eq!(
        refused_status(tokio_tungstenite::connect_async(req).await.unwrap_err()),
        404
    );
    // A browser's way in: the token as a subprotocol, answered with the feed's own.
    let mut req = r.url("").into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(&format!("vigil.feed.v1, bearer.{TOKEN}")).unwrap(),
    );
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.headers()["Sec-WebSocket-Protocol"], "vigil.feed.v1");
    assert_eq!(next(&mut ws).await["type"], "snapshot");
    assert_eq!(r.feed.stats().refused.load(Ordering::Relaxed), 4);
    ws.close(None).await.unwrap();
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_beyond_the_limit_are_refused_before_the_upgrade() {
    let r = rig(|c| c.max_clients = 2).await;
    let mut a = r.connect("").await;
    let mut b = r.connect("").await;
    assert_eq!(next(&mut a).await["type"], "snapshot");
    assert_eq!(next(&mut b).await["type"], "snapshot");
    let mut req = r.url("").into_client_request().unwrap();
    req.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
    );
    assert_eq!(
        refused_status(tokio_tungstenite::connect_async(req).await.unwrap_err()),
        503
    );
    // One leaves (closing handshake completed): there is room again.
    a.close(None).await.unwrap();
    let t0 = Instant::now();
    while r.feed.stats().connected.load(Ordering::Relaxed) > 1 {
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "the closed client is let go"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut c = r.connect("").await;
    assert_eq!(next(&mut c).await["type"], "snapshot");
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_never_starts_open_or_plain_off_loopback() {
    assert!(matches!(
        FeedConfig::new("127.0.0.1:0", None, "VIGIL_FEED_TOKEN"),
        Err(FeedError::NoToken(s)) if s == "VIGIL_FEED_TOKEN"
    ));
    assert!(matches!(
        FeedConfig::new("127.0.0.1:0", Some("short".into()), "VIGIL_FEED_TOKEN"),
        Err(FeedError::BadToken(_))
    ));
    let dir = tempfile::tempdir().unwrap();
    let vigil = Arc::new(Vigil::start(core_config(dir.path(), 1.0)).await.unwrap());
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let cfg = FeedConfig::new(listen, Some(TOKEN.into()), "VIGIL_FEED_TOKEN").unwrap();
        let e = Feed::start(vigil.clone(), cfg).await.err().expect("refused");
        assert!(matches!(e, FeedError::PlainNotLoopback(_)), "{e}");
        assert!(e.to_string().contains("loopback only"), "{e}");
    }
    vigil.shutdown().await;
}

/// Runs `openssl` in `dir` (the FHIR TLS tests make their certificates the same way).
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .args(args.split(' '))
        .current_dir(dir)
        .output()
        .expect("run the `openssl` command-line tool (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_the_site_certificate() {
    let pki = tempfile::tempdir().unwrap();
    let d = pki.path();
    std::fs::write(
        d.join("ca.cnf"),
        "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3\n[dn]\nCN = Feed test CA\n\
         [v3]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n",
    )
    .unwrap();
    std::fs::write(
        d.join("srv.cnf"),
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = vigil feed\n[v3]\n\
         basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n\
         extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    openssl(
        d,
        &format!("req -x509 -config ca.cnf {ec} -keyout ca.key -out ca.pem -days 2"),
    );
    openssl(
        d,
        &format!("req -new -config srv.cnf {ec} -keyout srv.key -out srv.csr"),
    );
    openssl(
        d,
        "x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 2 -extfile srv.cnf -extensions v3 -out srv.pem",
    );
    let r = rig(|c| {
        c.tls = Some(TlsFiles {
            cert: d.join("srv.pem"),
            key: d.join("srv.key"),
        })
    })
    .await;
    assert!(r.feed.url().starts_with("wss://127.0.0.1:"), "{}", r.feed.url());

    use rustls_pki_types::pem::PemObject;
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(d.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let client =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let mut req = r.url("").into_client_request().unwrap();
    req.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        req,
        None,
        true,
        Some(tokio_tungstenite::Connector::Rustls(Arc::new(client))),
    )
    .await
    .expect("TLS with the site's certificate, trusted through its CA");
    assert_eq!(next(&mut ws).await["type"], "snapshot");
    assert_eq!(next(&mut ws).await["type"], "update");
    // A client that does not trust the certificate gets no connection.
    let untrusting =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
    let mut req = r.url("").into_client_request().unwrap();
    req.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
    );
    assert!(tokio_tungstenite::connect_async_tls_with_config(
        req,
        None,
        true,
        Some(tokio_tungstenite::Connector::Rustls(Arc::new(untrusting)))
    )
    .await
    .is_err());
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_never_delays_another_and_is_closed_as_too_slow() {
    // Small socket buffers so a client that never reads fills them within a second; a
    // short queue and stall timeout so both limits are reached within the test.
    let r = rig(|c| {
        c.send_buffer = Some(4096);
        c.stall_timeout = Duration::from_secs(2);
        c.queue = 4;
    })
    .await;
    let mut good = r.connect("").await;
    // The stalled client: a tiny receive window, handshake done, then never read again.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(2048).unwrap();
    let tcp = sock.connect(r.feed.local_addr()).await.unwrap();
    let mut req = r.url("").into_client_request().unwrap();
    req.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
    );
    let (stalled, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();

    // Cadence 250 ms; allowed: +500 ms over it.
    const BOUND: Duration = Duration::from_millis(750);
    let mut seen = vec![next(&mut good).await["seq"].as_u64().unwrap()];
    let mut last = Instant::now();
    let mut worst = Duration::ZERO;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(6) {
        let m = next(&mut good).await;
        let gap = last.elapsed();
        last = Instant::now();
        worst = worst.max(gap);
        seen.push(m["seq"].as_u64().unwrap());
    }
    assert_consecutive(&seen);
    eprintln!("worst gap between the good client's messages beside a stalled client: {worst:?}");
    assert!(
        worst <= BOUND,
        "the good client waited {worst:?} between messages (bound {BOUND:?})"
    );
    let stats = r.feed.stats();
    assert_eq!(
        stats.too_slow.load(Ordering::Relaxed),
        1,
        "the stalled client was closed as too slow"
    );
    assert!(
        stats.overflows.load(Ordering::Relaxed) >= 1,
        "its queue was replaced by a snapshot"
    );
    assert_eq!(
        stats.connected.load(Ordering::Relaxed),
        1,
        "only the good client is left"
    );
    drop(stalled);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledge_from_the_central_station_reaches_the_bedside_under_the_users_own_session() {
    let r = rig(|_| {}).await;
    let v = &r.vigil;
    auth::add_user(v.store(), "nurse.kim", Role::Nurse, PW)
        .await
        .unwrap();
    v.admit(AdmitRequest {
        bed: "bed-1".into(),
        display_name: "Centra Stationsson".into(),
        mrn: "MRN-FEED-1".into(),
        date_of_birth: "1950-05-06".into(),
        category: "adult".into(),
    })
    .await
    .unwrap();
    // An alarm at every bed: the bedside cannot sound.
    v.report_audio(false).await;

    let mut ws = r.connect("?beds=bed-1").await;
    let mut seen = Vec::new();
    let snap = until(&mut ws, "snapshot", &mut seen).await;
    // The token shows numerics and alarms, never who the patient is.
    let adm = &snap["ward"]["beds"][0]["admission"];
    assert_eq!(
        (adm["display_name"].as_str(), adm["mrn"].as_str()),
        (Some(""), Some(""))
    );
    let ids: Vec<u64> = snap["ward"]["alarms"][0]["active"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_u64().unwrap())
        .collect();
    assert!(!ids.is_empty(), "bed-1 shows an alarm");

    // Without a signed-in connection: refused, readable.
    send(
        &mut ws,
        json!({"type": "acknowledge", "id": "c1", "bed": "bed-1", "alarms": ids}),
    )
    .await;
    let res = until(&mut ws, "result", &mut seen).await;
    assert_eq!(
        (res["request"].as_str(), res["ok"].as_bool()),
        (Some("c1"), Some(false))
    );
    assert!(
        res["error"]
            .as_str()
            .unwrap()
            .contains("sign in at the central station first"),
        "{res}"
    );
    // Bad JSON: answered, the connection stays.
    ws.send(Message::text("{not json")).await.unwrap();
    let res = until(&mut ws, "result", &mut seen).await;
    assert_eq!(
        (res["ok"].as_bool(), res["request"].as_str()),
        (Some(false), None)
    );
    assert!(res["error"].as_str().unwrap().contains("not understood"), "{res}");
    send(&mut ws, json!({"type": "discharge", "id": "c9", "bed": "bed-1"})).await;
    let res = until(&mut ws, "result", &mut seen).await;
    assert_eq!(
        (res["ok"].as_bool(), res["request"].as_str()),
        (Some(false), Some("c9"))
    );
    // A wrong password.
    send(
        &mut ws,
        json!({"type": "sign_in", "id": "c2", "user": "nurse.kim", "password": "not the password at all"}),
    )
    .await;
    let res = until(&mut ws, "result", &mut seen).await;
    assert_eq!(res["ok"], false);

    // Rate-limited after the failure: wait it out (1 s).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    send(
        &mut ws,
        json!({"type": "sign_in", "id": "c3", "user": "nurse.kim", "password": PW}),
    )
    .await;
    let res = until(&mut ws, "result", &mut seen).await;
    assert_eq!(res["ok"], true, "{res}");
    assert_eq!(res["session"]["user"], "nurse.kim");
    assert_eq!(res["session"]["role"], "nurse");
    assert!(v.session().is_none(), "the workstation's session is untouched");
    // Signed in with a role that may see patients: the next snapshot names them.
    let snap = until(&mut ws, "snapshot", &mut seen).await;
    assert_eq!(
        snap["ward"]["beds"][0]["admission"]["display_name"],
        "Centra Stationsson"
    );
    // A client sent snapshot after snapshot (resyncs, or a slow one whose queue
    // overflowed) is still one view of each patient in the audit trail.
    for _ in 0..3 {
        send(&mut ws, json!({"type": "resync"})).await;
        until(&mut ws, "snapshot", &mut seen).await;
    }

    send(
        &mut ws,
        json!({"type": "acknowledge", "id": "c4", "bed": "bed-1", "alarms": ids}),
    )
    .await;
    // The acknowledged state is sent once, at once: it may come before or
    // after the command's result.
    let acked_update = |m: &Value| {
        m["update"]["alarms"].as_array().into_iter().flatten().any(|b| {
            b["active"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["acknowledged_by"] == "nurse.kim (central)")
        })
    };
    let mut came_back = false;
    let res = until_match(&mut ws, &mut seen, Duration::from_secs(3), "the result", |m| {
        came_back |= acked_update(m);
        m["type"] == "result"
    })
    .await;
    assert_eq!(
        (res["ok"].as_bool(), res["acknowledged"].as_u64()),
        (Some(true), Some(ids.len() as u64)),
        "{res}"
    );
    // The bedside shows who, from where.
    let bed1 = v
        .snapshot()
        .alarms
        .into_iter()
        .find(|a| a.bed == "bed-1")
        .unwrap();
    for a in bed1.active.iter().filter(|a| ids.contains(&a.id)) {
        assert!(a.acknowledged);
        assert_eq!(a.acknowledged_by.as_deref(), Some("nurse.kim (central)"));
    }
    // ... and the central station sees it come back in the live updates.
    if !came_back {
        until_match(
            &mut ws,
            &mut seen,
            Duration::from_secs(3),
            "the acknowledgement comes back to the central station",
            acked_update,
        )
        .await;
    }
    send(
        &mut ws,
        json!({"type": "pause_audio", "id": "c5", "bed": "bed-1"}),
    )
    .await;
    let res = until(&mut ws, "result", &mut seen).await;
    assert_eq!(res["ok"], true, "{res}");
    // A patient admitted while the central station watches is first shown in an
    // update: that is a view of the new patient too.
    v.discharge("bed-1").await.unwrap();
    let second = v
        .admit(AdmitRequest {
            bed: "bed-1".into(),
            display_name: "Secunda Stationsson".into(),
            mrn: "MRN-FEED-2".into(),
            date_of_birth: "1951-06-07".into(),
            category: "adult".into(),
        })
        .await
        .unwrap();
    until_match(
        &mut ws,
        &mut seen,
        Duration::from_secs(3),
        "the new admission reaches central",
        |m| {
            m["update"]["beds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|b| b["admission"]["display_name"] == "Secunda Stationsson")
        },
    )
    .await;
    send(&mut ws, json!({"type": "sign_out", "id": "c6"})).await;
    let res = until(&mut ws, "result", &mut seen).await;
    assert_eq!(res["ok"], true, "{res}");
    assert_consecutive(&seen);
    ws.close(None).await.unwrap();

    let dir = r.stop().await;
    // The signed audit trail on the bedside records the central user's actions.
    let store = Store::open(
        &dir.path().join("vigil.db"),
        &KeySource::passphrase("feed-test-passphrase", "test"),
    )
    .await
    .unwrap();
    let trail = store.audit_entries(None, None).await.unwrap();
    let has = |actor: &str, action: &str, outcome: Outcome| {
        trail
            .iter()
            .any(|e| e.record.actor == actor && e.record.action == action && e.record.outcome == outcome)
    };
    assert!(has("nurse.kim (central)", "sign_in", Outcome::Success));
    assert!(has("nurse.kim (central)", "acknowledge", Outcome::Success));
    assert!(has("nurse.kim (central)", "pause_audio", Outcome::Success));
    assert!(
        has("nurse.kim (central)", "view_patient", Outcome::Success),
        "names sent to the central station are a recorded PHI access"
    );
    let mut views: Vec<_> = trail
        .iter()
        .filter(|e| e.record.actor == "nurse.kim (central)" && e.record.action == "view_patient")
        .map(|e| e.record.admission.clone())
        .collect();
    let n = views.len();
    views.sort();
    views.dedup();
    assert!(
        views.contains(&Some(second.id.clone())),
        "a patient first shown in a live update is a recorded view"
    );
    assert_eq!(
        n,
        views.len(),
        "one record per patient shown, not one per snapshot"
    );
    assert!(
        has("nurse.kim", "sign_in", Outcome::Failed),
        "the wrong password is recorded too"
    );
    let log = store
        .alarm_log(
            Some("bed-1"),
            Utc::now() - chrono::Duration::days(1),
            Utc::now() + chrono::Duration::days(1),
        )
        .await
        .unwrap();
    assert!(
        format!("{log:?}").contains("nurse.kim (central)"),
        "the alarm log names the central user"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_central_user_may_do_only_what_their_role_allows() {
    let r = rig(|_| {}).await;
    let v = &r.vigil;
    auth::add_user(v.store(), "viewer.lee", Role::Viewer, PW)
        .await
        .unwrap();
    auth::add_user(v.store(), "admin.ops", Role::Admin, PW)
        .await
        .unwrap();
    v.report_audio(false).await;
    let mut ws = r.connect("?beds=bed-2").await;
    let mut seen = Vec::new();
    let snap = until(&mut ws, "snapshot", &mut seen).await;
    let id = snap["ward"]["alarms"][0]["active"][0]["id"].as_u64().unwrap();
    for user in ["viewer.lee", "admin.ops"] {
        send(
            &mut ws,
            json!({"type": "sign_in", "id": "s", "user": user, "password": PW}),
        )
        .await;
        assert_eq!(until(&mut ws, "result", &mut seen).await["ok"], true);
        send(
            &mut ws,
            json!({"type": "acknowledge", "id": "a", "bed": "bed-2", "alarms": [id]}),
        )
        .await;
        let res = until(&mut ws, "result", &mut seen).await;
        assert_eq!(res["ok"], false, "{user}: {res}");
        assert!(
            res["error"].as_str().unwrap().contains("acknowledge"),
            "{user}: {res}"
        );
        send(&mut ws, json!({"type": "pause_audio", "id": "p", "bed": "bed-2"})).await;
        assert_eq!(until(&mut ws, "result", &mut seen).await["ok"], false, "{user}");
    }
    let bed2 = v
        .snapshot()
        .alarms
        .into_iter()
        .find(|a| a.bed == "bed-2")
        .unwrap();
    assert!(
        bed2.active.iter().all(|a| !a.acknowledged),
        "nothing was acknowledged"
    );
    assert_consecutive(&seen);
    ws.close(None).await.unwrap();
    r.stop().await;
}

/// A central connection can stay open for a whole shift: an account disabled after its
/// sign-in loses its rights with the next command, not when the connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_disabled_after_sign_in_can_no_longer_acknowledge_from_central() {
    let r = rig(|_| {}).await;
    let v = &r.vigil;
    auth::add_user(v.store(), "nurse.kim", Role::Nurse, PW)
        .await
        .unwrap();
    v.report_audio(false).await;
    let mut ws = r.connect("?beds=bed-2").await;
    let mut seen = Vec::new();
    let snap = until(&mut ws, "snapshot", &mut seen).await;
    let id = snap["ward"]["alarms"][0]["active"][0]["id"].as_u64().unwrap();
    send(
        &mut ws,
        json!({"type": "sign_in", "id": "s", "user": "nurse.kim", "password": PW}),
    )
    .await;
    assert_eq!(until(&mut ws, "result", &mut seen).await["ok"], true);

    auth::set_disabled(v.store(), "nurse.kim", true).await.unwrap();
    send(
        &mut ws,
        json!({"type": "acknowledge", "id": "a", "bed": "bed-2", "alarms": [id]}),
    )
    .await;
    let res = until(&mut ws, "result", &mut seen).await;
    assert_eq!(res["ok"], false, "{res}");
    assert!(res["error"].as_str().unwrap().contains("disabled"), "{res}");
    send(&mut ws, json!({"type": "pause_audio", "id": "p", "bed": "bed-2"})).await;
    assert_eq!(until(&mut ws, "result", &mut seen).await["ok"], false);
    let bed2 = v
        .snapshot()
        .alarms
        .into_iter()
        .find(|a| a.bed == "bed-2")
        .unwrap();
    assert!(
        bed2.active.iter().all(|a| !a.acknowledged),
        "nothing was acknowledged"
    );
    assert_eq!(
        serde_json::to_value(&bed2.audio).unwrap()["state"],
        "normal",
        "audio not paused"
    );
    ws.close(None).await.unwrap();
    r.stop().await;
}
