//! Issue 10, item 11: an alarm log that refuses writes is itself a technical
//! alarm at every bed, never a stalled pipeline, and nothing it held is lost.
//! The fault is injected into the real SQLite file from a second connection
//! (a trigger that aborts every insert into the alarm log).

use crate::config;
use std::time::Duration;
use vigil_alarms::{AlarmKind, TechnicalKind};
use vigil_core::Vigil;
use vigil_devices::sim::Scenario;

fn log_failure_at(v: &Vigil) -> Vec<String> {
    technical_at(v, TechnicalKind::AlarmLogFailure)
}

async fn wait_until(f: impl FnMut() -> bool) -> bool {
    wait_for(Duration::from_secs(15), f).await
}

/// Waits up to `limit`: for work whose duration depends on the machine (landing a
/// 100 000-record backlog in a debug build on a loaded CI machine), not on Vigil's timing.
async fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..limit.as_millis() / 100 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_alarm_log_alarms_at_every_bed_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
        .await
        .unwrap();
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("vigil.db"));
    let db = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::query("CREATE TRIGGER inject_fault BEFORE INSERT ON alarm_log BEGIN SELECT RAISE(ABORT, 'injected fault'); END")
        .execute(&db)
        .await
        .unwrap();
    // An operator action whose record must reach the log.
    v.set_limit("bed-1", "heart_rate", Some(30.0), Some(50.0), "RN-F")
        .await
        .unwrap();
    assert!(
        wait_until(|| log_failure_at(&v).len() == 4).await,
        "no alarm-log failure at every bed: {:?}",
        log_failure_at(&v)
    );
    // Monitoring goes on: readings are still stored while the log fails.
    let stored = v.stats().get(&v.stats().stored);
    assert!(
        wait_until(|| v.stats().get(&v.stats().stored) > stored + 10).await,
        "the pipeline stalled"
    );
    // The log heals: the alarm ends and the held records are written.
    sqlx::query("DROP TRIGGER inject_fault")
        .execute(&db)
        .await
        .unwrap();
    assert!(
        wait_until(|| log_failure_at(&v).is_empty()).await,
        "still alarming after the log healed"
    );
    let log = v.alarm_log(Some("bed-1"), 1).await.unwrap();
    assert!(
        log.iter()
            .any(|r| r.event["event"]["type"] == "limit_changed" && r.event["event"]["user"] == "RN-F"),
        "the record held during the fault was lost"
    );
    assert!(v.stats().get(&v.stats().alarm_log_errors) > 0);
    v.shutdown().await;
}

/// Issue 15: the NEWS2 log goes through the same writer: a NEWS2 log that
/// refuses writes is "alarm log failure" at every bed, and the nurse's entry
/// and the scores held meanwhile land once it heals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_news2_log_alarms_at_every_bed_and_loses_no_entry() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 60.0)).await.unwrap();
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("vigil.db"));
    let db = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::query("CREATE TRIGGER inject_fault BEFORE INSERT ON news2_log BEGIN SELECT RAISE(ABORT, 'injected fault'); END")
        .execute(&db)
        .await
        .unwrap();
    v.enter_news2(
        "bed-1",
        vigil_core::alarming::News2Entry::Consciousness(vigil_alarms::Consciousness::Pain),
        "rn-f",
    )
    .await
    .unwrap();
    assert!(
        wait_until(|| log_failure_at(&v).len() == 4).await,
        "no alarm-log failure at every bed: {:?}",
        log_failure_at(&v)
    );
    sqlx::query("DROP TRIGGER inject_fault").execute(&db).await.unwrap();
    assert!(wait_until(|| log_failure_at(&v).is_empty()).await, "still alarming after the log healed");
    let now = chrono::DateTime::from_timestamp_millis(v.snapshot().now_ms).unwrap();
    let h = vigil_core::report::news2_history(
        v.store(),
        vigil_store::Selection::Bed("bed-1"),
        now - chrono::Duration::hours(1),
        now,
    )
    .await
    .unwrap();
    assert_eq!(h.entries.len(), 1, "the entry held during the fault was lost");
    assert_eq!(h.entries[0].by, "rn-f");
    assert!(!h.scores.is_empty());
    v.shutdown().await;
}

/// Beds showing a technical alarm of `kind` whose condition stands (not latched).
fn technical_at(v: &Vigil, kind: TechnicalKind) -> Vec<String> {
    v.snapshot()
        .alarms
        .into_iter()
        .filter(|b| {
            b.active
                .iter()
                .any(|a| matches!(a.kind, AlarmKind::Technical { kind: k, .. } if k == kind) && !a.latched)
        })
        .map(|b| b.bed)
        .collect()
}

