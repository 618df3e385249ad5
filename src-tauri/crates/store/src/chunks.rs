//! Readings as sealed time-series chunks.
//!
//! A series is admission × bed × device × code × unit × source. Each append
//! seals one chunk per series; a background compaction merges short chunks
//! into window-aligned long ones with a sealed summary. The AAD binds every
//! chunk to its series, time range, count and (from schema 2) its own id, so
//! a chunk that is edited, moved, swapped or copied fails to open and is
//! reported, never skipped.

use crate::codec;
use crate::integrity::{self, Delta};
use crate::keyring::Purpose;
use crate::{db, micros_to_utc, source_str, SeriesQuery, Store, StoreError, AAD_CHUNK, AAD_SUMMARY};
use chrono::{DateTime, Utc};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use vigil_model::{AdmissionId, Mdc, Reading, Source};

/// AAD of a sealed series descriptor (schema 11): its id and lookup tags.
const AAD_SERIES: &[u8] = b"vigil/series/v1/";

/// Identifies a series row; also bound into each chunk's AAD. Sealed in the
/// series row (schema 11); only its keyed tags are in the clear.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub(crate) struct SeriesKey {
    pub(crate) admission: String,
    pub(crate) bed: String,
    pub(crate) device: String,
    pub(crate) code: u32,
    pub(crate) unit: String,
    pub(crate) source: &'static str,
}

/// A sealed series descriptor as read back (owned source string).
#[derive(serde::Deserialize)]
struct SeriesRecord {
    admission: String,
    bed: String,
    device: String,
    code: u32,
    unit: String,
    source: String,
}

/// A series key borrowed from a reading, for grouping a batch cheaply.
#[derive(Debug, Clone, Copy, Eq)]
struct SeriesRef<'a> {
    admission: &'a str,
    bed: &'a str,
    device: &'a str,
    code: u32,
    unit: &'a str,
    source: &'static str,
}

/// Equal strings, short ones (a bed, a device id, a unit: a few bytes)
/// compared in registers: a bulk append compares every reading's key with
/// its group's, and libc's memcmp call per field was a large share of it
/// (so was a memcpy per field into a zero-padded word). Up to 16 bytes,
/// two fixed-size loads from each end, overlapping (every byte is
/// covered), compile to plain loads and compares.
#[inline]
fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    #[inline(always)]
    fn w8(s: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(s[at..at + 8].try_into().unwrap())
    }
    #[inline(always)]
    fn w4(s: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(s[at..at + 4].try_into().unwrap())
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4),
        8..=16 => w8(a, 0) == w8(b, 0) && w8(a, n - 8) == w8(b, n - 8),
        _ => a == b,
    }
}

impl PartialEq for SeriesRef<'_> {
    /// The fields most likely to differ first (parameter, device).
    fn eq(&self, o: &Self) -> bool {
        self.code == o.code
            && same_str(self.device, o.device)
            && same_str(self.bed, o.bed)
            && same_str(self.unit, o.unit)
            && same_str(self.admission, o.admission)
            && self.source == o.source
    }
}

impl std::hash::Hash for SeriesRef<'_> {
    /// The fields `eq` compares, whole.
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.code.hash(h);
        self.device.hash(h);
        self.bed.hash(h);
        self.unit.hash(h);
        self.admission.hash(h);
        self.source.hash(h);
    }
}

impl<'a> SeriesRef<'a> {
    fn of(r: &'a Reading) -> Self {
        SeriesRef {
            admission: r.admission.as_ref().map(|a| a.0.as_str()).unwrap_or(""),
            bed: &r.bed,
            device: &r.device,
            code: r.code.0,
            unit: &r.unit,
            source: source_str(r.source),
        }
    }
    fn owned(&self) -> SeriesKey {
        SeriesKey {
            admission: self.admission.to_string(),
            bed: self.bed.to_string(),
            device: self.device.to_string(),
            code: self.code,
            unit: self.unit.to_string(),
            source: self.source,
        }
    }
}

/// The multiply-rotate hash rustc uses (FxHash), finalised, for grouping a
/// batch by series: std's SipHash resists hash flooding, which buys nothing for keys
/// the store's own callers build (a device's bed, id and unit), and costs
/// a large share of a bulk append's per-reading work.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut it = bytes.chunks_exact(8);
        for c in &mut it {
            self.add(u64::from_le_bytes(c.try_into().unwrap()));
        }
        // The last 1–7 bytes by fixed-size loads (overlapping), not a
        // memcpy call into a padded word; the length is hashed beside them.
        let r = it.remainder();
        let n = r.len();
        let w = match n {
            0 => return,
            1..=3 => u64::from(r[0]) | u64::from(r[n / 2]) << 8 | u64::from(r[n - 1]) << 16,
            _ => {
                let lo = u32::from_le_bytes(r[..4].try_into().unwrap());
                let hi = u32::from_le_bytes(r[n - 4..].try_into().unwrap());
                u64::from(lo) | u64::from(hi) << 32
            }
        };
        self.add(w ^ (n as u64) << 56);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i.into());
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i.into());
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    /// MurmurHash3's 64-bit finaliser on top: the multiply leaves the low
    /// bits (hashbrown's bucket index) depending only on the low bits of the
    /// input, and these keys end alike (same unit, source): without it they
    /// collide and every lookup compares strings along a long probe chain.
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

type BuildFx = std::hash::BuildHasherDefault<FxHasher>;

/// A series row's lookup columns: the whole descriptor (found on append),
/// its bed, its bed and code (selected by queries).
pub(crate) struct SeriesTags {
    pub(crate) tag: Vec<u8>,
    pub(crate) bed: Vec<u8>,
    pub(crate) bed_code: Vec<u8>,
}

impl SeriesTags {
    pub(crate) fn of(l: &crate::lookup::Lookup, k: &SeriesKey) -> SeriesTags {
        SeriesTags {
            tag: l.series(&k.admission, &k.bed, &k.device, k.code, &k.unit, k.source),
            bed: l.bed(&k.bed),
            bed_code: l.bed_code(&k.bed, k.code),
        }
    }

    /// The AAD of the row's sealed descriptor binds id and tags: a tag
    /// edited in the file (a series moved to another bed's queries) fails.
    pub(crate) fn aad(&self, id: i64) -> Vec<u8> {
        [AAD_SERIES, &id.to_le_bytes()[..], &self.tag, &self.bed, &self.bed_code].concat()
    }
}

impl SeriesKey {
    /// AAD of a chunk. Schema-1 chunks (`chunk_id` None) predate id binding.
    pub(crate) fn chunk_aad(
        &self,
        chunk_id: Option<i64>,
        series_id: i64,
        t0: i64,
        t1: i64,
        n: u32,
    ) -> Vec<u8> {
        let mut aad = Vec::with_capacity(104);
        aad.extend_from_slice(AAD_CHUNK);
        if let Some(id) = chunk_id {
            aad.extend_from_slice(b"/id");
            aad.extend_from_slice(&id.to_le_bytes());
        }
        aad.extend_from_slice(&series_id.to_le_bytes());
        for s in [&self.admission, &self.bed, &self.device, &self.unit] {
            aad.extend_from_slice(&(s.len() as u32).to_le_bytes());
            aad.extend_from_slice(s.as_bytes());
        }
        aad.extend_from_slice(self.source.as_bytes());
        aad.extend_from_slice(&self.code.to_le_bytes());
        aad.extend_from_slice(&t0.to_le_bytes());
        aad.extend_from_slice(&t1.to_le_bytes());
        aad.extend_from_slice(&n.to_le_bytes());
        aad
    }

