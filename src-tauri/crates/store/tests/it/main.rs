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
        status: Default::default(),
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
        // Each chunk fails, and each series' digest no longer adds up.
        let tampered = failures
            .iter()
            .filter(|e| matches!(e, StoreError::Tampered { .. }))
            .count();
        assert_eq!(tampered, 2, "{failures:?}");
        assert_eq!(failures.len(), 4, "{failures:?}");
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

mod schema2 {
    use super::*;

    #[test]
    fn a_schema_1_database_opens_and_keeps_working() {
        rt().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("vigil.db");
            std::fs::copy(
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1.db"),
                &path,
            )
            .unwrap();
            let key = KeySource::passphrase("fixture-passphrase", "fixture");
            let store = Store::open(&path, &key).await.unwrap();
            let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap();
            let old = store
                .query_range(None, t0, t0 + Duration::hours(1))
                .await
                .unwrap();
            assert_eq!(old.len(), 600);
            assert_eq!(
                old.iter()
                    .filter(|r| r.value == Value::Special(Special::NaN))
                    .count(),
                10
            );
            let adm = store.current_admissions().await.unwrap();
            assert_eq!(adm[0].patient.mrn, "FIX-0001");
            // New writes next to old chunks, then compaction merges both kinds.
            let mut r = reading(
                "bed-1",
                Mdc::ECG_HEART_RATE,
                Value::Number(99.0),
                t0 + Duration::seconds(700),
            );
            r.admission = Some(adm[0].id.clone());
            r.device = "sim-bed-1-hr".into();
            store.append(&[r]).await.unwrap();
            let rep = store.compact(t0 + Duration::hours(2)).await.unwrap();
            assert!(rep.chunks_read >= 11, "{rep:?}");
            let all = store
                .query_range(None, t0, t0 + Duration::hours(1))
                .await
                .unwrap();
            assert_eq!(all.len(), 601);
            let (_, failures) = store.verify().await.unwrap();
            assert!(failures.is_empty(), "{failures:?}");
        });
    }

    async fn second_batches(store: &Store, secs: i64) -> Vec<Reading> {
        {
            let mut all = Vec::new();
            for s in 0..secs {
                let v = if s % 97 == 0 {
                    Value::Special(Special::NRes)
                } else {
                    Value::Number(60.0 + (s % 40) as f64)
                };
                let r = reading("bed-1", Mdc::ECG_HEART_RATE, v, t(s));
                store.append(std::slice::from_ref(&r)).await.unwrap();
                all.push(r);
            }
            all
        }
    }

    #[test]
    fn compaction_keeps_every_reading_and_summaries_answer_trends() {
        rt().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("v.db"), &key()).await.unwrap();
            let written = second_batches(&store, 1800).await; // 30 min of 1 Hz, 1 chunk per second
            let before = store.query_range(None, t(0), t(2000)).await.unwrap();
            let trend_before = store
                .trend("bed-1", Mdc::ECG_HEART_RATE, t(0), t(1800), 3)
                .await
                .unwrap();

            let rep = store.compact(t(4000)).await.unwrap();
            assert_eq!(rep.chunks_read, 1800);
            assert!(rep.chunks_written <= 4, "{rep:?}");
            let after = store.query_range(None, t(0), t(2000)).await.unwrap();
            assert_eq!(before, after);
            assert_eq!(after.len(), written.len());
            // Idempotent: nothing left to do.
            assert_eq!(store.compact(t(4000)).await.unwrap().chunks_written, 0);

            let trend = store
                .trend("bed-1", Mdc::ECG_HEART_RATE, t(0), t(1800), 3)
                .await
                .unwrap();
            assert_eq!(trend.len(), 3);
            for (a, b) in trend.iter().zip(&trend_before) {
                assert_eq!(a.count, b.count);
                assert_eq!(a.min, b.min);
                assert_eq!(a.max, b.max);
                assert!((a.mean.unwrap() - b.mean.unwrap()).abs() < 1e-9);
            }
            // Brute force over the raw values.
            let nums: Vec<f64> = written
                .iter()
                .take(600)
                .filter_map(|r| r.value.number())
                .collect();
            assert_eq!(trend[0].count as usize, nums.len());
            assert_eq!(
                trend[0].max,
                nums.iter()
                    .cloned()
                    .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
            );
            let (_, failures) = store.verify().await.unwrap();
            assert!(failures.is_empty(), "{failures:?}");
        });
    }

    /// A chunk spanning hours (a spot measurement every 15 min, appended in
    /// one batch: a backlog import) beside 1 Hz chunks: compaction finds it
    /// from every window it overlaps (each group's scan is bounded by the
    /// longest span), splits it, and every reading is kept.
    #[test]
    fn compaction_splits_a_chunk_spanning_many_windows() {
        rt().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("v.db"), &key()).await.unwrap();
            let spot: Vec<Reading> = (0..24)
                .map(|i| reading("bed-1", Mdc::RESP_RATE, Value::Number(12.0 + i as f64), t(i * 900)))
                .collect();
            store.append(&spot).await.unwrap();
            for m in 0..360 {
                let minute: Vec<Reading> = (m * 60..m * 60 + 60)
                    .map(|s| reading("bed-1", Mdc::ECG_HEART_RATE, Value::Number(70.0), t(s)))
                    .collect();
                store.append(&minute).await.unwrap();
            }
            let before = store.query_range(None, t(0), t(30_000)).await.unwrap();
            let mut passes = 0;
            while store.compact(t(30_000)).await.unwrap().more {
                passes += 1;
                assert!(passes < 100, "compaction never finishes");
            }
            assert_eq!(store.query_range(None, t(0), t(30_000)).await.unwrap(), before);
            let st = store.chunk_stats().await.unwrap();
            assert_eq!(st.unsummarised, 0, "{st:?}");
            // One chunk per 10-minute window and series: 36 of HR, and RR's
            // 24 readings in the 24 windows they fall in.
            assert_eq!(st.chunks, 36 + 24, "{st:?}");
            let (_, failures) = store.verify().await.unwrap();
            assert!(failures.is_empty(), "{failures:?}");
        });
    }

    /// Issue 15: the writer's flushes straddle window edges (at `--speed 60`
    /// a 0.5 s flush holds 30 s of readings). Such chunks are split at the
    /// edge, so every closed window ends as one summarised chunk per series.
    #[test]
    fn compaction_splits_chunks_that_straddle_a_window_edge() {
        rt().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("v.db"), &key()).await.unwrap();
            let codes = [Mdc::ECG_HEART_RATE, Mdc::PULS_OXIM_SAT_O2, Mdc::RESP_RATE];
            // 40 minutes of 1 Hz in 30 s flushes offset by 15 s: every
            // window edge falls inside a flush.
            let mut start = 0;
            let mut n = 0;
            while start < 2400 {
                let end = (start + if start == 0 { 15 } else { 30 }).min(2400);
                let batch: Vec<Reading> = (start..end)
                    .flat_map(|s| {
                        codes.iter().map(move |c| {
                            reading("bed-1", *c, Value::Number(60.0 + (s % 17) as f64), t(s))
                        })
                    })
                    .collect();
                n += batch.len() as u64;
                store.append(&batch).await.unwrap();
                start = end;
            }
            let before = store.query_range(None, t(0), t(2400)).await.unwrap();
            let stats = store.chunk_stats().await.unwrap();
            assert_eq!((stats.readings, stats.unsummarised), (n, stats.chunks));

            // Closed before 08:30: three windows; the fourth stays open, and
            // the flush straddling 08:30 waits with it.
            let rep = store.compact(t(1800 + 20)).await.unwrap();
            assert!(!rep.more);
            let stats = store.chunk_stats().await.unwrap();
            let open_chunks = 3 * 21; // 08:29:45..08:40, per series: 20 flushes + the straddler
            assert_eq!(stats.chunks, 3 * 3 + open_chunks, "{stats:?}");
            assert_eq!(stats.unsummarised, open_chunks);
            let rep = store.compact(t(2400)).await.unwrap();
            assert!(rep.chunks_written > 0);
            let stats = store.chunk_stats().await.unwrap();
            assert_eq!((stats.chunks, stats.unsummarised, stats.readings), (3 * 4, 0, n));
            assert_eq!(store.compact(t(2400)).await.unwrap().chunks_written, 0);
            assert_eq!(store.query_range(None, t(0), t(2400)).await.unwrap(), before);
            // Every 10-minute bucket answered, counts exact.
            let tr = store.trend("bed-1", Mdc::RESP_RATE, t(0), t(2400), 4).await.unwrap();
            assert!(tr.iter().all(|b| b.count == 600), "{tr:?}");
            let (_, failures) = store.verify().await.unwrap();
            assert!(failures.is_empty(), "{failures:?}");
        });
    }

    #[test]
    fn retention_deletes_old_readings_only() {
        rt().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("v.db"), &key()).await.unwrap();
            second_batches(&store, 1200).await;
            let deleted = store.purge_before(t(600)).await.unwrap();
            assert_eq!(deleted, 600);
            let left = store.query_range(None, t(0), t(2000)).await.unwrap();
            assert_eq!(left.len(), 600);
            assert_eq!(left[0].received, t(600));
        });
    }

    #[test]
    fn a_copied_or_replayed_chunk_is_detected() {
        rt().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("v.db");
            let store = Store::open(&path, &key()).await.unwrap();
            second_batches(&store, 3).await;
            store.close().await;
            // A verbatim copy under a new id fails to open (the id is in the AAD).
            sql(&path, "INSERT INTO chunks (id, series_id, t0, t1, n, nonce, sealed, aad_version) SELECT 100, series_id, t0, t1, n, nonce, sealed, aad_version FROM chunks WHERE id = 1").await;
            let store = Store::open(&path, &key()).await.unwrap();
            let (_, failures) = store.verify().await.unwrap();
            assert!(failures.iter().any(|e| matches!(e, StoreError::Tampered { chunk: 100, .. })), "{failures:?}");
            store.close().await;
            sql(&path, "DELETE FROM chunks WHERE id = 100").await;

            // Replay: keep an old chunk, compact, then put the old chunk back.
            sql(&path, "CREATE TABLE saved AS SELECT * FROM chunks WHERE id = 2").await;
            let store = Store::open(&path, &key()).await.unwrap();
            store.compact(t(4000)).await.unwrap();
            store.close().await;
            sql(&path, "INSERT INTO chunks SELECT * FROM saved").await;
            let store = Store::open(&path, &key()).await.unwrap();
            let (_, failures) = store.verify().await.unwrap();
            assert!(failures.iter().any(|e| matches!(e, StoreError::Overlap { .. })), "{failures:?}");
        });
    }

    #[test]
    fn late_records_placed_in_the_past_are_not_a_replay() {
        rt().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("v.db"), &key()).await.unwrap();
            let glucose = |at| {
                reading(
                    "bed-1",
                    Mdc::CONC_GLU_CAPILLARY_WHOLEBLOOD,
                    Value::Number(5.4),
                    at,
                )
            };
            // Records at 0 s and 100 s, then a download of ones measured in
            // between (their chunk overlaps the first in time, shares no reading).
            store.append(&[glucose(t(0)), glucose(t(100))]).await.unwrap();
            store.append(&[glucose(t(30)), glucose(t(60))]).await.unwrap();
            let (checked, failures) = store.verify().await.unwrap();
            assert_eq!(checked, 2);
            assert!(failures.is_empty(), "{failures:?}");
            assert_eq!(store.query_range(None, t(0), t(200)).await.unwrap().len(), 4);
        });
    }

    #[test]
    fn a_truncated_file_is_an_error_not_silence() {
        rt().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("v.db");
            let store = Store::open(&path, &key()).await.unwrap();
            second_batches(&store, 300).await;
            store.close().await;
            // Everything in the main file (no WAL to read pages from), then cut it.
            sql(&path, "PRAGMA wal_checkpoint(TRUNCATE)").await;
            let len = std::fs::metadata(&path).unwrap().len();
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(len / 2).unwrap();
            drop(f);
            let result = async {
                let store = Store::open(&path, &key()).await?;
                store.verify().await?;
                store.query_range(None, t(0), t(1000)).await
            }
            .await;
            let Err(err) = result else {
                panic!("a truncated database read as fine")
            };
            assert!(err.to_string().contains("database"), "{err}");
        });
    }

    #[test]
    fn outbox_is_insertion_ordered_and_durable() {
        rt().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("v.db");
            let store = Store::open(&path, &key()).await.unwrap();
            let adm = store.admit("bed-1", patient(), t(0)).await.unwrap().id;
            let admitted = |bed: &str, code: Mdc, v: f64, at: DateTime<Utc>| {
                let mut r = reading(bed, code, Value::Number(v), at);
                r.admission = Some(adm.clone());
                r
            };
            store
                .append(&[admitted("bed-1", Mdc::ECG_HEART_RATE, 70.0, t(5))])
                .await
                .unwrap();
            assert_eq!(
                store.outbox_status().await.unwrap().pending_readings,
                0,
                "off by default"
            );
            store.set_outbox_enabled(true);
            // An empty bed's readings are not for upload.
            store
                .append(&[reading("bed-3", Mdc::ECG_HEART_RATE, Value::Number(70.0), t(6))])
                .await
                .unwrap();
            // Later measurement first, earlier one second: order is insertion order.
            store
                .append(&[admitted("bed-1", Mdc::ECG_HEART_RATE, 71.0, t(50))])
                .await
                .unwrap();
            store
                .append(&[admitted("bed-2", Mdc::PULS_OXIM_SAT_O2, 95.0, t(10))])
                .await
                .unwrap();
            store.close().await;
            let store = Store::open(&path, &key()).await.unwrap();
            let st = store.outbox_status().await.unwrap();
            assert_eq!(st.pending_readings, 2);
            let q = store.outbox_peek(10).await.unwrap();
            assert_eq!(q.len(), 2);
            assert!(q[0].seq < q[1].seq);
            assert_eq!(q[0].readings[0].received, t(50));
            assert_eq!(q[1].readings[0].bed, "bed-2");
            store
                .dead_letter(&q[1].readings[0], "OperationOutcome: invalid")
                .await
                .unwrap();
            store.outbox_ack(&[q[0].seq, q[1].seq]).await.unwrap();
            let st = store.outbox_status().await.unwrap();
            assert_eq!((st.pending_readings, st.dead_letters), (0, 1));
            let dl = store.dead_letters().await.unwrap();
            assert_eq!(dl[0].reason, "OperationOutcome: invalid");
            assert_eq!(dl[0].reading.value, Value::Number(95.0));
            // Patient links are sealed and per admission.
            assert_eq!(store.patient_link(&adm).await.unwrap(), None);
            store.link_patient(&adm, "Patient/123").await.unwrap();
            assert_eq!(
                store.patient_link(&adm).await.unwrap().as_deref(),
                Some("Patient/123")
            );
        });
    }

    /// A reading set aside twice (the process died after the dead letter, before the
    /// syncer knew) is one dead letter; failed attempts and "settled" survive a reopen;
    /// a requeue puts dead letters back in the outbox once.
    #[test]
    fn setting_aside_is_idempotent_and_a_requeue_queues_once() {
        use vigil_store::{DeadLetterKind, SetAside};
        rt().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("v.db");
            let store = Store::open(&path, &key()).await.unwrap();
            let adm = store.admit("bed-1", patient(), t(0)).await.unwrap().id;
            store.set_outbox_enabled(true);
            let rs: Vec<Reading> = [(Mdc::ECG_HEART_RATE, 70.0), (Mdc::PULS_OXIM_SAT_O2, 95.0)]
                .into_iter()
                .map(|(c, v)| {
                    let mut r = reading("bed-1", c, Value::Number(v), t(5));
                    r.admission = Some(adm.clone());
                    r
                })
                .collect();
            store.append(&rs).await.unwrap();
            let q = store.outbox_peek(10).await.unwrap();
            let row = q[0].seq;
            assert_eq!(
                (q[0].attempts.clone(), q[0].settled.clone()),
                (vec![0, 0], vec![false, false])
            );
            store.outbox_failed(&[(row, 0)]).await.unwrap();
            store.outbox_failed(&[(row, 0)]).await.unwrap();
            let aside = |index: u32, kind, row_done| SetAside {
                row,
                index,
                reading: &q[0].readings[index as usize],
                kind,
                summary: "HTTP 500 (error exception)",
                detail: "HTTP 500: error exception (value 70)",
                row_done,
            };
            store
                .set_aside(&aside(0, DeadLetterKind::Parked, false))
                .await
                .unwrap();
            store.close().await;
            let store = Store::open(&path, &key()).await.unwrap();
            store
                .set_aside(&aside(0, DeadLetterKind::Parked, false))
                .await
                .unwrap();
            let st = store.outbox_status().await.unwrap();
            assert_eq!((st.dead_letters, st.parked), (0, 1));
            assert_eq!(st.last_set_aside.as_deref(), Some("HTTP 500 (error exception)"));
            let q2 = store.outbox_peek(10).await.unwrap();
            assert_eq!(
                (q2[0].attempts.clone(), q2[0].settled.clone()),
                (vec![2, 0], vec![true, false])
            );
            store
                .set_aside(&aside(1, DeadLetterKind::Refused, true))
                .await
                .unwrap();
            assert!(store.outbox_peek(10).await.unwrap().is_empty(), "the row is done");
            let dl = store.dead_letters().await.unwrap();
            assert_eq!(dl.len(), 2);
            assert_eq!(
                (dl[0].kind, dl[1].kind),
                (DeadLetterKind::Parked, DeadLetterKind::Refused)
            );

            assert_eq!(store.requeue_dead_letters(Some(&[dl[0].id])).await.unwrap(), 1);
            assert_eq!(store.requeue_dead_letters(Some(&[dl[0].id])).await.unwrap(), 0);
            let q3 = store.outbox_peek(10).await.unwrap();
            assert_eq!(q3.len(), 1);
            assert!(q3[0].seq > row);
            assert_eq!(q3[0].readings, vec![rs[0].clone()]);
            assert_eq!(
                (q3[0].attempts.clone(), q3[0].settled.clone()),
                (vec![0], vec![false])
            );
            assert_eq!(store.requeue_dead_letters(None).await.unwrap(), 1);
            let st = store.outbox_status().await.unwrap();
            assert_eq!((st.pending_readings, st.dead_letters, st.parked), (2, 0, 0));
        });
    }

    #[test]
    fn alarm_log_and_device_registry_round_trip_sealed() {
        rt().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("v.db");
            let store = Store::open(&path, &key()).await.unwrap();
            let ev = serde_json::json!({"kind": "spo2_low", "value": 83.25, "limit": 90});
            store
                .log_alarms(&[("bed-3".into(), t(1), ev.clone())])
                .await
                .unwrap();
            let log = store.alarm_log(Some("bed-3"), t(0), t(10)).await.unwrap();
            assert_eq!(log[0].event, ev);
            store
                .assign_device("AA:BB:CC:DD:EE:01", "bed-3", "pulse_oximeter")
                .await
                .unwrap();
            store
                .set_device_info("AA:BB:CC:DD:EE:01", &serde_json::json!({"model": "X1"}))
                .await
                .unwrap();
            store
                .assign_device("AA:BB:CC:DD:EE:01", "bed-4", "pulse_oximeter")
                .await
                .unwrap();
            let d = store.devices().await.unwrap();
            assert_eq!((d.len(), d[0].bed.as_str()), (1, "bed-4"));
            assert_eq!(d[0].info.as_ref().unwrap()["model"], "X1");
            store.close().await;
            let bytes = std::fs::read(&path).unwrap();
            assert!(!String::from_utf8_lossy(&bytes).contains("83.25"));
            // The bed is sealed; its tag (bound into the AAD) edited.
            sql(&path, "UPDATE alarm_log SET bed_tag = x'00112233445566778899aabbccddeeff'").await;
            let store = Store::open(&path, &key()).await.unwrap();
            let (_, failures) = store.verify().await.unwrap();
            assert!(failures.iter().any(|e| matches!(
                e,
                StoreError::TamperedRecord {
                    table: "alarm_log",
                    ..
                }
            )));
        });
    }
}

