//! A damaged store: detected at open, moved aside, salvaged.

use super::{key, patient, reading, rt, t};
use std::path::Path;
use vigil_model::{Mdc, Value};
use vigil_store::{KeySource, Store, StoreError};

const BEDS: [&str; 3] = ["bed-1", "bed-2", "bed-3"];
const CODES: [Mdc; 2] = [Mdc::ECG_HEART_RATE, Mdc::PULS_OXIM_SAT_O2];
const BATCHES: i64 = 400;

/// A store with 3 beds × 2 codes, one chunk per series per batch (2 400
/// chunks of 2 readings), an admission and alarm-log records.
async fn filled(path: &Path) {
    let store = Store::open(path, &key()).await.unwrap();
    store.admit("bed-1", patient(), t(0)).await.unwrap();
    for b in 0..BATCHES {
        let mut batch = Vec::new();
        for bed in BEDS {
            for code in CODES {
                for s in 0..2 {
                    batch.push(reading(bed, code, Value::Number(60.0 + s as f64), t(b * 2 + s)));
                }
            }
        }
        store.append(&batch).await.unwrap();
    }
    let events: Vec<_> = (0..5)
        .map(|i| ("bed-2".to_string(), t(i), serde_json::json!({ "n": i })))
        .collect();
    store.log_alarms(&events).await.unwrap();
    // A sign-in account (issue 14): without it only a first admin could act on the new store.
    let nurse = vigil_store::UserRecord {
        name: "ann".into(),
        role: "nurse".into(),
        password_hash: vigil_store::hash_password(NURSE_PASSWORD),
        disabled: false,
        created: 0,
    };
    assert!(store.add_user(&nurse).await.unwrap());
    store.close().await;
}

const NURSE_PASSWORD: &str = "salvaged nurse password";

/// Overwrites one leaf page of `table` in the middle of the file with noise.
async fn damage_leaf_of(path: &Path, table: &str) -> u64 {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let pages: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT pageno FROM dbstat WHERE name = '{table}' AND pagetype = 'leaf' ORDER BY pageno"
    ))
    .fetch_all(&mut c)
    .await
    .unwrap();
    let size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    assert!(pages.len() > 4, "{table} spans {} leaf pages", pages.len());
    let page = pages[pages.len() / 2];
    let offset = (page - 1) as u64 * size as u64;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&noise).unwrap();
    f.sync_all().unwrap();
    offset
}

#[test]
fn damaged_store_is_moved_aside_and_salvaged() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        filled(&path).await;
        damage_leaf_of(&path, "chunks").await;

        // A wrong key is still refused, and nothing is moved.
        let wrong = KeySource::passphrase("not the passphrase", "test");
        assert!(matches!(
            Store::open_or_recover(&path, &wrong).await,
            Err(StoreError::WrongKey)
        ));
        let aside = |d: &Path| {
            std::fs::read_dir(d)
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .contains("corrupt")
                })
                .count()
        };
        assert_eq!(aside(dir.path()), 0);
        assert!(path.exists());

        match Store::open(&path, &key()).await {
            Err(e @ StoreError::Damaged { .. }) => assert!(e.is_damaged()),
            Err(e) => panic!("expected Damaged, got {e}"),
            Ok(_) => panic!("a damaged store opened"),
        }

        let (store, moved) = Store::open_or_recover(&path, &key()).await.unwrap();
        let moved = moved.expect("moved aside");
        assert!(moved.path.exists(), "the damaged file is kept");
        let name = moved.path.file_name().unwrap().to_string_lossy().to_string();
        assert!(name.starts_with("vigil.db.corrupt-"), "{name}");
        let (checked, failures) = store.verify().await.unwrap();
        assert_eq!((checked, failures.len()), (0, 0), "a fresh, verifiable store");

        // Salvage with the wrong key: refused.
        assert!(matches!(
            store.salvage_from(&moved.path, &wrong).await,
            Err(StoreError::WrongKey)
        ));

        let report = store.salvage_from(&moved.path, &key()).await.unwrap();
        let total = BATCHES as u64 * (BEDS.len() * CODES.len()) as u64;
        assert!(report.chunks_recovered > total / 2, "{report:?}");
        assert!(
            report.chunks_recovered < total,
            "one page of chunks was lost: {report:?}"
        );
        assert_eq!(report.readings_recovered, report.chunks_recovered * 2);
        let lost: Vec<_> = report.lost_rows.iter().filter(|r| r.table == "chunks").collect();
        assert_eq!(lost.len(), 1, "{report:?}");
        let lost_ids = (lost[0].last_id - lost[0].first_id + 1) as u64;
        assert_eq!(
            report.chunks_recovered + lost_ids,
            total,
            "every chunk is recovered or reported"
        );
        let (a, b) = lost[0].between.expect("time bounded by its neighbours");
        assert!(a < b);
        assert_eq!(report.alarm_records_recovered, 5);
        assert_eq!(report.admissions_recovered, 1);
        assert_eq!((report.users_recovered, report.users_lost), (1, 0), "{report:?}");
        let ann = store.user("ann").await.unwrap().expect("the account is back");
        assert_eq!(ann.role, "nurse");
        assert!(vigil_store::verify_password(NURSE_PASSWORD, &ann.password_hash));
        assert!(report.read_anything());

        let (checked, failures) = store.verify().await.unwrap();
        assert_eq!(checked, report.chunks_recovered);
        assert!(failures.is_empty(), "{failures:?}");
        let readings = store.query_range(None, t(-1), t(BATCHES * 2)).await.unwrap();
        assert_eq!(readings.len() as u64, report.readings_recovered);
        assert_eq!(store.current_admissions().await.unwrap()[0].patient, patient());
        assert_eq!(
            store.alarm_log(Some("bed-2"), t(0), t(10)).await.unwrap().len(),
            5
        );

        // Again: nothing is duplicated.
        let again = store.salvage_from(&moved.path, &key()).await.unwrap();
        assert_eq!(again.chunks_recovered, 0);
        assert_eq!(again.chunks_already_present, report.chunks_recovered);
        assert_eq!(again.alarm_records_recovered, 0);
        assert_eq!(again.admissions_already_present, 1);
        assert_eq!((again.users_recovered, again.users_already_present), (0, 1));
        store.close().await;
    });
}

#[test]
fn salvage_of_a_file_that_is_not_a_database_fails_clearly() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("junk.db");
        std::fs::write(&bad, vec![0x5Au8; 64 * 1024]).unwrap();
        let store = Store::open(&dir.path().join("vigil.db"), &key()).await.unwrap();
        let err = store.salvage_from(&bad, &key()).await.unwrap_err();
        assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
        store.close().await;
    });
}
