//! The ward's live state to a broker.
//!
//! A lossy subscriber of the core's live fan-out, like the screen: it never holds up the
//! pipeline, the store or the alarms. A lagging subscription, and every (re)connection,
//! publishes the whole current state again from [`Vigil::snapshot`], so a broker that
//! restarted without persistence has correct retained values at once. Alarm changes while
//! the broker is unreachable are kept (the newest state per bed, with its version; the
//! states it replaced are counted) and published after the reconnection, at least once
//! (QoS 1). Logs carry ids and counts only, never a value or a name.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{LastWill, Packet};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop};
use rumqttc::Outgoing;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vigil_alarms::BedAlarmState;
use vigil_core::view::{BedView, DeviceView, LiveEvent, News2View, ReadingView, WardSnapshot};
use vigil_core::Vigil;

use crate::payload::{AlarmsMsg, BedMsg, DeviceMsg, News2Msg, ReadingMsg, StatusMsg, SCHEMA};
use crate::{check_topic_segment, Broker, MqttError};

/// What to publish where.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    pub broker: Broker,
    pub site: String,
    pub ward: String,
    /// `status` is published again this often: a mirror that hears nothing from a ward
    /// for a few of these reports it lost, even when the broker never sent the last will.
    pub heartbeat: Duration,
    /// MQTT keep alive (§3.1.2.10): the broker sends the last will about 1.5× this after
    /// the publisher vanished.
    pub keep_alive: Duration,
}

impl PublisherConfig {
    pub fn new(broker: Broker, site: impl Into<String>, ward: impl Into<String>) -> Self {
        PublisherConfig {
            broker,
            site: site.into(),
            ward: ward.into(),
            heartbeat: Duration::from_secs(5),
            keep_alive: Duration::from_secs(5),
        }
    }
}

/// Counters for status lines (counts only).
#[derive(Debug, Default)]
pub struct PublisherStats {
    pub connected: AtomicBool,
    /// Connections made (the first and every reconnection).
    pub connects: AtomicU64,
    /// Messages handed to the client.
    pub published: AtomicU64,
    /// Live changes not published: the broker unreachable (the reconnection's full state
    /// carries their latest values), the client's queue full, or lost by a lagging
    /// subscription (resynced from a snapshot).
    pub dropped: AtomicU64,
    /// Alarm states replaced by a newer one of the same bed while the broker was
    /// unreachable (the newest is delivered after reconnection).
    pub alarms_coalesced: AtomicU64,
    /// Full republishes from a snapshot after a lag.
    pub resyncs: AtomicU64,
    /// Messages not published because a bed or device id cannot be a topic level.
    pub bad_topics: AtomicU64,
}

impl PublisherStats {
    fn add(&self, c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self, c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    /// `mqtt connected (published N, dropped M)` for a status line.
    pub fn line(&self) -> String {
        let coalesced = self.get(&self.alarms_coalesced);
        let bad = self.get(&self.bad_topics);
        format!(
            "mqtt {} (published {}, dropped {}{}{})",
            if self.connected.load(Ordering::Relaxed) {
                "connected"
            } else {
                "DISCONNECTED"
            },
            self.get(&self.published),
            self.get(&self.dropped),
            if coalesced > 0 {
                format!(", alarm states coalesced {coalesced}")
            } else {
                String::new()
            },
            if bad > 0 {
                format!(", refused topics {bad}")
            } else {
                String::new()
            },
        )
    }
}

/// A running publisher; [`stop`](Publisher::stop) says goodbye (`online: false`).
pub struct Publisher {
    stats: Arc<PublisherStats>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

enum Conn {
    Up,
    Down(String),
}

/// How much the client may hold before `try_publish` refuses (then counted as dropped):
/// a full republish of 64 beds is well under this.
const CLIENT_QUEUE: usize = 8192;

impl Publisher {
    /// Starts publishing `vigil`'s ward. Errors only for settings that cannot work (a bad
    /// URL or topic level, a TLS file that does not load); an unreachable broker is
    /// retried for as long as Vigil runs. Needs a Tokio runtime.
    pub fn start(vigil: Arc<Vigil>, cfg: PublisherConfig) -> Result<Publisher, MqttError> {
        let root = crate::ward_root(&cfg.site, &cfg.ward)?;
        let mut opts = cfg
            .broker
            .options(&crate::client_id("vigil-pub"), cfg.keep_alive)?;
        let will = serde_json::to_vec(&StatusMsg {
            online: false,
            t: None,
            schema: None,
        })
        .expect("json");
        opts.set_last_will(LastWill::new(
            format!("{root}/status"),
            will,
            QoS::AtLeastOnce,
            true,
            None,
        ));
        let (client, eventloop) = AsyncClient::new(opts, CLIENT_QUEUE);
        let stats = Arc::new(PublisherStats::default());
        let stop = CancellationToken::new();
        let (conn_tx, conn_rx) = mpsc::unbounded_channel();
        // Subscribed before the first snapshot is taken: nothing falls between the two.
        let rx = vigil.subscribe();
        let drive = tokio::spawn(drive(eventloop, conn_tx, stop.clone()));
        let state = State {
            vigil,
            client,
            root,
            stats: stats.clone(),
            connected: false,
            alarms: HashMap::new(),
            pending_alarms: BTreeSet::new(),
            readings: HashMap::new(),
            admissions: HashMap::new(),
            devices: HashSet::new(),
            warned: HashSet::new(),
        };
        let publish = tokio::spawn(state.run(rx, conn_rx, cfg.heartbeat, stop.clone()));
        Ok(Publisher {
            stats,
            stop,
            tasks: vec![publish, drive],
        })
    }

