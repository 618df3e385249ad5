//! Salvage: copy what still opens from a damaged store into this one.
//!
//! The damaged file is opened read-only and walked row by row (by rowid), so
//! a damaged page loses only the rows on it. Its data keys are unwrapped with
//! the same key source (a store moved aside at start was under the same
//! key-encryption key); every chunk, alarm-log record, NEWS2 record and admission must
//! authenticate under them before it is copied, re-sealed under this store's
//! keys. What could not be recovered is reported per series (bed, code) and
//! time range, or by row ids when a page was too damaged to tell.

use crate::chunks::{self, SeriesKey};
use crate::keyring::{self, Keyring, Purpose};
use crate::{codec, db, logs, micros_to_utc, vault, KeySource, Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteRow};
use sqlx::{Row, SqlitePool};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use vigil_model::Mdc;

/// Readings of one series (bed, code) that could not be recovered.
#[derive(Debug, Clone, PartialEq)]
pub struct LostSeries {
    pub bed: String,
    pub code: Mdc,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub chunks: u64,
}

/// Rows on damaged pages: which table, which row ids, and (for chunks) the
/// time between the nearest readable neighbours, when known.
#[derive(Debug, Clone, PartialEq)]
pub struct LostRows {
    pub table: &'static str,
    pub first_id: i64,
    pub last_id: i64,
    pub between: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// What `salvage_from` copied and what it could not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SalvageReport {
    pub chunks_recovered: u64,
    pub readings_recovered: u64,
    /// Chunks whose readings this store already held.
    pub chunks_already_present: u64,
    pub alarm_records_recovered: u64,
    pub alarm_records_already_present: u64,
    pub alarm_records_lost: u64,
    /// NEWS2 scores and nurse entries (schema 14).
    pub news2_records_recovered: u64,
    pub news2_records_already_present: u64,
    pub news2_records_lost: u64,
    pub admissions_recovered: u64,
    pub admissions_already_present: u64,
    /// Admissions that opened but were not copied: the bed now has another
    /// current patient (ids only, no patient data).
    pub admissions_conflicting: Vec<String>,
    pub admissions_lost: u64,
    /// Sign-in accounts copied back (a store replaced after damage starts without them).
    pub users_recovered: u64,
    /// Accounts whose name this store already has (this store's record is kept).
    pub users_already_present: u64,
    pub users_lost: u64,
    /// Chunks that were read but failed authentication or decoding, per series.
    pub lost_series: Vec<LostSeries>,
    /// Row ranges on pages SQLite could not read.
    pub lost_rows: Vec<LostRows>,
}

impl SalvageReport {
    /// Whether anything at all was read from the damaged file.
    pub fn read_anything(&self) -> bool {
        self.chunks_recovered
            + self.chunks_already_present
            + self.alarm_records_recovered
            + self.alarm_records_already_present
            + self.news2_records_recovered
            + self.news2_records_already_present
            + self.admissions_recovered
            + self.admissions_already_present
            + self.admissions_conflicting.len() as u64
            + self.users_recovered
            + self.users_already_present
            > 0
    }
}

/// Reads every row of `table` it can, in rowid order: batches of rows
/// until SQLite reports damage, then the following rowids one by one (a
/// damaged page loses only its own rows) until one reads again past the
/// batch. Returns the rows and the rowid ranges that failed.
async fn walk(pool: &SqlitePool, cols: &str, table: &str, hi: i64) -> (Vec<SqliteRow>, Vec<(i64, i64)>) {
    const BATCH: i64 = 64;
    let scan =
        format!("SELECT rowid AS rid, {cols} FROM {table} WHERE rowid > ?1 ORDER BY rowid LIMIT {BATCH}");
    let point = format!("SELECT rowid AS rid, {cols} FROM {table} WHERE rowid = ?1");
    let mut rows = Vec::new();
    let mut bad: Vec<(i64, i64)> = Vec::new();
    let mut cursor = i64::MIN;
    loop {
        match sqlx::query(&scan).bind(cursor).fetch_all(pool).await {
            Ok(batch) if batch.is_empty() => return (rows, bad),
            Ok(batch) => {
                cursor = batch.last().expect("not empty").get("rid");
                rows.extend(batch);
                continue;
            }
            Err(_) => {}
        }
        let mut p = cursor.max(0) + 1;
        let start = p;
        loop {
            if p > hi {
                return (rows, bad);
            }
            match sqlx::query(&point).bind(p).fetch_optional(pool).await {
                Ok(Some(row)) => {
                    rows.push(row);
                    cursor = p;
                    if p - start >= BATCH {
                        break;
                    }
                }
                Ok(None) => {}
                Err(_) => match bad.last_mut() {
                    Some(r) if r.1 + 1 == p => r.1 = p,
                    _ => bad.push((p, p)),
                },
            }
            p += 1;
        }
    }
}