/// SIGKILL a writing process at random moments; nothing it reported as
/// committed may be lost, and the file must open and verify cleanly.
mod crash {
    use super::*;
    use std::io::{BufRead, Write};
    use std::process::{Command, Stdio};

    const SERIES: usize = 8;

    /// A key file, not the passphrase: this test opens the store some forty
    /// times, and what it proves (durability) does not depend on the key
    /// source; Argon2id at production cost (~0.2 s per open here) would add
    /// seconds for nothing.
    fn crash_key(db: &Path) -> KeySource {
        KeySource::KeyFile(db.with_file_name("crash.key"))
    }

    /// The child: appends forever (and compacts now and then), printing each
    /// committed step. Does nothing unless started by `kill_9_loses_nothing_committed`.
    #[test]
    fn child() {
        let Ok(path) = std::env::var("VIGIL_CRASH_CHILD_DB") else {
            return;
        };
        rt().block_on(async {
            let path = Path::new(&path);
            let store = Store::open(path, &crash_key(path)).await.unwrap();
            // Continue after the last step on disk, as a restarted writer would
            // (a step may have been committed but killed before it was reported).
            let start = store
                .latest()
                .await
                .unwrap()
                .iter()
                .map(|r| r.value.number().unwrap() as i64 + 1)
                .max()
                .unwrap_or(0);
            let mut out = std::io::stdout();
            for step in start.. {
                let batch: Vec<Reading> = (0..SERIES)
                    .map(|s| {
                        reading(
                            &format!("bed-{s}"),
                            Mdc::ECG_HEART_RATE,
                            Value::Number(step as f64),
                            t(step),
                        )
                    })
                    .collect();
                store.append(&batch).await.unwrap();
                writeln!(out, "committed {step}").unwrap();
                out.flush().unwrap();
                if step % 50 == 0 {
                    store.compact(t(step)).await.unwrap();
                    writeln!(out, "compacted {step}").unwrap();
                }
            }
        });
    }

