//! The one data path: device events → decode → readings → store + live fan-out.
//!
//! ```text
//! sources ──DeviceEvent──▶ [pipeline task] ──Vec<Reading>──▶ [writer task + backlog] ──▶ store
//!          (bounded mpsc)        │           (try_send)
//!                                └──LiveEvent──▶ broadcast (lossy for slow screens)
//! ```
//! Back-pressure flows toward the devices, never from the screen: the live
//! fan-out is a broadcast channel that drops for a lagging subscriber (which
//! then resyncs from a snapshot), and never from the store: the writer takes
//! readings all the time into its own bounded backlog, so a failing or slow
//! disk never reaches the sources, the ward, the alarms or the screen.
//! Readings the backlog cannot hold are counted (`Stats::unrecorded`, with
//! their span), never silently dropped.

use crate::alarming::{Alarming, Outcome};
use crate::view::{LiveEvent, News2View};
use crate::ward::Ward;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use vigil_alarms::{AlarmEvent, AlarmEventKind, TechnicalKind};
use vigil_devices::DeviceEvent;
use vigil_model::{Clock, Reading};
use vigil_store::Store;

/// Counters for status lines and tests. No patient data.
#[derive(Debug, Default)]
pub struct Stats {
    pub payloads: AtomicU64,
    pub readings: AtomicU64,
    pub stored: AtomicU64,
    pub decode_errors: AtomicU64,
    /// Stored records (glucose) re-sent on a reconnect and dropped as already taken.
    pub duplicate_records: AtomicU64,
    /// Stored records refused for their time: in the future, or older than retention.
    pub rejected_records: AtomicU64,
    /// Values outside the sending device's assigned profile, dropped (`core::trust`).
    pub foreign_values: AtomicU64,
    /// Values refused: device identity changed, or link not bonded under the site's policy.
    pub refused_values: AtomicU64,
    pub store_errors: AtomicU64,
    /// Alarm conditions started (physiological, technical and NEWS2).
    pub alarms_started: AtomicU64,
    /// "Recording interrupted": set from the first failed write until the
    /// readings held meanwhile have been written. Healthy until a write
    /// fails, so a watchdog tick that beats the writer's start raises no
    /// false alarm.
    pub store_failing: AtomicBool,
    /// Set while the encrypted alarm log refuses writes.
    pub alarm_log_failing: AtomicBool,
    /// The signed audit trail's queue (shared with [`crate::auth::Auth`]): while its
    /// writes fail, the watchdog raises "audit trail failure" at every bed.
    pub audit: Arc<crate::audit::AuditQueue>,
    pub alarm_log_errors: AtomicU64,
    /// Readings received but never recorded: the store path's backlog
    /// overflowed, or shutdown came while the store refused them.
    pub unrecorded: AtomicU64,
    /// Received-time span of the unrecorded readings.
    pub unrecorded_span: Mutex<Option<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)>>,
    /// Alarm-log and NEWS2 log records not recorded: beyond the log
    /// backlog's bound, or still refused by the store at shutdown's bound.
    pub alarm_records_lost: AtomicU64,
    /// Readings waiting for the store in memory (the writer's backlog).
    pub backlog: AtomicU64,
    /// Readings waiting for the store in spill files beside it.
    pub spilled: AtomicU64,
}

