//! Bluetooth LE latency: from a device's notification to the decoded reading
//! (a) on the screen's channel and (b) committed in the encrypted store, for
//! 16 devices at their natural rates (8 heart-rate straps and 8 pulse
//! oximeters at 1 Hz), beside the same figures for simulated devices measured
//! in the same run.
//!
//! There is no radio: a fake BlueZ (tests/ble/fake_bluez.py, the one the BLE
//! tests use) serves org.bluez on a private D-Bus system bus, and a real
//! `Vigil` in `Auto` mode talks to it through btleplug exactly as it would to
//! bluetoothd. libdbus reads the system bus address once per process, so the
//! benchmark re-runs itself with the private bus's address set (the devices
//! test harness's `Bus`/`FakeBluez`, shared by `#[path]`).
//!
//! What is measured, and from where:
//! * **sent**: BLE, the fake's wall-clock time just before it emits the
//!   notification signal (its reply to `notify` carries it); simulated, the
//!   reading's receive stamp (the simulator stamps a payload as it sends it).
//! * **screen, LiveEvent**: when the reading arrives on a `Vigil::subscribe`
//!   receiver (the live fan-out, before batching).
//! * **screen, WardUpdate**: when the `WardUpdate` holding it reaches the
//!   `Vigil::stream_updates` sink at the app's 250 ms batching: what the screen
//!   pulls (feed.rs).
//! * **store**: when the store writer's `append` holding it has returned
//!   (one committed transaction, `synchronous=FULL`). Observed by polling
//!   `Stats.stored` every millisecond: the writer commits readings in the
//!   order the pipeline publishes them, so the n-th reading on the live
//!   fan-out is committed once `stored >= n`. Includes the writer's ≤ 0.5 s
//!   batching, which dominates by design (a crash loses at most ~1 s).
//!
//! For BLE the transport alone (fake's send → the source's receive stamp:
//! D-Bus, btleplug) is shown too. All clocks are the same wall clock.

#[path = "../../devices/tests/ble/harness.rs"]
// Only the bus and the fake are used here; the rest serves the device tests.
#[allow(dead_code)]
mod harness;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use vigil_core::view::LiveEvent;
use vigil_core::{Config, DeviceMode, SimSettings, Vigil};
use vigil_devices::sim::Scenario;
use vigil_gatt::encode;
use vigil_model::{Mdc, SystemClock, Value};
use vigil_store::KeySource;

/// Set in the re-run child that measures (holds the private bus's address).
const CHILD_ENV: &str = "VIGIL_BENCH_BLE_CHILD";
const PAIRS: usize = 8;
const WARMUP: Duration = Duration::from_secs(3);
const RUN: Duration = Duration::from_secs(30);
/// The screen's batching in the app (`stream_updates` interval).
const UI_EVERY: Duration = Duration::from_millis(250);
/// The readings compared: what straps and oximeters send at 1 Hz.
const CODES: [Mdc; 3] = [
    Mdc::ECG_HEART_RATE,
    Mdc::PULS_OXIM_SAT_O2,
    Mdc::PULS_OXIM_PULS_RATE,
];

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

pub async fn run() {
    if std::env::var_os(CHILD_ENV).is_some() {
        measure().await;
        return;
    }
    let bus = harness::Bus::start();
    let status = tokio::process::Command::new(std::env::current_exe().expect("benchmark binary"))
        .arg("ble")
        .env(CHILD_ENV, "1")
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .status()
        .await
        .expect("re-running the benchmark");
    if !status.success() {
        println!("BLE benchmark failed ({status}); needs dbus-daemon and Python dbus-fast");
    }
}

/// One reading as it reached an observer.
struct Seen {
    device: String,
    mdc: u32,
    value: Option<f64>,
    received_ms: i64,
    at_us: i64,
}

/// (device id, rate) → send times (µs), oldest first.
type Sends = HashMap<(String, u64), Vec<i64>>;

