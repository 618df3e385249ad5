//! `./dev bench feed`: the live feed on loopback. A real `vigil gateway --simulate stable
//! --beds 64 --feed 127.0.0.1:0` (devices at their natural 1 Hz, system clock) serves
//! WebSocket clients in this process; figures, each phase in the same run:
//!
//! 1. baseline: 1 client subscribed to 1 bed;
//! 2. 20 clients, every bed;
//! 3. the same 20 clients plus one stalled client (never reads, tiny receive window).
//!
//! Latency: a reading's `received_ms` (the gateway's clock: when it was measured) to the
//! moment a client has parsed the update holding it (the same wall clock). It includes the
//! feed's 250 ms batching by design (alarms are not batched). CPU and RSS are the gateway
//! process's (/proc), so the clients' own work is not counted.
//!
//! `VIGIL_BIN` names the vigil binary (default `$CARGO_TARGET_DIR/release/vigil`).

use futures_util::StreamExt;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "bench-feed-token-0123456789";
const BEDS: u32 = 64;
const CLIENTS: usize = 20;
const PHASE: Duration = Duration::from_secs(20);
const WARMUP: Duration = Duration::from_secs(3);

type Samples = Arc<Mutex<Option<Vec<i64>>>>;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// (utime + stime in ticks, RSS in kB) of `pid`.
fn proc_usage(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name's closing parenthesis: utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks, rss)
}

fn pct(v: &mut [i64], p: f64) -> i64 {
    if v.is_empty() {
        return -1;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

async fn client(url: String, samples: Samples) {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("connect");
    while let Some(Ok(m)) = ws.next().await {
        let Message::Text(t) = m else { continue };
        let at = now_ms();
        let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
        if v["type"] != "update" {
            continue;
        }
        let mut s = samples.lock().unwrap();
        if let Some(s) = s.as_mut() {
            for r in v["update"]["readings"].as_array().into_iter().flatten() {
                if let Some(rx) = r["received_ms"].as_i64() {
                    s.push(at - rx);
                }
            }
        }
    }
}

/// Measures one phase: latencies of `samples`, the gateway's CPU % and RSS.
async fn phase(name: &str, pid: u32, samples: &[Samples]) {
    tokio::time::sleep(WARMUP).await;
    for s in samples {
        *s.lock().unwrap() = Some(Vec::new());
    }
    let (t0, _) = proc_usage(pid);
    let w0 = Instant::now();
    tokio::time::sleep(PHASE).await;
    let (t1, rss) = proc_usage(pid);
    let wall = w0.elapsed().as_secs_f64();
    let mut all = Vec::new();
    for s in samples {
        all.extend(s.lock().unwrap().take().unwrap_or_default());
    }
    let n = all.len();
    // Ticks are 1/100 s on Linux (CLK_TCK).
    let cpu = (t1 - t0) as f64 / 100.0 / wall * 100.0;
    println!(
        "{name:<44} readings {n:>7}  p50 {:>4} ms  p99 {:>4} ms  gateway CPU {cpu:>5.1} %  RSS {:>4} MB",
        pct(&mut all, 0.5),
        pct(&mut all, 0.99),
        rss / 1024
    );
}

#[tokio::main]
async fn main() {
    let bin = std::env::var("VIGIL_BIN").unwrap_or_else(|_| {
        let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
        format!("{target}/release/vigil")
    });
    let dir = tempfile::tempdir().unwrap();
    let mut gw = Command::new(&bin)
        .args([
            "gateway",
            "--simulate",
            "stable",
            "--beds",
            &BEDS.to_string(),
            "--feed",
            "127.0.0.1:0",
        ])
        .args(["--status-every", "3600", "--data-dir"])
        .arg(dir.path())
        .env("VIGIL_PASSPHRASE", "bench-feed-passphrase")
        .env("VIGIL_FEED_TOKEN", TOKEN)
        .env("VIGIL_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {bin}: {e}"));
    let pid = gw.id();
    let stderr = gw.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("feed: listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the gateway's feed address");
    println!("feed benchmark: {BEDS} beds at their natural rates (1 Hz), vigil gateway {bin}, {url}");
    println!("latency = reading measured → client parsed its update (includes the 250 ms batching)");

    let one: Samples = Arc::default();
    let c1 = tokio::spawn(client(format!("{url}?beds=bed-1"), one.clone()));
    phase("1 bed → 1 client (baseline)", pid, std::slice::from_ref(&one)).await;
    c1.abort();

    let many: Vec<Samples> = (0..CLIENTS).map(|_| Samples::default()).collect();
    let tasks: Vec<_> = many
        .iter()
        .map(|s| tokio::spawn(client(url.clone(), s.clone())))
        .collect();
    phase(&format!("{BEDS} beds → {CLIENTS} clients"), pid, &many).await;

    // One client that never reads: a tiny receive window, handshake, then silence.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(2048).unwrap();
    let addr = url
        .trim_start_matches("ws://")
        .trim_end_matches("/feed")
        .to_string();
    let tcp = sock.connect(addr.parse().unwrap()).await.unwrap();
    let mut req = url.clone().into_client_request().unwrap();
    req.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {TOKEN}")).unwrap(),
    );
    let (stalled, _) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
    phase(
        &format!("{BEDS} beds → {CLIENTS} clients + 1 stalled"),
        pid,
        &many,
    )
    .await;
    drop(stalled);
    for t in tasks {
        t.abort();
    }
    term(pid);
    let _ = gw.wait();
}

/// SIGTERM (the gateway commits and stops cleanly).
fn term(pid: u32) {
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
}