/// Whether the damaged file's rows name their data key (schema 6 on).
/// Lists the rowid ranges of `table` on pages SQLite could not read (no time
/// bounds known); how many rows they held.
fn lost_ranges(lost_rows: &mut Vec<LostRows>, table: &'static str, bad: Vec<(i64, i64)>) -> u64 {
    let mut n = 0;
    for (first_id, last_id) in bad {
        n += (last_id - first_id + 1) as u64;
        lost_rows.push(LostRows {
            table,
            first_id,
            last_id,
            between: None,
        });
    }
    n
}

/// Whether the damaged store has `table` at all (older schemas lack some).
async fn has_table(pool: &SqlitePool, table: &str) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1")
        .bind(table)
        .fetch_one(pool)
        .await
        .unwrap_or(false)
}

async fn has_key_ids(pool: &SqlitePool) -> bool {
    sqlx::query_scalar::<_, bool>(
        "SELECT count(*) > 0 FROM pragma_table_info('chunks') WHERE name = 'key_id'",
    )
    .fetch_one(pool)
    .await
    .unwrap_or(false)
}

/// The key a salvaged row was sealed under (before schema 6: the only key
/// of its purpose).
fn key_of(row: &SqliteRow, purpose: Purpose) -> i64 {
    row.try_get::<i64, _>("key_id").unwrap_or(purpose.legacy_id())
}

async fn high_id(pool: &SqlitePool, table: &str) -> i64 {
    let max: Option<i64> = sqlx::query_scalar(&format!("SELECT max(rowid) FROM {table}"))
        .fetch_one(pool)
        .await
        .ok()
        .flatten();
    let hw: Option<i64> = sqlx::query_scalar("SELECT value FROM meta WHERE key = 'chunk_id_hw'")
        .fetch_optional(pool)
        .await
        .ok()
        .flatten();
    max.into_iter().chain(hw).max().unwrap_or(0).max(100_000)
}

/// Whether `table` has `column`: tells a schema-11 file from an older one.
async fn has_column(pool: &SqlitePool, table: &str, column: &str) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2")
        .bind(table)
        .bind(column)
        .fetch_one(pool)
        .await
        .unwrap_or(false)
}

/// A schema-11 series row: its sealed descriptor.
fn sealed_series_key(ring: &Keyring, row: &SqliteRow) -> Option<SeriesKey> {
    let id: i64 = row.try_get("id").ok()?;
    let tags = chunks::SeriesTags {
        tag: row.try_get("tag").ok()?,
        bed: row.try_get("bed_tag").ok()?,
        bed_code: row.try_get("bed_code_tag").ok()?,
    };
    chunks::open_series(
        ring,
        id,
        &tags,
        row.try_get("key_id").ok()?,
        &row.try_get::<Vec<u8>, _>("nonce").ok()?,
        &row.try_get::<Vec<u8>, _>("sealed").ok()?,
    )
}

/// A series row before schema 11: its descriptor in the clear.
fn series_key(row: &SqliteRow) -> Option<SeriesKey> {
    let source = match row.try_get::<String, _>("source").ok()?.as_str() {
        "real" => "real",
        "simulated" => "simulated",
        _ => return None,
    };
    Some(SeriesKey {
        admission: row.try_get("admission").ok()?,
        bed: row.try_get("bed").ok()?,
        device: row.try_get("device").ok()?,
        code: row.try_get::<i64, _>("code").ok()? as u32,
        unit: row.try_get("unit").ok()?,
        source,
    })
}

