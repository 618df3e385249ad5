//! Issue 10, item 8: a restart — even a crash with no shutdown — never
//! silently reverts a bed's clinical settings; what cannot be restored is
//! said at the bed.

use crate::config;
use std::time::Duration;
use vigil_alarms::{AlarmKind, Consciousness, TechnicalKind};
use vigil_core::alarming::News2Entry;
use vigil_core::{AdmitRequest, Vigil};
use vigil_devices::sim::Scenario;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn hr_limit(v: &Vigil) -> vigil_alarms::ParameterLimit {
    v.snapshot()
        .alarms
        .into_iter()
        .find(|b| b.bed == "bed-1")
        .unwrap()
        .limits
        .into_iter()
        .find(|l| l.parameter == vigil_alarms::Parameter::HeartRate)
        .unwrap()
}

#[test]
fn limits_news2_entries_and_history_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    // First run: admit, set a limit and NEWS2 entries, then crash: the
    // runtime is dropped with every task in flight and no shutdown.
    let rt = runtime();
    let before = rt.block_on(async {
        let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
            .await
            .unwrap();
        v.admit(AdmitRequest {
            bed: "bed-1".into(),
            display_name: "Restart Test".into(),
            mrn: "R-1".into(),
            date_of_birth: "1950-02-03".into(),
            category: "adult".into(),
        })
        .await
        .unwrap();
        v.set_limit("bed-1", "heart_rate", Some(30.0), Some(50.0), "RN-A")
            .await
            .unwrap();
        v.enter_news2("bed-1", News2Entry::Consciousness(Consciousness::Voice), "RN-A")
            .await
            .unwrap();
        v.enter_news2(
            "bed-1",
            News2Entry::AirOrOxygen(vigil_alarms::AirOrOxygen::Oxygen),
            "RN-A",
        )
        .await
        .unwrap();
        v.news2_history("bed-1")
    });
    assert!(before.len() >= 2);
    rt.shutdown_background();

    let rt = runtime();
    rt.block_on(async {
        let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
            .await
            .unwrap();
        assert_eq!(
            v.info().store_recovered_from,
            None,
            "a crash is not damage: the store must not be moved aside"
        );
        let l = hr_limit(&v);
        assert!(
            l.patient_specific,
            "the patient's limit was reverted by the restart"
        );
        assert_eq!((l.limit.low, l.limit.high), (Some(30.0), Some(50.0)));
        // The NEWS2 history goes on from before the crash.
        let after = v.news2_history("bed-1");
        assert_eq!(after[..before.len()], before[..], "history lost");
        // The nurse's entries still count (consciousness V scores 3).
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let score = v
            .snapshot()
            .news2
            .into_iter()
            .find(|n| n.bed == "bed-1")
            .expect("scored after the restart")
            .score;
        let c = score
            .parameters
            .iter()
            .find(|p| p.parameter == vigil_alarms::News2Param::Consciousness)
            .unwrap();
        assert_eq!(c.score.points(), 3, "{score:?}");
        // Discharge clears them for the next patient, also across a restart.
        v.discharge("bed-1").await.unwrap();
        v.shutdown().await;
        let restarted = chrono::Utc::now();
        let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
            .await
            .unwrap();
        assert!(!hr_limit(&v).patient_specific);
        // (Scored again since the restart, nothing from the last patient.)
        assert!(v.news2_history("bed-1").iter().all(|s| s.at >= restarted));
        v.shutdown().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_that_cannot_be_restored_are_said_at_the_bed() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
        .await
        .unwrap();
    v.shutdown().await;
    // While Vigil is down, bed-2's saved settings are damaged (they no longer parse).
    let store = vigil_store::Store::open(
        &dir.path().join("vigil.db"),
        &vigil_store::KeySource::passphrase("core-test-passphrase", "test"),
    )
    .await
    .unwrap();
    store
        .save_bed_settings(
            "bed-2",
            None,
            chrono::Utc::now(),
            &serde_json::json!({ "alarms": 7 }),
        )
        .await
        .unwrap();
    store.close().await;
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
        .await
        .unwrap();
    let bed2 = v
        .snapshot()
        .alarms
        .into_iter()
        .find(|b| b.bed == "bed-2")
        .unwrap();
    let a = bed2
        .active
        .iter()
        .find(|a| {
            matches!(
                a.kind,
                AlarmKind::Technical {
                    kind: TechnicalKind::SettingsNotRestored,
                    ..
                }
            )
        })
        .expect("no alarm at the bed whose settings were lost");
    assert!(a.latched, "shown until a nurse acknowledges it");
    assert!(a.message.contains("not restored"), "{}", a.message);
    let bed1 = v
        .snapshot()
        .alarms
        .into_iter()
        .find(|b| b.bed == "bed-1")
        .unwrap();
    assert!(
        bed1.active.is_empty(),
        "only the bed concerned: {:?}",
        bed1.active
    );
    // It is in the alarm log, and acknowledging it ends it for good.
    let id = a.id;
    v.acknowledge("bed-2", &[id], "RN-B").await.unwrap();
    v.shutdown().await;
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
        .await
        .unwrap();
    let bed2 = v
        .snapshot()
        .alarms
        .into_iter()
        .find(|b| b.bed == "bed-2")
        .unwrap();
    assert!(bed2.active.is_empty(), "{:?}", bed2.active);
    let log = v.alarm_log(Some("bed-2"), 1).await.unwrap();
    assert!(log
        .iter()
        .any(|r| r.event["kind"]["kind"] == "settings_not_restored"));
    v.shutdown().await;
}

/// The bed id of a settings row is sealed (schema 11): a row that no longer
/// opens at all is still named by its bed (its keyed tag matches one of the
/// ward's beds), so the alarm lands there and nowhere else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_that_no_longer_open_are_said_at_their_bed() {
    let dir = tempfile::tempdir().unwrap();
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
        .await
        .unwrap();
    v.shutdown().await;
    let db = dir.path().join("vigil.db");
    let store = vigil_store::Store::open(
        &db,
        &vigil_store::KeySource::passphrase("core-test-passphrase", "test"),
    )
    .await
    .unwrap();
    // A save time no other row has, to find bed-2's row without its bed id.
    let marker = chrono::DateTime::from_timestamp(1_000_000_000, 0).unwrap();
    store
        .save_bed_settings("bed-2", None, marker, &serde_json::json!({}))
        .await
        .unwrap();
    store.close().await;
    {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let n = sqlx::query("UPDATE bed_settings SET sealed = zeroblob(length(sealed)) WHERE saved_at = ?")
            .bind(marker.timestamp_micros())
            .execute(&mut c)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(n, 1);
        c.close().await.unwrap();
    }
    let v = Vigil::start(config(dir.path(), Scenario::Stable, 1.0))
        .await
        .unwrap();
    let not_restored = |bed: &str| {
        v.snapshot()
            .alarms
            .into_iter()
            .find(|b| b.bed == bed)
            .unwrap()
            .active
            .iter()
            .any(|a| {
                matches!(
                    a.kind,
                    AlarmKind::Technical {
                        kind: TechnicalKind::SettingsNotRestored,
                        ..
                    }
                )
            })
    };
    assert!(not_restored("bed-2"), "no alarm at the bed whose settings no longer open");
    assert!(!not_restored("bed-1"), "only the bed concerned");
    v.shutdown().await;
}