impl Stats {
    pub fn get(&self, c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// What one alarm step sends to the encrypted logs: alarm events for the
/// alarm log and records for the NEWS2 log (scores and nurse entries, with
/// the bed's admission at that moment). One writer, one backlog, one
/// "alarm log failure" condition for both.
#[derive(Debug, Default)]
pub struct LogBatch {
    pub events: Vec<AlarmEvent>,
    pub news2: Vec<vigil_store::News2Record>,
}

impl From<Vec<AlarmEvent>> for LogBatch {
    fn from(events: Vec<AlarmEvent>) -> Self {
        LogBatch {
            events,
            news2: Vec::new(),
        }
    }
}

impl LogBatch {
    fn len(&self) -> usize {
        self.events.len() + self.news2.len()
    }
}

/// What the pipeline and the operator commands share.
#[derive(Clone)]
pub struct Context {
    pub ward: Arc<Mutex<Ward>>,
    pub alarming: Arc<Mutex<Alarming>>,
    pub live: broadcast::Sender<LiveEvent>,
    /// The alarm-log writer ([`log_alarms`]): alarm events and NEWS2 log records.
    pub alarm_log: mpsc::Sender<LogBatch>,
    pub clock: Arc<dyn Clock>,
    pub stats: Arc<Stats>,
}

impl Context {
    /// Sends an alarm step's results to the screen and the alarm log.
    /// The log is awaited (bounded): alarm records are never dropped.
    pub async fn publish(&self, out: Outcome) {
        let now = self.clock.now();
        let states: Vec<_> = {
            let a = self.alarming.lock().unwrap();
            out.beds.iter().map(|b| a.state(b, now)).collect()
        };
        for st in states {
            let _ = self.live.send(LiveEvent::Alarms(st));
        }
        for (bed, score) in out.news2 {
            let _ = self.live.send(LiveEvent::News2(News2View { bed, score }));
        }
        // Tagged with the stay they belong to, so a report of a past
        // admission finds its NEWS2 (and never the next patient's).
        let news2: Vec<vigil_store::News2Record> = {
            let ward = self.ward.lock().unwrap();
            out.news2_log
                .into_iter()
                .map(|(bed, at, record)| vigil_store::News2Record {
                    admission: ward.admission_of(&bed),
                    record: serde_json::to_value(&record).expect("NEWS2 records serialise"),
                    bed,
                    at,
                })
                .collect()
        };
        let started = out
            .events
            .iter()
            .filter(|e| matches!(e.event, AlarmEventKind::Started { .. }))
            .count();
        self.stats
            .alarms_started
            .fetch_add(started as u64, Ordering::Relaxed);
        let batch = LogBatch {
            events: out.events,
            news2,
        };
        if batch.len() > 0 && self.alarm_log.send(batch).await.is_err() {
            tracing::error!("alarm log writer stopped");
        }
    }

    pub(crate) fn beds(&self) -> Vec<String> {
        self.ward
            .lock()
            .unwrap()
            .beds()
            .into_iter()
            .map(|b| b.bed)
            .collect()
    }
}

/// What drives the pipeline's once-a-second step (device watchdog, alarm
/// condition delays, audio-pause expiry, NEWS2 every 30 s).
pub enum Ticks {
    /// A real-time interval (scaled by the clock's speed): live devices and
    /// the simulated ward.
    RealTime,
    /// Only when told (`vigil replay`): the replay driver moves a manual
    /// clock through the script's times and asks for each tick itself, so
    /// what the engine decides depends on script time only, never on how
    /// fast the machine replays.
    Driven(mpsc::Receiver<Control>),
}

/// A driven pipeline's instructions (see [`Ticks::Driven`]).
///
/// Device events and controls travel on two channels from one sender, the
/// replay driver. Before acting on a control the pipeline takes every device
/// event already queued, so a control is handled after all the events sent
/// before it: the order the driver sent them in.
#[derive(Debug)]
pub enum Control {
    /// Run the once-a-second step now, at the clock's current time.
    Tick,
    /// Answer once everything sent before has been handled (its readings
    /// taken by the writer, which holds at most `writer::REPLAY_HOLD` not
    /// yet stored; its alarm events on their way to the alarm log).
    Barrier(oneshot::Sender<()>),
}

/// Runs until every source has hung up (they stop on the shared cancellation
/// token), then returns, which closes the writer's channel.
pub async fn run(
    mut events: mpsc::Receiver<DeviceEvent>,
    ticks: Ticks,
    to_store: mpsc::Sender<Vec<Reading>>,
    ctx: Context,
) {
    match ticks {
        Ticks::RealTime => {
            let mut watchdog = tokio::time::interval(ctx.clock.real_duration(Duration::from_secs(1)));
            watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    ev = events.recv() => {
                        let Some(ev) = ev else { break };
                        if !step(ev, &to_store, &ctx, ToStore::Never).await {
                            break;
                        }
                    }
                    _ = watchdog.tick() => on_watchdog(&ctx).await,
                }
            }
        }
        Ticks::Driven(mut control) => {
            let mut control_open = true;
            loop {
                tokio::select! {
                    biased;
                    ev = events.recv() => {
                        let Some(ev) = ev else { break };
                        if !step(ev, &to_store, &ctx, ToStore::Wait).await {
                            break;
                        }
                    }
                    c = control.recv(), if control_open => {
                        let Some(c) = c else {
                            control_open = false;
                            continue;
                        };
                        // Events sent before this control may have arrived
                        // after `events` was polled: take them first.
                        while let Ok(ev) = events.try_recv() {
                            if !step(ev, &to_store, &ctx, ToStore::Wait).await {
                                return;
                            }
                        }
                        match c {
                            Control::Tick => on_watchdog(&ctx).await,
                            Control::Barrier(done) => {
                                let _ = done.send(());
                            }
                        }
                    }
                }
            }
        }
    }
}

