//! Issue 15: a clinician reviews a past admission — the list of stays, its
//! trends and flowsheet opened by admission id, its report — through the
//! guarded entry points the admissions screen uses. The next patient at the
//! same bed never shows in the past stay, names are shown only to a role
//! that may see them and each showing is in the audit trail.

use super::config;
use std::time::Duration;
use vigil_core::auth::{self, AuthError, Role};
use vigil_core::review::FlowsheetRequest;
use vigil_core::trends::TrendRequest;
use vigil_core::{AdmitRequest, CoreError, Vigil};
use vigil_devices::sim::Scenario;
use vigil_model::Mdc;
use vigil_store::{KeySource, Outcome, Store};

const PW: &str = "a long enough password";

fn admit(name: &str, mrn: &str) -> AdmitRequest {
    AdmitRequest {
        bed: "bed-1".into(),
        display_name: name.into(),
        mrn: mrn.into(),
        date_of_birth: "1950-05-06".into(),
        category: "adult".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_past_stay_opens_by_its_id_without_the_next_patients_data() {
    let dir = tempfile::tempdir().unwrap();
    // 60x: a second of real time is a simulated minute of 1 Hz data.
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 60.0)).await.unwrap();
    auth::add_user(v.store(), "cleo", Role::Clinician, PW).await.unwrap();
    auth::add_user(v.store(), "nina", Role::Nurse, PW).await.unwrap();
    let first = v.admit(admit("Pastora Firstbed", "MRN-PAST-1")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    v.discharge("bed-1").await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = v.admit(admit("Nextor Samebed", "MRN-PAST-2")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = chrono::DateTime::from_timestamp_millis(v.snapshot().now_ms).unwrap();

    // Reviewing stays is a clinician's job, not a nurse's.
    v.sign_in("nina", PW).await.unwrap();
    assert!(matches!(v.user_admissions().await, Err(CoreError::Auth(AuthError::Forbidden { .. }))));
    v.sign_out();

    v.sign_in("cleo", PW).await.unwrap();
    let list = v.user_admissions().await.unwrap();
    let ids: Vec<&str> = list.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, [second.id.as_str(), first.id.as_str()], "newest first");
    let past = &list[1];
    assert_eq!(past.bed, "bed-1");
    assert_eq!(past.display_name.as_deref(), Some("Pastora Firstbed"), "a clinician may see names");
    let discharged = past.discharged_at.expect("the first stay ended");
    assert!(list[0].discharged_at.is_none(), "the second is current");

    // Its trend, asked for well beyond the stay: only the stay's samples come back.
    let hr = Mdc::ECG_HEART_RATE;
    let trend = v
        .user_trend(&TrendRequest {
            bed: "bed-1".into(),
            admission: Some(past.id.clone()),
            codes: vec![hr.0],
            from: past.admitted_at - chrono::Duration::minutes(30),
            to: now,
            points: 2000,
        })
        .await
        .unwrap();
    let s = &trend.series[0];
    assert!(s.raw, "a stay of minutes comes sample by sample");
    let times: Vec<f64> = s.t.iter().zip(&s.value).filter(|(_, v)| v.is_some()).map(|(t, _)| *t).collect();
    let stored = v
        .store()
        .query_series(&vigil_store::SeriesQuery { bed: "bed-1".into(), code: hr, from: past.admitted_at, to: discharged })
        .await
        .unwrap();
    assert!(stored.len() > 100, "{} HR samples in the stay", stored.len());
    assert_eq!(times.len(), stored.len(), "every sample of the stay, none of the next patient's");
    let (a, d) = (past.admitted_at.timestamp_millis() as f64, discharged.timestamp_millis() as f64);
    assert!(times.iter().all(|t| *t >= a && *t <= d), "a sample outside the stay");

    // Its flowsheet: hourly columns over the stay, HR medians, blank never 0.
    let fs = v
        .user_flowsheet(
            &FlowsheetRequest { bed: "bed-1".into(), admission: Some(past.id.clone()), from: past.admitted_at - chrono::Duration::hours(3), to: now },
            chrono_tz::Europe::London,
            vigil_alarms::SitePreset::standard(),
        )
        .await
        .unwrap();
    assert_eq!((fs.from, fs.to), (past.admitted_at, discharged), "kept inside the stay");
    assert!(!fs.columns.is_empty() && fs.columns.len() <= 2, "{} columns for a few minutes", fs.columns.len());
    let hr_row = fs.rows.iter().find(|r| r.label == "HR" && r.kind == "vital").expect("an HR row");
    let medians: Vec<f64> = hr_row.cells.iter().filter_map(|c| c.value).collect();
    assert!(!medians.is_empty() && medians.iter().all(|m| (40.0..=140.0).contains(m)), "{medians:?}");
    assert_eq!(fs.news2.len(), fs.columns.len(), "a NEWS2 cell per hour");
    assert!(fs.rows.iter().any(|r| r.kind == "alarms"));

    // A nurse enters a respiration rate in the current stay (21–24 /min scores 2,
    // RCP NEWS2 2017 chart 1); the sim's devices measure no RR, so it counts.
    v.enter_news2("bed-1", vigil_core::alarming::News2Entry::RespirationRate(22.0), "nina").await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let now = chrono::DateTime::from_timestamp_millis(v.snapshot().now_ms).unwrap();

    // The current stay's flowsheet carries NEWS2 (scored every 30 s) with its parts as
    // structured data from the store's NEWS2 log, the same cells as the PDF's.
    let current = v
        .user_flowsheet(
            &FlowsheetRequest { bed: "bed-1".into(), admission: Some(second.id.clone()), from: now - chrono::Duration::hours(2), to: now },
            chrono_tz::UTC,
            vigil_alarms::SitePreset::standard(),
        )
        .await
        .unwrap();
    let scored: Vec<_> = current.news2.iter().filter_map(|h| h.score.as_ref()).collect();
    assert!(!scored.is_empty(), "no NEWS2 in the current stay's flowsheet");
    let labels: Vec<&str> = scored[0].parts.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(labels, ["RR", "SpO2", "air", "BP", "HR", "ACVPU", "T"], "the chart's order");
    assert!(scored.iter().any(|s| s.parts[4].points.is_some()), "the HR sub-score of a scored hour is blank");
    // The entry is in its hour, and the hour's shown score (the highest) has RR entered, 2 points.
    let entries: Vec<_> = current.news2.iter().flat_map(|h| &h.entries).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!((entries[0].text.as_str(), entries[0].by.as_str()), ("RR 22 /min", "nina"));
    let rr = scored.iter().map(|s| &s.parts[0]).find(|p| p.entered).expect("no hour shows the entered RR");
    assert_eq!((rr.points, rr.stale), (Some(2), false));

    // Its report names the past patient, whoever is at the bed now.
    let r = v
        .user_admission_report(&past.id, past.admitted_at, now, chrono_tz::UTC, vigil_alarms::SitePreset::standard())
        .await
        .unwrap();
    assert_eq!(r.header.patient.as_ref().map(|p| p.name.as_str()), Some("Pastora Firstbed"));
    assert_eq!(r.to, discharged);
    v.shutdown().await;

    // Each name shown, and the report, are recorded against the past stay.
    let store = Store::open(&dir.path().join("vigil.db"), &KeySource::passphrase("core-test-passphrase", "test")).await.unwrap();
    let trail = store.audit_entries(None, None).await.unwrap();
    store.close().await;
    let has = |action: &str, admission: &str| {
        trail.iter().any(|e| {
            e.record.actor == "cleo"
                && e.record.action == action
                && e.record.outcome == Outcome::Success
                && e.record.admission.as_deref() == Some(admission)
        })
    };
    assert!(has("view_patient", &first.id) && has("view_patient", &second.id), "names shown, not recorded");
    assert!(has("export", &first.id), "the report is recorded against the past stay");
    assert!(has("trends", &first.id), "the review is recorded against the past stay");
}
