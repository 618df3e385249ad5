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
    v.snapshot()
        .alarms
        .into_iter()
        .filter(|b| {
            b.active.iter().any(|a| {
                matches!(
                    a.kind,
                    AlarmKind::Technical {
                        kind: TechnicalKind::AlarmLogFailure,
                        ..
                    }
                ) && !a.latched
            })
        })
        .map(|b| b.bed)
        .collect()
}

async fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..150 {
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
