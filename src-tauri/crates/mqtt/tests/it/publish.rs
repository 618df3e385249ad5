//! What a central station needs from the broker: every bed's latest values for a late
//! subscriber, alarm changes delivered at least once and applied once, correct state after
//! a broker restart that lost everything, and a ward that vanished reported lost.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::broker::{publish, sub, Mosquitto};
use crate::*;
use vigil_mqtt::{Broker, Liveness};

/// (bed, mdc) of every latest value the ward itself shows.
fn shown(v: &Vigil) -> BTreeSet<(String, u32)> {
    v.snapshot()
        .latest
        .iter()
        .map(|r| (r.bed.clone(), r.mdc))
        .collect()
}

fn mirrored(m: &vigil_mqtt::Mirror) -> BTreeSet<(String, u32)> {
    m.ward(WARD)
        .map(|w| w.snapshot.latest.iter().map(|r| (r.bed.clone(), r.mdc)).collect())
        .unwrap_or_default()
}

fn paused_by(m: &vigil_mqtt::Mirror, bed: &str) -> Option<String> {
    let w = m.ward(WARD)?;
    let a = w.snapshot.alarms.iter().find(|a| a.bed == bed)?;
    match &a.audio {
        vigil_alarms::AudioState::Paused { by, .. } => Some(by.clone()),
        vigil_alarms::AudioState::Normal => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_gets_every_beds_retained_values() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let v = ward(dir.path(), 10.0).await;
    let p = publisher(&v, Broker::new(broker.url()));
    until("values at every bed", Duration::from_secs(20), || {
        let s = shown(&v);
        (1..=4).all(|b| s.iter().any(|(bed, _)| *bed == format!("bed-{b}")))
    })
    .await;
    until("published", Duration::from_secs(10), || {
        p.stats().get(&p.stats().published) > 50
    })
    .await;

    // Subscribed only now: the broker hands over what was retained.
    let m = mirror(Broker::new(broker.url()));
    until(
        "the mirror has every value the ward shows",
        Duration::from_secs(10),
        || shown(&v).is_subset(&mirrored(&m)),
    )
    .await;
    let w = m.ward(WARD).unwrap();
    assert_eq!(w.liveness, Liveness::Online);
    assert_eq!(w.snapshot.beds.len(), 4, "every bed");
    assert_eq!(
        w.snapshot.beds.iter().map(|b| b.bed.as_str()).collect::<Vec<_>>(),
        ["bed-1", "bed-2", "bed-3", "bed-4"]
    );
    assert_eq!(w.snapshot.alarms.len(), 4, "every bed's alarm state");
    assert!(!w.snapshot.devices.is_empty());
    // The values are the ward's own, with their units and source label.
    let here = v.snapshot();
    for r in &w.snapshot.latest {
        let own = here
            .latest
            .iter()
            .find(|x| x.bed == r.bed && x.mdc == r.mdc)
            .unwrap();
        assert_eq!((&r.unit, r.source), (&own.unit, own.source));
    }

    // A plain MQTT client sees the retained readings too, with their times.
    let lines = sub(
        broker.port,
        &format!("vigil/{SITE}/{WARD}/+/reading/+"),
        8,
        "%r %t %p",
        5,
    );
    assert_eq!(lines.len(), 8, "{lines:?}");
    for l in &lines {
        let mut it = l.splitn(3, ' ');
        assert_eq!(it.next(), Some("1"), "delivered as retained: {l}");
        let payload: serde_json::Value = serde_json::from_str(it.nth(1).unwrap()).unwrap();
        assert!(payload["t"].as_i64().unwrap() > 0 && payload["reading"]["mdc"].is_u64());
    }
    m.stop().await;
    p.stop().await;
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_change_arrives_with_qos_1_and_duplicates_or_older_versions_change_nothing() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let v = ward(dir.path(), 1.0).await;
    let p = publisher(&v, Broker::new(broker.url()));
    let m = mirror(Broker::new(broker.url()));
    until("the mirror sees bed-2's alarms", Duration::from_secs(15), || {
        m.ward(WARD)
            .is_some_and(|w| w.snapshot.alarms.iter().any(|a| a.bed == "bed-2"))
    })
    .await;
    assert_eq!(paused_by(&m, "bed-2"), None);

    let topic = format!("vigil/{SITE}/{WARD}/bed-2/alarms");
    let port = broker.port;
    let watch = tokio::task::spawn_blocking(move || sub(port, &topic, 2, "%q %p", 10));
    tokio::time::sleep(Duration::from_millis(500)).await;
    v.pause_audio("bed-2", "nurse.kim").await.unwrap();
    until("the pause reaches the mirror", Duration::from_secs(5), || {
        paused_by(&m, "bed-2").as_deref() == Some("nurse.kim")
    })
    .await;
    // The retained state at subscribe, then the change: both QoS 1.
    let seen = watch.await.unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|l| l.starts_with("1 ")), "QoS 1: {seen:?}");
    let latest: serde_json::Value = serde_json::from_str(&seen[1][2..]).unwrap();
    let version = latest["version"].as_u64().unwrap();

    // The same message again (QoS 1 redelivery) and an older version with another state
    // (a late republish): the mirror keeps the newest.
    let stale_before = m.stats().stale_alarms.load(std::sync::atomic::Ordering::Relaxed);
    let topic = format!("vigil/{SITE}/{WARD}/bed-2/alarms");
    publish(port, &topic, &seen[1][2..]);
    let mut older = latest.clone();
    older["version"] = serde_json::json!(version - 1);
    older["state"]["audio"] = serde_json::json!({"state": "normal"});
    publish(port, &topic, &older.to_string());
    until("both ignored", Duration::from_secs(5), || {
        m.stats().stale_alarms.load(std::sync::atomic::Ordering::Relaxed) >= stale_before + 2
    })
    .await;
    assert_eq!(paused_by(&m, "bed-2").as_deref(), Some("nurse.kim"));
    m.stop().await;
    p.stop().await;
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_without_persistence_gets_the_whole_state_again() {
    let mut broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let v = ward(dir.path(), 10.0).await;
    let p = publisher(&v, Broker::new(broker.url()));
    let m = mirror(Broker::new(broker.url()));
    until("mirrored", Duration::from_secs(20), || {
        let s = shown(&v);
        s.len() >= 8 && s.is_subset(&mirrored(&m))
    })
    .await;

    broker.restart();
    // Nothing retained in the new broker until the publisher is back.
    until("the publisher reconnected", Duration::from_secs(15), || {
        p.stats().get(&p.stats().connects) >= 2
    })
    .await;
    // A station subscribing only now sees every bed, as does the one that was connected.
    let late = mirror(Broker::new(broker.url()));
    for (name, mm) in [("late", &late), ("reconnected", &m)] {
        until(
            &format!("{name} mirror complete again"),
            Duration::from_secs(15),
            || {
                let w = mm.ward(WARD);
                w.as_ref().is_some_and(|w| {
                    w.liveness == Liveness::Online
                        && w.snapshot.beds.len() == 4
                        && w.snapshot.alarms.len() == 4
                }) && shown(&v).is_subset(&mirrored(mm))
            },
        )
        .await;
    }
    late.stop().await;
    m.stop().await;
    p.stop().await;
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_change_while_the_broker_is_down_is_delivered_after_it_returns() {
    let mut broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let v = ward(dir.path(), 1.0).await;
    let p = publisher(&v, Broker::new(broker.url()));
    until("connected", Duration::from_secs(10), || {
        p.stats().get(&p.stats().published) > 10
    })
    .await;

    broker.stop();
    until("the publisher saw the broker go", Duration::from_secs(10), || {
        !p.stats().connected.load(std::sync::atomic::Ordering::Relaxed)
    })
    .await;
    v.pause_audio("bed-3", "nurse.kim").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(p.stats().line().contains("DISCONNECTED"), "{}", p.stats().line());

    broker.restart();
    let m = mirror(Broker::new(broker.url()));
    until("the change delivered", Duration::from_secs(15), || {
        paused_by(&m, "bed-3").as_deref() == Some("nurse.kim")
    })
    .await;
    m.stop().await;
    p.stop().await;
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ward_that_vanishes_or_stops_is_reported_lost_never_quiet() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let v = ward(dir.path(), 10.0).await;
    let p = publisher(&v, Broker::new(broker.url()));
    let m = mirror(Broker::new(broker.url()));
    until("online", Duration::from_secs(15), || {
        m.ward(WARD)
            .is_some_and(|w| w.liveness == Liveness::Online && !w.snapshot.latest.is_empty())
    })
    .await;

    // The gateway's connection dies without a goodbye (what SIGKILL or a cut cable does):
    // the broker publishes its last will.
    p.kill();
    until(
        "the last will marks the ward offline",
        Duration::from_secs(10),
        || m.ward(WARD).is_some_and(|w| w.liveness == Liveness::Offline),
    )
    .await;
    let w = m.ward(WARD).unwrap();
    assert!(w.lost());
    assert!(
        !w.snapshot.latest.is_empty(),
        "values still readable, marked lost"
    );

    // A later station subscribing now also reads it as offline (the will is retained).
    let late = mirror(Broker::new(broker.url()));
    until("retained will", Duration::from_secs(10), || {
        late.ward(WARD)
            .is_some_and(|w| w.liveness == Liveness::Offline && w.lost())
    })
    .await;

    // Back, then a clean stop: offline again (a clean stop sends no will; it says so itself).
    let p = publisher(&v, Broker::new(broker.url()));
    until("online again", Duration::from_secs(10), || {
        m.ward(WARD).is_some_and(|w| w.liveness == Liveness::Online)
    })
    .await;
    p.stop().await;
    until("offline after a clean stop", Duration::from_secs(10), || {
        m.ward(WARD).is_some_and(|w| w.liveness == Liveness::Offline)
    })
    .await;

    // The mirror's own broker gone: every ward is lost.
    drop(broker);
    until("no broker", Duration::from_secs(15), || {
        m.wards()
            .iter()
            .all(|w| w.liveness == Liveness::NoBroker && w.lost())
    })
    .await;
    late.stop().await;
    m.stop().await;
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_that_would_change_a_topics_meaning_are_refused() {
    for bad in ["icu/3", "icu+", "#", "a\0b", "", "$SYS"] {
        let e = vigil_mqtt::ward_root(SITE, bad).unwrap_err().to_string();
        assert!(e.contains("mqtt ward"), "{e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let v = ward(dir.path(), 1.0).await;
    let cfg = PublisherConfig::new(Broker::new("mqtt://127.0.0.1:1"), "north/south", WARD);
    let e = Publisher::start(v.clone(), cfg).err().unwrap().to_string();
    assert!(e.contains("mqtt site \"north/south\""), "{e}");
    let cfg = MirrorConfig::new(Broker::new("mqtt://127.0.0.1:1"), "#");
    assert!(Mirror::start(cfg).is_err());
    // Plain MQTT leaves this host only over TLS.
    let cfg = PublisherConfig::new(Broker::new("mqtt://10.1.2.3:1883"), SITE, WARD);
    let e = Publisher::start(v.clone(), cfg).err().unwrap().to_string();
    assert!(e.contains("loopback"), "{e}");
    v.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ward_whose_status_says_online_but_that_went_silent_is_lost() {
    // A ward whose broker connection is half-open (the broker has not noticed yet) or whose
    // publisher hangs: its retained status still says online, but nothing new arrives.
    let broker = Mosquitto::start();
    publish(
        broker.port,
        &format!("vigil/{SITE}/ghost/status"),
        r#"{"online":true,"t":1,"schema":1}"#,
    );
    let mut cfg = MirrorConfig::new(Broker::new(broker.url()), SITE);
    cfg.silent_after = Duration::from_secs(2);
    let m = Mirror::start(cfg).unwrap();
    until("seen", Duration::from_secs(5), || m.ward("ghost").is_some()).await;
    until("silent", Duration::from_secs(5), || {
        m.ward("ghost")
            .is_some_and(|w| w.liveness == Liveness::Silent && w.lost())
    })
    .await;
    // Values without any status: unknown, lost too.
    let bed = r#"{"t":1,"bed":{"bed":"bed-1","label":"Bed 1","admission":null}}"#;
    publish(broker.port, &format!("vigil/{SITE}/nostatus/bed-1/bed"), bed);
    until("unknown", Duration::from_secs(5), || {
        m.ward("nostatus").is_some_and(|w| w.snapshot.beds.len() == 1)
    })
    .await;
    let w = m.ward("nostatus").unwrap();
    assert!(w.liveness == Liveness::Unknown && w.lost(), "{:?}", w.liveness);
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_discharge_the_mirror_never_shows_the_earlier_patients_values() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let v = ward(dir.path(), 10.0).await;
    let adm = v
        .admit(vigil_core::AdmitRequest {
            bed: "bed-1".into(),
            display_name: "Test Patient".into(),
            mrn: "MRN-MQTT-1".into(),
            date_of_birth: "1970-01-01".into(),
            category: "adult".into(),
        })
        .await
        .unwrap();
    let p = publisher(&v, Broker::new(broker.url()));
    let m = mirror(Broker::new(broker.url()));
    let of_stay = |m: &vigil_mqtt::Mirror| {
        m.ward(WARD).map_or(0, |w| {
            w.snapshot
                .latest
                .iter()
                .filter(|r| r.admission.as_deref() == Some(adm.id.as_str()))
                .count()
        })
    };
    until("values of the stay mirrored", Duration::from_secs(15), || {
        of_stay(&m) > 0
    })
    .await;
    v.discharge("bed-1").await.unwrap();
    until("the bed shows no patient", Duration::from_secs(5), || {
        m.ward(WARD).is_some_and(|w| {
            w.snapshot
                .beds
                .iter()
                .any(|b| b.bed == "bed-1" && b.admission.is_none())
        })
    })
    .await;
    assert_eq!(of_stay(&m), 0, "no value of the ended stay is shown");
    // Nor to a station subscribing now: the broker no longer holds them (their retained
    // topics were deleted), whatever a subscriber filters.
    let port = broker.port;
    let topic = format!("vigil/{SITE}/{WARD}/bed-1/reading/+");
    let seen = tokio::task::spawn_blocking(move || sub(port, &topic, 1000, "%p", 2))
        .await
        .unwrap();
    assert!(!seen.is_empty());
    assert!(!seen.iter().any(|l| l.contains(adm.id.as_str())), "{seen:?}");
    m.stop().await;
    p.stop().await;
    v.shutdown().await;
}
