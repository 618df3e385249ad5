//! The drain loop: outbox → batch Bundles of conditional creates → ack / dead-letter.
//!
//! * Order: items are taken in `seq` (insertion) order, `batch_size` at a time; each
//!   window becomes one batch Bundle (blood-pressure readings of one measurement become one
//!   panel Observation, see [`mapping::group`]). A window never splits a measurement: when a
//!   full window ends inside one (same device and time), that measurement waits for the
//!   next window.
//! * Exactly once: every Observation carries its deterministic identifier and is sent as a
//!   conditional create, so a retry of a Bundle whose response was lost (timeout, dropped
//!   connection after the server committed) finds the resources instead of duplicating
//!   them. An item is acked only after the server said 200/201 for it.
//! * Failures: network errors, 5xx, 408 and 429 (whole Bundle or single entries) are retried
//!   with exponential backoff and full jitter; a `Retry-After` (429/503) longer than the
//!   backoff is honoured (capped by `max_retry_after`), a shorter one (`0`, a date in the
//!   past) is not: the wait is max(`Retry-After`, backoff), at least `min_retry_wait`.
//! * Refusals: only a 400/413/422 for one entry ([`bundle::is_refusal`]) dead-letters that
//!   entry (with the server's OperationOutcome) and the rest go on; a whole-Bundle
//!   400/413/422 is bisected until the offending entries are found. Every other 4xx, for the
//!   Bundle or for an entry (401/403 authorisation, 404 wrong base, 409 …), is a
//!   configuration or authorisation problem: nothing is dead-lettered, the pass fails, is
//!   retried with backoff and [`SyncStatus::last_error`] says why. So is a window of two or
//!   more entries that the server refuses all in the same way (same status, same issue
//!   codes; also when found by bisecting): that is the server's configuration (a profile,
//!   a rule), not N bad readings ([`SyncError::AllRefused`]).
//! * Poison entries: a 5xx (other than 503, and without `Retry-After`: those say
//!   "overloaded", not "this entry") counts a failed attempt for the entry's items, durably
//!   in the outbox (for a whole-Bundle 5xx, for all items of the Bundle). An entry whose
//!   items reach [`SyncConfig::max_attempts`] is parked ([`SetAsideKind::Parked`]: kept
//!   beside the dead letters, counted in [`SyncStatus::parked`], re-queueable), so the
//!   queue moves on; a whole-Bundle 5xx is bisected (once an item is one failure from the
//!   limit) to find the entry. Only when the server took something else in the same pass:
//!   an outage never parks anything.
//! * Status: dead letters and parked items are counted in [`SyncStatus`] with the log-safe
//!   summary of the latest ([`SyncStatus::last_set_aside`]: status and issue codes, no
//!   values); the core raises the delivery-failure technical alarm from those counts.
//! * Patient link: an item whose admission is not linked to a Patient (`patient_ref` None)
//!   is skipped, not acked: it stays in the outbox and is sent on a later pass, once the
//!   bed is linked (the outbox resolves the link at peek time). Vital-signs Observations
//!   require a subject, and guessing one would be worse than waiting. Such items are counted
//!   in [`SyncStatus::waiting_for_patient`]; the store decides how long to keep readings of
//!   an admission that is never linked.
//! * Devices: the sensor Devices and the gateway Device are stored by conditional update
//!   (`PUT Device?identifier=…`) before the first Observation that needs them, the gateway's
//!   once per syncer, a sensor's again whenever its content (from [`SyncConfig::devices`])
//!   changed, so Device Information learnt later reaches the server. A sensor
//!   Device the server refuses with a 4xx (other than 401/403/404/408/429, which are retried
//!   as above) dead-letters that sensor's readings of the window with the reason
//!   `Device rejected: HTTP <status>: <OperationOutcome text>`; the other sensors'
//!   Observations of the window are sent as usual. The refusal is remembered for
//!   [`SyncConfig::rejected_device_ttl`] (default 5 minutes, measured on the syncer's
//!   [`Clock`]): until then that sensor's readings are dead-lettered without POSTing the
//!   Device again; after it the Device is tried again (the site may have fixed its server
//!   profile, or the sensor its Device Information). A refused gateway Device holds back
//!   everything: the pass fails with [`SyncError::GatewayDeviceRejected`] and is retried
//!   with backoff like a configuration error; [`SyncStatus::last_error`] names the gateway
//!   Device and carries the status and OperationOutcome text (the gateway Device holds only
//!   the gateway's own configuration, no patient data).
//!
//! * Time: a device-clock reading ([`Mdc::ATTR_TIME_ABS`], the core's record of a read of a
//!   device's clock) becomes a PHD IG Coincident Time Stamp Observation
//!   ([`mapping::coincident_time_stamp`]), conditional-created before the window's
//!   measurements and acked once stored (dead-lettered on a 4xx like any entry; a retryable
//!   failure holds back the window's measurements). The syncer keeps per device the latest
//!   stored one (offset and `Observation/<id>`); a measurement after it in outbox order whose
//!   device time − gateway time is within 2 s of that offset (its gateway time was placed
//!   with that offset, or it is a live time stamp consistent with it) carries the PHD IG
//!   `CoincidentTimeStampReference` extension pointing at it. A measurement without a
//!   device time, or with one off that timeline (a record placed at receipt time, a clock
//!   set meanwhile), has no reference. The cache lives in memory: after a syncer restart it
//!   is empty until the device's next clock reading, so measurements uploaded until then
//!   go without the reference.
//!
//! Logs carry counts, seqs, statuses and issue codes only: never patient references'
//! identities, values, tokens or OperationOutcome diagnostics.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::Value as Json;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use vigil_model::{Clock, Mdc, Reading};

