//! The signed audit trail to the FHIR server as `AuditEvent`s (issue 14).
//!
//! The trail is already a durable, ordered queue: records are numbered
//! 1, 2, 3 … with no gaps. So no copy goes into the readings' outbox; a
//! cursor in the store (`audit_uploaded_seq`) says how far the server has
//! them. Each pass sends the next records as one batch of conditional
//! creates keyed on the record's name (`<store id>/<seq>`): a batch sent
//! again after a lost answer finds the events already there (200) instead
//! of adding them twice. The cursor moves only over records the server
//! stored, in order; a record it refuses stops the cursor there (it is
//! retried, logged and counted, never skipped), and a record that does not
//! open is never passed over either (`vigil audit verify` names it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use vigil_fhir::audit_event::{audit_event, AuditFacts};
use vigil_fhir::FhirClient;
use vigil_store::{AuditEntry, Store};

/// Records per batch.
const BATCH: i64 = 100;
/// How often the trail is looked at when the last pass sent everything.
const IDLE: Duration = Duration::from_secs(2);
/// Longest wait after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What the uploader has done, for status lines and tests.
#[derive(Debug, Default)]
pub struct AuditUploadStats {
    /// Records the server holds (created or found).
    pub uploaded: AtomicU64,
    /// Passes that failed (server down, a refused record, the store unreadable).
    pub failures: AtomicU64,
    /// Why the last pass failed; None once a pass succeeds. The sync status is not
    /// "healthy" while it is set: the trail is not reaching the server.
    pub last_error: Mutex<Option<String>>,
}

fn facts<'a>(store_id: &'a str, gateway_id: &'a str, e: &'a AuditEntry) -> AuditFacts<'a> {
    AuditFacts {
        store_id,
        seq: e.seq,
        hash: &e.hash,
        at: e.record.at,
        actor: &e.record.actor,
        role: e.record.role.as_deref(),
        action: &e.record.action,
        outcome: e.record.outcome.as_str(),
        admission: e.record.admission.as_deref(),
        workstation: &e.record.workstation,
        break_glass: e.record.break_glass,
        gateway_id,
    }
}

/// One pass: sends what is after the cursor; how many the server now holds.
pub async fn pass(store: &Store, client: &FhirClient, gateway_id: &str) -> Result<usize, String> {
    let after = store.audit_uploaded().await.map_err(|e| e.to_string())?;
    let entries = store
        .audit_entries_after(after, BATCH)
        .await
        .map_err(|e| e.to_string())?;
    if entries.is_empty() {
        return Ok(0);
    }
    let store_id = store.store_id().to_string();
    let events: Vec<_> = entries
        .iter()
        .map(|e| audit_event(&facts(&store_id, gateway_id, e)))
        .collect();
    let results = client.batch(&events).await.map_err(|e| e.to_string())?;
    // Only a run of stored records from the start moves the cursor.
    let stored = results.iter().take_while(|r| r.is_stored()).count();
    if stored > 0 {
        store
            .set_audit_uploaded(entries[stored - 1].seq)
            .await
            .map_err(|e| e.to_string())?;
    }
    if stored < entries.len() {
        return Err(format!(
            "the FHIR server did not store audit record {}: {:?}",
            entries[stored].seq, results[stored]
        ));
    }
    Ok(stored)
}

/// Runs passes until `cancel`: at once while there is more, every [`IDLE`] otherwise,
/// backing off after a failure.
pub async fn run(
    store: Store,
    client: Arc<FhirClient>,
    gateway_id: String,
    stats: Arc<AuditUploadStats>,
    cancel: CancellationToken,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let wait = match pass(&store, &client, &gateway_id).await {
            Ok(n) => {
                stats.uploaded.fetch_add(n as u64, Ordering::Relaxed);
                *stats.last_error.lock().unwrap() = None;
                backoff = Duration::from_secs(1);
                if n as i64 == BATCH {
                    Duration::ZERO
                } else {
                    IDLE
                }
            }
            Err(e) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "audit upload failed; retrying");
                *stats.last_error.lock().unwrap() = Some(e);
                let w = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                w
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
