//! FHIR upload from the store's durable outbox.
//!
//! The store queues every appended reading that belongs to an admission, in
//! insertion order, in the same transaction as the reading itself. Here the
//! `vigil-fhir` syncer drains that queue: items are the readings of each
//! outbox row, numbered `row << 20 | index` so the order stays insertion
//! order. A row is deleted once every one of its readings has been accepted
//! or set aside (dead-lettered or parked). After a crash, a partly uploaded
//! row is sent again; conditional create on the deterministic identifier
//! keeps the server at exactly one Observation per reading. A reading set
//! aside is marked in the store in the same transaction as its dead letter,
//! so it is never sent again nor dead-lettered twice; its failed attempts are
//! counted there too.

use crate::site::FhirSite;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use vigil_fhir::{
    Auth, ClientConfig, FhirClient, Outbox, OutboxError, OutboxItem, OutboxStats, Secret, SetAside,
    SetAsideKind, SigningKey, SmartBackend, SyncConfig, SyncStatus, Syncer,
};
use vigil_model::{AdmissionId, Clock, Reading};
use vigil_store::Store;

const ROW_SHIFT: u32 = 20;
const ROW_PAGE: u32 = 64;

fn item_seq(row: i64, idx: usize) -> i64 {
    (row << ROW_SHIFT) | idx as i64
}

/// The store's outbox as the syncer sees it.
pub struct StoreOutbox {
    store: Store,
    state: Mutex<State>,
    /// Site `fhir.allow_simulated`: otherwise simulated readings are dropped, never sent.
    allow_simulated: bool,
}

#[derive(Default)]
struct State {
    /// Per row: its size and the indexes already accepted or set aside.
    done: HashMap<i64, (usize, BTreeSet<usize>)>,
    /// Readings handed out by the last peeks, for dead-lettering.
    handed_out: HashMap<i64, Reading>,
    links: HashMap<AdmissionId, String>,
    /// Items last seen without a patient link. Kept across peeks: a pass ends with
    /// an empty peek, which must not reset the count.
    waiting: HashSet<i64>,
    /// Those seen so far in the scan under way (from the outbox's start): replaces
    /// `waiting` when the scan reaches the end, so items whose rows went meanwhile
    /// are forgotten.
    scan_waiting: HashSet<i64>,
}

fn split(seq: i64) -> (i64, usize) {
    (seq >> ROW_SHIFT, (seq & ((1 << ROW_SHIFT) - 1)) as usize)
}

fn err(e: impl std::fmt::Display) -> OutboxError {
    OutboxError(e.to_string())
}

impl StoreOutbox {
    pub fn new(store: Store) -> Self {
        StoreOutbox {
            store,
            state: Mutex::new(State::default()),
            allow_simulated: false,
        }
    }

    /// Whether simulated readings are uploaded (site `fhir.allow_simulated`).
    pub fn allow_simulated(mut self, allow: bool) -> Self {
        self.allow_simulated = allow;
        self
    }

    async fn link(&self, admission: &Option<AdmissionId>) -> Result<Option<String>, OutboxError> {
        let Some(a) = admission else { return Ok(None) };
        if let Some(l) = self.state.lock().unwrap().links.get(a) {
            return Ok(Some(l.clone()));
        }
        let link = self.store.patient_link(a).await.map_err(err)?;
        if let Some(l) = &link {
            self.state.lock().unwrap().links.insert(a.clone(), l.clone());
        }
        Ok(link)
    }

    /// A bed was linked to a FHIR Patient: forget cached "no link" answers.
    pub fn forget_links(&self) {
        self.state.lock().unwrap().links.clear();
    }

    async fn finish(&self, seqs: impl IntoIterator<Item = i64>) -> Result<(), OutboxError> {
        let complete: Vec<i64> = {
            let mut st = self.state.lock().unwrap();
            let mut complete = Vec::new();
            for s in seqs {
                let (row, idx) = split(s);
                st.handed_out.remove(&s);
                st.waiting.remove(&s);
                st.scan_waiting.remove(&s);
                if let Some((n, done)) = st.done.get_mut(&row) {
                    done.insert(idx);
                    if done.len() >= *n {
                        complete.push(row);
                    }
                }
            }
            for r in &complete {
                st.done.remove(r);
            }
            complete
        };
        if !complete.is_empty() {
            self.store.outbox_ack(&complete).await.map_err(err)?;
        }
        Ok(())
    }
}