/// Live readings reaching the broadcast within `real` time.
async fn live_readings(v: &Vigil, real: Duration) -> usize {
    let mut rx = v.subscribe();
    let mut n = 0;
    let _ = tokio::time::timeout(real, async {
        loop {
            match rx.recv().await {
                Ok(vigil_core::view::LiveEvent::Reading(_)) => n += 1,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
    })
    .await;
    n
}

/// The disk-full scenario: the chunk table refuses writes with a
/// whole-transaction rollback (what SQLITE_FULL does; the connection used
/// to stay wedged in a transaction). Live monitoring goes on at its normal
/// rate, devices do not go stale, alarms still start, "recording
/// interrupted" is raised at every bed and cleared only once the held
/// readings have landed, and then every reading received is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_never_blinds_the_ward_and_recording_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 5.0))
        .await
        .unwrap();
    let before = live_readings(&v, Duration::from_secs(2)).await;
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("vigil.db"));
    let db = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    // Disk full refuses every write of readings: chunks and ingest frames.
    for table in ["chunks", "frames"] {
        sqlx::query(&format!(
            "CREATE TRIGGER inject_fault_{table} BEFORE INSERT ON {table} BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full'); END"
        ))
        .execute(&db)
        .await
        .unwrap();
    }
    assert!(
        wait_until(|| technical_at(&v, TechnicalKind::StoreFailure).len() == 4).await,
        "no 'recording interrupted' at every bed: {:?}",
        technical_at(&v, TechnicalKind::StoreFailure)
    );
    assert_eq!(TechnicalKind::StoreFailure.describe(), "recording interrupted");
    // Live readings keep their rate while the store fails, well past the
    // old channel's capacity.
    let during = live_readings(&v, Duration::from_secs(4)).await;
    assert!(
        during >= before,
        "live readings slowed during the fault: {before} in 2 s before, {during} in 4 s during"
    );
    assert!(
        technical_at(&v, TechnicalKind::NoData).is_empty(),
        "devices went stale while the store failed: {:?}",
        technical_at(&v, TechnicalKind::NoData)
    );
    // Alarms still start: a high limit below the stable heart rate.
    let started = v.stats().get(&v.stats().alarms_started);
    v.set_limit("bed-1", "heart_rate", Some(30.0), Some(50.0), "RN-F")
        .await
        .unwrap();
    assert!(
        wait_until(|| v.stats().get(&v.stats().alarms_started) > started).await,
        "no alarm started while the store failed"
    );
    assert!(
        v.stats().get(&v.stats().backlog) > 0,
        "nothing held for the store"
    );
    assert!(v.stats().get(&v.stats().store_errors) > 1);
    // Space returns: the alarm clears once the backlog has landed.
    for table in ["chunks", "frames"] {
        sqlx::query(&format!("DROP TRIGGER inject_fault_{table}"))
            .execute(&db)
            .await
            .unwrap();
    }
    assert!(
        wait_until(|| technical_at(&v, TechnicalKind::StoreFailure).is_empty()).await,
        "still 'recording interrupted' after the store healed"
    );
    db.close().await;
    v.shutdown().await;
    let s = v.stats();
    assert_eq!(s.get(&s.unrecorded), 0, "{:?}", s.unrecorded_summary());
    assert_eq!(
        s.get(&s.readings),
        s.get(&s.stored),
        "every reading received is stored"
    );
    // Exactly once: what the file holds is what was received.
    let store = vigil_store::Store::open(
        &dir.path().join("vigil.db"),
        &vigil_store::KeySource::passphrase("core-test-passphrase", "test"),
    )
    .await
    .unwrap();
    let all = store
        .query_range(
            None,
            chrono::DateTime::UNIX_EPOCH,
            chrono::Utc::now() + chrono::Duration::days(365),
        )
        .await
        .unwrap();
    assert_eq!(
        all.len() as u64,
        s.get(&s.readings),
        "stored readings vs received"
    );
}

/// Issue 11, item 3: a disk filling up is said at every bed before it is
/// full. The real free space of the test's file system is read (statvfs);
/// a threshold above it must warn, one below it must not.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_disk_space_warns_at_every_bed_before_the_disk_is_full() {
    let low_disk = |v: &Vigil| technical_at(v, TechnicalKind::LowDisk);
    let dir = tempfile::tempdir().unwrap();
    let free =
        vigil_core::maintenance::available_bytes(dir.path()).expect("statvfs reads the test's file system");
    let mut cfg = config(dir.path(), Scenario::Stable, 1.0);
    cfg.low_disk_bytes = free.saturating_mul(2);
    let v = Vigil::start(cfg).await.unwrap();
    assert!(
        wait_until(|| low_disk(&v).len() == 4).await,
        "no low-disk warning: {:?}",
        low_disk(&v)
    );
    v.shutdown().await;
    let mut cfg = config(dir.path(), Scenario::Stable, 1.0);
    cfg.low_disk_bytes = 1;
    let v = Vigil::start(cfg).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        low_disk(&v).is_empty(),
        "warned with free space: {:?}",
        low_disk(&v)
    );
    v.shutdown().await;
}

