//! Store integration tests against real SQLite files in a temp dir.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use std::path::Path;
use vigil_model::{AdmissionId, Mdc, Reading, Source, Special, Value};
use vigil_store::{KeySource, Patient, PatientCategory, SeriesQuery, Store, StoreError};

fn key() -> KeySource {
    KeySource::passphrase("correct horse battery staple", "test")
}

fn t(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap() + Duration::seconds(s)
}

fn reading(bed: &str, code: Mdc, v: Value, at: DateTime<Utc>) -> Reading {
    Reading {
        bed: bed.into(),
        admission: None,
        device: format!("{bed}-dev"),
        code,
        value: v,
        unit: "/min".into(),
        device_time: None,
        received: at,
        source: Source::Simulated,
    }
}

fn patient() -> Patient {
    Patient {
        display_name: "Zebedee Quinterro".into(),
        mrn: "MRN-99887766".into(),
        date_of_birth: NaiveDate::from_ymd_opt(1950, 3, 14).unwrap(),
        category: PatientCategory::Adult,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn sql(path: &Path, stmt: &str) {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query(stmt).execute(&mut c).await.unwrap();
    c.close().await.unwrap();
}

/// Every row of every table, for before/after comparisons.
async fn dump(path: &Path) -> Vec<String> {
    use sqlx::{Connection, Row};
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
            .fetch_all(&mut c)
            .await
            .unwrap();
    let mut out = Vec::new();
    for t in tables {
        for row in sqlx::query(&format!("SELECT quote(*) FROM (SELECT * FROM \"{t}\")"))
            .fetch_all(&mut c)
            .await
            .unwrap_or_default()
        {
            out.push(format!("{t}:{:?}", row.try_get::<String, _>(0).ok()));
        }
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{t}\""))
            .fetch_one(&mut c)
            .await
            .unwrap();
        out.push(format!("{t}:{n}"));
    }
    c.close().await.unwrap();
    out
}

#[test]
fn round_trip_query_and_latest() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path, &key()).await.unwrap();
        let mut batch = Vec::new();
        for s in 0..120 {
            batch.push(reading(
                "bed-1",
                Mdc::ECG_HEART_RATE,
                Value::Number(60.0 + s as f64 % 7.0),
                t(s),
            ));
            batch.push(reading("bed-2", Mdc::PULS_OXIM_SAT_O2, Value::Number(97.0), t(s)));
        }
        batch.push(reading(
            "bed-1",
            Mdc::ECG_HEART_RATE,
            Value::Special(Special::NaN),
            t(200),
        ));
        for b in batch.chunks(10) {
            store.append(b).await.unwrap();
        }
        let q = SeriesQuery {
            bed: "bed-1".into(),
            code: Mdc::ECG_HEART_RATE,
            from: t(10),
            to: t(19),
        };
        let got = store.query_series(&q).await.unwrap();
        assert_eq!(got.len(), 10);
        assert_eq!(got[0].received, t(10));
        assert_eq!(got[0].value, Value::Number(63.0));
        assert_eq!(got[0].source, Source::Simulated);

        let latest = store.latest().await.unwrap();
        assert_eq!(latest.len(), 2);
        let hr = latest.iter().find(|r| r.bed == "bed-1").unwrap();
        assert_eq!(hr.value, Value::Special(Special::NaN));
        assert_eq!(hr.received, t(200));
        store.close().await;

        // Reopen: everything is still there.
        let store = Store::open(&path, &key()).await.unwrap();
        let all = store.query_range(None, t(0), t(1000)).await.unwrap();
        assert_eq!(all.len(), 241);
        let (checked, failures) = store.verify().await.unwrap();
        assert!(checked > 0);
        assert!(failures.is_empty());
    });
}

#[test]
fn wrong_key_is_refused_and_changes_nothing() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path, &key()).await.unwrap();
        store
            .append(&[reading("bed-1", Mdc::ECG_HEART_RATE, Value::Number(70.0), t(0))])
            .await
            .unwrap();
        store.close().await;
        let before = dump(&path).await;
        let err = Store::open(&path, &KeySource::passphrase("wrong", "test"))
            .await
            .err()
            .unwrap();
        assert!(matches!(err, StoreError::WrongKey), "{err}");
        assert!(err.to_string().contains("wrong passphrase"));
        assert!(before == dump(&path).await, "a failed open changed the database");

        // A key file cannot open a passphrase database either.
        let kf = dir.path().join("site.key");
        vigil_store::create_key_file(&kf).unwrap();
        let err = Store::open(&path, &KeySource::KeyFile(kf)).await.err().unwrap();
        assert!(matches!(err, StoreError::WrongKey));
    });
}

