//! Vigil's store against the two obvious alternatives, in one
//! run, on the same machine, with the same data and transaction sizes:
//!
//! * plain SQLite, one row per reading (sqlx, WAL, synchronous=FULL) — no encryption;
//! * SQLCipher 4, one row per reading (rusqlite) — whole-file encryption;
//! * Vigil: sealed, compressed chunks per series (vigil-store).
//!
//! Measures ingest throughput, bytes on disk per reading, and the latency of
//! a 7-day trend query (1 Hz series, 1,008 ten-minute buckets of min/max/mean).

use chrono::{DateTime, Duration, TimeZone, Utc};
use std::path::Path;
use std::time::Instant;
use vigil_model::{Mdc, Reading, Source, Value};
use vigil_store::{KeySource, Store};

const BATCH: usize = 10_000;
const SERIES: usize = 96; // 16 beds × 6 parameters
const INGEST_READINGS: usize = 960_000;
const WEEK_S: i64 = 7 * 24 * 3600;
const BUCKETS: usize = 1008;
const QUERY_RUNS: usize = 7;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

/// A plausible vital sign: slow drift plus a little noise, one decimal.
fn value(series: usize, i: i64) -> f64 {
    let base = 60.0 + (series % 7) as f64 * 5.0;
    let drift = ((i as f64) / 3600.0).sin() * 8.0;
    let noise = ((i.wrapping_mul(2654435761) >> 7) % 21) as f64 / 10.0 - 1.0;
    ((base + drift + noise) * 10.0).round() / 10.0
}

/// Readings in arrival order: at each second, one per series.
fn readings(series: usize, seconds: i64) -> impl Iterator<Item = (usize, i64, f64)> {
    (0..seconds).flat_map(move |s| (0..series).map(move |k| (k, s, value(k, s))))
}

fn to_reading(k: usize, s: i64, v: f64) -> Reading {
    Reading {
        bed: format!("bed-{}", k / 6 + 1),
        admission: None,
        device: format!("dev-{k}"),
        code: Mdc(150000 + (k % 6) as u32),
        value: Value::Number(v),
        unit: "/min".into(),
        device_time: None,
        received: t0() + Duration::seconds(s),
        source: Source::Simulated,
        status: Default::default(),
    }
}

/// Bytes of every file in `dir`. A file that goes while we list (SQLite drops
/// its -wal/-shm files at close) counts as empty, not as a crash.
fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

struct Figures {
    ingest_per_s: f64,
    bytes_per_reading: f64,
    trend_ms: f64,
}

// ---------------------------------------------------------------- Vigil

/// What the background upkeep does over time: compact every closed window
/// (each call takes a bounded number of windows so it never hogs the writer).
async fn compact_all(store: &Store) {
    while store
        .compact(t0() + Duration::days(30))
        .await
        .unwrap()
        .chunks_written
        > 0
    {}
}

async fn vigil(dir: &Path) -> Figures {
    let key = KeySource::passphrase("benchmark-passphrase", "bench");
    let store = Store::open(&dir.join("ingest.db"), &key).await.unwrap();
    let all: Vec<Reading> = readings(SERIES, (INGEST_READINGS / SERIES) as i64)
        .map(|(k, s, v)| to_reading(k, s, v))
        .collect();
    let start = Instant::now();
    for b in all.chunks(BATCH) {
        store.append(b).await.unwrap();
    }
    let ingest_per_s = all.len() as f64 / start.elapsed().as_secs_f64();
    compact_all(&store).await;
    store.close().await;
    let bytes_per_reading = dir_size(dir) as f64 / all.len() as f64;

    let week = Store::open(&dir.join("week.db"), &key).await.unwrap();
    let mut batch = Vec::with_capacity(BATCH);
    for (k, s, v) in readings(1, WEEK_S) {
        batch.push(to_reading(k, s, v));
        if batch.len() == BATCH {
            week.append(&batch).await.unwrap();
            batch.clear();
        }
    }
    week.append(&batch).await.unwrap();
    compact_all(&week).await;
    let mut times = Vec::new();
    for _ in 0..QUERY_RUNS {
        let start = Instant::now();
        let tr = week
            .trend(
                "bed-1",
                Mdc(150000),
                t0(),
                t0() + Duration::seconds(WEEK_S),
                BUCKETS,
            )
            .await
            .unwrap();
        times.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(tr.iter().map(|b| b.count).sum::<u64>(), WEEK_S as u64);
    }
    week.close().await;
    Figures {
        ingest_per_s,
        bytes_per_reading,
        trend_ms: median(times),
    }
}