impl Outbox for StoreOutbox {
    async fn peek(&self, after: i64, n: usize) -> Result<Vec<OutboxItem>, OutboxError> {
        let mut out = Vec::with_capacity(n);
        // Simulated readings a production server must not get: done without sending.
        let mut dropped = Vec::new();
        if after == i64::MIN {
            self.state.lock().unwrap().scan_waiting.clear();
        }
        let mut row_after = (after >> ROW_SHIFT) - 1;
        while out.len() < n {
            let rows = self
                .store
                .outbox_peek_after(row_after, ROW_PAGE)
                .await
                .map_err(err)?;
            if rows.is_empty() {
                let mut st = self.state.lock().unwrap();
                st.waiting = st.scan_waiting.clone();
                break;
            }
            for row in rows {
                row_after = row.seq;
                let done: BTreeSet<usize> = {
                    let mut st = self.state.lock().unwrap();
                    let (_, done) = st
                        .done
                        .entry(row.seq)
                        .or_insert_with(|| (row.readings.len(), BTreeSet::new()));
                    // Set aside before a restart: done, for the row's completion.
                    done.extend(
                        row.settled
                            .iter()
                            .enumerate()
                            .filter(|(_, s)| **s)
                            .map(|(i, _)| i),
                    );
                    done.clone()
                };
                for (idx, reading) in row.readings.into_iter().enumerate() {
                    let seq = item_seq(row.seq, idx);
                    if seq <= after || done.contains(&idx) {
                        continue;
                    }
                    if !uploadable(&reading, self.allow_simulated) {
                        dropped.push(seq);
                        continue;
                    }
                    let patient_ref = self.link(&reading.admission).await?;
                    {
                        let mut st = self.state.lock().unwrap();
                        if patient_ref.is_none() {
                            st.waiting.insert(seq);
                            st.scan_waiting.insert(seq);
                        } else {
                            st.waiting.remove(&seq);
                        }
                    }
                    // Past `n`, still take the rest of a blood-pressure panel
                    // (a row keeps its parts adjacent): cut in two, its mean
                    // would go out as an Observation of its own.
                    let same_panel = out
                        .last()
                        .is_some_and(|l: &OutboxItem| same_bp_panel(&l.reading, &reading));
                    if out.len() < n || same_panel {
                        self.state.lock().unwrap().handed_out.insert(seq, reading.clone());
                        out.push(OutboxItem {
                            seq,
                            reading,
                            patient_ref,
                            attempts: row.attempts.get(idx).copied().unwrap_or(0),
                        });
                    }
                }
            }
        }
        if !dropped.is_empty() {
            self.finish(dropped).await?;
        }
        Ok(out)
    }

    async fn ack(&self, seqs: &[i64]) -> Result<(), OutboxError> {
        self.finish(seqs.iter().copied()).await
    }

    async fn dead_letter(&self, seq: i64, why: SetAside) -> Result<(), OutboxError> {
        let (row, idx) = split(seq);
        let (reading, row_done) = {
            let st = self.state.lock().unwrap();
            let row_done = st
                .done
                .get(&row)
                .is_some_and(|(n, done)| done.len() + usize::from(!done.contains(&idx)) >= *n);
            (st.handed_out.get(&seq).cloned(), row_done)
        };
        let Some(reading) = reading else { return Ok(()) };
        let kind = match why.kind {
            SetAsideKind::Refused => vigil_store::DeadLetterKind::Refused,
            SetAsideKind::Parked => vigil_store::DeadLetterKind::Parked,
        };
        // The dead letter and the outbox update (the reading settled, or its row
        // deleted) in one transaction.
        self.store
            .set_aside(&vigil_store::SetAside {
                row,
                index: idx as u32,
                reading: &reading,
                kind,
                summary: &why.summary,
                detail: &why.detail,
                row_done,
            })
            .await
            .map_err(err)?;
        if row_done {
            let mut st = self.state.lock().unwrap();
            st.done.remove(&row);
            st.handed_out.remove(&seq);
            st.waiting.remove(&seq);
            Ok(())
        } else {
            self.finish([seq]).await
        }
    }

    async fn record_failure(&self, seqs: &[i64]) -> Result<(), OutboxError> {
        let items: Vec<(i64, u32)> = seqs
            .iter()
            .map(|&s| {
                let (row, idx) = split(s);
                (row, idx as u32)
            })
            .collect();
        self.store.outbox_failed(&items).await.map_err(err)
    }