    pub fn stats(&self) -> &Arc<PublisherStats> {
        &self.stats
    }

    /// Ends at once without a goodbye: the connection drops as in a crash, and the broker
    /// publishes the last will (`{"online":false}`). For a supervisor that must not pretend
    /// a clean stop, and for tests.
    pub fn kill(self) {
        for t in self.tasks {
            t.abort();
        }
    }

    /// Publishes `{"online":false}` (a clean stop sends no last will) and disconnects;
    /// within about 2 s whatever the broker does.
    pub async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
    }
}

/// Polls the connection (rumqttc reconnects on the next poll after an error) and tells
/// the publishing task when it is up or down. Ends after the goodbye's DISCONNECT went
/// out, or 2 s after the stop.
async fn drive(mut el: EventLoop, conn: mpsc::UnboundedSender<Conn>, stop: CancellationToken) {
    let mut backoff = Duration::from_millis(250);
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        if deadline.is_none() && stop.is_cancelled() {
            deadline = Some(tokio::time::Instant::now() + Duration::from_secs(2));
        }
        let until = deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        let ev = tokio::select! {
            ev = el.poll() => ev,
            _ = stop.cancelled(), if deadline.is_none() => continue,
            _ = tokio::time::sleep_until(until) => return,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_millis(250);
                let _ = conn.send(Conn::Up);
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) if deadline.is_some() => return,
            Ok(_) => {}
            Err(e) => {
                let _ = conn.send(Conn::Down(e.to_string()));
                if deadline.is_some() {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

struct State {
    vigil: Arc<Vigil>,
    client: AsyncClient,
    root: String,
    stats: Arc<PublisherStats>,
    connected: bool,
    /// The last alarm state given a version, per bed.
    alarms: HashMap<String, (u64, BedAlarmState)>,
    /// Beds whose alarm state (the newest, in `alarms`) is not yet handed to a connected client.
    pending_alarms: BTreeSet<String>,
    /// Reading topics published per bed (MDC codes), to delete them when the stay ends.
    readings: HashMap<String, HashSet<u32>>,
    admissions: HashMap<String, Option<String>>,
    /// Device topics published: (bed, device).
    devices: HashSet<(String, String)>,
    /// Ids already reported as unusable topic levels (reported once each).
    warned: HashSet<String>,
}

impl State {
    async fn run(
        mut self,
        mut rx: broadcast::Receiver<LiveEvent>,
        mut conn: mpsc::UnboundedReceiver<Conn>,
        heartbeat: Duration,
        stop: CancellationToken,
    ) {
        let vigil_stop = self.vigil.cancel_token();
        let mut beat = tokio::time::interval(heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = vigil_stop.cancelled() => break,
                c = conn.recv() => match c {
                    Some(Conn::Up) => {
                        self.stats.add(&self.stats.connects, 1);
                        self.stats.connected.store(true, Ordering::Relaxed);
                        self.connected = true;
                        tracing::info!(topic = %self.root, "mqtt: connected; publishing the ward's state");
                        self.publish_pending_alarms();
                        self.publish_all();
                    }
                    Some(Conn::Down(why)) => {
                        if self.connected {
                            tracing::warn!(topic = %self.root, error = %why, "mqtt: broker connection lost; retrying");
                        } else if self.stats.get(&self.stats.connects) == 0 && !self.warned.contains("\0connect") {
                            self.warned.insert("\0connect".into());
                            tracing::warn!(topic = %self.root, error = %why, "mqtt: broker not reachable; retrying");
                        }
                        self.connected = false;
                        self.stats.connected.store(false, Ordering::Relaxed);
                    }
                    None => break,
                },
                ev = rx.recv() => match ev {
                    Ok(ev) => self.on_event(ev),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        self.stats.add(&self.stats.dropped, n);
                        self.stats.add(&self.stats.resyncs, 1);
                        if self.connected {
                            self.publish_all();
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = beat.tick() => if self.connected {
                    self.status(true);
                },
            }
        }
        // The connection task ends once the goodbye is out (also when Vigil stopped first).
        stop.cancel();
        if self.connected {
            self.publish_pending_alarms();
            self.status(false);
        }
        let _ = self.client.try_disconnect();
    }

    fn now_ms(&self) -> i64 {
        self.vigil.clock().now().timestamp_millis()
    }

    fn publish(&mut self, topic: String, qos: QoS, payload: Vec<u8>) {
        match self.client.try_publish(topic, qos, true, payload) {
            Ok(()) => self.stats.add(&self.stats.published, 1),
            Err(_) => self.stats.add(&self.stats.dropped, 1),
        }
    }

    fn json<T: Serialize>(v: &T) -> Vec<u8> {
        serde_json::to_vec(v).expect("views serialise")
    }

    /// `<root>/<bed>` when the bed id can be a topic level (else counted, reported once).
    fn bed_topic(&mut self, bed: &str) -> Option<String> {
        match check_topic_segment("bed", bed) {
            Ok(()) => Some(format!("{}/{bed}", self.root)),
            Err(why) => {
                self.refused(bed, why);
                None
            }
        }
    }

    fn refused(&mut self, id: &str, why: String) {
        self.stats.add(&self.stats.bad_topics, 1);
        if self.warned.insert(id.to_string()) {
            tracing::warn!(error = %why, "mqtt: not published");
        }
    }

    fn status(&mut self, online: bool) {
        let t = Some(self.now_ms());
        let msg = StatusMsg {
            online,
            t,
            schema: Some(SCHEMA),
        };
        self.publish(
            format!("{}/status", self.root),
            QoS::AtLeastOnce,
            Self::json(&msg),
        );
    }

    fn on_event(&mut self, ev: LiveEvent) {
        if let LiveEvent::Alarms(a) = ev {
            // Versioned now, at the change, whether or not it can be sent now.
            let bed = a.bed.clone();
            self.assign(a);
            if !self.pending_alarms.insert(bed) {
                self.stats.add(&self.stats.alarms_coalesced, 1);
            }
            if self.connected {
                self.publish_pending_alarms();
            }
            return;
        }
        if !self.connected {
            // The reconnection publishes the full state, which carries the latest of these.
            self.stats.add(&self.stats.dropped, 1);
            return;
        }
        match ev {
            LiveEvent::Reading(r) => self.reading(&r),
            LiveEvent::Device(d) => self.device(&d),
            LiveEvent::Beds(beds) => {
                for b in &beds {
                    self.bed(b);
                }
            }
            LiveEvent::News2(n) => self.news2(&n),
            LiveEvent::Alarms(_) => unreachable!(),
        }
    }

    /// Gives a changed alarm state a new version (an unchanged one keeps its own).
    fn assign(&mut self, a: BedAlarmState) {
        if self.alarms.get(&a.bed).is_some_and(|(_, prev)| *prev == a) {
            return;
        }
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let v = self.alarms.get(&a.bed).map_or(now_us, |(v, _)| now_us.max(v + 1));
        self.alarms.insert(a.bed.clone(), (v, a));
    }

    fn publish_pending_alarms(&mut self) {
        let t = self.now_ms();
        for bed in std::mem::take(&mut self.pending_alarms) {
            let Some((version, state)) = self.alarms.get(&bed).cloned() else {
                continue;
            };
            let Some(topic) = self.bed_topic(&bed) else {
                continue;
            };
            let msg = AlarmsMsg { t, version, state };
            self.publish(format!("{topic}/alarms"), QoS::AtLeastOnce, Self::json(&msg));
        }
    }

    fn reading(&mut self, r: &ReadingView) {
        let Some(topic) = self.bed_topic(&r.bed) else {
            return;
        };
        self.readings.entry(r.bed.clone()).or_default().insert(r.mdc);
        let msg = ReadingMsg {
            t: r.received_ms,
            reading: r.clone(),
        };
        // QoS 0: the next value follows within seconds; retained so a late subscriber
        // has the latest at once.
        self.publish(
            format!("{topic}/reading/{}", r.mdc),
            QoS::AtMostOnce,
            Self::json(&msg),
        );
    }

    fn device(&mut self, d: &DeviceView) {
        let Some(topic) = self.bed_topic(&d.bed) else {
            return;
        };
        if let Err(why) = check_topic_segment("device", &d.device) {
            self.refused(&d.device, why);
            return;
        }
        self.devices.insert((d.bed.clone(), d.device.clone()));
        let msg = DeviceMsg {
            t: self.now_ms(),
            device: d.clone(),
        };
        self.publish(
            format!("{topic}/device/{}", d.device),
            QoS::AtLeastOnce,
            Self::json(&msg),
        );
    }

    fn bed(&mut self, b: &BedView) {
        let Some(topic) = self.bed_topic(&b.bed) else {
            return;
        };
        let admission = b.admission.as_ref().map(|a| a.id.clone());
        let before = self.admissions.insert(b.bed.clone(), admission.clone());
        if before.is_some_and(|prev| prev != admission) {
            // A new stay (or a discharge): the retained values of the earlier one go, as
            // they go from the screen. A value measured since is published again.
            for mdc in self.readings.remove(&b.bed).unwrap_or_default() {
                self.publish(format!("{topic}/reading/{mdc}"), QoS::AtLeastOnce, Vec::new());
            }
        }
        let msg = BedMsg {
            t: self.now_ms(),
            bed: b.clone(),
        };
        self.publish(format!("{topic}/bed"), QoS::AtLeastOnce, Self::json(&msg));
    }

    fn news2(&mut self, n: &News2View) {
        let Some(topic) = self.bed_topic(&n.bed) else {
            return;
        };
        let msg = News2Msg {
            t: self.now_ms(),
            news2: n.clone(),
        };
        self.publish(format!("{topic}/news2"), QoS::AtLeastOnce, Self::json(&msg));
    }

    /// The whole state from a snapshot: what a broker restarted without persistence, or a
    /// subscription that lagged, needs. Retained topics of devices and values that are no
    /// longer in the ward are deleted.
    fn publish_all(&mut self) {
        let snap: WardSnapshot = self.vigil.snapshot();
        self.status(true);
        for b in &snap.beds {
            self.bed(b);
        }
        let present: HashSet<(String, String)> = snap
            .devices
            .iter()
            .map(|d| (d.bed.clone(), d.device.clone()))
            .collect();
        let gone: Vec<_> = self.devices.difference(&present).cloned().collect();
        for (bed, device) in gone {
            self.devices.remove(&(bed.clone(), device.clone()));
            if let Some(topic) = self.bed_topic(&bed) {
                self.publish(format!("{topic}/device/{device}"), QoS::AtLeastOnce, Vec::new());
            }
        }
        for d in &snap.devices {
            self.device(d);
        }
        let latest: HashSet<(String, u32)> = snap.latest.iter().map(|r| (r.bed.clone(), r.mdc)).collect();
        let stale: Vec<(String, u32)> = self
            .readings
            .iter()
            .flat_map(|(b, codes)| codes.iter().map(move |c| (b.clone(), *c)))
            .filter(|k| !latest.contains(k))
            .collect();
        for (bed, mdc) in stale {
            if let Some(codes) = self.readings.get_mut(&bed) {
                codes.remove(&mdc);
            }
            if let Some(topic) = self.bed_topic(&bed) {
                self.publish(format!("{topic}/reading/{mdc}"), QoS::AtLeastOnce, Vec::new());
            }
        }
        for r in &snap.latest {
            self.reading(r);
        }
        for n in &snap.news2 {
            self.news2(n);
        }
        for a in snap.alarms {
            // Unchanged states keep their version and are sent again (harmless: equal).
            self.pending_alarms.insert(a.bed.clone());
            self.assign(a);
        }
        self.publish_pending_alarms();
    }
}
