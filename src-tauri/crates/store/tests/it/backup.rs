//! Backup while the store is written, and restores that check before they
//! replace anything (issue 16).

use super::*;
use vigil_store::backup::{restore, InUse};
use vigil_store::{AuditRecord, Outcome};

fn at(s: i64) -> DateTime<Utc> {
    t(s)
}

fn audit(i: i64) -> AuditRecord {
    AuditRecord {
        at: at(i),
        actor: "it".into(),
        role: Some("admin".into()),
        action: "store backup".into(),
        outcome: Outcome::Success,
        admission: None,
        workstation: "ws-1".into(),
        break_glass: false,
        detail: None,
    }
}

async fn count(path: &Path, counters: &Path) -> usize {
    let s = Store::open_with_counter_dir(path, &key(), Some(counters)).await.unwrap();
    let n = s.query_range(None, t(0), t(100_000)).await.unwrap().len();
    s.close().await;
    n
}

/// A backup taken while a writer appends every few ms is a consistent
/// snapshot: it verifies, opens with the site key only, and holds a
/// whole prefix of what was written (every batch complete or absent).
#[test]
fn a_backup_under_load_is_consistent_and_verifies() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let counters = dir.path().join("counters");
        let path = dir.path().join("vigil.db");
        let store = Store::open_with_counter_dir(&path, &key(), Some(&counters)).await.unwrap();
        let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let writer = {
            let store = store.clone();
            let written = written.clone();
            tokio::spawn(async move {
                for s in 0..400 {
                    // One batch: two beds, the same second: both land or neither.
                    let batch = [
                        reading("bed-1", Mdc::ECG_HEART_RATE, Value::Number(60.0 + (s % 9) as f64), t(s)),
                        reading("bed-2", Mdc::PULS_OXIM_SAT_O2, Value::Number(97.0), t(s)),
                    ];
                    store.append(&batch).await.unwrap();
                    written.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            })
        };
        // The backup starts while the writer is under way.
        while written.load(std::sync::atomic::Ordering::SeqCst) < 20 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let dest = dir.path().join("backup.db");
        let b = store.backup(&dest, &key()).await.unwrap();
        writer.await.unwrap();
        assert!(b.bytes > 0 && b.chunks_checked > 0, "{b:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // A backup never overwrites.
        assert!(matches!(store.backup(&dest, &key()).await, Err(StoreError::Backup(_))));
        store.close().await;

        // The copy holds complete seconds 0..n, nothing torn.
        let copy = Store::open_with_counter_dir(&dest, &key(), None).await.unwrap();
        let got = copy.query_range(None, t(0), t(1000)).await.unwrap();
        assert_eq!(got.len() % 2, 0, "a batch was torn: {} readings", got.len());
        let n = (got.len() / 2) as i64;
        for s in 0..n {
            assert_eq!(got.iter().filter(|r| r.received == t(s)).count(), 2, "second {s}");
        }
        // The wrong key does not open it: the backup is still encrypted.
        copy.close().await;
        let wrong = KeySource::passphrase("not the site passphrase", "test");
        assert!(matches!(
            Store::open_with_counter_dir(&dest, &wrong, None).await,
            Err(StoreError::WrongKey)
        ));
        let bytes = std::fs::read(&dest).unwrap();
        assert!(!bytes.windows(b"bed-1".len()).any(|w| w == b"bed-1"), "bed id in the clear in the backup");
    });
}

/// Restore: refused over a newer store without --force, refused while a
/// monitor has the store, refused for a tampered backup (nothing changed);
/// with --force the newer store is moved aside, the backup takes its place
/// and opens without a rollback report.
#[test]
fn restore_checks_before_it_replaces_and_keeps_what_it_replaces() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let counters = dir.path().join("counters");
        let path = dir.path().join("vigil.db");
        let store = Store::open_with_counter_dir(&path, &key(), Some(&counters)).await.unwrap();
        let batch: Vec<_> = (0..60).map(|s| reading("bed-1", Mdc::ECG_HEART_RATE, Value::Number(70.0), t(s))).collect();
        store.append(&batch).await.unwrap();
        store.audit_append(&[audit(1)]).await.unwrap();
        let backup = dir.path().join("b.db");
        store.backup(&backup, &key()).await.unwrap();
        // Work after the backup: the current store is newer.
        let later: Vec<_> = (60..90).map(|s| reading("bed-1", Mdc::ECG_HEART_RATE, Value::Number(71.0), t(s))).collect();
        store.append(&later).await.unwrap();
        store.audit_append(&[audit(2)]).await.unwrap();
        let current = store.activity().await.unwrap();
        store.close().await;
        let before = std::fs::read(&path).unwrap();

        // Newer: refused, nothing touched.
        let e = restore(&backup, &path, &key(), Some(&current), false, Some(&counters), at(1000)).await.unwrap_err();
        assert!(e.to_string().contains("--force"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), before);

        // A monitor has the store: refused.
        let held = InUse::shared(&path).unwrap();
        let e = restore(&backup, &path, &key(), Some(&current), true, Some(&counters), at(1000)).await.unwrap_err();
        assert!(e.to_string().contains("running"), "{e}");
        drop(held);

        // Wrong key: refused.
        let wrong = KeySource::passphrase("not the site passphrase", "test");
        let e = restore(&backup, &path, &wrong, Some(&current), true, Some(&counters), at(1000)).await.unwrap_err();
        assert!(matches!(e, StoreError::WrongKey), "{e}");

        // A tampered backup (one chunk's sealed bytes altered): refused.
        let tampered = dir.path().join("tampered.db");
        std::fs::copy(&backup, &tampered).unwrap();
        sql(&tampered, "UPDATE chunks SET sealed = zeroblob(length(sealed)) WHERE id = (SELECT min(id) FROM chunks)").await;
        let e = restore(&tampered, &path, &key(), Some(&current), true, Some(&counters), at(1000)).await.unwrap_err();
        assert!(e.to_string().contains("does not verify"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.contains("restoring"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        // --force: the newer store is kept aside, the backup restored.
        let backup_bytes = std::fs::read(&backup).unwrap();
        let r = restore(&backup, &path, &key(), Some(&current), true, Some(&counters), at(1000)).await.unwrap();
        assert_eq!(std::fs::read(&backup).unwrap(), backup_bytes, "the backup file itself was changed");
        let aside = r.replaced.expect("the replaced store is kept");
        assert!(aside.to_string_lossy().contains("vigil.db.replaced-"), "{}", aside.display());
        assert_eq!(count(&aside, &dir.path().join("elsewhere")).await, 90);
        assert_eq!(count(&path, &counters).await, 60);
        let s = Store::open_with_counter_dir(&path, &key(), Some(&counters)).await.unwrap();
        assert!(s.rolled_back().is_none(), "a restore is not a rollback");
        let (_, failures) = s.verify().await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        assert!(s.audit_verify().await.unwrap().intact());
        s.close().await;
    });
}
