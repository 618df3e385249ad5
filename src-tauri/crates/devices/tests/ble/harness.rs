//! Test plumbing: a private D-Bus system bus, the fake BlueZ, and a recorder
//! for the source's events.
//!
//! libdbus reads the system bus address once per process, so every scenario
//! runs in a process of its own: the `#[test]` function (parent) starts a
//! private `dbus-daemon`, then re-runs this test binary filtered to the same
//! test with `VIGIL_BLE_SCENARIO` set and `DBUS_SYSTEM_BUS_ADDRESS` pointing
//! at that bus. The child starts the fake BlueZ (which inherits the address)
//! and runs the scenario. Scenarios therefore run in parallel, each on its
//! own bus, under plain `cargo test` as well as nextest.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vigil_devices::ble::{Assignment, BleConfig, BleControl, BleSource};
use vigil_devices::{DeviceEvent, DeviceSource, SourceError};
use vigil_gatt::{Characteristic, Decoded};
use vigil_model::{LinkState, SystemClock};

const SCENARIO_ENV: &str = "VIGIL_BLE_SCENARIO";
/// A scenario that takes longer than this is killed and fails.
const SCENARIO_LIMIT: Duration = Duration::from_secs(120);

/// Runs `body` in a fresh process with its own private system bus.
/// `path` is the test's `module_path!()::name`.
pub fn isolated(path: &str, body: impl FnOnce()) {
    // The filter libtest matches: the path without the crate name.
    let test_name = path.split_once("::").map_or(path, |(_, rest)| rest);
    if std::env::var(SCENARIO_ENV).as_deref() == Ok(test_name) {
        body();
        return;
    }
    let bus = Bus::start();
    let mut child = Command::new(std::env::current_exe().expect("test binary path"))
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(SCENARIO_ENV, test_name)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("re-running the test binary");
    // Drain the pipes on threads so a chatty child cannot block on them.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > SCENARIO_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    match status {
        Some(s) if s.success() => {}
        // Shown by libtest only when the test fails.
        other => panic!(
            "scenario {test_name} failed ({}):\n--- stdout ---\n{out}\n--- stderr ---\n{err}",
            other.map_or("timed out".to_string(), |s| s.to_string())
        ),
    }
}

/// A private dbus-daemon of type "system", killed on drop.
pub struct Bus {
    pub address: String,
    child: Child,
    _dir: TempDir,
}

impl Bus {
    pub fn start() -> Bus {
        let dir = TempDir::new("vigil-ble-bus");
        let socket = dir.path().join("bus");
        let conf = dir.path().join("bus.conf");
        // <type>system</type> makes it a system bus; the policy lets the fake
        // own org.bluez and everyone talk to everyone (no real security here).
        std::fs::write(
            &conf,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .unwrap();
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--print-address"])
            .stdout(Stdio::piped())
            // Quiet: it complains about fd limits when not run as a service.
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dbus-daemon ({e}); Debian: apt-get install dbus"));
        // The first line is the address, printed once the socket listens.
        let mut stdout = child.stdout.take().unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        assert!(!line.is_empty(), "dbus-daemon printed no address");
        // No guid= part: the address names the socket only.
        Bus {
            address: format!("unix:path={}", socket.display()),
            child,
            _dir: dir,
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fake BlueZ, driven line by line (see tests/ble/fake_bluez.py).
pub struct FakeBluez {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

fn fake_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/ble/fake_bluez.py")
}

impl FakeBluez {
    pub async fn start() -> FakeBluez {
        Self::start_with(&[]).await
    }

    pub async fn start_with(args: &[&str]) -> FakeBluez {
        let python = std::env::var("VIGIL_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = tokio::process::Command::new(&python)
            .arg(fake_script())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {python}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
            .await
            .expect("fake BlueZ did not start in time")
            .unwrap();
        assert_eq!(
            ready.as_deref(),
            Some("READY"),
            "fake BlueZ failed to start; needs: pip install -r tests/ble/requirements.txt"
        );
        FakeBluez { child, stdin, stdout }
    }

    /// Sends one command and returns its reply; panics if the fake refuses.
    pub async fn cmd(&mut self, cmd: Value) -> Value {
        let mut line = cmd.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(30), self.stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("fake BlueZ did not answer {cmd}"))
            .unwrap()
            .expect("fake BlueZ exited");
        let reply: Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(reply["ok"], json!(true), "fake BlueZ refused {cmd}: {reply}");
        reply
    }

    pub async fn add(&mut self, device: Value) {
        let mut device = device;
        device["cmd"] = json!("add_device");
        self.cmd(device).await;
    }

    /// Sends a notification once the source has subscribed to `char`.
    pub async fn notify(&mut self, address: &str, char: &str, hex: &str) {
        self.cmd(json!({"cmd": "notify", "address": address, "char": char, "hex": hex, "timeout": 20}))
            .await;
    }

    pub async fn wait(&mut self, address: &str, until: &str, char: Option<&str>) {
        self.cmd(json!({"cmd": "wait", "address": address, "until": until, "char": char, "timeout": 20}))
            .await;
    }

    pub async fn state(&mut self, address: &str) -> Value {
        self.cmd(json!({"cmd": "state", "address": address})).await
    }
}

impl Drop for FakeBluez {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A running [`BleSource`] and everything it has sent so far.
pub struct Run {
    rx: mpsc::Receiver<DeviceEvent>,
    pub log: Vec<DeviceEvent>,
    /// Attaches and detaches devices while it runs.
    pub control: BleControl,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), SourceError>>>,
}

/// Fast reconnects for tests: 0.5 s doubling, capped at 2 s.
pub fn test_config(assignments: Vec<Assignment>) -> BleConfig {
    let mut cfg = BleConfig::new(assignments, Arc::new(SystemClock));
    cfg.backoff_max = Duration::from_secs(2);
    cfg.link_check_every = Duration::from_secs(1);
    cfg
}

impl Run {
    pub fn start(cfg: BleConfig) -> Run {
        let source = Box::new(BleSource::new(cfg).expect("valid assignments"));
        let control = source.control();
        let (tx, rx) = mpsc::channel(64);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(source.run(tx, cancel.clone()));
        Run {
            rx,
            log: Vec::new(),
            control,
            cancel,
            task: Some(task),
        }
    }

    /// Waits for the first event matching `pred`; everything received on the
    /// way is kept in `log`.
    pub async fn until(
        &mut self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&DeviceEvent) -> bool,
    ) -> DeviceEvent {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(e)) => {
                    self.log.push(e.clone());
                    if pred(&e) {
                        return e;
                    }
                }
                Ok(None) => panic!("source ended while waiting for {what}; events: {:#?}", self.log),
                Err(_) => panic!("timed out waiting for {what}; events: {:#?}", self.log),
            }
        }
    }