#[test]
fn key_file_must_be_private() {
    rt().block_on(async {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let kf = dir.path().join("site.key");
        vigil_store::create_key_file(&kf).unwrap();
        let path = dir.path().join("vigil.db");
        Store::open(&path, &KeySource::KeyFile(kf.clone()))
            .await
            .unwrap()
            .close()
            .await;
        std::fs::set_permissions(&kf, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Store::open(&path, &KeySource::KeyFile(kf)).await.err().unwrap();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    });
}

#[test]
fn tampering_is_detected() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path, &key()).await.unwrap();
        store
            .append(&[
                reading("bed-1", Mdc::ECG_HEART_RATE, Value::Number(70.0), t(0)),
                reading("bed-2", Mdc::ECG_HEART_RATE, Value::Number(140.0), t(0)),
            ])
            .await
            .unwrap();
        store.close().await;

        // Swap the two chunks' series: each now claims the other bed.
        sql(&path, "UPDATE chunks SET series_id = 3 - series_id").await;
        let store = Store::open(&path, &key()).await.unwrap();
        let err = store.latest().await.err().unwrap();
        assert!(matches!(err, StoreError::Tampered { .. }), "{err}");
        let (_, failures) = store.verify().await.unwrap();
        assert_eq!(failures.len(), 2);
        store.close().await;

        // Put them back, then flip one byte of a ciphertext.
        sql(&path, "UPDATE chunks SET series_id = 3 - series_id").await;
        sql(
            &path,
            "UPDATE chunks SET sealed = zeroblob(length(sealed)) WHERE id = 1",
        )
        .await;
        let store = Store::open(&path, &key()).await.unwrap();
        let (_, failures) = store.verify().await.unwrap();
        assert_eq!(failures.len(), 1);
        assert!(failures[0].to_string().contains("chunk 1"));
        // Editing the time range in the clear is caught too.
        store.close().await;
        sql(&path, "UPDATE chunks SET t1 = t1 + 1 WHERE id = 2").await;
        let store = Store::open(&path, &key()).await.unwrap();
        let (_, failures) = store.verify().await.unwrap();
        assert_eq!(failures.len(), 2);
    });
}

#[test]
fn no_plaintext_phi_or_values_in_the_file() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let store = Store::open(&path, &key()).await.unwrap();
        let adm = store.admit("bed-1", patient(), t(0)).await.unwrap();
        let mut r = reading("bed-1", Mdc::ECG_HEART_RATE, Value::Number(123.456789), t(1));
        r.admission = Some(adm.id.clone());
        store.append(&[r]).await.unwrap();
        let back = store.current_admissions().await.unwrap();
        assert_eq!(back[0].patient, patient());
        store.close().await;

        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        let hay = String::from_utf8_lossy(&bytes);
        for needle in [
            "Zebedee",
            "Quinterro",
            "MRN-99887766",
            "99887766",
            "1950-03-14",
            "123.456789",
        ] {
            assert!(!hay.contains(needle), "found {needle:?} in the clear");
        }
        let value_bits = 123.456789f64.to_le_bytes();
        assert!(
            !bytes.windows(8).any(|w| w == value_bits),
            "found the raw f64 in the clear"
        );
    });
}

#[test]
fn admission_rules() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("v.db"), &key()).await.unwrap();
        let a = store.admit("bed-1", patient(), t(0)).await.unwrap();
        assert!(matches!(
            store.admit("bed-1", patient(), t(1)).await,
            Err(StoreError::BedOccupied(_))
        ));
        let mut bad = patient();
        bad.mrn = " ".into();
        assert!(matches!(
            store.admit("bed-2", bad, t(1)).await,
            Err(StoreError::InvalidPatient(_))
        ));
        assert_eq!(store.discharge("bed-1", t(5)).await.unwrap(), a.id);
        assert!(matches!(
            store.discharge("bed-1", t(6)).await,
            Err(StoreError::BedEmpty(_))
        ));
        assert!(store.current_admissions().await.unwrap().is_empty());
        // Debug output of a patient never shows identity.
        assert!(!format!("{:?}", patient()).contains("Zebedee"));
        let _ = AdmissionId("x".into());
    });
}

fn value_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-1.0e6f64..1.0e6).prop_map(Value::Number),
        Just(Value::Special(Special::NaN)),
        Just(Value::Special(Special::NRes)),
        Just(Value::Special(Special::PosInfinity)),
        Just(Value::Special(Special::NegInfinity)),
        Just(Value::Special(Special::Reserved)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn any_batch_round_trips(samples in prop::collection::vec((0i64..100_000, value_strategy(), prop::option::of(-5_000i64..5_000)), 1..60)) {
        let got = rt().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("v.db"), &KeySource::KeyFile({
                let k = dir.path().join("k"); vigil_store::create_key_file(&k).unwrap(); k
            })).await.unwrap();
            let mut batch: Vec<Reading> = samples.iter().map(|(ms, v, off)| {
                let mut r = reading("bed-1", Mdc::ECG_HEART_RATE, *v, t(0) + Duration::milliseconds(*ms));
                r.device_time = off.map(|o| (r.received + Duration::seconds(o)).naive_utc());
                r
            }).collect();
            store.append(&batch).await.unwrap();
            let mut got = store.query_range(None, t(-1), t(1000)).await.unwrap();
            batch.sort_by_key(|r| r.received);
            got.sort_by_key(|r| r.received);
            (batch, got)
        });
        prop_assert_eq!(got.0.len(), got.1.len());
        let key = |r: &Reading| (r.received, format!("{:?}", r.value), r.device_time);
        let mut a: Vec<_> = got.0.iter().map(key).collect();
        let mut b: Vec<_> = got.1.iter().map(key).collect();
        a.sort(); b.sort();
        prop_assert_eq!(a, b);
    }
}
