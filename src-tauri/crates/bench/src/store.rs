//! Vigil's store against the obvious alternatives, in one run, on the same
//! machine, with the same data and transaction sizes:
//!
//! * plain SQLite, one row per reading, rusqlite prepared statement (the
//!   SQLCipher library without a key: the fastest row store here);
//! * SQLCipher 4, one row per reading (rusqlite) — whole-file encryption;
//! * plain SQLite through sqlx, one async round trip per row (what an app on
//!   sqlx would write; bulk only, at the smallest size: it is slow);
//! * Vigil: sealed, compressed chunks per series (vigil-store); the app
//!   shape's small flushes go into one sealed ingest frame each, regrouped
//!   into chunks by compaction.
//!
//! All: WAL, synchronous=FULL. Two write shapes:
//!
//! * bulk (a backlog import): transactions of the writer's backlog batch
//!   (`vigil_core::writer::BACKLOG_BATCH`, what it hands the store when it
//!   drains a backlog or imports a replay) for every store, then Vigil's
//!   compaction (timed apart);
//! * the app's: the writer's 0.5 s flushes of one reading per 1 Hz series
//!   (16 beds × 6 parameters, half the series per flush), compaction every
//!   minute of data as the upkeep task runs it, its backlog sampled.
//!
//! Per shape: readings/s, CPU time per reading (`getrusage(RUSAGE_SELF)`,
//! all threads), bytes written per reading (`/proc/self/io` `write_bytes`:
//! what reached the block layer from ingest through close, WAL and its
//! checkpoints included), bytes at rest (every file) before and after
//! compaction. Then a 7-day trend of one 1 Hz series (1,008 ten-minute
//! buckets of min/max/mean) on row stores, on Vigil's uncompacted 1-minute
//! chunks and on Vigil's compacted layout.

use chrono::{DateTime, Duration, TimeZone, Utc};
use std::path::Path;
use std::time::Instant;
use vigil_model::{Mdc, Reading, Source, Value};
use vigil_store::{KeySource, Store};

/// Transactions of the row stores' loads outside the bulk comparison.
const BATCH: usize = 10_000;

/// The bulk phase's transaction size, the same for every store: what the
/// writer hands the store per write when it drains a backlog.
/// `VIGIL_BENCH_BATCH` overrides it (exploring, profiling).
fn bulk_batch() -> usize {
    std::env::var("VIGIL_BENCH_BATCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(vigil_core::writer::BACKLOG_BATCH)
}
const BEDS: usize = 16;
const SERIES: usize = BEDS * 6;
const WEEK_S: i64 = 7 * 24 * 3600;
const BUCKETS: usize = 1008;
const QUERY_RUNS: usize = 7;
/// The sqlx baseline's size: one round trip per row makes it ~30x slower.
const SQLX_READINGS: usize = 960_000;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}
fn t0_us() -> i64 {
    t0().timestamp_micros()
}

/// A plausible vital sign: slow drift plus a little noise, one decimal.
fn value(series: usize, i: i64) -> f64 {
    let base = 60.0 + (series % 7) as f64 * 5.0;
    let drift = ((i as f64) / 3600.0).sin() * 8.0;
    let noise = ((i.wrapping_mul(2654435761) >> 7) % 21) as f64 / 10.0 - 1.0;
    ((base + drift + noise) * 10.0).round() / 10.0
}

/// One reading: (series, µs since t0, value). Series k samples at 1 Hz,
/// odd series half a second after even ones (two 0.5 s flushes a second).
type Row = (usize, i64, f64);

fn row(k: usize, s: i64) -> Row {
    (k, s * 1_000_000 + (k % 2) as i64 * 500_000, value(k, s))
}

/// Readings in arrival order, `n` at a time: at each second, one per series.
fn bulk_batches(series: usize, seconds: i64, n: usize) -> impl Iterator<Item = Vec<Row>> {
    let mut it = (0..seconds).flat_map(move |s| (0..series).map(move |k| row(k, s))).peekable();
    std::iter::from_fn(move || {
        it.peek()?;
        Some(it.by_ref().take(n).collect())
    })
}

/// The writer's 0.5 s flushes: flush f holds second f/2 of the series of parity f%2.
fn app_flushes(seconds: i64) -> impl Iterator<Item = Vec<Row>> {
    (0..seconds * 2).map(|f| {
        let s = f / 2;
        (0..SERIES).filter(|k| k % 2 == (f % 2) as usize).map(|k| row(k, s)).collect()
    })
}

