//! The key log: every key operation (a key created, a rotation, an automatic
//! replacement at the seal budget, a key re-wrapped or destroyed), with its
//! UTC time.
//!
//! Why sealed: an auditor must be able to trust it. Each entry is sealed
//! under the store's log key (AES-256-GCM, AAD = entry id), so an edited or
//! moved entry fails to open; ids are contiguous from 1, so a deleted entry
//! shows as a gap (a deleted last entry does not: the residual risk is in
//! docs/hazards.md). Entries hold key ids and kinds only, never key bytes.

use crate::crypto::SealingKey;
use crate::keyring::Purpose;
use crate::{db, micros_to_utc, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Row, SqliteConnection};

const AAD_KEYLOG: &[u8] = b"vigil/keylog/v1/";

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyOp {
    /// A new data key (new store, rotation, or the key log's own key).
    Created,
    /// The key-encryption key changed (`vigil key rotate`).
    Rotated,
    /// A data key reached its seal budget and was replaced.
    AutoRotated,
    /// A data key still in use was wrapped again (new KEK or new binding).
    Rewrapped,
    /// A data key nothing referenced was deleted from the file.
    Destroyed,
}

impl KeyOp {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyOp::Created => "created",
            KeyOp::Rotated => "rotated",
            KeyOp::AutoRotated => "auto-rotated",
            KeyOp::Rewrapped => "re-wrapped",
            KeyOp::Destroyed => "destroyed",
        }
    }
}

/// One key-log entry, as authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub op: KeyOp,
    /// The data key concerned, if one.
    pub key_id: Option<i64>,
    /// "readings", "phi" or "log".
    pub purpose: Option<String>,
    pub detail: String,
}

#[derive(Serialize, Deserialize)]
struct Body {
    at: i64,
    op: KeyOp,
    key_id: Option<i64>,
    purpose: Option<String>,
    detail: String,
}

fn aad(id: i64) -> Vec<u8> {
    [AAD_KEYLOG, &id.to_le_bytes()[..]].concat()
}

/// Appends one entry sealed under `log` (key id, key), inside the caller's
/// transaction.
pub(crate) async fn append(
    conn: &mut SqliteConnection,
    log: (i64, &SealingKey),
    op: KeyOp,
    key_id: Option<i64>,
    purpose: Option<Purpose>,
    detail: &str,
) -> Result<(), StoreError> {
    let what = "writing the key log";
    let id: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) + 1 FROM key_log")
        .fetch_one(&mut *conn)
        .await
        .map_err(db(what))?;
    let at = Utc::now().timestamp_micros();
    let body = Body {
        at,
        op,
        key_id,
        purpose: purpose.map(|p| p.as_str().to_string()),
        detail: detail.to_string(),
    };
    let (nonce, sealed) = log
        .1
        .seal(&aad(id), &serde_json::to_vec(&body).expect("serialises"));
    sqlx::query("INSERT INTO key_log (id, at, key_id, nonce, sealed) VALUES (?, ?, ?, ?, ?)")
        .bind(id)
        .bind(at)
        .bind(log.0)
        .bind(nonce)
        .bind(sealed)
        .execute(&mut *conn)
        .await
        .map_err(db(what))?;
    sqlx::query("UPDATE data_keys SET seals = coalesce(seals, 0) + 1 WHERE id = ?")
        .bind(log.0)
        .execute(&mut *conn)
        .await
        .map_err(db(what))?;
    Ok(())
}

impl Store {
    /// Every key operation, oldest first. An entry that fails
    /// authentication, or a gap in the ids (a deleted entry), is an error.
    pub async fn key_log(&self) -> Result<Vec<KeyEvent>, StoreError> {
        let rows = sqlx::query("SELECT id, key_id, nonce, sealed FROM key_log ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading the key log"))?;
        let mut out = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let id: i64 = row.get("id");
            if id != i as i64 + 1 {
                return Err(StoreError::MissingRecord {
                    table: "key_log",
                    id: i as i64 + 1,
                });
            }
            let bad = || StoreError::TamperedRecord { table: "key_log", id };
            let plain = self
                .keys
                .open(
                    Purpose::Log,
                    row.get("key_id"),
                    &aad(id),
                    &row.get::<Vec<u8>, _>("nonce"),
                    &row.get::<Vec<u8>, _>("sealed"),
                )
                .map_err(|_| bad())?;
            let b: Body = serde_json::from_slice(&plain).map_err(|_| bad())?;
            out.push(KeyEvent {
                id,
                at: micros_to_utc(b.at),
                op: b.op,
                key_id: b.key_id,
                purpose: b.purpose,
                detail: b.detail,
            });
        }
        Ok(out)
    }
}