/// How [`step`] hands readings to the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ToStore {
    /// Live devices: never wait. The writer drains its channel all the
    /// time; if it ever falls behind that far, the readings are counted
    /// (`Stats::unrecorded`), not waited for, so a slow disk never reaches
    /// the sources, the ward, the alarms or the screen.
    Never,
    /// A driven pipeline (`vigil replay`) has no live device: a replay is an
    /// import and must store every line, so it waits for the writer
    /// (which pushes back, `writer::Limits::replay`), and the driver waits
    /// for it. How fast the machine is then changes only how long it takes.
    Wait,
}

/// One device event through [`on_event`], its readings handed to the
/// writer. False once the writer has stopped.
async fn step(ev: DeviceEvent, to_store: &mpsc::Sender<Vec<Reading>>, ctx: &Context, wait: ToStore) -> bool {
    let Some(readings) = on_event(ev, ctx).await else {
        return true;
    };
    if wait == ToStore::Wait {
        return match to_store.send(readings).await {
            Ok(()) => true,
            Err(mpsc::error::SendError(readings)) => {
                tracing::error!("store writer stopped; readings can no longer be stored");
                ctx.stats.lose(&readings);
                false
            }
        };
    }
    match to_store.try_send(readings) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(readings)) => {
            tracing::error!(n = readings.len(), "store path full: readings not recorded");
            ctx.stats.lose(&readings);
            true
        }
        Err(mpsc::error::TrySendError::Closed(readings)) => {
            tracing::error!("store writer stopped; readings can no longer be stored");
            ctx.stats.lose(&readings);
            false
        }
    }
}

/// One device event through the data path at the clock's `now`: the ward,
/// then the alarms (device states first: data that ends "no data" or "sensor
/// off" counts once that condition has cleared, then the readings), the
/// screen and the alarm log. Returns the readings for the store.
pub async fn on_event(ev: DeviceEvent, ctx: &Context) -> Option<Vec<Reading>> {
    let now = ctx.clock.now();
    // A device moved to another bed leaves its alarms at the old one.
    let moved = match &ev {
        DeviceEvent::Attached(desc) => ctx
            .ward
            .lock()
            .unwrap()
            .attached_elsewhere(&desc.device, &desc.bed),
        _ => None,
    };
    let mut out = match moved {
        Some(old) => ctx.alarming.lock().unwrap().forget_device(&old, now),
        None => Outcome::default(),
    };
    let (readings, live_events) = handle(ev, &ctx.ward, &ctx.stats, now);
    for e in live_events {
        if let LiveEvent::Device(d) = &e {
            out.merge(ctx.alarming.lock().unwrap().on_device(d, now));
        }
        // No subscribers is fine: the screen may not be open.
        let _ = ctx.live.send(e);
    }
    {
        // Each value is current for its device's staleness window.
        let ward = ctx.ward.lock().unwrap();
        let window = |r: &Reading| {
            ward.stale_window(&r.device)
                .and_then(|w| chrono::Duration::from_std(w).ok())
                .unwrap_or_default()
        };
        out.merge(ctx.alarming.lock().unwrap().on_readings(&readings, window, now));
    }
    ctx.publish(out).await;
    (!readings.is_empty()).then_some(readings)
}