    pub(crate) fn reading(&self, s: codec::Sample) -> Reading {
        Reading {
            bed: self.bed.clone(),
            admission: (!self.admission.is_empty()).then(|| AdmissionId(self.admission.clone())),
            device: self.device.clone(),
            code: Mdc(self.code),
            value: s.value,
            unit: self.unit.clone(),
            device_time: s.device_time,
            received: micros_to_utc(s.t),
            source: if self.source == "simulated" {
                Source::Simulated
            } else {
                Source::Real
            },
            status: s.status,
        }
    }
}

/// Compacted chunks cover one aligned window of this length (µs), so trend
/// buckets that are multiples of it are answered from summaries alone.
pub const WINDOW_US: i64 = 10 * 60 * 1_000_000;

/// Per-chunk numeric summary (special values are not numbers, and values the
/// device marked invalid are no measurement: neither is counted).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
}

impl Summary {
    fn of(samples: &[codec::Sample]) -> Summary {
        let mut s = Summary {
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
        };
        for v in samples.iter().filter_map(|x| x.trend_value()) {
            s.add(v);
        }
        s
    }
    fn add(&mut self, v: f64) {
        self.count += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v;
    }
    fn merge(&mut self, o: &Summary) {
        self.count += o.count;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
    }
    fn encode(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&self.count.to_le_bytes());
        b[8..16].copy_from_slice(&self.min.to_le_bytes());
        b[16..24].copy_from_slice(&self.max.to_le_bytes());
        b[24..].copy_from_slice(&self.sum.to_le_bytes());
        b
    }
    fn decode(b: &[u8]) -> Option<Summary> {
        let f = |r: std::ops::Range<usize>| b.get(r).and_then(|s| s.try_into().ok());
        Some(Summary {
            count: u64::from_le_bytes(f(0..8)?),
            min: f64::from_le_bytes(f(8..16)?),
            max: f64::from_le_bytes(f(16..24)?),
            sum: f64::from_le_bytes(f(24..32)?),
        })
    }
}

fn summary_aad(chunk_id: i64) -> Vec<u8> {
    [AAD_SUMMARY, &chunk_id.to_le_bytes()].concat()
}

/// One bucket of a downsampled (trend) series. `count` is the number of
/// numeric samples; an empty bucket has none and no min/max/mean.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrendBucket {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub count: u64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
}

/// What a compaction pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompactionReport {
    pub chunks_read: u64,
    pub chunks_written: u64,
    /// The pass stopped at its bound with closed windows left to compact.
    pub more: bool,
}

/// (series, window) groups one [`Store::compact`] call merges at most.
pub const COMPACT_GROUPS: usize = 500;
/// Ingest frames one [`Store::compact`] call regroups at most (20 minutes
/// of the writer's 0.5 s flushes).
const COMPACT_FRAMES: i64 = 2_400;
/// Groups merged per transaction, and chunks read: at real speed a window
/// holds ~600 one-reading chunks per series, and the writer waits for the
/// transaction (tens of ms, not its 0.5 s flush interval).
const GROUPS_PER_TX: usize = 32;
const CHUNKS_PER_TX: u64 = 4_000;

/// The chunk layout at one moment ([`Store::chunk_stats`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ChunkStats {
    pub series: u64,
    pub chunks: u64,
    pub readings: u64,
    /// Chunks without a summary: appended, not yet compacted.
    pub unsummarised: u64,
    /// Ingest frames not yet regrouped into chunks (schema 15).
    pub frames: u64,
}

pub(crate) const CHUNK_COLUMNS: &str =
    "c.id, c.series_id, c.t0, c.t1, c.n, c.nonce, c.sealed, c.aad_version, c.key_id, c.mac,
     c.summary_nonce, c.summary, s.tag AS s_tag, s.bed_tag AS s_bed_tag,
     s.bed_code_tag AS s_bed_code_tag, s.nonce AS s_nonce, s.sealed AS s_sealed, s.key_id AS s_key_id";

impl Store {
    /// Appends readings durably: one transaction, one sealed chunk per series
    /// (and, when FHIR upload is on, one outbox entry per series). When this
    /// returns Ok, every reading is on disk.
    pub async fn append(&self, batch: &[Reading]) -> Result<(), StoreError> {
        self.append_marked(batch, None).await
    }