    #[test]
    fn kill_9_loses_nothing_committed() {
        if std::env::var("VIGIL_CRASH_CHILD_DB").is_ok() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crash.db");
        vigil_store::create_key_file(&path.with_file_name("crash.key")).unwrap();
        let mut committed: i64 = -1;
        let mut rng = 0x2545F4914F6CDD1Du64;
        for _round in 0..20 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "crash::child", "--nocapture", "--test-threads", "1"])
                .env("VIGIL_CRASH_CHILD_DB", &path)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            let (first_tx, first_rx) = std::sync::mpsc::channel();
            let reader = std::thread::spawn(move || {
                let mut last = None;
                for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(n) = line.strip_prefix("committed ") {
                        if last.is_none() {
                            let _ = first_tx.send(());
                        }
                        last = Some(n.parse::<i64>().unwrap());
                    }
                }
                last
            });
            // Kill at a random point of the writing, not of the start-up (a
            // loaded machine can take longer than the delay just to start).
            let _ = first_rx.recv_timeout(std::time::Duration::from_secs(60));
            std::thread::sleep(std::time::Duration::from_millis(150 + rng % 400));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            if let Some(last) = reader.join().unwrap() {
                committed = committed.max(last);
            }
        }
        assert!(committed > 100, "the writer barely ran: {committed}");
        rt().block_on(async {
            let store = Store::open(&path, &crash_key(&path)).await.unwrap();
            let (_, failures) = store.verify().await.unwrap();
            assert!(failures.is_empty(), "{failures:?}");
            let all = store
                .query_range(None, t(-1), t(committed + 10_000))
                .await
                .unwrap();
            for s in 0..SERIES {
                let bed = format!("bed-{s}");
                let mut steps: Vec<i64> = all
                    .iter()
                    .filter(|r| r.bed == bed)
                    .map(|r| r.value.number().unwrap() as i64)
                    .collect();
                steps.sort();
                steps.dedup();
                let expected: Vec<i64> = (0..=committed).collect();
                assert!(
                    steps.len() as i64 > committed,
                    "{bed}: {} of {} committed steps",
                    steps.len(),
                    committed + 1
                );
                assert_eq!(
                    &steps[..expected.len()],
                    &expected[..],
                    "{bed}: a committed reading was lost"
                );
            }
        });
    }
}
mod salvage;

