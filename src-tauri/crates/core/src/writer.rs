//! The store path: readings from the pipeline into the encrypted store,
//! without ever making the live path wait for the disk.
//!
//! ```text
//! pipeline ──try_send──▶ [writer] ──append (≤ 0.5 s batches)──▶ store
//!                           │ backlog: memory segments and spill files, in arrival order
//!                           └──▶ <store>.spill-* (sealed, beside the store)
//! ```
//! The writer takes readings from its channel all the time, also while a
//! write is under way or failing. While the store refuses writes they wait
//! in a backlog of segments kept in arrival order: memory first (up to
//! [`Limits::memory`] readings), then spill files (`vigil_store::spill`) when memory
//! is full, when the store has failed for [`Limits::spill_after`] (so a crash loses
//! little), and at shutdown. When the store takes writes again, the segments
//! land oldest first, each reading exactly once. Readings that neither memory
//! nor the disk can hold are counted in `Stats::unrecorded` with their span,
//! never silently dropped. Spill files left by an earlier run are applied
//! first at the next start.
//!
//! A replay (`vigil replay`) is an import, not a live device: nothing may be
//! lost for speed. There the writer holds at most [`Limits::hold`] readings
//! and stops taking from its channel beyond it; the pipeline then waits on its
//! awaited send, the replay feed on the pipeline, and the driver on the feed,
//! so the replay goes at the store's pace ([`Limits::replay`]).

use crate::pipeline::{Stats, SHUTDOWN_GRACE};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use vigil_model::Reading;
use vigil_store::{SpillContents, SpillWriter, Store};

/// Readings the writer holds in memory while the store refuses writes
/// (about 200 bytes each): hours of a ward's readings. Beyond it they go to a
/// spill file, or are counted as unrecorded if the disk will not take them.
pub const MEMORY_CAPACITY: usize = 500_000;

/// A store failure this long moves the readings held in memory to a spill
/// file, so that a crash during a long failure loses little.
pub const SPILL_AFTER: Duration = Duration::from_secs(30);

/// How much the writer holds in memory, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Readings held in memory before arrivals go to a spill file.
    pub memory: usize,
    /// A store failure this long moves memory to a spill file.
    pub spill_after: Duration,
    /// Back-pressure (replay only): stop taking from the channel while this
    /// many readings wait in memory. `None` (live): always take, never make
    /// the pipeline wait.
    pub hold: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: MEMORY_CAPACITY,
            spill_after: SPILL_AFTER,
            hold: None,
        }
    }
}

/// Readings a replay's writer holds before the replay waits: one backlog
/// batch, so the next one fills while the store writes one, and far below
/// [`MEMORY_CAPACITY`], so a replay never overflows into spill files or
/// losses for speed.
pub const REPLAY_HOLD: usize = BACKLOG_BATCH;

/// Batches (one device event's readings each) the pipeline may hand the
/// writer before it takes them. The writer drains all the time; this covers
/// the moments it is not scheduled at all because every core is busy (16
/// beds at 240x on a two-core machine, debug build: the old 256 filled within
/// a few tens of ms and readings were counted as not recorded). ~1-3 readings
/// a batch, so at most a few MB.
pub const CHANNEL: usize = 4096;

/// `vigil replay`'s channel: the replay waits for the writer (back-pressure),
/// so a short one keeps what is in flight during a store fault small.
pub const REPLAY_CHANNEL: usize = 256;

impl Limits {
    /// `vigil replay`: the writer pushes back instead of holding without bound.
    pub fn replay() -> Self {
        Limits {
            hold: Some(REPLAY_HOLD),
            ..Limits::default()
        }
    }
}