    /// [`Store::append`], also setting `meta[key] = value` in the same
    /// transaction (a spill frame's "applied" mark).
    pub(crate) async fn append_marked(
        &self,
        batch: &[Reading],
        mark: Option<(&str, i64)>,
    ) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // Positions are u32; the writer's batches are far smaller.
        assert!(
            batch.len() <= u32::MAX as usize,
            "append of over 4 billion readings"
        );
        let groups = Groups::of(batch);
        let outbox = self.outbox_enabled();
        let mut created = Vec::new();
        let framing = groups.keys.len() >= crate::frames::FRAME_MIN_SERIES;
        let framed_here = |n: usize| framing && n < crate::frames::FRAME_MAX_RUN;
        let chunk_count = groups.members.iter().filter(|m| !framed_here(m.len())).count();
        let ids = chunk_count + usize::from(chunk_count < groups.keys.len());
        // BEGIN goes out with the id reservation (one round trip less).
        let mut tx = self.begin_write_deferred("starting a write").await?;
        let mut jobs = Vec::with_capacity(groups.keys.len());
        // Many series with a few readings each (the writer's 0.5 s flush):
        // their runs share one sealed frame instead of a chunk each.
        let mut framed = Vec::new();
        for (key, members) in groups.keys.iter().zip(groups.members) {
            let key = key.owned();
            let cached = self.series_cache.lock().unwrap().get(&key).copied();
            let series_id = match cached {
                Some(id) => id,
                None => {
                    // Tags are computed only here, on a cache miss: never
                    // per reading.
                    tx.ensure_begun().await.map_err(db("starting a write"))?;
                    let id = self.series_id(&mut tx, &key).await?;
                    created.push((key.clone(), id));
                    id
                }
            };
            if framed_here(members.len()) {
                framed.push((series_id, samples_at(batch, &members)));
                continue;
            }
            jobs.push(ChunkJob {
                key,
                series_id,
                id: 0,
                members,
            });
        }
        // One round trip reserves the ids this append takes (reading and
        // raising the high-water mark) and reads the integrity digests it
        // will change: every statement is a hand-off to the connection's
        // thread, and for the writer's 0.5 s flush those, not SQLite, are
        // most of the CPU.
        let mut scopes: Vec<String> = jobs.iter().map(|j| format!("chunks:{}", j.series_id)).collect();
        if !jobs.is_empty() {
            scopes.push("chunks".into());
        }
        if !framed.is_empty() {
            scopes.push("frames".into());
        }
        if outbox {
            scopes.push("outbox".into());
        }
        let (mut next_id, ahead) = reserve_chunk_ids_reading(&mut tx, ids as i64, scopes).await?;
        let reserved_to = next_id + ids as i64;
        for job in &mut jobs {
            next_id += 1;
            job.id = next_id;
        }
        let mut sealed_under = std::collections::BTreeSet::new();
        let mut delta = Delta::default();
        let mut seal = |jobs: &[ChunkJob]| -> Result<Vec<SealedChunk>, StoreError> {
            let sealed = seal_chunks(self, batch, jobs)?;
            for c in &sealed {
                delta.add_chunk(c.series_id, &c.mac);
                sealed_under.insert(c.key_id);
            }
            Ok(sealed)
        };
        // Many chunks (a backlog batch): the first half is inserted by the
        // connection's thread while this one seals the second, so SQLite's
        // work and sealing (each ~1 ms per 50,000 readings) overlap.
        let half = if jobs.len() >= OVERLAP_MIN_CHUNKS {
            jobs.len() / 2
        } else {
            0
        };
        let (first, rest) = jobs.split_at(half);
        let sealed = if first.is_empty() {
            seal(rest)?
        } else {
            let mut script = crate::Script::default();
            push_chunks(&mut script, seal(first)?);
            let run = script.run(&mut tx);
            let mut run = std::pin::pin!(run);
            let inserting = poll_once(run.as_mut()).await;
            let sealed = seal(rest);
            match inserting {
                std::task::Poll::Ready(r) => r,
                std::task::Poll::Pending => run.await,
            }
            .map_err(db("writing a batch"))?;
            sealed?
        };
        // Every other write of the batch goes in one round trip (see `Script`):
        // the chunks, the frame, the keys' seal counts, the digests, the mark.
        let mut script = crate::Script::default();
        crate::chunks::push_chunks(&mut script, sealed);
        if !framed.is_empty() {
            next_id += 1;
            let f = self.seal_frame(next_id, &framed, &mut delta)?;
            sealed_under.insert(f.key_id);
            crate::frames::push_frame(&mut script, f);
        }
        debug_assert_eq!(next_id, reserved_to, "every reserved id used, none beyond");
        // One count update per key, not one per chunk.
        for &key_id in &sealed_under {
            self.keys.persist_count_into(&mut script, key_id);
        }
        if outbox {
            self.enqueue(&mut tx, batch, &mut delta).await?;
        }
        self.integrity
            .apply_ahead(&mut tx, delta, &mut script, ahead)
            .await?;
        if let Some((key, value)) = mark {
            script
                .push("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
                .bind(key)
                .bind(value);
        }
        // The only rows the script returns: one per counted key still active.
        let counted = script.run(&mut tx).await.map_err(db("writing a batch"))?;
        crate::keyring::Keyring::check_counted(counted.len(), sealed_under.len())?;
        tx.commit().await.map_err(db("committing a batch"))?;
        // Only ids of committed series rows may be remembered.
        self.series_by_id
            .lock()
            .unwrap()
            .extend(created.iter().map(|(k, id)| (*id, Arc::new(k.clone()))));
        self.series_cache.lock().unwrap().extend(created);
        Ok(())
    }

    /// Every reading of one bed's measurement (all devices) in `[from, to]`, oldest first.
    pub async fn query_series(&self, q: &SeriesQuery) -> Result<Vec<Reading>, StoreError> {
        self.query(Some(&q.bed), Some(q.code), q.from, q.to).await
    }

    /// Every reading in `[from, to]`, optionally for one bed, ordered by time.
    pub async fn query_range(
        &self,
        bed: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Reading>, StoreError> {
        self.query(bed, None, from, to).await
    }

    /// Chunks in `[from, to]`, of one bed (and one code of it) if given:
    /// selected by the series' keyed tags.
    async fn chunk_rows(
        &self,
        bed: Option<&str>,
        code: Option<Mdc>,
        from: i64,
        to: i64,
    ) -> Result<Vec<sqlx::sqlite::SqliteRow>, StoreError> {
        let (bed_tag, bed_code_tag) = match (bed, code) {
            (Some(b), Some(c)) => (None, Some(self.lookup.bed_code(b, c.0))),
            (Some(b), None) => (Some(self.lookup.bed(b)), None),
            // No query asks for a code across beds (no tag for that).
            (None, _) => (None, None),
        };
        sqlx::query(&format!(
            "SELECT {CHUNK_COLUMNS} FROM chunks c JOIN series s ON s.id = c.series_id
             WHERE c.t1 >= ?1 AND c.t0 <= ?2
               AND (?3 IS NULL OR s.bed_tag = ?3) AND (?4 IS NULL OR s.bed_code_tag = ?4)
             ORDER BY c.t0"
        ))
        .bind(from)
        .bind(to)
        .bind(bed_tag)
        .bind(bed_code_tag)
        .fetch_all(&self.pool)
        .await
        .map_err(db("querying readings"))
    }

    async fn query(
        &self,
        bed: Option<&str>,
        code: Option<Mdc>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Reading>, StoreError> {
        let (from, to) = (from.timestamp_micros(), to.timestamp_micros());
        let mut out = Vec::new();
        for row in self.chunk_rows(bed, code, from, to).await? {
            let (key, samples) = self.open_chunk(&row)?;
            out.extend(
                samples
                    .into_iter()
                    .filter(|s| s.t >= from && s.t <= to)
                    .map(|s| key.reading(s)),
            );
        }
        // Readings not yet compacted out of their ingest frames.
        let want = |k: &SeriesKey| bed.is_none_or(|b| k.bed == b) && code.is_none_or(|c| k.code == c.0);
        for (_, _, key, samples) in self.frame_samples(from, to, want).await? {
            out.extend(
                samples
                    .into_iter()
                    .filter(|s| s.t >= from && s.t <= to)
                    .map(|s| key.reading(s)),
            );
        }
        out.sort_by(|a, b| a.received.cmp(&b.received).then(a.code.cmp(&b.code)));
        Ok(out)
    }

    /// A downsampled series for trend screens: `buckets` equal buckets over
    /// `[from, to)` with min/max/mean of the numeric values. Chunks whose
    /// sealed summary falls inside one bucket are answered from the summary
    /// without decrypting their samples.
    pub async fn trend(
        &self,
        bed: &str,
        code: Mdc,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        buckets: usize,
    ) -> Result<Vec<TrendBucket>, StoreError> {
        let (f, t) = (from.timestamp_micros(), to.timestamp_micros());
        let buckets = buckets.max(1);
        let width = ((t - f) / buckets as i64).max(1);
        let empty = Summary {
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
        };
        let mut acc = vec![empty; buckets];
        let bucket_of = |us: i64| -> Option<usize> {
            (us >= f && us < t).then(|| (((us - f) / width) as usize).min(buckets - 1))
        };
        for row in self.chunk_rows(Some(bed), Some(code), f, t).await? {
            let (t0, t1): (i64, i64) = (row.get("t0"), row.get("t1"));
            if let (Some(b0), Some(b1)) = (bucket_of(t0), bucket_of(t1)) {
                if b0 == b1 {
                    if let Some(sum) = self.open_summary(&row)? {
                        acc[b0].merge(&sum);
                        continue;
                    }
                }
            }
            let (_, samples) = self.open_chunk(&row)?;
            for s in samples {
                if let (Some(b), Some(v)) = (bucket_of(s.t), s.trend_value()) {
                    acc[b].add(v);
                }
            }
        }
        let want = |k: &SeriesKey| k.bed == bed && k.code == code.0;
        for (_, _, _, samples) in self.frame_samples(f, t, want).await? {
            for s in samples {
                if let (Some(b), Some(v)) = (bucket_of(s.t), s.trend_value()) {
                    acc[b].add(v);
                }
            }
        }
        Ok(acc
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let start = f + i as i64 * width;
                let end = if i + 1 == buckets { t } else { start + width };
                let has = s.count > 0;
                TrendBucket {
                    start: micros_to_utc(start),
                    end: micros_to_utc(end),
                    count: s.count,
                    min: has.then_some(s.min),
                    max: has.then_some(s.max),
                    mean: has.then(|| s.sum / s.count as f64),
                }
            })
            .collect())
    }

