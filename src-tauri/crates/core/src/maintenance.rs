//! Background store upkeep: compaction of closed windows, retention, and a
//! warning before the disk is full.
//!
//! Both run between the writer's commits (SQLite serialises writers; each
//! compaction group and each retention batch is its own short transaction),
//! so ingest is never blocked for long.

use crate::pipeline::Context;
use chrono::Duration as Age;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use vigil_alarms::TechnicalKind;
use vigil_store::Store;

/// How long readings are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention(pub Age);

impl Default for Retention {
    fn default() -> Self {
        Retention(Age::days(30))
    }
}

/// What the upkeep task looks after.
#[derive(Debug, Clone)]
pub struct Upkeep {
    pub retention: Retention,
    /// Where the store lives, for the free-space check.
    pub data_dir: PathBuf,
    /// Free space below which every bed shows "low disk space" (0: never).
    pub low_disk_bytes: u64,
}

/// Free space an unprivileged writer can use on the file system holding
/// `dir`, in bytes; `None` where it cannot be read (and on non-Unix systems,
/// where the check is not made yet).
#[cfg(unix)]
pub fn available_bytes(dir: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(not(unix))]
pub fn available_bytes(_dir: &Path) -> Option<u64> {
    None
}

/// Compacts closed windows every minute, applies retention every hour and
/// checks free space every 10 s (clock-independent real time), until cancelled.
pub async fn run(store: Store, ctx: Context, upkeep: Upkeep, cancel: CancellationToken) {
    let clock = ctx.clock.clone();
    let retention = upkeep.retention;
    let mut compact = tokio::time::interval(Duration::from_secs(60));
    let mut purge = tokio::time::interval(Duration::from_secs(3600));
    let mut disk = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = disk.tick() => {
                // Unknown free space is not reported as low: the write path's
                // own failure alarm ("recording interrupted") still stands guard.
                let low = available_bytes(&upkeep.data_dir).is_some_and(|a| a < upkeep.low_disk_bytes);
                let beds = ctx.beds();
                let out = ctx.alarming.lock().unwrap().workstation_health(TechnicalKind::LowDisk, !low, &beds, clock.now());
                ctx.publish(out).await;
            }
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
