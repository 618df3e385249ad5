//! Sealed records beside the readings: the FHIR outbox and its dead letters,
//! the alarm log, and the registry of Bluetooth devices assigned to beds.
//!
//! Everything that can carry patient data (values, alarm messages, server
//! replies that echo values) is sealed under the readings key, and so are
//! bed ids and device addresses (schema 11: keyed tags in their place);
//! only ids, tags, times and counts are in the clear.

use crate::integrity::{self, Delta};
use crate::keyring::Purpose;
use crate::{db, micros_to_utc, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::sync::atomic::Ordering;
use ts_rs::TS;
use vigil_model::Reading;

const AAD_OUTBOX: &[u8] = b"vigil/outbox/v2";
const AAD_DEAD: &[u8] = b"vigil/dead-letter/v1";
/// Before schema 11 (bed in the clear): read by the upgrade and salvage.
pub(crate) const AAD_ALARM_V1: &[u8] = b"vigil/alarm-log/v1";
pub(crate) const AAD_DEVICE_V1: &[u8] = b"vigil/device/v1";
/// From schema 11: the bed is sealed in the body, its tag bound in the AAD.
const AAD_ALARM: &[u8] = b"vigil/alarm-log/v2";
const AAD_DEVICE: &[u8] = b"vigil/device/v2";

/// What an alarm-log row seals (schema 11).
#[derive(Serialize, Deserialize)]
pub(crate) struct AlarmBody {
    pub(crate) bed: String,
    pub(crate) event: serde_json::Value,
}

/// What a device row seals (schema 11): its address, bed, kind and
/// Device Information.
#[derive(Serialize, Deserialize)]
pub(crate) struct DeviceBody {
    pub(crate) address: String,
    pub(crate) bed: String,
    pub(crate) kind: String,
    pub(crate) info: Option<serde_json::Value>,
}

pub(crate) fn alarm_aad(id: i64, bed_tag: &[u8]) -> Vec<u8> {
    [id_aad(AAD_ALARM, id), bed_tag.to_vec()].concat()
}

fn device_aad(address_tag: &[u8], bed_tag: &[u8]) -> Vec<u8> {
    [AAD_DEVICE, address_tag, bed_tag].concat()
}

/// Seals and inserts one alarm-log row; returns its MAC (empty without an
/// integrity key: the first open under schema 7 MACs every row). The seal
/// is counted once per key, not per row: the key goes into `sealed_under`,
/// whose counts the caller persists, and it applies the digest.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_alarm_row(
    tx: &mut sqlx::SqliteConnection,
    keys: &crate::keyring::Keyring,
    lookup: &crate::lookup::Lookup,
    ik: Option<&integrity::Integrity>,
    id: i64,
    at: i64,
    body: &AlarmBody,
    sealed_under: &mut std::collections::BTreeSet<i64>,
) -> Result<Vec<u8>, StoreError> {
    let what = "writing the alarm log";
    let bed_tag = lookup.bed(&body.bed);
    let mac = ik.map(|ik| integrity::alarm_mac(ik, id, &bed_tag, at));
    let plain = serde_json::to_vec(body).expect("json serialises");
    let s = keys.seal_deferred(Purpose::Readings, &alarm_aad(id, &bed_tag), &plain)?;
    sealed_under.insert(s.key_id);
    sqlx::query(
        "INSERT INTO alarm_log (id, bed_tag, at, nonce, sealed, key_id, mac) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(&bed_tag)
    .bind(at)
    .bind(s.nonce)
    .bind(s.sealed)
    .bind(s.key_id)
    .bind(&mac)
    .execute(&mut *tx)
    .await
    .map_err(db(what))?;
    Ok(mac.unwrap_or_default())
}

/// Seals and writes (inserts or replaces) one device row; returns its MAC
/// (empty without an integrity key). The caller applies the digest.
pub(crate) async fn write_device_row(
    tx: &mut sqlx::SqliteConnection,
    keys: &crate::keyring::Keyring,
    lookup: &crate::lookup::Lookup,
    ik: Option<&integrity::Integrity>,
    added_at: i64,
    body: &DeviceBody,
) -> Result<Vec<u8>, StoreError> {
    let (address_tag, bed_tag) = (lookup.address(&body.address), lookup.bed(&body.bed));
    let plain = serde_json::to_vec(body).expect("json serialises");
    let s = keys
        .seal(tx, Purpose::Readings, &device_aad(&address_tag, &bed_tag), &plain)
        .await?;
    let mac = ik.map(|ik| integrity::device_mac(ik, &address_tag, &bed_tag, added_at, s.key_id, &s.nonce));
    sqlx::query(
        "INSERT INTO devices (address_tag, bed_tag, added_at, nonce, sealed, key_id, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(address_tag) DO UPDATE SET bed_tag = ?2, added_at = ?3, nonce = ?4, sealed = ?5, key_id = ?6, mac = ?7",
    )
    .bind(&address_tag)
    .bind(&bed_tag)
    .bind(added_at)
    .bind(s.nonce)
    .bind(s.sealed)
    .bind(s.key_id)
    .bind(&mac)
    .execute(&mut *tx)
    .await
    .map_err(db("writing a device"))?;
    Ok(mac.unwrap_or_default())
}

/// One outbox row: readings of one series appended together, in insertion order.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub seq: i64,
    pub readings: Vec<Reading>,
    /// Per reading: failed upload attempts so far.
    pub attempts: Vec<u32>,
    /// Per reading: already dead-lettered or parked (the rest of the row is pending).
    pub settled: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxStatus {
    /// Readings waiting for upload.
    pub pending_readings: u64,
    pub oldest_queued: Option<DateTime<Utc>>,
    /// Readings the server refused.
    pub dead_letters: u64,
    /// Readings set aside after failing again and again.
    pub parked: u64,
    /// Log-safe summary of the latest dead letter or parked reading.
    pub last_set_aside: Option<String>,
}

/// Why a reading left the outbox without reaching the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum DeadLetterKind {
    /// The server refused it (a 4xx about its content).
    Refused,
    /// It failed again and again (5xx) while the server took others: set aside so the
    /// queue moves on.
    Parked,
}