fn to_reading(&(k, us, v): &Row) -> Reading {
    Reading {
        bed: format!("bed-{}", k / 6 + 1),
        admission: None,
        device: format!("dev-{k}"),
        code: Mdc(150000 + (k % 6) as u32),
        value: Value::Number(v),
        unit: "/min".into(),
        device_time: None,
        received: t0() + Duration::microseconds(us),
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

/// Process CPU time (user + system, every thread), seconds.
fn cpu_s() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Bytes this process caused to be written to storage (`/proc/self/io`).
fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("write_bytes: ").and_then(|v| v.trim().parse().ok()))
        })
        .unwrap_or(0)
}

/// CPU, wall and disk writes over a measured stretch.
struct Meter {
    wall: Instant,
    cpu: f64,
    written: u64,
}

impl Meter {
    fn start() -> Meter {
        Meter {
            wall: Instant::now(),
            cpu: cpu_s(),
            written: written_bytes(),
        }
    }
    /// (wall s, cpu s, bytes written) since start.
    fn read(&self) -> (f64, f64, u64) {
        (
            self.wall.elapsed().as_secs_f64(),
            cpu_s() - self.cpu,
            written_bytes() - self.written,
        )
    }
}

/// A [`Meter`] that runs only while the store works: building the
/// `Reading` values (strings per reading) is the data source's cost, not
/// the store's, and the row stores are given ready tuples.
#[derive(Default)]
struct Stopwatch {
    wall: f64,
    cpu: f64,
    written: u64,
}

impl Stopwatch {
    fn add(&mut self, m: Meter) {
        let (w, c, b) = m.read();
        self.wall += w;
        self.cpu += c;
        self.written += b;
    }
    fn total(&self) -> (f64, f64, u64) {
        (self.wall, self.cpu, self.written)
    }
}

/// One store under one write shape.
#[derive(Default, Clone)]
struct Ingest {
    readings: u64,
    per_s: f64,
    cpu_us: f64,
    written: f64,
    rest: f64,
    /// Vigil: at rest after compaction, compaction wall time, worst backlog.
    rest_compacted: Option<f64>,
    compact_s: Option<f64>,
    backlog: Option<u64>,
}

impl Ingest {
    fn of(readings: u64, (wall, cpu, written): (f64, f64, u64), rest: u64) -> Ingest {
        let n = readings as f64;
        Ingest {
            readings,
            per_s: n / wall,
            cpu_us: cpu * 1e6 / n,
            written: written as f64 / n,
            rest: rest as f64 / n,
            ..Default::default()
        }
    }
}

// ---------------------------------------------------------------- Vigil

fn key() -> KeySource {
    KeySource::passphrase("benchmark-passphrase", "bench")
}

/// Every closed window compacted, as the upkeep task does over time (each
/// call is bounded; `more` says to call again).
async fn compact_until(store: &Store, closed_before: DateTime<Utc>) {
    while store.compact(closed_before).await.unwrap().more {}
}

/// Bulk: `seconds` of the ward in backlog-batch appends, then compaction.
async fn vigil_bulk(dir: &Path, seconds: i64) -> Ingest {
    let store = Store::open(&dir.join("v.db"), &key()).await.unwrap();
    let mut n = 0u64;
    let mut sw = Stopwatch::default();
    for b in bulk_batches(SERIES, seconds, bulk_batch()) {
        let rs: Vec<Reading> = b.iter().map(to_reading).collect();
        let m = Meter::start();
        store.append(&rs).await.unwrap();
        sw.add(m);
        n += rs.len() as u64;
    }
    let m = Meter::start();
    store.close().await;
    sw.add(m);
    let used = sw.total();
    let rest = dir_size(dir);
    let store = Store::open(&dir.join("v.db"), &key()).await.unwrap();
    let c = Instant::now();
    compact_until(&store, t0() + Duration::seconds(seconds + 600)).await;
    let compact_s = c.elapsed().as_secs_f64();
    store.close().await;
    let mut f = Ingest::of(n, used, rest);
    f.rest_compacted = Some(dir_size(dir) as f64 / n as f64);
    f.compact_s = Some(compact_s);
    f
}

