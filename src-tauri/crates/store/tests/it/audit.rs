//! Issue 14: the signed audit trail. Every kind of tampering with the file
//! (edit, delete, insert, re-order, truncate, replay, another signing key,
//! the whole file rolled back) is reported by `audit_verify`; normal use is not.

use super::*;
use vigil_store::{AuditFault, AuditRecord, Outcome};

fn record(i: i64) -> AuditRecord {
    AuditRecord {
        at: t(i),
        actor: "ann".into(),
        role: Some("nurse".into()),
        action: if i % 2 == 0 { "admit" } else { "acknowledge" }.into(),
        outcome: Outcome::Success,
        admission: Some(format!("adm-{i}")),
        workstation: "ws-1".into(),
        break_glass: false,
        detail: None,
    }
}

async fn open(path: &Path, counters: &Path) -> Store {
    Store::open_with_counter_dir(path, &key(), Some(counters))
        .await
        .unwrap()
}

/// A store with records 1..=5 (two appends), closed.
async fn trail(path: &Path, counters: &Path) {
    let store = open(path, counters).await;
    store.audit_append(&[record(1), record(2)]).await.unwrap();
    store
        .audit_append(&[record(3), record(4), record(5)])
        .await
        .unwrap();
    store.close().await;
}

async fn faults(path: &Path, counters: &Path) -> Vec<AuditFault> {
    let store = open(path, counters).await;
    let report = store.audit_verify().await.unwrap();
    store.close().await;
    report.faults
}

/// Runs `tamper` (SQL on the closed file) on a fresh 5-record trail; the faults.
fn after(tamper: &[&str]) -> Vec<AuditFault> {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (path, counters) = (dir.path().join("vigil.db"), dir.path().join("counters"));
        trail(&path, &counters).await;
        for stmt in tamper {
            sql(&path, stmt).await;
        }
        faults(&path, &counters).await
    })
}

#[test]
fn an_untouched_trail_verifies_and_exports_in_order() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (path, counters) = (dir.path().join("vigil.db"), dir.path().join("counters"));
        trail(&path, &counters).await;
        let store = open(&path, &counters).await;
        let report = store.audit_verify().await.unwrap();
        assert_eq!(report.records, 5);
        assert!(report.intact(), "{:?}", report.faults);
        let all = store.audit_entries(None, None).await.unwrap();
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
        assert_eq!(all[1].prev, all[0].hash, "chained");
        assert_eq!(all[0].record, record(1));
        let some = store.audit_entries(Some(t(2)), Some(t(4))).await.unwrap();
        assert_eq!(some.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(store.audit_public_key().await.unwrap().len(), 64);
        // More after a restart continue the same chain.
        store.audit_append(&[record(6)]).await.unwrap();
        assert!(store.audit_verify().await.unwrap().intact());
        store.close().await;
        assert!(faults(&path, &counters).await.is_empty());
    });
}

#[test]
fn an_edited_record_is_reported() {
    let f = after(&[
        // One byte changed (never "set to what it already was": that would edit nothing 1 time in 256).
        "UPDATE audit_log SET sealed = substr(sealed, 1, 10)
             || CASE WHEN substr(sealed, 11, 1) = x'00' THEN x'01' ELSE x'00' END
             || substr(sealed, 12) WHERE seq = 3",
    ]);
    assert_eq!(f.first(), Some(&AuditFault::Unreadable { seq: 3 }), "{f:?}");
}

#[test]
fn a_deleted_record_is_reported() {
    let f = after(&["DELETE FROM audit_log WHERE seq = 2"]);
    assert_eq!(f.first(), Some(&AuditFault::Missing { from: 2, to: 2 }), "{f:?}");
}

#[test]
fn an_inserted_record_is_reported() {
    // A copy of record 2 put in as a new record 6 (the head still says 5).
    let f = after(&["INSERT INTO audit_log (seq, key_id, nonce, sealed) SELECT 6, key_id, nonce, sealed FROM audit_log WHERE seq = 2"]);
    assert_eq!(f.first(), Some(&AuditFault::Unreadable { seq: 6 }), "{f:?}");
    assert!(f.contains(&AuditFault::Head { head: 5, rows: 6 }), "{f:?}");
}

