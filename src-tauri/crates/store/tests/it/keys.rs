//! Issue 13 §3 and §6: key rotation that really rotates, the per-key seal
//! budget, the key log and authenticated Argon2id parameters.

use super::{key, patient, reading, rt, sql, t};
use std::path::Path;
use vigil_model::{Mdc, Value};
use vigil_store::{KeyOp, KeySource, Store, StoreError};

fn new_pass() -> KeySource {
    KeySource::passphrase("a completely different passphrase", "test")
}

fn key_file(dir: &Path) -> KeySource {
    let k = dir.join("site.key");
    if !k.exists() {
        vigil_store::create_key_file(&k).unwrap();
    }
    KeySource::KeyFile(k)
}

async fn scalar(path: &Path, q: &str) -> i64 {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let v: i64 = sqlx::query_scalar(q).fetch_one(&mut c).await.unwrap();
    c.close().await.unwrap();
    v
}

async fn write_readings(store: &Store, from: i64, n: i64) {
    for s in from..from + n {
        store
            .append(&[reading(
                "bed-1",
                Mdc::ECG_HEART_RATE,
                Value::Number(60.0 + s as f64),
                t(s),
            )])
            .await
            .unwrap();
    }
}

/// The attack of issue 13 §3: the old passphrase plus the key rows of a copy
/// taken before the rotation must open nothing written after it.
#[test]
fn after_rotation_the_old_passphrase_and_old_key_rows_open_nothing_new() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path, &key()).await.unwrap();
        store.admit("bed-1", patient(), t(0)).await.unwrap();
        write_readings(&store, 0, 10).await;
        store.close().await;
        let before = dir.path().join("before.db");
        std::fs::copy(&path, &before).unwrap();

        let report = vigil_store::rotate_key(&path, &key(), &new_pass()).await.unwrap();
        assert_eq!(report.created.len(), 3, "{report:?}");
        assert!(
            report.destroyed.is_empty(),
            "every old key is still referenced: {report:?}"
        );

        let store = Store::open(&path, &new_pass()).await.unwrap();
        write_readings(&store, 100, 10).await;
        store.admit("bed-2", patient(), t(100)).await.unwrap();
        store
            .log_alarms(&[("bed-2".into(), t(101), serde_json::json!({"kind": "after"}))])
            .await
            .unwrap();
        // The new passphrase opens everything, old and new.
        assert_eq!(store.query_range(None, t(-1), t(200)).await.unwrap().len(), 20);
        assert_eq!(store.current_admissions().await.unwrap().len(), 2);
        let (chunks, failures) = store.verify().await.unwrap();
        assert_eq!((chunks, failures.len()), (20, 0), "{failures:?}");
        store.close().await;

        // The old passphrase opens nothing on the rotated file.
        let err = Store::open(&path, &key()).await.err().unwrap();
        assert!(matches!(err, StoreError::WrongKey), "{err}");

        // The rotated file with the key rows and KDF record of the old copy.
        let attack = dir.path().join("attack.db");
        std::fs::copy(&path, &attack).unwrap();
        sql(
            &attack,
            &format!(
                "ATTACH '{}' AS old;
                 DELETE FROM data_keys; INSERT INTO data_keys SELECT * FROM old.data_keys;
                 DELETE FROM kdf; INSERT INTO kdf SELECT * FROM old.kdf;",
                before.display()
            ),
        )
        .await;
        let store = Store::open(&attack, &key()).await.unwrap();
        assert_eq!(
            store.query_range(None, t(-1), t(50)).await.unwrap().len(),
            10,
            "data from before the rotation is the old key's"
        );
        assert!(store.query_range(None, t(99), t(200)).await.is_err());
        let (_, failures) = store.verify().await.unwrap();
        let tampered_chunks = failures
            .iter()
            .filter(|e| matches!(e, StoreError::Tampered { .. }))
            .count();
        assert_eq!(
            tampered_chunks, 10,
            "every chunk written after the rotation stays closed: {failures:?}"
        );
        assert!(
            failures
                .iter()
                .any(|e| matches!(e, StoreError::TamperedAdmission(_))),
            "the admission written after the rotation stays closed"
        );
        assert!(
            failures.iter().any(|e| matches!(
                e,
                StoreError::TamperedRecord {
                    table: "alarm_log",
                    ..
                }
            )),
            "the alarm record written after the rotation stays closed"
        );
        assert!(store.alarm_log(None, t(0), t(200)).await.is_err());
    });
}

