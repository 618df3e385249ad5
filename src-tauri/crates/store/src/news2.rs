//! The NEWS2 log (schema 14, issue 15): scores and nurse NEWS2 entries kept
//! beyond the admission they belong to, for reports and trends of past stays.
//!
//! Built like the alarm log ([`crate::logs`]): append-only rows sealed under
//! the readings key (a score and its inputs are clinical data), the bed and
//! admission sealed in the body with keyed tags ([`crate::lookup`]) in the
//! clear for the indexes, the AAD binding the row id and both tags (a row
//! moved to another bed or stay fails to open), a row MAC over id, tags and
//! time (an edited time or tag is refused) and the `news2_log` scope digest
//! (a deleted or inserted row is reported by `verify`). Old rows stay under
//! the key they were sealed with; a key rotation keeps that key (its
//! `key_id` is referenced) and retention deletes rows with the readings.
//!
//! The store does not know the alarm crate: a record is JSON (the core's
//! `News2Logged`), like the alarm log's events.

use crate::integrity::{self, Delta, F};
use crate::keyring::Purpose;
use crate::range::Selection;
use crate::{db, micros_to_utc, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use vigil_model::AdmissionId;

const AAD_NEWS2: &[u8] = b"vigil/news2-log/v1";
const SCOPE: &str = "news2_log";

/// One NEWS2 log record: a score or a nurse entry (`record`, the core's
/// JSON), at a bed, in an admission (None: nobody was admitted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct News2Record {
    pub bed: String,
    pub admission: Option<AdmissionId>,
    pub at: DateTime<Utc>,
    pub record: serde_json::Value,
}

/// What a row seals.
#[derive(Serialize, Deserialize)]
struct Body {
    bed: String,
    admission: Option<String>,
    record: serde_json::Value,
}

/// The AAD: id, bed tag and admission tag (a presence byte first, so "no
/// admission" never equals some tag).
pub(crate) fn news2_aad(id: i64, bed_tag: &[u8], admission_tag: Option<&[u8]>) -> Vec<u8> {
    let mut aad = crate::logs::id_aad(AAD_NEWS2, id);
    aad.extend_from_slice(bed_tag);
    match admission_tag {
        Some(t) => {
            aad.push(1);
            aad.extend_from_slice(t);
        }
        None => aad.push(0),
    }
    aad
}

/// The row MAC: id, both tags and the time (the columns in the clear).
pub(crate) fn news2_mac(
    ik: &integrity::Integrity,
    id: i64,
    bed_tag: &[u8],
    admission_tag: Option<&[u8]>,
    at: i64,
) -> Vec<u8> {
    ik.mac(
        "news2_log",
        &[
            F::I(id),
            F::B(bed_tag),
            admission_tag.map_or(F::N(None), F::B),
            F::I(at),
        ],
    )
}

impl Store {
    /// Appends NEWS2 log records in one transaction.
    pub async fn log_news2(&self, records: &[News2Record]) -> Result<(), StoreError> {
        self.log(&[], records).await
    }

