//! Measures how long unlocking a passphrase store takes (Argon2id with the
//! parameters a new store gets, plus reading and checking the keys):
//! `cargo run --release -p vigil-store --example unlock_time [runs]`.
//! Prints each run and the median, in milliseconds.
use vigil_store::{KeySource, Store};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigil.db");
    let key = KeySource::passphrase("unlock timing passphrase", "example");
    Store::open(&path, &key).await.unwrap().close().await;
    let mut ms = Vec::new();
    for _ in 0..runs {
        let t = std::time::Instant::now();
        let store = Store::open(&path, &key).await.unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        store.close().await;
    }
    println!(
        "runs (ms): {}",
        ms.iter().map(|m| format!("{m:.0}")).collect::<Vec<_>>().join(" ")
    );
    ms.sort_by(|a, b| a.total_cmp(b));
    println!("median unlock: {:.0} ms", ms[ms.len() / 2]);
}
