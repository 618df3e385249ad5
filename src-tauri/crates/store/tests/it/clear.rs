//! Issue 13 §6: what a copy of `vigil.db` shows without the key. Bed ids,
//! device addresses, which vitals a bed has and admission times are sealed
//! (keyed tags in their place), in new stores and in stores upgraded from
//! schema 10.

use super::*;
use vigil_store::KeySource;

/// Every file of the store's directory (database, WAL, shm), concatenated.
fn raw_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            bytes.extend(std::fs::read(p).unwrap());
        }
    }
    bytes
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

const BED: &str = "bed-ZULU-7";
const ADDRESS: &str = "F0:0D:CA:FE:71:9A";
const DEVICE_LABEL: &str = "sim-ZULU-7-nibp";
/// A code whose SQLite integer encoding (4 bytes) would not appear by chance.
const ODD_CODE: u32 = 0x7A5C_3E1F;

#[test]
fn beds_devices_vitals_and_admission_times_are_not_in_the_file() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        let counters = tempfile::tempdir().unwrap();
        let store = Store::open_with_counter_dir(&path, &key(), Some(counters.path()))
            .await
            .unwrap();
        store.set_outbox_enabled(true);
        // Times no chunk or log row carries: only the admission has them.
        let admitted_first = t(-7200) + Duration::microseconds(123_457);
        let discharged_first = t(-3600) + Duration::microseconds(654_321);
        let admitted = t(-1800) + Duration::microseconds(987_653);
        store.admit(BED, patient(), admitted_first).await.unwrap();
        store.discharge(BED, discharged_first).await.unwrap();
        let adm = store.admit(BED, patient(), admitted).await.unwrap();
        store.assign_device(ADDRESS, BED, "blood-pressure").await.unwrap();
        store
            .set_device_info(ADDRESS, &serde_json::json!({"model": "ZuluCuff"}))
            .await
            .unwrap();
        let mut batch = Vec::new();
        for (i, (code, unit)) in [
            (Mdc(150020), "mm[Hg]"),
            (Mdc(150021), "mm[Hg]"),
            (Mdc(ODD_CODE), "mm[Hg]"),
            (Mdc::ECG_HEART_RATE, "/min"),
        ]
        .into_iter()
        .enumerate()
        {
            for s in 0..30 {
                let mut r = reading(BED, code, Value::Number(80.0 + i as f64), t(s));
                r.admission = Some(adm.id.clone());
                r.device = if i == 3 {
                    DEVICE_LABEL.into()
                } else {
                    ADDRESS.into()
                };
                r.unit = unit.into();
                batch.push(r);
            }
        }
        store.append(&batch).await.unwrap();
        store
            .log_alarms(&[(BED.into(), t(5), serde_json::json!({"kind": "limit"}))])
            .await
            .unwrap();
        store
            .save_bed_settings(BED, Some(&adm.id), t(6), &serde_json::json!({"limits": {}}))
            .await
            .unwrap();

        // Everything still reads back by bed, code and address.
        let q = SeriesQuery {
            bed: BED.into(),
            code: Mdc(ODD_CODE),
            from: t(0),
            to: t(60),
        };
        assert_eq!(store.query_series(&q).await.unwrap().len(), 30);
        assert_eq!(
            store.query_range(Some(BED), t(0), t(60)).await.unwrap().len(),
            120
        );
        assert_eq!(
            store.trend(BED, Mdc(150020), t(0), t(60), 6).await.unwrap()[0].count,
            10
        );
        assert_eq!(store.latest().await.unwrap().len(), 4);
        let cur = store.current_admissions().await.unwrap();
        assert_eq!((cur[0].bed.as_str(), cur[0].admitted_at), (BED, admitted));
        let devices = store.devices().await.unwrap();
        assert_eq!(
            (devices[0].address.as_str(), devices[0].bed.as_str()),
            (ADDRESS, BED)
        );
        assert_eq!(devices[0].info, Some(serde_json::json!({"model": "ZuluCuff"})));
        assert_eq!(store.alarm_log(Some(BED), t(0), t(60)).await.unwrap().len(), 1);
        assert_eq!(store.bed_settings().await.unwrap()[0].bed, BED);
        let (_, failures) = store.verify().await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        store.close().await;
        // `close` promises a file that stands alone: every connection closed,
        // the write-ahead log folded in and gone before it returns.
        assert!(!dir.path().join("vigil.db-wal").exists(), "the WAL outlived close()");

        let bytes = raw_bytes(dir.path());
        for needle in [
            BED,
            "ZULU",
            ADDRESS,
            "F0:0D:CA:FE",
            DEVICE_LABEL,
            "mm[Hg]",
            "150020",
            "150021",
            "blood-pressure",
            "ZuluCuff",
        ] {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "found {needle:?} in the clear"
            );
        }
        // SQLite stores integers big-endian in the fewest bytes that hold them.
        assert!(
            !contains(&bytes, &ODD_CODE.to_be_bytes()),
            "found the MDC code in the clear"
        );
        for at in [admitted_first, discharged_first, admitted] {
            let us = at.timestamp_micros().to_be_bytes();
            assert!(
                !contains(&bytes, &us[2..]),
                "found an admission time in the clear"
            );
        }

        // The lookup key survives a key rotation: tags still find the rows.
        let new_key = KeySource::passphrase("a different passphrase for the rotation", "test");
        vigil_store::rotate_key(&path, &key(), &new_key).await.unwrap();
        let store = Store::open_with_counter_dir(&path, &new_key, Some(counters.path()))
            .await
            .unwrap();
        assert_eq!(store.query_series(&q).await.unwrap().len(), 30);
        assert_eq!(store.current_admissions().await.unwrap()[0].bed, BED);
        assert_eq!(store.devices().await.unwrap()[0].address, ADDRESS);
        assert_eq!(store.alarm_log(Some(BED), t(0), t(60)).await.unwrap().len(), 1);
        store.discharge(BED, t(100)).await.unwrap();
        let (_, failures) = store.verify().await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        store.close().await;
    });
}