    async fn stats(&self) -> Result<OutboxStats, OutboxError> {
        let s = self.store.outbox_status().await.map_err(err)?;
        Ok(OutboxStats {
            pending: s.pending_readings,
            waiting_for_patient: self.state.lock().unwrap().waiting.len() as u64,
            oldest_received: s.oldest_queued,
            dead_letters: s.dead_letters,
            parked: s.parked,
            last_set_aside: s.last_set_aside,
        })
    }
}

/// Whether a queued reading goes to the FHIR server: not an intermediate cuff pressure
/// (MDC_PRESS_CUFF, BLE 0x2A36: the cuff inflating, not a measurement of the patient, never a
/// final Observation), not a control-solution glucose result nor data the device labels as
/// demonstration or test data, and not a simulated reading unless the site allows them.
fn uploadable(r: &Reading, allow_simulated: bool) -> bool {
    // A control-solution result tests the meter, not the patient: never filed under the
    // patient (issue 12, item 4). Nor is what the device itself labels demonstration or test
    // data (PLXS Measurement Status bits 10, 11; PHD IG: test data is not uploaded).
    let not_the_patient = r.code == vigil_model::Mdc::CONC_GLU_CONTROL
        || r
            .status
            .flags
            .iter()
            .any(|f| f == "data for demonstration" || f == "data for testing");
    r.code != vigil_model::Mdc::PRESS_CUFF
        && !not_the_patient
        && (allow_simulated || r.source != vigil_model::Source::Simulated)
}

/// Parts of one blood-pressure measurement (one FHIR panel): systolic,
/// diastolic or mean from the same device at the same time.
fn same_bp_panel(a: &Reading, b: &Reading) -> bool {
    use vigil_model::Mdc;
    let bp = |c: Mdc| {
        matches!(
            c,
            Mdc::PRESS_BLD_NONINV_SYS | Mdc::PRESS_BLD_NONINV_DIA | Mdc::PRESS_BLD_NONINV_MEAN
        )
    };
    bp(a.code)
        && bp(b.code)
        && a.device == b.device
        && a.received == b.received
        && a.device_time == b.device_time
}

/// The syncer wants a sized clock: this shares the runtime's.
pub struct SharedClock(pub Arc<dyn Clock>);

impl Clock for SharedClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.now()
    }
    fn real_duration(&self, d: std::time::Duration) -> std::time::Duration {
        self.0.real_duration(d)
    }
}

/// Builds the HTTP client from the site configuration.
pub fn client(site: &FhirSite) -> Result<FhirClient, String> {
    let mut cfg = ClientConfig::new(site.base_url.clone());
    if let Some(var) = &site.bearer_token_env {
        let token =
            std::env::var(var).map_err(|_| format!("environment variable {var} (FHIR token) is not set"))?;
        cfg.auth = Auth::Bearer(Secret::new(token));
    }
    if let Some(s) = &site.smart {
        let key = SigningKey::from_pem_file(&s.key_file, &s.alg).map_err(|e| e.to_string())?;
        cfg.auth = Auth::Smart(Arc::new(SmartBackend {
            token_url: s
                .token_url
                .parse()
                .map_err(|_| "SMART token_url does not parse".to_string())?,
            client_id: s.client_id.clone(),
            kid: s.kid.clone(),
            key,
            scope: s.scope.clone(),
        }));
    }
    if let Some(ca) = &site.ca_bundle {
        cfg.ca_bundle_pem = Some(std::fs::read(ca).map_err(|e| format!("CA bundle {}: {e}", ca.display()))?);
        cfg.builtin_roots = !site.site_ca_only;
    }
    FhirClient::new(cfg).map_err(|e| e.to_string())
}

/// Site limits of the delivery-failure technical alarm.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryLimits {
    /// Longest outage (no successful upload while readings wait).
    pub outage: chrono::Duration,
    /// Readings set aside (dead letters + parked) from which to alarm; 0 = never.
    pub set_aside: u64,
}

/// Whether readings are reaching the FHIR server, for the delivery-failure
/// technical alarm: not when `set_aside` readings (refused by the server, or
/// parked) reach the site's `dead_letter_alarm` (they wait for someone to act),
/// nor when uploads have failed for longer than the site's `outage_alarm_s`
/// (counted from the last success, or from `started` if there has been none)
/// while readings wait.
pub fn delivering(
    status: &SyncStatus,
    set_aside: u64,
    started: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
    limits: DeliveryLimits,
) -> bool {
    if limits.set_aside > 0 && set_aside >= limits.set_aside {
        return false;
    }
    let outage_limit = limits.outage;
    let waiting = status.pending > status.waiting_for_patient;
    let since = status.last_success.unwrap_or(started).max(started);
    !(status.consecutive_failures > 0 && waiting && now - since > outage_limit)
}

