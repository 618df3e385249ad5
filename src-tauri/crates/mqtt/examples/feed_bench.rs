//! The MQTT half of the feed benchmark: a real ward (simulated devices through the real
//! pipeline and store, system clock) publishing through a real Mosquitto to N subscribers.
//! Each figure beside a same-run baseline (1 bed → 1 subscriber), and the 64-bed ward
//! without the publisher (what publishing adds).
//!
//! `cargo run -p vigil-mqtt --example feed_bench [--release] [-- SECONDS]`
//!
//! Latency: the reading's own time (`t`, when the pipeline received its bytes) to its
//! arrival at a subscriber: pipeline fan-out + publisher + broker + subscriber, ms
//! resolution. CPU and RSS: the ward's process (core + publisher), and the broker's.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};

const SITE: &str = "bench";
const WARD: &str = "w";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("ward") {
        let beds: usize = args[2].parse().unwrap();
        let port: Option<u16> = args[3].parse().ok();
        return ward(beds, port);
    }
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("m.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )
    .unwrap();
    let mut broker = Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!("MQTT feed, {secs} s measured per case after 8 s warm-up (Mosquitto 127.0.0.1, QoS 0 readings)");
    println!(
        "{:<34} {:>9} {:>7} {:>7} {:>7} {:>9} {:>9} {:>10}",
        "case", "received", "p50 ms", "p99 ms", "max ms", "ward CPU", "ward RSS", "broker CPU"
    );
    for (label, beds, subs, publish) in [
        ("baseline: 1 bed -> 1 subscriber", 1, 1, true),
        ("64 beds, no publisher", 64, 0, false),
        ("64 beds -> 1 subscriber", 64, 1, true),
        ("64 beds -> 20 subscribers", 64, 20, true),
    ] {
        let r = rt.block_on(case(port, beds, subs, publish, secs, broker.id()));
        println!(
            "{label:<34} {:>9} {:>7} {:>7} {:>7} {:>8.1}% {:>6} MiB {:>9.1}%",
            r.received, r.p50, r.p99, r.max, r.ward_cpu, r.ward_rss_mib, r.broker_cpu
        );
    }
    let _ = broker.kill();
    let _ = broker.wait();
}

struct Result_ {
    received: usize,
    p50: i64,
    p99: i64,
    max: i64,
    ward_cpu: f64,
    ward_rss_mib: u64,
    broker_cpu: f64,
}

async fn case(port: u16, beds: usize, subs: usize, publish: bool, secs: u64, broker_pid: u32) -> Result_ {
    let exe = std::env::current_exe().unwrap();
    let mut child: Child = Command::new(exe)
        .args([
            "ward",
            &beds.to_string(),
            &if publish { port.to_string() } else { "-".into() },
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let lat: Arc<Mutex<Vec<i64>>> = Arc::default();
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..subs {
        let mut o = MqttOptions::new(format!("bench-sub-{i}-{}", std::process::id()), "127.0.0.1", port);
        o.set_max_packet_size(Some(256 * 1024));
        let (client, mut el) = AsyncClient::new(o, 64);
        let (lat, measuring) = (lat.clone(), measuring.clone());
        tasks.push(tokio::spawn(async move {
            let _keep = client;
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = _keep
                            .subscribe(format!("vigil/{SITE}/{WARD}/+/reading/+"), QoS::AtMostOnce)
                            .await;
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) if !p.retain && !p.payload.is_empty() => {
                        let now = chrono::Utc::now().timestamp_millis();
                        #[derive(serde::Deserialize)]
                        struct T {
                            t: i64,
                        }
                        if let Ok(T { t }) = serde_json::from_slice::<T>(&p.payload) {
                            if measuring.load(std::sync::atomic::Ordering::Relaxed) {
                                lat.lock().unwrap().push(now - t);
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (w0, b0, t0) = (cpu_ticks(child.id()), cpu_ticks(broker_pid), Instant::now());
    measuring.store(true, std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    measuring.store(false, std::sync::atomic::Ordering::Relaxed);
    let (w1, b1, dt) = (
        cpu_ticks(child.id()),
        cpu_ticks(broker_pid),
        t0.elapsed().as_secs_f64(),
    );
    let rss = rss_kib(child.id()) / 1024;
    drop(child.stdin.take());
    let _ = child.wait();
    for t in tasks {
        t.abort();
    }
    let mut v = std::mem::take(&mut *lat.lock().unwrap());
    v.sort_unstable();
    let q = |p: f64| {
        if v.is_empty() {
            0
        } else {
            v[((v.len() - 1) as f64 * p) as usize]
        }
    };
    // Clock ticks (USER_HZ, 100 on Linux) → % of one core.
    let pct = |a: u64, b: u64| (b - a) as f64 / 100.0 / dt * 100.0;
    Result_ {
        received: v.len(),
        p50: q(0.5),
        p99: q(0.99),
        max: v.last().copied().unwrap_or(0),
        ward_cpu: pct(w0, w1),
        ward_rss_mib: rss,
        broker_cpu: pct(b0, b1),
    }
}

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime), counted from after the command name.
    f.get(11).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The ward process: `beds` simulated beds in real time, published when `port` is given;
/// runs until its stdin closes.
fn ward(beds: usize, port: Option<u16>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let cfg = vigil_core::Config {
            data_dir: dir.path().to_path_buf(),
            key: vigil_store::KeySource::passphrase("mqtt-bench-passphrase", "bench"),
            clock: Arc::new(vigil_model::SystemClock),
            sim: vigil_core::SimSettings {
                scenario: vigil_devices::sim::Scenario::Stable,
                beds,
                seed: 1,
            },
            retention: Default::default(),
            low_disk_bytes: 0,
            site_files: Vec::new(),
            alarm_preset: Default::default(),
            devices: vigil_core::DeviceMode::Simulated,
            fhir: None,
            ble: Default::default(),
        };
        let v = Arc::new(vigil_core::Vigil::start(cfg).await.unwrap());
        let p = port.map(|port| {
            let cfg = vigil_mqtt::PublisherConfig::new(
                vigil_mqtt::Broker::new(format!("mqtt://127.0.0.1:{port}")),
                SITE,
                WARD,
            );
            vigil_mqtt::Publisher::start(v.clone(), cfg).unwrap()
        });
        // Until the parent closes our stdin.
        let _ = tokio::task::spawn_blocking(|| {
            let mut s = String::new();
            let _ = std::io::stdin().read_line(&mut s);
        })
        .await;
        if let Some(p) = p {
            eprintln!("ward: {}", p.stats().line());
            p.stop().await;
        }
        v.shutdown().await;
    });
}
