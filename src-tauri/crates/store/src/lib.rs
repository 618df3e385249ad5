//! Vigil's encrypted local store.
//!
//! Every reading is sealed with AES-256-GCM before it touches disk. Readings
//! of one series (admission × bed × device × code) are grouped into chunks,
//! encoded compactly ([`codec`]), sealed with an AAD that binds the chunk to
//! its series and time range, and written in one SQLite transaction per
//! batch. Patient identity lives in a separate table under its own key
//! ([`Patient`]). Callers see a small API — append a batch, query a series,
//! latest per bed, admit/discharge — so the layout can change behind it.

mod codec;
pub mod crypto;
pub mod keys;

use chrono::{DateTime, NaiveDate, Utc};
use crypto::{KeyBytes, SealingKey};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use vigil_model::{AdmissionId, Mdc, Reading, Source};

pub use codec::CodecError;
pub use keys::{create_key_file, KdfParams, KeySource};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Everything that can go wrong in the store. Messages never carry patient
/// data or values: only ids, paths and reasons.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error while {context}: {source}")]
    Db {
        context: &'static str,
        source: sqlx::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the key does not open this database (wrong passphrase, key file or keychain entry); nothing was changed")]
    WrongKey,
    #[error("key error: {0}")]
    Key(String),
    #[error("key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error("chunk {chunk} of series {series} failed authentication: it was altered, moved or truncated")]
    Tampered { chunk: i64, series: i64 },
    #[error("admission {0} failed authentication: its sealed record was altered or moved")]
    TamperedAdmission(String),
    #[error("chunk {chunk} authenticated but could not be decoded: {source}")]
    Corrupt { chunk: i64, source: CodecError },
    #[error("bed {0} already has an admitted patient")]
    BedOccupied(String),
    #[error("bed {0} has no admitted patient")]
    BedEmpty(String),
    #[error("invalid patient details: {0}")]
    InvalidPatient(String),
}

fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Db { context, source }
}

/// Patient category, which sets alarm defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatientCategory {
    Adult,
    Paediatric,
    Neonatal,
}

/// Who the patient is. Sealed under the PHI key; never logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    pub display_name: String,
    pub mrn: String,
    pub date_of_birth: NaiveDate,
    pub category: PatientCategory,
}

impl std::fmt::Debug for Patient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Debug output ends up in logs and panics: keep PHI out of it.
        f.debug_struct("Patient")
            .field("category", &self.category)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Admission {
    pub id: AdmissionId,
    pub bed: String,
    pub patient: Patient,
    pub admitted_at: DateTime<Utc>,
    pub discharged_at: Option<DateTime<Utc>>,
}

/// Which readings a series query wants.
#[derive(Debug, Clone)]
pub struct SeriesQuery {
    pub bed: String,
    pub code: Mdc,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// The encrypted store. Cheap to clone (a pool and two keys behind `Arc`).
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    readings: std::sync::Arc<SealingKey>,
    phi: std::sync::Arc<SealingKey>,
    path: PathBuf,
}

const AAD_DEK: &[u8] = b"vigil/dek/v1/";
const AAD_CHUNK: &[u8] = b"vigil/chunk/v1";
const AAD_PATIENT: &[u8] = b"vigil/patient/v1/";

/// Identifies a series row; also bound into each chunk's AAD.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SeriesKey {
    admission: String,
    bed: String,
    device: String,
    code: u32,
    unit: String,
    source: &'static str,
}

impl SeriesKey {
    fn of(r: &Reading) -> Self {
        SeriesKey {
            admission: r.admission.as_ref().map(|a| a.0.clone()).unwrap_or_default(),
            bed: r.bed.clone(),
            device: r.device.clone(),
            code: r.code.0,
            unit: r.unit.clone(),
            source: source_str(r.source),
        }
    }