/// Raises (and clears) the delivery-failure technical alarm at every bed
/// from the syncer's status and the store's dead letters, every 5 s.
pub async fn watch_delivery(
    ctx: crate::pipeline::Context,
    status: watch::Receiver<SyncStatus>,
    store: Store,
    limits: DeliveryLimits,
    cancel: CancellationToken,
) {
    let started = ctx.clock.now();
    let mut every = tokio::time::interval(ctx.clock.real_duration(std::time::Duration::from_secs(5)));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = cancel.cancelled() => return,
        }
        let Ok(q) = store.outbox_status().await else {
            continue;
        };
        let now = ctx.clock.now();
        let ok = delivering(&status.borrow(), q.dead_letters + q.parked, started, now, limits);
        let beds = ctx.beds();
        let out = ctx.alarming.lock().unwrap().workstation_health(
            vigil_alarms::TechnicalKind::DeliveryFailure,
            ok,
            &beds,
            now,
        );
        ctx.publish(out).await;
    }
}

/// A running FHIR sync.
pub struct Sync {
    pub client: Arc<FhirClient>,
    pub outbox: Arc<StoreOutbox>,
    pub status: watch::Receiver<SyncStatus>,
    pub notify: Arc<tokio::sync::Notify>,
    pub mrn_system: String,
    /// The audit trail's upload as FHIR `AuditEvent`s.
    pub audit: Arc<crate::audit_upload::AuditUploadStats>,
}

