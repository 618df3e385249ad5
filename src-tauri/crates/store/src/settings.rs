//! Each bed's clinical settings, sealed: what the alarm system must not
//! forget across a restart (patient-specific limits with who set them,
//! NEWS2 entries and history, latched alarms).
//!
//! The store does not interpret the settings (they belong to the alarm
//! system); it seals one JSON document per bed under the readings key, with
//! the bed's keyed tag, the admission and the save time bound into the AAD,
//! so a row moved to another bed or admission, or edited, fails to open.
//! The bed id itself is sealed in the document (schema 11).

use crate::keyring::Purpose;
use crate::{db, micros_to_utc, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use vigil_model::AdmissionId;

/// Before schema 11 (bed in the clear and in the AAD): read by the upgrade.
pub(crate) const AAD_SETTINGS_V1: &[u8] = b"vigil/bed-settings/v1";
/// From schema 11: the bed is sealed in the body, its tag bound in the AAD.
const AAD_SETTINGS: &[u8] = b"vigil/bed-settings/v2";

/// One bed's saved settings; `settings` is an error when the row does not open.
#[derive(Debug)]
pub struct SavedSettings {
    pub bed: String,
    pub admission: Option<AdmissionId>,
    pub saved_at: DateTime<Utc>,
    pub settings: Result<serde_json::Value, StoreError>,
}

/// What a bed-settings row seals (schema 11).
#[derive(Serialize, Deserialize)]
pub(crate) struct SettingsBody {
    pub(crate) bed: String,
    pub(crate) settings: serde_json::Value,
}

/// AAD of a settings row: `bed` is the bed id before schema 11, its tag after.
pub(crate) fn aad(prefix: &[u8], bed: &[u8], admission: Option<&AdmissionId>, saved_at: i64) -> Vec<u8> {
    let adm = admission.map(|a| a.0.as_str()).unwrap_or("");
    [
        prefix,
        &(bed.len() as u32).to_le_bytes(),
        bed,
        &(adm.len() as u32).to_le_bytes(),
        adm.as_bytes(),
        &saved_at.to_le_bytes(),
    ]
    .concat()
}

/// Seals and writes (inserts or replaces) one bed's settings row.
pub(crate) async fn write_settings_row(
    tx: &mut sqlx::SqliteConnection,
    keys: &crate::keyring::Keyring,
    lookup: &crate::lookup::Lookup,
    admission: Option<&AdmissionId>,
    saved_at: i64,
    body: &SettingsBody,
) -> Result<(), StoreError> {
    let what = "saving bed settings";
    let bed_tag = lookup.bed(&body.bed);
    let plain = serde_json::to_vec(body).expect("json serialises");
    let s = keys
        .seal(tx, Purpose::Readings, &aad(AAD_SETTINGS, &bed_tag, admission, saved_at), &plain)
        .await?;
    sqlx::query(
        "INSERT INTO bed_settings (bed_tag, admission, saved_at, nonce, sealed, key_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(bed_tag) DO UPDATE SET admission = ?2, saved_at = ?3, nonce = ?4, sealed = ?5, key_id = ?6",
    )
    .bind(&bed_tag)
    .bind(admission.map(|a| a.0.as_str()))
    .bind(saved_at)
    .bind(s.nonce)
    .bind(s.sealed)
    .bind(s.key_id)
    .execute(&mut *tx)
    .await
    .map_err(db(what))?;
    Ok(())
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
        let what = "saving bed settings";
        let mut tx = self.begin_write(what).await?;
        let body = SettingsBody {
            bed: bed.to_string(),
            settings: settings.clone(),
        };
        write_settings_row(&mut tx, &self.keys, &self.lookup, admission, at.timestamp_micros(), &body).await?;
        tx.commit().await.map_err(db(what))
    }

    /// Every bed's saved settings, by bed. A row that fails to open is
    /// returned with its error, never skipped; its bed is then unknown ("").
    pub async fn bed_settings(&self) -> Result<Vec<SavedSettings>, StoreError> {
        self.bed_settings_of(&[]).await
    }

    /// [`Store::bed_settings`], naming the bed of a row that fails to open
    /// when it is one of `beds` (its tag matches): the bed id is sealed in
    /// the row, so only a caller that knows its beds can say which bed lost
    /// its settings (and must say so at that bed).
    pub async fn bed_settings_of(&self, beds: &[String]) -> Result<Vec<SavedSettings>, StoreError> {
        let rows = sqlx::query(
            "SELECT rowid, bed_tag, admission, saved_at, nonce, sealed, key_id FROM bed_settings",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading bed settings"))?;
        let mut out: Vec<SavedSettings> = rows
            .iter()
            .map(|row| {
                let bed_tag: Vec<u8> = row.get("bed_tag");
                let admission = row.get::<Option<String>, _>("admission").map(AdmissionId);
                let saved_at: i64 = row.get("saved_at");
                let bad = || StoreError::TamperedRecord {
                    table: "bed_settings",
                    id: row.get("rowid"),
                };
                let body = self
                    .keys
                    .open(
                        Purpose::Readings,
                        row.get("key_id"),
                        &aad(AAD_SETTINGS, &bed_tag, admission.as_ref(), saved_at),
                        &row.get::<Vec<u8>, _>("nonce"),
                        &row.get::<Vec<u8>, _>("sealed"),
                    )
                    .map_err(|_| bad())
                    .and_then(|plain| serde_json::from_slice::<SettingsBody>(&plain).map_err(|_| bad()))
                    .and_then(|b| if self.lookup.bed(&b.bed) == bed_tag { Ok(b) } else { Err(bad()) });
                let (bed, settings) = match body {
                    Ok(b) => (b.bed, Ok(b.settings)),
                    Err(e) => {
                        let bed = beds.iter().find(|b| self.lookup.bed(b) == bed_tag);
                        (bed.cloned().unwrap_or_default(), Err(e))
                    }
                };
                SavedSettings {
                    bed,
                    admission,
                    saved_at: micros_to_utc(saved_at),
                    settings,
                }
            })
            .collect();
        out.sort_by(|a, b| a.bed.cmp(&b.bed));
        Ok(out)
    }
}