/// The once-a-second step at the clock's `now`: overdue devices become
/// stale, condition delays, pause expiry and reminders, NEWS2, and the
/// store's and alarm log's health.
pub async fn on_watchdog(ctx: &Context) {
    let now = ctx.clock.now();
    let changed = ctx.ward.lock().unwrap().watchdog(now);
    let beds = ctx.beds();
    let mut out = {
        let mut a = ctx.alarming.lock().unwrap();
        let mut out = a.tick(&beds, now);
        out.merge(a.store_health(!ctx.stats.store_failing.load(Ordering::Relaxed), &beds, now));
        let log_ok = !ctx.stats.alarm_log_failing.load(Ordering::Relaxed);
        out.merge(a.workstation_health(TechnicalKind::AlarmLogFailure, log_ok, &beds, now));
        out.merge(a.workstation_health(TechnicalKind::AuditFailure, !ctx.stats.audit.failing(), &beds, now));
        out
    };
    for d in changed {
        tracing::warn!(device = %d.device, bed = %d.bed, "no data within the expected interval: stale");
        out.merge(ctx.alarming.lock().unwrap().on_device(&d, now));
        let _ = ctx.live.send(LiveEvent::Device(d));
    }
    ctx.publish(out).await;
}

/// Writes alarm events to the encrypted alarm log and NEWS2 records to the
/// NEWS2 log, in order. It keeps taking batches while a write fails (so the
/// pipeline never waits on a failing disk), keeps them and retries; a failing
/// log is a technical alarm at every bed (`Stats::alarm_log_failing`, raised
/// by the watchdog). On shutdown (after the pipeline has stopped) it writes
/// what is queued, then returns; if the store still refuses after
/// [`SHUTDOWN_GRACE`], it counts what it held in `Stats::alarm_records_lost`
/// and returns.
pub async fn log_alarms(
    mut rx: mpsc::Receiver<LogBatch>,
    store: Store,
    stats: Arc<Stats>,
    cancel: CancellationToken,
) {
    type Record = (String, chrono::DateTime<chrono::Utc>, serde_json::Value);
    #[derive(Default)]
    struct Pending {
        alarms: Vec<Record>,
        news2: Vec<vigil_store::News2Record>,
    }
    impl Pending {
        fn len(&self) -> usize {
            self.alarms.len() + self.news2.len()
        }
        fn is_empty(&self) -> bool {
            self.len() == 0
        }
    }
    let mut pending = Pending::default();
    let mut overflowing = false;
    // Bounded like the readings' memory (alarm and NEWS2 records together):
    // beyond it records are counted, not held.
    let mut add = |pending: &mut Pending, b: LogBatch| {
        let n = b.len();
        let room = ALARM_LOG_CAPACITY.saturating_sub(pending.len());
        let alarms = b.events.len().min(room);
        pending.alarms.extend(b.events.into_iter().take(alarms).map(|e| {
            let json = serde_json::to_value(&e).expect("alarm events serialise");
            (e.bed, e.at, json)
        }));
        let news2 = b.news2.len().min(room - alarms);
        pending.news2.extend(b.news2.into_iter().take(news2));
        let kept = alarms + news2;
        if n > kept {
            stats
                .alarm_records_lost
                .fetch_add((n - kept) as u64, Ordering::Relaxed);
            if !overflowing {
                tracing::error!(capacity = ALARM_LOG_CAPACITY, "alarm log backlog full: records from now on are not recorded until the log catches up");
            }
            overflowing = true;
        } else {
            overflowing = false;
        }
    };
    let mut open = true;
    let mut delay = Duration::from_millis(100);
    let mut closed_at: Option<tokio::time::Instant> = None;
    loop {
        if pending.is_empty() {
            if !open {
                return;
            }
            tokio::select! {
                e = rx.recv() => match e {
                    Some(e) => add(&mut pending, e),
                    None => open = false,
                },
                _ = cancel.cancelled() => open = false,
            }
        }
        while let Ok(e) = rx.try_recv() {
            add(&mut pending, e);
        }
        if pending.is_empty() {
            continue;
        }
        match store.log(&pending.alarms, &pending.news2).await {
            Ok(()) => {
                pending = Pending::default();
                delay = Duration::from_millis(100);
                stats.alarm_log_failing.store(false, Ordering::Relaxed);
            }
            Err(e) => {
                stats.alarm_log_errors.fetch_add(1, Ordering::Relaxed);
                stats.alarm_log_failing.store(true, Ordering::Relaxed);
                tracing::error!(error = %e, pending = pending.len(), "alarm log write failed; keeping records and retrying");
                if !open {
                    let since = *closed_at.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() >= SHUTDOWN_GRACE {
                        stats
                            .alarm_records_lost
                            .fetch_add(pending.len() as u64, Ordering::Relaxed);
                        tracing::error!(
                            lost = pending.len(),
                            "shutting down with alarm records the store would not take"
                        );
                        return;
                    }
                }
                // Wait before retrying, still taking new events meanwhile.
                let wait = tokio::time::sleep(delay);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        _ = &mut wait => break,
                        e = rx.recv(), if open => match e {
                            Some(e) => add(&mut pending, e),
                            None => open = false,
                        },
                        _ = cancel.cancelled(), if open => open = false,
                    }
                }
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

fn handle(
    ev: DeviceEvent,
    ward: &Mutex<Ward>,
    stats: &Stats,
    now: chrono::DateTime<chrono::Utc>,
) -> (Vec<Reading>, Vec<LiveEvent>) {
    let mut ward = ward.lock().unwrap();
    match ev {
        DeviceEvent::Attached(desc) => {
            tracing::debug!(device = %desc.device, bed = %desc.bed, kind = desc.kind.label(), source = ?desc.source, "device attached");
            (vec![], vec![LiveEvent::Device(ward.attach(desc))])
        }
        DeviceEvent::Link { device, state, at } => {
            tracing::debug!(device = %device, state = ?state, "link");
            (
                vec![],
                // Aged from the later of the event's time and now: a link
                // event stamped by a source's clock never predates the pipeline's.
                ward.link(&device, state, at.max(now))
                    .map(LiveEvent::Device)
                    .into_iter()
                    .collect(),
            )
        }
        DeviceEvent::Refused { device, .. } => {
            stats.foreign_values.fetch_add(1, Ordering::Relaxed);
            let view = ward.foreign(&device, None);
            if view.as_ref().is_some_and(|v| v.foreign_values == 1) {
                // Once per device: a device may send such values all the time.
                tracing::warn!(device = %device, "value outside the assigned kind's profile refused");
            }
            (vec![], view.map(LiveEvent::Device).into_iter().collect())
        }
        DeviceEvent::Security { device, bonded, .. } => {
            tracing::debug!(device = %device, ?bonded, "link security");
            (
                vec![],
                ward.security(&device, bonded)
                    .map(LiveEvent::Device)
                    .into_iter()
                    .collect(),
            )
        }
        DeviceEvent::Payload {
            device,
            characteristic,
            bytes,
            received,
        } => {
            stats.payloads.fetch_add(1, Ordering::Relaxed);
            // Only the assigned kind's profile, never decoded otherwise.
            if let Some(view) = ward.foreign(&device, Some(characteristic)) {
                stats.foreign_values.fetch_add(1, Ordering::Relaxed);
                if view.foreign_values == 1 {
                    tracing::warn!(device = %device, characteristic = %characteristic.short_id(), "value outside the assigned kind's profile refused");
                }
                return (vec![], vec![LiveEvent::Device(view)]);
            }
            match vigil_gatt::decode(characteristic, &bytes) {
                Ok(decoded) => {
                    let admit = ward.admit(&device, &decoded);
                    let mut live: Vec<LiveEvent> = Vec::new();
                    if let Some(v) = admit.device {
                        if let Some(why) = v.refused {
                            tracing::warn!(device = %device, bed = %v.bed, reason = ?why, "device data refused");
                        }
                        live.push(LiveEvent::Device(v));
                    }
                    if admit.refused.is_some() {
                        stats.refused_values.fetch_add(1, Ordering::Relaxed);
                        return (vec![], live);
                    }
                    let applied = ward.apply(&device, &decoded, received);
                    if let Some(why) = applied.rejected_record {
                        stats.rejected_records.fetch_add(1, Ordering::Relaxed);
                        // No values, no times.
                        tracing::warn!(device = %device, reason = ?why, "stored record refused for its time");
                    }
                    if applied.duplicate {
                        stats.duplicate_records.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(device = %device, "stored record already taken; dropped");
                    }
                    if applied.placed_at_receipt {
                        // Once per device; no values, no times.
                        tracing::info!(device = %device, "stored records placed at receipt time: device clock offset unknown");
                    }
                    stats
                        .readings
                        .fetch_add(applied.readings.len() as u64, Ordering::Relaxed);
                    live.extend(applied.views.into_iter().map(LiveEvent::Reading));
                    live.extend(applied.device.map(LiveEvent::Device));
                    (applied.readings, live)
                }
                Err(e) => {
                    // The error names the characteristic and byte offset, never the value.
                    stats.decode_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(device = %device, error = %e, "malformed payload dropped; device stays in use");
                    (vec![], vec![])
                }
            }
        }
    }
}

/// Alarm-log records held while the log refuses writes (hours of a busy
/// ward's alarm events); beyond it they are counted in
/// `Stats::alarm_records_lost`, never waited for.
pub const ALARM_LOG_CAPACITY: usize = 100_000;

/// How long the writer keeps trying after the pipeline has stopped (shutdown)
/// before it gives up on what the store will not take and says how much.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(6);

impl Stats {
    /// Readings that could not be held for the store (memory was full and
    /// the disk refused a spill file, or shutdown came while both refused).
    pub fn lose(&self, readings: &[Reading]) {
        if readings.is_empty() {
            return;
        }
        self.unrecorded
            .fetch_add(readings.len() as u64, Ordering::Relaxed);
        let (lo, hi) = readings
            .iter()
            .fold((readings[0].received, readings[0].received), |(lo, hi), r| {
                (lo.min(r.received), hi.max(r.received))
            });
        let mut span = self.unrecorded_span.lock().unwrap();
        *span = Some(match *span {
            Some((a, b)) => (a.min(lo), b.max(hi)),
            None => (lo, hi),
        });
    }

    /// "N readings not recorded (from … to …)", or None when every reading
    /// received was recorded.
    pub fn unrecorded_summary(&self) -> Option<String> {
        let n = self.get(&self.unrecorded);
        (n > 0).then(|| match *self.unrecorded_span.lock().unwrap() {
            Some((a, b)) => format!(
                "{n} readings not recorded (received {} to {})",
                a.format("%Y-%m-%d %H:%M:%S UTC"),
                b.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            None => format!("{n} readings not recorded"),
        })
    }
}
