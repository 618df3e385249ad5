//! Issue 15: the NEWS2 log. A past stay's NEWS2 scores and nurse entries must
//! be in the store (a report of a discharged patient needs them), found by
//! admission or bed and time, never mixed with the next patient's, and
//! protected like the alarm log: sealed, tamper-evident, kept across key
//! rotation, salvageable, deleted only by retention.

use super::{key, patient, rt, sql, t};
use std::path::Path;
use vigil_model::AdmissionId;
use vigil_store::{KeySource, News2Record, Selection, Store, StoreError};

fn rec(bed: &str, adm: Option<&AdmissionId>, at: i64, record: serde_json::Value) -> News2Record {
    News2Record {
        bed: bed.into(),
        admission: adm.cloned(),
        at: t(at),
        record,
    }
}

fn score(total: u8) -> serde_json::Value {
    serde_json::json!({"kind": "score", "score": {"total": total}})
}

/// Patient A on bed-1 (scores at 10 s and 20 s, a nurse entry at 15 s),
/// discharged; patient B on bed-1 (a score at 40 s); bed-2 with nobody
/// admitted (a score at 25 s). Returns (A, B).
async fn two_stays(store: &Store) -> (AdmissionId, AdmissionId) {
    let a = store.admit("bed-1", patient(), t(0)).await.unwrap().id;
    store
        .log_news2(&[
            rec("bed-1", Some(&a), 10, score(1)),
            rec("bed-1", Some(&a), 15, serde_json::json!({"kind": "entry", "entry": {"parameter": "consciousness", "value": "voice"}, "by": "nina"})),
            rec("bed-1", Some(&a), 20, score(4)),
            rec("bed-2", None, 25, score(0)),
        ])
        .await
        .unwrap();
    store.discharge("bed-1", t(30)).await.unwrap();
    let b = store.admit("bed-1", patient(), t(35)).await.unwrap().id;
    store.log_news2(&[rec("bed-1", Some(&b), 40, score(7))]).await.unwrap();
    (a, b)
}

#[test]
fn a_past_stays_news2_is_found_by_admission_and_never_mixed_with_the_next_patients() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path, &key()).await.unwrap();
        let (a, b) = two_stays(&store).await;
        store.close().await;

        // After a restart: read back exactly as written.
        let store = Store::open(&path, &key()).await.unwrap();
        let of_a = store.news2_log(Selection::Admission(&a.0), t(-100), t(100)).await.unwrap();
        assert_eq!(of_a.len(), 3);
        assert_eq!(of_a[0], rec("bed-1", Some(&a), 10, score(1)));
        assert_eq!(of_a[1].record["by"], "nina");
        assert_eq!(of_a[2].record["score"]["total"], 4);
        let of_b = store.news2_log(Selection::Admission(&b.0), t(-100), t(100)).await.unwrap();
        assert_eq!(of_b, vec![rec("bed-1", Some(&b), 40, score(7))]);
        // The bed over a range: whoever was there, oldest first, only the range.
        let bed1 = store.news2_log(Selection::Bed("bed-1"), t(12), t(40)).await.unwrap();
        assert_eq!(bed1.iter().map(|r| r.at).collect::<Vec<_>>(), [t(15), t(20), t(40)]);
        let bed2 = store.news2_log(Selection::Bed("bed-2"), t(0), t(100)).await.unwrap();
        assert_eq!(bed2, vec![rec("bed-2", None, 25, score(0))]);
        let (_, failures) = store.verify().await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        store.close().await;

        // Neither the bed, the admission, the user nor the record is in the clear.
        let bytes = std::fs::read(&path).unwrap();
        for needle in ["nina", "voice", "consciousness"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} in the clear"
            );
        }
    });
}

async fn failures(path: &Path) -> Vec<String> {
    let store = Store::open(path, &key()).await.unwrap();
    let (_, f) = store.verify().await.unwrap();
    store.close().await;
    f.iter().map(|e| e.to_string()).collect()
}

