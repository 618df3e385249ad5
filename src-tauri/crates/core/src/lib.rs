//! Vigil's runtime: what both the desktop app and `vigil gateway` start.
//!
//! [`Vigil::start`] opens the encrypted store, starts the device sources, the
//! pipeline and the store writer, and hands back a handle for the screen
//! (snapshot, live subscription, admit/discharge) and for shutdown. Shutdown
//! goes through one cancellation token: sources stop, the pipeline drains,
//! the writer commits everything received, then the store closes.

pub mod config;
pub mod maintenance;
pub mod pipeline;
pub mod view;
pub mod ward;

use chrono::NaiveDate;
use pipeline::Stats;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use view::{AdmissionView, AppInfo, LiveEvent, WardSnapshot, WardUpdate};
use vigil_devices::sim::{Scenario, SimConfig, SimulatedWard};
use vigil_devices::DeviceSource;
use vigil_model::Clock;
use vigil_store::{KeySource, Patient, PatientCategory, Store, StoreError};
use ward::Ward;

pub use vigil_store;

/// How to run.
pub struct Config {
    pub data_dir: PathBuf,
    pub key: KeySource,
    pub clock: Arc<dyn Clock>,
    pub sim: SimSettings,
    pub retention: maintenance::Retention,
}

/// The simulated ward, used when no Bluetooth adapter is present.
#[derive(Debug, Clone)]
pub struct SimSettings {
    pub scenario: Scenario,
    pub beds: usize,
    pub seed: u64,
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings {
            scenario: Scenario::Ward,
            beds: 4,
            seed: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("unknown bed '{0}'")]
    UnknownBed(String),
    #[error("invalid date of birth '{0}': expected YYYY-MM-DD")]
    BadDate(String),
    #[error("unknown patient category '{0}': expected adult, paediatric or neonatal")]
    BadCategory(String),
}

impl CoreError {
    /// A stable machine-readable code for the UI.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::Store(StoreError::BedOccupied(_)) => "bed_occupied",
            CoreError::Store(StoreError::BedEmpty(_)) => "bed_empty",
            CoreError::Store(StoreError::InvalidPatient(_)) => "invalid_patient",
            CoreError::Store(StoreError::WrongKey) => "wrong_key",
            CoreError::Store(_) => "store",
            CoreError::UnknownBed(_) => "unknown_bed",
            CoreError::BadDate(_) | CoreError::BadCategory(_) => "invalid_patient",
        }
    }
}

/// A running Vigil.
pub struct Vigil {
    store: Store,
    ward: Arc<Mutex<Ward>>,
    live: broadcast::Sender<LiveEvent>,
    clock: Arc<dyn Clock>,
    stats: Arc<Stats>,
    cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    info: AppInfo,
}

/// Live fan-out capacity per subscriber before it lags and resyncs.
const LIVE_CAPACITY: usize = 8192;

