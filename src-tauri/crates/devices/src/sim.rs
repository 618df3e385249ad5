//! The simulated ward: scripted patients on simulated bedside devices.
//!
//! Every bed has five devices (HR strap, pulse oximeter, respiration sensor,
//! thermometer, blood-pressure cuff) that produce the same GATT byte payloads
//! real devices would, encoded with `vigil_gatt::encode`, so simulated data
//! goes through exactly the pipeline real data does.
//!
//! Values are scripted functions of simulated time since start plus a ChaCha
//! RNG seeded from [`SimConfig::seed`] and the bed index: the same seed gives
//! the same bytes. Time comes only from the injected [`Clock`], so a
//! [`vigil_model::ScaledClock`] runs the whole ward N× faster.
//!
//! One task drives all devices from a priority queue of next-due jobs. When it
//! falls behind (fast clocks, busy host) it emits what is due without
//! sleeping, so simulated time never drifts from the clock.

mod device;
mod scenario;

pub use scenario::Scenario;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vigil_model::{BedId, Clock, Source, SystemClock};

use self::device::{Job, SimDevice, SimMs, Slot};
use self::scenario::Patient;
use crate::{DeviceEvent, DeviceSource, SourceError};

/// How to run the simulated ward.
#[derive(Clone)]
pub struct SimConfig {
    pub scenario: Scenario,
    /// Number of beds, "bed-1" to "bed-N".
    pub beds: usize,
    /// Same seed, same bytes.
    pub seed: u64,
    pub clock: Arc<dyn Clock>,
}

impl SimConfig {
    pub const DEFAULT_BEDS: usize = 4;

    /// `scenario` on the default number of beds with seed 0.
    pub fn new(scenario: Scenario, clock: Arc<dyn Clock>) -> Self {
        SimConfig {
            scenario,
            beds: Self::DEFAULT_BEDS,
            seed: 0,
            clock,
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig::new(Scenario::Ward, Arc::new(SystemClock))
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("scenario", &self.scenario)
            .field("beds", &self.beds)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

/// A ward of simulated beds; a [`DeviceSource`] with `Source::Simulated`.
pub struct SimulatedWard {
    clock: Arc<dyn Clock>,
    beds: Vec<BedId>,
    devices: Vec<SimDevice>,
}

impl SimulatedWard {
    pub fn new(cfg: SimConfig) -> Self {
        let beds: Vec<BedId> = (1..=cfg.beds).map(|n| format!("bed-{n}")).collect();
        let mut devices = Vec::with_capacity(beds.len() * Slot::ALL.len());
        for (i, bed) in beds.iter().enumerate() {
            // One ChaCha stream per bed and device: adding a bed or a device
            // kind leaves every other stream's numbers unchanged.
            let stream = |slot: u64| {
                let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
                rng.set_stream(((i as u64) << 8) | slot);
                rng
            };
            let patient = Patient::new(cfg.scenario.for_bed(i), &mut stream(0xff));
            for (s, slot) in Slot::ALL.into_iter().enumerate() {
                devices.push(SimDevice::new(
                    bed.clone(),
                    slot,
                    patient.clone(),
                    stream(s as u64),
                ));
            }
        }
        SimulatedWard {
            clock: cfg.clock,
            beds,
            devices,
        }
    }

    /// The beds this ward has, "bed-1" upwards.
    pub fn beds(&self) -> Vec<BedId> {
        self.beds.clone()
    }

    async fn run_ward(
        mut self,
        tx: mpsc::Sender<DeviceEvent>,
        cancel: CancellationToken,
    ) -> Result<(), SourceError> {
        let start = self.clock.now();
        // Min-heap of (due, insertion order, device, job): the unique sequence
        // number makes simultaneous jobs run in a fixed order (reproducible output).
        let mut queue = BinaryHeap::new();
        let mut seq = 0u64;
        let mut push = |queue: &mut BinaryHeap<_>, at: SimMs, dev: usize, job: Job| {
            queue.push(Reverse((at, seq, dev, job)));
            seq += 1;
        };
        for dev in 0..self.devices.len() {
            push(&mut queue, 0, dev, Job::Attach);
        }
        tracing::debug!(
            beds = self.beds.len(),
            devices = self.devices.len(),
            "simulated ward started"
        );
        let (mut out, mut next) = (Vec::new(), Vec::new());
        while let Some(Reverse((at, _, dev, job))) = queue.pop() {
            if cancel.is_cancelled() {
                return Ok(());
            }
            let due = start + chrono::Duration::milliseconds(at as i64);
            if let Ok(ahead) = (due - self.clock.now()).to_std() {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(self.clock.real_duration(ahead)) => {}
                }
            }
            let now = self.clock.now();
            self.devices[dev].handle(job, at, now, &mut out, &mut next);
            for (at, job) in next.drain(..) {
                push(&mut queue, at, dev, job);
            }
            for event in out.drain(..) {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return Ok(()),
                    sent = tx.send(event) => sent.map_err(|_| SourceError::PipelineClosed)?,
                }
            }
        }
        Ok(())
    }
}

impl DeviceSource for SimulatedWard {
    fn source(&self) -> Source {
        Source::Simulated
    }

    fn run(
        self: Box<Self>,
        tx: mpsc::Sender<DeviceEvent>,
        cancel: CancellationToken,
    ) -> Pin<Box<dyn Future<Output = Result<(), SourceError>> + Send>> {
        Box::pin((*self).run_ward(tx, cancel))
    }
}
