//! The central station's broker wards (site.json `central.mqtt`): what `vigil central`'s
//! page gets from `CentralMirror::view`, against a real Mosquitto and a real ward.

use std::time::Duration;

use crate::broker::Mosquitto;
use crate::*;
use vigil_core::central::{BrokerLiveness, BrokerWardsView, CentralMqtt};
use vigil_mqtt::central::CentralMirror;
use vigil_mqtt::Broker;

fn section(url: &str, wards: Option<&[&str]>) -> CentralMqtt {
    serde_json::from_value(serde_json::json!({
        "broker": url, "site": SITE, "wards": wards,
    }))
    .unwrap()
}

fn ward_of<'a>(v: &'a BrokerWardsView, name: &str) -> &'a vigil_core::central::BrokerWardView {
    v.wards.iter().find(|w| w.ward == name).unwrap()
}

/// Issue 17: "the central station can read from the broker instead of connecting to each
/// bed" — and a ward it cannot see is never shown as a quiet one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_central_station_reads_every_bed_of_a_ward_from_the_broker_and_a_lost_ward_is_lost() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let v = ward(dir.path(), 10.0).await;
    let p = publisher(&v, Broker::new(broker.url()));
    // A configured ward that publishes nothing: there from the start, as lost.
    let c = CentralMirror::start_with(
        &section(&broker.url(), Some(&[WARD, "ward-9"])),
        Some(Duration::from_secs(5)),
    )
    .unwrap();
    until(
        "every bed of the ward with values, online",
        Duration::from_secs(15),
        || {
            let view = c.view();
            let w = ward_of(&view, WARD);
            w.liveness == BrokerLiveness::Online
                && w.snapshot.beds.len() == 4
                && w.snapshot.latest.iter().any(|r| r.bed == "bed-4")
        },
    )
    .await;
    let view = c.view();
    assert!(view.connected && view.error.is_none());
    assert_eq!(
        view.wards.iter().map(|w| w.ward.as_str()).collect::<Vec<_>>(),
        [WARD, "ward-9"],
        "configured order"
    );
    let unknown = ward_of(&view, "ward-9");
    assert_eq!(unknown.liveness, BrokerLiveness::Unknown);
    assert!(unknown.snapshot.beds.is_empty() && unknown.heard_ms.is_none());
    let heard = ward_of(&view, WARD).heard_ms.expect("heard live");
    let now = chrono::Utc::now().timestamp_millis();
    assert!((now - 15_000..=now).contains(&heard), "heard {heard}, now {now}");
    // The page's types, as JSON: liveness in snake_case (ui/src/central/broker.ts).
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(json["wards"][1]["liveness"], "unknown");

    // Every ward of the site when no list is set.
    let all = CentralMirror::start(&section(&broker.url(), None)).unwrap();
    until("the site's ward heard of", Duration::from_secs(10), || {
        all.view()
            .wards
            .iter()
            .map(|w| w.ward.clone())
            .collect::<Vec<_>>()
            == [WARD]
    })
    .await;

    // The gateway dies (no DISCONNECT): the broker's last will makes the ward offline, its
    // last values still there to grey.
    p.kill();
    let t0 = std::time::Instant::now();
    until("offline by the last will", Duration::from_secs(10), || {
        ward_of(&c.view(), WARD).liveness == BrokerLiveness::Offline
    })
    .await;
    eprintln!(
        "last will seen by the mirror {} ms after the kill",
        t0.elapsed().as_millis()
    );
    assert!(!ward_of(&c.view(), WARD).snapshot.latest.is_empty());

    // The broker gone: every ward, configured or heard of, is no_broker.
    drop(broker);
    until("no broker", Duration::from_secs(15), || {
        let view = c.view();
        !view.connected && view.wards.iter().all(|w| w.liveness == BrokerLiveness::NoBroker)
    })
    .await;
    assert_eq!(all.view().wards[0].liveness, BrokerLiveness::NoBroker);
    all.stop().await;
    c.stop().await;
    v.shutdown().await;
}

/// A password variable the section names but that is not set: no mirror, and why (the
/// page shows it), never a silent connection without the password.
#[tokio::test]
async fn a_missing_password_variable_is_said_not_skipped() {
    let mut cfg = section("mqtts://broker.example.org", Some(&[WARD]));
    cfg.password_env = Some("VIGIL_MQTT_CENTRAL_TEST_UNSET".into());
    let e = CentralMirror::start(&cfg).err().expect("refused");
    let view = CentralMirror::failed(&cfg, &e);
    assert!(
        view.error
            .as_deref()
            .unwrap()
            .contains("VIGIL_MQTT_CENTRAL_TEST_UNSET"),
        "{:?}",
        view.error
    );
    assert_eq!(view.wards[0].liveness, BrokerLiveness::NoBroker);
    // Bad input from the file is refused by the same check as when site.json is read.
    let e = CentralMirror::start(&section("mqtt://10.0.0.1", None))
        .err()
        .expect("refused");
    assert!(e.to_string().contains("loopback"), "{e}");
}