use crate::bundle::{self, EntryResult};
use crate::client::FhirClient;
use crate::error::{Error, Outcome};
use crate::mapping::{self, BpParts, DeviceInfo, Group, ObservationContext};
use crate::outbox::{Outbox, OutboxError, OutboxItem, SetAside, SetAsideKind};

/// Exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
    /// 0 = no jitter; 1 = uniformly anywhere in [0, delay] ("full jitter").
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            multiplier: 2.0,
            jitter: 0.5,
        }
    }
}

impl Backoff {
    /// Delay before retry number `attempt` (0-based).
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let base = self.initial.as_secs_f64() * self.multiplier.powi(attempt.min(64) as i32);
        let capped = base.min(self.max.as_secs_f64());
        let j = self.jitter.clamp(0.0, 1.0);
        Duration::from_secs_f64(capped * (1.0 - j * rng.gen::<f64>()))
    }
}

/// Tells the syncer about devices (from the Device Information Service); `from_id` for
/// devices it knows nothing more about.
pub type DeviceLookup = Arc<dyn Fn(&str) -> DeviceInfo + Send + Sync>;

/// How the syncer works.
#[derive(Clone)]
pub struct SyncConfig {
    /// Observations per batch Bundle.
    pub batch_size: usize,
    pub backoff: Backoff,
    /// Longest `Retry-After` honoured as is (longer ones are capped to this).
    pub max_retry_after: Duration,
    /// Shortest wait after a failed pass, whatever the backoff's jitter or the server's
    /// `Retry-After` say.
    pub min_retry_wait: Duration,
    /// Failed attempts (5xx) after which an entry is parked so that the queue moves on.
    pub max_attempts: u32,
    /// Idle wait between passes when the outbox was drained (a [`Syncer::notifier`] wakes
    /// it earlier).
    pub poll_interval: Duration,
    /// The Vigil gateway's own Device.
    pub gateway: DeviceInfo,
    pub devices: DeviceLookup,
    /// How long a sensor Device the server refused (4xx) stays refused (on the syncer's
    /// clock): its readings are dead-lettered without POSTing the Device again until then.
    pub rejected_device_ttl: Duration,
}

impl SyncConfig {
    pub fn new(gateway: DeviceInfo) -> Self {
        SyncConfig {
            batch_size: 200,
            backoff: Backoff::default(),
            max_retry_after: Duration::from_secs(600),
            min_retry_wait: Duration::from_secs(1),
            max_attempts: 5,
            poll_interval: Duration::from_secs(5),
            gateway,
            devices: Arc::new(|id: &str| DeviceInfo::from_id(id)),
            rejected_device_ttl: Duration::from_secs(300),
        }
    }
}

/// What the screen and status line show about the upload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncStatus {
    /// The last attempt reached the server and it took what it was sent.
    pub healthy: bool,
    /// Items in the outbox (including those waiting for a patient link).
    pub pending: u64,
    pub waiting_for_patient: u64,
    /// Age of the oldest pending item (by receive time).
    pub oldest_pending_age: Option<Duration>,
    /// Items the server refused (dead letters).
    pub dead_letters: u64,
    /// Items parked after [`SyncConfig::max_attempts`] failures.
    pub parked: u64,
    /// Log-safe summary (status, issue codes) of the latest item dead-lettered or parked.
    pub last_set_aside: Option<String>,
    /// Items acked by this syncer.
    pub uploaded: u64,
    /// Log-safe description of the last failure (status, issue codes); for a refused
    /// gateway Device also the server's OperationOutcome text (see
    /// [`SyncError::GatewayDeviceRejected`]).
    pub last_error: Option<String>,
    pub last_success: Option<DateTime<Utc>>,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// Devices (sensors, gateway) whose identifier the server holds more than once.
    pub duplicate_devices: u64,
}