const FLUSH_EVERY: Duration = Duration::from_millis(500);
/// Readings held that start a store write without waiting for the next
/// 0.5 s tick.
pub const MAX_BATCH: usize = 10_000;
/// Readings per store write at most, when a backlog is drained (after a
/// store failure, a replay's import): one transaction's fixed costs (the
/// durable commit's fsync, a handful of statements, one sealed chunk per
/// series and its digest update) spread over ~500 readings per series of a
/// 16-bed ward instead of ~100. Live flushes hold far fewer (0.5 s of data).
/// About 10 MB of readings in flight; `./dev bench store` imports with it.
pub const BACKLOG_BATCH: usize = 50_000;
/// Readings per spill frame: small enough to write in a few milliseconds.
const FRAME: usize = 5_000;
/// A spill file is closed and a new one started after this many readings,
/// so that applying one never needs much memory.
const FILE_READINGS: u64 = 200_000;
/// After the disk refused a spill file, wait this long before trying again.
const SPILL_RETRY: Duration = Duration::from_secs(10);

enum Segment {
    Memory(VecDeque<Reading>),
    /// A spill file; read when it reaches the head of the backlog.
    Spill {
        path: PathBuf,
        contents: Option<SpillContents>,
        next: usize,
    },
}

/// What the writer sends to the store next.
enum Batch {
    Memory(Vec<Reading>),
    Frame { file: [u8; 16], frame: u64, readings: Vec<Reading> },
}

impl Batch {
    fn len(&self) -> usize {
        match self {
            Batch::Memory(r) => r.len(),
            Batch::Frame { readings, .. } => readings.len(),
        }
    }
}

struct Backlog {
    store: Store,
    stats: Arc<Stats>,
    capacity: usize,
    segments: VecDeque<Segment>,
    in_memory: usize,
    /// Readings in spill files not yet applied (as far as they are known).
    on_disk: u64,
    /// Open spill file taking arrivals; always the last segment.
    active: Option<SpillWriter>,
    /// Arrivals for `active`, written as one frame.
    staged: Vec<Reading>,
    spill_refused_until: Option<Instant>,
    overflowing: bool,
}

impl Backlog {
    fn new(store: Store, stats: Arc<Stats>, capacity: usize) -> Self {
        let mut b = Backlog {
            segments: VecDeque::new(),
            in_memory: 0,
            on_disk: 0,
            active: None,
            staged: Vec::new(),
            spill_refused_until: None,
            overflowing: false,
            store,
            stats,
            capacity,
        };
        for path in b.store.spill_files() {
            tracing::warn!(file = %path.display(), "readings kept in a spill file by an earlier run: recording them first");
            b.segments.push_back(Segment::Spill { path, contents: None, next: 0 });
        }
        b
    }

    fn is_empty(&self) -> bool {
        self.segments.is_empty() && self.staged.is_empty()
    }

    /// Whether to take more arrivals now: always when live; below `hold`
    /// readings in memory when pushing back (replay).
    fn has_room(&self, hold: Option<usize>) -> bool {
        hold.is_none_or(|h| self.in_memory + self.staged.len() < h)
    }

    /// Whether a write should start now rather than wait for more arrivals:
    /// a full batch is held, or older readings wait in a spill file.
    fn ready(&self) -> bool {
        self.in_memory >= MAX_BATCH
            || self.segments.iter().any(|s| matches!(s, Segment::Spill { .. }))
    }

    fn publish(&self) {
        let s = &self.stats;
        s.backlog
            .store((self.in_memory + self.staged.len()) as u64, Ordering::Relaxed);
        s.spilled.store(self.on_disk, Ordering::Relaxed);
    }

    /// Arrivals staged for a spill file are written as a frame at this many
    /// (or every half second), so memory never holds more than twice `capacity`.
    fn frame(&self) -> usize {
        FRAME.min(self.capacity.max(1))
    }