impl DeadLetterKind {
    fn as_str(self) -> &'static str {
        match self {
            DeadLetterKind::Refused => "refused",
            DeadLetterKind::Parked => "parked",
        }
    }
}

/// A reading the server refused or that was parked, with its reason (the server's
/// OperationOutcome text: may echo values, for authorised users only). Re-queue with
/// [`Store::requeue_dead_letters`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DeadLetter {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub reading: Reading,
    pub reason: String,
    pub kind: DeadLetterKind,
}

/// A reading of an outbox row leaving the queue without reaching the server.
#[derive(Debug, Clone)]
pub struct SetAside<'a> {
    /// Outbox row and the reading's index in it.
    pub row: i64,
    pub index: u32,
    pub reading: &'a Reading,
    pub kind: DeadLetterKind,
    /// Log-safe (status, issue codes).
    pub summary: &'a str,
    /// The full reason (may echo values; sealed).
    pub detail: &'a str,
    /// Every other reading of the row is settled too: delete the row, same transaction.
    pub row_done: bool,
}

/// One alarm-log record; `event` is the alarm engine's event as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct AlarmRecord {
    pub id: i64,
    pub bed: String,
    pub at: DateTime<Utc>,
    /// The store does not know the alarm crate; the core logs only
    /// `vigil_alarms::AlarmEvent`s, so that is the TypeScript type.
    #[ts(type = "import(\"./AlarmEvent\").AlarmEvent")]
    pub event: serde_json::Value,
}

/// A Bluetooth device assigned to a bed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceAssignment {
    pub address: String,
    pub bed: String,
    pub kind: String,
    pub added_at: DateTime<Utc>,
    pub info: Option<serde_json::Value>,
}

fn outbox_aad(created: i64, n: i64) -> Vec<u8> {
    [AAD_OUTBOX, &created.to_le_bytes()[..], &n.to_le_bytes()[..]].concat()
}

/// Deletes an outbox row and its per-reading state; the outbox digest
/// follows in `delta`.
async fn delete_row(tx: &mut sqlx::SqliteConnection, row: i64, delta: &mut Delta) -> Result<(), sqlx::Error> {
    let mac: Option<Option<Vec<u8>>> = sqlx::query_scalar("DELETE FROM outbox WHERE seq = ? RETURNING mac")
        .bind(row)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(mac) = mac {
        delta.remove("outbox", mac.as_deref());
    }
    let items: Vec<Option<Vec<u8>>> =
        sqlx::query_scalar("DELETE FROM outbox_items WHERE outbox_row = ? RETURNING mac")
            .bind(row)
            .fetch_all(&mut *tx)
            .await?;
    for mac in &items {
        delta.remove("outbox_items", mac.as_deref());
    }
    Ok(())
}

