//! Vigil's runtime: what both the desktop app and `vigil gateway` start.
//!
//! [`Vigil::start`] opens the encrypted store, starts the device sources, the
//! pipeline and the store writer, and hands back a handle for the screen
//! (snapshot, live subscription, admit/discharge) and for shutdown. Shutdown
//! goes through one cancellation token: sources stop, the pipeline drains,
//! the writer commits everything received, then the store closes.

pub mod alarming;
pub mod audit;
pub mod audit_upload;
pub mod auth;
mod batch;
pub mod bluetooth;
pub mod central;
pub mod cli_user;
pub mod config;
pub mod feed;
pub mod fhir_devices;
pub mod guarded;
pub mod input;
pub mod maintenance;
pub mod persist;
pub mod pipeline;
pub mod replay;
pub mod report;
pub mod review;
pub mod site;
pub mod sync;
pub mod trends;
pub mod trust;
pub mod update;
pub mod view;
pub mod ward;
pub mod writer;

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

pub use vigil_fhir;
pub use vigil_store;

/// How to run.
pub struct Config {
    pub data_dir: PathBuf,
    pub key: KeySource,
    pub clock: Arc<dyn Clock>,
    pub sim: SimSettings,
    pub retention: maintenance::Retention,
    /// Free space below which every bed warns of a filling disk (site `storage.low_disk_mb`).
    pub low_disk_bytes: u64,
    /// The site configuration files in use (shown in About; see `site::SiteConfig::files`).
    pub site_files: Vec<site::SiteFile>,
    /// Alarm limits and priorities per patient category (site configuration).
    pub alarm_preset: vigil_alarms::SitePreset,
    pub devices: DeviceMode,
    /// The hospital's FHIR server, when the site configures one.
    pub fhir: Option<site::FhirSite>,
    /// Bluetooth LE link policy (site `ble`; default: unbonded links labelled, not refused).
    pub ble: site::BleSite,
}

/// What the screen shows about FHIR upload.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct SyncView {
    pub server: String,
    pub healthy: bool,
    pub pending: u64,
    pub waiting_for_patient: u64,
    pub oldest_pending_age_s: Option<u64>,
    /// Readings the server refused.
    pub dead_letters: u64,
    /// Readings parked after failing again and again (re-queueable like dead letters).
    pub parked: u64,
    /// Why the latest reading was refused or parked: status and issue codes only.
    pub last_set_aside: Option<String>,
    pub uploaded: u64,
    pub last_error: Option<String>,
    /// Devices whose identifier the server holds more than once (Vigil uses the lowest id).
    pub duplicate_devices: u64,
    /// Audit-trail records not yet on the server as `AuditEvent`s (`audit_upload`).
    pub audit_pending: u64,
}

/// A FHIR Patient found by MRN, for the nurse to confirm at admission. `Debug` shows only
/// the reference (no identity in logs or panics).
#[derive(Clone, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct PatientMatch {
    pub reference: String,
    pub mrn: Option<String>,
    pub name: String,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
}

impl std::fmt::Debug for PatientMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatientMatch")
            .field("reference", &self.reference)
            .finish_non_exhaustive()
    }
}

/// Where bedside devices come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceMode {
    /// Always the simulated ward (`--simulate`).
    Simulated,
    /// Bluetooth LE when an adapter is present, else the simulated ward,
    /// clearly labelled. Never both: simulated data never mixes into real beds.
    Auto,
    /// No device source: the caller feeds events and drives the pipeline's
    /// ticks itself through [`Vigil::take_replay_feed`] (`vigil replay`).
    Replay,
}

/// A nearby device found by a scan, for the "Add device" screen.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct ScanResult {
    pub address: String,
    pub name: Option<String>,
    pub rssi: i16,
    pub kinds: Vec<vigil_devices::DeviceKind>,
    pub assigned_bed: Option<String>,
    /// Link security: bonded with this workstation (`None`: the platform does not say).
    pub bonded: Option<bool>,
}