    /// Readings arriving from the pipeline.
    fn take(&mut self, mut batch: Vec<Reading>) {
        if self.active.is_some() {
            self.staged.extend(batch);
            if self.staged.len() >= self.frame() {
                self.flush_staged();
            }
            return self.publish();
        }
        let room = self.capacity.saturating_sub(self.in_memory);
        let overflow = batch.split_off(batch.len().min(room));
        self.push_memory(batch);
        if !overflow.is_empty() {
            if self.open_spill() {
                self.staged = overflow;
                if self.staged.len() >= self.frame() {
                    self.flush_staged();
                }
            } else {
                if !self.overflowing {
                    tracing::error!(
                        capacity = self.capacity,
                        "store backlog full and no spill file: readings from now on are not recorded until the store catches up"
                    );
                }
                self.overflowing = true;
                self.stats.lose(&overflow);
            }
        } else {
            self.overflowing = false;
        }
        self.publish();
    }

    fn push_memory(&mut self, batch: Vec<Reading>) {
        if batch.is_empty() {
            return;
        }
        self.in_memory += batch.len();
        match self.segments.back_mut() {
            Some(Segment::Memory(q)) => q.extend(batch),
            _ => self.segments.push_back(Segment::Memory(batch.into())),
        }
    }

    /// Starts a spill file as the new last segment, unless the disk refused
    /// one a moment ago.
    fn open_spill(&mut self) -> bool {
        if self.spill_refused_until.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        match self.store.start_spill() {
            Ok(w) => {
                tracing::warn!(file = %w.path().display(), "store backlog spilling to disk");
                self.segments.push_back(Segment::Spill {
                    path: w.path().to_path_buf(),
                    contents: None,
                    next: 0,
                });
                self.active = Some(w);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "no spill file could be started");
                self.spill_refused_until = Some(Instant::now() + SPILL_RETRY);
                false
            }
        }
    }

    /// Writes the staged arrivals as one frame of the active spill file.
    /// If the disk refuses, they are counted as unrecorded (they were beyond
    /// what memory holds) and the file is closed with what it has.
    fn flush_staged(&mut self) {
        let Some(w) = self.active.as_mut() else { return };
        if self.staged.is_empty() {
            return;
        }
        let staged = std::mem::take(&mut self.staged);
        match w.write(&staged) {
            Ok(()) => {
                self.on_disk += staged.len() as u64;
                if w.readings() >= FILE_READINGS {
                    self.active = None;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, lost = staged.len(), "spill file refused readings: they are not recorded");
                self.stats.lose(&staged);
                self.active = None;
                self.spill_refused_until = Some(Instant::now() + SPILL_RETRY);
            }
        }
    }

    /// Moves every memory segment into a spill file of its own, in place, so
    /// the order is kept. A segment the disk will not take stays in memory
    /// (its partial file removed), so nothing is lost or doubled.
    fn spill_memory(&mut self) {
        self.flush_staged();
        self.active = None;
        for seg in self.segments.iter_mut() {
            let Segment::Memory(q) = seg else { continue };
            if self.spill_refused_until.is_some_and(|t| Instant::now() < t) {
                return;
            }
            let mut w = match self.store.start_spill() {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!(error = %e, "no spill file could be started; readings stay in memory");
                    self.spill_refused_until = Some(Instant::now() + SPILL_RETRY);
                    return;
                }
            };
            let q = std::mem::take(q);
            let (a, b) = q.as_slices();
            let all: Vec<Reading> = a.iter().chain(b).cloned().collect();
            let written = all.chunks(FRAME).try_for_each(|f| w.write(f));
            let path = w.path().to_path_buf();
            drop(w);
            match written {
                Ok(()) => {
                    self.in_memory -= all.len();
                    self.on_disk += all.len() as u64;
                    *seg = Segment::Spill { path, contents: None, next: 0 };
                }
                Err(e) => {
                    tracing::error!(error = %e, "spill file refused readings; they stay in memory");
                    let _ = std::fs::remove_file(&path);
                    *seg = Segment::Memory(all.into());
                    self.spill_refused_until = Some(Instant::now() + SPILL_RETRY);
                    return;
                }
            }
        }
        self.publish();
    }

    /// The next batch for the store, oldest first.
    async fn next(&mut self) -> Option<Batch> {
        loop {
            let head_is_active = self.segments.len() == 1 && self.active.is_some();
            match self.segments.front_mut()? {
                Segment::Memory(q) if q.is_empty() => {
                    self.segments.pop_front();
                }
                Segment::Memory(q) => {
                    let n = q.len().min(BACKLOG_BATCH);
                    self.in_memory -= n;
                    return Some(Batch::Memory(q.drain(..n).collect()));
                }
                Segment::Spill { .. } if head_is_active => {
                    // Arrivals go to memory from now on, behind this file.
                    self.flush_staged();
                    self.active = None;
                }
                Segment::Spill { path, contents, next } => {
                    if contents.is_none() {
                        match self.store.read_spill(path) {
                            Ok(c) => {
                                if let Some(d) = &c.damage {
                                    tracing::error!(file = %path.display(), damage = %d, "spill file damaged: the readings after that point cannot be recovered");
                                }
                                *contents = Some(c);
                            }
                            Err(e) => {
                                // Kept where it is, never deleted.
                                tracing::error!(error = %e, "spill file cannot be read; left in place");
                                self.segments.pop_front();
                                continue;
                            }
                        }
                    }
                    let c = contents.as_ref().unwrap();
                    if let Some((frame, readings)) = c.frames.get(*next) {
                        return Some(Batch::Frame {
                            file: c.id,
                            frame: *frame,
                            readings: readings.clone(),
                        });
                    }
                    let c = contents.take().unwrap();
                    if let Err(e) = self.store.finish_spill(&c).await {
                        tracing::error!(error = %e, "applied spill file could not be removed");
                    }
                    self.segments.pop_front();
                }
            }
        }
    }

    /// The store took `batch`.
    fn landed(&mut self, batch: &Batch) {
        if let (Batch::Frame { readings, .. }, Some(Segment::Spill { next, .. })) =
            (batch, self.segments.front_mut())
        {
            *next += 1;
            self.on_disk = self.on_disk.saturating_sub(readings.len() as u64);
        }
        self.publish();
    }

    /// The store refused `batch`: back at the front, to be retried as it was.
    fn refused(&mut self, batch: Batch) {
        if let Batch::Memory(r) = batch {
            self.in_memory += r.len();
            match self.segments.front_mut() {
                Some(Segment::Memory(q)) => {
                    for x in r.into_iter().rev() {
                        q.push_front(x);
                    }
                }
                _ => self.segments.push_front(Segment::Memory(r.into())),
            }
        }
        // A frame stays where it is: `next` was not moved.
        self.publish();
    }

    /// Shutdown with the store still refusing: everything held goes to spill
    /// files; what the disk will not take either is counted as unrecorded.
    fn give_up(&mut self) {
        // The last chance: try the disk even if it refused a moment ago.
        self.spill_refused_until = None;
        self.spill_memory();
        let mut lost = Vec::new();
        for seg in self.segments.drain(..) {
            if let Segment::Memory(q) = seg {
                lost.extend(q);
            }
        }
        lost.append(&mut self.staged);
        self.in_memory = 0;
        if !lost.is_empty() {
            tracing::error!(lost = lost.len(), "shutting down with readings neither the store nor a spill file would take");
            self.stats.lose(&lost);
        }
        if self.on_disk > 0 {
            tracing::warn!(kept = self.on_disk, "readings kept in spill files beside the store; they are recorded at the next start");
        }
        self.publish();
    }
}