    /// The newest reading per bed and code (across devices and admissions).
    pub async fn latest(&self) -> Result<Vec<Reading>, StoreError> {
        self.newest_by(|r| (r.bed.clone(), r.code.0)).await
    }

    /// The newest reading per bed, code and admission (readings taken with
    /// no patient admitted as one more group): a bed restores only its
    /// current stay's values at start (`core::ward::Ward::seed_latest`), and
    /// an earlier stay's newer reading must not hide them.
    pub async fn latest_by_admission(&self) -> Result<Vec<Reading>, StoreError> {
        self.newest_by(|r| (r.bed.clone(), r.code.0, r.admission.clone()))
            .await
    }

    async fn newest_by<K: Ord>(&self, group: impl Fn(&Reading) -> K) -> Result<Vec<Reading>, StoreError> {
        // SQLite returns the bare columns of the row holding max(t1).
        let rows = sqlx::query(&format!(
            "SELECT {CHUNK_COLUMNS}, max(c.t1) FROM chunks c JOIN series s ON s.id = c.series_id
             GROUP BY c.series_id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db("querying latest readings"))?;
        let mut best: BTreeMap<K, Reading> = BTreeMap::new();
        for row in rows {
            let (key, samples) = self.open_chunk(&row)?;
            if let Some(last) = samples.into_iter().max_by_key(|s| s.t) {
                let r = key.reading(last);
                let slot = group(&r);
                if best.get(&slot).is_none_or(|b| b.received < r.received) {
                    best.insert(slot, r);
                }
            }
        }
        // Frames are the newest readings: the last ones of each series.
        for (_, _, key, samples) in self.frame_samples(i64::MIN, i64::MAX, |_| true).await? {
            if let Some(last) = samples.into_iter().max_by_key(|s| s.t) {
                let r = key.reading(last);
                let slot = group(&r);
                if best.get(&slot).is_none_or(|b| b.received < r.received) {
                    best.insert(slot, r);
                }
            }
        }
        Ok(best.into_values().collect())
    }

    /// Opens every chunk and sealed record; returns how many chunks were
    /// checked and every failure: chunks that fail authentication or
    /// decoding, and chunks of one series that hold a reading at the same
    /// time (a replayed copy of old data: a deleted chunk put back beside the
    /// compacted chunk that replaced it).
    ///
    /// Chunks of one series may overlap in time without sharing a reading:
    /// stored records downloaded late (placed at their measurement time), or
    /// a gateway clock that stepped back. That is not tampering, so only
    /// overlapping chunks are decoded against each other.
    pub async fn verify(&self) -> Result<(u64, Vec<StoreError>), StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CHUNK_COLUMNS} FROM chunks c LEFT JOIN series s ON s.id = c.series_id
             ORDER BY c.series_id, c.t0, c.id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading chunks"))?;
        let mut failures = Vec::new();
        // Sweep per series in t0 order: the earlier chunks still open at this
        // chunk's t0, with their sample times (sorted).
        let mut series_now = None;
        let mut open: Vec<(i64, i64, Vec<i64>)> = Vec::new(); // (id, t1, times)
        for row in &rows {
            let (series, id, t0, t1): (i64, i64, i64, i64) =
                (row.get("series_id"), row.get("id"), row.get("t0"), row.get("t1"));
            if series_now != Some(series) {
                series_now = Some(series);
                open.clear();
            }
            // A chunk whose series row is gone fails even if its
            // descriptor is still cached.
            if row.get::<Option<Vec<u8>>, _>("s_sealed").is_none() {
                failures.push(StoreError::Tampered { chunk: id, series });
                continue;
            }
            let samples = match self
                .open_chunk(row)
                .and_then(|(_, s)| self.open_summary(row).map(|_| s))
            {
                Ok(samples) => samples,
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            };
            let mut times: Vec<i64> = samples.iter().map(|s| s.t).collect();
            times.sort_unstable();
            open.retain(|(_, end, _)| *end >= t0);
            for (other, _, other_times) in &open {
                if shares_a_time(other_times, &times) {
                    failures.push(StoreError::Overlap {
                        series,
                        chunks: (*other, id),
                    });
                }
            }
            open.push((id, t1, times));
        }
        // Ingest frames: each must open (AEAD, MAC, payload, series ids).
        let frames = sqlx::query(&format!("SELECT {} FROM frames ORDER BY id", crate::frames::FRAME_COLUMNS))
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading ingest frames"))?;
        for row in &frames {
            let frame: i64 = row.get("id");
            match self.open_frame(row) {
                Ok(groups) => {
                    for (series, _) in groups {
                        if self.series_key(series).await?.is_none() {
                            failures.push(StoreError::TamperedFrame { frame });
                            break;
                        }
                    }
                }
                Err(e) => failures.push(e),
            }
        }
        failures.extend(self.verify_series().await?);
        failures.extend(self.verify_sealed_records().await?);
        failures.extend(self.verify_integrity().await?);
        Ok(((rows.len() + frames.len()) as u64, failures))
    }

    /// The descriptor of a chunk row's series: from the cache, else opened
    /// from the row's series columns (and then cached: series rows never
    /// change). None if the series row is missing or does not open.
    pub(crate) fn series_of(&self, row: &sqlx::sqlite::SqliteRow) -> Option<Arc<SeriesKey>> {
        let id: i64 = row.get("series_id");
        if let Some(k) = self.series_by_id.lock().unwrap().get(&id) {
            return Some(k.clone());
        }
        let tags = SeriesTags {
            tag: row.try_get("s_tag").ok()?,
            bed: row.try_get("s_bed_tag").ok()?,
            bed_code: row.try_get("s_bed_code_tag").ok()?,
        };
        let key = open_series(
            &self.keys,
            id,
            &tags,
            row.try_get("s_key_id").ok()?,
            &row.try_get::<Vec<u8>, _>("s_nonce").ok()?,
            &row.try_get::<Vec<u8>, _>("s_sealed").ok()?,
        )?;
        let key = Arc::new(key);
        self.series_by_id.lock().unwrap().insert(id, key.clone());
        Some(key)
    }

    /// Opens every series descriptor; returns the series that do not open.
    pub(crate) async fn verify_series(&self) -> Result<Vec<StoreError>, StoreError> {
        let rows = sqlx::query("SELECT id, tag, bed_tag, bed_code_tag, nonce, sealed, key_id FROM series")
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading series"))?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let id: i64 = r.get("id");
                let tags = SeriesTags {
                    tag: r.get("tag"),
                    bed: r.get("bed_tag"),
                    bed_code: r.get("bed_code_tag"),
                };
                open_series(&self.keys, id, &tags, r.get("key_id"), &r.get::<Vec<u8>, _>("nonce"), &r.get::<Vec<u8>, _>("sealed"))
                    .is_none()
                    .then_some(StoreError::TamperedRecord { table: "series", id })
            })
            .collect())
    }

    pub(crate) fn open_chunk(
        &self,
        row: &sqlx::sqlite::SqliteRow,
    ) -> Result<(Arc<SeriesKey>, Vec<codec::Sample>), StoreError> {
        let chunk: i64 = row.get("id");
        let series: i64 = row.get("series_id");
        let tampered = || StoreError::Tampered { chunk, series };
        let key = self.series_of(row).ok_or_else(tampered)?;
        let (t0, t1, n): (i64, i64, i64) = (row.get("t0"), row.get("t1"), row.get("n"));
        let n32 = u32::try_from(n).map_err(|_| tampered())?;
        let bound_id = match row.get::<i64, _>("aad_version") {
            1 => None,
            2 => Some(chunk),
            _ => return Err(tampered()),
        };
        let nonce: Vec<u8> = row.get("nonce");
        let sealed: Vec<u8> = row.get("sealed");
        let plain = self
            .keys
            .open(
                Purpose::Readings,
                row.get("key_id"),
                &key.chunk_aad(bound_id, series, t0, t1, n32),
                &nonce,
                &sealed,
            )
            .map_err(|_| tampered())?;
        // After the AEAD (which reports an edited range first): a row read
        // with its MAC column must carry a valid MAC; salvage reads without.
        if let Ok(mac) = row.try_get::<Option<Vec<u8>>, _>("mac") {
            let expect = integrity::chunk_mac(
                &self.integrity,
                chunk,
                series,
                t0,
                t1,
                n,
                row.get("key_id"),
                &row.get::<Vec<u8>, _>("nonce"),
            );
            if mac.as_deref() != Some(&expect[..]) {
                return Err(StoreError::IntegrityRow {
                    table: "chunks",
                    id: chunk.to_string(),
                });
            }
        }
        let samples =
            codec::decode(&plain, n32 as usize).map_err(|source| StoreError::Corrupt { chunk, source })?;
        Ok((key, samples))
    }

    pub(crate) fn open_summary(&self, row: &sqlx::sqlite::SqliteRow) -> Result<Option<Summary>, StoreError> {
        let chunk: i64 = row.get("id");
        let series: i64 = row.get("series_id");
        let (Some(nonce), Some(sealed)) = (
            row.get::<Option<Vec<u8>>, _>("summary_nonce"),
            row.get::<Option<Vec<u8>>, _>("summary"),
        ) else {
            return Ok(None);
        };
        let plain = self
            .keys
            .open(
                Purpose::Readings,
                row.get("key_id"),
                &summary_aad(chunk),
                &nonce,
                &sealed,
            )
            .map_err(|_| StoreError::Tampered { chunk, series })?;
        Summary::decode(&plain)
            .map(Some)
            .ok_or(StoreError::Tampered { chunk, series })
    }

    /// Merges the short chunks of every closed window (ending before
    /// `closed_before`) into one summarised chunk per series and window:
    /// write the new chunk, then delete the old ones, in one transaction, so
    /// a crash leaves either the old chunks or the new one, never neither.
    ///
    /// Bounded per call ([`COMPACT_GROUPS`] windows); `more` in the report
    /// says candidates were left, and the caller should call again soon.
    pub async fn compact(&self, closed_before: DateTime<Utc>) -> Result<CompactionReport, StoreError> {
        let cutoff = closed_before.timestamp_micros().div_euclid(WINDOW_US) * WINDOW_US;
        // Ingest frames with readings in closed windows become per-series
        // chunks first; the merge below then folds them into window chunks.
        let (frames_read, frames_out, frames_left) = self.regroup_frames(cutoff, COMPACT_FRAMES).await?;
        // Candidate (series, window) groups: closed chunks not yet compacted
        // (no summary), oldest window first; found through the partial index.
        let groups: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT series_id, t0 / ?1 AS w FROM chunks
             WHERE summary IS NULL AND t1 < ?2 AND t0 >= 0
             GROUP BY series_id, w
             ORDER BY w
             LIMIT ?3",
        )
        .bind(WINDOW_US)
        .bind(cutoff)
        .bind(COMPACT_GROUPS as i64 + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db("finding chunks to compact"))?;
        let mut report = CompactionReport {
            more: groups.len() > COMPACT_GROUPS || frames_left,
            chunks_read: frames_read,
            chunks_written: frames_out,
        };
        let groups = &groups[..groups.len().min(COMPACT_GROUPS)];
        // The longest time any uncompacted chunk spans (a compacted one
        // spans one window at most): a chunk starting before a range's end
        // ends before the end plus this, which bounds each group's scan of
        // `chunks_series_time` (series_id, t1). Without the bound a group
        // scanned every later chunk of its series, and compacting a long
        // backlog (a 30-day import) took time quadratic in its length. A
        // chunk appended after this read with a longer span is not lost: it
        // stays a plain chunk and a later pass merges it.
        let max_span: i64 = if groups.is_empty() {
            0
        } else {
            sqlx::query_scalar("SELECT coalesce(max(t1 - t0), 0) FROM chunks WHERE summary IS NULL")
                .fetch_one(&self.pool)
                .await
                .map_err(db("finding chunks to compact"))?
        };
        let max_span = max_span.max(WINDOW_US);
        // (series, window) already rewritten in this pass.
        let mut done = std::collections::HashSet::new();
        // Several groups per transaction: one commit (fsync), one digest
        // update per scope and one seal-count update per key for all of
        // them, yet short enough (tens of ms) not to hold up the writer.
        let mut rest = groups;
        while !rest.is_empty() {
            let mut tx = self.begin_write("starting a compaction").await?;
            let mut next_id = chunk_id_high_water(&mut tx).await?;
            let mut delta = Delta::default();
            let mut sealed_under = std::collections::BTreeSet::new();
            let (mut read, mut written) = (0, 0);
            let mut taken = 0;
            for &(series, window) in rest.iter().take(GROUPS_PER_TX) {
                if read >= CHUNKS_PER_TX {
                    break;
                }
                taken += 1;
                if done.contains(&(series, window)) {
                    continue;
                }
                // A chunk may straddle a window edge (an append spanning it):
                // widen the range to whole windows until no chunk of the
                // series crosses its ends, then rewrite it one chunk per
                // window. A chunk reaching into the open window is split:
                // its closed part compacted, the rest kept as a plain chunk.
                let (mut lo, mut hi) = (window * WINDOW_US, ((window + 1) * WINDOW_US).min(cutoff));
                let rows = loop {
                    let rows = sqlx::query(&format!(
                        "SELECT {CHUNK_COLUMNS} FROM chunks c JOIN series s ON s.id = c.series_id
                         WHERE c.series_id = ?1 AND c.t1 >= ?2 AND c.t1 < ?3 + ?4 AND c.t0 < ?3 ORDER BY c.t0"
                    ))
                    .bind(series)
                    .bind(lo)
                    .bind(hi)
                    .bind(max_span)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db("reading chunks to compact"))?;
                    let t0 = rows.iter().map(|r| r.get::<i64, _>("t0")).min().unwrap_or(lo);
                    let t1 = rows.iter().map(|r| r.get::<i64, _>("t1")).max().unwrap_or(lo);
                    let (l, h) = (
                        t0.div_euclid(WINDOW_US).min(window) * WINDOW_US,
                        ((t1.div_euclid(WINDOW_US).max(window) + 1) * WINDOW_US).min(cutoff),
                    );
                    if (l, h) == (lo, hi) {
                        break rows;
                    }
                    (lo, hi) = (l, h);
                };
                if rows.is_empty() || lo < 0 {
                    continue;
                }
                let mut key = None;
                let mut by_window: BTreeMap<i64, Vec<codec::Sample>> = BTreeMap::new();
                let mut ids = Vec::new();
                for row in &rows {
                    let (k, s) = self.open_chunk(row)?;
                    key = Some(k);
                    for x in s {
                        by_window.entry(x.t.div_euclid(WINDOW_US)).or_default().push(x);
                    }
                    ids.push(row.get::<i64, _>("id"));
                }
                let Some(key) = key else { continue };
                let mut fresh = Vec::with_capacity(by_window.len());
                for (w, mut samples) in by_window {
                    samples.sort_by_key(|s| s.t);
                    let closed = (w + 1) * WINDOW_US <= cutoff;
                    next_id += 1;
                    let c = seal_chunk(self, &key, series, next_id, &samples, closed, &mut delta)?;
                    sealed_under.insert(c.key_id);
                    fresh.push(c);
                    if closed {
                        done.insert((series, w));
                    }
                    written += 1;
                }
                write_chunks(&mut tx, fresh).await?;
                // The merged chunks go, many per statement (round trips).
                for part in ids.chunks(500) {
                    let marks = vec!["?"; part.len()].join(",");
                    let sql = format!("DELETE FROM chunks WHERE id IN ({marks}) RETURNING mac");
                    let mut q = sqlx::query_scalar::<_, Option<Vec<u8>>>(&sql);
                    for id in part {
                        q = q.bind(id);
                    }
                    for mac in q.fetch_all(&mut *tx).await.map_err(db("deleting compacted chunks"))? {
                        delta.remove_chunk(series, mac.as_deref());
                    }
                }
                read += ids.len() as u64;
            }
            rest = &rest[taken..];
            for key_id in sealed_under {
                self.keys.persist_count(&mut tx, key_id).await?;
            }
            set_chunk_id_high_water(&mut tx, next_id).await?;
            self.integrity.apply(&mut tx, delta).await?;
            tx.commit().await.map_err(db("committing a compaction"))?;
            report.chunks_read += read;
            report.chunks_written += written;
            // Let the writer in between transactions.
            tokio::task::yield_now().await;
        }
        if report.chunks_written > 0 {
            // Give the pages of the merged chunks back to the file system
            // (auto_vacuum = incremental); otherwise the file keeps them free.
            sqlx::query("PRAGMA incremental_vacuum")
                .execute(&self.pool)
                .await
                .map_err(db("reclaiming space after compaction"))?;
        }
        Ok(report)
    }

    /// How the readings are laid out: chunks, readings, and how many chunks
    /// still await compaction (no summary yet). For upkeep and benchmarks.
    pub async fn chunk_stats(&self) -> Result<ChunkStats, StoreError> {
        let (series, chunks, readings, unsummarised, frames): (i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM series), count(*),
                    coalesce(sum(n), 0) + (SELECT coalesce(sum(n), 0) FROM frames),
                    coalesce(sum(summary IS NULL), 0), (SELECT count(*) FROM frames) FROM chunks",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db("counting chunks"))?;
        Ok(ChunkStats {
            series: series as u64,
            chunks: chunks as u64,
            readings: readings as u64,
            unsummarised: unsummarised as u64,
            frames: frames as u64,
        })
    }

    /// Deletes readings received before `before`, a few hundred chunks per
    /// transaction so ingest is never blocked for long, then returns the freed
    /// pages to the file system. Returns the number of chunks deleted.
    pub async fn purge_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let cutoff = before.timestamp_micros();
        let mut total = 0;
        loop {
            // Retention removes rows legitimately: the digests follow in
            // the same transaction.
            let what = "deleting old readings";
            let mut tx = self.begin_write(what).await?;
            let gone: Vec<(i64, Option<Vec<u8>>)> = sqlx::query_as(
                "DELETE FROM chunks WHERE id IN (SELECT id FROM chunks WHERE t1 < ? LIMIT 500)
                 RETURNING series_id, mac",
            )
            .bind(cutoff)
            .fetch_all(&mut *tx)
            .await
            .map_err(db(what))?;
            let mut delta = Delta::default();
            for (series, mac) in &gone {
                delta.remove_chunk(*series, mac.as_deref());
            }
            // Frames too (only left behind when compaction has not run).
            let frames: Vec<Option<Vec<u8>>> = sqlx::query_scalar(
                "DELETE FROM frames WHERE id IN (SELECT id FROM frames WHERE t1 < ? LIMIT 500) RETURNING mac",
            )
            .bind(cutoff)
            .fetch_all(&mut *tx)
            .await
            .map_err(db(what))?;
            for mac in &frames {
                delta.remove("frames", mac.as_deref());
            }
            self.integrity.apply(&mut tx, delta).await?;
            tx.commit().await.map_err(db(what))?;
            let n = (gone.len() + frames.len()) as u64;
            total += n;
            if n == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        if total > 0 {
            sqlx::query("PRAGMA incremental_vacuum")
                .execute(&self.pool)
                .await
                .map_err(db("reclaiming space"))?;
        }
        Ok(total)
    }
}

