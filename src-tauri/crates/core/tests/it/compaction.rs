//! Issue 15, "compaction must keep up": a 16-bed simulated ward at 120× real
//! speed through the real `Vigil::start` path (writer flushing every 0.5 s,
//! background upkeep). The backlog of uncompacted chunks stays bounded,
//! closed windows get their summaries.

use super::config;
use chrono::{DurationRound, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil_core::Vigil;
use vigil_devices::sim::Scenario;
use vigil_model::ScaledClock;

const SPEED: f64 = 120.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_up_with_a_16_bed_ward_at_120x() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), Scenario::Stable, SPEED);
    cfg.sim.beds = 16;
    // Start on a window edge: the run closes two whole 10-minute windows.
    let start = Utc::now().duration_trunc(chrono::Duration::minutes(10)).unwrap();
    cfg.clock = Arc::new(ScaledClock::new(start, SPEED));
    let v = Vigil::start(cfg).await.unwrap();
    let t = Instant::now();
    let mut samples = Vec::new();
    // 14 s: 28 simulated minutes; a 0.5 s flush holds a minute of each series.
    while t.elapsed() < Duration::from_secs(14) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        samples.push((t.elapsed(), v.store().chunk_stats().await.unwrap()));
    }
    v.shutdown().await;
    let per_series: Vec<f64> =
        samples.iter().map(|(_, s)| s.unsummarised as f64 / s.series.max(1) as f64).collect();
    eprintln!("uncompacted chunks per series every 0.5 s: {per_series:.1?}");
    let (_, last) = *samples.last().unwrap();
    eprintln!("at the end: {last:?}");
    assert!(last.series >= 16 * 3, "{last:?}");
    assert!(last.readings > 20_000, "{last:?}");
    // Closed windows are compacted: summaries exist, and hold most readings.
    assert!(last.chunks > last.unsummarised, "no summaries at all: {last:?}");
    // Bounded: at most the open window (10 flushes at 120x), the minute
    // compaction waits and a pass's interval, per series, with room for a
    // loaded machine; without compaction it climbs past 17 in this run.
    let worst = per_series.iter().cloned().fold(0.0, f64::max);
    assert!(worst <= 12.0, "the backlog grew to {worst:.1} chunks per series");
}