/// Disk full (SQLITE_FULL) rolls the whole transaction back inside SQLite;
/// a trigger's RAISE(ROLLBACK) does the same, RAISE(ABORT) fails only the
/// statement. After either, once the fault is gone, the next writes succeed:
/// no connection is left inside a transaction ("begin_with at non-zero
/// transaction depth"). Covers chunks, the outbox and the alarm log.
#[test]
fn a_failed_write_is_rolled_back_and_the_next_write_succeeds() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        let store = Store::open(&path, &key()).await.unwrap();
        store.set_outbox_enabled(true);
        // Admitted readings: only those are queued for upload.
        let admitted = |at| Reading {
            admission: Some(AdmissionId("adm-1".into())),
            ..reading("bed-1", Mdc::ECG_HEART_RATE, Value::Number(60.0), at)
        };
        let mut s = 0;
        let mut written = 0usize;
        for table in ["chunks", "outbox", "alarm_log"] {
            for raise in ["ROLLBACK", "ABORT"] {
                sql(
                    &path,
                    &format!(
                        "CREATE TRIGGER inject_fault BEFORE INSERT ON {table} \
                         BEGIN SELECT RAISE({raise}, 'injected fault'); END"
                    ),
                )
                .await;
                // More failures than the pool has connections.
                for _ in 0..6 {
                    s += 1;
                    let batch = [admitted(t(s))];
                    let alarm = [("bed-1".to_string(), t(s), serde_json::json!({"n": s}))];
                    let r = if table == "alarm_log" {
                        store.log_alarms(&alarm).await
                    } else {
                        store.append(&batch).await
                    };
                    assert!(r.is_err(), "{table} {raise}: the fault did not fail the write");
                }
                sql(&path, "DROP TRIGGER inject_fault").await;
                for _ in 0..6 {
                    s += 1;
                    let batch = [admitted(t(s))];
                    store
                        .append(&batch)
                        .await
                        .unwrap_or_else(|e| panic!("{table} {raise}: write after the fault: {e}"));
                    written += 1;
                    let alarm = [("bed-1".to_string(), t(s), serde_json::json!({"n": s}))];
                    store
                        .log_alarms(&alarm)
                        .await
                        .unwrap_or_else(|e| panic!("{table} {raise}: alarm log after the fault: {e}"));
                }
            }
        }
        // Exactly the successful writes are stored: nothing from a failed one.
        let stored = store.query_range(None, t(0), t(s + 1)).await.unwrap();
        assert_eq!(stored.len(), written);
        store.close().await;
    });
}

