//! The whole core over real Bluetooth LE code: `Vigil::start` in `Auto` mode
//! finds the fake BlueZ's adapter, and everything a nurse does and sees goes
//! through the real paths: `assign_device` / `scan` / `remove_device`, the
//! btleplug source, decode, ward state, technical alarms, the `WardUpdate`
//! stream the screen gets, `snapshot()`, and the encrypted store read back
//! after shutdown.
//!
//! Every scenario runs in a process of its own with its own private D-Bus
//! system bus and fake BlueZ: the devices crate's harness is shared (by
//! `#[path]`), see `crates/devices/tests/ble/harness.rs`. Needs `dbus-daemon`
//! and Python with dbus-fast (tests/ble/requirements.txt).
//!
//! The clock is the system clock: the BLE source's backoff and link checks
//! run on real time, and the staleness rules are checked against it.

#[path = "../../../devices/tests/ble/harness.rs"]
// The source-level helpers (`Run`, payload matchers) are for the devices tests.
#[allow(dead_code)]
mod harness;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use harness::FakeBluez;
use serde_json::json;
use vigil_alarms::{AlarmKind, BedAlarmState, TechnicalKind};
use vigil_core::view::{WardSnapshot, WardUpdate};
use vigil_core::{Config, CoreError, DeviceMode, SimSettings, Vigil};
use vigil_gatt::encode;
use vigil_model::{LinkState, Mdc, Reading, Source, SystemClock, Value};
use vigil_store::{KeySource, Store};

/// A scenario: an async test body run in its own process with its own bus.
macro_rules! scenario {
    ($(#[$meta:meta])* async fn $name:ident() $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() {
            harness::isolated(concat!(module_path!(), "::", stringify!($name)), || {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async $body)
            });
        }
    };
}

const STRAP: &str = "AA:BB:CC:DD:EE:01";
const STRAP_ID: &str = "ble-AA:BB:CC:DD:EE:01";
const METER: &str = "AA:BB:CC:DD:EE:20";
const METER_ID: &str = "ble-AA:BB:CC:DD:EE:20";
const PASSPHRASE: &str = "core-ble-test-passphrase";
/// Longest wait for anything the screen should show.
const LIMIT: Duration = Duration::from_secs(30);
/// The BLE source's periodic link check in the app's configuration
/// (`BleConfig::new`): the longest a missed disconnect event can go unseen.
const LINK_CHECK: Duration = Duration::from_secs(5);