/// Wrapped keys nothing references are destroyed; referenced ones are kept
/// (re-wrapped); the key log records it all.
#[test]
fn rotation_destroys_unreferenced_keys_and_logs_every_step() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path, &key()).await.unwrap();
        write_readings(&store, 0, 3).await;
        let created = store.key_log().await.unwrap();
        assert_eq!(created.len(), 3);
        assert!(created.iter().all(|e| e.op == KeyOp::Created));
        store.close().await;

        // Keys 1 (readings, chunks) and 3 (log) are referenced; 2 (phi) is not.
        let r1 = vigil_store::rotate_key(&path, &key(), &new_pass()).await.unwrap();
        assert_eq!(
            (r1.kept.clone(), r1.destroyed.clone()),
            (vec![1, 3], vec![2]),
            "{r1:?}"
        );
        // Nothing written since: the new readings and phi keys go too.
        let r2 = vigil_store::rotate_key(&path, &new_pass(), &key_file(dir.path()))
            .await
            .unwrap();
        assert_eq!(r2.destroyed, vec![4, 5], "{r2:?}");
        assert_eq!(
            scalar(&path, "SELECT count(*) FROM data_keys WHERE id IN (2, 4, 5)").await,
            0
        );
        assert_eq!(
            scalar(&path, "SELECT count(*) FROM kdf").await,
            0,
            "a key file needs no KDF record"
        );

        let store = Store::open(&path, &key_file(dir.path())).await.unwrap();
        assert_eq!(store.query_range(None, t(-1), t(10)).await.unwrap().len(), 3);
        let log = store.key_log().await.unwrap();
        let ops: Vec<(KeyOp, Option<i64>)> = log.iter().map(|e| (e.op, e.key_id)).collect();
        for want in [
            (KeyOp::Destroyed, Some(2)),
            (KeyOp::Rewrapped, Some(1)),
            (KeyOp::Destroyed, Some(4)),
            (KeyOp::Destroyed, Some(5)),
        ] {
            assert!(ops.contains(&want), "{want:?} not in {ops:?}");
        }
        assert_eq!(log.iter().filter(|e| e.op == KeyOp::Rotated).count(), 2);
        assert!(log
            .iter()
            .any(|e| e.op == KeyOp::Rotated && e.detail.contains("from passphrase to key file")));
        assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
        store.close().await;

        // An edited entry fails authentication; a deleted one leaves a gap.
        sql(
            &path,
            "UPDATE key_log SET sealed = zeroblob(length(sealed)) WHERE id = 2",
        )
        .await;
        let store = Store::open(&path, &key_file(dir.path())).await.unwrap();
        let err = store.key_log().await.err().unwrap();
        assert!(
            matches!(
                err,
                StoreError::TamperedRecord {
                    table: "key_log",
                    id: 2
                }
            ),
            "{err}"
        );
        let (_, failures) = store.verify().await.unwrap();
        assert!(failures
            .iter()
            .any(|e| matches!(e, StoreError::TamperedRecord { table: "key_log", .. })));
        store.close().await;
        sql(&path, "DELETE FROM key_log WHERE id = 2").await;
        let store = Store::open(&path, &key_file(dir.path())).await.unwrap();
        let err = store.key_log().await.err().unwrap();
        assert!(
            matches!(
                err,
                StoreError::MissingRecord {
                    table: "key_log",
                    id: 2
                }
            ),
            "{err}"
        );
    });
}