    /// Appends alarm-log and NEWS2 log records in one transaction (the
    /// core's alarm-log writer sends both).
    pub async fn log(
        &self,
        alarms: &[(String, DateTime<Utc>, serde_json::Value)],
        news2: &[News2Record],
    ) -> Result<(), StoreError> {
        if alarms.is_empty() && news2.is_empty() {
            return Ok(());
        }
        let what = "writing the alarm and NEWS2 log";
        let mut tx = self.begin_write(what).await?;
        let mut delta = Delta::default();
        let mut sealed_under = std::collections::BTreeSet::new();
        if !alarms.is_empty() {
            self.insert_alarms(&mut tx, alarms, &mut delta, &mut sealed_under)
                .await?;
        }
        let mut id: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM news2_log")
            .fetch_one(&mut *tx)
            .await
            .map_err(db(what))?;
        for r in news2 {
            id += 1;
            let bed_tag = self.lookup.bed(&r.bed);
            let adm_tag = r.admission.as_ref().map(|a| self.lookup.admission(&a.0));
            let at = r.at.timestamp_micros();
            let body = Body {
                bed: r.bed.clone(),
                admission: r.admission.as_ref().map(|a| a.0.clone()),
                record: r.record.clone(),
            };
            let plain = serde_json::to_vec(&body).expect("json serialises");
            let s = self.keys.seal_deferred(
                Purpose::Readings,
                &news2_aad(id, &bed_tag, adm_tag.as_deref()),
                &plain,
            )?;
            sealed_under.insert(s.key_id);
            let mac = news2_mac(&self.integrity, id, &bed_tag, adm_tag.as_deref(), at);
            sqlx::query(
                "INSERT INTO news2_log (id, bed_tag, admission_tag, at, nonce, sealed, key_id, mac)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(&bed_tag)
            .bind(&adm_tag)
            .bind(at)
            .bind(s.nonce)
            .bind(s.sealed)
            .bind(s.key_id)
            .bind(&mac)
            .execute(&mut *tx)
            .await
            .map_err(db(what))?;
            delta.add(SCOPE, &mac);
        }
        for key_id in sealed_under {
            self.keys.persist_count(&mut tx, key_id).await?;
        }
        self.integrity.apply(&mut tx, delta).await?;
        tx.commit().await.map_err(db(what))
    }

    /// NEWS2 log records of a bed (whoever was admitted) or of one
    /// admission in `[from, to]`, oldest first. A row that does not open or
    /// fails its MAC is an error, not left out: a report must not silently
    /// show less than was recorded.
    pub async fn news2_log(
        &self,
        sel: Selection<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<News2Record>, StoreError> {
        let (col, tag) = match sel {
            Selection::Bed(b) => ("bed_tag", self.lookup.bed(b)),
            Selection::Admission(a) => ("admission_tag", self.lookup.admission(a)),
        };
        let rows = sqlx::query(&format!(
            "SELECT id, bed_tag, admission_tag, at, nonce, sealed, key_id, mac FROM news2_log
             WHERE {col} = ?1 AND at >= ?2 AND at <= ?3 ORDER BY at, id"
        ))
        .bind(tag)
        .bind(from.timestamp_micros())
        .bind(to.timestamp_micros())
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading the NEWS2 log"))?;
        rows.iter().map(|r| self.open_news2(r)).collect()
    }

    fn open_news2(&self, row: &sqlx::sqlite::SqliteRow) -> Result<News2Record, StoreError> {
        let id: i64 = row.get("id");
        let bed_tag: Vec<u8> = row.get("bed_tag");
        let adm_tag: Option<Vec<u8>> = row.get("admission_tag");
        let at: i64 = row.get("at");
        let bad = || StoreError::TamperedRecord {
            table: "news2_log",
            id,
        };
        let plain = self
            .keys
            .open(
                Purpose::Readings,
                row.get("key_id"),
                &news2_aad(id, &bed_tag, adm_tag.as_deref()),
                &row.get::<Vec<u8>, _>("nonce"),
                &row.get::<Vec<u8>, _>("sealed"),
            )
            .map_err(|_| bad())?;
        // After the AEAD (which binds id and tags): the time is MACed.
        if row.get::<Option<Vec<u8>>, _>("mac").as_deref()
            != Some(&news2_mac(&self.integrity, id, &bed_tag, adm_tag.as_deref(), at)[..])
        {
            return Err(StoreError::IntegrityRow {
                table: "news2_log",
                id: id.to_string(),
            });
        }
        let body: Body = serde_json::from_slice(&plain).map_err(|_| bad())?;
        if self.lookup.bed(&body.bed) != bed_tag
            || body.admission.as_deref().map(|a| self.lookup.admission(a)) != adm_tag
        {
            return Err(bad());
        }
        Ok(News2Record {
            bed: body.bed,
            admission: body.admission.map(AdmissionId),
            at: micros_to_utc(at),
            record: body.record,
        })
    }

    /// Every NEWS2 log row that does not open (for `verify`; a failed MAC
    /// is reported by the integrity check).
    pub(crate) async fn verify_news2_log(&self) -> Result<Vec<StoreError>, StoreError> {
        let rows =
            sqlx::query("SELECT id, bed_tag, admission_tag, at, nonce, sealed, key_id, mac FROM news2_log")
                .fetch_all(&self.pool)
                .await
                .map_err(db("reading the NEWS2 log"))?;
        Ok(rows
            .iter()
            .filter_map(|r| self.open_news2(r).err())
            .filter(|e| !matches!(e, StoreError::IntegrityRow { .. }))
            .collect())
    }

    /// Retention: deletes NEWS2 log rows older than `before` (with the
    /// readings they were computed from), the digest following in the same
    /// transaction. Returns how many.
    pub async fn purge_news2_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let what = "deleting old NEWS2 records";
        let mut total = 0;
        loop {
            let mut tx = self.begin_write(what).await?;
            let gone: Vec<Option<Vec<u8>>> = sqlx::query_scalar(
                "DELETE FROM news2_log WHERE id IN (SELECT id FROM news2_log WHERE at < ? LIMIT 500) RETURNING mac",
            )
            .bind(before.timestamp_micros())
            .fetch_all(&mut *tx)
            .await
            .map_err(db(what))?;
            let mut delta = Delta::default();
            for mac in &gone {
                delta.remove(SCOPE, mac.as_deref());
            }
            self.integrity.apply(&mut tx, delta).await?;
            tx.commit().await.map_err(db(what))?;
            total += gone.len() as u64;
            if gone.is_empty() {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Salvage: whether this store already holds `r` (same bed, time and record).
    pub(crate) async fn has_news2(&self, r: &News2Record) -> Result<bool, StoreError> {
        Ok(self
            .news2_log(Selection::Bed(&r.bed), r.at, r.at)
            .await?
            .iter()
            .any(|x| x == r))
    }

    /// Salvage: opens a row of a damaged store's NEWS2 log with its keyring.
    pub(crate) fn open_salvaged_news2(
        &self,
        ring: &crate::keyring::Keyring,
        row: &sqlx::sqlite::SqliteRow,
    ) -> Option<News2Record> {
        let id: i64 = row.try_get("id").ok()?;
        let bed_tag: Vec<u8> = row.try_get("bed_tag").ok()?;
        let adm_tag: Option<Vec<u8>> = row.try_get("admission_tag").ok()?;
        let at: i64 = row.try_get("at").ok()?;
        let plain = ring
            .open(
                Purpose::Readings,
                row.try_get("key_id").ok()?,
                &news2_aad(id, &bed_tag, adm_tag.as_deref()),
                &row.try_get::<Vec<u8>, _>("nonce").ok()?,
                &row.try_get::<Vec<u8>, _>("sealed").ok()?,
            )
            .ok()?;
        let body: Body = serde_json::from_slice(&plain).ok()?;
        Some(News2Record {
            bed: body.bed,
            admission: body.admission.map(AdmissionId),
            at: micros_to_utc(at),
            record: body.record,
        })
    }
}
