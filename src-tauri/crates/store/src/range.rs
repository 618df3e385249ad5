//! Readings of one admission or one bed over a range, each chunk verified
//! on the way (issue 15: clinicians' reports), and the list of admissions.
//!
//! A report must state what it could not show, so unlike `query_range`
//! (which fails on the first bad chunk) [`Store::read_checked`] keeps going:
//! readings of the chunks that open, and every chunk that does not (or that
//! holds a replayed copy of another's readings) as a [`ChunkFailure`].
//!
//! Series rows carry no admission tag: an admission's series are found by
//! its bed's tag, their sealed descriptors opened (once per process, cached
//! by id) and kept when the descriptor names the admission. That costs one
//! indexed query per report and nothing on the append path.

use crate::chunks::shares_a_time;
use crate::{db, micros_to_utc, Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;
use vigil_model::{AdmissionId, Mdc, Reading};

/// What to read.
#[derive(Debug, Clone, Copy)]
pub enum Selection<'a> {
    /// Every series of a bed, whoever was admitted (or nobody).
    Bed(&'a str),
    /// The series of one admission only (its bed, its id in the descriptor).
    Admission(&'a str),
}

/// A stored chunk in the range that could not be shown.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkFailure {
    pub chunk: i64,
    pub series: i64,
    /// The series' parameter when its descriptor still opens.
    pub code: Option<Mdc>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Why, in words (the store error's text: ids only, never patient data).
    pub reason: String,
}

/// Readings of a selection and range, and how their chunks verified.
#[derive(Debug, Clone, Default)]
pub struct CheckedReadings {
    /// Oldest first.
    pub readings: Vec<Reading>,
    /// Chunks in the range that opened and authenticated.
    pub chunks_verified: u64,
    pub failed: Vec<ChunkFailure>,
}

/// Where one stored chunk of a parameter came from: its time span and its
/// series' device and unit, read from the (cached) sealed series descriptor
/// without opening the chunk. A trend over days learns from these which
/// device measured when (issue 15: device changes marked) and the unit.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkSource {
    /// First and last reading of the chunk.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The device id as the app shows it (untrusted text: a BLE peer's id).
    pub device: String,
    pub unit: String,
}

/// One admission, current or past. `patient` is unsealed; whether the caller
/// may see it is for the core to decide.
#[derive(Debug, Clone, PartialEq)]
pub struct AdmissionSummary {
    pub id: AdmissionId,
    pub bed: String,
    pub admitted_at: DateTime<Utc>,
    pub discharged_at: Option<DateTime<Utc>>,
    pub patient: crate::Patient,
}

impl Store {
    /// Every admission, current and past, oldest admission first. A record
    /// that fails authentication is an error (it is not silently left out).
    pub async fn admissions(&self) -> Result<Vec<AdmissionSummary>, StoreError> {
        let mut out = Vec::new();
        for id in self.admission_ids().await? {
            let a = self.admission(&id).await?;
            out.push(AdmissionSummary {
                id: a.id,
                bed: a.bed,
                admitted_at: a.admitted_at,
                discharged_at: a.discharged_at,
                patient: a.patient,
            });
        }
        out.sort_by(|a, b| a.admitted_at.cmp(&b.admitted_at).then_with(|| a.id.0.cmp(&b.id.0)));
        Ok(out)
    }

    /// The chunks of a bed's parameter overlapping `[from, to]`, oldest
    /// first, with the device and unit of their series. Read-only and cheap:
    /// one indexed query and the series descriptors (opened once, cached);
    /// no chunk is decrypted. A descriptor that does not open is an error
    /// (`Store::verify` names it), never a silently missing device.
    pub async fn chunk_sources(
        &self,
        bed: &str,
        code: Mdc,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ChunkSource>, StoreError> {
        // Times and the series descriptor only: no sealed chunk is fetched
        // (on an uncompacted layout there is one per flush and series).
        let rows = sqlx::query(
            "SELECT c.id, c.series_id, c.t0, c.t1, s.tag AS s_tag, s.bed_tag AS s_bed_tag,
                    s.bed_code_tag AS s_bed_code_tag, s.nonce AS s_nonce, s.sealed AS s_sealed,
                    s.key_id AS s_key_id
             FROM chunks c JOIN series s ON s.id = c.series_id
             WHERE s.bed_code_tag = ?1 AND c.t1 >= ?2 AND c.t0 <= ?3
             ORDER BY c.t0, c.id",
        )
        .bind(self.lookup.bed_code(bed, code.0))
        .bind(from.timestamp_micros())
        .bind(to.timestamp_micros())
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading a trend's chunk sources"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let (chunk, series): (i64, i64) = (row.get("id"), row.get("series_id"));
            let k = self.series_of(row).ok_or(StoreError::Tampered { chunk, series })?;
            out.push(ChunkSource {
                from: micros_to_utc(row.get("t0")),
                to: micros_to_utc(row.get("t1")),
                device: k.device.clone(),
                unit: k.unit.clone(),
            });
        }
        Ok(out)
    }

    /// The readings of one admission in `[from, to]`, oldest first; fails on
    /// an unknown admission or a chunk that does not authenticate.
    pub async fn query_admission(
        &self,
        id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Reading>, StoreError> {
        let checked = self.read_checked(Selection::Admission(id), from, to).await?;
        match checked.failed.first() {
            Some(f) => Err(StoreError::Tampered {
                chunk: f.chunk,
                series: f.series,
            }),
            None => Ok(checked.readings),
        }
    }

    /// Readings of `sel` in `[from, to]` with every chunk of the range
    /// verified: the ones that fail are listed, the rest are read.
    pub async fn read_checked(
        &self,
        sel: Selection<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<CheckedReadings, StoreError> {
        let bed = match sel {
            Selection::Bed(b) => b.to_string(),
            Selection::Admission(id) => self.admission(id).await?.bed,
        };
        let want_admission = match sel {
            Selection::Admission(id) => Some(id),
            Selection::Bed(_) => None,
        };
        let (f, t) = (from.timestamp_micros(), to.timestamp_micros());
        let rows = sqlx::query(&format!(
            "SELECT {} FROM chunks c JOIN series s ON s.id = c.series_id
             WHERE s.bed_tag = ?1 AND c.t1 >= ?2 AND c.t0 <= ?3
             ORDER BY c.series_id, c.t0, c.id",
            crate::chunks::CHUNK_COLUMNS
        ))
        .bind(self.lookup.bed(&bed))
        .bind(f)
        .bind(t)
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading a report's chunks"))?;
        let mut out = CheckedReadings::default();
        let mut series_now = None;
        let mut open: Vec<(i64, i64, Vec<i64>)> = Vec::new(); // (chunk, t1, times)
        for row in &rows {
            let (chunk, series, t0, t1): (i64, i64, i64, i64) =
                (row.get("id"), row.get("series_id"), row.get("t0"), row.get("t1"));
            let descriptor = self.series_of(row);
            // Another admission's series on this bed: not ours, not checked here.
            if let (Some(want), Some(k)) = (want_admission, &descriptor) {
                if k.admission != want {
                    continue;
                }
            }
            if series_now != Some(series) {
                series_now = Some(series);
                open.clear();
            }
            let fail = |reason: String| ChunkFailure {
                chunk,
                series,
                code: descriptor.as_ref().map(|k| Mdc(k.code)),
                from: micros_to_utc(t0.max(f)),
                to: micros_to_utc(t1.min(t)),
                reason,
            };
            let opened = self
                .open_chunk(row)
                .and_then(|(k, s)| self.open_summary(row).map(|_| (k, s)));
            let (key, samples) = match opened {
                Ok(x) => x,
                Err(e) => {
                    out.failed.push(fail(e.to_string()));
                    continue;
                }
            };
            let mut times: Vec<i64> = samples.iter().map(|s| s.t).collect();
            times.sort_unstable();
            open.retain(|(_, end, _)| *end >= t0);
            if let Some((other, _, _)) = open.iter().find(|(_, _, o)| shares_a_time(o, &times)) {
                // A replayed copy: showing both would double readings.
                out.failed.push(fail(
                    StoreError::Overlap {
                        series,
                        chunks: (*other, chunk),
                    }
                    .to_string(),
                ));
                continue;
            }
            open.push((chunk, t1, times));
            out.chunks_verified += 1;
            out.readings.extend(
                samples
                    .into_iter()
                    .filter(|s| s.t >= f && s.t <= t)
                    .map(|s| key.reading(s)),
            );
        }
        // Readings still in ingest frames (not yet compacted). A frame that
        // does not open is listed as failed (its series unknown: they are
        // sealed inside it), never skipped; a replayed frame is caught by
        // the frames digest in `verify`.
        for row in self.frame_rows(f, t).await? {
            let (frame, t0, t1): (i64, i64, i64) = (row.get("id"), row.get("t0"), row.get("t1"));
            let groups = match self.open_frame(&row) {
                Ok(g) => g,
                Err(e) => {
                    out.failed.push(ChunkFailure {
                        chunk: frame,
                        series: 0,
                        code: None,
                        from: micros_to_utc(t0.max(f)),
                        to: micros_to_utc(t1.min(t)),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            for (series, samples) in groups {
                let Some(key) = self.series_key(series).await? else {
                    out.failed.push(ChunkFailure {
                        chunk: frame,
                        series,
                        code: None,
                        from: micros_to_utc(t0.max(f)),
                        to: micros_to_utc(t1.min(t)),
                        reason: StoreError::TamperedFrame { frame }.to_string(),
                    });
                    continue;
                };
                if key.bed != bed || want_admission.is_some_and(|a| key.admission != a) {
                    continue;
                }
                out.readings.extend(
                    samples
                        .into_iter()
                        .filter(|s| s.t >= f && s.t <= t)
                        .map(|s| key.reading(s)),
                );
            }
            out.chunks_verified += 1;
        }
        out.readings
            .sort_by(|a, b| a.received.cmp(&b.received).then(a.code.cmp(&b.code)));
        Ok(out)
    }
}
