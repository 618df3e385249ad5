//! The audit trail's writer: actions queue their records here (never
//! waiting on the store) and one task writes them to the store's signed
//! trail ([`vigil_store::AuditRecord`]), in order.
//!
//! Why a queue: an audit write must never block or break monitoring. Like
//! the alarm log's writer (`pipeline::log_alarms`), a failing write keeps
//! the records and retries with a growing pause; the failure is counted and
//! visible ([`AuditQueue::status`], the gateway's status line); records
//! beyond the bound, or still refused at shutdown, are counted as lost.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use vigil_store::{AuditRecord, Store};

/// Records held in memory while the store refuses them.
pub const AUDIT_CAPACITY: usize = 10_000;
/// Records written per transaction.
const BATCH: usize = 256;

impl std::fmt::Debug for AuditQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.status().fmt(f)
    }
}

/// Audit records waiting for the store, and how writing them goes.
#[derive(Default)]
pub struct AuditQueue {
    pending: Mutex<VecDeque<AuditRecord>>,
    notify: Notify,
    failing: AtomicBool,
    errors: AtomicU64,
    lost: AtomicU64,
    written: AtomicU64,
}

/// The trail writer's health, for status lines and tests (no PHI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct AuditStatus {
    /// The latest write failed; records are held and retried.
    pub failing: bool,
    pub pending: u64,
    pub errors: u64,
    /// Records never written (beyond the bound, or refused at shutdown).
    pub lost: u64,
    pub written: u64,
}

impl AuditQueue {
    /// Queues a record; never waits. Beyond [`AUDIT_CAPACITY`] it is counted as lost.
    pub fn push(&self, record: AuditRecord) {
        let mut p = self.pending.lock().unwrap();
        if p.len() >= AUDIT_CAPACITY {
            let lost = self.lost.fetch_add(1, Ordering::Relaxed) + 1;
            if lost == 1 || lost.is_multiple_of(1000) {
                tracing::error!(
                    lost,
                    "audit backlog full: records are not recorded until the trail catches up"
                );
            }
            return;
        }
        p.push_back(record);
        drop(p);
        self.notify.notify_one();
    }

    /// The latest write failed (records are held and retried).
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    pub fn status(&self) -> AuditStatus {
        AuditStatus {
            failing: self.failing.load(Ordering::Relaxed),
            pending: self.pending.lock().unwrap().len() as u64,
            errors: self.errors.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
        }
    }

    /// Writes what is queued now (one try per batch); Err: the first failure
    /// (the records stay queued).
    pub async fn flush(&self, store: &Store) -> Result<(), vigil_store::StoreError> {
        loop {
            let batch: Vec<AuditRecord> = self.pending.lock().unwrap().iter().take(BATCH).cloned().collect();
            if batch.is_empty() {
                return Ok(());
            }
            match store.audit_append(&batch).await {
                Ok(()) => {
                    self.pending.lock().unwrap().drain(..batch.len());
                    self.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    if self.failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("audit trail writes again");
                    }
                }
                Err(e) => {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    if !self.failing.swap(true, Ordering::Relaxed) {
                        tracing::error!(error = %e, "audit trail write failed; records are held and retried (monitoring goes on)");
                    }
                    return Err(e);
                }
            }
        }
    }
}

/// The writer task: writes queued records until `cancel`, then what is
/// left (for at most [`crate::pipeline::SHUTDOWN_GRACE`]).
pub async fn run(queue: Arc<AuditQueue>, store: Store, cancel: CancellationToken) {
    let mut delay = Duration::from_millis(100);
    loop {
        tokio::select! {
            _ = queue.notify.notified() => {}
            _ = cancel.cancelled() => break,
        }
        while queue.flush(&store).await.is_err() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = cancel.cancelled() => break,
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        if !queue.failing.load(Ordering::Relaxed) {
            delay = Duration::from_millis(100);
        }
        if cancel.is_cancelled() {
            break;
        }
    }
    let deadline = tokio::time::Instant::now() + crate::pipeline::SHUTDOWN_GRACE;
    while queue.flush(&store).await.is_err() {
        if tokio::time::Instant::now() >= deadline {
            let n = queue.pending.lock().unwrap().drain(..).count() as u64;
            queue.lost.fetch_add(n, Ordering::Relaxed);
            tracing::error!(
                lost = n,
                "shutting down with audit records the store would not take"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The audit record of `action` by `actor` now, at this workstation.
pub fn record(
    actor: &crate::auth::Actor,
    action: &str,
    admission: Option<&str>,
    outcome: vigil_store::Outcome,
    detail: Option<String>,
) -> AuditRecord {
    AuditRecord {
        at: chrono::Utc::now(),
        actor: actor.name.clone(),
        role: actor.role.map(|r| r.as_str().to_string()),
        action: action.to_string(),
        outcome,
        admission: admission.map(str::to_string),
        workstation: workstation().to_string(),
        break_glass: actor.break_glass,
        detail,
    }
}

/// This workstation's name for audit records: the host name.
pub fn workstation() -> &'static str {
    static W: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    W.get_or_init(|| {
        let from_env = ["HOSTNAME", "COMPUTERNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()));
        let from_file = || {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        from_env
            .or_else(from_file)
            .map(|s| s.chars().filter(|c| !c.is_control()).take(64).collect())
            .unwrap_or_else(|| "unknown".into())
    })
}