/// Opens a sealed series descriptor; None if it does not authenticate.
pub(crate) fn open_series(
    keys: &crate::keyring::Keyring,
    id: i64,
    tags: &SeriesTags,
    key_id: i64,
    nonce: &[u8],
    sealed: &[u8],
) -> Option<SeriesKey> {
    let plain = keys
        .open(Purpose::Readings, key_id, &tags.aad(id), nonce, sealed)
        .ok()?;
    let r: SeriesRecord = serde_json::from_slice(&plain).ok()?;
    Some(SeriesKey {
        admission: r.admission,
        bed: r.bed,
        device: r.device,
        code: r.code,
        unit: r.unit,
        source: match r.source.as_str() {
            "real" => "real",
            "simulated" => "simulated",
            _ => return None,
        },
    })
}

pub(crate) async fn chunk_id_high_water(tx: &mut sqlx::SqliteConnection) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT max(coalesce((SELECT value FROM meta WHERE key = 'chunk_id_hw'), 0), coalesce((SELECT max(id) FROM chunks), 0))")
        .fetch_one(&mut *tx)
        .await
        .map_err(db("reading the chunk id high-water mark"))
}

/// Raises the chunk id high-water mark by `?` and returns it raised; one
/// statement, not a read and a write.
const RESERVE_IDS: &str = "INSERT INTO meta (key, value) VALUES ('chunk_id_hw',
         max(coalesce((SELECT value FROM meta WHERE key = 'chunk_id_hw'), 0),
             coalesce((SELECT max(id) FROM chunks), 0)) + ?)
     ON CONFLICT(key) DO UPDATE SET value = excluded.value
     RETURNING value AS reserved_from";

