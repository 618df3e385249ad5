//! Each bed's clinical settings, sealed: what the alarm system must not
//! forget across a restart (patient-specific limits with who set them,
//! NEWS2 entries and history, latched alarms).
//!
//! The store does not interpret the settings (they belong to the alarm
//! system); it seals one JSON document per bed under the readings key, with
//! the bed, the admission and the save time bound into the AAD, so a row
//! moved to another bed or admission, or edited, fails to open.

use crate::keyring::Purpose;
use crate::{db, micros_to_utc, Store, StoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;
use vigil_model::AdmissionId;

const AAD_SETTINGS: &[u8] = b"vigil/bed-settings/v1";

/// One bed's saved settings; `settings` is an error when the row does not open.
#[derive(Debug)]
pub struct SavedSettings {
    pub bed: String,
    pub admission: Option<AdmissionId>,
    pub saved_at: DateTime<Utc>,
    pub settings: Result<serde_json::Value, StoreError>,
}

fn aad(bed: &str, admission: Option<&AdmissionId>, saved_at: i64) -> Vec<u8> {
    let adm = admission.map(|a| a.0.as_str()).unwrap_or("");
    [
        AAD_SETTINGS,
        &(bed.len() as u32).to_le_bytes(),
        bed.as_bytes(),
        &(adm.len() as u32).to_le_bytes(),
        adm.as_bytes(),
        &saved_at.to_le_bytes(),
    ]
    .concat()
}

impl Store {
    /// Saves (replaces) a bed's settings in one transaction.
    pub async fn save_bed_settings(
        &self,
        bed: &str,
        admission: Option<&AdmissionId>,
        at: DateTime<Utc>,
        settings: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let saved_at = at.timestamp_micros();
        let body = serde_json::to_vec(settings).expect("json serialises");
        let what = "saving bed settings";
        let mut tx = self.begin_write(what).await?;
        let s = self
            .keys
            .seal(&mut tx, Purpose::Readings, &aad(bed, admission, saved_at), &body)
            .await?;
        sqlx::query(
            "INSERT INTO bed_settings (bed, admission, saved_at, nonce, sealed, key_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(bed) DO UPDATE SET admission = ?2, saved_at = ?3, nonce = ?4, sealed = ?5, key_id = ?6",
        )
        .bind(bed)
        .bind(admission.map(|a| a.0.as_str()))
        .bind(saved_at)
        .bind(s.nonce)
        .bind(s.sealed)
        .bind(s.key_id)
        .execute(&mut *tx)
        .await
        .map_err(db(what))?;
        tx.commit().await.map_err(db(what))
    }

    /// Every bed's saved settings. A row that fails to open is returned with
    /// its error (the caller must say so at that bed), never skipped.
    pub async fn bed_settings(&self) -> Result<Vec<SavedSettings>, StoreError> {
        let rows = sqlx::query(
            "SELECT rowid, bed, admission, saved_at, nonce, sealed, key_id FROM bed_settings ORDER BY bed",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading bed settings"))?;
        Ok(rows
            .iter()
            .map(|row| {
                let bed: String = row.get("bed");
                let admission = row.get::<Option<String>, _>("admission").map(AdmissionId);
                let saved_at: i64 = row.get("saved_at");
                let bad = || StoreError::TamperedRecord {
                    table: "bed_settings",
                    id: row.get("rowid"),
                };
                let settings = self
                    .keys
                    .open(
                        Purpose::Readings,
                        row.get("key_id"),
                        &aad(&bed, admission.as_ref(), saved_at),
                        &row.get::<Vec<u8>, _>("nonce"),
                        &row.get::<Vec<u8>, _>("sealed"),
                    )
                    .map_err(|_| bad())
                    .and_then(|plain| serde_json::from_slice(&plain).map_err(|_| bad()));
                SavedSettings {
                    bed,
                    admission,
                    saved_at: micros_to_utc(saved_at),
                    settings,
                }
            })
            .collect())
    }
}
