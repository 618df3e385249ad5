//! A site's wards rebuilt from the broker, for a central station: subscribes to
//! `vigil/<site>/#` and keeps each ward's beds, latest values, devices, alarms (the highest
//! version seen per bed: duplicates and older deliveries change nothing), NEWS2 and
//! whether the ward is alive. Each ward reads as the core's own [`WardSnapshot`].
//!
//! A ward is reported lost ([`MirrorWard::lost`]) unless it is positively alive: its
//! status says offline (its last will, or a clean stop), it has been silent for longer than
//! [`MirrorConfig::silent_after`], its status was never seen, or the mirror's own broker
//! connection is down. Retained values of a lost ward are still there to read, but never as
//! "all is well".

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vigil_alarms::BedAlarmState;
use vigil_core::view::{BedView, DeviceView, News2View, ReadingView, WardSnapshot};

use crate::payload::{AlarmsMsg, BedMsg, DeviceMsg, News2Msg, ReadingMsg, StatusMsg};
use crate::{check_topic_segment, Broker, MqttError};

#[derive(Debug, Clone)]
pub struct MirrorConfig {
    pub broker: Broker,
    pub site: String,
    /// No message from a ward for this long: lost. A publisher's heartbeat is 5 s.
    pub silent_after: Duration,
}

impl MirrorConfig {
    pub fn new(broker: Broker, site: impl Into<String>) -> Self {
        MirrorConfig {
            broker,
            site: site.into(),
            silent_after: Duration::from_secs(15),
        }
    }
}

/// Whether a ward is alive, as far as the broker tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Its status says online and it was heard within `silent_after`.
    Online,
    /// Its status says offline: the broker published its last will, or it stopped.
    Offline,
    /// Nothing heard from it for longer than `silent_after`.
    Silent,
    /// Values seen, but never its status.
    Unknown,
    /// The mirror itself has no connection to the broker.
    NoBroker,
}

/// One ward as mirrored.
#[derive(Debug, Clone)]
pub struct MirrorWard {
    pub ward: String,
    pub liveness: Liveness,
    /// Epoch ms (this machine's clock) of the last live message from the ward (a retained
    /// replay at subscribe does not count); None: never heard live.
    pub heard_ms: Option<i64>,
    /// `now_ms` is the ward's clock at its last status (else its newest message's `t`).
    pub snapshot: WardSnapshot,
}

impl MirrorWard {
    /// True unless the ward is positively alive: a lost ward must never read as a quiet one.
    pub fn lost(&self) -> bool {
        self.liveness != Liveness::Online
    }
}

/// Counters (counts only).
#[derive(Debug, Default)]
pub struct MirrorStats {
    pub messages: AtomicU64,
    /// Alarm messages whose version was not above the one held (duplicates, old ones).
    pub stale_alarms: AtomicU64,
    /// Messages that did not parse, or under a topic this schema does not know.
    pub malformed: AtomicU64,
}

pub struct Mirror {
    wards: Arc<Mutex<BTreeMap<String, WardState>>>,
    connected: Arc<AtomicBool>,
    stats: Arc<MirrorStats>,
    silent_after: Duration,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct WardState {
    online: Option<bool>,
    heard: Option<Instant>,
    /// `heard` on the wall clock, for "lost since" at the central station.
    heard_wall_ms: Option<i64>,
    t: i64,
    beds: HashMap<String, BedView>,
    readings: HashMap<(String, u32), ReadingView>,
    devices: HashMap<(String, String), DeviceView>,
    alarms: HashMap<String, (u64, BedAlarmState)>,
    news2: HashMap<String, News2View>,
}

impl Mirror {
    /// Connects and subscribes to `vigil/<site>/#` (again after every reconnection).
    /// Needs a Tokio runtime.
    pub fn start(cfg: MirrorConfig) -> Result<Mirror, MqttError> {
        check_topic_segment("site", &cfg.site).map_err(MqttError::Config)?;
        let opts = cfg
            .broker
            .options(&crate::client_id("vigil-mirror"), Duration::from_secs(5))?;
        let (client, el) = AsyncClient::new(opts, 64);
        let wards = Arc::new(Mutex::new(BTreeMap::new()));
        let connected = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(MirrorStats::default());
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            el,
            client,
            format!("vigil/{}/#", cfg.site),
            wards.clone(),
            connected.clone(),
            stats.clone(),
            stop.clone(),
        ));
        Ok(Mirror {
            wards,
            connected,
            stats,
            silent_after: cfg.silent_after,
            stop,
            task,
        })
    }

    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> &MirrorStats {
        &self.stats
    }

    /// Every ward heard of, by name.
    pub fn wards(&self) -> Vec<MirrorWard> {
        let names: Vec<String> = self.wards.lock().unwrap().keys().cloned().collect();
        names.iter().filter_map(|n| self.ward(n)).collect()
    }

    pub fn ward(&self, name: &str) -> Option<MirrorWard> {
        let connected = self.connected();
        let wards = self.wards.lock().unwrap();
        let w = wards.get(name)?;
        let liveness = if !connected {
            Liveness::NoBroker
        } else {
            match w.online {
                Some(false) => Liveness::Offline,
                None => Liveness::Unknown,
                Some(true) if w.heard.is_none_or(|h| h.elapsed() > self.silent_after) => Liveness::Silent,
                Some(true) => Liveness::Online,
            }
        };
        Some(MirrorWard {
            ward: name.to_string(),
            liveness,
            heard_ms: w.heard_wall_ms,
            snapshot: w.snapshot(),
        })
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
    }
}

