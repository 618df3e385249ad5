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

/// The oximeter at bed 1 (a Bluetooth one, named by the id the app gives it)
/// is swapped for another half an hour in: a stay replayed through the real
/// driver, pipeline and writer into a real store file.
pub(crate) const OXI_A: &str = "ble-C4:7C:8D:6A:11:02";
pub(crate) const OXI_B: &str = "ble-C4:7C:8D:6A:11:07";
/// Script time (s) of the new oximeter's first reading.
pub(crate) const SWAP_S: i64 = 1830;

pub(crate) async fn oximeter_swapped(dir: &std::path::Path) -> (Vigil, chrono::DateTime<chrono::Utc>) {
    use std::sync::Arc;
    use vigil_core::{replay, DeviceMode};
    let start = replay::default_start();
    let clock = Arc::new(vigil_model::ManualClock::new(start));
    let mut cfg = config(dir, Scenario::Stable, 1.0);
    cfg.devices = DeviceMode::Replay;
    cfg.clock = clock.clone();
    // PLX Continuous (0x2A5F): SpO2 97 % then 92 % with the new probe, pulse 72 /min.
    let (before, after) = ("00 61 00 48 00", "00 5C 00 48 00");
    let mut s = replay::HEADER.join(",") + "\n";
    s += &format!("0,bed-1,{OXI_A},oximeter,connect,,\n");
    for t in 1..=1800 {
        s += &format!("{},bed-1,{OXI_A},oximeter,notify,2A5F,{before}\n", t * 1000);
    }
    s += &format!("1801000,bed-1,{OXI_A},oximeter,disconnect,,\n");
    s += &format!("{},bed-1,{OXI_B},oximeter,connect,,\n", SWAP_S * 1000);
    for t in SWAP_S..=3600 {
        s += &format!("{},bed-1,{OXI_B},oximeter,notify,2A5F,{after}\n", t * 1000);
    }
    let beds: Vec<String> = (1..=4).map(|i| format!("bed-{i}")).collect();
    let script = replay::parse(&s, &beds).unwrap();
    let v = Vigil::start(cfg).await.unwrap();
    let feed = v.take_replay_feed().unwrap();
    replay::run(&v, feed, &clock, &script, None).await.unwrap();
    // Everything replayed is in the store before anyone reads it.
    let st = v.stats();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while st.get(&st.stored) < st.get(&st.readings) {
        assert!(tokio::time::Instant::now() < deadline, "writer never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (v, start)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trends_mark_the_time_a_parameter_comes_from_another_device_zoomed_in_and_over_a_week() {
    let dir = tempfile::tempdir().unwrap();
    let (v, start) = oximeter_swapped(dir.path()).await;
    auth::add_user(v.store(), "cleo", Role::Clinician, PW).await.unwrap();
    v.sign_in("cleo", PW).await.unwrap();
    let end = start + chrono::Duration::hours(1) + chrono::Duration::seconds(1);
    let swap = start + chrono::Duration::seconds(SWAP_S);
    let req = |from, codes: Vec<u32>| TrendRequest {
        bed: "bed-1".into(),
        admission: None,
        codes,
        from,
        to: end,
        points: 500,
    };
    let changes = |view: &vigil_core::trends::TrendView| -> Vec<(f64, String)> {
        view.marks
            .iter()
            .filter(|m| m.kind == "device_change")
            .map(|m| (m.t, m.label.clone()))
            .collect()
    };
    let expected = vec![(swap.timestamp_millis() as f64, format!("SpO2: device changed to {OXI_B}"))];

    // One hour: raw samples, the mark at the new probe's first reading.
    let hour = v.user_trend(&req(start, vec![Mdc::PULS_OXIM_SAT_O2.0])).await.unwrap();
    assert!(hour.series[0].raw);
    assert_eq!(changes(&hour), expected);

    // Seven days: from the summaries (compacted as the app's upkeep does),
    // the same mark at the same time, and the unit without reading samples.
    v.store().compact(end + chrono::Duration::hours(1)).await.unwrap();
    let t = std::time::Instant::now();
    let week = v.user_trend(&req(end - chrono::Duration::days(7), vec![Mdc::PULS_OXIM_SAT_O2.0])).await.unwrap();
    eprintln!("7-day SpO2 trend with device marks: {:?}", t.elapsed());
    assert!(!week.series[0].raw);
    assert_eq!(week.series[0].unit, "%");
    assert_eq!(changes(&week), expected);

    // Each parameter the probe measures is marked with its own name; a range
    // after the swap (one device only) has no mark.
    let both = v
        .user_trend(&req(start, vec![Mdc::PULS_OXIM_SAT_O2.0, Mdc::PULS_OXIM_PULS_RATE.0]))
        .await
        .unwrap();
    let labels: Vec<String> = changes(&both).into_iter().map(|c| c.1).collect();
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert!(labels.contains(&format!("PR (SpO2): device changed to {OXI_B}")));
    let after = v.user_trend(&req(swap + chrono::Duration::minutes(1), vec![Mdc::PULS_OXIM_SAT_O2.0])).await.unwrap();
    assert!(changes(&after).is_empty());
    v.shutdown().await;
}