/// NOT A SECRET: the published test passphrase of `tests/fixtures/v10.db`
/// (see `examples/make_fixture_v10.rs`).
const FIXTURE_PASSPHRASE: &str = "fixture-passphrase-v10";

#[test]
fn a_schema_10_store_opens_with_all_its_data_and_without_its_labels() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v10.db"),
            &path,
        )
        .unwrap();
        let counters = tempfile::tempdir().unwrap();
        let key = KeySource::passphrase(FIXTURE_PASSPHRASE, "fixture");
        let store = Store::open_with_counter_dir(&path, &key, Some(counters.path()))
            .await
            .unwrap();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap();

        let cur = store.current_admissions().await.unwrap();
        assert_eq!(cur.len(), 1);
        assert_eq!(cur[0].bed, "bed-FIX-1");
        assert_eq!(cur[0].patient.display_name, "Fixture Current");
        assert_eq!(cur[0].admitted_at, t0);
        assert_eq!(
            store.patient_link(&cur[0].id).await.unwrap().as_deref(),
            Some("Patient/fixture-1")
        );

        let spo2 = store
            .query_series(&SeriesQuery {
                bed: "bed-FIX-1".into(),
                code: Mdc(150456),
                from: t0 - Duration::days(3),
                to: t0 + Duration::hours(1),
            })
            .await
            .unwrap();
        assert_eq!(spo2.len(), 181);
        let old = spo2
            .iter()
            .find(|r| r.admission != Some(cur[0].id.clone()))
            .unwrap();
        let old = store.admission(&old.admission.as_ref().unwrap().0).await.unwrap();
        assert_eq!(old.patient.display_name, "Fixture Old");
        assert_eq!(old.discharged_at, Some(t0 - Duration::days(1)));
        let temps = store
            .query_range(Some("bed-FIX-2"), t0, t0 + Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(temps.len(), 3);
        assert!(temps
            .iter()
            .all(|r| r.device == "C0:FF:EE:00:00:02" && r.unit == "Cel"));

        let devices = store.devices().await.unwrap();
        assert_eq!(devices.len(), 2);
        assert_eq!(
            (
                devices[0].address.as_str(),
                devices[0].bed.as_str(),
                devices[0].kind.as_str()
            ),
            ("C0:FF:EE:00:00:01", "bed-FIX-1", "pulse-oximeter")
        );
        assert_eq!(devices[0].info, Some(serde_json::json!({"model": "FixtureOx"})));
        assert_eq!(devices[1].bed, "bed-FIX-2");

        let log = store.alarm_log(None, t0, t0 + Duration::hours(1)).await.unwrap();
        assert_eq!(log.len(), 3);
        assert_eq!(log[0].event, serde_json::json!({"fixture": "start"}));
        assert_eq!(
            store
                .alarm_log(Some("bed-FIX-2"), t0, t0 + Duration::hours(1))
                .await
                .unwrap()
                .len(),
            1
        );

        let outbox = store.outbox_peek(100).await.unwrap();
        assert_eq!(outbox.len(), 4);
        assert_eq!(outbox.iter().map(|e| e.readings.len()).sum::<usize>(), 181);
        assert_eq!(store.dead_letters().await.unwrap().len(), 1);

        let settings = store.bed_settings().await.unwrap();
        assert_eq!(settings.len(), 2);
        assert_eq!(settings[0].bed, "bed-FIX-1");
        assert_eq!(settings[0].admission.as_ref(), Some(&cur[0].id));
        assert_eq!(
            settings[0].settings.as_ref().unwrap(),
            &serde_json::json!({"limits": "fixture"})
        );
        assert_eq!(settings[1].bed, "bed-FIX-2");

        // New writes go on as before, and the whole store verifies.
        store
            .discharge("bed-FIX-1", t0 + Duration::hours(2))
            .await
            .unwrap();
        assert!(store.current_admissions().await.unwrap().is_empty());
        let (chunks, failures) = store.verify().await.unwrap();
        assert!(chunks > 0);
        assert!(failures.is_empty(), "{failures:?}");
        store.close().await;

        // The old plaintext columns are gone from the file, not only from the schema.
        let bytes = raw_bytes(dir.path());
        for needle in ["bed-FIX", "C0:FF:EE", "pulse-oximeter"] {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "found {needle:?} in the clear after the upgrade"
            );
        }

        // The table swap left the children's references naming the new
        // tables, and every reference resolves.
        {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            let schema: Vec<String> = sqlx::query_scalar(
                "SELECT sql FROM sqlite_master WHERE name IN ('chunks', 'fhir_links') ORDER BY name",
            )
            .fetch_all(&mut c)
            .await
            .unwrap();
            assert!(schema[0].contains("REFERENCES series(id)"), "{}", schema[0]);
            assert!(schema[1].contains("REFERENCES admissions(id)"), "{}", schema[1]);
            let dangling: Vec<String> = sqlx::query_scalar("SELECT \"table\" FROM pragma_foreign_key_check")
                .fetch_all(&mut c)
                .await
                .unwrap();
            assert!(dangling.is_empty(), "{dangling:?}");
            let old: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM sqlite_master WHERE name LIKE '%_v10' OR name LIKE '%_next'",
            )
            .fetch_one(&mut c)
            .await
            .unwrap();
            assert_eq!(old, 0);
            c.close().await.unwrap();
        }

        // And it opens again (the upgrade ran once).
        let store = Store::open_with_counter_dir(&path, &key, Some(counters.path()))
            .await
            .unwrap();
        assert_eq!(store.devices().await.unwrap().len(), 2);
        let (_, failures) = store.verify().await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        store.close().await;
    });
}