/// Everything one run observed.
#[derive(Default)]
struct Observed {
    /// Every reading on the live fan-out from the subscription on, in order.
    live: Vec<Seen>,
    /// Readings published before the subscription (the simulator starts
    /// with `Vigil::start`): `live[i]` is reading number `before + i + 1`.
    before: u64,
    /// Every reading in a `WardUpdate`.
    ui: Vec<Seen>,
    /// (stored count, when it was first seen).
    commits: Vec<(u64, i64)>,
}

/// Runs `vigil` for `RUN` after the warm-up, recording what reaches the
/// screen and when the store commits. `during` runs meanwhile (the BLE
/// notification driver); it must stop by itself after `WARMUP + RUN`.
async fn observe(vigil: Arc<Vigil>, during: impl std::future::Future<Output = ()>) -> Observed {
    let obs = Arc::new(Mutex::new(Observed::default()));
    let mut live = vigil.subscribe();
    let stop = tokio_util::sync::CancellationToken::new();

    let (o, s) = (obs.clone(), stop.clone());
    let live_task = tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                _ = s.cancelled() => return,
                ev = live.recv() => ev,
            };
            match ev {
                Ok(LiveEvent::Reading(r)) => o.lock().unwrap().live.push(Seen {
                    device: r.device,
                    mdc: r.mdc,
                    value: r.value,
                    received_ms: r.received_ms,
                    at_us: now_us(),
                }),
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => panic!("live subscriber lagged by {n}: indices lost"),
                Err(RecvError::Closed) => return,
            }
        }
    });
    let (o, v) = (obs.clone(), vigil.clone());
    let rx = v.subscribe();
    let ui_task = tokio::spawn(async move {
        v.stream_updates(rx, UI_EVERY, move |u| {
            let at_us = now_us();
            let mut o = o.lock().unwrap();
            o.ui.extend(u.readings.into_iter().map(|r| Seen {
                device: r.device,
                mdc: r.mdc,
                value: r.value,
                received_ms: r.received_ms,
                at_us,
            }));
            true
        })
        .await
    });
    let (o, v, s) = (obs.clone(), vigil.clone(), stop.clone());
    let commit_task = tokio::spawn(async move {
        let mut last = 0;
        while !s.is_cancelled() {
            let stored = v.stats().stored.load(Ordering::Relaxed);
            if stored != last {
                last = stored;
                o.lock().unwrap().commits.push((stored, now_us()));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });

    during.await;
    // Let the last batch reach the screen and the store.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    let _ = commit_task.await;
    let _ = live_task.await;
    vigil.shutdown().await;
    let _ = ui_task.await;
    let mut obs = Arc::try_unwrap(obs)
        .unwrap_or_else(|_| panic!("observers still running"))
        .into_inner()
        .unwrap();
    // Every reading is counted once and published once (the subscriber
    // never lagged), so what it missed is the difference.
    let stats = vigil.stats();
    obs.before = stats.get(&stats.readings) - obs.live.len() as u64;
    assert_eq!(
        stats.get(&stats.stored),
        stats.get(&stats.readings),
        "all stored at shutdown"
    );
    obs
}

/// Latencies in ms of the readings whose send time `sent` knows, sent in
/// the measured window (`RUN` from `start_us`): (screen via LiveEvent,
/// screen via WardUpdate, store).
fn latencies(obs: &Observed, start_us: i64, sent: impl Fn(&Seen) -> Option<i64>) -> [Vec<f64>; 3] {
    let relevant = |s: &Seen| CODES.iter().any(|c| c.0 == s.mdc);
    let in_window = |t: &i64| (start_us..start_us + RUN.as_micros() as i64).contains(t);
    let mut out: [Vec<f64>; 3] = Default::default();
    for (i, s) in obs.live.iter().enumerate() {
        let Some(t0) = sent(s).filter(|t| in_window(t) && relevant(s)) else {
            continue;
        };
        out[0].push((s.at_us - t0) as f64 / 1e3);
        // Readings are committed in the order they were published.
        let n = obs.before + i as u64 + 1;
        if let Some((_, at)) = obs.commits.iter().find(|(stored, _)| *stored >= n) {
            out[2].push((at - t0) as f64 / 1e3);
        }
    }
    for s in &obs.ui {
        if let Some(t0) = sent(s).filter(|t| in_window(t) && relevant(s)) {
            out[1].push((s.at_us - t0) as f64 / 1e3);
        }
    }
    out
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn row(label: &str, v: &mut [f64]) {
    if v.is_empty() {
        println!("{label:<50} {:>8} {:>10} {:>10}", 0, "-", "-");
        return;
    }
    let (p50, p99) = (percentile(v, 0.5), percentile(v, 0.99));
    println!("{label:<50} {:>8} {p50:>10.1} {p99:>10.1}", v.len());
}

fn config(dir: &std::path::Path, devices: DeviceMode) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        key: KeySource::passphrase("benchmark-passphrase", "bench"),
        clock: Arc::new(SystemClock),
        sim: SimSettings {
            scenario: Scenario::Stable,
            beds: PAIRS,
            seed: 5,
        },
        retention: Default::default(),
        low_disk_bytes: 0,
        site_files: Vec::new(),
        alarm_preset: Default::default(),
        devices,
        fhir: None,
        ble: Default::default(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// (address, GATT characteristic, kind) of device `i`: straps 0..8, oximeters 8..16.
fn device(i: usize) -> (String, &'static str, &'static str) {
    let address = format!("AA:BB:CC:DD:{:02X}:{:02X}", i / PAIRS, i % PAIRS);
    if i < PAIRS {
        (address, "2a37", "heart_rate_strap")
    } else {
        (address, "2a5f", "pulse_oximeter")
    }
}

/// The payload a device sends in round `k`. The rate (HR or pulse rate)
/// 40..160 tells the notifications of one device apart for two minutes.
fn payload(i: usize, k: u64) -> (String, f64) {
    let rate = 40 + (k % 120) as u16;
    let bytes = if i < PAIRS {
        encode::heart_rate(rate, Some(true), &[])
    } else {
        encode::plx_continuous(Value::Number(97.0), Value::Number(f64::from(rate)), None)
    };
    (hex(&bytes), f64::from(rate))
}

async fn measure() {
    let devices = 2 * PAIRS;
    // --- Bluetooth LE: the fake's devices, assigned in the store beforehand
    // (as after a restart), then a real Vigil in Auto mode.
    let mut fake = harness::FakeBluez::start().await;
    for i in 0..devices {
        let (address, _, _) = device(i);
        let services = if i < PAIRS {
            ["180d", "180f"]
        } else {
            ["1822", "180f"]
        };
        fake.add(json!({"address": address, "name": format!("dev-{i}"), "rssi": -50, "services": services}))
            .await;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let store = vigil_store::Store::open(
            &vigil_core::config::store_path(dir.path()),
            &KeySource::passphrase("benchmark-passphrase", "bench"),
        )
        .await
        .unwrap();
        for i in 0..devices {
            let (address, _, kind) = device(i);
            store
                .assign_device(&address, &format!("bed-{}", i % PAIRS + 1), kind)
                .await
                .unwrap();
        }
        store.close().await;
    }
    let vigil = Arc::new(Vigil::start(config(dir.path(), DeviceMode::Auto)).await.unwrap());
    assert_eq!(vigil.info().mode, "real", "the fake adapter was not found");
    // Every device connected and subscribed before measuring.
    for i in 0..devices {
        let (address, ch, _) = device(i);
        fake.cmd(json!({"cmd": "wait", "address": address, "until": "notifying", "char": ch, "timeout": 60}))
            .await;
    }

    let sends: Arc<Mutex<Sends>> = Default::default();
    let start_us = now_us() + WARMUP.as_micros() as i64;
    let driver = {
        let sends = sends.clone();
        async move {
            // Each device at 1 Hz, the 16 spread evenly over the second.
            let mut tick = tokio::time::interval(Duration::from_secs(1) / devices as u32);
            let rounds = (WARMUP + RUN).as_secs();
            for k in 0..rounds {
                for i in 0..devices {
                    tick.tick().await;
                    let (address, ch, _) = device(i);
                    let (hex, rate) = payload(i, k);
                    let reply = fake
                        .cmd(json!({"cmd": "notify", "address": address, "char": ch, "hex": hex, "timeout": 5}))
                        .await;
                    let sent = reply["sent_us"].as_i64().expect("the fake reports its send time");
                    let id = vigil_devices::ble::device_id(&address);
                    sends
                        .lock()
                        .unwrap()
                        .entry((id, rate as u64))
                        .or_default()
                        .push(sent);
                }
            }
            drop(fake);
        }
    };
    let obs = observe(vigil.clone(), driver).await;
    let sends = sends.lock().unwrap().clone();

    // A payload's send time: its rate (HR / pulse rate) names the
    // notification (the latest send of that rate before it arrived); SpO2
    // shares the payload, hence the receive stamp, of the pulse rate.
    let mut by_payload: HashMap<(String, i64), i64> = HashMap::new();
    for s in &obs.live {
        let keyed = s.mdc == Mdc::ECG_HEART_RATE.0 || s.mdc == Mdc::PULS_OXIM_PULS_RATE.0;
        let Some(rate) = s.value.filter(|_| keyed) else {
            continue;
        };
        if let Some(t) = sends
            .get(&(s.device.clone(), rate as u64))
            .and_then(|ts| ts.iter().rev().find(|t| **t <= s.at_us))
        {
            by_payload.insert((s.device.clone(), s.received_ms), *t);
        }
    }
    let sent = |s: &Seen| by_payload.get(&(s.device.clone(), s.received_ms)).copied();
    let [mut ble_live, mut ble_ui, mut ble_store] = latencies(&obs, start_us, sent);
    // The receive stamp is whole milliseconds (truncated): ±1 ms.
    let mut transport: Vec<f64> = obs
        .live
        .iter()
        .filter_map(|s| {
            let t0 = sent(s).filter(|t| *t >= start_us)?;
            (s.mdc != Mdc::PULS_OXIM_SAT_O2.0).then(|| (s.received_ms * 1000 - t0) as f64 / 1e3)
        })
        .collect();
    let sent_total: usize = sends.values().map(Vec::len).sum();

    // --- Simulated: the same beds, the simulator's straps and oximeters
    // (plus its slower respiration, temperature and blood-pressure devices).
    let sim_dir = tempfile::tempdir().unwrap();
    let sim = Arc::new(
        Vigil::start(config(sim_dir.path(), DeviceMode::Simulated))
            .await
            .unwrap(),
    );
    let sim_start = now_us() + WARMUP.as_micros() as i64;
    let obs = observe(sim.clone(), tokio::time::sleep(WARMUP + RUN)).await;
    let [mut sim_live, mut sim_ui, mut sim_store] =
        latencies(&obs, sim_start, |s| Some(s.received_ms * 1000));

    println!(
        "BLE latency: {devices} devices ({PAIRS} HR straps + {PAIRS} pulse oximeters, 1 Hz each) over a fake \
         BlueZ on a private D-Bus, {} s; simulated: {PAIRS} beds (the same {devices} straps/oximeters \
         measured, plus {} slower devices), same run.",
        RUN.as_secs(),
        PAIRS * 3
    );
    println!(
        "BLE notifications sent: {sent_total} (incl. {} s warm-up)",
        WARMUP.as_secs()
    );
    println!("{:<50} {:>8} {:>10} {:>10}", "", "count", "p50 ms", "p99 ms");
    row("BLE: sent -> source receive stamp (±1 ms)", &mut transport);
    row("BLE: sent -> LiveEvent (fan-out)", &mut ble_live);
    row("BLE: sent -> WardUpdate (UI channel, 250 ms batch)", &mut ble_ui);
    row("BLE: sent -> committed in store", &mut ble_store);
    row("simulated: sent -> LiveEvent (fan-out)", &mut sim_live);
    row("simulated: sent -> WardUpdate (UI channel)", &mut sim_ui);
    row("simulated: sent -> committed in store", &mut sim_store);
}
