//! Writes the schema-10 fixture used by the upgrade test of schema 11
//! (`tests/fixtures/v10.db`): a store as Vigil wrote it before bed ids,
//! device addresses, series descriptors and admission times were sealed.
//! Kept so the fixture can be understood; it is not re-run: the committed
//! file is what the older code wrote (commit b602d79).
//!
//! Synthetic data only. The passphrase is a published test fixture, not a
//! secret.
use chrono::{Duration, TimeZone, Utc};
use vigil_model::{AdmissionId, Mdc, Reading, Source, Value};
use vigil_store::{KeySource, Patient, PatientCategory, Store};

/// NOT A SECRET: the fixture's published test passphrase.
pub const FIXTURE_PASSPHRASE: &str = "fixture-passphrase-v10";

fn reading(
    bed: &str,
    adm: Option<&AdmissionId>,
    device: &str,
    code: Mdc,
    unit: &str,
    v: f64,
    t: chrono::DateTime<Utc>,
) -> Reading {
    Reading {
        bed: bed.into(),
        admission: adm.cloned(),
        device: device.into(),
        code,
        value: Value::Number(v),
        unit: unit.into(),
        device_time: None,
        received: t,
        source: Source::Real,
        status: Default::default(),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let path = std::env::args().nth(1).expect("usage: make_fixture_v10 <path>");
    let key = KeySource::passphrase(FIXTURE_PASSPHRASE, "fixture");
    let store = Store::open_with_counter_dir(std::path::Path::new(&path), &key, None)
        .await
        .unwrap();
    store.set_outbox_enabled(true);
    let t0 = Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap();
    let patient = |name: &str, mrn: &str| Patient {
        display_name: name.into(),
        mrn: mrn.into(),
        date_of_birth: chrono::NaiveDate::from_ymd_opt(1950, 3, 4).unwrap(),
        category: PatientCategory::Adult,
    };
    // bed-FIX-1: one discharged admission, then a current one.
    let old = store
        .admit(
            "bed-FIX-1",
            patient("Fixture Old", "FIX-OLD"),
            t0 - Duration::days(2),
        )
        .await
        .unwrap();
    store
        .discharge("bed-FIX-1", t0 - Duration::days(1))
        .await
        .unwrap();
    let adm = store
        .admit("bed-FIX-1", patient("Fixture Current", "FIX-CUR"), t0)
        .await
        .unwrap();
    store.link_patient(&adm.id, "Patient/fixture-1").await.unwrap();
    store
        .assign_device("C0:FF:EE:00:00:01", "bed-FIX-1", "pulse-oximeter")
        .await
        .unwrap();
    store
        .set_device_info("C0:FF:EE:00:00:01", &serde_json::json!({"model": "FixtureOx"}))
        .await
        .unwrap();
    store
        .assign_device("C0:FF:EE:00:00:02", "bed-FIX-2", "thermometer")
        .await
        .unwrap();
    // 3 batches x (60 SpO2 at bed-FIX-1, 1 temperature at empty bed-FIX-2).
    for b in 0..3i64 {
        let mut rs = Vec::new();
        for s in 0..60i64 {
            let t = t0 + Duration::seconds(b * 60 + s);
            rs.push(reading(
                "bed-FIX-1",
                Some(&adm.id),
                "C0:FF:EE:00:00:01",
                Mdc(150456),
                "%",
                90.0 + (s % 8) as f64,
                t,
            ));
        }
        rs.push(reading(
            "bed-FIX-2",
            None,
            "C0:FF:EE:00:00:02",
            Mdc(150364),
            "Cel",
            36.5,
            t0 + Duration::seconds(b * 60),
        ));
        store.append(&rs).await.unwrap();
    }
    // An old reading of the discharged admission.
    store
        .append(&[reading(
            "bed-FIX-1",
            Some(&old.id),
            "C0:FF:EE:00:00:01",
            Mdc(150456),
            "%",
            97.0,
            t0 - Duration::hours(36),
        )])
        .await
        .unwrap();
    store
        .log_alarms(&[
            (
                "bed-FIX-1".into(),
                t0 + Duration::seconds(10),
                serde_json::json!({"fixture": "start"}),
            ),
            (
                "bed-FIX-1".into(),
                t0 + Duration::seconds(20),
                serde_json::json!({"fixture": "end"}),
            ),
            (
                "bed-FIX-2".into(),
                t0 + Duration::seconds(30),
                serde_json::json!({"fixture": "other"}),
            ),
        ])
        .await
        .unwrap();
    store
        .save_bed_settings(
            "bed-FIX-1",
            Some(&adm.id),
            t0 + Duration::seconds(5),
            &serde_json::json!({"limits": "fixture"}),
        )
        .await
        .unwrap();
    store
        .save_bed_settings(
            "bed-FIX-2",
            None,
            t0 + Duration::seconds(6),
            &serde_json::json!({"limits": "empty bed"}),
        )
        .await
        .unwrap();
    let first = store.outbox_peek(1).await.unwrap();
    store
        .dead_letter(&first[0].readings[0], "fixture refusal")
        .await
        .unwrap();
    store.close().await;
}