/// `vigil store salvage` of a file written before schema 11 (a store
/// damaged before this version could upgrade it): its plaintext layout is
/// read and everything lands in the sealed one.
#[test]
fn salvage_reads_a_schema_10_file() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.db");
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v10.db"),
            &old,
        )
        .unwrap();
        let path = dir.path().join("vigil.db");
        let counters = tempfile::tempdir().unwrap();
        let store = Store::open_with_counter_dir(&path, &key(), Some(counters.path()))
            .await
            .unwrap();
        let report = store
            .salvage_from(&old, &KeySource::passphrase(FIXTURE_PASSPHRASE, "fixture"))
            .await
            .unwrap();
        assert_eq!(report.readings_recovered, 184, "{report:?}");
        assert_eq!(report.alarm_records_recovered, 3, "{report:?}");
        assert_eq!(report.admissions_recovered, 2, "{report:?}");
        assert!(
            report.lost_rows.is_empty() && report.lost_series.is_empty(),
            "{report:?}"
        );
        let t0 = Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap();
        let cur = store.current_admissions().await.unwrap();
        assert_eq!(
            (cur.len(), cur[0].bed.as_str(), cur[0].admitted_at),
            (1, "bed-FIX-1", t0)
        );
        let q = SeriesQuery {
            bed: "bed-FIX-1".into(),
            code: Mdc(150456),
            from: t0 - Duration::days(3),
            to: t0 + Duration::hours(1),
        };
        assert_eq!(store.query_series(&q).await.unwrap().len(), 181);
        assert_eq!(
            store
                .alarm_log(Some("bed-FIX-2"), t0, t0 + Duration::hours(1))
                .await
                .unwrap()
                .len(),
            1
        );
        let (_, failures) = store.verify().await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        store.close().await;
    });
}