/// The alarm log's backlog is bounded while the log fails: up to `ALARM_LOG_CAPACITY`
/// records are held and land once, in order, when it heals; beyond that each record is
/// counted as not recorded (`Stats::alarm_records_lost`), never held without bound and never
/// blocking the sender (noticed untested at issue 11's close).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_log_backlog_past_its_capacity_counts_the_overflow_and_lands_the_rest_in_order() {
    use std::sync::Arc;
    use vigil_alarms::{AlarmEvent, AlarmEventKind};
    use vigil_core::pipeline::{log_alarms, Stats, ALARM_LOG_CAPACITY};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vigil.db");
    let key = vigil_store::KeySource::passphrase("core-test-passphrase", "test");
    let store = vigil_store::Store::open(&path, &key).await.unwrap();
    let db = sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path))
        .await
        .unwrap();
    sqlx::query("CREATE TRIGGER inject_fault BEFORE INSERT ON alarm_log BEGIN SELECT RAISE(ABORT, 'injected fault'); END")
        .execute(&db)
        .await
        .unwrap();

    let stats = Arc::new(Stats::default());
    let cancel = tokio_util::sync::CancellationToken::new();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let writer = tokio::spawn(log_alarms(rx, store.clone(), stats.clone(), cancel.clone()));
    let t0 = chrono::Utc::now();
    let over = 25;
    let total = ALARM_LOG_CAPACITY + over;
    let event = |i: usize| AlarmEvent {
        id: Some(i as u64),
        bed: "bed-1".into(),
        kind: None,
        priority: None,
        event: AlarmEventKind::Latched,
        at: t0 + chrono::Duration::milliseconds(i as i64),
        message: format!("event {i}"),
    };
    // Batches as the pipeline sends them; the sender never waits on the failing log.
    let send = std::time::Instant::now();
    for chunk in (0..total).collect::<Vec<_>>().chunks(1000) {
        tx.send(chunk.iter().map(|&i| event(i)).collect::<Vec<_>>().into()).await.unwrap();
    }
    assert!(send.elapsed() < Duration::from_secs(20), "the sender waited on the failing log");
    assert!(
        wait_until(|| stats.get(&stats.alarm_records_lost) == over as u64).await,
        "overflow not counted: {}",
        stats.get(&stats.alarm_records_lost)
    );
    assert!(stats.alarm_log_failing.load(std::sync::atomic::Ordering::Relaxed));

    // The log heals: what was held lands once, oldest first.
    sqlx::query("DROP TRIGGER inject_fault").execute(&db).await.unwrap();
    assert!(
        wait_for(Duration::from_secs(90), || !stats
            .alarm_log_failing
            .load(std::sync::atomic::Ordering::Relaxed))
        .await,
        "the log did not catch up"
    );
    drop(tx);
    writer.await.unwrap();
    let log = store
        .alarm_log(Some("bed-1"), t0 - chrono::Duration::seconds(1), t0 + chrono::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(log.len(), ALARM_LOG_CAPACITY, "each held record once");
    let ids: Vec<u64> = log.iter().map(|r| r.event["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "out of order");
    assert_eq!((ids[0], *ids.last().unwrap()), (0, ALARM_LOG_CAPACITY as u64 - 1), "the first ones are kept");
    store.close().await;
}

/// Liveness, with a healthy store: a full ward at the soak's speed never
/// outruns the hand-off to the writer. With both worker threads busy (16 beds
/// at 240x and a screen subscriber), every reading received is stored and none
/// is counted as not recorded. It failed when the writer sealed each batch
/// inside the task that drains the channel (the channel filled meanwhile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_ward_at_240x_stores_every_reading_it_receives() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), Scenario::Ward, 240.0);
    cfg.sim.beds = 16;
    let v = Vigil::start(cfg).await.unwrap();
    let updates = crate::run_for(&v, Duration::from_secs(10)).await;
    v.shutdown().await;
    let s = v.stats();
    assert!(updates.len() > 10, "the screen got {} updates", updates.len());
    assert!(s.get(&s.readings) > 10_000, "only {} readings in 40 simulated minutes", s.get(&s.readings));
    assert_eq!(s.get(&s.unrecorded), 0, "{:?}", s.unrecorded_summary());
    assert_eq!(s.get(&s.readings), s.get(&s.stored), "every reading received is stored");
}