impl Vigil {
    pub async fn start(cfg: Config) -> Result<Vigil, CoreError> {
        let store = Store::open(&config::store_path(&cfg.data_dir), &cfg.key).await?;
        let source = SimulatedWard::new(SimConfig {
            scenario: cfg.sim.scenario,
            beds: cfg.sim.beds,
            seed: cfg.sim.seed,
            clock: cfg.clock.clone(),
        });
        let mut ward = Ward::new(source.beds(), store.current_admissions().await?);
        ward.seed_latest(store.latest().await?, Duration::from_secs(1));
        let ward = Arc::new(Mutex::new(ward));

        let cancel = CancellationToken::new();
        let stats = Arc::new(Stats::default());
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        let (ev_tx, ev_rx) = mpsc::channel(1024);
        let (store_tx, store_rx) = mpsc::channel(256);

        let info = AppInfo {
            version: env!("CARGO_PKG_VERSION"),
            mode: "simulated",
            scenario: Some(cfg.sim.scenario.name().to_string()),
            key_source: cfg.key.describe(),
            data_dir: cfg.data_dir.display().to_string(),
        };

        let mut tasks = Vec::new();
        let src_cancel = cancel.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = Box::new(source).run(ev_tx, src_cancel).await {
                tracing::error!(error = %e, "device source stopped");
            }
        }));
        tasks.push(tokio::spawn(pipeline::run(
            ev_rx,
            ward.clone(),
            store_tx,
            live.clone(),
            cfg.clock.clone(),
            stats.clone(),
        )));
        tasks.push(tokio::spawn(pipeline::write(
            store_rx,
            store.clone(),
            stats.clone(),
        )));

        Ok(Vigil {
            store,
            ward,
            live,
            clock: cfg.clock,
            stats,
            cancel,
            tasks: Mutex::new(tasks),
            info,
        })
    }

    pub fn info(&self) -> &AppInfo {
        &self.info
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    pub fn snapshot(&self) -> WardSnapshot {
        self.ward.lock().unwrap().snapshot(self.clock.now())
    }

    /// (devices, receiving) for status lines.
    pub fn device_counts(&self) -> (usize, usize) {
        self.ward.lock().unwrap().device_counts()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.live.subscribe()
    }

    /// Admits a patient; readings from now on belong to the new admission.
    pub async fn admit(&self, req: AdmitRequest) -> Result<AdmissionView, CoreError> {
        if !self.ward.lock().unwrap().has_bed(&req.bed) {
            return Err(CoreError::UnknownBed(req.bed));
        }
        let dob = NaiveDate::parse_from_str(req.date_of_birth.trim(), "%Y-%m-%d")
            .map_err(|_| CoreError::BadDate(req.date_of_birth.clone()))?;
        let category = match req.category.as_str() {
            "adult" => PatientCategory::Adult,
            "paediatric" => PatientCategory::Paediatric,
            "neonatal" => PatientCategory::Neonatal,
            other => return Err(CoreError::BadCategory(other.to_string())),
        };
        let patient = Patient {
            display_name: req.display_name.trim().to_string(),
            mrn: req.mrn.trim().to_string(),
            date_of_birth: dob,
            category,
        };
        let adm = self.store.admit(&req.bed, patient, self.clock.now()).await?;
        let view = AdmissionView::from(&adm);
        self.update_beds(|w| w.set_admission(&req.bed, Some(adm)));
        tracing::info!(bed = %req.bed, "patient admitted");
        Ok(view)
    }

    pub async fn discharge(&self, bed: &str) -> Result<(), CoreError> {
        self.store.discharge(bed, self.clock.now()).await?;
        self.update_beds(|w| w.set_admission(bed, None));
        tracing::info!(bed = %bed, "patient discharged");
        Ok(())
    }

    fn update_beds(&self, f: impl FnOnce(&mut Ward)) {
        let beds = {
            let mut w = self.ward.lock().unwrap();
            f(&mut w);
            w.beds()
        };
        let _ = self.live.send(LiveEvent::Beds(beds));
    }

    /// Streams batched [`WardUpdate`]s every `every` until `sink` returns false
    /// or Vigil shuts down. A subscriber that falls behind gets a full resync
    /// instead of blocking anyone.
    pub async fn stream_updates(&self, every: Duration, mut sink: impl FnMut(WardUpdate) -> bool) {
        let mut rx = self.subscribe();
        let mut tick = tokio::time::interval(every);
        let mut batch = WardUpdate::default();
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                ev = rx.recv() => match ev {
                    Ok(LiveEvent::Reading(r)) => batch.readings.push(r),
                    Ok(LiveEvent::Device(d)) => batch.devices.push(d),
                    Ok(LiveEvent::Beds(b)) => batch.beds = Some(b),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let snap = self.snapshot();
                        batch = WardUpdate { now_ms: 0, readings: snap.latest, devices: snap.devices, beds: Some(snap.beds) };
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    // Always send, even empty: the screen uses the heartbeat
                    // to know the core is alive and to age its values.
                    batch.now_ms = self.clock.now().timestamp_millis();
                    if !sink(std::mem::take(&mut batch)) {
                        return;
                    }
                }
            }
        }
    }

    /// Stops the sources, drains the pipeline, commits every reading received
    /// and closes the store.
    /// Safe to call more than once; later calls return at once.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap());
        for t in tasks {
            let _ = t.await;
        }
        self.store.clone().close().await;
    }
}

/// What the admit form sends.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct AdmitRequest {
    pub bed: String,
    pub display_name: String,
    pub mrn: String,
    pub date_of_birth: String,
    pub category: String,
}
