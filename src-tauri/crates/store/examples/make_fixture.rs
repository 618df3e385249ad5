//! Writes the schema-1 fixture used by the migration test
//! (`tests/fixtures/v1.db`). Kept so the fixture can be understood; it is
//! not re-run: the committed file is what an older Vigil wrote.
use chrono::{TimeZone, Utc};
use vigil_model::{Mdc, Reading, Source, Special, Value};
use vigil_store::{KeySource, Patient, PatientCategory, Store};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let path = std::env::args().nth(1).expect("usage: make_fixture <path>");
    let key = KeySource::passphrase("fixture-passphrase", "fixture");
    let store = Store::open(std::path::Path::new(&path), &key).await.unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap();
    let adm = store
        .admit(
            "bed-1",
            Patient {
                display_name: "Fixture Patient".into(),
                mrn: "FIX-0001".into(),
                date_of_birth: chrono::NaiveDate::from_ymd_opt(1944, 6, 6).unwrap(),
                category: PatientCategory::Adult,
            },
            t0,
        )
        .await
        .unwrap();
    for batch in 0..10 {
        let mut rs = Vec::new();
        for s in 0..60 {
            let t = t0 + chrono::Duration::seconds(batch * 60 + s);
            rs.push(Reading {
                bed: "bed-1".into(),
                admission: Some(adm.id.clone()),
                device: "sim-bed-1-hr".into(),
                code: Mdc::ECG_HEART_RATE,
                value: if s == 30 {
                    Value::Special(Special::NaN)
                } else {
                    Value::Number(60.0 + (s % 10) as f64)
                },
                unit: "/min".into(),
                device_time: None,
                received: t,
                source: Source::Simulated,
                status: Default::default(),
            });
        }
        store.append(&rs).await.unwrap();
    }
    store.close().await;
}