    fn chunk_aad(&self, series_id: i64, t0: i64, t1: i64, n: u32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(96);
        aad.extend_from_slice(AAD_CHUNK);
        aad.extend_from_slice(&series_id.to_le_bytes());
        for s in [&self.admission, &self.bed, &self.device, &self.unit] {
            aad.extend_from_slice(&(s.len() as u32).to_le_bytes());
            aad.extend_from_slice(s.as_bytes());
        }
        aad.extend_from_slice(self.source.as_bytes());
        aad.extend_from_slice(&self.code.to_le_bytes());
        aad.extend_from_slice(&t0.to_le_bytes());
        aad.extend_from_slice(&t1.to_le_bytes());
        aad.extend_from_slice(&n.to_le_bytes());
        aad
    }

    fn reading(&self, s: codec::Sample) -> Reading {
        Reading {
            bed: self.bed.clone(),
            admission: (!self.admission.is_empty()).then(|| AdmissionId(self.admission.clone())),
            device: self.device.clone(),
            code: Mdc(self.code),
            value: s.value,
            unit: self.unit.clone(),
            device_time: s.device_time,
            received: micros_to_utc(s.t),
            source: if self.source == "simulated" {
                Source::Simulated
            } else {
                Source::Real
            },
        }
    }
}

fn source_str(s: Source) -> &'static str {
    match s {
        Source::Real => "real",
        Source::Simulated => "simulated",
    }
}