/// A write abandoned part-way (its future dropped: a cancelled task, a
/// timeout around it) at any point is rolled back whole, and the next write
/// succeeds: the store keeps one write connection, and an abandoned
/// transaction must never stay open on it. Each abandoned batch is stored
/// entirely or not at all, and the store verifies clean afterwards.
#[test]
fn a_write_abandoned_at_any_point_is_rolled_back_and_writing_goes_on() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("v.db"), &key()).await.unwrap();
        // 16 beds x 6 parameters: the writer's flush shape (one ingest frame).
        let codes = [150456, 149530, 150021, 150022, 150344, 151562].map(Mdc);
        let batch = |s: i64| -> Vec<Reading> {
            (0..16)
                .flat_map(|b| {
                    codes.map(|c| reading(&format!("bed-{b}"), c, Value::Number(60.0 + s as f64), t(s)))
                })
                .collect()
        };
        let (mut kept, mut s) = (0usize, 0i64);
        let (mut none, mut all) = (0, 0);
        for polls in 0..40 {
            s += 1;
            let abandoned = batch(s);
            {
                let write = store.append(&abandoned);
                tokio::pin!(write);
                let mut n = 0;
                let done = std::future::poll_fn(|cx| {
                    use std::task::Poll;
                    match std::future::Future::poll(write.as_mut(), cx) {
                        Poll::Ready(r) => Poll::Ready(Some(r)),
                        // Let the connection's thread run between polls.
                        Poll::Pending if n < polls => {
                            n += 1;
                            cx.waker().wake_by_ref();
                            Poll::Pending
                        }
                        Poll::Pending => Poll::Ready(None),
                    }
                })
                .await;
                if let Some(r) = done {
                    r.unwrap();
                }
            }
            s += 1;
            let next = batch(s);
            store
                .append(&next)
                .await
                .unwrap_or_else(|e| panic!("the write after one abandoned after {polls} polls: {e}"));
            kept += next.len();
            // Settled once the next write is done (a COMMIT already on its
            // way when the write was abandoned still lands, as with any
            // connection): all of the abandoned batch, or none of it.
            let here = store
                .query_range(None, t(s - 1), t(s - 1))
                .await
                .unwrap_or_else(|e| panic!("reading after {polls} polls: {e}"))
                .len();
            assert!(
                here == 0 || here == abandoned.len(),
                "after {polls} polls: {here} of {} readings stored",
                abandoned.len()
            );
            kept += here;
            if here == 0 {
                none += 1
            } else {
                all += 1
            }
        }
        // Both happened: the test did abandon writes before their commit.
        assert!(
            none > 0 && all > 0,
            "abandoned writes: {none} left nothing, {all} landed whole"
        );
        assert_eq!(store.query_range(None, t(0), t(s + 1)).await.unwrap().len(), kept);
        let (_, problems) = store.verify().await.unwrap();
        assert!(problems.is_empty(), "verify after abandoned writes: {problems:?}");
        store.close().await;
    });
}

