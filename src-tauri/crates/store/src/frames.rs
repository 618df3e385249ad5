//! Ingest frames (schema 15): one sealed row per append of many series with
//! a few readings each (the writer's 0.5 s flushes: ~1 reading per series).
//!
//! Sealing a chunk per series per flush made every reading pay for its own
//! AES-GCM seal, row, index entry and digest scope; a frame pays those once
//! for the whole flush. Each append is still durable at its commit. The
//! upkeep's compaction regroups frames into per-series chunks (then into
//! summarised window chunks) in one transaction: the frame goes in the same
//! transaction its chunks are written, so a crash leaves one or the other.
//!
//! A frame's AAD binds its id, time range and count; its row MAC (and the
//! `frames` scope digest) covers the plaintext columns and catches a deleted
//! or replayed frame. Series ids are inside the sealed payload.

use crate::chunks::SeriesKey;
use crate::codec;
use crate::integrity::{self, Delta};
use crate::keyring::Purpose;
use crate::{db, Store, StoreError};
use sqlx::Row;
use std::sync::Arc;

const AAD_FRAME: &[u8] = b"vigil/frame/v1";
const FRAME_FORMAT: u8 = 1;

/// An append goes into a frame when it touches at least this many series...
pub(crate) const FRAME_MIN_SERIES: usize = 8;
/// ...for the series with fewer readings than this; longer runs in the same
/// append are sealed as chunks straight away (a backlog import), where the
/// per-chunk cost is already spread over many readings.
pub(crate) const FRAME_MAX_RUN: usize = 8;

/// Frames one compaction transaction regroups (a minute of 0.5 s flushes
/// is 120): short enough not to hold up the writer.
const FRAMES_PER_TX: i64 = 240;

pub(crate) const FRAME_COLUMNS: &str = "id, t0, t1, n, nonce, sealed, key_id, mac";

fn frame_aad(id: i64, t0: i64, t1: i64, n: u32) -> Vec<u8> {
    [
        AAD_FRAME,
        &id.to_le_bytes()[..],
        &t0.to_le_bytes(),
        &t1.to_le_bytes(),
        &n.to_le_bytes(),
    ]
    .concat()
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint(b: &[u8], pos: &mut usize) -> Result<u64, codec::CodecError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let x = *b.get(*pos).ok_or(codec::CodecError::Truncated(*pos))?;
        *pos += 1;
        v |= u64::from(x & 0x7f) << shift;
        if x & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(codec::CodecError::Truncated(*pos))
}