/// Reserves `n` chunk ids and returns the high-water mark as it was (the
/// caller uses the `n` ids after it); in the same round trip, reads the
/// digests of `scopes` (see [`integrity::Integrity::push_read_ahead`]) and,
/// if it has not gone out yet, starts the transaction.
pub(crate) async fn reserve_chunk_ids_reading(
    tx: &mut crate::write::WriteTx,
    n: i64,
    mut scopes: Vec<String>,
) -> Result<(i64, integrity::ReadAhead), StoreError> {
    let mut script = crate::Script::default();
    script.push(RESERVE_IDS).bind(n);
    integrity::Integrity::push_read_ahead(&mut script, &mut scopes);
    let rows = tx.run_first(script).await.map_err(db("reserving chunk ids"))?;
    // The reservation's row is the only one-column row; the rest are digests.
    let (reserved, digests): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.len() == 1);
    let hw: i64 = reserved
        .first()
        .ok_or(sqlx::Error::RowNotFound)
        .and_then(|r| r.try_get(0))
        .map_err(db("reserving chunk ids"))?;
    Ok((hw - n, integrity::ReadAhead::from_rows(&digests, scopes)?))
}

pub(crate) async fn set_chunk_id_high_water(
    tx: &mut sqlx::SqliteConnection,
    id: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES ('chunk_id_hw', ?1) ON CONFLICT(key) DO UPDATE SET value = ?1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await
    .map_err(db("writing the chunk id high-water mark"))?;
    Ok(())
}