/// A data key is replaced automatically at its seal budget (lowered here;
/// the default is 2^30, a quarter of the 2^32 that random 96-bit nonces
/// allow) and everything stays readable; the seal count survives a restart.
#[test]
fn a_data_key_is_replaced_at_its_seal_budget_and_data_stays_readable() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let kf = key_file(dir.path());
        let store = Store::open(&path, &kf).await.unwrap();
        write_readings(&store, 0, 3).await;
        store.close().await;
        assert_eq!(
            scalar(
                &path,
                "SELECT seals FROM data_keys WHERE purpose = 'readings' AND active = 1"
            )
            .await,
            // Three chunks and the series' sealed descriptor.
            4,
            "seals are counted on disk"
        );

        let store = Store::open(&path, &kf).await.unwrap();
        store.lower_seal_budget(5);
        write_readings(&store, 3, 27).await;
        store.admit("bed-1", patient(), t(40)).await.unwrap();
        let auto: Vec<_> = store
            .key_log()
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.op == KeyOp::AutoRotated)
            .collect();
        assert!(auto.len() >= 5, "30 seals with a budget of 5: {auto:?}");
        assert_eq!(store.query_range(None, t(-1), t(100)).await.unwrap().len(), 30);
        let (_, failures) = store.verify().await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        store.close().await;
        let max_seals = scalar(
            &path,
            "SELECT max(seals) FROM data_keys WHERE purpose = 'readings'",
        )
        .await;
        assert!(max_seals <= 6, "no key sealed far past its budget: {max_seals}");
        let readings_keys = scalar(&path, "SELECT count(*) FROM data_keys WHERE purpose = 'readings'").await;
        assert!(readings_keys >= 6, "{readings_keys}");

        // A restart keeps it readable, and a rotation keeps every referenced key.
        let store = Store::open(&path, &kf).await.unwrap();
        assert_eq!(store.query_range(None, t(-1), t(100)).await.unwrap().len(), 30);
        store.close().await;
        vigil_store::rotate_key(&path, &kf, &key()).await.unwrap();
        let store = Store::open(&path, &key()).await.unwrap();
        assert_eq!(store.query_range(None, t(-1), t(100)).await.unwrap().len(), 30);
    });
}

/// New stores get RFC 9106's second recommended option; an older store keeps
/// its parameters until its next rotation, which upgrades them.
#[test]
fn new_stores_use_rfc_9106_and_a_rotation_upgrades_an_old_store() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        Store::open(&path, &key()).await.unwrap().close().await;
        let params = |p: &Path| {
            let p = p.to_path_buf();
            async move {
                (
                    scalar(&p, "SELECT m_cost_kib FROM kdf").await,
                    scalar(&p, "SELECT t_cost FROM kdf").await,
                    scalar(&p, "SELECT p_cost FROM kdf").await,
                )
            }
        };
        assert_eq!(params(&path).await, (65536, 3, 4));

        let old = dir.path().join("v1.db");
        std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1.db"), &old).unwrap();
        let fixture = KeySource::passphrase("fixture-passphrase", "fixture");
        let store = Store::open(&old, &fixture).await.unwrap();
        // Its two keys predate seal counting: re-wrapped with the parameters
        // bound, and replaced at the first write.
        write_readings(&store, 0, 1).await;
        let log = store.key_log().await.unwrap();
        for id in [1, 2] {
            assert!(
                log.iter()
                    .any(|e| e.op == KeyOp::Rewrapped && e.key_id == Some(id)),
                "{log:?}"
            );
        }
        assert_eq!(
            log.iter().filter(|e| e.op == KeyOp::AutoRotated).count(),
            2,
            "{log:?}"
        );
        store.close().await;
        assert_eq!(
            params(&old).await,
            (19 * 1024, 2, 1),
            "kept until the next rotation"
        );

        vigil_store::rotate_key(&old, &fixture, &new_pass())
            .await
            .unwrap();
        assert_eq!(params(&old).await, (65536, 3, 4));
        let store = Store::open(&old, &new_pass()).await.unwrap();
        let t0 = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 1, 8, 0, 0).unwrap();
        assert_eq!(
            store
                .query_range(None, t0, t0 + chrono::Duration::hours(1))
                .await
                .unwrap()
                .len(),
            600
        );
        assert_eq!(
            store.current_admissions().await.unwrap()[0].patient.mrn,
            "FIX-0001"
        );
    });
}

