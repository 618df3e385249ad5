//! The outbox the sync drains, as a trait (the app backs it with the encrypted store), and
//! an in-memory implementation for tests and for a gateway without a store.
//!
//! Contract:
//! * `seq` is the insertion order, strictly increasing; the syncer drains by `seq`, never by
//!   measurement time (readings arrive late and out of order).
//! * `peek(after, n)` returns up to `n` items with `seq > after` in `seq` order, acked and
//!   dead-lettered items excluded. `patient_ref` is resolved at peek time (the bed's
//!   admission → the linked `Patient/<id>`), so readings taken before the nurse linked the
//!   bed to a patient are uploaded once the link exists.
//! * `ack` and `dead_letter` remove items from what `peek` returns. Acking an item twice, or
//!   an unknown seq, is harmless (uploads are idempotent anyway); so is dead-lettering one
//!   twice (one dead letter).
//! * `record_failure` counts a failed upload attempt per item, durably (a restart must not
//!   reset it): `peek` returns the count in [`OutboxItem::attempts`]. The syncer parks an item
//!   that keeps failing while others go through ([`SetAsideKind::Parked`]).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use vigil_model::{AdmissionId, Reading};

/// One reading waiting for upload.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub seq: i64,
    pub reading: Reading,
    /// `Patient/<id>` when the reading's admission is linked to a FHIR Patient.
    pub patient_ref: Option<String>,
    /// Failed upload attempts so far (see [`Outbox::record_failure`]).
    pub attempts: u32,
}

/// Why an item leaves the outbox without reaching the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetAsideKind {
    /// The server refused it (a 4xx about its content): a dead letter.
    Refused,
    /// It failed again and again (5xx) while the server took others: set aside so that
    /// the queue moves on.
    Parked,
}

/// An item set aside, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct SetAside {
    pub kind: SetAsideKind,
    /// Log-safe: HTTP status and OperationOutcome issue codes, never values. For the
    /// sync status and logs.
    pub summary: String,
    /// The full reason (the server's OperationOutcome text, which may echo values): for
    /// the dead-letter list shown to authorised users only.
    pub detail: String,
}

/// Counts for [`crate::sync::SyncStatus`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboxStats {
    /// Items not yet acked or dead-lettered (including those waiting for a patient link).
    pub pending: u64,
    /// Of those, items whose admission is not linked to a Patient (yet).
    pub waiting_for_patient: u64,
    /// Receive time of the oldest pending item.
    pub oldest_received: Option<DateTime<Utc>>,
    /// Items the server refused.
    pub dead_letters: u64,
    /// Items parked after failing again and again.
    pub parked: u64,
    /// [`SetAside::summary`] of the latest item dead-lettered or parked.
    pub last_set_aside: Option<String>,
}

/// The store could not do what was asked (the syncer backs off and tries again).
#[derive(Debug, Clone, thiserror::Error)]
#[error("outbox: {0}")]
pub struct OutboxError(pub String);

/// Where the syncer takes readings from. The futures are `Send` so that a syncer can run
/// on a spawned task; implementations may simply write `async fn`.
pub trait Outbox: Send + Sync {
    /// Up to `n` pending items with `seq > after`, in `seq` order.
    fn peek(&self, after: i64, n: usize)
        -> impl Future<Output = Result<Vec<OutboxItem>, OutboxError>> + Send;
    /// These items are on the server.
    fn ack(&self, seqs: &[i64]) -> impl Future<Output = Result<(), OutboxError>> + Send;
    /// The server will never take this item (or it was parked); keep it, with the reason,
    /// for authorised users, out of what `peek` returns, until re-queued.
    fn dead_letter(&self, seq: i64, why: SetAside) -> impl Future<Output = Result<(), OutboxError>> + Send;
    /// One more failed upload attempt for each of these items.
    fn record_failure(&self, seqs: &[i64]) -> impl Future<Output = Result<(), OutboxError>> + Send;
    fn stats(&self) -> impl Future<Output = Result<OutboxStats, OutboxError>> + Send;
}

/// A dead-lettered (or parked) reading and why.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub seq: i64,
    pub reading: Reading,
    /// [`SetAside::detail`].
    pub reason: String,
    pub kind: SetAsideKind,
    /// [`SetAside::summary`].
    pub summary: String,
}