/// Result of one pass over the outbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    pub acked: u64,
    pub dead_lettered: u64,
    pub parked: u64,
    /// Items skipped because their admission has no Patient link.
    pub waiting: u64,
    pub bundles: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Fhir(#[from] Error),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The server refused the gateway's own Device with a 4xx: no Observation can be sent
    /// without it. Retried with backoff like a configuration error. `Display` is log-safe
    /// (status, issue codes); [`SyncStatus::last_error`] also gets the OperationOutcome text.
    #[error("gateway Device rejected by the FHIR server: HTTP {status}{}", outcome.as_ref().map(|o| format!(" ({o})")).unwrap_or_default())]
    GatewayDeviceRejected { status: u16, outcome: Option<Outcome> },
    /// Every entry of a window was refused in the same way: a configuration problem (a
    /// profile or rule on the server), not that many bad readings. Nothing is
    /// dead-lettered; retried with backoff. Log-safe.
    #[error("the FHIR server refused all {entries} entries the same way: HTTP {status}{} (a server configuration problem? retried later)", outcome.as_ref().map(|o| format!(" ({o})")).unwrap_or_default())]
    AllRefused {
        entries: usize,
        status: u16,
        outcome: Option<Outcome>,
    },
    /// Entries answered with a 4xx that is not about their content (401, 403, 404, 409
    /// …): authorisation or configuration. Nothing is dead-lettered; retried with backoff.
    /// Log-safe.
    #[error("the FHIR server did not accept {entries} entries: HTTP {status}{} (authorisation or configuration; retried later)", outcome.as_ref().map(|o| format!(" ({o})")).unwrap_or_default())]
    NotAccepted {
        entries: usize,
        status: u16,
        outcome: Option<Outcome>,
    },
}

impl SyncError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            SyncError::Fhir(e) => e.retry_after(),
            SyncError::Outbox(_)
            | SyncError::GatewayDeviceRejected { .. }
            | SyncError::AllRefused { .. }
            | SyncError::NotAccepted { .. } => None,
        }
    }

    /// What [`SyncStatus::last_error`] shows: the `Display`, except that a refused gateway
    /// Device comes with the server's full OperationOutcome text (that Device holds only
    /// the gateway's configuration, and the site needs the why to fix it). Not for logs.
    fn status_text(&self) -> String {
        match self {
            SyncError::GatewayDeviceRejected { status, outcome } => format!(
                "gateway Device rejected by the FHIR server: HTTP {status}: {}",
                outcome
                    .as_ref()
                    .map(Outcome::full_text)
                    .unwrap_or_else(|| "no OperationOutcome".into())
            ),
            e => e.to_string(),
        }
    }
}

/// A 5xx that may be the entry's fault (counts towards parking it): not 503 and not with
/// a `Retry-After`, which say the server is overloaded or down for maintenance.
fn counts_against_entry(status: u16, retry_after: Option<Duration>) -> bool {
    status >= 500 && status != 503 && retry_after.is_none()
}

/// Log-safe summary of a refusal: status and issue codes.
fn summary(status: u16, outcome: Option<&Outcome>) -> String {
    match outcome {
        Some(o) => format!("HTTP {status} ({o})"),
        None => format!("HTTP {status}"),
    }
}

/// The full reason (may echo values): for the dead-letter list only.
fn detail(status: u16, outcome: Option<&Outcome>) -> String {
    format!(
        "HTTP {status}: {}",
        outcome.map(Outcome::full_text).unwrap_or_default()
    )
}

/// A sensor Device the server refused, remembered for [`SyncConfig::rejected_device_ttl`].
struct RejectedDevice {
    /// When (syncer clock).
    at: DateTime<Utc>,
    /// The dead-letter reason for its readings.
    why: SetAside,
}

/// A sensor's Device: its reference, or the dead-letter reason when the server refused it.
enum SensorDevice {
    Ref(String),
    Rejected(SetAside),
}

/// A device's latest stored clock reading: its offset and Coincident Time Stamp Observation.
#[derive(Debug, Clone)]
struct DeviceClock {
    /// Device time − gateway time, seconds.
    offset_s: f64,
    /// `Observation/<id>`.
    reference: String,
}

/// How far (seconds) a measurement's device time − gateway time may be from a clock
/// reading's offset and still be on that clock reading's timeline.
const TIMELINE_TOLERANCE_S: f64 = 2.0;

/// The measurement's time on the gateway clock was derived from its device time with this
/// offset (or it is a live time stamp consistent with it): see the module docs, "Time".
fn on_timeline(r: &Reading, offset_s: f64) -> bool {
    r.device_time.is_some_and(|dt| {
        let d = (dt - r.received.naive_utc()).num_milliseconds() as f64 / 1000.0;
        (d - offset_s).abs() <= TIMELINE_TOLERANCE_S
    })
}

/// Drains an [`Outbox`] into a FHIR server.
pub struct Syncer<C: Clock> {
    client: Arc<FhirClient>,
    cfg: SyncConfig,
    clock: Arc<C>,
    status: watch::Sender<SyncStatus>,
    notify: Arc<Notify>,
    /// Per sensor: its Device reference and the Device content last stored (a richer one
    /// is sent again, see [`Syncer::device_ref`]).
    device_refs: HashMap<String, (String, Json)>,
    /// Devices whose identifier the server holds more than once.
    duplicate_devices: std::collections::HashSet<String>,
    /// Sensor Devices the server refused (by Vigil device id).
    rejected_devices: HashMap<String, RejectedDevice>,
    gateway_ref: Option<String>,
    /// Per Vigil device id, its latest uploaded clock reading (empty after a restart until
    /// the device's next one).
    device_clocks: HashMap<String, DeviceClock>,
}

type Prepared = (Json, Vec<i64>);