/// A schema-10 row edited in the file before the upgrade stays reported
/// after it: the upgrade re-seals rows but never turns an edited one into a
/// valid one.
#[test]
fn the_upgrade_never_launders_an_edited_row() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v10.db"),
            &path,
        )
        .unwrap();
        sql(&path, "UPDATE alarm_log SET at = at - 1000000 WHERE id = 1").await;
        sql(
            &path,
            "UPDATE devices SET bed = 'bed-FIX-2' WHERE address = 'C0:FF:EE:00:00:01'",
        )
        .await;
        let counters = tempfile::tempdir().unwrap();
        let key = KeySource::passphrase(FIXTURE_PASSPHRASE, "fixture");
        let store = Store::open_with_counter_dir(&path, &key, Some(counters.path()))
            .await
            .unwrap();
        let (_, failures) = store.verify().await.unwrap();
        let f: Vec<String> = failures.iter().map(|e| e.to_string()).collect();
        assert!(
            f.iter()
                .any(|e| e.starts_with("alarm_log record 1 failed its integrity check")),
            "{f:?}"
        );
        assert!(f.iter().any(|e| e.starts_with("devices record ")), "{f:?}");
        let devices = store.devices().await.unwrap();
        assert_eq!(devices.len(), 1, "the edited device is assigned nowhere");
        assert_eq!(devices[0].address, "C0:FF:EE:00:00:02");
        store.close().await;
    });
}

/// Two processes opening a schema-10 store at once (the gateway starting
/// while `vigil store verify` runs): one moves the rows, the other finds
/// them moved.
#[test]
fn two_opens_at_once_upgrade_once() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vigil.db");
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v10.db"),
            &path,
        )
        .unwrap();
        let counters = tempfile::tempdir().unwrap();
        let key = KeySource::passphrase(FIXTURE_PASSPHRASE, "fixture");
        let (a, b) = tokio::join!(
            Store::open_with_counter_dir(&path, &key, Some(counters.path())),
            Store::open_with_counter_dir(&path, &key, Some(counters.path())),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.devices().await.unwrap().len(), 2);
        assert_eq!(b.current_admissions().await.unwrap()[0].bed, "bed-FIX-1");
        let (_, failures) = b.verify().await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        a.close().await;
        b.close().await;
    });
}
