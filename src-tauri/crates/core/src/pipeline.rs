//! The one data path: device events → decode → readings → store + live fan-out.
//!
//! ```text
//! sources ──DeviceEvent──▶ [pipeline task] ──Vec<Reading>──▶ [writer task] ──▶ store
//!          (bounded mpsc)        │           (bounded mpsc)
//!                                └──LiveEvent──▶ broadcast (lossy for slow screens)
//! ```
//! Back-pressure flows toward the devices, never from the screen: the live
//! fan-out is a broadcast channel that drops for a lagging subscriber (which
//! then resyncs from a snapshot), while the path to the store is bounded and
//! awaited so that no reading is dropped.

use crate::view::LiveEvent;
use crate::ward::Ward;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
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
    pub store_errors: AtomicU64,
    pub store_ok: AtomicBool,
}

impl Stats {
    pub fn get(&self, c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// Runs until every source has hung up (they stop on the shared cancellation
/// token), then returns, which closes the writer's channel.
pub async fn run(
    mut events: mpsc::Receiver<DeviceEvent>,
    ward: Arc<Mutex<Ward>>,
    to_store: mpsc::Sender<Vec<Reading>>,
    live: broadcast::Sender<LiveEvent>,
    clock: Arc<dyn Clock>,
    stats: Arc<Stats>,
) {
    let mut watchdog = tokio::time::interval(clock.real_duration(Duration::from_secs(1)));
    watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                let (readings, live_events) = handle(ev, &ward, &stats);
                for e in live_events {
                    // No subscribers is fine: the screen may not be open.
                    let _ = live.send(e);
                }
                if !readings.is_empty() && to_store.send(readings).await.is_err() {
                    tracing::error!("store writer stopped; readings can no longer be stored");
                    break;
                }
            }
            _ = watchdog.tick() => {
                let changed = ward.lock().unwrap().watchdog(clock.now());
                for d in changed {
                    tracing::warn!(device = %d.device, bed = %d.bed, "no data within the expected interval: stale");
                    let _ = live.send(LiveEvent::Device(d));
                }
            }
        }
    }
}

fn handle(ev: DeviceEvent, ward: &Mutex<Ward>, stats: &Stats) -> (Vec<Reading>, Vec<LiveEvent>) {
    let mut ward = ward.lock().unwrap();
    match ev {
        DeviceEvent::Attached(desc) => {
            tracing::debug!(device = %desc.device, bed = %desc.bed, kind = desc.kind.label(), source = ?desc.source, "device attached");
            (vec![], vec![LiveEvent::Device(ward.attach(desc))])
        }
        DeviceEvent::Link { device, state, .. } => {
            tracing::debug!(device = %device, state = ?state, "link");
            (
                vec![],
                ward.link(&device, state)
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
            match vigil_gatt::decode(characteristic, &bytes) {
                Ok(decoded) => {
                    let applied = ward.apply(&device, &decoded, received);
                    stats
                        .readings
                        .fetch_add(applied.readings.len() as u64, Ordering::Relaxed);
                    let mut live: Vec<LiveEvent> =
                        applied.views.into_iter().map(LiveEvent::Reading).collect();
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

/// Writes readings to the store in batches: at least once a second (so a
/// crash loses at most the last second) or when a batch is large. A failed
/// write keeps the batch and retries; nothing is dropped.
pub async fn write(mut rx: mpsc::Receiver<Vec<Reading>>, store: Store, stats: Arc<Stats>) {
    const FLUSH_EVERY: Duration = Duration::from_millis(500);
    const MAX_BATCH: usize = 10_000;
    let mut pending: Vec<Reading> = Vec::new();
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    let mut retry_delay = Duration::from_millis(100);
    stats.store_ok.store(true, Ordering::Relaxed);
    let mut open = true;
    let mut failures_since_close = 0;
    while open || !pending.is_empty() {
        tokio::select! {
            batch = rx.recv(), if open && pending.len() < MAX_BATCH * 10 => match batch {
                Some(b) => {
                    pending.extend(b);
                    if pending.len() < MAX_BATCH { continue; }
                }
                None => open = false,
            },
            _ = tick.tick() => {}
        }
        if pending.is_empty() {
            continue;
        }
        match store.append(&pending).await {
            Ok(()) => {
                stats.stored.fetch_add(pending.len() as u64, Ordering::Relaxed);
                stats.store_ok.store(true, Ordering::Relaxed);
                pending.clear();
                retry_delay = Duration::from_millis(100);
            }
            Err(e) => {
                stats.store_errors.fetch_add(1, Ordering::Relaxed);
                stats.store_ok.store(false, Ordering::Relaxed);
                tracing::error!(error = %e, pending = pending.len(), "store write failed; keeping readings and retrying");
                if !open {
                    failures_since_close += 1;
                    if failures_since_close > 20 {
                        tracing::error!(
                            lost = pending.len(),
                            "shutting down with readings the store would not take"
                        );
                        return;
                    }
                }
                tokio::time::sleep(retry_delay).await;
                retry_delay = (retry_delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