/// Argon2id parameters edited in the file fail the unlock with a clear
/// error (weakened or unbounded), or as a wrong key (any other change: they
/// are bound into every wrapped key); nothing is changed.
#[test]
fn edited_kdf_parameters_fail_the_unlock() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        Store::open(&path, &key()).await.unwrap().close().await;
        let pristine = std::fs::read(&path).unwrap();
        let log_entries = scalar(&path, "SELECT count(*) FROM key_log").await;

        for (edit, clear) in [
            ("UPDATE kdf SET m_cost_kib = 8, t_cost = 1, p_cost = 1", true),
            ("UPDATE kdf SET t_cost = 1000000", true),
            ("UPDATE kdf SET m_cost_kib = 1073741824", true),
            ("UPDATE kdf SET salt = x'00'", true),
            ("UPDATE kdf SET m_cost_kib = 32768", false),
        ] {
            std::fs::write(&path, &pristine).unwrap();
            sql(&path, edit).await;
            let edited = (
                scalar(&path, "SELECT m_cost_kib * 1000 + t_cost FROM kdf").await,
                scalar(&path, "SELECT length(salt) FROM kdf").await,
            );
            let err = Store::open(&path, &key()).await.err().unwrap();
            if clear {
                assert!(matches!(err, StoreError::KdfParams(_)), "{edit}: {err}");
                assert!(err.to_string().contains("altered"), "{err}");
            } else {
                assert!(matches!(err, StoreError::WrongKey), "{edit}: {err}");
            }
            let now = (
                scalar(&path, "SELECT m_cost_kib * 1000 + t_cost FROM kdf").await,
                scalar(&path, "SELECT length(salt) FROM kdf").await,
            );
            assert_eq!(now, edited, "{edit}: the parameters were changed");
            assert_eq!(
                scalar(&path, "SELECT count(*) FROM key_log").await,
                log_entries,
                "{edit}"
            );
        }

        // A KDF record slipped into a key-file store is bound too: refused.
        let kf_path = dir.path().join("kf.db");
        let kf = key_file(dir.path());
        Store::open(&kf_path, &kf).await.unwrap().close().await;
        sql(
            &kf_path,
            "INSERT INTO kdf (id, salt, m_cost_kib, t_cost, p_cost) VALUES (1, zeroblob(16), 65536, 3, 4)",
        )
        .await;
        let err = Store::open(&kf_path, &kf).await.err().unwrap();
        assert!(matches!(err, StoreError::WrongKey), "{err}");
    });
}

/// A spill file keeps the key it was sealed under through a rotation.
#[test]
fn a_rotation_keeps_the_key_of_a_pending_spill_file() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path, &key()).await.unwrap();
        let mut w = store.start_spill().unwrap();
        w.write(&[reading("bed-1", Mdc::ECG_HEART_RATE, Value::Number(70.0), t(0))])
            .unwrap();
        let spill = w.path().to_path_buf();
        drop(w);
        store.close().await;
        let report = vigil_store::rotate_key(&path, &key(), &new_pass()).await.unwrap();
        assert!(
            report.kept.contains(&1),
            "the spill file's key is kept: {report:?}"
        );
        let store = Store::open(&path, &new_pass()).await.unwrap();
        let contents = store.read_spill(&spill).unwrap();
        assert_eq!(contents.frames.len(), 1);
        assert!(contents.damage.is_none());
        store.close().await;

        // A spill file set aside as damaged keeps its key too.
        let damaged = spill.with_file_name(format!(
            "{}.damaged",
            spill.file_name().unwrap().to_string_lossy()
        ));
        std::fs::rename(&spill, &damaged).unwrap();
        let report = vigil_store::rotate_key(&path, &new_pass(), &key()).await.unwrap();
        assert!(report.kept.contains(&1), "{report:?}");
        let store = Store::open(&path, &key()).await.unwrap();
        assert_eq!(store.read_spill(&damaged).unwrap().frames.len(), 1);
    });
}

/// A file whose key rows lost their "active" flags (an edit) still opens
/// and keeps recording: each purpose gets a new key, logged.
#[test]
fn a_store_without_an_active_key_gets_a_new_one() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let kf = key_file(dir.path());
        let store = Store::open(&path, &kf).await.unwrap();
        write_readings(&store, 0, 2).await;
        store.close().await;
        sql(&path, "UPDATE data_keys SET active = 0").await;
        let store = Store::open(&path, &kf).await.unwrap();
        write_readings(&store, 2, 2).await;
        store.admit("bed-1", patient(), t(5)).await.unwrap();
        assert_eq!(store.query_range(None, t(-1), t(10)).await.unwrap().len(), 4);
        let log = store.key_log().await.unwrap();
        assert!(
            log.iter()
                .filter(|e| e.op == KeyOp::Created && e.detail.contains("no active key"))
                .count()
                >= 2,
            "{log:?}"
        );
    });
}