#[test]
fn an_edited_moved_or_deleted_news2_record_is_reported_by_verify_and_refused_on_read() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path, &key()).await.unwrap();
        let (a, _b) = two_stays(&store).await;
        store.close().await;
        let clean = dir.path().join("clean.db");
        std::fs::copy(&path, &clean).unwrap();

        // A score's time moved (into another hour of the flowsheet).
        sql(&path, "UPDATE news2_log SET at = at - 3600000000 WHERE id = 1").await;
        let f = failures(&path).await;
        assert!(f.iter().any(|e| e.contains("news2_log record 1 failed its integrity check")), "{f:?}");
        let store = Store::open(&path, &key()).await.unwrap();
        let err = store.news2_log(Selection::Admission(&a.0), t(-10_000), t(100)).await.unwrap_err();
        assert!(matches!(err, StoreError::IntegrityRow { table: "news2_log", .. }), "{err}");
        store.close().await;

        // A's first score re-labelled as B's (its admission tag set to B's).
        std::fs::copy(&clean, &path).unwrap();
        sql(&path, "UPDATE news2_log SET admission_tag = (SELECT admission_tag FROM news2_log WHERE id = 5) WHERE id = 1").await;
        let f = failures(&path).await;
        assert!(f.iter().any(|e| e.contains("news2_log record 1")), "{f:?}");
        let store = Store::open(&path, &key()).await.unwrap();
        let b_id = store.admissions().await.unwrap()[1].id.0.clone();
        assert!(store.news2_log(Selection::Admission(&b_id), t(-100), t(100)).await.is_err(), "B's report never shows A's score");
        store.close().await;

        // A nurse entry deleted.
        std::fs::copy(&clean, &path).unwrap();
        sql(&path, "DELETE FROM news2_log WHERE id = 2").await;
        let f = failures(&path).await;
        assert!(f.iter().any(|e| e == "news2_log: 4 rows, the sealed count says 5"), "{f:?}");

        // The sealed record swapped for another row's.
        std::fs::copy(&clean, &path).unwrap();
        sql(&path, "UPDATE news2_log SET sealed = (SELECT sealed FROM news2_log WHERE id = 3), nonce = (SELECT nonce FROM news2_log WHERE id = 3) WHERE id = 1").await;
        let f = failures(&path).await;
        assert!(f.iter().any(|e| e.contains("news2_log record 1 failed authentication")), "{f:?}");
    });
}

fn new_pass() -> KeySource {
    KeySource::passphrase("a completely different passphrase", "test")
}

#[test]
fn news2_records_stay_readable_and_verified_across_a_key_rotation() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path, &key()).await.unwrap();
        let (a, b) = two_stays(&store).await;
        store.close().await;

        let report = vigil_store::rotate_key(&path, &key(), &new_pass()).await.unwrap();
        assert!(report.destroyed.is_empty(), "the NEWS2 log's key is still referenced: {report:?}");
        let store = Store::open(&path, &new_pass()).await.unwrap();
        store.log_news2(&[rec("bed-1", Some(&b), 50, score(5))]).await.unwrap();
        assert_eq!(store.news2_log(Selection::Admission(&a.0), t(-100), t(100)).await.unwrap().len(), 3);
        assert_eq!(store.news2_log(Selection::Admission(&b.0), t(-100), t(100)).await.unwrap().len(), 2);
        let (_, failures) = store.verify().await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        store.close().await;
        // Written after the rotation: under a new key, not the old one.
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
        let keys: Vec<i64> = sqlx::query_scalar("SELECT DISTINCT key_id FROM news2_log ORDER BY id")
            .fetch_all(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
        assert_eq!(keys.len(), 2, "{keys:?}");
    });
}

#[test]
fn salvage_copies_the_news2_log_once_and_retention_deletes_only_old_records() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.db");
        let store = Store::open(&old, &key()).await.unwrap();
        let (a, _) = two_stays(&store).await;
        store.close().await;

        let path = dir.path().join("vigil.db");
        let store = Store::open(&path, &key()).await.unwrap();
        let r = store.salvage_from(&old, &key()).await.unwrap();
        assert_eq!((r.news2_records_recovered, r.news2_records_lost), (5, 0), "{r:?}");
        assert_eq!(store.news2_log(Selection::Admission(&a.0), t(-100), t(100)).await.unwrap().len(), 3);
        let again = store.salvage_from(&old, &key()).await.unwrap();
        assert_eq!((again.news2_records_recovered, again.news2_records_already_present), (0, 5));
        let (_, failures) = store.verify().await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");

        // Retention: what is older than the cut-off goes, with its digest.
        assert_eq!(store.purge_news2_before(t(20)).await.unwrap(), 2);
        let left = store.news2_log(Selection::Bed("bed-1"), t(-100), t(100)).await.unwrap();
        assert_eq!(left.iter().map(|r| r.at).collect::<Vec<_>>(), [t(20), t(40)]);
        let (_, failures) = store.verify().await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        store.close().await;
    });
}