    pub async fn link(&mut self, device: &str, state: LinkState) -> DeviceEvent {
        let what = format!("{device} {state:?}");
        self.until(&what, Duration::from_secs(30), |e| is_link(e, device, state))
            .await
    }

    /// Waits until `n` payloads of `ch` from `device` have arrived since the
    /// start, and returns them all.
    pub async fn payloads(&mut self, device: &str, ch: Characteristic, n: usize) -> Vec<Vec<u8>> {
        let got = |log: &[DeviceEvent]| -> Vec<Vec<u8>> {
            log.iter()
                .filter_map(|e| payload_of(e, device, ch))
                .map(<[u8]>::to_vec)
                .collect()
        };
        while got(&self.log).len() < n {
            self.until(&format!("{n} x {device} {ch}"), Duration::from_secs(30), |e| {
                payload_of(e, device, ch).is_some()
            })
            .await;
        }
        got(&self.log)
    }

    /// Collects whatever arrives during `d`.
    pub async fn settle(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            self.log.push(e);
        }
    }

    /// Cancels the source and checks it ends cleanly.
    pub async fn stop(mut self) -> Vec<DeviceEvent> {
        self.cancel.cancel();
        let task = self.task.take().unwrap();
        let result = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("source did not stop on cancel")
            .expect("source panicked");
        assert!(result.is_ok(), "source ended with {result:?}");
        while let Ok(e) = self.rx.try_recv() {
            self.log.push(e);
        }
        std::mem::take(&mut self.log)
    }
}

/// Which device an event is about.
pub fn device_of(e: &DeviceEvent) -> &str {
    e.device()
}

/// The (device, bed) of every `Attached` event, in order.
pub fn attached(log: &[DeviceEvent]) -> Vec<(String, String)> {
    log.iter()
        .filter_map(|e| match e {
            DeviceEvent::Attached(d) => Some((d.device.clone(), d.bed.clone())),
            _ => None,
        })
        .collect()
}

pub fn states(log: &[DeviceEvent], device: &str) -> Vec<LinkState> {
    log.iter()
        .filter_map(|e| match e {
            DeviceEvent::Link { device: d, state, .. } if d == device => Some(*state),
            _ => None,
        })
        .collect()
}

pub fn is_link(e: &DeviceEvent, device: &str, state: LinkState) -> bool {
    matches!(e, DeviceEvent::Link { device: d, state: s, .. } if d == device && *s == state)
}

pub fn payload_of<'a>(e: &'a DeviceEvent, device: &str, ch: Characteristic) -> Option<&'a [u8]> {
    match e {
        DeviceEvent::Payload {
            device: d,
            characteristic,
            bytes,
            ..
        } if d == device && *characteristic == ch => Some(bytes),
        _ => None,
    }
}

/// Every payload of `ch` from `device` in the log, decoded (the pipeline's decoder).
pub fn decoded(log: &[DeviceEvent], device: &str, ch: Characteristic) -> Vec<Result<Decoded, String>> {
    log.iter()
        .filter_map(|e| payload_of(e, device, ch))
        .map(|b| vigil_gatt::decode(ch, b).map_err(|e| e.to_string()))
        .collect()
}

/// Heart rates (bpm) of every decodable Heart Rate Measurement from `device`.
pub fn heart_rates(log: &[DeviceEvent], device: &str) -> Vec<f64> {
    decoded(log, device, Characteristic::HeartRateMeasurement)
        .into_iter()
        .filter_map(|d| d.ok()?.measurements.first()?.value)
        .collect()
}

/// Index of the first event matching `pred` (for order assertions).
pub fn position(log: &[DeviceEvent], pred: impl Fn(&DeviceEvent) -> bool) -> Option<usize> {
    log.iter().position(pred)
}
