//! The patient vault: who is in which bed, sealed under its own key.
//!
//! Readings refer to an opaque admission id; name, MRN, date of birth and
//! category are sealed with the PHI key (AAD = id and bed), so the readings
//! key alone cannot tell who a patient is, and a sealed record moved to
//! another admission or bed fails to open.

use crate::integrity::{admission_mac, Delta};
use crate::keyring::Purpose;
use crate::{db, micros_to_utc, Admission, Patient, Store, StoreError, AAD_PATIENT};
use chrono::{DateTime, Utc};
use sqlx::Row;
use vigil_model::AdmissionId;

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
        let plain = serde_json::to_vec(&patient).expect("patient serialises");
        let mut tx = self.begin_write("starting an admission").await?;
        let occupied: bool =
            sqlx::query_scalar("SELECT count(*) > 0 FROM admissions WHERE bed = ? AND discharged_at IS NULL")
                .bind(bed)
                .fetch_one(&mut *tx)
                .await
                .map_err(db("checking the bed"))?;
        if occupied {
            return Err(StoreError::BedOccupied(bed.to_string()));
        }
        self.insert_admission(&mut tx, &id.0, bed, &plain, at.timestamp_micros(), None, "writing an admission")
            .await?;
        tx.commit().await.map_err(db("committing an admission"))?;
        Ok(Admission {
            id,
            bed: bed.to_string(),
            patient,
            admitted_at: at,
            discharged_at: None,
        })
    }

    /// Discharges the patient in `bed`.
    /// The admission's MAC and the admissions digest change in the same
    /// transaction (a discharge set back to NULL in the file then shows).
    pub async fn discharge(&self, bed: &str, at: DateTime<Utc>) -> Result<AdmissionId, StoreError> {
        let what = "discharging";
        let mut tx = self.begin_write(what).await?;
        let row: Option<(String, i64, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT id, admitted_at, mac FROM admissions WHERE bed = ? AND discharged_at IS NULL",
        )
        .bind(bed)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db(what))?;
        let Some((id, admitted, old)) = row else {
            return Err(StoreError::BedEmpty(bed.to_string()));
        };
        let when = at.timestamp_micros();
        let mac = admission_mac(&self.integrity, &id, bed, admitted, Some(when));
        sqlx::query("UPDATE admissions SET discharged_at = ?, mac = ? WHERE id = ?")
            .bind(when)
            .bind(&mac)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(db(what))?;
        let mut delta = Delta::default();
        delta.remove("admissions", old.as_deref());
        delta.add("admissions", &mac);
        self.integrity.apply(&mut tx, delta).await?;
        tx.commit().await.map_err(db(what))?;
        Ok(AdmissionId(id))
    }

    /// Current admissions (not discharged), with the patient unsealed.
    pub async fn current_admissions(&self) -> Result<Vec<Admission>, StoreError> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM admissions WHERE discharged_at IS NULL ORDER BY bed")
                .fetch_all(&self.pool)
                .await
                .map_err(db("listing admissions"))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.admission(&id).await {
                Ok(a) => out.push(a),
                // An admission whose state was edited in the file (say a
                // discharge undone) is not trusted as current; the others are.
                Err(e @ StoreError::IntegrityRow { .. }) => {
                    tracing::error!(error = %e, "an admission failed its integrity check; not shown as current");
                }
                Err(e) => return Err(e),
            }
        }
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
        let row = sqlx::query(
            "SELECT id, bed, admitted_at, discharged_at, nonce, sealed, key_id, mac FROM admissions WHERE id = ?",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await
        .map_err(db("reading an admission"))?;
        let bed: String = row.get("bed");
        let (admitted, discharged): (i64, Option<i64>) = (row.get("admitted_at"), row.get("discharged_at"));
        if row.get::<Option<Vec<u8>>, _>("mac").as_deref()
            != Some(&admission_mac(&self.integrity, id, &bed, admitted, discharged)[..])
        {
            return Err(StoreError::IntegrityRow {
                table: "admissions",
                id: id.to_string(),
            });
        }
        let nonce: Vec<u8> = row.get("nonce");
        let sealed: Vec<u8> = row.get("sealed");
        let plain = self
            .keys
            .open(
                Purpose::Phi,
                row.get("key_id"),
                &patient_aad(id, &bed),
                &nonce,
                &sealed,
            )
            .map_err(|_| StoreError::TamperedAdmission(id.to_string()))?;
        let patient: Patient =
            serde_json::from_slice(&plain).map_err(|_| StoreError::TamperedAdmission(id.to_string()))?;
        Ok(Admission {
            id: AdmissionId(id.to_string()),
            bed,
            patient,
            admitted_at: micros_to_utc(row.get("admitted_at")),
            discharged_at: row.get::<Option<i64>, _>("discharged_at").map(micros_to_utc),
        })
    }
}

pub(crate) fn patient_aad(id: &str, bed: &str) -> Vec<u8> {
    [AAD_PATIENT, id.as_bytes(), b"/", bed.as_bytes()].concat()
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
    /// Seals a serialised patient under the PHI key and inserts its admission row with the
    /// row's MAC and its share of the `admissions` digest, inside `tx`: one writer for
    /// admissions made here and those `vigil store salvage` copies back.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn insert_admission(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        id: &str,
        bed: &str,
        plain: &[u8],
        admitted: i64,
        discharged: Option<i64>,
        context: &'static str,
    ) -> Result<(), StoreError> {
        let s = self
            .keys
            .seal(tx, Purpose::Phi, &patient_aad(id, bed), plain)
            .await?;
        let mac = admission_mac(&self.integrity, id, bed, admitted, discharged);
        sqlx::query(
            "INSERT INTO admissions (id, bed, admitted_at, discharged_at, nonce, sealed, key_id, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(bed)
        .bind(admitted)
        .bind(discharged)
        .bind(s.nonce)
        .bind(s.sealed)
        .bind(s.key_id)
        .bind(&mac)
        .execute(&mut **tx)
        .await
        .map_err(db(context))?;
        let mut delta = Delta::default();
        delta.add("admissions", &mac);
        self.integrity.apply(tx, delta).await
    }
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