/// The cost of opening the store at start (key derivation and check,
/// migrations, `PRAGMA quick_check`), against opening the same file with plain
/// sqlx and one query: median ms of `QUERY_RUNS`, and the file's size.
async fn open_cost(db: &Path) -> (f64, f64, u64) {
    use sqlx::Connection;
    let key = KeySource::passphrase("benchmark-passphrase", "bench");
    let mut vigil = Vec::new();
    let mut plain = Vec::new();
    for _ in 0..QUERY_RUNS {
        let start = Instant::now();
        let s = Store::open(db, &key).await.unwrap();
        vigil.push(start.elapsed().as_secs_f64() * 1e3);
        s.close().await;
        let start = Instant::now();
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let _: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master")
            .fetch_one(&mut c)
            .await
            .unwrap();
        plain.push(start.elapsed().as_secs_f64() * 1e3);
        c.close().await.unwrap();
    }
    (median(vigil), median(plain), std::fs::metadata(db).unwrap().len())
}

// ---------------------------------------------------------------- plain SQLite (sqlx)

const ROW_SCHEMA: &str =
    "CREATE TABLE readings (series INTEGER NOT NULL, t INTEGER NOT NULL, value REAL NOT NULL);
                          CREATE INDEX readings_series_t ON readings(series, t);";
const ROW_TREND: &str = "SELECT (t - ?1) / ?2 AS b, min(value), max(value), avg(value), count(*)
                         FROM readings WHERE series = 0 AND t >= ?1 AND t < ?3 GROUP BY b";