/// An append touching more series than its first round trip reads digests
/// for (200) keeps every series' digest right: 250 series of chunks, twice,
/// then `verify` counts every chunk and finds nothing wrong.
#[test]
fn an_append_of_many_series_keeps_every_digest() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("v.db"), &key()).await.unwrap();
        let batch = |from: i64| -> Vec<Reading> {
            (0..250)
                .flat_map(|b| {
                    (from..from + 8).map(move |s| {
                        reading(
                            &format!("bed-{b}"),
                            Mdc::ECG_HEART_RATE,
                            Value::Number(60.0),
                            t(s),
                        )
                    })
                })
                .collect()
        };
        store.append(&batch(0)).await.unwrap();
        store.append(&batch(100)).await.unwrap();
        let (_, problems) = store.verify().await.unwrap();
        assert!(problems.is_empty(), "verify: {problems:?}");
        let st = store.chunk_stats().await.unwrap();
        assert_eq!((st.series, st.chunks, st.readings), (250, 500, 4000));
        store.close().await;
    });
}

/// A really full filesystem (a small tmpfs; needs root to mount, skipped
/// with a printed reason otherwise): writes fail with SQLite's "database or
/// disk is full" while it is full and succeed again once space returns.
#[test]
fn a_full_disk_fails_writes_and_recording_resumes_when_space_returns() {
    struct Mount(std::path::PathBuf);
    impl Drop for Mount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(dir.path())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        println!("skipped: cannot mount a small tmpfs here (not root, or no permission)");
        return;
    }
    let _mount = Mount(dir.path().to_path_buf());
    rt().block_on(async {
        let path = dir.path().join("v.db");
        let store = Store::open(&path, &key()).await.unwrap();
        // Fill the filesystem.
        {
            use std::io::Write;
            let mut f = std::fs::File::create(dir.path().join("filler")).unwrap();
            let block = vec![0x5au8; 4096];
            while f.write_all(&block).is_ok() {}
            let _ = f.sync_all();
        }
        let batch = |s: i64| -> Vec<Reading> {
            (0..200)
                .map(|i| {
                    reading(
                        "bed-1",
                        Mdc::ECG_HEART_RATE,
                        Value::Number(60.0 + i as f64),
                        t(s) + Duration::milliseconds(i),
                    )
                })
                .collect()
        };
        let mut s = 0;
        let mut written = 0usize;
        let mut failed = None;
        for _ in 0..50 {
            s += 1;
            match store.append(&batch(s)).await {
                Ok(()) => written += 200,
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            }
        }
        let failed = failed.expect("writes never failed on a full filesystem");
        assert!(failed.contains("full"), "{failed}");
        // Still full: still failing, more times than the pool has connections.
        for _ in 0..6 {
            s += 1;
            assert!(store.append(&batch(s)).await.is_err());
        }
        // Space returns: writing resumes.
        std::fs::remove_file(dir.path().join("filler")).unwrap();
        for _ in 0..6 {
            s += 1;
            store
                .append(&batch(s))
                .await
                .unwrap_or_else(|e| panic!("write after space returned: {e}"));
            written += 200;
        }
        let stored = store.query_range(None, t(0), t(s + 1)).await.unwrap();
        assert_eq!(stored.len(), written);
        store.close().await;
    });
}
mod integrity;
mod keys;
mod users;
mod spill;
mod audit;
mod clear;
mod by_admission;
mod backup;
mod news2;
mod frames;
mod bulk;