/// One batch entry as the outbox sees it: its items and the most failed attempts of any.
struct Entry<'a> {
    seqs: &'a [i64],
    attempts: u32,
}

impl<'a> Entry<'a> {
    fn new(seqs: &'a [i64], attempts: &HashMap<i64, u32>) -> Self {
        Entry {
            seqs,
            attempts: seqs
                .iter()
                .filter_map(|s| attempts.get(s))
                .copied()
                .max()
                .unwrap_or(0),
        }
    }
}

/// Two or more results, every one a refusal with the same status and issue codes.
fn uniform_refusal(results: &[EntryResult]) -> Option<SyncError> {
    let key = |r: &EntryResult| match r {
        EntryResult::Rejected { status, outcome } => Some((*status, outcome.as_ref().map(|o| o.to_string()))),
        _ => None,
    };
    let first = key(results.first()?)?;
    if results.len() < 2 || !results.iter().all(|r| key(r).as_ref() == Some(&first)) {
        return None;
    }
    let outcome = match &results[0] {
        EntryResult::Rejected { outcome, .. } => outcome.clone(),
        _ => None,
    };
    Some(SyncError::AllRefused {
        entries: results.len(),
        status: first.0,
        outcome,
    })
}

impl<C: Clock> Syncer<C> {
    pub fn new(client: Arc<FhirClient>, cfg: SyncConfig, clock: Arc<C>) -> Self {
        Syncer {
            client,
            cfg,
            clock,
            status: watch::channel(SyncStatus::default()).0,
            notify: Arc::new(Notify::new()),
            device_refs: HashMap::new(),
            duplicate_devices: Default::default(),
            rejected_devices: HashMap::new(),
            gateway_ref: None,
            device_clocks: HashMap::new(),
        }
    }

    /// Watch the status.
    pub fn status(&self) -> watch::Receiver<SyncStatus> {
        self.status.subscribe()
    }