async fn plain(dir: &Path) -> Figures {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use sqlx::{Connection, Executor};
    let open = |name: &str| {
        SqliteConnectOptions::new()
            .filename(dir.join(name))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
    };
    async fn load(
        c: &mut sqlx::SqliteConnection,
        rows: impl Iterator<Item = (usize, i64, f64)>,
    ) -> (usize, f64) {
        c.execute(ROW_SCHEMA).await.unwrap();
        let rows: Vec<_> = rows.collect();
        let start = Instant::now();
        for b in rows.chunks(BATCH) {
            let mut tx = c.begin().await.unwrap();
            for (k, s, v) in b {
                sqlx::query("INSERT INTO readings (series, t, value) VALUES (?, ?, ?)")
                    .bind(*k as i64)
                    .bind(t0().timestamp() * 1_000_000 + s * 1_000_000)
                    .bind(v)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
        }
        (rows.len(), start.elapsed().as_secs_f64())
    }
    let mut c = sqlx::SqliteConnection::connect_with(&open("ingest.db"))
        .await
        .unwrap();
    let (n, secs) = load(&mut c, readings(SERIES, (INGEST_READINGS / SERIES) as i64)).await;
    c.close().await.unwrap();
    let bytes_per_reading = dir_size(dir) as f64 / n as f64;

    let mut w = sqlx::SqliteConnection::connect_with(&open("week.db"))
        .await
        .unwrap();
    load(&mut w, readings(1, WEEK_S)).await;
    let from = t0().timestamp() * 1_000_000;
    let width = WEEK_S * 1_000_000 / BUCKETS as i64;
    let mut times = Vec::new();
    for _ in 0..QUERY_RUNS {
        let start = Instant::now();
        let rows = sqlx::query(ROW_TREND)
            .bind(from)
            .bind(width)
            .bind(from + WEEK_S * 1_000_000)
            .fetch_all(&mut w)
            .await
            .unwrap();
        times.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(rows.len(), BUCKETS);
    }
    Figures {
        ingest_per_s: n as f64 / secs,
        bytes_per_reading,
        trend_ms: median(times),
    }
}

// ---------------------------------------------------------------- SQLCipher (rusqlite)

fn sqlcipher(dir: &Path) -> Figures {
    let open = |name: &str| {
        let c = rusqlite::Connection::open(dir.join(name)).unwrap();
        c.pragma_update(None, "key", "benchmark-passphrase").unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.pragma_update(None, "synchronous", "FULL").unwrap();
        c
    };
    fn load(c: &mut rusqlite::Connection, rows: impl Iterator<Item = (usize, i64, f64)>) -> (usize, f64) {
        c.execute_batch(ROW_SCHEMA).unwrap();
        let rows: Vec<_> = rows.collect();
        let start = Instant::now();
        for b in rows.chunks(BATCH) {
            let tx = c.transaction().unwrap();
            {
                let mut st = tx
                    .prepare_cached("INSERT INTO readings (series, t, value) VALUES (?, ?, ?)")
                    .unwrap();
                for (k, s, v) in b {
                    st.execute(rusqlite::params![
                        *k as i64,
                        t0().timestamp() * 1_000_000 + s * 1_000_000,
                        v
                    ])
                    .unwrap();
                }
            }
            tx.commit().unwrap();
        }
        (rows.len(), start.elapsed().as_secs_f64())
    }
    let mut c = open("ingest.db");
    let (n, secs) = load(&mut c, readings(SERIES, (INGEST_READINGS / SERIES) as i64));
    drop(c);
    let bytes_per_reading = dir_size(dir) as f64 / n as f64;
    let mut w = open("week.db");
    load(&mut w, readings(1, WEEK_S));
    let from = t0().timestamp() * 1_000_000;
    let width = WEEK_S * 1_000_000 / BUCKETS as i64;
    let mut times = Vec::new();
    for _ in 0..QUERY_RUNS {
        let start = Instant::now();
        let mut st = w.prepare_cached(ROW_TREND).unwrap();
        let n = st
            .query_map(rusqlite::params![from, width, from + WEEK_S * 1_000_000], |_| {
                Ok(())
            })
            .unwrap()
            .count();
        times.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(n, BUCKETS);
    }
    Figures {
        ingest_per_s: n as f64 / secs,
        bytes_per_reading,
        trend_ms: median(times),
    }
}

fn print(name: &str, f: &Figures) {
    println!(
        "{name:<34} {:>12.0} {:>14.2} {:>12.2}",
        f.ingest_per_s, f.bytes_per_reading, f.trend_ms
    );
}

pub async fn run() {
    println!(
        "Store benchmark: {INGEST_READINGS} readings ({SERIES} series) in {BATCH}-reading transactions; \
         7-day 1 Hz series ({WEEK_S} readings), trend of {BUCKETS} buckets, median of {QUERY_RUNS}."
    );
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let p = plain(a.path()).await;
    let s = sqlcipher(b.path());
    let v = vigil(c.path()).await;
    let (open_ms, plain_open_ms, open_bytes) = open_cost(&c.path().join("ingest.db")).await;
    // The fixed part (Argon2id, migrations) from an empty store beside it.
    {
        let key = KeySource::passphrase("benchmark-passphrase", "bench");
        Store::open(&c.path().join("empty.db"), &key).await.unwrap().close().await;
    }
    let (empty_ms, _, empty_bytes) = open_cost(&c.path().join("empty.db")).await;
    println!(
        "{:<34} {:>12} {:>14} {:>12}",
        "", "readings/s", "bytes/reading", "trend ms"
    );
    print("plain SQLite, row per reading", &p);
    print("SQLCipher 4, row per reading", &s);
    print("Vigil (sealed chunks)", &v);
    println!();
    println!("Vigil vs plain SQLite (goal):   ingest {:.1}x (>= 10x)   size {:.3}x (<= 0.2x)   trend {:.3}x (<= 0.1x)",
        v.ingest_per_s / p.ingest_per_s, v.bytes_per_reading / p.bytes_per_reading, v.trend_ms / p.trend_ms);
    println!(
        "Vigil vs SQLCipher:             ingest {:.1}x            size {:.3}x            trend {:.3}x",
        v.ingest_per_s / s.ingest_per_s,
        v.bytes_per_reading / s.bytes_per_reading,
        v.trend_ms / s.trend_ms
    );
    // A 16-bed ward, six 1 Hz parameters, kept 30 days, at this run's bytes per reading.
    let ward_month = 16.0 * 6.0 * 30.0 * 86_400.0 * v.bytes_per_reading;
    let per_byte = (open_ms - empty_ms).max(0.0) / (open_bytes - empty_bytes.min(open_bytes)).max(1) as f64;
    println!(
        "Open at start: empty store {empty_ms:.1} ms (Argon2id key derivation, migrations), {:.1} MB store {open_ms:.1} ms, \
         plain sqlx open of the same file {plain_open_ms:.1} ms; the size-dependent part (quick_check) costs {:.1} ms/MB, \
         so a 30-day 16-bed store ({:.0} MB) opens in ~{:.1} s",
        open_bytes as f64 / 1e6,
        per_byte * 1e6,
        ward_month / 1e6,
        (empty_ms + per_byte * ward_month) / 1e3
    );
}