#[derive(Default)]
struct Inner {
    next: i64,
    pending: BTreeMap<i64, Reading>,
    attempts: HashMap<i64, u32>,
    links: HashMap<AdmissionId, String>,
    dead: Vec<DeadLetter>,
    acked: u64,
}

/// In-memory [`Outbox`].
#[derive(Default)]
pub struct MemoryOutbox {
    inner: Mutex<Inner>,
}

impl MemoryOutbox {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a reading; its seq.
    pub fn push(&self, reading: Reading) -> i64 {
        let mut g = self.lock();
        g.next += 1;
        let seq = g.next;
        g.pending.insert(seq, reading);
        seq
    }

    /// Links an admission to a FHIR Patient (`Patient/<id>`): its readings become uploadable.
    pub fn link(&self, admission: AdmissionId, patient_ref: impl Into<String>) {
        self.lock().links.insert(admission, patient_ref.into());
    }

    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.lock().dead.clone()
    }

    /// Items acked so far.
    pub fn acked(&self) -> u64 {
        self.lock().acked
    }

    pub fn pending_len(&self) -> usize {
        self.lock().pending.len()
    }

    /// Puts dead letters (all, or those with these seqs) back at the end of the queue,
    /// under new seqs; how many.
    pub fn requeue(&self, seqs: Option<&[i64]>) -> usize {
        let mut g = self.lock();
        let dead = std::mem::take(&mut g.dead);
        let (back, keep): (Vec<_>, Vec<_>) = dead
            .into_iter()
            .partition(|d| seqs.is_none_or(|s| s.contains(&d.seq)));
        g.dead = keep;
        for d in &back {
            g.next += 1;
            let seq = g.next;
            g.pending.insert(seq, d.reading.clone());
        }
        back.len()
    }
}

impl Inner {
    fn patient(&self, r: &Reading) -> Option<String> {
        r.admission.as_ref().and_then(|a| self.links.get(a)).cloned()
    }
}

impl Outbox for MemoryOutbox {
    async fn peek(&self, after: i64, n: usize) -> Result<Vec<OutboxItem>, OutboxError> {
        let g = self.lock();
        Ok(g.pending
            .range(after.saturating_add(1)..)
            .take(n)
            .map(|(&seq, r)| OutboxItem {
                seq,
                reading: r.clone(),
                patient_ref: g.patient(r),
                attempts: g.attempts.get(&seq).copied().unwrap_or(0),
            })
            .collect())
    }

    async fn ack(&self, seqs: &[i64]) -> Result<(), OutboxError> {
        let mut g = self.lock();
        for s in seqs {
            if g.pending.remove(s).is_some() {
                g.attempts.remove(s);
                g.acked += 1;
            }
        }
        Ok(())
    }

    async fn dead_letter(&self, seq: i64, why: SetAside) -> Result<(), OutboxError> {
        let mut g = self.lock();
        if let Some(reading) = g.pending.remove(&seq) {
            g.attempts.remove(&seq);
            g.dead.push(DeadLetter {
                seq,
                reading,
                reason: why.detail,
                kind: why.kind,
                summary: why.summary,
            });
        }
        Ok(())
    }

    async fn record_failure(&self, seqs: &[i64]) -> Result<(), OutboxError> {
        let mut g = self.lock();
        for &s in seqs {
            if g.pending.contains_key(&s) {
                *g.attempts.entry(s).or_default() += 1;
            }
        }
        Ok(())
    }

    async fn stats(&self) -> Result<OutboxStats, OutboxError> {
        let g = self.lock();
        Ok(OutboxStats {
            pending: g.pending.len() as u64,
            waiting_for_patient: g.pending.values().filter(|r| g.patient(r).is_none()).count() as u64,
            oldest_received: g.pending.values().map(|r| r.received).min(),
            dead_letters: g.dead.iter().filter(|d| d.kind == SetAsideKind::Refused).count() as u64,
            parked: g.dead.iter().filter(|d| d.kind == SetAsideKind::Parked).count() as u64,
            last_set_aside: g.dead.last().map(|d| d.summary.clone()),
        })
    }
}
