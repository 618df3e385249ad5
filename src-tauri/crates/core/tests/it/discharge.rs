//! An empty bed never shows the discharged patient's values: not right
//! after the discharge, not after a restart (the bug: a store holding a past
//! stay of bed 1 started with Bed 1 at HR 79 and SpO2 98, "STALE 248 d").
//! A bed with a patient admitted shows that stay's values again after a
//! restart. Real data path: script lines through the replay driver, the
//! pipeline and the store, then the core started again on the same file.

use crate::config;
use chrono::{DateTime, Utc};
use std::path::Path;
use std::sync::Arc;
use vigil_core::view::ReadingView;
use vigil_core::{replay, DeviceMode, Vigil};
use vigil_devices::sim::Scenario;
use vigil_model::{ManualClock, Mdc};

const SPO2: u32 = Mdc::PULS_OXIM_SAT_O2.0;
const PULSE: u32 = Mdc::PULS_OXIM_PULS_RATE.0;

async fn start(dir: &Path, at: DateTime<Utc>) -> (Vigil, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(at));
    let mut cfg = config(dir, Scenario::Stable, 1.0);
    cfg.devices = DeviceMode::Replay;
    cfg.clock = clock.clone();
    (Vigil::start(cfg).await.unwrap(), clock)
}

/// Replays `lines` (after the header) starting at `at`, then shuts down.
async fn replay_at(dir: &Path, at: DateTime<Utc>, lines: &str) {
    let (v, clock) = start(dir, at).await;
    let beds: Vec<String> = (1..=4).map(|i| format!("bed-{i}")).collect();
    let script = replay::parse(&format!("{}\n{lines}", replay::HEADER.join(",")), &beds).unwrap();
    let feed = v.take_replay_feed().unwrap();
    replay::run(&v, feed, &clock, &script, None).await.unwrap();
    v.shutdown().await;
}

/// The values the screen shows at the bed labelled `label` ("Bed 1").
fn shown(v: &Vigil, label: &str) -> Vec<ReadingView> {
    let snap = v.snapshot();
    let bed = snap
        .beds
        .iter()
        .find(|b| b.label == label)
        .unwrap_or_else(|| panic!("no {label}"))
        .bed
        .clone();
    snap.latest.into_iter().filter(|r| r.bed == bed).collect()
}

fn value(shown: &[ReadingView], mdc: u32) -> Option<f64> {
    shown.iter().find(|r| r.mdc == mdc).and_then(|r| r.value)
}

/// PLX Continuous (0x2A5F): SpO2 and pulse rate, SFLOAT, exponent 0.
fn plx(spo2: u8, pulse: u8) -> String {
    format!("00 {spo2:02X} 00 {pulse:02X} 00")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discharged_patients_values_never_show_at_the_empty_bed_and_a_current_stays_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = replay::default_start();

    // Stay 1 at Bed 1: SpO2 98, pulse 79; then discharged. Watched live.
    {
        let (v, clock) = start(dir.path(), t0).await;
        let beds: Vec<String> = (1..=4).map(|i| format!("bed-{i}")).collect();
        let lines = format!(
            "0,bed-1,oxi-1,oximeter,connect,,\n0,bed-1,,,admit,,adult\n\
             1000,bed-1,oxi-1,oximeter,notify,2A5F,{p}\n2000,bed-1,oxi-1,oximeter,notify,2A5F,{p}\n",
            p = plx(98, 79)
        );
        let script = replay::parse(&format!("{}\n{lines}", replay::HEADER.join(",")), &beds).unwrap();
        let feed = v.take_replay_feed().unwrap();
        replay::run(&v, feed, &clock, &script, None).await.unwrap();
        let during = shown(&v, "Bed 1");
        assert_eq!(
            (value(&during, SPO2), value(&during, PULSE)),
            (Some(98.0), Some(79.0))
        );
        assert!(
            during.iter().all(|r| r.admission.is_some()),
            "measured in the stay"
        );
        v.discharge("bed-1").await.unwrap();
        assert!(
            shown(&v, "Bed 1").is_empty(),
            "the leaving patient's values stay on screen"
        );
        v.shutdown().await;
    }

    // A restart soon after, and one 248 days later: the empty bed shows nothing.
    for later in [chrono::Duration::seconds(30), chrono::Duration::days(248)] {
        let (v, _) = start(dir.path(), t0 + later).await;
        assert!(v
            .snapshot()
            .beds
            .iter()
            .find(|b| b.label == "Bed 1")
            .unwrap()
            .admission
            .is_none());
        let s = shown(&v, "Bed 1");
        assert!(
            s.is_empty(),
            "after {later}: the discharged patient's values at the empty bed: {s:?}"
        );
        v.shutdown().await;
    }

    // Stay 2 at Bed 1: SpO2 93, pulse 88, still admitted at the restart.
    let t1 = t0 + chrono::Duration::days(249);
    replay_at(
        dir.path(),
        t1,
        &format!(
            "0,bed-1,oxi-2,oximeter,connect,,\n0,bed-1,,,admit,,adult\n1000,bed-1,oxi-2,oximeter,notify,2A5F,{}\n",
            plx(93, 88)
        ),
    )
    .await;
    let (v, _) = start(dir.path(), t1 + chrono::Duration::minutes(5)).await;
    let admission = v
        .snapshot()
        .beds
        .iter()
        .find(|b| b.label == "Bed 1")
        .unwrap()
        .admission
        .clone();
    let admission = admission.expect("stay 2 is current").id;
    let s = shown(&v, "Bed 1");
    assert_eq!(
        (value(&s, SPO2), value(&s, PULSE)),
        (Some(93.0), Some(88.0)),
        "{s:?}"
    );
    assert!(
        s.iter()
            .all(|r| r.admission.as_deref() == Some(admission.as_str())),
        "{s:?}"
    );
    v.shutdown().await;
}

/// Values measured at an empty bed (a sensor on someone not yet admitted)
/// come back after a quick restart, never from long ago, and never when
/// they were measured before a stay that ended since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_beds_own_recent_values_come_back_after_a_restart_old_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = replay::default_start();
    replay_at(
        dir.path(),
        t0,
        &format!(
            "0,bed-2,oxi-3,oximeter,connect,,\n0,bed-3,oxi-4,oximeter,connect,,\n\
             1000,bed-2,oxi-3,oximeter,notify,2A5F,{}\n1000,bed-3,oxi-4,oximeter,notify,2A5F,{}\n\
             2000,bed-3,,,admit,,adult\n3000,bed-3,oxi-4,oximeter,notify,2A5F,{}\n4000,bed-3,,,discharge,,\n",
            plx(95, 70),
            plx(96, 71),
            plx(97, 72)
        ),
    )
    .await;

    let (v, _) = start(dir.path(), t0 + chrono::Duration::minutes(2)).await;
    let s = shown(&v, "Bed 2");
    assert_eq!(
        value(&s, SPO2),
        Some(95.0),
        "a quick restart keeps the empty bed's own values: {s:?}"
    );
    let s = shown(&v, "Bed 3");
    assert!(s.is_empty(), "measured before a stay that has ended: {s:?}");
    v.shutdown().await;

    let (v, _) = start(dir.path(), t0 + chrono::Duration::hours(1)).await;
    assert!(
        shown(&v, "Bed 2").is_empty(),
        "an hour-old value of nobody at the empty bed"
    );
    v.shutdown().await;
}
