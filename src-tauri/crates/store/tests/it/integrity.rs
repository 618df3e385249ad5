//! Issue 13 §4: deleted rows, plaintext edits and a rolled-back file are
//! reported by `verify` (and refused on read); normal operation never is.

use super::*;
use vigil_store::DeadLetterKind;

/// A store with its counter mirror in its own temp dir.
async fn open(path: &Path, counters: &Path) -> Store {
    Store::open_with_counter_dir(path, &key(), Some(counters))
        .await
        .unwrap()
}

async fn failures(path: &Path, counters: &Path) -> Vec<String> {
    let store = open(path, counters).await;
    let (_, f) = store.verify().await.unwrap();
    store.close().await;
    f.iter().map(|e| e.to_string()).collect()
}

fn admitted(bed: &str, adm: &AdmissionId, at: DateTime<Utc>, v: f64) -> Reading {
    let mut r = reading(bed, Mdc::ECG_HEART_RATE, Value::Number(v), at);
    r.admission = Some(adm.clone());
    r
}

/// A store that went through everything normal operation does.
async fn busy_store(path: &Path, counters: &Path) {
    let store = open(path, counters).await;
    store.set_outbox_enabled(true);
    let a = store.admit("bed-1", patient(), t(0)).await.unwrap();
    store.admit("bed-2", patient(), t(0)).await.unwrap();
    for i in 0..30 {
        store
            .append(&[
                admitted("bed-1", &a.id, t(i * 60), 70.0 + i as f64),
                reading("bed-3", Mdc::ECG_HEART_RATE, Value::Number(60.0), t(i * 60)),
            ])
            .await
            .unwrap();
    }
    store
        .log_alarms(&[
            ("bed-1".into(), t(10), serde_json::json!({"start": "hr-high"})),
            ("bed-2".into(), t(20), serde_json::json!({"end": "hr-high"})),
        ])
        .await
        .unwrap();
    store
        .assign_device("AA:BB:CC:DD:EE:01", "bed-1", "hr-strap")
        .await
        .unwrap();
    store
        .assign_device("AA:BB:CC:DD:EE:02", "bed-2", "pulse-ox")
        .await
        .unwrap();
    store.close().await;
}

#[test]
fn normal_operation_never_reports_a_false_alarm() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (path, counters) = (dir.path().join("vigil.db"), dir.path().join("counters"));
        busy_store(&path, &counters).await;
        assert_eq!(failures(&path, &counters).await, Vec::<String>::new());

        let store = open(&path, &counters).await;
        store.set_outbox_enabled(true);
        // Device moves and removal through the API.
        store
            .assign_device("AA:BB:CC:DD:EE:01", "bed-4", "hr-strap")
            .await
            .unwrap();
        store.remove_device("AA:BB:CC:DD:EE:02").await.unwrap();
        assert_eq!(store.devices().await.unwrap()[0].bed, "bed-4");
        // Outbox drain: a reading set aside, a dead letter re-queued, rows acknowledged.
        let rows = store.outbox_peek(100).await.unwrap();
        assert!(rows.len() >= 3);
        store
            .set_aside(&vigil_store::SetAside {
                row: rows[0].seq,
                index: 0,
                reading: &rows[0].readings[0],
                kind: DeadLetterKind::Refused,
                summary: "HTTP 422",
                detail: "refused",
                row_done: true,
            })
            .await
            .unwrap();
        store.dead_letter(&rows[1].readings[0], "refused").await.unwrap();
        // Failed attempts, then the reading set aside while its row stays.
        store
            .outbox_failed(&[(rows[2].seq, 0), (rows[2].seq, 0)])
            .await
            .unwrap();
        store
            .set_aside(&vigil_store::SetAside {
                row: rows[2].seq,
                index: 0,
                reading: &rows[2].readings[0],
                kind: DeadLetterKind::Parked,
                summary: "HTTP 503",
                detail: "kept failing",
                row_done: false,
            })
            .await
            .unwrap();
        let again = store.outbox_peek(100).await.unwrap();
        let r2 = again.iter().find(|r| r.seq == rows[2].seq).unwrap();
        assert_eq!((r2.attempts[0], r2.settled[0]), (2, true));
        assert_eq!(store.requeue_dead_letters(None).await.unwrap(), 3);
        let seqs: Vec<i64> = store
            .outbox_peek(1000)
            .await
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        store.outbox_ack(&seqs[..seqs.len() - 1]).await.unwrap();
        // Discharge, compaction, retention.
        store.discharge("bed-1", t(3600)).await.unwrap();
        let c = store.compact(t(3 * 3600)).await.unwrap();
        assert!(c.chunks_written > 0);
        assert!(store.purge_before(t(600)).await.unwrap() > 0);
        let (_, f) = store.verify().await.unwrap();
        assert!(f.is_empty(), "{f:?}");
        store.close().await;
        // And again after a restart (the counter was raised twice).
        assert_eq!(failures(&path, &counters).await, Vec::<String>::new());
    });
}