/// A chunk sealed and MAC'd, ready to insert ([`write_chunks`]).
pub(crate) struct SealedChunk {
    id: i64,
    series_id: i64,
    t0: i64,
    t1: i64,
    n: u32,
    nonce: Vec<u8>,
    sealed: Vec<u8>,
    summary: Option<(Vec<u8>, Vec<u8>)>,
    pub(crate) key_id: i64,
    mac: Vec<u8>,
}

/// An append's readings by series: each series' key and the positions of
/// its readings in the batch, in arrival order. Positions (4 bytes each),
/// not samples (~70 bytes): a 50 000-reading batch grouped as samples grew
/// megabytes of vectors per append, and their copying and fresh pages cost
/// more than the grouping itself; samples are built per chunk where it is
/// sealed.
#[derive(Default)]
struct Groups<'a> {
    index: HashMap<SeriesRef<'a>, usize, BuildFx>,
    keys: Vec<SeriesRef<'a>>,
    members: Vec<Vec<u32>>,
}

impl<'a> Groups<'a> {
    /// Groups `batch`. Readings
    /// arrive in a repeating order (every series of a ward once a second,
    /// or one series' run): each group remembers which group came right
    /// after it last time, and a reading is first compared with that one —
    /// one comparison instead of a hash and a lookup when the order holds.
    fn of(batch: &'a [Reading]) -> Groups<'a> {
        let mut g = Groups::default();
        let mut after: Vec<usize> = Vec::new();
        let mut prev = usize::MAX;
        for (i, r) in batch.iter().enumerate() {
            let key = SeriesRef::of(r);
            let guess = after.get(prev).copied().unwrap_or(usize::MAX);
            let at = if guess != usize::MAX && g.keys[guess] == key {
                guess
            } else {
                let at = *g.index.entry(key).or_insert_with(|| {
                    g.keys.push(key);
                    g.members.push(Vec::new());
                    after.push(usize::MAX);
                    g.keys.len() - 1
                });
                if prev != usize::MAX {
                    after[prev] = at;
                }
                at
            };
            g.members[at].push(i as u32);
            prev = at;
        }
        g
    }
}

fn sample_of(r: &Reading) -> codec::Sample {
    codec::Sample {
        t: r.received.timestamp_micros(),
        value: r.value,
        device_time: r.device_time,
        status: r.status.clone(),
    }
}

/// The samples of the readings at `members`, sorted by time (stable: equal
/// times keep arrival order).
fn samples_at(batch: &[Reading], members: &[u32]) -> Vec<codec::Sample> {
    let mut samples: Vec<codec::Sample> = members.iter().map(|&i| sample_of(&batch[i as usize])).collect();
    samples.sort_by_key(|s| s.t);
    samples
}

/// One chunk an append seals: its series, its reserved id, the positions
/// of its readings in the batch.
struct ChunkJob {
    key: SeriesKey,
    series_id: i64,
    id: i64,
    members: Vec<u32>,
}

/// An append sealing at least this many chunks inserts the first half
/// while it seals the second (one round trip more, so not for the flush).
const OVERLAP_MIN_CHUNKS: usize = 16;

/// Polls `fut` once: a statement reaches sqlx's connection thread and runs
/// there while the caller goes on with its own work, then awaits it.
async fn poll_once<F: std::future::Future>(mut fut: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await
}

/// Seals an append's chunks, in the order of `jobs`, on the caller's
/// thread. Sealing them on two threads (std::thread::scope, each taking
/// the next chunk) was tried and measured: on a 2-core machine shared with
/// other work it was slower in every one of 3 alternating pairs of
/// `./dev bench store` bulk runs (a helper thread the OS leaves waiting
/// holds up the whole append, and sealing is only ~1.4 ms of a
/// 50 000-reading append's ~4 ms).
fn seal_chunks(store: &Store, batch: &[Reading], jobs: &[ChunkJob]) -> Result<Vec<SealedChunk>, StoreError> {
    let seal = |j: &ChunkJob| {
        let samples = samples_at(batch, &j.members);
        seal_chunk_alone(store, &j.key, j.series_id, j.id, &samples, false)
    };
    jobs.iter().map(seal).collect()
}

/// Seals one chunk (and its summary if `with_summary`); its MAC goes into
/// `delta`, which the caller applies before committing. The caller records
/// the count of the key it was sealed under ([`Keyring::persist_count`]).
///
/// [`Keyring::persist_count`]: crate::keyring::Keyring::persist_count
pub(crate) fn seal_chunk(
    store: &Store,
    key: &SeriesKey,
    series_id: i64,
    id: i64,
    samples: &[codec::Sample],
    with_summary: bool,
    delta: &mut Delta,
) -> Result<SealedChunk, StoreError> {
    let c = seal_chunk_alone(store, key, series_id, id, samples, with_summary)?;
    delta.add_chunk(series_id, &c.mac);
    Ok(c)
}

/// [`seal_chunk`] without the digest update: the caller adds the chunk's
/// MAC to its `Delta`.
fn seal_chunk_alone(
    store: &Store,
    key: &SeriesKey,
    series_id: i64,
    id: i64,
    samples: &[codec::Sample],
    with_summary: bool,
) -> Result<SealedChunk, StoreError> {
    let (t0, t1, n) = (samples[0].t, samples[samples.len() - 1].t, samples.len() as u32);
    let chunk = store.keys.seal_deferred(
        Purpose::Readings,
        &key.chunk_aad(Some(id), series_id, t0, t1, n),
        // Summarised (compacted) chunks stay: worth a second encoding try.
        &if with_summary {
            codec::encode_smallest(samples)
        } else {
            codec::encode(samples)
        },
    )?;
    let mut summary = None;
    if with_summary {
        let s = store.keys.seal_deferred(
            Purpose::Readings,
            &summary_aad(id),
            &Summary::of(samples).encode(),
        )?;
        // One key id per row: both seals must be under the same key (the
        // active key cannot change inside a write transaction).
        if s.key_id != chunk.key_id {
            return Err(StoreError::KeysChanged);
        }
        summary = Some((s.nonce, s.sealed));
    }
    let mac = integrity::chunk_mac(
        &store.integrity,
        id,
        series_id,
        t0,
        t1,
        n as i64,
        chunk.key_id,
        &chunk.nonce,
    );
    Ok(SealedChunk {
        id,
        series_id,
        t0,
        t1,
        n,
        nonce: chunk.nonce,
        sealed: chunk.sealed,
        summary,
        key_id: chunk.key_id,
        mac,
    })
}

/// Chunk rows per INSERT (11 parameters each; under SQLite's limit).
const CHUNKS_PER_STATEMENT: usize = 64;

/// Inserts sealed chunks, many rows per statement: each statement is a
/// round trip to the connection's thread, which dominated small appends.
pub(crate) async fn write_chunks(
    tx: &mut sqlx::SqliteConnection,
    chunks: Vec<SealedChunk>,
) -> Result<(), StoreError> {
    let mut script = crate::Script::default();
    push_chunks(&mut script, chunks);
    script.run(tx).await.map_err(db("writing a chunk"))?;
    Ok(())
}

/// [`write_chunks`] as statements of the caller's script (one round trip
/// for all of them).
pub(crate) fn push_chunks(script: &mut crate::Script<'_>, chunks: Vec<SealedChunk>) {
    let mut it = chunks.into_iter().peekable();
    while it.peek().is_some() {
        let part: Vec<SealedChunk> = it.by_ref().take(CHUNKS_PER_STATEMENT).collect();
        let values = vec!["(?, ?, ?, ?, ?, ?, ?, 2, ?, ?, ?, ?)"; part.len()].join(",");
        script.push(&format!(
            "INSERT INTO chunks (id, series_id, t0, t1, n, nonce, sealed, aad_version, summary_nonce, summary, key_id, mac)
             VALUES {values}"
        ));
        for c in part {
            let (snonce, ssealed) = c.summary.map_or((None, None), |(a, b)| (Some(a), Some(b)));
            script
                .bind(c.id)
                .bind(c.series_id)
                .bind(c.t0)
                .bind(c.t1)
                .bind(c.n)
                .bind(c.nonce)
                .bind(c.sealed)
                .bind(snonce)
                .bind(ssealed)
                .bind(c.key_id)
                .bind(c.mac);
        }
    }
}

/// Inserts one sealed chunk; returns the key it was sealed under, whose
/// count the caller records ([`Keyring::persist_count`]) before committing.
///
/// [`Keyring::persist_count`]: crate::keyring::Keyring::persist_count
///
/// Its MAC goes into `delta`, which the caller applies before committing.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_chunk(
    tx: &mut sqlx::SqliteConnection,
    store: &Store,
    key: &SeriesKey,
    series_id: i64,
    id: i64,
    samples: &[codec::Sample],
    with_summary: bool,
    delta: &mut Delta,
) -> Result<i64, StoreError> {
    let c = seal_chunk(store, key, series_id, id, samples, with_summary, delta)?;
    let key_id = c.key_id;
    write_chunks(tx, vec![c]).await?;
    Ok(key_id)
}