pub(crate) fn id_aad(prefix: &[u8], id: i64) -> Vec<u8> {
    [prefix, &id.to_le_bytes()].concat()
}

impl Store {
    /// Queue every appended reading for FHIR upload from now on (or stop).
    pub fn set_outbox_enabled(&self, on: bool) {
        self.outbox.store(on, Ordering::Relaxed);
    }

    pub(crate) fn outbox_enabled(&self) -> bool {
        self.outbox.load(Ordering::Relaxed)
    }

    /// Queues the admitted readings of one append (same transaction as the
    /// chunks). Only readings that belong to an admission can be attributed
    /// to a patient on the FHIR server; an empty bed's readings stay local.
    /// Sorted by device and time so a measurement's parts are adjacent.
    pub(crate) async fn enqueue(
        &self,
        tx: &mut sqlx::SqliteConnection,
        batch: &[Reading],
        delta: &mut Delta,
    ) -> Result<(), StoreError> {
        let mut admitted: Vec<&Reading> = batch.iter().filter(|r| r.admission.is_some()).collect();
        if admitted.is_empty() {
            return Ok(());
        }
        admitted.sort_by(|a, b| (&a.device, a.received, a.code).cmp(&(&b.device, b.received, b.code)));
        let created = Utc::now().timestamp_micros();
        let n = admitted.len() as i64;
        let body =
            lz4_flex::compress_prepend_size(&serde_json::to_vec(&admitted).expect("readings serialise"));
        let s = self
            .keys
            .seal(tx, Purpose::Readings, &outbox_aad(created, n), &body)
            .await?;
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO outbox (created, n, nonce, sealed, key_id) VALUES (?, ?, ?, ?, ?) RETURNING seq",
        )
        .bind(created)
        .bind(n)
        .bind(s.nonce)
        .bind(s.sealed)
        .bind(s.key_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db("queueing readings for upload"))?;
        let mac = integrity::outbox_mac(&self.integrity, seq, created, n);
        sqlx::query("UPDATE outbox SET mac = ? WHERE seq = ?")
            .bind(&mac)
            .bind(seq)
            .execute(&mut *tx)
            .await
            .map_err(db("queueing readings for upload"))?;
        delta.add("outbox", &mac);
        Ok(())
    }

    /// The oldest `limit` outbox rows, in insertion order.
    pub async fn outbox_peek(&self, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        self.outbox_peek_after(0, limit).await
    }

    /// Up to `limit` outbox rows with `seq > after`, in insertion order.
    pub async fn outbox_peek_after(&self, after: i64, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, created, n, nonce, sealed, key_id, mac FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading the outbox"))?;
        let mut state: std::collections::HashMap<(i64, i64), (u32, bool)> = Default::default();
        if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
            let items = sqlx::query(
                "SELECT outbox_row, outbox_index, attempts, settled, mac FROM outbox_items
                 WHERE outbox_row BETWEEN ? AND ?",
            )
            .bind(first.get::<i64, _>("seq"))
            .bind(last.get::<i64, _>("seq"))
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading the outbox"))?;
            for i in items {
                // A reading marked settled (or its attempts reset) in the
                // file would silently never be uploaded: refused.
                let (row, index): (i64, i64) = (i.get("outbox_row"), i.get("outbox_index"));
                let mac = integrity::item_mac(&self.integrity, row, index, i.get("attempts"), i.get("settled"));
                if i.get::<Option<Vec<u8>>, _>("mac").as_deref() != Some(&mac[..]) {
                    return Err(StoreError::IntegrityRow {
                        table: "outbox_items",
                        id: format!("{row}/{index}"),
                    });
                }
                state.insert(
                    (i.get("outbox_row"), i.get("outbox_index")),
                    (
                        i.get::<i64, _>("attempts") as u32,
                        i.get::<i64, _>("settled") != 0,
                    ),
                );
            }
        }
        rows.iter()
            .map(|row| {
                let seq: i64 = row.get("seq");
                let bad = || StoreError::TamperedRecord {
                    table: "outbox",
                    id: seq,
                };
                let mac = integrity::outbox_mac(&self.integrity, seq, row.get("created"), row.get("n"));
                if row.get::<Option<Vec<u8>>, _>("mac").as_deref() != Some(&mac[..]) {
                    return Err(StoreError::IntegrityRow {
                        table: "outbox",
                        id: seq.to_string(),
                    });
                }
                let plain = self
                    .keys
                    .open(
                        Purpose::Readings,
                        row.get("key_id"),
                        &outbox_aad(row.get("created"), row.get("n")),
                        &row.get::<Vec<u8>, _>("nonce"),
                        &row.get::<Vec<u8>, _>("sealed"),
                    )
                    .map_err(|_| bad())?;
                let json = lz4_flex::decompress_size_prepended(&plain).map_err(|_| bad())?;
                let readings: Vec<Reading> = serde_json::from_slice(&json).map_err(|_| bad())?;
                if readings.len() as i64 != row.get::<i64, _>("n") {
                    return Err(bad());
                }
                let (attempts, settled) = (0..readings.len() as i64)
                    .map(|i| state.get(&(seq, i)).copied().unwrap_or_default())
                    .unzip();
                Ok(OutboxEntry {
                    seq,
                    readings,
                    attempts,
                    settled,
                })
            })
            .collect()
    }

    /// Removes uploaded rows from the outbox.
    pub async fn outbox_ack(&self, seqs: &[i64]) -> Result<(), StoreError> {
        let mut tx = self.begin_write("acknowledging uploads").await?;
        let mut delta = Delta::default();
        for seq in seqs {
            delete_row(&mut tx, *seq, &mut delta)
                .await
                .map_err(db("acknowledging uploads"))?;
        }
        self.integrity.apply(&mut tx, delta).await?;
        tx.commit().await.map_err(db("acknowledging uploads"))
    }

    /// One more failed upload attempt for each of these readings (outbox row, index).
    pub async fn outbox_failed(&self, items: &[(i64, u32)]) -> Result<(), StoreError> {
        let mut tx = self.begin_write("counting upload attempts").await?;
        let mut delta = Delta::default();
        for (row, index) in items {
            self.set_item(&mut tx, *row, *index, |a, s| (a + 1, s), &mut delta)
                .await?;
        }
        self.integrity.apply(&mut tx, delta).await?;
        tx.commit().await.map_err(db("counting upload attempts"))
    }

    /// Sets one outbox reading's state (attempts, settled) from its current
    /// one, with its MAC; the digest change goes into `delta`.
    async fn set_item(
        &self,
        tx: &mut sqlx::SqliteConnection,
        row: i64,
        index: u32,
        next: impl FnOnce(i64, i64) -> (i64, i64),
        delta: &mut Delta,
    ) -> Result<(), StoreError> {
        let what = "updating an outbox reading's state";
        let old: Option<(i64, i64, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT attempts, settled, mac FROM outbox_items WHERE outbox_row = ? AND outbox_index = ?",
        )
        .bind(row)
        .bind(index as i64)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db(what))?;
        let (attempts, settled) = match &old {
            Some((a, s, mac)) => {
                delta.remove("outbox_items", mac.as_deref());
                next(*a, *s)
            }
            None => next(0, 0),
        };
        let mac = integrity::item_mac(&self.integrity, row, index as i64, attempts, settled);
        delta.add("outbox_items", &mac);
        sqlx::query(
            "INSERT INTO outbox_items (outbox_row, outbox_index, attempts, settled, mac) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (outbox_row, outbox_index) DO UPDATE SET attempts = ?3, settled = ?4, mac = ?5",
        )
        .bind(row)
        .bind(index as i64)
        .bind(attempts)
        .bind(settled)
        .bind(mac)
        .execute(&mut *tx)
        .await
        .map_err(db(what))?;
        Ok(())
    }

    /// Keeps a refused reading with the server's reason (not from the outbox).
    pub async fn dead_letter(&self, reading: &Reading, reason: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write("writing a dead letter").await?;
        let mut delta = Delta::default();
        self.insert_dead_letter(
            &mut tx,
            reading,
            reason,
            DeadLetterKind::Refused,
            None,
            None,
            &mut delta,
        )
        .await?;
        self.integrity.apply(&mut tx, delta).await?;
        tx.commit().await.map_err(db("writing a dead letter"))
    }

    /// Takes a reading out of the outbox into the dead letters, in one transaction: the
    /// dead letter, and the reading marked settled (or its row deleted when `row_done`).
    /// Idempotent: the same reading set aside twice (say the process died before the
    /// caller knew it was done) is one dead letter.
    pub async fn set_aside(&self, s: &SetAside<'_>) -> Result<(), StoreError> {
        let what = "setting a reading aside";
        let mut tx = self.begin_write(what).await?;
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM dead_letters WHERE outbox_row = ? AND outbox_index = ?")
                .bind(s.row)
                .bind(s.index as i64)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db(what))?;
        let mut delta = Delta::default();
        if exists.is_none() {
            self.insert_dead_letter(
                &mut tx,
                s.reading,
                s.detail,
                s.kind,
                Some(s.summary),
                Some((s.row, s.index)),
                &mut delta,
            )
            .await?;
        }
        if s.row_done {
            delete_row(&mut tx, s.row, &mut delta).await.map_err(db(what))?;
        } else {
            self.set_item(&mut tx, s.row, s.index, |a, _| (a, 1), &mut delta)
                .await?;
        }
        self.integrity.apply(&mut tx, delta).await?;
        tx.commit().await.map_err(db(what))
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_dead_letter(
        &self,
        tx: &mut sqlx::SqliteConnection,
        reading: &Reading,
        reason: &str,
        kind: DeadLetterKind,
        summary: Option<&str>,
        item: Option<(i64, u32)>,
        delta: &mut Delta,
    ) -> Result<(), StoreError> {
        let what = "writing a dead letter";
        let id: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) + 1 FROM dead_letters")
            .fetch_one(&mut *tx)
            .await
            .map_err(db(what))?;
        let at = Utc::now();
        let body = serde_json::to_vec(&(reading, reason)).expect("reading serialises");
        let s = self
            .keys
            .seal(tx, Purpose::Readings, &id_aad(AAD_DEAD, id), &body)
            .await?;
        let mac = integrity::dead_mac(
            &self.integrity,
            id,
            at.timestamp_micros(),
            kind.as_str(),
            item.map(|i| i.0),
            item.map(|i| i.1 as i64),
        );
        sqlx::query(
            "INSERT INTO dead_letters (id, at, nonce, sealed, outbox_row, outbox_index, kind, summary, key_id, mac)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(at.timestamp_micros())
        .bind(s.nonce)
        .bind(s.sealed)
        .bind(item.map(|i| i.0))
        .bind(item.map(|i| i.1 as i64))
        .bind(kind.as_str())
        .bind(summary)
        .bind(s.key_id)
        .bind(&mac)
        .execute(&mut *tx)
        .await
        .map_err(db(what))?;
        delta.add("dead_letters", &mac);
        Ok(())
    }

    /// Puts dead letters (all, or those with these ids) back at the end of the outbox, in
    /// one transaction: one new outbox row, the dead letters deleted. The number re-queued.
    /// Queued whether or not upload is on (a requeue is an explicit request).
    pub async fn requeue_dead_letters(&self, ids: Option<&[i64]>) -> Result<u64, StoreError> {
        let what = "re-queueing dead letters";
        let all = self.dead_letters().await?;
        let chosen: Vec<DeadLetter> = all
            .into_iter()
            .filter(|d| ids.is_none_or(|ids| ids.contains(&d.id)))
            .collect();
        if chosen.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write(what).await?;
        let mut readings = Vec::new();
        let mut delta = Delta::default();
        for d in chosen {
            let gone: Option<Option<Vec<u8>>> =
                sqlx::query_scalar("DELETE FROM dead_letters WHERE id = ? RETURNING mac")
                    .bind(d.id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db(what))?;
            // Already re-queued meanwhile (another requeue): not queued twice.
            if let Some(mac) = gone {
                delta.remove("dead_letters", mac.as_deref());
                readings.push(d.reading);
            }
        }
        self.enqueue(&mut tx, &readings, &mut delta).await?;
        self.integrity.apply(&mut tx, delta).await?;
        tx.commit().await.map_err(db(what))?;
        Ok(readings.len() as u64)
    }

    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, nonce, sealed, kind, key_id, outbox_row, outbox_index, mac FROM dead_letters ORDER BY id",
        )
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading dead letters"))?;
        rows.iter()
            .map(|row| {
                let id: i64 = row.get("id");
                let bad = || StoreError::TamperedRecord {
                    table: "dead_letters",
                    id,
                };
                let mac = integrity::dead_mac(
                    &self.integrity,
                    id,
                    row.get("at"),
                    row.get("kind"),
                    row.get("outbox_row"),
                    row.get("outbox_index"),
                );
                if row.get::<Option<Vec<u8>>, _>("mac").as_deref() != Some(&mac[..]) {
                    return Err(StoreError::IntegrityRow {
                        table: "dead_letters",
                        id: id.to_string(),
                    });
                }
                let plain = self
                    .keys
                    .open(
                        Purpose::Readings,
                        row.get("key_id"),
                        &id_aad(AAD_DEAD, id),
                        &row.get::<Vec<u8>, _>("nonce"),
                        &row.get::<Vec<u8>, _>("sealed"),
                    )
                    .map_err(|_| bad())?;
                let (reading, reason): (Reading, String) =
                    serde_json::from_slice(&plain).map_err(|_| bad())?;
                Ok(DeadLetter {
                    id,
                    at: micros_to_utc(row.get("at")),
                    reading,
                    reason,
                    kind: match row.get::<String, _>("kind").as_str() {
                        "parked" => DeadLetterKind::Parked,
                        _ => DeadLetterKind::Refused,
                    },
                })
            })
            .collect()
    }

    pub async fn outbox_status(&self) -> Result<OutboxStatus, StoreError> {
        let (pending, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT coalesce(sum(n), 0) - (SELECT count(*) FROM outbox_items WHERE settled != 0),
                        min(created) FROM outbox",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db("reading the outbox"))?;
        let (dead, parked): (i64, i64) = sqlx::query_as(
            "SELECT coalesce(sum(kind != 'parked'), 0), coalesce(sum(kind = 'parked'), 0) FROM dead_letters",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db("reading dead letters"))?;
        let last: Option<Option<String>> =
            sqlx::query_scalar("SELECT summary FROM dead_letters ORDER BY id DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(db("reading dead letters"))?;
        Ok(OutboxStatus {
            pending_readings: pending as u64,
            oldest_queued: oldest.map(micros_to_utc),
            dead_letters: dead as u64,
            parked: parked as u64,
            // A dead letter from before schema 5 has no log-safe summary.
            last_set_aside: last.map(|s| s.unwrap_or_else(|| "refused by the server".into())),
        })
    }

    /// Appends alarm-log records (start, end, acknowledge, pause …) in one transaction.
    pub async fn log_alarms(
        &self,
        events: &[(String, DateTime<Utc>, serde_json::Value)],
    ) -> Result<(), StoreError> {
        self.log(events, &[]).await
    }

    /// Inserts alarm-log rows in the caller's transaction (see [`Store::log`]).
    pub(crate) async fn insert_alarms(
        &self,
        tx: &mut sqlx::SqliteConnection,
        events: &[(String, DateTime<Utc>, serde_json::Value)],
        delta: &mut Delta,
        sealed_under: &mut std::collections::BTreeSet<i64>,
    ) -> Result<(), StoreError> {
        let mut id: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM alarm_log")
            .fetch_one(&mut *tx)
            .await
            .map_err(db("writing the alarm log"))?;
        for (bed, at, event) in events {
            id += 1;
            let body = AlarmBody {
                bed: bed.clone(),
                event: event.clone(),
            };
            let mac = insert_alarm_row(
                &mut *tx,
                &self.keys,
                &self.lookup,
                Some(&self.integrity),
                id,
                at.timestamp_micros(),
                &body,
                sealed_under,
            )
            .await?;
            delta.add("alarm_log", &mac);
        }
        Ok(())
    }

    /// Alarm-log records in `[from, to]`, optionally for one bed, oldest first.
    pub async fn alarm_log(
        &self,
        bed: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AlarmRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, bed_tag, at, nonce, sealed, key_id, mac FROM alarm_log
             WHERE at >= ?1 AND at <= ?2 AND (?3 IS NULL OR bed_tag = ?3) ORDER BY at, id",
        )
        .bind(from.timestamp_micros())
        .bind(to.timestamp_micros())
        .bind(bed.map(|b| self.lookup.bed(b)))
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading the alarm log"))?;
        rows.iter().map(|row| self.open_alarm(row)).collect()
    }

    fn open_alarm(&self, row: &sqlx::sqlite::SqliteRow) -> Result<AlarmRecord, StoreError> {
        let id: i64 = row.get("id");
        let bed_tag: Vec<u8> = row.get("bed_tag");
        let bad = || StoreError::TamperedRecord {
            table: "alarm_log",
            id,
        };
        let plain = self
            .keys
            .open(
                Purpose::Readings,
                row.get("key_id"),
                &alarm_aad(id, &bed_tag),
                &row.get::<Vec<u8>, _>("nonce"),
                &row.get::<Vec<u8>, _>("sealed"),
            )
            .map_err(|_| bad())?;
        // After the AEAD (which binds id and bed): the time is MACed.
        let at: i64 = row.get("at");
        if row.get::<Option<Vec<u8>>, _>("mac").as_deref()
            != Some(&integrity::alarm_mac(&self.integrity, id, &bed_tag, at)[..])
        {
            return Err(StoreError::IntegrityRow {
                table: "alarm_log",
                id: id.to_string(),
            });
        }
        let body: AlarmBody = serde_json::from_slice(&plain).map_err(|_| bad())?;
        if self.lookup.bed(&body.bed) != bed_tag {
            return Err(bad());
        }
        Ok(AlarmRecord {
            id,
            bed: body.bed,
            at: micros_to_utc(at),
            event: body.event,
        })
    }

    /// The device row of `address`: its added time, MAC and sealed record
    /// (None if not assigned). A row that fails its MAC or does not open is
    /// an error: it is not silently replaced.
    async fn device_row(
        &self,
        conn: &mut sqlx::SqliteConnection,
        address: &str,
    ) -> Result<Option<(i64, Option<Vec<u8>>, DeviceBody)>, StoreError> {
        let row = sqlx::query("SELECT address_tag, bed_tag, added_at, nonce, sealed, key_id, mac FROM devices WHERE address_tag = ?")
            .bind(self.lookup.address(address))
            .fetch_optional(&mut *conn)
            .await
            .map_err(db("reading a device"))?;
        let Some(row) = row else { return Ok(None) };
        let body = self.open_device(&row)?;
        Ok(Some((row.get("added_at"), row.get("mac"), body)))
    }

    /// Checks a device row's MAC and opens its record.
    fn open_device(&self, row: &sqlx::sqlite::SqliteRow) -> Result<DeviceBody, StoreError> {
        let address_tag: Vec<u8> = row.get("address_tag");
        let bed_tag: Vec<u8> = row.get("bed_tag");
        let (key_id, nonce): (i64, Vec<u8>) = (row.get("key_id"), row.get("nonce"));
        let mac = integrity::device_mac(&self.integrity, &address_tag, &bed_tag, row.get("added_at"), key_id, &nonce);
        if row.get::<Option<Vec<u8>>, _>("mac").as_deref() != Some(&mac[..]) {
            return Err(StoreError::IntegrityRow {
                table: "devices",
                id: hex::encode(&address_tag),
            });
        }
        let bad = || StoreError::TamperedRecord {
            table: "devices",
            id: 0,
        };
        let plain = self
            .keys
            .open(
                Purpose::Readings,
                key_id,
                &device_aad(&address_tag, &bed_tag),
                &nonce,
                &row.get::<Vec<u8>, _>("sealed"),
            )
            .map_err(|_| bad())?;
        let body: DeviceBody = serde_json::from_slice(&plain).map_err(|_| bad())?;
        if self.lookup.address(&body.address) != address_tag || self.lookup.bed(&body.bed) != bed_tag {
            return Err(bad());
        }
        Ok(body)
    }

    /// Assigns (or moves) a Bluetooth device to a bed.
    /// The record is sealed again; the devices digest follows in the same
    /// transaction.
    pub async fn assign_device(&self, address: &str, bed: &str, kind: &str) -> Result<(), StoreError> {
        let what = "assigning a device";
        let mut tx = self.begin_write(what).await?;
        let mut delta = Delta::default();
        let (added_at, info) = match self.device_row(&mut tx, address).await? {
            Some((at, mac, body)) => {
                delta.remove("devices", mac.as_deref());
                (at, body.info)
            }
            None => (Utc::now().timestamp_micros(), None),
        };
        let body = DeviceBody {
            address: address.to_string(),
            bed: bed.to_string(),
            kind: kind.to_string(),
            info,
        };
        let mac = write_device_row(&mut tx, &self.keys, &self.lookup, Some(&self.integrity), added_at, &body).await?;
        delta.add("devices", &mac);
        self.integrity.apply(&mut tx, delta).await?;
        tx.commit().await.map_err(db(what))
    }

    pub async fn remove_device(&self, address: &str) -> Result<bool, StoreError> {
        let what = "removing a device";
        let mut tx = self.begin_write(what).await?;
        let gone: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("DELETE FROM devices WHERE address_tag = ? RETURNING mac")
                .bind(self.lookup.address(address))
                .fetch_optional(&mut *tx)
                .await
                .map_err(db(what))?;
        let mut delta = Delta::default();
        if let Some(mac) = &gone {
            delta.remove("devices", mac.as_deref());
        }
        self.integrity.apply(&mut tx, delta).await?;
        tx.commit().await.map_err(db(what))?;
        Ok(gone.is_some())
    }

    /// Remembers a device's Device Information (manufacturer, model, serial …).
    /// Nothing is stored for a device that is not assigned.
    pub async fn set_device_info(&self, address: &str, info: &serde_json::Value) -> Result<(), StoreError> {
        let what = "storing device information";
        let mut tx = self.begin_write(what).await?;
        let Some((added_at, old, mut body)) = self.device_row(&mut tx, address).await? else {
            return Ok(());
        };
        body.info = Some(info.clone());
        let mut delta = Delta::default();
        delta.remove("devices", old.as_deref());
        let mac = write_device_row(&mut tx, &self.keys, &self.lookup, Some(&self.integrity), added_at, &body).await?;
        delta.add("devices", &mac);
        self.integrity.apply(&mut tx, delta).await?;
        tx.commit().await.map_err(db(what))
    }

    /// Every assigned device, by bed and address. A device whose record
    /// fails its integrity check is not connected to any bed (its data
    /// would go to the wrong patient); the others still are. `verify`
    /// names it.
    pub async fn devices(&self) -> Result<Vec<DeviceAssignment>, StoreError> {
        let rows = sqlx::query("SELECT address_tag, bed_tag, added_at, nonce, sealed, key_id, mac FROM devices")
            .fetch_all(&self.pool)
            .await
            .map_err(db("listing devices"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            match self.open_device(row) {
                Ok(body) => out.push(DeviceAssignment {
                    address: body.address,
                    bed: body.bed,
                    kind: body.kind,
                    added_at: micros_to_utc(row.get("added_at")),
                    info: body.info,
                }),
                Err(e @ StoreError::IntegrityRow { .. }) => {
                    tracing::error!(error = %e, "a device assignment failed its integrity check; ignored");
                }
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| (&a.bed, &a.address).cmp(&(&b.bed, &b.address)));
        Ok(out)
    }

    /// Opens every sealed record that is not a chunk; returns the failures.
    pub(crate) async fn verify_sealed_records(&self) -> Result<Vec<StoreError>, StoreError> {
        let mut failures = Vec::new();
        for id in self.admission_ids().await? {
            if let Err(e) = self.admission(&id).await {
                failures.push(e);
            }
        }
        let rows = sqlx::query("SELECT id, bed_tag, at, nonce, sealed, key_id, mac FROM alarm_log")
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading the alarm log"))?;
        failures.extend(rows.iter().filter_map(|r| self.open_alarm(r).err()));
        let rows = sqlx::query("SELECT address_tag, bed_tag, added_at, nonce, sealed, key_id, mac FROM devices")
            .fetch_all(&self.pool)
            .await
            .map_err(db("listing devices"))?;
        // A failed MAC is reported by the integrity check; here what does not open.
        failures.extend(
            rows.iter()
                .filter_map(|r| self.open_device(r).err())
                .filter(|e| !matches!(e, StoreError::IntegrityRow { .. })),
        );
        if let Err(e) = self.dead_letters().await {
            failures.push(e);
        }
        if let Err(e) = self.outbox_peek(u32::MAX).await {
            failures.push(e);
        }
        if let Err(e) = self.key_log().await {
            failures.push(e);
        }
        failures.extend(self.verify_news2_log().await?);
        failures.extend(
            self.bed_settings()
                .await?
                .into_iter()
                .filter_map(|s| s.settings.err()),
        );
        Ok(failures)
    }
}