/// Writes readings to the store in order, in batches: at least twice a
/// second (so a crash loses at most the last second) or when a batch is
/// large; see the module docs for what happens while the store refuses. A
/// failed write is rolled back whole and retried with the same readings, so
/// each lands exactly once. `Stats::store_failing` ("recording interrupted")
/// is set from the first failure until the backlog has been written. After
/// the channel closes (shutdown) it tries for [`SHUTDOWN_GRACE`], then puts
/// what the store would not take into a spill file and returns.
pub async fn write(mut rx: mpsc::Receiver<Vec<Reading>>, store: Store, stats: Arc<Stats>, limits: Limits) {
    let mut backlog = Backlog::new(store.clone(), stats.clone(), limits.memory);
    let mut retry_delay = Duration::from_millis(100);
    let mut open = true;
    let mut closed_at: Option<Instant> = None;
    let mut failing_since: Option<Instant> = None;
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    let take = |b: Option<Vec<Reading>>, backlog: &mut Backlog, open: &mut bool| match b {
        Some(b) => backlog.take(b),
        None => *open = false,
    };
    while open || !backlog.is_empty() {
        if open && !backlog.ready() && failing_since.is_none() {
            tokio::select! {
                b = rx.recv(), if backlog.has_room(limits.hold) => {
                    take(b, &mut backlog, &mut open);
                    if open && !backlog.ready() { continue; }
                }
                _ = tick.tick() => backlog.flush_staged(),
            }
        }
        if !open && closed_at.is_none() {
            closed_at = Some(Instant::now());
        }
        let Some(batch) = backlog.next().await else {
            if failing_since.take().is_some() && stats.store_failing.swap(false, Ordering::Relaxed) {
                tracing::warn!("recording resumed: the readings held during the store failure are written");
            }
            continue;
        };
        let n = batch.len();
        // Keep taking readings while the write is under way. The write is a
        // task of its own: sealing and encoding a batch is CPU work with no
        // await in it, and while that ran inside this task nothing drained the
        // channel, so it filled and the pipeline counted readings as not
        // recorded (16 beds at 240x, debug build, a busy machine).
        let (batch, result) = {
            let write = tokio::spawn({
                let store = store.clone();
                async move {
                    let r = match &batch {
                        Batch::Memory(r) => store.append(r).await.map(|()| true),
                        Batch::Frame { file, frame, readings } => store.append_spilled(file, *frame, readings).await,
                    };
                    (batch, r)
                }
            });
            tokio::pin!(write);
            loop {
                tokio::select! {
                    r = &mut write => match r {
                        Ok(done) => break done,
                        Err(e) => match e.try_into_panic() {
                            Ok(panic) => std::panic::resume_unwind(panic),
                            // Cancelled: the runtime itself is going away.
                            Err(_) => return,
                        },
                    },
                    b = rx.recv(), if open && backlog.has_room(limits.hold) => take(b, &mut backlog, &mut open),
                }
            }
        };
        match result {
            Ok(written) => {
                if written {
                    stats.stored.fetch_add(n as u64, Ordering::Relaxed);
                }
                backlog.landed(&batch);
                retry_delay = Duration::from_millis(100);
                if backlog.is_empty() {
                    failing_since = None;
                    if stats.store_failing.swap(false, Ordering::Relaxed) {
                        tracing::warn!("recording resumed: the readings held during the store failure are written");
                    }
                }
            }
            Err(e) => {
                backlog.refused(batch);
                stats.store_errors.fetch_add(1, Ordering::Relaxed);
                stats.store_failing.store(true, Ordering::Relaxed);
                let since = *failing_since.get_or_insert_with(Instant::now);
                tracing::error!(error = %e, held = stats.get(&stats.backlog), spilled = stats.get(&stats.spilled), "recording interrupted: store write failed; holding readings and retrying");
                if closed_at.is_some_and(|t| t.elapsed() >= SHUTDOWN_GRACE) {
                    backlog.give_up();
                    return;
                }
                if since.elapsed() >= limits.spill_after && backlog.in_memory > 0 {
                    backlog.spill_memory();
                }
                // Wait before retrying, still taking readings meanwhile.
                let wait = tokio::time::sleep(retry_delay);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        _ = &mut wait => break,
                        b = rx.recv(), if open && backlog.has_room(limits.hold) => take(b, &mut backlog, &mut open),
                        _ = tick.tick() => backlog.flush_staged(),
                    }
                }
                if !open && closed_at.is_none() {
                    closed_at = Some(Instant::now());
                }
                retry_delay = (retry_delay * 2).min(Duration::from_secs(2));
            }
        }
    }
    backlog.flush_staged();
}
