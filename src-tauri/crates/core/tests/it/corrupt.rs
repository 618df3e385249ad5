//! Issue 12, item 5: a damaged store does not stop monitoring; a wrong key
//! is still refused and moves nothing.

use crate::config;
use vigil_alarms::{AlarmKind, TechnicalKind};
use vigil_core::{CoreError, Vigil};
use vigil_devices::sim::Scenario;
use vigil_store::{KeySource, StoreError};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn corrupt_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        // The moved-aside database itself; its -wal/-shm go with it when present.
        .filter(|n| n.starts_with("vigil.db.corrupt-") && !n.ends_with("-wal") && !n.ends_with("-shm"))
        .collect()
}

#[test]
fn a_damaged_store_is_moved_aside_and_every_bed_is_told() {
    let dir = tempfile::tempdir().unwrap();
    // Not a database at all: SQLite says "file is not a database".
    std::fs::write(dir.path().join("vigil.db"), vec![0xA5u8; 32 * 1024]).unwrap();
    runtime().block_on(async {
        let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
            .await
            .expect("monitoring starts");
        let moved = v
            .info()
            .store_recovered_from
            .clone()
            .expect("banner: moved aside");
        assert!(moved.contains("vigil.db.corrupt-"), "{moved}");
        assert_eq!(corrupt_files(dir.path()).len(), 1);
        assert_eq!(
            std::fs::read(&moved).unwrap(),
            vec![0xA5u8; 32 * 1024],
            "kept as it was"
        );
        let alarms = v.snapshot().alarms;
        assert_eq!(alarms.len(), 4);
        for bed in &alarms {
            let a = bed
                .active
                .iter()
                .find(|a| {
                    matches!(
                        a.kind,
                        AlarmKind::Technical {
                            kind: TechnicalKind::RecordingUnavailable,
                            ..
                        }
                    )
                })
                .unwrap_or_else(|| panic!("no recording-unavailable alarm at {}", bed.bed));
            assert!(a.latched, "shown until acknowledged");
        }
        v.shutdown().await;
    });
    // The new store opens and verifies under the same key.
    runtime().block_on(async {
        let store = vigil_store::Store::open(
            &dir.path().join("vigil.db"),
            &config(dir.path(), Scenario::Stable, 1.0).key,
        )
        .await
        .unwrap();
        let (_, failures) = store.verify().await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        store.close().await;
    });
}

#[test]
fn a_wrong_passphrase_is_refused_and_nothing_is_moved() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
            .await
            .unwrap();
        v.shutdown().await;
        let mut cfg = config(dir.path(), Scenario::Stable, 1.0);
        cfg.key = KeySource::passphrase("someone typed this", "test");
        match Vigil::start(cfg).await {
            Err(CoreError::Store(StoreError::WrongKey)) => {}
            Err(e) => panic!("expected a wrong key, got {e}"),
            Ok(_) => panic!("a wrong key opened the store"),
        }
    });
    assert!(corrupt_files(dir.path()).is_empty());
    assert!(dir.path().join("vigil.db").exists());
}

#[test]
fn a_store_that_opens_but_cannot_be_read_back_is_moved_aside_too() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let v = Vigil::start(config(dir.path(), Scenario::Stable, 10.0))
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        v.shutdown().await;
        // A damaged record inside a sound page: quick_check passes, the
        // newest chunk of a series no longer authenticates.
        let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("vigil.db"));
        let db = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        sqlx::query(
            "UPDATE chunks SET sealed = randomblob(length(sealed)) WHERE id = (SELECT max(id) FROM chunks)",
        )
        .execute(&db)
        .await
        .unwrap();
        db.close().await;
        let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
            .await
            .expect("monitoring starts");
        assert!(v.info().store_recovered_from.is_some());
        assert_eq!(corrupt_files(dir.path()).len(), 1);
        v.shutdown().await;
    });
}

/// Issue 13 §4: the data directory put back to an older copy of the store
/// still starts (monitoring goes on), and the core says so (banner, gateway).
#[test]
fn a_store_rolled_back_to_an_older_copy_starts_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("vigil.db");
    let old = dir.path().join("old-copy.db");
    runtime().block_on(async {
        let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
            .await
            .expect("monitoring starts");
        assert_eq!(v.info().store_rolled_back, None);
        v.shutdown().await;
        std::fs::copy(&db, &old).unwrap();
        let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
            .await
            .expect("monitoring starts");
        assert_eq!(
            v.info().store_rolled_back,
            None,
            "a normal restart is no rollback"
        );
        v.shutdown().await;
        std::fs::copy(&old, &db).unwrap();
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
            .await
            .expect("monitoring starts");
        let why = v.info().store_rolled_back.clone().expect("rollback reported");
        assert!(why.contains("is behind"), "{why}");
        v.shutdown().await;
    });
}

/// Issue 14: the users lived in the damaged file. The new store has none, but
/// the workstation is not at a first start: offering "create the first
/// administrator" there would give admin rights to whoever stands at it.
#[test]
fn a_store_replaced_after_damage_offers_no_first_admin() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vigil.db"), vec![0xA5u8; 32 * 1024]).unwrap();
    runtime().block_on(async {
        let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
            .await
            .expect("monitoring starts");
        let st = v.session_state().await.unwrap();
        assert!(!st.has_users);
        assert!(st.users_lost, "the screen must say the accounts were lost, not offer a first admin");
        let err = v
            .create_first_admin("walk-in", "a long enough password")
            .await
            .expect_err("no first admin in a replaced store");
        assert_eq!(err.code(), "users_in_damaged_store");
        assert!(err.to_string().contains("vigil user add"), "{err}");
        assert!(!v.has_users().await.unwrap());
        v.shutdown().await;
    });
}