impl Store {
    /// Copies every chunk, alarm-log record and admission of the damaged
    /// store at `path` that still opens and authenticates under `key` into
    /// this store, skipping what this store already holds. Fails only if
    /// the file cannot be opened at all, its data keys cannot be read, or
    /// `key` does not open them ([`StoreError::WrongKey`]).
    pub async fn salvage_from(&self, path: &Path, key: &KeySource) -> Result<SalvageReport, StoreError> {
        let damaged = |reason: String| StoreError::Damaged {
            path: path.to_path_buf(),
            reason,
        };
        if !path.exists() {
            return Err(damaged("no such file".into()));
        }
        let opts = SqliteConnectOptions::new().filename(path).read_only(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .map_err(|e| damaged(format!("too damaged to open: {e}")))?;
        let result = self.salvage_pool(&pool, key).await;
        pool.close().await;
        result.map_err(|e| match e {
            StoreError::WrongKey => StoreError::WrongKey,
            e if e.is_damaged() => damaged(format!("its data keys cannot be read: {e}")),
            e => e,
        })
    }

    async fn salvage_pool(&self, pool: &SqlitePool, key: &KeySource) -> Result<SalvageReport, StoreError> {
        let ring = Keyring::read_only(keyring::unlock(pool, key).await?);
        let key_col = if has_key_ids(pool).await { ", key_id" } else { "" };
        let mut report = SalvageReport::default();

        // Series: small, but walked the same way.
        let sealed_layout = has_column(pool, "series", "bed_tag").await;
        let cols = if sealed_layout {
            "id, tag, bed_tag, bed_code_tag, nonce, sealed, key_id"
        } else {
            "id, admission, bed, device, code, unit, source"
        };
        let (rows, bad_series) = walk(pool, cols, "series", 100_000).await;
        let series: HashMap<i64, SeriesKey> = rows
            .iter()
            .filter_map(|r| {
                let key = if sealed_layout {
                    sealed_series_key(&ring, r)
                } else {
                    series_key(r)
                };
                Some((r.try_get::<i64, _>("id").ok()?, key?))
            })
            .collect();
        // Their chunks are reported as lost by series below; the rows themselves here.
        lost_ranges(&mut report.lost_rows, "series", bad_series);

        // Chunks.
        let hi = high_id(pool, "chunks").await;
        let (rows, bad) = walk(
            pool,
            &format!("id, series_id, t0, t1, n, nonce, sealed, aad_version{key_col}"),
            "chunks",
            hi,
        )
        .await;
        let mut lost: BTreeMap<(String, u32), (i64, i64, u64)> = BTreeMap::new();
        let mut times_by_id: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        for row in &rows {
            let opened = (|| {
                let id: i64 = row.try_get("id").ok()?;
                let sid: i64 = row.try_get("series_id").ok()?;
                let (t0, t1, n): (i64, i64, i64) = (
                    row.try_get("t0").ok()?,
                    row.try_get("t1").ok()?,
                    row.try_get("n").ok()?,
                );
                times_by_id.insert(id, (t0, t1));
                let key = series.get(&sid)?;
                let bound = match row.try_get::<i64, _>("aad_version").ok()? {
                    1 => None,
                    2 => Some(id),
                    _ => return Some(Err((key.clone(), t0, t1))),
                };
                let n = u32::try_from(n).ok()?;
                let nonce: Vec<u8> = row.try_get("nonce").ok()?;
                let sealed: Vec<u8> = row.try_get("sealed").ok()?;
                let aad = key.chunk_aad(bound, sid, t0, t1, n);
                let Ok(plain) = ring.open(
                    Purpose::Readings,
                    key_of(row, Purpose::Readings),
                    &aad,
                    &nonce,
                    &sealed,
                ) else {
                    return Some(Err((key.clone(), t0, t1)));
                };
                match codec::decode(&plain, n as usize) {
                    Ok(samples) if !samples.is_empty() => Some(Ok((key.clone(), samples))),
                    _ => Some(Err((key.clone(), t0, t1))),
                }
            })();
            match opened {
                Some(Ok((key, samples))) => {
                    let n = self.insert_salvaged(&key, samples).await?;
                    if n == 0 {
                        report.chunks_already_present += 1;
                    } else {
                        report.chunks_recovered += 1;
                        report.readings_recovered += n;
                    }
                }
                Some(Err((key, t0, t1))) => {
                    let e = lost.entry((key.bed.clone(), key.code)).or_insert((t0, t1, 0));
                    e.0 = e.0.min(t0);
                    e.1 = e.1.max(t1);
                    e.2 += 1;
                }
                None => {
                    // A row with an unknown series or unreadable columns.
                    let id = row.try_get::<i64, _>("rid").unwrap_or(0);
                    report.lost_rows.push(LostRows {
                        table: "chunks",
                        first_id: id,
                        last_id: id,
                        between: times_by_id
                            .get(&id)
                            .map(|&(a, b)| (micros_to_utc(a), micros_to_utc(b))),
                    });
                }
            }
        }
        report.lost_series = lost
            .into_iter()
            .map(|((bed, code), (t0, t1, n))| LostSeries {
                bed,
                code: Mdc(code),
                from: micros_to_utc(t0),
                to: micros_to_utc(t1),
                chunks: n,
            })
            .collect();
        for (a, b) in bad {
            // Ids grow with time: the readable neighbours bound when the lost chunks were written.
            let before = times_by_id.range(..a).next_back().map(|(_, t)| t.1);
            let after = times_by_id.range(b + 1..).next().map(|(_, t)| t.0);
            report.lost_rows.push(LostRows {
                table: "chunks",
                first_id: a,
                last_id: b,
                between: before
                    .zip(after)
                    .map(|(x, y)| (micros_to_utc(x), micros_to_utc(y))),
            });
        }

        // Ingest frames (schema 15): each series' run becomes a chunk here.
        if has_table(pool, "frames").await {
            let hi = high_id(pool, "frames").await;
            let (rows, bad) = walk(pool, "id, t0, t1, n, nonce, sealed, key_id", "frames", hi).await;
            for row in &rows {
                let opened = (|| {
                    crate::frames::open_with(
                        &ring,
                        row.try_get("id").ok()?,
                        row.try_get("t0").ok()?,
                        row.try_get("t1").ok()?,
                        row.try_get("n").ok()?,
                        row.try_get("key_id").ok()?,
                        &row.try_get::<Vec<u8>, _>("nonce").ok()?,
                        &row.try_get::<Vec<u8>, _>("sealed").ok()?,
                    )
                })();
                let id = row.try_get::<i64, _>("rid").unwrap_or(0);
                let lost = |report: &mut SalvageReport| {
                    report.lost_rows.push(LostRows {
                        table: "frames",
                        first_id: id,
                        last_id: id,
                        between: row
                            .try_get::<i64, _>("t0")
                            .ok()
                            .zip(row.try_get::<i64, _>("t1").ok())
                            .map(|(a, b)| (micros_to_utc(a), micros_to_utc(b))),
                    })
                };
                let Some(groups) = opened else {
                    lost(&mut report);
                    continue;
                };
                for (sid, samples) in groups {
                    let Some(key) = series.get(&sid) else {
                        lost(&mut report);
                        break;
                    };
                    let n = self.insert_salvaged(key, samples).await?;
                    if n == 0 {
                        report.chunks_already_present += 1;
                    } else {
                        report.chunks_recovered += 1;
                        report.readings_recovered += n;
                    }
                }
            }
            lost_ranges(&mut report.lost_rows, "frames", bad);
        }

        // Alarm log.
        let hi = high_id(pool, "alarm_log").await;
        let bed_col = if sealed_layout { "bed_tag" } else { "bed" };
        let (rows, bad) = walk(
            pool,
            &format!("id, {bed_col}, at, nonce, sealed{key_col}"),
            "alarm_log",
            hi,
        )
        .await;
        let mut events = Vec::new();
        for row in &rows {
            let opened = (|| {
                let id: i64 = row.try_get("id").ok()?;
                let at: i64 = row.try_get("at").ok()?;
                let nonce = row.try_get::<Vec<u8>, _>("nonce").ok()?;
                let sealed = row.try_get::<Vec<u8>, _>("sealed").ok()?;
                let key_id = key_of(row, Purpose::Readings);
                let (bed, event) = if sealed_layout {
                    let tag: Vec<u8> = row.try_get("bed_tag").ok()?;
                    let plain = ring
                        .open(Purpose::Readings, key_id, &logs::alarm_aad(id, &tag), &nonce, &sealed)
                        .ok()?;
                    let body: logs::AlarmBody = serde_json::from_slice(&plain).ok()?;
                    (body.bed, body.event)
                } else {
                    let bed: String = row.try_get("bed").ok()?;
                    let aad = [logs::id_aad(logs::AAD_ALARM_V1, id), bed.as_bytes().to_vec()].concat();
                    let plain = ring.open(Purpose::Readings, key_id, &aad, &nonce, &sealed).ok()?;
                    (bed, serde_json::from_slice::<serde_json::Value>(&plain).ok()?)
                };
                Some((bed, micros_to_utc(at), event))
            })();
            match opened {
                Some((bed, at, event)) => {
                    let present = self.alarm_log(Some(&bed), at, at).await?;
                    if present.iter().any(|r| r.event == event) {
                        report.alarm_records_already_present += 1;
                    } else {
                        events.push((bed, at, event));
                    }
                }
                None => report.alarm_records_lost += 1,
            }
        }
        events.sort_by_key(|e| e.1);
        report.alarm_records_recovered = events.len() as u64;
        self.log_alarms(&events).await?;
        report.alarm_records_lost += lost_ranges(&mut report.lost_rows, "alarm_log", bad);

        // NEWS2 log (schema 14): scores and nurse entries, like the alarm log.
        if has_table(pool, "news2_log").await {
            let hi = high_id(pool, "news2_log").await;
            let (rows, bad) = walk(
                pool,
                "id, bed_tag, admission_tag, at, nonce, sealed, key_id",
                "news2_log",
                hi,
            )
            .await;
            let mut records = Vec::new();
            for row in &rows {
                match self.open_salvaged_news2(&ring, row) {
                    Some(r) if self.has_news2(&r).await? => report.news2_records_already_present += 1,
                    Some(r) => records.push(r),
                    None => report.news2_records_lost += 1,
                }
            }
            records.sort_by_key(|r| r.at);
            report.news2_records_recovered = records.len() as u64;
            self.log_news2(&records).await?;
            report.news2_records_lost += lost_ranges(&mut report.lost_rows, "news2_log", bad);
        }

        // Admissions (rowid order; ids are text).
        let cols = if sealed_layout {
            "id, bed_tag, open, nonce, sealed, key_id".to_string()
        } else {
            format!("id, bed, admitted_at, discharged_at, nonce, sealed{key_col}")
        };
        let (rows, bad) = walk(pool, &cols, "admissions", 100_000).await;
        let present: HashSet<String> = self.admission_ids().await?.into_iter().collect();
        for row in &rows {
            let opened = (|| {
                let id: String = row.try_get("id").ok()?;
                let nonce = row.try_get::<Vec<u8>, _>("nonce").ok()?;
                let sealed = row.try_get::<Vec<u8>, _>("sealed").ok()?;
                let key_id = key_of(row, Purpose::Phi);
                let stay = if sealed_layout {
                    let tag: Vec<u8> = row.try_get("bed_tag").ok()?;
                    let open: i64 = row.try_get("open").ok()?;
                    let aad = vault::admission_aad(&id, &tag, open == 1);
                    let plain = ring.open(Purpose::Phi, key_id, &aad, &nonce, &sealed).ok()?;
                    serde_json::from_slice::<vault::Stay>(&plain).ok()?
                } else {
                    let bed: String = row.try_get("bed").ok()?;
                    let aad = vault::legacy_patient_aad(&id, &bed);
                    let plain = ring.open(Purpose::Phi, key_id, &aad, &nonce, &sealed).ok()?;
                    vault::Stay {
                        patient: serde_json::from_slice(&plain).ok()?,
                        bed,
                        admitted_at: row.try_get("admitted_at").ok()?,
                        discharged_at: row.try_get("discharged_at").ok()?,
                    }
                };
                Some((id, stay))
            })();
            let Some((id, stay)) = opened else {
                report.admissions_lost += 1;
                continue;
            };
            if present.contains(&id) {
                report.admissions_already_present += 1;
                continue;
            }
            if !self.insert_salvaged_admission(&id, &stay).await? {
                report.admissions_conflicting.push(id);
                continue;
            }
            report.admissions_recovered += 1;
        }
        report.admissions_lost += lost_ranges(&mut report.lost_rows, "admissions", bad);

        // Users: without them no one could sign in to the new store but a first admin.
        if has_table(pool, "users").await {
            let (rows, bad) = walk(pool, "name, nonce, sealed, key_id", "users", 100_000).await;
            for row in &rows {
                let opened = (|| {
                    let name: String = row.try_get("name").ok()?;
                    let plain = ring
                        .open(
                            Purpose::Log,
                            key_of(row, Purpose::Log),
                            &crate::users::aad(&name),
                            &row.try_get::<Vec<u8>, _>("nonce").ok()?,
                            &row.try_get::<Vec<u8>, _>("sealed").ok()?,
                        )
                        .ok()?;
                    let user: crate::UserRecord = serde_json::from_slice(&plain).ok()?;
                    (user.name == name).then_some(user)
                })();
                match opened {
                    Some(user) if self.add_user(&user).await? => report.users_recovered += 1,
                    Some(_) => report.users_already_present += 1,
                    None => report.users_lost += 1,
                }
            }
            report.users_lost += lost_ranges(&mut report.lost_rows, "users", bad);
        }
        Ok(report)
    }

    /// Inserts the samples this store does not already hold (same series,
    /// same time) as one new chunk; returns how many were inserted.
    async fn insert_salvaged(
        &self,
        key: &SeriesKey,
        mut samples: Vec<codec::Sample>,
    ) -> Result<u64, StoreError> {
        samples.sort_by_key(|s| s.t);
        let (t0, t1) = (samples[0].t, samples[samples.len() - 1].t);
        let mut tx = self.begin_write("salvaging a chunk").await?;
        let sid = self.series_id(&mut tx, key).await?;
        let rows = sqlx::query(&format!(
            "SELECT {} FROM chunks c JOIN series s ON s.id = c.series_id
             WHERE c.series_id = ?1 AND c.t1 >= ?2 AND c.t0 <= ?3",
            chunks::CHUNK_COLUMNS
        ))
        .bind(sid)
        .bind(t0)
        .bind(t1)
        .fetch_all(&mut *tx)
        .await
        .map_err(db("salvaging a chunk"))?;
        let mut have = HashSet::new();
        for row in &rows {
            let (_, s) = self.open_chunk(row)?;
            have.extend(s.into_iter().map(|s| s.t));
        }
        samples.retain(|s| !have.contains(&s.t));
        if samples.is_empty() {
            return Ok(0);
        }
        let id = chunks::chunk_id_high_water(&mut tx).await? + 1;
        let mut delta = crate::integrity::Delta::default();
        let key_id = chunks::insert_chunk(&mut tx, self, key, sid, id, &samples, false, &mut delta).await?;
        self.keys.persist_count(&mut tx, key_id).await?;
        self.integrity.apply(&mut tx, delta).await?;
        chunks::set_chunk_id_high_water(&mut tx, id).await?;
        tx.commit().await.map_err(db("salvaging a chunk"))?;
        Ok(samples.len() as u64)
    }

    /// Re-seals an admission under this store's PHI key; false (nothing
    /// written) if it is current and its bed now has another current patient.
    async fn insert_salvaged_admission(&self, id: &str, stay: &vault::Stay) -> Result<bool, StoreError> {
        let mut tx = self.begin_write("salvaging an admission").await?;
        if stay.discharged_at.is_none() && self.open_admission_of(&mut tx, &stay.bed).await?.is_some() {
            return Ok(false);
        }
        self.insert_admission(&mut tx, id, stay, "salvaging an admission")
            .await?;
        tx.commit().await.map_err(db("salvaging an admission"))?;
        Ok(true)
    }
}
