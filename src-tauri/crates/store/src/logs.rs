//! Sealed records beside the readings: the FHIR outbox and its dead letters,
//! the alarm log, and the registry of Bluetooth devices assigned to beds.
//!
//! Everything that can carry patient data (values, alarm messages, server
//! replies that echo values) is sealed under the readings key; only ids,
//! beds, times and counts are in the clear.

use crate::{db, micros_to_utc, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::sync::atomic::Ordering;
use ts_rs::TS;
use vigil_model::Reading;

const AAD_OUTBOX: &[u8] = b"vigil/outbox/v2";
const AAD_DEAD: &[u8] = b"vigil/dead-letter/v1";
pub(crate) const AAD_ALARM: &[u8] = b"vigil/alarm-log/v1";
const AAD_DEVICE: &[u8] = b"vigil/device/v1";

/// One outbox row: readings of one series appended together, in insertion order.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub seq: i64,
    pub readings: Vec<Reading>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxStatus {
    pub pending_readings: u64,
    pub oldest_queued: Option<DateTime<Utc>>,
    pub dead_letters: u64,
}

/// A reading the server refused, with its reason (an OperationOutcome summary).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DeadLetter {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub reading: Reading,
    pub reason: String,
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
        let (nonce, sealed) = self.readings.seal(&outbox_aad(created, n), &body);
        sqlx::query("INSERT INTO outbox (created, n, nonce, sealed) VALUES (?, ?, ?, ?)")
            .bind(created)
            .bind(n)
            .bind(nonce)
            .bind(sealed)
            .execute(&mut *tx)
            .await
            .map_err(db("queueing readings for upload"))?;
        Ok(())
    }

    /// The oldest `limit` outbox rows, in insertion order.
    pub async fn outbox_peek(&self, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        self.outbox_peek_after(0, limit).await
    }

    /// Up to `limit` outbox rows with `seq > after`, in insertion order.
    pub async fn outbox_peek_after(&self, after: i64, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, created, n, nonce, sealed FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading the outbox"))?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.get("seq");
                let bad = || StoreError::TamperedRecord {
                    table: "outbox",
                    id: seq,
                };
                let plain = self
                    .readings
                    .open(
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
                Ok(OutboxEntry { seq, readings })
            })
            .collect()
    }

    /// Removes uploaded rows from the outbox.
    pub async fn outbox_ack(&self, seqs: &[i64]) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db("acknowledging uploads"))?;
        for seq in seqs {
            sqlx::query("DELETE FROM outbox WHERE seq = ?")
                .bind(seq)
                .execute(&mut *tx)
                .await
                .map_err(db("acknowledging uploads"))?;
        }
        tx.commit().await.map_err(db("acknowledging uploads"))
    }

    /// Keeps a refused reading with the server's reason.
    pub async fn dead_letter(&self, reading: &Reading, reason: &str) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db("writing a dead letter"))?;
        let id: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) + 1 FROM dead_letters")
            .fetch_one(&mut *tx)
            .await
            .map_err(db("writing a dead letter"))?;
        let at = Utc::now();
        let body = serde_json::to_vec(&(reading, reason)).expect("reading serialises");
        let (nonce, sealed) = self.readings.seal(&id_aad(AAD_DEAD, id), &body);
        sqlx::query("INSERT INTO dead_letters (id, at, nonce, sealed) VALUES (?, ?, ?, ?)")
            .bind(id)
            .bind(at.timestamp_micros())
            .bind(nonce)
            .bind(sealed)
            .execute(&mut *tx)
            .await
            .map_err(db("writing a dead letter"))?;
        tx.commit().await.map_err(db("writing a dead letter"))
    }

    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query("SELECT id, at, nonce, sealed FROM dead_letters ORDER BY id")
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
                let plain = self
                    .readings
                    .open(
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
                })
            })
            .collect()
    }

    pub async fn outbox_status(&self) -> Result<OutboxStatus, StoreError> {
        let (pending, oldest): (i64, Option<i64>) =
            sqlx::query_as("SELECT coalesce(sum(n), 0), min(created) FROM outbox")
                .fetch_one(&self.pool)
                .await
                .map_err(db("reading the outbox"))?;
        let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
            .fetch_one(&self.pool)
            .await
            .map_err(db("reading dead letters"))?;
        Ok(OutboxStatus {
            pending_readings: pending as u64,
            oldest_queued: oldest.map(micros_to_utc),
            dead_letters: dead as u64,
        })
    }

    /// Appends alarm-log records (start, end, acknowledge, pause …) in one transaction.
    pub async fn log_alarms(
        &self,
        events: &[(String, DateTime<Utc>, serde_json::Value)],
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db("writing the alarm log"))?;
        let mut id: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM alarm_log")
            .fetch_one(&mut *tx)
            .await
            .map_err(db("writing the alarm log"))?;
        for (bed, at, event) in events {
            id += 1;
            let body = serde_json::to_vec(event).expect("json serialises");
            let aad = [id_aad(AAD_ALARM, id), bed.as_bytes().to_vec()].concat();
            let (nonce, sealed) = self.readings.seal(&aad, &body);
            sqlx::query("INSERT INTO alarm_log (id, bed, at, nonce, sealed) VALUES (?, ?, ?, ?, ?)")
                .bind(id)
                .bind(bed)
                .bind(at.timestamp_micros())
                .bind(nonce)
                .bind(sealed)
                .execute(&mut *tx)
                .await
                .map_err(db("writing the alarm log"))?;
        }
        tx.commit().await.map_err(db("writing the alarm log"))
    }

    /// Alarm-log records in `[from, to]`, optionally for one bed, oldest first.
    pub async fn alarm_log(
        &self,
        bed: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AlarmRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, bed, at, nonce, sealed FROM alarm_log
             WHERE at >= ?1 AND at <= ?2 AND (?3 IS NULL OR bed = ?3) ORDER BY at, id",
        )
        .bind(from.timestamp_micros())
        .bind(to.timestamp_micros())
        .bind(bed)
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading the alarm log"))?;
        rows.iter().map(|row| self.open_alarm(row)).collect()
    }

    fn open_alarm(&self, row: &sqlx::sqlite::SqliteRow) -> Result<AlarmRecord, StoreError> {
        let id: i64 = row.get("id");
        let bed: String = row.get("bed");
        let bad = || StoreError::TamperedRecord {
            table: "alarm_log",
            id,
        };
        let aad = [id_aad(AAD_ALARM, id), bed.as_bytes().to_vec()].concat();
        let plain = self
            .readings
            .open(
                &aad,
                &row.get::<Vec<u8>, _>("nonce"),
                &row.get::<Vec<u8>, _>("sealed"),
            )
            .map_err(|_| bad())?;
        let event = serde_json::from_slice(&plain).map_err(|_| bad())?;
        Ok(AlarmRecord {
            id,
            bed,
            at: micros_to_utc(row.get("at")),
            event,
        })
    }

    /// Assigns (or moves) a Bluetooth device to a bed.
    pub async fn assign_device(&self, address: &str, bed: &str, kind: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO devices (address, bed, kind, added_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(address) DO UPDATE SET bed = ?2, kind = ?3",
        )
        .bind(address)
        .bind(bed)
        .bind(kind)
        .bind(Utc::now().timestamp_micros())
        .execute(&self.pool)
        .await
        .map_err(db("assigning a device"))?;
        Ok(())
    }

    pub async fn remove_device(&self, address: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM devices WHERE address = ?")
            .bind(address)
            .execute(&self.pool)
            .await
            .map_err(db("removing a device"))?
            .rows_affected();
        Ok(n > 0)
    }

    /// Remembers a device's Device Information (manufacturer, model, serial …).
    pub async fn set_device_info(&self, address: &str, info: &serde_json::Value) -> Result<(), StoreError> {
        let (nonce, sealed) = self.readings.seal(
            &[AAD_DEVICE, address.as_bytes()].concat(),
            &serde_json::to_vec(info).expect("json"),
        );
        sqlx::query("UPDATE devices SET nonce = ?, sealed = ? WHERE address = ?")
            .bind(nonce)
            .bind(sealed)
            .bind(address)
            .execute(&self.pool)
            .await
            .map_err(db("storing device information"))?;
        Ok(())
    }

    pub async fn devices(&self) -> Result<Vec<DeviceAssignment>, StoreError> {
        let rows = sqlx::query(
            "SELECT address, bed, kind, added_at, nonce, sealed FROM devices ORDER BY bed, address",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("listing devices"))?;
        rows.iter()
            .map(|row| {
                let address: String = row.get("address");
                let info = match (
                    row.get::<Option<Vec<u8>>, _>("nonce"),
                    row.get::<Option<Vec<u8>>, _>("sealed"),
                ) {
                    (Some(n), Some(s)) => {
                        let plain = self
                            .readings
                            .open(&[AAD_DEVICE, address.as_bytes()].concat(), &n, &s)
                            .map_err(|_| StoreError::TamperedRecord {
                                table: "devices",
                                id: 0,
                            })?;
                        serde_json::from_slice(&plain).ok()
                    }
                    _ => None,
                };
                Ok(DeviceAssignment {
                    address,
                    bed: row.get("bed"),
                    kind: row.get("kind"),
                    added_at: micros_to_utc(row.get("added_at")),
                    info,
                })
            })
            .collect()
    }

    /// Opens every sealed record that is not a chunk; returns the failures.
    pub(crate) async fn verify_sealed_records(&self) -> Result<Vec<StoreError>, StoreError> {
        let mut failures = Vec::new();
        for id in self.admission_ids().await? {
            if let Err(e) = self.admission(&id).await {
                failures.push(e);
            }
        }
        let rows = sqlx::query("SELECT id, bed, at, nonce, sealed FROM alarm_log")
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading the alarm log"))?;
        failures.extend(rows.iter().filter_map(|r| self.open_alarm(r).err()));
        if let Err(e) = self.dead_letters().await {
            failures.push(e);
        }
        if let Err(e) = self.outbox_peek(u32::MAX).await {
            failures.push(e);
        }
        failures.extend(
            self.bed_settings()
                .await?
                .into_iter()
                .filter_map(|s| s.settings.err()),
        );
        Ok(failures)
    }
}