/// The app's shape: 0.5 s flushes, compaction every minute of data (closing
/// windows a minute old, as `maintenance.rs`), its backlog sampled.
async fn vigil_app(dir: &Path, seconds: i64) -> Ingest {
    let store = Store::open(&dir.join("v.db"), &key()).await.unwrap();
    let (mut n, mut compact_s, mut backlog) = (0u64, 0.0, 0u64);
    let mut sw = Stopwatch::default();
    for (f, b) in app_flushes(seconds).enumerate() {
        let rs: Vec<Reading> = b.iter().map(to_reading).collect();
        let m = Meter::start();
        store.append(&rs).await.unwrap();
        n += rs.len() as u64;
        if f % 120 == 119 {
            let now = t0() + Duration::milliseconds(f as i64 * 500);
            let c = Instant::now();
            compact_until(&store, now - Duration::minutes(1)).await;
            compact_s += c.elapsed().as_secs_f64();
            sw.add(m);
            // Sampled outside the meter: not the store's cost.
            let st = store.chunk_stats().await.unwrap();
            backlog = backlog.max(st.unsummarised + st.frames);
        } else {
            sw.add(m);
        }
    }
    let m = Meter::start();
    store.close().await;
    sw.add(m);
    let mut f = Ingest::of(n, sw.total(), dir_size(dir));
    // What is left open at the end (the last window) compacted too.
    let store = Store::open(&dir.join("v.db"), &key()).await.unwrap();
    compact_until(&store, t0() + Duration::seconds(seconds + 600)).await;
    store.close().await;
    f.rest_compacted = Some(dir_size(dir) as f64 / n as f64);
    f.compact_s = Some(compact_s);
    f.backlog = Some(backlog);
    f
}

/// 7-day trend of one series: on 1-minute chunks (what 0.5 s flushes hold
/// at `--speed 120`; at real speed chunks are shorter still), then on the
/// same data compacted; and its bytes per reading before and after (every
/// file, after the WAL is checkpointed at close).
async fn vigil_week(dir: &Path) -> (f64, f64, f64, f64) {
    let path = dir.join("week.db");
    let week = Store::open(&path, &key()).await.unwrap();
    for b in bulk_batches(1, WEEK_S, 60) {
        let rs: Vec<Reading> = b.iter().map(to_reading).collect();
        week.append(&rs).await.unwrap();
    }
    let raw_ms = week_trend(&week).await;
    week.close().await;
    let raw_bytes = dir_size(dir) as f64 / WEEK_S as f64;
    let week = Store::open(&path, &key()).await.unwrap();
    compact_until(&week, t0() + Duration::seconds(WEEK_S + 600)).await;
    week.close().await;
    let compacted_bytes = dir_size(dir) as f64 / WEEK_S as f64;
    let week = Store::open(&path, &key()).await.unwrap();
    let compacted_ms = week_trend(&week).await;
    week.close().await;
    (raw_ms, compacted_ms, raw_bytes, compacted_bytes)
}

async fn week_trend(week: &Store) -> f64 {
    let mut times = Vec::new();
    for _ in 0..QUERY_RUNS {
        let start = Instant::now();
        let tr = week
            .trend("bed-1", Mdc(150000), t0(), t0() + Duration::seconds(WEEK_S), BUCKETS)
            .await
            .unwrap();
        times.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(tr.iter().map(|b| b.count).sum::<u64>(), WEEK_S as u64);
    }
    median(times)
}