impl Store {
    /// The id of series `k`, found by its tag; created (descriptor sealed)
    /// if there is none yet.
    pub(crate) async fn series_id(&self, tx: &mut sqlx::SqliteConnection, k: &SeriesKey) -> Result<i64, StoreError> {
        insert_series(tx, &self.keys, &self.lookup, k).await
    }
}

/// Finds or creates series `k` in `tx` under the next free id.
pub(crate) async fn insert_series(
    tx: &mut sqlx::SqliteConnection,
    keys: &crate::keyring::Keyring,
    lookup: &crate::lookup::Lookup,
    k: &SeriesKey,
) -> Result<i64, StoreError> {
    insert_series_as(tx, keys, lookup, k, None).await
}

/// [`insert_series`] under a given id (the schema-11 upgrade keeps the old
/// ids: chunks name them and bind them into their AAD).
pub(crate) async fn insert_series_as(
    tx: &mut sqlx::SqliteConnection,
    keys: &crate::keyring::Keyring,
    lookup: &crate::lookup::Lookup,
    k: &SeriesKey,
    id: Option<i64>,
) -> Result<i64, StoreError> {
    let tags = SeriesTags::of(lookup, k);
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM series WHERE tag = ?")
        .bind(&tags.tag)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("looking up a series"))?;
    if let Some(id) = found {
        return Ok(id);
    }
    let id = match id {
        Some(id) => id,
        // The write transaction holds the lock: no one else takes this id.
        None => sqlx::query_scalar("SELECT coalesce(max(id), 0) + 1 FROM series")
            .fetch_one(&mut *tx)
            .await
            .map_err(db("creating a series"))?,
    };
    let s = keys
        .seal(
            tx,
            Purpose::Readings,
            &tags.aad(id),
            &serde_json::to_vec(k).expect("series serialises"),
        )
        .await?;
    sqlx::query(
        "INSERT INTO series (id, tag, bed_tag, bed_code_tag, nonce, sealed, key_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(&tags.tag)
    .bind(&tags.bed)
    .bind(&tags.bed_code)
    .bind(s.nonce)
    .bind(s.sealed)
    .bind(s.key_id)
    .execute(&mut *tx)
    .await
    .map_err(db("creating a series"))?;
    Ok(id)
}

/// Whether two sorted lists of sample times have one in common.
pub(crate) fn shares_a_time(a: &[i64], b: &[i64]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}
