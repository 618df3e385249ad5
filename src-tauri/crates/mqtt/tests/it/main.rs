//! Vigil over MQTT against a real Mosquitto (Debian: mosquitto, mosquitto-clients) that
//! each test starts on a free loopback port and stops by its process id. The ward is the
//! real core (simulated GATT bytes through the pipeline into a real encrypted store).

mod broker;
mod central;
mod publish;
mod tls;

use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use vigil_core::{Config, SimSettings, Vigil};
use vigil_devices::sim::Scenario;
use vigil_model::ScaledClock;
use vigil_mqtt::{Broker, Mirror, MirrorConfig, Publisher, PublisherConfig};
use vigil_store::KeySource;

pub(crate) const SITE: &str = "north";
pub(crate) const WARD: &str = "icu-3";

/// A running simulated ward (4 beds) with its store in a temp dir.
pub(crate) async fn ward(dir: &std::path::Path, speed: f64) -> Arc<Vigil> {
    let cfg = Config {
        data_dir: dir.to_path_buf(),
        key: KeySource::passphrase("mqtt-test-passphrase", "test"),
        clock: Arc::new(ScaledClock::new(Utc::now(), speed)),
        sim: SimSettings {
            scenario: Scenario::Stable,
            beds: 4,
            seed: 3,
        },
        retention: Default::default(),
        low_disk_bytes: 0,
        site_files: Vec::new(),
        alarm_preset: Default::default(),
        devices: vigil_core::DeviceMode::Simulated,
        fhir: None,
        ble: Default::default(),
    };
    Arc::new(Vigil::start(cfg).await.unwrap())
}

pub(crate) fn publisher(v: &Arc<Vigil>, broker: Broker) -> Publisher {
    let mut cfg = PublisherConfig::new(broker, SITE, WARD);
    cfg.heartbeat = Duration::from_secs(1);
    cfg.keep_alive = Duration::from_secs(5);
    Publisher::start(v.clone(), cfg).unwrap()
}

pub(crate) fn mirror(broker: Broker) -> Mirror {
    let mut cfg = MirrorConfig::new(broker, SITE);
    cfg.silent_after = Duration::from_secs(5);
    Mirror::start(cfg).unwrap()
}

/// Waits (real time) until `f` holds, or panics naming `what`.
pub(crate) async fn until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + within;
    while !f() {
        assert!(tokio::time::Instant::now() < end, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