fn alarm_category(c: PatientCategory) -> vigil_alarms::PatientCategory {
    match c {
        PatientCategory::Adult => vigil_alarms::PatientCategory::Adult,
        PatientCategory::Paediatric => vigil_alarms::PatientCategory::Paediatric,
        PatientCategory::Neonatal => vigil_alarms::PatientCategory::Neonatal,
    }
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
    /// The value is not echoed: a date of birth is PHI.
    #[error("invalid date of birth: expected YYYY-MM-DD, not in the future")]
    BadDate,
    #[error("invalid {0}")]
    Invalid(#[from] input::InvalidInput),
    /// The reference is not one a search by the admission's MRN returns.
    #[error("{0} is not a patient the FHIR server finds by this admission's MRN")]
    NotFoundByMrn(String),
    #[error("unknown patient category '{0}': expected adult, paediatric or neonatal")]
    BadCategory(String),
    #[error(transparent)]
    Alarm(#[from] vigil_alarms::AlarmError),
    #[error("no Bluetooth adapter: this workstation runs simulated devices")]
    NoAdapter,
    #[error("Bluetooth: {0}")]
    Bluetooth(String),
    #[error("unknown device kind '{0}'")]
    BadKind(String),
    #[error("FHIR: {0}")]
    Fhir(String),
    #[error("no FHIR server is configured for this site")]
    NoFhir,
    #[error("{0}")]
    Config(String),
    #[error("unknown alarm parameter '{0}'")]
    BadParameter(String),
    #[error("invalid alarm limit: {0}")]
    BadLimit(String),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error(transparent)]
    Report(#[from] report::ReportError),
    #[error(transparent)]
    Update(#[from] update::UpdateRefusal),
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
            CoreError::BadDate | CoreError::BadCategory(_) => "invalid_patient",
            CoreError::Invalid(_) => "invalid_input",
            CoreError::NotFoundByMrn(_) => "fhir",
            CoreError::Alarm(_) => "alarm",
            CoreError::NoAdapter => "no_adapter",
            CoreError::Bluetooth(_) => "bluetooth",
            CoreError::BadKind(_) => "bad_kind",
            CoreError::Fhir(_) => "fhir",
            CoreError::NoFhir => "no_fhir",
            CoreError::Config(_) => "config",
            CoreError::BadParameter(_) | CoreError::BadLimit(_) => "bad_limit",
            CoreError::Auth(e) => e.code(),
            CoreError::Report(report::ReportError::Empty { .. }) => "report_empty",
            CoreError::Report(_) => "report",
            CoreError::Update(e) => e.code(),
        }
    }
}

/// A running Vigil.
pub struct Vigil {
    store: Store,
    sync: Option<(sync::Sync, String)>,
    bluetooth: Mutex<Option<Arc<bluetooth::Bluetooth>>>,
    /// [`DeviceMode::Replay`]: the pipeline's input, until the driver takes it.
    feed: Mutex<Option<replay::Feed>>,
    ctx: pipeline::Context,
    cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    info: AppInfo,
    auth: auth::Auth,
    /// Held while running: `vigil store restore` refuses to replace a store in use.
    _in_use: vigil_store::backup::InUse,
}

/// Live fan-out capacity per subscriber before it lags and resyncs.
const LIVE_CAPACITY: usize = 8192;

impl Vigil {
    pub async fn start(cfg: Config) -> Result<Vigil, CoreError> {
        config::secure_data_dir(&cfg.data_dir).map_err(|e| CoreError::Config(e.to_string()))?;
        let in_use = vigil_store::backup::InUse::shared(&config::store_path(&cfg.data_dir))?;
        // A damaged store is moved aside and replaced: monitoring must not
        // depend on the record (a wrong key is still refused).
        let (store, moved_aside) =
            Store::open_or_recover(&config::store_path(&cfg.data_dir), &cfg.key).await?;
        // The files SQLite just created (umask permitting others to read them): private.
        config::secure_data_dir(&cfg.data_dir).map_err(|e| CoreError::Config(e.to_string()))?;
        let use_ble = cfg.devices == DeviceMode::Auto && vigil_devices::ble::adapter_present().await;
        let replay = cfg.devices == DeviceMode::Replay;
        let source = (!use_ble && !replay).then(|| {
            SimulatedWard::new(SimConfig {
                scenario: cfg.sim.scenario,
                beds: cfg.sim.beds,
                seed: cfg.sim.seed,
                clock: cfg.clock.clone(),
            })
        });
        let beds = match &source {
            Some(sim) => sim.beds(),
            None => (1..=cfg.sim.beds).map(|i| format!("bed-{i}")).collect(),
        };
        // What the store holds at start. A store that opened but cannot be
        // read back (a damaged record or page quick_check did not see) is
        // moved aside like one that did not open: monitoring goes on.
        let (store, moved_aside, (mut alarming, ward, mut not_restored)) = match load(&store, &cfg, &beds)
            .await
        {
            Ok(loaded) => (store, moved_aside, loaded),
            Err(CoreError::Store(e)) if moved_aside.is_none() && unreadable(&e) => {
                let path = config::store_path(&cfg.data_dir);
                let reason = e.to_string();
                store.close().await;
                let aside = vigil_store::move_aside(&path, chrono::Utc::now())?;
                tracing::error!(moved_to = %aside.display(), %reason, "the store cannot be read back: moved aside, starting a new one");
                let store = Store::open(&path, &cfg.key).await?;
                let loaded = load(&store, &cfg, &beds).await?;
                (
                    store,
                    Some(vigil_store::MovedAside { path: aside, reason }),
                    loaded,
                )
            }
            Err(e) => return Err(e),
        };
        if moved_aside.is_some() {
            not_restored.merge(alarming.recording_unavailable(&beds, cfg.clock.now()));
        }
        let ward = Arc::new(Mutex::new(ward));

        let cancel = CancellationToken::new();
        let stats = Arc::new(Stats::default());
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        let (ev_tx, ev_rx) = mpsc::channel(1024);
        let (ticks, feed) = if replay {
            let (control_tx, control_rx) = mpsc::channel(16);
            (
                pipeline::Ticks::Driven(control_rx),
                Some(replay::Feed::new(ev_tx.clone(), control_tx)),
            )
        } else {
            (pipeline::Ticks::RealTime, None)
        };
        let (store_tx, store_rx) = mpsc::channel(if replay { writer::REPLAY_CHANNEL } else { writer::CHANNEL });
        let (log_tx, log_rx) = mpsc::channel(1024);
        let ctx = pipeline::Context {
            ward: ward.clone(),
            alarming: Arc::new(Mutex::new(alarming)),
            live: live.clone(),
            alarm_log: log_tx,
            clock: cfg.clock.clone(),
            stats: stats.clone(),
        };

        ctx.publish(not_restored).await;

        let info = AppInfo {
            version: env!("CARGO_PKG_VERSION"),
            // Replayed data is labelled simulated: never taken for a patient's.
            mode: if use_ble { "real" } else { "simulated" },
            scenario: match &source {
                Some(_) => Some(cfg.sim.scenario.name().to_string()),
                None if replay => Some("replay".to_string()),
                None => None,
            },
            key_source: cfg.key.describe(),
            data_dir: cfg.data_dir.display().to_string(),
            store_recovered_from: moved_aside.map(|m| m.path.display().to_string()),
            store_rolled_back: store.rolled_back().map(|r| {
                format!(
                    "store counter {} is behind {} ({})",
                    r.store,
                    r.mirror,
                    r.mirror_path.display()
                )
            }),
            site_files: cfg.site_files.clone(),
        };

        let mut tasks = Vec::new();
        let auth = auth::Auth::with_queue(stats.audit.clone());
        // The audit trail's writer: actions queue records, never waiting on it.
        tasks.push(tokio::spawn(audit::run(
            auth.audit_queue(),
            store.clone(),
            cancel.clone(),
        )));
        let bluetooth = if use_ble {
            let bt = Arc::new(bluetooth::Bluetooth::new(
                store.clone(),
                cfg.clock.clone(),
                ev_tx,
                cancel.clone(),
            ));
            if let Err(e) = bt.restart().await {
                tracing::error!(error = %e, "Bluetooth source could not start");
            }
            // First connections pin their device's identity: saved with the assignment.
            tasks.push(tokio::spawn(trust::save_pins(
                ctx.ward.clone(),
                store.clone(),
                cancel.clone(),
            )));
            Some(bt)
        } else {
            if let Some(source) = source {
                let src_cancel = cancel.clone();
                tasks.push(tokio::spawn(async move {
                    if let Err(e) = Box::new(source).run(ev_tx, src_cancel).await {
                        tracing::error!(error = %e, "device source stopped");
                    }
                }));
            }
            // Replay: the feed holds the only sender from here on.
            None
        };
        tasks.push(tokio::spawn(pipeline::run(ev_rx, ticks, store_tx, ctx.clone())));
        tasks.push(tokio::spawn(pipeline::log_alarms(
            log_rx,
            store.clone(),
            stats.clone(),
            cancel.clone(),
        )));
        tasks.push(tokio::spawn(writer::write(
            store_rx,
            store.clone(),
            stats.clone(),
            // A replay waits for the store; live devices never do.
            if replay { writer::Limits::replay() } else { writer::Limits::default() },
        )));
        // Store upkeep: compaction, retention and the free-space warning.
        tasks.push(tokio::spawn(maintenance::run(
            store.clone(),
            ctx.clone(),
            maintenance::Upkeep {
                retention: cfg.retention,
                data_dir: cfg.data_dir.clone(),
                low_disk_bytes: cfg.low_disk_bytes,
            },
            cancel.clone(),
        )));
        {
            let (a, w, s, c, k) = (
                ctx.alarming.clone(),
                ctx.ward.clone(),
                store.clone(),
                cfg.clock.clone(),
                cancel.clone(),
            );
            tasks.push(tokio::spawn(
                async move { persist::run(&a, &w, &s, &*c, k).await },
            ));
        }

        let sync = match &cfg.fhir {
            Some(site) => {
                let (s, task) = sync::start(
                    store.clone(),
                    site,
                    ctx.ward.clone(),
                    cfg.clock.clone(),
                    cancel.clone(),
                )
                .map_err(CoreError::Fhir)?;
                tasks.push(task);
                tasks.push(tokio::spawn(sync::watch_delivery(
                    ctx.clone(),
                    s.status.clone(),
                    store.clone(),
                    sync::DeliveryLimits {
                        outage: chrono::Duration::seconds(site.outage_alarm_s.min(7 * 24 * 3600) as i64),
                        set_aside: site.dead_letter_alarm,
                    },
                    cancel.clone(),
                )));
                Some((s, site.base_url.clone()))
            }
            None => None,
        };
        Ok(Vigil {
            store,
            sync,
            bluetooth: Mutex::new(bluetooth),
            feed: Mutex::new(feed),
            ctx,
            cancel,
            tasks: Mutex::new(tasks),
            info,
            auth,
            _in_use: in_use,
        })
    }

    /// [`DeviceMode::Replay`]: the pipeline's input (device events, ticks,
    /// barriers), once. Dropping it ends the pipeline, as a stopped source does.
    pub fn take_replay_feed(&self) -> Option<replay::Feed> {
        self.feed.lock().unwrap().take()
    }

    pub fn info(&self) -> &AppInfo {
        &self.info
    }

    pub fn stats(&self) -> &Stats {
        &self.ctx.stats
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.ctx.clock
    }

    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    pub fn snapshot(&self) -> WardSnapshot {
        let now = self.ctx.clock.now();
        let mut snap = self.ctx.ward.lock().unwrap().snapshot(now);
        let a = self.ctx.alarming.lock().unwrap();
        snap.alarms = snap.beds.iter().map(|b| a.state(&b.bed, now)).collect();
        snap.news2 = snap
            .beds
            .iter()
            .filter_map(|b| {
                a.news2_latest(&b.bed).map(|s| view::News2View {
                    bed: b.bed.clone(),
                    score: s.clone(),
                })
            })
            .collect();
        snap
    }

    /// (devices, receiving) for status lines.
    pub fn device_counts(&self) -> (usize, usize) {
        self.ctx.ward.lock().unwrap().device_counts()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.ctx.live.subscribe()
    }

    /// Admits a patient; readings from now on belong to the new admission.
    pub async fn admit(&self, req: AdmitRequest) -> Result<AdmissionView, CoreError> {
        if !self.ctx.ward.lock().unwrap().has_bed(&req.bed) {
            return Err(CoreError::UnknownBed(req.bed));
        }
        let display_name = input::text("display name", &req.display_name, input::NAME_MAX, true)?;
        let mrn = input::text("MRN", &req.mrn, input::MRN_MAX, true)?;
        let dob = NaiveDate::parse_from_str(req.date_of_birth.trim(), "%Y-%m-%d")
            .ok()
            .filter(|d| *d <= self.ctx.clock.now().date_naive())
            .ok_or_else(|| CoreError::BadDate)?;
        let category = match req.category.as_str() {
            "adult" => PatientCategory::Adult,
            "paediatric" => PatientCategory::Paediatric,
            "neonatal" => PatientCategory::Neonatal,
            other => return Err(CoreError::BadCategory(other.to_string())),
        };
        let patient = Patient {
            display_name,
            mrn,
            date_of_birth: dob,
            category,
        };
        let adm = self.store.admit(&req.bed, patient, self.ctx.clock.now()).await?;
        let view = AdmissionView::from(&adm);
        self.ctx
            .alarming
            .lock()
            .unwrap()
            .set_patient(&req.bed, alarm_category(adm.patient.category));
        self.update_beds(|w| w.set_admission(&req.bed, Some(adm)));
        self.save_settings().await;
        tracing::info!(bed = %req.bed, "patient admitted");
        Ok(view)
    }

    pub async fn discharge(&self, bed: &str) -> Result<(), CoreError> {
        self.store.discharge(bed, self.ctx.clock.now()).await?;
        self.update_beds(|w| w.set_admission(bed, None));
        // Patient-specific limits revert; the bed's alarms and NEWS2 start afresh.
        let out = self
            .ctx
            .alarming
            .lock()
            .unwrap()
            .discharge(bed, self.ctx.clock.now());
        self.ctx.publish(out).await;
        self.save_settings().await;
        tracing::info!(bed = %bed, "patient discharged");
        Ok(())
    }

    fn bt(&self) -> Result<Arc<bluetooth::Bluetooth>, CoreError> {
        self.bluetooth.lock().unwrap().clone().ok_or(CoreError::NoAdapter)
    }

    /// Nearby devices advertising a supported health service, nearest first.
    pub async fn scan(&self, seconds: u64) -> Result<Vec<ScanResult>, CoreError> {
        self.bt()?;
        let found = vigil_devices::ble::scan(Duration::from_secs(seconds.clamp(1, 30)))
            .await
            .map_err(|e| CoreError::Bluetooth(e.to_string()))?;
        let assigned = self.store.devices().await?;
        Ok(found
            .into_iter()
            .map(|d| ScanResult {
                assigned_bed: assigned
                    .iter()
                    .find(|a| a.address.eq_ignore_ascii_case(&d.address))
                    .map(|a| a.bed.clone()),
                address: d.address,
                name: d.name,
                rssi: d.rssi,
                kinds: d.kinds,
                bonded: d.bonded,
            })
            .collect())
    }

    /// Assigns (or moves) a device to a bed; remembered and reconnected.
    pub async fn assign_device(&self, address: &str, bed: &str, kind: &str) -> Result<(), CoreError> {
        let bt = self.bt()?;
        self.known_bed(bed)?;
        let device_kind = bluetooth::kind_of(kind).ok_or_else(|| CoreError::BadKind(kind.to_string()))?;
        let address = vigil_devices::ble::normalize_address(address)
            .map_err(|e| CoreError::Bluetooth(e.to_string()))?;
        self.store.assign_device(&address, bed, kind).await?;
        // A nurse assigning the device accepts the identity it has now: pinned
        // at once if read on a link that is up, else at its next connection
        // (a "device identity changed" alarm ends here).
        let (pin, view) = self
            .ctx
            .ward
            .lock()
            .unwrap()
            .accept_identity(&vigil_devices::ble::device_id(&address));
        self.store
            .set_device_info(&address, &trust::pin_json(pin.as_ref()))
            .await?;
        if let Some(v) = view {
            self.device_changed(v).await;
        }
        // Only this device's link (re)starts: the rest of the ward stays connected.
        let assignment = vigil_devices::ble::Assignment::new(&address, bed, device_kind);
        bt.attach(assignment).await.map_err(CoreError::Bluetooth)?;
        tracing::info!(device = %address, bed = %bed, "device assigned");
        Ok(())
    }

    /// Removes a device from its bed (its readings stay with their admission).
    /// Accepts the bare address or the device id the screen shows ("ble-<address>").
    pub async fn remove_device(&self, address: &str) -> Result<(), CoreError> {
        let bt = self.bt()?;
        let address = vigil_devices::ble::address_of(address);
        self.store.remove_device(address).await?;
        // Stop its link first (the others stay up): once this returns the
        // source sends nothing more about it, and then the ward forgets it.
        let detached = bt.detach(address).await.map_err(CoreError::Bluetooth);
        let gone = self
            .ctx
            .ward
            .lock()
            .unwrap()
            .detach(&vigil_devices::ble::device_id(address));
        if let Some(d) = gone {
            let out = self
                .ctx
                .alarming
                .lock()
                .unwrap()
                .forget_device(&d, self.ctx.clock.now());
            self.ctx.publish(out).await;
        }
        detached
    }

    /// A device's view changed by a nurse's action (not through the
    /// pipeline): its technical conditions follow, and the screen is told.
    async fn device_changed(&self, v: view::DeviceView) {
        let now = self.ctx.clock.now();
        let out = self.ctx.alarming.lock().unwrap().on_device(&v, now);
        let _ = self.ctx.live.send(LiveEvent::Device(v));
        self.ctx.publish(out).await;
    }

    /// Asks the platform to bond with a device (BlueZ `Pair()` on Linux); returns
    /// the bonding state read back, which the device's view (and the site's
    /// `ble.require_bonded` policy) takes at once.
    pub async fn pair_device(&self, address: &str) -> Result<Option<bool>, CoreError> {
        self.bt()?;
        let address = vigil_devices::ble::normalize_address(vigil_devices::ble::address_of(address))
            .map_err(|e| CoreError::Bluetooth(e.to_string()))?;
        let bonded = vigil_devices::ble::pair(&address)
            .await
            .map_err(|e| CoreError::Bluetooth(e.to_string()))?;
        let view = self
            .ctx
            .ward
            .lock()
            .unwrap()
            .security(&vigil_devices::ble::device_id(&address), bonded);
        if let Some(v) = view {
            self.device_changed(v).await;
        }
        tracing::info!(device = %address, ?bonded, "device paired");
        Ok(bonded)
    }

    /// Reads a scanned device's Device Information (serial number, model, System ID)
    /// before it is assigned: the nurse checks the serial against the device's label.
    pub async fn identify_device(&self, address: &str) -> Result<view::DeviceInfoView, CoreError> {
        self.bt()?;
        let address = vigil_devices::ble::normalize_address(vigil_devices::ble::address_of(address))
            .map_err(|e| CoreError::Bluetooth(e.to_string()))?;
        let fields = vigil_devices::ble::identify(&address)
            .await
            .map_err(|e| CoreError::Bluetooth(e.to_string()))?;
        let mut info = view::DeviceInfoView::default();
        for f in &fields {
            info.apply(f);
        }
        Ok(info)
    }

    /// Sets a device's clock through the Current Time Service, where it has one.
    pub async fn set_device_clock(&self, address: &str) -> Result<(), CoreError> {
        self.bt()?;
        let address = vigil_devices::ble::address_of(address);
        let local = chrono::Local::now().naive_local();
        vigil_devices::ble::set_device_clock(address, local)
            .await
            .map_err(|e| CoreError::Bluetooth(e.to_string()))
    }

    /// FHIR upload health, when a server is configured. Queue figures come
    /// from the store (always current); health from the syncer's last pass.
    pub async fn sync_status(&self) -> Option<SyncView> {
        let (s, server) = self.sync.as_ref()?;
        let st = s.status.borrow().clone();
        let q = self.store.outbox_status().await.ok();
        let now = self.ctx.clock.now();
        // The audit trail's upload counts too: never "healthy" while it is failing.
        let audit_error = s.audit.last_error.lock().unwrap().clone();
        let audit_pending = match (self.store.audit_len().await, self.store.audit_uploaded().await) {
            (Ok(len), Ok(done)) => (len - done).max(0) as u64,
            _ => 0,
        };
        Some(SyncView {
            server: server.clone(),
            healthy: st.healthy && audit_error.is_none(),
            pending: q.as_ref().map_or(st.pending, |q| q.pending_readings),
            waiting_for_patient: st.waiting_for_patient,
            oldest_pending_age_s: match &q {
                Some(q) => q.oldest_queued.map(|t| (now - t).num_seconds().max(0) as u64),
                None => st.oldest_pending_age.map(|d| d.as_secs()),
            },
            dead_letters: q.as_ref().map_or(st.dead_letters, |q| q.dead_letters),
            parked: q.as_ref().map_or(st.parked, |q| q.parked),
            last_set_aside: q.map_or(st.last_set_aside, |q| q.last_set_aside),
            uploaded: st.uploaded,
            last_error: st.last_error.or(audit_error.map(|e| format!("audit trail: {e}"))),
            duplicate_devices: st.duplicate_devices,
            audit_pending,
        })
    }

    /// Patients on the FHIR server with this MRN (search by identifier).
    pub async fn find_patient(&self, mrn: &str) -> Result<Vec<PatientMatch>, CoreError> {
        let (s, _) = self.sync.as_ref().ok_or(CoreError::NoFhir)?;
        let mrn = input::text("MRN", mrn, input::MRN_MAX, true)?;
        let found = s
            .client
            .search_patient_by_mrn(&s.mrn_system, &mrn)
            .await
            .map_err(|e| CoreError::Fhir(e.to_string()))?;
        Ok(found
            .into_iter()
            .map(|p| PatientMatch {
                name: p
                    .given
                    .iter()
                    .cloned()
                    .chain(p.family.clone())
                    .collect::<Vec<_>>()
                    .join(" "),
                reference: p.reference,
                mrn: p.mrn,
                birth_date: p.birth_date,
                gender: p.gender,
            })
            .collect())
    }

    /// Links the bed's current admission to a FHIR Patient; its readings,
    /// including those taken before the link, upload from now on.
    pub async fn link_patient(&self, bed: &str, patient_ref: &str) -> Result<(), CoreError> {
        let (s, _) = self.sync.as_ref().ok_or(CoreError::NoFhir)?;
        self.known_bed(bed)?;
        let patient_ref = input::patient_reference(patient_ref)?;
        let admission = self
            .store
            .current_admissions()
            .await?
            .into_iter()
            .find(|a| a.bed == bed)
            .ok_or_else(|| CoreError::Store(StoreError::BedEmpty(bed.to_string())))?;
        // Only a Patient the server finds by this admission's MRN (what the screen offered
        // the nurse to confirm): the webview cannot point a bed's readings at any record.
        let found = s
            .client
            .search_patient_by_mrn(&s.mrn_system, &admission.patient.mrn)
            .await
            .map_err(|e| CoreError::Fhir(e.to_string()))?;
        if !found.iter().any(|p| p.reference == patient_ref) {
            return Err(CoreError::NotFoundByMrn(patient_ref.to_string()));
        }
        self.store.link_patient(&admission.id, patient_ref).await?;
        self.update_beds(|w| w.set_link(&admission.id.0, patient_ref));
        s.outbox.forget_links();
        s.notify.notify_one();
        tracing::info!(bed = %bed, "admission linked to a FHIR Patient");
        Ok(())
    }

    /// Readings the FHIR server refused (or that were parked), with the reasons.
    pub async fn dead_letters(&self) -> Result<Vec<vigil_store::DeadLetter>, CoreError> {
        Ok(self.store.dead_letters().await?)
    }

    /// Puts dead letters and parked readings (all, or those with these ids)
    /// back in the outbox and starts a pass; how many. Each then reaches the
    /// server once (conditional create on its identifier).
    pub async fn requeue_dead_letters(&self, ids: Option<&[i64]>) -> Result<u64, CoreError> {
        let (s, _) = self.sync.as_ref().ok_or(CoreError::NoFhir)?;
        let n = self.store.requeue_dead_letters(ids).await?;
        s.notify.notify_one();
        tracing::info!(readings = n, "dead letters re-queued for FHIR upload");
        Ok(n)
    }

    fn known_bed(&self, bed: &str) -> Result<(), CoreError> {
        if self.ctx.ward.lock().unwrap().has_bed(bed) {
            Ok(())
        } else {
            Err(CoreError::UnknownBed(bed.to_string()))
        }
    }

    /// Pauses alarm audio at a bed (IEC 60601-1-8 audio paused, time-limited).
    pub async fn pause_audio(&self, bed: &str, user: &str) -> Result<(), CoreError> {
        self.known_bed(bed)?;
        let user = &input::user(user)?;
        let out = self
            .ctx
            .alarming
            .lock()
            .unwrap()
            .pause_audio(bed, user, self.ctx.clock.now());
        self.ctx.publish(out).await;
        Ok(())
    }

    /// Acknowledges the alarms the operator saw at a bed, by id (the screen
    /// sends the ids it displayed; "acknowledge all" is all of those). Ids
    /// that ended meanwhile are skipped and an alarm that started after the
    /// screen was drawn is never acknowledged. Returns how many were.
    pub async fn acknowledge(&self, bed: &str, alarms: &[u64], user: &str) -> Result<usize, CoreError> {
        self.known_bed(bed)?;
        let user = &input::user(user)?;
        let out = self
            .ctx
            .alarming
            .lock()
            .unwrap()
            .acknowledge(bed, alarms, user, self.ctx.clock.now())?;
        let n = out
            .events
            .iter()
            .filter(|e| matches!(e.event, vigil_alarms::AlarmEventKind::Acknowledged { .. }))
            .count();
        self.ctx.publish(out).await;
        self.save_settings().await;
        Ok(n)
    }

    /// The screen reports whether it can sound alarms (audio unlocked, window
    /// visible). When it cannot, every bed shows "ALARM SOUND UNAVAILABLE":
    /// a mute monitor must never look like a quiet ward.
    pub async fn report_audio(&self, available: bool) {
        let now = self.ctx.clock.now();
        let beds: Vec<String> = self
            .ctx
            .ward
            .lock()
            .unwrap()
            .beds()
            .into_iter()
            .map(|b| b.bed)
            .collect();
        let out = self.ctx.alarming.lock().unwrap().workstation_health(
            vigil_alarms::TechnicalKind::AudioUnavailable,
            available,
            &beds,
            now,
        );
        self.ctx.publish(out).await;
    }

    /// Sets a patient-specific alarm limit at a bed (reverts at discharge).
    /// `parameter` is e.g. "heart_rate", "spo2", "resp_rate", "nibp_systolic", "temperature".
    pub async fn set_limit(
        &self,
        bed: &str,
        parameter: &str,
        low: Option<f64>,
        high: Option<f64>,
        user: &str,
    ) -> Result<(), CoreError> {
        self.known_bed(bed)?;
        let user = &input::user(user)?;
        let param: vigil_alarms::Parameter =
            serde_json::from_value(serde_json::Value::String(parameter.to_string()))
                .map_err(|_| CoreError::BadParameter(parameter.to_string()))?;
        let out = self
            .ctx
            .alarming
            .lock()
            .unwrap()
            .set_limit(bed, param, low, high, user, self.ctx.clock.now())
            .map_err(|e| CoreError::BadLimit(e.to_string()))?;
        // Logged (encrypted) in the alarm log with who and when.
        self.ctx.publish(out).await;
        self.save_settings().await;
        tracing::info!(bed = %bed, parameter = %parameter, "alarm limit changed for the patient");
        Ok(())
    }

    /// A nurse enters a NEWS2 parameter (consciousness, air/oxygen, scale …).
    pub async fn enter_news2(
        &self,
        bed: &str,
        entry: alarming::News2Entry,
        user: &str,
    ) -> Result<(), CoreError> {
        self.known_bed(bed)?;
        let user = &input::user(user)?;
        let out = self
            .ctx
            .alarming
            .lock()
            .unwrap()
            .enter(bed, entry, user, self.ctx.clock.now());
        self.ctx.publish(out).await;
        self.save_settings().await;
        Ok(())
    }

    /// The bed's NEWS2 scores, oldest first (for the trend).
    pub fn news2_history(&self, bed: &str) -> Vec<vigil_alarms::News2> {
        self.ctx.alarming.lock().unwrap().news2_history(bed)
    }

    /// The encrypted alarm log of a bed (or all beds) for the last `hours`.
    pub async fn alarm_log(
        &self,
        bed: Option<&str>,
        hours: i64,
    ) -> Result<Vec<vigil_store::AlarmRecord>, CoreError> {
        let now = self.ctx.clock.now();
        Ok(self
            .store
            .alarm_log(bed, now - chrono::Duration::hours(hours), now)
            .await?)
    }

    /// Saves the clinical settings that changed (before a command answers,
    /// so what the nurse set survives even a `kill -9` right after). A failed
    /// save is logged and retried by the background saver.
    async fn save_settings(&self) {
        let _ = persist::save(
            &self.ctx.alarming,
            &self.ctx.ward,
            &self.store,
            self.ctx.clock.now(),
        )
        .await;
    }

    fn update_beds(&self, f: impl FnOnce(&mut Ward)) {
        let beds = {
            let mut w = self.ctx.ward.lock().unwrap();
            f(&mut w);
            w.beds()
        };
        let _ = self.ctx.live.send(LiveEvent::Beds(beds));
    }

    /// Streams batched [`WardUpdate`]s every `every` until `sink` returns false
    /// or Vigil shuts down. A subscriber that falls behind gets a full resync
    /// instead of blocking anyone. Every reading is sent; a device's views
    /// fold within one link state, and an alarm change goes at once unless
    /// nothing or only a quoted value moved (`batch`).
    ///
    /// `rx` comes from [`Vigil::subscribe`], taken *before* the caller answers
    /// or reads a snapshot: an event between the snapshot and the subscription
    /// (an alarm ending, say) would otherwise be lost and the screen would
    /// show a condition that no longer exists.
    pub async fn stream_updates(
        &self,
        mut rx: broadcast::Receiver<LiveEvent>,
        every: Duration,
        mut sink: impl FnMut(WardUpdate) -> bool,
    ) {
        let mut tick = tokio::time::interval(every);
        let mut batch = batch::Batch::default();
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                ev = rx.recv() => match ev {
                    Ok(LiveEvent::Reading(r)) => batch.reading(r),
                    Ok(LiveEvent::Device(d)) => batch.device(d),
                    Ok(LiveEvent::Beds(b)) => batch.update.beds = Some(b),
                    Ok(LiveEvent::Alarms(a)) => {
                        // An alarm change a nurse acts on is not batched: sent
                        // at once, with whatever readings led to it.
                        if batch.alarms(a)
                            && !sink(batch.take(self.ctx.clock.now().timestamp_millis()))
                        {
                            return;
                        }
                    }
                    Ok(LiveEvent::News2(n)) => {
                        batch.update.news2.retain(|x| x.bed != n.bed);
                        batch.update.news2.push(n);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let snap = self.snapshot();
                        batch.replace(WardUpdate {
                            now_ms: 0,
                            readings: snap.latest,
                            devices: snap.devices,
                            beds: Some(snap.beds),
                            alarms: snap.alarms,
                            news2: snap.news2,
                        });
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    // Always send, even empty: the screen uses the heartbeat
                    // to know the core is alive and to age its values.
                    if !sink(batch.take(self.ctx.clock.now().timestamp_millis())) {
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
        // The Bluetooth source holds a sender into the pipeline: let it go so
        // the pipeline can drain and end.
        let bt = self.bluetooth.lock().unwrap().take();
        if let Some(bt) = bt {
            bt.stopped().await;
        }
        // Likewise a replay feed nobody took.
        drop(self.take_replay_feed());
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap());
        for t in tasks {
            let _ = t.await;
        }
        self.save_settings().await;
        self.store.clone().close().await;
    }
}

/// Every stored-record reading (glucose) of the ward's beds and of the beds
/// devices are assigned to, for [`Ward::seed_records`]. Only those series'
/// chunks are opened: a few per meter and day.
/// Whether a store error at start means the record cannot be read back
/// (damaged file, or a sealed record that no longer authenticates).
fn unreadable(e: &StoreError) -> bool {
    e.is_damaged()
        || matches!(
            e,
            StoreError::Tampered { .. }
                | StoreError::Corrupt { .. }
                | StoreError::TamperedRecord { .. }
                | StoreError::IntegrityRow { .. }
                | StoreError::TamperedAdmission(_)
        )
}

/// Reads what the store holds at start: admissions, links, latest values,
/// records and saved settings.
async fn load(
    store: &Store,
    cfg: &Config,
    beds: &[String],
) -> Result<(alarming::Alarming, Ward, alarming::Outcome), CoreError> {
    let admissions = store.current_admissions().await?;
    // Alarm ids continue after a time in µs so they never repeat in one
    // data directory's log. A replay's clock starts at a fixed instant in
    // the past, so a second replay into the same directory would reuse
    // the first one's ids: take the wall clock when it is later.
    let ids_after = cfg.clock.now().max(vigil_model::SystemClock.now());
    let mut alarming = alarming::Alarming::new(cfg.alarm_preset.clone(), ids_after);
    for a in &admissions {
        alarming.set_patient(&a.bed, alarm_category(a.patient.category));
    }
    let mut links = Vec::new();
    for a in &admissions {
        if let Some(l) = store.patient_link(&a.id).await? {
            links.push((a.id.0.clone(), l));
        }
    }
    let mut ward = Ward::new(beds.to_vec(), admissions);
    for (adm, l) in links {
        ward.set_link(&adm, &l);
    }
    ward.set_record_window(cfg.retention.0);
    ward.set_require_bonded(cfg.ble.require_bonded);
    // Identities pinned with the assignments (`trust`).
    for d in store.devices().await? {
        if let Some(pin) = d.info.as_ref().and_then(trust::pin_from_json) {
            ward.set_pin(&vigil_devices::ble::device_id(&d.address), pin);
        }
    }
    ward.seed_latest(store.latest_by_admission().await?, Duration::from_secs(1), cfg.clock.now());
    ward.seed_records(stored_records(store, &ward, cfg.clock.now()).await?);
    // Limits, NEWS2 entries and latched alarms as they were before the restart.
    let not_restored = persist::restore(&mut alarming, &ward, store, cfg.clock.now()).await?;
    Ok((alarming, ward, not_restored))
}

async fn stored_records(
    store: &Store,
    ward: &Ward,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<vigil_model::Reading>, CoreError> {
    let mut beds: std::collections::BTreeSet<String> = ward.beds().into_iter().map(|b| b.bed).collect();
    beds.extend(store.devices().await?.into_iter().map(|d| d.bed));
    let mut out = Vec::new();
    for bed in beds {
        for code in ward::RECORD_CODES {
            out.extend(
                store
                    .query_series(&vigil_store::SeriesQuery {
                        bed: bed.clone(),
                        code,
                        from: chrono::DateTime::UNIX_EPOCH,
                        // Far ahead of now: a scaled clock (`--speed`) stamps readings
                        // later than the wall clock.
                        to: now + chrono::Duration::days(365 * 100),
                    })
                    .await?,
            );
        }
    }
    Ok(out)
}

/// What the admit form sends. `Debug` leaves out name, MRN and date of birth.
#[derive(Clone, serde::Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct AdmitRequest {
    pub bed: String,
    pub display_name: String,
    pub mrn: String,
    pub date_of_birth: String,
    pub category: String,
}

impl std::fmt::Debug for AdmitRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmitRequest")
            .field("bed", &self.bed)
            .field("category", &self.category)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod phi_tests {
    use super::*;

    /// Issue 13 §6: `Debug` output ends up in logs, panics and test snapshots; a type holding
    /// a name, MRN or date of birth never prints them.
    #[test]
    fn debug_of_types_holding_identity_shows_none_of_it() {
        let (name, mrn, dob) = ("Ada Quinlan", "MRN-774411", "1961-02-03");
        let shown = [
            format!(
                "{:?}",
                AdmitRequest {
                    bed: "bed-1".into(),
                    display_name: name.into(),
                    mrn: mrn.into(),
                    date_of_birth: dob.into(),
                    category: "adult".into(),
                }
            ),
            format!(
                "{:?}",
                AdmissionView {
                    id: "adm-1".into(),
                    display_name: name.into(),
                    mrn: mrn.into(),
                    date_of_birth: dob.into(),
                    category: PatientCategory::Adult,
                    admitted_at: "2026-12-04T10:00:00Z".into(),
                    fhir_patient: Some("Patient/17".into()),
                }
            ),
            format!(
                "{:#?}",
                PatientMatch {
                    reference: "Patient/17".into(),
                    mrn: Some(mrn.into()),
                    name: name.into(),
                    birth_date: Some(dob.into()),
                    gender: Some("female".into()),
                }
            ),
        ];
        for s in &shown {
            for secret in [name, "Quinlan", mrn, "774411", dob, "female"] {
                assert!(!s.contains(secret), "{s}");
            }
        }
        assert!(shown[0].contains("bed-1") && shown[2].contains("Patient/17"));
    }
}