    /// `notify_one()` on this after enqueueing to start a pass at once.
    pub fn notifier(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    /// Runs until `cancel`: passes over the outbox, backing off after failures.
    pub async fn run<O: Outbox>(&mut self, outbox: &O, cancel: CancellationToken) {
        let mut failures: u32 = 0;
        while !cancel.is_cancelled() {
            let result = tokio::select! {
                r = self.pass(outbox) => r,
                _ = cancel.cancelled() => break,
            };
            let wait = match result {
                Ok(_) => {
                    failures = 0;
                    self.cfg.poll_interval
                }
                Err(e) => {
                    let wait = self.retry_wait(&e, failures);
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %e, failures, wait_ms = wait.as_millis() as u64, "fhir sync: retrying");
                    self.status.send_modify(|s| {
                        s.healthy = false;
                        s.last_error = Some(e.status_text());
                        s.consecutive_failures = failures;
                    });
                    wait
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
                _ = self.notify.notified(), if failures == 0 => {}
            }
        }
    }

    /// Runs passes until the outbox holds nothing uploadable (everything acked,
    /// dead-lettered or waiting for a patient), retrying failures like [`Syncer::run`].
    /// For tests and for a final flush at shutdown; gives up at `cancel`.
    pub async fn drain<O: Outbox>(
        &mut self,
        outbox: &O,
        cancel: CancellationToken,
    ) -> Result<PassReport, SyncError> {
        let mut failures = 0u32;
        loop {
            match self.pass(outbox).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    let wait = self.retry_wait(&e, failures);
                    failures += 1;
                    self.status.send_modify(|s| {
                        s.healthy = false;
                        s.last_error = Some(e.status_text());
                        s.consecutive_failures = failures;
                    });
                    tokio::select! {
                        _ = cancel.cancelled() => return Err(e),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// How long to wait after a failed pass (`failures` before this one): the longer of
    /// the backoff and the server's `Retry-After` (capped), never below
    /// [`SyncConfig::min_retry_wait`]. The backoff still counts when the server asks for
    /// less: a `Retry-After: 0` or a date in the past must not make a hot loop.
    fn retry_wait(&self, e: &SyncError, failures: u32) -> Duration {
        let backoff = self.cfg.backoff.delay(failures, &mut rand::thread_rng());
        let server = e
            .retry_after()
            .map(|ra| ra.min(self.cfg.max_retry_after))
            .unwrap_or_default();
        backoff.max(server).max(self.cfg.min_retry_wait)
    }

    /// One pass over the whole outbox. Stops at the first failure that needs a retry
    /// (what was acked stays acked).
    pub async fn pass<O: Outbox>(&mut self, outbox: &O) -> Result<PassReport, SyncError> {
        let mut report = PassReport::default();
        let mut cursor = i64::MIN;
        let result = loop {
            // One more than a window: whether the window's last measurement goes on.
            let items = match outbox.peek(cursor, self.cfg.batch_size.max(1) + 1).await {
                Ok(i) => i,
                Err(e) => break Err(e.into()),
            };
            if items.is_empty() {
                break Ok(());
            }
            let window = self.window(&items);
            cursor = window.last().map(|i| i.seq).unwrap_or(cursor);
            if let Err(e) = self.upload_window(outbox, window, &mut report).await {
                break Err(e);
            }
        };
        self.refresh_status(outbox, result.as_ref().err()).await;
        result.map(|_| report)
    }

    /// The part of the peeked items (a window and at least one more) to upload now: the
    /// first `batch_size`, except that a window must not end inside a measurement (same
    /// device and time) that the next item continues: then that measurement waits for the
    /// next window, or, when it alone fills the window, goes whole (as far as peeked).
    fn window<'a>(&self, items: &'a [OutboxItem]) -> &'a [OutboxItem] {
        let n = self.cfg.batch_size.max(1);
        if items.len() <= n {
            return items;
        }
        let key = |r: &Reading| (r.device.clone(), r.device_time, r.received);
        let tail = key(&items[n - 1].reading);
        if key(&items[n].reading) != tail {
            return &items[..n];
        }
        match items[..n].iter().position(|i| key(&i.reading) == tail) {
            Some(cut) if cut > 0 => &items[..cut],
            _ => {
                let end = items
                    .iter()
                    .position(|i| key(&i.reading) != tail)
                    .unwrap_or(items.len());
                &items[..end]
            }
        }
    }

    /// The sensor's Device reference, or the dead-letter reason for its readings while a
    /// refusal is remembered. The Device is stored by conditional update (see
    /// [`crate::bundle::batch`]) the first time and again whenever its content changed (the
    /// Device Information arrives after the first readings; conditional create would keep
    /// the first, emptier Device for ever).
    async fn device_ref(&mut self, device: &str) -> Result<SensorDevice, Error> {
        let resource = mapping::device(&(self.cfg.devices)(device));
        if let Some((r, sent)) = self.device_refs.get(device) {
            if *sent == resource {
                return Ok(SensorDevice::Ref(r.clone()));
            }
        }
        let now = self.clock.now();
        if let Some(rej) = self.rejected_devices.get(device) {
            // A clock that went backwards ends the wait too.
            let age = (now - rej.at).to_std().ok();
            if age.is_some_and(|a| a < self.cfg.rejected_device_ttl) {
                return Ok(SensorDevice::Rejected(rej.why.clone()));
            }
            self.rejected_devices.remove(device);
        }
        match self.client.ensure_devices(std::slice::from_ref(&resource)).await {
            Ok(refs) => {
                let r = refs
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::Protocol("no Device reference".into()))?;
                self.note_duplicates(device, r.matches);
                self.device_refs
                    .insert(device.to_string(), (r.reference.clone(), resource));
                Ok(SensorDevice::Ref(r.reference))
            }
            Err(Error::Http { status, outcome, .. }) if bundle::is_refusal(status) => {
                tracing::warn!(
                    status,
                    issues = %outcome.as_ref().map(|o| o.to_string()).unwrap_or_default(),
                    retry_after_s = self.cfg.rejected_device_ttl.as_secs(),
                    "fhir sync: sensor Device rejected, its readings are dead-lettered"
                );
                let why = SetAside {
                    kind: SetAsideKind::Refused,
                    summary: format!("Device rejected: {}", summary(status, outcome.as_ref())),
                    detail: format!("Device rejected: {}", detail(status, outcome.as_ref())),
                };
                self.rejected_devices.insert(
                    device.to_string(),
                    RejectedDevice {
                        at: now,
                        why: why.clone(),
                    },
                );
                Ok(SensorDevice::Rejected(why))
            }
            Err(e) => Err(e),
        }
    }

    async fn gateway_ref(&mut self) -> Result<String, SyncError> {
        if let Some(r) = &self.gateway_ref {
            return Ok(r.clone());
        }
        let refs = match self
            .client
            .ensure_devices(&[mapping::gateway_device(&self.cfg.gateway)])
            .await
        {
            Ok(refs) => refs,
            Err(Error::Http { status, outcome, .. }) if bundle::is_refusal(status) => {
                return Err(SyncError::GatewayDeviceRejected { status, outcome })
            }
            Err(e) => return Err(e.into()),
        };
        let r = refs
            .into_iter()
            .next()
            .ok_or_else(|| Error::Protocol("no Device reference".into()))?;
        self.note_duplicates("gateway", r.matches);
        self.gateway_ref = Some(r.reference.clone());
        Ok(r.reference)
    }

    /// A Device identifier the server holds more than once (someone else created copies):
    /// Vigil uses the lowest id; counted in the status and logged, never a stall.
    fn note_duplicates(&mut self, device: &str, matches: usize) {
        if matches > 1 && self.duplicate_devices.insert(device.to_string()) {
            tracing::warn!(
                device,
                matches,
                "fhir sync: the server holds this Device identifier more than once; using the lowest id"
            );
            self.status.send_modify(|s| s.duplicate_devices = self.duplicate_devices.len() as u64);
        }
    }

    async fn upload_window<O: Outbox>(
        &mut self,
        outbox: &O,
        window: &[OutboxItem],
        report: &mut PassReport,
    ) -> Result<(), SyncError> {
        let ready: Vec<&OutboxItem> = window.iter().filter(|i| i.patient_ref.is_some()).collect();
        report.waiting += (window.len() - ready.len()) as u64;
        if ready.is_empty() {
            return Ok(());
        }
        let gateway = self.gateway_ref().await?;
        // Device-clock readings first: their Observations must exist before the
        // measurements that reference them.
        let (clocks, ready): (Vec<&OutboxItem>, Vec<&OutboxItem>) = ready
            .into_iter()
            .partition(|i| i.reading.code == Mdc::ATTR_TIME_ABS);
        let mut stored_clocks: HashMap<i64, DeviceClock> = HashMap::new();
        if !clocks.is_empty() {
            stored_clocks = self.upload_clocks(outbox, &clocks, &gateway, report).await?;
        }
        // Which clock reading each measurement's time belongs to, in outbox order: the
        // device's latest clock reading before it (this window's, else the cached one).
        let mut coincident: HashMap<i64, String> = HashMap::new();
        let mut order: Vec<&OutboxItem> = clocks.iter().chain(ready.iter()).copied().collect();
        order.sort_by_key(|i| i.seq);
        for i in order {
            let device = &i.reading.device;
            if i.reading.code == Mdc::ATTR_TIME_ABS {
                match stored_clocks.remove(&i.seq) {
                    Some(c) => self.device_clocks.insert(device.clone(), c),
                    None => self.device_clocks.remove(device),
                };
            } else if let Some(c) = self.device_clocks.get(device) {
                if on_timeline(&i.reading, c.offset_s) {
                    coincident.insert(i.seq, c.reference.clone());
                }
            }
        }
        let with_clock = |mut o: Json, seq: i64| {
            if let Some(r) = coincident.get(&seq) {
                mapping::add_coincident_time_stamp_reference(&mut o, r);
            }
            o
        };
        if ready.is_empty() {
            return Ok(());
        }
        let mut prepared: Vec<Prepared> = Vec::new();
        // Group per patient (a panel never spans two admissions).
        // Readings of sensors whose Device the server refused: (seq, reason).
        let mut refused: Vec<(i64, SetAside)> = Vec::new();
        let readings: Vec<&Reading> = ready.iter().map(|i| &i.reading).collect();
        for g in mapping::group(&readings) {
            let idx = g.indices();
            let first = ready[idx[0]];
            let subject = first.patient_ref.as_deref().unwrap_or_default();
            if idx
                .iter()
                .any(|&i| ready[i].patient_ref.as_deref() != Some(subject))
            {
                for &i in &idx {
                    let device = match self.device_ref(&ready[i].reading.device).await? {
                        SensorDevice::Ref(r) => r,
                        SensorDevice::Rejected(why) => {
                            refused.push((ready[i].seq, why));
                            continue;
                        }
                    };
                    let ctx = ObservationContext {
                        subject: ready[i].patient_ref.as_deref().unwrap_or_default(),
                        device: &device,
                        gateway: &gateway,
                    };
                    let o = mapping::observation(&ready[i].reading, &ctx);
                    prepared.push((with_clock(o, ready[i].seq), vec![ready[i].seq]));
                }
                continue;
            }
            let device = match self.device_ref(&first.reading.device).await? {
                SensorDevice::Ref(r) => r,
                SensorDevice::Rejected(why) => {
                    refused.extend(idx.iter().map(|&i| (ready[i].seq, why.clone())));
                    continue;
                }
            };
            let ctx = ObservationContext {
                subject,
                device: &device,
                gateway: &gateway,
            };
            let resource = match g {
                Group::Single(i) => mapping::observation(&ready[i].reading, &ctx),
                Group::BloodPressure {
                    systolic,
                    diastolic,
                    mean,
                } => mapping::blood_pressure_panel(
                    &BpParts {
                        systolic: &ready[systolic].reading,
                        diastolic: &ready[diastolic].reading,
                        mean: mean.map(|m| &ready[m].reading),
                    },
                    &ctx,
                ),
            };
            let resource = with_clock(resource, first.seq);
            prepared.push((resource, idx.iter().map(|&i| ready[i].seq).collect()));
        }
        if !refused.is_empty() {
            tracing::warn!(
                items = refused.len(),
                "fhir sync: readings of a rejected sensor Device dead-lettered"
            );
            for (seq, why) in refused {
                outbox.dead_letter(seq, why).await?;
                report.dead_lettered += 1;
            }
        }
        if prepared.is_empty() {
            return Ok(());
        }
        let attempts: HashMap<i64, u32> = window.iter().map(|i| (i.seq, i.attempts)).collect();
        let resources: Vec<Json> = prepared.iter().map(|(r, _)| r.clone()).collect();
        let entries: Vec<Entry> = prepared
            .iter()
            .map(|(_, seqs)| Entry::new(seqs, &attempts))
            .collect();
        self.send_and_settle(outbox, &resources, &entries, report, |_, _| {})
            .await
    }

    /// [`Syncer::send`], then [`Syncer::settle`] what was answered (also when the send
    /// stopped part way: what was stored is acked), then the send's error if any.
    async fn send_and_settle<O: Outbox>(
        &self,
        outbox: &O,
        resources: &[Json],
        entries: &[Entry<'_>],
        report: &mut PassReport,
        on_stored: impl FnMut(usize, Option<&str>),
    ) -> Result<(), SyncError> {
        let (results, error) = self.send(outbox, resources, entries, report).await;
        let n = results.len();
        let settled = self
            .settle(outbox, &entries[..n], results, report, on_stored)
            .await;
        match error {
            Some(e) => Err(e),
            None => settled,
        }
    }

    /// Applies the server's answer for each sent entry: acks the stored ones (`on_stored`
    /// sees each with its location), dead-letters the refused ones with the server's
    /// OperationOutcome, counts a failed attempt for those that failed with a 5xx and parks
    /// those at [`SyncConfig::max_attempts`] (only when the server took something else in
    /// this pass), and returns the first retryable failure, after acking what was stored.
    async fn settle<O: Outbox>(
        &self,
        outbox: &O,
        entries: &[Entry<'_>],
        results: Vec<EntryResult>,
        report: &mut PassReport,
        mut on_stored: impl FnMut(usize, Option<&str>),
    ) -> Result<(), SyncError> {
        let mut acks = Vec::new();
        let mut failed = Vec::new();
        let mut retry: Option<Error> = None;
        // Entries answered with a 4xx about authorisation or configuration.
        let mut not_accepted = 0;
        // The server works (took something): a 5xx for one entry is that entry's.
        let server_works = report.acked > 0 || results.iter().any(EntryResult::is_stored);
        for (i, (entry, result)) in entries.iter().zip(results).enumerate() {
            let seqs = entry.seqs;
            match result {
                EntryResult::Stored { location, .. } => {
                    acks.extend_from_slice(seqs);
                    on_stored(i, location.as_deref());
                }
                EntryResult::Rejected { status, outcome } => {
                    tracing::warn!(
                        seqs = ?seqs,
                        status,
                        issues = %outcome.as_ref().map(|o| o.to_string()).unwrap_or_default(),
                        "fhir sync: entry rejected, dead-lettered"
                    );
                    let why = SetAside {
                        kind: SetAsideKind::Refused,
                        summary: summary(status, outcome.as_ref()),
                        detail: detail(status, outcome.as_ref()),
                    };
                    for &s in seqs {
                        outbox.dead_letter(s, why.clone()).await?;
                        report.dead_lettered += 1;
                    }
                }
                EntryResult::Retry { status, outcome } => {
                    let status = status.unwrap_or(500);
                    if counts_against_entry(status, None) {
                        let attempts = entry.attempts + 1;
                        if attempts >= self.cfg.max_attempts && server_works {
                            tracing::warn!(
                                seqs = ?seqs,
                                status,
                                attempts,
                                issues = %outcome.as_ref().map(|o| o.to_string()).unwrap_or_default(),
                                "fhir sync: entry keeps failing, parked"
                            );
                            let why = SetAside {
                                kind: SetAsideKind::Parked,
                                summary: format!(
                                    "{} after {attempts} attempts",
                                    summary(status, outcome.as_ref())
                                ),
                                detail: format!(
                                    "parked after {attempts} attempts: {}",
                                    detail(status, outcome.as_ref())
                                ),
                            };
                            for &s in seqs {
                                outbox.dead_letter(s, why.clone()).await?;
                                report.parked += 1;
                            }
                            continue;
                        }
                        failed.extend_from_slice(seqs);
                    }
                    if (400..500).contains(&status) && !matches!(status, 408 | 429) {
                        not_accepted += 1;
                    }
                    retry.get_or_insert(Error::Http {
                        status,
                        retry_after: None,
                        outcome,
                    });
                }
            }
        }
        if !acks.is_empty() {
            outbox.ack(&acks).await?;
            report.acked += acks.len() as u64;
            self.status.send_modify(|s| s.uploaded += acks.len() as u64);
        }
        if !failed.is_empty() {
            outbox.record_failure(&failed).await?;
        }
        match retry {
            Some(Error::Http { status, outcome, .. }) if not_accepted > 0 && (400..500).contains(&status) => {
                Err(SyncError::NotAccepted {
                    entries: not_accepted,
                    status,
                    outcome,
                })
            }
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Conditional-creates the Coincident Time Stamp Observations of a window's
    /// device-clock readings; acks those stored and dead-letters those refused (4xx, or a
    /// refused sensor Device) like measurements. Returns the stored ones by seq. A retryable
    /// failure of any of them fails the window (after acking what was stored), so no
    /// measurement goes out before the clock reading it comes after.
    async fn upload_clocks<O: Outbox>(
        &mut self,
        outbox: &O,
        clocks: &[&OutboxItem],
        gateway: &str,
        report: &mut PassReport,
    ) -> Result<HashMap<i64, DeviceClock>, SyncError> {
        let mut prepared: Vec<(Json, &OutboxItem)> = Vec::new();
        for &item in clocks {
            match self.device_ref(&item.reading.device).await? {
                SensorDevice::Ref(device) => {
                    let ctx = ObservationContext {
                        subject: item.patient_ref.as_deref().unwrap_or_default(),
                        device: &device,
                        gateway,
                    };
                    prepared.push((mapping::coincident_time_stamp(&item.reading, &ctx), item));
                }
                SensorDevice::Rejected(why) => {
                    outbox.dead_letter(item.seq, why).await?;
                    report.dead_lettered += 1;
                }
            }
        }
        let mut stored = HashMap::new();
        if prepared.is_empty() {
            return Ok(stored);
        }
        let resources: Vec<Json> = prepared.iter().map(|(r, _)| r.clone()).collect();
        let seqs: Vec<[i64; 1]> = prepared.iter().map(|(_, item)| [item.seq]).collect();
        let entries: Vec<Entry> = seqs
            .iter()
            .zip(&prepared)
            .map(|(s, (_, item))| Entry {
                seqs: s.as_slice(),
                attempts: item.attempts,
            })
            .collect();
        self.send_and_settle(outbox, &resources, &entries, report, |i, location| {
            let item = prepared[i].1;
            let reference = location.and_then(|l| crate::bundle::reference_from_location(l, "Observation"));
            let offset = item.reading.value.number().filter(|v| v.is_finite());
            if let (Some(reference), Some(offset_s)) = (reference, offset) {
                stored.insert(item.seq, DeviceClock { offset_s, reference });
            }
        })
        .await?;
        Ok(stored)
    }

    /// POSTs one batch; a whole-Bundle 400/413/422 is bisected so that only the entries
    /// the server refuses are rejected, and so is a whole-Bundle 5xx once an entry of it
    /// is one failure from parking (a single entry's 5xx then becomes its own
    /// [`EntryResult::Retry`], for [`Syncer::settle`] to count and park). Returns the
    /// results of the entries answered, in order (all of them unless the send stopped), and
    /// the error that stopped it; a whole-Bundle 5xx counts a failed attempt for every
    /// entry of that Bundle. Two or more entries all refused the same way are
    /// [`SyncError::AllRefused`] (no results: nothing is dead-lettered).
    async fn send<O: Outbox>(
        &self,
        outbox: &O,
        resources: &[Json],
        entries: &[Entry<'_>],
        report: &mut PassReport,
    ) -> (Vec<EntryResult>, Option<SyncError>) {
        let isolate = entries.iter().any(|e| e.attempts + 1 >= self.cfg.max_attempts);
        let mut out = Vec::with_capacity(resources.len());
        #[allow(clippy::single_range_in_vec_init)] // a stack of ranges, starting with one
        let mut stack: Vec<std::ops::Range<usize>> = vec![0..resources.len()];
        while let Some(range) = stack.pop() {
            report.bundles += 1;
            let split = |stack: &mut Vec<std::ops::Range<usize>>| {
                let mid = range.start + range.len() / 2;
                // Depth first, first half first: results stay in order.
                stack.push(mid..range.end);
                stack.push(range.start..mid);
            };
            match self.client.batch(&resources[range.clone()]).await {
                Ok(r) => out.extend(r),
                Err(Error::Http {
                    status: status @ (400 | 413 | 422),
                    outcome,
                    ..
                }) => {
                    if range.len() == 1 {
                        out.push(EntryResult::Rejected { status, outcome });
                    } else {
                        split(&mut stack);
                    }
                }
                Err(Error::Http {
                    status,
                    retry_after,
                    outcome,
                }) if isolate && counts_against_entry(status, retry_after) => {
                    if range.len() == 1 {
                        out.push(EntryResult::Retry {
                            status: Some(status),
                            outcome,
                        });
                    } else {
                        split(&mut stack);
                    }
                }
                Err(e) => {
                    if let Error::Http {
                        status, retry_after, ..
                    } = &e
                    {
                        if counts_against_entry(*status, *retry_after) {
                            let seqs: Vec<i64> = entries[range]
                                .iter()
                                .flat_map(|e| e.seqs.iter().copied())
                                .collect();
                            if let Err(oe) = outbox.record_failure(&seqs).await {
                                return (out, Some(oe.into()));
                            }
                        }
                    }
                    return (out, Some(e.into()));
                }
            }
        }
        if let Some(e) = uniform_refusal(&out) {
            tracing::warn!(error = %e, "fhir sync: every entry refused the same way, nothing dead-lettered");
            return (Vec::new(), Some(e));
        }
        (out, None)
    }

    async fn refresh_status<O: Outbox>(&self, outbox: &O, error: Option<&SyncError>) {
        let stats = outbox.stats().await.ok();
        let now = self.clock.now();
        self.status.send_modify(|s| {
            if let Some(st) = &stats {
                s.pending = st.pending;
                s.waiting_for_patient = st.waiting_for_patient;
                s.dead_letters = st.dead_letters;
                s.parked = st.parked;
                s.last_set_aside = st.last_set_aside.clone();
                s.oldest_pending_age = st.oldest_received.map(|t| (now - t).to_std().unwrap_or_default());
            }
            match error {
                None => {
                    s.healthy = true;
                    s.last_error = None;
                    s.last_success = Some(now);
                    s.consecutive_failures = 0;
                }
                Some(e) => {
                    s.healthy = false;
                    s.last_error = Some(e.status_text());
                }
            }
        });
    }
}
