//! Issue 15: NEWS2 scores and nurse entries are kept in the store, so a past
//! stay's NEWS2 is in its report and on the trend screen after a restart,
//! and never mixed with the next patient's at the same bed.

use crate::config;
use std::time::Duration;
use vigil_alarms::Consciousness;
use vigil_core::alarming::News2Entry;
use vigil_core::report::{self, Request, Scope};
use vigil_core::trends::TrendRequest;
use vigil_core::{AdmitRequest, Vigil};
use vigil_devices::sim::Scenario;
use vigil_model::Mdc;

fn admit(bed: &str, name: &str) -> AdmitRequest {
    AdmitRequest {
        bed: bed.into(),
        display_name: name.into(),
        mrn: format!("MRN-{name}"),
        date_of_birth: "1950-02-03".into(),
        category: "adult".into(),
    }
}

fn request(scope: Scope, now: chrono::DateTime<chrono::Utc>) -> Request {
    Request {
        scope,
        now,
        tz: chrono_tz::UTC,
        ward: "Ward".into(),
        generated_by: "cleo".into(),
        preset: vigil_alarms::SitePreset::standard(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discharged_patients_news2_and_nurse_entry_survive_a_restart_in_report_and_trend_marks() {
    let dir = tempfile::tempdir().unwrap();
    // 60x: a second of real time is a simulated minute, two scores.
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 60.0)).await.unwrap();
    let a = v.admit(admit("bed-1", "Alpha")).await.unwrap().id;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The core's own clock around the entry (the screen snapshot lags by up to
    // 250 ms of wall time: 15 s at 60x).
    let before = v.clock().now();
    v.enter_news2("bed-1", News2Entry::Consciousness(Consciousness::Voice), "rn-ann")
        .await
        .unwrap();
    let after = v.clock().now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    v.discharge("bed-1").await.unwrap();
    let b = v.admit(admit("bed-1", "Bravo")).await.unwrap().id;
    tokio::time::sleep(Duration::from_secs(2)).await;
    v.shutdown().await;

    // Restarted: the store is all there is.
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 60.0)).await.unwrap();
    // (Each run's scaled clock starts at the wall clock: B's stay lies in
    // this run's future. Its report ends an hour after its admission.)
    let now = v.store().admission(&b).await.unwrap().admitted_at + chrono::Duration::hours(1);
    let stay_a = v.store().admission(&a).await.unwrap();
    let (a_from, a_to) = (stay_a.admitted_at, stay_a.discharged_at.unwrap());

    let ra = report::build(v.store(), &request(Scope::Admission(a.clone()), now)).await.unwrap().report;
    let entries: Vec<_> = ra.news2.iter().filter(|r| r.risk == "entry").collect();
    assert_eq!(entries.len(), 1, "{:?}", ra.news2);
    assert_eq!(entries[0].parts, "entered: ACVPU voice (by rn-ann)");
    assert!(entries[0].at >= before && entries[0].at <= after, "entered between {before} and {after}: {}", entries[0].at);
    let scores: Vec<_> = ra.news2.iter().filter(|r| r.risk != "entry").collect();
    assert!(scores.len() >= 2, "a score before and after the entry: {:?}", ra.news2);
    assert!(scores.iter().any(|r| r.parts.contains("ACVPU 3 (entered)")), "{scores:?}");
    assert!(scores.iter().any(|r| r.parts.contains("HR 0") || r.parts.contains("HR 1")), "measured pulse: {scores:?}");
    assert!(ra.news2.iter().all(|r| r.at >= a_from && r.at <= a_to), "only A's stay");

    // B's report: B's own scores, not A's entry (it was cleared at discharge).
    let rb = report::build(v.store(), &request(Scope::Admission(b.clone()), now)).await.unwrap().report;
    assert!(!rb.news2.is_empty());
    assert!(rb.news2.iter().all(|r| r.risk != "entry" && !r.parts.contains("ACVPU 3")), "{:?}", rb.news2);
    assert!(rb.news2.iter().all(|r| r.at >= a_to));

    // The trend of bed-1 over both stays marks the entry and A's score changes.
    let view = v
        .trend(&TrendRequest {
            bed: "bed-1".into(),
            admission: None,
            codes: vec![Mdc::ECG_HEART_RATE.0],
            from: a_from - chrono::Duration::minutes(1),
            to: now,
            points: 200,
        })
        .await
        .unwrap();
    let entry_marks: Vec<_> = view.marks.iter().filter(|m| m.kind == "news2_entry").collect();
    assert_eq!(entry_marks.len(), 1, "{:?}", view.marks);
    assert_eq!(entry_marks[0].label, "Entered: ACVPU voice");
    let news2_marks: Vec<_> = view.marks.iter().filter(|m| m.kind == "news2").collect();
    assert!(
        news2_marks.iter().any(|m| m.t >= a_from.timestamp_millis() as f64 && m.t <= a_to.timestamp_millis() as f64),
        "{:?}",
        view.marks
    );
    v.shutdown().await;
}
