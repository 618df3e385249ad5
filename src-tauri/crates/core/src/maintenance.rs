//! Background store upkeep: compaction of closed windows and retention.
//!
//! Both run between the writer's commits (SQLite serialises writers; each
//! compaction group and each retention batch is its own short transaction),
//! so ingest is never blocked for long.

use chrono::Duration as Age;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use vigil_model::Clock;
use vigil_store::Store;

/// How long readings are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention(pub Age);

impl Default for Retention {
    fn default() -> Self {
        Retention(Age::days(30))
    }
}

pub async fn run(store: Store, clock: Arc<dyn Clock>, retention: Retention, cancel: CancellationToken) {
    let mut compact = tokio::time::interval(Duration::from_secs(60));
    let mut purge = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = compact.tick() => {
                // A window is closed once no reading for it can still be in the writer.
                match store.compact(clock.now() - Age::minutes(1)).await {
                    Ok(r) if r.chunks_read > 0 => tracing::debug!(read = r.chunks_read, written = r.chunks_written, "compacted"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "compaction failed; data is untouched"),
                }
            }
            _ = purge.tick() => match store.purge_before(clock.now() - retention.0).await {
                Ok(n) if n > 0 => tracing::info!(chunks = n, "retention: old readings deleted"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "retention failed"),
            },
        }
    }
}