fn key() -> KeySource {
    KeySource::passphrase(PASSPHRASE, "test")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hr(bpm: u16) -> String {
    hex(&encode::heart_rate(bpm, Some(true), &[]))
}

fn strap(address: &str, name: &str, rssi: i16) -> serde_json::Value {
    json!({"address": address, "name": name, "rssi": rssi, "services": ["180d", "180f", "180a"], "battery": 87,
           "dis": {"manufacturer": "Polar Electro Oy", "model": "H10", "serial": "C0680226", "firmware": "5.0.0"}})
}

/// A stored glucose record taken at 07:`minute` yesterday (device clock):
/// within the store's retention, which older records are refused beyond.
fn glucose(seq: u16, minute: u32, mg_dl: f64) -> String {
    let yesterday: NaiveDate = Utc::now().date_naive() - chrono::Days::new(1);
    let t = yesterday.and_hms_opt(7, minute, 0).unwrap();
    hex(&encode::glucose_mg_dl(seq, t, Value::Number(mg_dl)))
}

/// A running Vigil and every `WardUpdate` the screen has been sent.
struct App {
    vigil: Arc<Vigil>,
    updates: Arc<Mutex<Vec<WardUpdate>>>,
    stream: tokio::task::JoinHandle<()>,
}

impl App {
    async fn start(dir: &Path, devices: DeviceMode) -> App {
        Self::start_with(dir, devices, Default::default()).await
    }

    /// [`App::start`] with a site's Bluetooth policy.
    async fn start_with(dir: &Path, devices: DeviceMode, ble: vigil_core::site::BleSite) -> App {
        let vigil = Arc::new(
            Vigil::start(Config {
                data_dir: dir.to_path_buf(),
                key: key(),
                clock: Arc::new(SystemClock),
                sim: SimSettings::default(),
                retention: Default::default(),
                low_disk_bytes: 0,
                site_files: Vec::new(),
                alarm_preset: Default::default(),
                devices,
                fhir: None,
                ble,
            })
            .await
            .expect("Vigil starts"),
        );
        let updates = Arc::new(Mutex::new(Vec::new()));
        let (v, u) = (vigil.clone(), updates.clone());
        // The screen's subscription, as the Tauri command sets it up.
        let rx = v.subscribe();
        let stream = tokio::spawn(async move {
            v.stream_updates(rx, Duration::from_millis(100), move |up| {
                u.lock().unwrap().push(up);
                true
            })
            .await
        });
        let app = App {
            vigil,
            updates,
            stream,
        };
        // The first heartbeat: the subscription is live, nothing is missed.
        app.until("the first heartbeat", |u| !u.is_empty()).await;
        app
    }

    fn updates(&self) -> Vec<WardUpdate> {
        self.updates.lock().unwrap().clone()
    }

    /// Waits until the updates received so far satisfy `pred`.
    async fn until(&self, what: &str, pred: impl Fn(&[WardUpdate]) -> bool) {
        let deadline = Instant::now() + LIMIT;
        while !pred(&self.updates.lock().unwrap()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the snapshot satisfies `pred`, and returns it.
    async fn until_snapshot(&self, what: &str, pred: impl Fn(&WardSnapshot) -> bool) -> WardSnapshot {
        let deadline = Instant::now() + LIMIT;
        loop {
            let snap = self.vigil.snapshot();
            if pred(&snap) {
                return snap;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; snapshot devices {:#?}, alarms {:#?}",
                snap.devices,
                snap.alarms
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Shuts down (commits everything) and ends the screen's stream.
    async fn stop(self) -> Vec<WardUpdate> {
        self.vigil.shutdown().await;
        tokio::time::timeout(Duration::from_secs(5), self.stream)
            .await
            .expect("the update stream ends on shutdown")
            .unwrap();
        let u = self.updates.lock().unwrap().clone();
        u
    }
}

/// The device's states as the screen saw them, repeats folded.
fn device_states(updates: &[WardUpdate], device: &str) -> Vec<LinkState> {
    let mut out: Vec<LinkState> = Vec::new();
    for d in updates
        .iter()
        .flat_map(|u| &u.devices)
        .filter(|d| d.device == device)
    {
        if out.last() != Some(&d.state) {
            out.push(d.state);
        }
    }
    out
}

/// Numeric values of `mdc` from `device` the screen was sent, in order.
fn live_values(updates: &[WardUpdate], device: &str, mdc: Mdc) -> Vec<f64> {
    updates
        .iter()
        .flat_map(|u| &u.readings)
        .filter(|r| r.device == device && r.mdc == mdc.0)
        .map(|r| r.value.expect("a number"))
        .collect()
}

/// Active (not latched) technical alarms of `device` at a bed.
fn technical(state: &BedAlarmState, device: &str) -> Vec<TechnicalKind> {
    state
        .active
        .iter()
        .filter(|a| !a.latched)
        .filter_map(|a| match &a.kind {
            AlarmKind::Technical { device: d, kind, .. } if d.contains(device) => Some(*kind),
            _ => None,
        })
        .collect()
}

fn bed_alarms<'a>(snap: &'a WardSnapshot, bed: &str) -> &'a BedAlarmState {
    snap.alarms
        .iter()
        .find(|a| a.bed == bed)
        .expect("every bed has an alarm state")
}

fn device_state(snap: &WardSnapshot, device: &str) -> Option<LinkState> {
    snap.devices.iter().find(|d| d.device == device).map(|d| d.state)
}

/// Every reading of `bed` stored (within an hour of now), read back with the
/// key after shutdown.
async fn stored(dir: &Path, bed: &str) -> Vec<Reading> {
    stored_within(dir, bed, chrono::Duration::hours(1)).await
}

/// Every reading of `bed` stored within `around` of now, oldest first.
async fn stored_within(dir: &Path, bed: &str, around: chrono::Duration) -> Vec<Reading> {
    let store = Store::open(&vigil_core::config::store_path(dir), &key())
        .await
        .unwrap();
    let now = Utc::now();
    let all = store
        .query_range(Some(bed), now - around, now + around)
        .await
        .unwrap();
    store.close().await;
    all
}

fn numbers(readings: &[Reading], device: &str, mdc: Mdc) -> Vec<f64> {
    readings
        .iter()
        .filter(|r| r.device == device && r.code == mdc)
        .map(|r| r.value.number().expect("a number"))
        .collect()
}

async fn assign_strap(app: &App, fake: &mut FakeBluez) {
    fake.add(strap(STRAP, "Polar H10", -50)).await;
    // Lower case on purpose: the address is normalised on the way in.
    app.vigil
        .assign_device(&STRAP.to_lowercase(), "bed-1", "heart_rate_strap")
        .await
        .expect("assigning the strap");
}

/// Sends heart rates and waits until the screen has all of `expect` (from the start).
async fn stream_hr(app: &App, fake: &mut FakeBluez, send: &[u16], expect: &[f64]) {
    for bpm in send {
        fake.notify(STRAP, "2a37", &hr(*bpm)).await;
    }
    app.until("heart rates on the screen", |u| {
        live_values(u, STRAP_ID, Mdc::ECG_HEART_RATE) == expect
    })
    .await;
}

scenario! {
    /// First connect: the strap assigned to bed 1 goes connecting → connected
    /// → receiving on the screen, its heart rates reach the screen and the
    /// store (as real data), and the app says it runs real devices.
    async fn first_connect_streams_to_screen_and_store() {
        let mut fake = FakeBluez::start().await;
        let dir = tempfile::tempdir().unwrap();
        let app = App::start(dir.path(), DeviceMode::Auto).await;
        assert_eq!(app.vigil.info().mode, "real");
        assert_eq!(app.vigil.info().scenario, None);

        assign_strap(&app, &mut fake).await;
        stream_hr(&app, &mut fake, &[72, 73, 74], &[72.0, 73.0, 74.0]).await;
        use LinkState::*;
        assert_eq!(device_states(&app.updates(), STRAP_ID), [Connecting, Connected, Receiving]);

        let snap = app.vigil.snapshot();
        let dev = snap.devices.iter().find(|d| d.device == STRAP_ID).expect("strap on the screen");
        assert_eq!((dev.bed.as_str(), dev.state, dev.source), ("bed-1", Receiving, Source::Real));
        assert_eq!(dev.battery, Some(87));
        // Device Information, read on connect, is shown with the device.
        assert_eq!(dev.info.manufacturer.as_deref(), Some("Polar Electro Oy"));
        assert_eq!((dev.info.model.as_deref(), dev.info.serial.as_deref()), (Some("H10"), Some("C0680226")));
        assert_eq!(dev.info.firmware.as_deref(), Some("5.0.0"));
        let latest = snap
            .latest
            .iter()
            .find(|r| r.bed == "bed-1" && r.mdc == Mdc::ECG_HEART_RATE.0)
            .expect("bed 1 shows a heart rate");
        assert_eq!((latest.value, latest.source), (Some(74.0), Source::Real));
        assert!(technical(bed_alarms(&snap, "bed-1"), STRAP_ID).is_empty());
        // The assignment is remembered.
        let devices = app.vigil.store().devices().await.unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!((devices[0].address.as_str(), devices[0].bed.as_str()), (STRAP, "bed-1"));

        let vigil = app.vigil.clone();
        let updates = app.stop().await;
        assert!(updates.iter().flat_map(|u| &u.readings).all(|r| r.source == Source::Real));
        let stats = vigil.stats();
        assert_eq!(stats.get(&stats.readings), 3);
        assert_eq!(stats.get(&stats.stored), 3, "everything received is stored at shutdown");
        let rows = stored(dir.path(), "bed-1").await;
        assert_eq!(numbers(&rows, STRAP_ID, Mdc::ECG_HEART_RATE), [72.0, 73.0, 74.0]);
        assert!(rows.iter().all(|r| r.source == Source::Real && r.bed == "bed-1"));
        // Stopping released the device.
        fake.wait(STRAP, "disconnected", None).await;
    }
}

scenario! {
    /// Link loss: a Disconnected technical alarm at the bed within the link
    /// check period, held while the device is out of range and the source
    /// keeps trying; cleared once the link is back; readings flow again and
    /// every value sent is stored exactly once.
    async fn link_loss_raises_and_clears_a_technical_alarm() {
        let mut fake = FakeBluez::start().await;
        let dir = tempfile::tempdir().unwrap();
        let app = App::start(dir.path(), DeviceMode::Auto).await;
        assign_strap(&app, &mut fake).await;
        stream_hr(&app, &mut fake, &[70, 71, 72], &[70.0, 71.0, 72.0]).await;

        // Out of range: the link drops and reconnect attempts fail.
        let lost = Instant::now();
        fake.cmd(json!({"cmd": "set_in_range", "address": STRAP, "in_range": false})).await;
        app.until_snapshot("a Disconnected alarm", |s| {
            technical(bed_alarms(s, "bed-1"), STRAP_ID).contains(&TechnicalKind::Disconnected)
        })
        .await;
        let raised_after = lost.elapsed();
        assert!(raised_after < LINK_CHECK + Duration::from_secs(1), "alarm after {raised_after:?}");
        // Reconnect attempts (connecting, failing, connecting …) do not clear it.
        let held = Instant::now();
        let mut states_seen = Vec::new();
        while held.elapsed() < Duration::from_millis(2500) {
            let snap = app.vigil.snapshot();
            let st = device_state(&snap, STRAP_ID).unwrap();
            if states_seen.last() != Some(&st) {
                states_seen.push(st);
            }
            assert_eq!(
                technical(bed_alarms(&snap, "bed-1"), STRAP_ID),
                [TechnicalKind::Disconnected],
                "while {st:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(states_seen.contains(&LinkState::Connecting), "no reconnect attempt: {states_seen:?}");
        // Nothing new reached the screen meanwhile (its last value ages out
        // by the ordinary staleness rule).
        assert_eq!(live_values(&app.updates(), STRAP_ID, Mdc::ECG_HEART_RATE), [70.0, 71.0, 72.0]);

        // Back in range: reconnected, alarm cleared, data again.
        fake.cmd(json!({"cmd": "set_in_range", "address": STRAP, "in_range": true})).await;
        stream_hr(&app, &mut fake, &[73, 74], &[70.0, 71.0, 72.0, 73.0, 74.0]).await;
        let snap = app
            .until_snapshot("the alarm cleared", |s| technical(bed_alarms(s, "bed-1"), STRAP_ID).is_empty())
            .await;
        assert_eq!(device_state(&snap, STRAP_ID), Some(LinkState::Receiving));
        let updates = app.stop().await;
        // The screen was told: an update carried the alarm, a later one its end.
        let alarm_updates: Vec<bool> = updates
            .iter()
            .flat_map(|u| &u.alarms)
            .filter(|a| a.bed == "bed-1")
            .map(|a| technical(a, STRAP_ID).contains(&TechnicalKind::Disconnected))
            .collect();
        let first_on = alarm_updates.iter().position(|on| *on).expect("the alarm reached the screen");
        assert!(alarm_updates[first_on..].contains(&false), "its end reached the screen");
        let states = device_states(&updates, STRAP_ID);
        assert_eq!(states[..4], [LinkState::Connecting, LinkState::Connected, LinkState::Receiving, LinkState::Disconnected]);
        assert_eq!(states[states.len() - 2..], [LinkState::Connected, LinkState::Receiving]);

        let rows = stored(dir.path(), "bed-1").await;
        assert_eq!(numbers(&rows, STRAP_ID, Mdc::ECG_HEART_RATE), [70.0, 71.0, 72.0, 73.0, 74.0]);
    }
}

scenario! {
    /// Adapter switched off: the device shows adapter off with a Disconnected
    /// technical alarm; on power-on it reconnects by itself and the alarm clears.
    async fn adapter_off_then_on_alarms_and_recovers() {
        let mut fake = FakeBluez::start().await;
        let dir = tempfile::tempdir().unwrap();
        let app = App::start(dir.path(), DeviceMode::Auto).await;
        assign_strap(&app, &mut fake).await;
        stream_hr(&app, &mut fake, &[72], &[72.0]).await;

        fake.cmd(json!({"cmd": "power", "on": false})).await;
        let snap = app
            .until_snapshot("adapter off with an alarm", |s| {
                device_state(s, STRAP_ID) == Some(LinkState::AdapterOff)
                    && technical(bed_alarms(s, "bed-1"), STRAP_ID) == [TechnicalKind::Disconnected]
            })
            .await;
        assert!(technical(bed_alarms(&snap, "bed-1"), STRAP_ID).contains(&TechnicalKind::Disconnected));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let snap = app.vigil.snapshot();
        assert_eq!(device_state(&snap, STRAP_ID), Some(LinkState::AdapterOff), "no retries while off");
        assert_eq!(technical(bed_alarms(&snap, "bed-1"), STRAP_ID), [TechnicalKind::Disconnected]);

        fake.cmd(json!({"cmd": "power", "on": true})).await;
        stream_hr(&app, &mut fake, &[73], &[72.0, 73.0]).await;
        app.until_snapshot("the alarm cleared", |s| technical(bed_alarms(s, "bed-1"), STRAP_ID).is_empty())
            .await;
        let updates = app.stop().await;
        use LinkState::*;
        let states: Vec<LinkState> = device_states(&updates, STRAP_ID)
            .into_iter()
            .filter(|s| *s != Disconnected) // may precede AdapterOff
            .collect();
        assert_eq!(states, [Connecting, Connected, Receiving, AdapterOff, Connecting, Connected, Receiving]);
        let rows = stored(dir.path(), "bed-1").await;
        assert_eq!(numbers(&rows, STRAP_ID, Mdc::ECG_HEART_RATE), [72.0, 73.0]);
    }
}

scenario! {
    /// Connected but silent: never "receiving", no number on the screen, no
    /// alarm pretending otherwise. Once it has sent one value and falls
    /// silent, the watchdog marks it stale with a NoData technical alarm, and
    /// the last value is old enough for the screen to grey it (STALE).
    async fn connected_but_silent_is_never_shown_live() {
        let mut fake = FakeBluez::start().await;
        let dir = tempfile::tempdir().unwrap();
        let app = App::start(dir.path(), DeviceMode::Auto).await;
        assign_strap(&app, &mut fake).await;
        fake.wait(STRAP, "notifying", Some("2a37")).await;
        // Past the watchdog period and the link check: still nothing to show.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let snap = app.vigil.snapshot();
        assert_eq!(device_state(&snap, STRAP_ID), Some(LinkState::Connected));
        assert!(!snap.latest.iter().any(|r| r.bed == "bed-1"), "a value from nowhere: {:?}", snap.latest);
        assert!(technical(bed_alarms(&snap, "bed-1"), STRAP_ID).is_empty());
        let updates = app.updates();
        assert_eq!(device_states(&updates, STRAP_ID), [LinkState::Connecting, LinkState::Connected]);
        assert!(live_values(&updates, STRAP_ID, Mdc::ECG_HEART_RATE).is_empty());

        // One value, then silence on a link that stays up.
        stream_hr(&app, &mut fake, &[72], &[72.0]).await;
        let sent = Instant::now();
        let snap = app
            .until_snapshot("a NoData alarm", |s| {
                technical(bed_alarms(s, "bed-1"), STRAP_ID).contains(&TechnicalKind::NoData)
            })
            .await;
        // Stale after the expected interval (1 s) plus its slack (5 s), seen
        // by the 1 s watchdog.
        let waited = sent.elapsed();
        assert!(waited >= Duration::from_secs(5) && waited < Duration::from_secs(9), "stale after {waited:?}");
        assert_eq!(device_state(&snap, STRAP_ID), Some(LinkState::Stale));
        assert_eq!(fake.state(STRAP).await["connected"], json!(true), "the link itself is up");
        let hr = snap
            .latest
            .iter()
            .find(|r| r.bed == "bed-1" && r.mdc == Mdc::ECG_HEART_RATE.0)
            .unwrap();
        assert!(
            snap.now_ms - hr.received_ms > hr.stale_after_ms as i64,
            "the last value is not old enough to be shown stale: {hr:?} at {}",
            snap.now_ms
        );
        let updates = app.stop().await;
        assert_eq!(live_values(&updates, STRAP_ID, Mdc::ECG_HEART_RATE), [72.0]);
        assert_eq!(*device_states(&updates, STRAP_ID).last().unwrap(), LinkState::Stale);
    }
}

/// Log output captured in memory (this scenario's process only).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

scenario! {
    /// A malformed notification: counted as a decode error, logged without
    /// the value or the bytes, not shown, not stored; the device stays in use
    /// and its next good value is stored.
    async fn malformed_notification_is_counted_and_device_stays_usable() {
        let logs = Captured::default();
        let sink = logs.clone();
        // No time stamps: their digits ("…:14.773720Z") would read as leaked values.
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .without_time()
            .with_writer(move || sink.clone())
            .init();
        let mut fake = FakeBluez::start().await;
        let dir = tempfile::tempdir().unwrap();
        let app = App::start(dir.path(), DeviceMode::Auto).await;
        assign_strap(&app, &mut fake).await;
        // Flags say uint16 heart rate, but only one byte (0x48 = 72) follows.
        fake.notify(STRAP, "2a37", "0148").await;
        stream_hr(&app, &mut fake, &[65], &[65.0]).await;
        let stats = app.vigil.stats();
        assert_eq!(stats.get(&stats.decode_errors), 1);
        assert_eq!(stats.get(&stats.readings), 1);
        let updates = app.stop().await;
        use LinkState::*;
        assert_eq!(device_states(&updates, STRAP_ID), [Connecting, Connected, Receiving]);
        let rows = stored(dir.path(), "bed-1").await;
        assert_eq!(numbers(&rows, STRAP_ID, Mdc::ECG_HEART_RATE), [65.0]);

        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("malformed payload dropped"))
            .unwrap_or_else(|| panic!("no decode error logged:\n{text}"));
        assert!(line.contains(STRAP_ID) && line.contains("2a37"), "{line}");
        // The message names the characteristic and the offset, never the value.
        for leak in ["72", "0148", "0x48", "[1, 72]"] {
            assert!(!line.contains(leak), "'{leak}' in: {line}");
        }
        // Nor does any other log line carry a heart rate sent.
        for l in text.lines().filter(|l| l.contains("bpm") || l.contains("value=")) {
            assert!(!l.contains("65") && !l.contains("72"), "a value in the log: {l}");
        }
    }
}

scenario! {
    /// Glucose meter: every connect downloads all stored records again; each
    /// record is stored once, also across a restart of Vigil.
    async fn glucose_records_are_stored_once_across_reconnects_and_restarts() {
        let mut fake = FakeBluez::start().await;
        fake.add(json!({
            "address": METER, "name": "Contour", "rssi": -55, "services": ["1808", "180f"],
            "records": [glucose(1, 30, 95.0), glucose(2, 40, 110.0), glucose(3, 50, 142.0)],
        }))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let app = App::start(dir.path(), DeviceMode::Auto).await;
        app.vigil.assign_device(METER, "bed-2", "glucose_meter").await.unwrap();
        let stats = app.vigil.stats();
        let glucose_live = |u: &[WardUpdate]| -> Vec<f64> {
            u.iter().flat_map(|u| &u.readings).filter(|r| r.device == METER_ID).filter_map(|r| r.value).collect()
        };
        app.until("three records", |u| glucose_live(u).len() == 3).await;

        // A new record, then a reconnect: all four come again.
        fake.cmd(json!({"cmd": "add_record", "address": METER, "hex": glucose(4, 59, 88.0)})).await;
        fake.cmd(json!({"cmd": "drop_link", "address": METER})).await;
        app.until("the second download", |u| {
            glucose_live(u).len() >= 4 && stats.get(&stats.duplicate_records) >= 3
        })
        .await;
        assert_eq!(fake.state(METER).await["connects"], json!(2));
        assert_eq!(glucose_live(&app.updates()), [95.0, 110.0, 142.0, 88.0], "the screen got each once");
        app.stop().await;
        let values = |rows: &[Reading]| -> Vec<f64> {
            rows.iter().filter(|r| r.device == METER_ID).map(|r| r.value.number().unwrap()).collect()
        };
        let rows = stored(dir.path(), "bed-2").await;
        assert_eq!(values(&rows), [95.0, 110.0, 142.0, 88.0]);
        let times: Vec<_> = rows.iter().map(|r| r.device_time.unwrap().format("%H:%M").to_string()).collect();
        assert_eq!(times, ["07:30", "07:40", "07:50", "07:59"]);

        // Restart: the assignment is remembered, the meter sends all again
        // plus one more; only the new one is stored.
        fake.cmd(json!({"cmd": "add_record", "address": METER, "hex": glucose(5, 5, 101.0)})).await;
        let app = App::start(dir.path(), DeviceMode::Auto).await;
        let stats = app.vigil.stats();
        let deadline = Instant::now() + LIMIT;
        while stats.get(&stats.duplicate_records) < 4 || stats.get(&stats.readings) < 1 {
            assert!(Instant::now() < deadline, "download after the restart incomplete");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(stats.get(&stats.readings), 1);
        app.stop().await;
        let rows = stored(dir.path(), "bed-2").await;
        assert_eq!(values(&rows), [95.0, 110.0, 142.0, 88.0, 101.0]);
    }
}

scenario! {
    /// A glucose meter whose clock runs 1 h 30 min ahead of the gateway's and
    /// offers Current Time: its clock is read on connect (offset +5400 s) and
    /// its stored records, time-stamped by that clock, are placed on the
    /// gateway clock (device time − offset, UTC) in the store, on the screen
    /// and as the bed's latest value. The records leave the offset alone.
    async fn glucose_records_are_placed_on_the_gateway_clock_by_the_meter_offset() {
        const AHEAD_S: i64 = 5400;
        let mut fake = FakeBluez::start().await;
        // Measured 3 h, 2 h and 1 h ago (gateway clock, whole seconds) ...
        let now = Utc::now().with_nanosecond(0).unwrap();
        let measured: Vec<DateTime<Utc>> = [3, 2, 1].iter().map(|h| now - chrono::Duration::hours(*h)).collect();
        // ... and stamped by the meter's clock, 1 h 30 min ahead.
        let on_meter = |t: DateTime<Utc>| t.naive_utc() + chrono::Duration::seconds(AHEAD_S);
        let records: Vec<String> = measured
            .iter()
            .zip([95.0, 110.0, 142.0])
            .enumerate()
            .map(|(i, (t, mg))| hex(&encode::glucose_mg_dl(i as u16 + 1, on_meter(*t), Value::Number(mg))))
            .collect();
        fake.add(json!({
            "address": METER, "name": "Contour", "rssi": -55, "services": ["1808", "180f", "1805"],
            "records": records, "clock_offset_s": AHEAD_S,
        }))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let app = App::start(dir.path(), DeviceMode::Auto).await;
        app.vigil.assign_device(METER, "bed-2", "glucose_meter").await.unwrap();
        let screen = |u: &[WardUpdate]| -> Vec<(f64, i64)> {
            u.iter()
                .flat_map(|u| &u.readings)
                .filter(|r| r.device == METER_ID)
                .map(|r| (r.value.unwrap(), r.received_ms))
                .collect()
        };
        app.until("three records", |u| screen(u).len() == 3).await;

        let close = |ms: i64, t: DateTime<Utc>| (ms - t.timestamp_millis()).abs() <= 1000;
        let sent = screen(&app.updates());
        for ((value, ms), (t, want)) in sent.iter().zip(measured.iter().zip([95.0, 110.0, 142.0])) {
            assert_eq!(*value, want);
            assert!(close(*ms, *t), "shown at {ms}, measured at {t}");
        }
        let snap = app.vigil.snapshot();
        let dev = snap.devices.iter().find(|d| d.device == METER_ID).unwrap();
        let offset = dev.clock_offset_s.expect("the clock offset is known");
        assert!((offset - AHEAD_S).abs() <= 1, "clock offset {offset} s");
        // The newest record (an hour old) is the bed's value, and fresh for a
        // meter (stale after 16 h).
        let latest = snap.latest.iter().find(|r| r.bed == "bed-2").unwrap();
        assert_eq!(latest.value, Some(142.0));
        assert!(close(latest.received_ms, measured[2]));
        assert_eq!(dev.state, LinkState::Receiving);
        app.stop().await;

        let rows = stored_within(dir.path(), "bed-2", chrono::Duration::days(1)).await;
        let (clocks, rows): (Vec<&Reading>, Vec<&Reading>) = rows
            .iter()
            .filter(|r| r.device == METER_ID)
            .partition(|r| r.code == vigil_model::Mdc::ATTR_TIME_ABS);
        // The read of the meter's clock is stored too (the PHD IG coincident time
        // stamp): its offset, the meter's clock and the gateway time of the read.
        assert_eq!(clocks.len(), 1, "{clocks:?}");
        let c = clocks[0];
        let off = c.value.number().unwrap();
        assert!((off - AHEAD_S as f64).abs() <= 1.0, "clock reading {off} s");
        let dt = c.device_time.expect("the meter's clock");
        assert!(((dt - c.received.naive_utc()).num_milliseconds() - AHEAD_S * 1000).abs() <= 1000);
        assert_eq!(rows.len(), 3);
        for (r, t) in rows.iter().zip(&measured) {
            // Placed on the gateway clock; the meter's own time kept as sent.
            assert!((r.received - *t).num_milliseconds().abs() <= 1000, "stored at {}, measured at {t}", r.received);
            assert_eq!(r.device_time, Some(on_meter(*t)));
        }
    }
}

scenario! {
    /// "Add device": the scan lists the fake's health devices nearest first
    /// and names the bed of one already assigned; removing it frees it. A
    /// simulated Vigil has no scan: `no_adapter`.
    async fn scan_lists_devices_with_their_beds_and_simulated_has_none() {
        let mut fake = FakeBluez::start().await;
        let dir = tempfile::tempdir().unwrap();
        let app = App::start(dir.path(), DeviceMode::Auto).await;
        assign_strap(&app, &mut fake).await; // AA:..:01 at -50
        let mut paired = strap("AA:BB:CC:DD:EE:02", "Polar H10", -45);
        paired["paired"] = json!(true);
        fake.add(paired).await;
        fake.add(json!({"address": "AA:BB:CC:DD:EE:03", "name": "Braun ThermoScan", "rssi": -60,
                        "services": ["1809", "180f"]})).await;
        fake.add(json!({"address": "AA:BB:CC:DD:EE:04", "name": "Headphones", "rssi": -30,
                        "services": ["110b"]})).await;
        // Let the source finish finding and connecting its device first.
        stream_hr(&app, &mut fake, &[70], &[70.0]).await;

        let found = app.vigil.scan(1).await.expect("scan");
        let summary: Vec<(&str, i16, Option<&str>)> =
            found.iter().map(|d| (d.address.as_str(), d.rssi, d.assigned_bed.as_deref())).collect();
        assert_eq!(
            summary,
            [
                ("AA:BB:CC:DD:EE:02", -45, None),
                ("AA:BB:CC:DD:EE:01", -50, Some("bed-1")),
                ("AA:BB:CC:DD:EE:03", -60, None),
            ]
        );
        assert_eq!(found[0].kinds, [vigil_devices::DeviceKind::HeartRateStrap]);
        assert_eq!(found[2].kinds, [vigil_devices::DeviceKind::Thermometer]);
        // The Add-device list shows link security (issue 13): bonded or not.
        let bonding: Vec<Option<bool>> = found.iter().map(|d| d.bonded).collect();
        assert_eq!(bonding, [Some(true), Some(false), Some(false)]);

        // Unknown kind and bed are refused before anything is stored.
        let err = app.vigil.assign_device("AA:BB:CC:DD:EE:02", "bed-1", "toaster").await.unwrap_err();
        assert_eq!(err.code(), "bad_kind");
        let err = app.vigil.assign_device("AA:BB:CC:DD:EE:02", "bed-99", "heart_rate_strap").await.unwrap_err();
        assert_eq!(err.code(), "unknown_bed");

        app.vigil.remove_device(STRAP).await.unwrap();
        fake.wait(STRAP, "disconnected", None).await;
        assert!(app.vigil.snapshot().devices.is_empty());
        let found = app.vigil.scan(1).await.expect("scan");
        assert!(found.iter().all(|d| d.assigned_bed.is_none()), "{found:?}");
        app.stop().await;

        let sim_dir = tempfile::tempdir().unwrap();
        let sim = App::start(sim_dir.path(), DeviceMode::Simulated).await;
        assert_eq!(sim.vigil.info().mode, "simulated");
        let err = sim.vigil.scan(1).await.unwrap_err();
        assert!(matches!(err, CoreError::NoAdapter), "{err}");
        assert_eq!(err.code(), "no_adapter");
        let err = sim.vigil.assign_device(STRAP, "bed-1", "heart_rate_strap").await.unwrap_err();
        assert_eq!(err.code(), "no_adapter");
        sim.stop().await;
    }
}

scenario! {
    /// No adapter: `Auto` falls back to the simulated ward, labelled as such
    /// on every reading, and Bluetooth commands say why they cannot work.
    async fn auto_without_adapter_runs_the_labelled_simulator() {
        let _fake = FakeBluez::start_with(&["--no-adapter"]).await;
        let dir = tempfile::tempdir().unwrap();
        let app = App::start(dir.path(), DeviceMode::Auto).await;
        assert_eq!(app.vigil.info().mode, "simulated");
        app.until("simulated readings", |u| u.iter().any(|u| !u.readings.is_empty())).await;
        assert_eq!(app.vigil.scan(1).await.unwrap_err().code(), "no_adapter");
        let updates = app.stop().await;
        assert!(updates.iter().flat_map(|u| &u.readings).all(|r| r.source == Source::Simulated));
        assert!(updates.iter().flat_map(|u| &u.devices).all(|d| d.source == Source::Simulated));
    }
}

scenario! {
    /// A device removed while it is out of range takes its technical alarm
    /// with it: no alarm is left behind for a device that is no longer there.
    async fn removing_a_lost_device_ends_its_technical_alarm() {
        let mut fake = FakeBluez::start().await;
        let dir = tempfile::tempdir().unwrap();
        let app = App::start(dir.path(), DeviceMode::Auto).await;
        assign_strap(&app, &mut fake).await;
        stream_hr(&app, &mut fake, &[70], &[70.0]).await;
        fake.cmd(json!({"cmd": "set_in_range", "address": STRAP, "in_range": false})).await;
        app.until_snapshot("a Disconnected alarm", |s| {
            technical(bed_alarms(s, "bed-1"), STRAP_ID).contains(&TechnicalKind::Disconnected)
        })
        .await;
        app.vigil.remove_device(STRAP_ID).await.unwrap();
        let snap = app.vigil.snapshot();
        assert!(technical(bed_alarms(&snap, "bed-1"), STRAP_ID).is_empty(), "{:?}", bed_alarms(&snap, "bed-1"));
        assert!(device_state(&snap, STRAP_ID).is_none());
        app.stop().await;
    }
}

scenario! {
    /// Assigning a second device, moving it to another bed and removing it
    /// again only ever touches that device: the strap at bed 1 stays
    /// Receiving on its first connection throughout and its values keep
    /// coming; the removed device is disconnected and gone from the screen.
    async fn assigning_moving_and_removing_a_device_leaves_the_others_connected() {
        const OTHER: &str = "AA:BB:CC:DD:EE:02";
        const OTHER_ID: &str = "ble-AA:BB:CC:DD:EE:02";
        let mut fake = FakeBluez::start().await;
        let dir = tempfile::tempdir().unwrap();
        let app = App::start(dir.path(), DeviceMode::Auto).await;
        assign_strap(&app, &mut fake).await;
        stream_hr(&app, &mut fake, &[70], &[70.0]).await;

        fake.add(strap(OTHER, "Polar H10", -52)).await;
        app.vigil.assign_device(OTHER, "bed-2", "heart_rate_strap").await.unwrap();
        fake.notify(OTHER, "2a37", &hr(80)).await;
        app.until("bed 2's heart rate", |u| live_values(u, OTHER_ID, Mdc::ECG_HEART_RATE) == [80.0])
            .await;
        stream_hr(&app, &mut fake, &[71], &[70.0, 71.0]).await;

        // A move: only the moved device reconnects.
        app.vigil.assign_device(OTHER, "bed-3", "heart_rate_strap").await.unwrap();
        fake.notify(OTHER, "2a37", &hr(81)).await;
        app.until_snapshot("the strap at bed 3", |s| {
            s.devices.iter().any(|d| d.device == OTHER_ID && d.bed == "bed-3" && d.state == LinkState::Receiving)
        })
        .await;
        assert_eq!(fake.state(OTHER).await["connects"], json!(2));

        app.vigil.remove_device(OTHER_ID).await.unwrap();
        assert_eq!(fake.state(OTHER).await["connected"], json!(false), "removing disconnects it");
        assert!(device_state(&app.vigil.snapshot(), OTHER_ID).is_none());
        stream_hr(&app, &mut fake, &[72], &[70.0, 71.0, 72.0]).await;

        use LinkState::*;
        assert_eq!(device_states(&app.updates(), STRAP_ID), [Connecting, Connected, Receiving]);
        assert_eq!(device_state(&app.vigil.snapshot(), STRAP_ID), Some(Receiving));
        assert_eq!(fake.state(STRAP).await["connects"], json!(1), "the strap at bed 1 was never reconnected");
        let devices = app.vigil.store().devices().await.unwrap();
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0].address, STRAP);
        let vigil = app.vigil.clone();
        app.stop().await;
        // Nothing of the removed device came back after the remove.
        assert!(device_state(&vigil.snapshot(), OTHER_ID).is_none());
    }
}

fn device_view<'a>(snap: &'a WardSnapshot, device: &str) -> &'a vigil_core::view::DeviceView {
    snap.devices
        .iter()
        .find(|d| d.device == device)
        .expect("the device is on the screen")
}

/// The identity pinned for `address` in the store's device registry.
async fn stored_pin(vigil: &Vigil, address: &str) -> Option<vigil_core::trust::Identity> {
    let devices = vigil.store().devices().await.unwrap();
    let d = devices.iter().find(|d| d.address == address)?;
    d.info.as_ref().and_then(vigil_core::trust::pin_from_json)
}

/// Waits until the store holds a pin for `address`, and returns it.
async fn until_pinned(vigil: &Vigil, address: &str) -> vigil_core::trust::Identity {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(pin) = stored_pin(vigil, address).await {
            return pin;
        }
        assert!(Instant::now() < deadline, "no identity pinned for {address}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

scenario! {
    /// Issue 13 §1: a device assigned as a heart-rate strap that also
    /// exposes and notifies PLX Continuous Measurement: no SpO2 reading
    /// reaches the screen or the store, and the device's view counts what
    /// it refused. Its heart rates still flow.
    async fn an_hr_strap_sending_spo2_has_it_dropped_and_counted() {
        let mut fake = FakeBluez::start().await;
        let dir = tempfile::tempdir().unwrap();
        let app = App::start(dir.path(), DeviceMode::Auto).await;
        let mut impostor = strap(STRAP, "Polar H10", -40);
        impostor["services"] = json!(["180d", "180f", "180a", "1822"]);
        fake.add(impostor).await;
        app.vigil.assign_device(STRAP, "bed-1", "heart_rate_strap").await.unwrap();
        stream_hr(&app, &mut fake, &[72], &[72.0]).await;
        for _ in 0..3 {
            // PLX continuous: SpO2 85 %, pulse 72: never subscribed to, sent anyway.
            fake.cmd(json!({"cmd": "notify", "address": STRAP, "char": "2a5f", "hex": "0055004800", "force": true, "timeout": 20}))
                .await;
        }
        stream_hr(&app, &mut fake, &[73], &[72.0, 73.0]).await;
        let snap = app.until_snapshot("the refused values counted", |s| device_view(s, STRAP_ID).foreign_values >= 3).await;
        assert!(
            !snap.latest.iter().any(|r| r.mdc == Mdc::PULS_OXIM_SAT_O2.0),
            "an SpO2 value from an HR strap reached the screen"
        );
        assert_eq!(device_view(&snap, STRAP_ID).foreign_values, 3);
        let vigil = app.vigil.clone();
        let updates = app.stop().await;
        assert!(live_values(&updates, STRAP_ID, Mdc::PULS_OXIM_SAT_O2).is_empty());
        assert_eq!(vigil.stats().get(&vigil.stats().foreign_values), 3);
        let rows = stored(dir.path(), "bed-1").await;
        assert!(rows.iter().all(|r| r.code == Mdc::ECG_HEART_RATE || r.code == Mdc::ATTR_TIME_ABS), "{rows:?}");
        assert_eq!(numbers(&rows, STRAP_ID, Mdc::ECG_HEART_RATE), [72.0, 73.0]);
    }
}

scenario! {
    /// Issue 13 §1: the strap's DIS serial is pinned with its assignment on
    /// its first connection (in the store). The same address comes back
    /// with another serial: "device identity changed" at bed 1 and its
    /// heart rates refused, also after a restart (the pin is persisted),
    /// until a nurse assigns it again, which accepts the new identity.
    async fn same_address_other_serial_raises_identity_changed_until_reassigned() {
        let mut fake = FakeBluez::start().await;
        let dir = tempfile::tempdir().unwrap();
        let app = App::start(dir.path(), DeviceMode::Auto).await;
        assign_strap(&app, &mut fake).await;
        stream_hr(&app, &mut fake, &[72], &[72.0]).await;
        let pin = until_pinned(&app.vigil, STRAP).await;
        assert_eq!(pin.serial.as_deref(), Some("C0680226"));
        assert!(device_view(&app.vigil.snapshot(), STRAP_ID).identity_pinned);

        // Another device takes the address.
        let mut dis = strap(STRAP, "Polar H10", -50)["dis"].clone();
        dis["serial"] = json!("IMPOSTOR1");
        fake.cmd(json!({"cmd": "set_dis", "address": STRAP, "dis": dis})).await;
        fake.cmd(json!({"cmd": "drop_link", "address": STRAP})).await;
        let identity_changed = |s: &WardSnapshot| {
            technical(bed_alarms(s, "bed-1"), STRAP_ID).contains(&TechnicalKind::IdentityChanged)
        };
        app.until_snapshot("device identity changed at bed 1", identity_changed).await;
        fake.notify(STRAP, "2a37", &hr(150)).await;
        let snap = app
            .until_snapshot("the impostor's value refused", |s| device_view(s, STRAP_ID).refused_values >= 1)
            .await;
        assert_eq!(device_view(&snap, STRAP_ID).refused, Some(vigil_core::trust::Refusal::IdentityChanged));
        assert_eq!(live_values(&app.updates(), STRAP_ID, Mdc::ECG_HEART_RATE), [72.0]);
        assert_eq!(stored_pin(&app.vigil, STRAP).await, Some(pin.clone()), "the pin is kept");
        app.stop().await;

        // After a restart the pin still holds.
        let app = App::start(dir.path(), DeviceMode::Auto).await;
        app.until_snapshot("device identity changed after a restart", identity_changed).await;
        fake.notify(STRAP, "2a37", &hr(151)).await;
        app.until_snapshot("refused after a restart", |s| device_view(s, STRAP_ID).refused_values >= 1).await;

        // A nurse assigns it again: the identity on the link is accepted.
        app.vigil.assign_device(STRAP, "bed-1", "heart_rate_strap").await.unwrap();
        let snap = app.until_snapshot("the alarm ended", |s| !identity_changed(s)).await;
        assert_eq!(device_view(&snap, STRAP_ID).refused, None);
        assert_eq!(stored_pin(&app.vigil, STRAP).await.unwrap().serial.as_deref(), Some("IMPOSTOR1"));
        stream_hr(&app, &mut fake, &[75], &[75.0]).await;
        app.stop().await;
        let rows = stored(dir.path(), "bed-1").await;
        assert_eq!(numbers(&rows, STRAP_ID, Mdc::ECG_HEART_RATE), [72.0, 75.0], "refused values were stored");
    }
}

scenario! {
    /// Issue 13 §1: link security. Without a site policy an unpaired strap
    /// streams and its view says `bonded: false` (the screen labels it "not
    /// bonded"); with `"ble": {"require_bonded": true}` its heart rates are
    /// refused with a technical alarm at the bed, until a nurse pairs it
    /// (`Vigil::pair_device`, BlueZ `Pair()`).
    async fn an_unbonded_link_is_labelled_and_refused_under_the_site_policy() {
        let mut fake = FakeBluez::start().await;
        let dir = tempfile::tempdir().unwrap();
        let app = App::start(dir.path(), DeviceMode::Auto).await;
        assign_strap(&app, &mut fake).await;
        stream_hr(&app, &mut fake, &[72], &[72.0]).await;
        let snap = app.vigil.snapshot();
        assert_eq!(device_view(&snap, STRAP_ID).bonded, Some(false));
        assert_eq!(device_view(&snap, STRAP_ID).refused, None);
        assert!(technical(bed_alarms(&snap, "bed-1"), STRAP_ID).is_empty());
        app.stop().await;
        fake.wait(STRAP, "disconnected", None).await;

        let dir = tempfile::tempdir().unwrap();
        let policy = vigil_core::site::BleSite { require_bonded: true };
        let app = App::start_with(dir.path(), DeviceMode::Auto, policy).await;
        app.vigil.assign_device(STRAP, "bed-1", "heart_rate_strap").await.unwrap();
        let not_bonded =
            |s: &WardSnapshot| technical(bed_alarms(s, "bed-1"), STRAP_ID).contains(&TechnicalKind::NotBonded);
        app.until_snapshot("not bonded at bed 1", not_bonded).await;
        fake.notify(STRAP, "2a37", &hr(90)).await;
        let snap = app.until_snapshot("refused", |s| device_view(s, STRAP_ID).refused_values >= 1).await;
        assert_eq!(device_view(&snap, STRAP_ID).refused, Some(vigil_core::trust::Refusal::NotBonded));
        assert!(live_values(&app.updates(), STRAP_ID, Mdc::ECG_HEART_RATE).is_empty());

        // The nurse pairs it from the device table (BlueZ Pair()): taken at
        // once, on the same link.
        let connects = fake.state(STRAP).await["connects"].clone();
        assert_eq!(app.vigil.pair_device(STRAP_ID).await.unwrap(), Some(true));
        assert_eq!(fake.state(STRAP).await["paired"], json!(true));
        let snap = app.until_snapshot("the alarm ended", |s| !not_bonded(s)).await;
        assert_eq!(device_view(&snap, STRAP_ID).bonded, Some(true));
        assert_eq!(fake.state(STRAP).await["connects"], connects, "no reconnect needed");
        stream_hr(&app, &mut fake, &[91], &[91.0]).await;
        // Its next connection reports the bond by itself.
        fake.cmd(json!({"cmd": "drop_link", "address": STRAP})).await;
        stream_hr(&app, &mut fake, &[92], &[91.0, 92.0]).await;
        assert!(!not_bonded(&app.vigil.snapshot()));
        app.stop().await;
        let rows = stored(dir.path(), "bed-1").await;
        assert_eq!(numbers(&rows, STRAP_ID, Mdc::ECG_HEART_RATE), [91.0, 92.0]);
    }
}