/// The cost of opening the store at start (key derivation and check,
/// migrations, `PRAGMA quick_check`), against opening the same file with plain
/// sqlx and one query: median ms of `QUERY_RUNS`, and the file's size.
async fn open_cost(db: &Path) -> (f64, f64, u64) {
    use sqlx::Connection;
    let mut vigil = Vec::new();
    let mut plain = Vec::new();
    for _ in 0..QUERY_RUNS {
        let start = Instant::now();
        let s = Store::open(db, &key()).await.unwrap();
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

/// Opening at start: an empty store and the bulk store in `dir`.
async fn print_open_cost(dir: &Path, per_reading: f64) {
    let (open_ms, plain_open_ms, open_bytes) = open_cost(&dir.join("v.db")).await;
    let e = tmp();
    Store::open(&e.path().join("empty.db"), &key()).await.unwrap().close().await;
    let (empty_ms, _, empty_bytes) = open_cost(&e.path().join("empty.db")).await;
    // A 16-bed ward, six 1 Hz parameters, kept 30 days, at this run's bytes per reading.
    let ward_month = SERIES as f64 * 30.0 * 86_400.0 * per_reading;
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

/// A 24 h admission of one bed (6 parameters at 1 Hz, 518,400 readings),
/// written as the writer does (0.5 s flushes with the rest of the ward's
/// 16 beds would add nothing to this bed's chunks) in 10-minute batches,
/// then compacted. Times: the clinician's PDF report (`report::build`,
/// which reads and verifies every chunk, plus `vigil_report::render_pdf`)
/// beside reading the same raw samples from Vigil (`read_checked`) and from
/// the fastest row store (one indexed SELECT of the same rows).
async fn report_24h(dir: &Path) -> (f64, f64, f64, f64, usize, usize) {
    let store = Store::open(&dir.join("r24.db"), &key()).await.unwrap();
    let patient = vigil_store::Patient {
        display_name: "Bench Patient".into(),
        mrn: "BENCH-0001".into(),
        date_of_birth: chrono::NaiveDate::from_ymd_opt(1950, 1, 1).unwrap(),
        category: vigil_store::PatientCategory::Adult,
    };
    let adm = store.admit("bed-1", patient, t0()).await.unwrap();
    let day = 86_400i64;
    for b in bulk_batches(6, day, 6 * 600) {
        let rs: Vec<Reading> = b
            .iter()
            .map(|r| Reading {
                admission: Some(adm.id.clone()),
                ..to_reading(r)
            })
            .collect();
        store.append(&rs).await.unwrap();
    }
    compact_until(&store, t0() + Duration::seconds(day + 600)).await;
    let end = t0() + Duration::seconds(day);
    store.discharge("bed-1", end).await.unwrap();
    let site = vigil_core::site::SiteConfig::default();
    let req = vigil_core::report::Request {
        scope: vigil_core::report::Scope::Admission(adm.id.0.clone()),
        now: end,
        tz: site.time_zone().0,
        ward: "Benchmark ward".into(),
        generated_by: "bench".into(),
        preset: site.alarm_preset().unwrap(),
    };
    let (mut build, mut render, mut read) = (Vec::new(), Vec::new(), Vec::new());
    let (mut pages, mut n) = (0, 0);
    for _ in 0..3 {
        let s = Instant::now();
        let built = vigil_core::report::build(&store, &req).await.unwrap();
        build.push(s.elapsed().as_secs_f64() * 1e3);
        let s = Instant::now();
        let pdf = vigil_report::render_pdf(&built.report).unwrap();
        render.push(s.elapsed().as_secs_f64() * 1e3);
        pages = pdf.len();
        let s = Instant::now();
        let raw = store
            .read_checked(vigil_store::Selection::Admission(&adm.id.0), t0(), end)
            .await
            .unwrap();
        read.push(s.elapsed().as_secs_f64() * 1e3);
        n = raw.readings.len();
        assert!(raw.failed.is_empty());
    }
    store.close().await;
    // The same rows in the fastest row store, read back with one SELECT.
    let mut c = rusqlite_open(&dir.join("r24-rows.db"), None);
    rusqlite_load(&mut c, bulk_batches(6, day, BATCH));
    let mut rows_ms = Vec::new();
    for _ in 0..3 {
        let s = Instant::now();
        let mut st = c
            .prepare_cached("SELECT series, t, value FROM readings WHERE series BETWEEN 0 AND 5 AND t >= ?1 AND t <= ?2")
            .unwrap();
        let got = st
            .query_map(rusqlite::params![t0_us(), t0_us() + day * 1_000_000], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, f64>(2)?))
            })
            .unwrap()
            .count();
        rows_ms.push(s.elapsed().as_secs_f64() * 1e3);
        assert_eq!(got, n);
    }
    (median(build), median(render), median(read), median(rows_ms), n, pages)
}

// ---------------------------------------------------------------- row stores

const ROW_SCHEMA: &str =
    "CREATE TABLE readings (series INTEGER NOT NULL, t INTEGER NOT NULL, value REAL NOT NULL);
     CREATE INDEX readings_series_t ON readings(series, t);";
const ROW_INSERT: &str = "INSERT INTO readings (series, t, value) VALUES (?, ?, ?)";
const ROW_TREND: &str = "SELECT (t - ?1) / ?2 AS b, min(value), max(value), avg(value), count(*)
                         FROM readings WHERE series = 0 AND t >= ?1 AND t < ?3 GROUP BY b";