#[test]
fn deleting_the_newest_chunk_of_a_series_is_reported() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (path, counters) = (dir.path().join("vigil.db"), dir.path().join("counters"));
        busy_store(&path, &counters).await;
        let series: i64 = {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query_scalar("SELECT series_id FROM chunks WHERE id = (SELECT max(id) FROM chunks)")
                .fetch_one(&mut c)
                .await
                .unwrap()
        };
        sql(
            &path,
            "DELETE FROM chunks WHERE id = (SELECT max(id) FROM chunks)",
        )
        .await;
        let f = failures(&path, &counters).await;
        assert!(
            f.iter()
                .any(|e| e == &format!("chunks of series {series}: 29 rows, the sealed count says 30")),
            "{f:?}"
        );
    });
}

#[test]
fn moving_an_alarm_record_in_time_is_reported_and_refused() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (path, counters) = (dir.path().join("vigil.db"), dir.path().join("counters"));
        busy_store(&path, &counters).await;
        sql(&path, "UPDATE alarm_log SET at = at - 86400000000 WHERE id = 1").await;
        let f = failures(&path, &counters).await;
        assert!(
            f.iter()
                .any(|e| e.contains("alarm_log record 1 failed its integrity check")),
            "{f:?}"
        );
        let store = open(&path, &counters).await;
        let err = store.alarm_log(None, t(-2 * 86400), t(86400)).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::IntegrityRow {
                    table: "alarm_log",
                    ..
                }
            ),
            "{err}"
        );
        store.close().await;
        // Deleting one is reported too.
        sql(&path, "DELETE FROM alarm_log WHERE id = 1").await;
        let f = failures(&path, &counters).await;
        assert!(
            f.iter()
                .any(|e| e == "alarm_log: 1 rows, the sealed count says 2"),
            "{f:?}"
        );
    });
}

#[test]
fn moving_a_device_to_another_bed_in_the_file_is_reported_and_not_trusted() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (path, counters) = (dir.path().join("vigil.db"), dir.path().join("counters"));
        busy_store(&path, &counters).await;
        // The bed is sealed; its tag is what the file shows: one device's
        // bed tag set to the other's (the two devices are at different beds).
        sql(
            &path,
            "UPDATE devices SET bed_tag = (SELECT max(bed_tag) FROM devices)
             WHERE bed_tag = (SELECT min(bed_tag) FROM devices)",
        )
        .await;
        let f = failures(&path, &counters).await;
        assert_eq!(
            f.iter()
                .filter(|e| e.starts_with("devices record ") && e.contains("failed its integrity check"))
                .count(),
            1,
            "{f:?}"
        );
        let store = open(&path, &counters).await;
        let devices = store.devices().await.unwrap();
        assert_eq!(devices.len(), 1, "the edited device is not assigned anywhere");
        store.close().await;
    });
}

#[test]
fn reopening_a_discharged_admission_is_reported_and_not_current() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (path, counters) = (dir.path().join("vigil.db"), dir.path().join("counters"));
        busy_store(&path, &counters).await;
        let store = open(&path, &counters).await;
        let id = store.discharge("bed-1", t(7200)).await.unwrap();
        store.close().await;
        sql(&path, &format!("UPDATE admissions SET open = 1 WHERE id = '{}'", id.0)).await;
        let f = failures(&path, &counters).await;
        assert!(
            f.iter()
                .any(|e| e == &format!("admissions record {} failed its integrity check: its bed, time or state was altered in the file", id.0)),
            "{f:?}"
        );
        let store = open(&path, &counters).await;
        let current = store.current_admissions().await.unwrap();
        assert_eq!(current.iter().map(|a| a.bed.as_str()).collect::<Vec<_>>(), ["bed-2"]);
        assert!(matches!(
            store.admission(&id.0).await.unwrap_err(),
            StoreError::IntegrityRow { table: "admissions", .. }
        ));
        store.close().await;
    });
}

#[test]
fn deleting_an_outbox_row_is_reported() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (path, counters) = (dir.path().join("vigil.db"), dir.path().join("counters"));
        busy_store(&path, &counters).await;
        sql(
            &path,
            "DELETE FROM outbox WHERE seq = (SELECT max(seq) FROM outbox)",
        )
        .await;
        let f = failures(&path, &counters).await;
        assert!(
            f.iter().any(|e| e == "outbox: 29 rows, the sealed count says 30"),
            "{f:?}"
        );
        // Renumbering a row (to jump the queue) fails its MAC.
        sql(&path, "UPDATE outbox SET seq = 1000 WHERE seq = 1").await;
        let f = failures(&path, &counters).await;
        assert!(
            f.iter()
                .any(|e| e.contains("outbox record 1000 failed its integrity check")),
            "{f:?}"
        );
    });
}

