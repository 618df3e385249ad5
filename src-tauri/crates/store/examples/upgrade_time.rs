//! Measures the first open of a schema-10 store under schema 11 (its rows
//! moved to the sealed layout) against a plain open of the same store:
//! `cargo run --release -p vigil-store --example upgrade_time <schema-10 file> <passphrase>`.
//! Works on a copy; the file given is not changed.
use vigil_store::{KeySource, Store};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (src, pass) = match (args.next(), args.next()) {
        (Some(s), Some(p)) => (s, p),
        _ => panic!("usage: upgrade_time <schema-10 file> <passphrase>"),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigil.db");
    std::fs::copy(&src, &path).unwrap();
    let key = KeySource::passphrase(pass, "example");
    let t = std::time::Instant::now();
    let store = Store::open_with_counter_dir(&path, &key, None).await.unwrap();
    let first = t.elapsed().as_secs_f64() * 1e3;
    store.close().await;
    let t = std::time::Instant::now();
    let store = Store::open_with_counter_dir(&path, &key, None).await.unwrap();
    let again = t.elapsed().as_secs_f64() * 1e3;
    store.close().await;
    println!(
        "{:.1} MB: first open (upgrade) {first:.0} ms, next open {again:.0} ms",
        std::fs::metadata(&src).unwrap().len() as f64 / 1e6
    );
}