/// rusqlite: plain SQLite (`key` None) or SQLCipher, WAL, synchronous=FULL.
fn rusqlite_open(path: &Path, key: Option<&str>) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    if let Some(k) = key {
        c.pragma_update(None, "key", k).unwrap();
    }
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "FULL").unwrap();
    c.execute_batch(ROW_SCHEMA).unwrap();
    c
}

/// One transaction per batch, one prepared (cached) statement.
fn rusqlite_load(c: &mut rusqlite::Connection, batches: impl Iterator<Item = Vec<Row>>) -> u64 {
    let mut n = 0;
    for b in batches {
        let tx = c.transaction().unwrap();
        {
            let mut st = tx.prepare_cached(ROW_INSERT).unwrap();
            for (k, us, v) in &b {
                st.execute(rusqlite::params![*k as i64, t0_us() + us, v]).unwrap();
            }
        }
        tx.commit().unwrap();
        n += b.len() as u64;
    }
    n
}

fn rusqlite_ingest(dir: &Path, key: Option<&str>, batches: impl Iterator<Item = Vec<Row>>) -> Ingest {
    let m = Meter::start();
    let mut c = rusqlite_open(&dir.join("r.db"), key);
    let n = rusqlite_load(&mut c, batches);
    drop(c); // closes: checkpoints the WAL into the file
    Ingest::of(n, m.read(), dir_size(dir))
}

fn rusqlite_week(dir: &Path, key: Option<&str>) -> f64 {
    let mut w = rusqlite_open(&dir.join("week.db"), key);
    rusqlite_load(&mut w, bulk_batches(1, WEEK_S, BATCH));
    let width = WEEK_S * 1_000_000 / BUCKETS as i64;
    let mut times = Vec::new();
    for _ in 0..QUERY_RUNS {
        let start = Instant::now();
        let mut st = w.prepare_cached(ROW_TREND).unwrap();
        let n = st
            .query_map(rusqlite::params![t0_us(), width, t0_us() + WEEK_S * 1_000_000], |_| Ok(()))
            .unwrap()
            .count();
        times.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(n, BUCKETS);
    }
    median(times)
}

/// The durable-commit floor of this machine: median ms of a rusqlite
/// transaction inserting one row (WAL, synchronous=FULL: one fsync), and
/// the process CPU µs each such commit costs (mean). No store that commits
/// each batch durably goes below it per batch.
fn commit_floor(dir: &Path) -> (f64, f64) {
    let mut c = rusqlite_open(&dir.join("floor.db"), None);
    let mut times = Vec::new();
    let cpu = cpu_s();
    for i in 0..51 {
        let s = Instant::now();
        let tx = c.transaction().unwrap();
        tx.execute(ROW_INSERT, rusqlite::params![0i64, i as i64, 1.0]).unwrap();
        tx.commit().unwrap();
        times.push(s.elapsed().as_secs_f64() * 1e3);
    }
    let cpu_us = (cpu_s() - cpu) * 1e6 / 51.0;
    (median(times), cpu_us)
}

