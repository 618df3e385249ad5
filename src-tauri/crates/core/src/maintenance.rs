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
    /// Free space below which every bed shows "low disk space" (0: never);
    /// it also shows when the disk would be full within a day at its
    /// current fill rate.
    pub low_disk_bytes: u64,
}

/// Free space an unprivileged writer can use on the file system holding
/// `dir`, in bytes (statvfs `f_bavail × f_frsize` on Unix, the caller's
/// quota from `GetDiskFreeSpaceExW` on Windows); `None` where it cannot be read.
pub fn available_bytes(dir: &Path) -> Option<u64> {
    fs4::available_space(dir).ok()
}

/// How far ahead the disk's fill rate is watched: warn when it would be full
/// within this time at the rate of the last [`RATE_WINDOW`].
pub const RATE_HORIZON: Duration = Duration::from_secs(24 * 3600);
/// The window the fill rate is measured over.
pub const RATE_WINDOW: Duration = Duration::from_secs(600);

/// Free-space samples and the "low disk" verdict: below the site's fixed
/// threshold, or full within [`RATE_HORIZON`] at the current fill rate (the
/// drop in free space over the last [`RATE_WINDOW`], whoever writes).
#[derive(Debug, Default)]
pub struct DiskWatch {
    threshold: u64,
    samples: std::collections::VecDeque<(std::time::Instant, u64)>,
}

impl DiskWatch {
    pub fn new(threshold: u64) -> Self {
        DiskWatch {
            threshold,
            samples: Default::default(),
        }
    }

    /// Takes a sample; true when the disk is low. A rate needs at least a
    /// minute of samples, so a single burst at start does not count.
    pub fn observe(&mut self, at: std::time::Instant, free: u64) -> bool {
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| at.duration_since(*t) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        self.samples.push_back((at, free));
        if self.threshold == 0 {
            return false;
        }
        if free < self.threshold {
            return true;
        }
        let (t0, f0) = self.samples[0];
        let span = at.duration_since(t0);
        if span < Duration::from_secs(60) || f0 <= free {
            return false;
        }
        let per_s = (f0 - free) as f64 / span.as_secs_f64();
        (free as f64) < per_s * RATE_HORIZON.as_secs_f64()
    }
}

/// How often compaction looks for closed windows, in the core clock's time:
/// a minute of readings (under `--speed 60`, every real second), so the
/// backlog is the same minute of data at any speed.
pub const COMPACT_EVERY: Duration = Duration::from_secs(60);

/// The real interval between compaction passes: [`COMPACT_EVERY`] of the
/// clock's time, but at least 100 ms (a very fast clock) and at most a minute.
fn compact_interval(clock: &dyn vigil_model::Clock) -> Duration {
    clock
        .real_duration(COMPACT_EVERY)
        .clamp(Duration::from_millis(100), COMPACT_EVERY)
}

/// Compacts closed windows every minute of the clock's time (again at once
/// while a bounded pass leaves more), applies retention every hour, raises
/// the store counter every 10 minutes and checks free space every 10 s
/// (clock-independent real time), until cancelled.
pub async fn run(store: Store, ctx: Context, upkeep: Upkeep, cancel: CancellationToken) {
    let clock = ctx.clock.clone();
    let retention = upkeep.retention;
    let mut compact = tokio::time::interval(compact_interval(&*clock));
    compact.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut purge = tokio::time::interval(Duration::from_secs(3600));
    let mut disk = tokio::time::interval(Duration::from_secs(10));
    // The store counter (rollback detection, issue 13 §4) is raised at open
    // and close; raising it every 10 minutes too makes a copy taken while
    // Vigil runs count as old within 10 minutes.
    let mut counter = tokio::time::interval(Duration::from_secs(600));
    let mut watch = DiskWatch::new(upkeep.low_disk_bytes);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = disk.tick() => {
                // Unknown free space is not reported as low: the write path's
                // own failure alarm ("recording interrupted") still stands guard.
                let low = available_bytes(&upkeep.data_dir)
                    .is_some_and(|a| watch.observe(std::time::Instant::now(), a));
                let beds = ctx.beds();
                let out = ctx.alarming.lock().unwrap().workstation_health(TechnicalKind::LowDisk, !low, &beds, clock.now());
                ctx.publish(out).await;
            }
            _ = compact.tick() => {
                // A window is closed once no reading for it can still be in the writer.
                match store.compact(clock.now() - Age::minutes(1)).await {
                    Ok(r) => {
                        if r.chunks_read > 0 {
                            tracing::debug!(read = r.chunks_read, written = r.chunks_written, more = r.more, "compacted");
                        }
                        // Backlog-driven: a pass stopped at its bound runs
                        // again at once (after the other arms had their turn),
                        // so ingest at any speed cannot outrun compaction.
                        if r.more {
                            compact.reset_immediately();
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "compaction failed; data is untouched"),
                }
            }
            _ = counter.tick() => {
                if let Err(e) = store.raise_counter().await {
                    tracing::warn!(error = %e, "raising the store counter failed; retried in 10 minutes");
                }
            }
            _ = purge.tick() => {
                match store.purge_before(clock.now() - retention.0).await {
                    Ok(n) if n > 0 => tracing::info!(chunks = n, "retention: old readings deleted"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "retention failed"),
                }
                // NEWS2 scores and entries go with the readings they were computed from.
                match store.purge_news2_before(clock.now() - retention.0).await {
                    Ok(n) if n > 0 => tracing::info!(records = n, "retention: old NEWS2 records deleted"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "NEWS2 retention failed"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const MB: u64 = 1 << 20;

    #[test]
    fn a_disk_that_would_fill_within_a_day_is_low_before_the_threshold() {
        let t0 = Instant::now();
        let mut w = DiskWatch::new(200 * MB);
        // 10 GB free, falling 1 MB every 10 s (100 KB/s: ~8.4 GB a day).
        let mut low = Vec::new();
        for i in 0..60u64 {
            low.push(w.observe(t0 + Duration::from_secs(10 * i), 10_000 * MB - i * MB));
        }
        assert!(!low.iter().any(|&l| l), "8.4 GB a day leaves 10 GB for more than a day");
        // 5 GB free at the same rate: full in ~14 hours.
        let mut w = DiskWatch::new(200 * MB);
        let mut low = Vec::new();
        for i in 0..60u64 {
            low.push(w.observe(t0 + Duration::from_secs(10 * i), 5_000 * MB - i * MB));
        }
        assert!(!low[..5].iter().any(|&l| l), "a rate from under a minute of samples");
        assert!(*low.last().unwrap(), "full within a day but no warning");
    }

    #[test]
    fn the_fixed_threshold_holds_and_a_steady_or_growing_disk_is_not_low() {
        let t0 = Instant::now();
        let mut w = DiskWatch::new(200 * MB);
        assert!(w.observe(t0, 199 * MB));
        for i in 1..100u64 {
            assert!(!w.observe(t0 + Duration::from_secs(10 * i), 300 * MB + i * MB));
        }
        // 0 switches the warning off.
        let mut w = DiskWatch::new(0);
        assert!(!w.observe(t0, 1));
    }
}