impl WardState {
    fn snapshot(&self) -> WardSnapshot {
        let mut beds: Vec<BedView> = self.beds.values().cloned().collect();
        beds.sort_by_key(|b| natural(&b.bed));
        let order = |bed: &str| natural(bed);
        // A bed shows its current stay's values (and values measured with no patient),
        // never an earlier patient's: the screen's rule.
        let current = |r: &ReadingView| match self.beds.get(&r.bed) {
            Some(b) => r.admission.is_none() || r.admission == b.admission.as_ref().map(|a| a.id.clone()),
            None => true,
        };
        let mut latest: Vec<ReadingView> = self.readings.values().filter(|r| current(r)).cloned().collect();
        latest.sort_by_key(|r| (order(&r.bed), r.mdc));
        let mut devices: Vec<DeviceView> = self.devices.values().cloned().collect();
        devices.sort_by(|a, b| (order(&a.bed), &a.device).cmp(&(order(&b.bed), &b.device)));
        let mut alarms: Vec<BedAlarmState> = self.alarms.values().map(|(_, a)| a.clone()).collect();
        alarms.sort_by_key(|a| order(&a.bed));
        let mut news2: Vec<News2View> = self.news2.values().cloned().collect();
        news2.sort_by_key(|n| order(&n.bed));
        WardSnapshot {
            now_ms: self.t,
            beds,
            devices,
            latest,
            alarms,
            news2,
        }
    }
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// "bed-2" before "bed-10".
fn natural(s: &str) -> (String, u64, String) {
    let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (head, tail) = s.split_at(s.len() - digits);
    (head.to_string(), tail.parse().unwrap_or(0), s.to_string())
}

#[allow(clippy::too_many_arguments)]
async fn run(
    mut el: EventLoop,
    client: AsyncClient,
    filter: String,
    wards: Arc<Mutex<BTreeMap<String, WardState>>>,
    connected: Arc<AtomicBool>,
    stats: Arc<MirrorStats>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let ev = tokio::select! {
            ev = el.poll() => ev,
            _ = stop.cancelled() => break,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_millis(250);
                connected.store(true, Ordering::Relaxed);
                // A clean session each time: subscribe again; the broker then sends the
                // retained state of every ward.
                if client.try_subscribe(filter.clone(), QoS::AtLeastOnce).is_err() {
                    tracing::warn!("mqtt mirror: could not subscribe");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                stats.messages.fetch_add(1, Ordering::Relaxed);
                apply(&mut wards.lock().unwrap(), &p, &stats);
            }
            Ok(_) => {}
            Err(e) => {
                if connected.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "mqtt mirror: broker connection lost; retrying");
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.cancelled() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    let _ = client.try_disconnect();
    connected.store(false, Ordering::Relaxed);
}

/// Takes one message into the ward it belongs to.
fn apply(wards: &mut BTreeMap<String, WardState>, p: &Publish, stats: &MirrorStats) {
    let bad = || {
        stats.malformed.fetch_add(1, Ordering::Relaxed);
    };
    let Ok(topic) = std::str::from_utf8(&p.topic) else {
        return bad();
    };
    let parts: Vec<&str> = topic.split('/').collect();
    // vigil/<site>/<ward>/...
    if parts.len() < 4 || parts[0] != "vigil" {
        return bad();
    }
    let w = wards.entry(parts[2].to_string()).or_default();
    // A live message (retain flag clear on delivery, MQTT 5 §3.3.1.3) is the ward heard
    // now; a retained replay at subscribe is only what it last said.
    if !p.retain || parts.len() == 4 {
        w.heard = Some(Instant::now());
        w.heard_wall_ms = Some(wall_ms());
    }
    let empty = p.payload.is_empty();
    fn parse<T: DeserializeOwned>(b: &[u8]) -> Option<T> {
        serde_json::from_slice(b).ok()
    }
    match &parts[3..] {
        ["status"] => match parse::<StatusMsg>(&p.payload) {
            Some(s) => {
                w.online = Some(s.online);
                if let Some(t) = s.t {
                    w.t = w.t.max(t);
                }
            }
            None if empty => w.online = None,
            None => bad(),
        },
        [bed, rest @ ..] => {
            let bed = bed.to_string();
            match rest {
                ["reading", mdc] => {
                    let Ok(mdc) = mdc.parse::<u32>() else { return bad() };
                    if empty {
                        w.readings.remove(&(bed, mdc));
                    } else if let Some(m) = parse::<ReadingMsg>(&p.payload) {
                        w.t = w.t.max(m.t);
                        w.readings.insert((bed, mdc), m.reading);
                    } else {
                        bad()
                    }
                }
                ["alarms"] => {
                    if empty {
                        w.alarms.remove(&bed);
                    } else if let Some(m) = parse::<AlarmsMsg>(&p.payload) {
                        match w.alarms.get(&bed) {
                            Some((v, _)) if *v >= m.version => {
                                stats.stale_alarms.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {
                                w.alarms.insert(bed, (m.version, m.state));
                            }
                        }
                    } else {
                        bad()
                    }
                }
                ["news2"] => {
                    if empty {
                        w.news2.remove(&bed);
                    } else if let Some(m) = parse::<News2Msg>(&p.payload) {
                        w.news2.insert(bed, m.news2);
                    } else {
                        bad()
                    }
                }
                ["device", device] => {
                    let key = (bed, device.to_string());
                    if empty {
                        w.devices.remove(&key);
                    } else if let Some(m) = parse::<DeviceMsg>(&p.payload) {
                        w.devices.insert(key, m.device);
                    } else {
                        bad()
                    }
                }
                ["bed"] => {
                    if empty {
                        w.beds.remove(&bed);
                    } else if let Some(m) = parse::<BedMsg>(&p.payload) {
                        w.beds.insert(bed, m.bed);
                    } else {
                        bad()
                    }
                }
                // Commands are not this mirror's to read.
                ["cmd"] => {}
                _ => bad(),
            }
        }
        [] => bad(),
    }
}