/// Plain SQLite through sqlx: one awaited statement per row.
async fn sqlx_bulk(dir: &Path) -> Ingest {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use sqlx::{Connection, Executor};
    let m = Meter::start();
    let mut c = sqlx::SqliteConnection::connect_with(
        &SqliteConnectOptions::new()
            .filename(dir.join("s.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full),
    )
    .await
    .unwrap();
    c.execute(ROW_SCHEMA).await.unwrap();
    let mut n = 0;
    for b in bulk_batches(SERIES, (SQLX_READINGS / SERIES) as i64, bulk_batch()) {
        let mut tx = c.begin().await.unwrap();
        for (k, us, v) in &b {
            sqlx::query(ROW_INSERT)
                .bind(*k as i64)
                .bind(t0_us() + us)
                .bind(v)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        n += b.len() as u64;
    }
    c.close().await.unwrap();
    Ingest::of(n, m.read(), dir_size(dir))
}

// ---------------------------------------------------------------- report

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn header() {
    println!(
        "  {:<30} {:>10} {:>12} {:>9} {:>10} {:>10} {:>9} {:>10} {:>9}",
        "", "readings", "readings/s", "CPU µs/r", "written/r", "at rest/r", "compacted", "compact s", "backlog"
    );
}

fn line(name: &str, f: &Ingest) {
    let opt = |v: Option<f64>, p: usize| v.map_or("-".into(), |v| format!("{v:.p$}"));
    println!(
        "  {name:<30} {:>10} {:>12.0} {:>9.2} {:>10.2} {:>10.2} {:>9} {:>10} {:>9}",
        f.readings,
        f.per_s,
        f.cpu_us,
        f.written,
        f.rest,
        opt(f.rest_compacted, 2),
        opt(f.compact_s, 2),
        f.backlog.map_or("-".into(), |b| b.to_string()),
    );
}

/// Vigil against the row stores of the same run, each figure against the
/// best row store on that figure (the fastest for readings/s, the one using
/// the least CPU for CPU/reading, ...): a skeptic's comparison.
fn ratios(v: &Ingest, rows: &[(&str, &Ingest)]) {
    let best = |f: fn(&Ingest) -> f64, higher: bool| {
        let (name, r) = rows
            .iter()
            .max_by(|a, b| {
                let o = f(a.1).partial_cmp(&f(b.1)).unwrap();
                if higher { o } else { o.reverse() }
            })
            .unwrap();
        (*name, f(r))
    };
    let rest = v.rest_compacted.unwrap_or(v.rest);
    let (fast, per_s) = best(|f| f.per_s, true);
    let (lean, cpu) = best(|f| f.cpu_us, false);
    let (light, written) = best(|f| f.written, false);
    let (small, at_rest) = best(|f| f.rest, false);
    println!(
        "  Vigil / best row store: readings/s {:.1}x ({fast})   CPU/reading {:.2}x ({lean})   written/reading {:.2}x ({light})   at rest (compacted) {:.3}x ({small}) = {rest:.2} B/reading",
        v.per_s / per_s,
        v.cpu_us / cpu,
        v.written / written,
        rest / at_rest,
    );
}

fn human(seconds: i64) -> String {
    match seconds {
        s if s % 86_400 == 0 => format!("{} day(s)", s / 86_400),
        s => format!("{} h", s / 3600),
    }
}

pub async fn run(full: bool) {
    // For profiling one shape: VIGIL_BENCH_ONLY=app|bulk, or Vigil alone
    // (no baselines): vigil-app|vigil-bulk.
    let only = std::env::var("VIGIL_BENCH_ONLY").unwrap_or_default();
    let vigil_only = only.starts_with("vigil-");
    let only = only.trim_start_matches("vigil-").to_string();
    // VIGIL_BENCH_APP_S: the app shape's length in seconds (profiling).
    let app_len = std::env::var("VIGIL_BENCH_APP_S").ok().and_then(|s| s.parse().ok());
    let (bulk_sizes, app_s): (&[i64], i64) = if only == "app" {
        (&[], app_len.unwrap_or(600))
    } else if full {
        (&[86_400, 7 * 86_400, 30 * 86_400], 6 * 3600)
    } else {
        (&[3600, 6 * 3600], 3600)
    };
    println!(
        "Store benchmark ({}): {BEDS} beds × 6 parameters at 1 Hz; WAL, synchronous=FULL everywhere. \
         CPU: getrusage(RUSAGE_SELF); written: /proc/self/io write_bytes from open through close (WAL and checkpoints included).",
        if full { "--full" } else { "--quick; --full for 1, 7 and 30 days" }
    );
    let batch = bulk_batch();
    for &secs in bulk_sizes {
        println!();
        println!(
            "Bulk (backlog import), {} of the ward, {batch}-reading transactions (the writer's backlog batch) for every store:",
            human(secs)
        );
        header();
        if vigil_only {
            line("Vigil (sealed chunks)", &vigil_bulk(tmp().path(), secs).await);
            continue;
        }
        let plain = rusqlite_ingest(tmp().path(), None, bulk_batches(SERIES, secs, batch));
        line("plain SQLite (rusqlite, prep.)", &plain);
        let cipher = rusqlite_ingest(tmp().path(), Some("benchmark-passphrase"), bulk_batches(SERIES, secs, batch));
        line("SQLCipher 4 (rusqlite, prep.)", &cipher);
        let mut rows = vec![("plain rusqlite", plain), ("SQLCipher", cipher)];
        if secs == bulk_sizes[0] {
            let s = sqlx_bulk(tmp().path()).await;
            line(&format!("plain SQLite (sqlx), {}k only", SQLX_READINGS / 1000), &s);
            rows.push(("sqlx", s));
        }
        let d = tmp();
        let v = vigil_bulk(d.path(), secs).await;
        line("Vigil (sealed chunks)", &v);
        let refs: Vec<(&str, &Ingest)> = rows.iter().map(|(n, f)| (*n, f)).collect();
        ratios(&v, &refs);
        let (floor, _) = commit_floor(tmp().path());
        let best = rows.iter().map(|(_, f)| f.per_s).fold(0.0, f64::max);
        println!(
            "  Durable-commit floor here: {floor:.2} ms per transaction (one fsync), so {batch}-reading transactions cap any store at {:.2} M readings/s = {:.1}x the fastest row store",
            batch as f64 / floor / 1e3,
            batch as f64 / (floor / 1e3) / best
        );
        if secs == *bulk_sizes.last().unwrap() {
            print_open_cost(d.path(), v.rest_compacted.unwrap()).await;
        }
    }

    if only == "bulk" {
        return;
    }
    println!();
    println!(
        "App shape, {} of the ward: 0.5 s flushes of one reading per series ({} readings a transaction), \
         Vigil compacting every minute of data:",
        human(app_s),
        SERIES / 2
    );
    header();
    if vigil_only {
        line("Vigil (frames, then chunks)", &vigil_app(tmp().path(), app_s).await);
        return;
    }
    let plain = rusqlite_ingest(tmp().path(), None, app_flushes(app_s));
    line("plain SQLite (rusqlite, prep.)", &plain);
    let cipher = rusqlite_ingest(tmp().path(), Some("benchmark-passphrase"), app_flushes(app_s));
    line("SQLCipher 4 (rusqlite, prep.)", &cipher);
    let v = vigil_app(tmp().path(), app_s).await;
    line("Vigil (frames, then chunks)", &v);
    ratios(&v, &[("plain rusqlite", &plain), ("SQLCipher", &cipher)]);
    let (floor_ms, floor_cpu) = commit_floor(tmp().path());
    println!(
        "  Durable-commit floor here: a 1-row rusqlite commit takes {floor_ms:.2} ms and {floor_cpu:.0} µs of CPU (write + fsync), \
         = {:.2} µs CPU/reading at {} readings a flush: every store pays it per flush",
        floor_cpu / (SERIES / 2) as f64,
        SERIES / 2
    );
    println!(
        "  (backlog: the most chunks and ingest frames awaiting compaction at any minute; {SERIES} series, 120 flushes a minute)"
    );
    if only == "app" {
        return;
    }

    println!();
    println!("7-day trend of one 1 Hz series ({WEEK_S} readings), {BUCKETS} buckets, median of {QUERY_RUNS} (ms):");
    let (d1, d2) = (tmp(), tmp());
    let plain_ms = rusqlite_week(d1.path(), None);
    let cipher_ms = rusqlite_week(d2.path(), Some("benchmark-passphrase"));
    let (raw_ms, comp_ms, raw_b, comp_b) = vigil_week(tmp().path()).await;
    println!("  plain SQLite (rusqlite)            {plain_ms:>8.2}");
    println!("  SQLCipher 4                        {cipher_ms:>8.2}");
    println!("  Vigil, 1-minute chunks (uncompacted, {raw_b:.2} B/reading)      {raw_ms:>8.2}   {:.3}x the fastest row store", raw_ms / plain_ms.min(cipher_ms));
    println!("  Vigil, compacted (10-min chunks + summaries, {comp_b:.2} B/reading) {comp_ms:>8.2}   {:.3}x the fastest row store", comp_ms / plain_ms.min(cipher_ms));

    println!();
    let (build_ms, render_ms, read_ms, rows_ms, n, pages) = report_24h(tmp().path()).await;
    println!("24 h admission report, one bed, 6 parameters at 1 Hz ({n} readings), median of 3 (ms):");
    println!("  report::build (reads and verifies every chunk, flowsheet, gaps, alarm log)  {build_ms:>8.1}");
    println!("  vigil_report::render_pdf ({} kB PDF: plotters charts, embedded fonts)         {render_ms:>8.1}", pages / 1000);
    println!("  beside: Vigil read_checked of the same raw samples                          {read_ms:>8.1}");
    println!("  beside: plain SQLite (rusqlite), one SELECT of the same rows                {rows_ms:>8.1}");
    println!("  (the 7-day trend through vigil_core::trends needs a running Vigil; Store::trend above is what it calls for ranges past its raw span)");
}