/// A trend screen reading while a long write is under way: the reads open new
/// pool connections, and a new connection must not need the write lock (it
/// did while every connect set `auto_vacuum`, which writes the header; the
/// read then waited out the 5 s busy timeout and failed "database is locked").
/// Here another connection holds the write lock all along.
#[test]
fn reads_on_new_connections_go_on_while_a_write_holds_the_lock() {
    rt().block_on(async {
        use sqlx::Connection;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        let store = Store::open(&path, &key()).await.unwrap();
        let batch: Vec<Reading> = (0..60)
            .map(|s| reading("bed-1", Mdc(149530), Value::Number(60.0 + s as f64), t(s)))
            .collect();
        store.append(&batch).await.unwrap();

        let mut writer = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("BEGIN IMMEDIATE").execute(&mut writer).await.unwrap();
        // More reads at once than the pool has connections open yet.
        let read = || store.query_range(Some("bed-1"), t(0), t(60));
        let (a, b, c, d) = tokio::join!(read(), read(), read(), read());
        for r in [a, b, c, d] {
            let n = r.expect("a read while a write holds the lock").len();
            assert_eq!(n, batch.len());
        }
        sqlx::query("ROLLBACK").execute(&mut writer).await.unwrap();
        writer.close().await.unwrap();

        // The file still reclaims space after retention and compaction.
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum").fetch_one(&mut c).await.unwrap();
        assert_eq!(mode, 2, "auto_vacuum = incremental on a new store");
        c.close().await.unwrap();
        store.close().await;
    });
}