/// The same for the writer's 0.5 s flush (many series, one reading each:
/// one sealed ingest frame) and for a backlog batch (a chunk per series):
/// the whole append is refused, nothing of it is kept, and the store
/// verifies. An append's writes go to SQLite as one script whose seal-count
/// update is what notices the rotation.
#[test]
fn a_flush_and_a_backlog_batch_under_a_rotated_key_are_refused_whole() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let running = Store::open(&path, &key()).await.unwrap();
        let flush_at = |s: i64| -> Vec<_> {
            (1..=12)
                .map(|b| reading(&format!("bed-{b}"), Mdc::ECG_HEART_RATE, Value::Number(70.0), t(s)))
                .collect()
        };
        // The series exist before the rotation: the appends below create
        // none, so only their own write script can notice it.
        running.append(&flush_at(1)).await.unwrap();
        vigil_store::rotate_key(&path, &key(), &new_pass()).await.unwrap();
        let flush = flush_at(5);
        let backlog: Vec<_> = (0..200)
            .flat_map(|s| {
                (1..=12).map(move |b| reading(&format!("bed-{b}"), Mdc::ECG_HEART_RATE, Value::Number(70.0), t(10 + s)))
            })
            .collect();
        for batch in [&flush, &backlog] {
            let err = running.append(batch).await.err().unwrap();
            assert!(matches!(err, StoreError::KeysChanged), "{err}");
        }
        running.close().await;
        let store = Store::open(&path, &new_pass()).await.unwrap();
        assert_eq!(store.query_range(None, t(-1), t(1_000)).await.unwrap().len(), 12);
        let (_, failures) = store.verify().await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
    });
}

/// `vigil key rotate` while Vigil still has the store open: Vigil's next
/// write fails (and spills) rather than seal under a key that the rotation
/// may have destroyed; nothing it wrote before is lost.
#[test]
fn a_store_left_open_during_a_rotation_refuses_to_write_under_its_old_key() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let running = Store::open(&path, &key()).await.unwrap();
        write_readings(&running, 0, 2).await;
        vigil_store::rotate_key(&path, &key(), &new_pass()).await.unwrap();
        let err = running
            .append(&[reading("bed-1", Mdc::ECG_HEART_RATE, Value::Number(61.0), t(5))])
            .await
            .err()
            .unwrap();
        assert!(matches!(err, StoreError::KeysChanged), "{err}");
        let err = running.admit("bed-2", patient(), t(6)).await.err().unwrap();
        assert!(matches!(err, StoreError::KeysChanged), "{err}");
        running.close().await;
        let store = Store::open(&path, &new_pass()).await.unwrap();
        assert_eq!(store.query_range(None, t(-1), t(10)).await.unwrap().len(), 2);
        let (_, failures) = store.verify().await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
    });
}

/// Every table that holds sealed data names the key it was sealed under:
/// a rotation keeps exactly the keys some `key_id` refers to.
#[test]
fn every_sealed_table_names_its_key() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        Store::open(&path, &key_file(dir.path()))
            .await
            .unwrap()
            .close()
            .await;
        let without = scalar(
            &path,
            "SELECT count(*) FROM sqlite_master m WHERE m.type = 'table'
             AND m.name != 'data_keys'
             AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) WHERE name = 'sealed')
             AND NOT EXISTS (SELECT 1 FROM pragma_table_info(m.name) WHERE name = 'key_id')",
        )
        .await;
        assert_eq!(without, 0, "a table with sealed data and no key_id");
        let with = scalar(
            &path,
            "SELECT count(*) FROM sqlite_master m WHERE m.type = 'table'
             AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) WHERE name = 'key_id')",
        )
        .await;
        // chunks, outbox, dead_letters, alarm_log, devices, bed_settings,
        // admissions, fhir_links, key_log (and any sealed table added later).
        assert!(with >= 9, "{with}");
    });
}