/// The frame's plaintext: format, group count, then per series its id,
/// sample count and [`codec::encode_raw`] bytes; LZ4 over the whole.
fn encode(groups: &[(i64, Vec<codec::Sample>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + groups.len() * 16);
    out.push(FRAME_FORMAT);
    put_varint(&mut out, groups.len() as u64);
    for (series, samples) in groups {
        let raw = codec::encode_raw(samples);
        put_varint(&mut out, *series as u64);
        put_varint(&mut out, samples.len() as u64);
        put_varint(&mut out, raw.len() as u64);
        out.extend_from_slice(&raw);
    }
    lz4_flex::compress_prepend_size(&out)
}

/// A frame's readings: (series id, samples) per series.
pub(crate) type FrameGroups = Vec<(i64, Vec<codec::Sample>)>;

fn decode(data: &[u8], n: usize) -> Result<FrameGroups, codec::CodecError> {
    let raw = zeroize::Zeroizing::new(
        lz4_flex::decompress_size_prepended(data).map_err(|_| codec::CodecError::Decompress)?,
    );
    let mut pos = 0;
    match raw.first() {
        Some(&FRAME_FORMAT) => pos += 1,
        Some(&f) => return Err(codec::CodecError::Format(f)),
        None => return Err(codec::CodecError::Truncated(0)),
    }
    let groups = varint(&raw, &mut pos)? as usize;
    let mut out = Vec::with_capacity(groups.min(4096));
    let mut total = 0;
    for _ in 0..groups {
        let series = varint(&raw, &mut pos)? as i64;
        let count = varint(&raw, &mut pos)? as usize;
        let len = varint(&raw, &mut pos)? as usize;
        let end = pos
            .checked_add(len)
            .filter(|e| *e <= raw.len())
            .ok_or(codec::CodecError::Truncated(pos))?;
        out.push((series, codec::decode_raw(&raw[pos..end], count)?));
        pos = end;
        total += count;
    }
    if pos != raw.len() || total != n {
        return Err(codec::CodecError::Count {
            expected: n,
            found: total,
        });
    }
    Ok(out)
}

/// Opens a frame with any keyring (salvage reads a damaged file's own
/// keys); None if it does not authenticate or decode.
#[allow(clippy::too_many_arguments)]
pub(crate) fn open_with(
    ring: &crate::keyring::Keyring,
    id: i64,
    t0: i64,
    t1: i64,
    n: i64,
    key_id: i64,
    nonce: &[u8],
    sealed: &[u8],
) -> Option<FrameGroups> {
    let n = u32::try_from(n).ok()?;
    let plain = ring
        .open(Purpose::Readings, key_id, &frame_aad(id, t0, t1, n), nonce, sealed)
        .ok()?;
    decode(&plain, n as usize).ok()
}

/// A frame sealed and MAC'd, ready to insert.
pub(crate) struct SealedFrame {
    id: i64,
    t0: i64,
    t1: i64,
    n: u32,
    nonce: Vec<u8>,
    sealed: Vec<u8>,
    pub(crate) key_id: i64,
    mac: Vec<u8>,
}

impl Store {
    /// Seals `groups` (samples sorted by time per series) as frame `id`;
    /// its MAC goes into `delta`. The caller persists the key's seal count.
    pub(crate) fn seal_frame(
        &self,
        id: i64,
        groups: &[(i64, Vec<codec::Sample>)],
        delta: &mut Delta,
    ) -> Result<SealedFrame, StoreError> {
        let all = groups.iter().flat_map(|(_, s)| s.iter().map(|x| x.t));
        let (t0, t1) = all.fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
        let n = groups.iter().map(|(_, s)| s.len()).sum::<usize>() as u32;
        let s = self
            .keys
            .seal_deferred(Purpose::Readings, &frame_aad(id, t0, t1, n), &encode(groups))?;
        let mac = integrity::frame_mac(&self.integrity, id, t0, t1, n as i64, s.key_id, &s.nonce);
        delta.add("frames", &mac);
        Ok(SealedFrame {
            id,
            t0,
            t1,
            n,
            nonce: s.nonce,
            sealed: s.sealed,
            key_id: s.key_id,
            mac,
        })
    }

    /// Opens one frame row (columns [`FRAME_COLUMNS`]): AEAD, then its MAC.
    pub(crate) fn open_frame(&self, row: &sqlx::sqlite::SqliteRow) -> Result<FrameGroups, StoreError> {
        let id: i64 = row.get("id");
        let tampered = || StoreError::TamperedFrame { frame: id };
        let (t0, t1, n): (i64, i64, i64) = (row.get("t0"), row.get("t1"), row.get("n"));
        let n32 = u32::try_from(n).map_err(|_| tampered())?;
        let key_id: i64 = row.get("key_id");
        let nonce: Vec<u8> = row.get("nonce");
        let plain = self
            .keys
            .open(
                Purpose::Readings,
                key_id,
                &frame_aad(id, t0, t1, n32),
                &nonce,
                &row.get::<Vec<u8>, _>("sealed"),
            )
            .map_err(|_| tampered())?;
        if let Ok(mac) = row.try_get::<Option<Vec<u8>>, _>("mac") {
            let expect = integrity::frame_mac(&self.integrity, id, t0, t1, n, key_id, &nonce);
            if mac.as_deref() != Some(&expect[..]) {
                return Err(StoreError::IntegrityRow {
                    table: "frames",
                    id: id.to_string(),
                });
            }
        }
        decode(&plain, n32 as usize).map_err(|source| StoreError::Corrupt { chunk: id, source })
    }

    /// Frame rows with a reading in `[from, to]`, oldest first.
    pub(crate) async fn frame_rows(&self, from: i64, to: i64) -> Result<Vec<sqlx::sqlite::SqliteRow>, StoreError> {
        sqlx::query(&format!(
            "SELECT {FRAME_COLUMNS} FROM frames WHERE t1 >= ?1 AND t0 <= ?2 ORDER BY id"
        ))
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading ingest frames"))
    }

    /// The descriptor of series `id` (cached; else its sealed row opened).
    pub(crate) async fn series_key(&self, id: i64) -> Result<Option<Arc<SeriesKey>>, StoreError> {
        if let Some(k) = self.series_by_id.lock().unwrap().get(&id) {
            return Ok(Some(k.clone()));
        }
        let mut conn = self.pool.acquire().await.map_err(db("reading a series"))?;
        self.series_key_on(&mut conn, id).await
    }

    /// [`Store::series_key`] on the caller's connection (inside its transaction).
    pub(crate) async fn series_key_on(
        &self,
        conn: &mut sqlx::SqliteConnection,
        id: i64,
    ) -> Result<Option<Arc<SeriesKey>>, StoreError> {
        if let Some(k) = self.series_by_id.lock().unwrap().get(&id) {
            return Ok(Some(k.clone()));
        }
        let row = sqlx::query("SELECT tag, bed_tag, bed_code_tag, nonce, sealed, key_id FROM series WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db("reading a series"))?;
        let Some(r) = row else { return Ok(None) };
        let tags = crate::chunks::SeriesTags {
            tag: r.get("tag"),
            bed: r.get("bed_tag"),
            bed_code: r.get("bed_code_tag"),
        };
        let key = crate::chunks::open_series(
            &self.keys,
            id,
            &tags,
            r.get("key_id"),
            &r.get::<Vec<u8>, _>("nonce"),
            &r.get::<Vec<u8>, _>("sealed"),
        )
        .map(Arc::new);
        if let Some(k) = &key {
            self.series_by_id.lock().unwrap().insert(id, k.clone());
        }
        Ok(key)
    }

    /// The samples in frames of `[from, to]` whose series passes `want`,
    /// per frame and series: (frame id, series id, descriptor, samples). A
    /// frame that does not open is an error, as a chunk is.
    pub(crate) async fn frame_samples(
        &self,
        from: i64,
        to: i64,
        want: impl Fn(&SeriesKey) -> bool,
    ) -> Result<Vec<(i64, i64, Arc<SeriesKey>, Vec<codec::Sample>)>, StoreError> {
        let mut out = Vec::new();
        for row in self.frame_rows(from, to).await? {
            let frame: i64 = row.get("id");
            for (series, samples) in self.open_frame(&row)? {
                let key = self
                    .series_key(series)
                    .await?
                    .ok_or(StoreError::TamperedFrame { frame })?;
                if want(&key) {
                    out.push((frame, series, key, samples));
                }
            }
        }
        Ok(out)
    }

    /// Regroups frames holding readings before `cutoff` into per-series
    /// chunks (one per series and compaction window), at most
    /// `max_frames`, in transactions of [`FRAMES_PER_TX`]: chunks written
    /// and frames deleted in the same one. Returns (frames read, chunks
    /// written, whether frames before `cutoff` are left).
    pub(crate) async fn regroup_frames(
        &self,
        cutoff: i64,
        max_frames: i64,
    ) -> Result<(u64, u64, bool), StoreError> {
        let (mut read, mut written) = (0u64, 0u64);
        loop {
            if read as i64 >= max_frames {
                let left: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM frames WHERE t0 < ?)")
                    .bind(cutoff)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db("finding frames to compact"))?;
                return Ok((read, written, left));
            }
            let what = "compacting ingest frames";
            let mut tx = self.begin_write(what).await?;
            let rows = sqlx::query(&format!(
                "SELECT {FRAME_COLUMNS} FROM frames WHERE t0 < ?1 ORDER BY id LIMIT ?2"
            ))
            .bind(cutoff)
            .bind(FRAMES_PER_TX)
            .fetch_all(&mut *tx)
            .await
            .map_err(db(what))?;
            if rows.is_empty() {
                return Ok((read, written, false));
            }
            // (series, window) -> samples, in time order after sorting.
            let mut groups: std::collections::BTreeMap<(i64, i64), Vec<codec::Sample>> = Default::default();
            let mut ids = Vec::with_capacity(rows.len());
            for row in &rows {
                for (series, samples) in self.open_frame(row)? {
                    for s in samples {
                        let w = s.t.div_euclid(crate::WINDOW_US);
                        groups.entry((series, w)).or_default().push(s);
                    }
                }
                ids.push(row.get::<i64, _>("id"));
            }
            let mut delta = Delta::default();
            let mut next_id = crate::chunks::chunk_id_high_water(&mut tx).await?;
            let mut sealed = Vec::with_capacity(groups.len());
            let mut under = std::collections::BTreeSet::new();
            for ((series, _), mut samples) in groups {
                let key = self
                    .series_key_on(&mut tx, series)
                    .await?
                    .ok_or(StoreError::TamperedFrame { frame: ids[0] })?;
                samples.sort_by_key(|s| s.t);
                next_id += 1;
                let c = crate::chunks::seal_chunk(self, &key, series, next_id, &samples, false, &mut delta)?;
                under.insert(c.key_id);
                sealed.push(c);
            }
            written += sealed.len() as u64;
            crate::chunks::write_chunks(&mut tx, sealed).await?;
            for part in ids.chunks(500) {
                let marks = vec!["?"; part.len()].join(",");
                let sql = format!("DELETE FROM frames WHERE id IN ({marks}) RETURNING mac");
                let mut q = sqlx::query_scalar::<_, Option<Vec<u8>>>(&sql);
                for id in part {
                    q = q.bind(id);
                }
                for mac in q.fetch_all(&mut *tx).await.map_err(db(what))? {
                    delta.remove("frames", mac.as_deref());
                }
            }
            for key_id in under {
                self.keys.persist_count(&mut tx, key_id).await?;
            }
            crate::chunks::set_chunk_id_high_water(&mut tx, next_id).await?;
            self.integrity.apply(&mut tx, delta).await?;
            tx.commit().await.map_err(db(what))?;
            read += ids.len() as u64;
            tokio::task::yield_now().await;
        }
    }
}

/// Inserts one sealed frame, as a statement of the caller's script (an
/// append's writes go in one round trip).
pub(crate) fn push_frame(script: &mut crate::Script<'_>, f: SealedFrame) {
    script
        .push("INSERT INTO frames (id, t0, t1, n, nonce, sealed, key_id, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        .bind(f.id)
        .bind(f.t0)
        .bind(f.t1)
        .bind(f.n)
        .bind(f.nonce)
        .bind(f.sealed)
        .bind(f.key_id)
        .bind(f.mac);
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_model::Value;

    #[test]
    fn frame_payload_round_trips_and_checks_its_count() {
        let s = |t: i64, v: f64| codec::Sample {
            t,
            value: Value::Number(v),
            device_time: None,
            status: Default::default(),
        };
        let groups = vec![(3, vec![s(1_000_000, 72.0)]), (7, vec![s(1_500_000, 97.5), s(2_500_000, 98.0)])];
        let enc = encode(&groups);
        assert_eq!(decode(&enc, 3).unwrap(), groups);
        assert!(decode(&enc, 2).is_err());
    }
}