#[test]
fn re_ordered_records_are_reported() {
    let f = after(&[
        "UPDATE audit_log SET seq = 100 WHERE seq = 2",
        "UPDATE audit_log SET seq = 2 WHERE seq = 4",
        "UPDATE audit_log SET seq = 4 WHERE seq = 100",
    ]);
    assert_eq!(f.first(), Some(&AuditFault::Unreadable { seq: 2 }), "{f:?}");
    assert!(f.contains(&AuditFault::Unreadable { seq: 4 }), "{f:?}");
}

#[test]
fn a_truncated_trail_is_reported() {
    let f = after(&["DELETE FROM audit_log WHERE seq >= 4"]);
    assert_eq!(f.first(), Some(&AuditFault::Head { head: 5, rows: 3 }), "{f:?}");
    // Even with the head put back in line (an old head can't be forged), the mirror says more.
    let f = after(&[
        "DELETE FROM audit_log WHERE seq >= 4",
        "UPDATE audit_head SET n = 3",
    ]);
    assert_eq!(f.first(), Some(&AuditFault::HeadTampered), "{f:?}");
}

#[test]
fn a_replayed_old_record_is_reported() {
    // Record 2's row copied over record 4 (same key, valid seal — for seq 2).
    let f = after(&["UPDATE audit_log SET nonce = (SELECT nonce FROM audit_log WHERE seq = 2), sealed = (SELECT sealed FROM audit_log WHERE seq = 2) WHERE seq = 4"]);
    assert_eq!(f.first(), Some(&AuditFault::Unreadable { seq: 4 }), "{f:?}");
}

#[test]
fn a_record_signed_with_another_key_is_reported() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (path, counters) = (dir.path().join("vigil.db"), dir.path().join("counters"));
        trail(&path, &counters).await;
        let store = open(&path, &counters).await;
        store
            .audit_append_signed_by(&record(6), &[7u8; 32])
            .await
            .unwrap();
        store.audit_append(&[record(7)]).await.unwrap();
        let f = store.audit_verify().await.unwrap().faults;
        assert_eq!(f, vec![AuditFault::Signature { seq: 6 }]);
        store.close().await;
    });
}

#[test]
fn the_whole_file_rolled_back_is_reported() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (path, counters) = (dir.path().join("vigil.db"), dir.path().join("counters"));
        trail(&path, &counters).await;
        let old = dir.path().join("old.db");
        std::fs::copy(&path, &old).unwrap();
        let store = open(&path, &counters).await;
        store.audit_append(&[record(6), record(7)]).await.unwrap();
        store.close().await;
        std::fs::copy(&old, &path).unwrap();
        let f = faults(&path, &counters).await;
        assert!(
            matches!(
                f.first(),
                Some(AuditFault::RolledBack {
                    rows: 5,
                    mirror: 7,
                    ..
                })
            ),
            "{f:?}"
        );
        // New records on the old copy never overwrite the evidence.
        let store = open(&path, &counters).await;
        store
            .audit_append(&[record(8), record(9), record(10)])
            .await
            .unwrap();
        let f = store.audit_verify().await.unwrap().faults;
        assert!(
            matches!(f.first(), Some(AuditFault::Rewritten { seq: 7, .. })),
            "{f:?}"
        );
        store.close().await;
    });
}

#[test]
fn the_trail_survives_key_rotations_and_keeps_its_signing_key() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (path, counters) = (dir.path().join("vigil.db"), dir.path().join("counters"));
        trail(&path, &counters).await;
        let before = open(&path, &counters).await;
        let public = before.audit_public_key().await.unwrap();
        before.close().await;
        let k = dir.path().join("site.key");
        vigil_store::create_key_file(&k).unwrap();
        let new = KeySource::KeyFile(k);
        vigil_store::rotate_key(&path, &key(), &new).await.unwrap();
        let store = Store::open_with_counter_dir(&path, &new, Some(&counters))
            .await
            .unwrap();
        assert_eq!(store.audit_public_key().await.unwrap(), public);
        store.audit_append(&[record(6)]).await.unwrap();
        let report = store.audit_verify().await.unwrap();
        assert_eq!(report.records, 6);
        assert!(report.intact(), "{:?}", report.faults);
        store.close().await;
        // A second rotation: the first log key, still sealing the signing key, is kept.
        vigil_store::rotate_key(&path, &new, &key()).await.unwrap();
        let store = open(&path, &counters).await;
        let report = store.audit_verify().await.unwrap();
        assert!(report.intact(), "{:?}", report.faults);
        store.close().await;
    });
}