/// Starts draining the store's outbox to the site's FHIR server.
pub fn start(
    store: Store,
    site: &FhirSite,
    ward: Arc<Mutex<crate::ward::Ward>>,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
) -> Result<(Sync, tokio::task::JoinHandle<()>), String> {
    let gateway = crate::fhir_devices::gateway_info(site)?;
    let client = Arc::new(client(site)?);
    store.set_outbox_enabled(true);
    let outbox = Arc::new(StoreOutbox::new(store.clone()).allow_simulated(site.allow_simulated));
    let mut cfg = SyncConfig::new(gateway);
    cfg.devices = crate::fhir_devices::lookup(ward);
    // New readings are queued every half second; look for them once a second.
    cfg.poll_interval = std::time::Duration::from_secs(1);
    let mut syncer = Syncer::new(client.clone(), cfg, Arc::new(SharedClock(clock)));
    let audit = Arc::new(crate::audit_upload::AuditUploadStats::default());
    let sync = Sync {
        client: client.clone(),
        outbox: outbox.clone(),
        status: syncer.status(),
        notify: syncer.notifier(),
        mrn_system: site.mrn_system.clone(),
        audit: audit.clone(),
    };
    // The audit trail goes up beside the readings, on its own cursor (audit_upload.rs).
    let uploader = crate::audit_upload::run(store, client, site.gateway_id.clone(), audit, cancel.clone());
    let task = tokio::spawn(async move {
        tokio::join!(syncer.run(outbox.as_ref(), cancel), uploader);
    });
    Ok((sync, task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Duration, Utc};

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + s, 0).unwrap()
    }

    #[test]
    fn the_parts_of_one_blood_pressure_measurement_are_one_panel() {
        use vigil_model::{Mdc, Source, Value};
        let r = |code, device: &str, s| Reading {
            bed: "bed-1".into(),
            admission: None,
            device: device.into(),
            code,
            value: Value::Number(1.0),
            unit: "mm[Hg]".into(),
            device_time: None,
            received: at(s),
            source: Source::Simulated,
            status: Default::default(),
        };
        let sys = r(Mdc::PRESS_BLD_NONINV_SYS, "cuff", 0);
        assert!(same_bp_panel(&sys, &r(Mdc::PRESS_BLD_NONINV_MEAN, "cuff", 0)));
        assert!(!same_bp_panel(&sys, &r(Mdc::PRESS_BLD_NONINV_MEAN, "cuff", 1)));
        assert!(!same_bp_panel(&sys, &r(Mdc::PRESS_BLD_NONINV_MEAN, "cuff-2", 0)));
        assert!(!same_bp_panel(&sys, &r(Mdc::ECG_HEART_RATE, "cuff", 0)));
    }

    /// Intermediate cuff pressures and (unless allowed) simulated readings leave the outbox
    /// without being handed to the syncer; the rest is handed out and the rows complete.
    #[tokio::test]
    async fn cuff_pressures_control_solution_test_data_and_simulated_readings_are_never_handed_out() {
        use vigil_fhir::Outbox;
        use vigil_model::{Mdc, Source, Value};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("v.db"),
            &vigil_store::KeySource::passphrase("outbox filter test", "test"),
        )
        .await
        .unwrap();
        let patient = vigil_store::Patient {
            display_name: "Test".into(),
            mrn: "MRN-1".into(),
            date_of_birth: chrono::NaiveDate::from_ymd_opt(1950, 1, 2).unwrap(),
            category: vigil_store::PatientCategory::Adult,
        };
        let adm = store.admit("bed-1", patient, at(0)).await.unwrap().id;
        store.set_outbox_enabled(true);
        let r = |code, source, s| Reading {
            bed: "bed-1".into(),
            admission: Some(adm.clone()),
            device: "cuff".into(),
            code,
            value: Value::Number(100.0),
            unit: "mm[Hg]".into(),
            device_time: None,
            received: at(s),
            source,
            status: Default::default(),
        };
        store
            .append(&[
                r(Mdc::PRESS_CUFF, Source::Real, 1),
                r(Mdc::PULS_RATE_NON_INV, Source::Real, 2),
                r(Mdc::PULS_RATE_NON_INV, Source::Simulated, 3),
                // Issue 12, item 4: a control-solution result is never the patient's.
                r(Mdc::CONC_GLU_CONTROL, Source::Real, 4),
                // Data the device labels as test data (PLXS bit 11).
                Reading {
                    status: vigil_model::Status {
                        quality: vigil_model::Quality::Invalid,
                        flags: vec!["data for testing".into()],
                    },
                    ..r(Mdc::PULS_OXIM_SAT_O2, Source::Real, 5)
                },
            ])
            .await
            .unwrap();
        for (allow, want) in [(false, 1), (true, 2)] {
            let outbox = StoreOutbox::new(store.clone()).allow_simulated(allow);
            let items = outbox.peek(i64::MIN, 10).await.unwrap();
            let codes: Vec<_> = items.iter().map(|i| (i.reading.code, i.reading.source)).collect();
            assert_eq!(items.len(), want, "{codes:?}");
            assert!(items.iter().all(|i| i.reading.code != Mdc::PRESS_CUFF));
            if !allow {
                assert_eq!(items[0].reading.source, Source::Real);
                continue; // nothing acked: the next outbox sees the same rows
            }
            let seqs: Vec<i64> = items.iter().map(|i| i.seq).collect();
            outbox.ack(&seqs).await.unwrap();
            assert_eq!(store.outbox_status().await.unwrap().pending_readings, 0);
        }
        store.close().await;
    }

    #[test]
    fn delivery_fails_on_dead_letters_or_an_outage_longer_than_the_site_limit() {
        let limit = DeliveryLimits {
            outage: Duration::minutes(15),
            set_aside: 1,
        };
        let mut st = SyncStatus {
            pending: 10,
            last_success: Some(at(0)),
            ..Default::default()
        };
        assert!(delivering(&st, 0, at(0), at(60), limit));
        assert!(!delivering(&st, 1, at(0), at(60), limit), "a refused reading");
        let three = DeliveryLimits {
            set_aside: 3,
            ..limit
        };
        assert!(
            delivering(&st, 2, at(0), at(60), three),
            "below the site's threshold"
        );
        assert!(!delivering(&st, 3, at(0), at(60), three));
        let never = DeliveryLimits {
            set_aside: 0,
            ..limit
        };
        assert!(
            delivering(&st, 50, at(0), at(60), never),
            "0: no alarm for set-aside readings"
        );
        // Failing since the last success at 0: fine for 15 min, then an alarm.
        st.consecutive_failures = 3;
        assert!(delivering(&st, 0, at(0), at(15 * 60), limit));
        assert!(!delivering(&st, 0, at(0), at(15 * 60 + 1), limit));
        // Nothing waiting (or only readings waiting for a patient link): nothing undelivered.
        st.waiting_for_patient = 10;
        assert!(delivering(&st, 0, at(0), at(3600), limit));
        // Never succeeded since start: counted from the start.
        st.waiting_for_patient = 0;
        st.last_success = None;
        assert!(delivering(&st, 0, at(100), at(100 + 15 * 60), limit));
        assert!(!delivering(&st, 0, at(100), at(101 + 15 * 60), limit));
    }
}
