//! The patient vault: who is in which bed, sealed under its own key.
//!
//! Readings refer to an opaque admission id; name, MRN, date of birth and
//! category are sealed with the PHI key, so the readings key alone cannot
//! tell who a patient is. Since schema 11 the record also holds the bed and
//! the admission and discharge times; the row shows only the bed's keyed
//! tag and an open flag, both bound into the AAD with the id, so a record
//! moved to another admission or bed, or put back from before a discharge,
//! fails to open.

use crate::integrity::{admission_mac, Delta};
use crate::keyring::Purpose;
use crate::{db, micros_to_utc, Admission, Patient, Store, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use vigil_model::AdmissionId;

/// AAD of an admission record from schema 11: id, bed tag and open flag.
const AAD_ADMISSION: &[u8] = b"vigil/admission/v2/";

/// What an admission row seals (schema 11): who, where and when. The bed
/// and times left the plaintext columns (issue 13 §6). No Debug: PHI.
#[derive(Serialize, Deserialize)]
pub(crate) struct Stay {
    pub(crate) patient: Patient,
    pub(crate) bed: String,
    pub(crate) admitted_at: i64,
    pub(crate) discharged_at: Option<i64>,
}

pub(crate) fn admission_aad(id: &str, bed_tag: &[u8], open: bool) -> Vec<u8> {
    [
        AAD_ADMISSION,
        &(id.len() as u32).to_le_bytes()[..],
        id.as_bytes(),
        bed_tag,
        &[open as u8],
    ]
    .concat()
}

impl Store {
    /// Admits a patient to a bed. Fails if the bed already has one.
    pub async fn admit(
        &self,
        bed: &str,
        patient: Patient,
        at: DateTime<Utc>,
    ) -> Result<Admission, StoreError> {
        validate_patient(&patient)?;
        let id = AdmissionId(uuid::Uuid::new_v4().to_string());
        let mut tx = self.begin_write("starting an admission").await?;
        if self.open_admission_of(&mut tx, bed).await?.is_some() {
            return Err(StoreError::BedOccupied(bed.to_string()));
        }
        let stay = Stay {
            patient,
            bed: bed.to_string(),
            admitted_at: at.timestamp_micros(),
            discharged_at: None,
        };
        self.insert_admission(&mut tx, &id.0, &stay, "writing an admission")
            .await?;
        tx.commit().await.map_err(db("committing an admission"))?;
        Ok(Admission {
            id,
            bed: stay.bed,
            patient: stay.patient,
            admitted_at: at,
            discharged_at: None,
        })
    }

    /// The id of `bed`'s open admission, found by its bed tag.
    pub(crate) async fn open_admission_of(
        &self,
        conn: &mut sqlx::SqliteConnection,
        bed: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT id FROM admissions WHERE bed_tag = ? AND open = 1")
            .bind(self.lookup.bed(bed))
            .fetch_optional(&mut *conn)
            .await
            .map_err(db("checking the bed"))
    }

    /// Discharges the patient in `bed`.
    /// The record is sealed again with its discharge time; the admission's
    /// MAC and the admissions digest change in the same transaction (the
    /// older record or open flag put back in the file then shows).
    pub async fn discharge(&self, bed: &str, at: DateTime<Utc>) -> Result<AdmissionId, StoreError> {
        let what = "discharging";
        let mut tx = self.begin_write(what).await?;
        let Some(id) = self.open_admission_of(&mut tx, bed).await? else {
            return Err(StoreError::BedEmpty(bed.to_string()));
        };
        let row = sqlx::query("SELECT id, bed_tag, open, nonce, sealed, key_id, mac FROM admissions WHERE id = ?")
            .bind(&id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db(what))?;
        let mut stay = self.open_admission_row(&row)?;
        stay.discharged_at = Some(at.timestamp_micros());
        let bed_tag = self.lookup.bed(bed);
        let s = self
            .keys
            .seal(&mut tx, Purpose::Phi, &admission_aad(&id, &bed_tag, false), &stay_json(&stay))
            .await?;
        let mac = admission_mac(&self.integrity, &id, &bed_tag, 0, s.key_id, &s.nonce);
        sqlx::query("UPDATE admissions SET open = 0, nonce = ?, sealed = ?, key_id = ?, mac = ? WHERE id = ?")
            .bind(s.nonce)
            .bind(s.sealed)
            .bind(s.key_id)
            .bind(&mac)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(db(what))?;
        let mut delta = Delta::default();
        delta.remove("admissions", row.get::<Option<Vec<u8>>, _>("mac").as_deref());
        delta.add("admissions", &mac);
        self.integrity.apply(&mut tx, delta).await?;
        tx.commit().await.map_err(db(what))?;
        Ok(AdmissionId(id))
    }

    /// Current admissions (not discharged), with the patient unsealed, by bed.
    pub async fn current_admissions(&self) -> Result<Vec<Admission>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM admissions WHERE open = 1")
            .fetch_all(&self.pool)
            .await
            .map_err(db("listing admissions"))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.admission(&id).await {
                // A record that says discharged under an open flag is not current.
                Ok(a) if a.discharged_at.is_none() => out.push(a),
                Ok(_) => {}
                // An admission whose state was edited in the file (say a
                // discharge undone) is not trusted as current; the others are.
                Err(e @ StoreError::IntegrityRow { .. }) => {
                    tracing::error!(error = %e, "an admission failed its integrity check; not shown as current");
                }
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.bed.cmp(&b.bed));
        Ok(out)
    }

    pub(crate) async fn admission_ids(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT id FROM admissions")
            .fetch_all(&self.pool)
            .await
            .map_err(db("listing admissions"))
    }

    /// One admission by id, patient unsealed.
    pub async fn admission(&self, id: &str) -> Result<Admission, StoreError> {
        let row = sqlx::query("SELECT id, bed_tag, open, nonce, sealed, key_id, mac FROM admissions WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("reading an admission"))?
            .ok_or_else(|| StoreError::UnknownAdmission(id.to_string()))?;
        let stay = self.open_admission_row(&row)?;
        Ok(Admission {
            id: AdmissionId(id.to_string()),
            bed: stay.bed,
            patient: stay.patient,
            admitted_at: micros_to_utc(stay.admitted_at),
            discharged_at: stay.discharged_at.map(micros_to_utc),
        })
    }

    /// Checks an admission row's MAC, opens its record and checks that the
    /// record agrees with the lookup columns (its bed's tag, open flag).
    fn open_admission_row(&self, row: &sqlx::sqlite::SqliteRow) -> Result<Stay, StoreError> {
        let id: String = row.get("id");
        let bed_tag: Vec<u8> = row.get("bed_tag");
        let open: i64 = row.get("open");
        let (key_id, nonce): (i64, Vec<u8>) = (row.get("key_id"), row.get("nonce"));
        if row.get::<Option<Vec<u8>>, _>("mac").as_deref()
            != Some(&admission_mac(&self.integrity, &id, &bed_tag, open, key_id, &nonce)[..])
        {
            return Err(StoreError::IntegrityRow {
                table: "admissions",
                id,
            });
        }
        let tampered = || StoreError::TamperedAdmission(id.clone());
        let plain = self
            .keys
            .open(
                Purpose::Phi,
                key_id,
                &admission_aad(&id, &bed_tag, open == 1),
                &nonce,
                &row.get::<Vec<u8>, _>("sealed"),
            )
            .map_err(|_| tampered())?;
        let stay: Stay = serde_json::from_slice(&plain).map_err(|_| tampered())?;
        if self.lookup.bed(&stay.bed) != bed_tag || stay.discharged_at.is_none() != (open == 1) {
            return Err(tampered());
        }
        Ok(stay)
    }
}

fn stay_json(stay: &Stay) -> zeroize::Zeroizing<Vec<u8>> {
    zeroize::Zeroizing::new(serde_json::to_vec(stay).expect("admission serialises"))
}

/// AAD of a patient record before schema 11 (id and bed): read by the
/// upgrade and by salvage of an older file.
pub(crate) fn legacy_patient_aad(id: &str, bed: &str) -> Vec<u8> {
    [b"vigil/patient/v1/".as_slice(), id.as_bytes(), b"/", bed.as_bytes()].concat()
}

fn validate_patient(p: &Patient) -> Result<(), StoreError> {
    if p.display_name.trim().is_empty() {
        return Err(StoreError::InvalidPatient("display name is empty".into()));
    }
    if p.mrn.trim().is_empty() {
        return Err(StoreError::InvalidPatient("MRN is empty".into()));
    }
    if p.date_of_birth > Utc::now().date_naive() {
        return Err(StoreError::InvalidPatient(
            "date of birth is in the future".into(),
        ));
    }
    Ok(())
}

impl Store {
    /// Seals an admission record under the PHI key and inserts its row with
    /// the row's MAC and its share of the `admissions` digest, inside `tx`:
    /// one writer for admissions made here, those `vigil store salvage`
    /// copies back and those the schema-11 upgrade rewrites.
    pub(crate) async fn insert_admission(
        &self,
        tx: &mut sqlx::SqliteConnection,
        id: &str,
        stay: &Stay,
        context: &'static str,
    ) -> Result<(), StoreError> {
        let mac = insert_admission_row(tx, &self.keys, &self.lookup, Some(&self.integrity), id, stay, context).await?;
        let mut delta = Delta::default();
        delta.add("admissions", &mac);
        self.integrity.apply(tx, delta).await
    }
}

/// Inserts a sealed admission row; returns the MAC it was given (empty when
/// the store has no integrity key yet: schema 7 MACs every row at its first
/// open). The caller applies the digest.
pub(crate) async fn insert_admission_row(
    tx: &mut sqlx::SqliteConnection,
    keys: &crate::keyring::Keyring,
    lookup: &crate::lookup::Lookup,
    ik: Option<&crate::integrity::Integrity>,
    id: &str,
    stay: &Stay,
    context: &'static str,
) -> Result<Vec<u8>, StoreError> {
    let bed_tag = lookup.bed(&stay.bed);
    let open = stay.discharged_at.is_none();
    let s = keys
        .seal(tx, Purpose::Phi, &admission_aad(id, &bed_tag, open), &stay_json(stay))
        .await?;
    let mac = ik.map(|ik| admission_mac(ik, id, &bed_tag, open as i64, s.key_id, &s.nonce));
    sqlx::query(
        "INSERT INTO admissions (id, bed_tag, open, nonce, sealed, key_id, mac) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(&bed_tag)
    .bind(open as i64)
    .bind(s.nonce)
    .bind(s.sealed)
    .bind(s.key_id)
    .bind(&mac)
    .execute(&mut *tx)
    .await
    .map_err(db(context))?;
    Ok(mac.unwrap_or_default())
}

const AAD_LINK: &[u8] = b"vigil/fhir-link/v1/";

impl Store {
    /// Links an admission to its FHIR Patient (e.g. "Patient/123"), sealed
    /// under the PHI key. Readings of the admission upload once it exists.
    pub async fn link_patient(&self, admission: &AdmissionId, patient_ref: &str) -> Result<(), StoreError> {
        let what = "linking a patient";
        let mut tx = self.begin_write(what).await?;
        let s = self
            .keys
            .seal(
                &mut tx,
                Purpose::Phi,
                &[AAD_LINK, admission.0.as_bytes()].concat(),
                patient_ref.as_bytes(),
            )
            .await?;
        sqlx::query(
            "INSERT INTO fhir_links (admission, nonce, sealed, key_id) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(admission) DO UPDATE SET nonce = ?2, sealed = ?3, key_id = ?4",
        )
        .bind(&admission.0)
        .bind(s.nonce)
        .bind(s.sealed)
        .bind(s.key_id)
        .execute(&mut *tx)
        .await
        .map_err(db(what))?;
        tx.commit().await.map_err(db(what))
    }

    /// The FHIR Patient an admission is linked to, if any.
    pub async fn patient_link(&self, admission: &AdmissionId) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT nonce, sealed, key_id FROM fhir_links WHERE admission = ?")
            .bind(&admission.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("reading a patient link"))?;
        let Some(row) = row else { return Ok(None) };
        let plain = self
            .keys
            .open(
                Purpose::Phi,
                row.get("key_id"),
                &[AAD_LINK, admission.0.as_bytes()].concat(),
                &row.get::<Vec<u8>, _>("nonce"),
                &row.get::<Vec<u8>, _>("sealed"),
            )
            .map_err(|_| StoreError::TamperedRecord {
                table: "fhir_links",
                id: 0,
            })?;
        String::from_utf8(plain.to_vec())
            .map(Some)
            .map_err(|_| StoreError::TamperedRecord {
                table: "fhir_links",
                id: 0,
            })
    }
}