fn micros_to_utc(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

impl Store {
    /// Opens (or creates) the store at `path` with the key from `key`.
    ///
    /// An existing database is checked against the key before anything is
    /// written: a wrong key returns [`StoreError::WrongKey`] and changes nothing.
    pub async fn open(path: &Path, key: &KeySource) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Key(format!("cannot create data directory {}: {e}", dir.display()))
            })?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed batch survives power loss, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(db("opening the database"))?;

        let has_keys: bool = sqlx::query_scalar(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'keys'",
        )
        .fetch_one(&pool)
        .await
        .map_err(db("reading the schema"))?;

        let (readings, phi) = if has_keys {
            let keys = unwrap_keys(&pool, key).await?;
            MIGRATOR.run(&pool).await?;
            keys
        } else {
            MIGRATOR.run(&pool).await?;
            create_keys(&pool, key).await?
        };
        Ok(Store {
            pool,
            readings: std::sync::Arc::new(SealingKey::new(&readings)),
            phi: std::sync::Arc::new(SealingKey::new(&phi)),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends readings durably: one transaction, one sealed chunk per series.
    /// When this returns Ok, every reading is on disk.
    pub async fn append(&self, batch: &[Reading]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut groups: BTreeMap<SeriesKey, Vec<codec::Sample>> = BTreeMap::new();
        for r in batch {
            groups.entry(SeriesKey::of(r)).or_default().push(codec::Sample {
                t: r.received.timestamp_micros(),
                value: r.value,
                device_time: r.device_time,
            });
        }
        let mut tx = self.pool.begin().await.map_err(db("starting a write"))?;
        for (key, mut samples) in groups {
            samples.sort_by_key(|s| s.t);
            let series_id = series_id(&mut tx, &key).await?;
            let (t0, t1, n) = (samples[0].t, samples[samples.len() - 1].t, samples.len() as u32);
            let (nonce, sealed) = self
                .readings
                .seal(&key.chunk_aad(series_id, t0, t1, n), &codec::encode(&samples));
            sqlx::query("INSERT INTO chunks (series_id, t0, t1, n, nonce, sealed) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(series_id)
                .bind(t0)
                .bind(t1)
                .bind(n)
                .bind(nonce)
                .bind(sealed)
                .execute(&mut *tx)
                .await
                .map_err(db("writing a chunk"))?;
        }
        tx.commit().await.map_err(db("committing a batch"))?;
        Ok(())
    }

    /// Every reading of one bed's measurement (all devices) in `[from, to]`, oldest first.
    pub async fn query_series(&self, q: &SeriesQuery) -> Result<Vec<Reading>, StoreError> {
        self.query(Some(&q.bed), Some(q.code), q.from, q.to).await
    }

    /// Every reading in `[from, to]`, optionally for one bed, ordered by time.
    pub async fn query_range(
        &self,
        bed: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Reading>, StoreError> {
        self.query(bed, None, from, to).await
    }

    async fn query(
        &self,
        bed: Option<&str>,
        code: Option<Mdc>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Reading>, StoreError> {
        let (from, to) = (from.timestamp_micros(), to.timestamp_micros());
        let rows = sqlx::query(
            "SELECT c.id, c.series_id, c.t0, c.t1, c.n, c.nonce, c.sealed,
                    s.admission, s.bed, s.device, s.code, s.unit, s.source
             FROM chunks c JOIN series s ON s.id = c.series_id
             WHERE c.t1 >= ?1 AND c.t0 <= ?2
               AND (?3 IS NULL OR s.bed = ?3) AND (?4 IS NULL OR s.code = ?4)",
        )
        .bind(from)
        .bind(to)
        .bind(bed)
        .bind(code.map(|c| c.0))
        .fetch_all(&self.pool)
        .await
        .map_err(db("querying readings"))?;
        let mut out = Vec::new();
        for row in rows {
            let (key, samples) = self.open_chunk(&row)?;
            out.extend(
                samples
                    .into_iter()
                    .filter(|s| s.t >= from && s.t <= to)
                    .map(|s| key.reading(s)),
            );
        }
        out.sort_by(|a, b| a.received.cmp(&b.received).then(a.code.cmp(&b.code)));
        Ok(out)
    }

    /// The newest reading of every series, per bed and code (one per bed×code:
    /// the newest across devices and admissions).
    pub async fn latest(&self) -> Result<Vec<Reading>, StoreError> {
        // SQLite returns the bare columns of the row holding max(t1).
        let rows = sqlx::query(
            "SELECT c.id, c.series_id, c.t0, max(c.t1) AS t1, c.n, c.nonce, c.sealed,
                    s.admission, s.bed, s.device, s.code, s.unit, s.source
             FROM chunks c JOIN series s ON s.id = c.series_id
             GROUP BY c.series_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("querying latest readings"))?;
        let mut best: BTreeMap<(String, u32), Reading> = BTreeMap::new();
        for row in rows {
            let (key, samples) = self.open_chunk(&row)?;
            if let Some(last) = samples.into_iter().max_by_key(|s| s.t) {
                let r = key.reading(last);
                let slot = (r.bed.clone(), r.code.0);
                if best.get(&slot).is_none_or(|b| b.received < r.received) {
                    best.insert(slot, r);
                }
            }
        }
        Ok(best.into_values().collect())
    }

    /// Opens every chunk and reports the ids of those that fail authentication
    /// or decoding. Returns (chunks checked, failures).
    pub async fn verify(&self) -> Result<(u64, Vec<StoreError>), StoreError> {
        let rows = sqlx::query(
            "SELECT c.id, c.series_id, c.t0, c.t1, c.n, c.nonce, c.sealed,
                    s.admission, s.bed, s.device, s.code, s.unit, s.source
             FROM chunks c LEFT JOIN series s ON s.id = c.series_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading chunks"))?;
        let mut failures = Vec::new();
        for row in &rows {
            if let Err(e) = self.open_chunk(row) {
                failures.push(e);
            }
        }
        for id in self.admission_ids().await? {
            if let Err(e) = self.admission(&id).await {
                failures.push(e);
            }
        }
        Ok((rows.len() as u64, failures))
    }

    fn open_chunk(
        &self,
        row: &sqlx::sqlite::SqliteRow,
    ) -> Result<(SeriesKey, Vec<codec::Sample>), StoreError> {
        let chunk: i64 = row.get("id");
        let series: i64 = row.get("series_id");
        let tampered = StoreError::Tampered { chunk, series };
        let source = match row
            .try_get::<Option<String>, _>("source")
            .ok()
            .flatten()
            .as_deref()
        {
            Some("real") => "real",
            Some("simulated") => "simulated",
            _ => return Err(tampered),
        };
        let key = SeriesKey {
            admission: row.get("admission"),
            bed: row.get("bed"),
            device: row.get("device"),
            code: row.get::<i64, _>("code") as u32,
            unit: row.get("unit"),
            source,
        };
        let (t0, t1, n): (i64, i64, i64) = (row.get("t0"), row.get("t1"), row.get("n"));
        let n32 = u32::try_from(n).map_err(|_| StoreError::Tampered { chunk, series })?;
        let nonce: Vec<u8> = row.get("nonce");
        let sealed: Vec<u8> = row.get("sealed");
        let plain = self
            .readings
            .open(&key.chunk_aad(series, t0, t1, n32), &nonce, &sealed)
            .map_err(|_| StoreError::Tampered { chunk, series })?;
        let samples =
            codec::decode(&plain, n32 as usize).map_err(|source| StoreError::Corrupt { chunk, source })?;
        Ok((key, samples))
    }

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
        let (nonce, sealed) = self.phi.seal(&patient_aad(&id.0, bed), &plain);
        let mut tx = self.pool.begin().await.map_err(db("starting an admission"))?;
        let occupied: bool =
            sqlx::query_scalar("SELECT count(*) > 0 FROM admissions WHERE bed = ? AND discharged_at IS NULL")
                .bind(bed)
                .fetch_one(&mut *tx)
                .await
                .map_err(db("checking the bed"))?;
        if occupied {
            return Err(StoreError::BedOccupied(bed.to_string()));
        }
        sqlx::query("INSERT INTO admissions (id, bed, admitted_at, nonce, sealed) VALUES (?, ?, ?, ?, ?)")
            .bind(&id.0)
            .bind(bed)
            .bind(at.timestamp_micros())
            .bind(nonce)
            .bind(sealed)
            .execute(&mut *tx)
            .await
            .map_err(db("writing an admission"))?;
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
    pub async fn discharge(&self, bed: &str, at: DateTime<Utc>) -> Result<AdmissionId, StoreError> {
        let id: Option<String> = sqlx::query_scalar(
            "UPDATE admissions SET discharged_at = ? WHERE bed = ? AND discharged_at IS NULL RETURNING id",
        )
        .bind(at.timestamp_micros())
        .bind(bed)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("discharging"))?;
        id.map(AdmissionId)
            .ok_or_else(|| StoreError::BedEmpty(bed.to_string()))
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
            out.push(self.admission(&id).await?);
        }
        Ok(out)
    }

    async fn admission_ids(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT id FROM admissions")
            .fetch_all(&self.pool)
            .await
            .map_err(db("listing admissions"))
    }

    /// One admission by id, patient unsealed.
    pub async fn admission(&self, id: &str) -> Result<Admission, StoreError> {
        let row = sqlx::query(
            "SELECT id, bed, admitted_at, discharged_at, nonce, sealed FROM admissions WHERE id = ?",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await
        .map_err(db("reading an admission"))?;
        let bed: String = row.get("bed");
        let nonce: Vec<u8> = row.get("nonce");
        let sealed: Vec<u8> = row.get("sealed");
        let plain = self
            .phi
            .open(&patient_aad(id, &bed), &nonce, &sealed)
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

    /// Flushes and closes the pool (WAL checkpoint happens on last close).
    pub async fn close(self) {
        self.pool.close().await;
    }
}

fn patient_aad(id: &str, bed: &str) -> Vec<u8> {
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

async fn series_id(tx: &mut sqlx::SqliteConnection, k: &SeriesKey) -> Result<i64, StoreError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM series WHERE admission = ? AND bed = ? AND device = ? AND code = ? AND unit = ? AND source = ?",
    )
    .bind(&k.admission)
    .bind(&k.bed)
    .bind(&k.device)
    .bind(k.code)
    .bind(&k.unit)
    .bind(k.source)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db("looking up a series"))?;
    if let Some(id) = found {
        return Ok(id);
    }
    sqlx::query_scalar(
        "INSERT INTO series (admission, bed, device, code, unit, source) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&k.admission)
    .bind(&k.bed)
    .bind(&k.device)
    .bind(k.code)
    .bind(&k.unit)
    .bind(k.source)
    .fetch_one(&mut *tx)
    .await
    .map_err(db("creating a series"))
}

const PURPOSES: [&str; 2] = ["readings", "phi"];

async fn create_keys(pool: &SqlitePool, key: &KeySource) -> Result<(KeyBytes, KeyBytes), StoreError> {
    let rng = ring::rand::SystemRandom::new();
    let params = KdfParams::default();
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&rng, &mut salt).expect("OS random generator failed");
    let kek = SealingKey::new(&key.derive(&salt, params)?);
    let deks = (KeyBytes::random(&rng), KeyBytes::random(&rng));
    let mut tx = pool.begin().await.map_err(db("creating keys"))?;
    if key.needs_salt() {
        sqlx::query("INSERT INTO kdf (id, salt, m_cost_kib, t_cost, p_cost) VALUES (1, ?, ?, ?, ?)")
            .bind(&salt[..])
            .bind(params.m_cost_kib)
            .bind(params.t_cost)
            .bind(params.p_cost)
            .execute(&mut *tx)
            .await
            .map_err(db("storing key parameters"))?;
    }
    for (purpose, dek) in PURPOSES.iter().zip([&deks.0, &deks.1]) {
        let (nonce, wrapped) = kek.seal(&[AAD_DEK, purpose.as_bytes()].concat(), &dek.0);
        sqlx::query("INSERT INTO keys (purpose, nonce, wrapped) VALUES (?, ?, ?)")
            .bind(purpose)
            .bind(nonce)
            .bind(wrapped)
            .execute(&mut *tx)
            .await
            .map_err(db("storing keys"))?;
    }
    tx.commit().await.map_err(db("committing keys"))?;
    Ok(deks)
}

async fn unwrap_keys(pool: &SqlitePool, key: &KeySource) -> Result<(KeyBytes, KeyBytes), StoreError> {
    let kdf = sqlx::query("SELECT salt, m_cost_kib, t_cost, p_cost FROM kdf WHERE id = 1")
        .fetch_optional(pool)
        .await
        .map_err(db("reading key parameters"))?;
    let (salt, params) = match kdf {
        Some(row) => (
            row.get::<Vec<u8>, _>("salt"),
            KdfParams {
                m_cost_kib: row.get::<i64, _>("m_cost_kib") as u32,
                t_cost: row.get::<i64, _>("t_cost") as u32,
                p_cost: row.get::<i64, _>("p_cost") as u32,
            },
        ),
        // Created with a key file or keychain key: a passphrase cannot open it.
        None if key.needs_salt() => return Err(StoreError::WrongKey),
        None => (Vec::new(), KdfParams::default()),
    };
    let kek = SealingKey::new(&key.derive(&salt, params)?);
    let mut out = Vec::with_capacity(2);
    for purpose in PURPOSES {
        let row = sqlx::query("SELECT nonce, wrapped FROM keys WHERE purpose = ?")
            .bind(purpose)
            .fetch_optional(pool)
            .await
            .map_err(db("reading keys"))?
            .ok_or(StoreError::WrongKey)?;
        let plain = kek
            .open(
                &[AAD_DEK, purpose.as_bytes()].concat(),
                &row.get::<Vec<u8>, _>("nonce"),
                &row.get::<Vec<u8>, _>("wrapped"),
            )
            .map_err(|_| StoreError::WrongKey)?;
        out.push(KeyBytes::from_slice(&plain).ok_or(StoreError::WrongKey)?);
    }
    let phi = out.pop().expect("two keys");
    let readings = out.pop().expect("two keys");
    Ok((readings, phi))
}