#[test]
fn rolling_the_whole_file_back_to_an_older_copy_is_reported() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (path, counters) = (dir.path().join("vigil.db"), dir.path().join("counters"));
        busy_store(&path, &counters).await;
        let old = dir.path().join("old.db");
        std::fs::copy(&path, &old).unwrap();
        let store = open(&path, &counters).await;
        assert!(store.rolled_back().is_none());
        store.discharge("bed-1", t(7200)).await.unwrap();
        store.close().await;
        // Put the older copy back (the discharge disappears).
        std::fs::copy(&old, &path).unwrap();
        let store = open(&path, &counters).await;
        let r = store.rolled_back().cloned().expect("rollback reported");
        assert!(r.store < r.mirror, "{r:?}");
        let (_, f) = store.verify().await.unwrap();
        assert!(
            f.iter().any(|e| matches!(e, StoreError::RolledBack { .. })
                && e.to_string().contains("rolled back to an older copy")),
            "{f:?}"
        );
        store.close().await;
        // Still reported at the next open: closing does not launder it.
        let store = open(&path, &counters).await;
        assert!(store.rolled_back().is_some());
        store.close().await;

        // Copying the newer counter into the old copy does not hide it: the
        // old digests were sealed under the old counter.
        std::fs::copy(&old, &path).unwrap();
        let newer = dir.path().join("newer.db");
        std::fs::copy(&old, &newer).unwrap();
        for _ in 0..3 {
            // Raised at open and close (no mirror: this copy is the attacker's).
            let store = Store::open_with_counter_dir(&newer, &key(), None).await.unwrap();
            store.close().await;
        }
        let epoch: i64 = {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", newer.display()))
                .await
                .unwrap();
            sqlx::query_scalar("SELECT n FROM digests WHERE scope = '#epoch'")
                .fetch_one(&mut c)
                .await
                .unwrap()
        };
        let mac: String = {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", newer.display()))
                .await
                .unwrap();
            sqlx::query_scalar("SELECT hex(mac) FROM digests WHERE scope = '#epoch'")
                .fetch_one(&mut c)
                .await
                .unwrap()
        };
        sql(
            &path,
            &format!("UPDATE digests SET n = {epoch}, mac = x'{mac}' WHERE scope = '#epoch'"),
        )
        .await;
        let f = failures(&path, &counters).await;
        assert!(f.iter().any(|e| e.contains("sealed digest of")), "{f:?}");
    });
}

#[test]
fn a_store_from_before_schema_7_gets_its_macs_at_first_open() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (path, counters) = (dir.path().join("vigil.db"), dir.path().join("counters"));
        busy_store(&path, &counters).await;
        // What schema 6 left: no MACs, no integrity key, no digests.
        for t in [
            "chunks",
            "alarm_log",
            "devices",
            "admissions",
            "outbox",
            "dead_letters",
        ] {
            sql(&path, &format!("UPDATE {t} SET mac = NULL")).await;
        }
        sql(&path, "DELETE FROM integrity").await;
        sql(&path, "DELETE FROM digests").await;
        assert_eq!(failures(&path, &counters).await, Vec::<String>::new());
        sql(
            &path,
            "DELETE FROM chunks WHERE id = (SELECT max(id) FROM chunks)",
        )
        .await;
        assert!(!failures(&path, &counters).await.is_empty());
    });
}

#[test]
fn marking_an_outbox_reading_settled_in_the_file_is_reported_and_refused() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (path, counters) = (dir.path().join("vigil.db"), dir.path().join("counters"));
        busy_store(&path, &counters).await;
        let store = open(&path, &counters).await;
        store.outbox_failed(&[(1, 0)]).await.unwrap();
        store.close().await;
        assert_eq!(failures(&path, &counters).await, Vec::<String>::new());
        // Settled: it would never be uploaded, and its row would be acknowledged without it.
        sql(&path, "UPDATE outbox_items SET settled = 1 WHERE outbox_row = 1").await;
        let f = failures(&path, &counters).await;
        assert!(
            f.iter()
                .any(|e| e.contains("outbox_items record 1/0 failed its integrity check")),
            "{f:?}"
        );
        let store = open(&path, &counters).await;
        assert!(matches!(
            store.outbox_peek(10).await.unwrap_err(),
            StoreError::IntegrityRow {
                table: "outbox_items",
                ..
            }
        ));
        store.close().await;
    });
}

#[test]
fn verify_of_a_store_another_process_writes_to_reports_nothing() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (path, counters) = (dir.path().join("vigil.db"), dir.path().join("counters"));
        busy_store(&path, &counters).await;
        let writer = open(&path, &counters).await;
        let checker = open(&path, &counters).await;
        let write = async {
            for i in 0..40 {
                writer
                    .append(&[reading(
                        "bed-5",
                        Mdc::ECG_HEART_RATE,
                        Value::Number(80.0),
                        t(5000 + i),
                    )])
                    .await
                    .unwrap();
                writer
                    .log_alarms(&[("bed-5".into(), t(5000 + i), serde_json::json!({"i": i}))])
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        };
        let check = async {
            for _ in 0..10 {
                let (_, f) = checker.verify().await.unwrap();
                assert!(f.is_empty(), "{f:?}");
                checker.raise_counter().await.unwrap();
                tokio::task::yield_now().await;
            }
        };
        tokio::join!(write, check);
        writer.close().await;
        checker.close().await;
        assert_eq!(failures(&path, &counters).await, Vec::<String>::new());
    });
}
