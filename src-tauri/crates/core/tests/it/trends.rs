//! Issue 15: a bed's trends through the guarded entry point the screen uses —
//! raw samples for a short range, summaries for a long one, one time axis for
//! several parameters, clinicians only.

use super::config;
use std::time::Duration;
use vigil_core::auth::{self, AuthError, Role};
use vigil_core::trends::TrendRequest;
use vigil_core::{CoreError, Vigil};
use vigil_devices::sim::Scenario;
use vigil_model::Mdc;

const PW: &str = "a long enough password";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinician_sees_raw_samples_zoomed_in_and_summaries_over_a_week() {
    let dir = tempfile::tempdir().unwrap();
    // 60x: 8 s of real time is 8 simulated minutes of 1 Hz data.
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 60.0)).await.unwrap();
    auth::add_user(v.store(), "cleo", Role::Clinician, PW).await.unwrap();
    auth::add_user(v.store(), "nina", Role::Nurse, PW).await.unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let now = chrono::DateTime::from_timestamp_millis(v.snapshot().now_ms).unwrap();
    let codes = vec![Mdc::ECG_HEART_RATE.0, Mdc::PULS_OXIM_SAT_O2.0];
    let req = |from: chrono::DateTime<chrono::Utc>, points| TrendRequest {
        bed: "bed-1".into(),
        admission: None,
        codes: codes.clone(),
        from,
        to: now,
        points,
    };

    // A nurse may not (trends are a clinician's review).
    v.sign_in("nina", PW).await.unwrap();
    assert!(matches!(
        v.user_trend(&req(now - chrono::Duration::hours(1), 500)).await,
        Err(CoreError::Auth(AuthError::Forbidden { .. }))
    ));
    v.sign_out();
    v.sign_in("cleo", PW).await.unwrap();

    // One hour: every stored sample, HR and SpO2 on one time axis.
    let hour = v.user_trend(&req(now - chrono::Duration::hours(1), 2000)).await.unwrap();
    assert_eq!(hour.series.len(), 2);
    let hr = &hour.series[0];
    assert!(hr.raw);
    assert_eq!(hr.code, Mdc::ECG_HEART_RATE.0);
    assert_eq!(hr.unit, "/min");
    let values: Vec<f64> = hr.value.iter().flatten().copied().collect();
    assert!(values.len() > 200, "{} HR samples in 8 simulated minutes", values.len());
    assert!(values.iter().all(|v| (40.0..=140.0).contains(v)), "implausible HR");
    let stored = v
        .store()
        .query_series(&vigil_store::SeriesQuery {
            bed: "bed-1".into(),
            code: Mdc::ECG_HEART_RATE,
            from: now - chrono::Duration::hours(1),
            to: now,
        })
        .await
        .unwrap();
    assert_eq!(values.len(), stored.len(), "zoomed in, every sample is there");
    assert_eq!(hour.series[1].unit, "%");

    // Seven days: summaries, at most the points asked for, means inside the raw range.
    let week = v.user_trend(&req(now - chrono::Duration::days(7), 300)).await.unwrap();
    let hr7 = &week.series[0];
    assert!(!hr7.raw);
    assert!(hr7.t.len() <= 300 + 10);
    let means: Vec<f64> = hr7.value.iter().flatten().copied().collect();
    assert!(!means.is_empty());
    let (lo, hi) = values.iter().fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    assert!(means.iter().all(|m| *m >= lo - 1e-9 && *m <= hi + 1e-9));
    assert_eq!(hr7.unit, "/min");
    for (mn, mx) in hr7.min.iter().zip(&hr7.max).filter_map(|(a, b)| Some(((*a)?, (*b)?))) {
        assert!(mn <= mx);
    }

    // Bad ranges are refused readably.
    let err = v.user_trend(&req(now + chrono::Duration::hours(1), 100)).await.unwrap_err();
    assert!(err.to_string().contains("trend range"), "{err}");
    v.shutdown().await;
}
